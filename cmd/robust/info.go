package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/robust-go/robust/harden"
	"github.com/robust-go/robust/onnxgraph"
)

// InfoCmd describes a model.
type InfoCmd struct {
	Model string `arg:"" type:"existingfile" help:"ONNX model file."`
	JSON  bool   `help:"Print the description as JSON."`
	Diff  string `type:"existingfile" placeholder:"BASE.onnx" help:"Compare MODEL with BASE.onnx instead: structure, initializer values and metadata (robust info --diff original.onnx hardened.onnx)."`
}

// JSON schemas of robust info and robust zoo list; like robust.eval/v2
// they change when fields change meaning or go away.
const (
	infoSchema = "robust.info/v1"
	diffSchema = "robust.diff/v1"
	zooSchema  = "robust.zoo/v1"
)

// modelInfo is what `robust info` reports. Parameters are what robust
// trains (onnxgraph.TrainableParams: Conv, Gemm and MatMul weights and
// biases, normalisation scales and biases, and the learned tensors of
// more than one element that other operators read, such as Linear biases
// after a MatMul, class tokens, position embeddings and layer scales),
// counted as zoo list counts them; buffers are the other float
// initializers (running statistics, constants).
type modelInfo struct {
	Schema           string            `json:"schema"`
	Path             string            `json:"path"`
	IRVersion        int64             `json:"ir_version"`
	Opsets           map[string]int    `json:"opsets"`
	Producer         string            `json:"producer,omitempty"`
	Inputs           []valueInfo       `json:"inputs"`
	Outputs          []valueInfo       `json:"outputs"`
	Parameters       int64             `json:"parameters"`
	ParameterTensors int               `json:"parameter_tensors"`
	ParameterBytes   int64             `json:"parameter_bytes"`
	Buffers          int64             `json:"buffers"`
	BufferTensors    int               `json:"buffer_tensors"`
	Initializers     int               `json:"initializers"`
	Nodes            int               `json:"nodes"`
	Ops              []opCount         `json:"ops"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	// NoGradient lists operator types with float outputs that robust's
	// autodiff has no rule for; Trainable says whether a training graph
	// can be built, and NotTrainable why not.
	NoGradient   []string `json:"no_gradient_rule"`
	Trainable    bool     `json:"trainable"`
	NotTrainable string   `json:"not_trainable,omitempty"`
	Problems     []string `json:"problems,omitempty"`
}

type valueInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type opCount struct {
	Op    string `json:"op"`
	Count int    `json:"count"`
}

// Run loads the model and prints its description.
func (c *InfoCmd) Run(g *Globals) error {
	m, err := onnxgraph.Load(c.Model)
	if err != nil {
		return usageError{err}
	}
	if c.Diff != "" {
		base, err := onnxgraph.Load(c.Diff)
		if err != nil {
			return usageError{err}
		}
		d := onnxgraph.Diff(base, m)
		if c.JSON {
			return writeJSON(g.stdout, newDiffInfo(c.Diff, c.Model, d))
		}
		return printDiff(g.stdout, c.Diff, c.Model, d)
	}
	info := describe(c.Model, m)
	if c.JSON {
		return writeJSON(g.stdout, info)
	}
	info.print(g.stdout)
	return nil
}

// describe gathers a model's description; problems (a graph that does not
// validate, shapes that do not fit) are reported, not fatal.
func describe(path string, m *onnxgraph.Model) *modelInfo {
	info := &modelInfo{Schema: infoSchema, Path: path, IRVersion: m.IRVersion, Opsets: map[string]int{}, Nodes: len(m.Graph.Nodes)}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		info.Opsets[d] = int(o.Version)
	}
	info.Producer = strings.TrimSpace(m.ProducerName + " " + m.ProducerVersion)
	if err := m.Validate(); err != nil {
		info.Problems = append(info.Problems, err.Error())
	}
	types, err := onnxgraph.InferShapes(m)
	if err != nil {
		info.Problems = append(info.Problems, err.Error())
	}
	typeOf := func(v *onnxgraph.ValueInfo) string {
		if v.Type != nil && v.Type.Shape != nil {
			return v.Type.String()
		}
		if t := types[v.Name]; t != nil {
			return t.String()
		}
		if v.Type != nil {
			return v.Type.String()
		}
		return "(not a tensor)"
	}
	for _, v := range m.Graph.RealInputs() {
		info.Inputs = append(info.Inputs, valueInfo{v.Name, typeOf(v)})
	}
	for _, v := range m.Graph.Outputs {
		info.Outputs = append(info.Outputs, valueInfo{v.Name, typeOf(v)})
	}
	params := onnxgraph.TrainableParams(m.Graph)
	for _, t := range m.Graph.Initializers {
		info.Initializers++
		switch {
		case slices.Contains(params, t.Name):
			info.Parameters += t.NumElements()
			info.ParameterTensors++
			info.ParameterBytes += int64(len(t.Raw))
		case t.DataType.IsFloat():
			info.Buffers += t.NumElements()
			info.BufferTensors++
		}
	}
	info.NoGradient = missingGradientRules(m, types)
	if _, err := harden.CheckTrainable(m); err != nil {
		info.NotTrainable = err.Error()
	} else {
		info.Trainable = true
	}
	counts := map[string]int{}
	for _, n := range m.Graph.Nodes {
		op := n.OpType
		if n.Domain != "" && n.Domain != "ai.onnx" {
			op = n.Domain + "." + op
		}
		counts[op]++
	}
	for op, n := range counts {
		info.Ops = append(info.Ops, opCount{op, n})
	}
	slices.SortFunc(info.Ops, func(a, b opCount) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Op, b.Op))
	})
	if len(m.Metadata) > 0 {
		info.Metadata = map[string]string{}
		for _, e := range m.Metadata {
			info.Metadata[e.Key] = e.Value
		}
	}
	return info
}

func (info *modelInfo) print(w io.Writer) {
	fmt.Fprintf(w, "%s\n", info.Path)
	var opsets []string
	for d, v := range info.Opsets {
		opsets = append(opsets, fmt.Sprintf("%s %d", d, v))
	}
	slices.Sort(opsets)
	fmt.Fprintf(w, "  IR version %d, opset %s", info.IRVersion, strings.Join(opsets, ", "))
	if info.Producer != "" {
		fmt.Fprintf(w, ", producer %s", info.Producer)
	}
	fmt.Fprintln(w)
	printValues(w, "inputs", info.Inputs)
	printValues(w, "outputs", info.Outputs)
	fmt.Fprintf(w, "  parameters: %s in %d tensors (%s), trained by robust; buffers: %s values in %d tensors (running statistics, constants); %d initializers\n",
		thousands(info.Parameters), info.ParameterTensors, byteSize(info.ParameterBytes), thousands(info.Buffers), info.BufferTensors, info.Initializers)
	ops := make([]string, len(info.Ops))
	for i, o := range info.Ops {
		ops[i] = fmt.Sprintf("%s×%d", o.Op, o.Count)
	}
	fmt.Fprintf(w, "  operators: %d nodes: %s\n", info.Nodes, strings.Join(ops, " "))
	if len(info.Metadata) > 0 {
		keys := make([]string, 0, len(info.Metadata))
		for k := range info.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(w, "  metadata:\n")
		for _, k := range keys {
			fmt.Fprintf(w, "    %s = %s\n", k, info.Metadata[k])
		}
	}
	if len(info.NoGradient) == 0 {
		fmt.Fprintf(w, "  gradients: every operator with float outputs has a gradient rule\n")
	} else {
		fmt.Fprintf(w, "  gradients: no rule for %s\n", strings.Join(info.NoGradient, ", "))
	}
	if info.Trainable {
		fmt.Fprintf(w, "  trainable: yes (%d parameter tensors)\n", info.ParameterTensors)
	} else {
		fmt.Fprintf(w, "  trainable: no: %s\n", info.NotTrainable)
	}
	for _, p := range info.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

func printValues(w io.Writer, title string, vs []valueInfo) {
	fmt.Fprintf(w, "  %s:\n", title)
	width := 0
	for _, v := range vs {
		width = max(width, len(v.Name))
	}
	for _, v := range vs {
		fmt.Fprintf(w, "    %-*s  %s\n", width, v.Name, v.Type)
	}
}

// thousands formats n with thousands separators: 1234567 → "1,234,567".
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// byteSize formats a byte count with a binary unit.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// diffInfo is robust info --diff --json.
type diffInfo struct {
	Schema       string        `json:"schema"`
	Base         string        `json:"base"`
	Model        string        `json:"model"`
	OnlyValues   bool          `json:"only_values_changed"`
	Structure    []string      `json:"structure"`
	Values       []valueChange `json:"values"`
	Unchanged    int           `json:"unchanged"`
	MetadataDiff []string      `json:"metadata"`
}

type valueChange struct {
	Name    string  `json:"name"`
	Count   int64   `json:"count"`
	Changed int64   `json:"changed"`
	MaxAbs  float64 `json:"max_abs_diff"`
}

func newDiffInfo(base, model string, d *onnxgraph.Difference) *diffInfo {
	out := &diffInfo{Schema: diffSchema, Base: base, Model: model, OnlyValues: d.OnlyValuesChanged(),
		Structure: nonNil(d.Structure), Values: []valueChange{}, Unchanged: d.Unchanged, MetadataDiff: nonNil(d.Metadata)}
	for _, v := range d.Values {
		out.Values = append(out.Values, valueChange{v.Name, v.Count, v.Changed, v.MaxAbs})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printDiff reports what changed from model a to model b.
func printDiff(w io.Writer, a, b string, d *onnxgraph.Difference) error {
	fmt.Fprintf(w, "%s → %s\n", a, b)
	if d.OnlyValuesChanged() {
		fmt.Fprintf(w, "  structure: identical (same opsets, inputs, outputs, nodes and attributes)\n")
	} else {
		fmt.Fprintf(w, "  structure: %d differences\n", len(d.Structure))
		for _, s := range d.Structure {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	fmt.Fprintf(w, "  initializers: %d changed, %d unchanged\n", len(d.Values), d.Unchanged)
	for _, v := range d.Values {
		fmt.Fprintf(w, "    %-40s %d of %d values changed, max |Δ| %.4g\n", v.Name, v.Changed, v.Count, v.MaxAbs)
	}
	for _, m := range d.Metadata {
		fmt.Fprintf(w, "  metadata %s\n", m)
	}
	return nil
}

// missingGradientRules lists the operator types of m that produce float
// values but have no gradient rule. Operators with only integer or boolean
// outputs (shape arithmetic, comparisons) need none.
func missingGradientRules(m *onnxgraph.Model, types map[string]*onnxgraph.TensorType) []string {
	rules := onnxgraph.GradientOps()
	var missing []string
	for _, n := range m.Graph.Nodes {
		if slices.Contains(rules, n.OpType) || slices.Contains(missing, n.OpType) || n.OpType == "Constant" ||
			onnxgraph.IsNonDifferentiable(n.OpType) {
			continue
		}
		for _, o := range n.Outputs {
			if t := types[o]; t == nil || t.Elem.IsFloat() || t.Elem == onnxgraph.Undefined {
				missing = append(missing, n.OpType)
				break
			}
		}
	}
	slices.Sort(missing)
	return missing
}

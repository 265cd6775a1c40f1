package evaluate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// Layout is the order of a model's image input dimensions.
type Layout int

// Layouts.
const (
	// LayoutAuto detects the layout from the input's shape.
	LayoutAuto Layout = iota
	NCHW
	NHWC
)

// ParseLayout parses "auto", "nchw" or "nhwc".
func ParseLayout(s string) (Layout, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return LayoutAuto, nil
	case "nchw":
		return NCHW, nil
	case "nhwc":
		return NHWC, nil
	}
	return 0, fmt.Errorf("unknown layout %q (want auto, nchw or nhwc)", s)
}

func (l Layout) String() string {
	switch l {
	case NCHW:
		return "NCHW"
	case NHWC:
		return "NHWC"
	}
	return "auto"
}

// Contract describes what a model expects of its input beyond robust's
// convention (NCHW float32 in [0,1], logits out), so that [Prepare] can
// adapt it.
type Contract struct {
	// Input and Logits name the image input and the logits output; empty
	// means the only ones.
	Input, Logits string
	// Scale is the top of the model's input range: 1 for [0,1] (the
	// default when 0), 255 for [0,255].
	Scale float32
	// Mean and Std, when set, normalise the scaled input inside the model:
	// (x·Scale − Mean)/Std per channel (one value applies to all).
	Mean, Std []float32
	// Layout is the model's input layout; LayoutAuto detects it.
	Layout Layout
	// LogSoftmax turns softmax outputs into log-probabilities (logits up to
	// a constant) instead of only warning about them.
	LogSoftmax bool
}

// ParseRange parses an input range "0,1" or "0,255" into a Contract scale.
func ParseRange(s string) (float32, error) {
	switch strings.ReplaceAll(s, " ", "") {
	case "0,1", "":
		return 1, nil
	case "0,255":
		return 255, nil
	}
	return 0, fmt.Errorf("unsupported input range %q (want 0,1 or 0,255)", s)
}

// ParseFloats parses a comma-separated list of numbers, as for --mean.
func ParseFloats(s string) ([]float32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float32
	for part := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", part)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// Flag is a finding of the evaluation: a warning about the model or the
// evaluation's trustworthiness, or a note on what was done.
type Flag struct {
	Code     string `json:"code"`
	Severity string `json:"severity"` // "warning" or "info"
	Message  string `json:"message"`
}

func warning(code, format string, args ...any) Flag {
	return Flag{Code: code, Severity: "warning", Message: fmt.Sprintf(format, args...)}
}

func info(code, format string, args ...any) Flag {
	return Flag{Code: code, Severity: "info", Message: fmt.Sprintf(format, args...)}
}

// Prepare returns a copy of m adapted to robust's input convention for
// images of the given shape (C, H, W): it prepends the scaling and
// normalisation of the contract and, for an NHWC model, a Transpose, so
// that the result takes NCHW input in [0,1]; it detects a softmax output
// and warns or, with LogSoftmax, takes logs. It fails with a clear error
// when the model's input cannot take the images.
func Prepare(m *onnxgraph.Model, c Contract, shape [3]int) (*onnxgraph.Model, []Flag, error) {
	if m == nil || m.Graph == nil {
		return nil, nil, errors.New("prepare model: no graph")
	}
	work := m.Clone()
	g := work.Graph
	input, logits, err := traingraph.ClassifierIO(g, c.Input, c.Logits)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare model: %w", err)
	}
	types, err := onnxgraph.InferShapes(work)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare model: %w", err)
	}
	in := types[input]
	if in == nil || in.Elem != onnxgraph.Float {
		return nil, nil, fmt.Errorf("prepare model: input %q is %v; robust feeds float32 images", input, in)
	}
	if len(in.Shape) != 4 {
		return nil, nil, fmt.Errorf("prepare model: input %q is %v (rank %d); robust feeds images [N, C, H, W] or [N, H, W, C] (data: %d×%d×%d)",
			input, in, len(in.Shape), shape[0], shape[1], shape[2])
	}
	layout, err := detectLayout(in.Shape, c.Layout, shape)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare model: input %q: %w", input, err)
	}
	var flags []Flag
	pre, err := newPreprocess(c, shape[0])
	if err != nil {
		return nil, nil, fmt.Errorf("prepare model: %w", err)
	}
	if layout == NHWC || pre.active() {
		if err := prependInput(work, input, layout, pre, shape); err != nil {
			return nil, nil, fmt.Errorf("prepare model: %w", err)
		}
		if layout == NHWC {
			flags = append(flags, info("nhwc-input", "the model takes NHWC input; robust transposes its NCHW images"))
		}
		if pre.active() {
			flags = append(flags, info("preprocessing", "prepended to the model: %s", pre))
		}
	}
	if f, err := handleSoftmax(work, logits, c.LogSoftmax); err != nil {
		return nil, nil, fmt.Errorf("prepare model: %w", err)
	} else if f != nil {
		flags = append(flags, *f)
	}
	if err := work.Validate(); err != nil {
		return nil, nil, fmt.Errorf("prepare model: %w", err)
	}
	return work, flags, nil
}

// detectLayout decides whether a rank-4 input shape takes images of the
// given C, H, W as NCHW or NHWC. Symbolic dimensions match anything; when
// both fit, NCHW wins.
func detectLayout(s onnxgraph.Shape, want Layout, chw [3]int) (Layout, error) {
	fits := func(dims ...int) bool {
		for i, d := range dims {
			if v := s[i+1]; v.Known() && int(v.Value) != d {
				return false
			}
		}
		return true
	}
	nchw, nhwc := fits(chw[0], chw[1], chw[2]), fits(chw[1], chw[2], chw[0])
	switch {
	case want == NCHW && nchw, want == NHWC && nhwc:
		return want, nil
	case want == LayoutAuto && nchw:
		return NCHW, nil
	case want == LayoutAuto && nhwc:
		return NHWC, nil
	}
	layout := "NCHW [N, C, H, W] or NHWC [N, H, W, C]"
	if want != LayoutAuto {
		layout = want.String()
	}
	return 0, fmt.Errorf("shape %v does not fit the data's %d×%d×%d (C×H×W) images as %s: check the data set or the model's channels and image size",
		s, chw[0], chw[1], chw[2], layout)
}

// preprocess is the affine map x·scale − mean, / std, per channel.
type preprocess struct {
	scale     float32
	mean, std []float32
}

func newPreprocess(c Contract, channels int) (preprocess, error) {
	p := preprocess{scale: c.Scale}
	if p.scale == 0 {
		p.scale = 1
	}
	if !(p.scale > 0) {
		return p, fmt.Errorf("input scale %v is not positive", p.scale)
	}
	var err error
	if p.mean, err = perChannel("mean", c.Mean, channels, 0); err != nil {
		return p, err
	}
	if p.std, err = perChannel("std", c.Std, channels, 1); err != nil {
		return p, err
	}
	for _, s := range p.std {
		if !(s > 0) {
			return p, fmt.Errorf("std %v is not positive", s)
		}
	}
	return p, nil
}

// perChannel expands one value to every channel and checks the count.
func perChannel(what string, v []float32, channels int, identity float32) ([]float32, error) {
	switch len(v) {
	case 0:
		return nil, nil
	case 1:
		out := make([]float32, channels)
		for i := range out {
			out[i] = v[0]
		}
		v = out
	case channels:
	default:
		return nil, fmt.Errorf("%d %s values for %d channels", len(v), what, channels)
	}
	for _, x := range v {
		if x != identity {
			return v, nil
		}
	}
	return nil, nil
}

func (p preprocess) active() bool { return p.scale != 1 || p.mean != nil || p.std != nil }

func (p preprocess) String() string {
	var parts []string
	if p.scale != 1 {
		parts = append(parts, fmt.Sprintf("×%g", p.scale))
	}
	if p.mean != nil {
		parts = append(parts, fmt.Sprintf("−mean %v", p.mean))
	}
	if p.std != nil {
		parts = append(parts, fmt.Sprintf("÷std %v", p.std))
	}
	return strings.Join(parts, ", ")
}

// prependInput makes the graph input take NCHW images in [0,1] and feeds
// the original consumers the scaled, normalised and possibly transposed
// images.
func prependInput(m *onnxgraph.Model, input string, layout Layout, p preprocess, chw [3]int) error {
	g := m.Graph
	b := onnxgraph.Extend(g, m.Opset(""))
	inner := b.Fresh(input + "_model")
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v == input {
				n.Inputs[i] = inner
			}
		}
	}
	for _, o := range g.Outputs {
		if o.Name == input { // an input passed through: keep it readable
			o.Name = inner
		}
	}
	c := int64(chw[0])
	v := input
	if p.scale != 1 {
		v = b.Mul(v, b.ScalarFloat(p.scale))
	}
	if p.mean != nil {
		v = b.Sub(v, b.ConstFloat([]int64{1, c, 1, 1}, p.mean...))
	}
	if p.std != nil {
		v = b.Div(v, b.ConstFloat([]int64{1, c, 1, 1}, p.std...))
	}
	if layout == NHWC {
		v = b.Transpose(v, 0, 2, 3, 1)
	}
	b.Graph.Nodes = append(b.Graph.Nodes, &onnxgraph.Node{Name: b.Fresh("Identity"), OpType: "Identity", Inputs: []string{v}, Outputs: []string{inner}})
	vi := g.Input(input)
	batch := onnxgraph.Sym("N")
	if vi.Type != nil && len(vi.Type.Shape) == 4 {
		batch = vi.Type.Shape[0]
	}
	*vi = *onnxgraph.NewValueInfo(input, onnxgraph.Float, onnxgraph.Shape{batch, onnxgraph.D(c), onnxgraph.D(int64(chw[1])), onnxgraph.D(int64(chw[2]))})
	return g.TopoSort()
}

// handleSoftmax finds a Softmax producing the output (through shape-only
// nodes) and warns, or replaces it with LogSoftmax.
func handleSoftmax(m *onnxgraph.Model, logits string, takeLog bool) (*Flag, error) {
	producers := m.Graph.Producers()
	v := logits
	for {
		n := producers[v]
		if n == nil {
			return nil, nil
		}
		switch n.OpType {
		case "Identity", "Flatten", "Reshape", "Squeeze":
			v = n.Input(0)
			continue
		case "Softmax":
			if !takeLog {
				f := warning("softmax-output", "the model's output %q comes from a Softmax: attacks on probabilities suffer vanishing gradients and robust accuracy is overestimated; rerun with --softmax log", logits)
				return &f, nil
			}
			n.OpType = "LogSoftmax"
			f := info("softmax-output", "the model's Softmax output was replaced by LogSoftmax (log-probabilities)")
			return &f, nil
		}
		return nil, nil
	}
}

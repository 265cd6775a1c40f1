package harden

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/train"
)

// Options control Prepare.
type Options struct {
	// Input and Logits name the image input and the logits output; empty
	// means the model's only input and output.
	Input, Logits string
	// Mean and Std, when set, say that the model expects normalised input:
	// training and evaluation feed images in [0,1] through (x−mean)/std
	// prepended to the graph. The exported model keeps expecting normalised
	// input, like the original.
	Mean, Std []float32
	// Freeze lists patterns of parameter names to keep fixed: shell globs
	// ("layer1.*", "conv?.weight") or, between slashes, regular expressions
	// ("/^features\./"). The parameters are onnxgraph.TrainableParams's,
	// which cannot tell a learned tensor from a buffer of the same role
	// (a constant attention mask added to logits, a fixed position
	// encoding): freezing such a tensor keeps it as exported.
	Freeze []string
}

// Plan is a model made trainable.
type Plan struct {
	// Original is the model as given; Export copies it.
	Original *onnxgraph.Model
	// Trainable is the model training runs on: images in [0,1] in,
	// logits out, every parameter an initializer.
	Trainable *onnxgraph.Model
	// Input and Logits are the names in Trainable (the same as the
	// original's).
	Input, Logits string
	// Params are the parameters to train, Frozen those kept fixed.
	Params, Frozen []string
	// Untied lists parameters that were read through Identity nodes from a
	// tensor shared with other values; each got its own copy.
	Untied []string
	// Notes are what Prepare changed, for reports.
	Notes []string
	// Graph is Trainable's training graph, built once by Prepare (which
	// proves that every operator on the way has a gradient rule) and
	// trained by Run.
	Graph *traingraph.TrainingGraph
}

// Errors Prepare and CheckTrainable return, wrapped with details.
var (
	ErrNoParameters = errors.New("harden: no trainable float parameters")
	ErrQuantized    = errors.New("harden: integer-quantised model")
	ErrNotTrainable = errors.New("harden: model cannot be trained")
)

// Prepare checks that m can be hardened and builds its trainable form.
func Prepare(m *onnxgraph.Model, opts Options) (_ *Plan, err error) {
	defer liberr.Prefix(&err, "harden")
	if err := m.Validate(); err != nil {
		return nil, err
	}
	for _, n := range m.Graph.Nodes {
		if onnxgraph.IsQuantizedOp(n.OpType) {
			return nil, fmt.Errorf("%w: %v; robust fine-tunes float models only (harden the float model, then quantise it again)", ErrQuantized, n)
		}
	}
	p := &Plan{Original: m, Trainable: m.Clone()}
	g := p.Trainable.Graph
	if p.Input, p.Logits, err = classifierIO(g, opts.Input, opts.Logits); err != nil {
		return nil, err
	}
	p.Trainable.Graph.ConstantsToInitializers()
	p.untie()
	if len(opts.Mean) > 0 || len(opts.Std) > 0 {
		if err := p.prependNormalisation(opts.Mean, opts.Std); err != nil {
			return nil, err
		}
	}
	all := onnxgraph.TrainableParams(g)
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no Conv, Gemm, MatMul or normalisation reads a float initializer, and no other operator reads one of more than one element where models keep learned tensors (see onnxgraph.TrainableParams)", ErrNoParameters)
	}
	freeze, err := compilePatterns(opts.Freeze)
	if err != nil {
		return nil, err
	}
	for _, name := range all {
		if freeze(name) {
			p.Frozen = append(p.Frozen, name)
		} else {
			p.Params = append(p.Params, name)
		}
	}
	if len(p.Params) == 0 {
		return nil, fmt.Errorf("%w: freezing %q matches all %d parameters", ErrNoParameters, opts.Freeze, len(all))
	}
	// Building the training graph proves, before any training, that every
	// operator on the way has a gradient rule; Run trains this graph.
	gopts := train.GraphOptions(p.Params)
	gopts.Input, gopts.Logits = p.Input, p.Logits
	if p.Graph, err = traingraph.BuildTrainingGraph(p.Trainable, gopts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTrainable, err)
	}
	return p, nil
}

// CheckTrainable reports whether any float model — not only a classifier —
// could be trained: it needs float parameters and a gradient rule for every
// operator between its inputs, parameters and first output. The gradient
// is taken of the sum of the first output, with respect to the parameters
// and the float inputs; an operator without a gradient rule is reported
// before a lack of parameters. It returns the parameters.
func CheckTrainable(m *onnxgraph.Model) (_ []string, err error) {
	defer liberr.Prefix(&err, "harden")
	for _, n := range m.Graph.Nodes {
		if onnxgraph.IsQuantizedOp(n.OpType) {
			return nil, fmt.Errorf("%w: %v", ErrQuantized, n)
		}
	}
	p := &Plan{Original: m, Trainable: m.Clone()}
	p.Trainable.Graph.ConstantsToInitializers()
	p.untie()
	g := p.Trainable.Graph
	params := onnxgraph.TrainableParams(g)
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: the model has no outputs", ErrNotTrainable)
	}
	wrt := slices.Clone(params)
	for _, in := range g.RealInputs() {
		if in.Type != nil && in.Type.Elem.IsFloat() {
			wrt = append(wrt, in.Name)
		}
	}
	if len(wrt) == 0 {
		return nil, fmt.Errorf("%w: no float parameters (onnxgraph.TrainableParams: Conv, Gemm, MatMul and normalisation weights, learned tensors) and no float inputs", ErrNoParameters)
	}
	b := onnxgraph.Extend(g, p.Trainable.Opset(""))
	loss := b.ReduceSum(g.Outputs[0].Name, nil, false)
	if _, err := onnxgraph.Gradients(p.Trainable, loss, wrt, &onnxgraph.GradOptions{NoOutputs: true}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTrainable, err)
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("%w (every operator is differentiable, but no Conv, Gemm, MatMul or normalisation reads a float initializer, nor any other operator one of more than one element where models keep learned tensors)", ErrNoParameters)
	}
	return params, nil
}

// classifierIO finds the image input, which must be a float [N,C,H,W]
// tensor, and the logits output.
func classifierIO(g *onnxgraph.Graph, input, logits string) (string, string, error) {
	input, logits, err := traingraph.ClassifierIO(g, input, logits)
	if err != nil {
		return "", "", err
	}
	if in := g.Input(input); in.Type == nil || !in.Type.Elem.IsFloat() || (in.Type.Shape != nil && len(in.Type.Shape) != 4) {
		return "", "", fmt.Errorf("input %q is %v; robust hardens image classifiers with a float [N,C,H,W] input", input, in.Type)
	}
	return input, logits, nil
}

// untie removes Identity nodes that read float initializers. Where the
// initializer has no other reader the Identity is bypassed (its readers
// read the initializer). Where other nodes read it too — the exporter
// merged equal tensors, such as all-ones BatchNormalization scales and
// running variances — the Identity's output gets its own copy, so that
// training one value does not change the others.
func (p *Plan) untie() {
	g := p.Trainable.Graph
	readers := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			readers[in]++
		}
	}
	rename := map[string]string{}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		src := g.Initializer(n.Input(0))
		if n.OpType != "Identity" || len(n.Outputs) != 1 || g.Output(n.Outputs[0]) != nil || src == nil || !src.DataType.IsFloat() {
			kept = append(kept, n)
			continue
		}
		if readers[src.Name] == 1 && g.Output(src.Name) == nil {
			rename[n.Outputs[0]] = src.Name
			continue
		}
		t := src.Clone()
		t.Name = n.Outputs[0]
		g.Initializers = append(g.Initializers, t)
		p.Untied = append(p.Untied, t.Name)
	}
	g.Nodes = kept
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if to, ok := rename[in]; ok {
				n.Inputs[i] = to
			}
		}
	}
	if len(p.Untied) > 0 {
		// A ViT-H/14 export merges 192 of them; the note names a few
		// (Plan.Untied has them all).
		const named = 4
		names := strings.Join(p.Untied[:min(named, len(p.Untied))], ", ")
		if len(p.Untied) > named {
			names += fmt.Sprintf(" and %d more", len(p.Untied)-named)
		}
		p.Notes = append(p.Notes, fmt.Sprintf("untied %d values the exporter had merged with equal tensors (%s)", len(p.Untied), names))
	}
}

// prependNormalisation makes the trainable model take images in [0,1]:
// a new input of the original name feeds (x − mean)/std into the graph.
func (p *Plan) prependNormalisation(mean, std []float32) error {
	g := p.Trainable.Graph
	in := g.Input(p.Input)
	channels := int64(-1)
	if in.Type.Shape != nil && in.Type.Shape[1].Known() {
		channels = in.Type.Shape[1].Value
	}
	if len(mean) != len(std) || len(mean) == 0 || (len(mean) != 1 && int64(len(mean)) != channels) {
		return fmt.Errorf("normalisation: %d mean and %d std values; give 1 or one per channel (%d)", len(mean), len(std), channels)
	}
	for _, s := range std {
		if s <= 0 {
			return fmt.Errorf("normalisation: std values must be positive, got %v", std)
		}
	}
	b := onnxgraph.Extend(g, p.Trainable.Opset(""))
	dims := []int64{1, int64(len(mean)), 1, 1}
	meanT, stdT := b.ConstFloat(dims, mean...), b.ConstFloat(dims, std...)
	inner, centred := b.Fresh(p.Input+"_normalised"), b.Fresh(p.Input+"_centred")
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v == p.Input {
				n.Inputs[i] = inner
			}
		}
	}
	g.Nodes = append([]*onnxgraph.Node{
		{Name: b.Fresh("normalise_sub"), OpType: "Sub", Inputs: []string{p.Input, meanT}, Outputs: []string{centred}},
		{Name: b.Fresh("normalise_div"), OpType: "Div", Inputs: []string{centred, stdT}, Outputs: []string{inner}},
	}, g.Nodes...)
	p.Notes = append(p.Notes, fmt.Sprintf("training feeds images in [0,1] through (x − %v)/%v; the exported model still expects normalised input", mean, std))
	return nil
}

// compilePatterns turns freeze patterns into a matcher.
func compilePatterns(patterns []string) (func(string) bool, error) {
	var globs []string
	var res []*regexp.Regexp
	for _, pat := range patterns {
		if len(pat) > 2 && strings.HasPrefix(pat, "/") && strings.HasSuffix(pat, "/") {
			re, err := regexp.Compile(pat[1 : len(pat)-1])
			if err != nil {
				return nil, fmt.Errorf("freeze pattern %q: %w", pat, err)
			}
			res = append(res, re)
			continue
		}
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("freeze pattern %q: %w", pat, err)
		}
		globs = append(globs, pat)
	}
	return func(name string) bool {
		for _, g := range globs {
			if ok, _ := path.Match(g, name); ok {
				return true
			}
		}
		for _, re := range res {
			if re.MatchString(name) {
				return true
			}
		}
		return false
	}, nil
}

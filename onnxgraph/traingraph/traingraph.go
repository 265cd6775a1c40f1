package traingraph

import (
	"fmt"
	"slices"
	"strings"

	"github.com/robust-go/robust/onnxgraph"
)

// TrainOptions configure [BuildTrainingGraph].
type TrainOptions struct {
	// Input is the image input (default: the model's only non-initializer
	// input) and Logits the classifier output [N, C] (default: the model's
	// only output).
	Input, Logits string
	// Loss is the loss head (default: mean softmax cross-entropy).
	Loss LossOptions
	// Params lists the trainable initializers. Empty means
	// [onnxgraph.TrainableParams]: every float initializer used as a
	// Conv/ConvTranspose weight or bias, a Gemm or MatMul operand, a
	// Batch-, Layer-, Instance- or GroupNormalization scale or bias, or a
	// PRelu slope.
	Params []string
	// UnbiasedRunningVar and MaxPool are passed to [onnxgraph.Gradients].
	UnbiasedRunningVar bool
	MaxPool            onnxgraph.MaxPoolGrad
}

// Param is a trainable parameter of a training graph.
type Param struct {
	Name string            // graph input fed with the current value
	Grad string            // graph output ∂loss/∂Name
	Init *onnxgraph.Tensor // the value the model held, to start training from
}

// BNStat is the running-statistics state of one BatchNormalization of a
// training graph: Mean and Var are graph inputs, NewMean and NewVar graph
// outputs holding the updated values (see [onnxgraph.Gradients] for the convention).
type BNStat struct {
	Mean, Var       string
	NewMean, NewVar string
	InitMean        *onnxgraph.Tensor
	InitVar         *onnxgraph.Tensor
}

// TrainingGraph is a model computing, in one run, the loss of a batch and
// the gradients of one training step.
//
// Inputs: Input, Labels, every Param.Name and every BNStat Mean and Var.
// Outputs, in this order: Loss, Logits, PerSample, each Param.Grad,
// InputGrad, then each BNStat NewMean and NewVar.
type TrainingGraph struct {
	Model     *onnxgraph.Model
	Input     string
	Labels    string
	Loss      string
	PerSample string
	Logits    string
	InputGrad string
	Params    []Param
	BNStats   []BNStat
}

// BuildTrainingGraph turns a classifier into a training graph: trainable
// initializers become graph inputs, BatchNormalization nodes use batch
// statistics (training_mode=1, lowered to standard operators) and output
// their updated running statistics, Dropout nodes are switched on, a loss
// head is appended and the gradients of the loss with respect to every
// parameter and the input are outputs. The model is not modified.
func BuildTrainingGraph(m *onnxgraph.Model, opts TrainOptions) (_ *TrainingGraph, err error) {
	defer prefixErr(&err)
	work := m.Clone()
	if err := onnxgraph.UpgradeOpset(work); err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	g := work.Graph
	input, logits, err := ClassifierIO(g, opts.Input, opts.Logits)
	if err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	tg := &TrainingGraph{Model: work, Input: input, Logits: logits}
	b := onnxgraph.Extend(g, work.Opset(""))
	for _, n := range g.Nodes {
		switch n.OpType {
		case "BatchNormalization":
			st, err := trainBatchNorm(g, b, n)
			if err != nil {
				return nil, fmt.Errorf("training graph: %v: %w", n, err)
			}
			tg.BNStats = append(tg.BNStats, *st)
		case "Dropout":
			for len(n.Inputs) < 2 {
				n.Inputs = append(n.Inputs, "")
			}
			n.Inputs = append(n.Inputs[:2], b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Bool, Dims: []int64{}, Raw: []byte{1}}))
		}
	}
	params := opts.Params
	if len(params) == 0 {
		params = onnxgraph.TrainableParams(g)
	}
	wrt := make([]string, 0, len(params)+1)
	for _, p := range params {
		init, err := promoteToInput(g, p)
		if err != nil {
			return nil, fmt.Errorf("training graph: parameter %w", err)
		}
		tg.Params = append(tg.Params, Param{Name: p, Init: init})
		wrt = append(wrt, p)
	}
	head, err := AddLoss(work, logits, opts.Loss)
	if err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	tg.Labels, tg.Loss, tg.PerSample = head.Labels, head.Loss, head.PerSample
	grads, err := onnxgraph.Gradients(work, tg.Loss, append(wrt, input),
		&onnxgraph.GradOptions{UnbiasedRunningVar: opts.UnbiasedRunningVar, MaxPool: opts.MaxPool})
	if err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	for i := range tg.Params {
		tg.Params[i].Grad = grads[i]
	}
	tg.InputGrad = grads[len(grads)-1]
	order := []string{tg.Loss, tg.Logits, tg.PerSample}
	order = append(order, grads...)
	for _, st := range tg.BNStats {
		order = append(order, st.NewMean, st.NewVar)
	}
	if err := orderOutputs(work, order); err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	if err := work.Validate(); err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	return tg, nil
}

// trainBatchNorm switches a BatchNormalization node to training mode: its
// running statistics become graph inputs and its extra outputs the updated
// statistics.
func trainBatchNorm(g *onnxgraph.Graph, b *onnxgraph.Builder, n *onnxgraph.Node) (*BNStat, error) {
	st := &BNStat{Mean: n.Input(3), Var: n.Input(4)}
	var err error
	if st.InitMean, err = promoteToInput(g, st.Mean); err != nil {
		return nil, fmt.Errorf("running mean %w", err)
	}
	if st.InitVar, err = promoteToInput(g, st.Var); err != nil {
		return nil, fmt.Errorf("running variance %w", err)
	}
	st.NewMean, st.NewVar = b.Fresh(st.Mean+"_updated"), b.Fresh(st.Var+"_updated")
	n.Outputs = []string{n.Outputs[0], st.NewMean, st.NewVar}
	n.SetAttr(onnxgraph.IntAttr("training_mode", 1))
	for _, v := range []struct {
		name string
		init *onnxgraph.Tensor
	}{{st.NewMean, st.InitMean}, {st.NewVar, st.InitVar}} {
		g.Outputs = append(g.Outputs, onnxgraph.NewValueInfo(v.name, v.init.DataType, v.init.Shape()))
	}
	return st, nil
}

// promoteToInput turns an initializer into a graph input of the same type
// and returns its value.
func promoteToInput(g *onnxgraph.Graph, name string) (*onnxgraph.Tensor, error) {
	t := g.Initializer(name)
	if t == nil {
		return nil, fmt.Errorf("%q is not an initializer", name)
	}
	if !t.DataType.IsFloat() {
		return nil, fmt.Errorf("%q has type %v, not floating-point", name, t.DataType)
	}
	g.RemoveInitializer(name)
	if g.Input(name) == nil {
		g.Inputs = append(g.Inputs, onnxgraph.NewValueInfo(name, t.DataType, t.Shape()))
	}
	return t, nil
}

// ClassifierIO resolves the image input and the logits output of a
// classifier: empty names mean the graph's only (non-initializer) input and
// its only output. Errors list the candidates.
func ClassifierIO(g *onnxgraph.Graph, input, logits string) (_, _ string, err error) {
	defer prefixErr(&err)
	ins := g.RealInputs()
	if input == "" {
		if len(ins) != 1 {
			return "", "", fmt.Errorf("the model has %d inputs (%s); name the image input", len(ins), valueNames(ins))
		}
		input = ins[0].Name
	} else if g.Input(input) == nil || g.Initializer(input) != nil {
		return "", "", fmt.Errorf("%q is not an input of the model (inputs: %s)", input, valueNames(ins))
	}
	if logits == "" {
		if len(g.Outputs) != 1 {
			return "", "", fmt.Errorf("the model has %d outputs (%s); name the logits", len(g.Outputs), valueNames(g.Outputs))
		}
		logits = g.Outputs[0].Name
	} else if g.Output(logits) == nil {
		return "", "", fmt.Errorf("%q is not an output of the model (outputs: %s)", logits, valueNames(g.Outputs))
	}
	return input, logits, nil
}

func valueNames(vs []*onnxgraph.ValueInfo) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// orderOutputs puts the named outputs first, in the given order, followed by
// the graph's other outputs.
func orderOutputs(m *onnxgraph.Model, order []string) error {
	g := m.Graph
	var out []*onnxgraph.ValueInfo
	for _, name := range order {
		v := g.Output(name)
		if v == nil {
			return fmt.Errorf("%q is not a graph output", name)
		}
		out = append(out, v)
	}
	for _, v := range g.Outputs {
		if !slices.Contains(order, v.Name) {
			out = append(out, v)
		}
	}
	g.Outputs = out
	return nil
}

// InputGradientOptions configure [BuildInputGradientGraph].
type InputGradientOptions struct {
	// Input and Logits are as in TrainOptions.
	Input, Logits string
	// Loss selects the loss head and its labels (and targets) input
	// names. Per-sample losses are always summed, so that each
	// sample's input gradient is that of its own loss.
	Loss LossOptions
	// MaxPool is passed to [onnxgraph.Gradients].
	MaxPool onnxgraph.MaxPoolGrad
}

// InputGradientGraph is a model for attacking a frozen classifier. Inputs:
// Input, Labels and, for the targeted losses (DLRTargeted, LogitDiff),
// Targets; outputs, in this order: Logits, Loss, PerSample, InputGrad.
type InputGradientGraph struct {
	Model     *onnxgraph.Model
	Input     string
	Labels    string
	Targets   string // "" unless the loss is targeted
	Logits    string
	Loss      string
	PerSample string
	InputGrad string
}

// BuildInputGradientGraph appends a loss head and the gradient of the
// summed loss with respect to the input to a frozen classifier: parameters
// stay initializers and BatchNormalization uses its running statistics. The
// model is not modified.
func BuildInputGradientGraph(m *onnxgraph.Model, opts InputGradientOptions) (_ *InputGradientGraph, err error) {
	defer prefixErr(&err)
	work := m.Clone()
	if err := onnxgraph.UpgradeOpset(work); err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	input, logits, err := ClassifierIO(work.Graph, opts.Input, opts.Logits)
	if err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	for _, n := range work.Graph.Nodes {
		if n.OpType == "BatchNormalization" && n.AttrInt("training_mode", 0) != 0 {
			n.DeleteAttrs("training_mode")
			n.Outputs = n.Outputs[:1]
		}
	}
	// The weights are fixed: fold inference BatchNormalization into its
	// Conv before differentiating, so the backward convolutions use the
	// folded weights and no BN gradient is built.
	onnxgraph.SpecializeFrozen(work)
	lo := opts.Loss
	lo.Sum = true
	head, err := AddLoss(work, logits, lo)
	if err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	grads, err := onnxgraph.Gradients(work, head.Loss, []string{input}, &onnxgraph.GradOptions{MaxPool: opts.MaxPool})
	if err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	ig := &InputGradientGraph{Model: work, Input: input, Labels: head.Labels, Targets: head.Targets, Logits: logits,
		Loss: head.Loss, PerSample: head.PerSample, InputGrad: grads[0]}
	if err := orderOutputs(work, []string{logits, head.Loss, head.PerSample, grads[0]}); err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	onnxgraph.SpecializeFrozen(work) // the backward graph's rewrites (Clip's gradient)
	if err := work.Validate(); err != nil {
		return nil, fmt.Errorf("input-gradient graph: %w", err)
	}
	return ig, nil
}

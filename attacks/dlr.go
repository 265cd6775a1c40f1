package attacks

import (
	"fmt"
	"math"

	"github.com/robust-go/robust/onnxgraph"
)

// Loss kinds beyond onnxgraph's cross-entropy and CW margin, for
// [Model.Grad]. Their values lie far from onnxgraph's so that they never
// clash with kinds it may add.
const (
	// DLR is the Difference of Logits Ratio loss of Croce & Hein (2020),
	// (max_{j≠y} z_j − z_y) / (z_π1 − z_π3), with z_π1 ≥ z_π2 ≥ … the sorted
	// logits: the CW margin made invariant to shifts and rescaling of the
	// logits. It needs 3 or more classes.
	DLR onnxgraph.LossKind = 1<<16 + iota
	// DLRTargeted is the targeted DLR loss (z_t − z_y) / (z_π1 − (z_π3 +
	// z_π4)/2) of AutoAttack's APGD-T, to be maximised. Grad takes the n
	// true labels followed by the n targets. It needs 4 or more classes.
	DLRTargeted
)

// dlrEpsilon keeps the DLR denominator positive, as in AutoAttack.
const dlrEpsilon = 1e-12

// LossName returns a short name of a loss kind: "ce", "cw", "dlr" or
// "dlr-t".
func LossName(k onnxgraph.LossKind) string {
	switch k {
	case DLR:
		return "dlr"
	case DLRTargeted:
		return "dlr-t"
	}
	return k.String()
}

// ParseLoss parses "ce", "cw", "dlr" or "dlr-t".
func ParseLoss(s string) (onnxgraph.LossKind, error) {
	switch s {
	case "dlr":
		return DLR, nil
	case "dlr-t":
		return DLRTargeted, nil
	}
	k, err := onnxgraph.ParseLossKind(s)
	if err != nil {
		return 0, fmt.Errorf("unknown loss %q (want ce, cw, dlr or dlr-t)", s)
	}
	return k, nil
}

// minClasses returns the number of classes a loss needs.
func minClasses(k onnxgraph.LossKind) int {
	switch k {
	case DLR:
		return 3
	case DLRTargeted:
		return 4
	}
	return 2
}

// dlrGraph is an input-gradient graph of the DLR loss.
type dlrGraph struct {
	model   *onnxgraph.Model
	inputs  []string // image, labels (, targets)
	outputs []string // logits, per-sample loss, input gradient
}

// buildDLRGraph appends the (targeted) DLR loss of each sample, their sum
// and the sum's gradient with respect to the input to a frozen classifier.
// The top logits are picked by ArgMax one-hot masks, so that ties get one
// element each, as in a sort, and the gradient flows to exactly one logit
// per term.
func buildDLRGraph(m *onnxgraph.Model, input, logits string, targeted bool, maxPool onnxgraph.MaxPoolGrad) (*dlrGraph, error) {
	kind := DLR
	if targeted {
		kind = DLRTargeted
	}
	work := m.Clone()
	if err := onnxgraph.UpgradeOpset(work); err != nil {
		return nil, fmt.Errorf("%s graph: %w", LossName(kind), err)
	}
	types, err := onnxgraph.InferShapes(work)
	if err != nil {
		return nil, fmt.Errorf("%s graph: %w", LossName(kind), err)
	}
	lt := types[logits]
	if lt == nil || len(lt.Shape) != 2 || !lt.Shape[1].Known() || lt.Elem != onnxgraph.Float {
		return nil, fmt.Errorf("%s graph: logits %q must be float [N, C] with a static C, got %v", LossName(kind), logits, lt)
	}
	classes := lt.Shape[1].Value
	if classes < int64(minClasses(kind)) {
		return nil, fmt.Errorf("%s graph: the loss needs at least %d classes, the model has %d", LossName(kind), minClasses(kind), classes)
	}
	for _, n := range work.Graph.Nodes {
		if n.OpType == "BatchNormalization" && n.AttrInt("training_mode", 0) != 0 {
			n.SetAttr(onnxgraph.IntAttr("training_mode", 0))
			n.Outputs = n.Outputs[:1]
		}
	}
	b := onnxgraph.Extend(work.Graph, work.Opset(""))
	batch := onnxgraph.Shape{lt.Shape[0]}
	labels, targets := b.Fresh("labels"), ""
	b.Input(labels, onnxgraph.Int64, batch)
	g := &dlrGraph{model: work, inputs: []string{input, labels}}
	if targeted {
		targets = b.Fresh("targets")
		b.Input(targets, onnxgraph.Int64, batch)
		g.inputs = append(g.inputs, targets)
	}
	d := &dlrBuilder{b: b, classes: classes}
	d.init()
	// The k largest logits, each removed from z before looking for the next.
	k := 3
	if targeted {
		k = 4
	}
	rest, top := logits, make([]string, 0, k)
	for range k {
		mask := d.argMaxMask(rest)
		top = append(top, d.pick(logits, mask))
		rest = b.Op("Where", []string{mask, d.lowest, rest})
	}
	yMask := d.classMask(labels)
	zy := d.pick(logits, yMask)
	var num, den string
	if targeted {
		num = b.Sub(d.pick(logits, d.classMask(targets)), zy)
		half := b.Mul(b.Add(top[2], top[3]), b.ScalarFloat(0.5))
		den = b.Sub(top[0], half)
	} else {
		other := d.pick(logits, d.argMaxMask(b.Op("Where", []string{yMask, d.lowest, logits})))
		num = b.Sub(other, zy)
		den = b.Sub(top[0], top[2])
	}
	per := b.Div(num, b.Add(den, b.ScalarFloat(dlrEpsilon)))
	loss := b.ReduceSum(per, []int64{0}, false)
	b.Output(per, onnxgraph.Float, batch)
	grads, err := onnxgraph.Gradients(work, loss, []string{input}, &onnxgraph.GradOptions{MaxPool: maxPool})
	if err != nil {
		return nil, fmt.Errorf("%s graph: %w", LossName(kind), err)
	}
	g.outputs = []string{logits, per, grads[0]}
	if err := work.Validate(); err != nil {
		return nil, fmt.Errorf("%s graph: %w", LossName(kind), err)
	}
	return g, nil
}

// dlrBuilder holds the constants of a DLR head.
type dlrBuilder struct {
	b       *onnxgraph.Builder
	classes int64
	ids     string // int64 [1, C]: 0 … C−1
	lowest  string // float scalar −MaxFloat32
	zero    string // float scalar 0
	axis1   string // int64 [1]: 1
}

func (d *dlrBuilder) init() {
	ids := make([]int64, d.classes)
	for i := range ids {
		ids[i] = int64(i)
	}
	d.ids = d.b.Initializer(onnxgraph.NewInt64Tensor("", []int64{1, d.classes}, ids))
	d.lowest = d.b.ScalarFloat(-math.MaxFloat32)
	d.zero = d.b.ScalarFloat(0)
	d.axis1 = d.b.ConstInt64(1)
}

// argMaxMask returns the bool [N, C] one-hot mask of each row's first
// largest value.
func (d *dlrBuilder) argMaxMask(v string) string {
	idx := d.b.Op("ArgMax", []string{v}, onnxgraph.IntAttr("axis", 1), onnxgraph.IntAttr("keepdims", 1))
	return d.b.Op("Equal", []string{idx, d.ids})
}

// classMask returns the bool [N, C] one-hot mask of int64 [N] labels.
func (d *dlrBuilder) classMask(labels string) string {
	return d.b.Op("Equal", []string{d.b.Op("Unsqueeze", []string{labels, d.axis1}), d.ids})
}

// pick returns the [N] values of v where the one-hot mask is set.
func (d *dlrBuilder) pick(v, mask string) string {
	return d.b.ReduceSum(d.b.Op("Where", []string{mask, v, d.zero}), []int64{1}, false)
}

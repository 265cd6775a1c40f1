package onnxgraph

import (
	"fmt"
	"math"
)

// LossKind selects a classification loss.
type LossKind int

const (
	// CrossEntropy is the softmax cross-entropy −log softmax(z)_y.
	CrossEntropy LossKind = iota
	// CWMargin is the Carlini–Wagner margin max_{j≠y} z_j − z_y, which
	// is positive exactly when the sample is misclassified.
	CWMargin
)

func (k LossKind) String() string {
	switch k {
	case CrossEntropy:
		return "ce"
	case CWMargin:
		return "cw"
	}
	return fmt.Sprintf("LossKind(%d)", int(k))
}

// ParseLossKind parses "ce" or "cw".
func ParseLossKind(s string) (LossKind, error) {
	switch s {
	case "ce":
		return CrossEntropy, nil
	case "cw":
		return CWMargin, nil
	}
	return 0, fmt.Errorf("unknown loss %q (want ce or cw)", s)
}

// LossOptions configure [AddLoss].
type LossOptions struct {
	Kind LossKind
	// Labels is the name of the int64 labels input [N] that AddLoss declares
	// (default "labels").
	Labels string
	// Sum sums the per-sample losses; by default they are averaged. Attacks
	// sum, so that each sample's input gradient is that of its own loss.
	Sum bool
}

// LossHead names the values of a loss head.
type LossHead struct {
	Labels    string // int64 [N] graph input
	PerSample string // [N] loss of each sample
	Loss      string // scalar: mean or sum of PerSample
}

// AddLoss appends a loss head to a classifier whose value logits has shape
// [N, C]: it declares the labels input, computes the per-sample losses and
// their mean (or sum) and declares both as graph outputs. The model must
// import opset 13 or later (see [UpgradeOpset]).
func AddLoss(m *Model, logits string, opts LossOptions) (*LossHead, error) {
	if m.Opset("") < 13 {
		return nil, fmt.Errorf("add loss: model imports opset %d; upgrade it to 13 or later first", m.Opset(""))
	}
	types, err := InferShapes(m)
	if err != nil {
		return nil, fmt.Errorf("add loss: %w", err)
	}
	lt := types[logits]
	if lt == nil || len(lt.Shape) != 2 || !lt.Shape[1].Known() || (lt.Elem != Float && lt.Elem != Double) {
		return nil, fmt.Errorf("add loss: logits %q must be float or double [N, C] with a static C, got %v", logits, lt)
	}
	b := Extend(m.Graph, m.Opset(""))
	h := &LossHead{Labels: opts.Labels}
	if h.Labels == "" {
		h.Labels = "labels"
	}
	if !b.Reserve(h.Labels) {
		return nil, fmt.Errorf("add loss: name %q is already used in the graph", h.Labels)
	}
	b.Input(h.Labels, Int64, Shape{lt.Shape[0]})
	lh := &lossBuilder{b: b, elem: lt.Elem}
	switch opts.Kind {
	case CrossEntropy:
		h.PerSample = b.Op("SoftmaxCrossEntropyLoss", []string{logits, h.Labels}, StringAttr("reduction", "none"))
	case CWMargin:
		h.PerSample = lh.cwMargin(logits, h.Labels, lt.Shape[1].Value)
	default:
		return nil, fmt.Errorf("add loss: unknown loss kind %v", opts.Kind)
	}
	reduce := "ReduceMean"
	if opts.Sum {
		reduce = "ReduceSum"
	}
	h.Loss = lh.reduceAll(reduce, h.PerSample)
	b.Output(h.PerSample, lt.Elem, Shape{lt.Shape[0]})
	b.Output(h.Loss, lt.Elem, Shape{})
	return h, nil
}

type lossBuilder struct {
	b    *Builder
	elem DataType
}

// scalar returns a rank-0 constant of the logits' type.
func (l *lossBuilder) scalar(v float64) string {
	if l.elem == Double {
		return l.b.Initializer(NewDoubleTensor("", []int64{}, []float64{v}))
	}
	return l.b.Initializer(NewFloatTensor("", []int64{}, []float32{float32(v)}))
}

// reduceAll reduces a [N] vector to a scalar.
func (l *lossBuilder) reduceAll(op, v string) string {
	if op == "ReduceSum" {
		return l.b.ReduceSum(v, []int64{0}, false)
	}
	return l.b.ReduceMean(v, []int64{0}, false)
}

// cwMargin returns max_{j≠y} z_j − z_y for each row of z.
func (l *lossBuilder) cwMargin(z, labels string, classes int64) string {
	b := l.b
	ids := make([]int64, classes)
	for i := range ids {
		ids[i] = int64(i)
	}
	classIDs := b.Initializer(NewInt64Tensor("", []int64{1, classes}, ids))
	isLabel := b.Op("Equal", []string{b.Op("Unsqueeze", []string{labels, b.ConstInt64(1)}), classIDs})
	zy := b.ReduceSum(b.Op("Where", []string{isLabel, z, l.scalar(0)}), []int64{1}, false)
	lowest := l.scalar(-math.MaxFloat32)
	others := b.Op("Where", []string{isLabel, lowest, z})
	var best string
	if b.Opset >= 18 {
		best = b.Op("ReduceMax", []string{others, b.ConstInt64(1)}, IntAttr("keepdims", 0))
	} else {
		best = b.Op("ReduceMax", []string{others}, IntsAttr("axes", 1), IntAttr("keepdims", 0))
	}
	return b.Sub(best, zy)
}

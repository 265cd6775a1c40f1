package traingraph

import (
	"fmt"

	"github.com/robust-go/robust/onnxgraph"
)

// HeadFunc is a loss-head hook: it builds, with l, the [N] per-sample
// losses of the logits [N, C] against the int64 [N] labels input (and, for
// a targeted head, the targets input; "" otherwise) and returns their
// name. [AddLoss] declares the inputs and reduces the losses; the losses
// themselves belong to their users: training's cross-entropy
// ([CrossEntropyHead]) is here, package attacks' CW margin, DLR, targeted
// DLR and logit difference are built there with [LossBuilder]'s helpers.
type HeadFunc func(l *LossBuilder, logits, labels, targets string) string

// LossOptions configure [AddLoss].
type LossOptions struct {
	// Head builds the per-sample losses (default [CrossEntropyHead]).
	Head HeadFunc
	// Targeted makes AddLoss declare a targets input for the head.
	Targeted bool
	// MinClasses is the number of classes the head needs (default 2).
	MinClasses int
	// Labels is the name of the int64 labels input [N] that AddLoss declares
	// (default "labels").
	Labels string
	// Targets names the int64 targets input [N] that AddLoss declares for a
	// targeted head (default "targets").
	Targets string
	// Sum sums the per-sample losses; by default they are averaged. Attacks
	// sum, so that each sample's input gradient is that of its own loss.
	Sum bool
}

// LossHead names the values of a loss head.
type LossHead struct {
	Labels    string // int64 [N] graph input
	Targets   string // int64 [N] graph input of a targeted head; "" for the others
	PerSample string // [N] loss of each sample
	Loss      string // scalar: mean or sum of PerSample
}

// AddLoss appends a loss head to a classifier whose value logits has shape
// [N, C]: it declares the labels input, computes the per-sample losses and
// their mean (or sum) and declares both as graph outputs. The model must
// import opset 13 or later (see [onnxgraph.UpgradeOpset]).
func AddLoss(m *onnxgraph.Model, logits string, opts LossOptions) (_ *LossHead, err error) {
	defer prefixErr(&err)
	if m.Opset("") < 13 {
		return nil, fmt.Errorf("add loss: model imports opset %d; upgrade it to 13 or later first", m.Opset(""))
	}
	types, err := onnxgraph.InferShapes(m)
	if err != nil {
		return nil, fmt.Errorf("add loss: %w", err)
	}
	lt := types[logits]
	if lt == nil || len(lt.Shape) != 2 || !lt.Shape[1].Known() || (lt.Elem != onnxgraph.Float && lt.Elem != onnxgraph.Double) {
		return nil, fmt.Errorf("add loss: logits %q must be float or double [N, C] with a static C, got %v", logits, lt)
	}
	classes := lt.Shape[1].Value
	if need := max(opts.MinClasses, 2); classes < int64(need) {
		return nil, fmt.Errorf("add loss: the loss needs at least %d classes, the model has %d", need, classes)
	}
	head := opts.Head
	if head == nil {
		head = CrossEntropyHead
	}
	b := onnxgraph.Extend(m.Graph, m.Opset(""))
	h := &LossHead{}
	declare := func(name, def string) (string, error) {
		if name == "" {
			name = def
		}
		if !b.Reserve(name) {
			return "", fmt.Errorf("add loss: name %q is already used in the graph", name)
		}
		b.Input(name, onnxgraph.Int64, onnxgraph.Shape{lt.Shape[0]})
		return name, nil
	}
	if h.Labels, err = declare(opts.Labels, "labels"); err != nil {
		return nil, err
	}
	if opts.Targeted {
		if h.Targets, err = declare(opts.Targets, "targets"); err != nil {
			return nil, err
		}
	}
	lh := &LossBuilder{Builder: b, Elem: lt.Elem, Classes: classes}
	h.PerSample = head(lh, logits, h.Labels, h.Targets)
	reduce := "ReduceMean"
	if opts.Sum {
		reduce = "ReduceSum"
	}
	h.Loss = lh.reduceAll(reduce, h.PerSample)
	b.Output(h.PerSample, lt.Elem, onnxgraph.Shape{lt.Shape[0]})
	b.Output(h.Loss, lt.Elem, onnxgraph.Shape{})
	return h, nil
}

// LossBuilder builds loss heads: a graph builder with the logits' element
// type and number of classes, and the helpers the heads share.
type LossBuilder struct {
	*onnxgraph.Builder
	Elem    onnxgraph.DataType
	Classes int64
	ids     string // int64 [1, C]: 0 … C−1
}

// Scalar returns a rank-0 constant of the logits' type.
func (l *LossBuilder) Scalar(v float64) string {
	if l.Elem == onnxgraph.Double {
		return l.Initializer(onnxgraph.NewDoubleTensor("", []int64{}, []float64{v}))
	}
	return l.Initializer(onnxgraph.NewFloatTensor("", []int64{}, []float32{float32(v)}))
}

// reduceAll reduces a [N] vector to a scalar.
func (l *LossBuilder) reduceAll(op, v string) string {
	if op == "ReduceSum" {
		return l.ReduceSum(v, []int64{0}, false)
	}
	return l.ReduceMean(v, []int64{0}, false)
}

// classIDs returns the int64 [1, C] constant 0 … C−1.
func (l *LossBuilder) classIDs() string {
	if l.ids == "" {
		ids := make([]int64, l.Classes)
		for i := range ids {
			ids[i] = int64(i)
		}
		l.ids = l.Initializer(onnxgraph.NewInt64Tensor("", []int64{1, l.Classes}, ids))
	}
	return l.ids
}

// ClassMask returns the bool [N, C] one-hot mask of int64 [N] labels.
func (l *LossBuilder) ClassMask(labels string) string {
	return l.Op("Equal", []string{l.Op("Unsqueeze", []string{labels, l.ConstInt64(1)}), l.classIDs()})
}

// ArgMaxMask returns the bool [N, C] one-hot mask of each row's first
// largest value.
func (l *LossBuilder) ArgMaxMask(v string) string {
	idx := l.Op("ArgMax", []string{v}, onnxgraph.IntAttr("axis", 1), onnxgraph.IntAttr("keepdims", 1))
	return l.Op("Equal", []string{idx, l.classIDs()})
}

// Pick returns the [N] values of v where the one-hot mask is set.
func (l *LossBuilder) Pick(v, mask string) string {
	return l.ReduceSum(l.Op("Where", []string{mask, v, l.Scalar(0)}), []int64{1}, false)
}

// CrossEntropyHead is the softmax cross-entropy −log softmax(z)_y.
func CrossEntropyHead(l *LossBuilder, z, labels, _ string) string {
	return l.Op("SoftmaxCrossEntropyLoss", []string{z, labels}, onnxgraph.StringAttr("reduction", "none"))
}

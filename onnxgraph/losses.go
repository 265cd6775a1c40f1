package onnxgraph

import (
	"fmt"
	"math"
)

// HeadFunc is a loss-head hook: it builds, with l, the [N] per-sample
// losses of the logits [N, C] against the int64 [N] labels input (and, for
// a targeted head, the targets input; "" otherwise) and returns their
// name. [AddLoss] declares the inputs and reduces the losses; the losses
// themselves belong to their users (training's cross-entropy, package
// attacks' CW margin, DLR, targeted DLR and logit difference), which
// build them from the heads below or their own.
type HeadFunc func(l *LossBuilder, logits, labels, targets string) string

// dlrEpsilon keeps the DLR denominator positive, as in AutoAttack.
const dlrEpsilon = 1e-12

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
	classes := lt.Shape[1].Value
	if need := max(opts.MinClasses, 2); classes < int64(need) {
		return nil, fmt.Errorf("add loss: the loss needs at least %d classes, the model has %d", need, classes)
	}
	head := opts.Head
	if head == nil {
		head = CrossEntropyHead
	}
	b := Extend(m.Graph, m.Opset(""))
	h := &LossHead{}
	declare := func(name, def string) (string, error) {
		if name == "" {
			name = def
		}
		if !b.Reserve(name) {
			return "", fmt.Errorf("add loss: name %q is already used in the graph", name)
		}
		b.Input(name, Int64, Shape{lt.Shape[0]})
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
	b.Output(h.PerSample, lt.Elem, Shape{lt.Shape[0]})
	b.Output(h.Loss, lt.Elem, Shape{})
	return h, nil
}

// LossBuilder builds loss heads: a graph builder with the logits' element
// type and number of classes, and the helpers the heads share.
type LossBuilder struct {
	*Builder
	Elem    DataType
	Classes int64
	ids     string // int64 [1, C]: 0 … C−1
}

// Scalar returns a rank-0 constant of the logits' type.
func (l *LossBuilder) Scalar(v float64) string {
	if l.Elem == Double {
		return l.Initializer(NewDoubleTensor("", []int64{}, []float64{v}))
	}
	return l.Initializer(NewFloatTensor("", []int64{}, []float32{float32(v)}))
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
		l.ids = l.Initializer(NewInt64Tensor("", []int64{1, l.Classes}, ids))
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
	idx := l.Op("ArgMax", []string{v}, IntAttr("axis", 1), IntAttr("keepdims", 1))
	return l.Op("Equal", []string{idx, l.classIDs()})
}

// Pick returns the [N] values of v where the one-hot mask is set.
func (l *LossBuilder) Pick(v, mask string) string {
	return l.ReduceSum(l.Op("Where", []string{mask, v, l.Scalar(0)}), []int64{1}, false)
}

// CrossEntropyHead is the softmax cross-entropy −log softmax(z)_y.
func CrossEntropyHead(l *LossBuilder, z, labels, _ string) string {
	return l.Op("SoftmaxCrossEntropyLoss", []string{z, labels}, StringAttr("reduction", "none"))
}

// CWMarginHead is the Carlini–Wagner margin max_{j≠y} z_j − z_y, positive
// exactly when the sample is misclassified.
func CWMarginHead(l *LossBuilder, z, labels, _ string) string {
	isLabel := l.ClassMask(labels)
	others := l.Op("Where", []string{isLabel, l.Scalar(-math.MaxFloat32), z})
	var best string
	if l.Opset >= 18 {
		best = l.Op("ReduceMax", []string{others, l.ConstInt64(1)}, IntAttr("keepdims", 0))
	} else {
		best = l.Op("ReduceMax", []string{others}, IntsAttr("axes", 1), IntAttr("keepdims", 0))
	}
	return l.Sub(best, l.Pick(z, isLabel))
}

// DLRHead is the Difference of Logits Ratio of Croce & Hein (2020),
// (max_{j≠y} z_j − z_y) / (z_π1 − z_π3), z_π1 ≥ z_π2 ≥ … the sorted logits
// (3 or more classes).
func DLRHead(l *LossBuilder, z, labels, _ string) string { return l.dlr(z, labels, "") }

// TargetedDLRHead is APGD-T's targeted DLR (z_t − z_y) / (z_π1 − (z_π3 +
// z_π4)/2), to be maximised (4 or more classes; targeted).
func TargetedDLRHead(l *LossBuilder, z, labels, targets string) string {
	return l.dlr(z, labels, targets)
}

// LogitDiffHead is z_t − z_y, whose zero set is the decision boundary
// between the label and the target that FAB linearises (targeted).
func LogitDiffHead(l *LossBuilder, z, labels, targets string) string {
	return l.Sub(l.Pick(z, l.ClassMask(targets)), l.Pick(z, l.ClassMask(labels)))
}

// dlr returns the DLR loss of each row of z, targeted when targets is not
// empty. The top logits are picked by ArgMax one-hot masks, so that ties
// get one element each, as in a sort, and the gradient flows to exactly
// one logit per term.
func (l *LossBuilder) dlr(z, labels, targets string) string {
	b := l.Builder
	lowest := l.Scalar(-math.MaxFloat32)
	k := 3 // the k largest logits, each removed from z before looking for the next
	if targets != "" {
		k = 4
	}
	rest, top := z, make([]string, 0, k)
	for range k {
		mask := l.ArgMaxMask(rest)
		top = append(top, l.Pick(z, mask))
		rest = b.Op("Where", []string{mask, lowest, rest})
	}
	yMask := l.ClassMask(labels)
	zy := l.Pick(z, yMask)
	var num, den string
	if targets != "" {
		num = b.Sub(l.Pick(z, l.ClassMask(targets)), zy)
		den = b.Sub(top[0], b.Mul(b.Add(top[2], top[3]), l.Scalar(0.5)))
	} else {
		other := l.Pick(z, l.ArgMaxMask(b.Op("Where", []string{yMask, lowest, z})))
		num = b.Sub(other, zy)
		den = b.Sub(top[0], top[2])
	}
	return b.Div(num, b.Add(den, l.Scalar(dlrEpsilon)))
}

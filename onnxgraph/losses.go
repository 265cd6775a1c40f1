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
	// DLR is the Difference of Logits Ratio loss of Croce & Hein (2020),
	// (max_{j≠y} z_j − z_y) / (z_π1 − z_π3), with z_π1 ≥ z_π2 ≥ … the
	// sorted logits: the CW margin made invariant to shifts and rescaling
	// of the logits. It needs 3 or more classes.
	DLR
	// DLRTargeted is the targeted DLR loss (z_t − z_y) / (z_π1 − (z_π3 +
	// z_π4)/2) of AutoAttack's APGD-T, to be maximised; its head takes the
	// targets t as a second int64 input. It needs 4 or more classes.
	DLRTargeted
	// LogitDiff is the logit difference z_t − z_y, whose zero set is the
	// decision boundary between the label and the target t that FAB
	// linearises; its head takes the targets as a second int64 input.
	LogitDiff
)

var lossNames = [...]string{CrossEntropy: "ce", CWMargin: "cw", DLR: "dlr", DLRTargeted: "dlr-t", LogitDiff: "diff"}

func (k LossKind) String() string {
	if k >= 0 && int(k) < len(lossNames) {
		return lossNames[k]
	}
	return fmt.Sprintf("LossKind(%d)", int(k))
}

// MinClasses returns the number of classes the loss needs.
func (k LossKind) MinClasses() int {
	switch k {
	case DLR:
		return 3
	case DLRTargeted:
		return 4
	}
	return 2
}

// Targeted reports whether the loss head takes a targets input.
func (k LossKind) Targeted() bool { return k == DLRTargeted || k == LogitDiff }

// ParseLossKind parses "ce", "cw", "dlr", "dlr-t" or "diff".
func ParseLossKind(s string) (LossKind, error) {
	for k, name := range lossNames {
		if s == name {
			return LossKind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown loss %q (want ce, cw, dlr, dlr-t or diff)", s)
}

// dlrEpsilon keeps the DLR denominator positive, as in AutoAttack.
const dlrEpsilon = 1e-12

// LossOptions configure [AddLoss].
type LossOptions struct {
	Kind LossKind
	// Labels is the name of the int64 labels input [N] that AddLoss declares
	// (default "labels").
	Labels string
	// Targets names the int64 targets input [N] that AddLoss declares for
	// DLRTargeted and LogitDiff (default "targets").
	Targets string
	// Sum sums the per-sample losses; by default they are averaged. Attacks
	// sum, so that each sample's input gradient is that of its own loss.
	Sum bool
}

// LossHead names the values of a loss head.
type LossHead struct {
	Labels    string // int64 [N] graph input
	Targets   string // int64 [N] graph input of DLRTargeted and LogitDiff; "" for the others
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
	if opts.Kind < 0 || int(opts.Kind) >= len(lossNames) {
		return nil, fmt.Errorf("add loss: unknown loss kind %v", opts.Kind)
	}
	if need := opts.Kind.MinClasses(); classes < int64(need) {
		return nil, fmt.Errorf("add loss: the %s loss needs at least %d classes, the model has %d", opts.Kind, need, classes)
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
	if opts.Kind.Targeted() {
		if h.Targets, err = declare(opts.Targets, "targets"); err != nil {
			return nil, err
		}
	}
	lh := &lossBuilder{b: b, elem: lt.Elem, classes: classes}
	switch opts.Kind {
	case CrossEntropy:
		h.PerSample = b.Op("SoftmaxCrossEntropyLoss", []string{logits, h.Labels}, StringAttr("reduction", "none"))
	case CWMargin:
		h.PerSample = lh.cwMargin(logits, h.Labels)
	case DLR, DLRTargeted:
		h.PerSample = lh.dlr(logits, h.Labels, h.Targets)
	case LogitDiff:
		h.PerSample = b.Sub(lh.pick(logits, lh.classMask(h.Targets)), lh.pick(logits, lh.classMask(h.Labels)))
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
	b       *Builder
	elem    DataType
	classes int64
	ids     string // int64 [1, C]: 0 … C−1
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

// classIDs returns the int64 [1, C] constant 0 … C−1.
func (l *lossBuilder) classIDs() string {
	if l.ids == "" {
		ids := make([]int64, l.classes)
		for i := range ids {
			ids[i] = int64(i)
		}
		l.ids = l.b.Initializer(NewInt64Tensor("", []int64{1, l.classes}, ids))
	}
	return l.ids
}

// classMask returns the bool [N, C] one-hot mask of int64 [N] labels.
func (l *lossBuilder) classMask(labels string) string {
	return l.b.Op("Equal", []string{l.b.Op("Unsqueeze", []string{labels, l.b.ConstInt64(1)}), l.classIDs()})
}

// argMaxMask returns the bool [N, C] one-hot mask of each row's first
// largest value.
func (l *lossBuilder) argMaxMask(v string) string {
	idx := l.b.Op("ArgMax", []string{v}, IntAttr("axis", 1), IntAttr("keepdims", 1))
	return l.b.Op("Equal", []string{idx, l.classIDs()})
}

// pick returns the [N] values of v where the one-hot mask is set.
func (l *lossBuilder) pick(v, mask string) string {
	return l.b.ReduceSum(l.b.Op("Where", []string{mask, v, l.scalar(0)}), []int64{1}, false)
}

// cwMargin returns max_{j≠y} z_j − z_y for each row of z.
func (l *lossBuilder) cwMargin(z, labels string) string {
	b := l.b
	isLabel := l.classMask(labels)
	others := b.Op("Where", []string{isLabel, l.scalar(-math.MaxFloat32), z})
	var best string
	if b.Opset >= 18 {
		best = b.Op("ReduceMax", []string{others, b.ConstInt64(1)}, IntAttr("keepdims", 0))
	} else {
		best = b.Op("ReduceMax", []string{others}, IntsAttr("axes", 1), IntAttr("keepdims", 0))
	}
	return b.Sub(best, l.pick(z, isLabel))
}

// dlr returns the DLR loss of each row of z, targeted when targets is not
// empty. The top logits are picked by ArgMax one-hot masks, so that ties
// get one element each, as in a sort, and the gradient flows to exactly
// one logit per term.
func (l *lossBuilder) dlr(z, labels, targets string) string {
	b := l.b
	lowest := l.scalar(-math.MaxFloat32)
	k := 3 // the k largest logits, each removed from z before looking for the next
	if targets != "" {
		k = 4
	}
	rest, top := z, make([]string, 0, k)
	for range k {
		mask := l.argMaxMask(rest)
		top = append(top, l.pick(z, mask))
		rest = b.Op("Where", []string{mask, lowest, rest})
	}
	yMask := l.classMask(labels)
	zy := l.pick(z, yMask)
	var num, den string
	if targets != "" {
		num = b.Sub(l.pick(z, l.classMask(targets)), zy)
		den = b.Sub(top[0], b.Mul(b.Add(top[2], top[3]), l.scalar(0.5)))
	} else {
		other := l.pick(z, l.argMaxMask(b.Op("Where", []string{yMask, lowest, z})))
		num = b.Sub(other, zy)
		den = b.Sub(top[0], top[2])
	}
	return b.Div(num, b.Add(den, l.scalar(dlrEpsilon)))
}

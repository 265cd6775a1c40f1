package attacks

import (
	"math"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// The loss heads of the attack losses: graph builders
// (traingraph.HeadFunc) of the per-sample losses that
// traingraph.BuildInputGradientGraph differentiates. The cross-entropy is
// traingraph.CrossEntropyHead.

// dlrEpsilon keeps the DLR denominator positive, as in AutoAttack.
const dlrEpsilon = 1e-12

// CWMarginHead is the Carlini–Wagner margin max_{j≠y} z_j − z_y, positive
// exactly when the sample is misclassified.
func CWMarginHead(l *traingraph.LossBuilder, z, labels, _ string) string {
	isLabel := l.ClassMask(labels)
	others := l.Op("Where", []string{isLabel, l.Scalar(-math.MaxFloat32), z})
	var best string
	if l.Opset >= 18 {
		best = l.Op("ReduceMax", []string{others, l.ConstInt64(1)}, onnxgraph.IntAttr("keepdims", 0))
	} else {
		best = l.Op("ReduceMax", []string{others}, onnxgraph.IntsAttr("axes", 1), onnxgraph.IntAttr("keepdims", 0))
	}
	return l.Sub(best, l.Pick(z, isLabel))
}

// DLRHead is the Difference of Logits Ratio of Croce & Hein (2020),
// (max_{j≠y} z_j − z_y) / (z_π1 − z_π3), z_π1 ≥ z_π2 ≥ … the sorted logits
// (3 or more classes).
func DLRHead(l *traingraph.LossBuilder, z, labels, _ string) string { return dlr(l, z, labels, "") }

// TargetedDLRHead is APGD-T's targeted DLR (z_t − z_y) / (z_π1 − (z_π3 +
// z_π4)/2), to be maximised (4 or more classes; targeted).
func TargetedDLRHead(l *traingraph.LossBuilder, z, labels, targets string) string {
	return dlr(l, z, labels, targets)
}

// LogitDiffHead is z_t − z_y, whose zero set is the decision boundary
// between the label and the target that FAB linearises (targeted).
func LogitDiffHead(l *traingraph.LossBuilder, z, labels, targets string) string {
	return l.Sub(l.Pick(z, l.ClassMask(targets)), l.Pick(z, l.ClassMask(labels)))
}

// dlr returns, with l, the DLR loss of each row of z, targeted when targets is not
// empty. The top logits are picked by ArgMax one-hot masks, so that ties
// get one element each, as in a sort, and the gradient flows to exactly
// one logit per term.
func dlr(l *traingraph.LossBuilder, z, labels, targets string) string {
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

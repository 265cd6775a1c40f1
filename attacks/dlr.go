package attacks

import "github.com/robust-go/robust/onnxgraph"

// The DLR losses of AutoAttack, for [Model.Grad] and [Budget.Loss]; see
// onnxgraph's loss kinds.
const (
	// DLR is the Difference of Logits Ratio loss (3 or more classes).
	DLR = onnxgraph.DLR
	// DLRTargeted is the targeted DLR loss of APGD-T (4 or more classes):
	// Grad takes the n true labels followed by the n targets.
	DLRTargeted = onnxgraph.DLRTargeted
)

// LossName returns a short name of a loss kind: "ce", "cw", "dlr" or
// "dlr-t".
func LossName(k onnxgraph.LossKind) string { return k.String() }

// ParseLoss parses "ce", "cw", "dlr" or "dlr-t".
func ParseLoss(s string) (onnxgraph.LossKind, error) { return onnxgraph.ParseLossKind(s) }

// minClasses returns the number of classes a loss needs.
func minClasses(k onnxgraph.LossKind) int { return k.MinClasses() }

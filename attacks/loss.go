package attacks

import (
	"fmt"

	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// Loss is a per-sample loss of the logits that gradient attacks follow.
type Loss int

// Losses.
const (
	// CE is the softmax cross-entropy −log softmax(z)_y.
	CE Loss = iota
	// CWMargin is the Carlini–Wagner margin max_{j≠y} z_j − z_y, positive
	// exactly when the sample is misclassified.
	CWMargin
	// DLR is the Difference of Logits Ratio of Croce & Hein (2020),
	// (max_{j≠y} z_j − z_y) / (z_π1 − z_π3) with z_π1 ≥ z_π2 ≥ … the sorted
	// logits: the CW margin made invariant to shifts and rescaling of the
	// logits (3 or more classes).
	DLR
	// DLRTargeted is APGD-T's targeted DLR (z_t − z_y) / (z_π1 − (z_π3 +
	// z_π4)/2), to be maximised (4 or more classes); it takes targets.
	DLRTargeted
	// LogitDiff is z_t − z_y, the difference of the target's and the
	// label's logits whose zero set is the decision boundary FAB
	// linearises; it takes targets.
	LogitDiff
)

// losses maps each loss to its name, the traingraph hook that builds its
// graph, whether it takes targets and the classes it needs.
var losses = [...]struct {
	name       string
	head       traingraph.HeadFunc
	targeted   bool
	minClasses int
}{
	CE:          {"ce", traingraph.CrossEntropyHead, false, 2},
	CWMargin:    {"cw", CWMarginHead, false, 2},
	DLR:         {"dlr", DLRHead, false, 3},
	DLRTargeted: {"dlr-t", TargetedDLRHead, true, 4},
	LogitDiff:   {"diff", LogitDiffHead, true, 2},
}

func (l Loss) valid() bool { return l >= 0 && int(l) < len(losses) }

func (l Loss) String() string {
	if l.valid() {
		return losses[l].name
	}
	return fmt.Sprintf("Loss(%d)", int(l))
}

// MarshalText writes the loss's name, so that settings read "ce" in JSON.
func (l Loss) MarshalText() ([]byte, error) {
	if !l.valid() {
		return nil, fmt.Errorf("%w %d", ErrUnknownLoss, int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText parses a loss name.
func (l *Loss) UnmarshalText(b []byte) error {
	v, err := ParseLoss(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Targeted reports whether the loss takes a target class per sample.
func (l Loss) Targeted() bool { return l.valid() && losses[l].targeted }

// MinClasses returns the number of classes the loss needs.
func (l Loss) MinClasses() int {
	if l.valid() {
		return losses[l].minClasses
	}
	return 2
}

// ParseLoss parses "ce", "cw", "dlr", "dlr-t" or "diff".
func ParseLoss(s string) (Loss, error) {
	for l, e := range losses {
		if e.name == s {
			return Loss(l), nil
		}
	}
	return 0, fmt.Errorf("%w %q (want ce, cw, dlr, dlr-t or diff)", ErrUnknownLoss, s)
}

// objective is the loss an attack follows and its direction.
type objective struct {
	loss Loss
	// sign is +1 when the attack maximises the loss, −1 when it minimises
	// it (targeted CE and CW, computed with the target as the label).
	sign float32
	// onTargets passes the targets as Grad's labels (targeted CE and CW).
	onTargets bool
}

// objectiveOf returns what an attack with the loss follows: the loss
// itself when untargeted; with targets, the targeted DLR for DLR and the
// CE or CW loss towards the target, minimised.
func objectiveOf(loss Loss, targeted bool) objective {
	switch {
	case !targeted || loss.Targeted():
		return objective{loss: loss, sign: 1}
	case loss == DLR:
		return objective{loss: DLRTargeted, sign: 1}
	}
	return objective{loss: loss, sign: -1, onTargets: true}
}

package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Attack is an attack algorithm with its settings (steps, restarts, loss,
// …). The threat model is not part of it: Run takes it, so that one value
// serves every ε and norm. The attacks of this package are plain structs
// whose zero fields mean the published defaults; they are safe to copy
// and to use concurrently on different models.
type Attack interface {
	// Name identifies the attack in reports and gates ("apgd-ce").
	Name() string
	// String describes the attack with its settings ("APGD-CE 100 steps ×1").
	String() string
	// Supports returns an error wrapping [ErrUnsupported] when the attack
	// cannot run in the norm on a model with that many classes.
	Supports(norm Norm, classes int) error
	// Run attacks a batch: the clean images x (NCHW float32 in [0,1]) with
	// labels y, within the threat model t. A nil rng means a fixed seed.
	Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error)
}

// Effort overrides the effort settings of an attack; zero fields keep the
// attack's own.
type Effort struct {
	// Steps sets the iterations of iterative gradient attacks (PGD, APGD,
	// APGD-T, FAB).
	Steps int
	// Restarts sets the restarts of attacks whose restarts are random
	// starts (FGSM, PGD, APGD, FAB); targeted attacks that loop over target
	// classes (APGD-T, FAB-T) keep theirs.
	Restarts int
	// Queries sets the query budget of score-based attacks (Square).
	Queries int
}

// Tunable is an [Attack] whose effort settings can be overridden.
type Tunable interface {
	Attack
	WithEffort(Effort) Attack
}

// BlackBox is implemented by attacks that use only the model's outputs,
// never its gradients; an evaluation compares them with the white-box
// attacks to detect gradient masking.
type BlackBox interface {
	BlackBox() bool
}

// Expectation is implemented by attacks that average over a randomised
// model's randomness (expectation over transformation, EoT).
type Expectation interface {
	// EoTSamples returns the number of model evaluations averaged per step.
	EoTSamples() int
}

// UsesEoT reports whether a averages over several evaluations per step,
// as attacks on randomised models must.
func UsesEoT(a Attack) bool {
	e, ok := a.(Expectation)
	return ok && e.EoTSamples() > 1
}

// IsBlackBox reports whether a uses no gradients.
func IsBlackBox(a Attack) bool {
	b, ok := a.(BlackBox)
	return ok && b.BlackBox()
}

// Result is the outcome of an attack on a batch.
type Result struct {
	// Adv holds an adversarial image per sample: for a successful sample,
	// the example that fools the model; otherwise the point of the
	// attack's highest margin (the worst case found), or the clean image.
	// Every image lies in the threat model's ball and in [0,1].
	Adv []float32
	// Success tells which samples are misclassified (untargeted) or
	// classified as their target (targeted) at Adv.
	Success []bool
	// Queries counts the model evaluations (forward or forward-backward
	// passes) summed over samples.
	Queries int
	// Rejected counts the candidate adversarial examples that failed the
	// threat-model check and were not counted; it is 0 unless an attack is
	// wrong.
	Rejected int
}

// supportNorms returns an ErrUnsupported error unless norm is one of ok.
func supportNorms(name string, norm Norm, ok ...Norm) error {
	var names []string
	for _, n := range ok {
		if n == norm {
			return nil
		}
		names = append(names, n.Symbol())
	}
	if len(names) == 1 {
		return &UnsupportedError{Attack: name, Reason: "supports the " + names[0] + " norm only"}
	}
	last := len(names) - 1
	return &UnsupportedError{Attack: name, Reason: "supports the " + strings.Join(names[:last], ", ") + " and " + names[last] + " norms only"}
}

// supportClasses returns an ErrUnsupported error when a model has fewer
// classes than a loss needs.
func supportClasses(name string, loss Loss, classes int) error {
	if need := loss.MinClasses(); classes < need {
		return &UnsupportedError{Attack: name, Reason: fmt.Sprintf("needs %d or more classes", need)}
	}
	return nil
}

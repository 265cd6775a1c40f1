package attacks

import (
	"fmt"
	"math"
	"strings"

	"github.com/robust-go/robust/onnxgraph"
)

// Norm is the norm of a threat model's ball.
type Norm int

// Norms.
const (
	// Linf bounds every pixel's change by ε.
	Linf Norm = iota
	// L2 bounds the Euclidean length of the change by ε.
	L2
)

func (n Norm) String() string {
	switch n {
	case Linf:
		return "linf"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("Norm(%d)", int(n))
}

// Symbol returns the norm's mathematical name: "L∞" or "L2".
func (n Norm) Symbol() string {
	if n == L2 {
		return "L2"
	}
	return "L∞"
}

// ParseNorm parses "linf" (also "inf", "Linf", "l∞") or "l2".
func ParseNorm(s string) (Norm, error) {
	switch strings.ToLower(s) {
	case "linf", "inf", "l∞", "∞":
		return Linf, nil
	case "l2", "2":
		return L2, nil
	}
	return 0, fmt.Errorf("unknown norm %q (want linf or l2)", s)
}

// Budget is an attack's threat model and effort.
type Budget struct {
	// Norm and Eps define the ball around each clean image the adversarial
	// image must stay in (besides [0,1]).
	Norm Norm
	Eps  float32
	// Steps is the number of iterations of an iterative attack (PGD, APGD)
	// and the query budget of Square; FGSM ignores it.
	Steps int
	// StepSize is PGD's step α (default 2.5·ε/Steps) and FGSM's step
	// (default ε); APGD adapts its own step and Square ignores it.
	StepSize float32
	// Restarts is the number of runs from different random starts (0 means
	// one); each sample keeps its worst case.
	Restarts int
	// RandomStart starts PGD and FGSM at a uniformly random point of the
	// ball instead of the clean image. Restarts after the first always
	// start at random.
	RandomStart bool
	// Loss is the loss that gradient attacks maximise (cross-entropy, CW
	// margin or DLR; for targeted attacks, CE and CW are minimised towards
	// the target and DLR becomes the targeted DLR).
	Loss onnxgraph.LossKind
	// Targets holds a target class per sample for a targeted attack; nil
	// makes the attack untargeted.
	Targets []int64
	// NoEarlyStop keeps attacking samples after they break (their first
	// adversarial example is kept), so that every sample costs the full
	// budget: for timing against implementations without early stop.
	NoEarlyStop bool
}

// Result is the outcome of an attack on a batch.
type Result struct {
	// Adv holds an adversarial image per sample: for a successful sample,
	// the example that fools the model; otherwise the point of the
	// attack's highest margin (the worst case found), or the clean image.
	// Every image lies in the budget's ball and in [0,1].
	Adv []float32
	// Success tells which samples are misclassified (untargeted) or
	// classified as their target (targeted) at Adv.
	Success []bool
	// Queries counts the model evaluations (forward or forward-backward
	// passes) summed over samples.
	Queries int
	// Rejected counts the candidate adversarial examples that failed the
	// budget check and were not counted; it is 0 unless an attack is wrong.
	Rejected int
}

// validate checks the budget against a batch of n samples for a model with
// the given classes and sample size d.
func (b *Budget) validate(n, d, classes int, y []int64) error {
	eps := float64(b.Eps)
	switch b.Norm {
	case Linf:
		if !(eps > 0 && eps <= 1) {
			return fmt.Errorf("ε = %g is out of range (0, 1] for the L∞ norm", eps)
		}
	case L2:
		if limit := math.Sqrt(float64(d)); !(eps > 0 && eps <= limit) {
			return fmt.Errorf("ε = %g is out of range (0, %.4g] for the L2 norm of %d-value images", eps, limit, d)
		}
	default:
		return fmt.Errorf("unknown norm %v", b.Norm)
	}
	switch {
	case b.Steps < 0:
		return fmt.Errorf("negative number of steps %d", b.Steps)
	case b.Restarts < 0:
		return fmt.Errorf("negative number of restarts %d", b.Restarts)
	case !(b.StepSize >= 0) || math.IsInf(float64(b.StepSize), 0):
		return fmt.Errorf("step size %g is not a finite non-negative number", b.StepSize)
	}
	switch b.Loss {
	case onnxgraph.CrossEntropy, onnxgraph.CWMargin, DLR:
	case DLRTargeted:
		if b.Targets == nil {
			return fmt.Errorf("the %s loss needs targets", LossName(b.Loss))
		}
	default:
		return fmt.Errorf("unknown loss %s", LossName(b.Loss))
	}
	if b.Targets != nil {
		if len(b.Targets) != n {
			return fmt.Errorf("%d targets for %d samples", len(b.Targets), n)
		}
		for i, t := range b.Targets {
			if t < 0 || t >= int64(classes) {
				return fmt.Errorf("target %d of sample %d is outside the model's %d classes", t, i, classes)
			}
			if t == y[i] {
				return fmt.Errorf("target %d of sample %d is its true label", t, i)
			}
		}
	}
	if need := b.lossKind().minClasses(); classes < need {
		return fmt.Errorf("the %s loss needs at least %d classes; the model has %d", LossName(b.lossKind().kind), need, classes)
	}
	return nil
}

// objective is the loss an attack follows and its direction.
type objective struct {
	kind onnxgraph.LossKind
	// sign is +1 when the attack maximises the loss, −1 when it minimises
	// it (targeted CE and CW, computed with the target as the label).
	sign float32
	// labels says what Grad's labels are: the true labels, the targets, or
	// (DLRTargeted) both.
	labels labelMode
}

type labelMode int

const (
	trueLabels labelMode = iota
	targetLabels
	bothLabels
)

func (o objective) minClasses() int { return minClasses(o.kind) }

// lossKind returns the objective of the budget's loss and targets.
func (b *Budget) lossKind() objective {
	switch {
	case b.Targets == nil:
		return objective{kind: b.Loss, sign: 1, labels: trueLabels}
	case b.Loss == DLR || b.Loss == DLRTargeted:
		return objective{kind: DLRTargeted, sign: 1, labels: bothLabels}
	}
	return objective{kind: b.Loss, sign: -1, labels: targetLabels}
}

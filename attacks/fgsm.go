package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// FGSM is the fast gradient sign method (Goodfellow et al. 2015) for the
// L∞ norm and the fast gradient method for L2: one step of size α along
// the sign (L∞) or the direction (L2) of the gradient of the loss,
// projected onto the ε-ball and [0,1]. With RandomStart the step starts
// from a random point of the ball (the "FGSM with random start" of Wong et
// al. 2020, whose step is 1.25·ε). Restarts rerun it on the samples still
// unbroken, from random starts.
//
// It costs one gradient evaluation and one forward pass per sample and run.
type FGSM struct {
	// Loss is the loss to ascend (default cross-entropy); with Targets, CE
	// and CW are descended towards the target and DLR becomes the targeted
	// DLR.
	Loss Loss
	// StepRatio sets the step α = StepRatio·ε (default 1).
	StepRatio   float32
	RandomStart bool
	// Restarts is the number of runs (0 means one).
	Restarts int
	// Targets holds a target class per sample of the batch for a targeted
	// attack; nil makes it untargeted.
	Targets []int64
}

// Name returns "fgsm", or "fgsm-LOSS" for a loss other than CE.
func (a FGSM) Name() string { return lossName("fgsm", a.Loss, CE) }

func (a FGSM) String() string { return "FGSM " + strings.ToUpper(a.Loss.String()) }

// Supports reports whether the attack can run in the norm (L∞, L2) on a
// model with that many classes.
func (a FGSM) Supports(norm Norm, classes int) error {
	if err := supportNorms(a.Name(), norm, Linf, L2); err != nil {
		return err
	}
	return supportClasses(a.Name(), a.Loss, classes)
}

// WithEffort returns the attack with e's restarts.
func (a FGSM) WithEffort(e Effort) Attack {
	if e.Restarts > 0 {
		a.Restarts = e.Restarts
	}
	return a
}

// Run attacks a batch.
func (a FGSM) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	if err := checkRatio("fgsm", a.StepRatio); err != nil {
		return nil, err
	}
	if err := supportNorms("fgsm", t.Norm, Linf, L2); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, "fgsm", m, x, y, t, settings{loss: a.Loss, restarts: a.Restarts, targets: a.Targets}, rng)
	if err != nil {
		return nil, err
	}
	alpha := a.StepRatio * t.Eps
	if a.StepRatio == 0 {
		alpha = t.Eps
	}
	return p.projectedGradient(1, alpha, a.RandomStart)
}

// lossName returns base, or base-LOSS when loss is not the attack's
// default.
func lossName(base string, loss, def Loss) string {
	if loss == def {
		return base
	}
	return base + "-" + loss.String()
}

// checkRatio checks a step ratio.
func checkRatio(name string, r float32) error {
	if !(r >= 0) || r > 1e6 {
		return fmt.Errorf("%s: step ratio %g is not a finite non-negative number", name, r)
	}
	return nil
}

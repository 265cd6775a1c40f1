package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
)

// defaultTargetClasses is AutoAttack's number of target classes for APGD-T
// and FAB-T.
const defaultTargetClasses = 9

// APGDTargeted is APGD-T, AutoAttack's targeted APGD: for each of the
// target classes (default 9, at most classes − 1) with the largest clean
// logits after the top one, in order, [APGD] with the targeted DLR loss
// towards that class, on the samples still unbroken. Success is
// untargeted: a sample breaks when it is misclassified, whatever the
// class. The model needs 4 or more classes.
//
// It costs one forward pass, then up to TargetClasses × (Steps + 1)
// gradient evaluations per sample and restart.
type APGDTargeted struct {
	// Steps is the number of iterations per target (default 100).
	Steps int
	// Restarts is the number of runs per target (0 means one).
	Restarts int
	// TargetClasses is the number of target classes (default 9).
	TargetClasses int
	// LargeEps runs APGD in AutoAttack's larger-ε schedule (L1 only; see
	// [APGD]).
	LargeEps bool
}

// Name returns "apgd-t".
func (a APGDTargeted) Name() string { return "apgd-t" }

func (a APGDTargeted) targets() int {
	if a.TargetClasses == 0 {
		return defaultTargetClasses
	}
	return a.TargetClasses
}

// String describes the attack: "APGD-T 100 steps, 9 targets".
func (a APGDTargeted) String() string {
	s := fmt.Sprintf("APGD-T %d steps, %d targets", apgdSteps(a.Steps), a.targets())
	if a.LargeEps {
		s += ", ε schedule 3ε→2ε→ε"
	}
	return s
}

// Supports reports whether the attack can run in the norm (L∞, L2, L1) on
// a model with that many classes (4 or more).
func (a APGDTargeted) Supports(norm Norm, classes int) error {
	if err := a.supportsNorm(norm); err != nil {
		return err
	}
	return supportClasses(a.Name(), DLRTargeted, classes)
}

// WithEffort returns the attack with e's steps.
func (a APGDTargeted) WithEffort(e Effort) Attack {
	if e.Steps > 0 {
		a.Steps = e.Steps
	}
	return a
}

// Run attacks a batch.
func (a APGDTargeted) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	if a.Steps < 0 || a.TargetClasses < 0 {
		return nil, fmt.Errorf("apgd-t: negative steps %d or target classes %d", a.Steps, a.TargetClasses)
	}
	if err := a.supportsNorm(t.Norm); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, "apgd-t", m, x, y, t, settings{loss: DLR, restarts: a.Restarts, largeEps: a.LargeEps}, rng)
	if err != nil {
		return nil, err
	}
	if p.c < DLRTargeted.MinClasses() {
		return nil, fmt.Errorf("apgd-t: the targeted DLR loss needs at least %d classes; the model has %d", DLRTargeted.MinClasses(), p.c)
	}
	ranked, err := p.rankTargets()
	if err != nil {
		return nil, err
	}
	p.obj = objective{loss: DLRTargeted, sign: 1}
	p.lossTargets = make([]int64, p.n)
	for rank := 1; rank <= min(a.targets(), p.c-1); rank++ {
		for i := range p.n {
			p.lossTargets[i] = ranked[i][rank]
		}
		if err := p.apgdRestarts(apgdSteps(a.Steps)); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

// rankTargets evaluates the clean images, records the samples that are
// misclassified already as broken and returns each sample's classes by
// decreasing clean logit: the targets of APGD-T and FAB-T, in order, are
// ranks 1, 2, ….
func (p *problem) rankTargets() ([][]int64, error) {
	all, clean := p.remaining(make([]float32, p.n*p.d))
	logits := make([]float32, p.n*p.c)
	if err := p.logits(all, clean, logits); err != nil {
		return nil, err
	}
	p.observe(all, clean, logits, make([]bool, p.n))
	ranked := make([][]int64, p.n)
	for i := range p.n {
		ranked[i] = rankClasses(row(logits, i, p.c))
	}
	return ranked, nil
}

// rankClasses returns the classes by decreasing logit.
func rankClasses(z []float32) []int64 {
	classes := make([]int64, len(z))
	for j := range classes {
		classes[j] = int64(j)
	}
	slices.SortStableFunc(classes, func(a, b int64) int {
		switch {
		case z[a] > z[b]:
			return -1
		case z[a] < z[b]:
			return 1
		}
		return 0
	})
	return classes
}

// supportsNorm reports whether the attack can run in the norm.
func (a APGDTargeted) supportsNorm(norm Norm) error {
	if err := supportNorms(a.Name(), norm, Linf, L2, L1); err != nil {
		return err
	}
	if a.LargeEps && norm != L1 {
		return &UnsupportedError{Attack: a.Name(), Reason: "the larger-ε schedule is for the L1 norm only"}
	}
	return nil
}

package attacks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
)

// pgdDefaultSteps is PGD's default number of steps.
const pgdDefaultSteps = 20

// PGD is projected gradient descent (Madry et al. 2018): from the clean
// image or, with RandomStart, a random point of the ball, Steps steps of
// size α along the sign of the gradient (L∞) or the normalised gradient
// (L2) of the loss, each followed by the projection onto the ε-ball and
// [0,1]. With Restarts > 1 the samples still unbroken are attacked again
// from new random starts.
//
// PGD-k costs k gradient evaluations and one final forward pass per sample
// and run, fewer for samples that break early.
type PGD struct {
	// Loss is the loss to ascend (default cross-entropy); with Targets, CE
	// and CW are descended towards the target and DLR becomes the targeted
	// DLR.
	Loss Loss
	// Steps is the number of iterations (default 20).
	Steps int
	// StepRatio sets the step α = StepRatio·ε (default 2.5/Steps).
	StepRatio   float32
	RandomStart bool
	// Restarts is the number of runs (0 means one); runs after the first
	// start at random.
	Restarts int
	// Targets holds a target class per sample of the batch for a targeted
	// attack; nil makes it untargeted.
	Targets []int64
	// NoEarlyStop keeps attacking samples after they break (their first
	// adversarial example is kept), so that every sample costs the full
	// budget: for timing against implementations without early stop.
	NoEarlyStop bool
}

// Name returns "pgd", or "pgd-LOSS" for a loss other than CE.
func (a PGD) Name() string { return lossName("pgd", a.Loss, CE) }

func (a PGD) steps() int {
	if a.Steps == 0 {
		return pgdDefaultSteps
	}
	return a.Steps
}

// String describes the attack: "PGD-20 CE ×1 (α=ε/4)".
func (a PGD) String() string {
	s := fmt.Sprintf("PGD-%d %s ×%d", a.steps(), strings.ToUpper(a.Loss.String()), max(a.Restarts, 1))
	if a.StepRatio > 0 {
		s += fmt.Sprintf(" (α=%s)", ratioText(a.StepRatio))
	}
	return s
}

// ratioText writes a step ratio as "ε/4" when it is the inverse of an
// integer, else "0.3ε".
func ratioText(r float32) string {
	inv := 1 / r
	if k := float32(int(inv + 0.5)); inv-k < 1e-4 && k-inv < 1e-4 {
		return fmt.Sprintf("ε/%d", int(k))
	}
	return fmt.Sprintf("%.3gε", r)
}

// Supports reports whether the attack can run in the norm (L∞, L2) on a
// model with that many classes.
func (a PGD) Supports(norm Norm, classes int) error {
	if err := supportNorms(a.Name(), norm, Linf, L2); err != nil {
		return err
	}
	return supportClasses(a.Name(), a.Loss, classes)
}

// WithEffort returns the attack with e's steps and restarts.
func (a PGD) WithEffort(e Effort) Attack {
	if e.Steps > 0 {
		a.Steps = e.Steps
	}
	if e.Restarts > 0 {
		a.Restarts = e.Restarts
	}
	return a
}

// Run attacks a batch.
func (a PGD) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	if a.Steps < 0 {
		return nil, fmt.Errorf("pgd: negative number of steps %d", a.Steps)
	}
	if err := checkRatio("pgd", a.StepRatio); err != nil {
		return nil, err
	}
	if err := supportNorms("pgd", t.Norm, Linf, L2); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, "pgd", m, x, y, t, settings{loss: a.Loss, restarts: a.Restarts, targets: a.Targets, noEarlyStop: a.NoEarlyStop}, rng)
	if err != nil {
		return nil, err
	}
	steps := a.steps()
	alpha := a.StepRatio * t.Eps
	if a.StepRatio == 0 {
		alpha = 2.5 * t.Eps / float32(steps)
	}
	return p.projectedGradient(steps, alpha, a.RandomStart)
}

// projectedGradient runs steps projected gradient steps of size alpha per
// restart on the samples still unbroken.
func (p *problem) projectedGradient(steps int, alpha float32, randomFirst bool) (*Result, error) {
	w := newWorkspace(p)
	for run := range p.restarts() {
		r, adv := p.remaining(w.adv)
		if r.len() == 0 {
			break
		}
		track(r, &adv, p.d)
		if randomFirst || run > 0 {
			for k := range r.len() {
				randomStart(row(adv, k, p.d), p.clean(r, k), p.t, p.rng)
			}
		}
		if err := p.iterate(r, &adv, w, steps, func(k int, pt, g []float32) {
			ascend(pt, g, p.t.Norm, alpha, p.obj.sign)
			project(pt, p.clean(r, k), p.t)
		}); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

// workspace holds the per-row buffers of a gradient attack, allocated once
// for the whole batch.
type workspace struct {
	adv, grad, logits, losses []float32
	keep                      []bool
}

func newWorkspace(p *problem) *workspace {
	return &workspace{
		adv:    make([]float32, p.n*p.d),
		grad:   make([]float32, p.n*p.d),
		logits: make([]float32, p.n*p.c),
		losses: make([]float32, p.n),
		keep:   make([]bool, p.n),
	}
}

// iterate runs steps gradient steps on the active rows, recording every
// point visited, then evaluates the final points: each step computes the
// gradient at the current points, records them (dropping broken samples)
// and moves the others with step(k, point, gradient).
func (p *problem) iterate(r *rows, adv *[]float32, w *workspace, steps int, step func(k int, pt, g []float32)) error {
	for range steps {
		if err := p.grad(r, *adv, w.logits, w.losses, w.grad); err != nil {
			return err
		}
		if !p.advance(r, *adv, w) {
			return nil
		}
		for k := range r.len() {
			step(k, row(*adv, k, p.d), row(w.grad, k, p.d))
		}
	}
	if err := p.logits(r, *adv, w.logits); err != nil {
		return err
	}
	p.observe(r, *adv, w.logits, w.keep)
	return nil
}

// advance records the rows' points and drops the rows of broken samples
// from r (and the gradients in w, kept aligned). It reports whether any
// row is left.
func (p *problem) advance(r *rows, adv []float32, w *workspace) bool {
	k := r.len()
	keep := w.keep[:k]
	kept := p.observe(r, adv, w.logits, keep)
	if kept == k {
		return true
	}
	g := w.grad[:k*p.d]
	r.filter(keep)
	col[float32]{&g, p.d}.filter(keep)
	return kept > 0
}

package attacks

import (
	"context"
	"errors"
	"math/rand/v2"
)

// PGD runs projected gradient descent (Madry et al. 2018): from the clean
// image or, with b.RandomStart, a random point of the ball, b.Steps steps
// of size b.StepSize (default 2.5·ε/Steps) along the sign of the gradient
// (L∞) or the normalised gradient (L2) of b.Loss, each followed by the
// projection onto the ε-ball and [0,1]. With b.Restarts > 1 the samples
// still unbroken are attacked again from new random starts.
//
// PGD-k costs k gradient evaluations and one final forward pass per sample
// and run, fewer for samples that break early. A nil rng means a fixed
// seed.
func PGD(ctx context.Context, m Model, x []float32, y []int64, b Budget, rng *rand.Rand) (*Result, error) {
	p, err := newProblem(ctx, "pgd", m, x, y, b, rng)
	if err != nil {
		return nil, err
	}
	if b.Steps < 1 {
		return nil, errors.New("pgd: needs at least one step")
	}
	alpha := b.StepSize
	if alpha == 0 {
		alpha = 2.5 * b.Eps / float32(b.Steps)
	}
	return p.projectedGradient(b.Steps, alpha)
}

// projectedGradient runs steps projected gradient steps of size alpha per
// restart on the samples still unbroken.
func (p *problem) projectedGradient(steps int, alpha float32) (*Result, error) {
	w := newWorkspace(p)
	for run := range p.restarts() {
		r, adv := p.remaining(w.adv)
		if r.len() == 0 {
			break
		}
		track(r, &adv, p.d)
		if p.b.RandomStart || run > 0 {
			for k := range r.len() {
				randomStart(row(adv, k, p.d), p.clean(r, k), p.b.Norm, p.b.Eps, p.rng)
			}
		}
		if err := p.iterate(r, &adv, w, steps, func(k int, pt, g []float32) {
			ascend(pt, g, p.b.Norm, alpha, p.obj.sign)
			project(pt, p.clean(r, k), p.b.Norm, p.b.Eps)
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

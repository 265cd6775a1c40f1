package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// APGD constants of Croce & Hein (2020) and AutoAttack's autopgd_base.py.
const (
	apgdMomentum    = 0.75 // α: weight of the new step against the previous one
	apgdRho         = 0.75 // a checkpoint halves η when ≤ ρ of its steps raised the loss
	apgdFirstCheck  = 0.22 // first checkpoint, as a fraction of the steps
	apgdCheckDecr   = 0.03 // each later interval shrinks by this fraction …
	apgdCheckMin    = 0.06 // … down to this one
	apgdDefaultIter = 100
)

// APGD is Auto-PGD (Croce & Hein 2020, "Reliable evaluation of
// adversarial robustness with an ensemble of diverse parameter-free
// attacks"), the step-size-free PGD of AutoAttack, for Steps iterations
// (default 100) with the loss: cross-entropy (APGD-CE), [DLR] (APGD-DLR)
// or, with Targets, the targeted DLR (see [APGDTargeted] for APGD-T).
//
// The step size starts at 2ε and is halved at checkpoints where fewer than
// 75% of the steps since the last checkpoint raised the loss, or where it
// was not halved before and the best loss has not improved; the iterate
// then restarts from the best point found. Steps combine the projected
// gradient step with the previous step (momentum 0.75). It starts at a
// random point of the ball; restarts start again from new random points.
//
// For the L1 norm it is L1-APGD (Croce & Hein 2021, "Mind the box"): sparse
// steps on the coordinates of largest gradient, projected onto the L1 ball
// intersected with the box, with an adaptive sparsity and step size.
//
// It costs Steps + 1 gradient evaluations per sample and run (times EoT),
// fewer for samples that break early.
type APGD struct {
	// Loss is CE (default), DLR or CWMargin.
	Loss Loss
	// Steps is the number of iterations (default 100).
	Steps int
	// Restarts is the number of runs from random starts (0 means one).
	Restarts int
	// Targets holds a target class per sample of the batch for a targeted
	// attack; nil makes it untargeted.
	Targets []int64
	// NoEarlyStop keeps attacking samples after they break.
	NoEarlyStop bool
	// EoT averages each step's gradient over that many evaluations of a
	// randomised model (expectation over transformation; AutoAttack's rand
	// version uses 20); 0 or 1 means one.
	EoT int
	// LargeEps runs each restart in AutoAttack's larger-ε schedule for the
	// L1 norm (use_largereps): 30% of the steps at 3ε, 30% at 2ε, the rest
	// at ε, each stage from the previous one's best point. L1 only.
	LargeEps bool
}

// Name returns "apgd-LOSS".
func (a APGD) Name() string { return "apgd-" + a.Loss.String() }

// String describes the attack: "APGD-CE 100 steps ×1", "APGD-CE 100
// steps ×1, EoT 20".
func (a APGD) String() string {
	s := fmt.Sprintf("APGD-%s %d steps ×%d", strings.ToUpper(a.Loss.String()), apgdSteps(a.Steps), max(a.Restarts, 1))
	if a.EoT > 1 {
		s += fmt.Sprintf(", EoT %d", a.EoT)
	}
	if a.LargeEps {
		s += ", ε schedule 3ε→2ε→ε"
	}
	return s
}

// Supports reports whether the attack can run in the norm (L∞, L2, L1) on
// a model with that many classes.
func (a APGD) Supports(norm Norm, classes int) error {
	if err := a.supportsNorm(norm); err != nil {
		return err
	}
	return supportClasses(a.Name(), a.Loss, classes)
}

// EoTSamples returns the number of gradient evaluations averaged per step.
func (a APGD) EoTSamples() int { return max(a.EoT, 1) }

// WithEffort returns the attack with e's steps and restarts.
func (a APGD) WithEffort(e Effort) Attack {
	if e.Steps > 0 {
		a.Steps = e.Steps
	}
	if e.Restarts > 0 {
		a.Restarts = e.Restarts
	}
	return a
}

// Run attacks a batch.
func (a APGD) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	if a.Steps < 0 || a.EoT < 0 {
		return nil, fmt.Errorf("apgd: negative number of steps %d or EoT samples %d", a.Steps, a.EoT)
	}
	if err := a.supportsNorm(t.Norm); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, "apgd", m, x, y, t, settings{loss: a.Loss, restarts: a.Restarts, targets: a.Targets,
		noEarlyStop: a.NoEarlyStop, eot: a.EoT, largeEps: a.LargeEps}, rng)
	if err != nil {
		return nil, err
	}
	if err := p.apgdRestarts(apgdSteps(a.Steps)); err != nil {
		return nil, err
	}
	return p.res, nil
}

// RunEach attacks a batch with a radius per sample: sample i within eps[i]
// in the norm. It serves searches for each sample's smallest breaking ε.
func (a APGD) RunEach(ctx context.Context, m Model, x []float32, y []int64, norm Norm, eps []float32, rng *rand.Rand) (*Result, error) {
	if len(eps) != len(y) || len(eps) == 0 {
		return nil, fmt.Errorf("apgd: %d radii for %d samples", len(eps), len(y))
	}
	if a.Steps < 0 || a.EoT < 0 {
		return nil, fmt.Errorf("apgd: negative number of steps %d or EoT samples %d", a.Steps, a.EoT)
	}
	if err := a.supportsNorm(norm); err != nil {
		return nil, err
	}
	sh := m.Shape()
	for i, e := range eps {
		if err := (ThreatModel{Norm: norm, Eps: e}).Validate(sh[0] * sh[1] * sh[2]); err != nil {
			return nil, fmt.Errorf("apgd: sample %d: %w", i, err)
		}
	}
	p, err := newProblem(ctx, "apgd", m, x, y, ThreatModel{Norm: norm, Eps: slices.Max(eps)}, settings{loss: a.Loss,
		restarts: a.Restarts, targets: a.Targets, noEarlyStop: a.NoEarlyStop, eot: a.EoT, largeEps: a.LargeEps}, rng)
	if err != nil {
		return nil, err
	}
	p.eps = eps
	if err := p.apgdRestarts(apgdSteps(a.Steps)); err != nil {
		return nil, err
	}
	return p.res, nil
}

// apgdSteps returns a number of iterations or the default.
func apgdSteps(steps int) int {
	if steps == 0 {
		return apgdDefaultIter
	}
	return steps
}

// apgdRestarts runs APGD from random starts on the samples still unbroken.
func (p *problem) apgdRestarts(steps int) error {
	buf := make([]float32, p.n*p.d)
	for range p.restarts() {
		r, adv := p.remaining(buf)
		if r.len() == 0 {
			break
		}
		if p.s.largeEps {
			if err := p.apgdLargeEps(r, adv, steps); err != nil {
				return err
			}
			continue
		}
		for k := range r.len() {
			randomStart(row(adv, k, p.d), p.clean(r, k), p.threat(r.idx[k]), p.rng)
		}
		if _, err := p.apgdRun(r, adv, steps, false); err != nil {
			return err
		}
	}
	return nil
}

// apgdLargeEps runs one restart of L1-APGD in AutoAttack's larger-ε
// schedule (use_largereps): 30% of the steps at 3ε, 30% at 2ε, the rest at
// ε, each stage starting from the previous one's best point projected onto
// its ball; the first starts from the clean image plus standard Gaussian
// noise projected onto the 3ε ball. Only examples within ε count.
func (p *problem) apgdLargeEps(r *rows, adv []float32, steps int) error {
	defer func() { p.scale = 0 }()
	first := int(math.Ceil(0.3 * float64(steps)))
	stages := []struct {
		scale float32
		steps int
	}{{3, first}, {2, first}, {1, steps - 2*first}}
	p.scale = stages[0].scale
	for k := range r.len() {
		pt, x := row(adv, k, p.d), p.clean(r, k)
		for j := range pt {
			pt[j] = x[j] + float32(p.rng.NormFloat64())
		}
		project(pt, x, p.stepThreat(r.idx[k]))
	}
	for _, st := range stages {
		if st.steps <= 0 || r.len() == 0 {
			continue
		}
		p.scale = st.scale
		for k := range r.len() {
			project(row(adv, k, p.d), p.clean(r, k), p.stepThreat(r.idx[k]))
		}
		r.cols = nil
		s, err := p.apgdRun(r, adv, st.steps, true)
		if err != nil {
			return err
		}
		adv = s.best[:r.len()*p.d]
	}
	return nil
}

// apgdState is the per-row state of an APGD run.
type apgdState struct {
	adv, old, best, grad, gradBest     []float32 // d per row
	eta, lossPrev, lossBest, lossCheck []float32
	rises                              []int
	reduced                            []bool
	logits, losses, z                  []float32 // scratch
	keep                               []bool
	// L1: the fraction of coordinates a step moves and the support size
	// of the best point at the last checkpoint.
	topk, support []float32
	l1            l1Projection
}

// apgdRun runs APGD on the rows from the points adv; fromInit says they are
// a previous stage's points rather than random starts (L1 then takes its
// initial sparsity from them). It returns the final state, whose best
// points are aligned with the rows still unbroken.
func (p *problem) apgdRun(r *rows, adv []float32, steps int, fromInit bool) (*apgdState, error) {
	n := r.len()
	s := &apgdState{
		adv: adv, old: slices.Clone(adv), best: slices.Clone(adv),
		grad: make([]float32, n*p.d), gradBest: make([]float32, n*p.d),
		eta: make([]float32, n), lossPrev: make([]float32, n), lossBest: make([]float32, n),
		lossCheck: make([]float32, n), rises: make([]int, n), reduced: make([]bool, n),
		logits: make([]float32, n*p.c), losses: make([]float32, n), z: make([]float32, p.d), keep: make([]bool, n),
	}
	for _, c := range []*[]float32{&s.adv, &s.old, &s.best, &s.grad, &s.gradBest} {
		track(r, c, p.d)
	}
	for _, c := range []*[]float32{&s.eta, &s.lossPrev, &s.lossBest, &s.lossCheck} {
		track(r, c, 1)
	}
	track(r, &s.rises, 1)
	track(r, &s.reduced, 1)
	if p.t.Norm == L1 {
		s.topk, s.support = make([]float32, n), make([]float32, n)
		track(r, &s.topk, 1)
		track(r, &s.support, 1)
		for k := range n {
			s.topk[k], s.support[k] = apgdL1TopK, float32(p.d)
			if l := float32(l0(row(adv, k, p.d), p.clean(r, k))); fromInit && l > 0 {
				s.topk[k], s.support[k] = l/float32(p.d)/1.5, l
			}
		}
	}

	if left, err := p.apgdEval(r, s); !left {
		return s, err
	}
	copy(s.gradBest, s.grad)
	for k, i := range r.idx {
		s.eta[k] = 2 * p.stepThreat(i).Eps
		if p.t.Norm == L1 {
			s.eta[k] = p.stepThreat(i).Eps
		}
		s.lossPrev[k], s.lossBest[k], s.lossCheck[k] = s.losses[k], s.losses[k], s.losses[k]
	}
	if p.t.Norm == L1 {
		return s, p.apgdL1Loop(r, s, steps)
	}
	interval := max(int(apgdFirstCheck*float64(steps)), 1)
	decr := max(int(apgdCheckDecr*float64(steps)), 1)
	minInterval := max(int(apgdCheckMin*float64(steps)), 1)
	sinceCheck := 0
	for i := range steps {
		momentum := float32(apgdMomentum)
		if i == 0 {
			momentum = 1
		}
		for k := range r.len() {
			p.apgdStep(row(s.adv, k, p.d), row(s.old, k, p.d), row(s.grad, k, p.d), p.clean(r, k), s.z, p.stepThreat(r.idx[k]), s.eta[k], momentum)
		}
		if left, err := p.apgdEval(r, s); !left {
			return s, err
		}
		for k := range r.len() {
			l := s.losses[k]
			if l > s.lossPrev[k] {
				s.rises[k]++
			}
			s.lossPrev[k] = l
			if l > s.lossBest[k] {
				s.lossBest[k] = l
				copy(row(s.best, k, p.d), row(s.adv, k, p.d))
				copy(row(s.gradBest, k, p.d), row(s.grad, k, p.d))
			}
		}
		if sinceCheck++; sinceCheck < interval {
			continue
		}
		for k := range r.len() {
			reduce := float32(s.rises[k]) <= apgdRho*float32(interval) ||
				(!s.reduced[k] && s.lossCheck[k] >= s.lossBest[k])
			s.reduced[k], s.lossCheck[k], s.rises[k] = reduce, s.lossBest[k], 0
			if reduce {
				s.eta[k] /= 2
				copy(row(s.adv, k, p.d), row(s.best, k, p.d))
				copy(row(s.grad, k, p.d), row(s.gradBest, k, p.d))
			}
		}
		interval, sinceCheck = max(interval-decr, minInterval), 0
	}
	return s, nil
}

// apgdEval computes the loss and gradient at the rows' points, records
// them and drops broken samples; it reports whether rows are left.
func (p *problem) apgdEval(r *rows, s *apgdState) (bool, error) {
	if err := p.grad(r, s.adv, s.logits, s.losses, s.grad); err != nil {
		return false, err
	}
	k := r.len()
	for i := range s.losses[:k] {
		s.losses[i] *= p.obj.sign
	}
	keep := s.keep[:k]
	if kept := p.observe(r, s.adv, s.logits, keep); kept < k {
		losses := s.losses[:k]
		r.filter(keep)
		col[float32]{&losses, 1}.filter(keep)
		return kept > 0, nil
	}
	return true, nil
}

// apgdStep moves adv (whose previous point is old) by one APGD step:
// z = P(adv + η·dir(g)), adv ← P(adv + μ(z − adv) + (1−μ)(adv − old)).
func (p *problem) apgdStep(adv, old, g, x, z []float32, t ThreatModel, eta, momentum float32) {
	copy(z, adv)
	ascend(z, g, t.Norm, eta, p.obj.sign)
	project(z, x, t)
	for j, v := range adv {
		z[j] = v + momentum*(z[j]-v) + (1-momentum)*(v-old[j])
	}
	copy(old, adv)
	copy(adv, z)
	project(adv, x, t)
}

// supportsNorm reports whether the attack can run in the norm.
func (a APGD) supportsNorm(norm Norm) error {
	if err := supportNorms(a.Name(), norm, Linf, L2, L1); err != nil {
		return err
	}
	if a.LargeEps && norm != L1 {
		return &UnsupportedError{Attack: a.Name(), Reason: "the larger-ε schedule is for the L1 norm only"}
	}
	return nil
}

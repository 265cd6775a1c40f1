package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// FAB defaults of Croce & Hein (2020) and AutoAttack.
const (
	fabDefaultSteps = 100
	fabAlphaMax     = 0.1
	fabEta          = 1.05
	fabBeta         = 0.9
)

// FAB is the fast adaptive boundary attack (Croce & Hein 2020, "Minimally
// distorted adversarial examples with a fast adaptive boundary attack"):
// a minimum-norm attack for the L∞, L2 and L1 norms. Each step linearises
// the model at the current point x₁, picks the decision boundary closest
// in the linear model (untargeted: over all classes; FAB-T: the target's),
// and moves to a convex combination of the projections of x₁ and of the
// clean image x₀ onto that hyperplane (within [0,1]), overshooting by η
// and weighting the projection of x₀ by α = min(‖δ₁‖/(‖δ₁‖+‖δ₀‖), α_max)
// so that the iterate stays close to x₀. Each time the iterate is
// adversarial, it is recorded when closer than the best one and pulled
// back towards x₀ by β. Restarts after the first start from a random point
// at distance ε/2.
//
// With TargetClasses > 0 it is FAB-T, AutoAttack's targeted FAB: it runs
// for each of that many classes with the largest clean logits after the
// top one, in order, on the samples still unbroken; success stays
// untargeted.
//
// Run counts a sample as broken when the smallest adversarial found lies
// within ε and stops attacking it then; [FAB.Minimize] runs every step on
// every sample and returns the smallest perturbations. Each step costs one
// gradient evaluation per candidate class (FAB-T: one; untargeted FAB: one
// per class) and one forward pass.
type FAB struct {
	// Steps is the number of iterations per run (default 100).
	Steps int
	// Restarts is the number of runs (per target for FAB-T; 0 means one).
	Restarts int
	// TargetClasses makes the attack FAB-T with that many target classes;
	// 0 is untargeted FAB.
	TargetClasses int
	// AlphaMax, Eta and Beta are the step parameters α_max, η and β
	// (defaults 0.1, 1.05 and 0.9).
	AlphaMax, Eta, Beta float32
}

// Name returns "fab" or "fab-t".
func (a FAB) Name() string {
	if a.TargetClasses > 0 {
		return "fab-t"
	}
	return "fab"
}

func (a FAB) steps() int {
	if a.Steps == 0 {
		return fabDefaultSteps
	}
	return a.Steps
}

// String describes the attack: "FAB 100 steps ×1", "FAB-T 100 steps, 9
// targets".
func (a FAB) String() string {
	if a.TargetClasses > 0 {
		return fmt.Sprintf("FAB-T %d steps, %d targets", a.steps(), a.TargetClasses)
	}
	return fmt.Sprintf("FAB %d steps ×%d", a.steps(), max(a.Restarts, 1))
}

// Supports reports whether the attack can run in the norm (L∞, L2, L1).
func (a FAB) Supports(norm Norm, classes int) error {
	return supportNorms(a.Name(), norm, Linf, L2, L1)
}

// WithEffort returns the attack with e's steps and, for untargeted FAB,
// restarts.
func (a FAB) WithEffort(e Effort) Attack {
	if e.Steps > 0 {
		a.Steps = e.Steps
	}
	if e.Restarts > 0 && a.TargetClasses == 0 {
		a.Restarts = e.Restarts
	}
	return a
}

// params returns α_max, η and β with their defaults.
func (a FAB) params() (alphaMax, eta, beta float64) {
	alphaMax, eta, beta = fabAlphaMax, fabEta, fabBeta
	if a.AlphaMax != 0 {
		alphaMax = float64(a.AlphaMax)
	}
	if a.Eta != 0 {
		eta = float64(a.Eta)
	}
	if a.Beta != 0 {
		beta = float64(a.Beta)
	}
	return alphaMax, eta, beta
}

func (a FAB) check() error {
	am, eta, beta := a.params()
	switch {
	case a.Steps < 0 || a.Restarts < 0 || a.TargetClasses < 0:
		return fmt.Errorf("%s: negative steps %d, restarts %d or target classes %d", a.Name(), a.Steps, a.Restarts, a.TargetClasses)
	case !(am > 0 && am <= 1), !(eta >= 1 && eta < 2), !(beta > 0 && beta < 1):
		return fmt.Errorf("%s: α_max = %g, η = %g, β = %g out of range (0,1], [1,2), (0,1)", a.Name(), am, eta, beta)
	}
	return nil
}

// Run attacks a batch: a sample breaks when FAB finds an adversarial image
// within ε of it.
func (a FAB) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	return a.run(ctx, m, x, y, t, rng, nil)
}

// RunRows is Run with a random source per sample ([RowSeeded]).
func (a FAB) RunRows(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rngs []*rand.Rand) (*Result, error) {
	return a.run(ctx, m, x, y, t, nil, rngs)
}

func (a FAB) run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand, rows []*rand.Rand) (*Result, error) {
	f, err := a.start(ctx, m, x, y, t, rng, rows)
	if err != nil {
		return nil, err
	}
	if err := f.search(true); err != nil {
		return nil, err
	}
	return f.p.res, nil
}

// Minimal holds the smallest adversarial perturbations an attack found.
type Minimal struct {
	// Adv holds, per sample, the closest adversarial image found, or the
	// clean image when none was found.
	Adv []float32
	// Dist holds the distance of each sample's Adv from its clean image in
	// the norm: 0 for a sample misclassified already, +Inf when no
	// adversarial image was found.
	Dist    []float64
	Queries int
}

// Minimize runs every step of FAB on every sample and returns the smallest
// adversarial perturbation found per sample in the threat model's norm; ε
// only scales the random starts of restarts.
func (a FAB) Minimize(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Minimal, error) {
	f, err := a.start(ctx, m, x, y, t, rng, nil)
	if err != nil {
		return nil, err
	}
	if err := f.search(false); err != nil {
		return nil, err
	}
	return &Minimal{Adv: f.adv, Dist: f.dist, Queries: f.p.res.Queries}, nil
}

// fab is one FAB attack on a batch.
type fab struct {
	a                   FAB
	p                   *problem
	alphaMax, eta, beta float64
	adv                 []float32 // closest adversarial image per sample
	dist                []float64 // its distance
	targeted            bool
	ranked              [][]int64 // FAB-T: classes by decreasing clean logit
	scratch             []fabScratch
}

// fabScratch is the scratch space of one goroutine's FAB steps.
type fabScratch struct {
	bnd1, bnd0     boundary
	delta1, delta0 []float32 // d values
}

// init allocates the scratch space of the goroutines that share the
// per-row work.
func (f *fab) init() {
	f.scratch = make([]fabScratch, rowWorkers())
	for w := range f.scratch {
		f.scratch[w].delta1, f.scratch[w].delta0 = make([]float32, f.p.d), make([]float32, f.p.d)
	}
}

func (a FAB) start(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand, rows []*rand.Rand) (*fab, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	if err := a.Supports(t.Norm, 2); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, a.Name(), m, x, y, t, settings{restarts: a.Restarts, rows: rows}, rng)
	if err != nil {
		return nil, err
	}
	f := &fab{a: a, p: p, adv: slices.Clone(x), dist: make([]float64, p.n), targeted: a.TargetClasses > 0}
	f.alphaMax, f.eta, f.beta = a.params()
	f.init()
	for i := range f.dist {
		f.dist[i] = math.Inf(1)
	}
	// The clean pass: misclassified samples are broken at distance 0.
	f.ranked, err = p.rankTargets()
	if err != nil {
		return nil, err
	}
	for i, ok := range p.res.Success {
		if ok {
			f.dist[i] = 0
		}
	}
	p.obj = objective{loss: LogitDiff, sign: 1}
	p.lossTargets = make([]int64, p.n)
	return f, nil
}

// search runs FAB's runs: the restarts, for each target class of FAB-T.
// With stop, a sample leaves once its closest adversarial image is within
// ε (it is then broken).
func (f *fab) search(stop bool) error {
	p := f.p
	targets := 1
	if f.targeted {
		targets = min(f.a.TargetClasses, p.c-1)
	}
	for rank := 1; rank <= targets; rank++ {
		if f.targeted {
			for i := range p.n {
				p.lossTargets[i] = f.ranked[i][rank]
			}
		}
		for run := range p.restarts() {
			if err := f.run(run > 0, stop); err != nil {
				return err
			}
		}
	}
	return nil
}

// fabRows is the per-row state of a FAB run.
type fabRows struct {
	x1, w    []float32 // d per row: the iterate, the chosen hyperplane's normal
	df, best []float64 // its offset f_j − f_y at x1; the chosen class's distance score
	grad     []float32 // scratch: d per row
	logits   []float32 // scratch
	losses   []float32 // scratch
	keep     []bool
}

// run is one FAB run from the clean images (or random starts) of the
// samples still to attack.
func (f *fab) run(random, stop bool) error {
	p := f.p
	r := &rows{}
	for i := range p.n {
		if f.dist[i] > 0 && !(stop && p.res.Success[i]) {
			r.idx = append(r.idx, i)
		}
	}
	n := r.len()
	if n == 0 {
		return nil
	}
	s := &fabRows{x1: make([]float32, n*p.d), w: make([]float32, n*p.d), df: make([]float64, n), best: make([]float64, n),
		grad: make([]float32, n*p.d), logits: make([]float32, n*p.c), losses: make([]float32, n), keep: make([]bool, n)}
	track(r, &s.x1, p.d)
	track(r, &s.w, p.d)
	track(r, &s.df, 1)
	track(r, &s.best, 1)
	for k := range n {
		x1 := row(s.x1, k, p.d)
		copy(x1, p.clean(r, k))
		if random {
			f.randomStart(x1, p.clean(r, k), p.rand(r.idx[k]))
		}
	}
	for range f.a.steps() {
		if err := f.linearise(r, s); err != nil {
			return err
		}
		forRows(r.len(), len(f.scratch), func(w, lo, hi int) {
			for k := lo; k < hi; k++ {
				f.move(&f.scratch[w], row(s.x1, k, p.d), p.clean(r, k), row(s.w, k, p.d), s.df[k])
			}
		})
		if err := p.logits(r, s.x1, s.logits); err != nil {
			return err
		}
		forRows(r.len(), len(f.scratch), func(_, lo, hi int) {
			for k := lo; k < hi; k++ {
				f.check(r, s, k, stop)
			}
		})
		kept := 0
		for _, ok := range s.keep[:r.len()] {
			if ok {
				kept++
			}
		}
		if kept < r.len() {
			r.filter(s.keep[:r.len()])
			if kept == 0 {
				return nil
			}
		}
	}
	return nil
}

// check records the iterate of row k if it is adversarial and closer
// than the sample's best, and then pulls it back towards the clean image
// by β; it sets keep[k] unless stop is set and the sample is broken.
func (f *fab) check(r *rows, s *fabRows, k int, stop bool) {
	p := f.p
	i := r.idx[k]
	x0, x1 := p.clean(r, k), row(s.x1, k, p.d)
	s.keep[k] = true
	if Predict(row(s.logits, k, p.c)) == int(p.y[i]) {
		return
	}
	if dd := p.t.Norm.Distance(x1, x0); dd < f.dist[i] {
		f.dist[i] = dd
		copy(row(f.adv, i, p.d), x1)
		if p.t.Contains(x0, x1) {
			p.res.Success[i] = true
			copy(row(p.res.Adv, i, p.d), x1)
			s.keep[k] = !stop
		}
	}
	for j, v := range x0 {
		x1[j] = v + (x1[j]-v)*float32(f.beta)
	}
}

// randomStart sets x1 to a random point at distance ε/2 from x0 (in the
// norm; clipped to [0,1]), as AutoAttack's FAB restarts do.
func (f *fab) randomStart(x1, x0 []float32, g *rand.Rand) {
	p := f.p
	for j := range x1 {
		if p.t.Norm == Linf {
			x1[j] = 2*g.Float32() - 1
		} else {
			x1[j] = float32(g.NormFloat64())
		}
	}
	norm := p.t.Norm.Distance(x1, make([]float32, len(x1)))
	scale := float32(float64(p.t.Eps) / 2 / max(norm, 1e-12))
	for j, v := range x0 {
		x1[j] = min(max(v+x1[j]*scale, 0), 1)
	}
}

// linearise computes, for each row, the hyperplane of the decision
// boundary closest to x1 in the linear model: its normal w = ∇(f_j − f_y)
// and offset df = f_j − f_y at x1, for the target j (FAB-T) or the class j
// minimising |f_j − f_y| / ‖∇(f_j − f_y)‖_* (the dual norm).
func (f *fab) linearise(r *rows, s *fabRows) error {
	p := f.p
	n := r.len()
	if f.targeted {
		if err := p.grad(r, s.x1, s.logits, s.losses, s.w); err != nil {
			return err
		}
		for k := range n {
			s.df[k] = float64(s.losses[k])
		}
		return nil
	}
	for k := range n {
		s.best[k] = math.Inf(1)
	}
	for j := range p.c {
		for _, i := range r.idx {
			p.lossTargets[i] = int64(j)
		}
		if err := p.grad(r, s.x1, s.logits, s.losses, s.grad); err != nil {
			return err
		}
		for k, i := range r.idx {
			if int64(j) == p.y[i] {
				continue
			}
			g := row(s.grad, k, p.d)
			score := math.Abs(float64(s.losses[k])) / (1e-12 + p.t.Norm.dual(g))
			if score < s.best[k] {
				s.best[k], s.df[k] = score, float64(s.losses[k])
				copy(row(s.w, k, p.d), g)
			}
		}
	}
	return nil
}

// move takes one FAB step from x1 for the clean image x0 and the
// hyperplane w·(x − x1) + df = 0.
func (f *fab) move(s *fabScratch, x1, x0, w []float32, df float64) {
	var wDiff float64 // w·(x1 − x0)
	for j, v := range x1 {
		wDiff += float64(w[j]) * float64(v-x0[j])
	}
	norm := f.p.t.Norm
	s.bnd1.step(norm, x1, w, -df, s.delta1)
	s.bnd0.step(norm, x0, w, -df+wDiff, s.delta0)
	a1 := max(norm.length(s.delta1), 1e-8)
	a0 := max(norm.length(s.delta0), 1e-8)
	alpha := min(max(a1/(a1+a0), 0), f.alphaMax)
	for j := range x1 {
		v := (float64(x1[j])+f.eta*float64(s.delta1[j]))*(1-alpha) + (float64(x0[j])+f.eta*float64(s.delta0[j]))*alpha
		// min(max(v, 0), 1), NaN kept, without the built-ins' NaN and
		// signed-zero branches.
		if v <= 0 {
			v = 0
		} else if v > 1 {
			v = 1
		}
		x1[j] = float32(v)
	}
}

package attacks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// settings are the options every attack shares, resolved from its own
// settings struct.
type settings struct {
	loss     Loss
	restarts int
	// targets holds a target class per sample for a targeted attack; nil
	// makes it untargeted.
	targets     []int64
	noEarlyStop bool
	// eot averages each gradient over that many evaluations (0, 1: one).
	eot int
	// largeEps runs L1 APGD at 3ε, 2ε, then ε (AutoAttack's use_largereps).
	largeEps bool
	// rows, when set, holds each sample's own random source ([RowSeeded]);
	// otherwise every draw comes from the rng given to Run.
	rows []*rand.Rand
}

// problem is one attack on a batch: the inputs, the result being built and
// the bookkeeping every attack shares.
type problem struct {
	ctx  context.Context
	name string
	m    Model
	x    []float32
	y    []int64
	t    ThreatModel
	eps  []float32 // per-sample radii (APGD.RunEach); nil: t.Eps for all
	// scale multiplies the radius the steps use (APGD's larger-ε stages);
	// success is still judged within the true radius. 0 means 1.
	scale   float32
	s       settings
	obj     objective
	rng     *rand.Rand
	rows    []*rand.Rand // settings.rows
	n, d, c int

	res  *Result
	best []float32 // highest margin seen per sample (the worst case)
	sum  []float32 // EoT: the running sum of gradients
	// EoT: the running sums of logits and losses
	logitSum, lossSum []float64

	// lossTargets are the target classes of a targeted loss: the attack's
	// targets, or the classes APGD-T and FAB-T pick for an untargeted goal.
	lossTargets []int64
	labelBuf    []int64 // Grad's labels for the active rows
	targetBuf   []int64 // Grad's targets for the active rows
}

// rand returns the random source of sample i of the batch: its own with
// [RowSeeded.RunRows], the batch's otherwise. Every random draw of an
// attack is for one sample and goes through it.
func (p *problem) rand(i int) *rand.Rand {
	if p.rows != nil {
		return p.rows[i]
	}
	return p.rng
}

// newProblem checks an attack's arguments and starts its result. A nil rng
// means a fixed seed.
func newProblem(ctx context.Context, name string, m Model, x []float32, y []int64, t ThreatModel, s settings, rng *rand.Rand) (*problem, error) {
	if m == nil {
		return nil, fmt.Errorf("%s: nil model", name)
	}
	sh := m.Shape()
	if s.rows != nil && len(s.rows) != len(y) {
		return nil, fmt.Errorf("%s: %d random sources for %d samples", name, len(s.rows), len(y))
	}
	p := &problem{ctx: ctx, name: name, m: m, x: x, y: y, t: t, s: s, rng: rng, rows: s.rows,
		n: len(y), d: sh[0] * sh[1] * sh[2], c: m.Classes()}
	if p.rng == nil {
		p.rng = rand.New(rand.NewPCG(0, 0))
	}
	if p.ctx == nil {
		p.ctx = context.Background()
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.obj, p.lossTargets = objectiveOf(s.loss, s.targets != nil), s.targets
	p.res = &Result{Adv: slices.Clone(x), Success: make([]bool, p.n),
		SampleQueries: make([]int, p.n), SampleRejected: make([]int, p.n)}
	p.best = make([]float32, p.n)
	for i := range p.best {
		p.best[i] = float32(math.Inf(-1))
	}
	return p, nil
}

func (p *problem) check() error {
	switch {
	case p.n == 0:
		return errors.New("empty batch")
	case p.d <= 0 || p.c < 2:
		return fmt.Errorf("model with input shape %v and %d classes", p.m.Shape(), p.c)
	case len(p.x) != p.n*p.d:
		return fmt.Errorf("%d input values for %d samples of %v", len(p.x), p.n, p.m.Shape())
	}
	for i, l := range p.y {
		if l < 0 || l >= int64(p.c) {
			return fmt.Errorf("label %d of sample %d is outside the model's %d classes", l, i, p.c)
		}
	}
	for i, v := range p.x {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("input value %v of sample %d is not in [0,1]", v, i/p.d)
		}
	}
	if err := p.t.Validate(p.d); err != nil {
		return err
	}
	if p.s.restarts < 0 {
		return fmt.Errorf("negative number of restarts %d", p.s.restarts)
	}
	if !p.s.loss.valid() {
		return fmt.Errorf("%w %v", ErrUnknownLoss, p.s.loss)
	}
	if p.s.loss.Targeted() && p.s.targets == nil {
		return fmt.Errorf("the %s loss needs targets", p.s.loss)
	}
	if p.s.targets != nil {
		if len(p.s.targets) != p.n {
			return fmt.Errorf("%d targets for %d samples", len(p.s.targets), p.n)
		}
		for i, t := range p.s.targets {
			if t < 0 || t >= int64(p.c) {
				return fmt.Errorf("target %d of sample %d is outside the model's %d classes", t, i, p.c)
			}
			if t == p.y[i] {
				return fmt.Errorf("target %d of sample %d is its true label", t, i)
			}
		}
	}
	obj := objectiveOf(p.s.loss, p.s.targets != nil)
	if need := obj.loss.MinClasses(); p.c < need {
		return fmt.Errorf("the %s loss needs at least %d classes; the model has %d", obj.loss, need, p.c)
	}
	return nil
}

// threat returns the threat model of sample i.
func (p *problem) threat(i int) ThreatModel {
	if p.eps != nil {
		return ThreatModel{Norm: p.t.Norm, Eps: p.eps[i]}
	}
	return p.t
}

// stepThreat returns the threat model the steps of sample i use: its own,
// scaled during APGD's larger-ε stages.
func (p *problem) stepThreat(i int) ThreatModel {
	t := p.threat(i)
	if p.scale > 0 {
		t.Eps *= p.scale
	}
	return t
}

// restarts returns the number of runs.
func (p *problem) restarts() int { return max(p.s.restarts, 1) }

// remaining returns the samples not yet broken, with a fresh copy of their
// clean images in adv (rows of d values).
func (p *problem) remaining(adv []float32) (*rows, []float32) {
	r := &rows{}
	for i, ok := range p.res.Success {
		if !ok {
			r.idx = append(r.idx, i)
		}
	}
	adv = adv[:len(r.idx)*p.d]
	for k, i := range r.idx {
		copy(row(adv, k, p.d), row(p.x, i, p.d))
	}
	return r, adv
}

// clean returns the clean image of the sample of active row k.
func (p *problem) clean(r *rows, k int) []float32 { return row(p.x, r.idx[k], p.d) }

// target returns the target class of sample i, or -1 when untargeted.
func (p *problem) target(i int) int64 {
	if p.s.targets == nil {
		return -1
	}
	return p.s.targets[i]
}

// gradInput returns Grad's input for the active rows at the points adv.
func (p *problem) gradInput(r *rows, adv []float32) GradInput {
	p.labelBuf, p.targetBuf = p.labelBuf[:0], p.targetBuf[:0]
	for _, i := range r.idx {
		if p.obj.onTargets {
			p.labelBuf = append(p.labelBuf, p.lossTargets[i])
		} else {
			p.labelBuf = append(p.labelBuf, p.y[i])
		}
		if p.obj.loss.Targeted() {
			p.targetBuf = append(p.targetBuf, p.lossTargets[i])
		}
	}
	in := GradInput{X: adv, N: r.len(), Loss: p.obj.loss, Labels: p.labelBuf}
	if p.obj.loss.Targeted() {
		in.Targets = p.targetBuf
	}
	return in
}

// grad evaluates the objective's loss and gradient at the active rows.
func (p *problem) grad(r *rows, adv, logits, losses, grad []float32) error {
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	in, out := p.gradInput(r, adv), GradOutput{Logits: logits, Losses: losses, Grad: grad}
	if err := p.m.Grad(in, out); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.count(r)
	if p.s.eot <= 1 {
		return nil
	}
	// Expectation over transformation: average the gradients of several
	// evaluations of a randomised model, and their logits and losses, so
	// that the attack judges its progress, and success, on the model's
	// expected output rather than on one lucky run. (AutoAttack keeps the
	// last evaluation's logits and losses.) The sums are in float64: on a
	// deterministic model the means are then the values themselves.
	n := r.len()
	size := n * p.d
	p.sum = append(p.sum[:0], grad[:size]...)
	p.logitSum = p.logitSum[:0]
	for _, v := range logits[:n*p.c] {
		p.logitSum = append(p.logitSum, float64(v))
	}
	p.lossSum = p.lossSum[:0]
	for _, v := range losses[:n] {
		p.lossSum = append(p.lossSum, float64(v))
	}
	for range p.s.eot - 1 {
		if err := p.m.Grad(in, out); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		p.count(r)
		for j, v := range grad[:size] {
			p.sum[j] += v
		}
		for j, v := range logits[:n*p.c] {
			p.logitSum[j] += float64(v)
		}
		for j, v := range losses[:n] {
			p.lossSum[j] += float64(v)
		}
	}
	k := float64(p.s.eot)
	for j, v := range p.sum {
		grad[j] = v / float32(p.s.eot)
	}
	for j, v := range p.logitSum {
		logits[j] = float32(v / k)
	}
	for j, v := range p.lossSum {
		losses[j] = float32(v / k)
	}
	return nil
}

// logits evaluates the model at the active rows.
func (p *problem) logits(r *rows, adv, logits []float32) error {
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	k := r.len()
	if err := p.m.Logits(adv, k, logits); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.count(r)
	return nil
}

// count adds one model evaluation of each active row to the queries.
func (p *problem) count(r *rows) {
	p.res.Queries += r.len()
	for _, i := range r.idx {
		p.res.SampleQueries[i]++
	}
}

// observe records the active rows' points adv, with their logits: a point
// that fools the model (and passes the threat-model check) breaks its
// sample, otherwise a point of higher margin becomes the sample's worst
// case. It fills keep with the rows to keep attacking (the unbroken ones,
// or all without early stop) and returns their number.
func (p *problem) observe(r *rows, adv, logits []float32, keep []bool) int {
	kept := 0
	for k, i := range r.idx {
		if p.res.Success[i] { // broken earlier in this run (no early stop)
			keep[k] = true
			kept++
			continue
		}
		z := row(logits, k, p.c)
		pt := row(adv, k, p.d)
		fooled := Fooled(z, p.y[i], p.target(i))
		margin := Margin(z, p.y[i], p.target(i))
		if (fooled || margin > p.best[i]) && !p.threat(i).Contains(p.x[i*p.d:(i+1)*p.d], pt) {
			if p.scale <= 1 { // a larger-ε stage's points may lie outside
				p.res.Rejected++
				p.res.SampleRejected[i]++
			}
			fooled = false
		} else if fooled || margin > p.best[i] {
			copy(row(p.res.Adv, i, p.d), pt)
			p.best[i] = margin
		}
		p.res.Success[i] = fooled
		keep[k] = !fooled || p.s.noEarlyStop
		if keep[k] {
			kept++
		}
	}
	return kept
}

// Predict returns the index of the largest logit (the first on ties;
// NaNs are never the largest).
func Predict(z []float32) int {
	best := 0
	for j, v := range z {
		if v > z[best] || (z[best] != z[best] && v == v) {
			best = j
		}
	}
	return best
}

// Fooled reports whether logits z misclassify a sample of label y
// (untargeted, target < 0) or classify it as target.
func Fooled(z []float32, y, target int64) bool {
	pred := int64(Predict(z))
	if target >= 0 {
		return pred == target
	}
	return pred != y
}

// Margin is the attack's progress on logits z: max_{j≠y} z_j − z_y for an
// untargeted attack (target < 0), z_t − max_{j≠t} z_j for a targeted one.
// It is positive when the attack has succeeded.
func Margin(z []float32, y, target int64) float32 {
	if target >= 0 {
		return -Margin(z, target, -1)
	}
	other := float32(math.Inf(-1))
	for j, v := range z {
		if int64(j) != y {
			other = max(other, v)
		}
	}
	return other - z[y]
}

// rows tracks the samples an attack still works on: row k of each
// registered per-sample array belongs to sample idx[k]. filter drops the
// rows of broken samples from all of them at once.
type rows struct {
	idx  []int
	cols []column
}

type column interface{ filter(keep []bool) }

type col[T any] struct {
	s *[]T
	w int
}

func (c col[T]) filter(keep []bool) {
	s, j := *c.s, 0
	for i, ok := range keep {
		if ok {
			if i != j {
				copy(s[j*c.w:(j+1)*c.w], s[i*c.w:(i+1)*c.w])
			}
			j++
		}
	}
	*c.s = s[:j*c.w]
}

// track registers a per-sample array of w values per row.
func track[T any](r *rows, s *[]T, w int) { r.cols = append(r.cols, col[T]{s, w}) }

func (r *rows) len() int { return len(r.idx) }

// filter keeps the rows where keep is set.
func (r *rows) filter(keep []bool) {
	col[int]{&r.idx, 1}.filter(keep)
	for _, c := range r.cols {
		c.filter(keep)
	}
}

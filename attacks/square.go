package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

const (
	// squarePInit is the initial fraction of pixels a square covers
	// (AutoAttack's value for L∞).
	squarePInit = 0.8
	// squareDefaultQueries is the default query budget.
	squareDefaultQueries = 1000
)

// Square is the Square attack (Andriushchenko et al. 2020, "Square
// Attack: a query-efficient black-box adversarial attack via random
// search"): a random search that uses only the model's logits, never its
// gradients, so it is not fooled by masked or obfuscated gradients.
//
// In the L2 norm (the paper's L2 variant) it starts from a grid of
// pseudo-Gaussian squares and each candidate moves the perturbation's mass
// from one random window to another, redrawn as a pseudo-Gaussian square,
// keeping the perturbation's norm at ε. The L∞ version:
// It starts from vertical stripes of ±ε and then, for up to Queries
// queries per sample (default 1000), sets a random square window of each
// image to a random corner ±ε per channel, keeping the change when it
// lowers the margin z_y − max_{j≠y} z_j (targeted: max_{j≠t} z_j − z_t).
// The window's area starts at 80% of the image and shrinks on AutoAttack's
// schedule. Restarts rerun it on the samples still unbroken.
type Square struct {
	// Queries is the query budget per sample (default 1000).
	Queries int
	// Restarts is the number of runs (0 means one).
	Restarts int
	// Targets holds a target class per sample of the batch for a targeted
	// attack; nil makes it untargeted.
	Targets []int64
}

// Name returns "square".
func (a Square) Name() string { return "square" }

func (a Square) queries() int {
	if a.Queries == 0 {
		return squareDefaultQueries
	}
	return a.Queries
}

// String describes the attack: "Square 1000 queries ×1".
func (a Square) String() string {
	return fmt.Sprintf("Square %d queries ×%d", a.queries(), max(a.Restarts, 1))
}

// BlackBox reports that Square uses no gradients.
func (Square) BlackBox() bool { return true }

// Supports reports whether the attack can run in the norm (L∞, L2).
func (a Square) Supports(norm Norm, classes int) error {
	return supportNorms("square", norm, Linf, L2)
}

// WithEffort returns the attack with e's queries.
func (a Square) WithEffort(e Effort) Attack {
	if e.Queries > 0 {
		a.Queries = e.Queries
	}
	return a
}

// Run attacks a batch.
func (a Square) Run(ctx context.Context, m Model, x []float32, y []int64, t ThreatModel, rng *rand.Rand) (*Result, error) {
	if a.Queries < 0 {
		return nil, fmt.Errorf("square: negative query budget %d", a.Queries)
	}
	if err := a.Supports(t.Norm, 2); err != nil {
		return nil, err
	}
	p, err := newProblem(ctx, "square", m, x, y, t, settings{restarts: a.Restarts, targets: a.Targets}, rng)
	if err != nil {
		return nil, err
	}
	queries := a.queries()
	buf := make([]float32, p.n*p.d)
	for range p.restarts() {
		r, adv := p.remaining(buf)
		if r.len() == 0 {
			break
		}
		if err := p.squareRun(r, adv, queries); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

// squareState is the per-row state of a Square run.
type squareState struct {
	best   []float32 // d per row: the current iterate
	margin []float32 // lowest −Margin so far (the loss being minimised)
	cand   []float32 // scratch: d per row, the candidates
	logits []float32 // scratch
	keep   []bool
}

func (p *problem) squareRun(r *rows, adv []float32, queries int) error {
	sh := p.m.Shape()
	c, h, w := sh[0], sh[1], sh[2]
	n := r.len()
	s := &squareState{best: adv, cand: make([]float32, n*p.d), margin: make([]float32, n),
		logits: make([]float32, n*p.c), keep: make([]bool, n)}
	track(r, &s.best, p.d)
	track(r, &s.margin, 1)
	eps := p.t.Eps

	// L∞: vertical stripes, one random sign per channel and column.
	for k := range n {
		pt, x := row(s.best, k, p.d), p.clean(r, k)
		if p.t.Norm == L2 {
			p.squareInitL2(pt, x, c, h, w)
			continue
		}
		for ch := range c {
			for col := range w {
				sign := p.randSign()
				for i := range h {
					j := (ch*h+i)*w + col
					pt[j] = x[j] + sign*eps
				}
			}
		}
		project(pt, x, p.t)
	}
	if err := p.logits(r, s.best, s.logits); err != nil {
		return err
	}
	for k, i := range r.idx {
		s.margin[k] = -Margin(row(s.logits, k, p.c), p.y[i], p.target(i))
	}
	if !p.squareObserve(r, s.best, s) {
		return nil
	}
	for it := 1; it < queries; it++ {
		size := squareSize(it, queries, c, h, w)
		if p.t.Norm == L2 {
			size = min(max(size, 3)|1, h, w)
		}
		for k := range r.len() {
			if p.t.Norm == L2 {
				p.squareCandidateL2(row(s.cand, k, p.d), row(s.best, k, p.d), p.clean(r, k), c, h, w, size)
				continue
			}
			p.squareCandidate(row(s.cand, k, p.d), row(s.best, k, p.d), p.clean(r, k), c, h, w, size)
		}
		if err := p.logits(r, s.cand, s.logits); err != nil {
			return err
		}
		for k, i := range r.idx {
			if l := -Margin(row(s.logits, k, p.c), p.y[i], p.target(i)); l < s.margin[k] {
				s.margin[k] = l
				copy(row(s.best, k, p.d), row(s.cand, k, p.d))
			}
		}
		// A candidate that fools the model has a positive margin, so it
		// was accepted above.
		if !p.squareObserve(r, s.cand, s) {
			return nil
		}
	}
	return nil
}

// squareObserve records the rows' points pts, whose logits are in s, and
// drops broken samples; it reports whether rows are left.
func (p *problem) squareObserve(r *rows, pts []float32, s *squareState) bool {
	k := r.len()
	keep := s.keep[:k]
	if p.observe(r, pts, s.logits, keep) < k {
		r.filter(keep)
	}
	return r.len() > 0
}

// squareHalvings are AutoAttack's iteration thresholds (out of 10,000)
// after each of which the window's pixel fraction halves.
var squareHalvings = []int{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000}

// squareSize returns the side of the square window at iteration it of
// queries: the window covers a fraction p of the pixels, p halving on
// AutoAttack's schedule (iterations rescaled to 10,000).
func squareSize(it, queries, c, h, w int) int {
	pFrac := squarePInit
	t := int(float64(it) / float64(queries) * 10000)
	for _, th := range squareHalvings {
		if t > th {
			pFrac /= 2
		}
	}
	s := int(math.Round(math.Sqrt(pFrac * float64(h*w))))
	return min(max(s, 1), h, w)
}

// squareCandidate sets cand to best with a random size×size window moved
// to x ± ε, one random sign per channel. The sign is redrawn while the
// window would not change.
func (p *problem) squareCandidate(cand, best, x []float32, c, h, w, size int) {
	copy(cand, best)
	top, left := p.rng.IntN(h-size+1), p.rng.IntN(w-size+1)
	eps := p.t.Eps
	for range 10 {
		changed := false
		for ch := range c {
			sign := p.randSign()
			for i := top; i < top+size; i++ {
				for j := left; j < left+size; j++ {
					k := (ch*h+i)*w + j
					v := min(max(x[k]+sign*eps, 0), 1)
					changed = changed || v != best[k]
					cand[k] = v
				}
			}
		}
		if changed {
			return
		}
	}
}

// randSign returns −1 or +1 with equal probability.
func (p *problem) randSign() float32 {
	if p.rng.IntN(2) == 0 {
		return -1
	}
	return 1
}

// etaRectangle returns the x×y pattern of the paper's L2 squares: nested
// rectangles around the centre, the k-th (from the inside) adding 1/k²,
// normalised to unit L2 norm.
func etaRectangle(x, y int) []float64 {
	out := make([]float64, x*y)
	cx, cy := x/2, y/2
	for k := 0; k < max(x/2+1, y/2+1); k++ {
		v := 1 / float64((k+1)*(k+1))
		for i := max(cx-k, 0); i < min(cx-k+2*k+1, x); i++ {
			for j := max(cy-k, 0); j < min(cy-k+2*k+1, y); j++ {
				out[i*y+j] += v
			}
		}
	}
	normalize(out)
	return out
}

// pseudoGaussian returns an s×s square whose halves are opposite
// etaRectangles, normalised, transposed with probability ½.
func (p *problem) pseudoGaussian(s int) []float64 {
	out := make([]float64, s*s)
	top, bottom := etaRectangle(s/2, s), etaRectangle(s-s/2, s)
	copy(out, top)
	for i, v := range bottom {
		out[len(top)+i] = -v
	}
	normalize(out)
	if p.rng.IntN(2) == 0 {
		t := make([]float64, s*s)
		for i := range s {
			for j := range s {
				t[j*s+i] = out[i*s+j]
			}
		}
		out = t
	}
	return out
}

// normalize scales v to unit L2 norm (a zero vector stays zero).
func normalize(v []float64) {
	var s float64
	for _, x := range v {
		s += x * x
	}
	if s = math.Sqrt(s); s > 0 {
		for i := range v {
			v[i] /= s
		}
	}
}

// squareInitL2 sets pt to x plus a grid of pseudo-Gaussian squares of side
// h/5, a random sign per square and channel, scaled to norm ε and clipped.
func (p *problem) squareInitL2(pt, x []float32, c, h, w int) {
	delta := make([]float64, len(pt))
	s := max(h/5, 1)
	start := (h - s*5) / 2
	if h < 5 {
		start = 0
	}
	for vh := start; vh+s <= h; vh += s {
		for vw := start; vw+s <= w; vw += s {
			sq := p.pseudoGaussian(s)
			for ch := range c {
				sign := float64(p.randSign())
				for i := range s {
					for j := range s {
						delta[(ch*h+vh+i)*w+vw+j] += sign * sq[i*s+j]
					}
				}
			}
		}
	}
	p.setL2(pt, x, delta)
}

// setL2 sets pt to x + ε·δ/‖δ‖₂, clipped to [0,1].
func (p *problem) setL2(pt, x []float32, delta []float64) {
	normalize(delta)
	for j, v := range delta {
		pt[j] = min(max(x[j]+float32(float64(p.t.Eps)*v), 0), 1)
	}
}

// squareCandidateL2 sets cand to best with the perturbation's mass in a
// random size×size window (per channel) redrawn as a pseudo-Gaussian
// square plus the window's old direction, and a second random window
// emptied into it, as in the paper's L2 attack.
func (p *problem) squareCandidateL2(cand, best, x []float32, c, h, w, size int) {
	d := len(best)
	delta := make([]float64, d)
	var total float64 // ‖best − x‖²
	for j := range delta {
		delta[j] = float64(best[j]) - float64(x[j])
		total += delta[j] * delta[j]
	}
	h1, w1 := p.rng.IntN(h-size+1), p.rng.IntN(w-size+1)
	h2, w2 := p.rng.IntN(h-size+1), p.rng.IntN(w-size+1)
	in := func(vh, vw, i, j int) bool { return i >= vh && i < vh+size && j >= vw && j < vw+size }
	var windows float64 // ‖δ‖² over both windows
	for ch := range c {
		for i := range h {
			for j := range w {
				if in(h1, w1, i, j) || in(h2, w2, i, j) {
					v := delta[(ch*h+i)*w+j]
					windows += v * v
				}
			}
		}
	}
	budget := math.Sqrt(max(float64(p.t.Eps)*float64(p.t.Eps)-total, 0)/float64(c) + windows)
	sq := p.pseudoGaussian(size)
	fresh := make([]float64, size*size)
	for ch := range c {
		var old float64
		for i := range size {
			for j := range size {
				v := delta[(ch*h+h1+i)*w+w1+j]
				old += v * v
			}
		}
		old = math.Sqrt(old) + 1e-12
		sign := float64(p.randSign())
		for i := range size {
			for j := range size {
				fresh[i*size+j] = sign*sq[i*size+j] + delta[(ch*h+h1+i)*w+w1+j]/old
			}
		}
		normalize(fresh)
		for i := range size {
			for j := range size {
				delta[(ch*h+h2+i)*w+w2+j] = 0
			}
		}
		for i := range size {
			for j := range size {
				delta[(ch*h+h1+i)*w+w1+j] = fresh[i*size+j] * budget
			}
		}
	}
	p.setL2(cand, x, delta)
}

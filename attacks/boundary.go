package attacks

import (
	"math"
	"slices"
)

// boundary computes FAB's projection step: the smallest step δ, in a norm,
// from a point p of the box [0,1]^d onto the hyperplane w·(p+δ) = w·p + r
// such that p+δ stays in the box; when the box keeps the hyperplane out of
// reach, the step to the box corner that goes furthest towards it.
//
// It is written here rather than taken from a library because it is a
// small, norm-specific optimisation with a box constraint that no Go
// library offers. All three norms reduce to the same form: with
// a_i = sign(r)·w_i, coordinate i moves by e_i ≥ 0 in the direction
// sign(a_i), up to the room u_i left in the box that way, gaining |a_i|·e_i
// towards R = |r|. The minimal steps are
//
//   - L∞: e_i = min(λ, u_i), λ the smallest level with Σ|a_i|e_i = R;
//   - L2: e_i = min(μ|a_i|, u_i) (the KKT conditions of the box-constrained
//     least-norm problem), μ likewise;
//   - L1: fill the coordinates in decreasing |a_i| (cheapest gain first),
//     each up to u_i, the last one partly.
//
// Each is a breakpoint search on a piecewise-linear, increasing gain
// function: by selection for L∞ and L2 (expected O(d)), by sorting for L1.
type boundary struct {
	idx  []int
	room []float64 // u_i: the room in the box in the direction of a_i
	abs  []float64 // |a_i|
	key  []float64 // the breakpoint of coordinate i
	c, s []float64 // the gain of coordinate i: min(t·s_i, c_i)
}

// step writes δ into delta for the point p, normal w and offset r.
func (b *boundary) step(n Norm, p, w []float32, r float64, delta []float32) {
	clear(delta)
	if r == 0 || math.IsNaN(r) {
		return
	}
	sign := float32(1)
	if r < 0 {
		sign = -1
	}
	want := math.Abs(r)
	d := len(p)
	grow := func(v []float64) []float64 { return slices.Grow(v[:0], d)[:d] }
	b.idx = b.idx[:0]
	b.room, b.abs, b.key, b.c, b.s = grow(b.room), grow(b.abs), grow(b.key), grow(b.c), grow(b.s)
	var reach float64 // the gain of the full corner step
	for i, wi := range w {
		switch a := sign * wi; {
		case a > 0:
			b.room[i] = 1 - float64(p[i])
		case a < 0:
			b.room[i] = float64(p[i])
		default: // zero or NaN
			continue
		}
		if b.room[i] <= 0 {
			continue
		}
		b.abs[i] = math.Abs(float64(wi))
		b.idx = append(b.idx, i)
		reach += b.abs[i] * b.room[i]
	}
	// dir is the sign of coordinate i's move: that of a_i = sign·w_i.
	dir := func(i int) float64 {
		if sign*w[i] > 0 {
			return 1
		}
		return -1
	}
	if reach <= want {
		for _, i := range b.idx {
			delta[i] = float32(dir(i) * b.room[i])
		}
		return
	}
	switch n {
	case L1:
		for _, i := range b.idx {
			b.key[i] = -b.abs[i]
		}
		b.sort()
		left := want
		for _, i := range b.idx {
			gain := b.abs[i] * b.room[i]
			if gain >= left {
				delta[i] = float32(dir(i) * left / b.abs[i])
				return
			}
			delta[i] = float32(dir(i) * b.room[i])
			left -= gain
		}
	case L2:
		// Coordinate i saturates at μ = u_i/|a_i|; below, it gains μ·a_i².
		for _, i := range b.idx {
			b.key[i], b.c[i], b.s[i] = b.room[i]/b.abs[i], b.abs[i]*b.room[i], b.abs[i]*b.abs[i]
		}
		mu := b.level(want)
		for _, i := range b.idx {
			delta[i] = float32(dir(i) * min(mu*b.abs[i], b.room[i]))
		}
	default:
		// Coordinate i saturates at λ = u_i; below, it gains λ·|a_i|.
		for _, i := range b.idx {
			b.key[i], b.c[i], b.s[i] = b.room[i], b.abs[i]*b.room[i], b.abs[i]
		}
		lambda := b.level(want)
		for _, i := range b.idx {
			delta[i] = float32(dir(i) * min(lambda, b.room[i]))
		}
	}
}

// sort orders idx by increasing key.
func (b *boundary) sort() {
	slices.SortFunc(b.idx, func(i, j int) int {
		switch {
		case b.key[i] < b.key[j]:
			return -1
		case b.key[i] > b.key[j]:
			return 1
		}
		return i - j
	})
}

// level finds the level t at which the gain G(t) = Σ_i min(t·s_i, c_i)
// reaches want, coordinate i saturating at t = key_i = c_i/s_i. It
// partitions idx around pivots, as quickselect does, so that it takes
// expected O(d) time instead of a sort's O(d log d): the projection runs
// twice per sample and step of FAB.
func (b *boundary) level(want float64) float64 {
	idx := b.idx
	// saturated sums c_i over the coordinates known to saturate below the
	// level, slope s_i over those known to stay linear up to it; idx[lo:hi]
	// are undecided.
	var saturated, slope float64
	lo, hi := 0, len(idx)
	for lo < hi {
		pivot := b.key[idx[lo+(hi-lo)/2]]
		m := lo
		for j := lo; j < hi; j++ {
			if b.key[idx[j]] < pivot {
				idx[m], idx[j] = idx[j], idx[m]
				m++
			}
		}
		var below, above float64
		for _, i := range idx[lo:m] {
			below += b.c[i]
		}
		for _, i := range idx[m:hi] {
			above += b.s[i]
		}
		if saturated+below+pivot*(slope+above) >= want {
			slope += above // the level is at most the pivot
			hi = m
			continue
		}
		// The level is above the pivot: keys up to it saturate.
		saturated += below
		for j := m; j < hi; j++ {
			if b.key[idx[j]] == pivot {
				idx[m], idx[j] = idx[j], idx[m]
				saturated += b.c[idx[m]]
				m++
			}
		}
		lo = m
	}
	if slope == 0 {
		return 0
	}
	return (want - saturated) / slope
}

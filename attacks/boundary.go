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
	// on holds the coordinates that can move, with their breakpoints and
	// gains; level and sort permute it.
	on []coord
}

// coord is a coordinate that can move towards the hyperplane: its index
// i, its breakpoint key and its gain min(t·s, c) at level t.
type coord struct {
	key, c, s float64
	i         int
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
	b.on = slices.Grow(b.on[:0], len(p))
	var reach float64 // the gain of the full corner step
	for i, wi := range w {
		var room float64 // u_i: the room in the box in the direction of a_i
		switch a := sign * wi; {
		case a > 0:
			room = 1 - float64(p[i])
		case a < 0:
			room = float64(p[i])
		default: // zero or NaN
			continue
		}
		if room <= 0 {
			continue
		}
		abs := math.Abs(float64(wi))
		// key and s are set per norm below; c is the full gain.
		b.on = append(b.on, coord{key: room, c: abs * room, s: abs, i: i})
		reach += abs * room
	}
	// dir is the sign of coordinate i's move: that of a_i = sign·w_i.
	dir := func(i int) float64 {
		if sign*w[i] > 0 {
			return 1
		}
		return -1
	}
	if reach <= want {
		for _, e := range b.on {
			delta[e.i] = float32(dir(e.i) * e.key)
		}
		return
	}
	switch n {
	case L1:
		// Cheapest gain first: by decreasing |a_i| = s, then index.
		slices.SortFunc(b.on, func(x, y coord) int {
			switch {
			case x.s > y.s:
				return -1
			case x.s < y.s:
				return 1
			}
			return x.i - y.i
		})
		left := want
		for _, e := range b.on {
			if e.c >= left {
				delta[e.i] = float32(dir(e.i) * left / e.s)
				return
			}
			delta[e.i] = float32(dir(e.i) * e.key)
			left -= e.c
		}
	case L2:
		// Coordinate i saturates at μ = u_i/|a_i|; below, it gains μ·a_i².
		for k := range b.on {
			e := &b.on[k]
			e.key, e.s = e.key/e.s, e.s*e.s
		}
		mu := b.level(want)
		for _, e := range b.on {
			room, abs := float64(p[e.i]), math.Abs(float64(w[e.i]))
			if sign*w[e.i] > 0 {
				room = 1 - room
			}
			delta[e.i] = float32(dir(e.i) * min(mu*abs, room))
		}
	default:
		// Coordinate i saturates at λ = u_i; below, it gains λ·|a_i|.
		lambda := b.level(want)
		for _, e := range b.on {
			delta[e.i] = float32(dir(e.i) * min(lambda, e.key))
		}
	}
}

// level finds the level t at which the gain G(t) = Σ_i min(t·s_i, c_i)
// reaches want, coordinate i saturating at t = key_i = c_i/s_i. It
// partitions idx around pivots, as quickselect does, so that it takes
// expected O(d) time instead of a sort's O(d log d): the projection runs
// twice per sample and step of FAB.
func (b *boundary) level(want float64) float64 {
	on := b.on
	// saturated sums c_i over the coordinates known to saturate below the
	// level, slope s_i over those known to stay linear up to it; on[lo:hi]
	// are undecided.
	var saturated, slope float64
	lo, hi := 0, len(on)
	for lo < hi {
		pivot := on[lo+(hi-lo)/2].key
		m := lo
		for j := lo; j < hi; j++ {
			if on[j].key < pivot {
				on[m], on[j] = on[j], on[m]
				m++
			}
		}
		var below, above float64
		for _, e := range on[lo:m] {
			below += e.c
		}
		for _, e := range on[m:hi] {
			above += e.s
		}
		if saturated+below+pivot*(slope+above) >= want {
			slope += above // the level is at most the pivot
			hi = m
			continue
		}
		// The level is above the pivot: keys up to it saturate.
		saturated += below
		for j := m; j < hi; j++ {
			if on[j].key == pivot {
				on[m], on[j] = on[j], on[m]
				saturated += on[m].c
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

package attacks

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// project moves adv, an image near the clean image x, to the closest point
// (L∞) or the radial projection (L2) of the ε-ball around x, then clips it
// to [0,1]. Clipping only shrinks each coordinate's change, so the result
// stays in the ball. For L1 it is the Euclidean projection onto the ball
// intersected with the box.
func project(adv, x []float32, t ThreatModel) {
	n, eps := t.Norm, t.Eps
	if n == L1 {
		var q l1Projection
		q.project(adv, x, eps)
		return
	}
	if n == L2 {
		var s float64
		for i, v := range adv {
			d := float64(v - x[i])
			s += d * d
		}
		if norm := math.Sqrt(s); norm > float64(eps) {
			scale := float32(float64(eps) / norm)
			for i, v := range adv {
				adv[i] = x[i] + (v-x[i])*scale
			}
		}
		clip01(adv)
		return
	}
	for i, v := range adv {
		lo, hi := max(x[i]-eps, 0), min(x[i]+eps, 1)
		adv[i] = min(max(v, lo), hi)
	}
}

// clip01 clips every value to [0,1].
func clip01(v []float32) {
	for i, x := range v {
		v[i] = min(max(x, 0), 1)
	}
}

// randomStart sets adv to a uniformly random point of the ε-ball around x,
// clipped to [0,1]; for L1, as AutoAttack does, to the projection of x
// plus standard Gaussian noise onto the ball and the box.
func randomStart(adv, x []float32, t ThreatModel, rng *rand.Rand) {
	n, eps := t.Norm, t.Eps
	if n == L1 {
		for i := range adv {
			adv[i] = x[i] + float32(rng.NormFloat64())
		}
		project(adv, x, t)
		return
	}
	if n == L2 {
		// A Gaussian direction and a radius ε·u^(1/d) give the uniform
		// distribution on the ball.
		var s float64
		for i := range adv {
			g := rng.NormFloat64()
			adv[i] = float32(g)
			s += g * g
		}
		r := float64(eps) * math.Pow(rng.Float64(), 1/float64(len(adv)))
		scale := float32(r / max(math.Sqrt(s), 1e-12))
		for i := range adv {
			adv[i] = x[i] + adv[i]*scale
		}
		clip01(adv)
		return
	}
	for i := range adv {
		adv[i] = x[i] + eps*(2*rng.Float32()-1)
	}
	project(adv, x, t)
}

// ascend moves adv by a step of length alpha in the steepest-ascent
// direction of the norm for the gradient g scaled by sign: α·sign(g) for
// L∞, α·g/‖g‖₂ for L2. A zero gradient leaves adv unchanged.
func ascend(adv, g []float32, n Norm, alpha, sign float32) {
	if n == L2 {
		var s float64
		for _, v := range g {
			s += float64(v) * float64(v)
		}
		if s == 0 || math.IsNaN(s) {
			return
		}
		scale := sign * alpha / float32(math.Sqrt(s))
		for i, v := range g {
			adv[i] += scale * v
		}
		return
	}
	step := sign * alpha
	for i, v := range g {
		switch {
		case v > 0:
			adv[i] += step
		case v < 0:
			adv[i] -= step
		}
	}
}

// row returns row i of a matrix with rows of w values.
func row[T any](s []T, i, w int) []T { return s[i*w : (i+1)*w : (i+1)*w] }

// length returns the norm of v: its distance from 0, as Distance
// computes it (the same sums in the same order).
func (n Norm) length(v []float32) float64 {
	switch n {
	case L2:
		var s float64
		for _, x := range v {
			d := float64(x)
			s += d * d
		}
		return math.Sqrt(s)
	case L1:
		var s float64
		for _, x := range v {
			s += math.Abs(float64(x))
		}
		return s
	}
	return maxAbs64(v)
}

// maxAbs64 returns max_i |v_i| as a float64, or NaN if any v_i is NaN.
func maxAbs64(v []float32) float64 {
	var m float32
	for _, x := range v {
		a := math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
		if a > m {
			m = a
		} else if a != a {
			return math.NaN()
		}
	}
	return float64(m)
}

// rowWorkers is the number of goroutines that share an attack's per-row
// Go work (FAB's projections): GOMAXPROCS.
func rowWorkers() int { return runtime.GOMAXPROCS(0) }

// forRows calls fn on the rows [0, n) split into contiguous chunks, one
// per worker w < workers (fewer when n is smaller), concurrently, and
// returns when all are done. fn must touch only its rows' data and the
// worker's own scratch space; each row's result is then independent of
// the split.
func forRows(n, workers int, fn func(w, lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, n*w/workers, n*(w+1)/workers)
		}()
	}
	fn(0, 0, n/workers)
	wg.Wait()
}

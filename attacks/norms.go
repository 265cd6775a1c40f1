package attacks

import (
	"math"
	"math/rand/v2"
)

// Distance returns the norm of a − b.
func (n Norm) Distance(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		d := math.Abs(float64(v) - float64(b[i]))
		if n == L2 {
			s += d * d
		} else {
			s = max(s, d)
		}
	}
	if n == L2 {
		return math.Sqrt(s)
	}
	return s
}

// tolerance is the slack of the budget check, for the float32 rounding of
// x + δ: a few units in the last place of values in [0,1].
func tolerance(n Norm, eps float32, d int) float64 {
	if n == L2 {
		return 1e-5*float64(eps) + 2e-7*math.Sqrt(float64(d))
	}
	return 1e-6
}

// WithinBudget reports whether adv lies in [0,1] and within eps of x in
// the norm n (up to float32 rounding).
func WithinBudget(x, adv []float32, n Norm, eps float32) bool {
	if len(x) != len(adv) {
		return false
	}
	for _, v := range adv {
		if !(v >= 0 && v <= 1) {
			return false
		}
	}
	return n.Distance(adv, x) <= float64(eps)+tolerance(n, eps, len(x))
}

// project moves adv, an image near the clean image x, to the closest point
// (L∞) or the radial projection (L2) of the ε-ball around x, then clips it
// to [0,1]. Clipping only shrinks each coordinate's change, so the result
// stays in the ball.
func project(adv, x []float32, n Norm, eps float32) {
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
// clipped to [0,1].
func randomStart(adv, x []float32, n Norm, eps float32, rng *rand.Rand) {
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
	project(adv, x, n, eps)
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

package attacks

import (
	"math"
	"math/rand/v2"
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

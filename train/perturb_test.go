package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFreeUpdate checks the branch-free loop against the textbook rule on
// edge cases (clamped inputs, zero gradients, δ at ±ε) and random values,
// for several worker counts.
func TestFreeUpdate(t *testing.T) {
	const eps = float32(0.1)
	type elem struct{ x, d, g, wantD float32 }
	edges := []elem{
		{0.5, 0, 1, 0.1},      // plain step up
		{0.5, 0, -2, -0.1},    // plain step down
		{0.5, 0.1, 1, 0.1},    // clipped at +ε
		{0.5, -0.05, 1, 0.05}, // partial
		{0.5, 0.05, 0, 0.05},  // zero gradient: sign 0
		{0, -0.05, 1, -0.05},  // x+δ < 0: the clamp stops the gradient
		{1, 0.05, -1, 0.05},   // x+δ > 1: likewise
		{0, 0, -1, -0.1},      // x+δ = 0: on the boundary the gradient passes
		{0.95, 0.05, 1, 0.1},  // x+δ = 1 passes too
		{0.5, 0.02, float32(math.Copysign(0, -1)), 0.02}, // −0
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 15 {
		x := float32(r.IntN(3)) / 2 * r.Float32()
		d := eps * (2*r.Float32() - 1)
		g := r.Float32() - 0.5
		want := d
		if a := x + d; a >= 0 && a <= 1 {
			want = float32(math.Max(-0.1, math.Min(0.1, float64(d+eps*sign(g)))))
		}
		edges = append(edges, elem{x, d, g, want})
	}
	for _, workers := range []int{1, 3} {
		n := len(edges)
		x, d, g, in := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i, e := range edges {
			x[i], d[i], g[i] = e.x, e.d, e.g
		}
		freeUpdate(d, in, x, g, eps, workers)
		for i, e := range edges {
			if math.Abs(float64(d[i]-e.wantD)) > 1e-7 {
				t.Fatalf("workers %d, x %v δ %v ∇ %v: δ became %v, want %v", workers, e.x, e.d, e.g, d[i], e.wantD)
			}
			if want := min(max(x[i]+d[i], 0), 1); in[i] != want {
				t.Fatalf("next input %v, want %v", in[i], want)
			}
		}
	}
}

func sign(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// TestAscend checks PGD's step and projection and the random start.
func TestAscend(t *testing.T) {
	const eps, alpha = float32(0.1), float32(0.04)
	r := rand.New(rand.NewPCG(3, 4))
	n := 1 << 16
	x, adv, g := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(r.IntN(3)) / 2 * r.Float32()
		g[i] = r.Float32() - 0.5
		if i%97 == 0 {
			g[i] = 0
		}
	}
	randomStart(adv, x, eps, r)
	for step := range 4 {
		prev := append([]float32(nil), adv...)
		ascend(adv, x, g, alpha, eps, 2)
		for i := range x {
			lo, hi := max(x[i]-eps, 0), min(x[i]+eps, 1)
			if adv[i] < lo || adv[i] > hi {
				t.Fatalf("step %d: %v outside [%v, %v]", step, adv[i], lo, hi)
			}
			want := min(max(prev[i]+alpha*sign(g[i]), lo), hi)
			if math.Abs(float64(adv[i]-want)) > 1e-6 {
				t.Fatalf("step %d: %v, want %v", step, adv[i], want)
			}
		}
	}
}

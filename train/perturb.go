package train

import (
	"math"
	"math/rand/v2"
	"sync"
)

// Elementwise perturbation arithmetic of the adversarial methods. Images
// are in [0,1]; a perturbation δ stays in [−ε, ε]. The loops are written
// without data-dependent branches (the compiler turns them into
// conditional moves and MINSS/MAXSS): gradient signs are random, and
// mispredicted branches made them several times slower.

// parallel runs fn on [0,n) cut into up to workers contiguous chunks.
func parallel(n, workers int, fn func(lo, hi int)) {
	const grain = 1 << 14
	k := min(workers, n/grain)
	if k <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range k {
		lo, hi := n*w/k, n*(w+1)/k
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// freeInput writes the free-training input clamp(x+δ, 0, 1) into in.
func freeInput(in, x, delta []float32, workers int) {
	parallel(len(x), workers, func(lo, hi int) {
		in, x, delta := in[lo:hi], x[lo:hi], delta[lo:hi]
		for i, v := range x {
			in[i] = min(max(v+delta[i], 0), 1)
		}
	})
}

// freeUpdate is free training's perturbation step,
//
//	δ ← clip(δ + ε·sign(∂loss/∂δ), −ε, ε),
//
// followed by the next replay's input, in ← clamp(x+δ, 0, 1). grad is
// ∂loss/∂input at input clamp(x+δ, 0, 1); the chain rule through the clamp
// zeroes it where x+δ lies outside [0,1], as in the reference code
// (PyTorch's clamp passes the gradient on the boundary), and sign(0) = 0.
//
// The tests and clamps work on the IEEE bit patterns, where they are
// integer comparisons, min and max (conditional moves): a float's bits,
// read as a signed integer, order non-negative values like the values and
// put every negative value (−0 included) below zero; read as unsigned, the
// values in [0,1] are exactly those at most 1's bits. This runs 1.6× faster
// than float comparisons and min/max, which must order NaN and signed
// zeros.
func freeUpdate(delta, in, x, grad []float32, eps float32, workers int) {
	epsBits := math.Float32bits(eps)
	parallel(len(x), workers, func(lo, hi int) {
		delta, in, x, grad := delta[lo:hi], in[lo:hi], x[lo:hi], grad[lo:hi]
		for i, v := range x {
			d := delta[i]
			g := math.Float32bits(grad[i])
			keep := ^uint32(0)
			if math.Float32bits(v+d) > 0x3f800000 { // x+δ outside [0,1]
				keep = 0
			}
			if g<<1 == 0 { // ±0
				keep = 0
			}
			// ±ε with the gradient's sign, or +0.
			db := math.Float32bits(d + math.Float32frombits((epsBits|g&signBit)&keep))
			db = db&signBit | min(db&^signBit, epsBits) // |δ| ≤ ε
			d = math.Float32frombits(db)
			delta[i] = d
			in[i] = math.Float32frombits(clamp01Bits(math.Float32bits(v + d)))
		}
	})
}

const signBit = 1 << 31

// clamp01Bits clamps the float32 with bits b to [0,1] (−0 and negative
// values to +0), on its bits.
func clamp01Bits(b uint32) uint32 {
	return uint32(min(max(int32(b), 0), 0x3f800000))
}

// randomStart writes x + U(−ε, ε), clamped to [0,1], into adv.
func randomStart(adv, x []float32, eps float32, rng *rand.Rand) {
	adv = adv[:len(x)]
	for i, v := range x {
		adv[i] = min(max(v+eps*(2*rng.Float32()-1), 0), 1)
	}
}

// ascend takes a signed gradient step of size alpha on adv and projects it
// onto the ε-ball around x intersected with [0,1].
func ascend(adv, x, grad []float32, alpha, eps float32, workers int) {
	alphaBits := math.Float32bits(alpha)
	parallel(len(x), workers, func(lo, hi int) {
		adv, x, grad := adv[lo:hi], x[lo:hi], grad[lo:hi]
		for i, v := range x {
			g := math.Float32bits(grad[i])
			keep := ^uint32(0)
			if g<<1 == 0 {
				keep = 0
			}
			a := adv[i] + math.Float32frombits((alphaBits|g&(1<<31))&keep)
			adv[i] = min(max(min(max(a, v-eps), v+eps), 0), 1)
		}
	})
}

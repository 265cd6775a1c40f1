package dataset

import (
	"math/bits"
	"math/rand/v2"
)

// Every random decision in the package comes from a PCG generator (whose
// output sequence is fixed by its specification) seeded from the user's seed,
// a stream constant naming the purpose, and up to two counters such as
// (epoch, batch). Bounded integers and shuffles are computed here rather than
// with rand.Rand so that the sequences cannot change with the Go release:
// checkpoints written by one build resume identically under another.
const (
	splitStream   uint64 = 0x5b1f_0001
	shuffleStream uint64 = 0x5b1f_0002
	augmentStream uint64 = 0x5b1f_0003
)

// mix64 is the SplitMix64 finaliser, a bijective bit mixer.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// seeds derives a PCG state from a seed, a stream and two counters.
func seeds(seed, stream uint64, a, b int) (uint64, uint64) {
	return mix64(seed ^ mix64(stream)), mix64(stream ^ mix64(uint64(a)<<32^uint64(uint32(b))))
}

// newSource returns a generator for (seed, stream) with counters (0, 0).
func newSource(seed, stream uint64) *rand.PCG {
	return rand.NewPCG(seeds(seed, stream, 0, 0))
}

// reseed resets p to the generator for (seed, stream, a, b) without allocating.
func reseed(p *rand.PCG, seed, stream uint64, a, b int) {
	p.Seed(seeds(seed, stream, a, b))
}

// uintn returns a uniform integer in [0, n), n > 0 (Lemire's method).
func uintn(src rand.Source, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// shuffle permutes p uniformly (Fisher–Yates).
func shuffle(p []int32, src rand.Source) {
	for i := len(p) - 1; i > 0; i-- {
		j := uintn(src, uint64(i+1))
		p[i], p[j] = p[j], p[i]
	}
}

// sampleStream seeds the per-sample random transforms of streamed images.
const sampleStream uint64 = 0x5b1f_0004

// newSourceFromSeeds returns a PCG generator with the given state.
func newSourceFromSeeds(s [2]uint64) *rand.PCG { return rand.NewPCG(s[0], s[1]) }

// uniform returns a uniform float64 in [lo, hi) from 53 random bits.
func uniform(src rand.Source, lo, hi float64) float64 {
	return lo + (hi-lo)*float64(src.Uint64()>>11)/(1<<53)
}

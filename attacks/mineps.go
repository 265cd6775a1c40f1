package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// EpsSearch finds each sample's smallest breaking radius: FAB's minimal
// perturbation gives an upper bound ε₁ (a verified adversarial example at
// that distance), then Rounds rounds of bisection on [0, ε₁] run APGD at
// the midpoint, lowering the bound to the distance of any example APGD
// finds and raising the lower end otherwise. Zero fields mean FAB's
// defaults, APGD-CE with 20 steps and 5 rounds.
type EpsSearch struct {
	FAB    FAB
	APGD   APGD
	Rounds int
}

func (s EpsSearch) withDefaults() EpsSearch {
	if s.APGD.Steps == 0 {
		s.APGD.Steps = 20
	}
	if s.Rounds == 0 {
		s.Rounds = 5
	}
	return s
}

// String describes the search: "FAB 100 steps ×1, then 5 rounds of
// bisection with APGD-CE 20 steps ×1".
func (s EpsSearch) String() string {
	s = s.withDefaults()
	return fmt.Sprintf("%s, then %d rounds of bisection with %s", s.FAB, s.Rounds, s.APGD)
}

// Run returns, per sample, the closest adversarial image found and its
// distance in the norm: 0 for a sample misclassified already, +Inf when
// FAB finds none.
func (s EpsSearch) Run(ctx context.Context, m Model, x []float32, y []int64, norm Norm, rng *rand.Rand) (*Minimal, error) {
	s = s.withDefaults()
	if s.Rounds < 0 {
		return nil, fmt.Errorf("eps search: negative rounds %d", s.Rounds)
	}
	if m == nil {
		return nil, fmt.Errorf("eps search: nil model")
	}
	sh := m.Shape()
	d := sh[0] * sh[1] * sh[2]
	// ε only scales FAB's random restarts.
	start := ThreatModel{Norm: norm, Eps: float32(norm.MaxEps(d) / 10)}
	min, err := s.FAB.Minimize(ctx, m, x, y, start, rng)
	if err != nil {
		return nil, fmt.Errorf("eps search: %w", err)
	}
	lo := make([]float64, len(y))
	for round := 0; round < s.Rounds; round++ {
		var idx []int
		var eps []float32
		for i, hi := range min.Dist {
			if mid := (lo[i] + hi) / 2; hi > 0 && !math.IsInf(hi, 1) && float32(mid) > 0 {
				idx = append(idx, i)
				eps = append(eps, float32(mid))
			}
		}
		if len(idx) == 0 {
			break
		}
		xs, ys := make([]float32, 0, len(idx)*d), make([]int64, 0, len(idx))
		for _, i := range idx {
			xs = append(xs, x[i*d:(i+1)*d]...)
			ys = append(ys, y[i])
		}
		res, err := s.APGD.RunEach(ctx, m, xs, ys, norm, eps, rng)
		if err != nil {
			return nil, fmt.Errorf("eps search: %w", err)
		}
		min.Queries += res.Queries
		for k, i := range idx {
			adv := res.Adv[k*d : (k+1)*d]
			if !res.Success[k] {
				lo[i] = float64(eps[k])
				continue
			}
			if dist := norm.Distance(adv, x[i*d:(i+1)*d]); dist < min.Dist[i] {
				min.Dist[i] = dist
				copy(min.Adv[i*d:(i+1)*d], adv)
			}
		}
	}
	return min, nil
}

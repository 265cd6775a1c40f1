package evaluate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/robust-go/robust/attacks"
)

// MinEps is the distribution over the samples of the smallest ε at which
// each breaks ([attacks.EpsSearch]: FAB's minimal perturbation refined by
// bisection with APGD), from which the empirical robust accuracy at any ε
// follows without a grid of runs.
type MinEps struct {
	// Method describes the search.
	Method string `json:"method"`
	// Samples counts every sample; Misclassified those wrong when clean
	// (broken at ε = 0); NotFound the correct ones the search did not
	// break (robust at every ε it can tell).
	Samples       int `json:"samples"`
	Misclassified int `json:"misclassified"`
	NotFound      int `json:"not_found"`
	// Median is the median over all samples; null when more than half are
	// not broken.
	Median *float64 `json:"median"`
	// Percentiles are the 10th, 25th, 50th, 75th and 90th percentiles over
	// all samples (null where not broken).
	Percentiles []Percentile `json:"percentiles"`
	// Values holds the correctly classified samples' minimal ε, sorted.
	Values  []float64 `json:"values"`
	Queries int       `json:"queries"`
	Seconds float64   `json:"seconds"`
}

// Percentile is one percentile of the minimal ε.
type Percentile struct {
	P     int      `json:"p"`
	Value *float64 `json:"value"`
}

// RobustAccuracy returns the empirical robust accuracy at eps: the share of
// samples whose minimal ε exceeds it.
func (m *MinEps) RobustAccuracy(eps float64) float64 {
	above := m.NotFound
	for _, v := range m.Values {
		if v > eps {
			above++
		}
	}
	return float64(above) / float64(m.Samples)
}

// Curve returns the empirical robust-accuracy-vs-ε step curve: at eps[k]
// the accuracy drops to acc[k] (it is acc[k-1] just below, clean accuracy
// before eps[0] = 0), ready to draw without a grid of ε runs.
func (m *MinEps) Curve() (eps, acc []float64) {
	eps, acc = []float64{0}, []float64{m.RobustAccuracy(0)}
	for k, v := range m.Values {
		if k+1 < len(m.Values) && m.Values[k+1] == v {
			continue
		}
		eps, acc = append(eps, v), append(acc, m.RobustAccuracy(v))
	}
	return eps, acc
}

// quantile returns the q-quantile (nearest rank) over all samples, or nil
// when it falls among the unbroken ones.
func (m *MinEps) quantile(q float64) *float64 {
	rank := int(math.Ceil(q*float64(m.Samples))) - 1
	rank = min(max(rank, 0), m.Samples-1)
	switch {
	case rank < m.Misclassified:
		return new(float64)
	case rank-m.Misclassified < len(m.Values):
		v := m.Values[rank-m.Misclassified]
		return &v
	}
	return nil
}

// summary describes the distribution in one line.
func (m *MinEps) summary() string {
	val := func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%.4g", *v)
	}
	var ps []string
	for _, p := range m.Percentiles {
		ps = append(ps, fmt.Sprintf("p%d %s", p.P, val(p.Value)))
	}
	return fmt.Sprintf("median %s (%s) over %d samples, %d wrong when clean, %d not broken; by %s",
		val(m.Median), strings.Join(ps, ", "), m.Samples, m.Misclassified, m.NotFound, m.Method)
}

// minEps runs the minimal-ε search on the correctly classified samples and
// verifies each example: it must fool the model at the distance recorded.
func (e *evaluation) minEps(ctx context.Context) error {
	start := time.Now()
	search := attacks.EpsSearch{}
	res := &MinEps{Method: search.String(), Samples: e.n}
	var idx []int
	for i, ok := range e.correct {
		if ok {
			idx = append(idx, i)
		} else {
			res.Misclassified++
		}
	}
	rng := rand.New(rand.NewPCG(e.cfg.Seed, math.MaxUint32-1))
	bs := e.cfg.BatchSize
	logits := make([]float32, bs*e.classes)
	for lo := 0; lo < len(idx); lo += bs {
		hi := min(lo+bs, len(idx))
		x, y := make([]float32, 0, (hi-lo)*e.size), make([]int64, 0, hi-lo)
		for _, i := range idx[lo:hi] {
			x = append(x, e.d.Image(i)...)
			y = append(y, e.d.Y[i])
		}
		found, err := search.Run(ctx, e.m, x, y, e.cfg.Norm, rng)
		if err != nil {
			return fmt.Errorf("minimal ε: %w", err)
		}
		res.Queries += found.Queries
		if err := e.m.Logits(found.Adv, hi-lo, logits); err != nil {
			return fmt.Errorf("minimal ε: verify: %w", err)
		}
		for k, dist := range found.Dist {
			clean, adv := x[k*e.size:(k+1)*e.size], found.Adv[k*e.size:(k+1)*e.size]
			ok := !math.IsInf(dist, 1) && attacks.Fooled(logits[k*e.classes:(k+1)*e.classes], y[k], -1) &&
				e.cfg.Norm.Distance(adv, clean) <= dist
			if ok {
				res.Values = append(res.Values, dist)
			} else {
				res.NotFound++
			}
		}
		e.progress("minimal ε", hi, len(idx))
	}
	slices.Sort(res.Values)
	res.Median = res.quantile(0.5)
	for _, p := range []int{10, 25, 50, 75, 90} {
		res.Percentiles = append(res.Percentiles, Percentile{P: p, Value: res.quantile(float64(p) / 100)})
	}
	res.Seconds = time.Since(start).Seconds()
	e.report.MinEps = res
	e.stage++
	return nil
}

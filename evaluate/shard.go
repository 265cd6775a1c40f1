package evaluate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Shard selects the Index-th (from 0) of Count disjoint, contiguous slices
// of the samples: samples [Index·n/Count, (Index+1)·n/Count) of n. Every
// sample belongs to exactly one shard, and the slices of a given n and
// Count do not depend on anything else, so shards evaluated on different
// machines can be merged ([Merge]).
type Shard struct {
	Index, Count int
}

// Range returns the samples [lo, hi) of n that the shard covers.
func (s Shard) Range(n int) (lo, hi int) {
	return s.Index * n / s.Count, (s.Index + 1) * n / s.Count
}

// String returns "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Validate checks that the index lies in [0, Count).
func (s Shard) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard %d/%d: want index I in [0, N) and N ≥ 1", s.Index, s.Count)
	}
	return nil
}

// ParseShard parses "I/N", the I-th (from 0) of N shards.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4 (I from 0 to N-1)", s)
	}
	var sh Shard
	var err1, err2 error
	sh.Index, err1 = strconv.Atoi(strings.TrimSpace(i))
	sh.Count, err2 = strconv.Atoi(strings.TrimSpace(n))
	if err := errors.Join(err1, err2); err != nil {
		return Shard{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4 (I from 0 to N-1)", s)
	}
	return sh, sh.Validate()
}

// ShardInfo describes the shard a report covers.
type ShardInfo struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// First and End delimit the samples covered, [First, End), as
	// indices into the Total samples selected (see Shard.Range).
	First int `json:"first"`
	End   int `json:"end"`
	Total int `json:"total"`
	// Records says whether per-sample records were asked for
	// (Config.Records): the merged report keeps them then. A shard report
	// always carries them, since the merge needs them.
	Records bool `json:"records"`
	// PriorFlags are the findings made before the run (Config.Flags).
	PriorFlags []Flag `json:"prior_flags"`
}

// SampleRecord is one sample's outcome (Config.Records, and every shard
// report).
type SampleRecord struct {
	// Index is the sample's index among the samples selected (before
	// sharding).
	Index int   `json:"index"`
	Label int64 `json:"label"`
	// Clean is the model's prediction on the clean image; CleanMargin the
	// logit of the label minus the largest other logit (negative when the
	// sample is misclassified).
	Clean       int     `json:"clean_prediction"`
	CleanMargin float64 `json:"clean_margin"`
	// SoftmaxRow says the clean output row looks like probabilities.
	SoftmaxRow bool `json:"softmax_row,omitempty"`
	// Sanity holds the sanity checks' measurements when the sample was
	// among those checked.
	Sanity *SampleSanity `json:"sanity,omitempty"`
	// Points holds the outcome at each ε, in the order of Report.Budgets.
	Points []SamplePoint `json:"points"`
}

// correct reports whether the clean prediction is right.
func (r *SampleRecord) correct() bool { return int64(r.Clean) == r.Label }

// SampleSanity is one sample's sanity-check measurements.
type SampleSanity struct {
	ZeroGradient bool    `json:"zero_gradient,omitempty"`
	NaNGradient  bool    `json:"nan_gradient,omitempty"`
	OutputDiff   float64 `json:"output_diff"`
	// LargeEpsBroken says the large-ε probe broke the sample.
	LargeEpsBroken bool `json:"large_eps_broken"`
}

// SamplePoint is one sample's worst case at one ε.
type SamplePoint struct {
	Eps string `json:"eps"`
	// Broken says an attack broke the sample (a sample wrong when clean
	// counts as broken by "clean"); By names the first attack that did.
	Broken bool   `json:"broken"`
	By     string `json:"broken_by,omitempty"`
	// Margin is the final margin (label logit minus the largest other):
	// of the example that broke the sample, else the smallest of the
	// attacks' worst cases, or the clean margin when no attack ran.
	Margin float64 `json:"margin"`
	// Attacks holds the attacks that ran on the sample, in suite order.
	Attacks []SampleAttack `json:"attacks"`
}

// SampleAttack is one attack's verified outcome on one sample.
type SampleAttack struct {
	Name   string  `json:"name"`
	Broken bool    `json:"broken"`
	Margin float64 `json:"margin"`
	// Norm is the perturbation's norm.
	Norm    float64 `json:"norm"`
	Queries int     `json:"queries"`
	// Rejected counts the attack's claimed successes that failed
	// verification.
	Rejected int `json:"rejected"`
}

// sampleRng returns the random source of one attack on one sample: a
// function of the seed, the sample's index among the samples selected,
// the ε's index and the attack's index only, so that a sample gets the
// same attack whatever batch or shard it lands in. The large-ε probe uses
// ε and attack index 0xffff.
func sampleRng(seed uint64, sample, eps, attack int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(sample)<<32|uint64(eps&0xffff)<<16|uint64(attack&0xffff)))
}

// margin returns z[label] minus the largest other logit.
func margin(z []float32, label int64) float64 {
	other := float32(0)
	first := true
	for c, v := range z {
		if int64(c) != label && (first || v > other) {
			other, first = v, false
		}
	}
	return float64(z[label]) - float64(other)
}

// aggregatePoint computes the point at ε index pi from the records: the
// counts, accuracies and norms of each attack of tpl (whose names,
// labels, skipped reasons and black-box marks it copies). [Run] and
// [Merge] both use it, so that a merged report's numbers are those of one
// run.
func aggregatePoint(tpl Point, recs []SampleRecord, pi int, independent bool) Point {
	n := len(recs)
	correct, broken := 0, 0
	for i := range recs {
		if recs[i].correct() {
			correct++
			if recs[i].Points[pi].Broken {
				broken++
			}
		}
	}
	p := Point{Eps: tpl.Eps, EpsText: tpl.EpsText}
	robust := correct
	for _, t := range tpl.Attacks {
		ar := AttackResult{Name: t.Name, Label: t.Label, Skipped: t.Skipped, BlackBox: t.BlackBox}
		if t.Skipped == "" {
			var norms []float64
			for i := range recs {
				for _, sa := range recs[i].Points[pi].Attacks {
					if sa.Name != t.Name {
						continue
					}
					ar.Attacked++
					ar.Queries += sa.Queries
					ar.Rejected += sa.Rejected
					if sa.Broken {
						ar.Broken++
						norms = append(norms, sa.Norm)
					}
				}
			}
			ar.setNorms(norms)
		}
		if independent {
			ar.Robust = NewAccuracy(correct-ar.Broken, n)
		} else {
			robust -= ar.Broken
			ar.Robust = NewAccuracy(robust, n)
		}
		p.Attacks = append(p.Attacks, ar)
	}
	p.Robust = NewAccuracy(correct-broken, n)
	return p
}

// aggregateSanity computes the sanity measurements from the records: the
// gradient, determinism and large-ε checks over the first sanitySamples
// correctly classified samples, the softmax rows over all. base gives the
// large ε and the probe's name.
func aggregateSanity(base Sanity, recs []SampleRecord) (*Sanity, error) {
	s := &Sanity{LargeEps: base.LargeEps, Probe: base.Probe}
	broken := 0
	for i := range recs {
		r := &recs[i]
		if r.SoftmaxRow {
			s.SoftmaxRows++
		}
		if !r.correct() || s.Samples == sanitySamples {
			continue
		}
		if r.Sanity == nil {
			return nil, fmt.Errorf("sample %d was not sanity-checked", r.Index)
		}
		s.Samples++
		if r.Sanity.NaNGradient {
			s.NaNGradients++
		} else if r.Sanity.ZeroGradient {
			s.ZeroGradients++
		}
		s.MaxOutputDiff = max(s.MaxOutputDiff, r.Sanity.OutputDiff)
		if r.Sanity.LargeEpsBroken {
			broken++
		}
	}
	if s.Samples > 0 {
		s.LargeEpsAccuracy = 1 - float64(broken)/float64(s.Samples)
	} else {
		s.LargeEps, s.Probe = 0, ""
	}
	return s, nil
}

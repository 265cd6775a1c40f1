package evaluate

import (
	"context"
	"fmt"
	"slices"

	"github.com/robust-go/robust/attacks"
)

// randomDraws is the number of runs of a randomised model whose most
// frequent prediction decides each verdict: the autoattack-rand suite's 20
// EoT samples plus one, odd so that a two-way split cannot tie.
const randomDraws = 21

// A randomised model (one the sanity check finds non-deterministic: two
// runs on the same inputs differ) has no single prediction: each run draws
// its own. robust then takes as the model's prediction on an input its
// most frequent prediction over randomDraws runs (a tie with the true
// label counts against the model), and judges every verdict on it, for
// every suite alike:
//
//   - a sample is correctly classified when the model's most frequent
//     prediction on the clean image is its label;
//   - an attack breaks it when its example lies in the ball and the most
//     frequent prediction on it is another class, whether or not the
//     attack claimed it (an attack's own verdict rests on single runs, and
//     one lucky run proves nothing: Athalye et al. 2018).
//
// Attacks with expectation over transformation (the autoattack-rand
// suite) average gradients, logits and losses over their draws, so they
// head for, and stop at, points misclassified in expectation; a
// single-run attack follows each run's gradient and stops at the first
// run it fools.

// randomModel reports whether the sanity check flagged the model as
// non-deterministic.
func (e *evaluation) randomModel() bool {
	return slices.ContainsFunc(e.report.Flags, func(f Flag) bool { return f.Code == "non-deterministic" })
}

// votedClean redoes the clean verdicts of a randomised model over
// e.draws runs: the records' clean predictions become the most frequent
// ones (votedPrediction), and the clean accuracy counts them.
func (e *evaluation) votedClean(ctx context.Context) error {
	bs := e.cfg.BatchSize
	mean := make([]float32, bs*e.classes)
	votes := make([]int, bs*e.classes)
	count := 0
	err := e.cleanBatches(ctx, func(x []float32, lo, hi int) error {
		if err := voteDraws(e.m, x, hi-lo, e.draws, mean, votes); err != nil {
			return err
		}
		for k := range hi - lo {
			i, v := lo+k, votes[k*e.classes:(k+1)*e.classes]
			e.records[i].Clean = votedPrediction(v, e.d.Y[i])
			e.correct[i] = e.records[i].Clean == int(e.d.Y[i])
			e.records[i].CleanMargin = margin(mean[k*e.classes:(k+1)*e.classes], e.d.Y[i])
			if e.correct[i] {
				count++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.report.Clean = NewAccuracy(count, e.n)
	return nil
}

// voteDraws runs the model draws times on the n samples of x and writes
// the mean logits into mean and, into votes (n × classes), how many runs
// predicted each class.
func voteDraws(m attacks.Model, x []float32, n, draws int, mean []float32, votes []int) error {
	c := m.Classes()
	logits := make([]float32, n*c)
	sum := make([]float64, n*c)
	clear(votes[:n*c])
	for range draws {
		if err := m.Logits(x, n, logits); err != nil {
			return err
		}
		for k := range n {
			z := logits[k*c : (k+1)*c]
			votes[k*c+attacks.Predict(z)]++
			for j, v := range z {
				sum[k*c+j] += float64(v)
			}
		}
	}
	for j, v := range sum {
		mean[j] = float32(v / float64(draws))
	}
	return nil
}

// votedPrediction returns the class with the most votes for a sample of
// the given label: on a tie, the first of the tied classes other than the
// label (a tie is not a correct classification).
func votedPrediction(votes []int, label int64) int {
	best := -1
	for j, v := range votes {
		if best < 0 || v > votes[best] || v == votes[best] && int64(best) == label {
			best = j
		}
	}
	return best
}

// CheckRandomness refuses the robust accuracy of a deterministic suite on a
// model the sanity checks found non-deterministic (single-sample attacks
// overestimate the robustness of randomised models; use the
// autoattack-rand suite), unless allow is set. It returns an error wrapping
// [ErrRandomModel], or nil.
func (r *Report) CheckRandomness(allow bool) error {
	if allow || r.RandomSuite || !slices.ContainsFunc(r.Flags, func(f Flag) bool { return f.Code == "non-deterministic" }) {
		return nil
	}
	return fmt.Errorf("evaluate: %w: suite %s does not average over the model's randomness; evaluate it with the autoattack-rand suite", ErrRandomModel, r.Suite)
}

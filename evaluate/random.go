package evaluate

import (
	"context"
	"fmt"
	"slices"

	"github.com/robust-go/robust/attacks"
)

// randomDraws is the number of runs of a randomised model whose majority
// decides each verdict: odd, so that there are no ties between right and
// wrong, and as many as the EoT samples of the autoattack-rand suite
// (20), plus one.
const randomDraws = 21

// A randomised model (one the sanity check finds non-deterministic: two
// runs on the same inputs differ) has no single prediction: each run draws
// its own. Its accuracy on an input is the probability that a run
// classifies it correctly, and robust verdicts are judged on that, not on
// one run, for every suite alike:
//
//   - a sample is correctly classified when the model predicts its label
//     in the majority of randomDraws runs of the clean image;
//   - an attack breaks it when its example lies in the ball and the model
//     misclassifies it in the majority of randomDraws runs, whether or not
//     the attack claimed it (an attack's own verdict rests on single runs,
//     and one lucky run proves nothing: Athalye et al. 2018).
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

// majorityClean redoes the clean verdicts of a randomised model by
// majority over e.draws runs: the records' clean predictions become the
// most frequent ones and the clean accuracy counts the samples predicted
// correctly in most runs.
func (e *evaluation) majorityClean(ctx context.Context) error {
	bs := e.cfg.BatchSize
	mean := make([]float32, bs*e.classes)
	votes := make([]int, bs*e.classes)
	var buf []float32
	count := 0
	for lo := 0; lo < e.n; lo += bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+bs, e.n)
		x, err := e.d.Floats(buf, lo, hi)
		if err != nil {
			return fmt.Errorf("clean pass: %w", err)
		}
		buf = x
		if err := voteDraws(e.m, x, hi-lo, e.draws, mean, votes); err != nil {
			return fmt.Errorf("clean pass: %w", err)
		}
		for k := range hi - lo {
			i, v := lo+k, votes[k*e.classes:(k+1)*e.classes]
			e.correct[i] = 2*v[e.d.Y[i]] > e.draws
			e.records[i].Clean = mostVoted(v)
			e.records[i].CleanMargin = margin(mean[k*e.classes:(k+1)*e.classes], e.d.Y[i])
			if e.correct[i] {
				count++
			}
		}
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

// mostVoted returns the class with the most votes (the first on ties).
func mostVoted(votes []int) int {
	best := 0
	for j, v := range votes {
		if v > votes[best] {
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

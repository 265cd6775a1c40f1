package evaluate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/robust-go/robust/attacks"
)

const (
	// sanitySamples bounds the samples of the gradient, determinism and
	// large-ε checks.
	sanitySamples = 100
	// maskingAccuracy is the accuracy left at the large-ε probe above which
	// gradient masking is suspected.
	maskingAccuracy = 0.10
	// blackBoxMargin is the share of samples a black-box attack may break
	// after the white-box ones before it is flagged.
	blackBoxMargin = 0.01
	// curveSlack is how much accuracy may rise between increasing ε before
	// the curve is flagged.
	curveSlack = 0.02
)

// Sanity holds the sanity checks' measurements.
type Sanity struct {
	Samples int `json:"samples"`
	// ZeroGradients and NaNGradients count samples whose cross-entropy
	// input gradient is all zeros or holds a NaN.
	ZeroGradients int `json:"zero_gradients"`
	NaNGradients  int `json:"nan_gradients"`
	// MaxOutputDiff is the largest difference between two runs on the same
	// inputs.
	MaxOutputDiff float64 `json:"max_output_diff"`
	// SoftmaxRows counts output rows that look like probabilities.
	SoftmaxRows int `json:"softmax_rows"`
	// LargeEps is PGD-20's robust accuracy, among the checked samples, at a
	// budget where no model should keep its accuracy (L∞ 0.5: every image
	// can become uniform grey; L2 0.5·√d and L1 0.5·d likewise).
	LargeEps         float64 `json:"large_eps"`
	LargeEpsAccuracy float64 `json:"large_eps_accuracy"`
	// Probe names the large-ε attack when it is not PGD-20 (for the L1
	// norm, which PGD does not support, APGD-CE with 20 steps).
	Probe string `json:"probe,omitempty"`
}

// probe returns the name of the large-ε attack.
func (s *Sanity) probe() string {
	if s.Probe != "" {
		return s.Probe
	}
	return "PGD-20"
}

// sanityBefore checks gradients, determinism and outputs on the first
// clean samples, and probes a large ε; it records each sample's
// measurements, then computes the report's from the records (as [Merge]
// does).
func (e *evaluation) sanityBefore(ctx context.Context) error {
	var idx []int
	for i, ok := range e.correct {
		if ok && len(idx) < sanitySamples {
			idx = append(idx, i)
		}
	}
	for i := range e.n {
		e.records[i].SoftmaxRow = looksLikeProbabilities(e.logits[i*e.classes : (i+1)*e.classes])
	}
	base := Sanity{}
	if len(idx) > 0 {
		if err := e.checkSamples(idx); err != nil {
			return err
		}
		var err error
		if base, err = e.probeLargeEps(ctx, idx); err != nil {
			return err
		}
	} else {
		e.stage++
	}
	s, err := aggregateSanity(base, e.records)
	if err != nil {
		return fmt.Errorf("evaluate: sanity check: %w", err)
	}
	e.report.Sanity = s
	for _, f := range sanityFlags(s, e.n, e.report.RandomSuite, e.cfg.Norm) {
		e.flag(f)
	}
	return nil
}

// checkSamples measures the input gradients and the determinism of the
// outputs on the samples idx.
func (e *evaluation) checkSamples(idx []int) error {
	k := len(idx)
	x, y := make([]float32, k*e.size), make([]int64, 0, k)
	if err := e.d.Gather(x, idx); err != nil {
		return fmt.Errorf("sanity check: %w", err)
	}
	for _, i := range idx {
		y = append(y, e.d.Y[i])
	}
	logits, losses, grad := make([]float32, k*e.classes), make([]float32, k), make([]float32, k*e.size)
	if err := e.m.Grad(attacks.GradInput{X: x, N: k, Loss: attacks.CE, Labels: y}, attacks.GradOutput{Logits: logits, Losses: losses, Grad: grad}); err != nil {
		return fmt.Errorf("sanity check: %w", err)
	}
	// Determinism: the gradient run's logits and a second forward run must
	// match the clean pass.
	again := make([]float32, k*e.classes)
	if err := e.m.Logits(x, k, again); err != nil {
		return fmt.Errorf("sanity check: %w", err)
	}
	for j, i := range idx {
		ss := &SampleSanity{}
		g := grad[j*e.size : (j+1)*e.size]
		if slices.ContainsFunc(g, func(v float32) bool { return v != v }) {
			ss.NaNGradient = true
		} else if !slices.ContainsFunc(g, func(v float32) bool { return v != 0 }) {
			ss.ZeroGradient = true
		}
		ref := e.logits[i*e.classes : (i+1)*e.classes]
		for c, v := range ref {
			ss.OutputDiff = max(ss.OutputDiff, relDiff(v, again[j*e.classes+c]), relDiff(v, logits[j*e.classes+c]))
		}
		e.records[i].Sanity = ss
	}
	return nil
}

// sanityFlags returns the flags the sanity measurements s of n samples
// raise.
func sanityFlags(s *Sanity, n int, randomSuite bool, norm attacks.Norm) []Flag {
	var flags []Flag
	if s.SoftmaxRows == n {
		flags = append(flags, warning("softmax-output", "every output row is non-negative and sums to 1: the model outputs probabilities, not logits; attacks on them suffer vanishing gradients (rerun with --softmax log)"))
	}
	if s.Samples == 0 {
		return flags
	}
	k := s.Samples
	if s.NaNGradients > 0 {
		flags = append(flags, warning("nan-gradients", "%d of %d samples have NaN input gradients: attack results are unreliable", s.NaNGradients, k))
	}
	if s.ZeroGradients > 0 {
		flags = append(flags, warning("zero-gradients", "%d of %d correctly classified samples have an all-zero cross-entropy input gradient (saturated softmax or masked gradients); trust margin-based attacks (pgd-cw, apgd-dlr) and Square more than CE ones", s.ZeroGradients, k))
	}
	if s.MaxOutputDiff > 1e-4 {
		if randomSuite {
			flags = append(flags, warning("non-deterministic", "two runs on the same inputs differ by up to %.3g (relative): a randomised model; the suite averages gradients over its randomness (EoT), and every verdict rests on the model's most frequent prediction over %d runs", s.MaxOutputDiff, randomDraws))
		} else {
			flags = append(flags, warning("non-deterministic", "two runs on the same inputs differ by up to %.3g (relative): a randomised model defeats single-sample attacks; every verdict rests on the model's most frequent prediction over %d runs; rerun with --suite autoattack-rand (attacks with EoT over 20 samples)", s.MaxOutputDiff, randomDraws))
		}
	}
	if s.LargeEpsAccuracy > maskingAccuracy {
		flags = append(flags, warning("gradient-masking", "possible gradient masking: %s at %s ε=%.3g, where any image can be made grey, leaves %.1f%% of %d samples correct (accuracy should fall towards 0 as ε grows)",
			s.probe(), norm.Symbol(), float32(s.LargeEps), 100*s.LargeEpsAccuracy, k))
	}
	return flags
}

// probeLargeEps runs PGD-20 at a budget that should leave no accuracy,
// each sample with its own random start, and returns the budget and probe.
func (e *evaluation) probeLargeEps(ctx context.Context, idx []int) (Sanity, error) {
	var s Sanity
	eps := float32(0.5 * e.cfg.Norm.MaxEps(e.size))
	var probe attacks.Attack = attacks.PGD{Steps: 20, StepRatio: 0.25, RandomStart: true}
	if probe.Supports(e.cfg.Norm, e.classes) != nil {
		probe, s.Probe = attacks.APGD{Steps: 20}, "APGD-CE-20"
	}
	out, err := Attack(ctx, e.m, probe, attacks.ThreatModel{Norm: e.cfg.Norm, Eps: eps}, e.d, idx, AttackOptions{
		BatchSize: e.cfg.BatchSize, DiscardAdv: true,
		SampleRng: func(k int) *rand.Rand { return sampleRng(e.cfg.Seed, e.offset+idx[k], 0xffff, 0xffff) },
		Progress:  func(done, total int) { e.progress("sanity", done, total) },
	})
	if err != nil {
		return s, fmt.Errorf("sanity check: %w", err)
	}
	e.stage++
	s.LargeEps = float64(eps)
	for k, i := range idx {
		e.records[i].Sanity.LargeEpsBroken = out.Success[k]
	}
	return s, nil
}

// afterFlags returns the flags of a report's points: attacks skipped (at
// the first point), rejected examples, a black-box attack stronger than
// the white-box ones, and a curve that rises with ε.
func afterFlags(r *Report, sanity bool) (skipped, after []Flag) {
	if len(r.Points) > 0 {
		for _, a := range r.Points[0].Attacks {
			if a.Skipped != "" {
				skipped = append(skipped, info("skipped", "%s was skipped: %s", a.Name, a.Skipped))
			}
		}
	}
	if !sanity {
		return skipped, nil
	}
	for _, p := range r.Points {
		rejected := 0
		for _, a := range p.Attacks {
			rejected += a.Rejected
		}
		if rejected > 0 {
			after = append(after, warning("rejected-examples", "at ε=%s, %d adversarial examples claimed by attacks failed verification (outside the ball or not misclassified) and were not counted", p.EpsText, rejected))
		}
		after = append(after, blackBoxFlags(p, r.Samples, r.Mode == "independent")...)
	}
	// Accuracy should not rise with ε.
	pts := sortedPoints(r.Points)
	for i := 1; i < len(pts); i++ {
		if pts[i].Robust.Value > pts[i-1].Robust.Value+curveSlack {
			after = append(after, warning("non-monotone", "possible gradient masking: robust accuracy rises from %.1f%% at ε=%s to %.1f%% at ε=%s",
				100*pts[i-1].Robust.Value, pts[i-1].EpsText, 100*pts[i].Robust.Value, pts[i].EpsText))
		}
	}
	return skipped, after
}

// blackBoxFlags flags a black-box attack that breaks what the white-box
// attacks could not.
func blackBoxFlags(p Point, n int, independent bool) []Flag {
	var flags []Flag
	whiteBest := math.Inf(1)
	for _, a := range p.Attacks {
		if a.Skipped != "" {
			continue
		}
		if !a.BlackBox {
			whiteBest = min(whiteBest, a.Robust.Value)
			continue
		}
		if math.IsInf(whiteBest, 1) {
			continue
		}
		var extra float64
		if independent {
			extra = whiteBest - a.Robust.Value
		} else {
			extra = float64(a.Broken) / float64(n)
		}
		if extra > blackBoxMargin {
			flags = append(flags, warning("black-box-stronger", "possible gradient masking: at ε=%s the black-box %s attack lowers robust accuracy by %.1f points below the white-box attacks",
				p.EpsText, a.Name, 100*extra))
		}
	}
	return flags
}

// flag adds a flag, unless one with the same code (from Prepare, say)
// says the same already.
func (e *evaluation) flag(f Flag) {
	e.report.Flags = addFlag(e.report.Flags, f)
}

// addFlag appends f to flags, but a softmax-output flag only once.
func addFlag(flags []Flag, f Flag) []Flag {
	if f.Code == "softmax-output" && slices.ContainsFunc(flags, func(o Flag) bool { return o.Code == f.Code }) {
		return flags
	}
	return append(flags, f)
}

// looksLikeProbabilities reports a row of non-negative values summing to 1.
func looksLikeProbabilities(z []float32) bool {
	var s float64
	for _, v := range z {
		if v < 0 {
			return false
		}
		s += float64(v)
	}
	return math.Abs(s-1) < 1e-3
}

func relDiff(a, b float32) float64 {
	d := math.Abs(float64(a) - float64(b))
	return d / max(1, math.Abs(float64(a)))
}

// summary describes the measurements in one line.
func (s *Sanity) summary(norm string) string {
	return fmt.Sprintf("%s at %s ε=%.4g leaves %.1f%% of %d samples correct; input gradients: %d all-zero, %d NaN; outputs differ between runs by ≤ %.2g",
		s.probe(), normSymbol(norm), s.LargeEps, 100*s.LargeEpsAccuracy, s.Samples, s.ZeroGradients, s.NaNGradients, s.MaxOutputDiff)
}

package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
)

// Config configures [Run].
type Config struct {
	// Eps lists the budgets; several give a robustness curve.
	Eps  []Eps
	Norm attacks.Norm
	// Attacks is the suite (see [Suite]); SuiteName names it in reports.
	Attacks   []attacks.Attack
	SuiteName string
	// BatchSize is the number of samples attacked at once (default 128).
	BatchSize int
	// Seed drives every random choice (random starts, Square).
	Seed uint64
	// Independent runs every attack on every correctly classified sample,
	// so that each attack's own robust accuracy is reported; by default
	// (cascade) each attack runs only on the samples the previous ones did
	// not break, and reports the robust accuracy so far.
	Independent bool
	// NoSanity skips the sanity checks.
	NoSanity bool
	// Model and Data name the model and data set in reports.
	Model, Data string
	// Flags are findings made before the run (by [Prepare]), copied into
	// the report.
	Flags []Flag
	// Progress, when set, is called as samples are done.
	Progress func(Progress)
	// MinEps searches each sample's smallest breaking ε after the attacks
	// (see [MinEps]).
	MinEps bool
	// Reproduction, when set, is the provenance of the model and data;
	// the report records it with the suite's settings and the seed.
	Reproduction *Reproduction
}

// Progress reports how far an evaluation is: stage Stage of Stages (the
// clean pass, the sanity checks, then each attack at each ε), Done of
// Total samples of the stage.
type Progress struct {
	Stage, Stages int
	Name          string
	Done, Total   int
}

// Sentinel errors.
var (
	// ErrNoData is returned for an empty data set.
	ErrNoData = errors.New("no samples to evaluate")
	// ErrRandomModel is returned by [Report.CheckRandomness] for a
	// non-deterministic model evaluated with a deterministic suite.
	ErrRandomModel = errors.New("a deterministic suite's robust accuracy on a non-deterministic model")
)

// Run evaluates a model on a data set: clean accuracy, then every attack
// of the suite at every ε, then the sanity checks. Errors before the first
// attack (a model that does not fit the data, bad budgets) are returned
// before any work is done. A run interrupted by ctx after the clean pass
// returns the context's error together with a report marked Partial that
// holds the ε completed so far.
func Run(ctx context.Context, m attacks.Model, d *dataset.Dataset, cfg Config) (*Report, error) {
	e, err := newEvaluation(m, d, cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := e.cleanPass(ctx); err != nil {
		return nil, err
	}
	if !cfg.NoSanity {
		if err := e.sanityBefore(ctx); err != nil {
			if ctx.Err() != nil {
				return e.interrupted(start, err)
			}
			return nil, err
		}
	}
	for i, eps := range cfg.Eps {
		p, err := e.point(ctx, i, eps)
		if err != nil {
			if ctx.Err() != nil {
				return e.interrupted(start, err)
			}
			return nil, err
		}
		e.report.Points = append(e.report.Points, *p)
	}
	if cfg.MinEps {
		if err := e.minEps(ctx); err != nil {
			return nil, err
		}
	}
	if !cfg.NoSanity {
		e.sanityAfter()
	}
	e.report.Seconds = time.Since(start).Seconds()
	if e.report.Seconds > 0 {
		e.report.ImagesPerSecond = float64(e.n*len(cfg.Eps)) / e.report.Seconds
	}
	return e.report, nil
}

// interrupted returns the report so far, marked partial (it holds the
// clean accuracy and the complete points), with the context's error.
func (e *evaluation) interrupted(start time.Time, err error) (*Report, error) {
	e.report.Partial = true
	e.report.Seconds = time.Since(start).Seconds()
	return e.report, err
}

// evaluation is the state of one Run.
type evaluation struct {
	m       attacks.Model
	d       *dataset.Dataset
	cfg     Config
	n, size int
	classes int
	correct []bool
	logits  []float32 // clean logits, n × classes
	report  *Report
	stage   int
	stages  int
}

func newEvaluation(m attacks.Model, d *dataset.Dataset, cfg Config) (*evaluation, error) {
	if m == nil || d == nil {
		return nil, errors.New("evaluate: nil model or data")
	}
	if d.Len() == 0 {
		return nil, ErrNoData
	}
	if len(cfg.Eps) == 0 {
		return nil, errors.New("evaluate: no ε given")
	}
	if len(cfg.Attacks) == 0 {
		return nil, errors.New("evaluate: no attacks given")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 128
	}
	if err := CheckFit(m, d); err != nil {
		return nil, err
	}
	e := &evaluation{m: m, d: d, cfg: cfg, n: d.Len(), size: d.ImageSize(), classes: m.Classes()}
	for _, eps := range cfg.Eps {
		if err := CheckEps(cfg.Norm, eps, e.size); err != nil {
			return nil, err
		}
	}
	mode := "cascade"
	if cfg.Independent {
		mode = "independent"
	}
	e.report = &Report{Schema: Schema, Model: cfg.Model, Data: cfg.Data, Samples: e.n,
		Norm: cfg.Norm.String(), Suite: cfg.SuiteName, Mode: mode, Seed: cfg.Seed,
		Flags: append([]Flag(nil), cfg.Flags...), RandomSuite: slices.ContainsFunc(cfg.Attacks, attacks.UsesEoT)}
	if cfg.Reproduction != nil {
		r := *cfg.Reproduction
		r.Norm, r.Mode, r.Seed = cfg.Norm.String(), mode, cfg.Seed
		r.Eps = nil
		for _, eps := range cfg.Eps {
			r.Eps = append(r.Eps, eps.Text)
		}
		var err error
		if r.Attacks, err = suiteSettings(cfg.Attacks); err != nil {
			return nil, err
		}
		e.report.Reproduction = &r
	}
	for _, eps := range cfg.Eps {
		e.report.Budgets = append(e.report.Budgets, eps.Text)
	}
	e.stages = 1 + len(cfg.Eps)*len(cfg.Attacks)
	if !cfg.NoSanity {
		e.stages++
	}
	if cfg.MinEps {
		e.stages++
	}
	return e, nil
}

// CheckFit checks that a model takes a data set's images and that its
// logits cover the labels.
func CheckFit(m attacks.Model, d *dataset.Dataset) error {
	sh := m.Shape()
	if sh != [3]int{d.C, d.H, d.W} {
		return fmt.Errorf("the model takes %d×%d×%d images, the data %s has %d×%d×%d", sh[0], sh[1], sh[2], d.Name, d.C, d.H, d.W)
	}
	for i, l := range d.Y {
		if l < 0 || l >= int64(m.Classes()) {
			return fmt.Errorf("label %d of sample %d is outside the model's %d logits: the data set does not match the model", l, i, m.Classes())
		}
	}
	return nil
}

// CheckEps checks a budget against the norm's range for images of size
// values.
func CheckEps(norm attacks.Norm, eps Eps, size int) error {
	limit := norm.MaxEps(size)
	if v := float64(eps.Value); !(v > 0 && v <= limit) {
		text := eps.Text
		if s := strconv.FormatFloat(v, 'g', -1, 32); s != text {
			text += " = " + s
		}
		return fmt.Errorf("ε %s is out of range (0, %.4g] for the %s norm", text, limit, norm.Symbol())
	}
	return nil
}

func (e *evaluation) progress(name string, done, total int) {
	if e.cfg.Progress != nil {
		e.cfg.Progress(Progress{Stage: e.stage, Stages: e.stages, Name: name, Done: done, Total: total})
	}
}

// cleanPass computes the clean predictions.
func (e *evaluation) cleanPass(ctx context.Context) error {
	e.logits = make([]float32, e.n*e.classes)
	e.correct = make([]bool, e.n)
	bs := e.cfg.BatchSize
	var buf []float32
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
		if err := e.m.Logits(x, hi-lo, e.logits[lo*e.classes:hi*e.classes]); err != nil {
			return fmt.Errorf("clean pass: %w", err)
		}
		e.progress("clean", hi, e.n)
	}
	count := 0
	for i := range e.n {
		e.correct[i] = attacks.Predict(e.logits[i*e.classes:(i+1)*e.classes]) == int(e.d.Y[i])
		if e.correct[i] {
			count++
		}
	}
	e.report.Clean = NewAccuracy(count, e.n)
	e.stage++
	return nil
}

// point runs the suite at one ε.
func (e *evaluation) point(ctx context.Context, index int, eps Eps) (*Point, error) {
	p := &Point{Eps: float64(eps.Value), EpsText: eps.Text}
	start := time.Now()
	robust := append([]bool{}, e.correct...)
	for ai, a := range e.cfg.Attacks {
		ar := AttackResult{Name: a.Name(), Label: a.String()}
		if reason := e.unsupported(a); reason != "" {
			ar.Skipped = reason
			if index == 0 {
				e.flag(info("skipped", "%s was skipped: %s", a.Name(), reason))
			}
			ar.Robust = NewAccuracy(count(robust), e.n)
			p.Attacks = append(p.Attacks, ar)
			e.stage++
			continue
		}
		pool := robust
		if e.cfg.Independent {
			pool = e.correct
		}
		var idx []int
		for i, ok := range pool {
			if ok {
				idx = append(idx, i)
			}
		}
		rng := rand.New(rand.NewPCG(e.cfg.Seed, uint64(index)<<32|uint64(ai)))
		out, err := Attack(ctx, e.m, a, attacks.ThreatModel{Norm: e.cfg.Norm, Eps: eps.Value}, e.d, idx, AttackOptions{
			BatchSize: e.cfg.BatchSize, Rng: rng, DiscardAdv: true,
			Progress: func(done, total int) { e.progress(fmt.Sprintf("%s ε=%s", a.Name(), eps.Text), done, total) },
		})
		if err != nil {
			return nil, fmt.Errorf("ε %s: %w", eps.Text, err)
		}
		e.stage++
		ar.Attacked, ar.Queries, ar.Rejected, ar.Seconds = len(idx), out.Queries, out.Rejected, out.Seconds
		if out.Seconds > 0 {
			ar.ImagesPerSecond = float64(len(idx)) / out.Seconds
		}
		var norms []float64
		for k, i := range idx {
			if out.Success[k] {
				ar.Broken++
				robust[i] = false
				norms = append(norms, out.Norms[k])
			}
		}
		ar.setNorms(norms)
		if e.cfg.Independent {
			ar.Robust = NewAccuracy(count(e.correct)-ar.Broken, e.n)
		} else {
			ar.Robust = NewAccuracy(count(robust), e.n)
		}
		p.Attacks = append(p.Attacks, ar)
	}
	p.Robust = NewAccuracy(count(robust), e.n)
	p.Seconds = time.Since(start).Seconds()
	return p, nil
}

// unsupported returns why an attack cannot run on this model and norm.
func (e *evaluation) unsupported(a attacks.Attack) string {
	err := a.Supports(e.cfg.Norm, e.classes)
	if err == nil {
		return ""
	}
	if ue := (*attacks.UnsupportedError)(nil); errors.As(err, &ue) {
		return ue.Reason
	}
	return err.Error()
}

func (a *AttackResult) setNorms(norms []float64) {
	if len(norms) == 0 {
		return
	}
	minN, sum := math.Inf(1), 0.0
	for _, v := range norms {
		minN = min(minN, v)
		sum += v
	}
	mean := sum / float64(len(norms))
	a.MeanNorm, a.MinNorm = &mean, &minN
}

func count(v []bool) int {
	n := 0
	for _, ok := range v {
		if ok {
			n++
		}
	}
	return n
}

// AttackOptions configure [Attack].
type AttackOptions struct {
	BatchSize int // default 128
	Rng       *rand.Rand
	// Progress, when set, is called after each batch with the samples
	// done and the total.
	Progress func(done, total int)
	// DiscardAdv leaves Outcome.Adv nil instead of keeping every
	// adversarial image: memory then stays bounded by the batch size
	// whatever the number of samples (an evaluation of a large streamed
	// image folder needs only the verdicts).
	DiscardAdv bool
}

// Outcome is the verified result of an attack on a list of samples.
type Outcome struct {
	// Adv holds the adversarial (or worst-case) image of each sample; nil
	// with AttackOptions.DiscardAdv.
	Adv []float32
	// Success tells which samples the attack broke, after verification: the
	// example lies in the ball and in [0,1] and the model, run again on it,
	// misclassifies it.
	Success []bool
	// Norms holds each example's perturbation norm.
	Norms []float64
	// Pred holds the model's prediction on each example.
	Pred     []int
	Queries  int
	Rejected int // claimed successes that failed verification
	Seconds  float64
}

// Attack runs one attack over the samples idx of a data set in batches and
// verifies every success: the example must lie in the threat model's ball
// and [0,1], and the model, run again on it, must misclassify it.
func Attack(ctx context.Context, m attacks.Model, a attacks.Attack, t attacks.ThreatModel, d *dataset.Dataset, idx []int, opts AttackOptions) (*Outcome, error) {
	bs := opts.BatchSize
	if bs <= 0 {
		bs = 128
	}
	size, classes := d.ImageSize(), m.Classes()
	out := &Outcome{Success: make([]bool, len(idx)), Norms: make([]float64, len(idx)), Pred: make([]int, len(idx))}
	if !opts.DiscardAdv {
		out.Adv = make([]float32, len(idx)*size)
	}
	x := make([]float32, 0, bs*size)
	y := make([]int64, 0, bs)
	logits := make([]float32, bs*classes)
	start := time.Now()
	for lo := 0; lo < len(idx); lo += bs {
		hi := min(lo+bs, len(idx))
		x, y = x[:(hi-lo)*size], y[:0]
		if err := d.Gather(x, idx[lo:hi]); err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name(), err)
		}
		for _, i := range idx[lo:hi] {
			y = append(y, d.Y[i])
		}
		res, err := a.Run(ctx, m, x, y, t, opts.Rng)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name(), err)
		}
		out.Queries += res.Queries
		out.Rejected += res.Rejected
		if err := m.Logits(res.Adv, hi-lo, logits); err != nil {
			return nil, fmt.Errorf("%s: verify: %w", a.Name(), err)
		}
		for k := range hi - lo {
			clean, adv := x[k*size:(k+1)*size], res.Adv[k*size:(k+1)*size]
			z := logits[k*classes : (k+1)*classes]
			j := lo + k
			if out.Adv != nil {
				copy(out.Adv[j*size:], adv)
			}
			out.Pred[j] = attacks.Predict(z)
			out.Norms[j] = t.Norm.Distance(adv, clean)
			verified := t.Contains(clean, adv) && attacks.Fooled(z, y[k], -1)
			if res.Success[k] && !verified {
				out.Rejected++
			}
			out.Success[j] = res.Success[k] && verified
		}
		if opts.Progress != nil {
			opts.Progress(hi, len(idx))
		}
	}
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

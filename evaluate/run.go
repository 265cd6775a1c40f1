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
	// Shard, when set, evaluates only that slice of the data (see
	// [Shard]); the report then carries per-sample records and can be
	// merged with the other shards' ([Merge]). Not with MinEps.
	Shard *Shard
	// Records adds per-sample records to the report (Report.Records).
	Records bool
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
		if e.randomModel() {
			// Verdicts on a randomised model rest on its most frequent
			// prediction over several runs, the clean ones included (see
			// random.go).
			e.draws = randomDraws
			if err := e.votedClean(ctx); err != nil {
				if ctx.Err() != nil {
					return e.interrupted(start, err)
				}
				return nil, err
			}
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
		if i == 0 {
			skipped, _ := afterFlags(e.report, false)
			for _, f := range skipped {
				e.flag(f)
			}
		}
	}
	if cfg.MinEps {
		if err := e.minEps(ctx); err != nil {
			return nil, err
		}
	}
	if !cfg.NoSanity {
		_, after := afterFlags(e.report, true)
		for _, f := range after {
			e.flag(f)
		}
	}
	e.finishRecords()
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
	e.finishRecords()
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
	// offset is the index, among the samples selected, of d's first
	// sample (the shard's first); records holds every sample's outcome.
	offset  int
	records []SampleRecord
	// draws is the number of runs whose most frequent prediction decides
	// each verdict on a randomised model; 0 on a deterministic one.
	draws int
}

// finishRecords puts the records in the report if they were asked for or
// the evaluation is a shard.
func (e *evaluation) finishRecords() {
	if e.cfg.Records || e.cfg.Shard != nil {
		// An interrupted point's outcomes are incomplete: keep the points
		// the report has.
		for i := range e.records {
			r := &e.records[i]
			r.Points = r.Points[:min(len(r.Points), len(e.report.Points))]
		}
		e.report.Records = e.records
	}
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
	var shard *ShardInfo
	offset := 0
	if cfg.Shard != nil {
		if err := cfg.Shard.Validate(); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		if cfg.MinEps {
			return nil, errors.New("evaluate: the minimal-ε search cannot be sharded")
		}
		total := d.Len()
		lo, hi := cfg.Shard.Range(total)
		if lo == hi {
			return nil, fmt.Errorf("evaluate: shard %s of %d samples is empty", cfg.Shard, total)
		}
		idx := make([]int, hi-lo)
		for i := range idx {
			idx[i] = lo + i
		}
		var err error
		if d, err = d.Select(idx); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		offset = lo
		shard = &ShardInfo{Index: cfg.Shard.Index, Count: cfg.Shard.Count, First: lo, End: hi, Total: total,
			Records: cfg.Records, PriorFlags: append([]Flag{}, cfg.Flags...)}
	}
	e := &evaluation{m: m, d: d, cfg: cfg, n: d.Len(), size: d.ImageSize(), classes: m.Classes(), offset: offset}
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
		Flags: append([]Flag(nil), cfg.Flags...), RandomSuite: slices.ContainsFunc(cfg.Attacks, attacks.UsesEoT), Shard: shard}
	e.report.setSkipped(d.Skipped)
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

// cleanBatches calls f on every batch of the evaluated samples, rows
// lo…hi-1, in order; errors are wrapped as the clean pass's.
func (e *evaluation) cleanBatches(ctx context.Context, f func(x []float32, lo, hi int) error) error {
	var buf []float32
	for lo := 0; lo < e.n; lo += e.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+e.cfg.BatchSize, e.n)
		x, err := e.d.Floats(buf, lo, hi)
		if err != nil {
			return fmt.Errorf("clean pass: %w", err)
		}
		buf = x
		if err := f(x, lo, hi); err != nil {
			return fmt.Errorf("clean pass: %w", err)
		}
	}
	return nil
}

// cleanPass computes the clean predictions.
func (e *evaluation) cleanPass(ctx context.Context) error {
	e.logits = make([]float32, e.n*e.classes)
	e.correct = make([]bool, e.n)
	err := e.cleanBatches(ctx, func(x []float32, lo, hi int) error {
		if err := e.m.Logits(x, hi-lo, e.logits[lo*e.classes:hi*e.classes]); err != nil {
			return err
		}
		e.progress("clean", hi, e.n)
		return nil
	})
	if err != nil {
		return err
	}
	count := 0
	e.records = make([]SampleRecord, e.n)
	for i := range e.n {
		z := e.logits[i*e.classes : (i+1)*e.classes]
		pred := attacks.Predict(z)
		e.correct[i] = pred == int(e.d.Y[i])
		if e.correct[i] {
			count++
		}
		e.records[i] = SampleRecord{Index: e.offset + i, Label: e.d.Y[i], Clean: pred, CleanMargin: margin(z, e.d.Y[i]),
			Points: make([]SamplePoint, 0, len(e.cfg.Eps))}
	}
	e.report.Clean = NewAccuracy(count, e.n)
	e.stage++
	return nil
}

// point runs the suite at one ε. Each sample is attacked with its own
// random source (see sampleRng), its outcome recorded, and the point is
// computed from the records, as [Merge] computes it.
func (e *evaluation) point(ctx context.Context, index int, eps Eps) (*Point, error) {
	start := time.Now()
	for i := range e.records {
		r := &e.records[i]
		r.Points = append(r.Points[:index], SamplePoint{Eps: eps.Text, Broken: !e.correct[i], Margin: r.CleanMargin, Attacks: []SampleAttack{}})
		if !e.correct[i] {
			r.Points[index].By = "clean"
		}
	}
	tpl := Point{Eps: float64(eps.Value), EpsText: eps.Text}
	robust := append([]bool{}, e.correct...)
	seconds := make([]float64, len(e.cfg.Attacks))
	for ai, a := range e.cfg.Attacks {
		ar := AttackResult{Name: a.Name(), Label: a.String(), BlackBox: attacks.IsBlackBox(a)}
		if reason := e.unsupported(a); reason != "" {
			ar.Skipped = reason
			tpl.Attacks = append(tpl.Attacks, ar)
			e.stage++
			continue
		}
		tpl.Attacks = append(tpl.Attacks, ar)
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
		out, err := Attack(ctx, e.m, a, attacks.ThreatModel{Norm: e.cfg.Norm, Eps: eps.Value}, e.d, idx, AttackOptions{
			BatchSize: e.cfg.BatchSize, DiscardAdv: true, Draws: e.draws,
			SampleRng: func(k int) *rand.Rand { return sampleRng(e.cfg.Seed, e.offset+idx[k], index, ai) },
			Progress:  func(done, total int) { e.progress(fmt.Sprintf("%s ε=%s", a.Name(), eps.Text), done, total) },
		})
		if err != nil {
			return nil, fmt.Errorf("ε %s: %w", eps.Text, err)
		}
		e.stage++
		seconds[ai] = out.Seconds
		for k, i := range idx {
			sp := &e.records[i].Points[index]
			sp.Attacks = append(sp.Attacks, SampleAttack{Name: a.Name(), Broken: out.Success[k], Margin: out.Margins[k],
				Norm: out.Norms[k], Queries: out.SampleQueries[k], Rejected: out.SampleRejected[k]})
			switch {
			case sp.Broken:
			case out.Success[k]:
				sp.Broken, sp.By, sp.Margin = true, a.Name(), out.Margins[k]
				robust[i] = false
			case len(sp.Attacks) == 1 || out.Margins[k] < sp.Margin:
				sp.Margin = out.Margins[k]
			}
		}
	}
	p := aggregatePoint(tpl, e.records, index, e.cfg.Independent)
	for ai := range p.Attacks {
		ar := &p.Attacks[ai]
		ar.Seconds = seconds[ai]
		if ar.Seconds > 0 {
			ar.ImagesPerSecond = float64(ar.Attacked) / ar.Seconds
		}
	}
	p.Seconds = time.Since(start).Seconds()
	return &p, nil
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

// AttackOptions configure [Attack].
type AttackOptions struct {
	BatchSize int // default 128
	Rng       *rand.Rand
	// SampleRng, when set, gives the k-th sample of idx its own random
	// source: each sample is then attacked by its own call of the attack's
	// Run (the attacks draw one stream for a whole batch), so that its
	// outcome does not depend on the other samples of its batch. The
	// batch size then bounds only the loading and verification batches.
	// Rng is not used.
	SampleRng func(k int) *rand.Rand
	// Progress, when set, is called after each batch with the samples
	// done and the total.
	Progress func(done, total int)
	// DiscardAdv leaves Outcome.Adv nil instead of keeping every
	// adversarial image: memory then stays bounded by the batch size
	// whatever the number of samples (an evaluation of a large streamed
	// image folder needs only the verdicts).
	DiscardAdv bool
	// Draws, when above 1, verifies on a randomised model: each returned
	// example is run Draws times, Pred is the most frequent prediction (a
	// tie with the label counts against the model) and Margins come from
	// the mean logits; the example breaks its sample when it lies in the
	// ball and Pred is not the label, whether or not the attack claimed
	// it (an attack's own verdict rests on single runs).
	Draws int
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
	// Pred holds the model's prediction on each example, Margins its
	// margin (label logit minus the largest other).
	Pred     []int
	Margins  []float64
	Queries  int
	Rejected int // claimed successes that failed verification
	// SampleQueries and SampleRejected split Queries and Rejected by
	// sample (AttackOptions.SampleRng only).
	SampleQueries  []int
	SampleRejected []int
	Seconds        float64
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
	out := &Outcome{Success: make([]bool, len(idx)), Norms: make([]float64, len(idx)), Pred: make([]int, len(idx)), Margins: make([]float64, len(idx))}
	if opts.SampleRng != nil {
		out.SampleQueries, out.SampleRejected = make([]int, len(idx)), make([]int, len(idx))
	}
	if !opts.DiscardAdv {
		out.Adv = make([]float32, len(idx)*size)
	}
	x := make([]float32, 0, bs*size)
	y := make([]int64, 0, bs)
	logits := make([]float32, bs*classes)
	var votes []int
	if opts.Draws > 1 {
		votes = make([]int, bs*classes)
	}
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
		var res *attacks.Result
		var err error
		if opts.SampleRng != nil {
			res, err = attackEach(ctx, m, a, t, x, y, size, lo, opts.SampleRng, out)
		} else {
			res, err = a.Run(ctx, m, x, y, t, opts.Rng)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name(), err)
		}
		out.Queries += res.Queries
		out.Rejected += res.Rejected
		if votes != nil {
			err = voteDraws(m, res.Adv, hi-lo, opts.Draws, logits, votes)
		} else {
			err = m.Logits(res.Adv, hi-lo, logits)
		}
		if err != nil {
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
			out.Margins[j] = margin(z, y[k])
			out.Norms[j] = t.Norm.Distance(adv, clean)
			inBall := t.Contains(clean, adv)
			claimed, verified := res.Success[k], inBall && attacks.Fooled(z, y[k], -1)
			if votes != nil {
				// A randomised model: its most frequent prediction
				// decides, and a claim that failed only the vote (a lucky
				// run) is not a rejection.
				out.Pred[j] = votedPrediction(votes[k*classes:(k+1)*classes], y[k])
				verified = inBall && int64(out.Pred[j]) != y[k]
				claimed = claimed && !inBall || verified
			}
			if claimed && !verified {
				out.Rejected++
				if out.SampleRejected != nil {
					out.SampleRejected[j]++
				}
			}
			out.Success[j] = claimed && verified
		}
		if opts.Progress != nil {
			opts.Progress(hi, len(idx))
		}
	}
	out.Seconds = time.Since(start).Seconds()
	return out, nil
}

// attackEach runs a on the batch x (labels y) with each sample's own
// random source (the batch starts at sample lo of the list), recording
// each sample's queries and rejections in out, and returns the batch's
// result. The attacks of package attacks take one source per sample
// ([attacks.RowSeeded]) and keep the batch; any other attack runs on one
// sample at a time.
func attackEach(ctx context.Context, m attacks.Model, a attacks.Attack, t attacks.ThreatModel, x []float32, y []int64, size, lo int, rng func(int) *rand.Rand, out *Outcome) (*attacks.Result, error) {
	if rs, ok := a.(attacks.RowSeeded); ok && len(y) > 1 {
		rngs := make([]*rand.Rand, len(y))
		for k := range rngs {
			rngs[k] = rng(lo + k)
		}
		res, err := rs.RunRows(ctx, m, x, y, t, rngs)
		if err != nil {
			return nil, err
		}
		copy(out.SampleQueries[lo:], res.SampleQueries)
		copy(out.SampleRejected[lo:], res.SampleRejected)
		return res, nil
	}
	res := &attacks.Result{Adv: make([]float32, len(x)), Success: make([]bool, len(y))}
	for k := range y {
		r, err := a.Run(ctx, m, x[k*size:(k+1)*size], y[k:k+1], t, rng(lo+k))
		if err != nil {
			return nil, err
		}
		copy(res.Adv[k*size:], r.Adv)
		res.Success[k] = r.Success[0]
		res.Queries += r.Queries
		res.Rejected += r.Rejected
		out.SampleQueries[lo+k] = r.Queries
		out.SampleRejected[lo+k] = r.Rejected
	}
	return res, nil
}

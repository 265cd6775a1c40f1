package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// ErrInterrupted is wrapped by the error [Trainer.Run] returns when it
// stops early because its context was cancelled or RunOptions.StopAfter
// was reached. The run's checkpoint, when it has one, holds the state to
// resume from.
var ErrInterrupted = errors.New("train: interrupted")

// DivergedError reports a non-finite training loss or weight. The
// offending update was not applied and no checkpoint was written since, so
// the last checkpoint holds the last good state.
type DivergedError struct {
	Step       int    // the step (from 0) at which training diverged
	Pass       int    // its pass over the data, from 1
	What       string // what is not finite, e.g. "the loss is NaN"
	Checkpoint string // the last good checkpoint, "" if none was written
	SavedStep  int    // the step the checkpoint holds
}

func (e *DivergedError) Error() string {
	msg := fmt.Sprintf("train: diverged at step %d (pass %d): %s", e.Step, e.Pass, e.What)
	if e.Checkpoint != "" {
		msg += fmt.Sprintf("; the last good checkpoint is %s (step %d)", e.Checkpoint, e.SavedStep)
	} else {
		msg += "; no checkpoint was written"
	}
	return msg + ". Lower the learning rate (or ε) and train again"
}

// Trainer trains a classifier with one [Config].
//
// A Trainer is not safe for concurrent use; Close releases its ONNX
// Runtime sessions.
type Trainer struct {
	cfg   Config
	env   *ort.Env
	base  *og.Model
	data  *dataset.Dataset
	val   *dataset.Dataset
	eng   *engine
	it    *dataset.Iterator
	sched Schedule
	opt   SGD

	pcg   *rand.PCG // random starts of PGD and fast training
	rng   *rand.Rand
	clean []float32 // the clean minibatch (adversarial methods)
	delta []float32 // free training's persistent perturbation
	// workers is the number of goroutines of the elementwise loops.
	workers int
	best    *snapshot // fast training: the weights of the last passed check
	// hook, when set (by tests only), observes each step (see hookPoint).
	hook func(p hookPoint, n int)

	st      state
	history []EpochStats
	// saved is the last checkpoint written or loaded: its path and state.
	saved struct {
		path string
		st   state
	}
}

// state is the position of a run, saved in checkpoints.
type state struct {
	Step int `json:"step"` // weight updates done
	// Iter is the iterator position at the start of the current minibatch
	// (of the next one between minibatches), Replay the replays of it
	// already done.
	Iter   dataset.IteratorState `json:"iter"`
	Replay int                   `json:"replay"`
	// Sums of the current pass's training metrics.
	LossSum float64 `json:"loss_sum"`
	Correct int64   `json:"correct"`
	Seen    int64   `json:"seen"`
	Seconds float64 `json:"seconds"` // time spent in steps this pass
	// PrevRobust is fast training's last overfitting-check accuracy (−1:
	// none yet); Stopped, when set, says why training ended early.
	PrevRobust float64 `json:"prev_robust"`
	Stopped    string  `json:"stopped,omitempty"`
	Done       bool    `json:"done"`
}

// EpochStats are the metrics of one pass over the training data.
type EpochStats struct {
	Pass             int     `json:"pass"` // from 1
	Passes           int     `json:"passes"`
	EpochEquivalents int     `json:"epoch_equivalents"` // pass × replays
	Step             int     `json:"step"`
	LR               float64 `json:"lr"`
	// Loss and Accuracy are the mean training loss and accuracy over the
	// pass, on the images the weights were trained on (adversarial ones
	// for the adversarial methods).
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	// HeldoutClean and HeldoutPGD are the clean and PGD accuracy on the
	// held-out set (nil without one).
	HeldoutClean *float64 `json:"heldout_clean,omitempty"`
	HeldoutPGD   *float64 `json:"heldout_pgd,omitempty"`
	// OverfitCheck is fast training's PGD-5 accuracy on the pass's first
	// training minibatch.
	OverfitCheck *float64 `json:"overfit_check,omitempty"`
	ImagesPerSec float64  `json:"images_per_sec"` // training images per second of stepping
	Seconds      float64  `json:"seconds"`
}

// Summary describes a finished run.
type Summary struct {
	Steps  int
	Epochs []EpochStats
	// Stopped says why training ended before its last pass ("" when it
	// did not).
	Stopped string
}

// New prepares the training of model (a classifier with one float32
// [N,C,H,W] input and [N,classes] logits, such as a zoo model; it is not
// modified) on data, with per-pass evaluation on val (nil for none). The
// trainable parameters are the model's Conv, Gemm, MatMul and
// BatchNormalization weights and biases, starting from its initializer
// values.
func New(env *ort.Env, model *og.Model, data, val *dataset.Dataset, cfg Config) (t *Trainer, err error) {
	defer liberr.Prefix(&err, "train")
	return newTrainerWith(env, model, nil, data, val, cfg)
}

// NewFromGraph is [New] with the training graph of model already built,
// with [GraphOptions](cfg.Params), so that it is not built again (harden
// builds it once, to check that a model can be trained before loading any
// data).
func NewFromGraph(env *ort.Env, model *og.Model, tg *traingraph.TrainingGraph, data, val *dataset.Dataset, cfg Config) (t *Trainer, err error) {
	defer liberr.Prefix(&err, "train")
	if tg == nil {
		return nil, errors.New("train: no training graph")
	}
	if len(cfg.Params) > 0 {
		names := make([]string, len(tg.Params))
		for i, p := range tg.Params {
			names[i] = p.Name
		}
		if !slices.Equal(names, cfg.Params) {
			return nil, fmt.Errorf("train: the training graph trains %d parameters, the configuration %d other ones", len(names), len(cfg.Params))
		}
	}
	return newTrainerWith(env, model, tg, data, val, cfg)
}

func newTrainerWith(env *ort.Env, model *og.Model, tg *traingraph.TrainingGraph, data, val *dataset.Dataset, cfg Config) (*Trainer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sched, err := ParseSchedule(cfg.Schedule, cfg.LR)
	if err != nil {
		return nil, err
	}
	it, err := dataset.NewIterator(data, dataset.IteratorOptions{
		BatchSize: cfg.BatchSize, Shuffle: true, Seed: cfg.Seed, Augment: cfg.Augment,
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	eng, err := newEngineWith(env, model, tg, min(cfg.BatchSize, data.Len()), cfg.Params)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t := &Trainer{
		cfg: cfg, env: env, base: model, data: data, val: val, eng: eng, it: it, sched: sched,
		opt: SGD{Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay},
		pcg: rand.NewPCG(cfg.Seed, 0x7472_6169_6e),
		st:  state{Iter: it.State(), PrevRobust: -1},
	}
	t.rng = rand.New(t.pcg)
	if err := t.checkData(data, "training"); err != nil {
		t.Close()
		return nil, err
	}
	if val != nil {
		if err := t.checkData(val, "held-out"); err != nil {
			t.Close()
			return nil, err
		}
	}
	for _, p := range eng.params {
		p.Decay = cfg.DecayAll || og.WeightDecayed(model.Graph, p.Name)
	}
	if cfg.Method != Natural {
		t.clean = make([]float32, len(eng.x))
	}
	if cfg.Method == Free {
		t.delta = make([]float32, len(eng.x))
	}
	if t.workers = env.Threads(); t.workers == 0 {
		t.workers = runtime.GOMAXPROCS(0)
	}
	return t, nil
}

// checkData checks that a dataset fits the model.
func (t *Trainer) checkData(d *dataset.Dataset, what string) error {
	s := t.eng.sample
	if int64(d.C) != s[0] || int64(d.H) != s[1] || int64(d.W) != s[2] {
		return fmt.Errorf("train: the %s images are %d×%d×%d but the model takes %d×%d×%d", what, d.C, d.H, d.W, s[0], s[1], s[2])
	}
	if d.NumClasses > t.eng.classes {
		return fmt.Errorf("train: the %s data has %d classes but the model outputs %d logits", what, d.NumClasses, t.eng.classes)
	}
	return nil
}

// Close releases the ONNX Runtime sessions and tensors.
func (t *Trainer) Close() (err error) {
	defer liberr.Prefix(&err, "train")
	if t.eng == nil {
		return nil
	}
	err = t.eng.close()
	t.eng = nil
	return err
}

// TrainingGraph returns the training graph the trainer runs.
func (t *Trainer) TrainingGraph() *traingraph.TrainingGraph { return t.eng.tg }

// Config returns the configuration, with defaults filled in.
func (t *Trainer) Config() Config { return t.cfg }

// Params returns the trainable parameters. Their Data is the memory the
// training graph reads: changes take effect at the next step.
func (t *Trainer) Params() []*Param { return t.eng.params }

// Step returns the number of weight updates done.
func (t *Trainer) Step() int { return t.st.Step }

// TotalSteps returns the number of weight updates of the whole run.
func (t *Trainer) TotalSteps() int {
	return t.cfg.Passes() * t.it.BatchesPerEpoch() * t.cfg.replays()
}

// History returns the metrics of the passes finished so far.
func (t *Trainer) History() []EpochStats { return slices.Clone(t.history) }

// RunOptions control a run's side effects; they do not change the trained
// weights.
type RunOptions struct {
	// Checkpoint is the file that checkpoints are written to: every
	// CheckpointEvery steps (0: never), after every pass, when the run is
	// interrupted and when it ends. "" writes none.
	Checkpoint      string
	CheckpointEvery int
	// Log receives one JSON object per line for the start, each pass and
	// the end of the run (nil: none).
	Log io.Writer
	// Progress, when set, is called after every weight update and at the
	// end of every pass; a run draws nothing itself.
	Progress func(Progress)
	// StopAfter interrupts the run once this many steps are done in total
	// (0: no limit), as a cancelled context does.
	StopAfter int
}

// Run trains until the last pass is done, the context is cancelled or
// opts.StopAfter is reached. Interrupted, it saves a checkpoint and returns
// an error wrapping [ErrInterrupted]; a non-finite loss returns a
// [*DivergedError]. A run resumed from a checkpoint (see
// [Trainer.LoadCheckpoint]) continues exactly where the checkpoint was
// taken: the final weights are bitwise those of an uninterrupted run.
func (t *Trainer) Run(ctx context.Context, opts RunOptions) (s *Summary, err error) {
	defer liberr.Prefix(&err, "train")
	r := &runner{Trainer: t, opts: opts, log: newEventLog(opts.Log)}
	return r.run(ctx)
}

// runner is one call of Run.
type runner struct {
	*Trainer
	opts RunOptions
	log  *eventLog
}

func (r *runner) run(ctx context.Context) (*Summary, error) {
	total, passes, m := r.TotalSteps(), r.cfg.Passes(), r.cfg.replays()
	event := "start"
	if r.st.Step > 0 {
		event = "resume"
	}
	r.log.write(map[string]any{
		"event": event, "step": r.st.Step, "total_steps": total, "passes": passes,
		"train_samples": r.data.Len(), "heldout_samples": heldoutLen(r.val), "config": r.cfg,
	})
	if err := r.it.Restore(r.st.Iter); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	for !r.st.Done && r.it.Epoch() < passes {
		start := r.it.State()
		r.st.Iter = start
		buf := r.eng.x
		if r.clean != nil {
			buf = r.clean
		}
		n, ok := r.it.NextInto(buf, r.eng.y)
		if !ok {
			if err := r.it.Err(); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			if err := r.endPass(ctx, start); err != nil {
				return nil, err
			}
			continue
		}
		if r.delta != nil {
			// The first replay's input; each replay's update writes the
			// next one's.
			sz := r.eng.sampleSize()
			freeInput(r.eng.x, r.clean[:n*sz], r.delta, r.workers)
		}
		for r.st.Replay < m {
			t0 := time.Now()
			if err := r.step(n, total); err != nil {
				return nil, err
			}
			r.st.Seconds += time.Since(t0).Seconds()
			r.st.Replay++
			r.st.Step++
			r.progress(nil)
			if r.opts.CheckpointEvery > 0 && r.st.Step%r.opts.CheckpointEvery == 0 {
				if err := r.save(); err != nil {
					return nil, err
				}
			}
			if err := r.interrupted(ctx); err != nil {
				return nil, err
			}
		}
		r.st.Replay = 0
		r.st.Iter = r.it.State()
	}
	r.st.Done = true
	if err := r.save(); err != nil {
		return nil, err
	}
	sum := &Summary{Steps: r.st.Step, Epochs: r.History(), Stopped: r.st.Stopped}
	r.log.write(map[string]any{"event": "done", "step": r.st.Step, "stopped": r.st.Stopped})
	return sum, nil
}

func heldoutLen(d *dataset.Dataset) int {
	if d == nil {
		return 0
	}
	return d.Len()
}

// interrupted saves a checkpoint and returns an ErrInterrupted error when
// the run must stop.
func (r *runner) interrupted(ctx context.Context) error {
	cause := ""
	switch {
	case ctx.Err() != nil:
		cause = context.Cause(ctx).Error()
	case r.opts.StopAfter > 0 && r.st.Step >= r.opts.StopAfter:
		cause = fmt.Sprintf("step limit %d reached", r.opts.StopAfter)
	default:
		return nil
	}
	if err := r.save(); err != nil {
		return err
	}
	r.log.write(map[string]any{"event": "interrupted", "step": r.st.Step, "cause": cause})
	where := "no checkpoint was written"
	if r.opts.Checkpoint != "" {
		where = "checkpoint saved to " + r.opts.Checkpoint
	}
	return fmt.Errorf("%w at step %d of %d (%s): %s", ErrInterrupted, r.st.Step, r.TotalSteps(), cause, where)
}

// save writes the checkpoint, if the run has one.
func (r *runner) save() error {
	if r.opts.Checkpoint == "" || r.saved.path == r.opts.Checkpoint && r.saved.st == r.st {
		return nil
	}
	for _, p := range r.eng.params {
		if i := slices.IndexFunc(p.Data, func(v float32) bool { return v-v != 0 }); i >= 0 {
			return r.diverged(fmt.Sprintf("parameter %s holds %v", p.Name, p.Data[i]))
		}
	}
	return r.SaveCheckpoint(r.opts.Checkpoint)
}

// step does one weight update on the n samples of the current minibatch.
func (r *runner) step(n, total int) error {
	e, cfg := r.eng, r.cfg
	var perturb func(lo, hi int) // free training's δ update of elements [lo, hi)
	switch cfg.Method {
	case Natural:
		if err := e.run(weightPass, n); err != nil {
			return fmt.Errorf("train: step %d: %w", r.st.Step, err)
		}
	case Free:
		if err := e.run(fullPass, n); err != nil {
			return fmt.Errorf("train: step %d: %w", r.st.Step, err)
		}
		eps := float32(cfg.Eps)
		perturb = func(lo, hi int) { freeUpdate(r.delta[lo:hi], e.x[lo:hi], r.clean[lo:hi], e.xgrad[lo:hi], eps, 1) }
	case PGD, Fast:
		steps, alpha := cfg.attack()
		if err := r.craft(n, steps, float32(alpha), r.rng); err != nil {
			return fmt.Errorf("train: step %d: %w", r.st.Step, err)
		}
		if err := e.run(weightPass, n); err != nil {
			return fmt.Errorf("train: step %d: %w", r.st.Step, err)
		}
	}
	if err := r.checkLoss(n); err != nil {
		return err
	}
	r.accumulate(n)
	r.observe(hookUpdate, n)
	if err := r.update(r.sched.LR(r.st.Step, total), perturb, n*e.sampleSize()); err != nil {
		return err
	}
	r.observe(hookUpdated, n)
	return nil
}

// update applies the SGD step with learning rate lr and, when perturb is
// not nil, the δ update of the n input elements: both elementwise, each
// cut into r.workers parts, one part of each per goroutine.
func (r *runner) update(lr float64, perturb func(lo, hi int), n int) error {
	params := r.eng.params
	if err := prepare(params); err != nil {
		return err
	}
	k := max(r.workers, 1)
	part := func(w int) {
		r.opt.stepPart(params, lr, w, k)
		if perturb != nil {
			perturb(n*w/k, n*(w+1)/k)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < k; w++ {
		wg.Go(func() { part(w) })
	}
	part(0)
	wg.Wait()
	return nil
}

// craft writes into the input buffer a PGD attack (uniform random start,
// steps signed steps of size alpha, training-mode batch statistics) on the
// n clean images of r.clean.
func (t *Trainer) craft(n, steps int, alpha float32, rng *rand.Rand) error {
	e, eps := t.eng, float32(t.cfg.Eps)
	x := t.clean[:n*e.sampleSize()]
	randomStart(e.x, x, eps, rng)
	t.observe(hookStart, n)
	for range steps {
		if err := e.run(inputPass, n); err != nil {
			return err
		}
		t.observe(hookAttackGrad, n)
		ascend(e.x, x, e.xgrad, alpha, eps, t.workers)
		t.observe(hookAttackStep, n)
	}
	return nil
}

// checkLoss returns a DivergedError if the batch's mean loss is not finite.
func (r *runner) checkLoss(n int) error {
	loss := meanLoss(r.eng.losses[:n])
	if !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		return nil
	}
	return r.diverged(fmt.Sprintf("the loss is %v", loss))
}

// diverged returns a DivergedError and logs it.
func (r *runner) diverged(what string) error {
	err := &DivergedError{Step: r.st.Step, Pass: r.st.Iter.Epoch + 1, What: what}
	if r.saved.path != "" {
		err.Checkpoint, err.SavedStep = r.saved.path, r.saved.st.Step
	}
	r.log.write(map[string]any{"event": "diverged", "step": r.st.Step, "error": err.Error()})
	return err
}

func meanLoss(losses []float32) float64 {
	s := 0.0
	for _, v := range losses {
		s += float64(v)
	}
	return s / float64(len(losses))
}

// accumulate adds the step's loss and accuracy to the pass's sums.
func (r *runner) accumulate(n int) {
	e := r.eng
	r.st.LossSum += meanLoss(e.losses[:n]) * float64(n)
	r.st.Correct += int64(correct(e.logits[:n*e.classes], e.y[:n], e.classes))
	r.st.Seen += int64(n)
}

// correct counts the rows of logits whose argmax is the label.
func correct(logits []float32, y []int64, classes int) int {
	c := 0
	for i, label := range y {
		row := logits[i*classes : (i+1)*classes]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if int64(best) == label {
			c++
		}
	}
	return c
}

// endPass finishes a pass: fast training's overfitting check, the
// held-out evaluation, the log and a checkpoint. start is the iterator
// position before the pass ended, where an interrupted end of pass
// resumes.
func (r *runner) endPass(ctx context.Context, start dataset.IteratorState) error {
	pass := start.Epoch + 1
	stats := EpochStats{
		Pass: pass, Passes: r.cfg.Passes(), EpochEquivalents: pass * r.cfg.replays(), Step: r.st.Step,
		LR: r.sched.LR(max(r.st.Step-1, 0), r.TotalSteps()), Seconds: r.st.Seconds,
	}
	if r.st.Seen > 0 {
		stats.Loss = r.st.LossSum / float64(r.st.Seen)
		stats.Accuracy = float64(r.st.Correct) / float64(r.st.Seen)
		stats.ImagesPerSec = float64(r.st.Seen) / max(r.st.Seconds, 1e-9)
	}
	// Everything random here derives from (seed, pass), and the decision to
	// stop is recorded before the evaluation, so that an end of pass
	// interrupted during the evaluation and resumed gives the same result.
	rng := rand.New(rand.NewPCG(r.cfg.Seed^0x6576616c, uint64(pass)))
	if r.cfg.Method == Fast && r.st.Stopped == "" {
		acc, err := r.overfitCheck(start.Epoch, rng)
		if err != nil {
			return err
		}
		stats.OverfitCheck = &acc
		if r.st.PrevRobust >= 0 && acc-r.st.PrevRobust < -0.2 {
			r.st.Stopped = fmt.Sprintf("catastrophic overfitting in pass %d: PGD-5 accuracy on a training minibatch fell from %.1f%% to %.1f%%; keeping the weights of pass %d",
				pass, 100*r.st.PrevRobust, 100*acc, pass-1)
			r.best.restore(r.eng)
		}
	}
	if r.val != nil {
		clean, robust, err := r.evaluate(ctx, rng)
		if err != nil {
			if ctx.Err() != nil {
				return r.interrupted(ctx)
			}
			return fmt.Errorf("train: held-out evaluation after pass %d: %w", pass, err)
		}
		stats.HeldoutClean, stats.HeldoutPGD = &clean, robust
	}
	if r.st.Stopped != "" {
		r.st.Done = true
		r.log.write(map[string]any{"event": "stopped", "step": r.st.Step, "reason": r.st.Stopped})
	} else if stats.OverfitCheck != nil {
		r.st.PrevRobust = *stats.OverfitCheck
		r.best = takeSnapshot(r.eng, r.best)
	}
	r.history = append(r.history, stats)
	r.log.write(map[string]any{"event": "pass", "stats": stats})
	r.progress(&stats)
	r.st.Iter = r.it.State()
	r.st.LossSum, r.st.Correct, r.st.Seen, r.st.Seconds = 0, 0, 0, 0
	if err := r.save(); err != nil {
		return err
	}
	return r.interrupted(ctx)
}

// overfitCheck returns the accuracy under PGD-5 (α = ε/4, random start,
// batch statistics, as in Wong et al.'s code) on the first minibatch of
// the given pass.
func (r *runner) overfitCheck(epoch int, rng *rand.Rand) (float64, error) {
	it, err := dataset.NewIterator(r.data, dataset.IteratorOptions{
		BatchSize: r.cfg.BatchSize, Shuffle: true, Seed: r.cfg.Seed, Augment: r.cfg.Augment,
	})
	if err != nil {
		return 0, err
	}
	if err := it.Seek(epoch, 0); err != nil {
		return 0, err
	}
	n, ok := it.NextInto(r.clean, r.eng.y)
	if !ok {
		return 0, fmt.Errorf("train: overfitting check: no batch (%v)", it.Err())
	}
	if err := r.craft(n, 5, float32(r.cfg.Eps/4), rng); err != nil {
		return 0, fmt.Errorf("train: overfitting check: %w", err)
	}
	if err := r.eng.run(inputPass, n); err != nil {
		return 0, fmt.Errorf("train: overfitting check: %w", err)
	}
	return float64(correct(r.eng.logits[:n*r.eng.classes], r.eng.y[:n], r.eng.classes)) / float64(n), nil
}

// snapshot is a copy of the parameters and running statistics.
type snapshot struct {
	params, mean, vars [][]float32
}

// takeSnapshot copies the engine's weights into s (allocated when nil).
func takeSnapshot(e *engine, s *snapshot) *snapshot {
	if s == nil {
		s = &snapshot{}
		for _, p := range e.params {
			s.params = append(s.params, make([]float32, len(p.Data)))
		}
		for i := range e.bn {
			m, v := e.runningStats(i)
			s.mean = append(s.mean, make([]float32, len(m)))
			s.vars = append(s.vars, make([]float32, len(v)))
		}
	}
	for i, p := range e.params {
		copy(s.params[i], p.Data)
	}
	for i := range e.bn {
		m, v := e.runningStats(i)
		copy(s.mean[i], m)
		copy(s.vars[i], v)
	}
	return s
}

// restore copies the snapshot back into the engine.
func (s *snapshot) restore(e *engine) {
	for i, p := range e.params {
		copy(p.Data, s.params[i])
	}
	for i := range e.bn {
		m, v := e.runningStats(i)
		copy(m, s.mean[i])
		copy(v, s.vars[i])
	}
}

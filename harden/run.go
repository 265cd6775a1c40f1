package harden

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/train"
)

// Config is a hardening run: free adversarial fine-tuning (or another of
// train's methods) of a prepared model, with an evaluation before and after.
type Config struct {
	Options
	// Train is the training recipe; its Params are set from the plan.
	Train train.Config
	// EvalN test images are evaluated before and after (clean and PGD-20
	// with α=ε/4 and a random start, at the training ε); 0 skips it.
	EvalN int
	// HeldOut training images are kept out of training to report clean and
	// PGD accuracy after every pass (0: none).
	HeldOut int
	// Checkpoint, CheckpointEvery, Log and Progress are
	// train.RunOptions; Resume continues from Checkpoint.
	Checkpoint      string
	CheckpointEvery int
	Resume          bool
	Log             io.Writer
	Progress        func(train.Progress)
}

// Result is what Run made.
type Result struct {
	Plan *Plan
	// Model is the hardened drop-in replacement of the input model.
	Model *onnxgraph.Model
	// Before and After evaluate the model before and after training (nil
	// when Config.EvalN is 0).
	Before, After *evaluate.Report
	Summary       *train.Summary
}

// Run evaluates the prepared model p (see [Prepare]), fine-tunes it on data
// with the training graph Prepare built, and evaluates and exports the
// result. An interrupted run returns train.ErrInterrupted after saving its
// checkpoint; cfg.Resume continues from cfg.Checkpoint, which must exist.
func Run(ctx context.Context, env *ort.Env, p *Plan, data, test *dataset.Dataset, cfg Config) (_ *Result, err error) {
	defer liberr.Prefix(&err, "harden")
	if p == nil || p.Graph == nil {
		return nil, errors.New("run: the plan was not made by Prepare")
	}
	res := &Result{Plan: p}
	if cfg.EvalN > 0 && test != nil {
		if res.Before, err = evaluateModel(ctx, env, p.Trainable, p, test.Subset(cfg.EvalN), cfg.Train.Eps, "before hardening"); err != nil {
			return nil, fmt.Errorf("evaluate before: %w", err)
		}
	}
	releaseMemory(p)
	tcfg := cfg.Train
	tcfg.Params = p.Params
	trainSet, val := data, (*dataset.Dataset)(nil)
	if cfg.HeldOut > 0 {
		if trainSet, val, err = data.Split(cfg.HeldOut, tcfg.Seed); err != nil {
			return nil, fmt.Errorf("held-out split: %w", err)
		}
	}
	tr, err := train.NewFromGraph(env, p.Trainable, p.Graph, trainSet, val, tcfg)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	if cfg.Resume {
		if err := tr.LoadCheckpoint(cfg.Checkpoint); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	if res.Summary, err = tr.Run(ctx, train.RunOptions{
		Checkpoint: cfg.Checkpoint, CheckpointEvery: cfg.CheckpointEvery, Log: cfg.Log, Progress: cfg.Progress,
	}); err != nil {
		return nil, err
	}
	// The trainer's sessions and buffers (gradients, momentum) are not
	// needed from here on; for a 2.5 GB model they are most of the memory,
	// and the evaluation after training needs as much again.
	trainCfg := tr.Config()
	values, err := tr.Finish()
	if err != nil {
		return nil, err
	}
	releaseMemory(p)
	if cfg.EvalN > 0 && test != nil {
		trained, err := p.trainableWith(values)
		if err != nil {
			return nil, err
		}
		if res.After, err = evaluateModel(ctx, env, trained, p, test.Subset(cfg.EvalN), cfg.Train.Eps, "after hardening"); err != nil {
			return nil, fmt.Errorf("evaluate after: %w", err)
		}
	}
	if res.Model, err = p.Export(values, note(trainCfg, p, res)); err != nil {
		return nil, err
	}
	return res, nil
}

// releaseMemory returns the memory a phase of Run left as garbage (the
// trainer's gradients and momentum, an evaluation's serialized graphs) to
// the system before the next phase, for a model whose weights are large
// (over attacks.MaxReplicatedWeights). Go would collect it only once as
// much again had been allocated on its heap, and meanwhile ONNX Runtime's
// sessions of the next phase, which Go does not see, take their own share:
// for a 2.5 GB model the two together outgrew a 24 GB machine.
func releaseMemory(p *Plan) {
	if attacks.WeightBytes(p.Original) > attacks.MaxReplicatedWeights {
		debug.FreeOSMemory()
	}
}

// Evaluate measures clean and PGD-20 accuracy (α=ε/4, random start) of a
// model in trainable form (images in [0,1]) on d; name labels the report.
func Evaluate(ctx context.Context, env *ort.Env, m *onnxgraph.Model, p *Plan, d *dataset.Dataset, eps float64, name string) (_ *evaluate.Report, err error) {
	defer liberr.Prefix(&err, "harden")
	return evaluateModel(ctx, env, m, p, d, eps, name)
}

// evaluateModel is [Evaluate] without the package prefix, for Run.
func evaluateModel(ctx context.Context, env *ort.Env, m *onnxgraph.Model, p *Plan, d *dataset.Dataset, eps float64, name string) (*evaluate.Report, error) {
	am, err := attacks.NewONNXModel(env, m, attacks.ModelOptions{Input: p.Input, Logits: p.Logits})
	if err != nil {
		return nil, err
	}
	defer am.Close()
	suite, err := evaluate.Suite("pgd", evaluate.SuiteOptions{})
	if err != nil {
		return nil, err
	}
	return evaluate.Run(ctx, am, d, evaluate.Config{
		Eps: []evaluate.Eps{{Value: float32(eps), Text: fmt.Sprint(eps)}}, Norm: attacks.Linf, Attacks: suite,
		SuiteName: "pgd", NoSanity: true, Model: name, Data: d.Name,
	})
}

// note is the metadata entry recording what robust did.
func note(c train.Config, p *Plan, res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "robust: %s adversarial fine-tuning, eps=%g (L-inf, inputs in [0,1])", c.Method, c.Eps)
	if c.Method == train.Free {
		fmt.Fprintf(&b, ", replays=%d", c.Replays)
	}
	fmt.Fprintf(&b, ", epochs=%d, lr=%g (%s), batch=%d; %d parameter tensors trained, %d frozen",
		c.Epochs, c.LR, c.Schedule, c.BatchSize, len(p.Params), len(p.Frozen))
	if res.Before != nil && res.After != nil {
		fmt.Fprintf(&b, "; clean %.1f%% → %.1f%%, PGD-20 %.1f%% → %.1f%% on %d test images",
			100*res.Before.Clean.Value, 100*res.After.Clean.Value, 100*robustAcc(res.Before), 100*robustAcc(res.After), res.After.Samples)
	}
	for _, n := range p.Notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

// robustAcc is the robust accuracy of a one-ε report.
func robustAcc(r *evaluate.Report) float64 {
	if len(r.Points) == 0 {
		return r.Clean.Value
	}
	return r.Points[0].Robust.Value
}

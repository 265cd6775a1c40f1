package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
	"github.com/robust-go/robust/zoo"
)

// Files of a training run directory.
const (
	runCheckpoint = "checkpoint.ckpt"
	runLog        = "log.jsonl"
	runModel      = "model.onnx"
)

// TrainCmd trains a classifier.
type TrainCmd struct {
	Model     string `default:"small-cnn" placeholder:"NAME|FILE" help:"Zoo model to train from scratch (robust zoo list), or an ONNX classifier file to start from (images in [0,1] in, logits out)."`
	DataFlags `embed:""`
	Out       string `required:"" type:"path" placeholder:"DIR" help:"Run directory: checkpoint.ckpt, log.jsonl (one JSON object per event) and, at the end, model.onnx."`

	Method   string `default:"free" enum:"natural,free,pgd,fast" help:"natural; free (free adversarial training, each minibatch replayed --replays times with a persistent perturbation); pgd (--steps PGD steps per minibatch); fast (FGSM from a random start, α=1.25ε, stops at catastrophic overfitting)."`
	Steps    int    `default:"7" help:"pgd: attack steps per minibatch."`
	StepSize string `name:"step-size" placeholder:"ALPHA" help:"pgd: attack step size (default ε/4)."`

	TrainFlags `kong:"embed,set='epochs=16',set='lr=0.05',set='replays=8'"`

	EvalN     int `name:"eval-n" default:"1000" help:"Training images held out to report clean and PGD accuracy after every pass (0: none)."`
	EvalSteps int `name:"eval-steps" default:"10" help:"PGD steps (α=ε/4, random start) of the per-pass held-out evaluation."`
}

// Validate refuses counts that would otherwise silently mean something
// else.
func (c *TrainCmd) Validate() error {
	return checkCounts(
		count{"--steps", c.Steps, 1, ""},
		count{"--eval-steps", c.EvalSteps, 1, ""},
		count{"--eval-n", c.EvalN, 0, "none"},
	)
}

// Help explains training in more depth than the flag list.
func (c *TrainCmd) Help() string {
	return `Trains a classifier whose accuracy survives adversarial perturbations of L∞
size --eps, or naturally. Free adversarial training (Shafahi et al. 2019)
replays each minibatch m times; every replay's single backward pass updates
the weights and a persistent perturbation δ, so robustness costs about as
much as natural training for the same number of gradient steps.

Example (the README's demo; about two minutes on 2 cores):

  robust train --model small-cnn --data fashion-mnist --method free --replays 8 \
      --eps 0.1 --epochs 16 --out runs/free
  robust eval runs/free/model.onnx --eps 0.1 --suite fgsm,pgd

Ctrl-C saves a checkpoint and stops; --resume continues exactly (the final
weights are bitwise those of an uninterrupted run). A NaN or infinite loss
stops training and leaves the last good checkpoint in place.`
}

// Run trains the model.
func (c *TrainCmd) Run(g *Globals) error {
	cfg, err := c.config()
	if err != nil {
		return usageError{err}
	}
	ckpt := filepath.Join(c.Out, runCheckpoint)
	if err := c.checkOut(ckpt); err != nil {
		return usageError{err}
	}
	full, err := c.open(g.stderr, c.Data, "train")
	if err != nil {
		return usageError{fmt.Errorf("--data: %w", err)}
	}
	data, val := full, (*dataset.Dataset)(nil)
	if c.EvalN > 0 {
		if data, val, err = full.Split(c.EvalN, c.Seed); err != nil {
			return usageError{fmt.Errorf("--eval-n: %w", err)}
		}
	}
	model, err := c.model(full)
	if err != nil {
		return usageError{err}
	}
	env, err := g.runtime()
	if err != nil {
		return err
	}
	tr, err := train.New(env, model, data, val, cfg)
	if err != nil {
		return usageError{err}
	}
	defer tr.Close()
	if c.Resume {
		if err := tr.LoadCheckpoint(ckpt); err != nil {
			return usageError{err}
		}
		fmt.Fprintf(g.stderr, "resuming %s at step %d of %d\n", ckpt, tr.Step(), tr.TotalSteps())
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	logPath := filepath.Join(c.Out, runLog)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", logPath, liberr.Bare(err))
	}
	defer closeLog(logFile)

	passes := fmt.Sprintf("%d passes", tr.Config().Passes())
	if tr.Config().Passes() == 1 {
		passes = "1 pass"
	}
	fmt.Fprintf(g.stdout, "training %s on %s (%d images, %d held out): %s, %s, %d weight updates\n",
		c.Model, full, data.Len(), c.EvalN, describeMethod(tr.Config()), passes, tr.TotalSteps())
	for _, e := range tr.History() { // the passes before a resume
		fmt.Fprintln(g.stdout, e)
	}
	ctx, stop := g.interruptible()
	defer stop()
	opts := train.RunOptions{Checkpoint: ckpt, CheckpointEvery: c.CheckpointEvery, Log: logFile}
	bar := g.progress(c.Progress)
	opts.Progress = trainProgress(bar, g.stdout)
	sum, err := tr.Run(ctx, opts)
	bar.Finish()
	if err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			return fmt.Errorf("%w; continue with the same flags and --resume", err)
		}
		return err
	}
	m, err := tr.Model()
	if err != nil {
		return err
	}
	out := filepath.Join(c.Out, runModel)
	if err := onnxgraph.Save(out, m); err != nil {
		return fmt.Errorf("write %s: %w", out, liberr.Bare(err))
	}
	if sum.Stopped != "" {
		fmt.Fprintf(g.stdout, "stopped early: %s\n", sum.Stopped)
	}
	if err := drawTraining(filepath.Join(c.Out, runLog), filepath.Join(c.Out, trainingFigure)); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "wrote %s; evaluate it with: robust eval %s --data %s --eps %s\n", out, out, c.Data, c.Eps)
	return nil
}

// config turns the flags into a training configuration.
func (c *TrainCmd) config() (train.Config, error) {
	method, err := train.ParseMethod(c.Method)
	if err != nil {
		return train.Config{}, err
	}
	eps, err := parseEps(c.Eps)
	if err != nil {
		return train.Config{}, fmt.Errorf("--eps: %w", err)
	}
	var alpha float64
	if c.StepSize != "" {
		if alpha, err = parseEps(c.StepSize); err != nil {
			return train.Config{}, fmt.Errorf("--step-size: %w", err)
		}
	}
	aug, err := parseAugment(c.Augment)
	if err != nil {
		return train.Config{}, fmt.Errorf("--augment: %w", err)
	}
	cfg := train.Config{
		Method: method, Epochs: c.Epochs, BatchSize: c.Batch, LR: c.LR, Schedule: c.Schedule,
		Momentum: c.Momentum, WeightDecay: c.WD, DecayAll: c.WDAll, Eps: eps, Seed: c.Seed,
		Augment: aug, EvalSteps: c.EvalSteps,
	}
	switch method {
	case train.Free:
		cfg.Replays = c.Replays
	case train.PGD:
		cfg.AttackSteps, cfg.StepSize = c.Steps, alpha
	}
	return cfg, nil
}

// parseEps reads a budget such as 0.1 or 8/255, as the float32 that
// attacks use, printed as its shortest decimal (so 0.1 stays 0.1).
func parseEps(s string) (float64, error) {
	e, err := evaluate.ParseEps(s)
	if err != nil {
		return 0, err
	}
	if len(e) != 1 {
		return 0, fmt.Errorf("want one value, got %d", len(e))
	}
	return strconv.ParseFloat(strconv.FormatFloat(float64(e[0].Value), 'g', -1, 32), 64)
}

// parseAugment reads "none" or a list of crop:P, flip and
// random-resized-crop:N.
func parseAugment(s string) (dataset.Augment, error) { return dataset.ParseAugment(s) }

// checkOut refuses, before any work, to overwrite a run, to resume one
// that is not there, and a run folder that cannot be created or written.
func (c *TrainCmd) checkOut(ckpt string) error {
	if fi, err := os.Stat(c.Out); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("--out %s is a file; train writes a run folder", c.Out)
		}
		if err := checkWritable(ckpt); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	} else if err := checkCreatable(c.Out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	_, err := os.Stat(ckpt)
	switch {
	case c.Resume && err != nil:
		return fmt.Errorf("--resume: no checkpoint %s to continue from", ckpt)
	case !c.Resume && err == nil:
		return fmt.Errorf("%s already holds a training run; continue it with --resume, or choose another --out", c.Out)
	}
	return nil
}

// checkCreatable checks that folder dir, which does not exist, can be
// created: its nearest existing ancestor is a writable folder.
func checkCreatable(dir string) error {
	parent := filepath.Dir(filepath.Clean(dir))
	for {
		fi, err := os.Stat(parent)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cannot create %s: %s is a file", dir, parent)
			}
			return checkWritable(filepath.Join(parent, "run"))
		}
		next := filepath.Dir(parent)
		if next == parent {
			return fmt.Errorf("cannot create %s: %w", dir, liberr.Bare(err))
		}
		parent = next
	}
}

// model builds the zoo model for the data's image shape and classes, or
// loads a model file.
func (c *TrainCmd) model(d *dataset.Dataset) (*onnxgraph.Model, error) {
	if strings.HasSuffix(strings.ToLower(c.Model), ".onnx") {
		return onnxgraph.Load(c.Model)
	}
	return zoo.Build(c.Model, zoo.Options{
		Seed: c.Seed, Classes: d.NumClasses, InputShape: [3]int64{int64(d.C), int64(d.H), int64(d.W)},
	})
}

// describeMethod summarises the method's settings.
func describeMethod(cfg train.Config) string {
	switch cfg.Method {
	case train.Free:
		return fmt.Sprintf("free adversarial training, m=%d, ε=%g", cfg.Replays, cfg.Eps)
	case train.PGD:
		return fmt.Sprintf("PGD-%d adversarial training, α=%g, ε=%g", cfg.AttackSteps, cfg.StepSize, cfg.Eps)
	case train.Fast:
		return fmt.Sprintf("fast (FGSM, random start) adversarial training, ε=%g", cfg.Eps)
	}
	return "natural training"
}

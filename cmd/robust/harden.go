package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/harden"
	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
)

// HardenCmd fine-tunes an existing ONNX classifier with free adversarial
// training and writes a drop-in replacement.
type HardenCmd struct {
	Model string `arg:"" type:"existingfile" help:"ONNX classifier to harden, e.g. exported by PyTorch, tf2onnx or Keras: one float [N,C,H,W] image input, logits out."`
	Out   string `short:"o" required:"" type:"path" placeholder:"FILE.onnx" help:"Hardened model to write. Beside it: FILE.report.json and FILE.report.md (before/after evaluation), FILE.ckpt (checkpoint, removed at the end) and FILE.log.jsonl."`
	Force bool   `help:"Allow -o to name MODEL itself (the input is replaced)."`

	DataFlags  `embed:""`
	InputFlags `embed:""`
	TrainFlags `kong:"embed,set='epochs=8',set='lr=0.02',set='replays=4'"`

	Freeze  []string `sep:"," placeholder:"PATTERN" help:"Parameters to keep fixed: shell globs on initializer names (layer1.*) or /regular expressions/; comma-separated or repeated."`
	EvalN   int      `name:"eval-n" default:"1000" help:"Test images for the before/after evaluation (clean and PGD-20, α=ε/4, random start); 0 skips it."`
	HeldOut int      `name:"held-out" default:"0" help:"Training images held out to report clean and PGD accuracy after every pass (0: none)."`
}

// Validate refuses counts that would otherwise silently mean something
// else.
func (c *HardenCmd) Validate() error {
	if c.EvalN < 0 || c.HeldOut < 0 {
		return errors.New("--eval-n and --held-out must not be negative (0: none)")
	}
	return nil
}

// Help explains hardening.
func (c *HardenCmd) Help() string {
	return `Makes an ONNX classifier someone else trained robust to adversarial examples:
robust finds its parameters (Conv, Gemm and MatMul weights and biases,
BatchNormalization scales and biases), fine-tunes them with free adversarial
training, and writes a model with the same inputs, outputs, opset, nodes and
pre/post-processing, in which only those values (and BatchNormalization's
running statistics) changed. It evaluates the model before and after.

  robust harden model.onnx --data fashion-mnist --eps 0.1 --replays 4 --epochs 8 -o hardened.onnx
  robust info --diff model.onnx hardened.onnx     # only initializer values changed
  robust eval hardened.onnx --data fashion-mnist --eps 0.1

Models that cannot be trained are refused before any training, with the
reason: no float parameters, integer-quantised weights, or an operator on the
way from the input to the logits that robust cannot differentiate.`
}

// Run hardens the model: every flag, the output paths and the model are
// checked before any data is read or training starts.
func (c *HardenCmd) Run(g *Globals) error {
	cfg, err := c.config()
	if err != nil {
		return usageError{err}
	}
	base := strings.TrimSuffix(c.Out, ".onnx")
	cfg.Checkpoint = base + ".ckpt"
	logPath := base + ".log.jsonl"
	if err := c.checkFiles(cfg.Checkpoint); err != nil {
		return usageError{err}
	}
	m, err := onnxgraph.Load(c.Model)
	if err != nil {
		return usageError{err}
	}
	// Refuse an untrainable model before loading data or starting ORT;
	// the plan's training graph is the one trained.
	plan, err := harden.Prepare(m, cfg.Options)
	if err != nil {
		return usageError{fmt.Errorf("cannot harden %s: %w", c.Model, err)}
	}
	data, err := c.open(g.stderr, c.Data, "train")
	if err != nil {
		return usageError{fmt.Errorf("--data: %w", err)}
	}
	var test *dataset.Dataset
	if cfg.EvalN > 0 {
		if test, err = c.open(g.stderr, c.Data, "test"); err != nil {
			return usageError{fmt.Errorf("--data: %w", err)}
		}
	}
	env, err := g.runtime()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", logPath, liberr.Bare(err))
	}
	defer closeLog(logFile)
	cfg.Log = logFile
	bar := g.progress(c.Progress)
	cfg.Progress = trainProgress(bar, g.stdout)
	ctx, stop := g.interruptible()
	defer stop()
	fmt.Fprintf(g.stdout, "hardening %s on %s: free adversarial fine-tuning, ε=%s, m=%d, %d epoch-equivalents\n",
		c.Model, c.Data, c.Eps, cfg.Train.Replays, cfg.Train.Epochs)
	res, err := harden.Run(ctx, env, plan, data, test, cfg)
	bar.Finish()
	if err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			return fmt.Errorf("%w; continue with the same flags and --resume", err)
		}
		return err
	}
	for _, n := range res.Plan.Notes {
		fmt.Fprintf(g.stdout, "note: %s\n", n)
	}
	fmt.Fprintf(g.stdout, "trained %d parameter tensors, kept %d fixed\n", len(res.Plan.Params), len(res.Plan.Frozen))
	if err := onnxgraph.Save(c.Out, res.Model); err != nil {
		return fmt.Errorf("write %s: %w", c.Out, liberr.Bare(err))
	}
	if res.Before != nil {
		printBeforeAfter(g.stdout, res, c.Eps)
		if err := writeHardenReports(base, c, res); err != nil {
			return err
		}
	}
	if err := drawTraining(base+".log.jsonl", base+"."+trainingFigure); err != nil {
		return err
	}
	os.Remove(cfg.Checkpoint) // the run is complete; the model holds its result
	fmt.Fprintf(g.stdout, "wrote %s (robust info --diff %s %s shows what changed)\n", c.Out, c.Model, c.Out)
	return nil
}

// checkFiles refuses, before any work, to overwrite the input model
// without --force, to start over a run whose checkpoint exists, to resume
// one whose checkpoint does not, and output paths that cannot be written.
func (c *HardenCmd) checkFiles(ckpt string) error {
	if sameFile(c.Model, c.Out) && !c.Force {
		return fmt.Errorf("-o %s is the input model; choose another file, or add --force to replace it", c.Out)
	}
	_, err := os.Stat(ckpt)
	switch {
	case c.Resume && err != nil:
		return fmt.Errorf("--resume: no checkpoint %s to continue from", ckpt)
	case !c.Resume && err == nil:
		return fmt.Errorf("%s exists from an earlier run: add --resume to continue it, or delete it", ckpt)
	}
	if err := checkWritable(c.Out); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}

// closeLog closes a run's log file and removes it when nothing was logged,
// so that an early failure leaves no empty log behind.
func closeLog(f *os.File) {
	fi, err := f.Stat()
	f.Close()
	if err == nil && fi.Size() == 0 {
		os.Remove(f.Name())
	}
}

// config turns the flags into a hardening configuration.
func (c *HardenCmd) config() (harden.Config, error) {
	eps, err := parseEps(c.Eps)
	if err != nil {
		return harden.Config{}, fmt.Errorf("--eps: %w", err)
	}
	aug, err := parseAugment(c.Augment)
	if err != nil {
		return harden.Config{}, fmt.Errorf("--augment: %w", err)
	}
	opts := harden.Options{Input: c.Input, Logits: c.Output, Freeze: c.Freeze}
	if opts.Mean, opts.Std, err = c.normalisation(); err != nil {
		return harden.Config{}, err
	}
	return harden.Config{
		Options: opts,
		Train: train.Config{Method: train.Free, Replays: c.Replays, Epochs: c.Epochs, BatchSize: c.Batch,
			LR: c.LR, Schedule: c.Schedule, Momentum: c.Momentum, WeightDecay: c.WD, DecayAll: c.WDAll, Eps: eps,
			Augment: aug, Seed: c.Seed},
		EvalN: c.EvalN, HeldOut: c.HeldOut, CheckpointEvery: c.CheckpointEvery, Resume: c.Resume,
	}, nil
}

// normalisation turns --range, --mean and --std, which mean what they mean
// for eval (the model sees (range·x − mean)/std), into the mean and std
// harden applies to images in [0,1]: (x − mean/range)/(std/range). Nothing
// is prepended for a model that takes [0,1] images as they are.
func (c *HardenCmd) normalisation() (mean, std []float32, err error) {
	ct, err := c.contract()
	if err != nil {
		return nil, nil, err
	}
	if ct.Layout == evaluate.NHWC {
		return nil, nil, errors.New("--layout nhwc: robust hardens NCHW models only")
	}
	if ct.Scale == 1 && len(ct.Mean) == 0 && len(ct.Std) == 0 {
		return nil, nil, nil
	}
	n := max(len(ct.Mean), len(ct.Std), 1)
	if (len(ct.Mean) > 0 && len(ct.Mean) != n) || (len(ct.Std) > 0 && len(ct.Std) != n) {
		return nil, nil, fmt.Errorf("--mean has %d values and --std %d; give as many of each", len(ct.Mean), len(ct.Std))
	}
	mean, std = make([]float32, n), make([]float32, n)
	for i := range n {
		mean[i], std[i] = 0, 1
		if len(ct.Mean) > 0 {
			mean[i] = ct.Mean[i]
		}
		if len(ct.Std) > 0 {
			std[i] = ct.Std[i]
		}
		mean[i] /= ct.Scale
		std[i] /= ct.Scale
	}
	return mean, std, nil
}

func printBeforeAfter(w io.Writer, res *harden.Result, eps string) {
	b, a := res.Before, res.After
	fmt.Fprintf(w, "\n%-22s %8s %8s   (%d test images)\n", "", "before", "after", a.Samples)
	fmt.Fprintf(w, "%-22s %7.1f%% %7.1f%%\n", "clean", 100*b.Clean.Value, 100*a.Clean.Value)
	fmt.Fprintf(w, "%-22s %7.1f%% %7.1f%%\n\n", "PGD-20 (ε="+eps+")", 100*robustOf(b), 100*robustOf(a))
}

func robustOf(r *evaluate.Report) float64 {
	if len(r.Points) == 0 {
		return r.Clean.Value
	}
	return r.Points[0].Robust.Value
}

// writeHardenReports saves the before/after evaluation as JSON and Markdown.
func writeHardenReports(base string, c *HardenCmd, res *harden.Result) error {
	doc := struct {
		Schema string           `json:"schema"`
		Model  string           `json:"model"`
		Out    string           `json:"out"`
		Params []string         `json:"trained"`
		Frozen []string         `json:"frozen"`
		Notes  []string         `json:"notes"`
		Before *evaluate.Report `json:"before"`
		After  *evaluate.Report `json:"after"`
	}{"robust.harden/v1", c.Model, c.Out, res.Plan.Params, res.Plan.Frozen, res.Plan.Notes, res.Before, res.After}
	js, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(base+".report.json", func(w io.Writer) error { _, err := w.Write(append(js, '\n')); return err }); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "## robust harden: %s → %s\n\n", c.Model, c.Out)
	fmt.Fprintf(&md, "| | before | after |\n|---|---|---|\n")
	fmt.Fprintf(&md, "| clean | %.1f%% | %.1f%% |\n", 100*res.Before.Clean.Value, 100*res.After.Clean.Value)
	fmt.Fprintf(&md, "| PGD-20 (ε=%s) | %.1f%% | %.1f%% |\n\n", c.Eps, 100*robustOf(res.Before), 100*robustOf(res.After))
	fmt.Fprintf(&md, "%d test images; free adversarial fine-tuning, m=%d, %d epoch-equivalents; %d parameter tensors trained, %d frozen.\n",
		res.After.Samples, c.Replays, c.Epochs, len(res.Plan.Params), len(res.Plan.Frozen))
	return writeFile(base+".report.md", func(w io.Writer) error { _, err := io.WriteString(w, md.String()); return err })
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/harden"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
)

// HardenCmd fine-tunes an existing ONNX classifier with free adversarial
// training and writes a drop-in replacement.
type HardenCmd struct {
	Model string `arg:"" type:"existingfile" help:"ONNX classifier to harden, e.g. exported by PyTorch, tf2onnx or Keras: one float [N,C,H,W] image input, logits out."`
	Data  string `default:"fashion-mnist" placeholder:"SPEC" help:"Data: its train split fine-tunes, its test split evaluates. fashion-mnist, mnist[:DIR], cifar10[:DIR], cifar100[:DIR], imagefolder:DIR, FILE.npz, npy:X.npy,Y.npy."`
	Out   string `short:"o" required:"" type:"path" placeholder:"FILE.onnx" help:"Hardened model to write. Beside it: FILE.report.json and FILE.report.md (before/after evaluation), FILE.ckpt (checkpoint) and FILE.log.jsonl."`

	Eps      string  `default:"8/255" placeholder:"EPS" help:"L∞ radius for images in [0,1]: 8/255, 0.1, ..."`
	Replays  int     `short:"m" default:"4" help:"Replays of each minibatch (free training's m)."`
	Epochs   int     `default:"8" help:"Epoch-equivalents: ⌈epochs/replays⌉ passes over the training data."`
	Batch    int     `default:"128" help:"Minibatch size."`
	LR       float64 `name:"lr" default:"0.02" help:"Base learning rate (fine-tuning: lower than from scratch)."`
	Schedule string  `default:"piecewise" placeholder:"SPEC" help:"Learning-rate schedule over weight updates: constant, piecewise[:F1,F2], cyclic[:PEAK], cosine."`
	Momentum float64 `default:"0.9" help:"SGD momentum."`
	WD       float64 `name:"wd" default:"5e-4" help:"Weight decay on convolution and linear weights."`
	Augment  string  `default:"none" placeholder:"none|crop:P,flip" help:"Training augmentation: none, or crop:P and/or flip (e.g. crop:4,flip for CIFAR), or random-resized-crop:N (imagefolder, N = --crop) and flip."`
	Seed     uint64  `default:"0" help:"Seed of the data order and random starts."`

	Freeze []string `sep:"," placeholder:"PATTERN" help:"Parameters to keep fixed: shell globs on initializer names (layer1.*) or /regular expressions/; comma-separated or repeated."`
	Mean   string   `placeholder:"M[,M,M]" help:"The model expects normalised input: per-channel mean, in the [0,1] scale, that robust applies before the model during fine-tuning and evaluation (the written model still expects normalised input)."`
	Std    string   `placeholder:"S[,S,S]" help:"Per-channel std, with --mean."`
	Input  string   `placeholder:"NAME" help:"Image input, when the model has several inputs."`
	Logits string   `placeholder:"NAME" help:"Logits output, when the model has several outputs."`

	EvalN           int  `name:"eval-n" default:"1000" help:"Test images for the before/after evaluation (clean and PGD-20, α=ε/4, random start); 0 skips it."`
	HeldOut         int  `name:"held-out" default:"0" help:"Training images held out to report clean and PGD accuracy after every pass."`
	CheckpointEvery int  `name:"checkpoint-every" default:"500" placeholder:"STEPS" help:"Checkpoint every this many weight updates (and after each pass and on Ctrl-C)."`
	Resume          bool `help:"Continue an interrupted run from FILE.ckpt (same flags)."`
	Progress        bool `default:"true" negatable:"" help:"Show a progress bar on stderr."`

	dataFlags `embed:""` // --resize, --crop, --skip-bad, --max-pixels
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

// Run hardens the model.
func (c *HardenCmd) Run(g *Globals) error {
	cfg, err := c.config()
	if err != nil {
		return usageError{err}
	}
	m, err := onnxgraph.Load(c.Model)
	if err != nil {
		return usageError{err}
	}
	// Refuse an untrainable model before loading data or starting ORT.
	if _, err := harden.Prepare(m, cfg.Options); err != nil {
		return usageError{fmt.Errorf("cannot harden %s: %w", c.Model, err)}
	}
	data, err := c.open(g.stderr, c.Data, "train")
	if err != nil {
		return usageError{err}
	}
	var test *dataset.Dataset
	if cfg.EvalN > 0 {
		if test, err = c.open(g.stderr, c.Data, "test"); err != nil {
			return usageError{err}
		}
	}
	env, err := g.runtime()
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(c.Out, ".onnx")
	cfg.Checkpoint = base + ".ckpt"
	if _, err := os.Stat(cfg.Checkpoint); err == nil && !c.Resume {
		return usageError{fmt.Errorf("%s exists from an earlier run: add --resume to continue it, or delete it", cfg.Checkpoint)}
	}
	logFile, err := os.OpenFile(base+".log.jsonl", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cfg.Log = logFile
	if c.Progress {
		cfg.Progress = g.stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(g.stdout, "hardening %s on %s: free adversarial fine-tuning, ε=%s, m=%d, %d epoch-equivalents\n",
		c.Model, c.Data, c.Eps, c.Replays, c.Epochs)
	res, err := harden.Run(ctx, env, m, data, test, cfg)
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
		return err
	}
	if res.Before != nil {
		printBeforeAfter(g.stdout, res, c.Eps)
		if err := writeHardenReports(base, c, res); err != nil {
			return err
		}
	}
	os.Remove(cfg.Checkpoint) // the run is complete; the model holds its result
	fmt.Fprintf(g.stdout, "wrote %s (robust info --diff %s %s shows what changed)\n", c.Out, c.Model, c.Out)
	return nil
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
	var opts harden.Options
	opts.Input, opts.Logits, opts.Freeze = c.Input, c.Logits, c.Freeze
	if (c.Mean == "") != (c.Std == "") {
		return harden.Config{}, errors.New("--mean and --std go together")
	}
	if c.Mean != "" {
		if opts.Mean, err = evaluate.ParseFloats(c.Mean); err != nil {
			return harden.Config{}, fmt.Errorf("--mean: %w", err)
		}
		if opts.Std, err = evaluate.ParseFloats(c.Std); err != nil {
			return harden.Config{}, fmt.Errorf("--std: %w", err)
		}
	}
	if c.EvalN < 0 || c.HeldOut < 0 || c.CheckpointEvery < 0 {
		return harden.Config{}, errors.New("--eval-n, --held-out and --checkpoint-every must not be negative")
	}
	return harden.Config{
		Options: opts,
		Train: train.Config{Method: train.Free, Replays: c.Replays, Epochs: c.Epochs, BatchSize: c.Batch,
			LR: c.LR, Schedule: c.Schedule, Momentum: c.Momentum, WeightDecay: c.WD, Eps: eps,
			Augment: aug, Seed: c.Seed},
		EvalN: c.EvalN, HeldOut: c.HeldOut, CheckpointEvery: c.CheckpointEvery, Resume: c.Resume,
	}, nil
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
	if err := onnxgraph.WriteFileAtomic(base+".report.json", append(js, '\n')); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "## robust harden: %s → %s\n\n", c.Model, c.Out)
	fmt.Fprintf(&md, "| | before | after |\n|---|---|---|\n")
	fmt.Fprintf(&md, "| clean | %.1f%% | %.1f%% |\n", 100*res.Before.Clean.Value, 100*res.After.Clean.Value)
	fmt.Fprintf(&md, "| PGD-20 (ε=%s) | %.1f%% | %.1f%% |\n\n", c.Eps, 100*robustOf(res.Before), 100*robustOf(res.After))
	fmt.Fprintf(&md, "%d test images; free adversarial fine-tuning, m=%d, %d epoch-equivalents; %d parameter tensors trained, %d frozen.\n",
		res.After.Samples, c.Replays, c.Epochs, len(res.Plan.Params), len(res.Plan.Frozen))
	return onnxgraph.WriteFileAtomic(base+".report.md", []byte(md.String()))
}

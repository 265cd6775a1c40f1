package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/onnxgraph"
)

// modelFlags are the model, data and threat-model flags that eval and
// attack share.
type modelFlags struct {
	Model string `arg:"" type:"existingfile" help:"ONNX classifier: one float image input, logits out."`

	Data  string `default:"fashion-mnist" placeholder:"SPEC" help:"Data set (default fashion-mnist): fashion-mnist, mnist[:DIR], cifar10[:DIR], cifar100[:DIR], imagefolder:DIR, FILE.npz, npy:X.npy,Y.npy."`
	Split string `default:"test" enum:"train,test" help:"Data split (${enum})."`
	N     int    `default:"1000" help:"Number of samples, the first N of the split (0: all)."`
	Seed  uint64 `default:"0" help:"Seed of the attacks' random starts and queries."`
	Batch int    `default:"128" help:"Samples attacked at once."`

	Eps  string `default:"0.1" placeholder:"LIST" help:"Perturbation budget(s) (default 0.1): 0.03, 4/255 or a list 2/255,4/255,8/255."`
	Norm string `default:"linf" enum:"linf,l2,l1" help:"Threat model norm (${enum})."`

	Range   string `default:"0,1" placeholder:"0,1|0,255" help:"Input range the model expects; robust scales its [0,1] images."`
	Mean    string `placeholder:"M[,M,M]" help:"Per-channel mean the model expects subtracted (in the model's range); prepended to the graph."`
	Std     string `placeholder:"S[,S,S]" help:"Per-channel standard deviation the model expects divided out; prepended to the graph."`
	Layout  string `default:"auto" enum:"auto,nchw,nhwc" help:"Model input layout (${enum}); NHWC models get a Transpose."`
	Softmax string `default:"warn" enum:"warn,log" help:"For a model ending in Softmax: warn, or take logs (${enum})."`
	Input   string `placeholder:"NAME" help:"Image input of a model with several inputs."`
	Output  string `placeholder:"NAME" help:"Logits output of a model with several outputs."`
}

// loadedModel is a model prepared for attacks on a data set.
type loadedModel struct {
	model *attacks.ONNXModel
	data  *dataset.Dataset
	eps   []evaluate.Eps
	norm  attacks.Norm
	flags []evaluate.Flag
	total int // samples in the split before --n
}

// load reads the data and the model, adapts the model to robust's input
// convention and checks that they fit. Every error is the user's (exit 2).
func (f *modelFlags) load(g *Globals) (*loadedModel, error) {
	eps, err := evaluate.ParseEps(f.Eps)
	if err != nil {
		return nil, usageError{fmt.Errorf("--eps: %w", err)}
	}
	norm, err := attacks.ParseNorm(f.Norm)
	if err != nil {
		return nil, usageError{err}
	}
	if f.N < 0 || f.Batch <= 0 {
		return nil, usageError{fmt.Errorf("--n must be ≥ 0 and --batch positive")}
	}
	c, err := f.contract()
	if err != nil {
		return nil, usageError{err}
	}
	d, err := dataset.Open(f.Data, f.Split, dataset.Options{})
	if err != nil {
		return nil, usageError{err}
	}
	total := d.Len()
	if f.N > 0 {
		d = d.Subset(f.N)
	}
	if d.Len() == 0 {
		return nil, usageError{fmt.Errorf("data %s: %w", f.Data, evaluate.ErrNoData)}
	}
	for _, e := range eps {
		if err := evaluate.CheckEps(norm, e, d.ImageSize()); err != nil {
			return nil, usageError{fmt.Errorf("--eps: %w", err)}
		}
	}
	raw, err := onnxgraph.Load(f.Model)
	if err != nil {
		return nil, usageError{err}
	}
	shape := [3]int{d.C, d.H, d.W}
	prepared, flags, err := evaluate.Prepare(raw, c, shape)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", f.Model, err)}
	}
	env, err := g.runtime()
	if err != nil {
		return nil, err
	}
	m, err := attacks.NewONNXModel(env, prepared, attacks.ModelOptions{Input: f.Input, Logits: f.Output, Shape: shape})
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", f.Model, err)}
	}
	if err := evaluate.CheckFit(m, d); err != nil {
		m.Close()
		return nil, usageError{fmt.Errorf("%s on %s: %w", f.Model, f.Data, err)}
	}
	return &loadedModel{model: m, data: d, eps: eps, norm: norm, flags: flags, total: total}, nil
}

// contract turns the model-contract flags into an evaluate.Contract.
func (f *modelFlags) contract() (evaluate.Contract, error) {
	c := evaluate.Contract{Input: f.Input, Logits: f.Output, LogSoftmax: f.Softmax == "log"}
	var err error
	if c.Scale, err = evaluate.ParseRange(f.Range); err != nil {
		return c, fmt.Errorf("--range: %w", err)
	}
	if c.Mean, err = evaluate.ParseFloats(f.Mean); err != nil {
		return c, fmt.Errorf("--mean: %w", err)
	}
	if c.Std, err = evaluate.ParseFloats(f.Std); err != nil {
		return c, fmt.Errorf("--std: %w", err)
	}
	if c.Layout, err = evaluate.ParseLayout(f.Layout); err != nil {
		return c, err
	}
	return c, nil
}

// EvalCmd evaluates a model's robustness.
type EvalCmd struct {
	modelFlags `embed:""`

	Suite       string `default:"default" placeholder:"NAME|LIST" help:"Attack suite: default (fgsm, pgd, apgd-ce), autoattack-lite (apgd-ce, apgd-dlr, square), full, autoattack (AutoAttack standard: apgd-ce, apgd-t, fab-t, square 5000), autoattack-plus, autoattack-rand (for randomised models: apgd-ce, apgd-dlr with EoT over 20 samples), or a list of attacks (fgsm, pgd, pgd-cw, pgd-dlr, apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square)."`
	Steps       int    `default:"0" help:"Iterations of PGD and APGD attacks (0: each attack's default: PGD 20, APGD 100)."`
	Restarts    int    `default:"0" help:"Restarts of FGSM, PGD and APGD attacks (0: the suite's default)."`
	Queries     int    `default:"0" help:"Square's query budget (0: 1000, 5000 in the full suite)."`
	Independent bool   `help:"Run every attack on every correctly classified sample and report each attack's own robust accuracy (default: cascade, later attacks only on samples still robust)."`
	NoSanity    bool   `name:"no-sanity" help:"Skip the sanity checks (gradients, determinism, large-ε probe)."`
	Progress    bool   `default:"true" negatable:"" help:"Show a progress bar on stderr."`

	JSON      string `name:"json" type:"path" placeholder:"FILE" help:"Write the report as JSON (schema robust.eval/v1)."`
	Markdown  string `type:"path" placeholder:"FILE" help:"Write the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)."`
	JUnit     string `name:"junit" type:"path" placeholder:"FILE" help:"Write the gates as JUnit XML."`
	Curve     string `type:"path" placeholder:"FILE.png" help:"Draw robust accuracy against ε as a PNG."`
	FailUnder string `name:"fail-under" placeholder:"GATES" help:"Exit 1 unless every gate holds, e.g. 'pgd=40%,clean=80%' or 'robust@8/255=30%' (metrics: clean, robust, attack names; ε: the first --eps unless @EPS)."`
	Policy    string `type:"existingfile" placeholder:"FILE.toml" help:"Read gates from a TOML policy file ([gates] table)."`

	MinEps      bool `name:"min-eps" help:"Also find each sample's smallest breaking ε (FAB's minimal perturbation refined by bisection with APGD) and report the median and percentiles."`
	AllowRandom bool `name:"allow-random" help:"Let gates pass on a deterministic suite's numbers for a model the sanity checks find non-deterministic (by default such gates fail: use --suite autoattack-rand)."`
}

// Run evaluates the model and checks the gates.
func (c *EvalCmd) Run(g *Globals) error {
	norm, err := attacks.ParseNorm(c.Norm)
	if err != nil {
		return usageError{fmt.Errorf("--norm: %w", err)}
	}
	suite, err := evaluate.SuiteFor(c.Suite, norm, evaluate.SuiteOptions{Steps: c.Steps, Restarts: c.Restarts, Queries: c.Queries})
	if err != nil {
		return usageError{fmt.Errorf("--suite: %w", err)}
	}
	if c.Steps < 0 || c.Restarts < 0 || c.Queries < 0 {
		return usageError{errors.New("--steps, --restarts and --queries must not be negative")}
	}
	gates, err := c.gates()
	if err != nil {
		return usageError{err}
	}
	lm, err := c.load(g)
	if err != nil {
		return err
	}
	defer lm.model.Close()
	cfg := evaluate.Config{
		Eps: lm.eps, Norm: lm.norm, Attacks: suite, SuiteName: c.Suite, BatchSize: c.Batch, Seed: c.Seed,
		Independent: c.Independent, NoSanity: c.NoSanity, Model: c.Model, Data: dataName(lm.data), Flags: lm.flags,
		MinEps: c.MinEps,
	}
	if cfg.Reproduction, err = c.reproduction(g, lm); err != nil {
		return err
	}
	if c.Progress {
		bar := newBar(g.stderr)
		defer bar.close()
		cfg.Progress = bar.update
	}
	report, err := evaluate.Run(context.Background(), lm.model, lm.data, cfg)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if len(gates) > 0 {
		if err := report.CheckGates(gates); err != nil {
			return usageError{err}
		}
	}
	if err := report.WriteText(g.stdout); err != nil {
		return err
	}
	if err := c.writeFiles(report); err != nil {
		return err
	}
	if reason := report.GateFailure(); reason != "" {
		return gateError{reason}
	}
	if len(gates) > 0 {
		if err := report.CheckRandomness(c.AllowRandom); err != nil {
			return gateError{err.Error()}
		}
	}
	return nil
}

// gates reads --fail-under and --policy.
func (c *EvalCmd) gates() ([]evaluate.Gate, error) {
	var gates []evaluate.Gate
	if c.FailUnder != "" {
		gs, err := evaluate.ParseGates(c.FailUnder)
		if err != nil {
			return nil, fmt.Errorf("--fail-under: %w", err)
		}
		gates = append(gates, gs...)
	}
	if c.Policy != "" {
		gs, err := evaluate.LoadPolicy(c.Policy)
		if err != nil {
			return nil, err
		}
		gates = append(gates, gs...)
	}
	return gates, nil
}

// writeFiles writes the requested report files.
func (c *EvalCmd) writeFiles(r *evaluate.Report) error {
	outputs := []struct {
		path  string
		write func(io.Writer) error
	}{
		{c.JSON, r.WriteJSON}, {c.Markdown, r.WriteMarkdown}, {c.JUnit, r.WriteJUnit}, {c.Curve, r.WriteCurvePNG},
	}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		if err := writeFile(o.path, o.write); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a file through a writer function, atomically.
func writeFile(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := onnxgraph.WriteFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// bar is the progress bar on stderr: the evaluation's stages share 1000
// steps each.
type bar struct {
	pb   *progressbar.ProgressBar
	last string
}

func newBar(w io.Writer) *bar {
	if w == nil {
		w = os.Stderr
	}
	return &bar{pb: progressbar.NewOptions(1000,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)}
}

func (b *bar) update(p evaluate.Progress) {
	if p.Name != b.last {
		b.pb.Describe(p.Name)
		b.last = p.Name
	}
	frac := float64(p.Stage) / float64(p.Stages)
	if p.Total > 0 {
		frac += float64(p.Done) / float64(p.Total) / float64(p.Stages)
	}
	_ = b.pb.Set(int(1000 * frac))
}

func (b *bar) close() { _ = b.pb.Finish() }

// dataName names a data set and its split, e.g. "fashion-mnist/test".
func dataName(d *dataset.Dataset) string {
	if d.Partition != "" {
		return d.Name + "/" + d.Partition
	}
	return d.Name
}

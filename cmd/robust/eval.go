package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/onnxgraph"
)

// ModelFlags are the model, data and threat-model flags that eval and
// attack share.
type ModelFlags struct {
	Model string `arg:"" type:"existingfile" help:"ONNX classifier: one float image input, logits out."`

	DataFlags `embed:""`
	Split     string `default:"test" enum:"train,test" help:"Data split (${enum})."`
	N         int    `default:"1000" help:"Number of samples, the first N of the split (0: all)."`
	Seed      uint64 `default:"0" help:"Seed of the attacks' random starts and queries."`
	Batch     int    `default:"128" help:"Samples attacked at once."`

	Eps  string `default:"0.1" placeholder:"LIST" help:"Perturbation budget(s): 0.03, 4/255 or a list 2/255,4/255,8/255, for images in [0,1]."`
	Norm string `default:"linf" enum:"linf,l2,l1" help:"Threat model norm (${enum})."`

	InputFlags `embed:""`
	Softmax    string `default:"warn" enum:"warn,log" help:"For a model ending in Softmax: warn, or take logs (${enum})."`
}

// Validate refuses counts that would otherwise silently mean something
// else.
func (f *ModelFlags) Validate() error {
	return checkCounts(count{"--n", f.N, 0, "all"}, count{"--batch", f.Batch, 1, ""})
}

// threat parses --eps and --norm.
func (f *ModelFlags) threat() ([]evaluate.Eps, attacks.Norm, error) {
	eps, err := evaluate.ParseEps(f.Eps)
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("--eps: %w", err)}
	}
	norm, err := attacks.ParseNorm(f.Norm)
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("--norm: %w", err)}
	}
	return eps, norm, nil
}

// loadedModel is a model prepared for attacks on a data set.
type loadedModel struct {
	model *attacks.ONNXModel
	data  *dataset.Dataset
	flags []evaluate.Flag
	total int // samples in the split before --n
}

// load reads the data and the model, adapts the model to robust's input
// convention and checks that they fit the data and the budgets. Every
// error is the user's (exit 2).
func (f *ModelFlags) load(g *Globals, eps []evaluate.Eps, norm attacks.Norm) (*loadedModel, error) {
	c, err := f.contract()
	if err != nil {
		return nil, usageError{err}
	}
	c.LogSoftmax = f.Softmax == "log"
	d, err := f.open(g.stderr, f.Data, f.Split)
	if err != nil {
		return nil, usageError{fmt.Errorf("--data: %w", err)}
	}
	total := d.Len()
	if f.N > 0 {
		d = d.Subset(f.N)
	}
	if d.Len() == 0 {
		return nil, usageError{fmt.Errorf("--data %s: %w", f.Data, evaluate.ErrNoData)}
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
	g.sessions++
	m, err := attacks.NewONNXModel(env, prepared, attacks.ModelOptions{Input: f.Input, Logits: f.Output, Shape: shape, Sessions: g.Sessions})
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", f.Model, err)}
	}
	if err := evaluate.CheckFit(m, d); err != nil {
		m.Close()
		return nil, usageError{fmt.Errorf("%s on %s: %w", f.Model, f.Data, err)}
	}
	return &loadedModel{model: m, data: d, flags: flags, total: total}, nil
}

// EvalCmd evaluates a model's robustness.
type EvalCmd struct {
	ModelFlags `embed:""`

	Suite       string `default:"default" placeholder:"NAME|LIST" help:"Attack suite: default (fgsm, pgd, apgd-ce), autoattack-lite (apgd-ce, apgd-dlr, square), full, autoattack (AutoAttack standard: apgd-ce, apgd-t, fab-t, square 5000), autoattack-plus, autoattack-rand (for randomised models: apgd-ce, apgd-dlr with EoT over 20 samples), or a list of attacks (fgsm, pgd, pgd-cw, pgd-dlr, apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square). An attack that cannot run under --norm is refused."`
	Steps       int    `default:"0" help:"Iterations of PGD and APGD attacks (0: each attack's default: PGD 20, APGD 100)."`
	Restarts    int    `default:"0" help:"Restarts of FGSM, PGD and APGD attacks (0: the suite's default)."`
	Queries     int    `default:"0" help:"Square's query budget (0: 1000, 5000 in the full suite)."`
	Independent bool   `help:"Run every attack on every correctly classified sample and report each attack's own robust accuracy (default: cascade, later attacks only on samples still robust)."`
	NoSanity    bool   `name:"no-sanity" help:"Skip the sanity checks (gradients, determinism, large-ε probe)."`
	Progress    bool   `default:"true" negatable:"" help:"Show a progress bar on stderr."`

	Shard   string `placeholder:"I/N" help:"Evaluate only the I-th (from 0) of N disjoint, contiguous slices of the selected samples; each sample is attacked as in a whole run. Merge the shards' --json reports with robust merge."`
	Shards  int    `placeholder:"N" help:"Evaluate one of N shards, the index taken from the environment: JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm job array, counted from SLURM_ARRAY_TASK_MIN)."`
	Samples bool   `help:"Add per-sample records to the JSON report: index, label, clean prediction and, per ε and attack, whether it broke the sample and the final margin."`

	JSON      string `name:"json" type:"path" placeholder:"FILE" help:"Write the report as JSON (schema robust.eval/v2)."`
	Markdown  string `type:"path" placeholder:"FILE" help:"Write the report as Markdown; appended to when FILE is $GITHUB_STEP_SUMMARY, replaced otherwise."`
	JUnit     string `name:"junit" type:"path" placeholder:"FILE" help:"Write the gates as JUnit XML, one test case per gate named robust.gate.METRIC@EPS."`
	Curve     string `type:"path" placeholder:"FILE.png|FILE.svg" help:"Draw robust accuracy against ε (PNG, SVG or PDF by the extension)."`
	FailUnder string `name:"fail-under" placeholder:"GATES" help:"Exit 1 unless every gate holds, e.g. 'pgd=40%,clean=80%' or 'robust@8/255=30%'. Metrics: clean, robust, attack names; ε: the first --eps unless @EPS; thresholds: 40% or a fraction in [0,1]."`
	Policy    string `type:"existingfile" placeholder:"FILE.toml" help:"Read gates from a TOML policy file ([gates] table)."`

	MinEps      bool `name:"min-eps" help:"Also find each sample's smallest breaking ε (FAB's minimal perturbation refined by bisection with APGD) and report the median and percentiles."`
	AllowRandom bool `name:"allow-random" help:"Let gates pass on a deterministic suite's numbers for a model the sanity checks find non-deterministic (by default such gates fail: use --suite autoattack-rand)."`
}

// Validate refuses negative counts.
func (c *EvalCmd) Validate() error {
	if c.Steps < 0 || c.Restarts < 0 || c.Queries < 0 {
		return errors.New("--steps, --restarts and --queries must not be negative (0: the attack's default)")
	}
	if c.Shards < 0 {
		return fmt.Errorf("--shards %d: want at least 1", c.Shards)
	}
	return nil
}

// shard returns the shard --shard or --shards with the environment select,
// or nil.
func (c *EvalCmd) shard() (*evaluate.Shard, error) {
	switch {
	case c.Shard != "" && c.Shards != 0:
		return nil, errors.New("--shard and --shards: give one (--shards takes the index from the environment)")
	case c.Shard != "":
		s, err := evaluate.ParseShard(c.Shard)
		if err != nil {
			return nil, fmt.Errorf("--shard: %w", err)
		}
		return &s, nil
	case c.Shards == 0:
		return nil, nil
	}
	envInt := func(name string, def int) (int, error) {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return def, nil
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("--shards: %s=%q is not a number", name, v)
		}
		return i, nil
	}
	s := evaluate.Shard{Count: c.Shards}
	if _, ok := os.LookupEnv("JOB_COMPLETION_INDEX"); ok {
		i, err := envInt("JOB_COMPLETION_INDEX", 0)
		if err != nil {
			return nil, err
		}
		s.Index = i
	} else if _, ok := os.LookupEnv("SLURM_ARRAY_TASK_ID"); ok {
		// Slurm numbers the tasks of --array=MIN-MAX[:STEP] from MIN.
		id, err1 := envInt("SLURM_ARRAY_TASK_ID", 0)
		lo, err2 := envInt("SLURM_ARRAY_TASK_MIN", 0)
		step, err3 := envInt("SLURM_ARRAY_TASK_STEP", 1)
		count, err4 := envInt("SLURM_ARRAY_TASK_COUNT", c.Shards)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, err
		}
		if count != c.Shards {
			return nil, fmt.Errorf("--shards %d: the Slurm array has %d tasks (SLURM_ARRAY_TASK_COUNT)", c.Shards, count)
		}
		if step < 1 || (id-lo)%step != 0 {
			return nil, fmt.Errorf("--shards: SLURM_ARRAY_TASK_ID %d is not MIN %d plus a multiple of the step %d", id, lo, step)
		}
		s.Index = (id - lo) / step
	} else {
		return nil, errors.New("--shards: neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set; give the shard with --shard I/N")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("--shards: %w", err)
	}
	return &s, nil
}

// Run checks every flag, gate and output path, evaluates the model,
// writes every report it can and checks the gates.
func (c *EvalCmd) Run(g *Globals) error {
	cfg, gates, err := c.plan()
	if err != nil {
		return err
	}
	outputs := c.outputs(nil)
	if err := checkOutputs(outputs); err != nil {
		return usageError{err}
	}
	lm, err := c.load(g, cfg.Eps, cfg.Norm)
	if err != nil {
		return err
	}
	defer lm.model.Close()
	cfg.Data, cfg.Flags = dataName(lm.data), lm.flags
	if cfg.Reproduction, err = c.reproduction(g, lm); err != nil {
		return err
	}
	bar := g.progress(c.Progress)
	show := evalProgress(bar)
	cfg.Progress = func(p evaluate.Progress) {
		show(p)
		if g.onEvalProgress != nil {
			g.onEvalProgress(p)
		}
	}
	ctx, stop := g.interruptible()
	defer stop()
	report, runErr := evaluate.Run(ctx, lm.model, lm.data, cfg)
	bar.Finish()
	if report == nil {
		if interrupted(runErr) {
			return fmt.Errorf("eval interrupted before anything was measured; no report written: %w", runErr)
		}
		return fmt.Errorf("eval: %w", runErr)
	}
	if len(gates) > 0 {
		if err := report.CheckGates(gates); err != nil {
			return usageError{err}
		}
	}
	if err := report.WriteText(g.stdout); err != nil {
		return err
	}
	writeErr := writeOutputs(c.outputs(report))
	switch {
	case runErr != nil && writeErr != nil:
		return fmt.Errorf("eval interrupted: %w; %w", runErr, writeErr)
	case runErr != nil:
		return fmt.Errorf("eval interrupted: %w; the reports hold the ε completed, marked partial", runErr)
	case writeErr != nil:
		return writeErr
	}
	return gateVerdict(report, len(gates) > 0, c.AllowRandom)
}

// plan parses the suite, budgets, norm and gates and checks that they fit
// together, before any data or model is read.
func (c *EvalCmd) plan() (evaluate.Config, []evaluate.Gate, error) {
	eps, norm, err := c.threat()
	if err != nil {
		return evaluate.Config{}, nil, err
	}
	suite, err := evaluate.SuiteFor(c.Suite, norm, evaluate.SuiteOptions{Steps: c.Steps, Restarts: c.Restarts, Queries: c.Queries})
	if err != nil {
		return evaluate.Config{}, nil, usageError{fmt.Errorf("--suite: %w", err)}
	}
	if err := evaluate.CheckNorm(suite, norm); err != nil {
		return evaluate.Config{}, nil, usageError{fmt.Errorf("--suite %s with --norm %s: %w", c.Suite, c.Norm, err)}
	}
	cfg := evaluate.Config{
		Eps: eps, Norm: norm, Attacks: suite, SuiteName: c.Suite, BatchSize: c.Batch, Seed: c.Seed,
		Independent: c.Independent, NoSanity: c.NoSanity, Model: c.Model, MinEps: c.MinEps, Records: c.Samples,
	}
	if cfg.Shard, err = c.shard(); err != nil {
		return cfg, nil, usageError{err}
	}
	if cfg.Shard != nil {
		if c.MinEps {
			return cfg, nil, usageError{errors.New("--min-eps cannot be sharded (--shard, --shards)")}
		}
		if c.JSON == "" {
			return cfg, nil, usageError{errors.New("--shard, --shards: write the shard's report with --json FILE, for robust merge")}
		}
	}
	gates, err := c.gates()
	if err != nil {
		return cfg, nil, usageError{err}
	}
	if err := evaluate.ResolveGates(cfg, gates); err != nil {
		return cfg, nil, usageError{err}
	}
	return cfg, gates, nil
}

// gates reads --fail-under and --policy.
func (c *EvalCmd) gates() ([]evaluate.Gate, error) {
	return readGates(c.FailUnder, c.Policy)
}

// readGates reads the gates of --fail-under and --policy.
func readGates(failUnder, policy string) ([]evaluate.Gate, error) {
	var gates []evaluate.Gate
	if failUnder != "" {
		gs, err := evaluate.ParseGates(failUnder)
		if err != nil {
			return nil, fmt.Errorf("--fail-under: %w", err)
		}
		gates = append(gates, gs...)
	}
	if policy != "" {
		gs, err := evaluate.LoadPolicy(policy)
		if err != nil {
			return nil, fmt.Errorf("--policy: %w", err)
		}
		gates = append(gates, gs...)
	}
	return gates, nil
}

// outputs are the report files asked for, writing r.
func (c *EvalCmd) outputs(r *evaluate.Report) []output {
	var json, md, junit, curve func(io.Writer) error
	if r != nil {
		json, md, junit, curve = r.WriteJSON, r.WriteMarkdown, r.WriteJUnit, curveWriter(r, c.Curve)
	}
	return []output{
		{"--json", c.JSON, json}, {"--markdown", c.Markdown, md}, {"--junit", c.JUnit, junit}, {"--curve", c.Curve, curve},
	}
}

// dataName names a data set and its split, e.g. "fashion-mnist/test".
func dataName(d *dataset.Dataset) string {
	if d.Partition != "" {
		return d.Name + "/" + d.Partition
	}
	return d.Name
}

// gateVerdict is the exit of a gated evaluation or merge: a failed gate, or
// a deterministic suite's number on a randomised model without
// --allow-random (only when gates were asked for).
func gateVerdict(report *evaluate.Report, gated, allowRandom bool) error {
	if reason := report.GateFailure(); reason != "" {
		return gateError{reason}
	}
	if gated {
		if err := report.CheckRandomness(allowRandom); err != nil {
			return gateError{err.Error() + " (--suite autoattack-rand), or accept this suite's number with --allow-random"}
		}
	}
	return nil
}

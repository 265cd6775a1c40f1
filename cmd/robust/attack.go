package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/liberr"
)

// AttackCmd writes adversarial examples.
type AttackCmd struct {
	ModelFlags `embed:""`

	Attack   string `default:"pgd" placeholder:"NAME" help:"Attack: fgsm, pgd, pgd-cw, pgd-dlr, apgd-ce, apgd-dlr, apgd-t, fab, fab-t or square."`
	Steps    int    `default:"0" help:"Iterations of PGD and APGD (0: the attack's default)."`
	Restarts int    `default:"0" help:"Restarts (0: one run)."`
	Queries  int    `default:"0" help:"Square's query budget (0: 1000)."`
	Out      string `type:"path" placeholder:"FILE.npz" help:"Write the adversarial examples as .npz: x (adversarial images), y (labels), x_clean, pred_clean, pred_adv, success; robust eval --data FILE.npz reads it back."`
	Grid     string `type:"path" placeholder:"FILE.png|FILE.svg" help:"Draw clean and adversarial images with the model's predictions (PNG, SVG or PDF by the extension)."`
	GridN    int    `name:"grid-n" default:"16" help:"Images in the grid (broken samples first)."`
	Cols     int    `default:"4" help:"Image pairs per grid row."`
}

// Validate refuses counts that would otherwise silently mean something
// else.
func (c *AttackCmd) Validate() error {
	if c.Steps < 0 || c.Restarts < 0 || c.Queries < 0 {
		return errors.New("--steps, --restarts and --queries must not be negative (0: the attack's default)")
	}
	if c.GridN < 1 || c.Cols < 1 {
		return errors.New("--grid-n and --cols must be at least 1")
	}
	return nil
}

// Run attacks the samples and writes the requested files.
func (c *AttackCmd) Run(g *Globals) error {
	if c.Out == "" && c.Grid == "" {
		return usageError{errors.New("nothing to write: give --out FILE.npz and/or --grid FILE.png")}
	}
	if strings.Contains(c.Attack, ",") {
		return usageError{fmt.Errorf("--attack %q: robust attack runs one attack; robust eval --suite %s runs several", c.Attack, c.Attack)}
	}
	suite, err := evaluate.Suite(c.Attack, evaluate.SuiteOptions{Steps: c.Steps, Restarts: c.Restarts, Queries: c.Queries})
	if err != nil {
		return usageError{fmt.Errorf("--attack: %w", err)}
	}
	if len(suite) != 1 {
		return usageError{fmt.Errorf("--attack %q is a suite of %d attacks; robust attack runs one (robust eval --suite runs suites)", c.Attack, len(suite))}
	}
	epsList, norm, err := c.threat()
	if err != nil {
		return err
	}
	if len(epsList) != 1 {
		return usageError{fmt.Errorf("--eps %s: robust attack takes one budget (robust eval takes lists)", c.Eps)}
	}
	if err := evaluate.CheckNorm(suite, norm); err != nil {
		return usageError{fmt.Errorf("--attack %s with --norm %s: %w", c.Attack, c.Norm, err)}
	}
	if err := checkOutputs([]output{{flag: "--out", path: c.Out}, {flag: "--grid", path: c.Grid}}); err != nil {
		return usageError{err}
	}
	lm, err := c.load(g, epsList, norm)
	if err != nil {
		return err
	}
	defer lm.model.Close()
	spec, d, m, eps := suite[0], lm.data, lm.model, epsList[0]
	if d, err = d.InMemory(); err != nil { // the grid and --out need every image
		return err
	}
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	ctx, stop := g.interruptible()
	defer stop()
	bar := g.progress(true)
	out, err := evaluate.Attack(ctx, m, spec, attacks.ThreatModel{Norm: norm, Eps: eps.Value}, d, idx,
		evaluate.AttackOptions{BatchSize: c.Batch, Rng: rand.New(rand.NewPCG(c.Seed, 0)), Progress: attackProgress(bar, spec.Name()+" ε="+eps.Text)})
	bar.Finish()
	if interrupted(err) {
		return fmt.Errorf("attack interrupted; nothing written: %w", err)
	}
	if err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	clean := make([]float32, d.Len()*m.Classes())
	for lo := 0; lo < d.Len(); lo += c.Batch {
		hi := min(lo+c.Batch, d.Len())
		x, err := d.Floats(nil, lo, hi)
		if err != nil {
			return fmt.Errorf("attack: %w", err)
		}
		if err := m.Logits(x, hi-lo, clean[lo*m.Classes():hi*m.Classes()]); err != nil {
			return fmt.Errorf("attack: %w", err)
		}
	}
	predClean := make([]int, d.Len())
	for i := range predClean {
		predClean[i] = attacks.Predict(clean[i*m.Classes() : (i+1)*m.Classes()])
	}
	c.summary(g.stdout, spec, eps, norm, d, out, predClean)
	for _, f := range lm.flags {
		fmt.Fprintf(g.stderr, "robust: %s %s: %s\n", f.Severity, f.Code, f.Message)
	}
	var errs []error
	if c.Out != "" {
		if err := writeAdversarial(c.Out, d, out, predClean, m.Classes()); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", c.Out, liberr.Bare(err)))
		} else {
			fmt.Fprintf(g.stdout, "  wrote            %s\n", c.Out)
		}
	}
	if c.Grid != "" {
		items := gridItems(d, out, predClean, c.GridN)
		if err := writeFile(c.Grid, gridWriter(c.Grid, items, [3]int{d.C, d.H, d.W}, d.Classes, c.Cols)); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintf(g.stdout, "  drew             %s\n", c.Grid)
		}
	}
	return errors.Join(errs...)
}

// summary prints what the attack achieved.
func (c *AttackCmd) summary(w io.Writer, a attacks.Attack, eps evaluate.Eps, norm attacks.Norm, d *dataset.Dataset, out *evaluate.Outcome, predClean []int) {
	correct, broken, robust := 0, 0, 0
	var normSum float64
	for i := range predClean {
		if predClean[i] != int(d.Y[i]) {
			continue
		}
		correct++
		if out.Success[i] {
			broken++
			normSum += out.Norms[i]
		} else {
			robust++
		}
	}
	fmt.Fprintf(w, "%s (%s) at %s ε=%s on %d samples of %s\n", a.Name(), a, norm.Symbol(), eps.Text, d.Len(), d.Name)
	fmt.Fprintf(w, "  clean accuracy   %s\n", pctOf(correct, d.Len()))
	fmt.Fprintf(w, "  robust accuracy  %s\n", pctOf(robust, d.Len()))
	if broken > 0 {
		fmt.Fprintf(w, "  broken           %d of %d correctly classified samples, mean ‖δ‖ %.4g\n", broken, correct, normSum/float64(broken))
	}
	fmt.Fprintf(w, "  queries          %d (%.1f s)\n", out.Queries, out.Seconds)
}

func pctOf(n, total int) string {
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(n)/float64(total), n, total)
}

// writeAdversarial writes the examples and predictions as .npz.
func writeAdversarial(path string, d *dataset.Dataset, out *evaluate.Outcome, predClean []int, classes int) error {
	n := d.Len()
	img := []int{n, d.C, d.H, d.W}
	xClean, err := d.Floats(nil, 0, n)
	if err != nil {
		return err
	}
	pc, pa := make([]int64, n), make([]int64, n)
	for i := range n {
		pc[i], pa[i] = int64(predClean[i]), int64(out.Pred[i])
	}
	arrays := map[string]dataset.Array{
		"x":           {Shape: img, Data: out.Adv},
		"y":           {Shape: []int{n}, Data: d.Y},
		"x_clean":     {Shape: img, Data: xClean},
		"pred_clean":  {Shape: []int{n}, Data: pc},
		"pred_adv":    {Shape: []int{n}, Data: pa},
		"success":     {Shape: []int{n}, Data: out.Success},
		"num_classes": {Shape: []int{}, Data: []int64{int64(max(classes, d.NumClasses))}},
	}
	return dataset.WriteNPZ(path, arrays)
}

// gridItems picks up to n samples for the figure: correctly classified
// samples the attack broke first, then the others.
func gridItems(d *dataset.Dataset, out *evaluate.Outcome, predClean []int, n int) []evaluate.GridItem {
	var items []evaluate.GridItem
	size := d.ImageSize()
	for pass := range 2 {
		for i := range predClean {
			if len(items) == n {
				return items
			}
			first := predClean[i] == int(d.Y[i]) && out.Success[i]
			if first != (pass == 0) {
				continue
			}
			items = append(items, evaluate.GridItem{
				Clean: d.Image(i), Adv: out.Adv[i*size : (i+1)*size],
				Label: int(d.Y[i]), PredClean: predClean[i], PredAdv: out.Pred[i],
			})
		}
	}
	return items
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/evaluate"
)

// AttackCmd writes adversarial examples.
type AttackCmd struct {
	modelFlags `embed:""`

	Attack   string `default:"pgd" placeholder:"NAME" help:"Attack: fgsm, pgd, pgd-cw, pgd-dlr, apgd-ce, apgd-dlr, apgd-t, fab, fab-t or square."`
	Steps    int    `default:"0" help:"Iterations of PGD and APGD (0: the attack's default)."`
	Restarts int    `default:"0" help:"Restarts (0: one run)."`
	Queries  int    `default:"0" help:"Square's query budget (0: 1000)."`
	Out      string `type:"path" placeholder:"FILE.npz" help:"Write the adversarial examples as .npz: x (adversarial images), y (labels), x_clean, pred_clean, pred_adv, success; robust eval --data FILE.npz reads it back."`
	Grid     string `type:"path" placeholder:"FILE.png" help:"Draw clean and adversarial images with the model's predictions."`
	GridN    int    `name:"grid-n" default:"16" help:"Images in the grid (broken samples first)."`
	Cols     int    `default:"4" help:"Image pairs per grid row."`
}

// Run attacks the samples and writes the requested files.
func (c *AttackCmd) Run(g *Globals) error {
	if c.Out == "" && c.Grid == "" {
		return usageError{errors.New("nothing to write: give --out FILE.npz and/or --grid FILE.png")}
	}
	suite, err := evaluate.Suite(c.Attack, evaluate.SuiteOptions{Steps: c.Steps, Restarts: c.Restarts, Queries: c.Queries})
	if err != nil || len(suite) != 1 {
		return usageError{fmt.Errorf("--attack %q: want one attack name (%v)", c.Attack, err)}
	}
	if c.Steps < 0 || c.Restarts < 0 || c.Queries < 0 || c.GridN <= 0 || c.Cols <= 0 {
		return usageError{errors.New("--steps, --restarts, --queries must not be negative, --grid-n and --cols must be positive")}
	}
	lm, err := c.load(g)
	if err != nil {
		return err
	}
	defer lm.model.Close()
	if len(lm.eps) != 1 {
		return usageError{errors.New("--eps: robust attack takes one budget")}
	}
	a, d, m := suite[0], lm.data, lm.model
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	eps := lm.eps[0]
	out, err := evaluate.Attack(context.Background(), m, a, attacks.ThreatModel{Norm: lm.norm, Eps: eps.Value}, d, idx,
		evaluate.AttackOptions{BatchSize: c.Batch, Rng: rand.New(rand.NewPCG(c.Seed, 0))})
	if err != nil {
		return fmt.Errorf("attack: %w", err)
	}
	clean := make([]float32, d.Len()*m.Classes())
	for lo := 0; lo < d.Len(); lo += c.Batch {
		hi := min(lo+c.Batch, d.Len())
		if err := m.Logits(d.X[lo*d.ImageSize():hi*d.ImageSize()], hi-lo, clean[lo*m.Classes():hi*m.Classes()]); err != nil {
			return fmt.Errorf("attack: %w", err)
		}
	}
	predClean := make([]int, d.Len())
	for i := range predClean {
		predClean[i] = attacks.Predict(clean[i*m.Classes() : (i+1)*m.Classes()])
	}
	c.summary(g.stdout, a, eps, lm.norm, d, out, predClean)
	for _, f := range lm.flags {
		fmt.Fprintf(g.stderr, "robust: %s %s: %s\n", f.Severity, f.Code, f.Message)
	}
	if c.Out != "" {
		if err := writeAdversarial(c.Out, d, out, predClean, m.Classes()); err != nil {
			return err
		}
	}
	if c.Grid != "" {
		items := gridItems(d, out, predClean, c.GridN)
		if err := writeFile(c.Grid, func(w io.Writer) error {
			return evaluate.WriteGridPNG(w, items, [3]int{d.C, d.H, d.W}, d.Classes, c.Cols)
		}); err != nil {
			return err
		}
	}
	return nil
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
	if c.Out != "" {
		fmt.Fprintf(w, "  wrote            %s\n", c.Out)
	}
	if c.Grid != "" {
		fmt.Fprintf(w, "  drew             %s\n", c.Grid)
	}
}

func pctOf(n, total int) string {
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(n)/float64(total), n, total)
}

// writeAdversarial writes the examples and predictions as .npz.
func writeAdversarial(path string, d *dataset.Dataset, out *evaluate.Outcome, predClean []int, classes int) error {
	n := d.Len()
	img := []int{n, d.C, d.H, d.W}
	pc, pa := make([]int64, n), make([]int64, n)
	for i := range n {
		pc[i], pa[i] = int64(predClean[i]), int64(out.Pred[i])
	}
	arrays := map[string]dataset.Array{
		"x":           {Shape: img, Data: out.Adv},
		"y":           {Shape: []int{n}, Data: d.Y},
		"x_clean":     {Shape: img, Data: d.X},
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

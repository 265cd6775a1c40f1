package train

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/robust-go/robust/internal/figure"
)

// ReadHistory reads the metrics of every finished pass from a run's
// JSON-lines log (what [RunOptions].Log received). A pass logged twice, as
// after a resumed run repeated it, counts once with its last values.
func ReadHistory(r io.Reader) ([]EpochStats, error) {
	var (
		history []EpochStats
		index   = map[int]int{} // pass → position in history
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev struct {
			Event string      `json:"event"`
			Stats *EpochStats `json:"stats"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("train: log line %d: %w", line, err)
		}
		if ev.Event != "pass" || ev.Stats == nil {
			continue
		}
		if i, ok := index[ev.Stats.Pass]; ok {
			history[i] = *ev.Stats
			continue
		}
		index[ev.Stats.Pass] = len(history)
		history = append(history, *ev.Stats)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: reading the log: %w", err)
	}
	return history, nil
}

// WriteCurves draws a run's training curves in format ("png", "svg" or
// "pdf") against epoch-equivalents (passes × replays, so that free
// training and the other methods share a scale): the training loss; the
// training accuracy, the held-out clean and PGD accuracy and fast
// training's overfitting check; and the learning rate at the end of each
// pass. A PNG is 768×864 pixels.
func WriteCurves(w io.Writer, format string, history []EpochStats) error {
	if len(history) == 0 {
		return errors.New("train: curves: no finished pass to draw")
	}
	xMax := float64(history[len(history)-1].EpochEquivalents)
	series := func(y func(EpochStats) (float64, bool)) plotter.XYs {
		var xys plotter.XYs
		for _, s := range history {
			if v, ok := y(s); ok {
				xys = append(xys, plotter.XY{X: float64(s.EpochEquivalents), Y: v})
			}
		}
		return xys
	}
	opt := func(p *float64) (float64, bool) {
		if p == nil {
			return 0, false
		}
		return 100 * *p, true
	}
	add := func(p *plot.Plot, i int, name string, xys plotter.XYs) error {
		if len(xys) == 0 {
			return nil
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("train: curves: %s: %w", name, err)
		}
		l.Color, l.Width = figure.Colour(i), vg.Points(1.5)
		s.Color, s.Shape = figure.Colour(i), draw.CircleGlyph{}
		p.Add(l, s)
		p.Legend.Add(name, l, s)
		return nil
	}
	panel := func(title, y string) *plot.Plot {
		p := figure.New(title, "", y)
		p.X.Min, p.X.Max = 0, 1.02*xMax // room for the last markers
		p.Add(plotter.NewGrid())
		return p
	}

	loss := panel(fmt.Sprintf("Training (%d passes, %d steps)", len(history), history[len(history)-1].Step), "loss")
	if err := add(loss, 0, "training loss", series(func(s EpochStats) (float64, bool) { return s.Loss, true })); err != nil {
		return err
	}
	acc := panel("", "accuracy (%)")
	acc.Y.Min, acc.Y.Max = 0, 100
	acc.Y.Tick.Marker = figure.PercentTicks{}
	acc.Legend.Top, acc.Legend.Left = false, false
	for i, c := range []struct {
		name string
		y    func(EpochStats) (float64, bool)
	}{
		{"training", func(s EpochStats) (float64, bool) { return 100 * s.Accuracy, true }},
		{"held-out clean", func(s EpochStats) (float64, bool) { return opt(s.HeldoutClean) }},
		{"held-out PGD", func(s EpochStats) (float64, bool) { return opt(s.HeldoutPGD) }},
		{"overfitting check (PGD-5)", func(s EpochStats) (float64, bool) { return opt(s.OverfitCheck) }},
	} {
		if err := add(acc, i+1, c.name, series(c.y)); err != nil {
			return err
		}
	}
	lr := panel("", "learning rate")
	lr.X.Label.Text = "epoch-equivalents"
	if err := add(lr, 4, "at the end of the pass", series(func(s EpochStats) (float64, bool) { return s.LR, true })); err != nil {
		return err
	}
	if err := figure.Write(w, 8*vg.Inch, 9*vg.Inch, format, loss, acc, lr); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	return nil
}

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
	"github.com/robust-go/robust/internal/liberr"
)

// RunLog is what a run's JSON-lines log (what [RunOptions].Log received)
// says about it.
type RunLog struct {
	// Config and TotalSteps are those of the run's last start or resume
	// (nil and 0 when the log has none).
	Config     *Config
	TotalSteps int
	// Passes are the metrics of every finished pass. A pass logged twice,
	// as after a resumed run repeated it, counts once with its last
	// values.
	Passes []EpochStats
}

// ReadLog reads a run's JSON-lines log.
func ReadLog(r io.Reader) (_ *RunLog, err error) {
	defer liberr.Prefix(&err, "train")
	l := &RunLog{}
	index := map[int]int{} // pass → position in l.Passes
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var ev struct {
			Event      string      `json:"event"`
			Stats      *EpochStats `json:"stats"`
			Config     *Config     `json:"config"`
			TotalSteps int         `json:"total_steps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("train: log line %d: %w", line, err)
		}
		switch {
		case (ev.Event == "start" || ev.Event == "resume") && ev.Config != nil:
			l.Config, l.TotalSteps = ev.Config, ev.TotalSteps
		case ev.Event == "pass" && ev.Stats != nil:
			if i, ok := index[ev.Stats.Pass]; ok {
				l.Passes[i] = *ev.Stats
				continue
			}
			index[ev.Stats.Pass] = len(l.Passes)
			l.Passes = append(l.Passes, *ev.Stats)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: reading the log: %w", err)
	}
	return l, nil
}

// schedule returns the learning rate over the run, sampled at up to 500
// steps, against epoch-equivalents; ok is false when the log lacks the
// run's configuration or schedule.
func (l *RunLog) schedule() (xys plotter.XYs, ok bool) {
	if l.Config == nil || l.TotalSteps <= 0 || l.Config.Passes() <= 0 {
		return nil, false
	}
	s, err := ParseSchedule(l.Config.Schedule, l.Config.LR)
	if err != nil {
		return nil, false
	}
	perEpoch := float64(l.TotalSteps) / float64(l.Config.Passes()*l.Config.replays())
	stride := max(1, l.TotalSteps/500)
	for step := 0; step < l.TotalSteps; step += stride {
		// Both sides of a drop: the last step before it and the step at it.
		if step > 0 {
			prev := step - 1
			xys = append(xys, plotter.XY{X: float64(prev) / perEpoch, Y: s.LR(prev, l.TotalSteps)})
		}
		xys = append(xys, plotter.XY{X: float64(step) / perEpoch, Y: s.LR(step, l.TotalSteps)})
	}
	last := l.TotalSteps - 1
	return append(xys, plotter.XY{X: float64(last) / perEpoch, Y: s.LR(last, l.TotalSteps)}), true
}

// WriteCurves draws a run's training curves in format ("png", "svg" or
// "pdf") against epoch-equivalents (passes × replays, so that free
// training and the other methods share a scale): the training loss; the
// training accuracy, the held-out clean and PGD accuracy and fast
// training's overfitting check, after each pass; and the learning rate
// over the run (at the end of each pass when the log lacks the run's
// configuration). A PNG is 768×864 pixels.
func (l *RunLog) WriteCurves(w io.Writer, format string) (err error) {
	defer liberr.Prefix(&err, "train")
	history := l.Passes
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
	if xys, ok := l.schedule(); ok {
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("train: curves: learning rate: %w", err)
		}
		line.Color, line.Width = figure.Colour(4), vg.Points(1.5)
		lr.Add(line)
		lr.Legend.Add(l.Config.Schedule+" schedule", line)
	} else if err := add(lr, 4, "at the end of each pass", series(func(s EpochStats) (float64, bool) { return s.LR, true })); err != nil {
		return err
	}
	if err := figure.Write(w, 8*vg.Inch, 9*vg.Inch, format, loss, acc, lr); err != nil {
		return fmt.Errorf("train: curves: %w", err)
	}
	return nil
}

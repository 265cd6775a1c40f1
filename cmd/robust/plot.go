package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/train"
)

// trainingFigure is the training curves' file in a run directory.
const trainingFigure = "training.png"

// PlotCmd draws a training run's curves.
type PlotCmd struct {
	Log string `arg:"" type:"path" placeholder:"RUN" help:"Run directory of robust train (its log.jsonl is read), or a JSON-lines training log such as robust harden's FILE.log.jsonl."`
	Out string `short:"o" type:"path" placeholder:"FILE.png|FILE.svg" help:"Figure to write, PNG, SVG or PDF by its extension. Default: training.png in the run directory, FILE.training.png beside a log file."`
}

// Help explains the figure.
func (c *PlotCmd) Help() string {
	return `Draws the curves of a training or hardening run from its log: the training
loss, the training accuracy, the held-out clean and PGD accuracy after every
pass and the learning rate, against epoch-equivalents. robust train and
robust harden draw the same figure when they finish.

  robust plot runs/free                  writes runs/free/training.png
  robust plot runs/free -o free.svg`
}

// Run draws the figure.
func (c *PlotCmd) Run(g *Globals) error {
	logPath, out := c.Log, c.Out
	if st, err := os.Stat(logPath); err == nil && st.IsDir() {
		logPath = filepath.Join(logPath, runLog)
		if out == "" {
			out = filepath.Join(c.Log, trainingFigure)
		}
	} else if out == "" {
		out = strings.TrimSuffix(strings.TrimSuffix(logPath, ".jsonl"), ".log") + "." + trainingFigure
	}
	if _, err := evaluate.FigureFormat(out); err != nil {
		return usageError{fmt.Errorf("--out: %w", err)}
	}
	if err := drawTraining(logPath, out); err != nil {
		return usageError{err}
	}
	fmt.Fprintf(g.stdout, "drew %s\n", out)
	return nil
}

// drawTraining draws the training curves of the log at logPath into out.
func drawTraining(logPath, out string) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	log, err := train.ReadLog(f)
	if err != nil {
		return fmt.Errorf("%s: %w", logPath, err)
	}
	format, err := evaluate.FigureFormat(out)
	if err != nil {
		return err
	}
	return writeFile(out, func(w io.Writer) error { return log.WriteCurves(w, format) })
}

// curveWriter writes a report's ε-curve in the format of path's extension.
func curveWriter(r *evaluate.Report, path string) func(io.Writer) error {
	return func(w io.Writer) error {
		format, err := evaluate.FigureFormat(path)
		if err != nil {
			return err
		}
		return r.WriteCurve(w, format)
	}
}

// gridWriter writes an adversarial-examples grid in the format of path's
// extension.
func gridWriter(path string, items []evaluate.GridItem, shape [3]int, classes []string, cols int) func(io.Writer) error {
	return func(w io.Writer) error {
		format, err := evaluate.FigureFormat(path)
		if err != nil {
			return err
		}
		return evaluate.WriteGrid(w, format, items, shape, classes, cols)
	}
}

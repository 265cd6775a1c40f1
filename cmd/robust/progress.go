package main

import (
	"fmt"
	"io"

	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/internal/progress"
	"github.com/robust-go/robust/train"
)

// progress returns the progress display of a long command on stderr: a
// bar on a terminal, a line every few seconds elsewhere, JSON lines with
// --log-format json, nothing with --quiet (or the command's --no-progress,
// show false).
func (g *Globals) progress(show bool) *progress.Reporter {
	mode := progress.ModeFor(g.stderr, g.LogFormat, g.Quiet || !show)
	return progress.New(g.stderr, progress.Options{Mode: mode})
}

// trainProgress shows a training run's steps, and prints each finished
// pass to stdout as it ends (a result, not progress: also with --quiet).
func trainProgress(r *progress.Reporter, stdout io.Writer) func(train.Progress) {
	return func(p train.Progress) {
		if p.Finished != nil {
			r.Result(stdout, "pass", p.Finished.String(), "stats", p.Finished)
			return
		}
		s := progress.Status{
			Stage: fmt.Sprintf("pass %d/%d", p.Pass, p.Passes), Done: p.Step, Total: p.TotalSteps, Unit: "steps",
			Fraction: float64(p.Step) / float64(max(p.TotalSteps, 1)),
		}
		if p.ImagesPerSec > 0 {
			s.Detail = fmt.Sprintf("loss %.3f, acc %.1f%%, %.0f img/s", p.Loss, 100*p.Accuracy, p.ImagesPerSec)
		}
		r.Update(s)
	}
}

// evalProgress shows an evaluation's stages (clean pass, each attack at
// each ε, sanity checks), each an equal share of the whole.
func evalProgress(r *progress.Reporter) func(evaluate.Progress) {
	return func(p evaluate.Progress) {
		frac := float64(p.Stage) / float64(max(p.Stages, 1))
		if p.Total > 0 {
			frac += float64(p.Done) / float64(p.Total) / float64(max(p.Stages, 1))
		}
		r.Update(progress.Status{
			Stage: fmt.Sprintf("%s (stage %d/%d)", p.Name, p.Stage+1, p.Stages),
			Done:  p.Done, Total: p.Total, Unit: "samples", Fraction: frac,
		})
	}
}

// attackProgress shows one attack's samples.
func attackProgress(r *progress.Reporter, name string) func(done, total int) {
	return func(done, total int) {
		r.Update(progress.Status{Stage: name, Done: done, Total: total, Unit: "samples", Fraction: float64(done) / float64(max(total, 1))})
	}
}

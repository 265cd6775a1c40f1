// Package progress shows how far a long command is, in the form that
// suits where its output goes: a bar redrawn in place on a terminal, one
// plain line every few seconds in a log file or a CI log (never a
// carriage return), JSON lines for machines, or nothing.
//
// The libraries (train, evaluate, harden) only report progress through
// callbacks; the command line turns their reports into [Status] values and
// hands them to a [Reporter].
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Mode is how progress is shown.
type Mode int

const (
	// Quiet shows nothing.
	Quiet Mode = iota
	// Lines writes one plain line every Options.Interval and at the end.
	Lines
	// Bar redraws a bar in place; for terminals only.
	Bar
	// JSON logs one JSON object per line every Options.Interval and at
	// the end, through Options.Logger.
	JSON
)

func (m Mode) String() string {
	switch m {
	case Quiet:
		return "quiet"
	case Lines:
		return "lines"
	case Bar:
		return "bar"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ModeFor chooses the mode for output to w: Quiet when quiet is set, JSON
// for the log format "json", a Bar when w is a terminal and Lines
// otherwise (files, pipes, buffers).
func ModeFor(w io.Writer, logFormat string, quiet bool) Mode {
	switch {
	case quiet:
		return Quiet
	case logFormat == "json":
		return JSON
	case IsTerminal(w):
		return Bar
	}
	return Lines
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Status is how far a task is.
type Status struct {
	// Stage names what is being done now, e.g. "pass 2/4" or
	// "pgd ε=8/255".
	Stage string
	// Done of Total units (Unit, e.g. "steps") of the stage are done.
	Done, Total int
	Unit        string
	// Fraction is the part of the whole task done, in [0,1]; it drives
	// the bar and the time left.
	Fraction float64
	// Detail is shown after the counts, e.g. "loss 0.431".
	Detail string
}

// Options configure a Reporter.
type Options struct {
	Mode Mode
	// Interval between two lines in the Lines and JSON modes (default
	// 5 s); the bar redraws at most every 100 ms.
	Interval time.Duration
	// Logger receives the JSON mode's records (default: a JSON logger
	// on the reporter's writer).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

// Reporter shows the progress of one task. It is safe for concurrent use;
// a nil *Reporter shows nothing.
type Reporter struct {
	mu   sync.Mutex
	w    io.Writer
	opts Options
	bar  *progressbar.ProgressBar
	// cols is the terminal's width (0: unknown); the bar's description is
	// cut to fit, since a wrapped line cannot be redrawn in place.
	cols int

	start, last time.Time
	startFrac   float64 // the fraction at the first update (resumed runs)
	started     bool
	pending     *Status // the last status not yet shown (Lines, JSON)
}

// New returns a reporter writing to w.
func New(w io.Writer, opts Options) *Reporter {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mode == JSON && opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(w, nil))
	}
	r := &Reporter{w: w, opts: opts}
	if opts.Mode == Bar {
		r.bar = progressbar.NewOptions(1000,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionUseANSICodes(true), // clears what a longer line left
		)
		if f, ok := w.(interface{ Fd() uintptr }); ok {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
				r.cols = cols
			}
		}
	}
	return r
}

// Update reports the task's status.
func (r *Reporter) Update(s Status) {
	if r == nil || r.opts.Mode == Quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	if !r.started {
		r.started, r.start, r.startFrac = true, now, s.Fraction
	}
	switch r.opts.Mode {
	case Bar:
		desc := r.text(s, now, false)
		if r.cols > 0 {
			desc = cut(desc, max(r.cols-barWidth, 10))
		}
		r.bar.Describe(desc)
		_ = r.bar.Set(int(1000 * min(max(s.Fraction, 0), 1)))
	case Lines, JSON:
		if r.last.IsZero() || now.Sub(r.last) >= r.opts.Interval {
			r.show(s, now)
			return
		}
		r.pending = &s
	}
}

// Event shows something that happened, such as a finished pass: as the
// line text, above the bar on a terminal; in JSON mode as a record with
// message name and the attributes attrs (slog's key-value pairs). It
// supersedes a status not yet shown.
func (r *Reporter) Event(name, text string, attrs ...any) {
	if r == nil || r.opts.Mode == Quiet {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = nil
	switch r.opts.Mode {
	case Bar:
		_ = r.bar.Clear()
		fmt.Fprintln(r.w, text)
	case Lines:
		fmt.Fprintln(r.w, text)
	case JSON:
		r.opts.Logger.Info(name, attrs...)
	}
}

// Result writes text, a result such as a finished pass, as one line to w
// (the command's standard output), clearing the bar first so that the two
// never mix on a terminal; in JSON mode it also logs a record named name
// with attrs. Unlike progress, results are written in every mode.
func (r *Reporter) Result(w io.Writer, name, text string, attrs ...any) {
	if r != nil {
		r.mu.Lock()
		switch r.opts.Mode {
		case Bar:
			_ = r.bar.Clear()
		case JSON:
			r.opts.Logger.Info(name, attrs...)
		}
		r.mu.Unlock()
	}
	fmt.Fprintln(w, text)
}

// Finish shows the last status not yet shown and removes the bar.
func (r *Reporter) Finish() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.opts.Mode {
	case Bar:
		_ = r.bar.Finish()
	case Lines, JSON:
		if r.pending != nil {
			r.show(*r.pending, r.opts.Now())
		}
	}
}

// show writes a status line or record now.
func (r *Reporter) show(s Status, now time.Time) {
	r.last, r.pending = now, nil
	if r.opts.Mode == Lines {
		fmt.Fprintln(r.w, r.text(s, now, true))
		return
	}
	attrs := []any{"stage", s.Stage, "done", s.Done, "total", s.Total, "unit", s.Unit,
		"fraction", s.Fraction, "elapsed_s", now.Sub(r.start).Seconds()}
	if left, ok := r.left(s, now); ok {
		attrs = append(attrs, "left_s", left.Seconds())
	}
	if s.Detail != "" {
		attrs = append(attrs, "detail", s.Detail)
	}
	r.opts.Logger.Info("progress", attrs...)
}

// text formats a status; withPercent adds the overall percentage the bar
// otherwise shows.
func (r *Reporter) text(s Status, now time.Time, withPercent bool) string {
	line := s.Stage
	if withPercent {
		line = fmt.Sprintf("[%3.0f%%] %s", 100*s.Fraction, line)
	}
	if s.Total > 0 {
		line += fmt.Sprintf(": %d/%d %s", s.Done, s.Total, s.Unit)
	}
	if s.Detail != "" {
		line += ", " + s.Detail
	}
	line += ", " + roundDuration(now.Sub(r.start)).String()
	if left, ok := r.left(s, now); ok {
		line += ", ~" + roundDuration(left).String() + " left"
	}
	return line
}

// left estimates the time left from the rate since the first update.
func (r *Reporter) left(s Status, now time.Time) (time.Duration, bool) {
	elapsed, done := now.Sub(r.start), s.Fraction-r.startFrac
	if elapsed < time.Second || done <= 0 || s.Fraction >= 1 {
		return 0, false
	}
	return time.Duration(float64(elapsed) * (1 - s.Fraction) / done), true
}

// barWidth is the width of the bar's own part of the line ("100% |",
// 24 cells, "| ") with a margin.
const barWidth = 36

// cut shortens s to at most n runes, marking the cut with an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// roundDuration rounds to seconds (to 0.1 s under 10 s).
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

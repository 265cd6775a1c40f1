package progress

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

// clock is a fake clock advanced by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestModes(t *testing.T) {
	// Ten updates one second apart, an event, then Finish.
	run := func(mode Mode) string {
		var b bytes.Buffer
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		r := New(&b, Options{Mode: mode, Interval: 5 * time.Second, Now: c.now})
		for i := range 10 {
			r.Update(Status{Stage: "pass 1/1", Done: i + 1, Total: 10, Unit: "steps", Fraction: float64(i+1) / 10, Detail: "loss 0.5"})
			if i == 4 {
				r.Event("halfway", "halfway there", "step", 5)
			}
			c.t = c.t.Add(time.Second)
		}
		r.Finish()
		return b.String()
	}
	for _, tc := range []struct {
		mode Mode
		// want are substrings in order; lines the line count (-1: any).
		want  []string
		lines int
		cr    bool // carriage returns expected
	}{
		{Quiet, nil, 0, false},
		// Shown at 0 s and 5 s (steps 1 and 6) and at the end (step 10).
		{Lines, []string{"[ 10%] pass 1/1: 1/10 steps, loss 0.5, 0s", "halfway there", "[ 60%] pass 1/1: 6/10 steps, loss 0.5, 5s, ~4s left", "[100%] pass 1/1: 10/10 steps"}, 4, false},
		{JSON, []string{`"msg":"progress"`, `"msg":"halfway","step":5`, `"done":6`, `"left_s":4`, `"done":10`}, 4, false},
		{Bar, []string{"pass 1/1: 1/10 steps", "halfway there"}, -1, true},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			out := run(tc.mode)
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			if n := strings.Count(out, "\n"); tc.lines >= 0 && n != tc.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tc.lines, out)
			}
			if got := strings.Contains(out, "\r"); got != tc.cr {
				t.Errorf("carriage returns: %v, want %v:\n%q", got, tc.cr, out)
			}
			if tc.mode == JSON {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Errorf("line %q: %v", line, err)
					}
				}
			}
		})
	}
}

func TestModeFor(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	file, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, tc := range []struct {
		name      string
		w         io.Writer
		logFormat string
		quiet     bool
		want      Mode
	}{
		{"terminal", tty, "text", false, Bar},
		{"terminal, quiet", tty, "text", true, Quiet},
		{"terminal, json", tty, "json", false, JSON},
		{"file", file, "text", false, Lines},
		{"buffer", new(bytes.Buffer), "text", false, Lines},
		{"buffer, json, quiet", new(bytes.Buffer), "json", true, Quiet},
	} {
		if got := ModeFor(tc.w, tc.logFormat, tc.quiet); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNilReporter(t *testing.T) {
	var r *Reporter
	r.Update(Status{Stage: "x"})
	r.Event("x", "x")
	r.Finish()
}

// TestEventSupersedes checks that an event replaces a status
// not yet shown: a pass's summary is not followed by a stale step count.
func TestEventSupersedes(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := New(&b, Options{Mode: Lines, Now: c.now})
	r.Update(Status{Stage: "pass 1/1", Done: 1, Total: 2, Fraction: 0.5})
	c.t = c.t.Add(time.Second)
	r.Update(Status{Stage: "pass 1/1", Done: 2, Total: 2, Fraction: 1})
	r.Event("pass", "pass 1/1 done")
	r.Finish()
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 2 || lines[1] != "pass 1/1 done" {
		t.Errorf("output:\n%s", b.String())
	}
}

// TestBarFitsTerminal draws the bar on a pseudo-terminal 60 columns wide
// with a long description: no rendered line may be wider, or the
// terminal would wrap it and the bar could not be redrawn in place.
func TestBarFitsTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 60}); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx)
		read <- b
	}()
	r := New(tty, Options{Mode: ModeFor(tty, "text", false)})
	for i := range 3 {
		r.Update(Status{Stage: "pgd ε=8/255 (stage 3/8)", Done: i, Total: 10000, Unit: "samples", Fraction: float64(i) / 10,
			Detail: strings.Repeat("a long detail ", 8)})
		time.Sleep(120 * time.Millisecond) // past the bar's redraw throttle
	}
	tty.Close()
	out := string(<-read)
	if !strings.Contains(out, "\r") || !strings.Contains(out, "…") {
		t.Fatalf("no bar, or no cut description:\n%q", out)
	}
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
	for _, line := range strings.FieldsFunc(ansi.ReplaceAllString(out, ""), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if n := utf8.RuneCountInString(line); n > 60 {
			t.Errorf("a line of %d runes on a 60-column terminal: %q", n, line)
		}
	}
}

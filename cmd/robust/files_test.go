package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

// TestZeroCountsRefused checks that zero or negative counts are usage
// errors instead of silently meaning a default.
func TestZeroCountsRefused(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"train", "--out", out, "--replays", "0"}, "--replays 0: want at least 1"},
		{[]string{"train", "--out", out, "--method", "pgd", "--steps", "0"}, "--steps 0: want at least 1"},
		{[]string{"train", "--out", out, "--epochs", "0"}, "--epochs 0: want at least 1"},
		{[]string{"train", "--out", out, "--batch=-3"}, "--batch -3: want at least 1"},
		{[]string{"train", "--out", out, "--eval-steps", "0"}, "--eval-steps 0: want at least 1"},
		{[]string{"train", "--out", out, "--eval-n=-1"}, "--eval-n -1"},
		{[]string{"train", "--out", out, "--checkpoint-every=-1"}, "--checkpoint-every -1"},
		{[]string{"train", "--out", torchFixture}, "is a file; train writes a run folder"},
		{[]string{"train", "--out", filepath.Join(torchFixture, "run")}, "torch_resnetish.onnx is a file"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "h.onnx"), "--replays", "0"}, "--replays 0: want at least 1"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "h.onnx"), "--epochs", "0"}, "--epochs 0"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "h.onnx"), "--eval-n=-1"}, "--eval-n and --held-out"},
		{[]string{"eval", tinyModel, "--batch", "0"}, "--batch 0: want at least 1"},
		{[]string{"attack", tinyModel, "--out", filepath.Join(dir, "a.npz"), "--cols", "0"}, "--grid-n and --cols"},
	}
	for _, c := range cases {
		code, stdout, stderr := robust(t, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%v: printed %q before refusing", c.args, stdout)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused commands left files: %v", entries)
	}
}

// TestHelpShowsDefaults checks that help shows every default, including
// those that differ between train and harden.
func TestHelpShowsDefaults(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		want []string
	}{
		{"train", []string{"(default: 8)", "(default: 16)", "(default: 0.05)", "(default: 0.1)", "(default: 128)", "(default: fashion-mnist)"}},
		{"harden", []string{"(default: 4)", "(default: 8)", "(default: 0.02)", "(default: 0.1)", "(default: 1000)"}},
		{"eval", []string{"(default: 0.1)", "(default: linf)", "(default: 1000)", "(default: 0,1)", "progress bar on stderr (default: on)"}},
	} {
		code, out, _ := robust(t, c.cmd, "--help")
		if code != exitOK {
			t.Fatalf("%s --help: exit %d", c.cmd, code)
		}
		out = strings.Join(strings.Fields(out), " ") // undo the wrapping
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s --help lacks %q", c.cmd, w)
			}
		}
	}
	code, out, _ := robust(t, "--version")
	if code != exitOK || !strings.HasPrefix(out, "robust "+version) {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

// TestHardenFileHandling checks that harden refuses, before training, to
// overwrite its input, to resume without a checkpoint and to write into a
// folder, and that an early failure leaves no empty log.
func TestHardenFileHandling(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	input := filepath.Join(dir, "model.onnx")
	orig, err := os.ReadFile(torchFixture)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(input, orig, 0o644)
	small := writeSynthetic(t, 64) // 8×8 images: do not fit the 28×28 model
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"overwrite input", []string{"-o", input}, "is the input model; choose another file, or add --force"},
		{"resume without checkpoint", []string{"-o", filepath.Join(dir, "h.onnx"), "--resume"}, "--resume: no checkpoint " + filepath.Join(dir, "h.ckpt")},
		{"output is a folder", []string{"-o", dir}, "-o: cannot write " + dir + ": it is a folder"},
		{"output folder missing", []string{"-o", filepath.Join(dir, "none", "h.onnx")}, "folder " + filepath.Join(dir, "none") + " does not exist"},
		{"data does not fit", []string{"-o", filepath.Join(dir, "h.onnx"), "--data", small, "--eval-n", "0", "--no-progress"}, "8×8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := robust(t, append([]string{"harden", input}, c.args...)...)
			if code != exitUsage || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, want 2 with %q\nstdout:\n%s\nstderr:\n%s", code, c.want, stdout, stderr)
			}
			if got, _ := os.ReadFile(input); string(got) != string(orig) {
				t.Error("the input model changed")
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "model.onnx" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

// lineWriter calls onLine with every complete line written to it, as it
// is written.
type lineWriter struct {
	buf    strings.Builder
	onLine func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.onLine(s[:i])
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
	}
}

// logPasses counts the pass events in a run's log.jsonl.
func logPasses(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["event"] == "pass" {
			n++
		}
	}
	return n
}

// TestTrainPrintsPassesAsTheyHappen checks, with stdout not a terminal,
// that each pass's line is written as soon as the pass is in log.jsonl
// (not at the end of training), and that Ctrl-C after the first pass keeps
// its line and exits 130.
func TestTrainPrintsPassesAsTheyHappen(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 96)
	out := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lines []string
	stdout := &lineWriter{onLine: func(line string) {
		lines = append(lines, line)
		if !strings.HasPrefix(line, "pass ") {
			return
		}
		if n := logPasses(t, filepath.Join(out, runLog)); n != 1 {
			t.Errorf("line %q printed with %d passes in log.jsonl, want 1", line, n)
		}
		if _, err := os.Stat(filepath.Join(out, runModel)); err == nil {
			t.Errorf("line %q printed after training ended", line)
		}
		cancel() // as Ctrl-C would, after the first pass
	}}
	var stderr strings.Builder
	cli := newCLI(stdout, &stderr)
	cli.ctx = ctx
	code := cli.execute([]string{"--threads", "2", "train", "--data", data, "--out", out, "--method", "free", "--replays", "1",
		"--epochs", "3", "--batch", "32", "--eval-n", "0", "--no-progress"})
	if code != exitInterrupted {
		t.Fatalf("exit %d, want 130\n%s\n%s", code, strings.Join(lines, "\n"), stderr.String())
	}
	passLines := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "pass ") {
			passLines++
		}
	}
	if passLines != 1 || !strings.Contains(stderr.String(), "--resume") {
		t.Errorf("%d pass lines\n%s\n%s", passLines, strings.Join(lines, "\n"), stderr.String())
	}
}

// TestReportsSurvive checks that every report that can be written is
// written when another fails, and that errors name the user's path, never
// a temporary file.
func TestReportsSurvive(t *testing.T) {
	dir := t.TempDir()
	blocked := filepath.Join(dir, "blocked.json")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o755); err != nil { // a folder: the rename onto it fails
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.md")
	write := func(s string) func(w io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	failing := func(io.Writer) error { return errors.New("the report cannot be drawn") }
	err := writeOutputs([]output{
		{"--json", blocked, write("{}")},
		{"--curve", filepath.Join(dir, "c.png"), failing},
		{"--markdown", good, write("# ok\n")},
	})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "write "+blocked) || !strings.Contains(msg, "the report cannot be drawn") || strings.Contains(msg, ".tmp") {
		t.Errorf("error %q", msg)
	}
	if got, _ := os.ReadFile(good); string(got) != "# ok\n" {
		t.Errorf("good report %q", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "tmp") || e.Name() == "c.png" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

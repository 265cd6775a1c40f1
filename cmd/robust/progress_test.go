package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/robust-go/robust/internal/testenv"
)

// trainArgs is a short training run on synthetic data into a new folder.
func trainArgs(t *testing.T, data string, extra ...string) []string {
	out := filepath.Join(t.TempDir(), "run")
	args := append([]string{"--threads", "2"}, extra...)
	return append(args, "train", "--data", data, "--out", out, "--method", "natural",
		"--epochs", "2", "--batch", "32", "--eval-n", "32", "--eval-steps", "1")
}

// TestProgressOffTerminal runs `robust train ... > log 2>&1`: stdout and
// stderr are one regular file, which must hold progress lines but no
// carriage return; --quiet silences progress; --log-format json makes
// every stderr line a JSON object.
func TestProgressOffTerminal(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 96)
	for _, tc := range []struct {
		name  string
		flags []string
		check func(t *testing.T, log string)
	}{
		{"text", nil, func(t *testing.T, log string) {
			if !strings.Contains(log, "] pass 1/2: ") || !strings.Contains(log, "pass 2/2 (step") {
				t.Errorf("no progress or pass lines in the log:\n%s", log)
			}
		}},
		{"quiet", []string{"--quiet"}, func(t *testing.T, log string) {
			if strings.Contains(log, "] pass 1/2: ") {
				t.Errorf("progress lines despite --quiet:\n%s", log)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if code := run(trainArgs(t, data, tc.flags...), f, f); code != exitOK {
				b, _ := os.ReadFile(f.Name())
				t.Fatalf("exit %d\n%s", code, b)
			}
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("\r")) {
				t.Errorf("carriage returns in the log:\n%q", b)
			}
			tc.check(t, string(b))
		})
	}
	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(trainArgs(t, data, "--log-format", "json"), &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, &stdout, &stderr)
		}
		kinds := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var rec struct {
				Msg   string         `json:"msg"`
				Stage string         `json:"stage"`
				Stats map[string]any `json:"stats"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("stderr line %q: %v", line, err)
			}
			kinds[rec.Msg]++
		}
		// natural training, 2 epochs: 2 passes.
		if kinds["progress"] == 0 || kinds["pass"] != 2 || len(kinds) != 2 {
			t.Errorf("records by message: %v, want progress records and 2 pass records", kinds)
		}
	})
}

// TestProgressOnTerminal runs robust train with stderr on a
// pseudo-terminal: the bar is redrawn in place.
func TestProgressOnTerminal(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 96)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(ptmx) // until tty is closed
		read <- b
	}()
	var stdout bytes.Buffer
	code := run(trainArgs(t, data), &stdout, tty)
	tty.Close()
	b := <-read
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, &stdout, b)
	}
	if !bytes.Contains(b, []byte("\r")) || !bytes.Contains(b, []byte("% |")) || !bytes.Contains(b, []byte("pass 1/2: ")) {
		t.Errorf("no bar on the terminal:\n%q", b)
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"
)

// TestTrainInterruptResume interrupts `robust train` with SIGINT mid-way:
// it exits 130 after saving a checkpoint, and `--resume` then finishes
// with a model.onnx byte-identical to that of an uninterrupted run.
//
// Mutations caught (each checked once): the interrupted exit code 130
// changed to 2; --resume not loading the checkpoint (training restarts
// from step 0).
func TestTrainInterruptResume(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 512)
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"--threads", "2", "train", "--data", data, "--out", out, "--method", "free",
			"--replays", "2", "--epochs", "8", "--batch", "32", "--eval-n", "0", "--checkpoint-every", "1000",
			"--no-progress"}, extra...)
	}
	full := filepath.Join(dir, "full")
	if code, stdout, stderr := robust(t, args(full)...); code != exitOK {
		t.Fatalf("uninterrupted run: exit %d\n%s%s", code, stdout, stderr)
	}

	// While this channel is registered, a SIGINT that reaches the process
	// before the command listens cannot kill the test binary.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	cut := filepath.Join(dir, "cut")
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(args(cut), &stdout, &stderr)
		done <- result{code, stdout.String(), stderr.String()}
	}()
	// The command listens for SIGINT before training writes its "start"
	// event.
	logPath := filepath.Join(cut, runLog)
	var res result
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Millisecond) {
		if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte(`"event":"start"`)) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			res = <-done
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("training did not start within 5 minutes")
		}
	}
	if res.code != exitInterrupted || !strings.Contains(res.stderr, "--resume") {
		t.Fatalf("interrupted run: exit %d, want %d\n%s%s", res.code, exitInterrupted, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(cut, runModel)); err == nil {
		t.Fatal("the interrupted run wrote a model")
	}

	code, stdout, stderr := robust(t, args(cut, "--resume")...)
	if code != exitOK {
		t.Fatalf("resumed run: exit %d\n%s%s", code, stdout, stderr)
	}
	events := logEvents(t, logPath)
	var resumedAt, total float64 = -1, 0
	for _, ev := range events {
		switch ev["event"] {
		case "resume":
			resumedAt, _ = ev["step"].(float64)
		case "start":
			total, _ = ev["total_steps"].(float64)
		}
	}
	switch {
	case resumedAt < 0:
		t.Fatal("the resumed run logged no resume event: it started over")
	case !(resumedAt > 0 && resumedAt < total):
		t.Fatalf("resumed at step %v of %v: the run was not interrupted mid-way", resumedAt, total)
	}
	want, err := os.ReadFile(filepath.Join(full, runModel))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(cut, runModel))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the model of the run interrupted at step %v and resumed differs from the uninterrupted run's", resumedAt)
	}
	t.Logf("interrupted at step %v of %v", resumedAt, total)
}

// logEvents reads a run's log.jsonl.
func logEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []map[string]any
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	return events
}

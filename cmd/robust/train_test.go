package main

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/zoo"
)

// writeSynthetic writes n learnable 1×8×8 images of 4 classes as an .npz.
func writeSynthetic(t *testing.T, n int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	d := &dataset.Dataset{Name: "synthetic", C: 1, H: 8, W: 8, NumClasses: 4, X: make([]float32, n*64), Y: make([]int64, n)}
	for i := range n {
		k := r.IntN(4)
		d.Y[i] = int64(k)
		for j, img := 0, d.Image(i); j < 64; j++ {
			img[j] = 0.4 * r.Float32()
			if j%8/2 == k {
				img[j] += 0.5
			}
		}
	}
	path := filepath.Join(t.TempDir(), "synthetic.npz")
	if err := d.SaveNPZ(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainCommand trains small-cnn on synthetic 8×8 images through the
// CLI, then checks the run directory, the refusal to overwrite it and an
// exact no-op resume of the finished run.
func TestTrainCommand(t *testing.T) {
	testenv.ORT(t)
	data := writeSynthetic(t, 160)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--threads", "2", "train", "--data", data, "--out", out, "--method", "free", "--replays", "2",
		"--epochs", "4", "--batch", "32", "--eval-n", "32", "--eval-steps", "2", "--checkpoint-every", "3", "--no-progress"}
	code, stdout, stderr := robust(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"free adversarial training, m=2, ε=0.1", "pass 2/2", "held-out clean", "wrote " + filepath.Join(out, "model.onnx")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	m, err := onnxgraph.Load(filepath.Join(out, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Graph.Inputs[0].Name != "input" || m.Graph.Outputs[0].Name != "logits" || zoo.ParamCount(m) == 0 {
		t.Errorf("exported model: inputs %v, outputs %v", m.Graph.Inputs, m.Graph.Outputs)
	}
	if v, _ := m.MetadataValue("robust.train.method"); v != "free" {
		t.Errorf("metadata method %q", v)
	}
	f, err := os.Open(filepath.Join(out, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	passes := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if ev["event"] == "pass" {
			passes++
		}
	}
	if passes != 2 {
		t.Errorf("%d pass events in the log, want 2", passes)
	}

	code, _, stderr = robust(t, args...)
	if code != exitUsage || !strings.Contains(stderr, "already holds a training run") {
		t.Errorf("rerun without --resume: exit %d, %q", code, stderr)
	}
	code, stdout, stderr = robust(t, append(args, "--resume")...)
	if code != exitOK || !strings.Contains(stderr, "resuming") || !strings.Contains(stdout, "pass 2/2") {
		t.Errorf("resume of a finished run: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = robust(t, append(args[:len(args)-1], "--lr", "0.1", "--resume", "--no-progress")...)
	if code != exitUsage || !strings.Contains(stderr, "lr 0.05, now 0.1") {
		t.Errorf("resume with another --lr: exit %d, %q", code, stderr)
	}
}

func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"train"}, "--out"},
		{[]string{"train", "--out", dir, "--method", "magic"}, "--method"},
		{[]string{"train", "--out", dir, "--eps", "a lot"}, "--eps"},
		{[]string{"train", "--out", dir, "--augment", "rotate"}, "unknown augmentation"},
		{[]string{"train", "--out", dir, "--augment", "crop:x"}, "crop:x"},
		{[]string{"train", "--out", dir, "--resume"}, "no checkpoint"},
		{[]string{"train", "--out", dir, "--data", filepath.Join(dir, "none.npz")}, "none.npz"},
		{[]string{"train", "--out", dir, "--model", "lenet"}, "unknown model"},
	}
	for _, tt := range tests {
		code, _, stderr := robust(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestZooCommands(t *testing.T) {
	code, stdout, _ := robust(t, "zoo", "list")
	if code != exitOK || !strings.Contains(stdout, "small-cnn") || !strings.Contains(stdout, "11,172,170") {
		t.Errorf("zoo list: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = robust(t, "zoo", "list", "--json")
	var list struct {
		Schema string `json:"schema"`
		Models []struct {
			Name       string `json:"name"`
			Parameters int64  `json:"parameters"`
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); code != exitOK || err != nil || len(list.Models) != len(zoo.List()) || list.Schema != zooSchema {
		t.Errorf("zoo list --json: exit %d, %v", code, err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "cnn.onnx")
	code, stdout, stderr := robust(t, "zoo", "export", "small-cnn", "-o", path, "--seed", "3", "--shape", "1,32,32", "--classes", "5")
	if code != exitOK || !strings.Contains(stdout, "float[N,1,32,32]") {
		t.Fatalf("zoo export: exit %d\n%s%s", code, stdout, stderr)
	}
	m, err := onnxgraph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := zoo.Build("small-cnn", zoo.Options{Seed: 3, InputShape: [3]int64{1, 32, 32}, Classes: 5})
	if zoo.ParamCount(m) != zoo.ParamCount(want) || m.Graph.Outputs[0].Type.String() != "float[N,5]" {
		t.Errorf("exported %d parameters, outputs %v", zoo.ParamCount(m), m.Graph.Outputs[0].Type)
	}
	for _, bad := range [][]string{
		{"zoo", "export", "lenet", "-o", path},
		{"zoo", "export", "small-cnn", "-o", path, "--shape", "1,x,2"},
		{"zoo", "export", "small-cnn"},
	} {
		if code, _, _ := robust(t, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

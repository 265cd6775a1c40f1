package main

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
)

// TestHardenFreeze hardens a small-cnn export on synthetic images with
// --freeze (a glob and a regular expression): the frozen initializers keep
// their exact bits in the written model, and every other parameter moves.
//
// Mutation caught (checked once): harden ignoring its Freeze patterns.
func TestHardenFreeze(t *testing.T) {
	testenv.ORT(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "cnn.onnx")
	if code, stdout, stderr := robust(t, "zoo", "export", "small-cnn", "-o", model, "--shape", "1,8,8", "--classes", "4", "--seed", "5"); code != exitOK {
		t.Fatalf("zoo export: exit %d\n%s%s", code, stdout, stderr)
	}
	out := filepath.Join(dir, "hardened.onnx")
	code, stdout, stderr := robust(t, "--threads", "2", "harden", model, "--data", writeSynthetic(t, 128), "-o", out,
		"--eps", "0.1", "--replays", "2", "--epochs", "2", "--batch", "32", "--eval-n", "0", "--no-progress",
		"--freeze", "0.*", "--freeze", `/^5\./`)
	if code != exitOK {
		t.Fatalf("harden: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "trained 4 parameter tensors, kept 4 fixed") {
		t.Errorf("stdout:\n%s", stdout)
	}
	before, err := onnxgraph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	after, err := onnxgraph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	frozen := []string{"0.weight", "0.bias", "5.weight", "5.bias"}
	checked := 0
	for _, init := range before.Graph.Initializers {
		was, err := init.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		now, err := after.Graph.Initializer(init.Name).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		same := slices.EqualFunc(was, now, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) })
		if isFrozen := slices.Contains(frozen, init.Name); same != isFrozen {
			t.Errorf("%s: frozen %v, but bit-identical %v", init.Name, isFrozen, same)
		}
		checked++
	}
	if checked != 8 {
		t.Errorf("checked %d initializers, want small-cnn's 8", checked)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
)

// dropoutModel writes a 4-class linear classifier of 1×4×4 images with a
// Dropout left in training mode on its input: a randomised model.
func dropoutModel(t *testing.T) string {
	t.Helper()
	b := onnxgraph.NewBuilder("dropout")
	x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)})
	on := b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Bool, Dims: []int64{}, Raw: []byte{1}})
	w := make([]float32, 4*16)
	for i := range w {
		w[i] = float32((i*37)%11-5) / 5
	}
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{4, 16}, w))
	z := b.Gemm(b.Op("Dropout", []string{b.Flatten(x, 1), b.ScalarFloat(0.3), on}), wt, "", onnxgraph.GemmOpts{TransB: true})
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(4)})
	path := filepath.Join(t.TempDir(), "dropout.onnx")
	if err := onnxgraph.Save(path, b.Model()); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEvalAttackFlags checks the flags of issue 11 end to end: --norm l1
// with eval, attack and a gate, --min-eps, the autoattack suites, the
// reproduction record, and gates refusing a deterministic suite on a
// randomised model unless --allow-random.
func TestEvalAttackFlags(t *testing.T) {
	testenv.ORT(t)
	random := dropoutModel(t)
	args := func(model string, extra ...string) []string {
		return append([]string{"eval", model, "--data", tinyData, "--n", "0", "--steps", "5", "--no-progress"}, extra...)
	}
	cases := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{"l1 gate", args(tinyModel, "--norm", "l1", "--eps", "1", "--suite", "apgd-ce,fab", "--fail-under", "clean=50%"), exitOK, "L1", ""},
		{"l1 autoattack", args(tinyModel, "--norm", "l1", "--eps", "1", "--suite", "autoattack"), exitOK, "fab-t", ""},
		{"l1 gate missed", args(tinyModel, "--norm", "l1", "--eps", "2", "--suite", "apgd-ce", "--fail-under", "apgd-ce=50%"), exitGate, "FAIL apgd-ce", ""},
		{"min eps", args(tinyModel, "--eps", "0.05", "--suite", "apgd-ce", "--min-eps"), exitOK, "minimal ε: median", ""},
		{"random refused", args(random, "--eps", "0.05", "--suite", "apgd-ce", "--fail-under", "clean=1%"), exitGate, "non-deterministic", "autoattack-rand"},
		{"random allowed", args(random, "--eps", "0.05", "--suite", "apgd-ce", "--fail-under", "clean=1%", "--allow-random"), exitOK, "non-deterministic", ""},
		{"random suite", args(random, "--eps", "0.05", "--suite", "autoattack-rand", "--fail-under", "clean=1%"), exitOK, "the suite averages gradients over its randomness", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := robust(t, c.args...)
			if code != c.code || !strings.Contains(out, c.inStdout) || !strings.Contains(errOut, c.inStderr) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
		})
	}
	t.Run("attack l1", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "adv.npz")
		code, stdout, stderr := robust(t, "attack", tinyModel, "--data", tinyData, "--norm", "l1", "--eps", "1", "--attack", "apgd-ce", "--out", out)
		if code != exitOK || !strings.Contains(stdout, "at L1 ε=1") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	t.Run("reproduction", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "r.json")
		if code, _, stderr := robust(t, args(tinyModel, "--eps", "0.05", "--suite", "autoattack", "--json", path)...); code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Reproduction struct {
				ModelSHA256 string `json:"model_sha256"`
				Selection   string `json:"selection"`
				Attacks     []struct {
					Name string `json:"name"`
				} `json:"attacks"`
			} `json:"reproduction"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if rep := r.Reproduction; len(rep.ModelSHA256) != 64 || rep.Selection != "first 32 of 32" || len(rep.Attacks) != 4 || rep.Attacks[2].Name != "fab-t" {
			t.Errorf("reproduction %+v", rep)
		}
	})
}

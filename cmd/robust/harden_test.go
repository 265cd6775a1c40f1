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

const torchFixture = "../../harden/testdata/torch_resnetish.onnx"

// fashionSample writes the first n Fashion-MNIST training images as .npz.
func fashionSample(t *testing.T, n int) string {
	t.Helper()
	d, _ := testenv.FashionMNIST(t)
	path := filepath.Join(t.TempDir(), "fashion.npz")
	if err := d.Subset(n).SaveNPZ(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHardenCommand hardens a PyTorch export briefly through the CLI and
// checks the outputs: a drop-in model whose diff shows only values, the
// reports, and the refusal to overwrite an unfinished run.
func TestHardenCommand(t *testing.T) {
	testenv.ORT(t)
	data := fashionSample(t, 256)
	out := filepath.Join(t.TempDir(), "hardened.onnx")
	code, stdout, stderr := robust(t, "--threads", "2", "harden", torchFixture, "--data", data, "-o", out,
		"--eps", "0.1", "--replays", "2", "--epochs", "2", "--batch", "64", "--eval-n", "64", "--no-progress")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"pass 1/1", "before", "after", "PGD-20 (ε=0.1)", "trained 10 parameter tensors", "wrote " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	orig, _ := onnxgraph.Load(torchFixture)
	hard, err := onnxgraph.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if d := onnxgraph.Diff(orig, hard); !d.OnlyValuesChanged() || len(d.Values) == 0 {
		t.Fatalf("structure changed: %v (values changed: %d)", d.Structure, len(d.Values))
	}
	if note, _ := hard.MetadataValue("robust.hardened"); !strings.Contains(note, "free adversarial fine-tuning") {
		t.Errorf("metadata note %q", note)
	}
	var report struct {
		Schema string
		Before struct{ Samples int }
		After  struct{ Samples int }
	}
	js, err := os.ReadFile(strings.TrimSuffix(out, ".onnx") + ".report.json")
	if err != nil || json.Unmarshal(js, &report) != nil || report.Schema != "robust.harden/v1" || report.After.Samples != 64 {
		t.Fatalf("report: %v %+v", err, report)
	}
	if _, err := os.Stat(strings.TrimSuffix(out, ".onnx") + ".report.md"); err != nil {
		t.Error(err)
	}
	code, _, stderr = robust(t, "info", "--diff", torchFixture, out)
	if code != exitOK {
		t.Errorf("info --diff: exit %d %s", code, stderr)
	}
}

func TestHardenRefusesEarly(t *testing.T) {
	dir := t.TempDir()
	// A model without parameters.
	b := onnxgraph.NewBuilder("g")
	x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(28), onnxgraph.D(28)})
	b.Output(b.Flatten(b.Relu(x), 1), onnxgraph.Float, nil)
	noParams := filepath.Join(dir, "relu.onnx")
	if err := onnxgraph.Save(noParams, b.Model()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"harden", noParams, "-o", filepath.Join(dir, "o.onnx")}, "no trainable float parameters"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--eps", "big"}, "--eps"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--layout", "nhwc"}, "NCHW models only"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--mean", "0.5,0.5", "--std", "1"}, "give as many of each"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--mean", "0.5,0.5", "--std", "1,1"}, "one per channel"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--freeze", "*"}, "matches all"},
		{[]string{"harden", torchFixture}, "--out"},
		{[]string{"harden", torchFixture, "-o", filepath.Join(dir, "o.onnx"), "--data", "nowhere:x"}, "nowhere"},
	}
	for _, tt := range tests {
		code, _, stderr := robust(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tt.args[1:], code, stderr, tt.want)
		}
	}
}

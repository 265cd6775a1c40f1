package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/internal/testenv"
)

// tinyNPZ writes n random 3×16×16 images in [0,1] with 10 labels to an
// .npz file with train and test splits.
func tinyNPZ(t *testing.T, n int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*3*16*16)
	y := make([]int64, n)
	for i := range n {
		y[i] = int64(r.IntN(10))
		for j := range 3 * 16 * 16 {
			x[i*768+j] = float32(min(max(0.2+0.06*float64(y[i])+0.1*r.NormFloat64(), 0), 1))
		}
	}
	d, err := dataset.FromArrays(dataset.Array{Shape: []int{n, 3, 16, 16}, Data: x},
		dataset.Array{Shape: []int{n}, Data: y}, 10)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.npz")
	if err := d.SaveNPZ(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestModernArchitecturesEndToEnd runs robust info, eval (FGSM, PGD,
// APGD-CE) and a short harden on tiny dynamic-batch PyTorch exports of a
// ViT, a ConvNeXt and a MobileNetV3 (onnxgraph/testdata/torch).
func TestModernArchitecturesEndToEnd(t *testing.T) {
	testenv.ORT(t)
	data := tinyNPZ(t, 96)
	for _, name := range []string{"vit_tiny_opset17", "convnext_tiny_block_opset13", "mobilenet_v3_tiny_opset17"} {
		t.Run(name, func(t *testing.T) {
			model := filepath.Join("..", "..", "onnxgraph", "testdata", "torch", name, "model.onnx")
			code, out, errOut := robust(t, "info", model)
			if code != 0 || !strings.Contains(out, "trainable: yes") {
				t.Fatalf("info: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut = robust(t, "eval", model, "--data", data, "--split", "train", "--n", "16",
				"--eps", "0.03", "--suite", "fgsm,pgd,apgd-ce", "--steps", "5", "--threads", "2", "--no-progress")
			if code != 0 || !strings.Contains(out, "apgd-ce") {
				t.Fatalf("eval: exit %d\n%s%s", code, out, errOut)
			}
			hardened := filepath.Join(t.TempDir(), "hardened.onnx")
			code, out, errOut = robust(t, "harden", model, "--data", data, "--eps", "0.03", "--replays", "2",
				"--epochs", "2", "--batch", "16", "--threads", "2", "-o", hardened)
			if code != 0 {
				t.Fatalf("harden: exit %d\n%s%s", code, out, errOut)
			}
			if _, err := os.Stat(hardened); err != nil {
				t.Fatal(err)
			}
			code, out, errOut = robust(t, "eval", hardened, "--data", data, "--n", "16", "--eps", "0.03",
				"--suite", "fgsm", "--threads", "2", "--no-progress")
			if code != 0 {
				t.Fatalf("eval of the hardened model: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

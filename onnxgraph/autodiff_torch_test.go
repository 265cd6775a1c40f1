package onnxgraph_test

import (
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/internal/torchref"
)

// TestGradientsMatchPyTorch compares robust's gradients of the mean
// cross-entropy loss with respect to the input and to the parameters with
// PyTorch autograd's, for tiny instances of torchvision's ViT, ConvNeXt,
// MobileNetV3, ShuffleNetV2 and Swin exported by PyTorch 1.13 (fixtures
// written by scripts/check_torch.py --fixtures; see package torchref), on
// the export as users make it and on one without constant folding, in which
// every parameter is compared. The bar is max |Δ| / max |g| ≤ 1e-3;
// float32 rounding measured below 1e-6, so the test asks for 1e-4
// (torchref.Result.Pass: against PyTorch's float64 gradients, or PyTorch
// float32's own error against them where that is larger).
func TestGradientsMatchPyTorch(t *testing.T) {
	env := testenv.ORT(t)
	dirs, err := torchref.Dirs(filepath.Join("testdata", "torch"))
	if err != nil {
		t.Fatal(err)
	}
	const tol = 1e-4
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := torchref.Check(env, dir)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Pass(tol) {
				t.Errorf("input gradient: max rel error %.2g, parameter gradient of %s: %.2g (> %g)",
					res.InputErr, res.WorstParam, res.ParamErr, tol)
				if res.Exact != nil {
					t.Errorf("against PyTorch's float64 gradients: %+v; PyTorch float32's own: %+v", *res.Exact, *res.Torch)
				}
			}
			// The export without constant folding keeps every parameter an
			// initializer of its own name (ViT's class token and position
			// embedding, Swin's relative position bias tables): all are
			// compared.
			if res.Params == 0 || res.Missing > 0 {
				t.Errorf("compared %d parameter gradients, %d folded by the exporter", res.Params, res.Missing)
			}
			t.Logf("dx error %.2g, dθ error %.2g over %d parameters (%d folded), %d trainable by default",
				res.InputErr, res.ParamErr, res.Params, res.Missing, res.Trainable)
		})
	}
}

package attacks

import (
	"os"
	"sync"
	"testing"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

var (
	envOnce sync.Once
	envErr  error
	testEnv *ort.Env
)

// ortEnv returns an ONNX Runtime Env with 2 intra-op threads. Without a
// library it skips the test, unless ROBUST_REQUIRE_ORT is set.
func ortEnv(tb testing.TB) *ort.Env {
	tb.Helper()
	if _, err := ort.FindLibrary(""); err != nil {
		if os.Getenv("ROBUST_REQUIRE_ORT") == "" {
			tb.Skipf("no ONNX Runtime library (set ROBUST_REQUIRE_ORT=1 to fail instead): %v", err)
		}
		tb.Fatalf("ROBUST_REQUIRE_ORT is set but: %v", err)
	}
	envOnce.Do(func() { testEnv, envErr = ort.Init(ort.Options{Threads: 2}) })
	if envErr != nil {
		tb.Fatalf("ort.Init: %v", envErr)
	}
	return testEnv
}

// linearONNX builds the classifier logits = W·flatten(x) + bias for
// images of the given shape; w has one row of C·H·W weights per class.
func linearONNX(tb testing.TB, shape [3]int, w [][]float32, bias []float32) *onnxgraph.Model {
	tb.Helper()
	d := shape[0] * shape[1] * shape[2]
	b := onnxgraph.NewBuilder("linear")
	x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"),
		onnxgraph.D(int64(shape[0])), onnxgraph.D(int64(shape[1])), onnxgraph.D(int64(shape[2]))})
	flat := make([]float32, 0, len(w)*d)
	for _, r := range w {
		if len(r) != d {
			tb.Fatalf("weight row of %d values for images of %d", len(r), d)
		}
		flat = append(flat, r...)
	}
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{int64(len(w)), int64(d)}, flat))
	bt := b.Initializer(onnxgraph.NewFloatTensor("b", []int64{int64(len(w))}, bias))
	z := b.Gemm(b.Flatten(x, 1), wt, bt, onnxgraph.GemmOpts{TransB: true})
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(int64(len(w)))})
	m := b.Model()
	if err := m.Validate(); err != nil {
		tb.Fatal(err)
	}
	return m
}

// linearModel is linearONNX wrapped in an ONNXModel.
func linearModel(tb testing.TB, shape [3]int, w [][]float32, bias []float32) *ONNXModel {
	tb.Helper()
	m, err := NewONNXModel(ortEnv(tb), linearONNX(tb, shape, w, bias), ModelOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

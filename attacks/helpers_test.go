package attacks

import (
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
)

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
	m, err := NewONNXModel(testenv.ORT(tb), linearONNX(tb, shape, w, bias), ModelOptions{})
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

package evaluate

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
)

var update = flag.Bool("update", false, "rewrite the golden files and fixtures in testdata")

// The tiny fixture: a linear classifier of 1×4×4 images into 4 classes and
// 32 images, stored in testdata (tiny.onnx, tiny.npz) for this package's
// golden tests and the CLI's tests.
const (
	tinyClasses = 4
	tinySamples = 32
)

var tinyShape = [3]int{1, 4, 4}

// tinyWeights returns the classifier's deterministic weights and biases.
func tinyWeights() (w []float32, b []float32) {
	d := tinyShape[0] * tinyShape[1] * tinyShape[2]
	w = make([]float32, tinyClasses*d)
	for i := range w {
		w[i] = float32((i*37)%11-5) / 5
	}
	return w, []float32{0.3, -0.2, 0.1, 0}
}

// buildLinear builds logits = W·flatten(input) + b for an input of the
// given shape (after an optional preprocessing chain done by the caller).
func buildLinear(shape onnxgraph.Shape, w, bias []float32, classes int) *onnxgraph.Model {
	b := onnxgraph.NewBuilder("tiny")
	x := b.Input("input", onnxgraph.Float, shape)
	d := int64(len(w) / classes)
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{int64(classes), d}, w))
	bt := b.Initializer(onnxgraph.NewFloatTensor("b", []int64{int64(classes)}, bias))
	z := b.Gemm(b.Flatten(x, 1), wt, bt, onnxgraph.GemmOpts{TransB: true})
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(int64(classes))})
	return b.Model()
}

func tinyONNX() *onnxgraph.Model {
	w, b := tinyWeights()
	return buildLinear(onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)}, w, b, tinyClasses)
}

// tinyData returns the images (a smooth pattern per class plus a
// deterministic texture) and labels (i mod 4).
func tinyData() *dataset.Dataset {
	d := &dataset.Dataset{Name: "tiny", Partition: "test", C: 1, H: 4, W: 4, NumClasses: tinyClasses}
	w, _ := tinyWeights()
	for i := range tinySamples {
		y := i % tinyClasses
		for j := range 16 {
			// Lean towards the label's weights so that most samples are
			// classified correctly, with varying margins.
			v := 0.5 + 0.12*w[y*16+j] + 0.2*float32((i*7+j*13)%17-8)/17
			d.X = append(d.X, min(max(v, 0), 1))
		}
		d.Y = append(d.Y, int64(y))
	}
	return d
}

// tinyFiles returns the paths of testdata/tiny.onnx and tiny.npz, writing
// them with -update.
func tinyFiles(t *testing.T) (model, data string) {
	t.Helper()
	model, data = filepath.Join("testdata", "tiny.onnx"), filepath.Join("testdata", "tiny.npz")
	if *update {
		if err := onnxgraph.Save(model, tinyONNX()); err != nil {
			t.Fatal(err)
		}
		if err := tinyData().SaveNPZ(data); err != nil {
			t.Fatal(err)
		}
	}
	return model, data
}

// tinyModel loads the fixture model for attacks.
func tinyModel(t *testing.T) (*attacks.ONNXModel, *dataset.Dataset) {
	t.Helper()
	modelPath, dataPath := tinyFiles(t)
	g, err := onnxgraph.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := attacks.NewONNXModel(testenv.ORT(t), g, attacks.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	d, err := dataset.Open(dataPath, "test", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

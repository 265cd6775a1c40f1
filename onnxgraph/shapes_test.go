package onnxgraph

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv/skip"
)

const testdataRoot = "/usr/share/libonnx-testdata/data"

func TestInferShapesSmallCNN(t *testing.T) {
	b := NewBuilder("cnn")
	x := b.Input("input", Float, Shape{Sym("N"), D(1), D(28), D(28)})
	w1 := b.ConstFloat([]int64{16, 1, 4, 4}, make([]float32, 256)...)
	h := b.Relu(b.Conv(x, w1, "", ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}))
	p := b.MaxPool(h, PoolOpts{Kernel: []int64{3, 3}, Strides: []int64{2, 2}, CeilMode: true})
	// PyTorch's flatten: Shape → Gather(0) → Unsqueeze → Concat(−1) → Reshape.
	shape := b.Op("Shape", []string{p})
	n0 := b.Op("Gather", []string{shape, b.Initializer(NewInt64Tensor("", []int64{}, []int64{0}))}, IntAttr("axis", 0))
	n0u := b.Op("Unsqueeze", []string{n0, b.ConstInt64(0)})
	target := b.Concat(0, n0u, b.ConstInt64(-1))
	flat := b.Reshape(p, target)
	w2 := b.ConstFloat([]int64{10, 16 * 7 * 7}, make([]float32, 10*16*49)...)
	logits := b.Gemm(flat, w2, "", GemmOpts{TransB: true})
	b.Output(logits, Float, nil)
	types, err := InferShapes(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{h: "float[N,16,14,14]", p: "float[N,16,7,7]", flat: "float[N,784]", logits: "float[N,10]", target: "int64[2]"}
	for v, w := range want {
		if got := types[v].String(); got != w {
			t.Errorf("%s: got %s, want %s", v, got, w)
		}
	}
}

func TestInferShapesErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *Builder) string
		want  string
	}{
		{"conv channels", func(b *Builder) string {
			x := b.Input("x", Float, Shape{Sym("N"), D(3), D(8), D(8)})
			return b.Conv(x, b.ConstFloat([]int64{4, 2, 3, 3}, make([]float32, 72)...), "", ConvOpts{})
		}, "channels"},
		{"gemm inner", func(b *Builder) string {
			x := b.Input("x", Float, Shape{Sym("N"), D(5)})
			return b.Gemm(x, b.ConstFloat([]int64{4, 3}, make([]float32, 12)...), "", GemmOpts{})
		}, "inner dimensions"},
		{"broadcast", func(b *Builder) string {
			x := b.Input("x", Float, Shape{Sym("N"), D(5)})
			return b.Add(x, b.ConstFloat([]int64{3}, 1, 2, 3))
		}, "broadcast"},
		{"reshape size", func(b *Builder) string {
			x := b.Input("x", Float, Dims(2, 6))
			return b.ReshapeTo(x, 5, -1)
		}, "reshape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder("g")
			out := tt.build(b)
			b.Output(out, Float, nil)
			_, err := InferShapes(b.Model())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "node") {
				t.Fatalf("got %v, want an error naming the node and mentioning %q", err, tt.want)
			}
		})
	}
}

// TestInferShapesAgainstTestdata compares inferred output shapes with the
// shapes ONNX's own test models declare for their outputs.
func TestInferShapesAgainstTestdata(t *testing.T) {
	skip.Data(t, testdataRoot)
	var checked, mismatched int
	for _, sub := range []string{"node", "pytorch-converted", "pytorch-operator"} {
		models, _ := filepath.Glob(filepath.Join(testdataRoot, sub, "*", "model.onnx"))
		for _, path := range models {
			m, err := Load(path)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			types, err := InferShapes(m)
			if err != nil {
				// Test models of ops outside robust's set may use attributes
				// the inference does not model; only fail for robust's ops.
				if usesOnly(m, cnnOps) {
					t.Errorf("%s: %v", path, err)
				}
				continue
			}
			for _, o := range m.Graph.Outputs {
				got := types[o.Name]
				if o.Type == nil || o.Type.Shape == nil || !o.Type.Shape.Known() || got == nil || got.Shape == nil || !got.Shape.Known() {
					continue
				}
				checked++
				if !got.Shape.Equal(o.Type.Shape) {
					mismatched++
					if usesOnly(m, cnnOps) {
						t.Errorf("%s: output %s: inferred %v, model says %v", path, o.Name, got.Shape, o.Type.Shape)
					}
				}
			}
		}
	}
	t.Logf("compared %d output shapes (%d mismatches outside the CNN op set)", checked, mismatched)
	if checked < 300 {
		t.Errorf("only %d output shapes compared", checked)
	}
}

var cnnOps = []string{"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu",
	"Sigmoid", "Tanh", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
	"Transpose", "Concat", "Softmax", "LogSoftmax", "Identity", "Dropout", "Pad", "Clip", "Constant", "Shape",
	"Gather", "Unsqueeze", "Squeeze", "Slice", "Split", "ReduceMean", "ReduceSum"}

func usesOnly(m *Model, ops []string) bool {
	for _, n := range m.Graph.Nodes {
		found := false
		for _, o := range ops {
			if n.OpType == o {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

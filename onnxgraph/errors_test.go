package onnxgraph

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
)

// TestErrorPrefix checks that the errors of the exported entry points
// start with "onnxgraph: " once, also where one exported function calls
// another and adds context (Load calls Decode, SaveWith calls
// WriteFileAtomic), that they name the user's path and
// no temporary file, and that errors.Is still sees the sentinels.
func TestErrorPrefix(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "m.onnx")
	mutated := func(f func(*Model)) *Model {
		m := tinyModel()
		f(m)
		return m
	}
	unknownOp := mutated(func(m *Model) { m.Graph.Nodes[0].OpType = "Frobnicate" })
	cycle := mutated(func(m *Model) { m.Graph.Nodes[0].Inputs[0] = m.Graph.Nodes[1].Outputs[0] })
	sine := func() *Model { // logits = relu(sin(x) wᵀ): Sin has no gradient rule
		b := NewBuilder("sin")
		x := b.Input("x", Float, Shape{Sym("N"), D(3)})
		w := b.ConstFloat([]int64{2, 3}, 1, 2, 3, 4, 5, 6)
		y := b.Relu(b.Gemm(b.Op("Sin", []string{x}), w, "", GemmOpts{TransB: true}))
		b.Output(y, Float, Shape{Sym("N"), D(2)})
		return b.Model()
	}
	tests := []struct {
		name string
		err  func() error
		path string // the path the message must name, if any
		is   error  // the sentinel it must wrap, if any
	}{
		{"load missing", func() error { _, err := Load(missing); return err }, missing, os.ErrNotExist},
		{"load garbage", func() error { _, err := Load(garbage); return err }, garbage, ErrNotONNX},
		{"decode empty", func() error { _, err := Decode(nil, ""); return err }, "", ErrNotONNX},
		{"save", func() error { return Save(missing, tinyModel()) }, missing, os.ErrNotExist},
		{"save external", func() error {
			return SaveWith(filepath.Join(dir, "m.onnx"), tinyModel(), SaveOptions{ExternalData: "../x.data"})
		}, "", nil},
		{"write", func() error { return WriteFileAtomic(missing, nil) }, missing, os.ErrNotExist},
		{"validate unknown op", func() error { return unknownOp.Validate() }, "", nil},
		{"validate cycle", func() error { return cycle.Validate() }, "", ErrCycle},
		{"topo sort cycle", func() error { return cycle.Graph.TopoSort() }, "", ErrCycle},
		{"infer shapes", func() error { _, err := InferShapes(cycle); return err }, "", nil},
		{"fold", func() error { _, err := FoldConstants(cycle); return err }, "", nil},
		{"float32s", func() error { _, err := NewInt64Tensor("i", []int64{1}, []int64{1}).Float32s(); return err }, "", nil},
		{"int64s", func() error { _, err := NewFloatTensor("f", []int64{1}, []float32{1}).Int64s(); return err }, "", nil},
		{"gradients", func() error { _, err := Gradients(sine(), "ghost", []string{"x"}, nil); return err }, "", nil},
	}
	for _, tt := range tests {
		err := tt.err()
		if err := liberr.Check(err, "onnxgraph"); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		msg := err.Error()
		if tt.path != "" && !strings.Contains(msg, tt.path) {
			t.Errorf("%s: %q does not name %s", tt.name, msg, tt.path)
		}
		if strings.Contains(msg, ".tmp") {
			t.Errorf("%s: %q names a temporary file", tt.name, msg)
		}
		t.Logf("%s: %v", tt.name, err)
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: %v does not wrap %v", tt.name, err, tt.is)
		}
	}
}

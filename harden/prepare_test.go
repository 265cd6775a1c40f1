package harden

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
)

func load(t *testing.T, name string) *onnxgraph.Model {
	t.Helper()
	m, err := onnxgraph.Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPreparePyTorchExports(t *testing.T) {
	tests := []struct {
		file       string
		opts       Options
		params     int
		untied     int
		wantParams []string
	}{
		{"torch_resnetish.onnx", Options{}, 10, 0, []string{"conv1.weight", "bn2.bias", "fc.weight"}},
		{"torch_tied.onnx", Options{}, 10, 6, []string{"bn2.weight", "bn2.bias"}},
		{"torch_normalized_input.onnx", Options{Mean: []float32{0.286}, Std: []float32{0.353}}, 6, 0, []string{"fc1.weight"}},
		{"torch_resnetish.onnx", Options{Freeze: []string{"conv1.*", "/^bn/"}}, 5, 0, []string{"conv2.weight", "fc.bias"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := Prepare(load(t, tt.file), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Params) != tt.params || len(p.Untied) != tt.untied {
				t.Fatalf("params %v (want %d), untied %v (want %d)", p.Params, tt.params, p.Untied, tt.untied)
			}
			for _, w := range tt.wantParams {
				if !slices.Contains(p.Params, w) {
					t.Errorf("%s is not trainable: %v", w, p.Params)
				}
			}
			for _, c := range []string{"mean", "std", "bn1.running_mean", "bn2.running_var"} {
				if slices.Contains(p.Params, c) {
					t.Errorf("constant %s made trainable", c)
				}
			}
			if p.Input != "image" || p.Logits != "scores" {
				t.Errorf("input/logits %q/%q", p.Input, p.Logits)
			}
			if tt.untied > 4 {
				// The note names four and counts the rest (ViT-H/14 has 192).
				note := strings.Join(p.Notes, "; ")
				if want := fmt.Sprintf("untied %d values", tt.untied); !strings.Contains(note, want) ||
					!strings.Contains(note, fmt.Sprintf(" and %d more)", tt.untied-4)) || strings.Contains(note, p.Untied[4]+",") {
					t.Errorf("note %q does not name four untied values and count the other %d", note, tt.untied-4)
				}
			}
		})
	}
}

func TestPrepareRejects(t *testing.T) {
	relu := func() *onnxgraph.Model {
		b := onnxgraph.NewBuilder("g")
		x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)})
		y := b.Flatten(b.Relu(x), 1)
		b.Output(y, onnxgraph.Float, nil)
		return b.Model()
	}
	unsupported := func() *onnxgraph.Model {
		b := onnxgraph.NewBuilder("g")
		x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(2), onnxgraph.D(2)})
		h := b.Op("Sin", []string{b.Flatten(x, 1)})
		y := b.Gemm(h, b.ConstFloat([]int64{3, 4}, make([]float32, 12)...), "", onnxgraph.GemmOpts{TransB: true})
		b.Output(y, onnxgraph.Float, nil)
		return b.Model()
	}
	quantised := func() *onnxgraph.Model {
		b := onnxgraph.NewBuilder("g")
		x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(2), onnxgraph.D(2)})
		w := b.Op("DequantizeLinear", []string{
			b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Int8, Dims: []int64{3, 4}, Raw: make([]byte, 12)}),
			b.ScalarFloat(0.1)})
		y := b.Gemm(b.Flatten(x, 1), w, "", onnxgraph.GemmOpts{TransB: true})
		b.Output(y, onnxgraph.Float, nil)
		return b.Model()
	}
	tests := []struct {
		name string
		m    *onnxgraph.Model
		opts Options
		want error
		text string
	}{
		{"no parameters", relu(), Options{}, ErrNoParameters, "no Conv"},
		{"unsupported op", unsupported(), Options{}, ErrNotTrainable, "Sin"},
		{"quantised", quantised(), Options{}, ErrQuantized, "DequantizeLinear"},
		{"freeze all", unsupported(), Options{Freeze: []string{"*"}}, ErrNoParameters, "matches all"},
		{"bad mean", load(t, "torch_resnetish.onnx"), Options{Mean: []float32{1, 2}, Std: []float32{1, 2}}, nil, "one per channel"},
		{"bad pattern", load(t, "torch_resnetish.onnx"), Options{Freeze: []string{"[x"}}, nil, "freeze pattern"},
		{"bad input name", load(t, "torch_resnetish.onnx"), Options{Input: "pixels"}, nil, "not an input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Prepare(tt.m, tt.opts)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			if err := liberr.Check(err, "harden"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestExportKeepsStructure(t *testing.T) {
	orig := load(t, "torch_resnetish.onnx")
	p, err := Prepare(orig, Options{})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]float32{}
	for _, name := range append(slices.Clone(p.Params), "bn1.running_mean") {
		init := p.Trainable.Graph.Initializer(name)
		v, _ := init.Float32s()
		for i := range v {
			v[i] += 0.25
		}
		values[name] = v
	}
	out, err := p.Export(values, "free adversarial fine-tuning")
	if err != nil {
		t.Fatal(err)
	}
	d := onnxgraph.Diff(orig, out)
	if !d.OnlyValuesChanged() || len(d.Values) != len(values) {
		t.Fatalf("structure %v, %d values changed (want %d)", d.Structure, len(d.Values), len(values))
	}
	if v, _ := out.MetadataValue("robust.hardened"); v == "" {
		t.Error("no robust.hardened metadata")
	}

	// Untied values become initializers of their own.
	tied := load(t, "torch_tied.onnx")
	pt, err := Prepare(tied, Options{})
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string][]float32{"bn2.weight": make([]float32, 16)}
	outT, err := pt.Export(vals, "")
	if err != nil {
		t.Fatal(err)
	}
	if outT.Graph.Initializer("bn2.weight") == nil || len(outT.Graph.Nodes) != len(tied.Graph.Nodes)-1 {
		t.Fatal("untied value not written as its own initializer")
	}
	if _, err := pt.Export(map[string][]float32{"nope": {1}}, ""); err == nil {
		t.Error("unknown value exported")
	}
	if _, err := p.Export(map[string][]float32{"fc.bias": {1}}, ""); err == nil {
		t.Error("wrong-size value exported")
	}
}

// TestPytorchConvertedImport: every model of ONNX's pytorch-converted test
// data either imports as trainable or fails with an error naming the
// operator (or reason) that blocks it.
func TestPytorchConvertedImport(t *testing.T) {
	dir := "/usr/share/libonnx-testdata/data/pytorch-converted"
	testenv.Data(t, dir)
	models, _ := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	var ok, blocked int
	reasons := map[string]int{}
	for _, path := range models {
		m, err := onnxgraph.Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		_, err = CheckTrainable(m)
		if err == nil {
			ok++
			continue
		}
		blocked++
		var reason string
		var unsupported *onnxgraph.UnsupportedOpError
		switch {
		case errors.As(err, &unsupported):
			reason = "no gradient rule for " + unsupported.Node.OpType
		case errors.Is(err, ErrNotTrainable) && strings.Contains(err.Error(), ` node "`):
			reason = "blocked by an operator: " + err.Error()[strings.Index(err.Error(), "autodiff: ")+10:]
		case errors.Is(err, ErrNoParameters):
			reason = "no trainable parameters"
		default:
			t.Errorf("%s: error does not say what blocks it: %v", filepath.Base(filepath.Dir(path)), err)
			continue
		}
		reasons[reason]++
	}
	t.Logf("pytorch-converted: %d of %d models import as trainable, %d blocked: %v", ok, len(models), blocked, reasons)
	testenv.DataCases(t, dir, ok+blocked, 80)
	if ok == 0 {
		t.Error("no model imported")
	}
}

// TestSetValuesShares checks that a tensor given trained values holds them
// without a copy where the byte order allows (the trained weights of a
// 2.5 GB model are then held once) and reads back the same either way.
func TestSetValuesShares(t *testing.T) {
	v := []float32{1.5, -2, 0.25, 3e-8, 7}
	tensor := onnxgraph.NewFloatTensor("w", []int64{5}, make([]float32, 5))
	if err := setValues(tensor, v); err != nil {
		t.Fatal(err)
	}
	got, err := tensor.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, v) {
		t.Fatalf("tensor reads %v, want %v", got, v)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && &tensor.Raw[0] != (*byte)(unsafe.Pointer(&v[0])) {
		t.Error("on a little-endian machine the tensor's bytes are a copy of the values, not the values")
	}
	for _, bad := range []*onnxgraph.Tensor{
		onnxgraph.NewFloatTensor("short", []int64{4}, make([]float32, 4)),
		onnxgraph.NewDoubleTensor("double", []int64{5}, make([]float64, 5)),
	} {
		if err := setValues(bad, v); err == nil {
			t.Errorf("%s: no error", bad.Name)
		}
	}
}

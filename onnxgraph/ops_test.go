package onnxgraph

import (
	"slices"
	"testing"
)

// TestOpTableConsistent checks the invariants of the operator table that
// the autodiff and training code rely on.
func TestOpTableConsistent(t *testing.T) {
	for name, d := range ops {
		if d.grad != nil && d.noGrad {
			t.Errorf("%s has a gradient rule and is marked non-differentiable", name)
		}
		if d.grad != nil && d.shape == nil {
			t.Errorf("%s has a gradient rule but no shape rule", name)
		}
		if d.prepare != nil && d.grad == nil {
			t.Errorf("%s has a prepare hook but no gradient rule", name)
		}
		for _, i := range d.decay {
			if !slices.Contains(d.params, i) {
				t.Errorf("%s: weight-decayed input %d is not a parameter input", name, i)
			}
		}
		for _, i := range d.learned {
			if i < allInputs || slices.Contains(d.params, i) {
				t.Errorf("%s: learned input %d is invalid or also a parameter input", name, i)
			}
		}
		if d.view && !slices.Equal(d.learned, []int{0}) {
			t.Errorf("%s: a view operator's data input must be its only learned input", name)
		}
		if d.quantized && (d.grad != nil || len(d.params) > 0 || len(d.learned) > 0) {
			t.Errorf("quantised operator %s has a gradient rule or parameters", name)
		}
	}
}

func TestOpTableQueries(t *testing.T) {
	for _, tc := range []struct {
		op                  string
		standard, quantized bool
		differentiable      bool
	}{
		{op: "Conv", standard: true, differentiable: true},
		{op: "Relu", standard: true, differentiable: true},
		{op: "Shape", standard: true},
		{op: "QLinearConv", standard: true, quantized: true},
		{op: "Upsample", standard: true},
		{op: "FusedConv"},
	} {
		if got := IsStandardOp(tc.op); got != tc.standard {
			t.Errorf("IsStandardOp(%s) = %v, want %v", tc.op, got, tc.standard)
		}
		if got := IsQuantizedOp(tc.op); got != tc.quantized {
			t.Errorf("IsQuantizedOp(%s) = %v, want %v", tc.op, got, tc.quantized)
		}
		if got := slices.Contains(GradientOps(), tc.op); got != tc.differentiable {
			t.Errorf("GradientOps contains %s: %v, want %v", tc.op, got, tc.differentiable)
		}
	}
}

func TestTrainableParamsAndDecay(t *testing.T) {
	b := NewBuilder("params")
	x := b.Input("x", Float, Dims(1, 3, 8, 8))
	w := b.Initializer(NewFloatTensor("w", []int64{4, 3, 3, 3}, make([]float32, 4*3*3*3)))
	bias := b.Initializer(NewFloatTensor("b", []int64{4}, make([]float32, 4)))
	h := b.Op("Conv", []string{x, w, bias})
	scale := b.Initializer(NewFloatTensor("gamma", []int64{4}, make([]float32, 4)))
	shift := b.Initializer(NewFloatTensor("beta", []int64{4}, make([]float32, 4)))
	mean := b.Initializer(NewFloatTensor("mean", []int64{4}, make([]float32, 4)))
	variance := b.Initializer(NewFloatTensor("var", []int64{4}, make([]float32, 4)))
	h = b.Op("BatchNormalization", []string{h, scale, shift, mean, variance})
	b.Output(h, Float, Dims(1, 4, 6, 6))
	m := b.Model()
	want := []string{"w", "b", "gamma", "beta"}
	if got := TrainableParams(m.Graph); !slices.Equal(got, want) {
		t.Errorf("TrainableParams = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{{"w", true}, {"b", false}, {"gamma", false}, {"mean", false}} {
		if got := WeightDecayed(m.Graph, tc.name); got != tc.want {
			t.Errorf("WeightDecayed(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTrainableDecomposedLayerNorm checks that the scale and bias of a
// LayerNorm exported as primitive operators (PyTorch before opset 17) are
// trainable, and that a scalar constant in the same position is not.
func TestTrainableDecomposedLayerNorm(t *testing.T) {
	b := NewBuilder("ln")
	x := b.Input("x", Float, Dims(2, 5, 4))
	axes := b.ConstInt64(-1)
	mean := b.Op("ReduceMean", []string{x, axes})
	xc := b.Op("Sub", []string{x, mean})
	v := b.Op("ReduceMean", []string{b.Op("Pow", []string{xc, b.ScalarFloat(2)}), axes})
	xhat := b.Op("Div", []string{xc, b.Op("Sqrt", []string{b.Op("Add", []string{v, b.ScalarFloat(1e-5)})})})
	gamma := b.Initializer(NewFloatTensor("gamma", []int64{4}, []float32{1, 1, 1, 1}))
	beta := b.Initializer(NewFloatTensor("beta", []int64{4}, []float32{0, 0, 0, 0}))
	y := b.Op("Add", []string{b.Op("Mul", []string{xhat, gamma}), beta})
	b.Output(b.Op("Mul", []string{y, b.ScalarFloat(0.5)}), Float, Dims(2, 5, 4))
	m := b.Model()
	if got, want := TrainableParams(m.Graph), []string{"gamma", "beta"}; !slices.Equal(got, want) {
		t.Errorf("TrainableParams = %v, want %v", got, want)
	}
}

// TestTrainableLearnedTensors checks the learned-tensor inputs: the bias
// of a Linear layer exported as MatMul + Add, a Linear weight read through
// a Transpose (weight-decayed like a MatMul operand), a position embedding,
// a class token broadcast by Expand and concatenated, a layer scale, while
// one-element constants and the operands of Sub and Div (preprocessing)
// stay constants.
func TestTrainableLearnedTensors(t *testing.T) {
	b := NewBuilder("learned")
	f := func(name string, dims ...int64) string {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return b.Initializer(NewFloatTensor(name, dims, make([]float32, n)))
	}
	x := b.Input("x", Float, Dims(2, 4, 6))
	x = b.Op("Div", []string{b.Op("Sub", []string{x, f("mean", 1, 1, 6)}), f("std", 1, 1, 6)})
	token := b.Op("Expand", []string{f("cls", 1, 1, 6), b.ConstInt64(2, 1, 6)})
	x = b.Op("Concat", []string{token, x}, IntAttr("axis", 1))
	x = b.Op("Add", []string{x, f("pos", 1, 5, 6)})
	w := b.Op("Transpose", []string{f("w", 3, 6)}, IntsAttr("perm", 1, 0))
	x = b.Op("Add", []string{f("bias", 3), b.Op("MatMul", []string{x, w})})
	x = b.Op("Mul", []string{f("gamma", 3), x})
	x = b.Op("Mul", []string{x, f("half", 1)})
	x = b.Op("Add", []string{x, b.ScalarFloat(1e-6)})
	b.Output(x, Float, Dims(2, 5, 3))
	m := b.Model()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"cls", "pos", "w", "bias", "gamma"}
	if got := TrainableParams(m.Graph); !slices.Equal(got, want) {
		t.Errorf("TrainableParams = %v, want %v", got, want)
	}
	for _, name := range want {
		if got := WeightDecayed(m.Graph, name); got != (name == "w") {
			t.Errorf("WeightDecayed(%s) = %v, want %v", name, got, name == "w")
		}
	}
}

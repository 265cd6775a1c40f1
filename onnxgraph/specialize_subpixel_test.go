package onnxgraph_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// TestSpecializeSubpixelConvTranspose checks the sub-pixel rewrite of
// strided ConvTransposes against ONNX Runtime's ConvTranspose on the same
// input, for the shapes input gradients of strided convolutions take
// (3×3/2 with output padding, the 7×7/2 stem), a stride of 3, asymmetric
// pads, groups (depthwise) and a bias, and that the ones it must not touch
// (odd output size, 1×1/2, dilated, unequal strides) stay ConvTransposes;
// and that by default only small inputs of group 1 are rewritten.
func TestSpecializeSubpixelConvTranspose(t *testing.T) {
	cases := []struct {
		in, cin, cout, k, group int64
		strides, pads, outPad   []int64
		dilations               []int64
		bias, rewrite           bool
	}{
		{in: 4, cin: 8, cout: 4, k: 3, group: 1, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}, outPad: []int64{1, 1}, rewrite: true},
		{in: 5, cin: 8, cout: 4, k: 3, group: 1, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}, outPad: []int64{0, 0}}, // odd output
		{in: 8, cin: 6, cout: 3, k: 7, group: 1, strides: []int64{2, 2}, pads: []int64{3, 3, 3, 3}, outPad: []int64{1, 1}, rewrite: true},
		{in: 5, cin: 4, cout: 5, k: 5, group: 1, strides: []int64{3, 3}, pads: []int64{2, 1, 1, 2}, outPad: []int64{1, 1}, bias: true, rewrite: true},
		{in: 6, cin: 6, cout: 6, k: 3, group: 6, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}, outPad: []int64{1, 1}, rewrite: true},
		{in: 6, cin: 6, cout: 4, k: 3, group: 2, strides: []int64{2, 2}, pads: []int64{0, 0, 0, 0}, outPad: []int64{1, 1}, bias: true, rewrite: true},
		{in: 4, cin: 8, cout: 4, k: 1, group: 1, strides: []int64{2, 2}, pads: []int64{0, 0, 0, 0}, outPad: []int64{1, 1}},
		{in: 4, cin: 4, cout: 4, k: 3, group: 1, strides: []int64{2, 2}, pads: []int64{1, 1, 1, 1}, outPad: []int64{1, 1}, dilations: []int64{2, 2}},
		{in: 4, cin: 4, cout: 4, k: 3, group: 1, strides: []int64{2, 1}, pads: []int64{1, 1, 1, 1}, outPad: []int64{1, 0}},
	}
	env := testenv.ORT(t)
	defer og.SubpixelAll()()
	for i, c := range cases {
		t.Run(fmt.Sprintf("k%d-s%v-p%v-g%d", c.k, c.strides, c.pads, c.group), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			b := og.NewBuilder("ct")
			x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(c.cin), og.D(c.in), og.D(c.in)})
			w := make([]float32, c.cin*(c.cout/c.group)*c.k*c.k)
			for j := range w {
				w[j] = 2*rng.Float32() - 1
			}
			wName := b.Initializer(og.NewFloatTensor("w", []int64{c.cin, c.cout / c.group, c.k, c.k}, w))
			bias := ""
			if c.bias {
				bv := make([]float32, c.cout)
				for j := range bv {
					bv[j] = rng.Float32()
				}
				bias = b.Initializer(og.NewFloatTensor("b", []int64{c.cout}, bv))
			}
			y := b.ConvTranspose(x, wName, bias, og.ConvOpts{Strides: c.strides, Pads: c.pads, OutputPadding: c.outPad, Dilations: c.dilations, Group: c.group})
			b.Output(y, og.Float, nil)
			m := b.Model()
			spec := m.Clone()
			st := og.SpecializeFrozen(spec)
			if got := st.SubpixelConvTransposes == 1; got != c.rewrite {
				t.Fatalf("rewritten %d ConvTransposes, want rewrite %v", st.SubpixelConvTransposes, c.rewrite)
			}
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			xv := make([]float32, 2*c.cin*c.in*c.in)
			for j := range xv {
				xv[j] = 2*rng.Float32() - 1
			}
			want, shape := runOne(t, env, m, x, y, []int64{2, c.cin, c.in, c.in}, xv)
			have, hshape := runOne(t, env, spec, x, y, []int64{2, c.cin, c.in, c.in}, xv)
			if fmt.Sprint(shape) != fmt.Sprint(hshape) {
				t.Fatalf("shape %v, want %v", hshape, shape)
			}
			if err := closeF32(have, want, 1e-5); err != nil {
				t.Error(err)
			}
		})
	}
}

// runOne runs a one-input, one-output graph.
func runOne(t *testing.T, env *ort.Env, m *og.Model, in, out string, shape []int64, x []float32) ([]float32, []int64) {
	t.Helper()
	data, err := og.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := env.NewSession(data, []string{in}, []string{out})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.RunTensors(&ort.Tensor{Shape: shape, Data: x})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Data.([]float32), res[0].Shape
}

func TestSpecializeSubpixelPolicy(t *testing.T) {
	for _, c := range []struct {
		in, group int64
		rewrite   bool
	}{{2, 1, true}, {4, 1, true}, {5, 1, false}, {4, 4, false}} {
		b := og.NewBuilder("ct")
		x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(8), og.D(c.in), og.D(c.in)})
		w := b.Initializer(og.NewFloatTensor("w", []int64{8, 8 / c.group, 3, 3}, make([]float32, 8*8/c.group*9)))
		y := b.ConvTranspose(x, w, "", og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}, OutputPadding: []int64{1, 1}, Group: c.group})
		b.Output(y, og.Float, nil)
		if got := og.SpecializeFrozen(b.Model()).SubpixelConvTransposes == 1; got != c.rewrite {
			t.Errorf("%d×%d input, group %d: rewritten %v, want %v", c.in, c.in, c.group, got, c.rewrite)
		}
	}
}

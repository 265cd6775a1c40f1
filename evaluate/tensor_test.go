package evaluate

import (
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/robust-go/robust/attacks"
)

func TestFromTensors(t *testing.T) {
	pix := make([]float32, 2*1*2*3)
	for i := range pix {
		pix[i] = float32(i) / float32(len(pix))
	}
	x := func() *tensor.Dense {
		return tensor.New(tensor.WithShape(2, 1, 2, 3), tensor.WithBacking(slices.Clone(pix)))
	}
	labels := func(v any) *tensor.Dense { return tensor.New(tensor.WithBacking(v)) }
	// An NHWC image (1×2×2×3) transposed to NCHW is a view in another
	// order: its values must come out in NCHW row-major order.
	nhwc := tensor.New(tensor.WithShape(1, 2, 2, 3), tensor.WithBacking(slices.Clone(pix)))
	nchwView, err := tensor.T(nhwc, 0, 3, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	nchw := make([]float32, 12)
	for c := range 3 {
		for y := range 2 {
			for x := range 2 {
				nchw[c*4+y*2+x] = pix[y*6+x*3+c]
			}
		}
	}
	for _, tc := range []struct {
		name    string
		x, y    tensor.Tensor
		wantX   []float32
		wantY   []int64
		wantErr string
	}{
		{"dense, int64 labels", x(), labels([]int64{1, 0}), pix, []int64{1, 0}, ""},
		{"int32 labels", x(), labels([]int32{0, 2}), pix, []int64{0, 2}, ""},
		{"uint8 labels", x(), labels([]uint8{2, 2}), pix, []int64{2, 2}, ""},
		{"int labels [N,1]", x(), tensor.New(tensor.WithShape(2, 1), tensor.WithBacking([]int{1, 1})), pix, []int64{1, 1}, ""},
		{"transposed view", nchwView, labels([]int64{2}), nchw, []int64{2}, ""},
		{"3-d images", tensor.New(tensor.WithShape(2, 2, 3), tensor.WithBacking(slices.Clone(pix))), labels([]int64{0, 1}), nil, nil, "want [N, C, H, W]"},
		{"float64 images", tensor.New(tensor.WithShape(2, 1, 2, 3), tensor.WithBacking(make([]float64, 12))), labels([]int64{0, 1}), nil, nil, "want float32"},
		{"label count", x(), labels([]int64{0, 1, 2}), nil, nil, "labels of shape"},
		{"label out of range", x(), labels([]int64{0, 3}), nil, nil, "label 3 of image 1"},
		{"negative label", x(), labels([]int64{-1, 0}), nil, nil, "label -1 of image 0"},
		{"float labels", x(), labels([]float32{0, 1}), nil, nil, "labels of type float32"},
		{"values above 1", tensor.New(tensor.WithShape(2, 1, 2, 3), tensor.WithBacking(append(slices.Clone(pix[:11]), 255))), labels([]int64{0, 1}), nil, nil, "outside [0,1]"},
		{"nil images", nil, labels([]int64{0}), nil, nil, "nil images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := FromTensors(tc.x, tc.y, 3)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "evaluate: ") {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.X, tc.wantX) || !slices.Equal(d.Y, tc.wantY) || d.Len() != len(tc.wantY) || d.NumClasses != 3 {
				t.Errorf("got X %v Y %v (%d images, %d classes)", d.X, d.Y, d.Len(), d.NumClasses)
			}
		})
	}
}

// TestFromTensorsInPlace checks that a dense row-major tensor's data is
// used, not copied.
func TestFromTensorsInPlace(t *testing.T) {
	pix := make([]float32, 4)
	d, err := FromTensors(tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking(pix)), tensor.New(tensor.WithBacking([]int64{0})), 2)
	if err != nil {
		t.Fatal(err)
	}
	pix[3] = 0.5
	if d.X[3] != 0.5 {
		t.Error("the images were copied")
	}
}

// TestRunTensorMatchesRun evaluates the tiny ONNX model on the tiny data
// given as a data set and as tensors: the reports are the same.
func TestRunTensorMatchesRun(t *testing.T) {
	m, d := tinyModel(t)
	eps, err := ParseEps("0.05,1/10")
	if err != nil {
		t.Fatal(err)
	}
	suite, err := Suite("fgsm,pgd", SuiteOptions{Steps: 5})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Eps: eps, Norm: attacks.Linf, Attacks: suite, Seed: 3, Model: "tiny.onnx", Data: d.Name}
	want, err := Run(t.Context(), m, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(tensor.WithShape(d.Len(), d.C, d.H, d.W), tensor.WithBacking(slices.Clone(d.X)))
	y := tensor.New(tensor.WithShape(d.Len()), tensor.WithBacking(slices.Clone(d.Y)))
	got, err := RunTensor(t.Context(), m, x, y, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want.ZeroTimings()
	got.ZeroTimings()
	var a, b strings.Builder
	if err := want.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("RunTensor's report differs from Run's:\n%s\nwant\n%s", b.String(), a.String())
	}
}

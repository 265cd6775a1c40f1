package evaluate

import (
	"math"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/onnxgraph"
)

// TestPrepare checks that prepared models compute, on NCHW images in
// [0,1], what the original models compute on their own input convention.
func TestPrepare(t *testing.T) {
	env := testenv.ORT(t)
	const c, h, w, classes = 2, 3, 3, 3
	d := c * h * w
	weights := make([]float32, classes*d)
	for i := range weights {
		weights[i] = float32((i*29)%13-6) / 6
	}
	bias := []float32{0.1, -0.1, 0}
	x := make([]float32, 2*d) // two NCHW images
	for i := range x {
		x[i] = float32((i*11)%19) / 18
	}
	nchw := func(s, ch, i, j int) float32 { return x[s*d+(ch*h+i)*w+j] }
	// logits of the original model, given how it reads pixel (ch, i, j)
	// and where that value sits in its flattened input.
	ref := func(value func(s, ch, i, j int) float32, flat func(ch, i, j int) int) []float32 {
		out := make([]float32, 2*classes)
		for s := range 2 {
			for k := range classes {
				sum := bias[k]
				for ch := range c {
					for i := range h {
						for j := range w {
							sum += weights[k*d+flat(ch, i, j)] * value(s, ch, i, j)
						}
					}
				}
				out[s*classes+k] = sum
			}
		}
		return out
	}
	sym := onnxgraph.Sym("N")
	mean, std := []float32{100, 50}, []float32{60, 70}
	cases := []struct {
		name     string
		shape    onnxgraph.Shape
		contract Contract
		want     []float32
		flags    int
	}{
		{"nchw", onnxgraph.Shape{sym, onnxgraph.D(c), onnxgraph.D(h), onnxgraph.D(w)}, Contract{},
			ref(nchw, func(ch, i, j int) int { return (ch*h+i)*w + j }), 0},
		{"nhwc", onnxgraph.Shape{sym, onnxgraph.D(h), onnxgraph.D(w), onnxgraph.D(c)}, Contract{},
			ref(nchw, func(ch, i, j int) int { return (i*w+j)*c + ch }), 1},
		{"nhwc-forced", onnxgraph.Shape{sym, onnxgraph.D(h), onnxgraph.D(w), onnxgraph.D(c)}, Contract{Layout: NHWC},
			ref(nchw, func(ch, i, j int) int { return (i*w+j)*c + ch }), 1},
		{"range-255-mean-std", onnxgraph.Shape{sym, onnxgraph.D(c), onnxgraph.D(h), onnxgraph.D(w)}, Contract{Scale: 255, Mean: mean, Std: std},
			ref(func(s, ch, i, j int) float32 { return (nchw(s, ch, i, j)*255 - mean[ch]) / std[ch] },
				func(ch, i, j int) int { return (ch*h+i)*w + j }), 1},
		{"nhwc-one-std", onnxgraph.Shape{sym, onnxgraph.D(h), onnxgraph.D(w), onnxgraph.D(c)}, Contract{Std: []float32{0.5}},
			ref(func(s, ch, i, j int) float32 { return nchw(s, ch, i, j) / 0.5 }, func(ch, i, j int) int { return (i*w+j)*c + ch }), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, flags, err := Prepare(buildLinear(tc.shape, weights, bias, classes), tc.contract, [3]int{c, h, w})
			if err != nil {
				t.Fatal(err)
			}
			if len(flags) != tc.flags {
				t.Errorf("flags %v, want %d", flags, tc.flags)
			}
			m, err := attacks.NewONNXModel(env, g, attacks.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := make([]float32, 2*classes)
			if err := m.Logits(x, 2, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-4*max(1, math.Abs(float64(tc.want[i]))) {
					t.Fatalf("logits %v, want %v", got, tc.want)
				}
			}
			// The input-gradient graph builds through the prepended nodes.
			grad := make([]float32, 2*d)
			in := attacks.GradInput{X: x, N: 2, Loss: attacks.CE, Labels: []int64{0, 1}}
			if err := m.Grad(in, attacks.GradOutput{Logits: got, Losses: make([]float32, 2), Grad: grad}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPrepareErrors(t *testing.T) {
	sym := onnxgraph.Sym("N")
	w := make([]float32, 3*12)
	rank2 := buildLinear(onnxgraph.Shape{sym, onnxgraph.D(12)}, w, []float32{0, 0, 0}, 3)
	rgb := buildLinear(onnxgraph.Shape{sym, onnxgraph.D(3), onnxgraph.D(2), onnxgraph.D(2)}, w, []float32{0, 0, 0}, 3)
	cases := []struct {
		name     string
		m        *onnxgraph.Model
		contract Contract
		shape    [3]int
		wantErr  string
	}{
		{"rank", rank2, Contract{}, [3]int{3, 2, 2}, "rank 2"},
		{"channels", rgb, Contract{}, [3]int{1, 2, 2}, "does not fit the data's 1×2×2"},
		{"size", rgb, Contract{}, [3]int{3, 4, 4}, "does not fit"},
		{"forced layout", rgb, Contract{Layout: NHWC}, [3]int{3, 2, 2}, "as NHWC"},
		{"mean count", rgb, Contract{Mean: []float32{1, 2}}, [3]int{3, 2, 2}, "2 mean values for 3 channels"},
		{"std zero", rgb, Contract{Std: []float32{0}}, [3]int{3, 2, 2}, "not positive"},
		{"input name", rgb, Contract{Input: "x"}, [3]int{3, 2, 2}, `"x" is not an input`},
		{"output name", rgb, Contract{Logits: "y"}, [3]int{3, 2, 2}, `"y" is not an output`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Prepare(c.m, c.contract, c.shape)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want %q", err, c.wantErr)
			}
		})
	}
	for _, s := range []string{"0,2", "1"} {
		if _, err := ParseRange(s); err == nil {
			t.Errorf("ParseRange(%q) accepted", s)
		}
	}
	if _, err := ParseFloats("1,x"); err == nil {
		t.Error("ParseFloats accepted x")
	}
	if _, err := ParseLayout("chw"); err == nil {
		t.Error("ParseLayout accepted chw")
	}
}

package conformance

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// TestBuilderCNNMatchesReference builds a small CNN with onnxgraph.Builder,
// runs it in ONNX Runtime and compares its output with a plain Go
// computation of the same network.
func TestBuilderCNNMatchesReference(t *testing.T) {
	env := testenv.ORT(t)
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64()) * scale
		}
		return v
	}
	const C, H, W, F, K, classes = 2, 9, 9, 3, 3, 4
	wConv, bConv := randn(F*C*K*K, 0.4), randn(F, 0.1)
	// Conv k3 s2 p1: 9×9 → 5×5; MaxPool k2 s1: 5×5 → 4×4.
	const OH, PH = 5, 4
	wFC, bFC := randn(classes*F*PH*PH, 0.2), randn(classes, 0.1)

	b := onnxgraph.NewBuilder("cnn")
	x := b.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(C), onnxgraph.D(H), onnxgraph.D(W)})
	h := b.Conv(x, b.ConstFloat([]int64{F, C, K, K}, wConv...), b.ConstFloat([]int64{F}, bConv...),
		onnxgraph.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}})
	h = b.Relu(h)
	h = b.MaxPool(h, onnxgraph.PoolOpts{Kernel: []int64{2, 2}})
	h = b.Flatten(h, 1)
	logits := b.Gemm(h, b.ConstFloat([]int64{classes, F * PH * PH}, wFC...), b.ConstFloat([]int64{classes}, bFC...), onnxgraph.GemmOpts{TransB: true})
	b.Output(logits, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(classes)})
	m := b.Model()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	data, err := onnxgraph.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := env.NewSession(data, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	for _, n := range []int{1, 3} {
		in := randn(n*C*H*W, 1)
		out, err := sess.RunTensors(&ort.Tensor{Shape: []int64{int64(n), C, H, W}, Data: in})
		if err != nil {
			t.Fatal(err)
		}
		if got := out[0].Shape; len(got) != 2 || got[0] != int64(n) || got[1] != classes {
			t.Fatalf("batch %d: output shape %v", n, got)
		}
		got := out[0].Data.([]float32)
		for s := 0; s < n; s++ {
			// Reference: conv + relu.
			conv := make([]float64, F*OH*OH)
			for f := 0; f < F; f++ {
				for oy := 0; oy < OH; oy++ {
					for ox := 0; ox < OH; ox++ {
						sum := float64(bConv[f])
						for c := 0; c < C; c++ {
							for ky := 0; ky < K; ky++ {
								for kx := 0; kx < K; kx++ {
									iy, ix := oy*2-1+ky, ox*2-1+kx
									if iy < 0 || iy >= H || ix < 0 || ix >= W {
										continue
									}
									sum += float64(in[((s*C+c)*H+iy)*W+ix]) * float64(wConv[((f*C+c)*K+ky)*K+kx])
								}
							}
						}
						conv[(f*OH+oy)*OH+ox] = math.Max(sum, 0)
					}
				}
			}
			// MaxPool 2×2 stride 1, flatten, linear.
			pool := make([]float64, F*PH*PH)
			for f := 0; f < F; f++ {
				for y := 0; y < PH; y++ {
					for x := 0; x < PH; x++ {
						v := math.Inf(-1)
						for dy := 0; dy < 2; dy++ {
							for dx := 0; dx < 2; dx++ {
								v = math.Max(v, conv[(f*OH+y+dy)*OH+x+dx])
							}
						}
						pool[(f*PH+y)*PH+x] = v
					}
				}
			}
			for k := 0; k < classes; k++ {
				want := float64(bFC[k])
				for j, p := range pool {
					want += p * float64(wFC[k*len(pool)+j])
				}
				if diff := math.Abs(float64(got[s*classes+k]) - want); diff > 1e-4*(1+math.Abs(want)) {
					t.Errorf("batch %d sample %d logit %d: ORT %g, reference %g", n, s, k, got[s*classes+k], want)
				}
			}
		}
	}
}

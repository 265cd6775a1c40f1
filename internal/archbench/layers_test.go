package archbench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// layerCase is one operator of an input-gradient graph at batch 64: the
// graph as the autodiff emits it (plain) and after SpecializeFrozen
// (specialised), timed alternately in the same iteration.
type layerCase struct {
	name  string
	in    []int64 // input shape
	build func(b *onnxgraph.Builder, x string, rng *rand.Rand) string
}

func randInit(b *onnxgraph.Builder, rng *rand.Rand, name string, dims ...int64) string {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*rng.Float32() - 1
	}
	return b.Initializer(onnxgraph.NewFloatTensor(name, dims, v))
}

// convT is the input gradient of a stride-2 Conv with a k×k kernel, cout
// output channels and pads p, from dy [64, cin, h, h].
func convT(cin, cout, h, k, p int64) layerCase {
	return layerCase{
		name: fmt.Sprintf("convT-%dx%d-s2-%d-%d-%d", k, k, cin, cout, h),
		in:   []int64{batch, cin, h, h},
		build: func(b *onnxgraph.Builder, x string, rng *rand.Rand) string {
			w := randInit(b, rng, "w", cin, cout, k, k)
			return b.ConvTranspose(x, w, "", onnxgraph.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{p, p, p, p}, OutputPadding: []int64{1, 1}})
		},
	}
}

// ResNet-18's strided input-gradient convolutions at 64×64 and 224×224
// (the stem's 7×7 and the 3×3 and 1×1 of the downsampling blocks).
var layerCases = []layerCase{
	convT(64, 3, 32, 7, 3), convT(512, 256, 2, 3, 1), convT(256, 128, 4, 3, 1), convT(128, 64, 8, 3, 1),
	convT(512, 256, 2, 1, 0),
	convT(64, 3, 112, 7, 3), convT(512, 256, 7, 3, 1), convT(256, 128, 14, 3, 1), convT(128, 64, 28, 3, 1),
}

// BenchmarkLayers times single operators of the input-gradient graphs as
// the autodiff emits them against their SpecializeFrozen rewrite, at batch
// 64 with 2 threads, alternating the two in every iteration; metrics are
// the milliseconds of each and their ratio (specialised/plain):
//
//	ROBUST_BENCH_ARCHS=1 go test ./internal/archbench -run '^$' -bench Layers -benchtime 10x
func BenchmarkLayers(b *testing.B) {
	if os.Getenv("ROBUST_BENCH_ARCHS") == "" {
		b.Skip("set ROBUST_BENCH_ARCHS=1")
	}
	env := testenv.ORT(b)
	for _, lc := range layerCases {
		b.Run(lc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			bld := onnxgraph.NewBuilder("layer")
			x := bld.Input("x", onnxgraph.Float, onnxgraph.Dims(lc.in...))
			y := bld.Op("Identity", []string{lc.build(bld, x, rng)})
			bld.Output(y, onnxgraph.Float, nil)
			plain := bld.Model()
			spec := plain.Clone()
			st := onnxgraph.SpecializeFrozen(spec)
			n := int64(1)
			for _, d := range lc.in {
				n *= d
			}
			xv := make([]float32, n)
			for i := range xv {
				xv[i] = rng.Float32()
			}
			in := &ort.Tensor{Shape: lc.in, Data: xv}
			sessions := make([]*ort.Session, 2)
			for i, m := range []*onnxgraph.Model{plain, spec} {
				data, err := onnxgraph.Encode(m)
				if err != nil {
					b.Fatal(err)
				}
				if sessions[i], err = env.NewSessionWith(data, []string{x}, []string{y}, ort.SessionOptions{Spinning: spinning()}); err != nil {
					b.Fatal(err)
				}
				defer sessions[i].Close()
				if _, err := sessions[i].RunTensors(in); err != nil { // warm-up
					b.Fatal(err)
				}
			}
			var sec [2]float64
			b.ResetTimer()
			for range b.N {
				for i, s := range sessions {
					start := time.Now()
					if _, err := s.RunTensors(in); err != nil {
						b.Fatal(err)
					}
					sec[i] += time.Since(start).Seconds()
				}
			}
			b.ReportMetric(1e3*sec[0]/float64(b.N), "plain-ms")
			b.ReportMetric(1e3*sec[1]/float64(b.N), "spec-ms")
			b.ReportMetric(sec[1]/sec[0], "ratio")
			b.ReportMetric(float64(st.SubpixelConvTransposes), "rewrites")
		})
	}
}

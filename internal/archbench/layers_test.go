package archbench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
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

// convShape is a forward convolution at batch 64: cin → cout channels, an
// h×h input, a k×k kernel, stride s, pads p.
type convShape struct{ cin, cout, h, k, s, p int64 }

func (c convShape) String() string {
	return fmt.Sprintf("%dx%d-s%d-%d-%d-%d", c.k, c.k, c.s, c.cin, c.cout, c.h)
}

// flops returns the multiply-adds ×2 of the convolution on the batch.
func (c convShape) flops() float64 {
	o := (c.h+2*c.p-c.k)/c.s + 1
	return 2 * float64(batch*o*o*c.cout*c.cin*c.k*c.k)
}

// resnet18Convs64 are ResNet-18's distinct convolutions at 64×64 and how
// many times each occurs.
var resnet18Convs64 = []struct {
	convShape
	count int
}{
	{convShape{3, 64, 64, 7, 2, 3}, 1},
	{convShape{64, 64, 16, 3, 1, 1}, 4},
	{convShape{64, 128, 16, 3, 2, 1}, 1}, {convShape{64, 128, 16, 1, 2, 0}, 1}, {convShape{128, 128, 8, 3, 1, 1}, 3},
	{convShape{128, 256, 8, 3, 2, 1}, 1}, {convShape{128, 256, 8, 1, 2, 0}, 1}, {convShape{256, 256, 4, 3, 1, 1}, 3},
	{convShape{256, 512, 4, 3, 2, 1}, 1}, {convShape{256, 512, 4, 1, 2, 0}, 1}, {convShape{512, 512, 2, 3, 1, 1}, 3},
}

// BenchmarkConvs times ResNet-18's forward convolutions at 64×64, batch 64,
// 2 threads, in ONNX Runtime (a graph of the one Conv with constant
// weights: pre-packed, NCHWc) and in PyTorch (F.conv2d under no_grad,
// scripts/archs_bench.py conv) one after the other in every iteration;
// the metrics are GFLOP/s of each (ort-GFLOP/s, torch-GFLOP/s) and the
// time ratio ort/torch. The total case sums every layer by its count: the
// forward pass's convolutions.
//
//	ROBUST_BENCH_ARCHS=1 go test ./internal/archbench -run '^$' -bench Convs -benchtime 3x
func BenchmarkConvs(b *testing.B) {
	if os.Getenv("ROBUST_BENCH_ARCHS") == "" {
		b.Skip("set ROBUST_BENCH_ARCHS=1")
	}
	if !haveTorch() {
		b.Skip("no PyTorch")
	}
	env := testenv.ORT(b)
	// Seconds per layer of the latest run of each case (the testing
	// package may run a case more than once).
	ortPer, torchPer := map[convShape]float64{}, map[convShape]float64{}
	for _, lc := range resnet18Convs64 {
		c := lc.convShape
		b.Run(c.String(), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			bld := onnxgraph.NewBuilder("conv")
			in := []int64{batch, c.cin, c.h, c.h}
			x := bld.Input("x", onnxgraph.Float, onnxgraph.Dims(in...))
			y := bld.Conv(x, randInit(bld, rng, "w", c.cout, c.cin, c.k, c.k), "", onnxgraph.ConvOpts{Strides: []int64{c.s, c.s}, Pads: []int64{c.p, c.p, c.p, c.p}})
			bld.Output(y, onnxgraph.Float, nil)
			data, err := onnxgraph.Encode(bld.Model())
			if err != nil {
				b.Fatal(err)
			}
			s, err := env.NewSessionWith(data, []string{x}, []string{y}, ort.SessionOptions{Spinning: spinning()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			xv := make([]float32, batch*c.cin*c.h*c.h)
			for i := range xv {
				xv[i] = rng.Float32()
			}
			t := &ort.Tensor{Shape: in, Data: xv}
			if _, err := s.RunTensors(t); err != nil {
				b.Fatal(err)
			}
			const reps = 5
			var ortSec, torchSec float64
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				for range reps {
					if _, err := s.RunTensors(t); err != nil {
						b.Fatal(err)
					}
				}
				ortSec += time.Since(start).Seconds() / reps
				cmd := exec.Command(python, script(b), "conv", "--conv", fmt.Sprintf("%d,%d,%d,%d,%d,%d", c.cin, c.cout, c.h, c.k, c.s, c.p),
					"--batch", strconv.Itoa(batch), "--reps", strconv.Itoa(reps), "--threads", strconv.Itoa(threads))
				if passive() {
					cmd.Env = append(os.Environ(), "OMP_WAIT_POLICY=passive")
				}
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("PyTorch: %v", err)
				}
				var r struct{ Seconds float64 }
				if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
					b.Fatalf("PyTorch output %q: %v", out, err)
				}
				torchSec += r.Seconds
			}
			n := float64(b.N)
			b.ReportMetric(c.flops()*n/ortSec/1e9, "ort-GFLOP/s")
			b.ReportMetric(c.flops()*n/torchSec/1e9, "torch-GFLOP/s")
			b.ReportMetric(ortSec/torchSec, "ratio")
			ortPer[c], torchPer[c] = ortSec/n, torchSec/n
		})
	}
	var totalOrt, totalTorch, totalFlops float64
	for _, lc := range resnet18Convs64 {
		if ortPer[lc.convShape] == 0 || torchPer[lc.convShape] == 0 {
			return // a case was filtered out: no total
		}
		totalOrt += float64(lc.count) * ortPer[lc.convShape]
		totalTorch += float64(lc.count) * torchPer[lc.convShape]
		totalFlops += float64(lc.count) * lc.flops()
	}
	b.Run("total", func(b *testing.B) {
		b.ReportMetric(1e3*totalOrt, "ort-ms")
		b.ReportMetric(1e3*totalTorch, "torch-ms")
		b.ReportMetric(totalFlops/totalOrt/1e9, "ort-GFLOP/s")
		b.ReportMetric(totalFlops/totalTorch/1e9, "torch-GFLOP/s")
		b.ReportMetric(totalOrt/totalTorch, "ratio")
	})
}

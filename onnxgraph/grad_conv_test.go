package onnxgraph_test

import (
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// convFormCases are finite-difference cases aimed at the formulations the
// Conv rule chooses between: unit-stride convolutions whose input gradient
// is a flipped-kernel Conv (dilated, grouped, asymmetric, 1-D, 3-D, pads
// as wide as the kernel) and ones that fall back to ConvTranspose.
func convFormCases() []fdCase {
	return []fdCase{
		convCase("ConvUnitStrideDilatedAsymmetric", []int64{2, 2, 7, 8}, []int64{3, 2, 3, 3}, true,
			og.ConvOpts{Dilations: []int64{2, 1}, Pads: []int64{2, 0, 1, 2}}),
		convCase("ConvUnitStrideGroupedPadded", []int64{2, 4, 5, 6}, []int64{6, 2, 3, 2}, false,
			og.ConvOpts{Group: 2, Pads: []int64{1, 1, 2, 0}}),
		convCase("ConvUnitStrideDepthwiseDilated", []int64{2, 3, 7, 7}, []int64{6, 1, 3, 3}, true,
			og.ConvOpts{Group: 3, Dilations: []int64{2, 2}, Pads: []int64{2, 1, 2, 3}}),
		convCase("ConvUnitStrideWidePads", []int64{2, 2, 4, 5}, []int64{3, 2, 2, 3}, true,
			og.ConvOpts{Pads: []int64{2, 1, 1, 3}}), // pads > k−1: ConvTranspose
		convCase("ConvUnitStride1D", []int64{2, 3, 9}, []int64{4, 3, 4}, true, og.ConvOpts{Pads: []int64{2, 1}}),
		convCase("ConvUnitStride3D", []int64{1, 2, 4, 5, 4}, []int64{3, 2, 2, 3, 3}, false,
			og.ConvOpts{Pads: []int64{1, 0, 2, 0, 2, 1}, Dilations: []int64{1, 1, 1}}),
		convCase("Conv1x1", []int64{2, 4, 5, 5}, []int64{3, 4, 1, 1}, false, og.ConvOpts{}),
		convCase("Conv1x1Strided", []int64{2, 4, 6, 5}, []int64{3, 4, 1, 1}, false, og.ConvOpts{Strides: []int64{2, 2}}),
		convCase("ConvMoreChannelsThanPositions", []int64{2, 3, 3, 3}, []int64{12, 3, 2, 2}, true,
			og.ConvOpts{Pads: []int64{1, 0, 0, 1}}),
	}
}

// TestConvGradForms runs the Conv finite-difference cases with each
// weight- and input-gradient formulation forced, so that every form is
// checked on strided, padded, grouped, dilated, asymmetric, 1-D and 3-D
// convolutions whatever the automatic choice picks for them.
func TestConvGradForms(t *testing.T) {
	env := testenv.ORT(t)
	for _, f := range []struct{ weight, input string }{
		{"correlate", "transposed"}, // the ConvTranspose/correlation forms everywhere
		{"unfold-bmm", "auto"},
		{"unfold-gemm", "auto"},
		{"auto", "auto"},
	} {
		for _, c := range append(convCases(), convFormCases()...) {
			if c.name == "ConvTranspose" || c.name == "ConvTransposeAsymmetric" {
				continue
			}
			t.Run(f.weight+"+"+f.input+"/"+c.name, func(t *testing.T) {
				defer og.SetConvGradForms(f.weight, f.input)()
				res := checkCase(t, env, c)
				t.Logf("%d elements checked in %v, max error %.2g", res.checked, res.elem, res.maxErr)
			})
		}
	}
}

// TestConvGradFormChoice checks the automatic choice on the layers the
// thresholds were measured on.
func TestConvGradFormChoice(t *testing.T) {
	for _, c := range []struct {
		name          string
		in, w         []int64
		stride, pad   int64
		group         int64
		weight        string
		flippedInGrad bool
	}{
		{"small-cnn conv1", []int64{1, 28, 28}, []int64{16, 1, 4, 4}, 2, 1, 1, "unfold-bmm", false},
		{"small-cnn conv2", []int64{16, 14, 14}, []int64{32, 16, 4, 4}, 2, 1, 1, "unfold-bmm", false},
		{"resnet layer1", []int64{64, 32, 32}, []int64{64, 64, 3, 3}, 1, 1, 1, "unfold-bmm", true},
		{"resnet layer2 down", []int64{64, 32, 32}, []int64{128, 64, 3, 3}, 2, 1, 1, "unfold-bmm", false},
		{"resnet shortcut", []int64{64, 32, 32}, []int64{128, 64, 1, 1}, 2, 0, 1, "unfold-bmm", false},
		{"resnet layer2", []int64{128, 16, 16}, []int64{128, 128, 3, 3}, 1, 1, 1, "unfold-bmm", true},
		{"resnet layer4", []int64{512, 4, 4}, []int64{512, 512, 3, 3}, 1, 1, 1, "unfold-gemm", true},
		{"resnet layer3", []int64{256, 8, 8}, []int64{256, 256, 3, 3}, 1, 1, 1, "unfold-gemm", true},
		{"depthwise", []int64{256, 8, 8}, []int64{256, 1, 3, 3}, 1, 1, 256, "unfold-bmm", true},
		{"huge kernel", []int64{4096, 8, 8}, []int64{64, 4096, 7, 7}, 1, 3, 1, "correlate", true},
	} {
		weight, flipped := og.ConvGradForms(c.in, c.w, c.stride, c.pad, c.group)
		if weight != c.weight || flipped != c.flippedInGrad {
			t.Errorf("%s: weight form %s, flipped input gradient %v; want %s, %v",
				c.name, weight, flipped, c.weight, c.flippedInGrad)
		}
	}
}

// BenchmarkConvGrad times the gradients of one convolution (∂L/∂x and
// ∂L/∂W, batch 128) in each formulation, on PreAct-ResNet18's and
// small-cnn's layer shapes, with pre-allocated tensors: the measurements
// behind the automatic choice (run with -cpu matching the training
// threads; ONNX Runtime uses runtime.NumCPU() intra-op threads here).
func BenchmarkConvGrad(b *testing.B) {
	env := testenv.ORT(b)
	const batch = 128
	layers := []struct {
		name             string
		c, h, m, k, s, p int64
	}{
		{"resnet-32x32x64", 64, 32, 64, 3, 1, 1},
		{"resnet-down-32x32x64", 64, 32, 128, 3, 2, 1},
		{"resnet-16x16x128", 128, 16, 128, 3, 1, 1},
		{"resnet-8x8x256", 256, 8, 256, 3, 1, 1},
		{"resnet-4x4x512", 512, 4, 512, 3, 1, 1},
		{"small-cnn-conv1", 1, 28, 16, 4, 2, 1},
		{"small-cnn-conv2", 16, 14, 32, 4, 2, 1},
	}
	forms := []struct{ weight, input string }{
		{"correlate", "transposed"}, {"unfold-bmm", "auto"}, {"unfold-gemm", "auto"},
	}
	for _, l := range layers {
		for _, f := range forms {
			b.Run(l.name+"/"+f.weight+"+"+f.input, func(b *testing.B) {
				restore := og.SetConvGradForms(f.weight, f.input)
				bld := og.NewBuilder("conv")
				x := bld.Input("x", og.Float, og.Dims(batch, l.c, l.h, l.h))
				w := bld.Input("w", og.Float, og.Dims(l.m, l.c, l.k, l.k))
				y := bld.Conv(x, w, "", og.ConvOpts{Strides: []int64{l.s, l.s}, Pads: []int64{l.p, l.p, l.p, l.p}})
				o := (l.h+2*l.p-l.k)/l.s + 1
				r := bld.Input("r", og.Float, og.Dims(batch, l.m, o, o))
				loss := bld.ReduceSum(bld.Mul(y, r), nil, false)
				bld.Output(loss, og.Float, og.Shape{})
				m := bld.Model()
				grads, err := og.Gradients(m, loss, []string{x, w}, nil)
				restore()
				if err != nil {
					b.Fatal(err)
				}
				data, err := og.Encode(m)
				if err != nil {
					b.Fatal(err)
				}
				sess, err := env.NewSession(data, []string{x, w, r}, grads)
				if err != nil {
					b.Fatal(err)
				}
				defer sess.Close()
				var vals []ort.Value
				for _, shape := range [][]int64{{batch, l.c, l.h, l.h}, {l.m, l.c, l.k, l.k}, {batch, l.m, o, o},
					{batch, l.c, l.h, l.h}, {l.m, l.c, l.k, l.k}} {
					v, err := ort.NewEmptyValue[float32](shape)
					if err != nil {
						b.Fatal(err)
					}
					defer v.Close()
					for i, d := 0, v.Data(); i < len(d); i++ {
						d[i] = float32(i%7) - 3
					}
					vals = append(vals, v)
				}
				if err := sess.Run(vals[:3], vals[3:]); err != nil { // warm-up
					b.Fatal(err)
				}
				for b.Loop() {
					if err := sess.Run(vals[:3], vals[3:]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			})
		}
	}
}

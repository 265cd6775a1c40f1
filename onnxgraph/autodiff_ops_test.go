package onnxgraph_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
)

// Finite-difference checks of the gradient rules of the operators modern
// architectures bring (ViT, ConvNeXt, Swin, MobileNetV3, ShuffleNetV2):
// the same harness as TestGradientRules (see autodiff_fd_test.go).

// atOpset makes a case's model import the given default-domain opset.
func atOpset(c fdCase, v int64) fdCase {
	build := c.build
	c.load = func(e og.DataType) (*og.Model, string, error) {
		b := og.NewBuilder(c.name)
		y := build(b, e)
		m := b.Model()
		for i := range m.Opsets {
			if m.Opsets[i].Domain == "" {
				m.Opsets[i].Version = v
			}
		}
		return m, y, nil
	}
	return c
}

// awayFrom returns values uniform in [lo, hi) at least 0.05 from each kink.
func awayFrom(lo, hi float64, kinks ...float64) func(r *rand.Rand, n int) []float64 {
	return func(r *rand.Rand, n int) []float64 {
		v := make([]float64, n)
		for i := range v {
		retry:
			x := randUniform(r, 1, lo, hi)[0]
			for _, k := range kinks {
				if math.Abs(x-k) < 0.05 {
					goto retry
				}
			}
			v[i] = x
		}
		return v
	}
}

func activationCases() []fdCase {
	wide := awayFrom(-4, 4)
	gelu := func(approx string) fdCase {
		c := unary("Gelu", wide, og.StringAttr("approximate", approx))
		c.name += "_" + approx
		return atOpset(c, 20)
	}
	return []fdCase{
		unary("Erf", nil),
		gelu("none"),
		gelu("tanh"),
		unary("HardSigmoid", awayFrom(-4, 4, -2.5, 2.5)),
		func() fdCase {
			c := unary("HardSigmoid", awayFrom(-4, 4, -1, 3), og.FloatAttr("alpha", 0.25), og.FloatAttr("beta", 0.25))
			c.name += "_alpha"
			return c
		}(),
		unary("HardSwish", awayFrom(-4, 4, -3, 3)),
		atOpset(unary("Mish", wide), 18),
		{name: "Max3", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Max", []string{in(b, "a", e, 2, 3), in(b, "b", e, 3), in(b, "c", e, 2, 1)})
		}},
		{name: "Min2", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Min", []string{in(b, "a", e, 2, 3, 4), in(b, "b", e, 3, 1)})
		}},
		{name: "MaxTies", build: func(b *og.Builder, e og.DataType) string {
			// max(x, x) = x: ties split evenly, so ∂/∂x = 1.
			x := in(b, "x", e, 2, 3)
			return b.Op("Max", []string{x, x})
		}},
		{name: "Max1", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Max", []string{in(b, "x", e, 2, 3)})
		}},
		{name: "Mean3", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Mean", []string{in(b, "a", e, 2, 3), in(b, "b", e, 3), in(b, "c", e, 2, 3)})
		}},
	}
}

func modernNormCases() []fdCase {
	layerNorm := func(name string, x, scale []int64, axis int64, bias bool) fdCase {
		return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			ins := []string{in(b, "x", e, x...), in(b, "scale", e, scale...)}
			if bias {
				ins = append(ins, in(b, "bias", e, scale...))
			}
			return b.Op("LayerNormalization", ins, og.IntAttr("axis", axis), og.FloatAttr("epsilon", 1e-3))
		}}
	}
	groupNorm := func(name string, opset, groups int64, param int64) fdCase {
		return atOpset(fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			attrs := []*og.Attribute{og.IntAttr("num_groups", groups), og.FloatAttr("epsilon", 1e-3)}
			if opset >= 21 {
				// Opset 21 computes the statistics in stash_type (float
				// by default), which would drown double-precision finite
				// differences in float32 rounding.
				attrs = append(attrs, og.IntAttr("stash_type", int64(e)))
			}
			return b.Op("GroupNormalization", []string{in(b, "x", e, 2, 4, 3, 3), in(b, "scale", e, param),
				in(b, "bias", e, param)}, attrs...)
		}}, opset)
	}
	return []fdCase{
		layerNorm("LayerNormLast", []int64{2, 3, 4}, []int64{4}, -1, true),
		layerNorm("LayerNormAxis1", []int64{2, 3, 4}, []int64{3, 4}, 1, false),
		{name: "InstanceNorm", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("InstanceNormalization", []string{in(b, "x", e, 2, 3, 4, 5), in(b, "scale", e, 3),
				in(b, "bias", e, 3)}, og.FloatAttr("epsilon", 1e-3))
		}},
		groupNorm("GroupNorm18", 18, 2, 2),
		groupNorm("GroupNorm21", 21, 2, 4),
	}
}

// slice returns a Slice case with constant starts, ends, axes and steps.
func slice(name string, x, starts, ends, axes, steps []int64) fdCase {
	return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
		return b.Op("Slice", []string{in(b, "x", e, x...), b.ConstInt64(starts...), b.ConstInt64(ends...),
			b.ConstInt64(axes...), b.ConstInt64(steps...)})
	}}
}

func modernShapeCases() []fdCase {
	gather := func(name string, x []int64, axis int64, idxDims []int64, idx []int64) fdCase {
		return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Gather", []string{in(b, "x", e, x...), b.Input("idx", og.Int64, og.Dims(idxDims...))},
				og.IntAttr("axis", axis))
		}, ints: map[string][]int64{"idx": idx}}
	}
	return []fdCase{
		gather("GatherAxis1Scalar", []int64{2, 3, 4}, 1, []int64{}, []int64{2}),
		gather("GatherAxis1Repeated", []int64{2, 3, 4}, 1, []int64{4}, []int64{0, 2, 2, 1}),
		gather("GatherAxis2Matrix", []int64{2, 3, 4}, -1, []int64{2, 2}, []int64{3, 0, 3, 3}),
		gather("GatherAxis0Input", []int64{4, 3}, 0, []int64{3}, []int64{1, 1, 3}),
		slice("SliceStep2", []int64{2, 5, 6}, []int64{0, 1}, []int64{100, 100}, []int64{1, 2}, []int64{2, 2}),
		slice("SliceStepsMixed", []int64{2, 5, 6}, []int64{1, -1, 1}, []int64{2, -100, 5}, []int64{0, 2, 1},
			[]int64{1, -2, 3}),
		slice("SliceReverse", []int64{3, 4}, []int64{-1}, []int64{-100}, []int64{0}, []int64{-1}),
		slice("SliceStep3Partial", []int64{2, 8}, []int64{1}, []int64{7}, []int64{-1}, []int64{3}),
	}
}

func modernMiscCases() []fdCase {
	reduce := func(op string, gen func(*rand.Rand, int) []float64, keep int64) fdCase {
		c := fdCase{name: op, build: func(b *og.Builder, e og.DataType) string {
			return b.Op(op, []string{in(b, "x", e, 2, 3, 4), b.ConstInt64(1, -1)}, og.IntAttr("keepdims", keep))
		}}
		if gen != nil {
			c.gen = genAll(gen)
		}
		return atOpset(c, 18)
	}
	pad := func(name, mode string, x, pads []int64, axes ...int64) fdCase {
		c := fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			ins := []string{in(b, "x", e, x...), b.ConstInt64(pads...)}
			if len(axes) > 0 {
				ins = append(ins, "", b.ConstInt64(axes...))
			}
			return b.Op("Pad", ins, og.StringAttr("mode", mode))
		}}
		if mode == "wrap" || len(axes) > 0 {
			return atOpset(c, 19)
		}
		return c
	}
	return []fdCase{
		pad("PadReflect", "reflect", []int64{2, 2, 4, 5}, []int64{0, 0, 1, 2, 0, 0, 3, 1}),
		pad("PadEdge", "edge", []int64{2, 2, 3, 4}, []int64{0, 0, 2, 1, 0, 0, 1, 3}),
		pad("PadWrapAxes", "wrap", []int64{2, 3, 4}, []int64{1, 2, 2, 1}, 1, -1),
		pad("PadReflect2D", "reflect", []int64{3, 5}, []int64{0, 4, 0, 2}),
		reduce("ReduceL2", nil, 0),
		reduce("ReduceL1", randAwayFromZero, 1),
		reduce("ReduceSumSquare", nil, 0),
		reduce("ReduceLogSum", positive, 1),
		reduce("ReduceLogSumExp", nil, 0),
		reduce("ReduceProd", positive, 1),
		{name: "CumSum", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("CumSum", []string{in(b, "x", e, 2, 5), b.ConstInt64(1)})
		}},
		{name: "CumSumReverseExclusive", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("CumSum", []string{in(b, "x", e, 4, 3), b.Initializer(og.NewInt64Tensor("", []int64{}, []int64{0}))},
				og.IntAttr("reverse", 1), og.IntAttr("exclusive", 1))
		}},
		{name: "TriluLower", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Trilu", []string{in(b, "x", e, 2, 4, 4), b.Initializer(og.NewInt64Tensor("", []int64{}, []int64{-1}))},
				og.IntAttr("upper", 0))
		}},
		{name: "TriluUpper", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Trilu", []string{in(b, "x", e, 3, 5)})
		}},
		{name: "DepthToSpaceDCR", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("DepthToSpace", []string{in(b, "x", e, 2, 8, 2, 3)}, og.IntAttr("blocksize", 2))
		}},
		{name: "DepthToSpaceCRD", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("DepthToSpace", []string{in(b, "x", e, 2, 8, 2, 3)}, og.IntAttr("blocksize", 2),
				og.StringAttr("mode", "CRD"))
		}},
		{name: "SpaceToDepth", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("SpaceToDepth", []string{in(b, "x", e, 2, 2, 4, 6)}, og.IntAttr("blocksize", 2))
		}},
		{name: "GatherElements", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("GatherElements", []string{in(b, "x", e, 3, 4), b.Input("idx", og.Int64, og.Dims(3, 5))},
				og.IntAttr("axis", 1))
		}, ints: map[string][]int64{"idx": {0, 3, 3, 1, 2, 1, 1, 0, 0, 2, 3, 2, 1, 0, 3}}},
		{name: "GatherND", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("GatherND", []string{in(b, "x", e, 3, 4, 2), b.Input("idx", og.Int64, og.Dims(4, 2))})
		}, ints: map[string][]int64{"idx": {0, 1, 2, 3, 0, 1, 1, 0}}},
		{name: "ScatterND", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("ScatterND", []string{in(b, "x", e, 4, 3), b.Input("idx", og.Int64, og.Dims(2, 1)),
				in(b, "u", e, 2, 3)})
		}, ints: map[string][]int64{"idx": {2, 0}}},
		{name: "ScatterElementsAdd", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("ScatterElements", []string{in(b, "x", e, 3, 4), b.Input("idx", og.Int64, og.Dims(3, 2)),
				in(b, "u", e, 3, 2)}, og.IntAttr("axis", 1), og.StringAttr("reduction", "add"))
		}, ints: map[string][]int64{"idx": {0, 0, 3, 1, 2, 0}}},
		{name: "ScatterElements", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("ScatterElements", []string{in(b, "x", e, 3, 4), b.Input("idx", og.Int64, og.Dims(3, 2)),
				in(b, "u", e, 3, 2)}, og.IntAttr("axis", 1))
		}, ints: map[string][]int64{"idx": {0, 2, 3, 1, 2, 0}}},
	}
}

func einsumCases() []fdCase {
	einsum := func(name, eq string, shapes ...[]int64) fdCase {
		return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			ins := make([]string, len(shapes))
			for i, sh := range shapes {
				ins[i] = in(b, string(rune('a'+i)), e, sh...)
			}
			return b.Op("Einsum", ins, og.StringAttr("equation", eq))
		}}
	}
	return []fdCase{
		einsum("BatchedMatMul", "bij,bjk->bik", []int64{2, 3, 4}, []int64{2, 4, 5}),
		einsum("Attention", "bhqd,bhkd->bhqk", []int64{2, 2, 3, 4}, []int64{2, 2, 5, 4}),
		einsum("Transpose", "ij->ji", []int64{3, 4}),
		einsum("MatVec", "ij,j->i", []int64{3, 4}, []int64{4}),
		einsum("Implicit", "ij,jk", []int64{3, 4}, []int64{4, 2}),
		einsum("Ellipsis", "...ij,jk->...ik", []int64{2, 3, 3, 4}, []int64{4, 5}),
		einsum("SumAway", "ijk,k->i", []int64{2, 3, 4}, []int64{4}),
		einsum("Outer", "i,j->ij", []int64{3}, []int64{4}),
	}
}

func resizeCases() []fdCase {
	resize := func(name string, x []int64, scales []float32, sizes []int64, attrs ...*og.Attribute) fdCase {
		return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
			ins := []string{in(b, "x", e, x...), ""}
			if scales != nil {
				ins = append(ins, b.ConstFloat([]int64{int64(len(scales))}, scales...))
			} else {
				ins = append(ins, "", b.ConstInt64(sizes...))
			}
			return b.Op("Resize", ins, attrs...)
		}}
	}
	mode := func(m string) *og.Attribute { return og.StringAttr("mode", m) }
	coord := func(m string) *og.Attribute { return og.StringAttr("coordinate_transformation_mode", m) }
	return []fdCase{
		resize("NearestUp2", []int64{2, 2, 3, 4}, []float32{1, 1, 2, 2}, nil, coord("asymmetric"),
			og.StringAttr("nearest_mode", "floor")),
		resize("NearestSizes", []int64{1, 2, 5, 4}, nil, []int64{1, 2, 3, 7}),
		resize("LinearHalfPixel", []int64{2, 2, 3, 4}, []float32{1, 1, 2, 1.5}, nil, mode("linear")),
		resize("LinearPytorchHalfPixel", []int64{1, 2, 4, 4}, nil, []int64{1, 2, 7, 1}, mode("linear"),
			coord("pytorch_half_pixel")),
		resize("LinearAlignCorners", []int64{2, 1, 3, 3}, nil, []int64{2, 1, 5, 4}, mode("linear"),
			coord("align_corners")),
		resize("LinearDown", []int64{1, 2, 6, 6}, []float32{1, 1, 0.5, 0.5}, nil, mode("linear")),
	}
}

// TestGradientRulesModern checks the newer operators' gradient rules
// against finite differences.
func TestGradientRulesModern(t *testing.T) {
	env := testenv.ORT(t)
	groups := map[string][]fdCase{
		"activation": activationCases(),
		"norm":       modernNormCases(),
		"shape":      modernShapeCases(),
		"misc":       modernMiscCases(),
		"einsum":     einsumCases(),
		"resize":     resizeCases(),
	}
	for group, cases := range groups {
		for _, c := range cases {
			t.Run(group+"/"+c.name, func(t *testing.T) {
				res := checkCase(t, env, c)
				t.Logf("%s: %d elements checked in %v, max error %.2g", c.name, res.checked, res.elem, res.maxErr)
			})
		}
	}
}

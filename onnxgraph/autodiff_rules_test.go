package onnxgraph_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// in declares a float input with static dims.
func in(b *og.Builder, name string, e og.DataType, dims ...int64) string {
	return b.Input(name, e, og.Dims(dims...))
}

// scalarOf adds a rank-0 constant of type e.
func scalarOf(b *og.Builder, e og.DataType, v float64) string {
	if e == og.Double {
		return b.Initializer(og.NewDoubleTensor("", []int64{}, []float64{v}))
	}
	return b.ScalarFloat(float32(v))
}

// genAll applies one generator to every input.
func genAll(f func(r *rand.Rand, n int) []float64) func(*rand.Rand, string, int) []float64 {
	return func(r *rand.Rand, _ string, n int) []float64 { return f(r, n) }
}

// positive returns values in [0.5, 1.5).
func positive(r *rand.Rand, n int) []float64 { return randUniform(r, n, 0.5, 1.5) }

// unary returns a case applying op to a [2,3,4] input.
func unary(op string, gen func(*rand.Rand, int) []float64, attrs ...*og.Attribute) fdCase {
	c := fdCase{name: op, build: func(b *og.Builder, e og.DataType) string {
		return b.Op(op, []string{in(b, "x", e, 2, 3, 4)}, attrs...)
	}}
	if gen != nil {
		c.gen = genAll(gen)
	}
	return c
}

// binary returns a case applying op to inputs of shapes sa and sb.
func binary(op string, sa, sb []int64, gen func(*rand.Rand, string, int) []float64) fdCase {
	return fdCase{
		name: op + shapeName(sa) + shapeName(sb),
		build: func(b *og.Builder, e og.DataType) string {
			return b.Op(op, []string{in(b, "a", e, sa...), in(b, "b", e, sb...)})
		},
		gen: gen,
	}
}

func shapeName(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, "x") + "]"
}

// denominatorPositive keeps Div's and Pow's second operand (and Pow's base)
// away from zero.
func denominatorPositive(r *rand.Rand, name string, n int) []float64 {
	if name == "b" {
		return positive(r, n)
	}
	return randUniform(r, n, -1, 1)
}

// awayFromBounds returns values in [−1, 1) at least 0.05 from ±0.5 and 0.
func awayFromBounds(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		for {
			x := randUniform(r, 1, -1, 1)[0]
			if math.Abs(math.Abs(x)-0.5) > 0.05 && math.Abs(x) > 0.05 {
				v[i] = x
				break
			}
		}
	}
	return v
}

func elementwiseCases() []fdCase {
	cases := []fdCase{
		binary("Add", []int64{2, 3, 4}, []int64{3, 1}, nil),
		binary("Add", []int64{2, 3}, []int64{2, 3}, nil),
		binary("Add", []int64{1, 3, 1}, []int64{2, 1, 4}, nil),
		binary("Sub", []int64{2, 1, 4}, []int64{3, 4}, nil),
		binary("Sub", []int64{4}, []int64{2, 3, 4}, nil),
		binary("Mul", []int64{4, 3}, []int64{3}, nil),
		binary("Mul", []int64{2, 3, 4}, []int64{}, nil),
		binary("Div", []int64{2, 3}, []int64{2, 1, 3}, denominatorPositive),
		binary("Div", []int64{3, 1}, []int64{3, 4}, denominatorPositive),
		binary("Pow", []int64{2, 3}, []int64{3}, func(r *rand.Rand, name string, n int) []float64 {
			if name == "a" {
				return positive(r, n)
			}
			return randUniform(r, n, 1, 3)
		}),
		{name: "Sum3", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Sum", []string{in(b, "a", e, 2, 3), in(b, "b", e, 3), in(b, "c", e, 2, 1)})
		}},
		{name: "MulSelf", build: func(b *og.Builder, e og.DataType) string {
			x := in(b, "x", e, 3, 4)
			return b.Mul(x, b.Add(x, x))
		}},
		unary("Relu", randAwayFromZero),
		unary("LeakyRelu", randAwayFromZero, og.FloatAttr("alpha", 0.1)),
		unary("Elu", randAwayFromZero, og.FloatAttr("alpha", 2)),
		unary("Selu", randAwayFromZero),
		unary("Sigmoid", nil),
		unary("Tanh", nil),
		unary("Softplus", nil),
		unary("Softsign", randAwayFromZero),
		unary("Exp", nil),
		unary("Log", positive),
		unary("Sqrt", positive),
		unary("Reciprocal", positive),
		unary("Abs", randAwayFromZero),
		unary("Neg", nil),
		unary("Identity", nil),
		{name: "PRelu", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("PRelu", []string{in(b, "x", e, 2, 3, 4, 4), in(b, "slope", e, 3, 1, 1)})
		}, gen: genAll(randAwayFromZero)},
		{name: "ClipConst", build: func(b *og.Builder, e og.DataType) string {
			return b.Clip(in(b, "x", e, 3, 5), scalarOf(b, e, -0.5), scalarOf(b, e, 0.5))
		}, gen: genAll(awayFromBounds)},
		{name: "ClipBoundsAsInputs", build: func(b *og.Builder, e og.DataType) string {
			lo := b.Input("lo", e, og.Shape{})
			hi := b.Input("hi", e, og.Shape{})
			return b.Clip(in(b, "x", e, 3, 5), lo, hi)
		}, gen: func(r *rand.Rand, name string, n int) []float64 {
			switch name {
			case "lo":
				return []float64{-0.5}
			case "hi":
				return []float64{0.5}
			}
			return awayFromBounds(r, n)
		}},
		{name: "ClipMinOnly", build: func(b *og.Builder, e og.DataType) string {
			return b.Clip(in(b, "x", e, 3, 5), scalarOf(b, e, 0), "")
		}, gen: genAll(randAwayFromZero)},
		{name: "Where", build: func(b *og.Builder, e og.DataType) string {
			cond := b.Op("Greater", []string{in(b, "c", e, 2, 3), scalarOf(b, e, 0)})
			return b.Op("Where", []string{cond, in(b, "a", e, 2, 3), in(b, "b", e, 3)})
		}, gen: genAll(randAwayFromZero)},
		{name: "CastRoundTrip", build: func(b *og.Builder, e og.DataType) string {
			x := in(b, "x", e, 2, 3)
			xc := b.Op("Cast", []string{x}, og.IntAttr("to", int64(og.Double)))
			return b.Op("Cast", []string{b.Mul(xc, xc)}, og.IntAttr("to", int64(e)))
		}},
		{name: "Expand", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Expand", []string{in(b, "x", e, 3, 1), b.ConstInt64(2, 3, 4)})
		}},
		{name: "DropoutInference", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Dropout", []string{in(b, "x", e, 3, 4)})
		}},
	}
	return cases
}

func linalgCases() []fdCase {
	var cases []fdCase
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			name := "Gemm"
			if tA {
				name += "_tA"
			}
			if tB {
				name += "_tB"
			}
			cases = append(cases, fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
				as, bs := []int64{3, 4}, []int64{4, 5}
				if tA {
					as = []int64{4, 3}
				}
				if tB {
					bs = []int64{5, 4}
				}
				return b.Gemm(in(b, "a", e, as...), in(b, "b", e, bs...), in(b, "c", e, 5),
					og.GemmOpts{TransA: tA, TransB: tB, Alpha: 0.7, Beta: 1.3})
			}})
		}
	}
	cases = append(cases,
		fdCase{name: "GemmBiasMatrix", build: func(b *og.Builder, e og.DataType) string {
			return b.Gemm(in(b, "a", e, 3, 4), in(b, "b", e, 5, 4), in(b, "c", e, 3, 1), og.GemmOpts{TransB: true})
		}},
		fdCase{name: "GemmBiasScalar", build: func(b *og.Builder, e og.DataType) string {
			return b.Gemm(in(b, "a", e, 3, 4), in(b, "b", e, 4, 2), in(b, "c", e), og.GemmOpts{})
		}},
		fdCase{name: "GemmNoBias", build: func(b *og.Builder, e og.DataType) string {
			return b.Gemm(in(b, "a", e, 3, 4), in(b, "b", e, 4, 2), "", og.GemmOpts{})
		}},
		binary("MatMul", []int64{3, 4}, []int64{4, 5}, nil),
		binary("MatMul", []int64{2, 3, 4}, []int64{4, 5}, nil),
		binary("MatMul", []int64{2, 1, 3, 4}, []int64{3, 4, 2}, nil),
		binary("MatMul", []int64{4}, []int64{2, 4, 3}, nil),
		binary("MatMul", []int64{2, 3, 4}, []int64{4}, nil),
		binary("MatMul", []int64{4}, []int64{4}, nil),
	)
	return cases
}

// convCase builds Conv(x, w, bias) for input [2, c, spatial...].
func convCase(name string, x, w []int64, bias bool, o og.ConvOpts) fdCase {
	return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
		bn := ""
		if bias {
			bn = in(b, "bias", e, w[0])
		}
		return b.Conv(in(b, "x", e, x...), in(b, "w", e, w...), bn, o)
	}}
}

func convCases() []fdCase {
	return []fdCase{
		convCase("Conv", []int64{2, 3, 5, 5}, []int64{4, 3, 3, 3}, true, og.ConvOpts{}),
		convCase("ConvStrided", []int64{2, 2, 7, 6}, []int64{3, 2, 3, 2}, true, og.ConvOpts{Strides: []int64{2, 3}}),
		convCase("ConvPadded", []int64{2, 2, 5, 5}, []int64{3, 2, 3, 3}, true, og.ConvOpts{Pads: []int64{1, 1, 1, 1}}),
		convCase("ConvStridedPadded", []int64{2, 1, 8, 8}, []int64{4, 1, 4, 4}, true,
			og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}),
		convCase("ConvAsymmetricPads", []int64{2, 2, 6, 5}, []int64{3, 2, 3, 3}, true,
			og.ConvOpts{Pads: []int64{0, 1, 2, 1}, Strides: []int64{2, 1}}),
		convCase("ConvStride2Kernel3AsymmetricPads", []int64{2, 3, 9, 8}, []int64{2, 3, 3, 3}, true,
			og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{0, 1, 2, 1}}),
		convCase("ConvStride3Kernel5", []int64{2, 2, 11, 10}, []int64{3, 2, 5, 5}, true,
			og.ConvOpts{Strides: []int64{3, 3}, Pads: []int64{2, 1, 2, 2}}),
		convCase("ConvDilated", []int64{2, 2, 7, 7}, []int64{2, 2, 3, 3}, true, og.ConvOpts{Dilations: []int64{2, 2}}),
		convCase("ConvDilatedStridedPadded", []int64{1, 2, 9, 8}, []int64{3, 2, 3, 2}, false,
			og.ConvOpts{Dilations: []int64{2, 3}, Strides: []int64{2, 2}, Pads: []int64{1, 2, 2, 0}}),
		convCase("ConvGrouped", []int64{2, 4, 5, 5}, []int64{6, 2, 3, 3}, true, og.ConvOpts{Group: 2}),
		convCase("ConvGroupedStridedPadded", []int64{2, 6, 6, 6}, []int64{3, 2, 3, 3}, true,
			og.ConvOpts{Group: 3, Strides: []int64{2, 2}, Pads: []int64{1, 0, 1, 1}}),
		convCase("ConvDepthwise", []int64{2, 3, 5, 5}, []int64{3, 1, 3, 3}, true, og.ConvOpts{Group: 3, Pads: []int64{1, 1, 1, 1}}),
		convCase("ConvDepthwiseMultiplier", []int64{2, 2, 5, 5}, []int64{4, 1, 3, 3}, true, og.ConvOpts{Group: 2}),
		convCase("ConvSameUpper", []int64{2, 2, 6, 7}, []int64{2, 2, 3, 3}, true, og.ConvOpts{AutoPad: "SAME_UPPER", Strides: []int64{2, 2}}),
		convCase("ConvSameLower", []int64{2, 2, 6, 7}, []int64{2, 2, 4, 2}, true, og.ConvOpts{AutoPad: "SAME_LOWER"}),
		convCase("ConvValid", []int64{2, 2, 6, 7}, []int64{2, 2, 3, 3}, true, og.ConvOpts{AutoPad: "VALID", Strides: []int64{2, 2}}),
		convCase("Conv1D", []int64{2, 3, 9}, []int64{2, 3, 3}, true, og.ConvOpts{Strides: []int64{2}, Pads: []int64{1, 2}}),
		convCase("Conv3D", []int64{1, 2, 4, 5, 4}, []int64{2, 2, 2, 3, 2}, true,
			og.ConvOpts{Strides: []int64{1, 2, 1}, Pads: []int64{1, 0, 0, 1, 1, 0}}),
		{name: "ConvTranspose", build: func(b *og.Builder, e og.DataType) string {
			return b.ConvTranspose(in(b, "x", e, 1, 3, 4, 3), in(b, "w", e, 3, 2, 3, 3), in(b, "bias", e, 2),
				og.ConvOpts{Strides: []int64{3, 2}, Pads: []int64{1, 1, 1, 1}, OutputPadding: []int64{1, 1}})
		}},
		{name: "ConvTransposeAsymmetric", build: func(b *og.Builder, e og.DataType) string {
			return b.ConvTranspose(in(b, "x", e, 2, 2, 3, 4), in(b, "w", e, 2, 3, 2, 3), "",
				og.ConvOpts{Strides: []int64{2, 1}, Pads: []int64{0, 1, 1, 0}, Dilations: []int64{1, 2}})
		}},
	}
}

func poolCase(name, op string, x []int64, o og.PoolOpts, opts *og.GradOptions) fdCase {
	c := fdCase{name: name, opts: opts, build: func(b *og.Builder, e og.DataType) string {
		xi := in(b, "x", e, x...)
		if op == "MaxPool" {
			return b.MaxPool(xi, o)
		}
		return b.AveragePool(xi, o)
	}}
	if op == "MaxPool" {
		c.gen = genAll(randDistinct)
	}
	return c
}

func poolCases() []fdCase {
	mask := &og.GradOptions{MaxPool: og.MaxPoolMask}
	k2 := []int64{2, 2}
	return []fdCase{
		poolCase("MaxPoolTiled", "MaxPool", []int64{2, 3, 4, 6}, og.PoolOpts{Kernel: k2, Strides: k2}, nil),
		poolCase("MaxPoolTiledMask", "MaxPool", []int64{2, 3, 4, 6}, og.PoolOpts{Kernel: k2, Strides: k2}, mask),
		poolCase("MaxPoolTiledRemainder", "MaxPool", []int64{2, 2, 5, 7}, og.PoolOpts{Kernel: k2, Strides: k2}, nil),
		poolCase("MaxPoolTiledRemainderMask", "MaxPool", []int64{2, 2, 5, 7}, og.PoolOpts{Kernel: k2, Strides: k2}, mask),
		poolCase("MaxPool3DMask", "MaxPool", []int64{1, 2, 4, 6, 4}, og.PoolOpts{Kernel: []int64{2, 3, 2}, Strides: []int64{2, 3, 2}}, mask),
		poolCase("MaxPoolOverlappingMaskFallback", "MaxPool", []int64{1, 2, 6, 6},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, Pads: []int64{1, 1, 1, 1}}, mask),
		poolCase("MaxPoolOverlapping", "MaxPool", []int64{2, 2, 7, 7},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, Pads: []int64{1, 1, 1, 1}}, nil),
		poolCase("MaxPoolCeil", "MaxPool", []int64{1, 2, 6, 6},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, CeilMode: true}, nil),
		poolCase("MaxPoolDilated", "MaxPool", []int64{1, 2, 7, 8},
			og.PoolOpts{Kernel: k2, Strides: []int64{1, 2}, Dilations: []int64{2, 2}, Pads: []int64{0, 1, 1, 0}}, nil),
		poolCase("MaxPool1D", "MaxPool", []int64{2, 3, 9}, og.PoolOpts{Kernel: []int64{3}, Strides: []int64{2}}, nil),
		poolCase("MaxPool3D", "MaxPool", []int64{1, 2, 4, 4, 4}, og.PoolOpts{Kernel: []int64{2, 2, 2}, Strides: []int64{2, 2, 2}}, nil),
		poolCase("MaxPoolSameUpper", "MaxPool", []int64{1, 2, 5, 5}, og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, AutoPad: "SAME_UPPER"}, nil),
		poolCase("AvgPoolTiled", "AveragePool", []int64{2, 3, 4, 6}, og.PoolOpts{Kernel: k2, Strides: k2}, nil),
		poolCase("AvgPoolTiledRemainder", "AveragePool", []int64{2, 2, 5, 5}, og.PoolOpts{Kernel: k2, Strides: k2}, nil),
		poolCase("AvgPoolOverlappingExcludePad", "AveragePool", []int64{2, 2, 7, 6},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, Pads: []int64{1, 1, 1, 1}}, nil),
		poolCase("AvgPoolOverlappingIncludePad", "AveragePool", []int64{2, 2, 7, 6},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, Pads: []int64{1, 1, 1, 1}, CountIncludePad: true}, nil),
		poolCase("AvgPoolAsymmetricPads", "AveragePool", []int64{1, 2, 6, 6},
			og.PoolOpts{Kernel: []int64{3, 2}, Strides: []int64{2, 1}, Pads: []int64{0, 1, 2, 0}}, nil),
		poolCase("AvgPoolCeil", "AveragePool", []int64{1, 2, 6, 7},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, CeilMode: true}, nil),
		poolCase("AvgPoolCeilIncludePad", "AveragePool", []int64{1, 2, 6, 7},
			og.PoolOpts{Kernel: []int64{3, 3}, Strides: k2, CeilMode: true, Pads: []int64{1, 1, 1, 1}, CountIncludePad: true}, nil),
		poolCase("AvgPool1D", "AveragePool", []int64{2, 3, 9}, og.PoolOpts{Kernel: []int64{3}, Strides: []int64{2}, Pads: []int64{1, 1}}, nil),
		poolCase("AvgPool3D", "AveragePool", []int64{1, 2, 4, 5, 4}, og.PoolOpts{Kernel: []int64{2, 2, 2}, Strides: []int64{2, 2, 2}}, nil),
		{name: "GlobalAveragePool", build: func(b *og.Builder, e og.DataType) string {
			// 2×3 pixels: ∂L/∂x = R/6 is large enough for a 0.4% error to
			// show (TestFDCatchesScaledGradients).
			return b.GlobalAveragePool(in(b, "x", e, 2, 3, 2, 3))
		}},
		{name: "GlobalMaxPool", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("GlobalMaxPool", []string{in(b, "x", e, 2, 3, 4, 5)})
		}, gen: genAll(randDistinct)},
	}
}

// bnCase builds BatchNormalization of an input of the given shape.
func bnCase(name string, x []int64, training bool) fdCase {
	return fdCase{name: name, build: func(b *og.Builder, e og.DataType) string {
		c := x[1]
		y := b.BatchNorm(in(b, "x", e, x...), in(b, "scale", e, c), in(b, "bias", e, c),
			in(b, "mean", e, c), in(b, "var", e, c), 1e-3, 0.9)
		if training {
			n := b.Graph.Nodes[len(b.Graph.Nodes)-1]
			n.SetAttr(og.IntAttr("training_mode", 1))
		}
		return y
	}, gen: func(r *rand.Rand, name string, n int) []float64 {
		if name == "var" {
			return positive(r, n)
		}
		return randUniform(r, n, -1, 1)
	}}
}

func normCases() []fdCase {
	eval := bnCase("BatchNormEval", []int64{2, 3, 4, 4}, false)
	train := bnCase("BatchNormTraining", []int64{3, 3, 3, 4}, true)
	train.noDiff = []string{"mean", "var"}
	train2D := bnCase("BatchNormTraining2D", []int64{5, 4}, true)
	train2D.noDiff = []string{"mean", "var"}
	return []fdCase{eval, bnCase("BatchNormEval1D", []int64{3, 2, 5}, false), train, train2D}
}

func shapeCases() []fdCase {
	return []fdCase{
		{name: "Flatten", build: func(b *og.Builder, e og.DataType) string {
			return b.Flatten(in(b, "x", e, 2, 3, 2, 2), 2)
		}},
		{name: "Reshape", build: func(b *og.Builder, e og.DataType) string {
			return b.ReshapeTo(in(b, "x", e, 2, 3, 4), 0, -1, 2)
		}},
		{name: "SqueezeUnsqueeze", build: func(b *og.Builder, e og.DataType) string {
			u := b.Op("Unsqueeze", []string{in(b, "x", e, 3, 1, 4), b.ConstInt64(0, 3)})
			return b.Op("Squeeze", []string{u, b.ConstInt64(2)})
		}},
		{name: "Transpose", build: func(b *og.Builder, e og.DataType) string {
			return b.Transpose(in(b, "x", e, 2, 3, 4), 2, 0, 1)
		}},
		{name: "Concat", build: func(b *og.Builder, e og.DataType) string {
			return b.Concat(1, in(b, "a", e, 2, 1, 3), in(b, "b", e, 2, 3, 3), in(b, "c", e, 2, 2, 3))
		}},
		{name: "Split", build: func(b *og.Builder, e og.DataType) string {
			parts := b.Node("Split", []string{in(b, "x", e, 2, 5), b.ConstInt64(2, 3)}, 2, og.IntAttr("axis", 1))
			return b.Concat(1, b.Tanh(parts[1]), parts[0])
		}},
		{name: "SplitUnusedOutput", build: func(b *og.Builder, e og.DataType) string {
			parts := b.Node("Split", []string{in(b, "x", e, 4, 3), b.ConstInt64(1, 3)}, 2, og.IntAttr("axis", 0))
			return b.Tanh(parts[1])
		}},
		{name: "Slice", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Slice", []string{in(b, "x", e, 3, 5, 4), b.ConstInt64(1, -4), b.ConstInt64(math.MaxInt64, 3),
				b.ConstInt64(0, 1)})
		}},
		{name: "Pad", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Pad", []string{in(b, "x", e, 2, 3, 3), b.ConstInt64(0, 1, 2, 0, 0, 1), scalarOf(b, e, 0.5)})
		}},
		{name: "Gather", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Gather", []string{in(b, "x", e, 4, 3), b.ConstInt64(2, 0, 2, 3)})
		}},
		{name: "Tile", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("Tile", []string{in(b, "x", e, 2, 3), b.ConstInt64(2, 2)})
		}},
		{name: "ShapeChainAndConstant", build: func(b *og.Builder, e og.DataType) string {
			x := in(b, "x", e, 2, 3, 4)
			n := b.Op("Gather", []string{b.Op("Shape", []string{x}), b.Initializer(og.NewInt64Tensor("", []int64{}, []int64{0}))})
			shape := b.Concat(0, b.Op("Unsqueeze", []string{n, b.ConstInt64(0)}), b.ConstInt64(-1))
			var cval *og.Tensor
			if e == og.Double {
				cval = og.NewDoubleTensor("", []int64{1}, []float64{0.25})
			} else {
				cval = og.NewFloatTensor("", []int64{1}, []float32{0.25})
			}
			c := b.Op("Constant", nil, og.TensorAttr("value", cval))
			return b.Reshape(b.Mul(x, b.Add(x, c)), shape)
		}},
	}
}

func reduceCases() []fdCase {
	return []fdCase{
		{name: "ReduceSumKeep", build: func(b *og.Builder, e og.DataType) string {
			return b.ReduceSum(in(b, "x", e, 2, 3, 4), []int64{0, 2}, true)
		}},
		{name: "ReduceSumDrop", build: func(b *og.Builder, e og.DataType) string {
			return b.ReduceSum(in(b, "x", e, 2, 3, 4), []int64{-1}, false)
		}},
		{name: "ReduceSumAll", build: func(b *og.Builder, e og.DataType) string {
			return b.ReduceSum(in(b, "x", e, 2, 3), nil, false)
		}},
		{name: "ReduceMeanAttr", build: func(b *og.Builder, e og.DataType) string {
			return b.ReduceMean(in(b, "x", e, 2, 3, 4), []int64{1}, false)
		}},
		{name: "ReduceMeanSymbolicBatch", build: func(b *og.Builder, e og.DataType) string {
			x := b.Input("x", e, og.Shape{og.Sym("N"), og.D(3)})
			return b.ReduceMean(x, []int64{0}, true)
		}},
		{name: "ReduceMax", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("ReduceMax", []string{in(b, "x", e, 3, 4, 2)}, og.IntsAttr("axes", 1), og.IntAttr("keepdims", 0))
		}, gen: genAll(randDistinct)},
		{name: "ReduceMin", build: func(b *og.Builder, e og.DataType) string {
			return b.Op("ReduceMin", []string{in(b, "x", e, 3, 4)}, og.IntAttr("keepdims", 1))
		}, gen: genAll(randDistinct)},
		{name: "Softmax", build: func(b *og.Builder, e og.DataType) string {
			return b.Softmax(in(b, "x", e, 2, 3, 4), 1)
		}},
		{name: "LogSoftmax", build: func(b *og.Builder, e og.DataType) string {
			return b.LogSoftmax(in(b, "x", e, 3, 5), -1)
		}},
	}
}

func lossCases() []fdCase {
	labels := map[string][]int64{"labels": {2, 0, 4, 1}}
	sce := func(name string, attrs ...*og.Attribute) fdCase {
		return fdCase{name: name, ints: labels, build: func(b *og.Builder, e og.DataType) string {
			lab := b.Input("labels", og.Int64, og.Dims(4))
			return b.Op("SoftmaxCrossEntropyLoss", []string{in(b, "z", e, 4, 5), lab}, attrs...)
		}}
	}
	head := func(name string, o traingraph.LossOptions) fdCase {
		return fdCase{name: name, ints: labels, build: func(b *og.Builder, e og.DataType) string {
			z := in(b, "z", e, 4, 5)
			h, err := traingraph.AddLoss(b.Model(), b.Tanh(z), o)
			if err != nil {
				panic(err)
			}
			return h.Loss
		}, gen: genAll(randDistinct)}
	}
	ignore := sce("SoftmaxCrossEntropyIgnoreIndex", og.IntAttr("ignore_index", 4))
	return []fdCase{
		sce("SoftmaxCrossEntropyMean"),
		sce("SoftmaxCrossEntropySum", og.StringAttr("reduction", "sum")),
		sce("SoftmaxCrossEntropyNone", og.StringAttr("reduction", "none")),
		ignore,
		head("LossHeadCE", traingraph.LossOptions{}),
		head("LossHeadCESum", traingraph.LossOptions{Sum: true}),
		head("LossHeadCW", traingraph.LossOptions{Head: attacks.CWMarginHead}),
		head("LossHeadCWMean", traingraph.LossOptions{Head: attacks.CWMarginHead, Labels: "labels"}),
		head("LossHeadDLR", traingraph.LossOptions{Head: attacks.DLRHead, MinClasses: 3}),
		{name: "LossHeadDLRTargeted", ints: map[string][]int64{"labels": {2, 0, 4, 1}, "targets": {1, 3, 0, 4}},
			build: func(b *og.Builder, e og.DataType) string {
				h, err := traingraph.AddLoss(b.Model(), b.Tanh(in(b, "z", e, 4, 5)), traingraph.LossOptions{Head: attacks.TargetedDLRHead, Targeted: true, MinClasses: 4, Sum: true})
				if err != nil {
					panic(err)
				}
				return h.Loss
			}, gen: genAll(randDistinct)},
	}
}

// fdGroups returns the finite-difference cases of the gradient rules, by
// group.
func fdGroups() map[string][]fdCase {
	return map[string][]fdCase{
		"elementwise": elementwiseCases(), "linalg": linalgCases(), "conv": convCases(),
		"pool": poolCases(), "norm": normCases(), "shape": shapeCases(), "reduce": reduceCases(),
		"loss": lossCases(),
	}
}

// TestGradientRules checks every gradient rule against finite differences.
func TestGradientRules(t *testing.T) {
	env := testenv.ORT(t)
	total, doubles := 0, 0
	for group, cases := range fdGroups() {
		for _, c := range cases {
			t.Run(group+"/"+c.name, func(t *testing.T) {
				res := checkCase(t, env, c)
				total++
				if res.elem == og.Double {
					doubles++
				}
				t.Logf("%s: %d elements checked in %v, max error %.2g (relative to max(1, ‖grad‖∞)), %.2g (relative, on elements ≥ ‖grad‖∞/10)",
					c.name, res.checked, res.elem, res.maxErr, res.maxRel)
			})
		}
	}
	t.Logf("%d finite-difference cases passed, %d in double precision, %d in float32", total, doubles, total-doubles)
}

// TestFDCatchesScaledGradients checks that the finite-difference
// tolerances notice a gradient rule off by 0.4%: for every case of the
// linalg, conv, pool and norm groups (Conv, ConvTranspose, Gemm, MatMul,
// BatchNormalization, MaxPool, AveragePool, ...) and every differentiated
// input, the harness run with that input's analytic gradient scaled by
// 1.004 must fail. A case whose gradient is too small for a 0.4% error to
// exceed the absolute floor (‖∇‖∞ < 0.1) fails too: scale it up.
//
// The same check was made once against the rules themselves, by scaling
// the gradient one rule gives one input by 1.004 in a scratch copy of
// onnxgraph (see docs/testing.md).
func TestFDCatchesScaledGradients(t *testing.T) {
	env := testenv.ORT(t)
	groups := fdGroups()
	checked := 0
	for _, group := range []string{"linalg", "conv", "pool", "norm"} {
		for _, c := range groups[group] {
			m, _, err := c.forward(og.Float)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range m.Graph.RealInputs() {
				if !in.Type.Elem.IsFloat() || slices.Contains(c.noDiff, in.Name) {
					continue
				}
				skewed := c
				skewed.skew, skewed.skewFactor = in.Name, 1.004
				res, err := runFD(env, skewed, og.Double)
				if errors.Is(err, errSkipDouble) {
					res, err = runFD(env, skewed, og.Float)
				}
				switch {
				case err != nil && strings.Contains(err.Error(), "finite difference"):
					checked++
				case err != nil:
					t.Errorf("%s/%s, ∂/∂%s: %v", group, c.name, in.Name, err)
				case res.norms[in.Name] < 0.1:
					t.Errorf("%s/%s: ‖∂L/∂%s‖∞ = %.2g is too small for the tolerances to notice a 0.4%% error", group, c.name, in.Name, res.norms[in.Name])
				default:
					t.Errorf("%s/%s (%v): ∂L/∂%s scaled by 1.004 passes the finite-difference check", group, c.name, res.elem, in.Name)
				}
			}
		}
	}
	t.Logf("a 0.4%% error caught on %d gradients", checked)
	if checked < 100 {
		t.Errorf("only %d gradients checked", checked)
	}
}

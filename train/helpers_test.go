package train

import (
	"math"
	"math/rand/v2"

	"github.com/robust-go/robust/dataset"
	og "github.com/robust-go/robust/onnxgraph"
)

// synthData returns n learnable c×h×w images of the given classes: class k
// brightens the k-th of a row of vertical bands, under uniform noise.
func synthData(n, c, h, w, classes int, seed uint64) *dataset.Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &dataset.Dataset{Name: "synthetic", C: c, H: h, W: w, NumClasses: classes,
		X: make([]float32, n*c*h*w), Y: make([]int64, n)}
	for i := range n {
		k := r.IntN(classes)
		d.Y[i] = int64(k)
		img := d.Image(i)
		for j := range img {
			col := j % w
			v := 0.4 * r.Float32()
			if col*classes/w == k {
				v += 0.5
			}
			img[j] = v
		}
	}
	return d
}

// tinyBNNet is a small classifier with batch normalisation for fast tests:
// Conv 3×3 (c→8) without bias, BatchNormalization, ReLU, global average
// pooling, Linear 8→classes.
func tinyBNNet(c, h, w, classes int, seed uint64) *og.Model {
	r := rand.New(rand.NewPCG(seed, 2))
	uniform := func(name string, bound float64, dims ...int64) *og.Tensor {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(bound * (2*r.Float64() - 1))
		}
		return og.NewFloatTensor(name, dims, v)
	}
	fill := func(name string, v float32, n int64) *og.Tensor {
		data := make([]float32, n)
		for i := range data {
			data[i] = v
		}
		return og.NewFloatTensor(name, []int64{n}, data)
	}
	b := og.NewBuilder("tiny")
	x := b.Input("input", og.Float, og.Shape{og.Sym("N"), og.D(int64(c)), og.D(int64(h)), og.D(int64(w))})
	y := b.Conv(x, b.Initializer(uniform("conv.weight", 1/math.Sqrt(float64(9*c)), 8, int64(c), 3, 3)), "",
		og.ConvOpts{Pads: []int64{1, 1, 1, 1}})
	y = b.BatchNorm(y, b.Initializer(fill("bn.weight", 1, 8)), b.Initializer(fill("bn.bias", 0, 8)),
		b.Initializer(fill("bn.running_mean", 0, 8)), b.Initializer(fill("bn.running_var", 1, 8)), 1e-5, 0.9)
	y = b.Flatten(b.GlobalAveragePool(b.Relu(y)), 1)
	logits := b.Gemm(y, b.Initializer(uniform("fc.weight", 1/math.Sqrt(8), int64(classes), 8)),
		b.Initializer(uniform("fc.bias", 1/math.Sqrt(8), int64(classes))), og.GemmOpts{TransB: true})
	b.Output(logits, og.Float, og.Shape{og.Sym("N"), og.D(int64(classes))})
	return b.Model()
}

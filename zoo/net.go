package zoo

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	og "github.com/robust-go/robust/onnxgraph"
)

// value is a graph value together with its static per-sample shape:
// channels × height × width for feature maps, features × 1 × 1 once
// flattened.
type value struct {
	name    string
	c, h, w int64
}

// dist is how one tensor is initialised.
type dist struct {
	kind distKind
	// v is the constant, the standard deviation (normal) or the bound
	// (uniform on [−v, v]).
	v float64
}

type distKind int

const (
	distConst distKind = iota
	distNormal
	distUniform
)

func constant(v float64) dist    { return dist{distConst, v} }
func normal(std float64) dist    { return dist{distNormal, std} }
func uniform(bound float64) dist { return dist{distUniform, bound} }

// scheme is how a model's reference code initialises its layers and which
// conventions its layers follow.
type scheme struct {
	// conv gives the weight and bias distributions of a convolution with
	// the given channels and square kernel size.
	conv func(in, out, k int64) (w, b dist)
	// linear gives the weight and bias distributions of a fully connected
	// layer.
	linear func(in, out int64) (w, b dist)
	// bnEpsilon is the batch normalisation epsilon.
	bnEpsilon float32
	// leak is the negative slope of the activation; 0 means ReLU.
	leak float32
	// tfSame pads convolutions like TensorFlow's padding="SAME" (any odd
	// padding goes at the end) instead of PyTorch's symmetric padding.
	tfSame bool
}

// torchDefault is PyTorch's default initialisation of Conv2d and Linear:
// kaiming_uniform_(a=√5) for the weight, i.e. U(±1/√fan_in), and
// U(±1/√fan_in) for the bias.
func torchDefault(fanIn int64) (w, b dist) {
	bound := 1 / math.Sqrt(float64(fanIn))
	return uniform(bound), uniform(bound)
}

func torchDefaultConv(in, _, k int64) (w, b dist) { return torchDefault(in * k * k) }
func torchDefaultLinear(in, _ int64) (w, b dist)  { return torchDefault(in) }

// heFanOut is kaiming_normal_(mode="fan_out", nonlinearity="relu"), which is
// also what the TensorFlow ResNets and the WideResNet code write by hand:
// N(0, 2/(k·k·out)).
func heFanOut(_, out, k int64) (w, b dist) {
	return normal(math.Sqrt(2 / float64(k*k*out))), constant(0)
}

// tradesLinear is the TRADES WideResNet's linear layer: PyTorch's default
// weight, zero bias.
func tradesLinear(in, _ int64) (w, b dist) {
	w, _ = torchDefault(in)
	return w, constant(0)
}

// madryLinear is the logit layer of Madry et al.'s TensorFlow model:
// uniform_unit_scaling_initializer(factor=1), i.e. U(±√(3/fan_in)), and a
// zero bias.
func madryLinear(in, _ int64) (w, b dist) {
	return uniform(math.Sqrt(3 / float64(in))), constant(0)
}

// bnMomentum is the batch normalisation momentum in the ONNX convention (the weight of the old
// running statistic): PyTorch's momentum=0.1 and TensorFlow's decay=0.9.
const bnMomentum = 0.9

// net wraps a Builder with the shape bookkeeping, parameter creation and
// layer helpers that every zoo model shares.
type net struct {
	b    *og.Builder
	s    scheme
	seed uint64
	// dry builds the graph without weight data, to count parameters.
	dry    bool
	params int64
	fills  []fillJob
	err    error
}

type fillJob struct {
	t *og.Tensor
	d dist
}

// failf records the first error. Later layers keep building, so layer code
// needs no error checks, and Build reports the error.
func (n *net) failf(format string, args ...any) {
	if n.err == nil {
		n.err = fmt.Errorf(format, args...)
	}
}

// tensor adds an initializer called name whose data is drawn from d.
func (n *net) tensor(name string, d dist, dims ...int64) string {
	t := &og.Tensor{Name: name, DataType: og.Float, Dims: dims}
	if !n.b.Reserve(name) {
		n.failf("duplicate tensor name %q", name)
	}
	if !n.dry {
		t.Raw = make([]byte, 4*t.NumElements())
		n.fills = append(n.fills, fillJob{t, d})
	}
	return n.b.Initializer(t)
}

// param adds a trainable tensor and counts its elements.
func (n *net) param(name string, d dist, dims ...int64) string {
	t := n.tensor(name, d, dims...)
	size := int64(1)
	for _, v := range dims {
		size *= v
	}
	n.params += size
	return t
}

// fill draws every tensor's data, in parallel: each tensor has its own PCG
// stream keyed by the seed and the tensor's name, so the bytes depend only on
// (seed, name, shape, distribution), not on scheduling or build order.
func (n *net) fill() {
	jobs := make(chan fillJob)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				j.run(n.seed)
			}
		})
	}
	for _, j := range n.fills {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	n.fills = nil
}

func (j fillJob) run(seed uint64) {
	h := fnv.New64a()
	h.Write([]byte(j.t.Name))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	raw := j.t.Raw
	for i := 0; i < len(raw); i += 4 {
		var v float64
		switch j.d.kind {
		case distConst:
			v = j.d.v
		case distNormal:
			v = r.NormFloat64() * j.d.v
		case distUniform:
			v = (2*r.Float64() - 1) * j.d.v
		}
		binary.LittleEndian.PutUint32(raw[i:], math.Float32bits(float32(v)))
	}
}

// name gives the node just appended a readable name (the module path), when
// that name is free.
func (n *net) name(name string) {
	if n.b.Reserve(name) {
		n.b.Graph.Nodes[len(n.b.Graph.Nodes)-1].Name = name
	}
}

// input declares the graph input "input" [N,C,H,W] and appends
// (input − mean)/std, skipped when it is the identity.
func (n *net) input(c, h, w int64, mean, std []float32) value {
	x := value{n.b.Input("input", og.Float, og.Shape{og.Sym("N"), og.D(c), og.D(h), og.D(w)}), c, h, w}
	n.b.Reserve("logits")
	identity := true
	for i := range mean {
		identity = identity && mean[i] == 0 && std[i] == 1
	}
	if identity {
		return x
	}
	dims := []int64{1, c, 1, 1}
	m := n.b.Initializer(og.NewFloatTensor("normalize.mean", dims, mean))
	s := n.b.Initializer(og.NewFloatTensor("normalize.std", dims, std))
	x.name = n.b.Sub(x.name, m)
	n.name("normalize.sub")
	x.name = n.b.Div(x.name, s)
	n.name("normalize.div")
	return x
}

// output makes x the graph output "logits" [N, classes].
func (n *net) output(x value) {
	last := n.b.Graph.Nodes[len(n.b.Graph.Nodes)-1]
	if last.Outputs[0] != x.name {
		n.failf("logits are not the last node's output")
		return
	}
	last.Outputs[0] = "logits"
	n.b.Output("logits", og.Float, og.Shape{og.Sym("N"), og.D(x.c)})
}

// pads returns the begin and end padding of one spatial axis.
func (n *net) pads(size, k, stride, pad int64) (begin, end int64) {
	if !n.s.tfSame {
		return pad, pad
	}
	out := (size + stride - 1) / stride
	total := max((out-1)*stride+k-size, 0)
	return total / 2, total - total/2
}

// outSize is the output size of a convolution or pooling window along one
// axis, or 0 when the padded input is smaller than the window.
func outSize(size, k, stride, begin, end int64) int64 {
	if size+begin+end < k {
		return 0
	}
	return (size+begin+end-k)/stride + 1
}

// conv appends a square convolution called name ("layer1.0.conv1") with
// parameters name.weight [out,in,k,k] and, if bias, name.bias.
func (n *net) conv(x value, name string, out, k, stride, pad int64, bias bool) value {
	wd, bd := n.s.conv(x.c, out, k)
	w := n.param(name+".weight", wd, out, x.c, k, k)
	b := ""
	if bias {
		b = n.param(name+".bias", bd, out)
	}
	hb, he := n.pads(x.h, k, stride, pad)
	wb, we := n.pads(x.w, k, stride, pad)
	o := og.ConvOpts{Strides: []int64{stride, stride}, Pads: []int64{hb, wb, he, we}}
	y := value{n.b.Conv(x.name, w, b, o), out, outSize(x.h, k, stride, hb, he), outSize(x.w, k, stride, wb, we)}
	n.name(name)
	n.checkSize(y, fmt.Sprintf("layer %q", name))
	return y
}

func (n *net) checkSize(y value, layer string) {
	if y.h < 1 || y.w < 1 {
		n.failf("input too small: %s would output %d×%d", layer, y.h, y.w)
	}
}

// linear appends a fully connected layer, Gemm with transB=1 and PyTorch's
// weight layout [out, in].
func (n *net) linear(x value, name string, out int64) value {
	in := x.c * x.h * x.w
	wd, bd := n.s.linear(in, out)
	w := n.param(name+".weight", wd, out, in)
	b := n.param(name+".bias", bd, out)
	y := value{n.b.Gemm(x.name, w, b, og.GemmOpts{TransB: true}), out, 1, 1}
	n.name(name)
	return y
}

// batchNorm appends eval-form batch normalisation with the trainable affine
// parameters name.weight (1) and name.bias (0) and the running statistics
// name.running_mean (0) and name.running_var (1).
func (n *net) batchNorm(x value, name string) value {
	scale := n.param(name+".weight", constant(1), x.c)
	bias := n.param(name+".bias", constant(0), x.c)
	mean := n.tensor(name+".running_mean", constant(0), x.c)
	variance := n.tensor(name+".running_var", constant(1), x.c)
	x.name = n.b.BatchNorm(x.name, scale, bias, mean, variance, n.s.bnEpsilon, bnMomentum)
	n.name(name)
	return x
}

// act appends the model's activation (ReLU or leaky ReLU).
func (n *net) act(x value) value {
	if n.s.leak != 0 {
		x.name = n.b.LeakyRelu(x.name, n.s.leak)
	} else {
		x.name = n.b.Relu(x.name)
	}
	return x
}

// bnAct appends batch normalisation followed by the activation.
func (n *net) bnAct(x value, name string) value { return n.act(n.batchNorm(x, name)) }

// add appends the residual sum x + y of unit name; x and y must have the
// same shape.
func (n *net) add(x, y value, name string) value {
	if x.c != y.c || x.h != y.h || x.w != y.w {
		n.failf("%s: residual branch %d×%d×%d and shortcut %d×%d×%d differ", name, x.c, x.h, x.w, y.c, y.h, y.w)
	}
	x.name = n.b.Add(x.name, y.name)
	return x
}

// maxPool appends square max pooling with symmetric padding.
func (n *net) maxPool(x value, k, stride, pad int64) value {
	y := value{n.b.MaxPool(x.name, og.PoolOpts{
		Kernel: []int64{k, k}, Strides: []int64{stride, stride}, Pads: []int64{pad, pad, pad, pad},
	}), x.c, outSize(x.h, k, stride, pad, pad), outSize(x.w, k, stride, pad, pad)}
	n.checkSize(y, "max pooling")
	return y
}

// avgPool appends square average pooling without padding, kernel = stride.
func (n *net) avgPool(x value, k int64) value {
	y := value{n.b.AveragePool(x.name, og.PoolOpts{Kernel: []int64{k, k}, Strides: []int64{k, k}}),
		x.c, outSize(x.h, k, k, 0, 0), outSize(x.w, k, k, 0, 0)}
	n.checkSize(y, "average pooling")
	return y
}

// padChannels appends a Pad node called name that adds before zero channels
// in front of x and after zero channels behind it; its pads tensor is
// name.pads.
func (n *net) padChannels(x value, name string, before, after int64) value {
	pads := n.b.Initializer(og.NewInt64Tensor(name+".pads", []int64{8}, []int64{0, before, 0, 0, 0, after, 0, 0}))
	x.name = n.b.Op("Pad", []string{x.name, pads})
	n.name(name)
	x.c += before + after
	return x
}

// pool appends global average pooling and flattens to [N, C].
func (n *net) pool(x value) value {
	return value{n.b.Flatten(n.b.GlobalAveragePool(x.name), 1), x.c, 1, 1}
}

// flatten appends a flattening to [N, C·H·W].
func (n *net) flatten(x value) value {
	return value{n.b.Flatten(x.name, 1), x.c * x.h * x.w, 1, 1}
}

package onnxgraph

import (
	"fmt"
	"strings"
)

// DefaultOpset is the ONNX opset robust writes: every op robust emits has CPU
// and CUDA kernels in stock ONNX Runtime builds at this version.
const DefaultOpset = 17

// DefaultIRVersion is the IR version of the models robust writes (ONNX 1.12+).
const DefaultIRVersion = 8

// Builder appends nodes, inputs, outputs and initializers to a graph and
// hands out unique value names. Values are referred to by name.
type Builder struct {
	Graph *Graph
	Opset int64
	used  map[string]bool
	count map[string]int
}

// NewBuilder starts an empty graph at DefaultOpset.
func NewBuilder(graphName string) *Builder {
	return Extend(&Graph{Name: graphName}, DefaultOpset)
}

// Extend returns a builder that appends to an existing graph whose model
// imports the given default-domain opset. Fresh names never clash with names
// already in the graph.
func Extend(g *Graph, opset int64) *Builder {
	b := &Builder{Graph: g, Opset: opset, used: map[string]bool{}, count: map[string]int{}}
	for _, v := range g.Inputs {
		b.used[v.Name] = true
	}
	for _, t := range g.Initializers {
		b.used[t.Name] = true
	}
	for _, n := range g.Nodes {
		b.used[n.Name] = true
		for _, o := range n.Outputs {
			b.used[o] = true
		}
	}
	return b
}

// Model wraps the graph in a model importing the builder's opset.
func (b *Builder) Model() *Model {
	return &Model{
		IRVersion:       DefaultIRVersion,
		Opsets:          []OpsetID{{Domain: "", Version: b.Opset}},
		ProducerName:    "robust",
		ProducerVersion: "0.1",
		Graph:           b.Graph,
	}
}

// Fresh returns a name starting with prefix that is not used in the graph,
// and reserves it.
func (b *Builder) Fresh(prefix string) string {
	for {
		b.count[prefix]++
		name := fmt.Sprintf("%s_%d", prefix, b.count[prefix])
		if !b.used[name] {
			b.used[name] = true
			return name
		}
	}
}

// Reserve marks name as used so Fresh never returns it. It reports whether
// the name was free.
func (b *Builder) Reserve(name string) bool {
	if b.used[name] {
		return false
	}
	b.used[name] = true
	return true
}

// Input declares a graph input and returns its name.
func (b *Builder) Input(name string, elem DataType, shape Shape) string {
	b.used[name] = true
	b.Graph.Inputs = append(b.Graph.Inputs, NewValueInfo(name, elem, shape))
	return name
}

// Output declares value as a graph output with the given type (shape may be
// nil when unknown).
func (b *Builder) Output(value string, elem DataType, shape Shape) {
	b.Graph.Outputs = append(b.Graph.Outputs, NewValueInfo(value, elem, shape))
}

// Initializer adds a constant tensor; an empty t.Name gets a fresh name.
// It returns the initializer's name.
func (b *Builder) Initializer(t *Tensor) string {
	if t.Name == "" {
		t.Name = b.Fresh("const")
	} else {
		b.used[t.Name] = true
	}
	b.Graph.Initializers = append(b.Graph.Initializers, t)
	return t.Name
}

// ConstFloat adds a float32 initializer of the given shape.
func (b *Builder) ConstFloat(dims []int64, values ...float32) string {
	return b.Initializer(NewFloatTensor("", dims, values))
}

// ScalarFloat adds a float32 scalar initializer.
func (b *Builder) ScalarFloat(v float32) string { return b.ConstFloat([]int64{}, v) }

// ConstInt64 adds a 1-D int64 initializer (shapes, axes, pads).
func (b *Builder) ConstInt64(values ...int64) string {
	return b.Initializer(NewInt64Tensor("", []int64{int64(len(values))}, values))
}

// Node appends a node with nOut fresh outputs and returns the output names.
func (b *Builder) Node(opType string, inputs []string, nOut int, attrs ...*Attribute) []string {
	prefix := opType
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.Fresh(strings.ToLower(prefix))
	}
	b.Graph.Nodes = append(b.Graph.Nodes, &Node{
		Name:    b.Fresh(prefix),
		OpType:  opType,
		Inputs:  append([]string{}, inputs...),
		Outputs: outs,
		Attrs:   attrs,
	})
	return outs
}

// Op appends a single-output node and returns its output.
func (b *Builder) Op(opType string, inputs []string, attrs ...*Attribute) string {
	return b.Node(opType, inputs, 1, attrs...)[0]
}

// ConvOpts are Conv and ConvTranspose attributes; zero values take the ONNX
// defaults (stride 1, no padding, dilation 1, one group).
type ConvOpts struct {
	Strides, Pads, Dilations []int64
	Group                    int64
	AutoPad                  string
	// OutputPadding is used by ConvTranspose only.
	OutputPadding []int64
}

func (o ConvOpts) attrs(transpose bool) []*Attribute {
	var a []*Attribute
	if len(o.Strides) > 0 {
		a = append(a, IntsAttr("strides", o.Strides...))
	}
	if len(o.Pads) > 0 {
		a = append(a, IntsAttr("pads", o.Pads...))
	}
	if len(o.Dilations) > 0 {
		a = append(a, IntsAttr("dilations", o.Dilations...))
	}
	if o.Group > 1 {
		a = append(a, IntAttr("group", o.Group))
	}
	if o.AutoPad != "" && o.AutoPad != "NOTSET" {
		a = append(a, StringAttr("auto_pad", o.AutoPad))
	}
	if transpose && len(o.OutputPadding) > 0 {
		a = append(a, IntsAttr("output_padding", o.OutputPadding...))
	}
	return a
}

func withOptional(inputs []string, optional string) []string {
	if optional != "" {
		return append(inputs, optional)
	}
	return inputs
}

// Conv appends a convolution; bias may be "".
func (b *Builder) Conv(x, w, bias string, o ConvOpts) string {
	return b.Op("Conv", withOptional([]string{x, w}, bias), o.attrs(false)...)
}

// ConvTranspose appends a transposed convolution; bias may be "".
func (b *Builder) ConvTranspose(x, w, bias string, o ConvOpts) string {
	return b.Op("ConvTranspose", withOptional([]string{x, w}, bias), o.attrs(true)...)
}

// GemmOpts are Gemm attributes. Alpha and Beta of 0 mean the ONNX default 1.
type GemmOpts struct {
	TransA, TransB bool
	Alpha, Beta    float32
}

// Gemm appends alpha·A'·B' + beta·C; c may be "".
func (b *Builder) Gemm(a, bm, c string, o GemmOpts) string {
	var attrs []*Attribute
	if o.TransA {
		attrs = append(attrs, IntAttr("transA", 1))
	}
	if o.TransB {
		attrs = append(attrs, IntAttr("transB", 1))
	}
	if o.Alpha != 0 && o.Alpha != 1 {
		attrs = append(attrs, FloatAttr("alpha", o.Alpha))
	}
	if o.Beta != 0 && o.Beta != 1 {
		attrs = append(attrs, FloatAttr("beta", o.Beta))
	}
	return b.Op("Gemm", withOptional([]string{a, bm}, c), attrs...)
}

// MatMul appends a matrix product.
func (b *Builder) MatMul(x, y string) string { return b.Op("MatMul", []string{x, y}) }

// Add appends x + y (with broadcasting).
func (b *Builder) Add(x, y string) string { return b.Op("Add", []string{x, y}) }

// Sub appends x − y.
func (b *Builder) Sub(x, y string) string { return b.Op("Sub", []string{x, y}) }

// Mul appends x · y.
func (b *Builder) Mul(x, y string) string { return b.Op("Mul", []string{x, y}) }

// Div appends x / y.
func (b *Builder) Div(x, y string) string { return b.Op("Div", []string{x, y}) }

// Relu appends max(x, 0).
func (b *Builder) Relu(x string) string { return b.Op("Relu", []string{x}) }

// LeakyRelu appends x for x > 0, alpha·x otherwise.
func (b *Builder) LeakyRelu(x string, alpha float32) string {
	return b.Op("LeakyRelu", []string{x}, FloatAttr("alpha", alpha))
}

// Sigmoid appends 1/(1+e^−x).
func (b *Builder) Sigmoid(x string) string { return b.Op("Sigmoid", []string{x}) }

// Tanh appends tanh(x).
func (b *Builder) Tanh(x string) string { return b.Op("Tanh", []string{x}) }

// Identity appends a copy of x.
func (b *Builder) Identity(x string) string { return b.Op("Identity", []string{x}) }

// BatchNorm appends eval-form batch normalisation.
func (b *Builder) BatchNorm(x, scale, bias, mean, variance string, epsilon, momentum float32) string {
	return b.Op("BatchNormalization", []string{x, scale, bias, mean, variance},
		FloatAttr("epsilon", epsilon), FloatAttr("momentum", momentum))
}

// PoolOpts are MaxPool / AveragePool attributes.
type PoolOpts struct {
	Kernel, Strides, Pads, Dilations []int64
	CeilMode                         bool
	CountIncludePad                  bool
	AutoPad                          string
}

func (o PoolOpts) attrs(avg bool) []*Attribute {
	a := []*Attribute{IntsAttr("kernel_shape", o.Kernel...)}
	if len(o.Strides) > 0 {
		a = append(a, IntsAttr("strides", o.Strides...))
	}
	if len(o.Pads) > 0 {
		a = append(a, IntsAttr("pads", o.Pads...))
	}
	if !avg && len(o.Dilations) > 0 {
		a = append(a, IntsAttr("dilations", o.Dilations...))
	}
	if o.CeilMode {
		a = append(a, IntAttr("ceil_mode", 1))
	}
	if avg && o.CountIncludePad {
		a = append(a, IntAttr("count_include_pad", 1))
	}
	if o.AutoPad != "" && o.AutoPad != "NOTSET" {
		a = append(a, StringAttr("auto_pad", o.AutoPad))
	}
	return a
}

// MaxPool appends max pooling.
func (b *Builder) MaxPool(x string, o PoolOpts) string {
	return b.Op("MaxPool", []string{x}, o.attrs(false)...)
}

// AveragePool appends average pooling.
func (b *Builder) AveragePool(x string, o PoolOpts) string {
	return b.Op("AveragePool", []string{x}, o.attrs(true)...)
}

// GlobalAveragePool appends a mean over all spatial axes.
func (b *Builder) GlobalAveragePool(x string) string { return b.Op("GlobalAveragePool", []string{x}) }

// Flatten appends a reshape to 2-D at axis.
func (b *Builder) Flatten(x string, axis int64) string {
	return b.Op("Flatten", []string{x}, IntAttr("axis", axis))
}

// Reshape appends a reshape to the shape held by the int64 value shape.
func (b *Builder) Reshape(x, shape string) string { return b.Op("Reshape", []string{x, shape}) }

// ReshapeTo appends a reshape to constant dims (0 copies, −1 infers).
func (b *Builder) ReshapeTo(x string, dims ...int64) string {
	return b.Reshape(x, b.ConstInt64(dims...))
}

// Transpose appends a transpose with the given permutation.
func (b *Builder) Transpose(x string, perm ...int64) string {
	return b.Op("Transpose", []string{x}, IntsAttr("perm", perm...))
}

// Concat appends a concatenation along axis.
func (b *Builder) Concat(axis int64, xs ...string) string {
	return b.Op("Concat", xs, IntAttr("axis", axis))
}

// Softmax appends a softmax along axis.
func (b *Builder) Softmax(x string, axis int64) string {
	return b.Op("Softmax", []string{x}, IntAttr("axis", axis))
}

// LogSoftmax appends a log-softmax along axis.
func (b *Builder) LogSoftmax(x string, axis int64) string {
	return b.Op("LogSoftmax", []string{x}, IntAttr("axis", axis))
}

// Clip appends clamping to [min, max]; either bound may be "".
func (b *Builder) Clip(x, min, max string) string {
	in := []string{x, min, max}
	for len(in) > 1 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	return b.Op("Clip", in)
}

// ReduceSum appends a sum over axes (all axes when axes is empty).
func (b *Builder) ReduceSum(x string, axes []int64, keepDims bool) string {
	in := []string{x}
	if len(axes) > 0 {
		in = append(in, b.ConstInt64(axes...))
	}
	return b.Op("ReduceSum", in, IntAttr("keepdims", boolInt(keepDims)))
}

// ReduceMean appends a mean over axes (all axes when axes is empty), using
// the axes attribute before opset 18 and the axes input from 18 on.
func (b *Builder) ReduceMean(x string, axes []int64, keepDims bool) string {
	attrs := []*Attribute{IntAttr("keepdims", boolInt(keepDims))}
	in := []string{x}
	if len(axes) > 0 {
		if b.Opset >= 18 {
			in = append(in, b.ConstInt64(axes...))
		} else {
			attrs = append(attrs, IntsAttr("axes", axes...))
		}
	}
	return b.Op("ReduceMean", in, attrs...)
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

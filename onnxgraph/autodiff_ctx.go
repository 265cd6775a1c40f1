package onnxgraph

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// gradCtx is what a rule sees: the forward node, the gradients of its
// outputs and helpers to emit backward nodes.
type gradCtx struct {
	*autodiff
	n    *Node
	gOut []string
}

// in returns the name of input i ("" when absent).
func (c *gradCtx) in(i int) string { return c.n.Input(i) }

// out returns the name of output i ("" when absent).
func (c *gradCtx) out(i int) string {
	if i < len(c.n.Outputs) {
		return c.n.Outputs[i]
	}
	return ""
}

// dy returns the gradient of output i, or "" when no gradient flows into it.
func (c *gradCtx) dy(i int) string {
	if i < len(c.gOut) {
		return c.gOut[i]
	}
	return ""
}

// needs reports whether input i is present and needs a gradient.
func (c *gradCtx) needs(i int) bool {
	in := c.in(i)
	return in != "" && c.fwd[in]
}

// setGrad adds g to the gradient of input i.
func (c *gradCtx) setGrad(i int, g string) {
	if g != "" && c.needs(i) {
		in := c.in(i)
		c.grads[in] = append(c.grads[in], g)
	}
}

// save records a value computed by the prepare hook for the grad rule.
func (c *gradCtx) save(key, value string) {
	if c.saved[c.n] == nil {
		c.saved[c.n] = map[string]string{}
	}
	c.saved[c.n][key] = value
}

// op appends a single-output node and returns its output.
func (ad *autodiff) op(opType string, inputs []string, attrs ...*Attribute) string {
	return ad.b.Op(opType, inputs, attrs...)
}

// shape returns the static shape of value v, nil when unknown.
func (ad *autodiff) shape(v string) Shape {
	if t := ad.types[v]; t != nil {
		return t.Shape
	}
	return nil
}

// rank returns the rank of v, or an error when it is unknown.
func (ad *autodiff) rank(v string) (int, error) {
	s := ad.shape(v)
	if s == nil {
		return 0, fmt.Errorf("rank of %q is unknown", v)
	}
	return len(s), nil
}

// axisOf returns the node's "axis" attribute (default def) normalised
// for v's rank, with that rank.
func (ad *autodiff) axisOf(n *Node, v string, def int64) (axis, rank int, err error) {
	if rank, err = ad.rank(v); err != nil {
		return 0, 0, err
	}
	axis, err = normAxis(n.AttrInt("axis", def), rank)
	return axis, rank, err
}

// staticDims returns v's dimensions, which must all be known except those
// listed in allowSymbolic (returned as −1).
func (ad *autodiff) staticDims(v string, allowSymbolic ...int) ([]int64, error) {
	s := ad.shape(v)
	if s == nil {
		return nil, fmt.Errorf("shape of %q is unknown", v)
	}
	for i, d := range s {
		if !d.Known() && !slices.Contains(allowSymbolic, i) {
			return nil, fmt.Errorf("dimension %d of %q (%v) must be static", i, v, s)
		}
	}
	return s.Ints(), nil
}

// tensor returns a constant of the gradients' element type.
func (ad *autodiff) tensor(dims []int64, values []float64) *Tensor {
	if ad.elem == Double {
		return NewDoubleTensor("", dims, values)
	}
	f := make([]float32, len(values))
	for i, v := range values {
		f[i] = float32(v)
	}
	return NewFloatTensor("", dims, f)
}

// constTensor adds an initializer of the gradients' element type.
func (ad *autodiff) constTensor(dims []int64, values []float64) string {
	return ad.b.Initializer(ad.tensor(dims, values))
}

// scalar returns a rank-0 constant v of the gradients' element type.
func (ad *autodiff) scalar(v float64) string {
	key := "s" + strconv.FormatFloat(v, 'g', -1, 64)
	if name, ok := ad.constCache[key]; ok {
		return name
	}
	name := ad.constTensor([]int64{}, []float64{v})
	ad.constCache[key] = name
	return name
}

// constFill returns a constant of the given known shape filled with v.
func (ad *autodiff) constFill(v float64, s Shape) string {
	dims := s.Ints()
	vals := make([]float64, max(s.Size(), 0))
	for i := range vals {
		vals[i] = v
	}
	return ad.constTensor(dims, vals)
}

// ints returns a 1-D int64 constant.
func (ad *autodiff) ints(vs ...int64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v, 10)
	}
	key := "i" + strings.Join(parts, ",")
	if name, ok := ad.constCache[key]; ok {
		return name
	}
	name := ad.b.ConstInt64(vs...)
	ad.constCache[key] = name
	return name
}

// shapeOf returns an int64 value holding v's shape: a constant when the
// shape is static, else a Shape node.
func (ad *autodiff) shapeOf(v string) string {
	if name, ok := ad.shapeCache[v]; ok {
		return name
	}
	var name string
	if s := ad.shape(v); s.Known() {
		name = ad.ints(s.Ints()...)
	} else {
		name = ad.op("Shape", []string{v})
	}
	ad.shapeCache[v] = name
	return name
}

// zerosLike returns zeros of v's shape in the gradients' element type.
func (ad *autodiff) zerosLike(v string) string {
	zero := ad.tensor([]int64{1}, []float64{0})
	return ad.op("ConstantOfShape", []string{ad.shapeOf(v)}, TensorAttr("value", zero))
}

// reduce appends a reduction over axes, with axes as an attribute or an
// input as the model's opset requires.
func (ad *autodiff) reduce(opType, x string, axes []int64, keep bool) string {
	attrs := []*Attribute{IntAttr("keepdims", boolInt(keep))}
	in := []string{x}
	inputFrom := int64(18)
	if opType == "ReduceSum" {
		inputFrom = 13
	}
	if ad.b.Opset >= inputFrom {
		in = append(in, ad.ints(axes...))
	} else {
		attrs = append(attrs, IntsAttr("axes", axes...))
	}
	return ad.op(opType, in, attrs...)
}

// squeeze removes the given axes (of size 1).
func (ad *autodiff) squeeze(x string, axes ...int64) string {
	return ad.op("Squeeze", []string{x, ad.ints(axes...)})
}

// unsqueeze inserts size-1 axes.
func (ad *autodiff) unsqueeze(x string, axes ...int64) string {
	return ad.op("Unsqueeze", []string{x, ad.ints(axes...)})
}

// reshapeLike reshapes g to the shape of v.
func (ad *autodiff) reshapeLike(g, v string) string {
	return ad.op("Reshape", []string{g, ad.shapeOf(v)})
}

// sameDim reports whether two dimensions are certainly equal.
func sameDim(a, b Dim) bool {
	if a.Known() && b.Known() {
		return a.Value == b.Value
	}
	return a.Param != "" && a.Param == b.Param
}

// reduceTo sums g, a gradient shaped like out (the broadcast of x with
// other operands), down to x's shape: the axes that broadcasting added in
// front are summed away and the axes where x has size 1 are summed with
// keepdims.
func (ad *autodiff) reduceTo(g, x, out string) (string, error) {
	return ad.reduceShapes(g, ad.shape(x), ad.shape(out))
}

// reduceShapes sums g, of shape os, down to the shape xs that was
// broadcast to os.
func (ad *autodiff) reduceShapes(g string, xs, os Shape) (string, error) {
	if xs == nil || os == nil || len(xs) > len(os) {
		return "", fmt.Errorf("cannot reduce a gradient of shape %v to shape %v", os, xs)
	}
	lead := len(os) - len(xs)
	var inner []int64
	for i, xd := range xs {
		od := os[lead+i]
		switch {
		case sameDim(xd, od):
		case xd.Known() && xd.Value == 1:
			inner = append(inner, int64(lead+i))
		default:
			return "", fmt.Errorf("cannot tell whether shape %v is broadcast to %v", xs, os)
		}
	}
	leading := make([]int64, lead)
	for i := range leading {
		leading[i] = int64(i)
	}
	switch {
	case lead == 0 && len(inner) == 0:
		return g, nil
	case len(inner) == 0:
		return ad.reduce("ReduceSum", g, leading, false), nil
	}
	r := ad.reduce("ReduceSum", g, append(leading, inner...), true)
	if lead > 0 {
		r = ad.squeeze(r, leading...)
	}
	return r, nil
}

// constInts returns the value of an integer constant (an initializer or a
// Constant node's output).
func (ad *autodiff) constInts(v string) ([]int64, bool) {
	if t := ad.constTensorOf(v); t != nil {
		if vals, err := t.Int64s(); err == nil {
			return vals, true
		}
	}
	return nil, false
}

// constFloats returns the value of a floating-point constant.
func (ad *autodiff) constFloats(v string) ([]float64, bool) {
	if t := ad.constTensorOf(v); t != nil {
		if vals, err := t.Float64s(); err == nil {
			return vals, true
		}
	}
	return nil, false
}

// constTensorOf returns the tensor of an initializer or Constant output.
func (ad *autodiff) constTensorOf(v string) *Tensor {
	if v == "" {
		return nil
	}
	if t := ad.g.Initializer(v); t != nil && ad.g.Input(v) == nil {
		return t
	}
	if p := ad.producers[v]; p != nil && p.OpType == "Constant" {
		if a := p.Attr("value"); a != nil && a.Tensor != nil {
			return a.Tensor
		}
		if a := p.Attr("value_ints"); a != nil {
			return NewInt64Tensor("", []int64{int64(len(a.Ints))}, a.Ints)
		}
		if a := p.Attr("value_int"); a != nil {
			return NewInt64Tensor("", []int64{}, []int64{a.Int})
		}
		if a := p.Attr("value_float"); a != nil {
			return NewFloatTensor("", []int64{}, []float32{a.Float})
		}
	}
	return nil
}

// axesAttrOrInput returns a node's axes: the attribute, or the constant
// input i; ok is false when the input is not constant.
func (c *gradCtx) axesAttrOrInput(i int) (axes []int64, ok bool) {
	if a := c.n.Attr("axes"); a != nil {
		return a.Ints, true
	}
	if c.in(i) == "" {
		return nil, true
	}
	return c.constInts(c.in(i))
}

// normAxes converts axes to [0, rank).
func normAxes(axes []int64, rank int) ([]int64, error) {
	out := make([]int64, len(axes))
	for i, a := range axes {
		k, err := normAxis(a, rank)
		if err != nil {
			return nil, err
		}
		out[i] = int64(k)
	}
	return out, nil
}

// iota64 returns [from, from+1, ..., to).
func iota64(from, to int) []int64 {
	out := make([]int64, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		out = append(out, int64(i))
	}
	return out
}

// The rule vocabulary: one backward node each, named after the maths, so
// that rules read like their formulas (JAX's defjvp and tinygrad's gradient
// table are the models).

func (ad *autodiff) add(a, b string) string { return ad.op("Add", []string{a, b}) }
func (ad *autodiff) sub(a, b string) string { return ad.op("Sub", []string{a, b}) }
func (ad *autodiff) mul(a, b string) string { return ad.op("Mul", []string{a, b}) }
func (ad *autodiff) div(a, b string) string { return ad.op("Div", []string{a, b}) }
func (ad *autodiff) neg(a string) string    { return ad.op("Neg", []string{a}) }
func (ad *autodiff) exp(a string) string    { return ad.op("Exp", []string{a}) }
func (ad *autodiff) sqr(a string) string    { return ad.mul(a, a) }

// where selects a where cond holds, else b.
func (ad *autodiff) where(cond, a, b string) string { return ad.op("Where", []string{cond, a, b}) }

// cast converts a bool or numeric value to the gradients' element type.
func (ad *autodiff) cast(a string) string {
	return ad.op("Cast", []string{a}, IntAttr("to", int64(ad.elem)))
}

// mean reduces over axes, keeping them.
func (ad *autodiff) mean(x string, axes []int64) string {
	return ad.reduce("ReduceMean", x, axes, true)
}

// dx adds the gradient of a unary node's input: dy·∂y/∂x, with the
// derivative built by deriv only when the input needs a gradient.
func (c *gradCtx) dx(deriv func() string) {
	if c.needs(0) {
		c.setGrad(0, c.mul(c.dy(0), deriv()))
	}
}

// dxTo adds g, a gradient of input i shaped like output 0, summed back to
// input i's shape (broadcasting).
func (c *gradCtx) dxTo(i int, g string) error {
	r, err := c.reduceTo(g, c.in(i), c.out(0))
	if err != nil {
		return err
	}
	c.setGrad(i, r)
	return nil
}

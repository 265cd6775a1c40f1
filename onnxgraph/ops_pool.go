package onnxgraph

import (
	"fmt"
	"slices"
)

// Pooling operators.

func poolOps() map[string]*opDef {
	return map[string]*opDef{
		"MaxPool":           {shape: (*shapeState).window, grad: maxPoolGrad, prepare: maxPoolPrepare},
		"AveragePool":       {shape: (*shapeState).window, grad: avgPoolGrad},
		"LpPool":            {shape: (*shapeState).window},
		"GlobalAveragePool": {shape: globalPoolShape, grad: globalAvgPoolGrad},
		"GlobalMaxPool":     {shape: globalPoolShape, grad: globalMaxPoolGrad},
		"GlobalLpPool":      {shape: globalPoolShape},
	}
}

func globalPoolShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	out := slices.Clone(xs)
	for i := 2; i < len(out); i++ {
		out[i] = D(1)
	}
	s.set(n, 0, xe, out)
	return nil
}

// Gradient rules of pooling operators.

// tiles reports whether the pooling windows tile the input: kernel =
// stride, no padding, no dilation (the input may have a remainder that the
// floor-mode output ignores).
func (w *window) tiles(ceil bool) bool {
	for i := range w.kernel {
		if w.kernel[i] != w.strides[i] || w.dilations[i] != 1 || w.padBegin[i] != 0 || w.padEnd[i] != 0 {
			return false
		}
		if w.out[i]*w.kernel[i] != w.in[i] && (ceil || w.out[i]*w.kernel[i] > w.in[i]) {
			return false
		}
	}
	return true
}

// poolWindow resolves a pooling node's window.
func (c *gradCtx) poolWindow() (*window, error) {
	w, err := c.nodeWindow(c.in(0), c.out(0), nil)
	if err != nil {
		return nil, err
	}
	if c.n.OpType == "AveragePool" && slices.ContainsFunc(w.dilations, func(d int64) bool { return d != 1 }) {
		return nil, fmt.Errorf("dilated AveragePool is not supported")
	}
	return w, nil
}

// blockShape returns the shape [0, 0, o₁, b₁, o₂, b₂, ...] that splits each
// spatial axis into (output position, offset in window); b is the kernel or
// 1 when inner is false.
func (w *window) blockShape(inner bool) []int64 {
	s := []int64{0, 0}
	for i := range w.kernel {
		b := int64(1)
		if inner {
			b = w.kernel[i]
		}
		s = append(s, w.out[i], b)
	}
	return s
}

// windowAxes returns the axes of the in-window offsets of blockShape.
func (w *window) windowAxes() []int64 {
	var axes []int64
	for i := range w.kernel {
		axes = append(axes, int64(3+2*i))
	}
	return axes
}

// tiledSize returns the spatial sizes covered by tiling windows.
func (w *window) tiledSize() []int64 {
	s := make([]int64, len(w.kernel))
	for i := range s {
		s[i] = w.out[i] * w.kernel[i]
	}
	return s
}

// untile reshapes a blocked gradient back to the input's layout and pads
// with zeros the remainder rows the pooling ignored.
func (c *gradCtx) untile(w *window, g string) string {
	tiled := w.tiledSize()
	g = c.b.ReshapeTo(g, append([]int64{0, 0}, tiled...)...)
	if slices.Equal(tiled, w.in) {
		return g
	}
	k := len(tiled)
	pads := make([]int64, 2*(k+2))
	for i := range k {
		pads[k+2+2+i] = w.in[i] - tiled[i]
	}
	return c.op("Pad", []string{g, c.ints(pads...)})
}

// tile crops x to the tiled region.
func (c *gradCtx) tile(w *window, x string) string {
	return c.sliceSpatial(x, make([]int64, len(w.kernel)), w.tiledSize(), w.in)
}

// maxPoolPrepare chooses the formulation and, for the scatter form, makes
// MaxPool output its Indices.
func maxPoolPrepare(c *gradCtx) error {
	w, err := c.poolWindow()
	if err != nil {
		return err
	}
	if c.opts.MaxPool == MaxPoolMask && w.tiles(c.n.AttrInt("ceil_mode", 0) != 0) {
		c.save("form", "mask")
		return nil
	}
	if c.n.AttrInt("storage_order", 0) != 0 {
		return fmt.Errorf("storage_order=1 is not supported")
	}
	if c.out(1) == "" {
		idx := c.b.Fresh(c.out(0) + "_indices")
		for len(c.n.Outputs) < 2 {
			c.n.Outputs = append(c.n.Outputs, "")
		}
		c.n.Outputs[1] = idx
		c.types[idx] = &TensorType{Elem: Int64, Shape: c.shape(c.out(0))}
	}
	c.save("form", "scatter")
	return nil
}

// maxPoolGrad routes each output gradient to the input element that was the
// window's maximum (see MaxPoolGrad for the two forms). ONNX Runtime's CPU
// MaxPool with Indices is a scalar loop and its ScatterElements with
// reduction runs on one thread (together 5–7% of the kernel time of
// ResNet-18's input gradient at 64×64, batch 64), but the standard-ONNX
// alternative without Indices measured slower still: a strided Slice per
// window tap, Equal with y, an And/Not/Or chain for the first maximum,
// dy·mask, the taps summed per stride phase and one DepthToSpace took
// about 5× the time of MaxPool-with-Indices + ScatterElements there
// (strided Slices alone 2×).
func maxPoolGrad(c *gradCtx) error {
	x, y, dy := c.in(0), c.out(0), c.dy(0)
	w, err := c.poolWindow()
	if err != nil {
		return err
	}
	if c.saved[c.n]["form"] == "mask" {
		xb := c.b.ReshapeTo(c.tile(w, x), w.blockShape(true)...)
		outShape := w.blockShape(false)
		mask := c.op("Cast", []string{c.op("Equal", []string{xb, c.b.ReshapeTo(y, outShape...)})},
			IntAttr("to", int64(c.elem)))
		count := c.reduce("ReduceSum", mask, w.windowAxes(), true)
		share := c.op("Div", []string{c.b.ReshapeTo(dy, outShape...), count})
		c.setGrad(0, c.untile(w, c.op("Mul", []string{mask, share})))
		return nil
	}
	flatX := c.b.ReshapeTo(x, -1)
	zero := c.tensor([]int64{1}, []float64{0})
	zeros := c.op("ConstantOfShape", []string{c.op("Shape", []string{flatX})}, TensorAttr("value", zero))
	scattered := c.op("ScatterElements",
		[]string{zeros, c.b.ReshapeTo(c.out(1), -1), c.b.ReshapeTo(dy, -1)},
		IntAttr("axis", 0), StringAttr("reduction", "add"))
	c.setGrad(0, c.reshapeLike(scattered, x))
	return nil
}

// avgPoolGrad spreads each output gradient evenly over its window. Tiling
// windows: broadcast dy over window blocks. Otherwise: divide dy by each
// window's element count (a constant map computed here), then a
// ConvTranspose with a kernel of ones over the padded input, batch and
// channels folded together, and a crop to the unpadded input.
func avgPoolGrad(c *gradCtx) error {
	x, dy := c.in(0), c.dy(0)
	w, err := c.poolWindow()
	if err != nil {
		return err
	}
	k := len(w.kernel)
	size := int64(1)
	for _, v := range w.kernel {
		size *= v
	}
	if w.tiles(c.n.AttrInt("ceil_mode", 0) != 0) {
		scaled := c.op("Mul", []string{c.b.ReshapeTo(dy, w.blockShape(false)...), c.scalar(1 / float64(size))})
		expand := append([]int64{1, 1}, w.blockShape(true)[2:]...)
		for i := range k {
			expand[2+2*i] = 1
		}
		c.setGrad(0, c.untile(w, c.op("Expand", []string{scaled, c.ints(expand...)})))
		return nil
	}
	counts, uniform := avgPoolCounts(w, c.n.AttrInt("count_include_pad", 0) != 0)
	var scaled string
	if uniform {
		scaled = c.op("Mul", []string{dy, c.scalar(1 / counts[0])})
	} else {
		inv := make([]float64, len(counts))
		for i, v := range counts {
			inv[i] = 1 / v
		}
		scaled = c.op("Mul", []string{dy, c.constTensor(w.out, inv)})
	}
	folded := c.b.ReshapeTo(scaled, append([]int64{-1, 1}, w.out...)...)
	ones := make([]float64, size)
	for i := range ones {
		ones[i] = 1
	}
	kernel := c.constTensor(append([]int64{1, 1}, w.kernel...), ones)
	full, outPad := make([]int64, k), make([]int64, k)
	for i := range k {
		reach := (w.out[i]-1)*w.strides[i] + w.kernel[i]
		outPad[i] = max(0, w.padBegin[i]+w.in[i]+w.padEnd[i]-reach)
		full[i] = reach + outPad[i]
	}
	spread := c.b.ConvTranspose(folded, kernel, "", ConvOpts{Strides: w.strides, OutputPadding: outPad})
	c.setGrad(0, c.reshapeLike(c.sliceSpatial(spread, w.padBegin, w.in, full), x))
	return nil
}

// avgPoolCounts returns the divisor of every output position (row-major over
// the output's spatial axes) and whether they are all equal. A window
// counts the padded positions it covers when includePad is set, never
// positions past the end padding (ceil mode).
func avgPoolCounts(w *window, includePad bool) ([]float64, bool) {
	k := len(w.kernel)
	per := make([][]float64, k)
	for i := range k {
		per[i] = make([]float64, w.out[i])
		for o := range w.out[i] {
			start := o*w.strides[i] - w.padBegin[i]
			end := min(start+w.kernel[i], w.in[i]+w.padEnd[i])
			if !includePad {
				start, end = max(start, 0), min(end, w.in[i])
			}
			per[i][o] = float64(end - start)
		}
	}
	counts := []float64{1}
	for i := range k {
		next := make([]float64, 0, len(counts)*len(per[i]))
		for _, a := range counts {
			for _, b := range per[i] {
				next = append(next, a*b)
			}
		}
		counts = next
	}
	uniform := !slices.ContainsFunc(counts, func(v float64) bool { return v != counts[0] })
	return counts, uniform
}

func globalAvgPoolGrad(c *gradCtx) error {
	xd, err := c.staticDims(c.in(0), 0, 1)
	if err != nil {
		return err
	}
	n := int64(1)
	for _, d := range xd[2:] {
		n *= d
	}
	scaled := c.op("Mul", []string{c.dy(0), c.scalar(1 / float64(n))})
	c.setGrad(0, c.op("Expand", []string{scaled, c.shapeOf(c.in(0))}))
	return nil
}

func globalMaxPoolGrad(c *gradCtx) error {
	r, err := c.rank(c.in(0))
	if err != nil {
		return err
	}
	mask := c.op("Cast", []string{c.op("Equal", []string{c.in(0), c.out(0)})}, IntAttr("to", int64(c.elem)))
	count := c.reduce("ReduceSum", mask, spatialAxes(r-2), true)
	c.setGrad(0, c.op("Mul", []string{mask, c.op("Div", []string{c.dy(0), count})}))
	return nil
}

package onnxgraph

import (
	"fmt"
	"math"
)

// Gradient rules of operators that move data without arithmetic.

// reshapeGrad covers Flatten, Reshape, Squeeze and Unsqueeze: the gradient
// is reshaped back to the input's shape.
func reshapeGrad(c *gradCtx) error {
	c.setGrad(0, c.reshapeLike(c.dy(0), c.in(0)))
	return nil
}

func transposeGrad(c *gradCtx) error {
	r, err := c.rank(c.in(0))
	if err != nil {
		return err
	}
	perm := c.n.AttrInts("perm", nil)
	if perm == nil {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	c.setGrad(0, c.b.Transpose(c.dy(0), inv...))
	return nil
}

// axisSize returns the static size of v along axis.
func (c *gradCtx) axisSize(v string, axis int) (int64, error) {
	s := c.shape(v)
	if s == nil || axis >= len(s) || !s[axis].Known() {
		return 0, fmt.Errorf("size of %q along axis %d must be static (shape %v)", v, axis, s)
	}
	return s[axis].Value, nil
}

func concatGrad(c *gradCtx) error {
	r, err := c.rank(c.out(0))
	if err != nil {
		return err
	}
	axis, err := normAxis(c.n.AttrInt("axis", 0), r)
	if err != nil {
		return err
	}
	sizes := make([]int64, len(c.n.Inputs))
	for i, in := range c.n.Inputs {
		if sizes[i], err = c.axisSize(in, axis); err != nil {
			return err
		}
	}
	parts := c.b.Node("Split", []string{c.dy(0), c.ints(sizes...)}, len(sizes), IntAttr("axis", int64(axis)))
	for i, p := range parts {
		c.setGrad(i, p)
	}
	return nil
}

func splitGrad(c *gradCtx) error {
	r, err := c.rank(c.in(0))
	if err != nil {
		return err
	}
	axis, err := normAxis(c.n.AttrInt("axis", 0), r)
	if err != nil {
		return err
	}
	parts := make([]string, len(c.n.Outputs))
	for i, o := range c.n.Outputs {
		parts[i] = c.dy(i)
		if parts[i] == "" {
			parts[i] = c.zerosLike(o)
		}
	}
	c.setGrad(0, c.b.Concat(int64(axis), parts...))
	return nil
}

// sliceGrad pads the gradient with zeros back to the input's extent (unit
// steps only).
func sliceGrad(c *gradCtx) error {
	x := c.in(0)
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	var params [4][]int64
	for i := range params {
		if c.in(1+i) == "" {
			continue
		}
		v, ok := c.constInts(c.in(1 + i))
		if !ok {
			return fmt.Errorf("input %d (%q) must be a constant", 1+i, c.in(1+i))
		}
		params[i] = v
	}
	starts, ends, axes, steps := params[0], params[1], params[2], params[3]
	if axes == nil {
		axes = iota64(0, len(starts))
	}
	pads := make([]int64, 2*r)
	for i, a := range axes {
		if steps != nil && steps[i] != 1 {
			return fmt.Errorf("steps %v: only unit steps are supported", steps)
		}
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		dim, err := c.axisSize(x, ax)
		if err != nil {
			return err
		}
		begin := clampIndex(starts[i], dim)
		n := SliceLen(dim, starts[i], ends[i], 1)
		pads[ax], pads[r+ax] = begin, dim-begin-n
	}
	c.setGrad(0, c.op("Pad", []string{c.dy(0), c.ints(pads...)}))
	return nil
}

// clampIndex converts a Slice start to [0, dim].
func clampIndex(v, dim int64) int64 {
	if v < 0 {
		v += dim
	}
	return min(max(v, 0), dim)
}

// padGrad crops the gradient to the unpadded input (constant mode,
// non-negative pads).
func padGrad(c *gradCtx) error {
	if mode := c.n.AttrString("mode", "constant"); mode != "constant" {
		return fmt.Errorf("mode %q: only constant padding is differentiable here", mode)
	}
	if c.needs(2) {
		return fmt.Errorf("the gradient of the padding value is not supported")
	}
	pads, ok := c.constInts(c.in(1))
	if !ok {
		return fmt.Errorf("pads %q must be a constant", c.in(1))
	}
	r, err := c.rank(c.in(0))
	if err != nil {
		return err
	}
	axes := iota64(0, r)
	if c.in(3) != "" {
		if axes, ok = c.constInts(c.in(3)); !ok {
			return fmt.Errorf("axes %q must be a constant", c.in(3))
		}
	}
	if axes, err = normAxes(axes, r); err != nil {
		return err
	}
	var starts, ends, sliceAxes []int64
	for i, ax := range axes {
		begin, end := pads[i], pads[i+len(axes)]
		if begin < 0 || end < 0 {
			return fmt.Errorf("negative pads %v are not supported", pads)
		}
		if begin == 0 && end == 0 {
			continue
		}
		stop := int64(math.MaxInt64)
		if end > 0 {
			stop = -end
		}
		starts, ends, sliceAxes = append(starts, begin), append(ends, stop), append(sliceAxes, ax)
	}
	g := c.dy(0)
	if len(sliceAxes) > 0 {
		g = c.op("Slice", []string{g, c.ints(starts...), c.ints(ends...), c.ints(sliceAxes...)})
	}
	c.setGrad(0, g)
	return nil
}

// gatherGrad scatters the gradient back to the gathered rows of the data
// (axis 0): ScatterND(zeros, indices, dy, reduction=add).
func gatherGrad(c *gradCtx) error {
	r, err := c.rank(c.in(0))
	if err != nil {
		return err
	}
	if axis, err := normAxis(c.n.AttrInt("axis", 0), r); err != nil || axis != 0 {
		return fmt.Errorf("only Gather on axis 0 is differentiable here")
	}
	idx := c.unsqueeze(c.in(1), -1)
	c.setGrad(0, c.op("ScatterND", []string{c.zerosLike(c.in(0)), idx, c.dy(0)},
		StringAttr("reduction", "add")))
	return nil
}

// tileGrad sums the gradient over the tiles: dy is viewed as
// [r₀, d₀, r₁, d₁, ...] and summed over the repeat axes.
func tileGrad(c *gradCtx) error {
	x := c.in(0)
	xd, err := c.staticDims(x)
	if err != nil {
		return err
	}
	reps, ok := c.constInts(c.in(1))
	if !ok || len(reps) != len(xd) {
		return fmt.Errorf("repeats %q must be a constant of length %d", c.in(1), len(xd))
	}
	var split, axes []int64
	for i, d := range xd {
		split = append(split, reps[i], d)
		axes = append(axes, int64(2*i))
	}
	g := c.reduce("ReduceSum", c.b.ReshapeTo(c.dy(0), split...), axes, false)
	c.setGrad(0, g)
	return nil
}

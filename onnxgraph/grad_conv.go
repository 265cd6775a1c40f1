package onnxgraph

import (
	"fmt"
	"slices"
)

// Gradient rules of Conv and ConvTranspose (any number of spatial axes).

// window holds the resolved attributes of a convolution or pooling node.
type window struct {
	kernel, strides, dilations []int64
	padBegin, padEnd           []int64
	in, out                    []int64 // spatial sizes of input and output
	group                      int64
}

// spatial returns the number of spatial axes.
func (w *window) spatial() int { return len(w.kernel) }

// symmetric reports whether begin and end pads are equal on every axis.
func (w *window) symmetric() bool { return slices.Equal(w.padBegin, w.padEnd) }

// pads returns the ONNX pads attribute value.
func (w *window) pads() []int64 { return append(slices.Clone(w.padBegin), w.padEnd...) }

// effKernel returns the dilated kernel extent on axis i.
func (w *window) effKernel(i int) int64 { return (w.kernel[i]-1)*w.dilations[i] + 1 }

// nodeWindow resolves the window attributes of a Conv, ConvTranspose or
// pooling node whose input x and output y have static spatial sizes.
// kernel is the kernel size (from the weight for convolutions).
func (c *gradCtx) nodeWindow(x, y string, kernel []int64) (*window, error) {
	xd, err := c.staticDims(x, 0, 1)
	if err != nil {
		return nil, err
	}
	yd, err := c.staticDims(y, 0, 1)
	if err != nil {
		return nil, err
	}
	k := len(xd) - 2
	w := &window{
		kernel:    c.n.AttrInts("kernel_shape", kernel),
		strides:   c.n.AttrInts("strides", ones(k)),
		dilations: c.n.AttrInts("dilations", ones(k)),
		in:        xd[2:], out: yd[2:],
		group: c.n.AttrInt("group", 1),
	}
	pads := c.n.AttrInts("pads", make([]int64, 2*k))
	if len(w.kernel) != k || len(w.strides) != k || len(w.dilations) != k || len(pads) != 2*k {
		return nil, fmt.Errorf("attributes do not match %d spatial axes", k)
	}
	w.padBegin, w.padEnd = slices.Clone(pads[:k]), slices.Clone(pads[k:])
	switch ap := c.n.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET":
	case "VALID":
		clear(w.padBegin)
		clear(w.padEnd)
	case "SAME_UPPER", "SAME_LOWER":
		if c.n.OpType == "ConvTranspose" {
			return nil, fmt.Errorf("auto_pad %s is not supported for ConvTranspose gradients", ap)
		}
		for i := range k {
			total := max(0, (w.out[i]-1)*w.strides[i]+w.effKernel(i)-w.in[i])
			small, big := total/2, total-total/2
			w.padBegin[i], w.padEnd[i] = small, big
			if ap == "SAME_LOWER" {
				w.padBegin[i], w.padEnd[i] = big, small
			}
		}
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return w, nil
}

// spatialAxes returns [2, 3, ..., 2+k).
func spatialAxes(k int) []int64 { return iota64(2, 2+k) }

// swapFirst returns the permutation exchanging axes 0 and 1 of a rank-r
// tensor.
func swapFirst(r int) []int64 {
	p := iota64(0, r)
	p[0], p[1] = 1, 0
	return p
}

// sliceSpatial crops the spatial axes of v to [begin, begin+size) where
// that differs from the full extent full.
func (c *gradCtx) sliceSpatial(v string, begin, size, full []int64) string {
	var starts, ends, axes []int64
	for i := range begin {
		if begin[i] == 0 && size[i] == full[i] {
			continue
		}
		starts = append(starts, begin[i])
		ends = append(ends, begin[i]+size[i])
		axes = append(axes, int64(2+i))
	}
	if len(axes) == 0 {
		return v
	}
	return c.op("Slice", []string{v, c.ints(starts...), c.ints(ends...), c.ints(axes...)})
}

func convGrad(c *gradCtx) error {
	x, wt, dy := c.in(0), c.in(1), c.dy(0)
	wd, err := c.staticDims(wt)
	if err != nil {
		return err
	}
	w, err := c.nodeWindow(x, c.out(0), wd[2:])
	if err != nil {
		return err
	}
	if c.needs(0) {
		c.setGrad(0, convInputGrad(c, w, dy, wt))
	}
	if c.needs(1) {
		c.setGrad(1, convWeightGrad(c, w, x, dy, wd))
	}
	if c.needs(2) {
		c.setGrad(2, c.reduce("ReduceSum", dy, append([]int64{0}, spatialAxes(w.spatial())...), false))
	}
	return nil
}

// convInputGrad is the adjoint of the convolution: a ConvTranspose of dy
// with the same weight, strides, dilations and group. output_padding
// restores the input rows the forward strides skipped. Asymmetric pads are
// cropped with a Slice (ConvTranspose with pads 0), as the CUDA provider has
// no asymmetric ConvTranspose.
func convInputGrad(c *gradCtx, w *window, dy, wt string) string {
	k := w.spatial()
	outPad := make([]int64, k)
	for i := range k {
		outPad[i] = (w.in[i] + w.padBegin[i] + w.padEnd[i] - w.effKernel(i)) % w.strides[i]
	}
	opts := ConvOpts{Strides: w.strides, Dilations: w.dilations, Group: w.group, OutputPadding: outPad}
	if w.symmetric() {
		opts.Pads = w.pads()
		return c.b.ConvTranspose(dy, wt, "", opts)
	}
	full := make([]int64, k)
	for i := range k {
		full[i] = w.in[i] + w.padBegin[i] + w.padEnd[i]
	}
	return c.sliceSpatial(c.b.ConvTranspose(dy, wt, "", opts), w.padBegin, w.in, full)
}

// convWeightGrad correlates the input with dy, batch as the channel axis:
// Conv(xᵀ, dyᵀ) with the forward strides as dilations and the dilations as
// strides, then crops to the kernel size and transposes back. With groups,
// the input is regrouped to [C/g, g·N, ...] so that one grouped Conv does
// every group.
func convWeightGrad(c *gradCtx, w *window, x, dy string, wd []int64) string {
	k := w.spatial()
	r := k + 2
	var xt string
	if w.group == 1 {
		xt = c.b.Transpose(x, swapFirst(r)...)
	} else {
		cg := wd[1]
		split := append([]int64{0, w.group, cg}, w.in...)
		xg := c.b.ReshapeTo(x, split...)
		perm := append([]int64{2, 1, 0}, iota64(3, 3+k)...)
		xt = c.b.ReshapeTo(c.b.Transpose(xg, perm...), append([]int64{cg, -1}, w.in...)...)
	}
	dyt := c.b.Transpose(dy, swapFirst(r)...)
	opts := ConvOpts{Strides: w.dilations, Dilations: w.strides, Pads: w.pads(), Group: w.group}
	corr := c.b.Conv(xt, dyt, "", opts)
	got := make([]int64, k)
	for i := range k {
		span := w.in[i] + w.padBegin[i] + w.padEnd[i] - ((w.out[i]-1)*w.strides[i] + 1)
		got[i] = span/w.dilations[i] + 1
	}
	corr = c.sliceSpatial(corr, make([]int64, k), wd[2:], got)
	return c.b.Transpose(corr, swapFirst(r)...)
}

// convTransposeGrad differentiates ConvTranspose (group 1, explicit pads):
// the input gradient is a Conv of dy with the same attributes, and the
// weight gradient correlates dy with the input, batch as the channel axis.
func convTransposeGrad(c *gradCtx) error {
	x, wt, dy := c.in(0), c.in(1), c.dy(0)
	wd, err := c.staticDims(wt)
	if err != nil {
		return err
	}
	if c.n.Attr("output_shape") != nil {
		return fmt.Errorf("output_shape is not supported; give pads and output_padding")
	}
	w, err := c.nodeWindow(x, c.out(0), wd[2:])
	if err != nil {
		return err
	}
	if w.group != 1 && c.needs(1) {
		return fmt.Errorf("weight gradient of a grouped ConvTranspose is not supported")
	}
	k := w.spatial()
	if c.needs(0) {
		opts := ConvOpts{Strides: w.strides, Dilations: w.dilations, Pads: w.pads(), Group: w.group}
		c.setGrad(0, c.b.Conv(dy, wt, "", opts))
	}
	if c.needs(1) {
		r := k + 2
		dyt := c.b.Transpose(dy, swapFirst(r)...)
		xt := c.b.Transpose(x, swapFirst(r)...)
		opts := ConvOpts{Strides: w.dilations, Dilations: w.strides, Pads: w.pads()}
		corr := c.b.Conv(dyt, xt, "", opts) // [M, C, k']
		got := make([]int64, k)
		for i := range k {
			span := w.out[i] + w.padBegin[i] + w.padEnd[i] - ((w.in[i]-1)*w.strides[i] + 1)
			got[i] = span/w.dilations[i] + 1
		}
		corr = c.sliceSpatial(corr, make([]int64, k), wd[2:], got)
		c.setGrad(1, c.b.Transpose(corr, swapFirst(r)...))
	}
	if c.needs(2) {
		c.setGrad(2, c.reduce("ReduceSum", dy, append([]int64{0}, spatialAxes(k)...), false))
	}
	return nil
}

package onnxgraph

import (
	"fmt"
	"slices"
)

// Conv and ConvTranspose (any number of spatial axes).

func convOps() map[string]*opDef {
	return map[string]*opDef{
		"Conv":          {shape: (*shapeState).window, grad: convGrad, params: []int{1, 2}, decay: []int{1}},
		"ConvTranspose": {shape: (*shapeState).window, grad: convTransposeGrad, params: []int{1, 2}, decay: []int{1}},
	}
}

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
	w, err := windowAttrs(c.n, k, kernel)
	if err != nil {
		return nil, err
	}
	w.in, w.out = xd[2:], yd[2:]
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

// windowAttrs resolves the kernel_shape (kernel when absent: the weight's
// spatial sizes for convolutions), strides, dilations, pads and group
// attributes of a convolution or pooling node with k spatial axes. Shape
// inference and the gradient rules both read windows through it.
func windowAttrs(n *Node, k int, kernel []int64) (*window, error) {
	w := &window{
		kernel:    n.AttrInts("kernel_shape", kernel),
		strides:   n.AttrInts("strides", ones(k)),
		dilations: n.AttrInts("dilations", ones(k)),
		group:     n.AttrInt("group", 1),
	}
	pads := n.AttrInts("pads", make([]int64, 2*k))
	if len(w.kernel) != k || len(w.strides) != k || len(w.dilations) != k || len(pads) != 2*k {
		return nil, fmt.Errorf("kernel_shape %v, strides %v, dilations %v or pads %v do not match %d spatial axes",
			w.kernel, w.strides, w.dilations, pads, k)
	}
	w.padBegin, w.padEnd = slices.Clone(pads[:k]), slices.Clone(pads[k:])
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
		c.setGrad(0, convInputGrad(c, w, dy, wt, wd))
	}
	if c.needs(1) {
		c.setGrad(1, convWeightGrad(c, w, x, dy, wd))
	}
	if c.needs(2) {
		c.setGrad(2, c.reduce("ReduceSum", dy, append([]int64{0}, spatialAxes(w.spatial())...), false))
	}
	return nil
}

// convInputGrad is the adjoint of the convolution. With unit strides it is
// a convolution of dy with the flipped, transposed kernel (see
// flippedInputGrad); otherwise a ConvTranspose (see transposedInputGrad).
func convInputGrad(c *gradCtx, w *window, dy, wt string, wd []int64) string {
	if w.flippable() && convForms.input != inputTransposed {
		return flippedInputGrad(c, w, dy, wt, wd)
	}
	return transposedInputGrad(c, w, dy, wt)
}

// flippable reports whether the input gradient is a plain convolution: unit
// strides and pads no wider than the dilated kernel.
func (w *window) flippable() bool {
	for i := range w.kernel {
		if w.strides[i] != 1 || w.padBegin[i] > w.effKernel(i)-1 || w.padEnd[i] > w.effKernel(i)-1 {
			return false
		}
	}
	return true
}

// flippedInputGrad computes the input gradient of a unit-stride convolution
// as Conv(dy, W') with W' the kernel with its spatial axes reversed and its
// two channel axes swapped (per group), the same dilations and group, and
// pads (k−1)·d − p: every output position of the forward convolution
// reaches back to the inputs it read. ONNX Runtime's CPU ConvTranspose
// runs col2im image by image on one thread; its Conv does the same work in
// 0.5–0.65× the time on PreAct-ResNet18's unit-stride layers (batch 128, 2
// threads). With strides the ConvTranspose stays: the sub-pixel
// decompositions tried (one Conv + DepthToSpace, a Conv per phase,
// zero-insertion + Conv) measured 1.5–3× slower. With constant weights
// (input gradients of frozen classifiers), SpecializeFrozen rewrites the
// ConvTransposes of inputs of at most 4×4 positions as one Conv per phase,
// which measured faster there (see subpixelConvTransposes).
func flippedInputGrad(c *gradCtx, w *window, dy, wt string, wd []int64) string {
	k := w.spatial()
	mg := wd[0] / w.group
	swappedDims := append([]int64{w.group * wd[1], mg}, wd[2:]...)
	var swapped string
	if w.group == 1 {
		swapped = c.b.Transpose(wt, swapFirst(k+2)...)
	} else {
		// [g·Mg, Cg, k...] → [g, Mg, Cg, k...] → [g, Cg, Mg, k...] → [g·Cg, Mg, k...]
		split := c.b.ReshapeTo(wt, append([]int64{w.group, mg, wd[1]}, wd[2:]...)...)
		swapped = c.b.Transpose(split, append([]int64{0, 2, 1}, iota64(3, 3+k)...)...)
	}
	// Reversing the kernel taps is a product with the K×K reversal
	// permutation (K = Πk): faster than a Slice with negative steps, which
	// ONNX Runtime copies element by element.
	kk := w.kernelSize()
	rev := make([]float64, kk*kk)
	for t := range kk {
		rev[t*kk+kk-1-t] = 1
	}
	flipped := c.b.MatMul(c.b.ReshapeTo(swapped, -1, kk), c.constTensor([]int64{kk, kk}, rev))
	pads := make([]int64, 2*k)
	for i := range k {
		pads[i] = w.effKernel(i) - 1 - w.padBegin[i]
		pads[k+i] = w.effKernel(i) - 1 - w.padEnd[i]
	}
	return c.b.Conv(dy, c.b.ReshapeTo(flipped, swappedDims...), "", ConvOpts{Dilations: w.dilations, Pads: pads, Group: w.group})
}

// transposedInputGrad is the adjoint of the convolution as a ConvTranspose
// of dy with the same weight, strides, dilations and group. output_padding
// restores the input rows the forward strides skipped. Asymmetric pads are
// cropped with a Slice (ConvTranspose with pads 0), as the CUDA provider has
// no asymmetric ConvTranspose.
func transposedInputGrad(c *gradCtx, w *window, dy, wt string) string {
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

// weightGradForm is a formulation of the weight gradient.
type weightGradForm int

const (
	weightAuto       weightGradForm = iota
	weightCorrelate                 // Conv of the transposed input with the transposed dy
	weightUnfoldBMM                 // unfold, per-sample MatMul, sum over the batch
	weightUnfoldGemm                // unfold, one Gemm over batch and positions (group 1)
)

// inputGradForm is a formulation of the input gradient.
type inputGradForm int

const (
	inputAuto       inputGradForm = iota
	inputTransposed               // always a ConvTranspose
)

// convForms overrides the automatic choice of formulations; tests set it to
// cover every form.
var convForms struct {
	weight weightGradForm
	input  inputGradForm
}

// unfoldMaxKernel caps the size of the constant unfolding kernel (C·K²
// values) of the unfold forms.
const unfoldMaxKernel = 1 << 22

// kernelSize returns K, the number of kernel taps.
func (w *window) kernelSize() int64 {
	kk := int64(1)
	for _, v := range w.kernel {
		kk *= v
	}
	return kk
}

// positions returns the number of output positions per sample.
func (w *window) positions() int64 {
	p := int64(1)
	for _, v := range w.out {
		p *= v
	}
	return p
}

// weightForm picks the weight-gradient formulation for a convolution with
// weight dims wd. Measured with ONNX Runtime 1.30's CPU provider (2
// threads, batch 128), the unfold forms take 0.25–0.6× the time of the
// correlation form on PreAct-ResNet18's layers and 0.7–0.8× on small-cnn's:
// the correlation form's Conv multiplies [M, N·P] by a skinny [N·P, K]
// matrix once per input channel. The BMM form is best while the
// per-sample products [C·K, M/g] are no larger than the unfolded sample
// [C·K, P]; the Gemm form beyond (few positions, many channels: 0.4× the
// BMM form's time on PreAct-ResNet18's 4×4 layers, the same on its 8×8
// ones).
func weightForm(w *window, wd []int64) weightGradForm {
	cin, mg := wd[1]*w.group, wd[0]/w.group
	kk, p := w.kernelSize(), w.positions()
	form := convForms.weight
	if form == weightAuto {
		form = weightUnfoldBMM
		if p < mg && w.group == 1 {
			form = weightUnfoldGemm
		}
	}
	if form == weightUnfoldGemm && w.group != 1 {
		form = weightUnfoldBMM
	}
	if form != weightCorrelate && cin*kk*kk > unfoldMaxKernel {
		form = weightCorrelate
	}
	return form
}

// convWeightGrad computes ∂L/∂W in the form weightForm picks.
func convWeightGrad(c *gradCtx, w *window, x, dy string, wd []int64) string {
	switch weightForm(w, wd) {
	case weightUnfoldBMM:
		return unfoldWeightGradBMM(c, w, x, dy, wd)
	case weightUnfoldGemm:
		return unfoldWeightGradGemm(c, w, x, dy, wd)
	}
	return correlateWeightGrad(c, w, x, dy, wd)
}

// unfold returns the input's sliding windows (im2col) [N, C·K, positions...]
// as a depthwise Conv of x with a constant one-hot kernel [C·K, 1, k...]:
// output channel c·K + t holds input channel c at kernel tap t, for every
// output position, with the forward strides, pads and dilations. ONNX
// Runtime runs this faster than K strided Slices and a Concat.
func unfold(c *gradCtx, w *window, x string, cin int64) string {
	kk := w.kernelSize()
	if kk == 1 && !slices.ContainsFunc(w.strides, func(s int64) bool { return s != 1 }) &&
		!slices.ContainsFunc(w.pads(), func(p int64) bool { return p != 0 }) {
		return x // a 1×1 unit-stride window is the input itself
	}
	key := fmt.Sprintf("unfold%d:%v", cin, w.kernel)
	eye, ok := c.constCache[key]
	if !ok {
		vals := make([]float64, cin*kk*kk)
		for ch := range cin {
			for t := range kk {
				vals[(ch*kk+t)*kk+t] = 1
			}
		}
		eye = c.constTensor(append([]int64{cin * kk, 1}, w.kernel...), vals)
		c.constCache[key] = eye
	}
	return c.b.Conv(x, eye, "", ConvOpts{Strides: w.strides, Dilations: w.dilations, Pads: w.pads(), Group: cin})
}

// unfoldWeightGradBMM computes ∂L/∂W = Σ_n U_n·dY_nᵀ, with U_n the
// unfolded sample n [C·K, P] and dY_n [M, P], as one batched MatMul over
// samples and groups, U [N, g, Cg·K, P] × dYᵀ [N, g, P, Mg], and a sum over
// the batch.
func unfoldWeightGradBMM(c *gradCtx, w *window, x, dy string, wd []int64) string {
	g, cg, m := w.group, wd[1], wd[0]
	u := c.b.ReshapeTo(unfold(c, w, x, cg*g), 0, g, cg*w.kernelSize(), -1)
	dyt := c.b.Transpose(c.b.ReshapeTo(dy, 0, g, m/g, -1), 0, 1, 3, 2)
	sum := c.reduce("ReduceSum", c.b.MatMul(u, dyt), []int64{0}, false) // [g, Cg·K, Mg]
	return c.b.ReshapeTo(c.b.Transpose(sum, 0, 2, 1), wd...)
}

// unfoldWeightGradGemm (group 1) computes ∂L/∂W = dY·Uᵀ as one Gemm whose
// contracted axis runs over the batch and the output positions:
// dY → [M, N·P], U → [C·K, N·P].
func unfoldWeightGradGemm(c *gradCtx, w *window, x, dy string, wd []int64) string {
	cin, m, kk := wd[1], wd[0], w.kernelSize()
	u := c.b.ReshapeTo(unfold(c, w, x, cin), 0, cin*kk, -1)
	ut := c.b.ReshapeTo(c.b.Transpose(u, 1, 0, 2), cin*kk, -1)
	dyt := c.b.ReshapeTo(c.b.Transpose(dy, swapFirst(w.spatial()+2)...), m, -1)
	return c.b.ReshapeTo(c.b.Gemm(dyt, ut, "", GemmOpts{TransB: true}), wd...)
}

// correlateWeightGrad correlates the input with dy, batch as the channel
// axis: Conv(xᵀ, dyᵀ) with the forward strides as dilations and the
// dilations as strides, then crops to the kernel size and transposes back.
// With groups, the input is regrouped to [C/g, g·N, ...] so that one grouped
// Conv does every group.
func correlateWeightGrad(c *gradCtx, w *window, x, dy string, wd []int64) string {
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

// window infers Conv, ConvTranspose and pooling outputs.
func (s *shapeState) window(n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	if len(xs) < 3 {
		return fmt.Errorf("input %v must have rank ≥ 3 (N, C, spatial...)", xs)
	}
	spatial := len(xs) - 2
	var kernel []int64
	outC := xs[1]
	switch n.OpType {
	case "Conv", "ConvTranspose":
		w := s.in(n, 1)
		if w == nil || w.Shape == nil {
			s.set(n, 0, xe, nil)
			return nil
		}
		if len(w.Shape) != len(xs) {
			return fmt.Errorf("weight %v and input %v have different ranks", w.Shape, xs)
		}
		group := n.AttrInt("group", 1)
		if n.OpType == "Conv" {
			if xs[1].Known() && w.Shape[1].Known() && xs[1].Value != w.Shape[1].Value*group {
				return fmt.Errorf("input has %d channels but weight %v with group %d expects %d", xs[1].Value, w.Shape, group, w.Shape[1].Value*group)
			}
			outC = w.Shape[0]
		} else {
			if xs[1].Known() && w.Shape[0].Known() && xs[1].Value != w.Shape[0].Value {
				return fmt.Errorf("input has %d channels but weight %v expects %d", xs[1].Value, w.Shape, w.Shape[0].Value)
			}
			outC = mulDim(w.Shape[1], D(group))
		}
		kernel = w.Shape[2:].Ints()
	}
	win, err := windowAttrs(n, spatial, kernel)
	if err != nil {
		return err
	}
	strides, dil, pads := win.strides, win.dilations, win.pads()
	kernel = win.kernel
	autoPad := n.AttrString("auto_pad", "NOTSET")
	ceil := n.AttrInt("ceil_mode", 0) == 1
	out := Shape{xs[0], outC}
	for i := 0; i < spatial; i++ {
		d := xs[2+i]
		if !d.Known() {
			out = append(out, Unknown())
			continue
		}
		in, k, st, dl := d.Value, kernel[i], strides[i], dil[i]
		ek := (k-1)*dl + 1
		var o int64
		if n.OpType == "ConvTranspose" {
			op := n.AttrInts("output_padding", make([]int64, spatial))
			if os := n.AttrInts("output_shape", nil); len(os) == spatial {
				o = os[i]
			} else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
				o = in * st
			} else {
				o = st*(in-1) + op[i] + ek - pads[i] - pads[i+spatial]
			}
		} else {
			switch autoPad {
			case "SAME_UPPER", "SAME_LOWER":
				o = (in + st - 1) / st
			case "VALID":
				o = (in-ek)/st + 1
			default:
				span := in + pads[i] + pads[i+spatial] - ek
				if span < 0 {
					return fmt.Errorf("kernel %v (dilated %d) is larger than padded input %v", kernel, ek, xs)
				}
				if ceil {
					o = (span+st-1)/st + 1
					// The last window must start inside the input or left padding.
					if (o-1)*st >= in+pads[i] {
						o--
					}
				} else {
					o = span/st + 1
				}
			}
		}
		if o <= 0 {
			return fmt.Errorf("output dimension %d is %d", i, o)
		}
		out = append(out, D(o))
	}
	s.set(n, 0, xe, out)
	if n.OpType == "MaxPool" {
		s.set(n, 1, Int64, out)
	}
	return nil
}

func ones(n int) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

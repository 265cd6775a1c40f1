package onnxgraph

import (
	"fmt"
	"slices"
)

// Normalisation operators.

func normOps() map[string]*opDef {
	t := map[string]*opDef{
		"BatchNormalization": {shape: batchNormShape, grad: batchNormGrad, prepare: batchNormPrepare, prepareAll: true,
			params: []int{1, 2}, upgrade: (*upgrader).batchNorm},
	}
	t["LayerNormalization"] = &opDef{shape: sameShape, grad: layerNormGrad, params: []int{1, 2}}
	t["InstanceNormalization"] = &opDef{shape: sameShape, grad: instanceNormGrad, params: []int{1, 2}}
	t["GroupNormalization"] = &opDef{shape: sameShape, grad: groupNormGrad, params: []int{1, 2}}
	for _, name := range []string{"LRN", "LpNormalization", "MeanVarianceNormalization"} {
		t[name] = &opDef{shape: sameShape}
	}
	return t
}

func batchNormShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, xe, xs)
	if c := s.in(n, 1); c != nil && xs != nil && len(xs) > 1 && len(c.Shape) == 1 {
		if xs[1].Known() && c.Shape[0].Known() && xs[1].Value != c.Shape[0].Value {
			return fmt.Errorf("input has %d channels but scale has %d", xs[1].Value, c.Shape[0].Value)
		}
	}
	for i := 1; i < len(n.Outputs); i++ {
		if t := s.in(n, 3); t != nil {
			s.set(n, i, t.Elem, t.Shape)
		}
	}
	return nil
}

// BatchNormalization: eval form (running statistics) and training form
// (batch statistics), the latter lowered to standard operators.
//
// Training form follows ONNX BatchNormalization-15 with training_mode=1:
//
//	μ = mean(X), σ² = mean((X−μ)²) over all axes but the channel axis 1
//	Y = scale·(X−μ)/√(σ²+ε) + B
//	running_mean ← momentum·running_mean + (1−momentum)·μ
//	running_var  ← momentum·running_var + (1−momentum)·σ²
//
// σ² is the biased (population) variance in the normalisation and, as ONNX
// specifies, in running_var; GradOptions.UnbiasedRunningVar switches
// running_var to PyTorch's unbiased estimate σ²·n/(n−1). Note that
// PyTorch's momentum m_pt weighs the new value: momentum = 1 − m_pt (0.9 for
// PyTorch's default 0.1).

// bnChannelShape returns the shape [C, 1, ..., 1] that broadcasts a [C]
// vector against a rank-r input [N, C, ...]; nil for rank 2.
func bnChannelShape(r int) []int64 {
	if r <= 2 {
		return nil
	}
	s := make([]int64, r-1)
	for i := range s {
		s[i] = 1
	}
	s[0] = -1
	return s
}

// perChannel reshapes a [C] vector to broadcast against the input.
func (c *gradCtx) perChannel(v string, r int) string {
	if s := bnChannelShape(r); s != nil {
		return c.b.ReshapeTo(v, s...)
	}
	return v
}

// bnAxes returns the axes BatchNormalization averages over: all but 1.
func bnAxes(r int) []int64 { return append([]int64{0}, iota64(2, r)...) }

func bnTraining(n *Node) bool { return n.AttrInt("training_mode", 0) != 0 }

// emitAs appends a node whose single output is the existing name out.
func (ad *autodiff) emitAs(out, opType string, inputs []string, attrs ...*Attribute) {
	ad.g.Nodes = append(ad.g.Nodes, &Node{Name: ad.b.Fresh(opType), OpType: opType,
		Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
}

// batchNormPrepare lowers a training-mode BatchNormalization to standard
// operators, keeping its output names, and saves the centred input
// x − μ, 1/√(σ²+ε) and the reshaped scale for the gradient:
//
//	μ = ReduceMean(x), xc = x − μ, σ² = ReduceSumSquare(xc)/n,
//	Y = xc·(γ/√(σ²+ε)) + β
//
// The per-channel factor γ/√(σ²+ε) is computed on [C] values, so the
// normalisation takes two passes over the tensor (Mul, Add) instead of the
// four of xc·r, ·γ, +β; the variance one (ReduceSumSquare) instead of two.
func batchNormPrepare(c *gradCtx) error {
	if !bnTraining(c.n) {
		return nil
	}
	x, scale, bias := c.in(0), c.in(1), c.in(2)
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	if r < 2 {
		return fmt.Errorf("input rank %d < 2", r)
	}
	eps := float64(c.n.AttrFloat("epsilon", 1e-5))
	axes := bnAxes(r)
	mu := c.reduce("ReduceMean", x, axes, true)
	xc := c.op("Sub", []string{x, mu})
	invCount := c.op("Div", []string{c.sizeOf(scale), c.sizeOf(x)}) // 1/n
	variance := c.op("Mul", []string{c.reduce("ReduceSumSquare", xc, axes, true), invCount})
	inv := c.op("Reciprocal", []string{c.op("Sqrt", []string{c.op("Add", []string{variance, c.scalar(eps)})})})
	gamma := c.perChannel(scale, r)
	c.emitAs(c.out(0), "Add", []string{c.op("Mul", []string{xc, c.op("Mul", []string{gamma, inv})}), c.perChannel(bias, r)})
	c.save("xc", xc)
	c.save("inv", inv)
	c.save("gamma", gamma)
	if err := c.bnRunningStats(x, mu, variance); err != nil {
		return err
	}
	c.g.Nodes = slices.DeleteFunc(c.g.Nodes, func(n *Node) bool { return n == c.n })
	return nil
}

// bnRunningStats emits the running-statistics outputs of a training-mode
// BatchNormalization, where the node has them.
func (c *gradCtx) bnRunningStats(x, mu, variance string) error {
	m := float64(c.n.AttrFloat("momentum", 0.9))
	stats := []string{c.squeezeChannels(mu), c.squeezeChannels(variance)}
	if c.out(2) != "" && c.opts.UnbiasedRunningVar {
		n := c.op("Div", []string{c.sizeOf(x), c.sizeOf(c.in(1))})
		stats[1] = c.op("Mul", []string{stats[1], c.op("Div", []string{n, c.op("Sub", []string{n, c.scalar(1)})})})
	}
	for i, stat := range stats {
		out := c.out(1 + i)
		if out == "" {
			continue
		}
		old := c.op("Mul", []string{c.in(3 + i), c.scalar(m)})
		c.emitAs(out, "Add", []string{old, c.op("Mul", []string{stat, c.scalar(1 - m)})})
	}
	return nil
}

// squeezeChannels reshapes per-channel statistics [1, C, 1, ...] to [C].
func (c *gradCtx) squeezeChannels(v string) string { return c.b.ReshapeTo(v, -1) }

// sizeOf returns the element count of v as a scalar of the gradients' type.
func (c *gradCtx) sizeOf(v string) string {
	if s := c.shape(v); s.Known() {
		return c.scalar(float64(s.Size()))
	}
	return c.op("Cast", []string{c.op("Size", []string{v})}, IntAttr("to", int64(c.elem)))
}

func batchNormGrad(c *gradCtx) error {
	if bnTraining(c.n) {
		return batchNormTrainGrad(c)
	}
	x, scale, mean, variance, dy := c.in(0), c.in(1), c.in(3), c.in(4), c.dy(0)
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	eps := float64(c.n.AttrFloat("epsilon", 1e-5))
	axes := bnAxes(r)
	inv := c.op("Reciprocal", []string{c.op("Sqrt", []string{c.op("Add", []string{variance, c.scalar(eps)})})})
	k := c.op("Mul", []string{scale, inv}) // scale/√(var+ε), [C]
	if c.needs(0) {
		c.setGrad(0, c.op("Mul", []string{dy, c.perChannel(k, r)}))
	}
	var sumDy, xc string
	if c.needs(2) || c.needs(3) {
		sumDy = c.reduce("ReduceSum", dy, axes, false)
	}
	if c.needs(1) || c.needs(4) {
		xc = c.op("Sub", []string{x, c.perChannel(mean, r)})
	}
	if c.needs(1) {
		xhat := c.op("Mul", []string{xc, c.perChannel(inv, r)})
		c.setGrad(1, c.reduce("ReduceSum", c.op("Mul", []string{dy, xhat}), axes, false))
	}
	c.setGrad(2, sumDy)
	if c.needs(3) {
		c.setGrad(3, c.op("Neg", []string{c.op("Mul", []string{sumDy, k})}))
	}
	if c.needs(4) {
		// ∂Y/∂var = −½·scale·(x−mean)·(var+ε)^(−3/2)
		s := c.reduce("ReduceSum", c.op("Mul", []string{dy, xc}), axes, false)
		inv3 := c.op("Mul", []string{inv, c.op("Mul", []string{inv, inv})})
		f := c.op("Mul", []string{c.op("Mul", []string{scale, inv3}), c.scalar(-0.5)})
		c.setGrad(4, c.op("Mul", []string{s, f}))
	}
	return nil
}

// batchNormTrainGrad is the fused gradient of batch-statistics
// normalisation, written with the centred input xc = x − μ (x̂ = xc·r,
// r = 1/√(σ²+ε)): dβ = Σdy, dγ = r·Σdy·xc,
// dx = γ·r·(dy − mean(dy) − xc·r²·mean(dy·xc)).
func batchNormTrainGrad(c *gradCtx) error {
	x, dy := c.in(0), c.dy(0)
	sv := c.saved[c.n]
	xc, inv, gamma := sv["xc"], sv["inv"], sv["gamma"]
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	axes := bnAxes(r)
	sumDy := c.reduce("ReduceSum", dy, axes, true)
	sumDyXc := c.reduce("ReduceSum", c.op("Mul", []string{dy, xc}), axes, true)
	if c.needs(1) {
		c.setGrad(1, c.squeezeChannels(c.op("Mul", []string{sumDyXc, inv})))
	}
	if c.needs(2) {
		c.setGrad(2, c.squeezeChannels(sumDy))
	}
	if c.needs(0) {
		invCount := c.op("Div", []string{c.sizeOf(c.in(1)), c.sizeOf(x)}) // 1/n
		meanDy := c.op("Mul", []string{sumDy, invCount})
		k := c.op("Mul", []string{c.op("Mul", []string{sumDyXc, invCount}), c.op("Mul", []string{inv, inv})})
		centered := c.op("Sub", []string{c.op("Sub", []string{dy, meanDy}), c.op("Mul", []string{xc, k})})
		c.setGrad(0, c.op("Mul", []string{centered, c.op("Mul", []string{gamma, inv})}))
	}
	return nil
}

// LayerNormalization, InstanceNormalization and GroupNormalization all
// normalise over some axes, then scale and shift. One decomposition
// (ŷ = (x − mean)·rstd, rstd = 1/√(var + ε)) and one backward pass
//
//	dx = rstd·(dŷ − mean(dŷ) − ŷ·mean(dŷ·ŷ)), dŷ = dy·γ
//
// over the normalised axes serve all three; γ and β get dy·ŷ and dy
// summed over the other axes.

// normalised recomputes ŷ and rstd of x normalised over axes (kept).
func (c *gradCtx) normalised(x string, axes []int64, eps float64) (xhat, rstd string) {
	xc := c.sub(x, c.mean(x, axes))
	rstd = c.op("Reciprocal", []string{c.op("Sqrt", []string{c.add(c.mean(c.sqr(xc), axes), c.scalar(eps))})})
	return c.mul(xc, rstd), rstd
}

// normInputGrad returns dx = rstd·(dŷ − mean(dŷ) − ŷ·mean(dŷ·ŷ)).
func (c *gradCtx) normInputGrad(xhat, rstd, dxhat string, axes []int64) string {
	inner := c.sub(c.sub(dxhat, c.mean(dxhat, axes)), c.mul(xhat, c.mean(c.mul(dxhat, xhat), axes)))
	return c.mul(rstd, inner)
}

// statsUnused fails when a gradient flows into a normalisation's optional
// statistics outputs.
func (c *gradCtx) statsUnused() error {
	for i := 1; i < len(c.n.Outputs); i++ {
		if c.dy(i) != "" {
			return fmt.Errorf("output %d (saved statistics) is differentiated; only Y is", i)
		}
	}
	return nil
}

func layerNormGrad(c *gradCtx) error {
	if err := c.statsUnused(); err != nil {
		return err
	}
	x, scale, bias, dy := c.in(0), c.in(1), c.in(2), c.dy(0)
	axis, r, err := c.axisOf(c.n, x, -1)
	if err != nil {
		return err
	}
	axes := iota64(axis, r)
	xhat, rstd := c.normalised(x, axes, float64(c.n.AttrFloat("epsilon", 1e-5)))
	if c.needs(0) {
		c.setGrad(0, c.normInputGrad(xhat, rstd, c.mul(dy, scale), axes))
	}
	if c.needs(1) {
		if err := c.dxTo(1, c.mul(dy, xhat)); err != nil {
			return err
		}
	}
	if bias != "" && c.needs(2) {
		return c.dxTo(2, dy)
	}
	return nil
}

// affineGrads adds the gradients of per-channel scale and bias [C] of an
// input [N, C, ...]: dy·ŷ and dy summed over all axes but 1.
func (c *gradCtx) affineGrads(dy, xhat string, r int) {
	axes := bnAxes(r)
	if c.needs(1) {
		c.setGrad(1, c.reduce("ReduceSum", c.mul(dy, xhat), axes, false))
	}
	if c.needs(2) {
		c.setGrad(2, c.reduce("ReduceSum", dy, axes, false))
	}
}

func instanceNormGrad(c *gradCtx) error {
	x, dy := c.in(0), c.dy(0)
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	if r < 3 {
		return fmt.Errorf("input rank %d < 3", r)
	}
	axes := iota64(2, r)
	xhat, rstd := c.normalised(x, axes, float64(c.n.AttrFloat("epsilon", 1e-5)))
	if c.needs(0) {
		c.setGrad(0, c.normInputGrad(xhat, rstd, c.mul(dy, c.perChannel(c.in(1), r)), axes))
	}
	c.affineGrads(dy, xhat, r)
	return nil
}

// groupNormGrad differentiates GroupNormalization: x [N, C, ...] is
// normalised over [C/G, ...] per group. Opset 18 scales and shifts per
// group (scale, bias [G]), opset 21 per channel ([C]).
func groupNormGrad(c *gradCtx) error {
	x, dy := c.in(0), c.dy(0)
	r, err := c.rank(x)
	if err != nil {
		return err
	}
	g := c.n.AttrInt("num_groups", 0)
	if r < 2 || g <= 0 {
		return fmt.Errorf("input rank %d or num_groups %d", r, g)
	}
	grouped := []int64{0, g, -1}
	xr := c.b.ReshapeTo(x, grouped...)
	axes := []int64{2}
	xhatR, rstd := c.normalised(xr, axes, float64(c.n.AttrFloat("epsilon", 1e-5)))
	dyR := c.b.ReshapeTo(dy, grouped...)
	if c.b.Opset >= 21 {
		// Per-channel affine: work in x's shape.
		xhat := c.reshapeLike(xhatR, x)
		if c.needs(0) {
			dxhat := c.b.ReshapeTo(c.mul(dy, c.perChannel(c.in(1), r)), grouped...)
			c.setGrad(0, c.reshapeLike(c.normInputGrad(xhatR, rstd, dxhat, axes), x))
		}
		c.affineGrads(dy, xhat, r)
		return nil
	}
	perGroup := func(v string) string { return c.b.ReshapeTo(v, g, 1) }
	if c.needs(0) {
		dxhat := c.mul(dyR, perGroup(c.in(1)))
		c.setGrad(0, c.reshapeLike(c.normInputGrad(xhatR, rstd, dxhat, axes), x))
	}
	if c.needs(1) {
		c.setGrad(1, c.reduce("ReduceSum", c.mul(dyR, xhatR), []int64{0, 2}, false))
	}
	if c.needs(2) {
		c.setGrad(2, c.reduce("ReduceSum", dyR, []int64{0, 2}, false))
	}
	return nil
}

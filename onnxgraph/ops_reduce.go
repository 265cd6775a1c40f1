package onnxgraph

import (
	"fmt"
	"slices"
)

// Reductions, softmax and the softmax cross-entropy loss.

func reduceOps() map[string]*opDef {
	t := map[string]*opDef{
		"ReduceSum":  {shape: (*shapeState).reduce, grad: reduceSumGrad, upgrade: attrToInput("axes", 1)},
		"ReduceMean": {shape: (*shapeState).reduce, grad: reduceMeanGrad},
		"ReduceMax":  {shape: (*shapeState).reduce, grad: reduceMaxGrad},
		"ReduceMin":  {shape: (*shapeState).reduce, grad: reduceMaxGrad},
		"ArgMax":     {shape: (*shapeState).reduce, noGrad: true},
		"ArgMin":     {shape: (*shapeState).reduce, noGrad: true},

		"Softmax":    {shape: sameShape, grad: softmaxGrad, upgrade: (*upgrader).softmax},
		"LogSoftmax": {shape: sameShape, grad: logSoftmaxGrad, upgrade: (*upgrader).softmax},
		"Hardmax":    {shape: sameShape, noGrad: true, upgrade: (*upgrader).softmax},

		"SoftmaxCrossEntropyLoss":   {shape: lossShape, grad: sceGrad, prepare: scePrepare},
		"NegativeLogLikelihoodLoss": {shape: lossShape},
	}
	for name, grad := range map[string]func(*gradCtx) error{
		"ReduceProd": reduceProdGrad, "ReduceL1": reduceL1Grad, "ReduceL2": reduceL2Grad,
		"ReduceSumSquare": reduceSumSquareGrad, "ReduceLogSum": reduceLogSumGrad,
		"ReduceLogSumExp": reduceLogSumExpGrad,
	} {
		t[name] = &opDef{shape: (*shapeState).reduce, grad: grad}
	}
	return t
}

// lossShape types the outputs of SoftmaxCrossEntropyLoss and
// NegativeLogLikelihoodLoss: the loss and the log-probabilities.
func lossShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if n.AttrString("reduction", "mean") == "none" && xs != nil {
		s.set(n, 0, xe, slices.Delete(slices.Clone(xs), 1, 2))
	} else {
		s.set(n, 0, xe, Shape{})
	}
	s.set(n, 1, xe, xs)
	return nil
}

// reducedAxes returns the normalised, sorted axes a Reduce* node reduces
// over, and false when it reduces nothing (noop_with_empty_axes).
func (c *gradCtx) reducedAxes() ([]int64, bool, error) {
	r, err := c.rank(c.in(0))
	if err != nil {
		return nil, false, err
	}
	axes, ok := c.axesAttrOrInput(1)
	if !ok {
		return nil, false, fmt.Errorf("axes %q must be a constant", c.in(1))
	}
	if len(axes) == 0 {
		if c.n.AttrInt("noop_with_empty_axes", 0) != 0 {
			return nil, false, nil
		}
		return iota64(0, r), true, nil
	}
	axes, err = normAxes(axes, r)
	slices.Sort(axes)
	return axes, true, err
}

// keptDims returns v (a reduction's output or its gradient) with the reduced
// axes restored as size-1 axes when the node dropped them.
func (c *gradCtx) keptDims(v string, axes []int64) string {
	if c.n.AttrInt("keepdims", 1) != 0 {
		return v
	}
	return c.unsqueeze(v, axes...)
}

func reduceSumGrad(c *gradCtx) error { return reduceSpread(c, false) }

func reduceMeanGrad(c *gradCtx) error { return reduceSpread(c, true) }

// reduceSpread broadcasts the gradient of a sum (or mean, scaled by
// 1/count) back over the reduced axes.
func reduceSpread(c *gradCtx, mean bool) error {
	x, dy := c.in(0), c.dy(0)
	axes, reduces, err := c.reducedAxes()
	if err != nil {
		return err
	}
	if !reduces {
		c.setGrad(0, dy)
		return nil
	}
	g := c.keptDims(dy, axes)
	if mean {
		g = c.op("Mul", []string{g, c.countInverse(x, axes)})
	}
	c.setGrad(0, c.op("Expand", []string{g, c.shapeOf(x)}))
	return nil
}

// countInverse returns 1/(number of elements reduced over axes of x), a
// constant when those dimensions are static.
func (c *gradCtx) countInverse(x string, axes []int64) string {
	s := c.shape(x)
	n := int64(1)
	for _, a := range axes {
		if !s[a].Known() {
			return c.op("Div", []string{c.sizeOf(c.out(0)), c.sizeOf(x)})
		}
		n *= s[a].Value
	}
	return c.scalar(1 / float64(n))
}

// reduceMaxGrad gives the gradient to the elements equal to the maximum
// (minimum), shared equally between ties.
func reduceMaxGrad(c *gradCtx) error {
	x := c.in(0)
	axes, reduces, err := c.reducedAxes()
	if err != nil {
		return err
	}
	if !reduces {
		c.setGrad(0, c.dy(0))
		return nil
	}
	y, dy := c.keptDims(c.out(0), axes), c.keptDims(c.dy(0), axes)
	mask := c.op("Cast", []string{c.op("Equal", []string{x, y})}, IntAttr("to", int64(c.elem)))
	count := c.reduce("ReduceSum", mask, axes, true)
	c.setGrad(0, c.op("Mul", []string{mask, c.op("Div", []string{dy, count})}))
	return nil
}

// softmaxAxis returns the node's axis attribute (default −1, opset 13).
func (c *gradCtx) softmaxAxis() (int64, error) {
	a, _, err := c.axisOf(c.n, c.in(0), -1)
	return int64(a), err
}

func softmaxGrad(c *gradCtx) error {
	axis, err := c.softmaxAxis()
	if err != nil {
		return err
	}
	y, dy := c.out(0), c.dy(0)
	dot := c.reduce("ReduceSum", c.op("Mul", []string{dy, y}), []int64{axis}, true)
	c.setGrad(0, c.op("Mul", []string{y, c.op("Sub", []string{dy, dot})}))
	return nil
}

func logSoftmaxGrad(c *gradCtx) error {
	axis, err := c.softmaxAxis()
	if err != nil {
		return err
	}
	c.setGrad(0, c.logSoftmaxBack(c.out(0), c.dy(0), axis))
	return nil
}

// logSoftmaxBack returns dy − softmax·Σdy, the gradient through a
// log-softmax whose output is logp.
func (c *gradCtx) logSoftmaxBack(logp, dy string, axis int64) string {
	sum := c.reduce("ReduceSum", dy, []int64{axis}, true)
	return c.op("Sub", []string{dy, c.op("Mul", []string{c.op("Exp", []string{logp}), sum})})
}

// scePrepare makes SoftmaxCrossEntropyLoss output its log-probabilities.
func scePrepare(c *gradCtx) error {
	if c.out(1) == "" {
		lp := c.b.Fresh(c.out(0) + "_log_prob")
		for len(c.n.Outputs) < 2 {
			c.n.Outputs = append(c.n.Outputs, "")
		}
		c.n.Outputs[1] = lp
		c.types[lp] = &TensorType{Elem: c.elem, Shape: c.shape(c.in(0))}
	}
	return nil
}

// sceGrad differentiates SoftmaxCrossEntropyLoss (no class weights):
// dscores = (softmax − onehot(label))·dloss, divided by the number of
// counted labels for reduction "mean"; labels equal to ignore_index get
// no gradient.
func sceGrad(c *gradCtx) error {
	scores, labels, logp := c.in(0), c.in(1), c.out(1)
	if c.in(2) != "" {
		return fmt.Errorf("class weights are not supported")
	}
	if c.needs(0) && c.dy(1) != "" {
		c.setGrad(0, c.logSoftmaxBack(logp, c.dy(1), 1))
	}
	dl := c.dy(0)
	if dl == "" || !c.needs(0) {
		return nil
	}
	r, err := c.rank(scores)
	if err != nil {
		return err
	}
	classes, err := c.axisSize(scores, 1)
	if err != nil {
		return err
	}
	lab := c.unsqueeze(labels, 1)
	rangeShape := append([]int64{1, classes}, make([]int64, r-2)...)
	for i := 2; i < r; i++ {
		rangeShape[i] = 1
	}
	classIDs := c.b.Initializer(NewInt64Tensor("", rangeShape, iota64(0, int(classes))))
	onehot := c.op("Cast", []string{c.op("Equal", []string{lab, classIDs})}, IntAttr("to", int64(c.elem)))
	diff := c.op("Sub", []string{c.op("Exp", []string{logp}), onehot})

	var valid string // 1 for counted labels, [N, 1, ...]
	if a := c.n.Attr("ignore_index"); a != nil {
		ignore := c.b.Initializer(NewInt64Tensor("", []int64{}, []int64{a.Int}))
		if lt := c.types[labels]; lt != nil && lt.Elem != Int64 {
			ignore = c.op("Cast", []string{ignore}, IntAttr("to", int64(lt.Elem)))
		}
		valid = c.op("Cast", []string{c.op("Not", []string{c.op("Equal", []string{lab, ignore})})},
			IntAttr("to", int64(c.elem)))
		diff = c.op("Mul", []string{diff, valid})
	}
	var scale string
	switch red := c.n.AttrString("reduction", "mean"); red {
	case "none":
		scale = c.unsqueeze(dl, 1)
	case "sum":
		scale = dl
	case "mean":
		count := c.sizeOf(labels)
		if valid != "" {
			count = c.reduce("ReduceSum", valid, iota64(0, r), false)
		}
		scale = c.op("Div", []string{dl, count})
	default:
		return fmt.Errorf("unknown reduction %q", red)
	}
	c.setGrad(0, c.op("Mul", []string{diff, scale}))
	return nil
}

func (s *shapeState) reduce(n *Node, xs Shape, xe DataType) error {
	keep := n.AttrInt("keepdims", 1) == 1
	elem := xe
	var axes []int64
	ok := true
	if n.OpType == "ArgMax" || n.OpType == "ArgMin" {
		axes, elem = []int64{n.AttrInt("axis", 0)}, Int64
	} else {
		axes, ok = s.axesOf(n, 1)
	}
	if xs == nil || !ok {
		s.set(n, 0, elem, nil)
		return nil
	}
	if len(axes) == 0 && n.AttrInt("noop_with_empty_axes", 0) == 1 {
		s.set(n, 0, elem, xs)
		return nil
	}
	red := map[int]bool{}
	for _, a := range axes {
		k, err := normAxis(a, len(xs))
		if err != nil {
			return err
		}
		red[k] = true
	}
	out := Shape{}
	for i, d := range xs {
		switch {
		case len(axes) > 0 && !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, D(1))
		}
	}
	s.set(n, 0, elem, out)
	return nil
}

// reduceChain differentiates y = reduce(x) as dx = ∂y/∂x · dy broadcast
// over the reduced axes: local receives y and dy with the reduced axes
// kept, and returns ∂y/∂x·dy (broadcasting to x's shape).
func reduceChain(c *gradCtx, local func(x, y, dy string) string) error {
	x := c.in(0)
	axes, reduces, err := c.reducedAxes()
	if err != nil {
		return err
	}
	if !reduces {
		return fmt.Errorf("noop_with_empty_axes with empty axes is not supported")
	}
	g := local(x, c.keptDims(c.out(0), axes), c.keptDims(c.dy(0), axes))
	c.setGrad(0, c.op("Expand", []string{g, c.shapeOf(x)}))
	return nil
}

func reduceL1Grad(c *gradCtx) error {
	// y = Σ|x|: dx = sign(x)·dy.
	return reduceChain(c, func(x, _, dy string) string { return c.mul(c.op("Sign", []string{x}), dy) })
}

func reduceL2Grad(c *gradCtx) error {
	// y = √Σx²: dx = x/y·dy.
	return reduceChain(c, func(x, y, dy string) string { return c.mul(c.div(x, y), dy) })
}

func reduceSumSquareGrad(c *gradCtx) error {
	// y = Σx²: dx = 2x·dy.
	return reduceChain(c, func(x, _, dy string) string { return c.mul(c.add(x, x), dy) })
}

func reduceLogSumGrad(c *gradCtx) error {
	// y = log Σx: dx = dy/Σx = dy·exp(−y).
	return reduceChain(c, func(_, y, dy string) string { return c.mul(c.exp(c.neg(y)), dy) })
}

func reduceLogSumExpGrad(c *gradCtx) error {
	// y = log Σ exp(x): dx = exp(x − y)·dy (the softmax over the axes).
	return reduceChain(c, func(x, y, dy string) string { return c.mul(c.exp(c.sub(x, y)), dy) })
}

func reduceProdGrad(c *gradCtx) error {
	// y = Πx: dx = y/x·dy, for inputs without zeros.
	return reduceChain(c, func(x, y, dy string) string { return c.mul(c.div(y, x), dy) })
}

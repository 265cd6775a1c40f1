package onnxgraph

import (
	"fmt"
	"math"
	"slices"
)

// Operators that move data without arithmetic, shape queries and
// constants.

func shapeOps() map[string]*opDef {
	return map[string]*opDef{
		"Constant":        {shape: (*shapeState).constant},
		"Shape":           {shape: shapeShape, noGrad: true},
		"Size":            {shape: sizeShape, noGrad: true},
		"ConstantOfShape": {shape: constantOfShapeShape, noGrad: true},
		"EyeLike":         {noGrad: true},
		"NonZero":         {noGrad: true},
		"Range":           {shape: rangeShape, noGrad: true},

		"Reshape":   {shape: (*shapeState).reshape, grad: reshapeGrad, upgrade: attrToInput("shape", 1), learned: []int{0}, view: true},
		"Flatten":   {shape: flattenShape, grad: reshapeGrad, learned: []int{0}, view: true},
		"Squeeze":   {shape: (*shapeState).squeeze, grad: reshapeGrad, upgrade: attrToInput("axes", 1), learned: []int{0}, view: true},
		"Unsqueeze": {shape: (*shapeState).squeeze, grad: reshapeGrad, upgrade: attrToInput("axes", 1), learned: []int{0}, view: true},
		"Transpose": {shape: transposeShape, grad: transposeGrad, learned: []int{0}, view: true},
		"Concat":    {shape: concatShape, grad: concatGrad, upgrade: (*upgrader).concat, learned: []int{allInputs}},
		"Split":     {shape: (*shapeState).split, grad: splitGrad, upgrade: attrToInput("split", 1)},
		"Slice":     {shape: (*shapeState).slice, grad: sliceGrad, upgrade: (*upgrader).slice, learned: []int{0}},
		"Pad":       {shape: (*shapeState).pad, grad: padGrad, upgrade: (*upgrader).pad},
		"Tile":      {shape: tileShape, grad: tileGrad},
		"Expand":    {shape: expandShape, grad: expandGrad, learned: []int{0}},

		"CumSum": {shape: sameShape, grad: cumSumGrad},
		"Trilu":  {shape: sameShape, grad: triluGrad},
	}
}

func shapeShape(s *shapeState, n *Node, xs Shape, _ DataType) error {
	if xs == nil {
		s.set(n, 0, Int64, Shape{Unknown()})
		return nil
	}
	start, end := n.AttrInt("start", 0), n.AttrInt("end", int64(len(xs)))
	lo, hi := clampAxis(start, len(xs)), clampAxis(end, len(xs))
	v := valFromShape(xs[lo:max(lo, hi)])
	s.set(n, 0, Int64, Dims(int64(len(v))))
	s.vals[n.Outputs[0]] = v
	return nil
}

func sizeShape(s *shapeState, n *Node, xs Shape, _ DataType) error {
	s.set(n, 0, Int64, Shape{})
	if xs.Known() {
		s.vals[n.Outputs[0]] = Dims(xs.Size())
	}
	return nil
}

// copyVal gives output 0 the value of input 0 (Reshape, Squeeze,
// Unsqueeze keep the elements and their order).
func (s *shapeState) copyVal(n *Node) {
	if v, ok := s.vals[n.Input(0)]; ok {
		s.vals[n.Outputs[0]] = v
	}
}

// maxValLen bounds the integer tensors whose values shape inference
// follows.
const maxValLen = 64

func constantOfShapeShape(s *shapeState, n *Node, _ Shape, _ DataType) error {
	elem := Float
	if a := n.Attr("value"); a != nil && a.Tensor != nil {
		elem = a.Tensor.DataType
	}
	v, ok := s.vals[n.Input(0)]
	if !ok {
		s.set(n, 0, elem, nil)
		return nil
	}
	sh := shapeFromVal(v)
	s.set(n, 0, elem, sh)
	if elem.IsFloat() || !sh.Known() || sh.Size() > maxValLen {
		return nil
	}
	fill := int64(0)
	if a := n.Attr("value"); a != nil && a.Tensor != nil {
		f, err := a.Tensor.Int64s()
		if err != nil || len(f) != 1 {
			return nil
		}
		fill = f[0]
	}
	vals := make(Shape, sh.Size())
	for i := range vals {
		vals[i] = D(fill)
	}
	s.vals[n.Outputs[0]] = vals
	return nil
}

// rangeShape computes Range's length, and its value for integer
// operands, when start, limit and delta are known.
func rangeShape(s *shapeState, n *Node, _ Shape, xe DataType) error {
	start, limit, delta := s.ints(n, 0), s.ints(n, 1), s.ints(n, 2)
	if len(start) != 1 || len(limit) != 1 || len(delta) != 1 || delta[0] == 0 {
		s.set(n, 0, xe, Shape{Unknown()})
		return nil
	}
	size := max(0, (limit[0]-start[0]+delta[0]-sign64(delta[0]))/delta[0])
	s.set(n, 0, xe, Dims(size))
	if size <= maxValLen {
		vals := make(Shape, size)
		for i := range vals {
			vals[i] = D(start[0] + int64(i)*delta[0])
		}
		s.vals[n.Outputs[0]] = vals
	}
	return nil
}

func sign64(v int64) int64 {
	if v < 0 {
		return -1
	}
	return 1
}

func flattenShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		s.set(n, 0, xe, Shape{Unknown(), Unknown()})
		return nil
	}
	axis := n.AttrInt("axis", 1)
	if axis < 0 {
		axis += int64(len(xs))
	}
	if axis < 0 || axis > int64(len(xs)) {
		return fmt.Errorf("axis %d out of range for rank %d", n.AttrInt("axis", 1), len(xs))
	}
	s.set(n, 0, xe, Shape{prodDims(xs[:axis]), prodDims(xs[axis:])})
	return nil
}

// sliceVal slices a row-major value of the given dims.
func sliceVal(v Shape, dims, starts, ends, axes, steps []int64) (Shape, bool) {
	// For each axis, the source indices it keeps.
	keep := make([][]int64, len(dims))
	for i, d := range dims {
		keep[i] = iota64(0, int(d))
	}
	for j, a := range axes {
		ax, err := normAxis(a, len(dims))
		if err != nil || steps[j] == 0 {
			return nil, false
		}
		size, start, end, step := dims[ax], starts[j], ends[j], steps[j]
		if start < 0 {
			start += size
		}
		if end < 0 {
			end += size
		}
		var idx []int64
		if step > 0 {
			for i := min(max(start, 0), size); i < min(max(end, 0), size); i += step {
				idx = append(idx, i)
			}
		} else {
			for i := min(max(start, -1), size-1); i > min(max(end, -1), size-1); i += step {
				idx = append(idx, i)
			}
		}
		keep[ax] = idx
	}
	return gatherVal(v, dims, keep), true
}

// gatherVal picks, from a row-major value of the given dims, the elements
// at the cartesian product of the per-axis indices keep.
func gatherVal(v Shape, dims []int64, keep [][]int64) Shape {
	strides := make([]int64, len(dims))
	st := int64(1)
	for i := len(dims) - 1; i >= 0; i-- {
		strides[i] = st
		st *= dims[i]
	}
	out := Shape{}
	var walk func(axis int, off int64)
	walk = func(axis int, off int64) {
		if axis == len(dims) {
			out = append(out, v[off])
			return
		}
		for _, i := range keep[axis] {
			walk(axis+1, off+i*strides[axis])
		}
	}
	walk(0, 0)
	return out
}

func transposeShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	perm := n.AttrInts("perm", nil)
	if perm == nil {
		for i := len(xs) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != len(xs) {
		return fmt.Errorf("perm %v does not match rank %d", perm, len(xs))
	}
	out := make(Shape, len(xs))
	for i, p := range perm {
		if p < 0 || int(p) >= len(xs) {
			return fmt.Errorf("perm %v out of range", perm)
		}
		out[i] = xs[p]
	}
	s.set(n, 0, xe, out)
	if v, ok := s.vals[n.Input(0)]; ok && xs.Known() && xs.Size() == int64(len(v)) {
		s.vals[n.Outputs[0]] = transposeVal(v, xs.Ints(), perm)
	}
	return nil
}

// transposeVal permutes the axes of a row-major value of the given dims.
func transposeVal(v Shape, dims, perm []int64) Shape {
	strides := make([]int64, len(dims))
	st := int64(1)
	for i := len(dims) - 1; i >= 0; i-- {
		strides[i] = st
		st *= dims[i]
	}
	out := make(Shape, 0, len(v))
	var walk func(axis int, off int64)
	walk = func(axis int, off int64) {
		if axis == len(perm) {
			out = append(out, v[off])
			return
		}
		p := perm[axis]
		for i := int64(0); i < dims[p]; i++ {
			walk(axis+1, off+i*strides[p])
		}
	}
	walk(0, 0)
	return out
}

func concatShape(s *shapeState, n *Node, _ Shape, _ DataType) error { return s.concat(n) }

func expandShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	target, ok := s.vals[n.Input(1)]
	if !ok || xs == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	out, err := broadcast(xs, shapeFromVal(target))
	if err != nil {
		return err
	}
	s.set(n, 0, xe, out)
	return nil
}

func tileShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if reps := s.ints(n, 1); reps != nil && xs != nil && len(reps) == len(xs) {
		out := make(Shape, len(xs))
		for i := range xs {
			out[i] = mulDim(xs[i], D(reps[i]))
		}
		s.set(n, 0, xe, out)
	} else if xs != nil {
		s.set(n, 0, xe, unknownShape(len(xs)))
	}
	return nil
}

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
	axis, _, err := c.axisOf(c.n, c.out(0), 0)
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
	axis, _, err := c.axisOf(c.n, c.in(0), 0)
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
	g := c.dy(0)
	var cur []int64 // g's dimensions as strided axes are spread back
	for i, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		dim, err := c.axisSize(x, ax)
		if err != nil {
			return err
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 1 {
			begin := clampIndex(starts[i], dim)
			n := SliceLen(dim, starts[i], ends[i], 1)
			pads[ax], pads[r+ax] = begin, dim-begin-n
			continue
		}
		if cur == nil {
			if cur, err = c.staticDims(c.out(0), 0); err != nil {
				return err
			}
		}
		if g, err = c.stridedSliceGrad(g, ax, cur, dim, starts[i], ends[i], step, &pads); err != nil {
			return err
		}
	}
	c.setGrad(0, c.op("Pad", []string{g, c.ints(pads...)}))
	return nil
}

// stridedSliceGrad spreads g, the gradient of a Slice with step ≠ 1 along
// axis ax of a dimension dim, back to consecutive positions: reversed when
// the step is negative, each element followed by |step|−1 zeros
// (Unsqueeze, Pad, Reshape), trimmed to the dimension; it sets the pads
// that place the result in the input.
// cur holds g's dimensions (−1 for a symbolic batch) and is updated.
func (c *gradCtx) stridedSliceGrad(g string, ax int, cur []int64, dim, start, end, step int64, pads *[]int64) (string, error) {
	r := len(cur)
	n := SliceLen(dim, start, end, step)
	if n == 0 {
		return "", fmt.Errorf("empty strided slice")
	}
	if start < 0 {
		start += dim
	}
	first := min(max(start, 0), dim-1) // the first index taken
	if step < 0 {
		first += (n - 1) * step // the lowest index taken
		step = -step
		g = c.op("Slice", []string{g, c.ints(-1), c.ints(math.MinInt64), c.ints(int64(ax)), c.ints(-1)})
	}
	out := cur
	target := make([]int64, r)
	for j := range target {
		switch {
		case j < ax:
			target[j] = 0
		case j == ax:
			target[j] = n * step
		default:
			target[j] = out[j]
		}
	}
	if ax > 0 && out[0] < 0 {
		target[0] = 0
	} else if ax == 0 {
		for j := 1; j < r; j++ {
			if out[j] < 0 {
				return "", fmt.Errorf("dimension %d must be static", j)
			}
		}
	}
	spread := make([]int64, 2*(r+1))
	spread[r+1+ax+1] = step - 1
	g = c.op("Pad", []string{c.unsqueeze(g, int64(ax+1)), c.ints(spread...)})
	g = c.op("Reshape", []string{g, c.ints(target...)})
	span := n * step
	if first+span > dim {
		span = dim - first
		g = c.op("Slice", []string{g, c.ints(0), c.ints(span), c.ints(int64(ax))})
	}
	cur[ax] = span
	(*pads)[ax], (*pads)[r+ax] = first, dim-first-span
	return g, nil
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
		return padGatherGrad(c, mode)
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
// padIndices returns, for each position of a dimension of size dim padded
// by begin and end in mode reflect, edge or wrap, the input position it
// copies.
func padIndices(mode string, dim, begin, end int64) ([]int64, error) {
	if dim < 1 || mode == "reflect" && (begin >= dim || end >= dim) {
		return nil, fmt.Errorf("cannot %s-pad a dimension of size %d by %d and %d", mode, dim, begin, end)
	}
	idx := make([]int64, dim+begin+end)
	for o := range idx {
		i := int64(o) - begin
		switch mode {
		case "reflect":
			for i < 0 || i >= dim {
				if i < 0 {
					i = -i
				}
				if i >= dim {
					i = 2*(dim-1) - i
				}
			}
		case "edge":
			i = min(max(i, 0), dim-1)
		case "wrap":
			i = ((i % dim) + dim) % dim
		default:
			return nil, fmt.Errorf("unknown mode %q", mode)
		}
		idx[o] = i
	}
	return idx, nil
}

// padGatherGrad differentiates Pad in reflect, edge and wrap modes: along
// each padded axis the output is a Gather of the input with constant
// indices, so the gradient scatter-adds dy back axis by axis (gatherBack).
func padGatherGrad(c *gradCtx, mode string) error {
	x := c.in(0)
	pads, ok := c.constInts(c.in(1))
	if !ok {
		return fmt.Errorf("pads %q must be a constant", c.in(1))
	}
	xd, err := c.staticDims(x, 0)
	if err != nil {
		return err
	}
	r := len(xd)
	axes := iota64(0, r)
	if c.in(3) != "" {
		if axes, ok = c.constInts(c.in(3)); !ok {
			return fmt.Errorf("axes %q must be a constant", c.in(3))
		}
	}
	if axes, err = normAxes(axes, r); err != nil {
		return err
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("pads %v do not match axes %v", pads, axes)
	}
	cur := slices.Clone(xd) // dimensions of the gradient, un-padded so far
	for i, ax := range axes {
		if cur[ax] >= 0 {
			cur[ax] += pads[i] + pads[i+len(axes)]
		}
	}
	g := c.dy(0)
	for i := len(axes) - 1; i >= 0; i-- {
		ax, begin, end := int(axes[i]), pads[i], pads[i+len(axes)]
		if begin == 0 && end == 0 {
			continue
		}
		if begin < 0 || end < 0 {
			return fmt.Errorf("negative pads %v are not supported", pads)
		}
		if xd[ax] < 0 {
			return fmt.Errorf("padded axis %d must be static", ax)
		}
		idx, err := padIndices(mode, xd[ax], begin, end)
		if err != nil {
			return err
		}
		cur[ax] = xd[ax]
		shape := c.ints(cur...)
		if cur[0] < 0 { // a symbolic batch: take it from g
			shape = c.where(c.op("Less", []string{shape, c.ints(0)}), c.op("Shape", []string{g}), shape)
		}
		col := c.b.Initializer(NewInt64Tensor("", []int64{int64(len(idx)), 1}, idx))
		g = c.gatherBack(g, shape, r, ax, 1, col)
	}
	c.setGrad(0, g)
	return nil
}

// inversePerm returns the permutation that undoes perm.
func inversePerm(perm []int64) []int64 {
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	return inv
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

func (s *shapeState) constant(n *Node, _ Shape, _ DataType) error {
	for _, a := range n.Attrs {
		switch a.Name {
		case "value":
			if a.Tensor == nil {
				return fmt.Errorf("value attribute is not a tensor")
			}
			t := a.Tensor
			s.set(n, 0, t.DataType, t.Shape())
			if (t.DataType == Int64 || t.DataType == Int32 || t.DataType == Bool) && t.NumElements() <= maxValLen {
				if v, err := t.Int64s(); err == nil {
					s.vals[n.Outputs[0]] = Dims(v...)
				}
			}
		case "value_float":
			s.set(n, 0, Float, Shape{})
		case "value_floats":
			s.set(n, 0, Float, Dims(int64(len(a.Floats))))
		case "value_int":
			s.set(n, 0, Int64, Shape{})
			s.vals[n.Outputs[0]] = Dims(a.Int)
		case "value_ints":
			s.set(n, 0, Int64, Dims(int64(len(a.Ints))))
			s.vals[n.Outputs[0]] = Dims(a.Ints...)
		default:
			s.set(n, 0, Undefined, nil)
		}
	}
	return nil
}

func (s *shapeState) axesOf(n *Node, inputIndex int) ([]int64, bool) {
	if a := n.Attr("axes"); a != nil {
		return a.Ints, true
	}
	if n.Input(inputIndex) != "" {
		v := s.ints(n, inputIndex)
		return v, v != nil
	}
	return nil, true
}

func (s *shapeState) squeeze(n *Node, xs Shape, xe DataType) error {
	axes, ok := s.axesOf(n, 1)
	if xs == nil || !ok {
		s.set(n, 0, xe, nil)
		return nil
	}
	var out Shape
	if n.OpType == "Unsqueeze" {
		rank := len(xs) + len(axes)
		norm := make([]int, len(axes))
		for i, a := range axes {
			var err error
			if norm[i], err = normAxis(a, rank); err != nil {
				return err
			}
		}
		out = make(Shape, 0, rank)
		j := 0
		for i := 0; i < rank; i++ {
			if slices.Contains(norm, i) {
				out = append(out, D(1))
			} else {
				out = append(out, xs[j])
				j++
			}
		}
	} else {
		drop := map[int]bool{}
		for _, a := range axes {
			k, err := normAxis(a, len(xs))
			if err != nil {
				return err
			}
			drop[k] = true
		}
		for i, d := range xs {
			if (len(axes) == 0 && d.Known() && d.Value == 1) || drop[i] {
				continue
			}
			out = append(out, d)
		}
		if out == nil {
			out = Shape{}
		}
	}
	s.set(n, 0, xe, out)
	s.copyVal(n)
	return nil
}

func (s *shapeState) concat(n *Node) error {
	var shapes []Shape
	var elem DataType
	for i := range n.Inputs {
		t := s.in(n, i)
		if t == nil || t.Shape == nil {
			s.set(n, 0, Undefined, nil)
			return nil
		}
		elem = t.Elem
		shapes = append(shapes, t.Shape)
	}
	if len(shapes) == 0 {
		return fmt.Errorf("no inputs")
	}
	axis, err := normAxis(n.AttrInt("axis", 0), len(shapes[0]))
	if err != nil {
		return err
	}
	out := slices.Clone(shapes[0])
	for _, sh := range shapes[1:] {
		if len(sh) != len(out) {
			return fmt.Errorf("inputs of rank %d and %d", len(out), len(sh))
		}
		out[axis] = addDim(out[axis], sh[axis])
	}
	s.set(n, 0, elem, out)
	if axis != 0 { // values are row-major: only axis 0 appends
		return nil
	}
	var vals Shape
	for _, in := range n.Inputs {
		v, ok := s.vals[in]
		if !ok {
			return nil
		}
		vals = append(vals, v...)
	}
	s.vals[n.Outputs[0]] = vals
	return nil
}

func addDim(a, b Dim) Dim {
	ca, sa, symA := symTerm(a)
	cb, sb, symB := symTerm(b)
	switch {
	case symA && symB && sa == sb:
		return symDim(ca+cb, sa)
	case a.Known() && b.Known():
		return D(a.Value + b.Value)
	case b.Known() && b.Value == 0:
		return a
	case a.Known() && a.Value == 0:
		return b
	}
	return Unknown()
}

// reshape resolves 0 (copy) and −1 (infer) entries, cancelling matching
// symbolic dimensions so that Reshape(x[N,32,7,7], [N,−1]) gives [N,1568].
func (s *shapeState) reshape(n *Node, xs Shape, xe DataType) error {
	defer s.copyVal(n)
	target, ok := s.vals[n.Input(1)]
	if !ok {
		if t := s.in(n, 1); t != nil && len(t.Shape) == 1 && t.Shape[0].Known() {
			s.set(n, 0, xe, unknownShape(int(t.Shape[0].Value)))
		} else {
			s.set(n, 0, xe, nil)
		}
		return nil
	}
	allowZero := n.AttrInt("allowzero", 0) == 1
	out := shapeFromVal(target)
	infer := -1
	for i, d := range target {
		if d.Param != "" {
			continue
		}
		switch {
		case d.Value == 0 && !allowZero:
			if xs == nil || i >= len(xs) {
				return fmt.Errorf("shape %v copies dimension %d of an input of rank %d", target, i, len(xs))
			}
			out[i] = xs[i]
		case d.Value == -1:
			if infer >= 0 {
				return fmt.Errorf("shape %v has more than one -1", target)
			}
			infer = i
		case d.Value < -1:
			return fmt.Errorf("shape %v has a negative dimension", target)
		}
	}
	if infer < 0 {
		if xs != nil && xs.Known() && out.Known() && xs.Size() != out.Size() {
			return fmt.Errorf("cannot reshape %v (%d elements) to %v", xs, xs.Size(), out)
		}
		s.set(n, 0, xe, out)
		return nil
	}
	out[infer] = inferredDim(xs, out, infer)
	if out[infer].Value == -2 {
		return fmt.Errorf("cannot reshape %v to %v", xs, target)
	}
	s.set(n, 0, xe, out)
	return nil
}

// inferredDim computes the −1 entry of a Reshape target: the input's size
// divided by the other target dimensions, with symbolic dimensions that
// appear on both sides cancelling. It returns Unknown() when that cannot be
// decided and D(−2) when the sizes do not divide.
func inferredDim(xs, out Shape, infer int) Dim {
	if xs == nil {
		return Unknown()
	}
	num, syms := int64(1), map[string]int{}
	for _, d := range xs {
		c, sym, isSym := symTerm(d)
		switch {
		case d.Known():
			num *= d.Value
		case isSym:
			num *= c
			syms[sym]++
		default:
			return Unknown()
		}
	}
	den := int64(1)
	for i, d := range out {
		c, sym, isSym := symTerm(d)
		switch {
		case i == infer:
		case d.Known():
			den *= d.Value
		case isSym && syms[sym] > 0:
			den *= c
			syms[sym]--
		default:
			return Unknown()
		}
	}
	left := ""
	for sym, c := range syms {
		switch {
		case c == 0:
		case c == 1 && left == "":
			left = sym
		default:
			return Unknown()
		}
	}
	if den == 0 || num%den != 0 {
		if left != "" {
			return Unknown()
		}
		return Dim{Value: -2}
	}
	if left != "" {
		return symDim(num/den, left)
	}
	return D(num / den)
}

func (s *shapeState) pad(n *Node, xs Shape, xe DataType) error {
	pads := n.AttrInts("pads", nil)
	if pads == nil && n.Input(1) != "" {
		pads = s.ints(n, 1)
	}
	if xs == nil || pads == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	axes := make([]int, len(xs))
	for i := range axes {
		axes[i] = i
	}
	if n.Input(3) != "" {
		av := s.ints(n, 3)
		if av == nil {
			s.set(n, 0, xe, unknownShape(len(xs)))
			return nil
		}
		axes = axes[:0]
		for _, a := range av {
			k, err := normAxis(a, len(xs))
			if err != nil {
				return err
			}
			axes = append(axes, k)
		}
	}
	if len(pads) != 2*len(axes) {
		return fmt.Errorf("pads %v do not match rank %d", pads, len(xs))
	}
	out := slices.Clone(xs)
	for j, ax := range axes {
		out[ax] = addDim(out[ax], D(pads[j]+pads[j+len(axes)]))
	}
	s.set(n, 0, xe, out)
	return nil
}

func (s *shapeState) slice(n *Node, xs Shape, xe DataType) error {
	var starts, ends, axes, steps []int64
	if s.opset < 10 || n.Attr("starts") != nil {
		starts, ends, axes = n.AttrInts("starts", nil), n.AttrInts("ends", nil), n.AttrInts("axes", nil)
	} else {
		starts, ends = s.ints(n, 1), s.ints(n, 2)
		if n.Input(3) != "" {
			axes = s.ints(n, 3)
			if axes == nil {
				starts = nil
			}
		}
		if n.Input(4) != "" {
			steps = s.ints(n, 4)
			if steps == nil {
				starts = nil
			}
		}
	}
	if xs == nil || starts == nil || ends == nil || len(starts) != len(ends) {
		if xs != nil {
			s.set(n, 0, xe, unknownShape(len(xs)))
		} else {
			s.set(n, 0, xe, nil)
		}
		return nil
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = ones(len(starts))
	}
	out := slices.Clone(xs)
	for i, a := range axes {
		ax, err := normAxis(a, len(xs))
		if err != nil {
			return err
		}
		if !xs[ax].Known() {
			out[ax] = Unknown()
			continue
		}
		out[ax] = D(SliceLen(xs[ax].Value, starts[i], ends[i], steps[i]))
	}
	// Slicing a known value.
	if v, ok := s.vals[n.Input(0)]; ok && xs.Known() && xs.Size() == int64(len(v)) {
		if picked, ok := sliceVal(v, xs.Ints(), starts, ends, axes, steps); ok {
			s.vals[n.Outputs[0]] = picked
		}
	}
	s.set(n, 0, xe, out)
	return nil
}

// SliceLen is the number of elements ONNX Slice takes from a dimension of
// size dim with the given start, end and step.
func SliceLen(dim, start, end, step int64) int64 {
	if step == 0 {
		return 0
	}
	clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start, end = clamp(start, 0, dim), clamp(end, 0, dim)
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	start, end = clamp(start, 0, dim-1), clamp(end, -1, dim-1)
	if start <= end {
		return 0
	}
	return (start - end - step - 1) / -step
}

func (s *shapeState) split(n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		for i := range n.Outputs {
			s.set(n, i, xe, nil)
		}
		return nil
	}
	axis, err := normAxis(n.AttrInt("axis", 0), len(xs))
	if err != nil {
		return err
	}
	sizes := n.AttrInts("split", nil)
	if sizes == nil && n.Input(1) != "" {
		sizes = s.ints(n, 1)
	}
	if sizes == nil && xs[axis].Known() && n.Input(1) == "" {
		k := int64(len(n.Outputs))
		per := (xs[axis].Value + k - 1) / k
		for i := int64(0); i < k; i++ {
			sizes = append(sizes, min(per, xs[axis].Value-per*i))
		}
	}
	for i := range n.Outputs {
		out := slices.Clone(xs)
		if i < len(sizes) {
			out[axis] = D(sizes[i])
		} else {
			out[axis] = Unknown()
		}
		s.set(n, i, xe, out)
	}
	return nil
}

func cumSumGrad(c *gradCtx) error {
	// A prefix sum's adjoint is the suffix sum: same axis and exclusivity,
	// reversed direction.
	reverse := 1 - c.n.AttrInt("reverse", 0)
	c.setGrad(0, c.op("CumSum", []string{c.dy(0), c.in(1)},
		IntAttr("exclusive", c.n.AttrInt("exclusive", 0)), IntAttr("reverse", reverse)))
	return nil
}

func triluGrad(c *gradCtx) error {
	// Trilu keeps a triangle and zeroes the rest: its own adjoint.
	in := []string{c.dy(0)}
	if k := c.in(1); k != "" {
		in = append(in, k)
	}
	c.setGrad(0, c.op("Trilu", in, IntAttr("upper", c.n.AttrInt("upper", 1))))
	return nil
}

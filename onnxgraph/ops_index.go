package onnxgraph

import (
	"fmt"
	"slices"
)

// Indexing operators: Gather, GatherElements, GatherND and the scatters.
// Their gradients scatter-add into zeros (ScatterND or ScatterElements
// with reduction=add), so indices need not be constant.

func indexOps() map[string]*opDef {
	return map[string]*opDef{
		"Gather":          {shape: (*shapeState).gather, grad: gatherGrad, learned: []int{0}},
		"GatherElements":  {shape: gatherElementsShape, grad: gatherElementsGrad},
		"GatherND":        {shape: gatherNDShape, grad: gatherNDGrad},
		"ScatterElements": {shape: sameShape, grad: scatterGrad("GatherElements")},
		"ScatterND":       {shape: sameShape, grad: scatterGrad("GatherND")},
	}
}

// gatherGrad scatter-adds dy into zeros: ScatterND(reduction=add) with
// the gathered axis moved to the front, so indices need not be constant and
// repeated indices accumulate.
func gatherGrad(c *gradCtx) error {
	x := c.in(0)
	axis, r, err := c.axisOf(c.n, x, 0)
	if err != nil {
		return err
	}
	q, err := c.rank(c.in(1))
	if err != nil {
		return err
	}
	idx := c.unsqueeze(c.in(1), -1)
	c.setGrad(0, c.gatherBack(c.dy(0), c.shapeOf(x), r, axis, q, idx))
	return nil
}

// gatherBack returns the adjoint of y = Gather(x, indices, axis): dy (rank
// r+q−1) scatter-added into zeros of shape xShape (an int64 value) at
// positions idx (indices with a trailing axis of 1), through ScatterND with
// the gathered axis moved to the front.
func (c *gradCtx) gatherBack(dy, xShape string, r, axis, q int, idx string) string {
	zero := c.tensor([]int64{1}, []float64{0})
	if axis == 0 {
		zeros := c.op("ConstantOfShape", []string{xShape}, TensorAttr("value", zero))
		return c.op("ScatterND", []string{zeros, idx, dy}, StringAttr("reduction", "add"))
	}
	// x → [x_axis, x_0, ..., x_axis−1, x_axis+1, ...]; dy's index axes
	// [axis, axis+q) to the front likewise.
	permX := append([]int64{int64(axis)}, iota64(0, axis)...)
	permX = append(permX, iota64(axis+1, r)...)
	permY := append(iota64(axis, axis+q), iota64(0, axis)...)
	permY = append(permY, iota64(axis+q, r+q-1)...)
	zeros := c.op("ConstantOfShape", []string{c.op("Gather", []string{xShape, c.ints(permX...)})},
		TensorAttr("value", zero))
	dyT := c.op("Transpose", []string{dy}, IntsAttr("perm", permY...))
	g := c.op("ScatterND", []string{zeros, idx, dyT}, StringAttr("reduction", "add"))
	return c.op("Transpose", []string{g}, IntsAttr("perm", inversePerm(permX)...))
}

func (s *shapeState) gather(n *Node, xs Shape, xe DataType) error {
	idx := s.in(n, 1)
	if xs == nil || idx == nil || idx.Shape == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	axis, err := normAxis(n.AttrInt("axis", 0), len(xs))
	if err != nil {
		return err
	}
	out := append(slices.Concat(xs[:axis], idx.Shape), xs[axis+1:]...)
	if out == nil {
		out = Shape{} // a scalar, not an unknown rank
	}
	s.set(n, 0, xe, out)
	// Symbolic shape values: Gather(Shape(x), k).
	if v, ok := s.vals[n.Input(0)]; ok && axis == 0 {
		if ind := s.ints(n, 1); ind != nil {
			picked := make(Shape, 0, len(ind))
			for _, k := range ind {
				if k < 0 {
					k += int64(len(v))
				}
				if k < 0 || k >= int64(len(v)) {
					return fmt.Errorf("index %d out of range for %d elements", k, len(v))
				}
				picked = append(picked, v[k])
			}
			s.vals[n.Outputs[0]] = picked
		}
	}
	return nil
}

func gatherNDShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	idx := s.in(n, 1)
	if xs == nil || idx == nil || len(idx.Shape) == 0 || !idx.Shape[len(idx.Shape)-1].Known() ||
		n.AttrInt("batch_dims", 0) != 0 {
		s.set(n, 0, xe, nil)
		return nil
	}
	k := idx.Shape[len(idx.Shape)-1].Value
	if k > int64(len(xs)) {
		return fmt.Errorf("indices of depth %d for data of rank %d", k, len(xs))
	}
	s.set(n, 0, xe, slices.Concat(idx.Shape[:len(idx.Shape)-1], xs[k:]))
	return nil
}

func gatherElementsShape(s *shapeState, n *Node, _ Shape, xe DataType) error {
	if t := s.in(n, 1); t != nil {
		s.set(n, 0, xe, t.Shape)
	}
	return nil
}

func gatherElementsGrad(c *gradCtx) error {
	// Scatter-add dy into zeros at the gathered positions.
	c.setGrad(0, c.op("ScatterElements", []string{c.zerosLike(c.in(0)), c.in(1), c.dy(0)},
		IntAttr("axis", c.n.AttrInt("axis", 0)), StringAttr("reduction", "add")))
	return nil
}

func gatherNDGrad(c *gradCtx) error {
	if bd := c.n.AttrInt("batch_dims", 0); bd != 0 {
		return fmt.Errorf("batch_dims %d is not supported", bd)
	}
	c.setGrad(0, c.op("ScatterND", []string{c.zerosLike(c.in(0)), c.in(1), c.dy(0)},
		StringAttr("reduction", "add")))
	return nil
}

// scatterGrad differentiates ScatterElements and ScatterND (gather is the
// matching Gather operator) through the data and updates inputs: data's
// gradient is dy with the overwritten positions zeroed (scatter zeros), the
// updates' the gathered dy. With reduction=add the data keeps all of dy.
func scatterGrad(gather string) func(*gradCtx) error {
	return func(c *gradCtx) error {
		var attrs []*Attribute
		if a := c.n.Attr("axis"); a != nil {
			attrs = append(attrs, a)
		}
		dy, idx := c.dy(0), c.in(1)
		switch red := c.n.AttrString("reduction", "none"); red {
		case "none":
			if c.needs(0) {
				c.setGrad(0, c.op(c.n.OpType, []string{dy, idx, c.zerosLike(c.in(2))}, attrs...))
			}
		case "add":
			c.setGrad(0, dy)
		default:
			return fmt.Errorf("reduction %q is not differentiable here", red)
		}
		if c.needs(2) {
			c.setGrad(2, c.op(gather, []string{dy, idx}, attrs...))
		}
		return nil
	}
}

package onnxgraph

import (
	"fmt"
	"math"
	"slices"
)

// Resampling operators: Resize, DepthToSpace and SpaceToDepth, all linear
// in their input.

func resampleOps() map[string]*opDef {
	return map[string]*opDef{
		"Resize":       {shape: resizeShape, grad: resizeGrad},
		"DepthToSpace": {shape: depthToSpaceShape, grad: depthToSpaceGrad},
		"SpaceToDepth": {shape: spaceToDepthShape, grad: spaceToDepthGrad},
	}
}

// blockShape rearranges [N, C, H, W]: DepthToSpace divides C by b² and
// multiplies H and W by b; SpaceToDepth the reverse.
func blockShape(s *shapeState, n *Node, xs Shape, xe DataType, toSpace bool) error {
	b := n.AttrInt("blocksize", 0)
	if xs == nil || len(xs) != 4 || b <= 0 {
		s.set(n, 0, xe, nil)
		return nil
	}
	out := slices.Clone(xs)
	bb := D(b * b)
	if toSpace {
		out[1], out[2], out[3] = divDim(xs[1], bb), mulDim(xs[2], D(b)), mulDim(xs[3], D(b))
	} else {
		out[1], out[2], out[3] = mulDim(xs[1], bb), divDim(xs[2], D(b)), divDim(xs[3], D(b))
	}
	s.set(n, 0, xe, out)
	return nil
}

func divDim(a, b Dim) Dim {
	if a.Known() && b.Known() && b.Value != 0 {
		return D(a.Value / b.Value)
	}
	return Unknown()
}

func depthToSpaceShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	return blockShape(s, n, xs, xe, true)
}

func spaceToDepthShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	return blockShape(s, n, xs, xe, false)
}

func depthToSpaceGrad(c *gradCtx) error {
	b := c.n.AttrInt("blocksize", 0)
	if c.n.AttrString("mode", "DCR") == "DCR" {
		// SpaceToDepth is exactly the inverse of DepthToSpace in DCR mode.
		c.setGrad(0, c.op("SpaceToDepth", []string{c.dy(0)}, IntAttr("blocksize", b)))
		return nil
	}
	// CRD: x [N, C·b·b, H, W] → [N, C, b, b, H, W] → perm [0,1,4,2,5,3] →
	// [N, C, H·b, W·b]; the gradient undoes each step.
	xd, err := c.staticDims(c.in(0), 0)
	if err != nil {
		return err
	}
	ch, h, w := xd[1]/(b*b), xd[2], xd[3]
	g := c.b.ReshapeTo(c.dy(0), 0, ch, h, b, w, b)
	g = c.op("Transpose", []string{g}, IntsAttr("perm", 0, 1, 3, 5, 2, 4))
	c.setGrad(0, c.b.ReshapeTo(g, 0, xd[1], h, w))
	return nil
}

func spaceToDepthGrad(c *gradCtx) error {
	c.setGrad(0, c.op("DepthToSpace", []string{c.dy(0)}, IntAttr("blocksize", c.n.AttrInt("blocksize", 0)),
		StringAttr("mode", "DCR")))
	return nil
}

// resizeParams returns Resize's per-axis scales and output sizes from its
// constant scales or sizes input (opset 11+: X, roi, scales, sizes).
func resizeParams(in []int64, scales []float64, sizes []int64) ([]float64, []int64, error) {
	r := len(in)
	switch {
	case len(sizes) == r:
		sc := make([]float64, r)
		for i := range sc {
			sc[i] = float64(sizes[i]) / float64(in[i])
		}
		return sc, sizes, nil
	case len(scales) == r:
		out := make([]int64, r)
		for i := range out {
			out[i] = int64(math.Floor(float64(in[i]) * scales[i]))
		}
		return scales, out, nil
	}
	return nil, nil, fmt.Errorf("scales %v or sizes %v do not match rank %d", scales, sizes, r)
}

func resizeShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	if xs == nil {
		s.set(n, 0, xe, nil)
		return nil
	}
	out := unknownShape(len(xs))
	var scales []float64
	if t := s.g.Initializer(n.Input(2)); t != nil {
		scales, _ = t.Float64s()
	}
	if _, sizes, err := resizeParams(xs.Ints(), scales, s.ints(n, 3)); err == nil && xs.Known() {
		out = Dims(sizes...)
	} else if sizes := s.ints(n, 3); len(sizes) == len(xs) {
		out = Dims(sizes...)
	}
	s.set(n, 0, xe, out)
	return nil
}

// resizeMatrix returns the [out, in] matrix A of a 1-D Resize, y = A·x, for
// the nearest and linear modes and ONNX's coordinate transformations.
func resizeMatrix(n *Node, in, out int64, scale float64) ([]float64, error) {
	a := make([]float64, out*in)
	coord := n.AttrString("coordinate_transformation_mode", "half_pixel")
	mode := n.AttrString("mode", "nearest")
	for o := int64(0); o < out; o++ {
		var x float64
		switch coord {
		case "half_pixel":
			x = (float64(o)+0.5)/scale - 0.5
		case "pytorch_half_pixel":
			if out > 1 {
				x = (float64(o)+0.5)/scale - 0.5
			}
		case "align_corners":
			if out > 1 {
				x = float64(o) * float64(in-1) / float64(out-1)
			}
		case "asymmetric":
			x = float64(o) / scale
		case "tf_half_pixel_for_nn":
			x = (float64(o) + 0.5) / scale
		default:
			return nil, fmt.Errorf("coordinate_transformation_mode %q is not supported", coord)
		}
		row := a[o*in : (o+1)*in]
		switch mode {
		case "nearest":
			var i float64
			switch nm := n.AttrString("nearest_mode", "round_prefer_floor"); nm {
			case "round_prefer_floor":
				i = math.Ceil(x - 0.5)
			case "round_prefer_ceil":
				i = math.Floor(x + 0.5)
			case "floor":
				i = math.Floor(x)
			case "ceil":
				i = math.Ceil(x)
			default:
				return nil, fmt.Errorf("nearest_mode %q is not supported", nm)
			}
			row[min(max(int64(i), 0), in-1)] = 1
		case "linear":
			x = min(max(x, 0), float64(in-1))
			i0 := int64(math.Floor(x))
			i1 := min(i0+1, in-1)
			w := x - float64(i0)
			row[i0] += 1 - w
			row[i1] += w
		default:
			return nil, fmt.Errorf("mode %q is not supported", mode)
		}
	}
	return a, nil
}

// resizeGrad differentiates Resize in nearest and linear modes. With
// constant scales or sizes the operator is linear and separable: along
// each resized axis y = A·x with an interpolation matrix A built here, so
// the gradient applies Aᵀ axis by axis (MatMul on the last axis between
// Transposes).
func resizeGrad(c *gradCtx) error {
	if c.n.AttrInt("antialias", 0) != 0 {
		return fmt.Errorf("antialias is not supported")
	}
	x := c.in(0)
	xd, err := c.staticDims(x, 0)
	if err != nil {
		return err
	}
	scales, _ := c.constFloats(c.in(2))
	sizes, _ := c.constInts(c.in(3))
	if c.in(4) != "" || c.n.Attr("axes") != nil {
		return fmt.Errorf("the axes attribute is not supported")
	}
	sc, out, err := resizeParams(xd, scales, sizes)
	if err != nil {
		return err
	}
	r := len(xd)
	g := c.dy(0)
	for ax := r - 1; ax >= 0; ax-- {
		if xd[ax] == out[ax] && sc[ax] == 1 {
			continue
		}
		if xd[ax] < 0 {
			return fmt.Errorf("resized axis %d must be static", ax)
		}
		a, err := resizeMatrix(c.n, xd[ax], out[ax], sc[ax])
		if err != nil {
			return err
		}
		mat := c.constTensor([]int64{out[ax], xd[ax]}, a)
		perm := iota64(0, r)
		perm[ax], perm[r-1] = int64(r-1), int64(ax)
		if ax != r-1 {
			g = c.op("Transpose", []string{g}, IntsAttr("perm", perm...))
		}
		g = c.op("MatMul", []string{g, mat}) // [..., out] × [out, in]
		if ax != r-1 {
			g = c.op("Transpose", []string{g}, IntsAttr("perm", perm...))
		}
	}
	c.setGrad(0, g)
	return nil
}

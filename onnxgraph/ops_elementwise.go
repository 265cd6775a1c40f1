package onnxgraph

import (
	"fmt"
	"math"
)

// Elementwise operators: unary functions, broadcasting arithmetic,
// comparisons and logic, Where, Cast, Clip and Dropout. The gradient of a
// broadcast operand is summed back to the operand's shape (reduceTo).

func elementwiseOps() map[string]*opDef {
	t := map[string]*opDef{
		"Identity":  {shape: identityShape, grad: identityGrad},
		"Neg":       {shape: sameShape, grad: negGrad},
		"Relu":      {shape: sameShape, grad: reluGrad},
		"LeakyRelu": {shape: sameShape, grad: leakyReluGrad},
		"PRelu": {shape: broadcastShape, grad: preluGrad, params: []int{1}, legacyBroadcast: true,
			upgrade: (*upgrader).prelu},
		"Elu":        {shape: sameShape, grad: eluGrad},
		"Selu":       {shape: sameShape, grad: seluGrad},
		"Sigmoid":    {shape: sameShape, grad: sigmoidGrad},
		"Tanh":       {shape: sameShape, grad: tanhGrad},
		"Softplus":   {shape: sameShape, grad: softplusGrad},
		"Softsign":   {shape: sameShape, grad: softsignGrad},
		"Exp":        {shape: sameShape, grad: expGrad},
		"Log":        {shape: sameShape, grad: logGrad},
		"Sqrt":       {shape: sameShape, grad: sqrtGrad},
		"Reciprocal": {shape: sameShape, grad: reciprocalGrad},
		"Abs":        {shape: valueShape, grad: absGrad},
		"Clip":       {shape: sameShape, grad: clipGrad, upgrade: (*upgrader).clip},
		"Dropout":    {shape: dropoutShape, grad: dropoutGrad, prepare: dropoutPrepare, upgrade: (*upgrader).dropout},
		"Cast":       {shape: castShape, grad: castGrad},
		"CastLike":   {shape: castLikeShape},

		"Add":   {shape: broadcastShape, grad: addGrad, legacyBroadcast: true, learned: []int{0, 1}},
		"Sub":   {shape: broadcastShape, grad: subGrad, legacyBroadcast: true},
		"Mul":   {shape: broadcastShape, grad: mulGrad, legacyBroadcast: true, learned: []int{0, 1}},
		"Div":   {shape: broadcastShape, grad: divGrad, legacyBroadcast: true},
		"Pow":   {shape: broadcastShape, grad: powGrad, legacyBroadcast: true},
		"Sum":   {shape: broadcastShape, grad: sumGrad, learned: []int{allInputs}},
		"Where": {shape: whereShape, grad: whereGrad, learned: []int{1, 2}},

		// Differentiable almost everywhere with a zero derivative: no
		// gradient flows through them.
		"Floor": {shape: sameShape, noGrad: true}, "Ceil": {shape: sameShape, noGrad: true},
		"Round": {shape: sameShape, noGrad: true}, "Sign": {shape: sameShape, noGrad: true},
		"IsNaN": {shape: boolShape, noGrad: true}, "IsInf": {shape: boolShape, noGrad: true},
		"Not":               {shape: boolShape, noGrad: true},
		"RandomUniformLike": {shape: sameShape, noGrad: true},
		"RandomNormalLike":  {shape: sameShape, noGrad: true},
		"Bernoulli":         {shape: sameShape, noGrad: true},
		"Mod":               {shape: broadcastShape},
		"BitShift":          {shape: broadcastShape},
	}
	for _, name := range []string{"Equal", "Greater", "Less", "And", "Or", "Xor"} {
		t[name] = &opDef{shape: compareShape, noGrad: true, legacyBroadcast: true}
	}
	for _, name := range []string{"GreaterOrEqual", "LessOrEqual"} {
		t[name] = &opDef{shape: compareShape, noGrad: true}
	}
	t["Max"] = &opDef{shape: broadcastShape, grad: extremumGrad}
	t["Min"] = &opDef{shape: broadcastShape, grad: extremumGrad}
	t["Mean"] = &opDef{shape: broadcastShape, grad: meanGrad}
	t["Erf"] = &opDef{shape: sameShape, grad: erfGrad}
	t["Gelu"] = &opDef{shape: sameShape, grad: geluGrad}
	t["HardSigmoid"] = &opDef{shape: sameShape, grad: hardSigmoidGrad}
	t["HardSwish"] = &opDef{shape: sameShape, grad: hardSwishGrad}
	t["Mish"] = &opDef{shape: sameShape, grad: mishGrad}
	for _, name := range []string{"Celu", "Sin", "Cos", "ThresholdedRelu", "Shrink"} {
		t[name] = &opDef{shape: sameShape}
	}
	for _, name := range []string{"Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Cosh", "Sinh", "Tan"} {
		t[name] = &opDef{}
	}
	return t
}

// sameShape gives output 0 the type of input 0.
func sameShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, xe, xs)
	return nil
}

// valueShape is sameShape, following integer values.
func valueShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, xe, xs)
	s.valueArith(n)
	return nil
}

// identityShape is sameShape, keeping a known shape value.
func identityShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, xe, xs)
	if v, ok := s.vals[n.Input(0)]; ok {
		s.vals[n.Outputs[0]] = v
	}
	return nil
}

func dropoutShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, xe, xs)
	s.set(n, 1, Bool, xs)
	return nil
}

// boolShape gives output 0 input 0's shape and type bool.
func boolShape(s *shapeState, n *Node, xs Shape, _ DataType) error {
	s.set(n, 0, Bool, xs)
	s.valueArith(n)
	return nil
}

// broadcastShape broadcasts the inputs (of input 0's type), following
// arithmetic on known shape values.
func broadcastShape(s *shapeState, n *Node, _ Shape, xe DataType) error {
	return s.broadcastTo(n, xe)
}

// compareShape broadcasts the inputs to a bool output.
func compareShape(s *shapeState, n *Node, _ Shape, _ DataType) error {
	return s.broadcastTo(n, Bool)
}

// whereShape broadcasts the inputs to input 1's type.
func whereShape(s *shapeState, n *Node, _ Shape, xe DataType) error {
	if t := s.in(n, 1); t != nil {
		xe = t.Elem
	}
	return s.broadcastTo(n, xe)
}

func (s *shapeState) broadcastTo(n *Node, elem DataType) error {
	shapes := make([]Shape, 0, len(n.Inputs))
	for i := range n.Inputs {
		t := s.in(n, i)
		if t == nil {
			s.set(n, 0, elem, nil)
			return nil
		}
		shapes = append(shapes, t.Shape)
	}
	out, err := broadcast(shapes...)
	if err != nil {
		return err
	}
	s.set(n, 0, elem, out)
	s.valueArith(n)
	return nil
}

func castShape(s *shapeState, n *Node, xs Shape, xe DataType) error {
	s.set(n, 0, DataType(n.AttrInt("to", int64(xe))), xs)
	if v, ok := s.vals[n.Input(0)]; ok {
		s.vals[n.Outputs[0]] = v
	}
	return nil
}

func castLikeShape(s *shapeState, n *Node, xs Shape, _ DataType) error {
	if t := s.in(n, 1); t != nil {
		s.set(n, 0, t.Elem, xs)
	}
	return nil
}

// binary applies the gradient of a broadcasting binary node: da and db
// compute the full-shaped gradients of inputs 0 and 1 (each only called
// when that input needs one).
func (c *gradCtx) binary(da, db func() string) error {
	for i, f := range []func() string{da, db} {
		if !c.needs(i) || f == nil {
			continue
		}
		g, err := c.reduceTo(f(), c.in(i), c.out(0))
		if err != nil {
			return err
		}
		c.setGrad(i, g)
	}
	return nil
}

func addGrad(c *gradCtx) error {
	dy := c.dy(0)
	return c.binary(func() string { return dy }, func() string { return dy })
}

func subGrad(c *gradCtx) error {
	dy := c.dy(0)
	if err := c.binary(func() string { return dy }, nil); err != nil {
		return err
	}
	if c.needs(1) {
		g, err := c.reduceTo(dy, c.in(1), c.out(0))
		if err != nil {
			return err
		}
		c.setGrad(1, c.op("Neg", []string{g}))
	}
	return nil
}

func mulGrad(c *gradCtx) error {
	// y = a·b: da = dy·b, db = dy·a
	dy, a, b := c.dy(0), c.in(0), c.in(1)
	return c.binary(func() string { return c.mul(dy, b) }, func() string { return c.mul(dy, a) })
}

func divGrad(c *gradCtx) error {
	// y = a/b: da = dy/b, db = −dy·a/b² = −(dy/b)·y.
	dy, b, y := c.dy(0), c.in(1), c.out(0)
	q := c.op("Div", []string{dy, b})
	if err := c.binary(func() string { return q }, nil); err != nil {
		return err
	}
	if c.needs(1) {
		g, err := c.reduceTo(c.op("Mul", []string{q, y}), b, y)
		if err != nil {
			return err
		}
		c.setGrad(1, c.op("Neg", []string{g}))
	}
	return nil
}

func sumGrad(c *gradCtx) error {
	for i := range c.n.Inputs {
		if c.needs(i) {
			g, err := c.reduceTo(c.dy(0), c.in(i), c.out(0))
			if err != nil {
				return err
			}
			c.setGrad(i, g)
		}
	}
	return nil
}

func negGrad(c *gradCtx) error {
	c.setGrad(0, c.neg(c.dy(0)))
	return nil
}

func identityGrad(c *gradCtx) error {
	c.setGrad(0, c.dy(0))
	return nil
}

func expandGrad(c *gradCtx) error {
	return c.binary(func() string { return c.dy(0) }, nil)
}

// positive returns the bool mask v > 0.
func (c *gradCtx) positive(v string) string {
	return c.op("Greater", []string{v, c.scalar(0)})
}

func reluGrad(c *gradCtx) error {
	// dx = dy·[y > 0]. Reading the output (not the input) lets ONNX
	// Runtime fuse the forward Relu into its producer; Cast·Mul is faster
	// than Where or Sign on the CPU provider.
	c.dx(func() string { return c.cast(c.positive(c.out(0))) })
	return nil
}

func leakyReluGrad(c *gradCtx) error {
	alpha := float64(c.n.AttrFloat("alpha", 0.01))
	sign := c.out(0)
	if alpha <= 0 {
		sign = c.in(0)
	}
	dy := c.dy(0)
	neg := c.op("Mul", []string{dy, c.scalar(alpha)})
	c.setGrad(0, c.op("Where", []string{c.positive(sign), dy, neg}))
	return nil
}

func preluGrad(c *gradCtx) error {
	x, slope, dy := c.in(0), c.in(1), c.dy(0)
	pos := c.positive(x)
	if c.needs(0) {
		c.setGrad(0, c.op("Where", []string{pos, dy, c.op("Mul", []string{dy, slope})}))
	}
	if c.needs(1) {
		full := c.op("Where", []string{pos, c.scalar(0), c.op("Mul", []string{dy, x})})
		g, err := c.reduceTo(full, slope, c.out(0))
		if err != nil {
			return err
		}
		c.setGrad(1, g)
	}
	return nil
}

func eluGrad(c *gradCtx) error {
	// y = α(eˣ−1) for x ≤ 0, so dy/dx = y + α there.
	alpha := float64(c.n.AttrFloat("alpha", 1))
	dy := c.dy(0)
	neg := c.op("Mul", []string{dy, c.op("Add", []string{c.out(0), c.scalar(alpha)})})
	c.setGrad(0, c.op("Where", []string{c.positive(c.in(0)), dy, neg}))
	return nil
}

func seluGrad(c *gradCtx) error {
	alpha := float64(c.n.AttrFloat("alpha", 1.67326319217681884765625))
	gamma := float64(c.n.AttrFloat("gamma", 1.05070102214813232421875))
	dy := c.dy(0)
	pos := c.op("Mul", []string{dy, c.scalar(gamma)})
	neg := c.op("Mul", []string{dy, c.op("Add", []string{c.out(0), c.scalar(gamma * alpha)})})
	c.setGrad(0, c.op("Where", []string{c.positive(c.in(0)), pos, neg}))
	return nil
}

func sigmoidGrad(c *gradCtx) error {
	// dy/dx = y(1 − y)
	y := c.out(0)
	c.dx(func() string { return c.mul(y, c.sub(c.scalar(1), y)) })
	return nil
}

func tanhGrad(c *gradCtx) error {
	// dy/dx = 1 − y²
	y := c.out(0)
	c.dx(func() string { return c.sub(c.scalar(1), c.sqr(y)) })
	return nil
}

func softplusGrad(c *gradCtx) error {
	// dy/dx = σ(x)
	c.dx(func() string { return c.op("Sigmoid", []string{c.in(0)}) })
	return nil
}

func softsignGrad(c *gradCtx) error {
	// y = x/(1+|x|): dy/dx = 1/(1+|x|)².
	d := c.op("Add", []string{c.scalar(1), c.op("Abs", []string{c.in(0)})})
	c.setGrad(0, c.op("Div", []string{c.dy(0), c.op("Mul", []string{d, d})}))
	return nil
}

func expGrad(c *gradCtx) error {
	// dy/dx = y
	c.dx(func() string { return c.out(0) })
	return nil
}

func logGrad(c *gradCtx) error {
	// dx = dy/x
	c.setGrad(0, c.div(c.dy(0), c.in(0)))
	return nil
}

func sqrtGrad(c *gradCtx) error {
	// dx = dy/2y
	c.setGrad(0, c.div(c.dy(0), c.add(c.out(0), c.out(0))))
	return nil
}

func reciprocalGrad(c *gradCtx) error {
	// dx = −dy·y²
	c.setGrad(0, c.neg(c.mul(c.dy(0), c.sqr(c.out(0)))))
	return nil
}

func absGrad(c *gradCtx) error {
	// dy/dx = sign(x)
	c.dx(func() string { return c.op("Sign", []string{c.in(0)}) })
	return nil
}

func powGrad(c *gradCtx) error {
	// y = xᵉ: dx = dy·e·x^(e−1), de = dy·y·ln x.
	x, e, y, dy := c.in(0), c.in(1), c.out(0), c.dy(0)
	if c.types[e] == nil || c.types[e].Elem != c.elem {
		return fmt.Errorf("exponent %q must have the base's type %v", e, c.elem)
	}
	return c.binary(
		func() string {
			em1 := c.op("Sub", []string{e, c.scalar(1)})
			return c.op("Mul", []string{dy, c.op("Mul", []string{e, c.op("Pow", []string{x, em1})})})
		},
		func() string {
			return c.op("Mul", []string{dy, c.op("Mul", []string{y, c.op("Log", []string{x})})})
		})
}

func clipGrad(c *gradCtx) error {
	x, lo, hi, dy := c.in(0), c.in(1), c.in(2), c.dy(0)
	if lo == "" && c.n.Attr("min") != nil || hi == "" && c.n.Attr("max") != nil {
		return fmt.Errorf("min/max attributes (opset < 11) must be converted first")
	}
	var inside string
	for _, bound := range []struct {
		v  string
		op string
	}{{lo, "GreaterOrEqual"}, {hi, "LessOrEqual"}} {
		if bound.v == "" {
			continue
		}
		m := c.op(bound.op, []string{x, bound.v})
		if inside == "" {
			inside = m
		} else {
			inside = c.op("And", []string{inside, m})
		}
	}
	if inside == "" {
		c.setGrad(0, dy)
		return nil
	}
	zero := c.scalar(0)
	if c.needs(0) {
		c.setGrad(0, c.op("Where", []string{inside, dy, zero}))
	}
	for i, cmp := range []string{1: "Less", 2: "Greater"} {
		if i > 0 && c.needs(i) {
			full := c.op("Where", []string{c.op(cmp, []string{x, c.in(i)}), dy, zero})
			g, err := c.reduceTo(full, c.in(i), c.out(0))
			if err != nil {
				return err
			}
			c.setGrad(i, g)
		}
	}
	return nil
}

func whereGrad(c *gradCtx) error {
	cond, dy, zero := c.in(0), c.dy(0), c.scalar(0)
	for i, args := range [][]string{1: {cond, dy, zero}, 2: {cond, zero, dy}} {
		if i > 0 && c.needs(i) {
			g, err := c.reduceTo(c.op("Where", args), c.in(i), c.out(0))
			if err != nil {
				return err
			}
			c.setGrad(i, g)
		}
	}
	return nil
}

func castGrad(c *gradCtx) error {
	t := c.types[c.in(0)]
	if t == nil || !t.Elem.IsFloat() {
		return nil
	}
	g := c.dy(0)
	if ot := c.types[c.out(0)]; ot == nil || ot.Elem != t.Elem {
		g = c.op("Cast", []string{g}, IntAttr("to", int64(t.Elem)))
	}
	c.setGrad(0, g)
	return nil
}

// dropoutPrepare makes sure the mask output exists: the gradient reads it,
// and ONNX Runtime removes a Dropout whose mask is unused.
func dropoutPrepare(c *gradCtx) error {
	if c.out(1) == "" {
		mask := c.b.Fresh(c.out(0) + "_mask")
		for len(c.n.Outputs) < 2 {
			c.n.Outputs = append(c.n.Outputs, "")
		}
		c.n.Outputs[1] = mask
		c.types[mask] = &TensorType{Elem: Bool, Shape: c.shape(c.out(0))}
	}
	return nil
}

func dropoutGrad(c *gradCtx) error {
	training := false
	if tm := c.in(2); tm != "" {
		v, ok := c.constInts(tm)
		if !ok || len(v) != 1 {
			return fmt.Errorf("training_mode %q must be a constant", tm)
		}
		training = v[0] != 0
	}
	ratio := 0.5
	if r := c.in(1); r != "" {
		v, ok := c.constFloats(r)
		if !ok || len(v) != 1 {
			return fmt.Errorf("ratio %q must be a constant", r)
		}
		ratio = v[0]
	}
	if !training || ratio == 0 {
		c.setGrad(0, c.dy(0))
		return nil
	}
	scaled := c.op("Mul", []string{c.dy(0), c.scalar(1 / (1 - ratio))})
	c.setGrad(0, c.op("Where", []string{c.out(1), scaled, c.scalar(0)}))
	return nil
}

func erfGrad(c *gradCtx) error {
	// d erf(x)/dx = 2/√π · exp(−x²)
	x := c.in(0)
	c.dx(func() string { return c.mul(c.scalar(2/math.Sqrt(math.Pi)), c.exp(c.neg(c.sqr(x)))) })
	return nil
}

func geluGrad(c *gradCtx) error {
	x := c.in(0)
	switch a := c.n.AttrString("approximate", "none"); a {
	case "none":
		// y = x·Φ(x): dy/dx = Φ(x) + x·φ(x), Φ(x) = ½(1 + erf(x/√2)),
		// φ(x) = exp(−x²/2)/√(2π).
		c.dx(func() string {
			cdf := c.mul(c.scalar(0.5), c.add(c.scalar(1), c.op("Erf", []string{c.mul(x, c.scalar(1/math.Sqrt2))})))
			pdf := c.mul(c.scalar(1/math.Sqrt(2*math.Pi)), c.exp(c.mul(c.sqr(x), c.scalar(-0.5))))
			return c.add(cdf, c.mul(x, pdf))
		})
	case "tanh":
		// y = ½x(1 + t), t = tanh(k(x + 0.044715x³)), k = √(2/π):
		// dy/dx = ½(1 + t) + ½x(1 − t²)·k(1 + 3·0.044715x²).
		c.dx(func() string {
			k, a := math.Sqrt(2/math.Pi), 0.044715
			x2 := c.sqr(x)
			t := c.op("Tanh", []string{c.mul(c.scalar(k), c.add(x, c.mul(c.scalar(a), c.mul(x2, x))))})
			du := c.mul(c.scalar(k), c.add(c.scalar(1), c.mul(c.scalar(3*a), x2)))
			dt := c.mul(c.sub(c.scalar(1), c.sqr(t)), du)
			return c.mul(c.scalar(0.5), c.add(c.add(c.scalar(1), t), c.mul(x, dt)))
		})
	default:
		return fmt.Errorf("unknown approximate %q", a)
	}
	return nil
}

// inside returns the bool mask 0 < h < 1 of a HardSigmoid output h: where
// the function is linear.
func (c *gradCtx) inside(h string) string {
	return c.op("And", []string{c.positive(h), c.op("Less", []string{h, c.scalar(1)})})
}

func hardSigmoidGrad(c *gradCtx) error {
	// y = max(0, min(1, αx + β)): dy/dx = α where 0 < y < 1, else 0.
	alpha := float64(c.n.AttrFloat("alpha", 0.2))
	c.setGrad(0, c.where(c.inside(c.out(0)), c.mul(c.dy(0), c.scalar(alpha)), c.scalar(0)))
	return nil
}

func hardSwishGrad(c *gradCtx) error {
	// y = x·h(x), h = HardSigmoid(α=1/6, β=½): dy/dx = h + x·α·[0 < h < 1].
	x := c.in(0)
	c.dx(func() string {
		h := c.op("HardSigmoid", []string{x}, FloatAttr("alpha", 1.0/6), FloatAttr("beta", 0.5))
		return c.add(h, c.where(c.inside(h), c.mul(x, c.scalar(1.0/6)), c.scalar(0)))
	})
	return nil
}

func mishGrad(c *gradCtx) error {
	// y = x·tanh(softplus(x)): dy/dx = t + x·(1 − t²)·σ(x), t = tanh(softplus(x)).
	x := c.in(0)
	c.dx(func() string {
		t := c.op("Tanh", []string{c.op("Softplus", []string{x})})
		return c.add(t, c.mul(x, c.mul(c.sub(c.scalar(1), c.sqr(t)), c.op("Sigmoid", []string{x}))))
	})
	return nil
}

// extremumGrad differentiates Max and Min (variadic, broadcasting): dy goes
// to the inputs equal to the output, split evenly between ties, as
// PyTorch's maximum and minimum do.
func extremumGrad(c *gradCtx) error {
	if len(c.n.Inputs) == 1 {
		c.setGrad(0, c.dy(0))
		return nil
	}
	y := c.out(0)
	wins := make([]string, len(c.n.Inputs))
	for i, x := range c.n.Inputs {
		wins[i] = c.cast(c.op("Equal", []string{x, y}))
	}
	share := c.div(c.dy(0), c.op("Sum", wins))
	for i := range c.n.Inputs {
		if c.needs(i) {
			if err := c.dxTo(i, c.mul(share, wins[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// meanGrad differentiates the variadic Mean: each input gets dy/k.
func meanGrad(c *gradCtx) error {
	g := c.mul(c.dy(0), c.scalar(1/float64(len(c.n.Inputs))))
	for i := range c.n.Inputs {
		if c.needs(i) {
			if err := c.dxTo(i, g); err != nil {
				return err
			}
		}
	}
	return nil
}

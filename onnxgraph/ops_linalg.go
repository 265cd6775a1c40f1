package onnxgraph

import (
	"fmt"
	"slices"
	"strings"
)

// Gemm, MatMul and Einsum.

func linalgOps() map[string]*opDef {
	return map[string]*opDef{
		"Gemm": {shape: gemmShape, grad: gemmGrad, params: []int{0, 1, 2}, decay: []int{0, 1},
			legacyBroadcast: true},
		"MatMul": {shape: matmulShape, grad: matMulGrad, params: []int{0, 1}, decay: []int{0, 1}},
		"Einsum": {shape: einsumShape, grad: einsumGrad},
	}
}

func gemmShape(s *shapeState, n *Node, _ Shape, _ DataType) error   { return s.gemm(n) }
func matmulShape(s *shapeState, n *Node, _ Shape, _ DataType) error { return s.matmul(n) }

// gemmGrad differentiates Y = α·A'·B' + β·C (A' = Aᵀ when transA, B' = Bᵀ
// when transB). Each matrix gradient is one Gemm with the transpositions
// folded into its attributes.
func gemmGrad(c *gradCtx) error {
	a, b, dy := c.in(0), c.in(1), c.dy(0)
	tA, tB := c.n.AttrInt("transA", 0) != 0, c.n.AttrInt("transB", 0) != 0
	alpha := c.n.AttrFloat("alpha", 1)
	beta := c.n.AttrFloat("beta", 1)
	if c.needs(0) {
		// dA' = α·dY·B'ᵀ; dA = dA'ᵀ when transA.
		if !tA {
			c.setGrad(0, c.b.Gemm(dy, b, "", GemmOpts{TransB: !tB, Alpha: alpha}))
		} else {
			c.setGrad(0, c.b.Gemm(b, dy, "", GemmOpts{TransA: tB, TransB: true, Alpha: alpha}))
		}
	}
	if c.needs(1) {
		// dB' = α·A'ᵀ·dY; dB = dB'ᵀ when transB.
		if !tB {
			c.setGrad(1, c.b.Gemm(a, dy, "", GemmOpts{TransA: !tA, Alpha: alpha}))
		} else {
			c.setGrad(1, c.b.Gemm(dy, a, "", GemmOpts{TransA: true, TransB: tA, Alpha: alpha}))
		}
	}
	if c.needs(2) {
		g, err := c.reduceTo(dy, c.in(2), c.out(0))
		if err != nil {
			return err
		}
		if beta != 1 {
			g = c.op("Mul", []string{g, c.scalar(float64(beta))})
		}
		c.setGrad(2, g)
	}
	return nil
}

// matMulGrad differentiates numpy-style matrix products: dA = dY·Bᵀ and
// dB = Aᵀ·dY over the last two axes, summed over broadcast batch axes.
// 1-D operands are promoted to matrices as numpy does. 2-D products use
// Gemm, and an N-D × 2-D product computes dB with a single Gemm.
func matMulGrad(c *gradCtx) error {
	a, b, dy := c.in(0), c.in(1), c.dy(0)
	as, bs := c.shape(a), c.shape(b)
	if as == nil || bs == nil {
		return fmt.Errorf("operand ranks unknown (%v, %v)", as, bs)
	}
	ra, rb := len(as), len(bs)
	switch {
	case ra == 2 && rb == 2:
		c.setGrad(0, c.b.Gemm(dy, b, "", GemmOpts{TransB: true}))
		c.setGrad(1, c.b.Gemm(a, dy, "", GemmOpts{TransA: true}))
		return nil
	case ra > 2 && rb == 2 && bs[0].Known() && bs[1].Known():
		k, n := bs[0].Value, bs[1].Value
		if c.needs(0) {
			c.setGrad(0, c.b.MatMul(dy, c.b.Transpose(b, 1, 0)))
		}
		if c.needs(1) {
			a2 := c.b.ReshapeTo(a, -1, k)
			dy2 := c.b.ReshapeTo(dy, -1, n)
			c.setGrad(1, c.b.Gemm(a2, dy2, "", GemmOpts{TransA: true}))
		}
		return nil
	}
	// General case: promote 1-D operands to matrices, then batched
	// products summed over broadcast batch axes.
	a2, b2, dy2 := a, b, dy
	as2, bs2 := as, bs
	if ra == 1 {
		a2, as2 = c.unsqueeze(a, 0), Shape{D(1), as[0]}
	}
	if rb == 1 {
		b2, bs2 = c.unsqueeze(b, -1), Shape{bs[0], D(1)}
	}
	switch {
	case ra == 1 && rb == 1:
		dy2 = c.unsqueeze(dy, 0, 1)
	case ra == 1:
		dy2 = c.unsqueeze(dy, -2)
	case rb == 1:
		dy2 = c.unsqueeze(dy, -1)
	}
	batch, err := broadcastBatch(as2[:len(as2)-2], bs2[:len(bs2)-2])
	if err != nil {
		return err
	}
	products := []struct {
		target, x, y string
		shape        Shape
	}{
		{a, dy2, swapLast(c, b2, len(bs2)), as2},
		{b, swapLast(c, a2, len(as2)), dy2, bs2},
	}
	for i, p := range products {
		if !c.needs(i) {
			continue
		}
		full := append(slices.Clone(batch), p.shape[len(p.shape)-2:]...)
		g, err := c.reduceShapes(c.b.MatMul(p.x, p.y), p.shape, full)
		if err != nil {
			return err
		}
		if len(p.shape) != len(c.shape(p.target)) {
			g = c.reshapeLike(g, p.target)
		}
		c.setGrad(i, g)
	}
	return nil
}

// broadcastBatch broadcasts the batch dimensions of two matrix operands.
func broadcastBatch(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	out := make(Shape, n)
	for i := range n {
		da, db := D(1), D(1)
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case sameDim(da, db) || db.Known() && db.Value == 1:
			out[i] = da
		case da.Known() && da.Value == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("batch dimensions %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// swapLast transposes the last two axes of a value of the given rank.
func swapLast(c *gradCtx, v string, rank int) string {
	perm := iota64(0, rank)
	perm[rank-1], perm[rank-2] = perm[rank-2], perm[rank-1]
	return c.b.Transpose(v, perm...)
}

func (s *shapeState) gemm(n *Node) error {
	a, b := s.in(n, 0), s.in(n, 1)
	if a == nil || b == nil || a.Shape == nil || b.Shape == nil {
		s.set(n, 0, Float, nil)
		return nil
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return fmt.Errorf("operands %v and %v must be matrices", a.Shape, b.Shape)
	}
	m, k1 := a.Shape[0], a.Shape[1]
	if n.AttrInt("transA", 0) == 1 {
		m, k1 = k1, m
	}
	k2, nn := b.Shape[0], b.Shape[1]
	if n.AttrInt("transB", 0) == 1 {
		k2, nn = nn, k2
	}
	if k1.Known() && k2.Known() && k1.Value != k2.Value {
		return fmt.Errorf("inner dimensions differ: A is %v, B is %v (transA=%d, transB=%d)", a.Shape, b.Shape, n.AttrInt("transA", 0), n.AttrInt("transB", 0))
	}
	out := Shape{m, nn}
	if c := s.in(n, 2); c != nil && c.Shape != nil {
		if _, err := broadcast(out, c.Shape); err != nil {
			return fmt.Errorf("bias %v does not broadcast to %v", c.Shape, out)
		}
	}
	s.set(n, 0, a.Elem, out)
	return nil
}

func (s *shapeState) matmul(n *Node) error {
	a, b := s.in(n, 0), s.in(n, 1)
	if a == nil || b == nil || a.Shape == nil || b.Shape == nil {
		s.set(n, 0, Float, nil)
		return nil
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 0 || len(bs) == 0 {
		return fmt.Errorf("MatMul of a scalar")
	}
	if len(as) == 1 {
		as = Shape{D(1), as[0]}
	}
	if len(bs) == 1 {
		bs = Shape{bs[0], D(1)}
	}
	k1, k2 := as[len(as)-1], bs[len(bs)-2]
	if k1.Known() && k2.Known() && k1.Value != k2.Value {
		return fmt.Errorf("inner dimensions differ: %v × %v", a.Shape, b.Shape)
	}
	batch, err := broadcast(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return err
	}
	out := slices.Clone(batch)
	if len(a.Shape) > 1 {
		out = append(out, as[len(as)-2])
	}
	if len(b.Shape) > 1 {
		out = append(out, bs[len(bs)-1])
	}
	s.set(n, 0, a.Elem, out)
	return nil
}

// einsumTerms parses an Einsum equation for operands of the given ranks
// into explicit subscripts, one letter per axis: "..." becomes letters not
// used elsewhere, aligned to the right as broadcasting does; an implicit
// output lists the letters used once, sorted, after the ellipsis axes.
func einsumTerms(eq string, ranks []int) (ins []string, out string, err error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(ranks) {
		return nil, "", fmt.Errorf("equation %q has %d terms for %d inputs", eq, len(terms), len(ranks))
	}
	used := map[rune]bool{}
	for _, r := range strings.ReplaceAll(eq, "...", "") {
		used[r] = true
	}
	ell := 0
	for i, t := range terms {
		if strings.Contains(t, "...") {
			ell = max(ell, ranks[i]-(len(t)-3))
		}
	}
	var fresh []rune
	for r := 'A'; len(fresh) < ell && r <= 'z'; r++ {
		if !used[r] && (r <= 'Z' || r >= 'a') {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) < ell {
		return nil, "", fmt.Errorf("equation %q: too many ellipsis axes", eq)
	}
	expand := func(t string, rank int) string {
		if !strings.Contains(t, "...") {
			return t
		}
		k := rank - (len(t) - 3)
		if rank < 0 {
			k = ell
		}
		return strings.Replace(t, "...", string(fresh[ell-k:]), 1)
	}
	ins = make([]string, len(terms))
	count := map[rune]int{}
	for i, t := range terms {
		ins[i] = expand(t, ranks[i])
		if len(ins[i]) != ranks[i] {
			return nil, "", fmt.Errorf("term %q does not match rank %d", t, ranks[i])
		}
		for _, r := range ins[i] {
			count[r]++
		}
	}
	if explicit {
		out = expand(rhs, -1)
	} else {
		var once []rune
		for r, n := range count {
			if n == 1 && !slices.Contains(fresh, r) {
				once = append(once, r)
			}
		}
		slices.Sort(once)
		out = string(fresh) + string(once)
	}
	return ins, out, nil
}

func einsumShape(s *shapeState, n *Node, _ Shape, xe DataType) error {
	ranks := make([]int, len(n.Inputs))
	shapes := make([]Shape, len(n.Inputs))
	for i := range n.Inputs {
		t := s.in(n, i)
		if t == nil || t.Shape == nil {
			s.set(n, 0, xe, nil)
			return nil
		}
		ranks[i], shapes[i] = len(t.Shape), t.Shape
	}
	ins, out, err := einsumTerms(n.AttrString("equation", ""), ranks)
	if err != nil {
		return err
	}
	dims := map[rune]Dim{}
	for i, t := range ins {
		for j, r := range t {
			d := shapes[i][j]
			if old, ok := dims[r]; !ok || old.Known() && old.Value == 1 {
				dims[r] = d
			}
		}
	}
	res := Shape{}
	for _, r := range out {
		d, ok := dims[r]
		if !ok {
			return fmt.Errorf("output subscript %q is not an input subscript", r)
		}
		res = append(res, d)
	}
	s.set(n, 0, xe, res)
	return nil
}

// einsumGrad differentiates Einsum: the gradient of an operand is the
// Einsum of dy with the other operands, into the operand's subscripts.
// Subscripts only that operand has (summed away) are restored by Expand;
// repeated subscripts within a term (diagonals) are not supported.
func einsumGrad(c *gradCtx) error {
	ranks := make([]int, len(c.n.Inputs))
	for i, in := range c.n.Inputs {
		r, err := c.rank(in)
		if err != nil {
			return err
		}
		ranks[i] = r
	}
	ins, out, err := einsumTerms(c.n.AttrString("equation", ""), ranks)
	if err != nil {
		return err
	}
	for i, t := range append(slices.Clone(ins), out) {
		for j, r := range t {
			if strings.ContainsRune(t[j+1:], r) {
				return fmt.Errorf("term %d (%q) repeats subscript %q", i, t, r)
			}
		}
	}
	for i := range c.n.Inputs {
		if !c.needs(i) {
			continue
		}
		terms, operands := []string{out}, []string{c.dy(0)}
		for j, t := range ins {
			if j != i {
				terms, operands = append(terms, t), append(operands, c.in(j))
			}
		}
		have := strings.Join(terms, "")
		var kept []rune
		var missing []int64
		for j, r := range ins[i] {
			if strings.ContainsRune(have, r) {
				kept = append(kept, r)
			} else {
				missing = append(missing, int64(j))
			}
		}
		eq := strings.Join(terms, ",") + "->" + string(kept)
		g := c.op("Einsum", operands, StringAttr("equation", eq))
		if len(missing) > 0 {
			g = c.op("Expand", []string{c.unsqueeze(g, missing...), c.shapeOf(c.in(i))})
		}
		c.setGrad(i, g)
	}
	return nil
}

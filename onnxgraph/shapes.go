package onnxgraph

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// InferShapes computes the static type (element type and shape) of every
// value of the model's main graph: inputs, initializers and node outputs.
// Dimensions may be symbolic (the batch dimension "N" of robust's models);
// shape arithmetic such as PyTorch's Shape→Gather→Unsqueeze→Concat→Reshape
// chains is followed symbolically. Operators outside robust's CNN op set get
// values of unknown shape (a nil Shape), not an error. Shapes that cannot
// fit together (a Conv whose weight has the wrong number of input channels,
// a Gemm whose inner dimensions differ, operands that do not broadcast) are
// errors naming the node. InferShapes sorts the graph's nodes topologically
// (see TopoSort) and changes nothing else.
func InferShapes(m *Model) (map[string]*TensorType, error) {
	s, err := inferShapes(m)
	if err != nil {
		return nil, err
	}
	return s.types, nil
}

// inferShapes is InferShapes, returning the values of the small integer
// tensors it followed as well.
func inferShapes(m *Model) (*shapeState, error) {
	if err := m.Graph.TopoSort(); err != nil {
		return nil, err
	}
	s := &shapeState{types: map[string]*TensorType{}, vals: map[string]Shape{}, opset: m.Opset(""), g: m.Graph}
	g := m.Graph
	for _, t := range g.Initializers {
		s.types[t.Name] = &TensorType{Elem: t.DataType, Shape: t.Shape()}
		if t.DataType == Int64 || t.DataType == Int32 || t.DataType == Bool {
			if t.NumElements() <= maxValLen {
				if v, err := t.Int64s(); err == nil {
					s.vals[t.Name] = Dims(v...)
				}
			}
		}
	}
	for _, in := range g.Inputs {
		if in.Type != nil {
			if _, isInit := s.types[in.Name]; !isInit {
				tt := *in.Type
				s.types[in.Name] = &tt
			}
		}
	}
	for _, n := range g.Nodes {
		if err := s.infer(n); err != nil {
			return nil, fmt.Errorf("shape inference: %v: %w", n, err)
		}
	}
	return s, nil
}

// shapeState is the running state of InferShapes: the types found so far and
// the values of small int64 tensors known symbolically (shape arithmetic).
type shapeState struct {
	types map[string]*TensorType
	vals  map[string]Shape
	opset int64
	g     *Graph
}

func (s *shapeState) in(n *Node, i int) *TensorType {
	name := n.Input(i)
	if name == "" {
		return nil
	}
	return s.types[name]
}

func (s *shapeState) set(n *Node, i int, elem DataType, shape Shape) {
	if i < len(n.Outputs) && n.Outputs[i] != "" {
		s.types[n.Outputs[i]] = &TensorType{Elem: elem, Shape: shape}
	}
}

// ints returns the known integer value of input i, or nil.
func (s *shapeState) ints(n *Node, i int) []int64 {
	v, ok := s.vals[n.Input(i)]
	if !ok || !valKnown(v) {
		return nil
	}
	out := make([]int64, len(v))
	for i, d := range v {
		out[i] = d.Value
	}
	return out
}

// shapeRule sets the types of a node's outputs; xs and xe are the shape
// and element type of input 0 (nil and Undefined when unknown).
type shapeRule func(s *shapeState, n *Node, xs Shape, xe DataType) error

// infer applies the node's shape rule from the operator table; outputs of
// operators without one keep an unknown type.
func (s *shapeState) infer(n *Node) error {
	if normDomain(n.Domain) != "" {
		return nil
	}
	d := ops[n.OpType]
	if d == nil || d.shape == nil {
		for i := range n.Outputs {
			s.set(n, i, Undefined, nil)
		}
		return nil
	}
	var xs Shape
	var xe DataType
	if x := s.in(n, 0); x != nil {
		xs, xe = x.Shape, x.Elem
	}
	return d.shape(s, n, xs, xe)
}

// Values of small integer tensors (shape arithmetic) are kept as Shapes
// whose entries are literal integers (Param "", any Value including −1),
// symbolic sizes (Param = the symbol) or unknown (Param "?").
const unknownParam = "?"

// valKnown reports whether every entry of a shape value is a literal.
func valKnown(v Shape) bool {
	for _, d := range v {
		if d.Param != "" {
			return false
		}
	}
	return true
}

// valFromShape turns a tensor shape into a shape value.
func valFromShape(sh Shape) Shape {
	v := slices.Clone(sh)
	for i, d := range v {
		if !d.Known() && d.Param == "" {
			v[i] = Dim{Value: -1, Param: unknownParam}
		}
	}
	return v
}

// shapeFromVal turns a shape value into a tensor shape.
func shapeFromVal(v Shape) Shape {
	sh := slices.Clone(v)
	for i, d := range sh {
		if d.Param == unknownParam || d.Param == "" && d.Value < 0 {
			sh[i] = Unknown()
		}
	}
	return sh
}

func unknownShape(rank int) Shape {
	out := make(Shape, rank)
	for i := range out {
		out[i] = Unknown()
	}
	return out
}

func clampAxis(a int64, rank int) int {
	if a < 0 {
		a += int64(rank)
	}
	return int(min(max(a, 0), int64(rank)))
}

// normAxis converts a possibly negative axis to [0, rank).
func normAxis(a int64, rank int) (int, error) {
	if a < -int64(rank) || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

// broadcast applies ONNX multidirectional (NumPy) broadcasting.
func broadcast(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, s := range shapes {
		if s == nil {
			return nil, nil
		}
		rank = max(rank, len(s))
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = D(1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d.Known() && d.Value == 1:
			case o.Known() && o.Value == 1:
				out[off+i] = d
			case d.Known() && o.Known():
				if d.Value != o.Value {
					return nil, fmt.Errorf("shapes %v do not broadcast", shapes)
				}
			case d.Known():
				out[off+i] = d
			case o.Known():
			case d.Param != o.Param || d.Param == "":
				out[off+i] = Unknown()
			}
		}
	}
	return out, nil
}

// Symbolic dimensions are monomials k·S of a symbol S (the batch "N" of
// robust's models): Param is S, or "k*S" for k ≠ 1. Multi-head attention
// reshapes [N, L, H·D] to [L, N·H, D] and back, so k·N must cancel against
// N when a Reshape infers its −1 entry.

// symTerm splits a symbolic dimension into coefficient and symbol; ok is
// false for known and unknown dimensions.
func symTerm(d Dim) (coef int64, sym string, ok bool) {
	if d.Param == "" || d.Param == unknownParam {
		return 0, "", false
	}
	if k, rest, found := strings.Cut(d.Param, "*"); found {
		if c, err := strconv.ParseInt(k, 10, 64); err == nil && c > 0 {
			return c, rest, true
		}
	}
	return 1, d.Param, true
}

// symDim returns the dimension coef·sym.
func symDim(coef int64, sym string) Dim {
	switch {
	case coef == 0:
		return D(0)
	case coef == 1:
		return Sym(sym)
	case coef < 0:
		return Unknown()
	}
	return Sym(strconv.FormatInt(coef, 10) + "*" + sym)
}

func mulDim(a, b Dim) Dim {
	if a.Known() && b.Known() {
		return D(a.Value * b.Value)
	}
	if b.Known() {
		a, b = b, a
	}
	if c, sym, ok := symTerm(b); ok && a.Known() {
		return symDim(a.Value*c, sym)
	}
	return Unknown()
}

func prodDims(ds Shape) Dim {
	p := D(1)
	for _, d := range ds {
		p = mulDim(p, d)
	}
	return p
}

// unknownVal is an entry of a shape value that is not known.
var unknownVal = Dim{Value: -1, Param: unknownParam}

func isLit(d Dim) bool { return d.Param == "" }

// valueArith follows elementwise integer and boolean arithmetic on shape
// values (Add, Sub, Mul, Div, Mod, Equal, Less, Greater, Max, Min, Where,
// Not, Neg, Abs), operands broadcasting as scalars. Symbolic sizes go through
// where the result does not depend on their value (N·1, N−0, N = N, and
// N = −1 is false since sizes are not negative); other entries become
// unknown.
func (s *shapeState) valueArith(n *Node) {
	if len(n.Outputs) == 0 || n.Outputs[0] == "" {
		return
	}
	if t := s.types[n.Outputs[0]]; t == nil || t.Elem.IsFloat() || len(t.Shape) > 1 {
		return
	}
	args := make([]Shape, len(n.Inputs))
	size := 1
	for i, in := range n.Inputs {
		v, ok := s.vals[in]
		if !ok || len(v) == 0 {
			return
		}
		if len(v) != 1 && size != 1 && len(v) != size {
			return
		}
		size = max(size, len(v))
		args[i] = v
	}
	out := make(Shape, size)
	for i := range out {
		e := make([]Dim, len(args))
		for j, v := range args {
			e[j] = v[min(i, len(v)-1)]
		}
		d, ok := valueOp(n.OpType, e)
		if !ok {
			return
		}
		out[i] = d
	}
	s.vals[n.Outputs[0]] = out
}

// valueOp applies opType to one entry of each operand; ok is false for
// operators it does not follow.
func valueOp(opType string, e []Dim) (Dim, bool) {
	b2i := func(b bool) Dim {
		if b {
			return D(1)
		}
		return D(0)
	}
	lit := func(i int) bool { return isLit(e[i]) }
	if len(e) == 1 {
		if !lit(0) {
			return unknownVal, opType == "Not" || opType == "Neg" || opType == "Abs"
		}
		x := e[0].Value
		switch opType {
		case "Not":
			return b2i(x == 0), true
		case "Neg":
			return D(-x), true
		case "Abs":
			return D(max(x, -x)), true
		}
		return unknownVal, false
	}
	if opType == "Where" {
		if len(e) != 3 {
			return unknownVal, false
		}
		if !lit(0) {
			return unknownVal, true
		}
		if e[0].Value != 0 {
			return e[1], true
		}
		return e[2], true
	}
	if len(e) != 2 {
		return unknownVal, false
	}
	a, b := e[0], e[1]
	x, y := a.Value, b.Value
	both := lit(0) && lit(1)
	sym := func(d Dim) bool { return d.Param != "" && d.Param != unknownParam }
	same := sym(a) && a.Param == b.Param
	ca, sa, symA := symTerm(a)
	cb, sb, symB := symTerm(b)
	sameSym := symA && symB && sa == sb
	switch opType {
	case "Add":
		switch {
		case both:
			return D(x + y), true
		case lit(0) && x == 0:
			return b, true
		case lit(1) && y == 0:
			return a, true
		case sameSym:
			return symDim(ca+cb, sa), true
		}
	case "Sub":
		switch {
		case both:
			return D(x - y), true
		case lit(1) && y == 0:
			return a, true
		case sameSym && ca >= cb:
			return symDim(ca-cb, sa), true
		}
	case "Mul":
		switch {
		case both:
			return D(x * y), true
		case lit(0) && x >= 0 && symB:
			return symDim(x*cb, sb), true
		case lit(1) && y >= 0 && symA:
			return symDim(y*ca, sa), true
		case lit(0) && x == 1:
			return b, true
		case lit(1) && y == 1:
			return a, true
		case lit(0) && x == 0, lit(1) && y == 0:
			return D(0), true
		}
	case "Div":
		switch {
		case both && y != 0:
			return D(x / y), true
		case lit(1) && y == 1:
			return a, true
		case lit(1) && y > 0 && symA && ca%y == 0:
			return symDim(ca/y, sa), true
		case sameSym && ca%cb == 0:
			return D(ca / cb), true
		}
	case "Equal":
		switch {
		case both:
			return b2i(x == y), true
		case same:
			return D(1), true
		case sym(a) && lit(1) && y < 0, sym(b) && lit(0) && x < 0:
			return D(0), true
		}
	case "Less", "Greater":
		if opType == "Greater" {
			a, b, x, y = b, a, y, x
		}
		// a < b
		switch {
		case isLit(a) && isLit(b):
			return b2i(x < y), true
		case sym(a) && isLit(b) && y <= 0:
			return D(0), true
		case isLit(a) && sym(b) && x < 0:
			return D(1), true
		}
	case "Mod":
		// Integer Mod (fmod=0): the result takes the divisor's sign.
		if both && y != 0 {
			r := x % y
			if r != 0 && (r < 0) != (y < 0) {
				r += y
			}
			return D(r), true
		}
	case "Max", "Min":
		if both {
			if (opType == "Max") == (x > y) {
				return a, true
			}
			return b, true
		}
	default:
		return unknownVal, false
	}
	return unknownVal, true
}

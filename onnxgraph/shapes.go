package onnxgraph

import (
	"fmt"
	"slices"
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
	if err := m.Graph.TopoSort(); err != nil {
		return nil, err
	}
	s := &shapeState{types: map[string]*TensorType{}, vals: map[string]Shape{}, opset: m.Opset("")}
	g := m.Graph
	for _, t := range g.Initializers {
		s.types[t.Name] = &TensorType{Elem: t.DataType, Shape: t.Shape()}
		if t.DataType == Int64 || t.DataType == Int32 {
			if t.NumElements() <= 64 {
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
	return s.types, nil
}

// shapeState is the running state of InferShapes: the types found so far and
// the values of small int64 tensors known symbolically (shape arithmetic).
type shapeState struct {
	types map[string]*TensorType
	vals  map[string]Shape
	opset int64
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

func mulDim(a, b Dim) Dim {
	if a.Known() && b.Known() {
		return D(a.Value * b.Value)
	}
	if a.Known() && a.Value == 1 {
		return b
	}
	if b.Known() && b.Value == 1 {
		return a
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

// shapeArith follows elementwise arithmetic on known small int64 values.
func (s *shapeState) shapeArith(n *Node) {
	a, okA := s.vals[n.Input(0)]
	b, okB := s.vals[n.Input(1)]
	if !okA || !okB || !valKnown(a) || !valKnown(b) || len(n.Inputs) != 2 || len(a) == 0 || len(b) == 0 {
		return
	}
	if len(a) != len(b) && len(a) != 1 && len(b) != 1 {
		return
	}
	size := max(len(a), len(b))
	out := make(Shape, size)
	for i := range out {
		x, y := a[min(i, len(a)-1)].Value, b[min(i, len(b)-1)].Value
		switch n.OpType {
		case "Add":
			out[i] = D(x + y)
		case "Sub":
			out[i] = D(x - y)
		case "Mul":
			out[i] = D(x * y)
		case "Div":
			if y == 0 {
				return
			}
			out[i] = D(x / y)
		default:
			return
		}
	}
	s.vals[n.Outputs[0]] = out
}

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

func (s *shapeState) infer(n *Node) error {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nil
	}
	x := s.in(n, 0)
	var xs Shape
	var xe DataType
	if x != nil {
		xs, xe = x.Shape, x.Elem
	}
	switch n.OpType {
	case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Sqrt", "Abs", "Elu", "Selu",
		"Softplus", "Softsign", "Erf", "Reciprocal", "Floor", "Ceil", "Round", "HardSigmoid", "HardSwish",
		"Identity", "Softmax", "LogSoftmax", "Hardmax", "Clip", "Celu", "Sin", "Cos", "Mish", "Gelu",
		"ThresholdedRelu", "Shrink", "Sign", "LRN", "InstanceNormalization", "LpNormalization",
		"MeanVarianceNormalization", "CumSum", "Dropout", "LayerNormalization", "GroupNormalization",
		"RandomUniformLike", "RandomNormalLike", "Bernoulli":
		s.set(n, 0, xe, xs)
		if n.OpType == "Dropout" {
			s.set(n, 1, Bool, xs)
		}
		if v, ok := s.vals[n.Input(0)]; ok && n.OpType == "Identity" {
			s.vals[n.Outputs[0]] = v
		}
	case "Not", "IsNaN", "IsInf":
		s.set(n, 0, Bool, xs)
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Mod", "PRelu", "And", "Or", "Xor",
		"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "BitShift":
		shapes := make([]Shape, 0, len(n.Inputs))
		for i := range n.Inputs {
			t := s.in(n, i)
			if t == nil {
				s.set(n, 0, xe, nil)
				return nil
			}
			shapes = append(shapes, t.Shape)
		}
		out, err := broadcast(shapes...)
		if err != nil {
			return err
		}
		elem := xe
		switch n.OpType {
		case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor":
			elem = Bool
		case "Where":
			if t := s.in(n, 1); t != nil {
				elem = t.Elem
			}
		}
		s.set(n, 0, elem, out)
		s.shapeArith(n)
	case "Cast":
		s.set(n, 0, DataType(n.AttrInt("to", int64(xe))), xs)
		if v, ok := s.vals[n.Input(0)]; ok {
			s.vals[n.Outputs[0]] = v
		}
	case "CastLike":
		if t := s.in(n, 1); t != nil {
			s.set(n, 0, t.Elem, xs)
		}
	case "Constant":
		return s.constant(n)
	case "Shape":
		if xs == nil {
			s.set(n, 0, Int64, Shape{Unknown()})
			return nil
		}
		start, end := n.AttrInt("start", 0), n.AttrInt("end", int64(len(xs)))
		lo, hi := clampAxis(start, len(xs)), clampAxis(end, len(xs))
		v := valFromShape(xs[lo:max(lo, hi)])
		s.set(n, 0, Int64, Dims(int64(len(v))))
		s.vals[n.Outputs[0]] = v
	case "Size":
		s.set(n, 0, Int64, Shape{})
	case "Gather":
		return s.gather(n, xs, xe)
	case "Unsqueeze", "Squeeze":
		return s.squeeze(n, xs, xe)
	case "Concat":
		return s.concat(n)
	case "Reshape":
		return s.reshape(n, xs, xe)
	case "Flatten":
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
	case "Transpose":
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
	case "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool":
		return s.window(n, xs, xe)
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		if xs == nil {
			s.set(n, 0, xe, nil)
			return nil
		}
		out := slices.Clone(xs)
		for i := 2; i < len(out); i++ {
			out[i] = D(1)
		}
		s.set(n, 0, xe, out)
	case "BatchNormalization":
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
	case "Gemm":
		return s.gemm(n)
	case "MatMul":
		return s.matmul(n)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin":
		return s.reduce(n, xs, xe)
	case "Pad":
		return s.pad(n, xs, xe)
	case "Slice":
		return s.slice(n, xs, xe)
	case "Split":
		return s.split(n, xs, xe)
	case "Expand":
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
	case "ConstantOfShape":
		elem := Float
		if a := n.Attr("value"); a != nil && a.Tensor != nil {
			elem = a.Tensor.DataType
		}
		if v, ok := s.vals[n.Input(0)]; ok {
			s.set(n, 0, elem, shapeFromVal(v))
		} else {
			s.set(n, 0, elem, nil)
		}
	case "Range":
		s.set(n, 0, xe, Shape{Unknown()})
	case "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss":
		red := n.AttrString("reduction", "mean")
		if red == "none" && xs != nil {
			s.set(n, 0, xe, slices.Delete(slices.Clone(xs), 1, 2))
		} else {
			s.set(n, 0, xe, Shape{})
		}
		s.set(n, 1, xe, xs)
	case "ScatterElements", "ScatterND":
		s.set(n, 0, xe, xs)
	case "Tile":
		if reps := s.ints(n, 1); reps != nil && xs != nil && len(reps) == len(xs) {
			out := make(Shape, len(xs))
			for i := range xs {
				out[i] = mulDim(xs[i], D(reps[i]))
			}
			s.set(n, 0, xe, out)
		} else if xs != nil {
			s.set(n, 0, xe, unknownShape(len(xs)))
		}
	default:
		// Unknown to robust's shape inference: outputs keep an unknown type.
		for i := range n.Outputs {
			s.set(n, i, Undefined, nil)
		}
	}
	return nil
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

func (s *shapeState) constant(n *Node) error {
	for _, a := range n.Attrs {
		switch a.Name {
		case "value":
			if a.Tensor == nil {
				return fmt.Errorf("value attribute is not a tensor")
			}
			t := a.Tensor
			s.set(n, 0, t.DataType, t.Shape())
			if (t.DataType == Int64 || t.DataType == Int32) && t.NumElements() <= 64 {
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
	if v, ok := s.vals[n.Input(0)]; ok && len(v) <= 1 {
		s.vals[n.Outputs[0]] = v
	}
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
	switch {
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
		switch {
		case d.Known():
			num *= d.Value
		case d.Param != "":
			syms[d.Param]++
		default:
			return Unknown()
		}
	}
	den := int64(1)
	for i, d := range out {
		switch {
		case i == infer:
		case d.Known():
			den *= d.Value
		case d.Param != "" && syms[d.Param] > 0:
			syms[d.Param]--
		default:
			return Unknown()
		}
	}
	for _, c := range syms {
		if c != 0 {
			return Unknown()
		}
	}
	if den == 0 || num%den != 0 {
		return Dim{Value: -2}
	}
	return D(num / den)
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
		kernel = n.AttrInts("kernel_shape", w.Shape[2:].Ints())
	default:
		kernel = n.AttrInts("kernel_shape", nil)
		if len(kernel) != spatial {
			return fmt.Errorf("kernel_shape %v does not match %d spatial dimensions", kernel, spatial)
		}
	}
	strides := n.AttrInts("strides", ones(spatial))
	dil := n.AttrInts("dilations", ones(spatial))
	pads := n.AttrInts("pads", make([]int64, 2*spatial))
	if len(strides) != spatial || len(dil) != spatial || len(pads) != 2*spatial || len(kernel) != spatial {
		return fmt.Errorf("strides %v, dilations %v, pads %v or kernel %v do not match %d spatial dimensions", strides, dil, pads, kernel, spatial)
	}
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
	// Slicing a known shape value.
	if v, ok := s.vals[n.Input(0)]; ok && len(axes) == 1 && steps[0] == 1 {
		lo, hi := clampAxis(starts[0], len(v)), clampAxis(ends[0], len(v))
		if lo <= hi {
			s.vals[n.Outputs[0]] = slices.Clone(v[lo:hi])
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

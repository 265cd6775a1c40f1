package onnxgraph

import (
	"fmt"
	"slices"
)

// UpgradeOpset converts a model that imports a default-domain opset older
// than [DefaultOpset] to DefaultOpset, so that nodes robust appends (in
// their opset-17 form) and the model's own nodes agree. Attributes that
// became inputs (Pad pads and value, Slice starts/ends/axes,
// Squeeze/Unsqueeze/ReduceSum axes, Split sizes, Clip bounds, Dropout
// ratio, Reshape shape) are moved to constant inputs; legacy attributes
// (broadcast, consumed_inputs, is_test, spatial) are dropped; Softmax,
// LogSoftmax and Hardmax keep their pre-13 meaning (2-D coercion) through a
// Flatten and Reshape where the axis is not the last. Unused legacy
// outputs (BatchNormalization's saved statistics, Dropout's mask) are
// removed. Models already at DefaultOpset or later are left unchanged.
func UpgradeOpset(m *Model) (err error) {
	defer prefixErr(&err)
	from := m.Opset("")
	if from >= DefaultOpset {
		return nil
	}
	if from == 0 {
		return fmt.Errorf("upgrade opset: model imports no default-domain opset")
	}
	types, _ := InferShapes(m) // best effort: ranks for legacy broadcasting and softmax
	u := &upgrader{g: m.Graph, b: Extend(m.Graph, DefaultOpset), types: types, from: from,
		consumed: m.Graph.Consumers()}
	nodes := slices.Clone(m.Graph.Nodes)
	for _, n := range nodes {
		if normDomain(n.Domain) != "" {
			continue
		}
		if err := u.node(n); err != nil {
			return fmt.Errorf("upgrade opset %d → %d: %v: %w", from, DefaultOpset, n, err)
		}
	}
	for i, o := range m.Opsets {
		if normDomain(o.Domain) == "" {
			m.Opsets[i].Version = DefaultOpset
		}
	}
	m.IRVersion = max(m.IRVersion, DefaultIRVersion)
	return m.Graph.TopoSort()
}

type upgrader struct {
	g        *Graph
	b        *Builder
	types    map[string]*TensorType
	from     int64
	consumed map[string][]*Node
}

// node rewrites one node with its operator's upgrade rule (see the
// operator table).
func (u *upgrader) node(n *Node) error {
	n.DeleteAttrs("consumed_inputs")
	d := ops[n.OpType]
	if d == nil {
		return nil
	}
	if d.legacyBroadcast {
		if err := u.legacyBroadcast(n); err != nil {
			return err
		}
	}
	if d.upgrade != nil {
		return d.upgrade(u, n)
	}
	return nil
}

// prelu converts a pre-7 per-channel slope.
func (u *upgrader) prelu(n *Node) error {
	if u.from < 7 {
		return u.channelSlope(n)
	}
	return nil
}

func (u *upgrader) batchNorm(n *Node) error {
	if n.AttrInt("spatial", 1) != 1 {
		return fmt.Errorf("spatial=0 is not supported")
	}
	if n.Attr("is_test") != nil && n.AttrInt("is_test", 0) == 0 {
		return fmt.Errorf("training-mode BatchNormalization (is_test=0) of opset %d is not supported", u.from)
	}
	n.DeleteAttrs("is_test", "spatial")
	return u.dropOutputs(n, 1)
}

func (u *upgrader) dropout(n *Node) error {
	if u.from >= 12 {
		return nil
	}
	ratio := float64(n.AttrFloat("ratio", 0.5))
	n.DeleteAttrs("ratio", "is_test")
	n.Inputs = []string{n.Input(0), u.b.Initializer(NewFloatTensor("", []int64{}, []float32{float32(ratio)}))}
	return u.dropOutputs(n, 1)
}

func (u *upgrader) pad(n *Node) error {
	if a := n.Attr("pads"); a != nil {
		value := float64(n.AttrFloat("value", 0))
		n.DeleteAttrs("pads", "value")
		n.Inputs = []string{n.Input(0), u.b.ConstInt64(a.Ints...), u.scalarLike(value, n.Input(0))}
	}
	return nil
}

func (u *upgrader) slice(n *Node) error {
	if a := n.Attr("starts"); a != nil {
		in := []string{n.Input(0), u.b.ConstInt64(a.Ints...), u.b.ConstInt64(n.AttrInts("ends", nil)...)}
		if axes := n.Attr("axes"); axes != nil {
			in = append(in, u.b.ConstInt64(axes.Ints...))
		}
		n.DeleteAttrs("starts", "ends", "axes")
		n.Inputs = in
	}
	return nil
}

func (u *upgrader) clip(n *Node) error {
	lo, hi := n.Attr("min"), n.Attr("max")
	if lo == nil && hi == nil {
		return nil
	}
	in := []string{n.Input(0), "", ""}
	if lo != nil {
		in[1] = u.scalarLike(float64(lo.Float), n.Input(0))
	}
	if hi != nil {
		in[2] = u.scalarLike(float64(hi.Float), n.Input(0))
	}
	for len(in) > 1 && in[len(in)-1] == "" {
		in = in[:len(in)-1]
	}
	n.DeleteAttrs("min", "max")
	n.Inputs = in
	return nil
}

func (u *upgrader) concat(n *Node) error {
	if n.Attr("axis") == nil {
		n.SetAttr(IntAttr("axis", 1))
	}
	return nil
}

// softmax keeps the pre-13 meaning of Softmax, LogSoftmax and Hardmax.
func (u *upgrader) softmax(n *Node) error {
	if u.from < 13 {
		return u.coerced2D(n)
	}
	return nil
}

// attrToInput returns the upgrade rule that moves the INTS attribute name
// to the constant int64 input index.
func attrToInput(name string, index int) func(*upgrader, *Node) error {
	return func(u *upgrader, n *Node) error {
		a := n.Attr(name)
		if a == nil {
			return nil
		}
		n.DeleteAttrs(name)
		for len(n.Inputs) <= index {
			n.Inputs = append(n.Inputs, "")
		}
		n.Inputs[index] = u.b.ConstInt64(a.Ints...)
		return nil
	}
}

// scalarLike returns a rank-0 constant of like's element type.
func (u *upgrader) scalarLike(v float64, like string) string {
	if t := u.types[like]; t != nil && t.Elem == Double {
		return u.b.Initializer(NewDoubleTensor("", []int64{}, []float64{v}))
	}
	return u.b.Initializer(NewFloatTensor("", []int64{}, []float32{float32(v)}))
}

// dropOutputs removes outputs from index keep on, which must be unused.
func (u *upgrader) dropOutputs(n *Node, keep int) error {
	for _, o := range n.Outputs[min(keep, len(n.Outputs)):] {
		if o != "" && (len(u.consumed[o]) > 0 || u.g.Output(o) != nil) {
			return fmt.Errorf("legacy output %q is used", o)
		}
	}
	n.Outputs = n.Outputs[:min(keep, len(n.Outputs))]
	return nil
}

// legacyBroadcast drops opset < 7 broadcast attributes. With an explicit
// axis that numpy broadcasting would not reproduce, the second operand is
// reshaped with trailing size-1 axes.
func (u *upgrader) legacyBroadcast(n *Node) error {
	axis := n.Attr("axis")
	n.DeleteAttrs("broadcast")
	if axis == nil || n.OpType == "Gemm" {
		return nil
	}
	n.DeleteAttrs("axis")
	ta, tb := u.typeOf(n.Input(0)), u.typeOf(n.Input(1))
	if ta == nil || tb == nil || ta.Shape == nil || tb.Shape == nil {
		return fmt.Errorf("legacy broadcast with axis needs the operands' ranks")
	}
	ra, rb := len(ta.Shape), len(tb.Shape)
	ax := axis.Int
	if ax < 0 {
		ax += int64(ra)
	}
	trailing := int64(ra) - ax - int64(rb)
	if trailing <= 0 {
		return nil
	}
	shape := append(slices.Clone(tb.Shape.Ints()), make([]int64, trailing)...)
	for i := rb; i < len(shape); i++ {
		shape[i] = 1
	}
	n.Inputs[1] = u.b.Reshape(n.Input(1), u.b.ConstInt64(shape...))
	return nil
}

// coerced2D gives a pre-13 Softmax-like node (which flattens its input to 2-D
// at axis) the same meaning in opset 13: directly when axis is the last
// axis, else through Flatten → op(axis=1) → Reshape.
func (u *upgrader) coerced2D(n *Node) error {
	t := u.typeOf(n.Input(0))
	if t == nil || t.Shape == nil {
		return fmt.Errorf("rank of %q unknown", n.Input(0))
	}
	r := int64(len(t.Shape))
	axis := n.AttrInt("axis", 1)
	if axis < 0 {
		axis += r
	}
	if axis == r-1 {
		n.SetAttr(IntAttr("axis", -1))
		return nil
	}
	x, y := n.Input(0), n.Outputs[0]
	flat := u.b.Flatten(x, axis)
	inner := u.b.Fresh(y + "_2d")
	n.Inputs[0], n.Outputs[0] = flat, inner
	n.SetAttr(IntAttr("axis", 1))
	shape := u.b.Op("Shape", []string{x})
	u.g.Nodes = append(u.g.Nodes, &Node{Name: u.b.Fresh("Reshape"), OpType: "Reshape",
		Inputs: []string{inner, shape}, Outputs: []string{y}})
	return nil
}

// channelSlope reshapes a pre-7 PRelu's per-channel slope [C] to
// [C, 1, ...] (the old operator applied a 1-D slope along axis 1).
func (u *upgrader) channelSlope(n *Node) error {
	tx, ts := u.typeOf(n.Input(0)), u.typeOf(n.Input(1))
	if tx == nil || tx.Shape == nil || ts == nil || len(ts.Shape) != 1 || len(tx.Shape) < 3 {
		return nil
	}
	if !sameDim(ts.Shape[0], tx.Shape[1]) || ts.Shape[0].Known() && ts.Shape[0].Value == 1 {
		return nil
	}
	shape := make([]int64, len(tx.Shape)-1)
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = -1
	n.Inputs[1] = u.b.Reshape(n.Input(1), u.b.ConstInt64(shape...))
	return nil
}

// typeOf returns the inferred type of a value, falling back to the graph's
// declarations when shape inference failed on the legacy model.
func (u *upgrader) typeOf(name string) *TensorType {
	if t := u.types[name]; t != nil {
		return t
	}
	if t := u.g.Initializer(name); t != nil {
		return &TensorType{Elem: t.DataType, Shape: t.Shape()}
	}
	if v := u.g.Input(name); v != nil {
		return v.Type
	}
	return nil
}

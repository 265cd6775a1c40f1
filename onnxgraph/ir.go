package onnxgraph

import (
	"fmt"
	"slices"

	"github.com/robust-go/robust/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

// OpsetID names an operator set a model imports; Domain "" is the default
// ONNX domain (ai.onnx).
type OpsetID struct {
	Domain  string
	Version int64
}

// MetadataEntry is one key/value pair of a model's metadata_props.
type MetadataEntry struct{ Key, Value string }

// Model is an ONNX model: a graph plus the model-level fields of ModelProto.
type Model struct {
	IRVersion       int64
	Opsets          []OpsetID
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Metadata        []MetadataEntry
	Graph           *Graph

	// Parts of ModelProto robust does not interpret, carried through unchanged.
	Functions    []*onnxpb.FunctionProto
	TrainingInfo []*onnxpb.TrainingInfoProto
}

// Opset returns the version of the operator set imported for domain
// ("" or "ai.onnx" for the default domain), or 0 if it is not imported.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// MetadataValue returns the metadata value for key and whether it exists.
func (m *Model) MetadataValue(key string) (string, bool) {
	for _, e := range m.Metadata {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// SetMetadata sets (or adds) a metadata entry.
func (m *Model) SetMetadata(key, value string) {
	for i, e := range m.Metadata {
		if e.Key == key {
			m.Metadata[i].Value = value
			return
		}
	}
	m.Metadata = append(m.Metadata, MetadataEntry{key, value})
}

// Clone returns a copy of the model that can be changed without changing
// m: graph, nodes, attributes and tensors are copied, except the bytes of
// the initializers (Tensor.Raw), which are shared. Tensor bytes are never
// written in place in robust — code that changes a tensor's values assigns
// it a new Raw — so sharing them is safe, and a clone of a 2.5 GB model
// (every gradient graph, harden's trainable copy) costs no gigabytes.
func (m *Model) Clone() *Model {
	mp := m.Proto() // fresh messages whose raw_data are m's bytes
	inits := mp.GetGraph().GetInitializer()
	raws := make([][]byte, len(inits))
	for i, t := range inits {
		raws[i], t.RawData = t.RawData, nil
	}
	cp := proto.Clone(mp).(*onnxpb.ModelProto)
	for i, t := range cp.GetGraph().GetInitializer() {
		t.RawData = raws[i]
	}
	c, err := FromProto(cp)
	if err != nil { // cannot happen: Proto's output always converts back
		panic(fmt.Sprintf("onnxgraph: clone: %v", err))
	}
	return c
}

// Graph is an ONNX graph: nodes in order, named inputs and outputs,
// initializers (constant tensors) and optional type annotations of
// intermediate values.
type Graph struct {
	Name         string
	DocString    string
	Nodes        []*Node
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
	Initializers []*Tensor

	// Carried through unchanged.
	SparseInitializers     []*onnxpb.SparseTensorProto
	QuantizationAnnotation []*onnxpb.TensorAnnotation
}

// ConstantsToInitializers replaces every Constant node holding a tensor by
// an initializer of its output's name (TensorFlow exporters keep weights
// there; PyTorch's exporter keeps GELU's constants and epsilons there), so
// that parameter discovery and training see them as initializers.
func (g *Graph) ConstantsToInitializers() {
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if a := n.Attr("value"); n.OpType == "Constant" && a != nil && a.Tensor != nil && len(n.Outputs) == 1 {
			t := a.Tensor.Clone()
			t.Name = n.Outputs[0]
			g.Initializers = append(g.Initializers, t)
			continue
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
}

// Initializer returns the initializer called name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// RemoveInitializer deletes the initializer called name and reports whether
// it existed.
func (g *Graph) RemoveInitializer(name string) bool {
	i := slices.IndexFunc(g.Initializers, func(t *Tensor) bool { return t.Name == name })
	if i < 0 {
		return false
	}
	g.Initializers = slices.Delete(g.Initializers, i, i+1)
	return true
}

// Input returns the graph input called name, or nil.
func (g *Graph) Input(name string) *ValueInfo { return findValue(g.Inputs, name) }

// Output returns the graph output called name, or nil.
func (g *Graph) Output(name string) *ValueInfo { return findValue(g.Outputs, name) }

// RealInputs returns the graph inputs that are not also initializers (in old
// IR versions initializers were listed as inputs too).
func (g *Graph) RealInputs() []*ValueInfo {
	var out []*ValueInfo
	for _, in := range g.Inputs {
		if g.Initializer(in.Name) == nil {
			out = append(out, in)
		}
	}
	return out
}

func findValue(vs []*ValueInfo, name string) *ValueInfo {
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Producers maps every value name produced by a node to that node.
func (g *Graph) Producers() map[string]*Node {
	p := make(map[string]*Node)
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				p[o] = n
			}
		}
	}
	return p
}

// Consumers maps every value name to the nodes that read it, in node order.
func (g *Graph) Consumers() map[string][]*Node {
	c := make(map[string][]*Node)
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				c[in] = append(c[in], n)
			}
		}
	}
	return c
}

// Node is one operator application.
type Node struct {
	Name      string
	OpType    string
	Domain    string
	Inputs    []string // "" marks an omitted optional input
	Outputs   []string // "" marks an omitted optional output
	Attrs     []*Attribute
	DocString string
}

// String names the node for error messages: `Conv node "conv1"`.
func (n *Node) String() string {
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		name = "→" + n.Outputs[0]
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return fmt.Sprintf("%s.%s node %q", n.Domain, n.OpType, name)
	}
	return fmt.Sprintf("%s node %q", n.OpType, name)
}

// Input returns input i, or "" when it is absent.
func (n *Node) Input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// SetAttr replaces or adds an attribute.
func (n *Node) SetAttr(a *Attribute) {
	for i, old := range n.Attrs {
		if old.Name == a.Name {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// DeleteAttrs removes the named attributes, those present.
func (n *Node) DeleteAttrs(names ...string) {
	n.Attrs = slices.DeleteFunc(n.Attrs, func(a *Attribute) bool { return slices.Contains(names, a.Name) })
}

// AttrInt returns an INT attribute's value, or def when it is absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil && a.Type == AttrInt {
		return a.Int
	}
	return def
}

// AttrFloat returns a FLOAT attribute's value, or def when it is absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil && a.Type == AttrFloat {
		return a.Float
	}
	return def
}

// AttrInts returns an INTS attribute's value, or def when it is absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a := n.Attr(name); a != nil && a.Type == AttrInts {
		return a.Ints
	}
	return def
}

// AttrString returns a STRING attribute's value, or def when it is absent.
func (n *Node) AttrString(name string, def string) string {
	if a := n.Attr(name); a != nil && a.Type == AttrString {
		return string(a.String)
	}
	return def
}

// AttrType is the type of an attribute (AttributeProto.AttributeType).
type AttrType int32

// Attribute types.
const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrSparseTensor  AttrType = 11
	AttrTypeProto     AttrType = 13
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensors AttrType = 12
	AttrTypeProtos    AttrType = 14
)

// Attribute is a node attribute. Only the field matching Type is meaningful.
// Sparse-tensor and type-proto attributes are kept as their protobuf message
// in Proto.
type Attribute struct {
	Name        string
	Type        AttrType
	RefAttrName string
	DocString   string

	Float   float32
	Int     int64
	String  []byte
	Tensor  *Tensor
	Graph   *Graph
	Floats  []float32
	Ints    []int64
	Strings [][]byte
	Tensors []*Tensor
	Graphs  []*Graph

	Proto *onnxpb.AttributeProto
}

// IntAttr returns an INT attribute.
func IntAttr(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, Int: v} }

// IntsAttr returns an INTS attribute.
func IntsAttr(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: append([]int64{}, v...)}
}

// FloatAttr returns a FLOAT attribute.
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, Float: v}
}

// FloatsAttr returns a FLOATS attribute.
func FloatsAttr(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: append([]float32{}, v...)}
}

// StringAttr returns a STRING attribute.
func StringAttr(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, String: []byte(v)}
}

// TensorAttr returns a TENSOR attribute.
func TensorAttr(name string, t *Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, Tensor: t}
}

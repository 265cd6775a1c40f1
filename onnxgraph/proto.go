package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/robust-go/robust/internal/onnxpb"
	"google.golang.org/protobuf/proto"
)

// FromProto converts a ModelProto to the IR. Tensor data stored in typed
// fields is converted to raw little-endian bytes; external data must already
// have been resolved (see Decode and Load).
func FromProto(mp *onnxpb.ModelProto) (_ *Model, err error) {
	defer prefixErr(&err)
	if mp.GetGraph() == nil {
		return nil, fmt.Errorf("model has no graph")
	}
	m := &Model{
		IRVersion:       mp.GetIrVersion(),
		ProducerName:    mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Domain:          mp.GetDomain(),
		ModelVersion:    mp.GetModelVersion(),
		DocString:       mp.GetDocString(),
		Functions:       mp.GetFunctions(),
		TrainingInfo:    mp.GetTrainingInfo(),
	}
	for _, o := range mp.GetOpsetImport() {
		m.Opsets = append(m.Opsets, OpsetID{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	for _, e := range mp.GetMetadataProps() {
		m.Metadata = append(m.Metadata, MetadataEntry{e.GetKey(), e.GetValue()})
	}
	g, err := graphFromProto(mp.GetGraph())
	if err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

func graphFromProto(gp *onnxpb.GraphProto) (*Graph, error) {
	g := &Graph{
		Name:                   gp.GetName(),
		DocString:              gp.GetDocString(),
		SparseInitializers:     gp.GetSparseInitializer(),
		QuantizationAnnotation: gp.GetQuantizationAnnotation(),
	}
	for _, t := range gp.GetInitializer() {
		tt, err := tensorFromProto(t)
		if err != nil {
			return nil, fmt.Errorf("graph %q: initializer: %w", g.Name, err)
		}
		g.Initializers = append(g.Initializers, tt)
	}
	for _, v := range gp.GetInput() {
		g.Inputs = append(g.Inputs, valueInfoFromProto(v))
	}
	for _, v := range gp.GetOutput() {
		g.Outputs = append(g.Outputs, valueInfoFromProto(v))
	}
	for _, v := range gp.GetValueInfo() {
		g.ValueInfo = append(g.ValueInfo, valueInfoFromProto(v))
	}
	for i, np := range gp.GetNode() {
		n := &Node{
			Name:      np.GetName(),
			OpType:    np.GetOpType(),
			Domain:    np.GetDomain(),
			Inputs:    np.GetInput(),
			Outputs:   np.GetOutput(),
			DocString: np.GetDocString(),
		}
		if n.OpType == "" {
			return nil, fmt.Errorf("graph %q: node %d (%q) has no op_type", g.Name, i, n.Name)
		}
		for _, ap := range np.GetAttribute() {
			a, err := attrFromProto(ap)
			if err != nil {
				return nil, fmt.Errorf("%v: attribute %q: %w", n, ap.GetName(), err)
			}
			n.Attrs = append(n.Attrs, a)
		}
		g.Nodes = append(g.Nodes, n)
	}
	return g, nil
}

func valueInfoFromProto(vp *onnxpb.ValueInfoProto) *ValueInfo {
	v := &ValueInfo{Name: vp.GetName(), DocString: vp.GetDocString()}
	tp := vp.GetType()
	if tp == nil {
		return v
	}
	tt := tp.GetTensorType()
	if tt == nil || tp.GetDenotation() != "" {
		v.Other = tp
		return v
	}
	v.Type = &TensorType{Elem: DataType(tt.GetElemType())}
	if sp := tt.GetShape(); sp != nil {
		v.Type.Shape = make(Shape, 0, len(sp.GetDim()))
		for _, d := range sp.GetDim() {
			dim := Dim{Value: -1, Denotation: d.GetDenotation()}
			switch x := d.GetValue().(type) {
			case *onnxpb.TensorShapeProto_Dimension_DimValue:
				dim.Value = x.DimValue
			case *onnxpb.TensorShapeProto_Dimension_DimParam:
				dim.Param = x.DimParam
			}
			v.Type.Shape = append(v.Type.Shape, dim)
		}
	}
	return v
}

func attrFromProto(ap *onnxpb.AttributeProto) (*Attribute, error) {
	a := &Attribute{
		Name:        ap.GetName(),
		Type:        AttrType(ap.GetType()),
		RefAttrName: ap.GetRefAttrName(),
		DocString:   ap.GetDocString(),
	}
	var err error
	switch a.Type {
	case AttrFloat:
		a.Float = ap.GetF()
	case AttrInt:
		a.Int = ap.GetI()
	case AttrString:
		a.String = ap.GetS()
	case AttrTensor:
		if a.Tensor, err = tensorFromProto(ap.GetT()); err != nil {
			return nil, err
		}
	case AttrGraph:
		if a.Graph, err = graphFromProto(ap.GetG()); err != nil {
			return nil, err
		}
	case AttrFloats:
		a.Floats = ap.GetFloats()
	case AttrInts:
		a.Ints = ap.GetInts()
	case AttrStrings:
		a.Strings = ap.GetStrings()
	case AttrTensors:
		for _, t := range ap.GetTensors() {
			tt, err := tensorFromProto(t)
			if err != nil {
				return nil, err
			}
			a.Tensors = append(a.Tensors, tt)
		}
	case AttrGraphs:
		for _, gp := range ap.GetGraphs() {
			g, err := graphFromProto(gp)
			if err != nil {
				return nil, err
			}
			a.Graphs = append(a.Graphs, g)
		}
	case AttrUndefined:
		if a.RefAttrName == "" {
			return nil, fmt.Errorf("attribute has no type")
		}
	default:
		a.Proto = ap
	}
	return a, nil
}

// checkedElements multiplies dims, reporting false for a negative dimension
// or a product beyond 2^40 elements (no real tensor is that large, and the
// check keeps corrupt files from overflowing size computations).
func checkedElements(dims []int64) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || d > 1<<40 {
			return 0, false
		}
		n *= d
		if n > 1<<40 {
			return 0, false
		}
	}
	return n, true
}

func tensorFromProto(tp *onnxpb.TensorProto) (*Tensor, error) {
	if tp == nil {
		return nil, fmt.Errorf("missing tensor")
	}
	t := &Tensor{
		Name:      tp.GetName(),
		DataType:  DataType(tp.GetDataType()),
		Dims:      tp.GetDims(),
		DocString: tp.GetDocString(),
	}
	if t.Dims == nil {
		t.Dims = []int64{}
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q: external data not resolved", t.Name)
	}
	if tp.Segment != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", t.Name)
	}
	if _, ok := checkedElements(t.Dims); !ok {
		return nil, fmt.Errorf("tensor %q: invalid dimensions %v", t.Name, t.Dims)
	}
	if t.DataType == String {
		t.Strings = tp.GetStringData()
		return t, t.check()
	}
	size := t.DataType.Size()
	if size == 0 {
		return nil, fmt.Errorf("tensor %q: unsupported data type %s", t.Name, t.DataType)
	}
	if tp.RawData != nil {
		t.Raw = tp.GetRawData()
		return t, t.check()
	}
	var raw []byte
	switch t.DataType {
	case Float:
		for _, v := range tp.GetFloatData() {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	case Double:
		for _, v := range tp.GetDoubleData() {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
		}
	case Complex64:
		for _, v := range tp.GetFloatData() {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	case Complex128:
		for _, v := range tp.GetDoubleData() {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
		}
	case Int64:
		for _, v := range tp.GetInt64Data() {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	case Uint64, Uint32:
		for _, v := range tp.GetUint64Data() {
			if t.DataType == Uint32 {
				raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
			} else {
				raw = binary.LittleEndian.AppendUint64(raw, v)
			}
		}
	case Int32:
		for _, v := range tp.GetInt32Data() {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
		}
	case Int16, Uint16, Float16, BFloat16:
		for _, v := range tp.GetInt32Data() {
			raw = binary.LittleEndian.AppendUint16(raw, uint16(v))
		}
	case Int8, Uint8, Bool:
		for _, v := range tp.GetInt32Data() {
			raw = append(raw, byte(v))
		}
	}
	t.Raw = raw
	return t, t.check()
}

// Proto converts the model to its protobuf form. Tensor data is written as
// raw_data.
func (m *Model) Proto() *onnxpb.ModelProto {
	mp := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(m.IRVersion),
		Graph:        m.Graph.proto(),
		Functions:    m.Functions,
		TrainingInfo: m.TrainingInfo,
	}
	setString(&mp.ProducerName, m.ProducerName)
	setString(&mp.ProducerVersion, m.ProducerVersion)
	setString(&mp.Domain, m.Domain)
	setString(&mp.DocString, m.DocString)
	if m.ModelVersion != 0 {
		mp.ModelVersion = proto.Int64(m.ModelVersion)
	}
	for _, o := range m.Opsets {
		op := &onnxpb.OperatorSetIdProto{Version: proto.Int64(o.Version)}
		setString(&op.Domain, o.Domain)
		mp.OpsetImport = append(mp.OpsetImport, op)
	}
	for _, e := range m.Metadata {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(e.Key), Value: proto.String(e.Value)})
	}
	return mp
}

func setString(dst **string, s string) {
	if s != "" {
		*dst = proto.String(s)
	}
}

func (g *Graph) proto() *onnxpb.GraphProto {
	gp := &onnxpb.GraphProto{
		SparseInitializer:      g.SparseInitializers,
		QuantizationAnnotation: g.QuantizationAnnotation,
	}
	setString(&gp.Name, g.Name)
	setString(&gp.DocString, g.DocString)
	for _, n := range g.Nodes {
		np := &onnxpb.NodeProto{Input: n.Inputs, Output: n.Outputs, OpType: proto.String(n.OpType)}
		setString(&np.Name, n.Name)
		setString(&np.Domain, n.Domain)
		setString(&np.DocString, n.DocString)
		for _, a := range n.Attrs {
			np.Attribute = append(np.Attribute, a.proto())
		}
		gp.Node = append(gp.Node, np)
	}
	for _, t := range g.Initializers {
		gp.Initializer = append(gp.Initializer, t.proto())
	}
	for _, v := range g.Inputs {
		gp.Input = append(gp.Input, v.proto())
	}
	for _, v := range g.Outputs {
		gp.Output = append(gp.Output, v.proto())
	}
	for _, v := range g.ValueInfo {
		gp.ValueInfo = append(gp.ValueInfo, v.proto())
	}
	return gp
}

func (v *ValueInfo) proto() *onnxpb.ValueInfoProto {
	vp := &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
	setString(&vp.DocString, v.DocString)
	switch {
	case v.Other != nil:
		vp.Type = v.Other
	case v.Type != nil:
		tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(v.Type.Elem))}
		if v.Type.Shape != nil {
			tt.Shape = &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
			for _, d := range v.Type.Shape {
				dp := &onnxpb.TensorShapeProto_Dimension{}
				setString(&dp.Denotation, d.Denotation)
				switch {
				case d.Param != "":
					dp.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
				case d.Value >= 0:
					dp.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
				}
				tt.Shape.Dim = append(tt.Shape.Dim, dp)
			}
		}
		vp.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
	}
	return vp
}

func (a *Attribute) proto() *onnxpb.AttributeProto {
	if a.Proto != nil {
		return a.Proto
	}
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name)}
	if a.Type != AttrUndefined {
		ap.Type = onnxpb.AttributeProto_AttributeType(a.Type).Enum()
	}
	setString(&ap.RefAttrName, a.RefAttrName)
	setString(&ap.DocString, a.DocString)
	switch a.Type {
	case AttrFloat:
		ap.F = proto.Float32(a.Float)
	case AttrInt:
		ap.I = proto.Int64(a.Int)
	case AttrString:
		ap.S = a.String
		if ap.S == nil {
			ap.S = []byte{}
		}
	case AttrTensor:
		ap.T = a.Tensor.proto()
	case AttrGraph:
		ap.G = a.Graph.proto()
	case AttrFloats:
		ap.Floats = a.Floats
	case AttrInts:
		ap.Ints = a.Ints
	case AttrStrings:
		ap.Strings = a.Strings
	case AttrTensors:
		for _, t := range a.Tensors {
			ap.Tensors = append(ap.Tensors, t.proto())
		}
	case AttrGraphs:
		for _, g := range a.Graphs {
			ap.Graphs = append(ap.Graphs, g.proto())
		}
	}
	return ap
}

func (t *Tensor) proto() *onnxpb.TensorProto {
	tp := &onnxpb.TensorProto{Dims: t.Dims, DataType: proto.Int32(int32(t.DataType))}
	setString(&tp.Name, t.Name)
	setString(&tp.DocString, t.DocString)
	if t.DataType == String {
		tp.StringData = t.Strings
	} else {
		tp.RawData = t.Raw
		if tp.RawData == nil {
			tp.RawData = []byte{}
		}
	}
	return tp
}

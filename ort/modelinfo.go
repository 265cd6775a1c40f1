package ort

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/robust-go/robust/internal/onnxpb"
)

// IOInfo describes a model input or output as the model declares it.
type IOInfo struct {
	Name string
	// ElementType is the tensor element type; Undefined when the value is
	// not a tensor (a sequence or map).
	ElementType ElementType
	// Shape holds each dimension's size, or -1 for a symbolic or unknown
	// one. It is empty for a scalar and nil when the model declares no
	// shape (unknown rank).
	Shape []int64
	// DimParams holds each dimension's symbolic name ("batch"), or "".
	DimParams []string
}

// RankKnown reports whether the model declares the value's rank.
func (i IOInfo) RankKnown() bool { return i.Shape != nil }

// String formats the info as name: type[dims], e.g. "x: float32[batch,3]".
func (i IOInfo) String() string { return i.Name + ": " + i.typeString() }

// typeString formats the declared type, e.g. "float32[batch,3]"; "?" marks an
// unknown rank or dimension.
func (i IOInfo) typeString() string {
	var b strings.Builder
	b.WriteString(i.ElementType.String())
	if !i.RankKnown() {
		b.WriteString("[?]")
		return b.String()
	}
	b.WriteByte('[')
	for k, d := range i.Shape {
		if k > 0 {
			b.WriteByte(',')
		}
		switch {
		case i.DimParams[k] != "":
			b.WriteString(i.DimParams[k])
		case d < 0:
			b.WriteByte('?')
		default:
			b.WriteString(strconv.FormatInt(d, 10))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// ModelInfo lists a model's inputs and outputs in declaration order. Inputs
// exclude initializers, as ONNX Runtime does.
type ModelInfo struct {
	Inputs  []IOInfo
	Outputs []IOInfo
}

// InspectModel reads a serialized ONNX model's inputs and outputs. It only
// decodes the graph's input and output declarations (weights are skipped,
// not copied) and needs no ONNX Runtime.
func InspectModel(model []byte) (*ModelInfo, error) {
	info, err := inspect(model)
	if err != nil {
		return nil, fmt.Errorf("ort: not a valid ONNX model: %w", err)
	}
	return info, nil
}

// InspectModelFile is [InspectModel] for a model file.
func InspectModelFile(path string) (*ModelInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ort: read model: %w", err)
	}
	info, err := inspect(data)
	if err != nil {
		return nil, fmt.Errorf("ort: %s is not a valid ONNX model: %w", path, err)
	}
	return info, nil
}

// Field numbers from onnx.proto.
const (
	modelGraphField             = 7  // ModelProto.graph
	graphInitializerField       = 5  // GraphProto.initializer
	graphSparseInitializerField = 15 // GraphProto.sparse_initializer
	graphInputField             = 11 // GraphProto.input
	graphOutputField            = 12 // GraphProto.output
	tensorNameField             = 8  // TensorProto.name
	sparseValuesField           = 1  // SparseTensorProto.values
)

func inspect(model []byte) (*ModelInfo, error) {
	if len(model) == 0 {
		return nil, errors.New("empty model")
	}
	var graphs [][]byte
	err := walkFields(model, func(num protowire.Number, msg []byte) error {
		if num == modelGraphField {
			graphs = append(graphs, msg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(graphs) == 0 {
		return nil, errors.New("no graph")
	}
	var inputs, outputs []*onnxpb.ValueInfoProto
	initializers := map[string]bool{}
	for _, g := range graphs {
		// A message field that appears more than once is merged: its
		// repeated fields concatenate.
		err := walkFields(g, func(num protowire.Number, msg []byte) error {
			switch num {
			case graphInputField, graphOutputField:
				vi := &onnxpb.ValueInfoProto{}
				if err := proto.Unmarshal(msg, vi); err != nil {
					return fmt.Errorf("graph input/output: %w", err)
				}
				if num == graphInputField {
					inputs = append(inputs, vi)
				} else {
					outputs = append(outputs, vi)
				}
			case graphInitializerField:
				name, err := tensorName(msg)
				if err != nil {
					return fmt.Errorf("initializer: %w", err)
				}
				initializers[name] = true
			case graphSparseInitializerField:
				return walkFields(msg, func(num protowire.Number, msg []byte) error {
					if num != sparseValuesField {
						return nil
					}
					name, err := tensorName(msg)
					if err != nil {
						return fmt.Errorf("sparse initializer: %w", err)
					}
					initializers[name] = true
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	}
	info := &ModelInfo{}
	for _, vi := range inputs {
		if !initializers[vi.GetName()] {
			info.Inputs = append(info.Inputs, ioInfo(vi))
		}
	}
	for _, vi := range outputs {
		info.Outputs = append(info.Outputs, ioInfo(vi))
	}
	return info, nil
}

// walkFields calls fn with the contents of every length-delimited field of
// a protobuf message, skipping the other fields.
func walkFields(msg []byte, fn func(num protowire.Number, contents []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, msg)
			if n < 0 {
				return protowire.ParseError(n)
			}
			msg = msg[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// tensorName returns a TensorProto's name without decoding its data.
func tensorName(msg []byte) (string, error) {
	var name string
	err := walkFields(msg, func(num protowire.Number, v []byte) error {
		if num == tensorNameField {
			name = string(v)
		}
		return nil
	})
	return name, err
}

func ioInfo(vi *onnxpb.ValueInfoProto) IOInfo {
	info := IOInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return info
	}
	info.ElementType = ElementType(tt.GetElemType())
	if tt.Shape == nil {
		return info
	}
	dims := tt.GetShape().GetDim()
	info.Shape = make([]int64, len(dims))
	info.DimParams = make([]string, len(dims))
	for k, d := range dims {
		info.Shape[k] = -1
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if v.DimValue >= 0 {
				info.Shape[k] = v.DimValue
			}
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			info.DimParams[k] = v.DimParam
		}
	}
	return info
}

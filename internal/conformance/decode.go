package conformance

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/robust-go/robust/internal/onnxpb"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// decodeTensor reads a serialized TensorProto into an ort.Tensor through
// onnxgraph's model decoder (wrapped in a one-initializer model).
func decodeTensor(data []byte) (*ort.Tensor, error) {
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, fmt.Errorf("decode tensor: %w", err)
	}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: &onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{&tp}}}
	m, err := onnxgraph.FromProto(mp)
	if err != nil {
		return nil, fmt.Errorf("decode tensor: %w", err)
	}
	t := m.Graph.Initializers[0]
	out := &ort.Tensor{Shape: t.Dims}
	switch t.DataType {
	case onnxgraph.Float, onnxgraph.Float16:
		out.Data, err = t.Float32s()
	case onnxgraph.Double:
		out.Data, err = t.Float64s()
	case onnxgraph.Int64:
		out.Data, err = t.Int64s()
	case onnxgraph.Int32, onnxgraph.Int16, onnxgraph.Int8, onnxgraph.Uint8, onnxgraph.Uint16, onnxgraph.Uint32, onnxgraph.Uint64, onnxgraph.Bool:
		var v []int64
		v, err = t.Int64s()
		out.Data = castInts(t.DataType, v)
	default:
		return nil, fmt.Errorf("tensor type %s not supported by the harness", t.DataType)
	}
	if t.DataType == onnxgraph.Float16 {
		return nil, fmt.Errorf("float16 tensors not supported by the harness")
	}
	return out, err
}

func castInts(dt onnxgraph.DataType, v []int64) any {
	switch dt {
	case onnxgraph.Int32:
		return castSlice[int32](v)
	case onnxgraph.Int16:
		return castSlice[int16](v)
	case onnxgraph.Int8:
		return castSlice[int8](v)
	case onnxgraph.Uint8:
		return castSlice[uint8](v)
	case onnxgraph.Uint16:
		return castSlice[uint16](v)
	case onnxgraph.Uint32:
		return castSlice[uint32](v)
	case onnxgraph.Uint64:
		return castSlice[uint64](v)
	case onnxgraph.Bool:
		out := make([]bool, len(v))
		for i, x := range v {
			out[i] = x != 0
		}
		return out
	}
	return v
}

func castSlice[T int32 | int16 | int8 | uint8 | uint16 | uint32 | uint64](v []int64) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}

package ort

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/robust-go/robust/internal/onnxpb"
	"github.com/robust-go/robust/internal/testenv/skip"
)

// testEnv returns an Env on the CPU. Without a library it skips the test,
// unless ROBUST_REQUIRE_ORT is set (as in CI), where it fails.
func testEnv(t testing.TB) *Env {
	t.Helper()
	if _, err := FindLibrary(""); err != nil {
		skip.Missing(t, skip.RequireORT, "ONNX Runtime (run scripts/setup-ort.sh)", err)
	}
	env, err := Init(Options{})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return env
}

// dim is a model dimension: an int64 size or a string parameter.
type dim any

// tensorType returns a tensor type; nil dims declare no shape, empty dims a
// scalar.
func tensorType(et onnxpb.TensorProto_DataType, dims []dim) *onnxpb.TypeProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(et))}
	if dims != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			td := &onnxpb.TensorShapeProto_Dimension{}
			switch d := d.(type) {
			case int:
				td.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			case string:
				td.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
			}
			tt.Shape.Dim = append(tt.Shape.Dim, td)
		}
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
}

func valueInfo(name string, tp *onnxpb.TypeProto) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: tp}
}

func node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Output: outputs, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{
		Name: proto.String(name),
		Type: onnxpb.AttributeProto_INT.Enum(),
		I:    proto.Int64(v),
	}
}

func marshalModel(t testing.TB, g *onnxpb.GraphProto) []byte {
	t.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(8),
		ProducerName: proto.String("robust-ort-test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph:        g,
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addModel returns a model with float inputs x, y of shape [batch, 4] and
//
//	z = x + y          declared [batch, 4]
//	s = sum(z)         declared as a scalar
//	w = x * y          declared without a shape
func addModel(t testing.TB) []byte {
	f := onnxpb.TensorProto_FLOAT
	return marshalModel(t, &onnxpb.GraphProto{
		Name: proto.String("add"),
		Node: []*onnxpb.NodeProto{
			node("Add", []string{"x", "y"}, []string{"z"}),
			node("ReduceSum", []string{"z"}, []string{"s"}, intAttr("keepdims", 0)),
			node("Mul", []string{"x", "y"}, []string{"w"}),
		},
		Input: []*onnxpb.ValueInfoProto{
			valueInfo("x", tensorType(f, []dim{"batch", 4})),
			valueInfo("y", tensorType(f, []dim{"batch", 4})),
		},
		Output: []*onnxpb.ValueInfoProto{
			valueInfo("z", tensorType(f, []dim{"batch", 4})),
			valueInfo("s", tensorType(f, []dim{})),
			valueInfo("w", tensorType(f, nil)),
		},
	})
}

// biasModel returns y = x + b where b is an initializer that is also listed
// as a graph input (an overridable initializer, not a required input).
func biasModel(t testing.TB) []byte {
	f := onnxpb.TensorProto_FLOAT
	return marshalModel(t, &onnxpb.GraphProto{
		Name: proto.String("bias"),
		Node: []*onnxpb.NodeProto{node("Add", []string{"x", "b"}, []string{"y"})},
		Initializer: []*onnxpb.TensorProto{{
			Name:      proto.String("b"),
			DataType:  proto.Int32(int32(f)),
			Dims:      []int64{3},
			FloatData: []float32{1, 2, 3},
		}},
		Input: []*onnxpb.ValueInfoProto{
			valueInfo("x", tensorType(f, []dim{"n", 3})),
			valueInfo("b", tensorType(f, []dim{3})),
		},
		Output: []*onnxpb.ValueInfoProto{valueInfo("y", tensorType(f, []dim{"n", 3}))},
	})
}

func TestInspectModel(t *testing.T) {
	info, err := InspectModel(addModel(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, io := range append(info.Inputs, info.Outputs...) {
		got = append(got, io.String())
	}
	want := []string{"x: float32[batch,4]", "y: float32[batch,4]", "z: float32[batch,4]", "s: float32[]", "w: float32[?]"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("io %d = %q, want %q", i, got[i], want[i])
		}
	}
	if s := info.Outputs[1]; !s.RankKnown() || len(s.Shape) != 0 {
		t.Errorf("s: RankKnown %v, shape %v; want a known rank 0", s.RankKnown(), s.Shape)
	}
	if w := info.Outputs[2]; w.RankKnown() {
		t.Errorf("w: rank known, want unknown")
	}
	if x := info.Inputs[0]; x.Shape[0] != -1 || x.Shape[1] != 4 || x.DimParams[0] != "batch" {
		t.Errorf("x: shape %v params %q", x.Shape, x.DimParams)
	}

	info, err = InspectModel(biasModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Inputs) != 1 || info.Inputs[0].Name != "x" {
		t.Errorf("bias model inputs = %v, want only x (b is an initializer)", info.Inputs)
	}
}

func TestInspectModelGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("this is not an ONNX model at all \xff\xff\xff\xff"),
		"no graph": mustMarshal(t, &onnxpb.ModelProto{IrVersion: proto.Int64(8)}),
	} {
		if _, err := InspectModel(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

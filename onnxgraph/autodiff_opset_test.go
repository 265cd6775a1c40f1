package onnxgraph_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"google.golang.org/protobuf/proto"

	"github.com/robust-go/robust/internal/onnxpb"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// readTensorPB decodes a serialized TensorProto (an ONNX test vector).
func readTensorPB(path string) (*og.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, err
	}
	tp.Name = proto.String("t")
	m, err := og.FromProto(&onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: &onnxpb.GraphProto{
		Initializer: []*onnxpb.TensorProto{&tp}}})
	if err != nil {
		return nil, err
	}
	return m.Graph.Initializers[0], nil
}

// TestUpgradeOpsetPytorchConverted runs every pytorch-converted model after
// UpgradeOpset and compares its output with the test vector, proving that
// the upgraded model means what the original did.
func TestUpgradeOpsetPytorchConverted(t *testing.T) {
	testenv.Data(t, pytorchConverted)
	env := testenv.ORT(t)
	paths, err := filepath.Glob(filepath.Join(pytorchConverted, "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, path := range paths {
		dir := filepath.Dir(path)
		m, err := og.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := og.UpgradeOpset(m); err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: upgraded model invalid: %v", dir, err)
			continue
		}
		in, err1 := readTensorPB(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
		want, err2 := readTensorPB(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
		if err1 != nil || err2 != nil {
			t.Errorf("%s: test vectors: %v %v", dir, err1, err2)
			continue
		}
		s, err := newSession(env, m, []string{m.Graph.Outputs[0].Name})
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		feed := &ort.Tensor{Shape: in.Dims}
		if in.DataType == og.Int64 {
			feed.Data, _ = in.Int64s()
		} else {
			v, _ := in.Float64s()
			feed = tensorOf(og.Float, in.Dims, v)
		}
		out, err := s.run(map[string]*ort.Tensor{s.inputs[0]: feed})
		s.close()
		if err != nil {
			t.Errorf("%s: run: %v", dir, err)
			continue
		}
		got := values(out[s.outputs[0]])
		exp, _ := want.Float64s()
		if len(got) != len(exp) {
			t.Errorf("%s: %d outputs, want %d", dir, len(got), len(exp))
			continue
		}
		for i := range got {
			if math.Abs(got[i]-exp[i]) > 1e-4*math.Max(1, math.Abs(exp[i])) {
				t.Errorf("%s: output[%d] = %g, want %g", dir, i, got[i], exp[i])
				break
			}
		}
		checked++
	}
	t.Logf("upgraded and checked %d models against their test vectors", checked)
	// Debian's libonnx-testdata has 82; a partial copy must not pass.
	testenv.DataCases(t, pytorchConverted, checked, 80)
}

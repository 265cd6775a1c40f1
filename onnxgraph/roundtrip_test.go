package onnxgraph_test

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
)

// TestRoundTripPytorchConverted reads every model of ONNX's pytorch-converted
// test data, writes it, reads it back and compares the two IRs.
func TestRoundTripPytorchConverted(t *testing.T) {
	dir := filepath.Join("/usr/share/libonnx-testdata/data", "pytorch-converted")
	testenv.Data(t, dir)
	models, err := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.DataCases(t, dir, len(models), 80)
	for _, path := range models {
		m1, err := onnxgraph.Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		data, err := onnxgraph.Encode(m1)
		if err != nil {
			t.Errorf("%s: encode: %v", path, err)
			continue
		}
		m2, err := onnxgraph.Decode(data, "")
		if err != nil {
			t.Errorf("%s: decode again: %v", path, err)
			continue
		}
		if !reflect.DeepEqual(m1, m2) {
			t.Errorf("%s: model differs after a round trip", path)
		}
		if err := m1.Validate(); err != nil {
			t.Errorf("%s: validate: %v", path, err)
		}
	}
	t.Logf("round-tripped %d models", len(models))
}

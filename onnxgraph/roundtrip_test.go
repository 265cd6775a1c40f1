package onnxgraph

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

const testdataRoot = "/usr/share/libonnx-testdata/data"

// TestRoundTripPytorchConverted reads every model of ONNX's pytorch-converted
// test data, writes it, reads it back and compares the two IRs.
func TestRoundTripPytorchConverted(t *testing.T) {
	dir := filepath.Join(testdataRoot, "pytorch-converted")
	testenv.Data(t, dir)
	models, err := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.DataCases(t, dir, len(models), 80)
	for _, path := range models {
		m1, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		data, err := Encode(m1)
		if err != nil {
			t.Errorf("%s: encode: %v", path, err)
			continue
		}
		m2, err := Decode(data, "")
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

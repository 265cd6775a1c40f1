package onnxgraph

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const testdataRoot = "/usr/share/libonnx-testdata/data"

func requireTestdata(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("ROBUST_REQUIRE_DATA") != "" {
			t.Fatalf("ONNX test data missing (install Debian's libonnx-testdata): %v", err)
		}
		t.Skipf("ONNX test data missing (install Debian's libonnx-testdata): %v", err)
	}
}

// TestRoundTripPytorchConverted reads every model of ONNX's pytorch-converted
// test data, writes it, reads it back and compares the two IRs.
func TestRoundTripPytorchConverted(t *testing.T) {
	dir := filepath.Join(testdataRoot, "pytorch-converted")
	requireTestdata(t, dir)
	models, err := filepath.Glob(filepath.Join(dir, "*", "model.onnx"))
	if err != nil || len(models) == 0 {
		t.Fatalf("no models under %s: %v", dir, err)
	}
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

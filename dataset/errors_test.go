package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
)

// TestErrorPrefix checks that the errors of the exported entry points
// start with "dataset: " once and name the user's path, also where one
// exported function calls another (Open calls the loaders, the loaders
// FromArrays and ReadNPY).
func TestErrorPrefix(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	garbage := writeFile(t, filepath.Join(dir, "garbage.npy"), []byte("not an array"))
	npz := filepath.Join(dir, "bad.npz")
	if err := WriteNPZ(npz, map[string]Array{"x": {Shape: []int{2, 3}, Data: make([]float32, 6)}, "y": {Shape: []int{2}, Data: []int64{0, 1}}}); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "emptyfolder")
	if err := os.MkdirAll(filepath.Join(empty, "train"), 0o755); err != nil {
		t.Fatal(err)
	}
	mem := indexDataset(4, 1, 2, 2)
	tests := []struct {
		name string
		err  func() error
		path string // the path the message must name, if any
	}{
		{"open unknown", func() error { _, err := Open("imagenet21k:x", "train", Options{}); return err }, ""},
		{"open split", func() error { _, err := Open("mnist", "val", Options{}); return err }, ""},
		{"open cifar10", func() error { _, err := Open("cifar10:"+missing, "test", Options{}); return err }, missing},
		{"open cifar100", func() error { _, err := Open("cifar100:"+missing, "test", Options{}); return err }, missing},
		{"open mnist", func() error { _, err := Open("mnist:"+missing, "test", Options{}); return err }, missing},
		{"open fashion", func() error { _, err := Open("fashion-mnist:"+missing, "test", Options{}); return err }, missing},
		{"open imagefolder", func() error { _, err := Open("imagefolder:"+empty, "train", Options{}); return err }, empty},
		{"open tar", func() error { _, err := Open("tar:"+missing+"-{0..1}.tar", "train", Options{}); return err }, missing},
		{"open npz shape", func() error { _, err := Open(npz, "train", Options{}); return err }, npz},
		{"open npy garbage", func() error { _, err := Open("npy:"+garbage+","+garbage, "train", Options{}); return err }, garbage},
		{"npy pair shape", func() error { _, err := LoadNPYPair(garbage, garbage, 0); return err }, garbage},
		{"read npy", func() error { _, err := ReadNPY(missing); return err }, missing},
		{"read npz", func() error { _, err := ReadNPZ(garbage); return err }, garbage},
		{"decode npy", func() error { _, err := DecodeNPY(strings.NewReader("\x93NUMPY"), 0); return err }, ""},
		{"encode npy", func() error { return EncodeNPY(new(bytes.Buffer), Array{Shape: []int{3}, Data: []float32{1}}) }, ""},
		{"from arrays", func() error {
			_, err := FromArrays(Array{Shape: []int{2, 3}, Data: make([]float32, 6)}, Array{Shape: []int{2}, Data: []int64{0, 1}}, 0)
			return err
		}, ""},
		{"cifar files", func() error { _, err := LoadCIFARFiles(false, garbage); return err }, garbage},
		{"idx", func() error { _, err := LoadIDX(garbage, garbage); return err }, garbage},
		{"augment", func() error { _, err := ParseAugment("rotate"); return err }, ""},
		{"floats", func() error { _, err := mem.Floats(nil, 2, 9); return err }, ""},
		{"select", func() error { _, err := mem.Select([]int{7}); return err }, ""},
		{"split", func() error { _, _, err := mem.Split(9, 1); return err }, ""},
		{"validate", func() error {
			return (&Dataset{Name: "bad", C: 1, H: 2, W: 2, NumClasses: 2, X: make([]float32, 3), Y: []int64{0}}).Validate()
		}, ""},
		{"save npz", func() error { return mem.SaveNPZ(filepath.Join(missing, "out.npz")) }, missing},
		{"iterator", func() error { _, err := NewIterator(mem, IteratorOptions{BatchSize: 0}); return err }, ""},
	}
	for _, tt := range tests {
		err := tt.err()
		if err := liberr.Check(err, "dataset"); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.path != "" && !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: %q does not name %s", tt.name, err, tt.path)
		}
		if strings.Contains(err.Error(), ".tmp") {
			t.Errorf("%s: %q names a temporary file", tt.name, err)
		}
	}
}

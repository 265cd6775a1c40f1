package onnxgraph

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	a := tinyModel()
	if d := Diff(a, tinyModel()); !d.OnlyValuesChanged() || len(d.Values) != 0 || d.Unchanged != 1 {
		t.Fatalf("identical models: %+v", d)
	}
	b := tinyModel()
	b.Graph.Initializers[0] = NewFloatTensor(b.Graph.Initializers[0].Name, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6.5})
	b.SetMetadata("robust.hardened", "yes")
	d := Diff(a, b)
	if !d.OnlyValuesChanged() || len(d.Values) != 1 || d.Values[0].Changed != 1 || d.Values[0].MaxAbs != 0.5 {
		t.Fatalf("value change: %+v", d)
	}
	if len(d.Metadata) != 1 || !strings.Contains(d.Metadata[0], "robust.hardened") {
		t.Fatalf("metadata: %v", d.Metadata)
	}
	c := tinyModel()
	c.Graph.Nodes[1].OpType = "Sigmoid"
	c.Graph.Outputs[0].Name = "renamed"
	if d := Diff(a, c); d.OnlyValuesChanged() || len(d.Structure) != 2 {
		t.Fatalf("structural change: %v", d.Structure)
	}
}

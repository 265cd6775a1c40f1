package onnxgraph_test

import (
	"path/filepath"
	"testing"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// TestInputGradientGraphIsSpecialised checks that the graphs attacks run
// are built for fixed weights: a PyTorch export's inference
// BatchNormalization layers are folded into their convolutions before
// differentiation, so neither they nor their gradients remain: the graph
// is node for node the one built from the model specialised beforehand.
// (The values are checked against the unspecialised graph by
// TestSpecializeFrozen and, through the attacks, by the golden reports.)
func TestInputGradientGraphIsSpecialised(t *testing.T) {
	for _, name := range []string{"mobilenet_v3_tiny_opset17", "shufflenet_v2_tiny_opset13"} {
		m, err := og.Load(filepath.Join("testdata", "torch", name, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		before := 0
		for _, n := range m.Graph.Nodes {
			if n.OpType == "BatchNormalization" {
				before++
			}
		}
		ig, err := traingraph.BuildInputGradientGraph(m, traingraph.InputGradientOptions{Loss: traingraph.LossOptions{Head: traingraph.CrossEntropyHead}})
		if err != nil {
			t.Fatal(err)
		}
		after := 0
		for _, n := range ig.Model.Graph.Nodes {
			if n.OpType == "BatchNormalization" {
				after++
			}
		}
		if before == 0 || after != 0 {
			t.Errorf("%s: %d BatchNormalization nodes in the export, %d left in the input-gradient graph", name, before, after)
		}
		folded := m.Clone()
		og.SpecializeFrozen(folded)
		want, err := traingraph.BuildInputGradientGraph(folded, traingraph.InputGradientOptions{Loss: traingraph.LossOptions{Head: traingraph.CrossEntropyHead}})
		if err != nil {
			t.Fatal(err)
		}
		if got, w := len(ig.Model.Graph.Nodes), len(want.Model.Graph.Nodes); got != w {
			t.Errorf("%s: %d nodes, %d when the model is specialised before differentiation", name, got, w)
		}
	}
}

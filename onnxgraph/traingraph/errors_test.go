package traingraph_test

import (
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
)

// tiny returns logits = relu(x wᵀ) [N, 2] of x [N, 3]; with sine, relu(sin(x)
// wᵀ), which has no gradient (Sin has no rule).
func tiny(sine bool) *og.Model {
	b := og.NewBuilder("tiny")
	x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(3)})
	if sine {
		x = b.Op("Sin", []string{x})
	}
	w := b.ConstFloat([]int64{2, 3}, 1, 2, 3, 4, 5, 6)
	y := b.Relu(b.Gemm(x, w, "", og.GemmOpts{TransB: true}))
	b.Output(y, og.Float, og.Shape{og.Sym("N"), og.D(2)})
	return b.Model()
}

// TestErrorPrefix checks that the errors of the exported entry points
// start with "traingraph: " once, also where they wrap an error of
// onnxgraph's (which then names onnxgraph once, after the context), and
// that they say what went wrong.
func TestErrorPrefix(t *testing.T) {
	unknownOp := tiny(false)
	unknownOp.Graph.Nodes[0].OpType = "Frobnicate"
	tests := []struct {
		name string
		err  func() error
		want string // a part of the message
	}{
		{"classifier io", func() error { _, _, err := traingraph.ClassifierIO(tiny(false).Graph, "pixels", ""); return err },
			`"pixels" is not an input`},
		{"add loss", func() error { _, err := traingraph.AddLoss(tiny(false), "ghost", traingraph.LossOptions{}); return err },
			`logits "ghost"`},
		{"training graph, unknown op", func() error {
			_, err := traingraph.BuildTrainingGraph(unknownOp, traingraph.TrainOptions{})
			return err
		}, `logits "relu_1" must be`}, // shape inference knows nothing of Frobnicate's output
		{"training graph, no gradient", func() error {
			_, err := traingraph.BuildTrainingGraph(tiny(true), traingraph.TrainOptions{})
			return err
		}, "Sin"},
		{"training graph, bad input", func() error {
			_, err := traingraph.BuildTrainingGraph(tiny(false), traingraph.TrainOptions{Input: "pixels"})
			return err
		}, `"pixels" is not an input`},
		{"input gradient graph", func() error {
			_, err := traingraph.BuildInputGradientGraph(tiny(false), traingraph.InputGradientOptions{Input: "pixels"})
			return err
		}, `"pixels" is not an input`},
	}
	for _, tt := range tests {
		err := tt.err()
		if err := liberr.Check(err, "traingraph"); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		msg := err.Error()
		if strings.Count(msg, "onnxgraph: ") > 1 {
			t.Errorf("%s: %q names onnxgraph more than once", tt.name, msg)
		}
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %q does not say %q", tt.name, msg, tt.want)
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

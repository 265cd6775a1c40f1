package zoo

import (
	"slices"
	"testing"

	og "github.com/robust-go/robust/onnxgraph"
)

// TestTrainableParamsMatchZoo checks that onnxgraph.TrainableParams, which
// training and hardening use, trains exactly the zoo's parameters
// (Parameters: Conv, Gemm and BatchNormalization weights and biases) and
// decays exactly their Conv and Gemm weights, so that the training graphs
// of zoo models do not depend on the wider learned-tensor rule: the
// normalisation constants the zoo divides by (Sub and Div) and the
// running statistics stay constants.
func TestTrainableParamsMatchZoo(t *testing.T) {
	for _, s := range specs {
		m, n, err := s.build(Options{}, true)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		var count int64
		for _, p := range Parameters(m) {
			want = append(want, p.Name)
			count += p.NumElements()
		}
		got := og.TrainableParams(m.Graph)
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: TrainableParams = %v, want %v", s.info.Name, got, want)
		}
		if count != n.params {
			t.Errorf("%s: %d parameters, the builder counted %d", s.info.Name, count, n.params)
		}
		for _, name := range got {
			decayed := false
			for _, nd := range m.Graph.Nodes {
				decayed = decayed || (nd.OpType == "Conv" || nd.OpType == "Gemm") && nd.Input(1) == name
			}
			if og.WeightDecayed(m.Graph, name) != decayed {
				t.Errorf("%s: WeightDecayed(%s) = %v, want %v", s.info.Name, name, !decayed, decayed)
			}
		}
	}
}

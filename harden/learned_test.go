package harden

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
)

// withPreprocessing returns m reading its input through (x − mean)/std with
// per-channel initializers, as models that bake in their normalisation do.
func withPreprocessing(t *testing.T, m *og.Model) *og.Model {
	t.Helper()
	g := m.Graph
	x := g.RealInputs()[0].Name
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == x {
				n.Inputs[i] = "preprocess.normalised"
			}
		}
	}
	g.Initializers = append(g.Initializers,
		og.NewFloatTensor("preprocess.mean", []int64{1, 3, 1, 1}, []float32{0.485, 0.456, 0.406}),
		og.NewFloatTensor("preprocess.std", []int64{1, 3, 1, 1}, []float32{0.229, 0.224, 0.225}))
	g.Nodes = append([]*og.Node{
		{Name: "preprocess.sub", OpType: "Sub", Inputs: []string{x, "preprocess.mean"}, Outputs: []string{"preprocess.centred"}},
		{Name: "preprocess.div", OpType: "Div", Inputs: []string{"preprocess.centred", "preprocess.std"}, Outputs: []string{"preprocess.normalised"}},
	}, g.Nodes...)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// values returns the float values of an initializer or Constant node.
func values(t *testing.T, m *og.Model, name string) []float32 {
	t.Helper()
	tensor := m.Graph.Initializer(name)
	for _, n := range m.Graph.Nodes {
		if a := n.Attr("value"); tensor == nil && n.OpType == "Constant" && a != nil && n.Outputs[0] == name {
			tensor = a.Tensor
		}
	}
	if tensor == nil {
		t.Fatalf("no value %q", name)
	}
	v, err := tensor.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHardenTrainsLearnedTensors checks that hardening a tiny ViT and
// ConvNeXt trains the learned tensors that no Conv, Gemm, MatMul or
// normalisation reads — the class token, the position embedding, the
// biases of Linear layers exported as MatMul + Add, the layer scales —
// while the one-element constants (GELU's 0.5 and 1/√2, epsilons) and the
// preprocessing mean and std the model subtracts and divides by do not
// change.
func TestHardenTrainsLearnedTensors(t *testing.T) {
	env := testenv.ORT(t)
	data := tinyImages(t, 64, 3)
	for name, learned := range map[string][]string{
		"vit_tiny_opset17": {"class_token", "encoder.pos_embedding",
			"encoder.layers.encoder_layer_0.self_attention.in_proj_bias",
			"encoder.layers.encoder_layer_0.mlp.0.bias", "encoder.layers.encoder_layer_0.mlp.3.bias"},
		"convnext_tiny_block_opset13": {"features.1.0.layer_scale", "features.3.0.layer_scale",
			"features.1.0.block.3.bias", "features.1.0.block.5.bias", "classifier.0.bias"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := og.Load(filepath.Join("..", "onnxgraph", "testdata", "torch", name, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			m = withPreprocessing(t, m)
			var constants []string
			for _, n := range m.Graph.Nodes {
				if a := n.Attr("value"); n.OpType == "Constant" && a != nil && a.Tensor.DataType == og.Float {
					constants = append(constants, n.Outputs[0])
				}
			}
			if len(constants) == 0 {
				t.Fatal("the export has no float Constant nodes")
			}
			constants = append(constants, "preprocess.mean", "preprocess.std")
			plan, err := Prepare(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range learned {
				if !slices.Contains(plan.Params, p) {
					t.Errorf("%s is not trained", p)
				}
			}
			for _, c := range constants {
				if slices.Contains(plan.Params, c) {
					t.Errorf("constant %s is trained", c)
				}
			}
			res, err := Run(context.Background(), env, plan, data, nil, Config{
				Train: train.Config{Method: train.Natural, Epochs: 1, BatchSize: 16, LR: 0.05,
					Schedule: "constant", Momentum: 0.9},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range learned {
				if slices.Equal(values(t, res.Model, p), values(t, m, p)) {
					t.Errorf("%s did not change", p)
				}
			}
			for _, c := range constants {
				if !slices.Equal(values(t, res.Model, c), values(t, m, c)) {
					t.Errorf("constant %s changed", c)
				}
			}
		})
	}
}

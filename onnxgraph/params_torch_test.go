package onnxgraph_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/torchref"
	og "github.com/robust-go/robust/onnxgraph"
)

// TestTrainableParamsPyTorch checks, on the tiny torchvision exports of
// testdata/torch, that TrainableParams holds every PyTorch parameter the
// export keeps as an initializer (the biases of Linear layers exported as
// MatMul + Add, ViT's class token and position embedding, ConvNeXt's layer
// scales, Swin's relative-position bias tables, Linear weights read through
// a Transpose) and the tensors the exporter folded from them (Swin's
// relative-position bias added to the attention logits), and nothing the
// model keeps as a buffer (BatchNormalization's running statistics) or as
// a one-element constant (GELU's 0.5 and 1/√2, LayerNorm's epsilon).
func TestTrainableParamsPyTorch(t *testing.T) {
	mustHave := map[string][]string{
		"vit_tiny_opset17": {"class_token", "encoder.pos_embedding",
			"encoder.layers.encoder_layer_0.self_attention.in_proj_bias",
			"encoder.layers.encoder_layer_0.mlp.0.bias", "encoder.layers.encoder_layer_0.mlp.3.bias"},
		"convnext_tiny_block_opset13": {"features.1.0.layer_scale", "features.3.0.layer_scale",
			"features.1.0.block.3.bias", "features.1.0.block.5.bias", "classifier.0.bias"},
		"swin_tiny_opset17": {"features.1.0.attn.qkv.bias", "features.1.0.mlp.0.bias", "features.3.0.mlp.3.bias"},
	}
	unfoldedMustHave := map[string][]string{
		"vit_tiny_opset17": {"encoder.layers.encoder_layer_0.mlp.0.weight"},
		"swin_tiny_opset17": {"features.1.0.attn.relative_position_bias_table",
			"features.3.0.attn.relative_position_bias_table", "features.1.0.attn.qkv.weight"},
	}
	dirs, err := torchref.Dirs(filepath.Join("testdata", "torch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		ref, err := torchref.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range []string{"model.onnx", "model_unfolded.onnx"} {
			t.Run(filepath.Base(dir)+"/"+file, func(t *testing.T) {
				m, err := og.Load(filepath.Join(dir, file))
				if err != nil {
					t.Fatal(err)
				}
				g := m.Graph
				// As package harden does, make the exporter's Constant
				// nodes (GELU's 0.5 and 1/√2, epsilons) initializers.
				g.ConstantsToInitializers()
				params := og.TrainableParams(g)
				want := mustHave[filepath.Base(dir)]
				if file == "model_unfolded.onnx" {
					want = append(want, unfoldedMustHave[filepath.Base(dir)]...)
				}
				for _, name := range want {
					if !slices.Contains(params, name) {
						t.Errorf("%s is not trainable", name)
					}
				}
				for name := range ref.Grads {
					if name != ref.Input.Name && g.Initializer(name) != nil && !slices.Contains(params, name) {
						t.Errorf("PyTorch parameter %s is not trainable", name)
					}
				}
				consumers := g.Consumers()
				for _, init := range g.Initializers {
					trainable := slices.Contains(params, init.Name)
					_, isParam := ref.Grads[init.Name]
					if trainable && !isParam && (!init.DataType.IsFloat() || init.NumElements() <= 1) {
						t.Errorf("constant %s (%v, %d elements) is trainable", init.Name, init.DataType, init.NumElements())
					}
					for _, n := range consumers[init.Name] {
						if n.OpType == "BatchNormalization" && (n.Input(3) == init.Name || n.Input(4) == init.Name) && trainable {
							t.Errorf("running statistic %s is trainable", init.Name)
						}
						// A constant the exporter folded from parameters:
						// Swin's relative-position bias, [1, heads, N, N].
						if n.OpType == "Add" && !isParam && len(init.Dims) == 4 && !trainable {
							t.Errorf("folded bias %s%v added by %s is not trainable", init.Name, init.Dims, n.Name)
						}
					}
				}
			})
		}
	}
}

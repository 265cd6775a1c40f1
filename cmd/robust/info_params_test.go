package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/torchref"
	og "github.com/robust-go/robust/onnxgraph"
)

// TestInfoCountsLearnedTensors checks that info counts as parameters all
// of what PyTorch counts in the tiny ViT and ConvNeXt exports — the class
// token, position embedding, Linear biases exported as MatMul + Add and
// layer scales included — except the tensors the exporter tied to an equal
// one through an Identity node (unit LayerNorm scales, zero biases), which
// the graph holds once.
func TestInfoCountsLearnedTensors(t *testing.T) {
	for _, name := range []string{"vit_tiny_opset17", "convnext_tiny_block_opset13"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "onnxgraph", "testdata", "torch", name)
			model := filepath.Join(dir, "model.onnx")
			ref, err := torchref.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := og.Load(model)
			if err != nil {
				t.Fatal(err)
			}
			tied := map[string]bool{}
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Identity" {
					tied[n.Outputs[0]] = true
				}
			}
			var want int64
			for p, g := range ref.Grads {
				if p == ref.Input.Name || tied[p] {
					continue
				}
				size := int64(1)
				for _, d := range g.Shape {
					size *= d
				}
				want += size
			}
			code, out, errOut := robust(t, "info", "--json", model)
			var info modelInfo
			if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil {
				t.Fatalf("exit %d, %v\n%s", code, err, errOut)
			}
			if info.Parameters != want || info.Buffers != 0 || !info.Trainable {
				t.Errorf("%d parameters, %d buffers (trainable %v); PyTorch has %d parameters not tied by the exporter",
					info.Parameters, info.Buffers, info.Trainable, want)
			}
		})
	}
}

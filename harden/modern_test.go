package harden

import (
	"context"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/internal/testenv"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
)

// tinyImages returns n random 3×16×16 images in [0,1] with labels that
// depend on their mean brightness, so that there is something to learn.
func tinyImages(t *testing.T, n int, seed uint64) *dataset.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*3*16*16)
	y := make([]int64, n)
	for i := range n {
		y[i] = int64(r.IntN(10))
		for j := range 3 * 16 * 16 {
			x[i*768+j] = float32(min(max(0.2+0.06*float64(y[i])+0.1*r.NormFloat64(), 0), 1))
		}
	}
	d, err := dataset.FromArrays(dataset.Array{Shape: []int{n, 3, 16, 16}, Data: x},
		dataset.Array{Shape: []int{n}, Data: y}, 10)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// opCounts counts the nodes of each operator type but Identity.
func opCounts(m *og.Model) map[string]int {
	c := map[string]int{}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Identity" {
			c[n.OpType]++
		}
	}
	return c
}

// TestHardenModernArchitectures fine-tunes tiny PyTorch exports of a ViT
// (LayerNormalization, Erf, attention), a ConvNeXt block (depthwise Conv,
// decomposed LayerNorm, layer scale) and a MobileNetV3 (HardSwish,
// squeeze-and-excitation with HardSigmoid), with a dynamic batch, for a
// few dozen free-training steps, and checks that the result is a drop-in
// replacement that runs in plain ONNX Runtime.
func TestHardenModernArchitectures(t *testing.T) {
	env := testenv.ORT(t)
	data, test := tinyImages(t, 256, 1), tinyImages(t, 64, 2)
	for _, name := range []string{"vit_tiny_opset17", "convnext_tiny_block_opset13", "mobilenet_v3_tiny_opset17"} {
		t.Run(name, func(t *testing.T) {
			m, err := og.Load(filepath.Join("..", "onnxgraph", "testdata", "torch", name, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Prepare(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), env, plan, data, test, Config{
				Train: train.Config{Method: train.Free, Replays: 2, Epochs: 2, BatchSize: 16, LR: 0.01,
					Schedule: "constant", Momentum: 0.9, Eps: 0.03},
				EvalN: 32,
			})
			if err != nil {
				t.Fatal(err)
			}
			// PyTorch's exporter ties parameters of equal initial value
			// (unit LayerNorm scales) through Identity nodes; training
			// unties them. Everything else stays: inputs, outputs and the
			// other operators.
			d := og.Diff(m, res.Model)
			if len(d.Values) == 0 {
				t.Error("no parameter changed")
			}
			if got, want := opCounts(res.Model), opCounts(m); !maps.Equal(got, want) {
				t.Errorf("operators (Identity aside) %v, want %v", got, want)
			}
			for i, in := range m.Graph.Inputs {
				if res.Model.Graph.Inputs[i].Name != in.Name {
					t.Errorf("input %d is %q, want %q", i, res.Model.Graph.Inputs[i].Name, in.Name)
				}
			}
			if res.Model.Graph.Outputs[0].Name != m.Graph.Outputs[0].Name || len(res.Model.Graph.Outputs) != 1 {
				t.Errorf("outputs %v, want %q", res.Model.Graph.Outputs, m.Graph.Outputs[0].Name)
			}
			again, err := Evaluate(context.Background(), env, res.Model, res.Plan, test.Subset(32), 0.03, "exported")
			if err != nil {
				t.Fatal(err)
			}
			if again.Clean.Correct != res.After.Clean.Correct {
				t.Errorf("exported model: %d correct, trained model %d", again.Clean.Correct, res.After.Clean.Correct)
			}
			t.Logf("%d parameter tensors changed; clean %d/32 → %d/32", len(d.Values),
				res.Before.Clean.Correct, res.After.Clean.Correct)
		})
	}
}

package harden

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/train"
)

// pytorchStyleCNN builds, with robust's builder, a graph shaped the way
// PyTorch's exporter writes a small residual network: normalisation
// inside (Sub/Div), Conv → BatchNormalization (eval form) → Relu, a
// residual Add, MaxPool, a squeeze-and-excitation branch with
// GlobalAveragePool, the Shape→Gather→Unsqueeze→Concat→Reshape flatten,
// Constant and Identity nodes, and Linear layers as Gemm with transB=1.
func pytorchStyleCNN(seed uint64) *og.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := og.NewBuilder("torch_jit")
	b.Opset = 13
	param := func(name string, fanIn int, dims ...int64) string {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		// PyTorch's default initialisation: U(±1/√fan_in).
		v := make([]float32, n)
		bound := 1 / float32(math.Sqrt(float64(fanIn)))
		for i := range v {
			v[i] = (2*rng.Float32() - 1) * bound
		}
		return b.Initializer(og.NewFloatTensor(name, dims, v))
	}
	fill := func(name string, n int64, v float32) string {
		d := make([]float32, n)
		for i := range d {
			d[i] = v
		}
		return b.Initializer(og.NewFloatTensor(name, []int64{n}, d))
	}
	bn := func(x, name string, c int64) string {
		return b.BatchNorm(x, fill(name+".weight", c, 1), fill(name+".bias", c, 0),
			fill(name+".running_mean", c, 0), fill(name+".running_var", c, 1), 1e-5, 0.9)
	}
	x := b.Input("input.1", og.Float, og.Shape{og.Sym("batch_size"), og.D(1), og.D(28), og.D(28)})
	h := b.Div(b.Sub(x, b.ConstFloat([]int64{1, 1, 1, 1}, 0.286)), b.ConstFloat([]int64{1, 1, 1, 1}, 0.353))
	h = b.Relu(bn(b.Conv(h, param("conv1.weight", 16, 8, 1, 4, 4), "", og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}), "bn1", 8))
	r := b.Relu(bn(b.Conv(h, param("conv2.weight", 72, 8, 8, 3, 3), "", og.ConvOpts{Pads: []int64{1, 1, 1, 1}}), "bn2", 8))
	h = b.Add(h, r)
	h = b.MaxPool(h, og.PoolOpts{Kernel: []int64{2, 2}, Strides: []int64{2, 2}})
	h = b.Relu(b.Conv(h, param("conv3.weight", 72, 32, 8, 3, 3), param("conv3.bias", 72, 32), og.ConvOpts{Pads: []int64{1, 1, 1, 1}}))
	// Squeeze and excitation: channel weights from GlobalAveragePool.
	s := b.Flatten(b.GlobalAveragePool(h), 1)
	s = b.Sigmoid(b.Gemm(s, param("se.weight", 32, 32, 32), param("se.bias", 32, 32), og.GemmOpts{TransB: true}))
	h = b.Mul(h, b.Op("Unsqueeze", []string{s, b.ConstInt64(2, 3)}))
	// x.view(x.size(0), -1) as PyTorch exports it.
	shape := b.Op("Shape", []string{h})
	idx := b.Op("Constant", nil, og.TensorAttr("value", og.NewInt64Tensor("", []int64{}, []int64{0})))
	n := b.Op("Unsqueeze", []string{b.Op("Gather", []string{shape, idx}, og.IntAttr("axis", 0)), b.ConstInt64(0)})
	target := b.Concat(0, n, b.ConstInt64(-1))
	h = b.Reshape(h, target)
	w := b.Identity(param("fc1.weight", 1568, 100, 1568))
	h = b.Relu(b.Gemm(h, w, param("fc1.bias", 1568, 100), og.GemmOpts{TransB: true}))
	logits := b.Gemm(h, param("fc2.weight", 100, 10, 100), param("fc2.bias", 100, 10), og.GemmOpts{TransB: true})
	b.Output(logits, og.Float, og.Shape{og.Sym("batch_size"), og.D(10)})
	m := b.Model()
	m.ProducerName, m.ProducerVersion = "pytorch", "1.13.0"
	return m
}

// TestHardenEndToEnd trains a PyTorch-style graph naturally (the model a
// user brings: accurate, not robust), hardens it with free adversarial
// fine-tuning on Fashion-MNIST and checks the bar: PGD-20 accuracy
// at ε=0.1 rises from about 0 to at least 35% while clean accuracy stays at
// least 75%, and the result is a drop-in replacement.
func TestHardenEndToEnd(t *testing.T) {
	testenv.Short(t, "trains for about a minute")
	env := testenv.ORT(t)
	data, test := testenv.FashionMNIST(t)
	ctx := context.Background()
	tr, err := train.New(env, pytorchStyleCNN(1), data, nil, train.Config{
		Method: train.Natural, Epochs: 1, BatchSize: 128, LR: 0.05, Schedule: "constant", Momentum: 0.9, WeightDecay: 5e-4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(ctx, train.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	natural, err := tr.Model()
	tr.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plan, err := Prepare(natural, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, env, plan, data, test, Config{
		Train: train.Config{Method: train.Free, Replays: 4, Epochs: 8, BatchSize: 128, LR: 0.02,
			Schedule: "piecewise", Momentum: 0.9, WeightDecay: 5e-4, Eps: 0.1},
		EvalN:      1000,
		Checkpoint: filepath.Join(dir, "ckpt"),
	})
	if err != nil {
		t.Fatal(err)
	}
	before, after := res.Before, res.After
	t.Logf("clean %.1f%% → %.1f%%, PGD-20 %.1f%% → %.1f%%", 100*before.Clean.Value, 100*after.Clean.Value,
		100*robustAcc(before), 100*robustAcc(after))
	if robustAcc(before) > 0.10 {
		t.Errorf("the naturally trained model is already robust: PGD-20 %.1f%%", 100*robustAcc(before))
	}
	if after.Clean.Value < 0.75 || robustAcc(after) < 0.35 {
		t.Errorf("hardened: clean %.1f%% (want ≥ 75%%), PGD-20 %.1f%% (want ≥ 35%%)", 100*after.Clean.Value, 100*robustAcc(after))
	}
	d := og.Diff(natural, res.Model)
	if !d.OnlyValuesChanged() || len(d.Values) == 0 {
		t.Errorf("hardened model differs in structure: %v", d.Structure)
	}
	if res.Model.Opset("") != 13 || res.Model.Graph.Inputs[0].Name != "input.1" {
		t.Errorf("opset %d, input %q", res.Model.Opset(""), res.Model.Graph.Inputs[0].Name)
	}
	// The exported model's own accuracy equals the evaluation's.
	again, err := Evaluate(ctx, env, res.Model, res.Plan, test.Subset(1000), 0.1, "exported")
	if err != nil {
		t.Fatal(err)
	}
	if again.Clean.Correct != after.Clean.Correct {
		t.Errorf("exported model: %d correct, trained model %d", again.Clean.Correct, after.Clean.Correct)
	}
}

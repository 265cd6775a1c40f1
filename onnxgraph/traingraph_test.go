package onnxgraph_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// bnNet is a small CNN with BatchNormalization:
// x[N,1,8,8] → Conv 1→4 k3 p1 → BN → Relu → MaxPool 2 → Conv 4→6 k3 s2 p1 →
// Relu → Flatten → Gemm 24→5 (transB).
type bnNet struct {
	w1, b1, gamma, beta, mean, vr, w2, b2, fw, fb []float64
}

const bnMomentum, bnEps = 0.9, 1e-5

func newBNNet(r *rand.Rand) *bnNet {
	return &bnNet{
		w1: randUniform(r, 4*9, -0.5, 0.5), b1: randUniform(r, 4, -0.1, 0.1),
		gamma: randUniform(r, 4, 0.5, 1.5), beta: randUniform(r, 4, -0.2, 0.2),
		mean: randUniform(r, 4, -0.1, 0.1), vr: randUniform(r, 4, 0.5, 1.5),
		w2: randUniform(r, 6*4*9, -0.3, 0.3), b2: randUniform(r, 6, -0.1, 0.1),
		fw: randUniform(r, 5*24, -0.3, 0.3), fb: randUniform(r, 5, -0.1, 0.1),
	}
}

func f32(name string, dims []int64, v []float64) *og.Tensor {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return og.NewFloatTensor(name, dims, f)
}

// model builds the network with the Builder; the batch is symbolic.
func (p *bnNet) model() *og.Model {
	b := og.NewBuilder("small_bn_cnn")
	x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(1), og.D(8), og.D(8)})
	init := func(name string, dims []int64, v []float64) string { return b.Initializer(f32(name, dims, v)) }
	h := b.Conv(x, init("conv1.w", []int64{4, 1, 3, 3}, p.w1), init("conv1.b", []int64{4}, p.b1),
		og.ConvOpts{Pads: []int64{1, 1, 1, 1}})
	h = b.BatchNorm(h, init("bn.scale", []int64{4}, p.gamma), init("bn.bias", []int64{4}, p.beta),
		init("bn.mean", []int64{4}, p.mean), init("bn.var", []int64{4}, p.vr), bnEps, bnMomentum)
	h = b.MaxPool(b.Relu(h), og.PoolOpts{Kernel: []int64{2, 2}, Strides: []int64{2, 2}})
	h = b.Relu(b.Conv(h, init("conv2.w", []int64{6, 4, 3, 3}, p.w2), init("conv2.b", []int64{6}, p.b2),
		og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}))
	logits := b.Gemm(b.Flatten(h, 1), init("fc.w", []int64{5, 24}, p.fw), init("fc.b", []int64{5}, p.fb),
		og.GemmOpts{TransB: true})
	b.Output(logits, og.Float, og.Shape{og.Sym("N"), og.D(5)})
	return b.Model()
}

// refStep is the reference forward and backward pass.
type refStep struct {
	loss                float64
	logits              []float64
	grads               map[string][]float64
	newMean, newVar, dx []float64
	batchVar            []float64 // biased
	count               float64   // elements per channel
}

func (p *bnNet) reference(x *tensor4, labels []int64) *refStep {
	c1 := conv2d(x, p.w1, p.b1, 4, 3, 1, 1)
	bn, st := batchNormTrain(c1, p.gamma, p.beta, p.mean, p.vr, bnEps, bnMomentum)
	r1 := relu4(bn)
	pool, arg := maxPool2(r1)
	c2 := conv2d(pool, p.w2, p.b2, 6, 3, 2, 1)
	r2 := relu4(c2)
	n := x.n
	logits := gemmT(r2.d, n, 24, p.fw, p.fb, 5)
	loss, dz := softmaxCE(logits, n, 5, labels)

	dflat, dfw, dfb := gemmTBack(r2.d, n, 24, p.fw, 5, dz)
	dr2 := &tensor4{r2.n, r2.c, r2.h, r2.w, dflat}
	dpool, dw2, db2 := conv2dBack(pool, p.w2, reluBack(r2, dr2), 3, 2, 1)
	dr1 := newT4(r1.n, r1.c, r1.h, r1.w)
	for k, idx := range arg {
		dr1.d[idx] += dpool.d[k]
	}
	dbn, dgamma, dbeta := batchNormTrainBack(reluBack(r1, dr1), st)
	dx, dw1, db1 := conv2dBack(x, p.w1, dbn, 3, 1, 1)
	return &refStep{
		loss: loss, logits: logits, newMean: st.newMean, newVar: st.newVar, dx: dx.d,
		batchVar: st.vr, count: st.count,
		grads: map[string][]float64{
			"conv1.w": dw1, "conv1.b": db1, "bn.scale": dgamma, "bn.bias": dbeta,
			"conv2.w": dw2, "conv2.b": db2, "fc.w": dfw, "fc.b": dfb,
		},
	}
}

// trainFeeds returns the inputs of a training graph for a batch.
func trainFeeds(tg *traingraph.TrainingGraph, x []float64, shape []int64, labels []int64) map[string]*ort.Tensor {
	feeds := map[string]*ort.Tensor{
		tg.Input:  tensorOf(og.Float, shape, x),
		tg.Labels: {Shape: []int64{shape[0]}, Data: slices.Clone(labels)},
	}
	add := func(name string, t *og.Tensor) {
		v, _ := t.Float64s()
		feeds[name] = tensorOf(og.Float, t.Dims, v)
	}
	for _, p := range tg.Params {
		add(p.Name, p.Init)
	}
	for _, s := range tg.BNStats {
		add(s.Mean, s.InitMean)
		add(s.Var, s.InitVar)
	}
	return feeds
}

// assertClose compares float32 results with float64 references.
func assertClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	tol := 1e-4 * math.Max(1, maxAbs(want))
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s[%d] = %.7g, reference %.7g (tolerance %.2g)", what, i, got[i], want[i], tol)
		}
	}
}

// TestTrainingGraphMatchesReference builds the training graph of a small
// BatchNorm CNN and compares loss, logits, every parameter gradient, the
// input gradient and the updated BN statistics with the pure-Go reference.
func TestTrainingGraphMatchesReference(t *testing.T) {
	env := testenv.ORT(t)
	r := rand.New(rand.NewPCG(3, 4))
	net := newBNNet(r)
	tg, err := traingraph.BuildTrainingGraph(net.model(), traingraph.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "train.onnx")
	if err := og.Save(path, tg.Model); err != nil {
		t.Fatal(err)
	}
	saved, err := og.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.Validate(); err != nil {
		t.Fatalf("saved training graph: %v", err)
	}
	wantParams := []string{"conv1.w", "conv1.b", "bn.scale", "bn.bias", "conv2.w", "conv2.b", "fc.w", "fc.b"}
	for i, p := range tg.Params {
		if p.Name != wantParams[i] {
			t.Fatalf("param %d = %q, want %q", i, p.Name, wantParams[i])
		}
	}
	for _, n := range tg.Model.Graph.Nodes {
		if n.OpType == "BatchNormalization" {
			t.Fatalf("training graph still has %v", n)
		}
	}

	const batch = 6
	x := randUniform(r, batch*64, -1, 1)
	labels := []int64{0, 3, 1, 4, 2, 3}
	outs := []string{tg.Loss, tg.Logits, tg.InputGrad, tg.BNStats[0].NewMean, tg.BNStats[0].NewVar}
	for _, p := range tg.Params {
		outs = append(outs, p.Grad)
	}
	s, err := newSession(env, tg.Model, outs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	got, err := s.run(trainFeeds(tg, x, []int64{batch, 1, 8, 8}, labels))
	if err != nil {
		t.Fatal(err)
	}
	ref := net.reference(&tensor4{batch, 1, 8, 8, x}, labels)
	assertClose(t, "loss", values(got[tg.Loss]), []float64{ref.loss})
	assertClose(t, "logits", values(got[tg.Logits]), ref.logits)
	assertClose(t, "∂loss/∂x", values(got[tg.InputGrad]), ref.dx)
	assertClose(t, "running mean", values(got[tg.BNStats[0].NewMean]), ref.newMean)
	assertClose(t, "running var", values(got[tg.BNStats[0].NewVar]), ref.newVar)
	for _, p := range tg.Params {
		assertClose(t, "∂loss/∂"+p.Name, values(got[p.Grad]), ref.grads[p.Name])
	}
}

// TestTrainingGraphUnbiasedRunningVar checks the PyTorch convention for the
// running variance: σ²·n/(n−1) enters the momentum update.
func TestTrainingGraphUnbiasedRunningVar(t *testing.T) {
	env := testenv.ORT(t)
	r := rand.New(rand.NewPCG(3, 4))
	net := newBNNet(r)
	tg, err := traingraph.BuildTrainingGraph(net.model(), traingraph.TrainOptions{UnbiasedRunningVar: true})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 5
	x := randUniform(r, batch*64, -1, 1)
	labels := []int64{0, 3, 1, 4, 2}
	s, err := newSession(env, tg.Model, []string{tg.BNStats[0].NewVar})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	got, err := s.run(trainFeeds(tg, x, []int64{batch, 1, 8, 8}, labels))
	if err != nil {
		t.Fatal(err)
	}
	ref := net.reference(&tensor4{batch, 1, 8, 8, x}, labels)
	want := make([]float64, len(ref.batchVar))
	for c, v := range ref.batchVar {
		want[c] = bnMomentum*net.vr[c] + (1-bnMomentum)*v*ref.count/(ref.count-1)
	}
	assertClose(t, "unbiased running var", values(got[tg.BNStats[0].NewVar]), want)
}

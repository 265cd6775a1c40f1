package onnxgraph_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// Graph-level tests of Gradients that need no ONNX Runtime.

func TestGradientsUnsupportedOp(t *testing.T) {
	b := og.NewBuilder("g")
	x := b.Input("x", og.Float, og.Dims(2, 3))
	y := b.Op("Cos", []string{b.Relu(x)})
	loss := b.ReduceSum(y, nil, false)
	b.Output(loss, og.Float, og.Shape{})
	m := b.Model()
	before, _ := og.Encode(m)
	_, err := og.Gradients(m, loss, []string{x}, nil)
	var unsupported *og.UnsupportedOpError
	if !errors.As(err, &unsupported) {
		t.Fatalf("err = %v, want an UnsupportedOpError", err)
	}
	msg := err.Error()
	for _, want := range []string{"Cos", `"Cos_1"`, "supported:", "Conv", "MaxPool", "SoftmaxCrossEntropyLoss"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	after, _ := og.Encode(m)
	if !slices.Equal(before, after) {
		t.Error("a failed Gradients changed the model")
	}
}

func TestGradientsSkipsNonDifferentiablePaths(t *testing.T) {
	b := og.NewBuilder("g")
	x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(4)})
	other := b.Input("other", og.Float, og.Dims(4))
	// Off the path: an op without a rule reading only a non-wrt input,
	// and ArgMax (integer output) of the wrt input.
	b.Output(b.Op("Cos", []string{other}), og.Float, og.Dims(4))
	b.Output(b.Op("ArgMax", []string{x}, og.IntAttr("axis", 1)), og.Int64, nil)
	// A shape chain feeding Reshape.
	shape := b.Concat(0, b.Op("Shape", []string{x}, og.IntAttr("end", 1)), b.ConstInt64(2, 2))
	loss := b.ReduceSum(b.Tanh(b.Reshape(b.Mul(x, other), shape)), nil, false)
	b.Output(loss, og.Float, og.Shape{})
	m := b.Model()
	grads, err := og.Gradients(m, loss, []string{x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if grads[0] != "x_grad" || m.Graph.Output("x_grad") == nil {
		t.Fatalf("gradient %v not declared as output x_grad", grads)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		if !og.IsStandardOp(n.OpType) || n.Domain != "" {
			t.Errorf("non-standard node %v", n)
		}
	}

	// The values: ∂/∂x Σ tanh(x·other) = other·(1 − tanh²(x·other)), and the
	// outputs off the path still computed.
	s, err := newSession(testenv.ORT(t), m, []string{"x_grad", m.Graph.Outputs[0].Name, m.Graph.Outputs[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	r := rand.New(rand.NewPCG(5, 6))
	xv, ov := randUniform(r, 12, -2, 2), randUniform(r, 4, -2, 2)
	out, err := s.run(map[string]*ort.Tensor{"x": tensorOf(og.Float, []int64{3, 4}, xv), "other": tensorOf(og.Float, []int64{4}, ov)})
	if err != nil {
		t.Fatal(err)
	}
	got := values(out["x_grad"])
	for i, v := range xv {
		o := float64(float32(ov[i%4]))
		th := math.Tanh(float64(float32(v)) * o)
		if want := o * (1 - th*th); math.Abs(got[i]-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("x_grad[%d] = %.7g, want %.7g", i, got[i], want)
		}
	}
	for i, v := range values(out[m.Graph.Outputs[0].Name]) {
		if want := math.Cos(float64(float32(ov[i]))); math.Abs(v-want) > 1e-6 {
			t.Errorf("Cos output [%d] = %v, want %v", i, v, want)
		}
	}
	am := out[m.Graph.Outputs[1].Name].Data.([]int64)
	for row := range 3 {
		want := 0
		for j := range 4 {
			if xv[row*4+j] > xv[row*4+want] {
				want = j
			}
		}
		if len(am) != 3 || am[row] != int64(want) {
			t.Fatalf("ArgMax output %v, want %d in row %d", am, want, row)
		}
	}
}

func TestGradientsErrors(t *testing.T) {
	b := og.NewBuilder("g")
	x := b.Input("x", og.Float, og.Dims(2, 3))
	ids := b.Input("ids", og.Int64, og.Dims(2))
	y := b.Tanh(x)
	loss := b.ReduceSum(y, nil, false)
	m := b.Model()
	tests := []struct {
		name, loss string
		wrt        []string
		want       string
	}{
		{"loss not scalar", y, []string{x}, "want a scalar"},
		{"unknown loss", "nope", []string{x}, `loss "nope" is not a value`},
		{"unknown wrt", loss, []string{"nope"}, `"nope" is not a value`},
		{"integer wrt", loss, []string{ids}, "gradients need the loss's type"},
		{"no wrt", loss, nil, "no values"},
		{"duplicate wrt", loss, []string{x, x}, "listed twice"},
	}
	for _, tt := range tests {
		_, err := og.Gradients(m.Clone(), tt.loss, tt.wrt, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestGradientsZeroForUnusedWrt(t *testing.T) {
	b := og.NewBuilder("g")
	x := b.Input("x", og.Float, og.Dims(2, 3))
	unused := b.Input("u", og.Float, og.Dims(3))
	loss := b.ReduceSum(b.Tanh(x), nil, false)
	m := b.Model()
	grads, err := og.Gradients(m, loss, []string{unused, x}, &og.GradOptions{Names: []string{"du"}})
	if err != nil {
		t.Fatal(err)
	}
	if grads[0] != "du" || grads[1] != "x_grad" {
		t.Fatalf("names %v", grads)
	}
	env := testenv.ORT(t)
	s, err := newSession(env, m, grads)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	out, err := s.run(map[string]*ort.Tensor{
		x: tensorOf(og.Float, []int64{2, 3}, make([]float64, 6)), unused: tensorOf(og.Float, []int64{3}, []float64{1, 2, 3}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := values(out["du"]); maxAbs(v) != 0 || len(v) != 3 {
		t.Errorf("gradient of unused input = %v, want zeros", v)
	}
	if v := values(out["x_grad"]); v[0] != 1 {
		t.Errorf("∂Σtanh(x)/∂x at 0 = %v, want 1", v[0])
	}
}

// TestDropoutTrainingGradient checks dx = dy·mask/(1−ratio) for a Dropout in
// training mode, whose mask is random at every run (so finite differences
// cannot be used).
func TestDropoutTrainingGradient(t *testing.T) {
	env := testenv.ORT(t)
	b := og.NewBuilder("dropout")
	x := b.Input("x", og.Float, og.Dims(8, 16))
	r := b.Input("r", og.Float, og.Dims(8, 16))
	on := b.Initializer(&og.Tensor{DataType: og.Bool, Dims: []int64{}, Raw: []byte{1}})
	y := b.Op("Dropout", []string{x, b.ScalarFloat(0.25), on})
	b.Output(y, og.Float, og.Dims(8, 16))
	loss := b.ReduceSum(b.Mul(y, r), nil, false)
	m := b.Model()
	grads, err := og.Gradients(m, loss, []string{x}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSession(env, m, []string{y, grads[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	rng := rand.New(rand.NewPCG(1, 1))
	xv, rv := randAwayFromZero(rng, 128), randAwayFromZero(rng, 128)
	out, err := s.run(map[string]*ort.Tensor{x: tensorOf(og.Float, []int64{8, 16}, xv), r: tensorOf(og.Float, []int64{8, 16}, rv)})
	if err != nil {
		t.Fatal(err)
	}
	yv, gv := values(out[y]), values(out[grads[0]])
	dropped := 0
	for i := range yv {
		want := 0.0
		if yv[i] != 0 {
			want = rv[i] / 0.75
		} else {
			dropped++
		}
		if math.Abs(gv[i]-want) > 1e-5 {
			t.Fatalf("dx[%d] = %g, want %g (y = %g)", i, gv[i], want, yv[i])
		}
	}
	if dropped == 0 || dropped == len(yv) {
		t.Errorf("%d of %d elements dropped", dropped, len(yv))
	}
}

// TestInputGradientGraph builds attack graphs (cross-entropy and CW margin)
// of the small BatchNorm CNN in eval mode and checks that they are valid
// ONNX files, that the logits match the frozen model's, and that the input
// gradient of a batch equals the per-sample gradients.
func TestInputGradientGraph(t *testing.T) {
	env := testenv.ORT(t)
	model := newBNNet(rand.New(rand.NewPCG(8, 9))).model()
	rng := rand.New(rand.NewPCG(10, 11))
	const batch = 3
	x := randUniform(rng, batch*64, 0, 1)
	labels := []int64{4, 0, 2}
	fwd, err := newSession(env, model, []string{model.Graph.Outputs[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.close()
	wantLogits, err := fwd.run(map[string]*ort.Tensor{"x": tensorOf(og.Float, []int64{batch, 1, 8, 8}, x)})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []struct {
		name string
		head traingraph.HeadFunc
	}{{"ce", traingraph.CrossEntropyHead}, {"cw", attacks.CWMarginHead}} {
		ig, err := traingraph.BuildInputGradientGraph(model, traingraph.InputGradientOptions{Loss: traingraph.LossOptions{Head: kind.head}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ig.Model.Graph.Initializers) == 0 || ig.Model.Graph.Input("conv1.w") != nil {
			t.Fatalf("%v: parameters must stay initializers", kind.name)
		}
		path := filepath.Join(t.TempDir(), "attack.onnx")
		if err := og.Save(path, ig.Model); err != nil {
			t.Fatal(err)
		}
		loaded, err := og.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := loaded.Validate(); err != nil {
			t.Fatal(err)
		}
		s, err := newSession(env, loaded, []string{ig.Logits, ig.Loss, ig.PerSample, ig.InputGrad})
		if err != nil {
			t.Fatal(err)
		}
		run := func(lo, hi int) map[string]*ort.Tensor {
			out, err := s.run(map[string]*ort.Tensor{
				ig.Input:  tensorOf(og.Float, []int64{int64(hi - lo), 1, 8, 8}, x[lo*64:hi*64]),
				ig.Labels: {Shape: []int64{int64(hi - lo)}, Data: slices.Clone(labels[lo:hi])},
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		all := run(0, batch)
		assertClose(t, "logits", values(all[ig.Logits]), values(wantLogits[model.Graph.Outputs[0].Name]))
		per := values(all[ig.PerSample])
		sum := 0.0
		for i := range batch {
			one := run(i, i+1)
			assertClose(t, kind.name+" per-sample input gradient", values(all[ig.InputGrad])[i*64:(i+1)*64], values(one[ig.InputGrad]))
			assertClose(t, kind.name+" per-sample loss", per[i:i+1], values(one[ig.Loss]))
			sum += per[i]
		}
		assertClose(t, kind.name+" summed loss", values(all[ig.Loss]), []float64{sum})
		if kind.name == "cw" {
			z := values(all[ig.Logits])
			for i := range batch {
				row := z[i*5 : (i+1)*5]
				best := math.Inf(-1)
				for j, v := range row {
					if int64(j) != labels[i] {
						best = math.Max(best, v)
					}
				}
				assertClose(t, "CW margin", per[i:i+1], []float64{best - row[labels[i]]})
			}
		}
		s.close()
	}
}

// TestLossHeads checks the heads' class requirements and the inputs
// AddLoss declares for them.
func TestLossHeads(t *testing.T) {
	for _, c := range []struct {
		name       string
		opts       traingraph.LossOptions
		minClasses int
	}{
		{"ce", traingraph.LossOptions{}, 2},
		{"cw", traingraph.LossOptions{Head: attacks.CWMarginHead}, 2},
		{"dlr", traingraph.LossOptions{Head: attacks.DLRHead, MinClasses: 3}, 3},
		{"dlr-t", traingraph.LossOptions{Head: attacks.TargetedDLRHead, Targeted: true, MinClasses: 4}, 4},
		{"diff", traingraph.LossOptions{Head: attacks.LogitDiffHead, Targeted: true}, 2},
	} {
		for classes := int64(c.minClasses - 1); classes <= int64(c.minClasses); classes++ {
			b := og.NewBuilder("loss")
			z := b.Input("z", og.Float, og.Dims(-1, classes))
			h, err := traingraph.AddLoss(b.Model(), z, c.opts)
			if classes < int64(c.minClasses) {
				if err == nil || !strings.Contains(err.Error(), "needs at least") {
					t.Errorf("%s with %d classes: %v", c.name, classes, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if (h.Targets != "") != c.opts.Targeted || (c.opts.Targeted && b.Model().Graph.Input(h.Targets) == nil) {
				t.Errorf("%s: targets input %q", c.name, h.Targets)
			}
		}
	}
}

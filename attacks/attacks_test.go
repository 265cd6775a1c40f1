package attacks

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
)

// TestBadInput checks that wrong arguments give a clear error, not a panic
// or a silent result.
func TestBadInput(t *testing.T) {
	m, x, y := binaryModel(t)
	ok := ThreatModel{Norm: Linf, Eps: 0.1}
	pgd := PGD{Steps: 2}
	cases := []struct {
		name    string
		attack  Attack
		x       []float32
		y       []int64
		t       ThreatModel
		wantErr string
	}{
		{"empty", pgd, nil, nil, ok, "empty batch"},
		{"short x", pgd, x[:7], y, ok, "input values"},
		{"label range", pgd, x, []int64{0, 2}, ok, "label 2 of sample 1 is outside the model's 2 classes"},
		{"negative label", FGSM{}, x, []int64{-1, 0}, ok, "label -1"},
		{"pixel range", pgd, append([]float32{1.5}, x[1:]...), y, ok, "not in [0,1]"},
		{"nan pixel", pgd, append([]float32{float32(math.NaN())}, x[1:]...), y, ok, "not in [0,1]"},
		{"eps zero", pgd, x, y, ThreatModel{Norm: Linf}, "out of range (0, 1]"},
		{"eps too big", pgd, x, y, ThreatModel{Norm: Linf, Eps: 1.5}, "out of range"},
		{"eps nan", pgd, x, y, ThreatModel{Norm: L2, Eps: float32(math.NaN())}, "out of range"},
		{"l2 eps too big", pgd, x, y, ThreatModel{Norm: L2, Eps: 3}, "L2 norm"},
		{"l1 eps too big", FAB{}, x, y, ThreatModel{Norm: L1, Eps: 7}, "L1 norm"},
		{"negative steps", APGD{Steps: -1}, x, y, ok, "negative number of steps"},
		{"bad norm", FAB{}, x, y, ThreatModel{Norm: 7, Eps: 0.1}, "supports the L∞, L2 and L1 norms only"},
		{"bad step ratio", PGD{Steps: 2, StepRatio: -1}, x, y, ok, "step ratio"},
		{"targets length", PGD{Steps: 2, Targets: []int64{1}}, x, y, ok, "1 targets for 2 samples"},
		{"target is label", PGD{Steps: 2, Targets: []int64{1, 0}}, x, y, ok, "is its true label"},
		{"target range", PGD{Steps: 2, Targets: []int64{1, 5}}, x, y, ok, "target 5"},
		{"dlr two classes", APGD{Loss: DLR}, x, y, ok, "at least 3 classes"},
		{"dlr-t untargeted", APGD{Loss: DLRTargeted}, x, y, ok, "needs targets"},
		{"unknown loss", PGD{Steps: 2, Loss: 42}, x, y, ok, "unknown loss"},
		{"square l1", Square{}, x, y, ThreatModel{Norm: L1, Eps: 0.1}, "supports the L∞ and L2 norms only"},
		{"pgd l1", pgd, x, y, ThreatModel{Norm: L1, Eps: 0.1}, "supports the L∞ and L2 norms only"},
		{"apgd-t four classes", APGDTargeted{}, x, y, ok, "classes"},
		{"fab beta", FAB{Beta: 1}, x, y, ok, "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.attack.Run(context.Background(), m, c.x, c.y, c.t, nil)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, %v; want an error containing %q", res, err, c.wantErr)
			}
		})
	}
	t.Run("nil model", func(t *testing.T) {
		if _, err := pgd.Run(context.Background(), nil, x, y, ok, nil); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := pgd.Run(ctx, m, x, y, ok, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		err := Square{}.Supports(L1, 10)
		var ue *UnsupportedError
		if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ue) || ue.Attack != "square" {
			t.Fatalf("got %v", err)
		}
		if err := (APGDTargeted{}).Supports(Linf, 3); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("apgd-t on 3 classes: got %v", err)
		}
		if err := (FAB{}).Supports(L1, 2); err != nil {
			t.Fatalf("fab l1: %v", err)
		}
	})
}

// TestNewONNXModelErrors checks the model contract errors.
func TestNewONNXModelErrors(t *testing.T) {
	env := testenv.ORT(t)
	rank2 := func() *onnxgraph.Model {
		b := onnxgraph.NewBuilder("rank2")
		x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(4)})
		w := b.ConstFloat([]int64{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8)
		b.Output(b.Gemm(x, w, "", onnxgraph.GemmOpts{TransB: true}), onnxgraph.Float, nil)
		return b.Model()
	}
	cases := []struct {
		name    string
		m       *onnxgraph.Model
		opts    ModelOptions
		wantErr string
	}{
		{"rank", rank2(), ModelOptions{}, "want float [N, C, H, W]"},
		{"shape mismatch", linearONNX(t, anaShape, [][]float32{anaU, anaU}, []float32{0, 0}), ModelOptions{Shape: [3]int{3, 2, 3}}, "not [N, 3, 2, 3]"},
		{"input name", linearONNX(t, anaShape, [][]float32{anaU, anaU}, []float32{0, 0}), ModelOptions{Input: "nope"}, "not a graph input"},
		{"output name", linearONNX(t, anaShape, [][]float32{anaU, anaU}, []float32{0, 0}), ModelOptions{Logits: "nope"}, "not a graph output"},
		{"one class", linearONNX(t, anaShape, [][]float32{anaU}, []float32{0}), ModelOptions{}, "classes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewONNXModel(env, c.m, c.opts)
			if err == nil {
				m.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		m, x, y := binaryModel(t)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := (PGD{Steps: 1}).Run(context.Background(), m, x, y, ThreatModel{Norm: Linf, Eps: 0.1}, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestBatchSizes runs gradients at many batch sizes, each on tensors that
// wrap the caller's buffers, and checks every size gives the same
// per-sample results.
func TestBatchSizes(t *testing.T) {
	m, x, y := binaryModel(t)
	const n = 40
	xs, ys := make([]float32, 0, n*6), make([]int64, 0, n)
	for i := range n {
		xs = append(xs, x[(i%2)*6:(i%2+1)*6]...)
		ys = append(ys, y[i%2])
	}
	logits, losses, grad := make([]float32, 2*n), make([]float32, n), make([]float32, 6*n)
	var ref []float32
	for k := n; k >= 1; k-- {
		if err := m.Grad(GradInput{X: xs, N: k, Loss: CE, Labels: ys}, GradOutput{Logits: logits, Losses: losses, Grad: grad}); err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = append([]float32{}, grad...)
		}
		for i := range k * 6 {
			if grad[i] != ref[i] {
				t.Fatalf("batch %d: gradient[%d] = %v, want %v", k, i, grad[i], ref[i])
			}
		}
	}
}

func TestProjectAndBudget(t *testing.T) {
	x := []float32{0.05, 0.5, 0.97}
	cases := []struct {
		norm Norm
		eps  float32
		in   []float32
		want []float32
	}{
		{Linf, 0.1, []float32{-0.5, 0.55, 1.2}, []float32{0, 0.55, 1}},
		{Linf, 0.1, []float32{0.2, 0.3, 0.8}, []float32{0.15, 0.4, 0.87}},
		{L2, 0.5, []float32{0.05, 0.5, 0.97}, []float32{0.05, 0.5, 0.97}},
		{L2, 0.3, []float32{0.05, 0.9, 0.97}, []float32{0.05, 0.8, 0.97}},
		{L2, 0.3, []float32{0.05, 0.5, 1.5}, []float32{0.05, 0.5, 1}},
	}
	for i, c := range cases {
		got := append([]float32{}, c.in...)
		tm := ThreatModel{Norm: c.norm, Eps: c.eps}
		project(got, x, tm)
		for j := range got {
			if math.Abs(float64(got[j]-c.want[j])) > 1e-6 {
				t.Errorf("case %d: project = %v, want %v", i, got, c.want)
				break
			}
		}
		if !tm.Contains(x, got) {
			t.Errorf("case %d: projected point %v outside the budget", i, got)
		}
	}
	if (ThreatModel{Norm: Linf, Eps: 1}).Contains(x, x[:2]) {
		t.Error("length mismatch accepted")
	}
}

func TestMarginAndPredict(t *testing.T) {
	z := []float32{1, 3, 2}
	cases := []struct {
		y, target int64
		margin    float32
		fooled    bool
	}{
		{1, -1, -1, false}, {0, -1, 2, true}, {2, -1, 1, true}, {0, 1, 1, true}, {1, 2, -1, false},
	}
	for _, c := range cases {
		if m := Margin(z, c.y, c.target); m != c.margin {
			t.Errorf("Margin(y=%d, t=%d) = %v, want %v", c.y, c.target, m, c.margin)
		}
		if f := Fooled(z, c.y, c.target); f != c.fooled {
			t.Errorf("Fooled(y=%d, t=%d) = %v, want %v", c.y, c.target, f, c.fooled)
		}
	}
	nan := float32(math.NaN())
	if p := Predict([]float32{nan, 1, nan}); p != 1 {
		t.Errorf("Predict with NaN = %d, want 1", p)
	}
	if p := Predict([]float32{2, 2}); p != 0 {
		t.Errorf("Predict tie = %d, want 0", p)
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]Norm{"linf": Linf, "Linf": Linf, "inf": Linf, "l2": L2, "L2": L2, "l1": L1, "L1": L1} {
		if got, err := ParseNorm(s); err != nil || got != want {
			t.Errorf("ParseNorm(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseNorm("l3"); !errors.Is(err, ErrUnknownNorm) {
		t.Errorf("ParseNorm(l3): %v", err)
	}
	for _, s := range []string{"ce", "cw", "dlr", "dlr-t", "diff"} {
		k, err := ParseLoss(s)
		if err != nil || k.String() != s {
			t.Errorf("ParseLoss(%q) = %v, %v", s, k, err)
		}
	}
	if _, err := ParseLoss("mse"); !errors.Is(err, ErrUnknownLoss) {
		t.Errorf("ParseLoss(mse): %v", err)
	}
}

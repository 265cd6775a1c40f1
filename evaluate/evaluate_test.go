package evaluate

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
)

func TestParseEps(t *testing.T) {
	cases := []struct {
		in      string
		want    []float32
		wantErr string
	}{
		{"0.03", []float32{0.03}, ""},
		{"4/255", []float32{4.0 / 255}, ""},
		{"2/255, 4/255,8/255", []float32{2.0 / 255, 4.0 / 255, 8.0 / 255}, ""},
		{"", nil, "empty"},
		{"abc", nil, "not a number"},
		{"4/0", nil, "denominator"},
		{"4/x", nil, "denominator"},
		{"-0.1", nil, "positive"},
		{"0", nil, "positive"},
		{"NaN", nil, "positive"},
		{"Inf", nil, "positive"},
		{"0.1,1/10", nil, "twice"},
	}
	for _, c := range cases {
		got, err := ParseEps(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseEps(%q) = %v, %v; want error %q", c.in, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("ParseEps(%q) = %v, %v", c.in, got, err)
		}
		for i := range got {
			if got[i].Value != c.want[i] {
				t.Errorf("ParseEps(%q)[%d] = %v, want %v", c.in, i, got[i].Value, c.want[i])
			}
		}
	}
	if err := CheckEps(attacks.Linf, Eps{1.5, "1.5"}, 784); err == nil {
		t.Error("L∞ ε 1.5 accepted")
	}
	if err := CheckEps(attacks.L2, Eps{1.5, "1.5"}, 784); err != nil {
		t.Errorf("L2 ε 1.5: %v", err)
	}
}

func TestWilson(t *testing.T) {
	cases := []struct {
		correct, total int
		low, high      float64
	}{
		{0, 10, 0, 0.2775}, {5, 10, 0.2366, 0.7634}, {10, 10, 0.7225, 1}, {400, 1000, 0.3701, 0.4307},
	}
	for _, c := range cases {
		a := NewAccuracy(c.correct, c.total)
		if math.Abs(a.Low-c.low) > 1e-4 || math.Abs(a.High-c.high) > 1e-4 || a.Value != float64(c.correct)/float64(c.total) {
			t.Errorf("NewAccuracy(%d, %d) = %+v, want [%v, %v]", c.correct, c.total, a, c.low, c.high)
		}
	}
	if a := NewAccuracy(0, 0); a.Value != 0 || a.High != 0 {
		t.Errorf("empty: %+v", a)
	}
}

func TestSuite(t *testing.T) {
	cases := []struct {
		name   string
		opts   SuiteOptions
		labels []string // each attack's name and description
	}{
		{"default", SuiteOptions{}, []string{"fgsm FGSM CE", "pgd PGD-20 CE ×1 (α=ε/4)", "apgd-ce APGD-CE 100 steps ×1"}},
		{"full", SuiteOptions{Steps: 7, Restarts: 2}, []string{"fgsm FGSM CE", "pgd PGD-7 CE ×2 (α=ε/4)",
			"pgd-cw PGD-7 CW ×2 (α=ε/4)", "apgd-ce APGD-CE 7 steps ×2", "apgd-dlr APGD-DLR 7 steps ×2",
			"apgd-t APGD-T 7 steps, 9 targets", "square Square 5000 queries ×1"}},
		{"pgd, square", SuiteOptions{Queries: 50}, []string{"pgd PGD-20 CE ×1 (α=ε/4)", "square Square 50 queries ×1"}},
	}
	for _, c := range cases {
		s, err := Suite(c.name, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, a := range s {
			got = append(got, a.Name()+" "+a.String())
		}
		if !slices.Equal(got, c.labels) {
			t.Errorf("%s: %q, want %q", c.name, got, c.labels)
		}
	}
	for _, bad := range []string{"nope", "pgd,pgd", "pgd,"} {
		if _, err := Suite(bad, SuiteOptions{}); err == nil {
			t.Errorf("Suite(%q) accepted", bad)
		}
	}
}

// TestRunErrors checks that a model and data that do not fit fail before
// any attack runs.
func TestRunErrors(t *testing.T) {
	m, d := tinyModel(t)
	suite, _ := Suite("fgsm", SuiteOptions{})
	eps := []Eps{{0.1, "0.1"}}
	ok := Config{Eps: eps, Attacks: suite}
	wrongShape := &dataset.Dataset{Name: "rgb", C: 3, H: 4, W: 4, NumClasses: 4, X: make([]float32, 48), Y: []int64{0}}
	badLabel := &dataset.Dataset{Name: "ten", C: 1, H: 4, W: 4, NumClasses: 10, X: make([]float32, 32), Y: []int64{0, 7}}
	cases := []struct {
		name    string
		d       *dataset.Dataset
		cfg     Config
		wantErr string
	}{
		{"empty", d.Subset(0), ok, "no samples"},
		{"shape", wrongShape, ok, "takes 1×4×4 images"},
		{"labels", badLabel, ok, "label 7 of sample 1 is outside the model's 4 logits"},
		{"eps", d, Config{Eps: []Eps{{2, "2"}}, Attacks: suite}, "out of range"},
		{"no eps", d, Config{Attacks: suite}, "no ε"},
		{"no attacks", d, Config{Eps: eps}, "no attacks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(context.Background(), m, c.d, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want %q", err, c.wantErr)
			}
		})
	}
	if _, err := Run(context.Background(), m, d.Subset(0), ok); !errors.Is(err, ErrNoData) {
		t.Errorf("empty data: %v, want ErrNoData", err)
	}
}

// maskedModel quantises its input to 4 levels before the tiny linear
// classifier: Round has no gradient, the textbook case of gradient
// masking. With softmax it also outputs probabilities; with noise it
// drops random logits (Dropout left in training mode).
func maskedModel(softmax, noise bool) *onnxgraph.Model {
	w, bias := tinyWeights()
	b := onnxgraph.NewBuilder("masked")
	x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)})
	four := b.ScalarFloat(4)
	q := b.Div(b.Op("Round", []string{b.Mul(x, four)}), four)
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{tinyClasses, 16}, w))
	bt := b.Initializer(onnxgraph.NewFloatTensor("b", []int64{tinyClasses}, bias))
	z := b.Gemm(b.Flatten(q, 1), wt, bt, onnxgraph.GemmOpts{TransB: true})
	if noise {
		ratio := b.ScalarFloat(0.5)
		training := b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Bool, Dims: []int64{}, Raw: []byte{1}})
		z = b.Op("Dropout", []string{z, ratio, training})
	}
	if softmax {
		z = b.Softmax(z, 1)
	}
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(tinyClasses)})
	return b.Model()
}

// TestSanityFlags checks that the sanity checks flag a gradient-masking,
// probability-emitting, noisy model.
func TestSanityFlags(t *testing.T) {
	env := testenv.ORT(t)
	_, d := tinyModel(t)
	suite, _ := Suite("pgd,square", SuiteOptions{Steps: 5, Queries: 300})
	cases := []struct {
		name      string
		softmax   bool
		noise     bool
		logs      bool
		wantFlags []string
	}{
		{"masked", false, false, false, []string{"zero-gradients", "gradient-masking", "black-box-stronger"}},
		{"softmax", true, false, false, []string{"softmax-output"}},
		{"softmax-log", true, false, true, []string{"softmax-output"}},
		{"noisy", false, true, false, []string{"non-deterministic"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, flags, err := Prepare(maskedModel(c.softmax, c.noise), Contract{LogSoftmax: c.logs}, tinyShape)
			if err != nil {
				t.Fatal(err)
			}
			m, err := attacks.NewONNXModel(env, g, attacks.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			r, err := Run(context.Background(), m, d, Config{Eps: []Eps{{0.2, "0.2"}}, Attacks: suite, BatchSize: 16, Flags: flags})
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, f := range r.Flags {
				codes = append(codes, f.Code)
			}
			for _, want := range c.wantFlags {
				if !slices.Contains(codes, want) {
					t.Errorf("flags %v lack %q", r.Flags, want)
				}
			}
			if c.logs && r.Flags[0].Severity != "info" {
				t.Errorf("LogSoftmax flag %+v", r.Flags[0])
			}
		})
	}
}

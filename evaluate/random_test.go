package evaluate

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/onnxgraph"
)

// dropoutONNX is the tiny classifier with a Dropout of the given ratio
// left in training mode on its input: a randomised model whose every run
// drops different pixels.
func dropoutONNX(ratio float32) *onnxgraph.Model {
	w, bias := tinyWeights()
	b := onnxgraph.NewBuilder("tiny-dropout")
	x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)})
	on := b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Bool, Dims: []int64{}, Raw: []byte{1}})
	dropped := b.Op("Dropout", []string{b.Flatten(x, 1), b.ScalarFloat(ratio), on})
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{tinyClasses, 16}, w))
	bt := b.Initializer(onnxgraph.NewFloatTensor("b", []int64{tinyClasses}, bias))
	z := b.Gemm(dropped, wt, bt, onnxgraph.GemmOpts{TransB: true})
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(tinyClasses)})
	return b.Model()
}

// TestRandomisedModel evaluates the Dropout fixture with the autoattack
// and autoattack-rand suites: the sanity check flags the randomness and
// points to autoattack-rand, and CheckRandomness refuses the
// deterministic suite's number unless allowed. EoT must make APGD-CE and
// APGD-DLR stronger on it (lower robust accuracy over four seeds). (On
// this linear fixture the autoattack suite goes lower still: Square, which
// needs no gradients, finds the linear model's optimum despite the noise.)
func TestRandomisedModel(t *testing.T) {
	m, err := attacks.NewONNXModel(testenv.ORT(t), dropoutONNX(0.3), attacks.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := tinyData()
	run := func(suite string, seed uint64) *Report {
		s, err := Suite(suite, SuiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(context.Background(), m, d, Config{Eps: []Eps{{Value: 0.1, Text: "0.1"}}, Norm: attacks.Linf,
			Attacks: s, SuiteName: suite, BatchSize: 32, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	det, rnd := run("autoattack", 1), run("autoattack-rand", 1)
	var withEoT, without float64
	for seed := range uint64(4) {
		withEoT += run("autoattack-rand", seed).Points[0].Robust.Value
		without += run("apgd-ce,apgd-dlr", seed).Points[0].Robust.Value
	}
	if withEoT >= without {
		t.Errorf("robust accuracy summed over 4 seeds: %.3f with EoT, %.3f without", withEoT, without)
	}
	for _, r := range []*Report{det, rnd} {
		i := slices.IndexFunc(r.Flags, func(f Flag) bool { return f.Code == "non-deterministic" })
		if i < 0 {
			t.Fatalf("%s: no non-deterministic flag in %+v", r.Suite, r.Flags)
		}
		if msg := r.Flags[i].Message; strings.Contains(msg, "autoattack-rand") != !r.RandomSuite {
			t.Errorf("%s: flag %q", r.Suite, msg)
		}
	}
	if err := det.CheckRandomness(false); !errors.Is(err, ErrRandomModel) {
		t.Errorf("autoattack on a randomised model: %v, want ErrRandomModel", err)
	}
	if err := det.CheckRandomness(true); err != nil {
		t.Errorf("allowed: %v", err)
	}
	if err := rnd.CheckRandomness(false); err != nil || !rnd.RandomSuite {
		t.Errorf("autoattack-rand: %v (random suite %v)", err, rnd.RandomSuite)
	}
}

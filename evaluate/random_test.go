package evaluate

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/onnxgraph"
)

// dropoutONNX is the tiny classifier with a Dropout of the given ratio
// left in training mode on its input: a randomised model whose every run
// drops different pixels. The Dropout's mask is a second graph output
// ("mask"): ONNX Runtime removes a Dropout whose mask nobody reads, even in
// training mode, which would make the forward runs deterministic (the
// expected model) and only the gradient runs random. (That is what an
// exported network with Dropout left in training mode gets: its forward
// runs are its expected output.)
func dropoutONNX(ratio float32) *onnxgraph.Model {
	w, bias := tinyWeights()
	b := onnxgraph.NewBuilder("tiny-dropout")
	x := b.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(1), onnxgraph.D(4), onnxgraph.D(4)})
	on := b.Initializer(&onnxgraph.Tensor{DataType: onnxgraph.Bool, Dims: []int64{}, Raw: []byte{1}})
	// A fixed seed: each session draws the same sequence of masks, so a
	// fresh model gives reproducible runs.
	outs := b.Node("Dropout", []string{b.Flatten(x, 1), b.ScalarFloat(ratio), on}, 2, onnxgraph.IntAttr("seed", 7))
	dropped, mask := outs[0], outs[1]
	wt := b.Initializer(onnxgraph.NewFloatTensor("w", []int64{tinyClasses, 16}, w))
	bt := b.Initializer(onnxgraph.NewFloatTensor("b", []int64{tinyClasses}, bias))
	z := b.Gemm(dropped, wt, bt, onnxgraph.GemmOpts{TransB: true})
	b.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(tinyClasses)})
	b.Output(mask, onnxgraph.Bool, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(16)})
	return b.Model()
}

// dropoutModel opens dropoutONNX(ratio) for attacks.
func dropoutModel(t *testing.T, ratio float32) (*attacks.ONNXModel, error) {
	g := dropoutONNX(ratio)
	return attacks.NewONNXModel(testenv.ORT(t), g, attacks.ModelOptions{Logits: g.Graph.Outputs[0].Name})
}

// TestRandomisedModel evaluates the Dropout fixture with the autoattack
// and autoattack-rand suites: the sanity check flags the randomness, says
// that verdicts rest on the most frequent prediction over 21 runs and
// points to autoattack-rand, and
// CheckRandomness refuses the deterministic suite's number unless allowed.
// autoattack-rand must give the lower robust accuracy (summed over four
// seeds, each run on a fresh model so that both suites see the same
// sequence of Dropout masks, hence the same clean verdicts): single-run
// attacks follow one run's gradient and stop at the first run they fool,
// which the most frequent prediction then contradicts, where EoT attacks
// average 20
// runs' gradients and logits and stop where the expected output is
// fooled. EoT must also make APGD-CE and APGD-DLR stronger on their own.
func TestRandomisedModel(t *testing.T) {
	d := tinyData()
	run := func(suite string, seed uint64) *Report {
		m, err := dropoutModel(t, 0.3)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
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
	var standard, withEoT, without float64
	for seed := range uint64(4) {
		a, b, c := run("autoattack", seed), run("autoattack-rand", seed), run("apgd-ce,apgd-dlr", seed)
		t.Logf("seed %d: clean %.3f; robust accuracy: autoattack %.3f, autoattack-rand %.3f, apgd-ce,apgd-dlr %.3f",
			seed, a.Clean.Value, a.Points[0].Robust.Value, b.Points[0].Robust.Value, c.Points[0].Robust.Value)
		if a.Clean != b.Clean || a.Clean != c.Clean {
			t.Fatalf("seed %d: clean accuracy %v, %v, %v: the runs drew different masks", seed, a.Clean, b.Clean, c.Clean)
		}
		standard += a.Points[0].Robust.Value
		withEoT += b.Points[0].Robust.Value
		without += c.Points[0].Robust.Value
	}
	if withEoT >= standard {
		t.Errorf("robust accuracy summed over 4 seeds: autoattack-rand %.3f, autoattack %.3f", withEoT, standard)
	}
	if withEoT >= without {
		t.Errorf("robust accuracy summed over 4 seeds: %.3f with EoT, %.3f without", withEoT, without)
	}
	for _, r := range []*Report{det, rnd} {
		i := slices.IndexFunc(r.Flags, func(f Flag) bool { return f.Code == "non-deterministic" })
		if i < 0 {
			t.Fatalf("%s: no non-deterministic flag in %+v", r.Suite, r.Flags)
		}
		msg := r.Flags[i].Message
		if strings.Contains(msg, "autoattack-rand") != !r.RandomSuite || !strings.Contains(msg, "most frequent prediction over 21 runs") {
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

// luckyAttack claims every sample with the same image, point: its claims
// are right only where the model's runs misclassify point.
type luckyAttack struct{ point []float32 }

func (luckyAttack) Name() string                     { return "lucky" }
func (luckyAttack) String() string                   { return "lucky" }
func (luckyAttack) Supports(attacks.Norm, int) error { return nil }
func (a luckyAttack) Run(_ context.Context, _ attacks.Model, x []float32, y []int64, _ attacks.ThreatModel, _ *rand.Rand) (*attacks.Result, error) {
	ok := make([]bool, len(y))
	adv := make([]float32, 0, len(x))
	for i := range ok {
		ok[i] = true
		adv = append(adv, a.point...)
	}
	return &attacks.Result{Adv: adv, Success: ok}, nil
}

// TestVotedVerdicts checks the verdicts on a randomised model (the
// Dropout fixture at ratio 0.6, on a random image where its runs
// disagree, one class taking 60–85% of them): with Draws, a sample counts
// as broken when the most frequent prediction is not its label, so a
// claim resting on a lucky run does not break a sample whose label is
// that class, while one verification run lets such luck through; and a
// sample whose label takes at most 15% of the runs is always broken.
func TestVotedVerdicts(t *testing.T) {
	m, err := dropoutModel(t, 0.6)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Classes()
	// A random image on which the most frequent prediction gets 60–85%
	// of the runs, and the rate at which runs predict each class on it,
	// over 400 runs.
	rng := rand.New(rand.NewPCG(1, 1))
	point := make([]float32, 16)
	mean, votes := make([]float32, c), make([]int, c)
	for try := 0; ; try++ {
		if try == 200 {
			t.Fatal("no image where the runs disagree")
		}
		for i := range point {
			point[i] = rng.Float32()
		}
		if err := voteDraws(m, point, 1, 400, mean, votes); err != nil {
			t.Fatal(err)
		}
		if top := votes[votedPrediction(votes, -1)]; top >= 240 && top <= 340 {
			break
		}
	}
	t.Logf("runs on the image predict the classes %v times of 400", votes)
	d := tinyData()
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	tm := attacks.ThreatModel{Norm: attacks.Linf, Eps: 1}
	top := votedPrediction(votes, -1)
	single, voted := 0, 0 // breaks of samples labelled with the top class
	for range 10 {
		for _, draws := range []int{0, randomDraws} {
			out, err := Attack(context.Background(), m, luckyAttack{point}, tm, d, idx, AttackOptions{Draws: draws})
			if err != nil {
				t.Fatal(err)
			}
			for k, i := range idx {
				rate := float64(votes[d.Y[i]]) / 400 // runs right on the image
				switch {
				case draws > 1 && rate <= 0.15 && !out.Success[k]:
					t.Fatalf("sample %d (label right in %.0f%% of runs) not broken by the vote of %d runs", i, 100*rate, draws)
				case int(d.Y[i]) == top && out.Success[k] && draws > 1:
					voted++
				case int(d.Y[i]) == top && out.Success[k]:
					single++
				}
			}
		}
	}
	t.Logf("samples labelled %d broken %d times by single runs, %d times by the vote", top, single, voted)
	if single == 0 || voted*3 >= single {
		t.Errorf("lucky claims on samples labelled %d accepted %d times by single runs, %d times by the vote of %d runs", top, single, voted, randomDraws)
	}
}

package train

import (
	"context"
	"math"
	"slices"
	"testing"
)

// Behaviour tests of the adversarial methods: a hook (see hookPoint)
// observes the buffers each step really uses, and the tests recompute
// every perturbation from the textbook rules. They run on 8×8 synthetic
// images in a few seconds.

// clamp01 is min(max(v, 0), 1).
func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// closeTo reports whether got is within tol of want.
func closeTo(got, want, tol float32) bool { return math.Abs(float64(got-want)) <= float64(tol) }

// TestFreeTrainingPerturbation checks free training's δ on every replay of
// a run with m = 2 over three minibatches (the last one short: it uses δ's
// leading rows and leaves the others alone) and two passes:
//   - the replay's input is clamp(x+δ, 0, 1) for its clean minibatch x;
//   - the replay's input gradient is that of its own input and current
//     weights (recomputed by an independent gradient pass);
//   - δ is then updated to clip(δ + ε·sign(∇), −ε, ε), unchanged where
//     x+δ is outside [0,1] (the clamp stops the gradient);
//   - at each minibatch boundary δ carries over unchanged and is non-zero.
//
// Mutations caught (each checked once): δ zeroed at the start of every
// minibatch; δ never updated; the δ update using the first replay's
// gradient for every replay of a minibatch.
func TestFreeTrainingPerturbation(t *testing.T) {
	data := synthData(88, 1, 8, 8, 4, 11) // minibatches of 32, 32 and 24
	cfg := smallConfig(Free)
	cfg.Epochs, cfg.Replays = 4, 2 // 2 passes × 3 minibatches × 2 replays
	tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 12), data, nil, cfg)
	eps := float32(cfg.Eps)
	e := tr.eng

	var (
		before, grad, clean []float32 // δ, ∇ and x of the current replay
		last                []float32 // δ after the previous replay
		replays, boundaries int
		clamped, moved      int // δ entries held by the clamp, changed by updates
		short               int // replays of a short minibatch
	)
	tr.hook = func(p hookPoint, n int) {
		sz := n * e.sampleSize()
		switch p {
		case hookUpdate:
			replays++
			if sz < len(tr.delta) {
				short++
			}
			before = slices.Clone(tr.delta)
			grad = slices.Clone(e.xgrad[:sz])
			clean = slices.Clone(tr.clean[:sz])
			for i, v := range clean {
				if want := clamp01(v + before[i]); e.x[i] != want {
					t.Fatalf("step %d: input[%d] = %v, want clamp(x+δ) = %v", tr.st.Step, i, e.x[i], want)
				}
			}
			if tr.st.Replay == 0 && last != nil {
				boundaries++
				if !slices.Equal(before, last) {
					t.Fatalf("step %d: δ at the start of the minibatch differs from δ at the end of the previous one", tr.st.Step)
				}
				if nz := len(before) - countZeros(before); nz < len(before)/2 {
					t.Fatalf("step %d: δ carried into the minibatch has only %d non-zero entries of %d", tr.st.Step, nz, len(before))
				}
			}
			// An independent gradient pass at the same input and weights.
			if err := e.run(inputPass, n); err != nil {
				t.Fatal(err)
			}
			scale := maxAbs(grad)
			if scale == 0 {
				t.Fatalf("step %d: zero input gradient", tr.st.Step)
			}
			for i, g := range e.xgrad[:sz] {
				if !closeTo(g, grad[i], 1e-4*scale) {
					t.Fatalf("step %d: the replay's input gradient [%d] is %v; its input and weights give %v", tr.st.Step, i, grad[i], g)
				}
			}
			copy(e.xgrad, grad)
		case hookUpdated:
			for i, d := range tr.delta {
				want := before[i]
				if i < sz {
					if a := clean[i] + before[i]; a >= 0 && a <= 1 {
						want = min(max(before[i]+eps*sign(grad[i]), -eps), eps)
					} else if grad[i] != 0 {
						clamped++
					}
				}
				if !closeTo(d, want, 1e-7) {
					if i >= sz {
						t.Fatalf("step %d: δ[%d], beyond the minibatch's %d values, changed from %v to %v", tr.st.Step, i, sz, before[i], d)
					}
					t.Fatalf("step %d: δ[%d] = %v after the update, want %v (δ %v, x %v, ∇ %v)", tr.st.Step, i, d, want, before[i], clean[i], grad[i])
				}
				if d != before[i] {
					moved++
				}
			}
			last = slices.Clone(tr.delta)
		}
	}
	if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if replays != tr.TotalSteps() || replays != 12 || boundaries != 5 || short != 4 {
		t.Errorf("observed %d replays (%d of a short minibatch) and %d minibatch boundaries, want 12 (4) and 5", replays, short, boundaries)
	}
	if clamped == 0 || moved == 0 {
		t.Errorf("%d δ entries held by the clamp, %d moved: the data does not exercise the rule", clamped, moved)
	}
}

// TestAdversarialDiffersFromNatural trains the same model with the same
// seed naturally and with each adversarial method: the final weights must
// differ. Free training runs with m = 1, so that it makes the same steps
// on the same minibatches as natural training, and its first step (δ = 0)
// must agree with natural training's: only the perturbation carried to the
// later minibatches separates them.
//
// Mutations caught: free training's δ never updated, or cleared at every
// minibatch; PGD and fast training's attack doing nothing (no random
// start, no step).
func TestAdversarialDiffersFromNatural(t *testing.T) {
	data := synthData(96, 1, 8, 8, 4, 13)
	run := func(m Method) (first, final [][]float32) {
		cfg := smallConfig(m)
		cfg.Epochs, cfg.Replays = 2, 1
		tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 14), data, nil, cfg)
		tr.hook = func(p hookPoint, n int) {
			if p == hookUpdated && first == nil {
				first = weights(tr)
			}
		}
		if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
			t.Fatal(err)
		}
		return first, weights(tr)
	}
	natFirst, nat := run(Natural)
	for _, m := range []Method{Free, PGD, Fast} {
		t.Run(string(m), func(t *testing.T) {
			first, final := run(m)
			t.Logf("first steps %g apart, final weights %g apart", relDiff(natFirst, first), relDiff(nat, final))
			if d := relDiff(natFirst, first); m == Free && d > 1e-5 {
				t.Fatalf("the first steps (δ = 0) differ by %g: the comparison is not like for like", d)
			}
			if d := relDiff(nat, final); d < 1e-3 {
				t.Errorf("%s and natural training end %g apart (relative): %s training trained on clean images", m, d, m)
			}
		})
	}
}

// relDiff returns max |a−b| / max(|a|, 1e-3) over all entries.
func relDiff(a, b [][]float32) float64 {
	worst := 0.0
	for i := range a {
		for j := range a[i] {
			d := math.Abs(float64(a[i][j] - b[i][j]))
			worst = max(worst, d/max(math.Abs(float64(a[i][j])), 1e-3))
		}
	}
	return worst
}

func countZeros(v []float32) int {
	n := 0
	for _, x := range v {
		if x == 0 {
			n++
		}
	}
	return n
}

func maxAbs(v []float32) float32 {
	m := float32(0)
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return m
}

// TestAttackTraining checks the batches PGD and fast training train on:
// a uniform random start in the ε-ball (its moments match U(−ε, ε)), then
// exactly k signed steps of α, each projected onto the ε-ball and [0,1]
// from the step's own gradient, and the weight step on the last point.
// Fast training is one step of α = 1.25ε whatever StepSize says.
//
// Mutations caught: no random start; no projection onto the ε-ball; one
// attack step fewer; fast training's α = ε.
func TestAttackTraining(t *testing.T) {
	data := synthData(96, 1, 8, 8, 4, 15)
	tests := []struct {
		method Method
		steps  int
		alpha  float32 // as a multiple of ε
	}{
		{PGD, 3, 0.4},
		{Fast, 1, 1.25},
	}
	for _, tc := range tests {
		t.Run(string(tc.method), func(t *testing.T) {
			cfg := smallConfig(tc.method)
			cfg.Epochs, cfg.AttackSteps = 2, tc.steps
			if tc.method == PGD {
				cfg.StepSize = float64(tc.alpha) * cfg.Eps
			}
			tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 16), data, nil, cfg)
			e, eps := tr.eng, float32(cfg.Eps)
			alpha := tc.alpha * eps
			var (
				prev, grad  []float32
				taken       []attackStep // since the last random start
				updates     int
				projected   int // entries the ε-ball projection changed
				startChecks int
			)
			tr.hook = func(p hookPoint, n int) {
				sz := n * e.sampleSize()
				x, adv := tr.clean[:sz], e.x[:sz]
				switch p {
				case hookStart:
					taken = taken[:0]
					checkUniformStart(t, x, adv, eps)
					startChecks++
				case hookAttackGrad:
					prev, grad = slices.Clone(adv), slices.Clone(e.xgrad[:sz])
				case hookAttackStep:
					// Checked at the weight step: fast training's
					// overfitting check also attacks (α = ε/4, 5 steps).
					taken = append(taken, attackStep{prev, grad, slices.Clone(adv)})
				case hookUpdate:
					updates++
					if len(taken) != tc.steps {
						t.Fatalf("step %d: trained after %d attack steps, want %d", tr.st.Step, len(taken), tc.steps)
					}
					for k, st := range taken {
						for i, v := range st.next {
							free := st.prev[i] + alpha*sign(st.grad[i])
							want := clamp01(min(max(free, x[i]-eps), x[i]+eps))
							if !closeTo(v, want, 1e-6) {
								t.Fatalf("step %d, attack step %d: x'[%d] = %v, want %v (x %v, previous %v, ∇ %v)", tr.st.Step, k+1, i, v, want, x[i], st.prev[i], st.grad[i])
							}
							if math.Abs(float64(free-x[i])) > float64(eps)+1e-6 && free >= 0 && free <= 1 {
								projected++
							}
						}
					}
					if !slices.Equal(adv, taken[len(taken)-1].next) {
						t.Fatalf("step %d: the weights are trained on another batch than the attack's last point", tr.st.Step)
					}
				}
			}
			if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
				t.Fatal(err)
			}
			if updates != tr.TotalSteps() || startChecks < updates {
				t.Errorf("%d updates of %d, %d random starts", updates, tr.TotalSteps(), startChecks)
			}
			if projected == 0 {
				t.Error("no attack step left the ε-ball: the projection is not exercised")
			}
		})
	}
}

// attackStep is one observed attack step: the point before it, its
// gradient and the point after it.
type attackStep struct{ prev, grad, next []float32 }

// checkUniformStart checks that adv − x looks like U(−ε, ε) on the pixels
// where the clamp to [0,1] cannot act: within the ball, centred, with
// mean |δ| ≈ ε/2 and about half the mass below ε/2 in magnitude.
func checkUniformStart(t *testing.T, x, adv []float32, eps float32) {
	t.Helper()
	var n, below int
	var sum, sumAbs float64
	for i, v := range x {
		d := adv[i] - v
		if math.Abs(float64(d)) > float64(eps)+1e-6 {
			t.Fatalf("random start %v is outside the ε-ball around %v", adv[i], v)
		}
		if v < eps || v > 1-eps {
			continue
		}
		n++
		sum += float64(d)
		sumAbs += math.Abs(float64(d))
		if math.Abs(float64(d)) < float64(eps)/2 {
			below++
		}
	}
	if n < 500 {
		t.Fatalf("only %d unclamped pixels", n)
	}
	// For U(−ε, ε): mean 0 (sd ε/√(3n)), mean |δ| ε/2 (sd ε/√(12n)),
	// P(|δ| < ε/2) = 1/2 (sd 1/(2√n)); the bounds are over 5 sd.
	mean, meanAbs, frac := sum/float64(n), sumAbs/float64(n), float64(below)/float64(n)
	e := float64(eps)
	if math.Abs(mean) > 5*e/math.Sqrt(3*float64(n)) || math.Abs(meanAbs-e/2) > 5*e/math.Sqrt(12*float64(n)) ||
		math.Abs(frac-0.5) > 5/(2*math.Sqrt(float64(n))) {
		t.Fatalf("random start over %d pixels: mean %g, mean |δ| %g, P(|δ|<ε/2) %g; want U(−ε, ε) with ε = %g", n, mean, meanAbs, frac, e)
	}
}

// TestParamsFreeze trains only the classifier head (Config.Params): the
// other parameters keep their exact initial bits in the exported model,
// and the trained ones move.
//
// Mutation caught: TrainOptions.Params ignored (every parameter trained).
func TestParamsFreeze(t *testing.T) {
	data := synthData(96, 1, 8, 8, 4, 17)
	model := tinyBNNet(1, 8, 8, 4, 18)
	for _, m := range []Method{Natural, Free} {
		t.Run(string(m), func(t *testing.T) {
			cfg := smallConfig(m)
			cfg.Params = []string{"fc.weight", "fc.bias"}
			tr := newTrainer(t, model, data, nil, cfg)
			var names []string
			for _, p := range tr.Params() {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, cfg.Params) {
				t.Fatalf("trainable parameters %v, want %v", names, cfg.Params)
			}
			if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
				t.Fatal(err)
			}
			out, err := tr.Model()
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias"} {
				was, err := model.Graph.Initializer(name).Float32s()
				if err != nil {
					t.Fatal(err)
				}
				got, err := out.Graph.Initializer(name).Float32s()
				if err != nil {
					t.Fatal(err)
				}
				same := slices.EqualFunc(was, got, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) })
				if frozen := !slices.Contains(cfg.Params, name); same != frozen {
					t.Errorf("%s: frozen %v, but unchanged bits %v", name, frozen, same)
				}
			}
		})
	}
}

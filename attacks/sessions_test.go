package attacks

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/zoo"
)

// TestSessionsAgree checks that cutting every batch into slices run by
// several sessions gives bit-identical logits, losses and gradients to one
// session running the whole batch, for every loss and for batch sizes that
// do not divide evenly (ModelOptions.Sessions).
func TestSessionsAgree(t *testing.T) {
	one, three := openSmallCNN(t, ModelOptions{Sessions: 1}), openSmallCNN(t, ModelOptions{Sessions: 3})
	if len(one.fwd.ss) != 1 || len(three.fwd.ss) != 3 {
		t.Fatalf("sessions: %d and %d, want 1 and 3", len(one.fwd.ss), len(three.fwd.ss))
	}
	const n = 8
	x, _, _ := benchImages(n)
	c, d := one.Classes(), one.sampleSize()
	y := make([]int64, n)
	tg := make([]int64, n)
	for i := range y {
		y[i], tg[i] = int64(i%c), int64((i+3)%c)
	}
	for _, loss := range []Loss{CE, DLR, DLRTargeted, LogitDiff} {
		for _, b := range []int{1, 2, 5, n} {
			in := GradInput{X: x, N: b, Loss: loss, Labels: y}
			if loss.Targeted() {
				in.Targets = tg
			}
			var outs [2]GradOutput
			for i, m := range []*ONNXModel{one, three} {
				outs[i] = GradOutput{Logits: make([]float32, b*c), Losses: make([]float32, b), Grad: make([]float32, b*d)}
				if err := m.Grad(in, outs[i]); err != nil {
					t.Fatalf("%s, batch %d: %v", loss, b, err)
				}
			}
			for name, pair := range map[string][2][]float32{
				"logits": {outs[0].Logits, outs[1].Logits},
				"losses": {outs[0].Losses, outs[1].Losses},
				"grad":   {outs[0].Grad, outs[1].Grad},
			} {
				for i := range pair[0] {
					if math.Float32bits(pair[0][i]) != math.Float32bits(pair[1][i]) {
						t.Fatalf("%s, batch %d: %s[%d] = %g with one session, %g with three", loss, b, name, i, pair[0][i], pair[1][i])
					}
				}
			}
		}
	}
	if _, err := NewONNXModel(testenv.ORT(t), one.Model(), ModelOptions{Sessions: -1}); err == nil {
		t.Error("Sessions: -1 accepted")
	}
}

// openSmallCNN opens zoo's small-cnn for the test, which closes it.
func openSmallCNN(t *testing.T, opts ModelOptions) *ONNXModel {
	t.Helper()
	g, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	om, err := NewONNXModel(testenv.ORT(t), g, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { om.Close() })
	return om
}

// The automatic choice replicates small models over the cores and keeps a
// model whose weights would be copied per core in one session.
func TestSessionsChoice(t *testing.T) {
	env := testenv.ORT(t) // 2 threads, CPU
	for _, tc := range []struct {
		sessions       int
		weights        int64
		wantN, wantThr int
	}{
		{0, 1 << 20, 2, 1},
		{0, MaxReplicatedWeights + 1, 1, 0},
		{1, 1 << 20, 1, 0},
		{3, MaxReplicatedWeights + 1, 3, 1},
	} {
		n, thr := ModelOptions{Sessions: tc.sessions}.sessions(env, tc.weights)
		if n != tc.wantN || thr != tc.wantThr {
			t.Errorf("Sessions %d, %d bytes of weights: %d sessions of %d threads, want %d of %d",
				tc.sessions, tc.weights, n, thr, tc.wantN, tc.wantThr)
		}
	}
}

// TestOneGraph checks the mode of models over MaxReplicatedWeights: the
// forward session closes when the first gradient session opens, and
// logits then come from a gradient session, agreeing with the forward
// graph's.
func TestOneGraph(t *testing.T) {
	ref, big := openSmallCNN(t, ModelOptions{Sessions: 1}), openSmallCNN(t, ModelOptions{Sessions: 1})
	if ref.oneGraph || big.oneGraph {
		t.Fatal("a small model in one-graph mode")
	}
	big.oneGraph = true // as NewONNXModel sets it for a model over MaxReplicatedWeights

	const n = 5
	x, _, _ := benchImages(n)
	c, d := ref.Classes(), ref.sampleSize()
	y, tg := make([]int64, n), make([]int64, n)
	for i := range y {
		y[i], tg[i] = int64(i%c), int64((i+1)%c)
	}
	want := make([]float32, n*c)
	if err := ref.Logits(x, n, want); err != nil {
		t.Fatal(err)
	}
	logits := func(when string) {
		t.Helper()
		got := make([]float32, n*c)
		if err := big.Logits(x, n, got); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: logit %d = %g, the forward graph's is %g", when, i, got[i], want[i])
			}
		}
	}
	logits("before any gradient")
	if big.fwd == nil {
		t.Fatal("forward session closed before a gradient session opened")
	}
	for _, loss := range []Loss{DLRTargeted, CE} {
		in := GradInput{X: x, N: n, Loss: loss, Labels: y}
		if loss.Targeted() {
			in.Targets = tg
		}
		outs := [2]GradOutput{}
		for i, m := range []*ONNXModel{ref, big} {
			outs[i] = GradOutput{Logits: make([]float32, n*c), Losses: make([]float32, n), Grad: make([]float32, n*d)}
			if err := m.Grad(in, outs[i]); err != nil {
				t.Fatalf("%s: %v", loss, err)
			}
		}
		for i := range outs[0].Grad {
			if outs[0].Grad[i] != outs[1].Grad[i] {
				t.Fatalf("%s: gradient %d differs: %g, %g", loss, i, outs[0].Grad[i], outs[1].Grad[i])
			}
		}
		if big.fwd != nil {
			t.Fatalf("%s: the forward session is still open beside a gradient session", loss)
		}
		logits("after a " + loss.String() + " gradient")
	}
	// Were a gradient session to fail to open after the forward one
	// closed, Logits opens the forward one again.
	lone := openSmallCNN(t, ModelOptions{Sessions: 1})
	lone.oneGraph = true
	if err := lone.fwd.close(); err != nil {
		t.Fatal(err)
	}
	lone.fwd = nil
	got := make([]float32, n*c)
	if err := lone.Logits(x, n, got); err != nil || lone.fwd == nil || !slices.Equal(got, want) {
		t.Errorf("Logits with no session open: %v (forward session %v), logits equal: %v", err, lone.fwd != nil, slices.Equal(got, want))
	}
	if err := big.Close(); err != nil {
		t.Fatal(err)
	}
	if err := big.Logits(x, n, want); !errors.Is(err, ErrClosed) {
		t.Errorf("Logits after Close: %v, want ErrClosed", err)
	}
}

package attacks

import (
	"math"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/zoo"
)

// TestSessionsAgree checks that cutting every batch into slices run by
// several sessions gives bit-identical logits, losses and gradients to one
// session running the whole batch, for every loss and for batch sizes that
// do not divide evenly (ModelOptions.Sessions).
func TestSessionsAgree(t *testing.T) {
	g, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.ORT(t)
	one, err := NewONNXModel(env, g, ModelOptions{Sessions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	three, err := NewONNXModel(env, g, ModelOptions{Sessions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer three.Close()
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
	if _, err := NewONNXModel(env, g, ModelOptions{Sessions: -1}); err == nil {
		t.Error("Sessions: -1 accepted")
	}
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

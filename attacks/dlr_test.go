package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLossGradients compares the DLR, targeted DLR and logit-difference
// graphs' losses and input gradients with the closed form for a linear
// model z = Wx + b, where
// ∂(num/den)/∂x = (∂num·den − num·∂den)/den² with ∂z_j = W_j.
func TestLossGradients(t *testing.T) {
	const classes, n = 5, 4
	rng := rand.New(rand.NewPCG(7, 7))
	d := anaShape[0] * anaShape[1] * anaShape[2]
	w := make([][]float32, classes)
	bias := make([]float32, classes)
	for j := range w {
		w[j] = make([]float32, d)
		for i := range w[j] {
			w[j][i] = 2*rng.Float32() - 1
		}
		bias[j] = rng.Float32()
	}
	m := linearModel(t, anaShape, w, bias)
	x := make([]float32, n*d)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := []int64{0, 1, 2, 3}
	targets := []int64{4, 4, 0, 1}
	logits := make([]float32, n*classes)
	if err := m.Logits(x, n, logits); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []Loss{DLR, DLRTargeted, LogitDiff} {
		in := GradInput{X: x, N: n, Loss: kind, Labels: y}
		if kind.Targeted() {
			in.Targets = targets
		}
		t.Run(kind.String(), func(t *testing.T) {
			gotZ, gotL, gotG := make([]float32, n*classes), make([]float32, n), make([]float32, n*d)
			if err := m.Grad(in, GradOutput{Logits: gotZ, Losses: gotL, Grad: gotG}); err != nil {
				t.Fatal(err)
			}
			for s := range n {
				z := row(logits, s, classes)
				rank := rankClasses(z)
				var num, den float64
				dNum, dDen := make([]float64, d), make([]float64, d)
				add := func(dst []float64, c int64, f float64) {
					for i := range dst {
						dst[i] += f * float64(w[c][i])
					}
				}
				switch kind {
				case LogitDiff:
					num, den = float64(z[targets[s]]-z[y[s]]), 1
					add(dNum, targets[s], 1)
					add(dNum, y[s], -1)
				case DLRTargeted:
					tc := targets[s]
					num = float64(z[tc] - z[y[s]])
					add(dNum, tc, 1)
					add(dNum, y[s], -1)
					den = float64(z[rank[0]]) - (float64(z[rank[2]])+float64(z[rank[3]]))/2
					add(dDen, rank[0], 1)
					add(dDen, rank[2], -0.5)
					add(dDen, rank[3], -0.5)
				default:
					other := rank[0]
					if other == y[s] {
						other = rank[1]
					}
					num = float64(z[other] - z[y[s]])
					add(dNum, other, 1)
					add(dNum, y[s], -1)
					den = float64(z[rank[0]] - z[rank[2]])
					add(dDen, rank[0], 1)
					add(dDen, rank[2], -1)
				}
				want := num / den
				if math.Abs(float64(gotL[s])-want) > 1e-5*max(1, math.Abs(want)) {
					t.Errorf("sample %d: loss %v, want %v", s, gotL[s], want)
				}
				for i := range d {
					g := (dNum[i]*den - num*dDen[i]) / (den * den)
					if got := float64(gotG[s*d+i]); math.Abs(got-g) > 1e-4*max(1, math.Abs(g)) {
						t.Errorf("sample %d: gradient[%d] = %v, want %v", s, i, got, g)
					}
				}
			}
		})
	}
}

// TestAPGDTargeted breaks the weak sample of the four-class model towards
// its runner-up class and leaves the robust one within the ball.
func TestAPGDTargeted(t *testing.T) {
	m, x, y := fourClassModel(t)
	tm := ThreatModel{Norm: Linf, Eps: 0.1}
	res, err := APGDTargeted{Steps: 10, TargetClasses: 3}.Run(context.Background(), m, x, y, tm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Success[0] || !res.Success[1] {
		t.Fatalf("success %v, want [false true]", res.Success)
	}
	for i := range 2 {
		if !tm.Contains(x[i*6:(i+1)*6], res.Adv[i*6:(i+1)*6]) {
			t.Errorf("sample %d outside the ball", i)
		}
	}
	// One clean forward pass for both, then 3 targets × 11 gradient
	// evaluations at most for the robust sample and fewer for the weak one.
	if res.Queries < 2+11 || res.Queries > 2+2*3*11 {
		t.Errorf("%d queries", res.Queries)
	}
}

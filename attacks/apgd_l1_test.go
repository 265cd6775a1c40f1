package attacks

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// dykstra projects x+v onto the L1 ball of radius eps intersected with the
// box [0,1] by Dykstra's alternating projections between the ball (the
// sort-based projection of Duchi et al. 2008) and the box: an algorithm
// independent of l1Projection's, converging to the same point.
func dykstra(x, v []float64, eps float64) []float64 {
	d := len(x)
	z := slices.Clone(v) // the change δ
	p, q := make([]float64, d), make([]float64, d)
	ball, box := make([]float64, d), make([]float64, d)
	for range 5000 {
		for i := range d {
			ball[i] = z[i] + p[i]
		}
		duchi(ball, eps)
		for i := range d {
			p[i] += z[i] - ball[i]
			box[i] = min(max(ball[i]+q[i], -x[i]), 1-x[i])
			q[i] += ball[i] - box[i]
		}
		copy(z, box)
	}
	return z
}

// duchi projects w onto the L1 ball of radius eps in place.
func duchi(w []float64, eps float64) {
	var l1 float64
	u := make([]float64, len(w))
	for i, v := range w {
		u[i] = math.Abs(v)
		l1 += u[i]
	}
	if l1 <= eps {
		return
	}
	slices.Sort(u)
	slices.Reverse(u)
	var cum, theta float64
	for j, v := range u {
		cum += v
		if t := (cum - eps) / float64(j+1); v-t > 0 {
			theta = t
		}
	}
	for i, v := range w {
		w[i] = math.Copysign(max(math.Abs(v)-theta, 0), v)
	}
}

// TestL1Projection compares the projection onto the L1 ball and the box
// with Dykstra's algorithm on random points.
func TestL1Projection(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var q l1Projection
	for trial := range 50 {
		d := 1 + rng.IntN(40)
		eps := float32(0.05 + 2*rng.Float64())
		x, adv := make([]float32, d), make([]float32, d)
		x64, v64 := make([]float64, d), make([]float64, d)
		for i := range x {
			x[i] = rng.Float32()
			if rng.IntN(5) == 0 {
				x[i] = float32(rng.IntN(2)) // on the box's faces
			}
			adv[i] = x[i] + float32(rng.NormFloat64()*0.3)
			x64[i], v64[i] = float64(x[i]), float64(adv[i]-x[i])
		}
		want := dykstra(x64, v64, float64(eps))
		q.project(adv, x, eps)
		for i := range adv {
			if got := float64(adv[i]) - x64[i]; math.Abs(got-want[i]) > 1e-5 {
				t.Fatalf("trial %d (d=%d, ε=%g): δ[%d] = %v, Dykstra %v", trial, d, eps, i, got, want[i])
			}
		}
		if tm := (ThreatModel{Norm: L1, Eps: eps}); !tm.Contains(x, adv) {
			t.Fatalf("trial %d: projection outside the ball or the box", trial)
		}
	}
}

// TestAPGDL1 checks L1-APGD on the binary linear model: the L1 optimum of
// a linear loss spends the whole budget on the pixel of largest |u| (pixel
// 6, u = −3, room 0.55 ≥ ε), raising the margin of robustX from −2.2 to
// −2.2 + 3ε; the weak sample breaks; every example stays in the L1 ball
// and the box.
func TestAPGDL1(t *testing.T) {
	m, x, y := binaryModel(t)
	const eps = 0.1
	tm := ThreatModel{Norm: L1, Eps: eps}
	for _, a := range []Attack{APGD{}, APGD{Loss: CWMargin, Restarts: 2}} {
		t.Run(a.String(), func(t *testing.T) {
			res, err := a.Run(context.Background(), m, x, y, tm, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Success[0] || !res.Success[1] {
				t.Fatalf("success %v, want [false true]", res.Success)
			}
			for i := range 2 {
				if !tm.Contains(x[6*i:6*i+6], res.Adv[6*i:6*i+6]) {
					t.Errorf("sample %d: %v outside the L1 ball or the box", i, res.Adv[6*i:6*i+6])
				}
			}
			z := make([]float32, 2)
			if err := m.Logits(res.Adv[:6], 1, z); err != nil {
				t.Fatal(err)
			}
			if got, want := float64(Margin(z, 0, -1)), -2.2+3*eps; math.Abs(got-want) > 0.01*3*eps {
				t.Errorf("margin %.5f, want the optimum %.5f (within 1%% of the gain)", got, want)
			}
		})
	}
}

// TestEoT checks that EoT costs its number of gradient evaluations.
func TestEoT(t *testing.T) {
	m, x, y := binaryModel(t)
	tm := ThreatModel{Norm: Linf, Eps: 0.1}
	one, err := APGD{Steps: 5}.Run(context.Background(), m, x[:6], y[:1], tm, nil)
	if err != nil {
		t.Fatal(err)
	}
	four, err := APGD{Steps: 5, EoT: 4}.Run(context.Background(), m, x[:6], y[:1], tm, nil)
	if err != nil {
		t.Fatal(err)
	}
	if one.Queries != 6 || four.Queries != 24 || !slices.Equal(one.Adv, four.Adv) {
		t.Errorf("queries %d and %d (want 6, 24); a deterministic model's EoT changed the result: %v", one.Queries, four.Queries, !slices.Equal(one.Adv, four.Adv))
	}
}

// TestRunEach checks per-sample radii: robustX breaks at ε = 0.3 (above its
// L∞ distance 2.2/7.75 = 0.284) and not at 0.25, in the same batch.
func TestRunEach(t *testing.T) {
	m, _, _ := binaryModel(t)
	x := append(append([]float32{}, robustX...), robustX...)
	res, err := APGD{Steps: 20}.RunEach(context.Background(), m, x, []int64{0, 0}, Linf, []float32{0.25, 0.3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Success[0] || !res.Success[1] {
		t.Fatalf("success %v, want [false true]", res.Success)
	}
	for i, eps := range []float32{0.25, 0.3} {
		if tm := (ThreatModel{Norm: Linf, Eps: eps}); !tm.Contains(x[6*i:6*i+6], res.Adv[6*i:6*i+6]) {
			t.Errorf("sample %d outside its ε = %g", i, eps)
		}
	}
	if _, err := (APGD{}).RunEach(context.Background(), m, x, []int64{0, 0}, Linf, []float32{0.1}, nil); err == nil {
		t.Error("one radius for two samples accepted")
	}
}

// TestSquareL2 checks the L2 Square attack on the binary model: the weak
// sample breaks, the robust one keeps its label and gets at least 80% of
// the closed-form optimal margin gain ε‖u‖₂, and every example lies in the
// L2 ball and the box.
func TestSquareL2(t *testing.T) {
	m, x, y := binaryModel(t)
	const eps = 0.1
	tm := ThreatModel{Norm: L2, Eps: eps}
	res, err := Square{Queries: 300}.Run(context.Background(), m, x, y, tm, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Success[0] || !res.Success[1] {
		t.Fatalf("success %v, want [false true]", res.Success)
	}
	for i := range 2 {
		if !tm.Contains(x[6*i:6*i+6], res.Adv[6*i:6*i+6]) {
			t.Errorf("sample %d outside the L2 ball or the box", i)
		}
	}
	z := make([]float32, 2)
	if err := m.Logits(res.Adv[:6], 1, z); err != nil {
		t.Fatal(err)
	}
	var u2 float64
	for _, v := range anaU {
		u2 += float64(v) * float64(v)
	}
	if got, want := float64(Margin(z, 0, -1))+2.2, eps*math.Sqrt(u2); got < 0.8*want {
		t.Errorf("margin gain %.4f, want ≥ 80%% of the optimum %.4f", got, want)
	}
}

// TestSquareL2Shapes runs L2 Square on colour images of several sizes:
// every example stays in the ball and the box, and the attack breaks
// some samples of a random linear model.
func TestSquareL2Shapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, shape := range [][3]int{{3, 8, 8}, {1, 28, 28}, {3, 5, 7}} {
		d := shape[0] * shape[1] * shape[2]
		w := make([][]float32, 4)
		for j := range w {
			w[j] = make([]float32, d)
			for i := range w[j] {
				w[j][i] = float32(rng.NormFloat64()) / 4
			}
		}
		m := linearModel(t, shape, w, make([]float32, 4))
		const n = 8
		x, y := make([]float32, n*d), make([]int64, n)
		logits := make([]float32, n*4)
		for i := range x {
			x[i] = rng.Float32()
		}
		if err := m.Logits(x, n, logits); err != nil {
			t.Fatal(err)
		}
		for i := range y {
			y[i] = int64(Predict(logits[4*i : 4*i+4]))
		}
		tm := ThreatModel{Norm: L2, Eps: 1}
		res, err := Square{Queries: 200}.Run(context.Background(), m, x, y, tm, rng)
		if err != nil {
			t.Fatal(err)
		}
		broken := 0
		for i := range n {
			if !tm.Contains(x[i*d:(i+1)*d], res.Adv[i*d:(i+1)*d]) {
				t.Errorf("%v: sample %d outside the ball", shape, i)
			}
			if res.Success[i] {
				broken++
			}
		}
		if broken == 0 {
			t.Errorf("%v: no sample broken at L2 ε = 1", shape)
		}
	}
}

// TestAPGDLargeEps checks AutoAttack's larger-ε schedule for L1-APGD on the
// binary model: the robust sample gains most of the closed-form optimal
// margin within ε (stages at 3ε and 2ε must not leak examples outside it,
// nor count them as rejected), the weak one breaks, and the stages cost
// 30 + 30 + 40 steps plus one evaluation each.
func TestAPGDLargeEps(t *testing.T) {
	m, x, y := binaryModel(t)
	const eps = 0.1
	tm := ThreatModel{Norm: L1, Eps: eps}
	res, err := APGD{LargeEps: true}.Run(context.Background(), m, x[:6], y[:1], tm, rand.New(rand.NewPCG(2, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Success[0] || res.Rejected != 0 || !tm.Contains(x[:6], res.Adv) || res.Queries != 103 {
		t.Fatalf("success %v, rejected %d, queries %d (want 103), in the ball %v", res.Success, res.Rejected, res.Queries, tm.Contains(x[:6], res.Adv))
	}
	z := make([]float32, 2)
	if err := m.Logits(res.Adv, 1, z); err != nil {
		t.Fatal(err)
	}
	// On six pixels the sparse steps can settle on two coordinates (the
	// support of the 2ε stage's best point sets the step's sparsity), so
	// ask for two thirds of the optimal gain 3ε rather than all of it.
	if gain := float64(Margin(z, 0, -1)) + 2.2; gain < 2*eps || gain > 3*eps+1e-5 {
		t.Errorf("margin gain %.5f, want between 2ε and the optimum 3ε", gain)
	}
	weak, err := APGDTargeted{LargeEps: true}.Run(context.Background(), m, x, y, tm, nil)
	if err == nil || weak != nil {
		t.Errorf("APGD-T on two classes: %v", err)
	}
	res, err = APGD{LargeEps: true}.Run(context.Background(), m, x, y, tm, nil)
	if err != nil || !res.Success[1] || !tm.Contains(x[6:], res.Adv[6:]) {
		t.Errorf("weak sample: %v, %+v", err, res)
	}
	if _, err := (APGD{LargeEps: true}).Run(context.Background(), m, x, y, ThreatModel{Norm: Linf, Eps: eps}, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("larger-ε schedule in L∞: %v", err)
	}
}

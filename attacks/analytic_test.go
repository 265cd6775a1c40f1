package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// The analytic model: a linear classifier on 1×2×3 images whose logit
// differences are affine in x, so that the loss-maximising perturbation is
// known in closed form: x + ε·sign(u) for L∞, x + ε·u/‖u‖₂ for L2, where u
// is the gradient of the margin.
var (
	anaShape = [3]int{1, 2, 3}
	anaU     = []float32{0.5, -1, 2, -0.25, 1, -3}
	// robustX keeps its label 0 within ε = 0.1; weakX is misclassified by
	// a step of ε.
	robustX = []float32{0.4, 0.5, 0.3, 0.6, 0.45, 0.55}
	weakX   = []float32{0.7, 0.2, 0.5, 0.35, 0.6, 0.25}
)

// binaryModel returns the two-class model z = (0, u·x + β), with β
// giving robustX the margin −2.2 (−1.425 at the L∞ optimum) and weakX the
// margin −0.2375 (+0.54 at the optimum), both with label 0.
func binaryModel(t *testing.T) (*ONNXModel, []float32, []int64) {
	t.Helper()
	m := linearModel(t, anaShape, [][]float32{make([]float32, 6), anaU}, []float32{0, -1.15})
	return m, append(append([]float32{}, robustX...), weakX...), []int64{0, 0}
}

// corner returns the closed-form L∞ (x + ε·sign(u)) or L2 (x + ε·u/‖u‖)
// optimum for ascending u·x.
func corner(x, u []float32, n Norm, eps, sign float32) []float32 {
	out := make([]float32, len(x))
	var norm float64
	for _, v := range u {
		norm += float64(v) * float64(v)
	}
	norm = math.Sqrt(norm)
	for i, v := range x {
		switch {
		case n == L2:
			out[i] = v + sign*eps*float32(float64(u[i])/norm)
		case sign*u[i] > 0:
			out[i] = v + eps
		default:
			out[i] = v - eps
		}
	}
	return out
}

// TestClosedForm checks that the attacks find the closed-form optimum on
// the sample they cannot break and break the weak one.
func TestClosedForm(t *testing.T) {
	m, x, y := binaryModel(t)
	const eps = 0.1
	linf, l2 := ThreatModel{Norm: Linf, Eps: eps}, ThreatModel{Norm: L2, Eps: eps}
	cases := []struct {
		name   string
		attack Attack
		t      ThreatModel
		tol    float32 // 0: exact
	}{
		{"fgsm-linf", FGSM{}, linf, 0},
		{"fgsm-l2", FGSM{}, l2, 1e-6},
		{"pgd-linf-random-start", PGD{Steps: 10, StepRatio: 0.25, RandomStart: true}, linf, 0},
		{"pgd-linf-cw-restarts", PGD{Steps: 10, StepRatio: 0.25, Restarts: 3, Loss: CWMargin}, linf, 0},
		{"pgd-l2", PGD{Steps: 5, StepRatio: 0.5}, l2, 1e-6},
		{"pgd-l2-cw", PGD{Steps: 5, StepRatio: 0.5, Loss: CWMargin}, l2, 1e-6},
		{"apgd-ce-linf", APGD{Steps: 10}, linf, 0},
		{"apgd-ce-l2", APGD{Steps: 100}, l2, 1e-6},
		{"square-linf", Square{Queries: 300}, linf, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.attack.Run(context.Background(), m, x, y, c.t, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Success[0] || !res.Success[1] {
				t.Fatalf("success %v, want [false true]", res.Success)
			}
			want := corner(robustX, anaU, c.t.Norm, eps, 1)
			for i, v := range res.Adv[:6] {
				if d := math.Abs(float64(v - want[i])); d > float64(c.tol) {
					t.Errorf("adv[%d] = %v, want %v (|Δ| = %g)", i, v, want[i], d)
				}
			}
			if !c.t.Contains(x[6:], res.Adv[6:]) {
				t.Errorf("broken sample's example %v is outside the ball", res.Adv[6:])
			}
			if res.Rejected != 0 {
				t.Errorf("%d examples rejected", res.Rejected)
			}
		})
	}
}

// fourClassModel returns z = (1, −5, u·x − 0.3, −6). Within the ball
// around robustX and weakX, z_2 lies between −5 and 1 until the sample
// breaks, so the sorted logits keep their order and, for label 0, the DLR
// loss (z_2 − 1)/6, the targeted DLR (z_2 − 1)/6.5 and the targeted CE and
// CW losses towards class 2 all grow along u: their L∞ optimum is
// x + ε·sign(u). robustX stays correct there; weakX becomes class 2.
func fourClassModel(t *testing.T) (*ONNXModel, []float32, []int64) {
	t.Helper()
	z := make([]float32, 6)
	m := linearModel(t, anaShape, [][]float32{z, z, anaU, z}, []float32{1, -5, -0.3, -6})
	return m, append(append([]float32{}, robustX...), weakX...), []int64{0, 0}
}

func TestClosedFormMulticlass(t *testing.T) {
	m, x, y := fourClassModel(t)
	const eps = 0.1
	toClass2 := []int64{2, 2}
	cases := []struct {
		name   string
		attack Attack
	}{
		{"apgd-dlr", APGD{Steps: 10, Loss: DLR}},
		{"apgd-t", APGDTargeted{Steps: 10, TargetClasses: 1}},
		{"pgd-dlr", PGD{Steps: 10, StepRatio: 0.25, Loss: DLR}},
		{"pgd-targeted-ce", PGD{Steps: 10, StepRatio: 0.25, Targets: toClass2}},
		{"pgd-targeted-cw", PGD{Steps: 10, StepRatio: 0.25, Loss: CWMargin, Targets: toClass2}},
		{"fgsm-targeted-ce", FGSM{Targets: toClass2}},
		{"apgd-targeted-dlr", APGD{Steps: 10, Loss: DLR, Targets: toClass2}},
		{"square-targeted", Square{Queries: 300, Targets: toClass2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.attack.Run(context.Background(), m, x, y, ThreatModel{Norm: Linf, Eps: eps}, rand.New(rand.NewPCG(3, 4)))
			if err != nil {
				t.Fatal(err)
			}
			if res.Success[0] || !res.Success[1] {
				t.Fatalf("success %v, want [false true]", res.Success)
			}
			want := corner(robustX, anaU, Linf, eps, 1)
			for i, v := range res.Adv[:6] {
				if v != want[i] {
					t.Errorf("adv[%d] = %v, want %v", i, v, want[i])
				}
			}
			logits := make([]float32, 8)
			if err := m.Logits(res.Adv, 2, logits); err != nil {
				t.Fatal(err)
			}
			if p := Predict(logits[4:]); p != 2 {
				t.Errorf("broken sample predicted %d, want 2", p)
			}
		})
	}
}

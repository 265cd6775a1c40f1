package attacks_test

import (
	"context"
	"fmt"
	"math"

	"github.com/robust-go/robust/attacks"
)

// logistic is a two-class model on 1×1×4 images written in Go: logits
// (0, w·x + b). Any classifier can be attacked through the Model
// interface; attacks.NewONNXModel adapts ONNX models.
type logistic struct {
	w []float32
	b float32
}

func (logistic) Classes() int  { return 2 }
func (logistic) Shape() [3]int { return [3]int{1, 1, 4} }

func (l logistic) Logits(x []float32, n int, out []float32) error {
	for i := range n {
		s := l.b
		for j, w := range l.w {
			s += w * x[i*4+j]
		}
		out[2*i], out[2*i+1] = 0, s
	}
	return nil
}

// Grad implements the cross-entropy loss and the logit difference z_t −
// z_y (which FAB follows).
func (l logistic) Grad(in attacks.GradInput, out attacks.GradOutput) error {
	x, y, n, logits, losses, grad := in.X, in.Labels, in.N, out.Logits, out.Losses, out.Grad
	if err := l.Logits(x, n, logits); err != nil {
		return err
	}
	if in.Loss == attacks.LogitDiff {
		for i := range n {
			sign := float32(in.Targets[i] - y[i]) // z_t − z_y = ±z1, or 0
			losses[i] = sign * logits[2*i+1]
			for j, w := range l.w {
				grad[i*4+j] = sign * w
			}
		}
		return nil
	}
	if in.Loss != attacks.CE {
		return fmt.Errorf("loss %v not implemented", in.Loss)
	}
	for i := range n {
		p1 := 1 / (1 + math.Exp(-float64(logits[2*i+1]))) // softmax probability of class 1
		dz1 := p1 - float64(y[i])                         // ∂CE/∂z1
		py := p1
		if y[i] == 0 {
			py = 1 - p1
		}
		losses[i] = float32(-math.Log(py))
		for j, w := range l.w {
			grad[i*4+j] = float32(dz1) * w
		}
	}
	return nil
}

func ExamplePGD() {
	model := logistic{w: []float32{1, -2, 0.5, 0}, b: -0.2}
	x := []float32{0.2, 0.3, 0.4, 0.5} // class 0: w·x + b = −0.4
	y := []int64{0}
	pgd := attacks.PGD{Steps: 10, StepRatio: 0.25}
	res, err := pgd.Run(context.Background(), model, x, y, attacks.ThreatModel{Norm: attacks.Linf, Eps: 0.1}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The optimum is x + ε·sign(w); the last pixel has no gradient.
	fmt.Printf("%.3f %v %d\n", res.Adv, res.Success, res.Queries)
	// Output: [0.300 0.200 0.500 0.500] [false] 11
}

func ExampleFGSM() {
	model := logistic{w: []float32{1, -2, 0.5, 0}, b: 0.2}
	x := []float32{0.2, 0.3, 0.4, 0.5} // class 0, margin −0.2
	res, err := attacks.FGSM{}.Run(context.Background(), model, x, []int64{0}, attacks.ThreatModel{Norm: attacks.Linf, Eps: 0.1}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	z := make([]float32, 2)
	_ = model.Logits(res.Adv, 1, z)
	fmt.Println(res.Success, attacks.Predict(z), attacks.Linf.Distance(res.Adv, x) <= 0.1+1e-6)
	// Output: [true] 1 true
}

func ExampleThreatModel_Contains() {
	x := []float32{0.5, 0.5}
	fmt.Println(attacks.ThreatModel{Norm: attacks.Linf, Eps: 0.1}.Contains(x, []float32{0.6, 0.4}))
	fmt.Println(attacks.ThreatModel{Norm: attacks.L2, Eps: 0.1}.Contains(x, []float32{0.6, 0.4}))
	fmt.Println(attacks.ThreatModel{Norm: attacks.L1, Eps: 0.2}.Contains(x, []float32{0.6, 0.4}))
	fmt.Println(attacks.ThreatModel{Norm: attacks.Linf, Eps: 1}.Contains(x, []float32{1.05, 0.5}))
	// Output:
	// true
	// false
	// true
	// false
}

func ExampleFAB_Minimize() {
	model := logistic{w: []float32{1, -2, 0.5, 0}, b: -0.2}
	x := []float32{0.2, 0.3, 0.4, 0.5} // class 0: w·x + b = −0.4
	threat := attacks.ThreatModel{Norm: attacks.Linf, Eps: 0.1}
	found, err := attacks.FAB{}.Minimize(context.Background(), model, x, []int64{0}, threat, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The closest point of the boundary w·x + b = 0 is at L∞ distance
	// |w·x + b| / ‖w‖₁ = 0.4 / 3.5.
	fmt.Printf("minimal L∞ perturbation %.4f (exact %.4f)\n", found.Dist[0], 0.4/3.5)
	// Output: minimal L∞ perturbation 0.1149 (exact 0.1143)
}

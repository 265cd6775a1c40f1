package evaluate_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"

	"gorgonia.org/tensor"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// linear is a softmax-linear classifier of 1×2×2 images into two classes
// written in Go: logits W·x + b. Any [attacks.Model] can be evaluated; an
// ONNX file becomes one with [evaluate.Prepare] and
// [attacks.NewONNXModel].
type linear struct {
	w [2][4]float32
	b [2]float32
}

func (linear) Classes() int  { return 2 }
func (linear) Shape() [3]int { return [3]int{1, 2, 2} }

func (m linear) Logits(x []float32, n int, out []float32) error {
	for i := range n {
		for k := range 2 {
			z := m.b[k]
			for j, w := range m.w[k] {
				z += w * x[4*i+j]
			}
			out[2*i+k] = z
		}
	}
	return nil
}

// Grad implements the cross-entropy loss: ∂/∂x = Wᵀ(softmax(z) − onehot(y)).
func (m linear) Grad(in attacks.GradInput, out attacks.GradOutput) error {
	if in.Loss != attacks.CE {
		return fmt.Errorf("linear: loss %v not implemented", in.Loss)
	}
	x, y, n, logits, losses, grad := in.X, in.Labels, in.N, out.Logits, out.Losses, out.Grad
	if err := m.Logits(x, n, logits); err != nil {
		return err
	}
	for i := range n {
		z0, z1 := float64(logits[2*i]), float64(logits[2*i+1])
		p1 := 1 / (1 + math.Exp(z0-z1))
		p := [2]float64{1 - p1, p1}
		losses[i] = float32(-math.Log(max(p[y[i]], 1e-30)))
		for j := range 4 {
			var g float64
			for k := range 2 {
				d := p[k]
				if int64(k) == y[i] {
					d--
				}
				g += d * float64(m.w[k][j])
			}
			grad[4*i+j] = float32(g)
		}
	}
	return nil
}

// exampleImages returns 8 images as an [8,1,2,2] float32 tensor and their
// labels: class 1 is brighter on the left.
func exampleImages() (x, y *tensor.Dense) {
	pix := make([]float32, 8*4)
	labels := make([]int64, 8)
	for i := range 8 {
		labels[i] = int64(i % 2)
		left, right := float32(0.3), float32(0.5)
		if i%2 == 1 {
			left, right = 0.5, 0.3
		}
		d := float32(i) / 40 // each image a little further from the boundary
		copy(pix[4*i:], []float32{left + d, right, left + d, right})
	}
	return tensor.New(tensor.WithShape(8, 1, 2, 2), tensor.WithBacking(pix)),
		tensor.New(tensor.WithShape(8), tensor.WithBacking(labels))
}

// A Go program evaluates its own model on images it holds as gorgonia
// tensors: clean accuracy and robust accuracy under FGSM and PGD at two
// budgets, each with its 95% confidence interval.
//
// The figures agree with the closed form: an L∞ perturbation of size ε
// moves this model's logit margin by at most 8ε, and image i's margin is
// 4(0.2 − i/40) for even i, 4(0.2 + i/40) for odd i; so ε = 0.04 breaks
// image 6 only and ε = 0.15 breaks images 0 to 6 but 5.
func ExampleRunTensor() {
	model := linear{w: [2][4]float32{{-1, 1, -1, 1}, {1, -1, 1, -1}}}
	x, y := exampleImages()
	eps, err := evaluate.ParseEps("0.04,0.15")
	if err != nil {
		log.Fatal(err)
	}
	suite, err := evaluate.Suite("fgsm,pgd", evaluate.SuiteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	report, err := evaluate.RunTensor(context.Background(), model, x, y, evaluate.Config{
		Eps: eps, Norm: attacks.Linf, Attacks: suite, NoSanity: true, Model: "linear",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("clean %.1f%%\n", 100*report.Clean.Value)
	for _, p := range report.Points {
		fmt.Printf("ε=%s: robust %.1f%% [%.1f, %.1f]\n", p.EpsText, 100*p.Robust.Value, 100*p.Robust.Low, 100*p.Robust.High)
	}
	// Output:
	// clean 100.0%
	// ε=0.04: robust 87.5% [52.9, 97.8]
	// ε=0.15: robust 25.0% [7.1, 59.1]
}

// Adversarial examples of in-memory images, returned as a tensor. At
// ε = 0.12 the margin moves by up to 0.96: the even images and image 1
// (margin 0.9) are broken.
func ExampleAttackTensor() {
	model := linear{w: [2][4]float32{{-1, 1, -1, 1}, {1, -1, 1, -1}}}
	x, y := exampleImages()
	suite, err := evaluate.Suite("pgd", evaluate.SuiteOptions{Steps: 10})
	if err != nil {
		log.Fatal(err)
	}
	adv, out, err := evaluate.AttackTensor(context.Background(), model, suite[0], attacks.ThreatModel{Norm: attacks.Linf, Eps: 0.12}, x, y, evaluate.AttackOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("adversarial images:", adv.Shape())
	fmt.Println("broken:", out.Success)
	// Output:
	// adversarial images: (8, 1, 2, 2)
	// broken: [true true true false true false true false]
}

// Evaluate an ONNX classifier on images a program holds as a tensor. The
// model file and the images stand for the program's own; ONNX Runtime
// must be installed (scripts/setup-ort.sh).
func ExampleRunTensor_onnx() {
	env, err := ort.Init(ort.Options{})
	if err != nil {
		log.Fatal(err)
	}
	g, err := onnxgraph.Load("model.onnx")
	if err != nil {
		log.Fatal(err)
	}
	// The model takes 1×28×28 images in [0,1]; Prepare adapts other
	// conventions (Contract: range, mean/std, NHWC, softmax outputs).
	prepared, flags, err := evaluate.Prepare(g, evaluate.Contract{}, [3]int{1, 28, 28})
	if err != nil {
		log.Fatal(err)
	}
	model, err := attacks.NewONNXModel(env, prepared, attacks.ModelOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()

	x := tensor.New(tensor.WithShape(64, 1, 28, 28), tensor.WithBacking(make([]float32, 64*28*28)))
	y := tensor.New(tensor.WithShape(64), tensor.WithBacking(make([]int64, 64)))
	eps, err := evaluate.ParseEps("0.05,0.1")
	if err != nil {
		log.Fatal(err)
	}
	suite, err := evaluate.Suite("default", evaluate.SuiteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	report, err := evaluate.RunTensor(context.Background(), model, x, y, evaluate.Config{
		Eps: eps, Norm: attacks.Linf, Attacks: suite, Model: "model.onnx", Flags: flags,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := report.WriteText(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

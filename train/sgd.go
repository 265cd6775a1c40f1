package train

import (
	"fmt"

	"github.com/robust-go/robust/internal/liberr"
)

// Param is one trainable tensor: its values, the gradient the training graph
// wrote for it, and the optimizer's momentum buffer.
type Param struct {
	Name     string
	Dims     []int64
	Data     []float32
	Grad     []float32
	Velocity []float32
	// Decay says whether weight decay applies (by default: weights of Conv
	// and Gemm, not biases or BatchNormalization parameters).
	Decay bool
	// Frozen parameters are not updated.
	Frozen bool
}

// SGD is stochastic gradient descent with momentum and PyTorch-style weight
// decay (L2 added to the gradient):
//
//	g ← ∇ + wd·w;  v ← μ·v + g;  w ← w − lr·v
type SGD struct {
	Momentum    float64
	WeightDecay float64
}

// Step applies one update with learning rate lr to every parameter.
func (o SGD) Step(params []*Param, lr float64) (err error) {
	defer liberr.Prefix(&err, "train")
	if err := prepare(params); err != nil {
		return err
	}
	o.stepPart(params, lr, 0, 1)
	return nil
}

// prepare returns an error if a parameter to update lacks gradients, and
// allocates missing momentum buffers.
func prepare(params []*Param) error {
	for _, p := range params {
		if p.Frozen {
			continue
		}
		if len(p.Grad) != len(p.Data) {
			return fmt.Errorf("sgd: parameter %s has %d values but %d gradients", p.Name, len(p.Data), len(p.Grad))
		}
		if len(p.Velocity) != len(p.Data) {
			p.Velocity = make([]float32, len(p.Data))
		}
	}
	return nil
}

// stepPart updates part k of parts of every parameter's values: calls
// with k = 0 … parts−1, on as many goroutines, make one Step. The
// parameters must have been prepared.
func (o SGD) stepPart(params []*Param, lr float64, k, parts int) {
	mu, wd, eta := float32(o.Momentum), float32(o.WeightDecay), float32(lr)
	for _, p := range params {
		if p.Frozen {
			continue
		}
		decay := float32(0)
		if p.Decay {
			decay = wd
		}
		lo, hi := len(p.Data)*k/parts, len(p.Data)*(k+1)/parts
		w, g, v := p.Data[lo:hi], p.Grad[lo:hi], p.Velocity[lo:hi]
		for i := range w {
			gi := g[i] + decay*w[i]
			vi := mu*v[i] + gi
			v[i] = vi
			w[i] -= eta * vi
		}
	}
}

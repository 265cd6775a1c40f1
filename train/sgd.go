package train

import "fmt"

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
func (o SGD) Step(params []*Param, lr float64) error {
	mu, wd, eta := float32(o.Momentum), float32(o.WeightDecay), float32(lr)
	for _, p := range params {
		if p.Frozen {
			continue
		}
		if len(p.Grad) != len(p.Data) {
			return fmt.Errorf("sgd: parameter %s has %d values but %d gradients", p.Name, len(p.Data), len(p.Grad))
		}
		if p.Velocity == nil {
			p.Velocity = make([]float32, len(p.Data))
		}
		decay := float32(0)
		if p.Decay {
			decay = wd
		}
		w, g, v := p.Data, p.Grad[:len(p.Data)], p.Velocity[:len(p.Data)]
		for i := range w {
			gi := g[i] + decay*w[i]
			vi := mu*v[i] + gi
			v[i] = vi
			w[i] -= eta * vi
		}
	}
	return nil
}

package attacks

import (
	"context"
	"math/rand/v2"
)

// FGSM runs the fast gradient sign method (Goodfellow et al. 2015) for
// the L∞ norm and the fast gradient method for L2: one step of size
// b.StepSize (default ε) along the sign (L∞) or the direction (L2) of the
// gradient of b.Loss, projected onto the ε-ball and [0,1]. With
// b.RandomStart the step starts from a random point of the ball (the "FGSM
// with random start" of Wong et al. 2020, whose step is 1.25·ε). Restarts
// rerun it on the samples still unbroken, from random starts.
//
// It costs one gradient evaluation and one forward pass per sample and run.
func FGSM(ctx context.Context, m Model, x []float32, y []int64, b Budget, rng *rand.Rand) (*Result, error) {
	p, err := newProblem(ctx, "fgsm", m, x, y, b, rng)
	if err != nil {
		return nil, err
	}
	alpha := b.StepSize
	if alpha == 0 {
		alpha = b.Eps
	}
	return p.projectedGradient(1, alpha)
}

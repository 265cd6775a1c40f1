package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/robust-go/robust/attacks"
)

// evaluate returns the clean accuracy and, when ε > 0, the accuracy under
// PGD (EvalSteps steps of ε/4 from a random start, cross-entropy) of the
// current weights on the held-out set, with BatchNormalization in eval
// mode (the exported model).
func (t *Trainer) evaluate(ctx context.Context, rng *rand.Rand) (clean float64, robust *float64, err error) {
	m, err := t.Model()
	if err != nil {
		return 0, nil, err
	}
	am, err := attacks.NewONNXModel(t.env, m, attacks.ModelOptions{})
	if err != nil {
		return 0, nil, err
	}
	defer am.Close()
	d, bs := t.val, t.cfg.BatchSize
	classes := am.Classes()
	logits := make([]float32, bs*classes)
	right, unbroken := 0, 0
	threat := attacks.ThreatModel{Norm: attacks.Linf, Eps: float32(t.cfg.Eps)}
	pgd := attacks.PGD{Steps: t.cfg.EvalSteps, StepRatio: 0.25, RandomStart: true}
	var buf []float32
	for lo := 0; lo < d.Len(); lo += bs {
		hi := min(lo+bs, d.Len())
		x, err := d.Floats(buf, lo, hi)
		if err != nil {
			return 0, nil, err
		}
		buf = x
		n, y := hi-lo, d.Y[lo:hi]
		if err := am.Logits(x, n, logits[:n*classes]); err != nil {
			return 0, nil, err
		}
		right += correct(logits[:n*classes], y, classes)
		if threat.Eps == 0 {
			continue
		}
		res, err := pgd.Run(ctx, am, x, y, threat, rng)
		if err != nil {
			return 0, nil, fmt.Errorf("PGD: %w", err)
		}
		for _, s := range res.Success {
			if !s {
				unbroken++
			}
		}
	}
	clean = float64(right) / float64(d.Len())
	if threat.Eps > 0 {
		r := float64(unbroken) / float64(d.Len())
		robust = &r
	}
	return clean, robust, nil
}

package attacks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// apgdDefaultTargets is AutoAttack's number of target classes for APGD-T.
const apgdDefaultTargets = 9

// APGDTargeted runs APGD-T, AutoAttack's targeted APGD: for each of the
// targets (default 9, at most classes − 1) classes with the largest clean
// logits after the top one, in order, [APGD] with the targeted DLR loss
// towards that class, on the samples still unbroken. Success is untargeted:
// a sample breaks when it is misclassified, whatever the class. b.Targets
// must be nil and b.Loss is ignored; the model needs 4 or more classes.
//
// It costs one forward pass, then up to targets × (b.Steps + 1) gradient
// evaluations per sample and restart.
func APGDTargeted(ctx context.Context, m Model, x []float32, y []int64, b Budget, targets int, rng *rand.Rand) (*Result, error) {
	if b.Targets != nil {
		return nil, errors.New("apgd-t: the targets are chosen by the attack; Budget.Targets must be nil")
	}
	b.Loss = DLR
	p, err := newProblem(ctx, "apgd-t", m, x, y, b, rng)
	if err != nil {
		return nil, err
	}
	if p.c < minClasses(DLRTargeted) {
		return nil, fmt.Errorf("apgd-t: the targeted DLR loss needs at least %d classes; the model has %d", minClasses(DLRTargeted), p.c)
	}
	if targets <= 0 {
		targets = apgdDefaultTargets
	}
	targets = min(targets, p.c-1)

	// Clean logits: misclassified samples are broken already; the others
	// are attacked towards their runner-up classes.
	all, clean := p.remaining(make([]float32, p.n*p.d))
	logits := make([]float32, p.n*p.c)
	if err := p.logits(all, clean, logits); err != nil {
		return nil, err
	}
	p.observe(all, clean, logits, make([]bool, p.n))
	ranked := make([][]int64, p.n)
	for i := range p.n {
		ranked[i] = rankClasses(row(logits, i, p.c))
	}
	p.obj = objective{kind: DLRTargeted, sign: 1, labels: bothLabels}
	p.lossTargets = make([]int64, p.n)
	for rank := 1; rank <= targets; rank++ {
		for i := range p.n {
			p.lossTargets[i] = ranked[i][rank]
		}
		if err := p.apgdRestarts(apgdSteps(b)); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

// rankClasses returns the classes by decreasing logit.
func rankClasses(z []float32) []int64 {
	classes := make([]int64, len(z))
	for j := range classes {
		classes[j] = int64(j)
	}
	slices.SortStableFunc(classes, func(a, b int64) int {
		switch {
		case z[a] > z[b]:
			return -1
		case z[a] < z[b]:
			return 1
		}
		return 0
	})
	return classes
}

package evaluate_test

import (
	"fmt"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/evaluate"
)

func ExampleParsePolicy() {
	policy := []byte(`
# nightly robustness policy
fail_under = "clean=80%"

[gates]
pgd = 0.4               # at the first ε evaluated
"robust@8/255" = "30%"

[gates."4/255"]
robust = "45%"
`)
	gates, err := evaluate.ParsePolicy(policy)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range gates {
		fmt.Printf("line %d: %s must reach %.0f%% at ε %q\n", g.Line, g.Metric, 100*g.Min, g.Eps)
	}
	// Output:
	// line 3: clean must reach 80% at ε ""
	// line 6: pgd must reach 40% at ε ""
	// line 7: robust must reach 30% at ε "8/255"
	// line 10: robust must reach 45% at ε "4/255"
}

func ExampleResolveGates() {
	suite, _ := evaluate.Suite("autoattack-lite", evaluate.SuiteOptions{})
	eps, _ := evaluate.ParseEps("0.5")
	cfg := evaluate.Config{Attacks: suite, Norm: attacks.L1, Eps: eps}
	// Before anything runs: Square cannot run under L1, and 1.0 is not
	// evaluated.
	fmt.Println(evaluate.CheckNorm(cfg.Attacks, cfg.Norm))
	gates, _ := evaluate.ParseGates("apgd-ce=40%,robust@1.0=30%")
	fmt.Println(evaluate.ResolveGates(cfg, gates))
	// Output:
	// attack does not support the norm: square: supports the L∞ and L2 norms only
	// gate cannot be evaluated: gate "robust@1.0=30%": ε 1.0 is not evaluated (the evaluation's ε: 0.5)
}

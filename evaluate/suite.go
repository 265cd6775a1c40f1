package evaluate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/onnxgraph"
)

// Kind is an attack algorithm.
type Kind int

// Attack algorithms.
const (
	FGSM Kind = iota
	PGD
	APGD
	APGDT
	Square
)

// AttackSpec is one attack of a suite; the budget's ε and norm come from
// the evaluation.
type AttackSpec struct {
	// Name identifies the attack in reports and gates ("pgd").
	Name string
	Kind Kind
	Loss onnxgraph.LossKind
	// Steps are iterations (PGD, APGD) or queries (Square); 0 is the
	// attack's default.
	Steps    int
	Restarts int
	// StepRatio sets the step size α = StepRatio·ε (FGSM, PGD); 0 is the
	// attack's default.
	StepRatio   float32
	RandomStart bool
	// Targets is APGD-T's number of target classes.
	Targets int
	// WhiteBox is false for attacks that use no gradients.
	WhiteBox bool
}

// Label describes the attack, e.g. "PGD-20 CE ×1 (α=ε/4, random start)".
func (a AttackSpec) Label() string {
	restarts := max(a.Restarts, 1)
	switch a.Kind {
	case FGSM:
		return "FGSM " + strings.ToUpper(attacks.LossName(a.Loss))
	case PGD:
		s := fmt.Sprintf("PGD-%d %s ×%d", a.Steps, strings.ToUpper(attacks.LossName(a.Loss)), restarts)
		if a.StepRatio > 0 {
			s += fmt.Sprintf(" (α=%s)", ratioText(a.StepRatio))
		}
		return s
	case APGD:
		return fmt.Sprintf("APGD-%s %d steps ×%d", strings.ToUpper(attacks.LossName(a.Loss)), a.Steps, restarts)
	case APGDT:
		return fmt.Sprintf("APGD-T %d steps, %d targets", a.Steps, a.Targets)
	case Square:
		return fmt.Sprintf("Square %d queries ×%d", a.Steps, restarts)
	}
	return a.Name
}

// ratioText writes a step ratio as "ε/4" when it is the inverse of an
// integer, else "0.3ε".
func ratioText(r float32) string {
	inv := 1 / r
	if k := float32(int(inv + 0.5)); inv-k < 1e-4 && k-inv < 1e-4 {
		return fmt.Sprintf("ε/%d", int(k))
	}
	return fmt.Sprintf("%.3gε", r)
}

// catalogue holds every named attack with its default settings.
var catalogue = []AttackSpec{
	{Name: "fgsm", Kind: FGSM, WhiteBox: true},
	{Name: "pgd", Kind: PGD, Steps: 20, StepRatio: 0.25, RandomStart: true, WhiteBox: true},
	{Name: "pgd-cw", Kind: PGD, Loss: onnxgraph.CWMargin, Steps: 20, StepRatio: 0.25, RandomStart: true, WhiteBox: true},
	{Name: "pgd-dlr", Kind: PGD, Loss: attacks.DLR, Steps: 20, StepRatio: 0.25, RandomStart: true, WhiteBox: true},
	{Name: "apgd-ce", Kind: APGD, Steps: 100, WhiteBox: true},
	{Name: "apgd-dlr", Kind: APGD, Loss: attacks.DLR, Steps: 100, WhiteBox: true},
	{Name: "apgd-t", Kind: APGDT, Loss: attacks.DLR, Steps: 100, Targets: 9, WhiteBox: true},
	{Name: "square", Kind: Square, Steps: 1000},
}

// suites are the named suites, as lists of catalogue names with
// overrides.
var suites = map[string][]string{
	"default":         {"fgsm", "pgd", "apgd-ce"},
	"autoattack-lite": {"apgd-ce", "apgd-dlr", "square"},
	"full":            {"fgsm", "pgd", "pgd-cw", "apgd-ce", "apgd-dlr", "apgd-t", "square"},
}

// SuiteNames lists the named suites and the attacks a list may use.
func SuiteNames() (suiteNames, attackNames []string) {
	for k := range suites {
		suiteNames = append(suiteNames, k)
	}
	slices.Sort(suiteNames)
	for _, a := range catalogue {
		attackNames = append(attackNames, a.Name)
	}
	return suiteNames, attackNames
}

// SuiteOptions override the attacks' settings.
type SuiteOptions struct {
	// Steps, when positive, sets the iterations of PGD and APGD attacks.
	Steps int
	// Restarts, when positive, sets the restarts of FGSM, PGD and APGD
	// attacks.
	Restarts int
	// Queries, when positive, sets Square's query budget.
	Queries int
}

// Suite returns the attacks of a named suite ("default",
// "autoattack-lite", "full") or of a comma-separated list of attack names
// ("fgsm,pgd,square"). In the "full" suite PGD runs 10 restarts and Square
// 5000 queries, as in the papers' evaluations.
func Suite(name string, opts SuiteOptions) ([]AttackSpec, error) {
	names, ok := suites[name]
	if !ok {
		names = strings.Split(name, ",")
	}
	var out []AttackSpec
	for _, n := range names {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(catalogue, func(a AttackSpec) bool { return a.Name == n })
		if i < 0 {
			s, a := SuiteNames()
			return nil, fmt.Errorf("unknown suite or attack %q (suites: %s; attacks: %s)", n, strings.Join(s, ", "), strings.Join(a, ", "))
		}
		if slices.ContainsFunc(out, func(a AttackSpec) bool { return a.Name == n }) {
			return nil, fmt.Errorf("attack %q is listed twice", n)
		}
		a := catalogue[i]
		if name == "full" {
			switch a.Name {
			case "pgd":
				a.Restarts = 10
			case "square":
				a.Steps = 5000
			}
		}
		switch {
		case a.Kind == Square && opts.Queries > 0:
			a.Steps = opts.Queries
		case a.Kind != Square && a.Kind != FGSM && opts.Steps > 0:
			a.Steps = opts.Steps
		}
		if a.Kind != Square && a.Kind != APGDT && opts.Restarts > 0 {
			a.Restarts = opts.Restarts
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("suite %q has no attacks", name)
	}
	return out, nil
}

// Budget returns the attack's budget at ε.
func (a AttackSpec) Budget(norm attacks.Norm, eps float32) attacks.Budget {
	return attacks.Budget{
		Norm: norm, Eps: eps, Steps: a.Steps, StepSize: a.StepRatio * eps,
		Restarts: a.Restarts, RandomStart: a.RandomStart, Loss: a.Loss,
	}
}

// Run attacks a batch.
func (a AttackSpec) Run(ctx context.Context, m attacks.Model, x []float32, y []int64, b attacks.Budget, rng *rand.Rand) (*attacks.Result, error) {
	switch a.Kind {
	case FGSM:
		return attacks.FGSM(ctx, m, x, y, b, rng)
	case PGD:
		return attacks.PGD(ctx, m, x, y, b, rng)
	case APGD:
		return attacks.APGD(ctx, m, x, y, b, rng)
	case APGDT:
		b.Loss = 0
		return attacks.APGDTargeted(ctx, m, x, y, b, a.Targets, rng)
	case Square:
		return attacks.Square(ctx, m, x, y, b, rng)
	}
	return nil, fmt.Errorf("attack %s: unknown kind %d", a.Name, a.Kind)
}

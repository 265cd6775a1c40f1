package evaluate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/robust-go/robust/attacks"
)

// catalogue returns every named attack with its default settings, in the
// order help texts list them.
func catalogue() []attacks.Attack {
	pgd := attacks.PGD{Steps: 20, StepRatio: 0.25, RandomStart: true}
	pgdCW, pgdDLR := pgd, pgd
	pgdCW.Loss, pgdDLR.Loss = attacks.CWMargin, attacks.DLR
	return []attacks.Attack{
		attacks.FGSM{},
		pgd, pgdCW, pgdDLR,
		attacks.APGD{Steps: 100},
		attacks.APGD{Loss: attacks.DLR, Steps: 100},
		attacks.APGDTargeted{Steps: 100, TargetClasses: 9},
		attacks.FAB{Steps: 100},
		attacks.FAB{Steps: 100, TargetClasses: 9},
		attacks.Square{Queries: 1000},
	}
}

// namedSuite returns the attacks of a named suite for a norm, with the
// suite's own settings, or false.
func namedSuite(name string, norm attacks.Norm) ([]attacks.Attack, bool) {
	switch name {
	case "autoattack":
		if norm == attacks.L1 {
			// AutoAttack's standard version for L1: APGD-CE with 5
			// restarts and APGD-T with 5 target classes, both in the
			// larger-ε schedule, then FAB-T as for L∞. AutoAttack ends
			// with an L1 Square; robust's Square has no L1 variant, so
			// the suite leaves it out rather than skip it at run time.
			return []attacks.Attack{
				attacks.APGD{Steps: 100, Restarts: 5, LargeEps: true},
				attacks.APGDTargeted{Steps: 100, TargetClasses: 5, LargeEps: true},
				attacks.FAB{Steps: 100, TargetClasses: 9},
			}, true
		}
		// AutoAttack's standard version (Croce & Hein 2020): APGD-CE
		// without restarts, APGD-T and FAB-T with 9 target classes, Square
		// with 5000 queries, in this order.
		return []attacks.Attack{
			attacks.APGD{Steps: 100},
			attacks.APGDTargeted{Steps: 100, TargetClasses: 9},
			attacks.FAB{Steps: 100, TargetClasses: 9},
			attacks.Square{Queries: 5000},
		}, true
	case "default":
		return pick("fgsm", "pgd", "apgd-ce"), true
	case "autoattack-lite":
		return pick("apgd-ce", "apgd-dlr", "square"), true
	case "full":
		// PGD with 10 restarts and Square with 5000 queries, as in the
		// papers' evaluations.
		s := pick("fgsm", "pgd", "pgd-cw", "apgd-ce", "apgd-dlr", "apgd-t", "square")
		s[1] = attacks.PGD{Steps: 20, StepRatio: 0.25, RandomStart: true, Restarts: 10}
		s[6] = attacks.Square{Queries: 5000}
		return s, true
	case "autoattack-rand":
		// AutoAttack's version for randomised defences: APGD-CE and
		// APGD-DLR with each gradient averaged over 20 evaluations
		// (expectation over transformation).
		return []attacks.Attack{
			attacks.APGD{Steps: 100, EoT: 20},
			attacks.APGD{Loss: attacks.DLR, Steps: 100, EoT: 20},
		}, true
	case "autoattack-plus":
		// AutoAttack's plus version: the untargeted attacks with 5
		// restarts, then the targeted ones with 9 target classes.
		return []attacks.Attack{
			attacks.APGD{Steps: 100, Restarts: 5},
			attacks.APGD{Loss: attacks.DLR, Steps: 100, Restarts: 5},
			attacks.FAB{Steps: 100, Restarts: 5},
			attacks.Square{Queries: 5000},
			attacks.APGDTargeted{Steps: 100, TargetClasses: 9},
			attacks.FAB{Steps: 100, TargetClasses: 9},
		}, true
	}
	return nil, false
}

// pick returns the catalogue's attacks of the given names; it panics on an
// unknown name (a programming error in namedSuite).
func pick(names ...string) []attacks.Attack {
	all := catalogue()
	out := make([]attacks.Attack, len(names))
	for i, n := range names {
		j := slices.IndexFunc(all, func(a attacks.Attack) bool { return a.Name() == n })
		if j < 0 {
			panic("evaluate: no attack " + n + " in the catalogue")
		}
		out[i] = all[j]
	}
	return out
}

// SuiteNames lists the named suites and the attacks a list may use.
func SuiteNames() (suites, attackNames []string) {
	for _, a := range catalogue() {
		attackNames = append(attackNames, a.Name())
	}
	return []string{"autoattack", "autoattack-lite", "autoattack-plus", "autoattack-rand", "default", "full"}, attackNames
}

// SuiteOptions override the attacks' effort settings (see
// [attacks.Effort]): Steps the iterations of PGD, APGD, APGD-T and FAB,
// Restarts the restarts of FGSM, PGD, APGD and FAB, Queries Square's query
// budget.
type SuiteOptions = attacks.Effort

// Suite returns the attacks of a named suite ("default",
// "autoattack-lite", "full", "autoattack", "autoattack-plus",
// "autoattack-rand") or of a comma-separated list of attack names
// ("fgsm,pgd,square"), with the options' overrides, with the settings for
// the L∞ and L2 norms; see [SuiteFor].
func Suite(name string, opts SuiteOptions) ([]attacks.Attack, error) {
	return SuiteFor(name, attacks.Linf, opts)
}

// SuiteFor is [Suite] for a norm: the autoattack suite's settings differ
// in the L1 norm, as in AutoAttack.
func SuiteFor(name string, norm attacks.Norm, opts SuiteOptions) ([]attacks.Attack, error) {
	suite, ok := namedSuite(name, norm)
	if !ok {
		all := catalogue()
		for n := range strings.SplitSeq(name, ",") {
			n = strings.TrimSpace(n)
			i := slices.IndexFunc(all, func(a attacks.Attack) bool { return a.Name() == n })
			if i < 0 {
				s, a := SuiteNames()
				return nil, fmt.Errorf("unknown suite or attack %q (suites: %s; attacks: %s)", n, strings.Join(s, ", "), strings.Join(a, ", "))
			}
			if slices.ContainsFunc(suite, func(a attacks.Attack) bool { return a.Name() == n }) {
				return nil, fmt.Errorf("attack %q is listed twice", n)
			}
			suite = append(suite, all[i])
		}
	}
	for i, a := range suite {
		if t, ok := a.(attacks.Tunable); ok {
			suite[i] = t.WithEffort(opts)
		}
	}
	if len(suite) == 0 {
		return nil, fmt.Errorf("suite %q has no attacks", name)
	}
	return suite, nil
}

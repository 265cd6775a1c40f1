package evaluate

import (
	"slices"
	"testing"
)

// TestAutoAttackSuites checks that the autoattack suites are AutoAttack's
// versions: the attacks, their settings and their order.
func TestAutoAttackSuites(t *testing.T) {
	cases := []struct {
		name   string
		labels []string
	}{
		{"autoattack", []string{"apgd-ce APGD-CE 100 steps ×1", "apgd-t APGD-T 100 steps, 9 targets",
			"fab-t FAB-T 100 steps, 9 targets", "square Square 5000 queries ×1"}},
		{"autoattack-plus", []string{"apgd-ce APGD-CE 100 steps ×5", "apgd-dlr APGD-DLR 100 steps ×5",
			"fab FAB 100 steps ×5", "square Square 5000 queries ×1", "apgd-t APGD-T 100 steps, 9 targets",
			"fab-t FAB-T 100 steps, 9 targets"}},
		{"fab,fab-t", []string{"fab FAB 100 steps ×1", "fab-t FAB-T 100 steps, 9 targets"}},
	}
	for _, c := range cases {
		s, err := Suite(c.name, SuiteOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, a := range s {
			got = append(got, a.Name()+" "+a.String())
		}
		if !slices.Equal(got, c.labels) {
			t.Errorf("%s: %q, want %q", c.name, got, c.labels)
		}
	}
	suites, attackNames := SuiteNames()
	for _, want := range []string{"autoattack", "autoattack-plus"} {
		if !slices.Contains(suites, want) {
			t.Errorf("SuiteNames lacks %s: %v", want, suites)
		}
	}
	for _, want := range []string{"fab", "fab-t"} {
		if !slices.Contains(attackNames, want) {
			t.Errorf("attack names lack %s: %v", want, attackNames)
		}
	}
}

package evaluate

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/attacks"
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

// TestL1Evaluation runs the autoattack suite in the L1 norm (AutoAttack's
// L1 settings) on the tiny fixture: Square, L∞/L2 only, is skipped with a
// flag; the others run, and every counted example lies in the L1 ball.
func TestL1Evaluation(t *testing.T) {
	m, d := tinyModel(t)
	suite, err := SuiteFor("autoattack", attacks.L1, SuiteOptions{Steps: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := suite[0].String() + "; " + suite[1].String(); got != "APGD-CE 10 steps ×5, ε schedule 3ε→2ε→ε; APGD-T 10 steps, 5 targets, ε schedule 3ε→2ε→ε" {
		t.Errorf("L1 autoattack: %s", got)
	}
	r, err := Run(context.Background(), m, d, Config{
		Eps: []Eps{{Value: 2, Text: "2"}}, Norm: attacks.L1, Attacks: suite, SuiteName: "autoattack", BatchSize: 10, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Norm != "l1" || r.Sanity == nil || r.Sanity.Probe == "" || r.Sanity.LargeEps != 0.5*float64(d.ImageSize()) {
		t.Errorf("norm %q, sanity %+v", r.Norm, r.Sanity)
	}
	p := r.Points[0]
	if names := len(p.Attacks); names != 3 || p.Attacks[2].Name != "fab-t" {
		t.Errorf("L1 autoattack ran %d attacks, want apgd-ce, apgd-t, fab-t (no Square: it has no L1 variant)", names)
	}
	for _, a := range p.Attacks {
		switch {
		case a.Skipped != "":
			t.Errorf("%s skipped: %s", a.Name, a.Skipped)
		case a.Rejected != 0 || (a.MinNorm != nil && *a.MeanNorm > 2+1e-4):
			t.Errorf("%s: %d rejected, mean ‖δ‖₁ %v", a.Name, a.Rejected, a.MeanNorm)
		}
	}
	if p.Robust.Value > r.Clean.Value {
		t.Errorf("robust %v above clean %v", p.Robust.Value, r.Clean.Value)
	}
}

// TestMinEps checks the minimal-ε distribution on the tiny linear model:
// the empirical robust accuracy it gives at each ε matches the autoattack
// suite's within one sample, the percentiles are ordered and the text and
// JSON reports carry it.
func TestMinEps(t *testing.T) {
	m, d := tinyModel(t)
	suite, err := Suite("autoattack", SuiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := ParseEps("0.02,0.05,0.1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), m, d, Config{Eps: eps, Norm: attacks.Linf, Attacks: suite, BatchSize: 16, Seed: 2, MinEps: true, NoSanity: true})
	if err != nil {
		t.Fatal(err)
	}
	me := r.MinEps
	if me == nil || me.Samples != d.Len() || me.Misclassified+me.NotFound+len(me.Values) != d.Len() {
		t.Fatalf("min eps %+v", me)
	}
	for _, p := range r.Points {
		got, want := me.RobustAccuracy(p.Eps), p.Robust.Value
		if math.Abs(got-want) > 1.0/float64(d.Len())+1e-12 {
			t.Errorf("ε=%s: robust accuracy %.3f from the minimal ε, %.3f from the suite", p.EpsText, got, want)
		}
	}
	prev := 0.0
	for _, p := range me.Percentiles {
		if p.Value != nil && *p.Value < prev {
			t.Errorf("percentiles not ordered: %+v", me.Percentiles)
		}
		if p.Value != nil {
			prev = *p.Value
		}
	}
	curveEps, acc := me.Curve()
	if len(curveEps) != len(acc) || curveEps[0] != 0 || acc[0] != float64(d.Len()-me.Misclassified)/float64(d.Len()) || acc[len(acc)-1] != float64(me.NotFound)/float64(d.Len()) {
		t.Errorf("curve %v %v", curveEps, acc)
	}
	for k := 1; k < len(acc); k++ {
		if curveEps[k] <= curveEps[k-1] || acc[k] >= acc[k-1] {
			t.Errorf("curve not a decreasing step at %d: %v %v", k, curveEps, acc)
		}
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil || !strings.Contains(b.String(), "minimal ε: median") {
		t.Errorf("text report: %v\n%s", err, b.String())
	}
}

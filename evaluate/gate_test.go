package evaluate

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/attacks"
)

func TestParseThreshold(t *testing.T) {
	cases := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"40%", 0.4, ""},
		{"40.5 %", 0.405, ""},
		{"0.4", 0.4, ""},
		{"0", 0, ""},
		{"1", 1, ""},
		{"100%", 1, ""},
		{"40", 0, "write 40% for a percentage"},
		{"1.5", 0, "write 1.5% for a percentage"},
		{"150%", 0, "outside 0%–100%"},
		{"-0.1", 0, "negative"},
		{"-5%", 0, "outside"},
		{"lots", 0, "neither a percentage"},
		{"NaN", 0, "neither a percentage"},
		{"", 0, "neither a percentage"},
	}
	for _, c := range cases {
		got, err := ParseThreshold(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrBadGate) {
				t.Errorf("%q: got %v, %v; want error %q", c.in, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// gateReport is a two-ε cascade report: 80 of 100 correct, PGD attacked
// them at 0.1 and left 40; at 8/255 APGD-DLR was skipped.
func gateReport() *Report {
	return &Report{Mode: "cascade", Samples: 100, Clean: NewAccuracy(80, 100), Points: []Point{
		{Eps: 0.1, EpsText: "0.1", Robust: NewAccuracy(30, 100), Attacks: []AttackResult{
			{Name: "pgd", Attacked: 80, Robust: NewAccuracy(40, 100)},
			{Name: "apgd-ce", Attacked: 40, Rejected: 2, Robust: NewAccuracy(30, 100)},
		}},
		{Eps: float64(float32(8.0 / 255)), EpsText: "8/255", Robust: NewAccuracy(20, 100), Attacks: []AttackResult{
			{Name: "pgd", Attacked: 80, Robust: NewAccuracy(25, 100)},
			{Name: "apgd-ce", Attacked: 25, Robust: NewAccuracy(20, 100)},
			{Name: "apgd-dlr", Skipped: "needs 3 or more classes", Robust: NewAccuracy(20, 100)},
		}},
	}}
}

func TestGates(t *testing.T) {
	cases := []struct {
		gates    string
		pass     bool
		name     string // the first gate's stable name
		wantErr  string
		describe string
	}{
		{"pgd=40%,clean=80%", true, "pgd@0.1", "", "pgd 40.0% ≥ 40.0% at ε=0.1"},
		{"pgd=0.4", true, "pgd@0.1", "", ""},
		{"pgd=41%", false, "pgd@0.1", "", "pgd 40.0% < 41.0% at ε=0.1"},
		{"clean=0.8", true, "clean", "", "clean 80.0% ≥ 80.0%"},
		{"robust@8/255=20%", true, "robust@8/255", "", "(without apgd-dlr)"},
		{"robust@0.03137255=20%", true, "robust@8/255", "", ""},
		{"pgd@8/255=30%", false, "pgd@8/255", "", ""},
		{"all=31%", false, "all@0.1", "", ""},
		{"apgd-dlr@8/255=0%", false, "apgd-dlr@8/255", "", "apgd-dlr not measured at ε=8/255 (apgd-dlr was skipped: needs 3 or more classes)"},
		{"fgsm=10%", false, "", "unknown metric \"fgsm\"", ""},
		{"pgd@4/255=10%", false, "", "was not evaluated", ""},
		{"clean@0.1=10%", false, "", "clean accuracy has no ε", ""},
		{"pgd", false, "", "METRIC=THRESHOLD", ""},
		{"pgd=abc", false, "", "neither a percentage", ""},
		{"pgd=40", false, "", "write 40% for a percentage", ""},
		{"pgd=150%", false, "", "outside", ""},
		{"=40%", false, "", "empty metric", ""},
		{"pgd@x=4%", false, "", "not a number", ""},
		{"pgd@0.1,0.2=4%", false, "", "", ""}, // the comma splits: "0.2=4%" has no metric
		{",", false, "", "no gates", ""},
	}
	for _, c := range cases {
		r := gateReport()
		gates, err := ParseGates(c.gates)
		if err == nil {
			err = r.CheckGates(gates)
		}
		if c.wantErr != "" || c.name == "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: got %v, want error %q", c.gates, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.gates, err)
			continue
		}
		if got := r.GateFailure() == ""; got != c.pass {
			t.Errorf("%q: pass = %v, want %v (%s)", c.gates, got, c.pass, r.GateFailure())
		}
		if g := r.Gates[0]; g.Name != c.name || !strings.Contains(g.Describe(), c.describe) {
			t.Errorf("%q: name %q, %q; want %q, %q", c.gates, g.Name, g.Describe(), c.name, c.describe)
		}
	}
	r := gateReport()
	gates, _ := ParseGates("pgd=50%,clean=90%")
	if err := r.CheckGates(gates); err != nil {
		t.Fatal(err)
	}
	if got, want := r.GateFailure(), "2 gates missed: pgd 40.0% < 50.0% at ε=0.1; clean 80.0% < 90.0%"; got != want {
		t.Errorf("GateFailure = %q, want %q", got, want)
	}
}

// TestGateNeverPassesOnNothing checks gates whose metric was not measured
// on any attacked sample: they fail with the reason, unless the value is
// determined without attacking (and the reason says why).
func TestGateNeverPassesOnNothing(t *testing.T) {
	skipped := &Report{Mode: "cascade", Samples: 10, Clean: NewAccuracy(8, 10), Points: []Point{
		{Eps: 0.5, EpsText: "0.5", Robust: NewAccuracy(8, 10), Attacks: []AttackResult{
			{Name: "square", Skipped: "Square supports the L∞ norm only", Robust: NewAccuracy(8, 10)},
		}},
	}}
	noneCorrect := &Report{Mode: "cascade", Samples: 10, Clean: NewAccuracy(0, 10), Points: []Point{
		{Eps: 0.5, EpsText: "0.5", Robust: NewAccuracy(0, 10), Attacks: []AttackResult{{Name: "pgd", Robust: NewAccuracy(0, 10)}}},
	}}
	brokenBefore := &Report{Mode: "cascade", Samples: 10, Clean: NewAccuracy(5, 10), Points: []Point{
		{Eps: 0.5, EpsText: "0.5", Robust: NewAccuracy(0, 10), Attacks: []AttackResult{
			{Name: "pgd", Attacked: 5, Broken: 5, Robust: NewAccuracy(0, 10)},
			{Name: "square", Robust: NewAccuracy(0, 10)},
		}},
	}}
	partial := &Report{Mode: "cascade", Partial: true, Samples: 10, Clean: NewAccuracy(8, 10), Points: []Point{
		{Eps: 0.1, EpsText: "0.1", Robust: NewAccuracy(6, 10), Attacks: []AttackResult{{Name: "pgd", Attacked: 8, Robust: NewAccuracy(6, 10)}}},
	}}
	cases := []struct {
		name     string
		r        *Report
		gate     string
		pass     bool
		measured bool
		reason   string
	}{
		{"skipped attack", skipped, "square=50%", false, false, "square was skipped"},
		{"skipped attack, zero threshold", skipped, "square=0%", false, false, "square was skipped"},
		{"every attack skipped", skipped, "robust=50%", false, false, "every attack was skipped"},
		{"clean accuracy 0", noneCorrect, "pgd=0%", true, true, "clean accuracy is 0"},
		{"clean accuracy 0, robust", noneCorrect, "robust=0%", true, true, "clean accuracy is 0"},
		{"broken before", brokenBefore, "square=0%", true, true, "earlier attacks of the cascade broke every sample"},
		{"partial, measured ε", partial, "pgd@0.1=50%", true, true, ""},
		{"partial, ε not reached", partial, "pgd@0.2=50%", false, false, "interrupted before this ε"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gates, err := ParseGates(c.gate)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.r.CheckGates(gates); err != nil {
				t.Fatal(err)
			}
			g := c.r.Gates[0]
			if g.Passed != c.pass || g.Measured != c.measured || !strings.Contains(g.Reason, c.reason) {
				t.Errorf("passed %v, measured %v, reason %q; want %v, %v, %q", g.Passed, g.Measured, g.Reason, c.pass, c.measured, c.reason)
			}
			if !c.measured && !strings.Contains(c.r.GateFailure(), "not measured") {
				t.Errorf("GateFailure %q does not say the gate was not measured", c.r.GateFailure())
			}
		})
	}
}

// TestGateNotes checks that skips, rejected examples and warnings reach
// the gate results.
func TestGateNotes(t *testing.T) {
	r := gateReport()
	r.Flags = []Flag{warning("softmax-output", "probabilities"), info("skipped", "not a warning")}
	gates, _ := ParseGates("robust@8/255=10%,apgd-ce@0.1=10%")
	if err := r.CheckGates(gates); err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(append(r.Gates[0].Notes, r.Gates[1].Notes...), "\n")
	for _, want := range []string{"apgd-dlr skipped: needs 3", "2 adversarial examples rejected", "softmax-output: probabilities"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "not a warning") {
		t.Errorf("info flags in notes:\n%s", notes)
	}
}

func TestResolveGates(t *testing.T) {
	suite := func(s string) []attacks.Attack {
		a, err := Suite(s, SuiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	eps, _ := ParseEps("0.1,8/255")
	cases := []struct {
		suite   string
		norm    attacks.Norm
		gates   string
		wantErr string
	}{
		{"default", attacks.Linf, "pgd=40%,clean=80%,robust@8/255=30%,apgd-ce@0.1=1%", ""},
		{"default", attacks.Linf, "pgd@1/10=40%", ""},
		{"default", attacks.Linf, "pgd@0.3=40%", "ε 0.3 is not evaluated (the evaluation's ε: 0.1, 8/255)"},
		{"default", attacks.Linf, "square=40%", "unknown metric \"square\" (this evaluation measures clean, robust, fgsm, pgd, apgd-ce)"},
		{"default", attacks.Linf, "frob=40%", "unknown metric"},
		{"square", attacks.L1, "square=50%", "square: supports the L∞ and L2 norms only"},
		{"square", attacks.L2, "square=50%", ""},
		{"autoattack-lite", attacks.L2, "apgd-ce=50%", ""},
		{"default", attacks.Linf, "clean@0.1=50%", "clean accuracy has no ε"},
	}
	for _, c := range cases {
		gates, err := ParseGates(c.gates)
		if err != nil {
			t.Fatal(err)
		}
		err = ResolveGates(Config{Attacks: suite(c.suite), Norm: c.norm, Eps: eps}, gates)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("%s %q: %v", c.suite, c.gates, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrUnresolvedGate) {
			t.Errorf("%s %q: got %v, want %q", c.suite, c.gates, err, c.wantErr)
		}
	}
}

func TestCheckNorm(t *testing.T) {
	for _, c := range []struct {
		suite string
		norm  attacks.Norm
		bad   []string
	}{
		{"full", attacks.Linf, nil},
		{"full", attacks.L2, nil},
		{"full", attacks.L1, []string{"square"}},
		{"autoattack-lite", attacks.L1, []string{"square"}},
		{"default", attacks.L2, nil},
	} {
		s, err := Suite(c.suite, SuiteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = CheckNorm(s, c.norm)
		if (err != nil) != (len(c.bad) > 0) {
			t.Errorf("%s under %s: %v", c.suite, c.norm, err)
		}
		for _, b := range c.bad {
			if !errors.Is(err, ErrUnsupportedNorm) || !strings.Contains(err.Error(), b) {
				t.Errorf("%s under %s: %v does not name %s", c.suite, c.norm, err, b)
			}
		}
	}
}

func TestPolicy(t *testing.T) {
	cases := []struct {
		file    string
		want    []string
		wantErr string
	}{
		{"full.toml", []string{"clean=80%", "pgd=0.4", "robust@8/255=30%", "apgd-ce=35%", "robust@4/255=45%", "pgd@4/255=0.5"}, ""},
		{"hash_in_string.toml", []string{"pgd=40%", "clean=80%"}, ""},
		{"unknown_key.toml", nil, "line 5: unknown key \"gate\""},
		{"bad_value.toml", nil, "line 3: gates.pgd: bad gate: threshold 40 is ambiguous: write 40%"},
		{"wrong_type.toml", nil, "line 2: gates.pgd: bad gate: want a threshold such as \"40%\" or 0.4, not a boolean"},
		{"nested_deep.toml", nil, "line 1: gates.8/255.pgd: tables nest one level"},
		{"table_not_eps.toml", nil, "line 1: [gates.pgd]: a table in [gates] is named by its ε"},
		{"syntax.toml", nil, "line 2"},
		{"duplicate.toml", nil, "line 3"},
		{"empty.toml", nil, "no gates"},
		{"missing.toml", nil, "no such file"},
	}
	for _, c := range cases {
		gates, err := LoadPolicy(filepath.Join("testdata", "policy", c.file))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: got %v, want error %q", c.file, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		var got []string
		for _, g := range gates {
			got = append(got, g.Text)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: gates %v, want %v", c.file, got, c.want)
		}
	}
}

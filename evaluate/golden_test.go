package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"testing"

	"github.com/robust-go/robust/attacks"
)

// goldenReport evaluates the tiny fixture with two ε and the
// autoattack-lite suite plus FGSM and PGD, timings zeroed.
func goldenReport(t *testing.T, independent bool) *Report {
	t.Helper()
	m, d := tinyModel(t)
	eps, err := ParseEps("0.05,1/10")
	if err != nil {
		t.Fatal(err)
	}
	suite, err := Suite("fgsm,pgd,apgd-ce,apgd-dlr,square", SuiteOptions{Steps: 10, Queries: 100})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), m, d, Config{
		Eps: eps, Norm: attacks.Linf, Attacks: suite, SuiteName: "golden", BatchSize: 10, Seed: 1,
		Independent: independent, Model: "tiny.onnx", Data: "tiny/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	r.ZeroTimings()
	return r
}

// TestGoldenReports checks the JSON, Markdown, text and JUnit outputs of a
// deterministic evaluation, with gates, against testdata.
func TestGoldenReports(t *testing.T) {
	r := goldenReport(t, false)
	gates, err := ParseGates("clean=50%,pgd=10%,robust@1/10=90%")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckGates(gates); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"report.md", func(b *bytes.Buffer) error { return r.WriteMarkdown(b) }},
		{"report.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report.junit.xml", func(b *bytes.Buffer) error { return r.WriteJUnit(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, f.name, b.Bytes())
	}
	var b bytes.Buffer
	if err := r.WriteCurve(&b, "png"); err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(&b); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("curve: %v", err)
	}
}

// TestReportInvariants checks what theory says of any evaluation: robust
// accuracy never exceeds clean accuracy, the cascade's accuracies never
// rise, the overall accuracy is at most each attack's own (independent
// mode) and every count is consistent.
func TestReportInvariants(t *testing.T) {
	for _, independent := range []bool{false, true} {
		r := goldenReport(t, independent)
		for _, p := range r.Points {
			prev := r.Clean.Value
			for _, a := range p.Attacks {
				if a.Robust.Value > r.Clean.Value+1e-12 {
					t.Errorf("ε=%s %s: robust %v > clean %v", p.EpsText, a.Name, a.Robust.Value, r.Clean.Value)
				}
				if !independent && a.Robust.Value > prev+1e-12 {
					t.Errorf("ε=%s %s: cascade accuracy rose from %v to %v", p.EpsText, a.Name, prev, a.Robust.Value)
				}
				if p.Robust.Value > a.Robust.Value+1e-12 {
					t.Errorf("ε=%s: overall %v above %s's %v", p.EpsText, p.Robust.Value, a.Name, a.Robust.Value)
				}
				if a.Rejected != 0 {
					t.Errorf("ε=%s %s: %d rejected examples", p.EpsText, a.Name, a.Rejected)
				}
				if a.MinNorm != nil && *a.MinNorm > p.Eps+1e-6 {
					t.Errorf("ε=%s %s: perturbation %v beyond ε", p.EpsText, a.Name, *a.MinNorm)
				}
				prev = a.Robust.Value
			}
		}
		// The JSON round-trips.
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Schema != Schema || len(back.Points) != 2 {
			t.Fatalf("JSON round trip: %v, %+v", err, back)
		}
	}
}

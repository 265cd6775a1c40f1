package evaluate

import (
	"cmp"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/robust-go/robust/dataset"
)

// Schema identifies the JSON report format; it changes when fields change
// meaning or go away (new fields may be added within a version).
const Schema = "robust.eval/v2"

// Report is the outcome of an evaluation.
type Report struct {
	Schema  string `json:"schema"`
	Model   string `json:"model"`
	Data    string `json:"data"`
	Samples int    `json:"samples"`
	Norm    string `json:"norm"`
	Suite   string `json:"suite"`
	// Mode is "cascade" (each attack runs on the samples still robust, and
	// an attack's robust accuracy is that after it and all before it) or
	// "independent" (each attack runs on every correct sample and reports
	// its own robust accuracy).
	Mode string `json:"mode"`
	Seed uint64 `json:"seed"`
	// Partial is set when the evaluation was interrupted: Points holds
	// the ε whose every attack ran, gates on the others fail as not
	// measured.
	Partial bool `json:"partial"`
	// Budgets are the ε the evaluation was asked for, as written (a
	// partial report's points may hold fewer).
	Budgets []string `json:"budgets"`
	Clean   Accuracy `json:"clean"`
	Points  []Point  `json:"points"`
	// Sanity is absent when the checks were skipped.
	Sanity          *Sanity      `json:"sanity,omitempty"`
	Flags           []Flag       `json:"flags"`
	Gates           []GateResult `json:"gates"`
	Seconds         float64      `json:"seconds"`
	ImagesPerSecond float64      `json:"images_per_second"`
	// RandomSuite is set when an attack averages over the model's
	// randomness (EoT), as for randomised models (see CheckRandomness).
	RandomSuite bool `json:"random_suite,omitempty"`
	// Reproduction records how to rerun the evaluation (robust eval fills
	// it; absent for library runs without provenance).
	Reproduction *Reproduction `json:"reproduction,omitempty"`
	// MinEps is the distribution of each sample's smallest breaking ε
	// (Config.MinEps, robust eval --min-eps).
	MinEps *MinEps `json:"min_eps,omitempty"`
	// Shard says which slice of the samples a shard report covers
	// (Config.Shard); absent for a whole evaluation and a merged one.
	Shard *ShardInfo `json:"shard,omitempty"`
	// Records holds each sample's outcome, by index (Config.Records,
	// robust eval --samples; always in a shard report).
	Records []SampleRecord `json:"records,omitempty"`
	// SkippedCount and Skipped count and list the files left out of the
	// data because they could not be read (dataset.Dataset.Skipped: an
	// image folder read with --skip-bad), path and reason; absent when
	// none were. They describe the whole split the samples were taken
	// from, so every shard of an evaluation lists the same files.
	SkippedCount int               `json:"skipped_count,omitempty"`
	Skipped      []dataset.BadFile `json:"skipped_files,omitempty"`
}

// setSkipped records the files left out of the data.
func (r *Report) setSkipped(files []dataset.BadFile) {
	r.Skipped, r.SkippedCount = slices.Clone(files), len(files)
}

// Point is the evaluation at one ε.
type Point struct {
	Eps     float64        `json:"eps"`
	EpsText string         `json:"eps_text"`
	Attacks []AttackResult `json:"attacks"`
	// Robust counts the samples that survive every attack.
	Robust  Accuracy `json:"robust"`
	Seconds float64  `json:"seconds"`
}

// AttackResult is one attack's outcome at one ε.
type AttackResult struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	// Skipped says why the attack did not run (then it broke nothing).
	Skipped string `json:"skipped,omitempty"`
	// BlackBox says the attack uses no gradients.
	BlackBox bool `json:"black_box,omitempty"`
	Attacked int  `json:"attacked"`
	Broken   int  `json:"broken"`
	// Robust is the robust accuracy after the attack (see Report.Mode).
	Robust Accuracy `json:"robust"`
	// MeanNorm and MinNorm are the perturbation norms of the examples that
	// broke samples (absent when none did).
	MeanNorm        *float64 `json:"mean_norm,omitempty"`
	MinNorm         *float64 `json:"min_norm,omitempty"`
	Queries         int      `json:"queries"`
	Rejected        int      `json:"rejected"`
	Seconds         float64  `json:"seconds"`
	ImagesPerSecond float64  `json:"images_per_second"`
}

// ZeroTimings clears the wall-clock fields, for reproducible reports.
func (r *Report) ZeroTimings() {
	r.Seconds, r.ImagesPerSecond = 0, 0
	for i := range r.Points {
		p := &r.Points[i]
		p.Seconds = 0
		for j := range p.Attacks {
			p.Attacks[j].Seconds, p.Attacks[j].ImagesPerSecond = 0, 0
		}
	}
}

// Attack returns the result of the named attack at the point.
func (p *Point) Attack(name string) *AttackResult {
	for i := range p.Attacks {
		if p.Attacks[i].Name == name {
			return &p.Attacks[i]
		}
	}
	return nil
}

// sortedPoints returns the points by increasing ε.
func sortedPoints(ps []Point) []Point {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Point) int { return cmp.Compare(a.Eps, b.Eps) })
	return out
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.Flags == nil {
		r.Flags = []Flag{}
	}
	if r.Gates == nil {
		r.Gates = []GateResult{}
	}
	if r.Budgets == nil {
		r.Budgets = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func pct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

func ci(a Accuracy) string { return fmt.Sprintf("[%.1f, %.1f]", 100*a.Low, 100*a.High) }

func optNorm(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.4g", *v)
}

func (r *Report) title() string {
	t := fmt.Sprintf("%s on %s (%d samples), %s, suite %s (%s)", r.Model, r.Data, r.Samples, normSymbol(r.Norm), r.Suite, r.Mode)
	if s := r.Shard; s != nil {
		t += fmt.Sprintf(", shard %d/%d: samples %d to %d of %d", s.Index, s.Count, s.First, s.End-1, s.Total)
	}
	return t
}

func normSymbol(n string) string {
	switch n {
	case "l2":
		return "L2"
	case "l1":
		return "L1"
	}
	return "L∞"
}

// cells returns the attack's table row.
func (a AttackResult) cells() []string {
	if a.Skipped != "" {
		return []string{a.Name, "skipped", "", "", "", "", "", "", ""}
	}
	return []string{a.Name, pct(a.Robust.Value), ci(a.Robust), fmt.Sprint(a.Broken), optNorm(a.MeanNorm), optNorm(a.MinNorm),
		fmt.Sprint(a.Queries), fmt.Sprintf("%.1f", a.ImagesPerSecond), fmt.Sprintf("%.1fs", a.Seconds)}
}

var tableHeader = []string{"attack", "robust acc", "95% CI", "broken", "mean ‖δ‖", "min ‖δ‖", "queries", "img/s", "time"}

// WriteText writes the report as terminal tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "robust eval: %s\n", r.title())
	if r.Partial {
		fmt.Fprintf(tw, "PARTIAL: the evaluation was interrupted; the ε below are complete, the others were not evaluated\n")
	}
	fmt.Fprintf(tw, "clean accuracy %s %s\n", pct(r.Clean.Value), ci(r.Clean))
	for _, p := range r.Points {
		fmt.Fprintf(tw, "\nε = %s\n", p.EpsText)
		fmt.Fprintf(tw, "  %s\n", strings.Join(tableHeader, "\t"))
		for _, a := range p.Attacks {
			fmt.Fprintf(tw, "  %s\n", strings.Join(a.cells(), "\t"))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t(survives every attack)\n", "all", pct(p.Robust.Value), ci(p.Robust))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.MinEps != nil {
		fmt.Fprintf(w, "\nminimal ε: %s\n", r.MinEps.summary())
	}
	if r.SkippedCount > 0 {
		fmt.Fprintf(w, "\n%s\n", r.skippedSummary())
	}
	if r.Sanity != nil {
		fmt.Fprintf(w, "\nsanity: %s\n", r.Sanity.summary(r.Norm))
	}
	if len(r.Flags) > 0 {
		fmt.Fprintf(w, "\nflags:\n")
		for _, f := range r.Flags {
			fmt.Fprintf(w, "  %s %s: %s\n", f.Severity, f.Code, f.Message)
		}
	}
	if len(r.Gates) > 0 {
		fmt.Fprintf(w, "\ngates:\n")
		for _, g := range r.Gates {
			fmt.Fprintf(w, "  %s %s\n", passFail(g.Passed), g.Describe())
			for _, n := range g.Notes {
				fmt.Fprintf(w, "       note: %s\n", n)
			}
		}
	}
	return nil
}

// maxListedSkipped bounds the skipped files a Markdown report lists (a CI
// job summary stays readable when a broken mount skips thousands).
const maxListedSkipped = 20

// skippedSummary says how many files were left out of the data.
func (r *Report) skippedSummary() string {
	return fmt.Sprintf("%d unreadable file(s) were left out of the data (--skip-bad)", r.SkippedCount)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// WriteMarkdown writes the report as GitHub-flavoured Markdown, for CI
// job summaries.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Robustness: %s\n\n", r.Model)
	if r.Partial {
		b.WriteString("> **Partial report**: the evaluation was interrupted; only the ε below were evaluated.\n\n")
	}
	fmt.Fprintf(&b, "%s on %s, %d samples, %s norm, suite `%s` (%s).\n\n", r.Model, r.Data, r.Samples, normSymbol(r.Norm), r.Suite, r.Mode)
	fmt.Fprintf(&b, "**Clean accuracy: %s** %s\n\n", pct(r.Clean.Value), ci(r.Clean))
	for _, p := range r.Points {
		fmt.Fprintf(&b, "### ε = %s\n\n", p.EpsText)
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(tableHeader, " | "), strings.Repeat("---|", len(tableHeader)))
		for _, a := range p.Attacks {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(a.cells(), " | "))
		}
		fmt.Fprintf(&b, "| **all** | **%s** | %s | | | | | | |\n\n", pct(p.Robust.Value), ci(p.Robust))
	}
	if r.Sanity != nil {
		fmt.Fprintf(&b, "Sanity checks: %s.\n\n", r.Sanity.summary(r.Norm))
	}
	if r.MinEps != nil {
		fmt.Fprintf(&b, "**Minimal ε:** %s\n\n", r.MinEps.summary())
	}
	if r.SkippedCount > 0 {
		fmt.Fprintf(&b, "**%s**\n\n", r.skippedSummary())
		for i, f := range r.Skipped {
			if i == maxListedSkipped {
				fmt.Fprintf(&b, "- … and %d more (the JSON report lists them all)\n", len(r.Skipped)-i)
				break
			}
			fmt.Fprintf(&b, "- `%s`: %s\n", f.Path, f.Err)
		}
		b.WriteString("\n")
	}
	if len(r.Flags) > 0 {
		b.WriteString("### Flags\n\n")
		for _, f := range r.Flags {
			icon := "ℹ️"
			if f.Severity == "warning" {
				icon = "⚠️"
			}
			fmt.Fprintf(&b, "- %s **%s**: %s\n", icon, f.Code, f.Message)
		}
		b.WriteString("\n")
	}
	if len(r.Gates) > 0 {
		b.WriteString("### Gates\n\n")
		for _, g := range r.Gates {
			icon := "✅"
			if !g.Passed {
				icon = "❌"
			}
			fmt.Fprintf(&b, "- %s %s\n", icon, g.Describe())
			for _, n := range g.Notes {
				fmt.Fprintf(&b, "  - %s\n", n)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// junit types: the subset of the JUnit XML format CI systems read.
type junitSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []junitSet `xml:"testsuite"`
}

type junitSet struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Time       float64         `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitCase struct {
	Name       string          `xml:"name,attr"`
	Classname  string          `xml:"classname,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Failure    *junitFailure   `xml:"failure,omitempty"`
	Output     string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
}

// WriteJUnit writes one JUnit test case per gate (a single passing
// "robust.eval" case when there are no gates). Test names are stable
// across runs ("robust.gate.pgd@0.1"); the measured value, threshold and
// notes go in properties, the failure message and the output.
func (r *Report) WriteJUnit(w io.Writer) error {
	set := junitSet{Name: "robust eval " + r.Model, Time: r.Seconds, Properties: []junitProperty{
		{"model", r.Model}, {"data", r.Data}, {"norm", r.Norm}, {"suite", r.Suite}, {"mode", r.Mode},
		{"samples", fmt.Sprint(r.Samples)}, {"partial", fmt.Sprint(r.Partial)},
	}}
	for _, g := range r.Gates {
		c := junitCase{Name: "robust.gate." + g.Name, Classname: "robust.gate", Properties: []junitProperty{
			{"gate", g.Gate}, {"metric", g.Metric}, {"eps", g.Eps}, {"threshold", fmt.Sprintf("%.4f", g.Threshold)},
			{"value", fmt.Sprintf("%.4f", g.Value)}, {"measured", fmt.Sprint(g.Measured)}, {"samples", fmt.Sprint(g.Samples)},
		}}
		out := []string{g.Describe()}
		for _, n := range g.Notes {
			out = append(out, "note: "+n)
		}
		c.Output = strings.Join(out, "\n")
		if !g.Passed {
			c.Failure = &junitFailure{Message: g.Describe(), Type: "gate"}
			set.Failures++
		}
		set.Cases = append(set.Cases, c)
	}
	if len(set.Cases) == 0 {
		set.Cases = append(set.Cases, junitCase{Name: "robust.eval", Classname: "robust.eval", Output: r.title()})
	}
	set.Tests = len(set.Cases)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSet{set}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

package evaluate

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Gate is a CI threshold: the accuracy Metric ("clean", "robust" for the
// samples surviving every attack, or an attack's name) must be at least
// Min at ε (the first ε of the evaluation when Eps is empty).
type Gate struct {
	Text   string // as written, e.g. "pgd@8/255=40%"
	Metric string
	Eps    string
	Min    float64 // a fraction in [0,1]
}

// GateResult is a gate checked against a report.
type GateResult struct {
	Gate      string  `json:"gate"`
	Metric    string  `json:"metric"`
	Eps       string  `json:"eps,omitempty"`
	Threshold float64 `json:"threshold"`
	Value     float64 `json:"value"`
	Passed    bool    `json:"passed"`
}

// Describe says what the gate found, e.g. "pgd 31.2% < 40.0% at ε=0.1".
func (g GateResult) Describe() string {
	at, op := "", "≥"
	if g.Eps != "" {
		at = " at ε=" + g.Eps
	}
	if !g.Passed {
		op = "<"
	}
	return fmt.Sprintf("%s %s %s %s%s", g.Metric, pct(g.Value), op, pct(g.Threshold), at)
}

// ParseGates parses a comma-separated list of METRIC[@EPS]=VALUE, VALUE a
// percentage ("40%") or a fraction ("0.4"), as for --fail-under
// 'pgd=40%,clean=80%'.
func ParseGates(s string) ([]Gate, error) {
	var gates []Gate
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("gate %q: want METRIC=VALUE, e.g. pgd=40%%", part)
		}
		g, err := newGate(strings.TrimSpace(key), strings.TrimSpace(val))
		if err != nil {
			return nil, err
		}
		gates = append(gates, g)
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("no gates in %q", s)
	}
	return gates, nil
}

func newGate(key, val string) (Gate, error) {
	g := Gate{Text: key + "=" + val}
	g.Metric, g.Eps, _ = strings.Cut(key, "@")
	if g.Metric == "" {
		return g, fmt.Errorf("gate %q: empty metric", g.Text)
	}
	if g.Eps != "" {
		if _, err := ParseEps(g.Eps); err != nil {
			return g, fmt.Errorf("gate %q: %w", g.Text, err)
		}
	}
	num, percent := strings.CutSuffix(val, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) {
		return g, fmt.Errorf("gate %q: %q is not a percentage or fraction", g.Text, val)
	}
	if percent || v > 1 {
		v /= 100
	}
	if v < 0 || v > 1 {
		return g, fmt.Errorf("gate %q: threshold %s is outside 0–100%%", g.Text, val)
	}
	g.Min = v
	return g, nil
}

// LoadPolicy reads gates from a small TOML policy file:
//
//	# robust policy
//	[gates]
//	clean = "80%"
//	pgd = 0.40
//	"robust@8/255" = "30%"
//
// A top-level fail-under = "pgd=40%,clean=80%" is accepted too.
func LoadPolicy(path string) ([]Gate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	gates, err := parsePolicy(f)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return gates, nil
}

func parsePolicy(r io.Reader) ([]Gate, error) {
	var gates []Gate
	section := ""
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(stripComment(sc.Text()))
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			if !strings.HasSuffix(text, "]") {
				return nil, fmt.Errorf("line %d: bad section header %q", line, text)
			}
			section = strings.TrimSpace(text[1 : len(text)-1])
			if section != "gates" {
				return nil, fmt.Errorf("line %d: unknown section [%s] (want [gates])", line, section)
			}
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want KEY = VALUE, got %q", line, text)
		}
		key, val = unquote(strings.TrimSpace(key)), unquote(strings.TrimSpace(val))
		switch {
		case section == "" && (key == "fail-under" || key == "fail_under"):
			gs, err := ParseGates(val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			gates = append(gates, gs...)
		case section == "gates":
			g, err := newGate(key, val)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			gates = append(gates, g)
		default:
			return nil, fmt.Errorf("line %d: unknown key %q (want fail-under or a [gates] table)", line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("no gates")
	}
	return gates, nil
}

// stripComment removes a # comment outside double quotes.
func stripComment(s string) string {
	quoted := false
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '#' && !quoted:
			return s[:i]
		}
	}
	return s
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// CheckGates evaluates gates against the report and stores the results in
// r.Gates. It fails, before storing anything, when a gate names a metric
// or ε the report does not have.
func (r *Report) CheckGates(gates []Gate) error {
	if len(r.Points) == 0 {
		return fmt.Errorf("gates: the report has no ε")
	}
	var results []GateResult
	for _, g := range gates {
		p := &r.Points[0]
		if g.Eps != "" {
			e, _ := ParseEps(g.Eps)
			i := slices.IndexFunc(r.Points, func(p Point) bool { return float32(p.Eps) == e[0].Value })
			if i < 0 {
				return fmt.Errorf("gate %q: ε %s was not evaluated", g.Text, g.Eps)
			}
			p = &r.Points[i]
		}
		res := GateResult{Gate: g.Text, Metric: g.Metric, Threshold: g.Min}
		switch g.Metric {
		case "clean":
			res.Value = r.Clean.Value
		case "robust", "all":
			res.Value, res.Eps = p.Robust.Value, p.EpsText
		default:
			a := p.Attack(g.Metric)
			if a == nil {
				names := []string{"clean", "robust"}
				for _, a := range p.Attacks {
					names = append(names, a.Name)
				}
				return fmt.Errorf("gate %q: unknown metric %q (have %s)", g.Text, g.Metric, strings.Join(names, ", "))
			}
			res.Value, res.Eps = a.Robust.Value, p.EpsText
		}
		// Compare in whole samples' worth of precision, so that 40% of 1000
		// samples passes a 40% gate despite rounding.
		res.Passed = res.Value >= g.Min-1e-9
		results = append(results, res)
	}
	r.Gates = results
	return nil
}

// GateFailure returns a one-line reason when a gate is missed, "" when
// all pass.
func (r *Report) GateFailure() string {
	var failed []string
	for _, g := range r.Gates {
		if !g.Passed {
			failed = append(failed, g.Describe())
		}
	}
	switch len(failed) {
	case 0:
		return ""
	case 1:
		return "gate missed: " + failed[0]
	}
	return fmt.Sprintf("%d gates missed: %s", len(failed), strings.Join(failed, "; "))
}

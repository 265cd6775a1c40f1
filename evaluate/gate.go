package evaluate

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/robust-go/robust/attacks"
)

// Errors of gates and policies, wrapped with the gate and the reason.
var (
	// ErrBadGate is a gate or threshold that does not parse.
	ErrBadGate = errors.New("bad gate")
	// ErrUnresolvedGate is a gate the evaluation cannot measure: an unknown
	// metric, an attack the suite does not run or cannot run under the
	// norm, or an ε that is not evaluated.
	ErrUnresolvedGate = errors.New("gate cannot be evaluated")
	// ErrUnsupportedNorm is an attack asked to run under a norm it does
	// not support (see [AttackSpec.Norms]).
	ErrUnsupportedNorm = errors.New("attack does not support the norm")
)

// Gate is a CI threshold: the accuracy Metric ("clean", "robust" for the
// samples surviving every attack, or an attack's name) must be at least
// Min at ε (the first ε of the evaluation when Eps is empty).
type Gate struct {
	Text   string // as written, e.g. "pgd@8/255=40%"
	Metric string
	Eps    string
	Min    float64 // a fraction in [0,1]
	// File and Line say where a policy file defines the gate (empty and
	// 0: not from a file; Line alone: from ParsePolicy's text).
	File string
	Line int
}

// where says where a gate comes from, for error messages.
func (g Gate) where() string {
	switch {
	case g.File != "" && g.Line > 0:
		return fmt.Sprintf("%s:%d: gate %q", g.File, g.Line, g.Text)
	case g.Line > 0:
		return fmt.Sprintf("line %d: gate %q", g.Line, g.Text)
	}
	return fmt.Sprintf("gate %q", g.Text)
}

// GateResult is a gate checked against a report.
type GateResult struct {
	// Name identifies the gate stably across runs: the metric, and for
	// attack and robust gates the ε it was measured at ("pgd@0.1",
	// "clean"). JUnit test names are "robust.gate." + Name.
	Name      string  `json:"name"`
	Gate      string  `json:"gate"`
	Metric    string  `json:"metric"`
	Eps       string  `json:"eps,omitempty"`
	Threshold float64 `json:"threshold"`
	Value     float64 `json:"value"`
	// Measured says whether Value was measured: on attacked samples, or
	// determined without attacking for the reason in Reason (no sample
	// was left to attack). A gate that was not measured fails.
	Measured bool `json:"measured"`
	// Samples counts the samples the value was measured on: those
	// attacked (attack and robust gates; for robust, by the attack that
	// attacked most) or those classified (clean gates).
	Samples int    `json:"samples"`
	Passed  bool   `json:"passed"`
	Reason  string `json:"reason,omitempty"`
	// Notes are what a reader of the gate must know: skipped attacks,
	// rejected adversarial examples and the evaluation's warnings.
	Notes []string `json:"notes"`
}

// Describe says what the gate found, e.g. "pgd 31.2% < 40.0% at ε=0.1".
func (g GateResult) Describe() string {
	at, op := "", "≥"
	if g.Eps != "" {
		at = " at ε=" + g.Eps
	}
	if !g.Measured {
		return fmt.Sprintf("%s not measured%s (%s); needs %s", g.Metric, at, g.Reason, pct(g.Threshold))
	}
	if !g.Passed {
		op = "<"
	}
	s := fmt.Sprintf("%s %s %s %s%s", g.Metric, pct(g.Value), op, pct(g.Threshold), at)
	if g.Reason != "" {
		s += " (" + g.Reason + ")"
	}
	return s
}

// ParseThreshold reads a gate threshold: a percentage ("40%", "40.5%") or
// a fraction in [0,1] ("0.4", "1"). A bare number above 1 is refused as
// ambiguous, suggesting the percentage.
func ParseThreshold(s string) (float64, error) {
	s = strings.TrimSpace(s)
	num, percent := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: threshold %q is neither a percentage (40%%) nor a fraction (0.4)", ErrBadGate, s)
	}
	return threshold(v, percent, s)
}

func threshold(v float64, percent bool, text string) (float64, error) {
	switch {
	case percent && (v < 0 || v > 100):
		return 0, fmt.Errorf("%w: threshold %s is outside 0%%–100%%", ErrBadGate, text)
	case percent:
		return v / 100, nil
	case v > 1:
		return 0, fmt.Errorf("%w: threshold %s is ambiguous: write %s%% for a percentage, or a fraction in [0,1] such as %g",
			ErrBadGate, text, text, v/100)
	case v < 0:
		return 0, fmt.Errorf("%w: threshold %s is negative", ErrBadGate, text)
	}
	return v, nil
}

// ParseGates parses a comma-separated list of METRIC[@EPS]=THRESHOLD (see
// [ParseThreshold]), e.g. "pgd=40%,clean=0.8,robust@8/255=30%".
func ParseGates(s string) ([]Gate, error) {
	var gates []Gate
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w %q: want METRIC=THRESHOLD, e.g. pgd=40%%", ErrBadGate, part)
		}
		key = strings.TrimSpace(key)
		g, err := newGate(key, strings.TrimSpace(val))
		if err != nil {
			return nil, err
		}
		gates = append(gates, g)
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("%w: no gates in %q", ErrBadGate, s)
	}
	return gates, nil
}

// newGate makes a gate of a METRIC[@EPS] key and a threshold text.
func newGate(key, val string) (Gate, error) {
	v, err := ParseThreshold(val)
	if err != nil {
		return Gate{}, fmt.Errorf("gate %q: %w", key+"="+val, err)
	}
	return gateAt(key, val, v)
}

func gateAt(key, val string, threshold float64) (Gate, error) {
	g := Gate{Text: key + "=" + val, Min: threshold}
	g.Metric, g.Eps, _ = strings.Cut(key, "@")
	g.Metric, g.Eps = strings.TrimSpace(g.Metric), strings.TrimSpace(g.Eps)
	if g.Metric == "" {
		return g, fmt.Errorf("%w %q: empty metric", ErrBadGate, g.Text)
	}
	if g.Eps != "" {
		e, err := ParseEps(g.Eps)
		if err != nil {
			return g, fmt.Errorf("%w %q: %w", ErrBadGate, g.Text, err)
		}
		if len(e) != 1 {
			return g, fmt.Errorf("%w %q: one ε per gate", ErrBadGate, g.Text)
		}
	}
	return g, nil
}

// LoadPolicy reads gates from a TOML policy file:
//
//	# robust policy
//	fail_under = "clean=80%"       # the --fail-under syntax, optional
//
//	[gates]                        # METRIC[@EPS] = THRESHOLD
//	pgd = 0.40                     # at the first ε evaluated
//	"robust@8/255" = "30%"
//
//	[gates."4/255"]                # a table per ε
//	robust = "45%"
//	apgd-ce = "45%"
//
// Thresholds are percentages ("40%") or fractions in [0,1]. Unknown keys
// and bad values are errors naming the key and its line.
func LoadPolicy(path string) ([]Gate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	gates, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	for i := range gates {
		gates[i].File = path
	}
	return gates, nil
}

// ParsePolicy reads gates from the text of a policy file (see
// [LoadPolicy]), in the order they are written.
func ParsePolicy(data []byte) ([]Gate, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("line %d: %s", row, de.Error())
		}
		return nil, err
	}
	lines, err := keyLines(data)
	if err != nil {
		return nil, err
	}
	var gates []Gate
	for key, v := range doc {
		line := lines.of(key)
		switch key {
		case "fail_under", "fail-under":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("line %d: %s must be a string such as \"pgd=40%%,clean=80%%\", not %s", line, key, tomlType(v))
			}
			gs, err := ParseGates(s)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, key, err)
			}
			for i := range gs {
				gs[i].Line = line
			}
			gates = append(gates, gs...)
		case "gates":
			t, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("line %d: gates must be a table ([gates]), not %s", line, tomlType(v))
			}
			gs, err := tableGates(t, []string{"gates"}, "", lines)
			if err != nil {
				return nil, err
			}
			gates = append(gates, gs...)
		default:
			return nil, fmt.Errorf("line %d: unknown key %q (a policy has fail_under and a [gates] table)", line, key)
		}
	}
	if len(gates) == 0 {
		return nil, fmt.Errorf("%w: the policy has no gates", ErrBadGate)
	}
	slices.SortStableFunc(gates, func(a, b Gate) int { return a.Line - b.Line })
	return gates, nil
}

// tableGates reads the gates of a [gates] table (eps "") or of one of its
// per-ε tables.
func tableGates(t map[string]any, path []string, eps string, lines keyLineMap) ([]Gate, error) {
	var gates []Gate
	for key, v := range t {
		kp := append(slices.Clone(path), key)
		line := lines.of(kp...)
		name := strings.Join(kp, ".")
		if sub, ok := v.(map[string]any); ok {
			if eps != "" {
				return nil, fmt.Errorf("line %d: %s: tables nest one level: [gates.\"EPS\"]", line, name)
			}
			if _, err := ParseEps(key); err != nil {
				return nil, fmt.Errorf("line %d: [%s]: a table in [gates] is named by its ε, such as \"8/255\": %w", line, name, err)
			}
			gs, err := tableGates(sub, kp, key, lines)
			if err != nil {
				return nil, err
			}
			gates = append(gates, gs...)
			continue
		}
		if eps != "" && strings.Contains(key, "@") {
			return nil, fmt.Errorf("line %d: %s: the table gives the ε; write the metric alone", line, name)
		}
		var (
			th   float64
			text string
			err  error
		)
		switch x := v.(type) {
		case string:
			text = x
			th, err = ParseThreshold(x)
		case float64:
			text = strconv.FormatFloat(x, 'g', -1, 64)
			th, err = threshold(x, false, text)
		case int64:
			text = strconv.FormatInt(x, 10)
			th, err = threshold(float64(x), false, text)
		default:
			err = fmt.Errorf("%w: want a threshold such as \"40%%\" or 0.4, not %s", ErrBadGate, tomlType(v))
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, name, err)
		}
		gk := key
		if eps != "" {
			gk = key + "@" + eps
		}
		g, err := gateAt(gk, text, th)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, name, err)
		}
		g.Line = line
		gates = append(gates, g)
	}
	return gates, nil
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// keyLineMap maps dotted key paths (joined by NUL) to the line where they
// are defined.
type keyLineMap map[string]int

// of returns the line of a key path, or of its nearest defined parent
// (keys inside inline tables have none of their own).
func (m keyLineMap) of(path ...string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := m[strings.Join(path[:n], "\x00")]; ok {
			return l
		}
	}
	return 0
}

// keyLines finds the line of every table header and key in a TOML
// document with go-toml's parser; toml.Unmarshal has already validated it.
func keyLines(data []byte) (keyLineMap, error) {
	lines := keyLineMap{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	keyOf := func(n *unstable.Node) ([]string, int) {
		var parts []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if line == 0 {
				line = p.Shape(k.Raw).Start.Line
			}
			parts = append(parts, string(k.Data))
		}
		return parts, line
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var line int
			table, line = keyOf(e)
			lines[strings.Join(table, "\x00")] = line
		case unstable.KeyValue:
			parts, line := keyOf(e)
			full := append(slices.Clone(table), parts...)
			for i := len(table) + 1; i <= len(full); i++ { // dotted keys define their parents
				if _, ok := lines[strings.Join(full[:i], "\x00")]; !ok {
					lines[strings.Join(full[:i], "\x00")] = line
				}
			}
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	return lines, nil
}

// CheckNorm returns an error wrapping [ErrUnsupportedNorm] naming every
// attack of the suite that cannot run under norm n. Each attack declares
// what it supports ([attacks.Attack.Supports]); the class count is not
// known before the model is loaded, so only the norm is checked here (an
// attack that needs more classes than a model has is skipped, and says so,
// when the evaluation runs).
func CheckNorm(suite []attacks.Attack, n attacks.Norm) error {
	var errs []error
	for _, a := range suite {
		if err := a.Supports(n, math.MaxInt32); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrUnsupportedNorm, err))
		}
	}
	return errors.Join(errs...)
}

// ResolveGates checks, before an evaluation runs, that every gate can be
// measured by it: the metric is clean, robust or an attack of cfg.Attacks
// that runs under cfg.Norm, and the gate's ε is one of cfg.Eps. The error
// wraps [ErrUnresolvedGate] and names every gate that cannot be.
func ResolveGates(cfg Config, gates []Gate) error {
	var errs []error
	for _, g := range gates {
		if err := resolveGate(cfg, g); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrUnresolvedGate, g.where(), err))
		}
	}
	return errors.Join(errs...)
}

func resolveGate(cfg Config, g Gate) error {
	if g.Eps != "" {
		if g.Metric == "clean" {
			return errors.New("clean accuracy has no ε")
		}
		if _, ok := epsIndex(cfg.Eps, g.Eps); !ok {
			var have []string
			for _, e := range cfg.Eps {
				have = append(have, e.Text)
			}
			return fmt.Errorf("ε %s is not evaluated (the evaluation's ε: %s)", g.Eps, strings.Join(have, ", "))
		}
	}
	switch g.Metric {
	case "clean", "robust", "all":
		return nil
	}
	i := slices.IndexFunc(cfg.Attacks, func(a attacks.Attack) bool { return a.Name() == g.Metric })
	if i < 0 {
		names := []string{"clean", "robust"}
		for _, a := range cfg.Attacks {
			names = append(names, a.Name())
		}
		return fmt.Errorf("unknown metric %q (this evaluation measures %s)", g.Metric, strings.Join(names, ", "))
	}
	return CheckNorm(cfg.Attacks[i:i+1], cfg.Norm)
}

// epsIndex finds a gate's ε text among the evaluation's budgets, comparing
// values (so "0.1" finds "1/10").
func epsIndex(eps []Eps, text string) (int, bool) {
	e, err := ParseEps(text)
	if err != nil || len(e) != 1 {
		return 0, false
	}
	i := slices.IndexFunc(eps, func(x Eps) bool { return x.Value == e[0].Value })
	return i, i >= 0
}

// CheckGates evaluates gates against the report and stores the results in
// r.Gates. A gate whose metric was not measured — its attack was skipped,
// or the report is partial and lacks it — fails with the reason. It
// returns an error, before storing anything, when a gate names a metric or
// ε the evaluation did not have (see [ResolveGates], which finds these
// before the evaluation runs).
func (r *Report) CheckGates(gates []Gate) error {
	var results []GateResult
	var errs []error
	for _, g := range gates {
		res, err := r.checkGate(g)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrUnresolvedGate, g.where(), err))
			continue
		}
		results = append(results, res)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.Gates = results
	return nil
}

func (r *Report) checkGate(g Gate) (GateResult, error) {
	res := GateResult{Name: g.Metric, Gate: g.Text, Metric: g.Metric, Threshold: g.Min, Notes: []string{}}
	finish := func() (GateResult, error) {
		// Compare with a margin far below one sample's worth, so that 40%
		// of 1000 samples passes a 40% gate despite rounding.
		res.Passed = res.Measured && res.Value >= g.Min-1e-9
		return res, nil
	}
	if g.Metric == "clean" {
		if g.Eps != "" {
			return res, errors.New("clean accuracy has no ε")
		}
		res.Value, res.Samples = r.Clean.Value, r.Clean.Total
		res.Measured = r.Clean.Total > 0
		if !res.Measured {
			res.Reason = "no samples were classified"
		}
		return finish()
	}
	// The ε: the gate's, or the first of the evaluation (the first point,
	// or for a report interrupted before any point, unknown).
	// The stable name uses the ε as the evaluation was asked for, also
	// when an interrupted run never reached it.
	var p *Point
	switch {
	case g.Eps != "":
		e, _ := ParseEps(g.Eps)
		i := slices.IndexFunc(r.Points, func(p Point) bool { return float32(p.Eps) == e[0].Value })
		if i >= 0 {
			p = &r.Points[i]
			res.Eps = p.EpsText
		} else if b := r.budgetEps(); len(b) > 0 {
			if j, ok := epsIndex(b, g.Eps); ok {
				res.Eps = b[j].Text
			}
		}
		if res.Eps == "" {
			res.Eps = g.Eps
		}
	case len(r.Points) > 0:
		p = &r.Points[0]
		res.Eps = p.EpsText
	case len(r.Budgets) > 0:
		res.Eps = r.Budgets[0]
	}
	if res.Eps != "" {
		res.Name += "@" + res.Eps
	}
	if p == nil {
		if !r.Partial {
			return res, fmt.Errorf("ε %s was not evaluated", cmpOr(g.Eps, "(none)"))
		}
		res.Reason = "the evaluation was interrupted before this ε"
		return finish()
	}
	for _, f := range r.Flags {
		if f.Severity == "warning" {
			res.Notes = append(res.Notes, f.Code+": "+f.Message)
		}
	}
	if g.Metric == "robust" || g.Metric == "all" {
		res.Value = p.Robust.Value
		var skipped []string
		for _, a := range p.Attacks {
			if a.Skipped != "" {
				skipped = append(skipped, a.Name)
				res.Notes = append(res.Notes, fmt.Sprintf("%s skipped: %s", a.Name, a.Skipped))
				continue
			}
			res.Samples = max(res.Samples, a.Attacked)
			if a.Rejected > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%s: %d adversarial examples rejected (outside the budget or the image range)", a.Name, a.Rejected))
			}
		}
		switch {
		case len(skipped) == len(p.Attacks):
			res.Reason = "every attack was skipped"
		case res.Samples == 0 && r.Clean.Correct == 0:
			res.Measured, res.Reason = true, "clean accuracy is 0, so robust accuracy is 0 without attacking"
		case res.Samples == 0:
			res.Reason = "no sample was attacked"
		default:
			res.Measured = true
			if len(skipped) > 0 {
				res.Reason = "without " + strings.Join(skipped, ", ")
			}
		}
		return finish()
	}
	a := p.Attack(g.Metric)
	if a == nil {
		names := []string{"clean", "robust"}
		for _, a := range p.Attacks {
			names = append(names, a.Name)
		}
		return res, fmt.Errorf("unknown metric %q (the report has %s)", g.Metric, strings.Join(names, ", "))
	}
	res.Value, res.Samples = a.Robust.Value, a.Attacked
	if a.Rejected > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d adversarial examples rejected (outside the budget or the image range)", a.Rejected))
	}
	switch {
	case a.Skipped != "":
		res.Reason = g.Metric + " was skipped: " + a.Skipped
	case a.Attacked > 0:
		res.Measured = true
	case r.Clean.Correct == 0:
		res.Measured, res.Reason = true, "clean accuracy is 0, so robust accuracy is 0 without attacking"
	case r.Mode == "cascade" && a.Robust.Correct == 0:
		res.Measured, res.Reason = true, "earlier attacks of the cascade broke every sample"
	default:
		res.Reason = "no sample was attacked"
	}
	return finish()
}

// budgetEps parses the report's budgets.
func (r *Report) budgetEps() []Eps {
	var out []Eps
	for _, b := range r.Budgets {
		if e, err := ParseEps(b); err == nil && len(e) == 1 {
			out = append(out, e[0])
		}
	}
	return out
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
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

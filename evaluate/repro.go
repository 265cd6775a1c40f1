package evaluate

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/robust-go/robust/attacks"
)

// Reproduction records what is needed to rerun an evaluation and get the
// same numbers: the software, the exact model and data, the sample
// selection, the suite with every setting and the seed. The caller fills
// the provenance ([Config.Reproduction]); [Run] adds the suite and seed.
type Reproduction struct {
	// Robust and ORT are the versions of robust (with its VCS revision)
	// and of ONNX Runtime.
	Robust string `json:"robust"`
	ORT    string `json:"onnxruntime"`
	// ModelSHA256 is the SHA-256 of the model file as given (before any
	// preprocessing robust prepends).
	ModelSHA256 string `json:"model_sha256"`
	// Data and Split are the data specification and split; Selection says
	// which samples were used ("first 1000 of 10000").
	Data      string `json:"data"`
	Split     string `json:"split"`
	Selection string `json:"selection"`
	// Command is the command line.
	Command []string `json:"command,omitempty"`
	// Norm, Eps, Mode and Seed repeat the threat model, mode and seed.
	Norm string   `json:"norm"`
	Eps  []string `json:"eps"`
	Mode string   `json:"mode"`
	Seed uint64   `json:"seed"`
	// Attacks lists the suite in order, each with all its settings.
	Attacks []AttackSettings `json:"attacks"`
}

// AttackSettings is one attack of a suite with all its settings.
type AttackSettings struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	// Type is the attack's Go type ("attacks.APGD"); Settings its fields
	// with snake_case names ("step_ratio"), zero values meaning the
	// defaults the label spells out.
	Type     string          `json:"type"`
	Settings json.RawMessage `json:"settings"`
}

// suiteSettings describes a suite for a report.
func suiteSettings(suite []attacks.Attack) ([]AttackSettings, error) {
	out := make([]AttackSettings, len(suite))
	for i, a := range suite {
		raw, err := settingsJSON(a)
		if err != nil {
			return nil, fmt.Errorf("evaluate: settings of %s: %w", a.Name(), err)
		}
		out[i] = AttackSettings{Name: a.Name(), Label: a.String(), Type: fmt.Sprintf("%T", a), Settings: raw}
	}
	return out, nil
}

// settingsJSON marshals an attack's settings struct with its field names
// in snake_case, the convention of every JSON robust writes: the attacks
// are plain Go structs without JSON tags, so the names are converted here,
// in the one place that serialises them.
func settingsJSON(a attacks.Attack) (json.RawMessage, error) {
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return raw, nil // not an object: keep it as it is
	}
	snake := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		snake[snakeCase(k)] = v
	}
	return json.Marshal(snake)
}

// snakeCase turns a Go field name into snake_case: "StepRatio" →
// "step_ratio", "EoT" → "eot", "AlphaMax" → "alpha_max".
func snakeCase(name string) string {
	if name == "EoT" { // an abbreviation in mixed case: one word
		return "eot"
	}
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			// A new word starts at an upper-case letter that follows a
			// lower-case one, or that precedes one inside an acronym.
			if i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

package evaluate

import (
	"encoding/json"
	"fmt"

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
	// Type is the attack's Go type ("attacks.APGD"); Settings its fields,
	// zero values meaning the defaults the label spells out.
	Type     string          `json:"type"`
	Settings json.RawMessage `json:"settings"`
}

// suiteSettings describes a suite for a report.
func suiteSettings(suite []attacks.Attack) ([]AttackSettings, error) {
	out := make([]AttackSettings, len(suite))
	for i, a := range suite {
		raw, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("evaluate: settings of %s: %w", a.Name(), err)
		}
		out[i] = AttackSettings{Name: a.Name(), Label: a.String(), Type: fmt.Sprintf("%T", a), Settings: raw}
	}
	return out, nil
}

package train

import (
	"bytes"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/internal/testenv"
)

// TestErrorPrefix checks that the errors of the exported functions start
// with "train: " once, also where they wrap another of the package's
// errors.
func TestErrorPrefix(t *testing.T) {
	emptyLog, err := ReadLog(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	data := synthData(8, 1, 8, 8, 4, 1)
	tests := []struct {
		name string
		err  func() error
	}{
		{"method", func() error { _, err := ParseMethod("magic"); return err }},
		{"schedule", func() error { _, err := ParseSchedule("linear", 0.1); return err }},
		{"schedule milestone", func() error { _, err := ParseSchedule("piecewise:2", 0.1); return err }},
		{"log", func() error { _, err := ReadLog(strings.NewReader("{not json\n")); return err }},
		{"curves", func() error { return emptyLog.WriteCurves(new(bytes.Buffer), "png") }},
		{"sgd", func() error {
			return SGD{}.Step([]*Param{{Name: "w", Data: make([]float32, 2), Grad: make([]float32, 1)}}, 0.1)
		}},
		{"no graph", func() error {
			_, err := NewFromGraph(nil, tinyBNNet(1, 8, 8, 4, 1), nil, data, nil, smallConfig(Natural))
			return err
		}},
		{"bad method", func() error {
			cfg := smallConfig(Natural)
			cfg.Method = "magic"
			_, err := New(nil, tinyBNNet(1, 8, 8, 4, 1), data, nil, cfg)
			return err
		}},
		{"diverged", func() error { return &DivergedError{Step: 3, Pass: 1, What: "the loss is NaN"} }},
		{"interrupted", func() error { return ErrInterrupted }},
	}
	for _, tt := range tests {
		if err := liberr.Check(tt.err(), "train"); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// Data that does not fit the model: the error comes from New's checks
	// after the engine is built.
	_, err = New(testenv.ORT(t), smallCNN(t, 8, 4), synthData(8, 3, 8, 8, 4, 1), nil, smallConfig(Natural))
	if err := liberr.Check(err, "train"); err != nil {
		t.Error(err)
	}
}

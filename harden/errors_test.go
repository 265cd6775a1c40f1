package harden

import (
	"context"
	"errors"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/onnxgraph"
)

// TestErrorPrefix checks that the errors of the exported functions other
// than Prepare (see TestPrepareRejects) start with "harden: " once, and
// still match their sentinels.
func TestErrorPrefix(t *testing.T) {
	p, err := Prepare(load(t, "torch_resnetish.onnx"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	noOutputs := onnxgraph.NewBuilder("g")
	noOutputs.Input("x", onnxgraph.Float, onnxgraph.Shape{onnxgraph.D(1), onnxgraph.D(2)})
	tests := []struct {
		name string
		err  func() error
		want error
	}{
		{"export length", func() error {
			_, err := p.Export(map[string][]float32{p.Params[0]: {1}}, "")
			return err
		}, nil},
		{"export unknown", func() error {
			_, err := p.Export(map[string][]float32{"nope": {1}}, "")
			return err
		}, nil},
		{"run without plan", func() error {
			_, err := Run(context.Background(), nil, &Plan{}, nil, nil, Config{})
			return err
		}, nil},
		{"no outputs", func() error { _, err := CheckTrainable(noOutputs.Model()); return err }, ErrNotTrainable},
	}
	for _, tt := range tests {
		err := tt.err()
		if err := liberr.Check(err, "harden"); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v is not %v", tt.name, err, tt.want)
		}
	}
}

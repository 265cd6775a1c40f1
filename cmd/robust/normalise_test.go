package main

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/evaluate"
	"github.com/robust-go/robust/harden"
	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
)

// TestMeanStdMeanTheSameEverywhere checks that --range, --mean and --std
// make harden feed the model exactly what eval feeds it: the logits of
// harden's trainable model and of eval's prepared model agree on random
// images in [0,1].
func TestMeanStdMeanTheSameEverywhere(t *testing.T) {
	env := testenv.ORT(t)
	const fixture = "../../harden/testdata/torch_normalized_input.onnx"
	m, err := onnxgraph.Load(fixture)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4*28*28)
	for i := range x {
		x[i] = r.Float32()
	}
	shape := [3]int{1, 28, 28}
	logits := func(m *onnxgraph.Model) []float32 {
		am, err := attacks.NewONNXModel(env, m, attacks.ModelOptions{Shape: shape})
		if err != nil {
			t.Fatal(err)
		}
		defer am.Close()
		out := make([]float32, 4*am.Classes())
		if err := am.Logits(x, 4, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []InputFlags{
		{Range: "0,1", Mean: "0.286", Std: "0.353", Layout: "auto"},
		{Range: "0,255", Mean: "72.93", Std: "90.015", Layout: "auto"},
		{Range: "0,255", Layout: "auto"},
		{Range: "0,1", Std: "0.5", Layout: "auto"},
	} {
		ct, err := c.contract()
		if err != nil {
			t.Fatal(err)
		}
		evalModel, _, err := evaluate.Prepare(m, ct, shape)
		if err != nil {
			t.Fatal(err)
		}
		h := HardenCmd{InputFlags: c}
		mean, std, err := h.normalisation()
		if err != nil {
			t.Fatal(err)
		}
		plan, err := harden.Prepare(m, harden.Options{Mean: mean, Std: std})
		if err != nil {
			t.Fatal(err)
		}
		want, got := logits(evalModel), logits(plan.Trainable)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Errorf("%+v: logit %d: harden %v, eval %v", c, i, got[i], want[i])
				break
			}
		}
	}
}

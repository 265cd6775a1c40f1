package zoo_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/zoo"
)

// TestRunInORT exports every zoo model to a file, reloads it, runs a batch
// of two images through it in ONNX Runtime and checks the logits.
func TestRunInORT(t *testing.T) {
	env := testenv.ORT(t)
	for _, in := range zoo.List() {
		t.Run(in.Name, func(t *testing.T) {
			built, err := zoo.Build(in.Name, zoo.Options{Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), in.Name+".onnx")
			if err := onnxgraph.Save(path, built); err != nil {
				t.Fatal(err)
			}
			m, err := onnxgraph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := zoo.ParamCount(m); got != in.Params {
				t.Errorf("reloaded model has %d parameters, want %d", got, in.Params)
			}
			data, err := onnxgraph.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			s, err := env.NewSession(data, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()

			shape := []int64{2, in.InputShape[0], in.InputShape[1], in.InputShape[2]}
			x := make([]float32, shape[0]*shape[1]*shape[2]*shape[3])
			for i := range x {
				x[i] = float32(math.Mod(float64(i)*0.618034, 1)) // in [0,1)
			}
			out, err := s.RunTensors(&ort.Tensor{Shape: shape, Data: x})
			if err != nil {
				t.Fatal(err)
			}
			want := []int64{2, int64(in.Classes)}
			if len(out) != 1 || !slices.Equal(out[0].Shape, want) {
				t.Fatalf("outputs %v, want logits %v", out, want)
			}
			logits := out[0].Data.([]float32)
			for _, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logits %v are not finite", logits)
				}
			}
			if slices.Equal(logits[:in.Classes], logits[in.Classes:]) {
				t.Errorf("two different images gave the same logits %v", logits)
			}
		})
	}
}

package ort

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewSessionWith(t *testing.T) {
	env := testEnv(t)
	dir := t.TempDir()
	cases := []struct {
		name    string
		opts    SessionOptions
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "zero"},
		{name: "spin-on", opts: SessionOptions{Spinning: SpinOn}},
		{name: "spin-off", opts: SessionOptions{Spinning: SpinOff}},
		{name: "varying-shapes", opts: SessionOptions{VaryingShapes: true}},
		{name: "no-arena", opts: SessionOptions{NoArena: true}},
		{name: "bad-spinning", opts: SessionOptions{Spinning: Spinning(7)}, wantErr: "unknown spinning setting 7"},
		{
			name: "optimized-model", opts: SessionOptions{OptimizedModelPath: filepath.Join(dir, "opt.onnx")},
			check: func(t *testing.T) {
				if st, err := os.Stat(filepath.Join(dir, "opt.onnx")); err != nil || st.Size() == 0 {
					t.Errorf("optimized model not written: %v", err)
				}
			},
		},
		{
			name: "profile", opts: SessionOptions{ProfilePrefix: filepath.Join(dir, "prof")},
			check: func(t *testing.T) {
				files, _ := filepath.Glob(filepath.Join(dir, "prof*.json"))
				if len(files) != 1 {
					t.Fatalf("profile files %v, want one", files)
				}
				data, err := os.ReadFile(files[0])
				if err != nil || !strings.Contains(string(data), `"op_name"`) {
					t.Errorf("profile has no operator events (err %v)", err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := env.NewSessionWith(addModel(t), []string{"x", "y"}, []string{"z"}, c.opts)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := s.RunTensors(&Tensor{Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, &Tensor{Shape: []int64{1, 4}, Data: []float32{1, 1, 1, 1}})
			if err != nil {
				t.Fatal(err)
			}
			if !equal(out[0].Data.([]float32), []float32{2, 3, 4, 5}) {
				t.Errorf("z = %v", out[0].Data)
			}
			// A second batch size: sessions take any batch, whatever
			// their memory options.
			out, err = s.RunTensors(&Tensor{Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8}}, &Tensor{Shape: []int64{2, 4}, Data: []float32{1, 1, 1, 1, 2, 2, 2, 2}})
			if err != nil {
				t.Fatal(err)
			}
			if !equal(out[0].Data.([]float32), []float32{2, 3, 4, 5, 7, 8, 9, 10}) {
				t.Errorf("z = %v at batch 2", out[0].Data)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t)
			}
		})
	}
}

package torchref

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
)

func TestRelErr(t *testing.T) {
	for _, tc := range []struct {
		name       string
		got, want  []float32
		floor, err float64
	}{
		{"equal", []float32{1, -2}, []float32{1, -2}, 0, 0},
		{"relative to the largest", []float32{1.5, -2}, []float32{1, -2}, 0, 0.25},
		{"zero reference", []float32{0.5, 0}, []float32{0, 0}, 0, 0.5},
		{"floored scale", []float32{1e-6, 0}, []float32{1e-12, 0}, 1e-3, 1e-3},
	} {
		if got := RelErr(tc.got, tc.want, tc.floor); math.Abs(got-tc.err) > 1e-7 {
			t.Errorf("%s: RelErr = %g, want %g", tc.name, got, tc.err)
		}
	}
}

// TestPass checks the criterion: against PyTorch's float32 gradients when
// there are no float64 ones; against the float64 ones otherwise, up to
// PyTorch float32's own error where that exceeds the tolerance.
func TestPass(t *testing.T) {
	exact := func(in float64, params ...float64) *Errors {
		e := &Errors{Input: in, Params: map[string]float64{}}
		for i, p := range params {
			e.Params[string(rune('a'+i))] = p
		}
		return e
	}
	for _, tc := range []struct {
		name string
		r    Result
		want bool
	}{
		{"float32 only, within", Result{InputErr: 1e-6, ParamErr: 1e-4}, true},
		{"float32 only, parameter off", Result{InputErr: 1e-6, ParamErr: 2e-3}, false},
		{"float32 only, input off", Result{InputErr: 2e-3, ParamErr: 1e-6}, false},
		// A float32 disagreement that the float64 gradients side with robust on.
		{"exact within, float32 off", Result{InputErr: 5e-3, ParamErr: 4e-3,
			Exact: exact(1e-6, 1e-6, 2e-6), Torch: exact(5e-3, 4e-3, 1e-6)}, true},
		{"as far from exact as PyTorch float32", Result{InputErr: 1e-6, ParamErr: 1e-6,
			Exact: exact(3e-3, 1e-6, 4e-3), Torch: exact(3e-3, 4e-3, 1e-6)}, true},
		{"further from exact than PyTorch float32", Result{InputErr: 1e-6, ParamErr: 0.17,
			Exact: exact(1e-6, 0.17, 1e-6), Torch: exact(1e-6, 1e-6, 1e-6)}, false},
		{"input further from exact", Result{Exact: exact(2e-3, 1e-6), Torch: exact(1e-3, 1e-6)}, false},
	} {
		if got := tc.r.Pass(1e-3); got != tc.want {
			t.Errorf("%s: Pass = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMaxParam(t *testing.T) {
	e := Errors{Params: map[string]float64{"b": 2e-6, "a": 2e-6, "c": 1e-6}}
	if got, name := e.MaxParam(); got != 2e-6 || name != "a" {
		t.Errorf("MaxParam = %g, %q; want 2e-06, \"a\"", got, name)
	}
	if got, name := (Errors{}).MaxParam(); got != 0 || name != "" {
		t.Errorf("MaxParam of none = %g, %q", got, name)
	}
}

// TestWriteReadFloats checks that the gradients CheckDump writes read back
// as written, and that ReadFloats refuses a file of the wrong size.
func TestWriteReadFloats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.bin")
	want := []float32{0, -1.5, float32(math.Inf(1)), 3.25e-7}
	if err := writeFloats(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFloats(path, int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("read %v, wrote %v", got, want)
	}
	if _, err := ReadFloats(path, 5); err == nil {
		t.Error("ReadFloats of 5 values from a file of 4: no error")
	}
}

// TestCheckDumpBothExports checks that CheckDump writes robust's side of
// both exports — the one without folding under the plain names, model.onnx
// with the prefix "user_" — and that the input gradient's error is reported
// per export, the row's being the larger: a disagreement on either export
// must be explained on that export's own values.
func TestCheckDumpBothExports(t *testing.T) {
	src := filepath.Join("..", "..", "onnxgraph", "testdata", "torch", "shufflenet_v2_tiny_opset13")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := CheckDump(testenv.ORT(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	user, unfolded := res.InputByExport["model.onnx"], res.InputByExport["model_unfolded.onnx"]
	if len(res.InputByExport) != 2 || res.Exact == nil || res.Exact.Input != max(user, unfolded) {
		t.Fatalf("input errors by export %v, row %+v: want both exports and the row's the larger", res.InputByExport, res.Exact)
	}
	for _, prefix := range []string{"", "user_"} {
		for _, f := range []string{"robust_kinks.json", "robust_grad_x.bin"} {
			if _, err := os.Stat(filepath.Join(dir, prefix+f)); err != nil {
				t.Errorf("%s%s not written: %v", prefix, f, err)
			}
		}
		var kinks []kink
		data, err := os.ReadFile(filepath.Join(dir, prefix+"robust_kinks.json"))
		if err == nil {
			err = json.Unmarshal(data, &kinks)
		}
		if err != nil || len(kinks) == 0 {
			t.Fatalf("%srobust_kinks.json: %v, %d kinks", prefix, err, len(kinks))
		}
		for _, k := range kinks {
			if !strings.HasPrefix(k.File, prefix+"robust_kink_") {
				t.Errorf("%s kink %q written to %q", prefix, k.Value, k.File)
			}
		}
	}
	// The parameters' gradients come from the export without folding only.
	if _, err := os.Stat(filepath.Join(dir, "user_robust_grad_p0.bin")); err == nil {
		t.Error("parameter gradients written for model.onnx")
	}
}

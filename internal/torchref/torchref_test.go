package torchref

import (
	"math"
	"testing"
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

package dataset

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv/skip"
)

// TestFashionMNISTReal loads the real Fashion-MNIST from Debian's
// dataset-fashion-mnist package. It is skipped when the files are missing,
// unless ROBUST_REQUIRE_DATA is set.
func TestFashionMNISTReal(t *testing.T) {
	if _, err := os.Stat(DebianFashionMNISTDir); err != nil {
		skip.Missing(t, skip.RequireData, "Fashion-MNIST (apt install dataset-fashion-mnist)", err)
	}
	for _, tc := range []struct {
		split      string
		n, perCls  int
		firstLabel []int64
	}{
		{"train", 60000, 6000, []int64{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}},
		{"test", 10000, 1000, []int64{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}},
	} {
		start := time.Now()
		d, err := LoadFashionMNIST(DebianFashionMNISTDir, tc.split == "train")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v loaded in %v", d, time.Since(start))
		if d.Len() != tc.n || d.C != 1 || d.H != 28 || d.W != 28 || d.NumClasses != 10 ||
			d.Name != "fashion-mnist" || d.Partition != tc.split || d.Classes[9] != "Ankle boot" {
			t.Fatalf("got %v", d)
		}
		if !slices.Equal(d.Y[:10], tc.firstLabel) {
			t.Errorf("first labels %v, want %v", d.Y[:10], tc.firstLabel)
		}
		counts := make([]int, 10)
		for _, l := range d.Y {
			counts[l]++
		}
		for c, n := range counts {
			if n != tc.perCls {
				t.Errorf("class %d has %d samples, want %d", c, n, tc.perCls)
			}
		}
		if err := d.Validate(); err != nil {
			t.Error(err)
		}
		if d.X != nil || len(d.Pix) != d.Len()*28*28 {
			t.Errorf("storage: %d floats, %d bytes; want 8-bit storage", len(d.X), len(d.Pix))
		}
		lo, hi := slices.Min(d.Image(0)), slices.Max(d.Image(0))
		if lo != 0 || hi != 1 {
			t.Errorf("pixel range [%v, %v], want [0, 1]", lo, hi)
		}
	}
}

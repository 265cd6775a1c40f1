package dataset

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// streamFolder writes n distinct PNG images in classes class folders and
// opens the folder with the given crop.
func streamFolder(t *testing.T, n, classes, crop int) *Dataset {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		w, h := 20+i%7, 16+i%5
		writePNG(t, filepath.Join(dir, "c"+strconv.Itoa(i%classes), "img"+strconv.Itoa(100+i)+".png"),
			patternRGBA(w, h, func(x, y, ch int) uint8 { return uint8(x*11 + y*5 + ch*70 + i*13) }))
	}
	d, err := LoadImageFolder(dir, ImageFolderOptions{Resize: crop, Crop: crop, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// epochBatches runs one epoch of it and returns its images and labels.
func epochBatches(t *testing.T, it *Iterator) ([][]float32, [][]int64) {
	t.Helper()
	var xs [][]float32
	var ys [][]int64
	for {
		b, ok := it.Next()
		if !ok {
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			return xs, ys
		}
		xs, ys = append(xs, b.Data), append(ys, b.Y)
	}
}

func TestStreamedIterator(t *testing.T) {
	d := streamFolder(t, 23, 3, 12)
	if !d.Streamed() || d.Len() != 23 || d.H != 12 {
		t.Fatalf("got %v (streamed %v)", d, d.Streamed())
	}
	// Without augmentation, batches hold exactly the evaluation transform
	// of the samples the order names.
	all, err := d.Floats(nil, 0, d.Len())
	if err != nil {
		t.Fatal(err)
	}
	sz := d.ImageSize()
	for _, prefetch := range []int{0, 1, 5} {
		it, err := NewIterator(d, IteratorOptions{BatchSize: 5, Shuffle: true, Seed: 3, Prefetch: prefetch})
		if err != nil {
			t.Fatal(err)
		}
		for epoch := range 2 {
			xs, ys := epochBatches(t, it)
			if len(xs) != 5 || len(ys[4]) != 3 {
				t.Fatalf("prefetch %d epoch %d: %d batches", prefetch, epoch, len(xs))
			}
			seen := 0
			for b := range xs {
				for i, y := range ys[b] {
					// Find the sample by content: shuffling must move images
					// and labels together.
					img := xs[b][i*sz : (i+1)*sz]
					k := -1
					for j := range d.Len() {
						if slices.Equal(all[j*sz:(j+1)*sz], img) {
							k = j
						}
					}
					if k < 0 || d.Y[k] != y {
						t.Fatalf("prefetch %d: batch %d sample %d matches no sample with label %d", prefetch, b, i, y)
					}
					seen++
				}
			}
			if seen != d.Len() {
				t.Errorf("epoch saw %d samples", seen)
			}
		}
	}
}

func TestStreamedAugmentDeterministic(t *testing.T) {
	d := streamFolder(t, 17, 2, 10)
	opts := IteratorOptions{BatchSize: 4, Shuffle: true, Seed: 9, Augment: Augment{ResizedCrop: 10, Flip: true}}
	a, err := NewIterator(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	xa, ya := epochBatches(t, a)
	xa2, _ := epochBatches(t, a) // the next epoch differs
	// A fresh iterator, without prefetching, restored to batch 2 of
	// epoch 0, reproduces the rest of the epoch.
	opts.Prefetch = 1
	b, err := NewIterator(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(IteratorState{Seed: 9, Epoch: 0, Batch: 2}); err != nil {
		t.Fatal(err)
	}
	xb, yb := epochBatches(t, b)
	if !slices.Equal(xa[2], xb[0]) || !slices.Equal(ya[3], yb[1]) || !slices.Equal(xa[4], xb[2]) {
		t.Error("restored iterator produces different batches")
	}
	if slices.Equal(xa[0], xa2[0]) {
		t.Error("two epochs produced the same first batch")
	}
	// Random resized crops differ from the evaluation transform.
	eval, err := NewIterator(d, IteratorOptions{BatchSize: 4, Shuffle: true, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	xe, _ := epochBatches(t, eval)
	if slices.Equal(xa[0], xe[0]) {
		t.Error("random-resized-crop left the images unchanged")
	}
	for _, v := range xa[1] {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %v outside [0,1]", v)
		}
	}
}

func TestResizedCropChecks(t *testing.T) {
	d := streamFolder(t, 4, 2, 10)
	mem := randomDataset(8, 3, 10, 10, 1)
	for _, tc := range []struct {
		name string
		d    *Dataset
		aug  Augment
	}{
		{"in memory", mem, Augment{ResizedCrop: 10}},
		{"size mismatch", d, Augment{ResizedCrop: 12}},
	} {
		if _, err := NewIterator(tc.d, IteratorOptions{BatchSize: 2, Augment: tc.aug}); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestRandomResizedCropParams checks the windows against torchvision's
// definition: inside the image, area 8–100 % and aspect ratio within
// [3/4, 4/3] unless the fallback (center crop) applies, and spread over
// the image.
func TestRandomResizedCropParams(t *testing.T) {
	for _, tc := range []struct{ w, h int }{{256, 256}, {500, 375}, {100, 400}, {3, 40}} {
		src := newSource(1, sampleStream)
		minArea, maxArea := 2.0, 0.0
		fallbacks := 0
		for range 2000 {
			i, j, h, w := randomResizedCropParams(tc.w, tc.h, src)
			if i < 0 || j < 0 || h <= 0 || w <= 0 || i+h > tc.h || j+w > tc.w {
				t.Fatalf("%dx%d: window (%d,%d,%d,%d) outside the image", tc.w, tc.h, i, j, h, w)
			}
			area := float64(w*h) / float64(tc.w*tc.h)
			ratio := float64(w) / float64(h)
			// Rounding w and h moves the ratio a little off the range.
			slack := 1/float64(h) + 1/float64(w)
			if area > 1 || ratio < rrcMinRatio*(1-slack)-1e-9 || ratio > rrcMaxRatio*(1+slack)+1e-9 {
				if i != (tc.h-h)/2 || j != (tc.w-w)/2 {
					t.Fatalf("%dx%d: window %dx%d (area %.3f, ratio %.3f) is neither valid nor the fallback", tc.w, tc.h, w, h, area, ratio)
				}
				fallbacks++
			}
			minArea, maxArea = math.Min(minArea, area), math.Max(maxArea, area)
		}
		t.Logf("%dx%d: area fraction in [%.3f, %.3f], %d fallbacks", tc.w, tc.h, minArea, maxArea, fallbacks)
		if tc.w == 256 && (minArea > 0.1 || maxArea < 0.9) {
			t.Errorf("areas [%.3f, %.3f] do not span [0.08, 1]", minArea, maxArea)
		}
	}
}

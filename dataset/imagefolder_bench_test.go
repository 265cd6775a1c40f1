package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchJPEGFolder returns a folder of n generated w×w JPEGs in 10 class
// folders under the system temporary directory, writing it on first use
// (it is kept for later runs, never committed). The images are smooth
// gradients with texture, about 10–20 kB each at quality 90.
func benchJPEGFolder(b *testing.B, n, w int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("robust-bench-jpeg-%d-%d", n, w))
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for g := range 2 {
		wg.Go(func() {
			img := image.NewYCbCr(image.Rect(0, 0, w, w), image.YCbCrSubsampleRatio420)
			var buf bytes.Buffer
			for i := g; i < n; i += 2 {
				for y := range w {
					for x := range w {
						img.Y[y*img.YStride+x] = uint8(x + y + i + (x*y>>3)%17)
					}
				}
				for k := range img.Cb {
					img.Cb[k], img.Cr[k] = uint8(k+i*7), uint8(k/3+i*3)
				}
				buf.Reset()
				p := filepath.Join(dir, "class"+strconv.Itoa(i%10), strconv.Itoa(i)+".jpg")
				err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
				if err == nil {
					err = os.MkdirAll(filepath.Dir(p), 0o755)
				}
				if err == nil {
					err = os.WriteFile(p, buf.Bytes(), 0o644)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// cpuSeconds returns the user and system CPU time the process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkImageFolderLoader streams a folder of ≥ 20,000 generated
// 256×256 JPEGs through the ImageNet evaluation transform (resize 256,
// center crop 224) in batches of 128 with prefetching, as evaluation and
// training read it, and reports images/s and the process's peak resident
// set. Run it alone, once:
//
//	ROBUST_BENCH_IMAGES=20000 go test ./dataset -run '^$' -bench ImageFolderLoader -benchtime 1x
//
// ROBUST_BENCH_IMAGES is the number of images (20,000 for the figures in
// docs/data-and-gpu.md); without it the benchmark is skipped.
func BenchmarkImageFolderLoader(b *testing.B) {
	// Writing and reading tens of thousands of JPEGs takes minutes: the
	// benchmark runs only when asked for (make bench-data).
	s := os.Getenv("ROBUST_BENCH_IMAGES")
	if s == "" {
		b.Skip("set ROBUST_BENCH_IMAGES (e.g. 20000) to run; make bench-data does")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("ROBUST_BENCH_IMAGES=%q: want a positive number of images", s)
	}
	dir := benchJPEGFolder(b, n, 256)
	for _, tc := range []struct {
		name   string
		resize int
		aug    Augment
	}{
		{"resize256-crop224", 256, Augment{}},
		// Shrinking 256 → 240 makes every image go through x/image's
		// resampler, as real photographs of varied sizes do.
		{"resize240-crop224", 240, Augment{}},
		{"random-resized-crop224-flip", 256, Augment{ResizedCrop: 224, Flip: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := LoadImageFolder(dir, ImageFolderOptions{Resize: tc.resize, Crop: 224})
			if err != nil {
				b.Fatal(err)
			}
			it, err := NewIterator(d, IteratorOptions{BatchSize: 128, Augment: tc.aug})
			if err != nil {
				b.Fatal(err)
			}
			x, y := make([]float32, 128*d.ImageSize()), make([]int64, 128)
			images := 0
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				for {
					k, ok := it.NextInto(x, y)
					if !ok {
						break
					}
					images += k
				}
				if err := it.Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
			// Images per second of CPU time used by the process: on a
			// shared machine, wall-clock rates depend on the other load;
			// this one does not (×cores gives the rate on idle cores).
			b.ReportMetric(float64(images)/(cpuSeconds()-cpu0), "images/cpu-s")
			if hwm, ok := peakRSS(); ok {
				b.ReportMetric(float64(hwm)/(1<<20), "MB-peak-rss")
			}
		})
	}
}

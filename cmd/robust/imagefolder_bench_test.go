package main

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
)

// BenchmarkEvalImageFolder runs robust eval on a folder of generated
// 256×256 JPEGs (ROBUST_BENCH_IMAGES of them, 20,000 for the figures in
// docs/data-and-gpu.md; written under the system temporary directory on
// first use, never committed; without the variable it is skipped) with
// --resize 256 --crop 224 --n 0, on a 224×224 model cheap enough that the
// loader dominates (8×8 average pooling, then a linear layer), and reports
// the images per second of the whole evaluation and the peak resident set
// of the process. Run it alone, once:
//
//	ROBUST_BENCH_IMAGES=20000 go test ./cmd/robust -run '^$' -bench EvalImageFolder -benchtime 1x
//
// ROBUST_BENCH_BATCH sets --batch (default 128): the attacks' buffers, and
// so the peak memory, grow with the batch, not with the number of images.
func BenchmarkEvalImageFolder(b *testing.B) {
	testenv.ORT(b)
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
	dir := jpegFolder(b, n)
	model := filepath.Join(b.TempDir(), "pool-linear.onnx")
	if err := onnxgraph.Save(model, poolLinear224()); err != nil {
		b.Fatal(err)
	}
	batch := "128"
	if s := os.Getenv("ROBUST_BENCH_BATCH"); s != "" {
		batch = s
	}
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		code := run([]string{"eval", model, "--data", "imagefolder:" + dir, "--split", "test", "--resize", "256", "--crop", "224",
			"--n", "0", "--batch", batch, "--eps", "1/255", "--suite", "fgsm", "--no-progress"}, &stdout, &stderr)
		if code != exitOK {
			b.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
	if hwm, ok := vmHWM(); ok {
		b.ReportMetric(float64(hwm)/(1<<20), "MB-peak-rss")
	}
}

// poolLinear224 builds logits = W·flatten(AveragePool8×8(x)) + b for
// 3×224×224 images and 10 classes, with fixed small weights.
func poolLinear224() *onnxgraph.Model { return poolLinear(224, 8, 10) }

// poolLinear builds logits = W·flatten(AveragePool k×k(x)) + b for
// 3×size×size images and the given number of classes, with fixed small
// weights.
func poolLinear(size, k, classes int) *onnxgraph.Model {
	bld := onnxgraph.NewBuilder("pool-linear")
	x := bld.Input("input", onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(3), onnxgraph.D(int64(size)), onnxgraph.D(int64(size))})
	p := bld.AveragePool(x, onnxgraph.PoolOpts{Kernel: []int64{int64(k), int64(k)}, Strides: []int64{int64(k), int64(k)}})
	d := 3 * (size / k) * (size / k)
	w := make([]float32, classes*d)
	for i := range w {
		w[i] = float32((i*7919)%200-100) / 1e4
	}
	wt := bld.Initializer(onnxgraph.NewFloatTensor("w", []int64{int64(classes), int64(d)}, w))
	bt := bld.Initializer(onnxgraph.NewFloatTensor("b", []int64{int64(classes)}, make([]float32, classes)))
	z := bld.Gemm(bld.Flatten(p, 1), wt, bt, onnxgraph.GemmOpts{TransB: true})
	bld.Output(z, onnxgraph.Float, onnxgraph.Shape{onnxgraph.Sym("N"), onnxgraph.D(int64(classes))})
	return bld.Model()
}

// jpegFolder returns a folder of n 256×256 JPEGs in 10 class folders under
// the temporary directory, writing it on first use. It is the folder (same
// name, same images) that the dataset package's loader benchmark writes, so
// either benchmark reuses the other's.
func jpegFolder(b *testing.B, n int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("robust-bench-jpeg-%d-%d", n, 256))
	done := filepath.Join(dir, ".complete")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	img := image.NewYCbCr(image.Rect(0, 0, 256, 256), image.YCbCrSubsampleRatio420)
	var buf bytes.Buffer
	for i := range n {
		for y := range 256 {
			for x := range 256 {
				img.Y[y*img.YStride+x] = uint8(x + y + i + (x*y>>3)%17)
			}
		}
		for k := range img.Cb {
			img.Cb[k], img.Cr[k] = uint8(k+i*7), uint8(k/3+i*3)
		}
		buf.Reset()
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, "class"+strconv.Itoa(i%10), strconv.Itoa(i)+".jpg")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// vmHWM returns the process's peak resident set size (Linux).
func vmHWM() (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	return parseHWM(f)
}

func parseHWM(r io.Reader) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

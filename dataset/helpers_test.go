package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes encodes an idx file.
func idxBytes(magic uint32, dims []int, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, magic)
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// synthImages returns n h×w unsigned-byte images with a recognisable pattern
// and labels i % classes.
func synthImages(n, h, w, classes int) (pix, labels []byte) {
	pix = make([]byte, n*h*w)
	for i := range pix {
		pix[i] = byte(i*7 + i/(h*w)*13)
	}
	labels = make([]byte, n)
	for i := range labels {
		labels[i] = byte((i*3 + 1) % classes)
	}
	return pix, labels
}

// writeMNISTDir writes a train and a test split in MNIST layout into dir.
func writeMNISTDir(t testing.TB, dir string, nTrain, nTest, h, w int, gz bool) {
	t.Helper()
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		pix, lab := synthImages(s.n, h, w, 10)
		img := idxBytes(idxImagesMagic, []int{s.n, h, w}, pix)
		lbl := idxBytes(idxLabelsMagic, []int{s.n}, lab)
		ext := ""
		if gz {
			img, lbl, ext = gzipBytes(t, img), gzipBytes(t, lbl), ".gz"
		}
		writeFile(t, filepath.Join(dir, s.prefix+"-images-idx3-ubyte"+ext), img)
		writeFile(t, filepath.Join(dir, s.prefix+"-labels-idx1-ubyte"+ext), lbl)
	}
}

// cifarRecords builds n CIFAR records; labels[i] is the (fine) label.
func cifarRecords(n int, cifar100 bool, labelOf func(i int) byte, first int) []byte {
	var b bytes.Buffer
	for i := range n {
		if cifar100 {
			b.WriteByte(byte((first + i) % 20)) // coarse
		}
		b.WriteByte(labelOf(first + i))
		for p := range cifarImageBytes {
			b.WriteByte(byte(p*5 + (first+i)*11))
		}
	}
	return b.Bytes()
}

// cifarPixel is the value cifarRecords gives pixel p of record r.
func cifarPixel(r, p int) float32 { return float32(byte(p*5+r*11)) / 255 }

// writePNG writes an image file.
func writePNG(t testing.TB, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

// patternRGBA returns a w×h opaque image with pixel (x, y, ch) = f(x, y, ch).
func patternRGBA(w, h int, f func(x, y, ch int) uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{f(x, y, 0), f(x, y, 1), f(x, y, 2), 255})
		}
	}
	return img
}

// wantErr checks that err wraps target and mentions every substring.
func wantErr(t *testing.T, err, target error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", target)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %q", err, target)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// indexDataset returns n samples of c×h×w whose pixels all equal i/n and
// whose label is i (so batches reveal which samples they hold).
func indexDataset(n, c, h, w int) *Dataset {
	d := &Dataset{Name: "index", C: c, H: h, W: w, NumClasses: n,
		X: make([]float32, n*c*h*w), Y: make([]int64, n)}
	sz := c * h * w
	for i := range n {
		for j := range sz {
			d.X[i*sz+j] = float32(i) / float32(n)
		}
		d.Y[i] = int64(i)
	}
	return d
}

// imageOf returns sample i of d (any storage) as floats.
func imageOf(t testing.TB, d *Dataset, i int) []float32 {
	t.Helper()
	x := make([]float32, d.ImageSize())
	if err := d.Gather(x, []int{i}); err != nil {
		t.Fatal(err)
	}
	return x
}

package dataset

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The decoders must reject any input with an error, never panic or try to
// allocate what the file cannot hold.

func FuzzDecodeNPY(f *testing.F) {
	for _, a := range []Array{
		{Shape: []int{2, 3}, Data: make([]float32, 6)},
		{Shape: []int{}, Data: []int64{1}},
		{Shape: []int{3}, Data: []bool{true, false, true}},
	} {
		var b bytes.Buffer
		if err := EncodeNPY(&b, a); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes(), true)
	}
	f.Add([]byte("\x93NUMPY\x01\x00\x10\x00{'shape': (9999999999,), 'descr': '<f8', 'fortran_order': False}"), false)
	f.Fuzz(func(t *testing.T, data []byte, sized bool) {
		size := int64(0)
		if sized {
			size = int64(len(data))
		}
		a, err := DecodeNPY(bytes.NewReader(data), size)
		if err == nil {
			if _, err := a.check(); err != nil {
				t.Fatalf("decoded an inconsistent array: %v", err)
			}
		}
	})
}

func FuzzLoadIDX(f *testing.F) {
	pix, lab := synthImages(3, 2, 2, 10)
	f.Add(idxBytes(idxImagesMagic, []int{3, 2, 2}, pix), idxBytes(idxLabelsMagic, []int{3}, lab), false)
	f.Add(idxBytes(idxImagesMagic, []int{3, 2, 2}, pix), idxBytes(idxLabelsMagic, []int{3}, lab), true)
	f.Add(idxBytes(idxImagesMagic, []int{1 << 31, 1 << 31, 1 << 31}, pix), idxBytes(idxLabelsMagic, []int{3}, lab), true)
	f.Fuzz(func(t *testing.T, img, lbl []byte, gz bool) {
		if gz {
			img = gzipBytes(t, img)
		}
		dir := t.TempDir()
		ip := filepath.Join(dir, "img")
		lp := filepath.Join(dir, "lbl")
		if err := os.WriteFile(ip, img, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lp, lbl, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadIDX(ip, lp)
		if err == nil {
			if err := d.Validate(); err != nil {
				t.Fatalf("loaded an invalid dataset: %v", err)
			}
		}
	})
}

func FuzzParseNPYHeader(f *testing.F) {
	f.Add("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }")
	f.Add(`{"descr": "|u1", "shape": (), "fortran_order": False}`)
	f.Fuzz(func(t *testing.T, h string) {
		parseNPYHeader(h)
	})
}

// FuzzImageFile feeds arbitrary bytes to the streamed image loader, as an
// image file and as a tar shard: an error or an image, never a panic, and
// never more than the pixel limit decoded.
func FuzzImageFile(f *testing.F) {
	var img bytes.Buffer
	writePNGTo(f, &img)
	f.Add(img.Bytes())
	f.Add(pngHeader(1<<16, 1<<16))
	f.Add([]byte("\xff\xd8\xff\xdb\x00\x43\x00"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	f.Add([]byte("BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00"))
	f.Add([]byte("II*\x00\x08\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.png")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := &stream{items: []streamItem{{path: p}}, resize: 8, crop: 8, workers: 1, maxPixels: 1 << 20}
		dst := make([]uint8, 3*8*8)
		_ = s.load(dst, []int{0}, nil)
		_ = s.load(dst, []int{0}, []sampleAug{{resizedCrop: true, flip: true, seed: [2]uint64{1, 2}}})
		_, _ = LoadTarShards(p, 0, ImageFolderOptions{Crop: 8, MaxPixels: 1 << 20, SkipBad: true})
	})
}

// writePNGTo encodes a small opaque image.
func writePNGTo(tb testing.TB, w *bytes.Buffer) {
	tb.Helper()
	if err := png.Encode(w, patternRGBA(5, 4, func(x, y, c int) uint8 { return uint8(x*50 + y*9 + c) })); err != nil {
		tb.Fatal(err)
	}
}

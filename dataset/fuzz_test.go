package dataset

import (
	"bytes"
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

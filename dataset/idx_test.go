package dataset

import (
	"io/fs"
	"path/filepath"
	"testing"
)

func TestLoadIDXRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, h, w int
		gz      bool
	}{
		{"raw", 7, 3, 4, false},
		{"gzip", 7, 3, 4, true},
		{"gzip one image", 1, 28, 28, true},
		{"raw non-square", 5, 2, 9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pix, lab := synthImages(tc.n, tc.h, tc.w, 10)
			img := idxBytes(idxImagesMagic, []int{tc.n, tc.h, tc.w}, pix)
			lbl := idxBytes(idxLabelsMagic, []int{tc.n}, lab)
			if tc.gz {
				img, lbl = gzipBytes(t, img), gzipBytes(t, lbl)
			}
			ip := writeFile(t, filepath.Join(dir, "mine", "train-img"), img)
			lp := writeFile(t, filepath.Join(dir, "mine", "train-lbl"), lbl)
			d, err := LoadIDX(ip, lp)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != tc.n || d.C != 1 || d.H != tc.h || d.W != tc.w {
				t.Fatalf("got %v, want %d×1×%d×%d", d, tc.n, tc.h, tc.w)
			}
			if d.Name != "mine" || d.Partition != "train" {
				t.Errorf("name %q partition %q, want mine, train", d.Name, d.Partition)
			}
			all, err := d.Floats(nil, 0, d.Len())
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range pix {
				if x := all[i]; x != float32(b)/255 {
					t.Fatalf("pixel %d = %v, want %v", i, x, float32(b)/255)
				}
			}
			maxL := 0
			for i, l := range lab {
				if d.Y[i] != int64(l) {
					t.Fatalf("Y[%d] = %d, want %d", i, d.Y[i], l)
				}
				maxL = max(maxL, int(l))
			}
			if d.NumClasses != maxL+1 {
				t.Errorf("NumClasses %d, want %d", d.NumClasses, maxL+1)
			}
			if err := d.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadMNISTDir(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		writeMNISTDir(t, dir, 12, 5, 6, 6, gz)
		for _, train := range []bool{true, false} {
			d, err := LoadMNISTDir(dir, train)
			if err != nil {
				t.Fatal(err)
			}
			want, part := 5, "test"
			if train {
				want, part = 12, "train"
			}
			if d.Len() != want || d.Partition != part || d.NumClasses != 10 || len(d.Classes) != 10 {
				t.Errorf("gz=%v train=%v: got %v (%q, %d names)", gz, train, d, d.Partition, len(d.Classes))
			}
		}
	}
	// The "train-images.idx3-ubyte" spelling is accepted too.
	dir := t.TempDir()
	pix, lab := synthImages(3, 2, 2, 10)
	writeFile(t, filepath.Join(dir, "t10k-images.idx3-ubyte"), idxBytes(idxImagesMagic, []int{3, 2, 2}, pix))
	writeFile(t, filepath.Join(dir, "t10k-labels.idx1-ubyte"), idxBytes(idxLabelsMagic, []int{3}, lab))
	if d, err := LoadMNISTDir(dir, false); err != nil || d.Len() != 3 {
		t.Errorf("dotted names: %v, %v", d, err)
	}
	_, err := LoadMNISTDir(dir, true)
	wantErr(t, err, fs.ErrNotExist, dir, "train-images-idx3-ubyte.gz")
}

func TestLoadIDXErrors(t *testing.T) {
	pix, lab := synthImages(4, 3, 3, 10)
	goodImg := idxBytes(idxImagesMagic, []int{4, 3, 3}, pix)
	goodLbl := idxBytes(idxLabelsMagic, []int{4}, lab)
	gzImg := gzipBytes(t, goodImg)
	corruptGz := append([]byte(nil), gzImg...)
	for i := 12; i < len(corruptGz)-8; i += 3 {
		corruptGz[i] ^= 0x5a
	}
	badLabel := append([]byte(nil), goodLbl...)
	badLabel[len(badLabel)-1] = 10

	for _, tc := range []struct {
		name     string
		img, lbl []byte
		mnist    bool  // load with LoadMNISTDir (10 classes)
		target   error // wrapped sentinel
		inImages bool  // the error names the images file (else the labels file)
		subs     []string
	}{
		{"labels file as images", goodLbl, goodLbl, false, ErrFormat, true, []string{"magic number 0x00000801, want 0x00000803"}},
		{"images file as labels", goodImg, goodImg, false, ErrFormat, false, []string{"want 0x00000801"}},
		{"not idx", []byte("hello world, not idx"), goodLbl, false, ErrFormat, true, []string{"magic"}},
		{"short header", goodImg[:6], goodLbl, false, ErrTruncated, true, []string{"idx header"}},
		{"empty file", nil, goodLbl, false, ErrTruncated, true, nil},
		{"truncated images", goodImg[:len(goodImg)-5], goodLbl, false, ErrTruncated, true, []string{"4×3×3", "36 bytes", "31"}},
		{"truncated labels", goodImg, goodLbl[:len(goodLbl)-1], false, ErrTruncated, false, nil},
		{"truncated gzip", gzImg[:len(gzImg)/2], goodLbl, false, ErrTruncated, true, nil},
		{"truncated gzip header", gzImg[:5], goodLbl, false, ErrTruncated, true, []string{"gzip header"}},
		{"trailing bytes", append(append([]byte(nil), goodImg...), 1, 2, 3), goodLbl, false, ErrSizeMismatch, true, []string{"3 bytes follow"}},
		{"count mismatch", goodImg, idxBytes(idxLabelsMagic, []int{3}, lab[:3]), false, ErrCountMismatch, true, []string{"4 images but 3 labels"}},
		{"no images", idxBytes(idxImagesMagic, []int{0, 3, 3}, nil), idxBytes(idxLabelsMagic, []int{0}, nil), false, ErrEmpty, true, nil},
		{"zero width", idxBytes(idxImagesMagic, []int{4, 3, 0}, nil), goodLbl, false, ErrShape, true, []string{"3×0"}},
		{"huge dims", idxBytes(idxImagesMagic, []int{1 << 30, 1 << 16, 1 << 16}, pix), goodLbl, false, ErrTruncated, true, nil},
		{"huge dims gzip", gzipBytes(t, idxBytes(idxImagesMagic, []int{1 << 30, 1 << 16, 1 << 16}, pix)), goodLbl, false, ErrTruncated, true, []string{"gzip"}},
		{"label out of range", goodImg, badLabel, true, ErrLabelRange, false, []string{"label 10 of sample 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ip := writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"), tc.img)
			lp := writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), tc.lbl)
			var err error
			if tc.mnist {
				_, err = LoadMNISTDir(dir, false)
			} else {
				_, err = LoadIDX(ip, lp)
			}
			named := lp
			if tc.inImages {
				named = ip
			}
			wantErr(t, err, tc.target, append(tc.subs, "load "+named)...)
		})
	}

	t.Run("corrupt gzip", func(t *testing.T) {
		dir := t.TempDir()
		ip := writeFile(t, filepath.Join(dir, "img.gz"), corruptGz)
		lp := writeFile(t, filepath.Join(dir, "lbl"), goodLbl)
		_, err := LoadIDX(ip, lp)
		wantErr(t, err, ErrFormat, ip, "corrupt gzip data")
	})
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadIDX(filepath.Join(dir, "nope"), filepath.Join(dir, "nope2"))
		wantErr(t, err, fs.ErrNotExist, "nope")
	})
}

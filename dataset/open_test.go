package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	root := t.TempDir()
	writeMNISTDir(t, filepath.Join(root, "mnist"), 6, 4, 5, 5, true)
	writeMNISTDir(t, filepath.Join(root, "fashion-mnist"), 8, 3, 4, 4, false)
	writeCIFAR10(t, filepath.Join(root, "c10", "cifar-10-batches-bin"), 2, 3)
	c100 := filepath.Join(root, "cifar100")
	writeFile(t, filepath.Join(c100, "train.bin"), cifarRecords(3, true, func(i int) byte { return byte(i) }, 0))
	writeFile(t, filepath.Join(c100, "test.bin"), cifarRecords(2, true, func(i int) byte { return byte(i) }, 0))
	img := patternRGBA(6, 6, func(x, y, c int) uint8 { return uint8(x + y + c) })
	for _, p := range []string{"train/a/1.png", "train/b/1.png", "train/b/2.png", "val/a/1.png", "val/b/1.png"} {
		writePNG(t, filepath.Join(root, "inet", p), img)
	}
	flat := filepath.Join(root, "flat")
	writePNG(t, filepath.Join(flat, "only", "1.png"), img)
	npz := filepath.Join(root, "adv set.npz")
	if err := indexDataset(7, 1, 3, 3).SaveNPZ(npz); err != nil {
		t.Fatal(err)
	}
	xs := indexDataset(4, 1, 2, 2)
	xp, yp := filepath.Join(root, "x.npy"), filepath.Join(root, "y.npy")
	if err := WriteNPY(xp, Array{Shape: []int{4, 1, 2, 2}, Data: xs.X}); err != nil {
		t.Fatal(err)
	}
	if err := WriteNPY(yp, Array{Shape: []int{4}, Data: xs.Y}); err != nil {
		t.Fatal(err)
	}
	t.Setenv(DataDirEnv, root)
	t.Setenv("HOME", root)
	t.Setenv("ROBUST_TEST_ROOT", root)

	for _, tc := range []struct {
		spec, split string
		name        string
		n, c, h     int
		classes     int
	}{
		{"mnist:" + filepath.Join(root, "mnist"), "train", "mnist", 6, 1, 5, 10},
		{"mnist:" + filepath.Join(root, "mnist"), "test", "mnist", 4, 1, 5, 10},
		{"mnist", "test", "mnist", 4, 1, 5, 10}, // $ROBUST_DATA_DIR/mnist
		{"fashion-mnist", "train", "fashion-mnist", 8, 1, 4, 10},
		{"fashion-mnist:" + filepath.Join(root, "fashion-mnist"), "test", "fashion-mnist", 3, 1, 4, 10},
		{"cifar10:" + filepath.Join(root, "c10"), "train", "cifar10", 10, 3, 32, 10},
		{"cifar10:" + filepath.Join(root, "c10"), "test", "cifar10", 3, 3, 32, 10},
		{"cifar100", "train", "cifar100", 3, 3, 32, 100},
		{"cifar100:" + c100, "test", "cifar100", 2, 3, 32, 100},
		{"imagefolder:" + filepath.Join(root, "inet"), "train", "inet", 3, 3, 6, 2},
		{"imagefolder:" + filepath.Join(root, "inet"), "test", "inet", 2, 3, 6, 2},
		{"imagefolder:" + flat, "test", "flat", 1, 3, 6, 1},
		{"npz:" + npz, "test", "adv set", 7, 1, 3, 7},
		{npz, "train", "adv set", 7, 1, 3, 7},
		{"npy:" + xp + "," + yp, "test", "x", 4, 1, 2, 4},
		// ~ and environment variables, expanded as a shell would.
		{"cifar10:~/c10", "test", "cifar10", 3, 3, 32, 10},
		{"imagefolder:$ROBUST_TEST_ROOT/inet", "train", "inet", 3, 3, 6, 2},
		{"npy:${ROBUST_TEST_ROOT}/x.npy,~/y.npy", "test", "x", 4, 1, 2, 4},
		{"$ROBUST_TEST_ROOT/adv set.npz", "test", "adv set", 7, 1, 3, 7},
	} {
		opts := Options{ImageFolder: ImageFolderOptions{Resize: 6, Crop: 6}}
		d, err := Open(tc.spec, tc.split, opts)
		if err != nil {
			t.Errorf("Open(%q, %q): %v", tc.spec, tc.split, err)
			continue
		}
		if d.Name != tc.name || d.Len() != tc.n || d.C != tc.c || d.H != tc.h || d.NumClasses != tc.classes {
			t.Errorf("Open(%q, %q) = %v (name %q)", tc.spec, tc.split, d, d.Name)
		}
		if err := d.Validate(); err != nil {
			t.Errorf("Open(%q): %v", tc.spec, err)
		}
	}

	d, err := Open(npz, "test", Options{NumClasses: 12})
	if err != nil || d.NumClasses != 12 {
		t.Errorf("NumClasses option: %v %v", d, err)
	}
	_, err = Open(npz, "test", Options{NumClasses: 3})
	wantErr(t, err, ErrLabelRange, npz)

	for _, tc := range []struct{ spec, split, sub string }{
		{"svhn:/data", "train", "unknown dataset spec"},
		{"imagenet", "train", "valid forms"},
		{"cifar10:", "train", "lacks a path"},
		{"mnist", "validation", `split "validation"`},
		{"npy:" + xp, "test", "npy:X.npy,Y.npy"},
		{"cifar10:$ROBUST_TEST_UNSET/c10", "test", "$ROBUST_TEST_UNSET is not set"},
	} {
		_, err := Open(tc.spec, tc.split, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.sub) {
			t.Errorf("Open(%q, %q) error %v, want mention of %q", tc.spec, tc.split, err, tc.sub)
		}
	}
	_, err = Open("svhn:/data", "train", Options{})
	for _, form := range []string{"fashion-mnist", "cifar10:DIR", "cifar100:DIR", "imagefolder:DIR", "npz:FILE.npz", "mnist:DIR"} {
		if !strings.Contains(err.Error(), form) {
			t.Errorf("error does not list %q: %v", form, err)
		}
	}

	// Bare names fall back to /usr/share/datasets when $ROBUST_DATA_DIR
	// lacks them.
	t.Setenv(DataDirEnv, t.TempDir())
	if got := DefaultFashionMNISTDir(); got != DebianFashionMNISTDir {
		t.Errorf("DefaultFashionMNISTDir() = %q", got)
	}
	if _, err := os.Stat("/usr/share/datasets/cifar10"); err != nil {
		_, err := Open("cifar10", "test", Options{})
		wantErr(t, err, os.ErrNotExist, "/usr/share/datasets/cifar10")
	}
}

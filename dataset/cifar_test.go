package dataset

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func writeCIFAR10(t testing.TB, dir string, perBatch, nTest int) {
	t.Helper()
	label := func(i int) byte { return byte(i % 10) }
	for b := 1; b <= 5; b++ {
		writeFile(t, filepath.Join(dir, "data_batch_"+string(rune('0'+b))+".bin"),
			cifarRecords(perBatch, false, label, (b-1)*perBatch))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(nTest, false, label, 1000))
}

func TestLoadCIFAR10(t *testing.T) {
	for _, nested := range []bool{false, true} {
		root := t.TempDir()
		dir := root
		if nested {
			dir = filepath.Join(root, "cifar-10-batches-bin")
			names := strings.Join(CIFAR10Classes, "\n") + "\n\n"
			writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte(strings.ToUpper(names)))
		}
		writeCIFAR10(t, dir, 3, 4)

		train, err := LoadCIFAR10(root, true)
		if err != nil {
			t.Fatal(err)
		}
		if train.Len() != 15 || train.C != 3 || train.H != 32 || train.W != 32 || train.NumClasses != 10 || train.Partition != "train" {
			t.Fatalf("got %v", train)
		}
		for r := range 15 { // records concatenated in batch order
			if train.Y[r] != int64(r%10) {
				t.Fatalf("Y[%d] = %d", r, train.Y[r])
			}
			img := train.Image(r)
			for _, p := range []int{0, 1, 1023, 1024, 2047, 2048, 3071} {
				if img[p] != cifarPixel(r, p) {
					t.Fatalf("record %d pixel %d = %v, want %v", r, p, img[p], cifarPixel(r, p))
				}
			}
		}
		test, err := LoadCIFAR10(root, false)
		if err != nil {
			t.Fatal(err)
		}
		if test.Len() != 4 || test.Y[0] != 0 || test.Image(3)[5] != cifarPixel(1003, 5) {
			t.Errorf("test split: %v, Y %v", test, test.Y)
		}
		wantFirst := "airplane"
		if nested {
			wantFirst = "AIRPLANE"
		}
		if test.Classes[0] != wantFirst || len(test.Classes) != 10 {
			t.Errorf("classes %v", test.Classes)
		}
		if err := test.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestLoadCIFAR100(t *testing.T) {
	if len(CIFAR100Classes) != 100 {
		t.Fatalf("%d CIFAR-100 class names", len(CIFAR100Classes))
	}
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-100-binary")
	fine := func(i int) byte { return byte(99 - i%100) }
	writeFile(t, filepath.Join(dir, "train.bin"), cifarRecords(6, true, fine, 0))
	writeFile(t, filepath.Join(dir, "test.bin"), cifarRecords(2, true, fine, 50))
	d, err := LoadCIFAR100(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 6 || d.NumClasses != 100 || d.Name != "cifar100" || d.Classes[99] != "worm" {
		t.Fatalf("got %v", d)
	}
	for r := range 6 {
		if d.Y[r] != int64(99-r) || d.Image(r)[7] != cifarPixel(r, 7) {
			t.Fatalf("record %d: label %d pixel %v", r, d.Y[r], d.Image(r)[7])
		}
	}
	if d, err := LoadCIFAR100(dir, false); err != nil || d.Len() != 2 || d.Y[1] != 48 {
		t.Errorf("test split: %v %v", d, err)
	}
}

func TestLoadCIFARErrors(t *testing.T) {
	ten := func(i int) byte { return byte(i % 10) }
	good := cifarRecords(3, false, ten, 0)
	badLabel := append([]byte(nil), good...)
	badLabel[3073] = 10
	good100 := cifarRecords(2, true, func(int) byte { return 5 }, 0)
	badCoarse := append([]byte(nil), good100...)
	badCoarse[3074] = 20
	badFine := append([]byte(nil), good100...)
	badFine[1] = 100

	for _, tc := range []struct {
		name     string
		data     []byte
		cifar100 bool
		target   error
		subs     []string
	}{
		{"truncated record", good[:len(good)-100], false, ErrTruncated, []string{"size 9119", "3073-byte records", "2 records and 2973 bytes"}},
		{"cifar10 read as cifar100", good, true, ErrTruncated, []string{"3074-byte records"}},
		{"empty", nil, false, ErrEmpty, nil},
		{"label out of range", badLabel, false, ErrLabelRange, []string{"label 10 of record 1", "[0,10)"}},
		{"coarse label out of range", badCoarse, true, ErrLabelRange, []string{"coarse label 20 of record 1"}},
		{"fine label out of range", badFine, true, ErrLabelRange, []string{"label 100 of record 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(t.TempDir(), "batch.bin"), tc.data)
			_, err := LoadCIFARFiles(tc.cifar100, p)
			wantErr(t, err, tc.target, append(tc.subs, "load "+p)...)
		})
	}

	t.Run("missing batch", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10(t, dir, 1, 1)
		p := filepath.Join(dir, "data_batch_4.bin")
		writeFile(t, p, nil)
		_, err := LoadCIFAR10(dir, true)
		wantErr(t, err, ErrEmpty, p)
	})
	t.Run("not a cifar dir", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadCIFAR10(dir, false)
		wantErr(t, err, fs.ErrNotExist, dir, "test_batch.bin")
		_, err = LoadCIFAR100(filepath.Join(dir, "absent"), false)
		wantErr(t, err, fs.ErrNotExist, "absent")
	})
}

package dataset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const cifarImageBytes = 3 * 32 * 32

// CIFAR10Classes are CIFAR-10's class names, indexed by label.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck"}

// CIFAR100Classes are CIFAR-100's fine class names, indexed by label.
var CIFAR100Classes = []string{
	"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
	"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
	"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
	"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
	"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
	"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
	"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
	"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
	"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
	"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
}

// LoadCIFAR10 loads CIFAR-10's binary version from dir (or from
// dir/cifar-10-batches-bin): data_batch_1.bin … data_batch_5.bin for the
// training split (50000 images), test_batch.bin for the test split (10000).
// Class names come from batches.meta.txt when present.
func LoadCIFAR10(dir string, train bool) (*Dataset, error) {
	dir, err := cifarDir(dir, "cifar-10-batches-bin", "test_batch.bin")
	if err != nil {
		return nil, err
	}
	names := []string{"test_batch.bin"}
	split := "test"
	if train {
		names = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
		split = "train"
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	d, err := LoadCIFARFiles(false, paths...)
	if err != nil {
		return nil, err
	}
	d.Name, d.Partition = "cifar10", split
	d.Classes = classNames(filepath.Join(dir, "batches.meta.txt"), CIFAR10Classes)
	return d, nil
}

// LoadCIFAR100 loads CIFAR-100's binary version from dir (or from
// dir/cifar-100-binary): train.bin or test.bin, keeping the fine labels (100
// classes). Class names come from fine_label_names.txt when present.
func LoadCIFAR100(dir string, train bool) (*Dataset, error) {
	dir, err := cifarDir(dir, "cifar-100-binary", "test.bin")
	if err != nil {
		return nil, err
	}
	name, split := "test.bin", "test"
	if train {
		name, split = "train.bin", "train"
	}
	d, err := LoadCIFARFiles(true, filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	d.Name, d.Partition = "cifar100", split
	d.Classes = classNames(filepath.Join(dir, "fine_label_names.txt"), CIFAR100Classes)
	return d, nil
}

// cifarDir returns dir, or dir/sub when marker is only found there.
func cifarDir(dir, sub, marker string) (string, error) {
	for _, d := range []string{dir, filepath.Join(dir, sub)} {
		if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
			return d, nil
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("load %s: %w", dir, err)
	}
	return "", fmt.Errorf("load %s: %w: no %s in it or in %s/", dir, fs.ErrNotExist, marker, sub)
}

// classNames reads one name per line from path, or returns fallback when the
// file is missing or does not hold len(fallback) names.
func classNames(path string, fallback []string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fallback
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			names = append(names, s)
		}
	}
	if len(names) != len(fallback) {
		return fallback
	}
	return names
}

// LoadCIFARFiles loads CIFAR binary batch files, concatenated in order. Each
// record is a label byte (CIFAR-10) or a coarse and a fine label byte
// (cifar100: the fine label is kept), then 3072 bytes: the red, green and blue
// planes of a 32×32 image, row-major.
func LoadCIFARFiles(cifar100 bool, paths ...string) (*Dataset, error) {
	labelBytes, numClasses := 1, 10
	if cifar100 {
		labelBytes, numClasses = 2, 100
	}
	rec := int64(labelBytes + cifarImageBytes)
	if len(paths) == 0 {
		return nil, fmt.Errorf("dataset: LoadCIFARFiles: %w: no files given", ErrEmpty)
	}
	// Size every file first to allocate the whole dataset once.
	counts := make([]int, len(paths))
	total := 0
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", p, err)
		}
		if st.Size() == 0 {
			return nil, fmt.Errorf("load %s: %w: file is empty", p, ErrEmpty)
		}
		if st.Size()%rec != 0 {
			return nil, fmt.Errorf("load %s: %w: size %d is not a whole number of %d-byte records (%d records and %d bytes)",
				p, ErrTruncated, st.Size(), rec, st.Size()/rec, st.Size()%rec)
		}
		counts[i] = int(st.Size() / rec)
		total += counts[i]
	}
	d := &Dataset{
		Name: "cifar10", C: 3, H: 32, W: 32, NumClasses: numClasses,
		Pix: make([]uint8, total*cifarImageBytes),
		Y:   make([]int64, total),
	}
	if cifar100 {
		d.Name = "cifar100"
	}
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	start := 0
	for i, p := range paths {
		x := d.Pix[start*cifarImageBytes : (start+counts[i])*cifarImageBytes]
		y := d.Y[start : start+counts[i]]
		start += counts[i]
		wg.Go(func() {
			if err := readCIFARFile(p, labelBytes, numClasses, x, y); err != nil {
				errs[i] = fmt.Errorf("load %s: %w", p, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// readCIFARFile decodes one batch file into x and y, sized for it.
func readCIFARFile(path string, labelBytes, numClasses int, x []uint8, y []int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rec := labelBytes + cifarImageBytes
	if len(b) != len(y)*rec {
		return fmt.Errorf("%w: file changed while loading (%d bytes, expected %d)", ErrSizeMismatch, len(b), len(y)*rec)
	}
	for i := range y {
		r := b[i*rec : (i+1)*rec]
		if labelBytes == 2 && r[0] >= 20 {
			return fmt.Errorf("%w: coarse label %d of record %d is not in [0,20)", ErrLabelRange, r[0], i)
		}
		l := r[labelBytes-1]
		if int(l) >= numClasses {
			return fmt.Errorf("%w: label %d of record %d is not in [0,%d)", ErrLabelRange, l, i, numClasses)
		}
		y[i] = int64(l)
		copy(x[i*cifarImageBytes:(i+1)*cifarImageBytes], r[labelBytes:])
	}
	return nil
}

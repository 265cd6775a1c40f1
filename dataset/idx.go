package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// IDX magic numbers for unsigned-byte arrays: 0x00 0x00, type 0x08, then the
// number of dimensions.
const (
	idxImagesMagic = 0x00000803 // uint8, 3 dimensions (N, H, W)
	idxLabelsMagic = 0x00000801 // uint8, 1 dimension (N)
)

// Class names of the MNIST family, indexed by label.
var (
	MNISTClasses        = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
		"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
)

// DebianFashionMNISTDir is where Debian's dataset-fashion-mnist package
// installs the Fashion-MNIST files.
const DebianFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// readIDX reads an idx file of unsigned bytes with the given magic, returning
// its dimensions and data. The file may be gzipped.
func readIDX(path string, magic uint32) (dims []int, data []byte, err error) {
	df, err := openDataFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer df.Close()
	defer func() {
		// Damaged gzip data decodes to garbage before the checksum catches
		// it: report the damage rather than what the garbage looks like.
		if err != nil && df.compressed() {
			if gerr := df.checkGzip(); errors.Is(gerr, ErrFormat) {
				err = gerr
			}
		}
	}()

	var hdr [4]byte
	if err := df.readFull(hdr[:], "idx magic number"); err != nil {
		return nil, nil, err
	}
	got := binary.BigEndian.Uint32(hdr[:])
	if got != magic {
		what := "images"
		if magic == idxLabelsMagic {
			what = "labels"
		}
		return nil, nil, fmt.Errorf("%w: magic number 0x%08x, want 0x%08x (idx%d unsigned-byte %s)",
			ErrFormat, got, magic, magic&0xff, what)
	}
	ndim := int(magic & 0xff)
	dimBuf := make([]byte, 4*ndim)
	if err := df.readFull(dimBuf, "idx header"); err != nil {
		return nil, nil, err
	}
	headerLen := int64(4 + 4*ndim)
	dims = make([]int, ndim)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(dimBuf[4*i:]))
		dims[i] = int(d)
		if total > 0 && d > 0 && total > (df.limit+1)/d {
			total = df.limit + 1 // saturate: beyond anything the file can hold
		} else {
			total *= d
		}
	}
	if avail := df.limit - headerLen; total > avail {
		if df.compressed() {
			return nil, nil, fmt.Errorf("%w: header dimensions %s announce %d bytes of data, more than a %d-byte gzip file can hold",
				ErrTruncated, dimString(dims), total, df.size)
		}
		return nil, nil, fmt.Errorf("%w: header dimensions %s announce %d bytes of data, file has %d",
			ErrTruncated, dimString(dims), total, avail)
	}
	data = make([]byte, total)
	if err := df.readFull(data, "data of dimensions "+dimString(dims)); err != nil {
		return nil, nil, err
	}
	if err := df.expectEOF(total); err != nil {
		return nil, nil, err
	}
	return dims, data, nil
}

func dimString(dims []int) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = fmt.Sprint(d)
	}
	return strings.Join(s, "×")
}

// LoadIDX loads images and labels from a pair of idx files (MNIST format,
// each optionally gzip-compressed, detected by content): imagesPath holds
// magic 0x00000803 and dimensions N, H, W of unsigned bytes, labelsPath magic
// 0x00000801 and N unsigned bytes. Images become C=1, held as bytes (8-bit
// storage, [Dataset.Pix]) and read as values b/255.
// NumClasses is one more than the largest label. Name is the name of the
// images file's directory, Partition "train" or "test" when the file name starts
// with "train" or "t10k".
func LoadIDX(imagesPath, labelsPath string) (*Dataset, error) {
	var (
		imgDims, lblDims []int
		img, lbl         []byte
		imgErr, lblErr   error
		done             = make(chan struct{})
	)
	go func() { // gunzip the labels while the images decompress
		defer close(done)
		lblDims, lbl, lblErr = readIDX(labelsPath, idxLabelsMagic)
	}()
	imgDims, img, imgErr = readIDX(imagesPath, idxImagesMagic)
	<-done
	if imgErr != nil {
		return nil, fmt.Errorf("load %s: %w", imagesPath, imgErr)
	}
	if lblErr != nil {
		return nil, fmt.Errorf("load %s: %w", labelsPath, lblErr)
	}
	n, h, w := imgDims[0], imgDims[1], imgDims[2]
	if n != lblDims[0] {
		return nil, fmt.Errorf("load %s: %w: %d images but %d labels in %s",
			imagesPath, ErrCountMismatch, n, lblDims[0], labelsPath)
	}
	if n == 0 {
		return nil, fmt.Errorf("load %s: %w", imagesPath, ErrEmpty)
	}
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("load %s: %w: images are %d×%d", imagesPath, ErrShape, h, w)
	}
	d := &Dataset{
		Name:      filepath.Base(filepath.Dir(imagesPath)),
		Partition: splitFromName(filepath.Base(imagesPath)),
		C:         1, H: h, W: w,
		Pix: img,
		Y:   make([]int64, n),
	}
	for i, l := range lbl {
		d.Y[i] = int64(l)
	}
	d.NumClasses = int(maxLabel(d.Y)) + 1
	return d, nil
}

func splitFromName(base string) string {
	switch {
	case strings.HasPrefix(base, "train"):
		return "train"
	case strings.HasPrefix(base, "t10k"), strings.HasPrefix(base, "test"):
		return "test"
	}
	return ""
}

// findFile returns the first of dir/name for the names that exists.
func findFile(dir string, names ...string) (string, error) {
	for _, name := range names {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: none of %s in %s", fs.ErrNotExist, strings.Join(names, ", "), dir)
}

// idxNames lists the file names the MNIST family is distributed under.
func idxNames(prefix, kind string) []string {
	var names []string
	for _, sep := range []string{"-", "."} {
		base := prefix + "-" + kind + sep + map[string]string{"images": "idx3", "labels": "idx1"}[kind] + "-ubyte"
		names = append(names, base+".gz", base)
	}
	return names
}

// LoadMNISTDir loads the training (train-*) or test (t10k-*) split of an
// MNIST-format dataset (MNIST, Fashion-MNIST, KMNIST…) from dir, which holds
// {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzipped (.gz) or not. The
// dataset has 10 classes: a label ≥ 10 is an error.
func LoadMNISTDir(dir string, train bool) (*Dataset, error) {
	prefix, split := "t10k", "test"
	if train {
		prefix, split = "train", "train"
	}
	images, err := findFile(dir, idxNames(prefix, "images")...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	labels, err := findFile(dir, idxNames(prefix, "labels")...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	d, err := LoadIDX(images, labels)
	if err != nil {
		return nil, err
	}
	if err := checkLabels(d.Y, 10); err != nil {
		return nil, fmt.Errorf("load %s: %w", labels, err)
	}
	d.Name, d.Partition = "mnist", split
	d.NumClasses, d.Classes = 10, MNISTClasses
	return d, nil
}

// LoadFashionMNIST loads Fashion-MNIST's training or test split from dir, or
// from [DefaultFashionMNISTDir] when dir is "".
func LoadFashionMNIST(dir string, train bool) (*Dataset, error) {
	if dir == "" {
		dir = DefaultFashionMNISTDir()
	}
	d, err := LoadMNISTDir(dir, train)
	if err != nil {
		return nil, err
	}
	d.Name, d.Classes = "fashion-mnist", FashionMNISTClasses
	return d, nil
}

// DefaultFashionMNISTDir returns $ROBUST_DATA_DIR/fashion-mnist when that
// directory exists, else [DebianFashionMNISTDir].
func DefaultFashionMNISTDir() string {
	return defaultDir("fashion-mnist", DebianFashionMNISTDir)
}

// DataDirEnv names the environment variable holding the root directory of
// locally stored datasets: bare dataset names in [Open] resolve to
// $ROBUST_DATA_DIR/<name>.
const DataDirEnv = "ROBUST_DATA_DIR"

// defaultDir returns $ROBUST_DATA_DIR/name if it is a directory, else
// fallback.
func defaultDir(name, fallback string) string {
	if root := os.Getenv(DataDirEnv); root != "" {
		p := filepath.Join(root, name)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return fallback
}

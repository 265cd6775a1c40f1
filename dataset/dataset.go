package dataset

import (
	"errors"
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"github.com/robust-go/robust/internal/liberr"
)

// Sentinel errors wrapped by the loaders; test for them with [errors.Is].
var (
	// ErrFormat: the file is not in the expected format (bad magic number,
	// malformed header, unsupported element type).
	ErrFormat = errors.New("dataset: bad format")
	// ErrTruncated: the file ends before the data its header announces.
	ErrTruncated = errors.New("dataset: truncated file")
	// ErrSizeMismatch: the file holds more data than its header announces,
	// or its size is not a whole number of records.
	ErrSizeMismatch = errors.New("dataset: size mismatch")
	// ErrCountMismatch: the numbers of images and labels differ.
	ErrCountMismatch = errors.New("dataset: image/label count mismatch")
	// ErrLabelRange: a label is negative or not below the number of classes.
	ErrLabelRange = errors.New("dataset: label out of range")
	// ErrShape: the images have an unsupported number of dimensions or an
	// inconsistent shape.
	ErrShape = errors.New("dataset: bad shape")
	// ErrValueRange: a pixel value is NaN or outside [0,1].
	ErrValueRange = errors.New("dataset: pixel value outside [0,1]")
	// ErrEmpty: the dataset holds no samples.
	ErrEmpty = errors.New("dataset: empty dataset")
	// ErrTooLarge: an image's header announces more pixels than the
	// loader's limit allows (see [ImageFolderOptions.MaxPixels]).
	ErrTooLarge = errors.New("dataset: image too large")
)

// Dataset is a set of N labelled images.
//
// The pixels are stored in one of three ways:
//
//   - float storage: X holds N·C·H·W float32 values in [0,1], NCHW order:
//     sample i occupies X[i*C*H*W : (i+1)*C*H*W], channel-major within it
//     (float sources such as .npy/.npz float arrays);
//   - 8-bit storage: Pix holds N·C·H·W bytes in the same order, pixel value
//     b/255 (idx and CIFAR files: a quarter of the memory of float32);
//   - streamed: neither is set, and the images are read from files and
//     decoded when a batch asks for them ([LoadImageFolder]); see [Dataset.Streamed].
//
// Whatever the storage, [Dataset.Floats] and [Dataset.Gather] produce float32
// batches in [0,1]. Y always holds the N labels in memory, each in
// [0, NumClasses).
type Dataset struct {
	Name      string // short name, e.g. "fashion-mnist", "cifar10", a file's base name
	Partition string // "train", "test" or "" when unknown

	C, H, W    int      // image shape: channels, rows, columns
	NumClasses int      // number of classes; labels lie in [0, NumClasses)
	Classes    []string // optional class names, len NumClasses when set

	X   []float32 // float storage: N·C·H·W pixel values, NCHW, in [0,1]; nil otherwise
	Pix []uint8   // 8-bit storage: N·C·H·W bytes, NCHW, value b/255; nil otherwise
	Y   []int64   // N labels

	// Skipped lists the files left out because they could not be read
	// (streamed image folders opened with SkipBad). Subset, Select, Split
	// and InMemory keep it: it describes the source the samples were
	// drawn from, which reports must name (an evaluation of the first
	// 1000 samples still ran on a folder with those files left out).
	Skipped []BadFile

	stream *stream // streamed storage; nil for in-memory data
}

// Streamed reports whether the images are read from files batch by batch
// rather than held in memory.
func (d *Dataset) Streamed() bool { return d.stream != nil }

// Floats returns the pixels of samples [lo,hi) as float32 values in [0,1],
// NCHW. With float storage the result is a view of X (no copy; do not write
// to it). Otherwise the samples are converted (8-bit storage) or read and
// decoded (streamed storage) into buf when it holds enough values, else
// into a new slice. It fails if the range is out of bounds or, for streamed
// data, if an image cannot be read; the error names the file.
func (d *Dataset) Floats(buf []float32, lo, hi int) (_ []float32, err error) {
	defer liberr.Prefix(&err, "dataset")
	if lo < 0 || hi < lo || hi > d.Len() {
		return nil, fmt.Errorf("dataset: samples [%d,%d) out of range [0,%d)", lo, hi, d.Len())
	}
	sz := d.ImageSize()
	if d.X != nil {
		return d.X[lo*sz : hi*sz : hi*sz], nil
	}
	n := (hi - lo) * sz
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	buf = buf[:n]
	if d.Pix != nil {
		bytesToUnit(buf, d.Pix[lo*sz:hi*sz])
		return buf, nil
	}
	idx := make([]int, hi-lo)
	for i := range idx {
		idx[i] = lo + i
	}
	return buf, d.stream.loadFloats(buf, idx)
}

// Gather writes the samples at the given indices (which may repeat), in that
// order, into dst as float32 values in [0,1], NCHW; dst must hold at least
// len(idx)·ImageSize() values. Streamed samples are decoded on a pool of
// goroutines. It fails if an index is out of range or an image cannot be
// read.
func (d *Dataset) Gather(dst []float32, idx []int) (err error) {
	defer liberr.Prefix(&err, "dataset")
	sz := d.ImageSize()
	if len(dst) < len(idx)*sz {
		return fmt.Errorf("dataset: gather: %d values cannot hold %d images of %d", len(dst), len(idx), sz)
	}
	for _, i := range idx {
		if i < 0 || i >= d.Len() {
			return fmt.Errorf("dataset: gather: index %d out of range [0,%d)", i, d.Len())
		}
	}
	switch {
	case d.X != nil:
		for j, i := range idx {
			copy(dst[j*sz:(j+1)*sz], d.X[i*sz:(i+1)*sz])
		}
	case d.Pix != nil:
		for j, i := range idx {
			bytesToUnit(dst[j*sz:(j+1)*sz], d.Pix[i*sz:(i+1)*sz])
		}
	default:
		return d.stream.loadFloats(dst[:len(idx)*sz], idx)
	}
	return nil
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.Y) }

// ImageSize returns the number of float32 values per sample, C·H·W.
func (d *Dataset) ImageSize() int { return d.C * d.H * d.W }

// Image returns sample i's C·H·W pixels: a view into X for float storage,
// a converted copy for 8-bit storage. It is for in-memory data: it panics on
// a streamed dataset, whose images can fail to load (use [Dataset.Gather]),
// and, like slicing, when i is out of range.
func (d *Dataset) Image(i int) []float32 {
	sz := d.ImageSize()
	switch {
	case d.X != nil:
		return d.X[i*sz : (i+1)*sz : (i+1)*sz]
	case d.Pix != nil:
		x := make([]float32, sz)
		bytesToUnit(x, d.Pix[i*sz:(i+1)*sz])
		return x
	}
	panic("dataset: Image called on streamed data " + d.Name + "; use Gather")
}

// String describes the dataset briefly, e.g. "cifar10/test: 10000×3×32×32, 10 classes".
func (d *Dataset) String() string {
	name := d.Name
	if d.Partition != "" {
		name += "/" + d.Partition
	}
	return fmt.Sprintf("%s: %d×%d×%d×%d, %d classes", name, d.Len(), d.C, d.H, d.W, d.NumClasses)
}

// Validate checks the dataset's invariants: positive shape and class count,
// one storage (X, Pix or a stream), len(X) or len(Pix) == Len()·C·H·W, every
// label in [0, NumClasses), every float pixel in [0,1] (no NaN), and
// len(Classes) equal to NumClasses when names are given. An empty dataset is
// valid. Streamed images are not read.
func (d *Dataset) Validate() (err error) {
	defer liberr.Prefix(&err, "dataset")
	if d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("%w: image shape %d×%d×%d must be positive", ErrShape, d.C, d.H, d.W)
	}
	if d.NumClasses <= 0 {
		return fmt.Errorf("%w: NumClasses is %d", ErrLabelRange, d.NumClasses)
	}
	if d.Classes != nil && len(d.Classes) != d.NumClasses {
		return fmt.Errorf("%w: %d class names for %d classes", ErrCountMismatch, len(d.Classes), d.NumClasses)
	}
	if err := checkLabels(d.Y, d.NumClasses); err != nil {
		return err
	}
	if d.X != nil && d.Pix != nil || d.stream != nil && (d.X != nil || d.Pix != nil) {
		return fmt.Errorf("%w: more than one of X, Pix and a stream hold the images", ErrShape)
	}
	if d.stream != nil {
		if len(d.stream.items) != len(d.Y) {
			return fmt.Errorf("%w: %d files for %d labels", ErrCountMismatch, len(d.stream.items), len(d.Y))
		}
		return nil
	}
	want := len(d.Y) * d.ImageSize()
	if d.Pix != nil || len(d.X) == 0 && want == 0 {
		if len(d.Pix) != want {
			return fmt.Errorf("%w: %d pixel bytes for %d images of %d×%d×%d (want %d)",
				ErrSizeMismatch, len(d.Pix), len(d.Y), d.C, d.H, d.W, want)
		}
		return nil
	}
	if len(d.X) != want {
		return fmt.Errorf("%w: %d pixel values for %d images of %d×%d×%d (want %d)",
			ErrSizeMismatch, len(d.X), len(d.Y), d.C, d.H, d.W, want)
	}
	return checkPixels(d.X, d.ImageSize())
}

// checkLabels reports the first label outside [0, numClasses).
func checkLabels(y []int64, numClasses int) error {
	for i, l := range y {
		if l < 0 || l >= int64(numClasses) {
			return fmt.Errorf("%w: label %d of sample %d is not in [0,%d)", ErrLabelRange, l, i, numClasses)
		}
	}
	return nil
}

// checkPixels reports the first value that is NaN or outside [0,1].
func checkPixels(x []float32, imageSize int) error {
	for i, v := range x {
		if !(v >= 0 && v <= 1) { // also catches NaN
			return fmt.Errorf("%w: value %v at sample %d, offset %d", ErrValueRange, v, i/imageSize, i%imageSize)
		}
	}
	return nil
}

// maxLabel returns the largest label, or -1 for none.
func maxLabel(y []int64) int64 {
	m := int64(-1)
	for _, l := range y {
		m = max(m, l)
	}
	return m
}

// like returns an empty dataset with d's metadata (and its list of
// skipped files).
func (d *Dataset) like() *Dataset {
	return &Dataset{
		Name: d.Name, Partition: d.Partition,
		C: d.C, H: d.H, W: d.W,
		NumClasses: d.NumClasses, Classes: d.Classes, Skipped: d.Skipped,
	}
}

// Subset returns the first n samples (all of them if n ≥ Len(); none if
// n ≤ 0). The result shares d's storage: writes through one are seen by the
// other, but appending to the subset's slices never overwrites d's data.
func (d *Dataset) Subset(n int) *Dataset {
	n = min(max(n, 0), d.Len())
	s := d.like()
	sz := d.ImageSize()
	switch {
	case d.X != nil:
		s.X = d.X[: n*sz : n*sz]
	case d.Pix != nil:
		s.Pix = d.Pix[: n*sz : n*sz]
	case d.stream != nil:
		s.stream = d.stream.subset(d.stream.items[:n:n])
	}
	s.Y = d.Y[:n:n]
	return s
}

// Select returns the samples at the given indices, in that order (indices
// may repeat), in the same storage as d: a copy of the pixels for in-memory
// data, a new list of the same files for streamed data (so selecting a
// slice of a large image folder, e.g. one shard of an evaluation, reads
// nothing). It fails if an index is out of range.
func (d *Dataset) Select(indices []int) (_ *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	n := d.Len()
	for _, i := range indices {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("dataset: select: index %d out of range [0,%d)", i, n)
		}
	}
	s := d.like()
	sz := d.ImageSize()
	s.Y = make([]int64, len(indices))
	for j, i := range indices {
		s.Y[j] = d.Y[i]
	}
	switch {
	case d.X != nil:
		s.X = make([]float32, len(indices)*sz)
		for j, i := range indices {
			copy(s.X[j*sz:(j+1)*sz], d.X[i*sz:(i+1)*sz])
		}
	case d.Pix != nil:
		s.Pix = make([]uint8, len(indices)*sz)
		for j, i := range indices {
			copy(s.Pix[j*sz:(j+1)*sz], d.Pix[i*sz:(i+1)*sz])
		}
	case d.stream != nil:
		items := make([]streamItem, len(indices))
		for j, i := range indices {
			items[j] = d.stream.items[i]
		}
		s.stream = d.stream.subset(items)
	}
	return s, nil
}

// Split holds out a validation set: heldout samples drawn at random (as a
// function of seed only), returned as val, and the remaining ones as train.
// Both keep the original relative order of their samples and are copies.
// heldout must be in [0, Len()).
func (d *Dataset) Split(heldout int, seed uint64) (train, val *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	n := d.Len()
	if heldout < 0 || heldout >= n {
		return nil, nil, fmt.Errorf("dataset: split: cannot hold out %d of %d samples", heldout, n)
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	shuffle(perm, newSource(seed, splitStream))
	valIdx := toInts(perm[:heldout])
	trainIdx := toInts(perm[heldout:])
	slices.Sort(valIdx)
	slices.Sort(trainIdx)
	if train, err = d.Select(trainIdx); err != nil {
		return nil, nil, err
	}
	if val, err = d.Select(valIdx); err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

func toInts(p []int32) []int {
	out := make([]int, len(p))
	for i, v := range p {
		out[i] = int(v)
	}
	return out
}

// Slice returns samples [lo, hi) of in-memory data as a Batch: it shares
// d's storage (no copy) for float storage and holds converted copies for
// 8-bit storage. It panics if the range is out of bounds, like slicing
// does, and on streamed data (use [Dataset.Floats]).
func (d *Dataset) Slice(lo, hi int) Batch {
	if d.stream != nil {
		panic("dataset: Slice called on streamed data " + d.Name + "; use Floats")
	}
	sz := d.ImageSize()
	x := d.X
	if x == nil {
		x = make([]float32, (hi-lo)*sz)
		bytesToUnit(x, d.Pix[lo*sz:hi*sz])
		return NewBatch(x, d.Y[lo:hi:hi], d.C, d.H, d.W)
	}
	return NewBatch(x[lo*sz:hi*sz:hi*sz], d.Y[lo:hi:hi], d.C, d.H, d.W)
}

// Batch is a minibatch of n samples.
type Batch struct {
	// X is the images as a float32 tensor of shape [n, C, H, W], or nil when
	// n is 0 (gorgonia tensors cannot be empty).
	X *tensor.Dense
	// Data is X's backing array, n·C·H·W values in NCHW order, for code that
	// copies batches into other runtimes' tensors without going through
	// gorgonia.
	Data []float32
	// Y holds the n labels.
	Y []int64
}

// NewBatch wraps x (len(y)·c·h·w values, NCHW) and y as a Batch without
// copying them. It panics if the lengths disagree.
func NewBatch(x []float32, y []int64, c, h, w int) Batch {
	n := len(y)
	if len(x) != n*c*h*w {
		panic(fmt.Sprintf("dataset: NewBatch: %d values for %d images of %d×%d×%d", len(x), n, c, h, w))
	}
	b := Batch{Data: x, Y: y}
	if n > 0 {
		b.X = tensor.New(tensor.WithShape(n, c, h, w), tensor.WithBacking(x))
	}
	return b
}

// Len returns the number of samples in the batch.
func (b Batch) Len() int { return len(b.Y) }

// SaveNPZ writes the dataset to an .npz archive readable by [LoadNPZ] and by
// numpy.load: "x" float32 of shape (N, C, H, W), "y" int64 of shape (N,), and
// "num_classes", an int64 scalar.
func (d *Dataset) SaveNPZ(path string) (err error) {
	defer liberr.Prefix(&err, "dataset")
	if err := d.Validate(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	x, err := d.Floats(nil, 0, d.Len())
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return WriteNPZ(path, map[string]Array{
		"x":           {Shape: []int{d.Len(), d.C, d.H, d.W}, Data: x},
		"y":           {Shape: []int{d.Len()}, Data: d.Y},
		"num_classes": {Shape: []int{}, Data: []int64{int64(d.NumClasses)}},
	})
}

// u8ToFloat maps a byte b to float32(b)/255.
var u8ToFloat = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// bytesToUnit converts bytes to float32 values in [0,1] (b/255).
func bytesToUnit(dst []float32, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = u8ToFloat[b]
	}
}

// InMemory returns d with its images held in memory: d itself for
// in-memory data; for streamed data, a copy whose images are read, decoded
// and kept as bytes (8-bit storage; C·H·W bytes per sample). It is for
// commands that need random access to a modest number of samples (an
// attack on a subset); it fails, naming the file, if an image cannot be
// read.
func (d *Dataset) InMemory() (_ *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	if d.stream == nil {
		return d, nil
	}
	m := d.like()
	m.Y = d.Y
	m.Pix = make([]uint8, d.Len()*d.ImageSize())
	idx := make([]int, d.Len())
	for i := range idx {
		idx[i] = i
	}
	if err := d.stream.load(m.Pix, idx, nil); err != nil {
		return nil, err
	}
	return m, nil
}

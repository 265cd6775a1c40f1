package dataset

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
)

// FromArrays builds a Dataset from NumPy-style arrays.
//
// x holds the images, float32, float64 (values in [0,1]) or uint8 (scaled by
// 1/255), shaped (N, H, W) for one channel, or (N, C, H, W) or (N, H, W, C)
// (transposed to NCHW). The channel axis is dimension 1 if its size is 1 or
// 3, else dimension 3 if its size is 1 or 3, else whichever of the two has
// size at most 4, dimension 1 first. y holds N labels of any integer type, shaped (N) or
// (N, 1). numClasses, when positive, fixes the number of classes (labels must
// be below it); otherwise it is one more than the largest label. A float32 x
// already in NCHW order is used without copying.
func FromArrays(x, y Array, numClasses int) (_ *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	return fromArrays(x, y, numClasses)
}

// fromArrays is [FromArrays] without the package prefix, for the loaders,
// which add the file names.
func fromArrays(x, y Array, numClasses int) (*Dataset, error) {
	if _, err := x.check(); err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	if _, err := y.check(); err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	var n, c, h, w int
	nhwc := false
	switch s := x.Shape; len(s) {
	case 3:
		n, c, h, w = s[0], 1, s[1], s[2]
	case 4:
		switch rgb := func(c int) bool { return c == 1 || c == 3 }; {
		case rgb(s[1]):
		case rgb(s[3]):
			nhwc = true
		case s[1] <= 4:
		case s[3] <= 4:
			nhwc = true
		default:
			return nil, fmt.Errorf("x: %w: shape %v has no channel axis (dimension 1 or 3 of size ≤ 4)", ErrShape, x.Shape)
		}
		n, c, h, w = s[0], s[1], s[2], s[3]
		if nhwc {
			c, h, w = s[3], s[1], s[2]
		}
	default:
		return nil, fmt.Errorf("x: %w: shape %v, want (N,H,W), (N,C,H,W) or (N,H,W,C)", ErrShape, x.Shape)
	}
	if n == 0 {
		return nil, fmt.Errorf("x: %w: shape %v", ErrEmpty, x.Shape)
	}
	if c == 0 || h == 0 || w == 0 {
		return nil, fmt.Errorf("x: %w: shape %v has an empty image dimension", ErrShape, x.Shape)
	}
	if !(len(y.Shape) == 1 || len(y.Shape) == 2 && y.Shape[1] == 1) {
		return nil, fmt.Errorf("y: %w: shape %v, want (N,) or (N,1)", ErrShape, y.Shape)
	}
	if y.Shape[0] != n {
		return nil, fmt.Errorf("%w: x has %d images but y has %d labels", ErrCountMismatch, n, y.Shape[0])
	}
	labels, err := labelsFrom(y)
	if err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	if numClasses <= 0 {
		numClasses = int(maxLabel(labels)) + 1
	}
	if err := checkLabels(labels, numClasses); err != nil {
		return nil, fmt.Errorf("y: %w", err)
	}
	pix, err := pixelsFrom(x)
	if err != nil {
		return nil, fmt.Errorf("x: %w", err)
	}
	if nhwc {
		pix = nhwcToNCHW(pix, n, h, w, c)
	}
	return &Dataset{C: c, H: h, W: w, NumClasses: numClasses, X: pix, Y: labels}, nil
}

// pixelsFrom converts image data to float32 values in [0,1], checking the
// range of floating-point data.
func pixelsFrom(a Array) ([]float32, error) {
	switch v := a.Data.(type) {
	case []uint8:
		return unitFromBytes(v), nil
	case []float32:
		if err := checkPixels(v, max(1, len(v)/max(1, a.Shape[0]))); err != nil {
			return nil, err
		}
		return v, nil
	case []float64:
		out := make([]float32, len(v))
		for i, f := range v {
			if !(f >= 0 && f <= 1) {
				sz := len(v) / a.Shape[0]
				return nil, fmt.Errorf("%w: value %v at sample %d, offset %d", ErrValueRange, f, i/sz, i%sz)
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	t, _, _ := dataDtype(a.Data)
	return nil, fmt.Errorf("%w: images of type %s, want float32, float64 or uint8", ErrFormat, t)
}

// labelsFrom converts integer label data to int64.
func labelsFrom(a Array) ([]int64, error) {
	switch v := a.Data.(type) {
	case []int64:
		return v, nil
	case []int32:
		return convertLabels(v), nil
	case []int16:
		return convertLabels(v), nil
	case []int8:
		return convertLabels(v), nil
	case []uint8:
		return convertLabels(v), nil
	case []uint16:
		return convertLabels(v), nil
	case []uint32:
		return convertLabels(v), nil
	case []uint64:
		for i, l := range v {
			if l > 1<<62 {
				return nil, fmt.Errorf("%w: label %d of sample %d", ErrLabelRange, l, i)
			}
		}
		return convertLabels(v), nil
	}
	t, _, _ := dataDtype(a.Data)
	return nil, fmt.Errorf("%w: labels of type %s, want an integer type", ErrFormat, t)
}

func convertLabels[T int8 | int16 | int32 | uint8 | uint16 | uint32 | uint64](v []T) []int64 {
	out := make([]int64, len(v))
	for i, l := range v {
		out[i] = int64(l)
	}
	return out
}

// nhwcToNCHW transposes n images of h×w×c values to c×h×w.
func nhwcToNCHW(src []float32, n, h, w, c int) []float32 {
	dst := make([]float32, len(src))
	sz := c * h * w
	parallelFor(n, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s, d := src[i*sz:(i+1)*sz], dst[i*sz:(i+1)*sz]
			for p := range h * w {
				for ch := range c {
					d[ch*h*w+p] = s[p*c+ch]
				}
			}
		}
	})
	return dst
}

// pickKey returns the first candidate present in keys.
func pickKey(keys map[string]bool, candidates ...string) string {
	for _, k := range candidates {
		if keys[k] {
			return k
		}
	}
	return ""
}

// LoadNPZ loads a dataset from an .npz archive. The images are the array
// "x_<split>" (as in Keras's mnist.npz) when split is not empty and the
// archive has it, else "x" (or "X", "images"); the labels likewise
// "y_<split>", "y", "Y" or "labels". An int scalar "num_classes", when
// present, fixes the number of classes (see [FromArrays] for the accepted
// shapes and types). [Dataset.SaveNPZ] writes such archives.
func LoadNPZ(path, split string) (_ *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	z, err := openNPZ(path)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	keys := map[string]bool{}
	for _, k := range z.keys() {
		keys[k] = true
	}
	var xKey, yKey string
	if split != "" {
		xKey, yKey = pickKey(keys, "x_"+split, "X_"+split), pickKey(keys, "y_"+split, "Y_"+split)
	}
	part := split
	if xKey == "" || yKey == "" {
		xKey, yKey = pickKey(keys, "x", "X", "images"), pickKey(keys, "y", "Y", "labels")
		part = ""
	}
	if xKey == "" || yKey == "" {
		return nil, fmt.Errorf("load %s: %w: no image and label arrays (want keys x and y, or x_%s and y_%s; have %s)",
			path, ErrFormat, split, split, strings.Join(z.keys(), ", "))
	}
	x, err := z.read(xKey)
	if err != nil {
		return nil, err
	}
	y, err := z.read(yKey)
	if err != nil {
		return nil, err
	}
	numClasses := 0
	if keys["num_classes"] {
		a, err := z.read("num_classes")
		if err != nil {
			return nil, err
		}
		l, err := labelsFrom(a)
		if err != nil || len(l) != 1 || l[0] <= 0 || l[0] > 1<<31 {
			return nil, fmt.Errorf("load %s: %w: num_classes must be one positive integer", path, ErrFormat)
		}
		numClasses = int(l[0])
	}
	d, err := fromArrays(x, y, numClasses)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	d.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	d.Partition = part
	return d, nil
}

// LoadNPYPair loads a dataset from two .npy files, images and labels (see
// [FromArrays]; numClasses ≤ 0 infers the number of classes from the labels).
func LoadNPYPair(xPath, yPath string, numClasses int) (_ *Dataset, err error) {
	defer liberr.Prefix(&err, "dataset")
	x, err := ReadNPY(xPath)
	if err != nil {
		return nil, err
	}
	y, err := ReadNPY(yPath)
	if err != nil {
		return nil, err
	}
	d, err := fromArrays(x, y, numClasses)
	if err != nil {
		return nil, fmt.Errorf("load %s, %s: %w", xPath, yPath, err)
	}
	d.Name = strings.TrimSuffix(filepath.Base(xPath), filepath.Ext(xPath))
	return d, nil
}

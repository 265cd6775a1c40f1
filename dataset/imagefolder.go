package dataset

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register decoders
	_ "image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ImageFolderOptions controls [LoadImageFolder].
type ImageFolderOptions struct {
	// Resize scales each image so that its shorter side has this length
	// (bilinear, antialiased when shrinking, like PIL and torchvision).
	// 0 means the same as Crop.
	Resize int
	// Crop is the side of the square center crop taken from the resized
	// image. 0 means 224 (and then Resize 0 means 256: the standard
	// ImageNet evaluation transform).
	Crop int
	// MaxPerClass, when positive, keeps only the first MaxPerClass images
	// (in file-name order) of each class.
	MaxPerClass int
	// Workers is the number of decoding goroutines; 0 means GOMAXPROCS.
	Workers int
}

func (o ImageFolderOptions) sizes() (resize, crop int) {
	resize, crop = o.Resize, o.Crop
	if crop <= 0 {
		crop = 224
		if resize <= 0 {
			resize = 256
		}
	}
	if resize <= 0 {
		resize = crop
	}
	return resize, crop
}

// imageExts are the file extensions LoadImageFolder reads (case-insensitive).
var imageExts = []string{".jpg", ".jpeg", ".png"}

// LoadImageFolder loads an ImageNet-style directory: one subdirectory per
// class, classes numbered in name order, each holding .jpg/.jpeg/.png images
// (other files and hidden entries are skipped). Each image is converted to
// RGB, resized so that its shorter side is opts.Resize, and center-cropped
// to opts.Crop×opts.Crop (zero-padded if smaller). A class folder without
// images, or an image that fails to decode, is an error.
func LoadImageFolder(dir string, opts ImageFolderOptions) (*Dataset, error) {
	resize, crop := opts.sizes()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	type item struct {
		path  string
		label int
	}
	var (
		classes []string
		items   []item
	)
	for _, e := range entries { // ReadDir sorts by name
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", dir, err)
		}
		count := 0
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") ||
				!slices.Contains(imageExts, strings.ToLower(filepath.Ext(f.Name()))) {
				continue
			}
			if opts.MaxPerClass > 0 && count == opts.MaxPerClass {
				break
			}
			items = append(items, item{filepath.Join(dir, e.Name(), f.Name()), len(classes)})
			count++
		}
		if count == 0 {
			return nil, fmt.Errorf("load %s: %w: class folder %q has no .jpg/.jpeg/.png images", dir, ErrEmpty, e.Name())
		}
		classes = append(classes, e.Name())
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("load %s: %w: no class subdirectories", dir, ErrEmpty)
	}

	sz := 3 * crop * crop
	d := &Dataset{
		Name: filepath.Base(filepath.Clean(dir)),
		C:    3, H: crop, W: crop,
		NumClasses: len(classes), Classes: classes,
		X: make([]float32, len(items)*sz),
		Y: make([]int64, len(items)),
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errMu    sync.Mutex
		firstErr error
		firstIdx = len(items)
		wg       sync.WaitGroup
	)
	for range min(workers, len(items)) {
		wg.Go(func() {
			var rs resizer
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				it := items[i]
				d.Y[i] = int64(it.label)
				if err := loadImage(it.path, resize, crop, d.X[i*sz:(i+1)*sz], &rs); err != nil {
					errMu.Lock()
					if i < firstIdx { // report the first bad file in order
						firstIdx, firstErr = i, fmt.Errorf("load %s: %w", it.path, err)
					}
					errMu.Unlock()
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return d, nil
}

// maxImagePixels bounds the size of images LoadImageFolder decodes, so that
// a corrupt header cannot make it allocate without bound.
const maxImagePixels = 1 << 27

// loadImage decodes one image file into dst (3·crop·crop values, CHW).
func loadImage(path string, resize, crop int, dst []float32, rs *resizer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return fmt.Errorf("%w: not a JPEG or PNG image", ErrFormat)
		}
		return fmt.Errorf("%w: decode: %v", ErrFormat, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return fmt.Errorf("%w: %d×%d image exceeds %d pixels", ErrShape, cfg.Width, cfg.Height, maxImagePixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return fmt.Errorf("%w: not a JPEG or PNG image", ErrFormat)
		}
		return fmt.Errorf("%w: decode: %v", ErrFormat, err)
	}
	b := img.Bounds()
	if b.Empty() {
		return fmt.Errorf("%w: image is empty", ErrShape)
	}
	rs.src = toPlanarRGB(img, rs.src)
	rs.resizeCrop(dst, b.Dx(), b.Dy(), resize, crop)
	return nil
}

// toPlanarRGB converts img to three planes of float32 values in [0,1],
// reusing buf when large enough.
func toPlanarRGB(img image.Image, buf []float32) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := w * h
	if cap(buf) < 3*n {
		buf = make([]float32, 3*n)
	}
	buf = buf[:3*n]
	r, g, bl := buf[:n], buf[n:2*n], buf[2*n:]
	switch m := img.(type) {
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				p := y*w + x
				r[p], g[p], bl[p] = u8ToFloat[cr], u8ToFloat[cg], u8ToFloat[cb]
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			for x, v := range row {
				p := y*w + x
				r[p], g[p], bl[p] = u8ToFloat[v], u8ToFloat[v], u8ToFloat[v]
			}
		}
	case *image.NRGBA: // PNG with alpha: drop alpha, as PIL's convert("RGB") does
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				p := y*w + x
				r[p], g[p], bl[p] = u8ToFloat[row[4*x]], u8ToFloat[row[4*x+1]], u8ToFloat[row[4*x+2]]
			}
		}
	case *image.RGBA: // opaque PNG (premultiplied: un-premultiply if not)
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				p := y*w + x
				if a := row[4*x+3]; a == 0xff {
					r[p], g[p], bl[p] = u8ToFloat[row[4*x]], u8ToFloat[row[4*x+1]], u8ToFloat[row[4*x+2]]
				} else {
					c := color.NRGBAModel.Convert(color.RGBA{row[4*x], row[4*x+1], row[4*x+2], a}).(color.NRGBA)
					r[p], g[p], bl[p] = u8ToFloat[c.R], u8ToFloat[c.G], u8ToFloat[c.B]
				}
			}
		}
	default:
		// Generic path (slow): via NRGBA, so alpha is dropped as above.
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				p := y*w + x
				r[p], g[p], bl[p] = u8ToFloat[c.R], u8ToFloat[c.G], u8ToFloat[c.B]
			}
		}
	}
	return buf
}

// resizer holds scratch buffers for resizing one image at a time.
type resizer struct {
	src []float32 // planar RGB source
	tmp []float32 // horizontally filtered rows
	wx  filter
	wy  filter
}

// filter gives, for each output pixel, the first contributing input pixel and
// the normalised weights of the contiguous inputs from there.
type filter struct {
	start  []int
	n      []int
	w      []float32 // len(start)·stride
	stride int
}

// build computes triangle-filter (bilinear) weights mapping an input axis of
// length in onto a scaled axis of length out, for the count output pixels
// starting at offset (pixels outside [0,out) get no weights: zero padding).
// When shrinking, the filter widens by the scale factor (antialiasing), as in
// PIL's resize.
func (f *filter) build(in, out, offset, count int) {
	scale := float64(in) / float64(out)
	support := max(scale, 1)
	f.stride = int(math.Ceil(support))*2 + 1
	f.start = slices.Grow(f.start[:0], count)[:count]
	f.n = slices.Grow(f.n[:0], count)[:count]
	f.w = slices.Grow(f.w[:0], count*f.stride)[:count*f.stride]
	clear(f.w)
	for j := range count {
		o := j + offset
		f.start[j], f.n[j] = 0, 0
		if o < 0 || o >= out {
			continue
		}
		center := (float64(o) + 0.5) * scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), in)
		w := f.w[j*f.stride : (j+1)*f.stride]
		var sum float64
		k := 0
		for i := lo; i < hi && k < f.stride; i++ {
			t := 1 - math.Abs((float64(i)+0.5-center)/support)
			if t <= 0 {
				if k == 0 {
					lo++
					continue
				}
				break
			}
			w[k] = float32(t)
			sum += t
			k++
		}
		if sum > 0 {
			for i := range k {
				w[i] = float32(float64(w[i]) / sum)
			}
		}
		f.start[j], f.n[j] = lo, k
	}
}

// resizeCrop resizes the planar RGB image in r.src (sw×sh) so that its
// shorter side is resize, and writes the centered crop×crop window into dst.
func (r *resizer) resizeCrop(dst []float32, sw, sh, resize, crop int) {
	var rw, rh int
	if sw <= sh {
		rw, rh = resize, int(float64(resize)*float64(sh)/float64(sw))
	} else {
		rw, rh = int(float64(resize)*float64(sw)/float64(sh)), resize
	}
	rw, rh = max(rw, 1), max(rh, 1)
	// Python's round (half to even), as torchvision's CenterCrop uses.
	top := int(math.RoundToEven(float64(rh-crop) / 2))
	left := int(math.RoundToEven(float64(rw-crop) / 2))
	r.wx.build(sw, rw, left, crop)
	r.wy.build(sh, rh, top, crop)

	// Source rows needed by the crop.
	rowLo, rowHi := sh, 0
	for j := range crop {
		if r.wy.n[j] > 0 {
			rowLo = min(rowLo, r.wy.start[j])
			rowHi = max(rowHi, r.wy.start[j]+r.wy.n[j])
		}
	}
	clear(dst)
	if rowLo >= rowHi {
		return
	}
	nrows := rowHi - rowLo
	r.tmp = slices.Grow(r.tmp[:0], nrows*crop)[:nrows*crop]
	for c := range 3 {
		plane := r.src[c*sw*sh : (c+1)*sw*sh]
		// Horizontal pass: rows [rowLo,rowHi) → tmp (nrows×crop).
		for y := rowLo; y < rowHi; y++ {
			srow := plane[y*sw : (y+1)*sw]
			trow := r.tmp[(y-rowLo)*crop : (y-rowLo+1)*crop]
			for x := range crop {
				w := r.wx.w[x*r.wx.stride : x*r.wx.stride+r.wx.n[x]]
				s := srow[r.wx.start[x]:]
				var acc float32
				for k, wk := range w {
					acc += wk * s[k]
				}
				trow[x] = acc
			}
		}
		// Vertical pass: tmp → dst plane.
		out := dst[c*crop*crop : (c+1)*crop*crop]
		for y := range crop {
			w := r.wy.w[y*r.wy.stride : y*r.wy.stride+r.wy.n[y]]
			orow := out[y*crop : (y+1)*crop]
			for k, wk := range w {
				trow := r.tmp[(r.wy.start[y]+k-rowLo)*crop : (r.wy.start[y]+k-rowLo+1)*crop]
				for x := range crop {
					orow[x] += wk * trow[x]
				}
			}
			for x := range orow {
				orow[x] = min(max(orow[x], 0), 1)
			}
		}
	}
}

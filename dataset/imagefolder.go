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

	_ "golang.org/x/image/bmp" // more formats than the standard library's
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// DefaultMaxPixels is the largest image (width × height) an image folder
// decodes unless [ImageFolderOptions.MaxPixels] raises it: PIL's own
// decompression-bomb limit (Image.MAX_IMAGE_PIXELS, 89,478,485 pixels,
// about 0.25 GiB as RGBA).
const DefaultMaxPixels = 89_478_485

// ImageFolderOptions controls [LoadImageFolder].
type ImageFolderOptions struct {
	// Resize scales each image so that its shorter side has this length
	// (bilinear, antialiased when shrinking, like torchvision's Resize on
	// PIL images). 0 means the same as Crop.
	Resize int
	// Crop is the side of the square center crop taken from the resized
	// image (torchvision's CenterCrop, zero-padded if the image is
	// smaller). 0 means 224 (and then Resize 0 means 256: the standard
	// ImageNet evaluation transform).
	Crop int
	// MaxPerClass, when positive, keeps only the first MaxPerClass images
	// (in file-name order) of each class.
	MaxPerClass int
	// Workers is the number of decoding goroutines; 0 means GOMAXPROCS.
	Workers int
	// MaxPixels refuses images whose header announces more than this many
	// pixels (width × height), before decoding them: a decompression bomb
	// cannot make the loader allocate without bound. 0 means
	// [DefaultMaxPixels].
	MaxPixels int64
	// SkipBad leaves out unreadable files (undecodable, truncated, too
	// large) instead of failing, and records them in [Dataset.Skipped]. To
	// know them all before the first batch, every file is then decoded once
	// while the folder is listed (one extra decoding pass); without SkipBad
	// only the headers are read up front, and a file found damaged later
	// stops the batch that needs it with an error naming the file.
	SkipBad bool
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

func (o ImageFolderOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// imageExts are the file extensions LoadImageFolder reads (case-insensitive).
var imageExts = []string{".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

// BadFile is an image file left out of a data set (see
// [ImageFolderOptions.SkipBad]).
type BadFile struct {
	Path string `json:"path"`
	Err  string `json:"error"` // why it could not be used
}

// LoadImageFolder opens an ImageNet-style directory as a streamed
// [Dataset]: one subdirectory per class, classes numbered in name order,
// each holding image files (.jpg/.jpeg/.png, and .bmp/.tif/.tiff/.webp;
// other files and hidden entries are skipped).
//
// The files are listed and their headers checked up front; images are
// decoded only when a batch needs them, on a pool of opts.Workers
// goroutines, so memory does not grow with the folder's size. Each image is
// converted to RGB (alpha dropped, as PIL's convert("RGB") does), resized
// so that its shorter side is opts.Resize and center-cropped to
// opts.Crop×opts.Crop, like torchvision's Resize + CenterCrop on PIL images
// (bilinear, antialiased, 8-bit result). An [Iterator] with
// [Augment.ResizedCrop] applies torchvision's RandomResizedCrop instead.
//
// A class folder without images is an error. An image that is not in a
// known format, or whose header announces more than opts.MaxPixels pixels,
// is an error naming the file, unless opts.SkipBad is set.
func LoadImageFolder(dir string, opts ImageFolderOptions) (*Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	var (
		classes []string
		items   []streamItem
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
			items = append(items, streamItem{path: filepath.Join(dir, e.Name(), f.Name()), label: len(classes)})
			count++
		}
		if count == 0 {
			return nil, fmt.Errorf("load %s: %w: class folder %q has no image files", dir, ErrEmpty, e.Name())
		}
		classes = append(classes, e.Name())
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("load %s: %w: no class subdirectories", dir, ErrEmpty)
	}
	return newStreamed(dir, filepath.Base(filepath.Clean(dir)), items, classes, len(classes), opts)
}

// newStreamed returns a streamed data set of items, checking them as
// opts says; where names the source in errors.
func newStreamed(where, name string, items []streamItem, classes []string, numClasses int, opts ImageFolderOptions) (*Dataset, error) {
	resize, crop := opts.sizes()
	s := &stream{items: items, resize: resize, crop: crop, workers: opts.workers(), maxPixels: opts.MaxPixels}
	if s.maxPixels <= 0 {
		s.maxPixels = DefaultMaxPixels
	}
	bad, err := s.check(opts.SkipBad)
	if err != nil {
		return nil, err
	}
	if len(s.items) == 0 {
		return nil, fmt.Errorf("load %s: %w: all %d images are unreadable", where, ErrEmpty, len(bad))
	}
	d := &Dataset{
		Name: name,
		C:    3, H: crop, W: crop,
		NumClasses: numClasses, Classes: classes,
		Skipped: bad,
		stream:  s,
	}
	d.Y = make([]int64, len(s.items))
	for i, it := range s.items {
		d.Y[i] = int64(it.label)
	}
	return d, nil
}

// streamItem is one image of a streamed data set: a file, or a member of
// a tar shard.
type streamItem struct {
	path  string // the file, or "SHARD.tar:MEMBER" (for messages)
	label int
	// shard, when not empty, is the tar file holding the image's bytes at
	// [offset, offset+size).
	shard        string
	offset, size int64
}

// open returns the image's bytes.
func (it streamItem) open() (io.ReadSeeker, io.Closer, error) {
	name := it.path
	if it.shard != "" {
		name = it.shard
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	if it.shard == "" {
		return f, f, nil
	}
	return io.NewSectionReader(f, it.offset, it.size), f, nil
}

// stream reads and preprocesses the images of a streamed [Dataset].
type stream struct {
	items        []streamItem
	resize, crop int
	workers      int
	maxPixels    int64
	scratch      sync.Pool // *decoder
	bytes        sync.Pool // *[]uint8, loadFloats's decoded batches
}

// subset returns a stream over items with s's settings.
func (s *stream) subset(items []streamItem) *stream {
	return &stream{items: items, resize: s.resize, crop: s.crop, workers: s.workers, maxPixels: s.maxPixels}
}

// check reads every file's header (and with full, decodes every file),
// in parallel. With full (--skip-bad) unreadable files are removed from
// s.items and returned; otherwise the first unreadable file in order is an
// error.
func (s *stream) check(full bool) ([]BadFile, error) {
	errs := make([]error, len(s.items))
	s.parallel(len(s.items), func(i int, dec *decoder) {
		if full {
			_, errs[i] = dec.decode(s.items[i], s.maxPixels)
		} else {
			errs[i] = dec.header(s.items[i], s.maxPixels)
		}
	})
	var bad []BadFile
	kept := s.items[:0]
	for i, err := range errs {
		if err == nil {
			kept = append(kept, s.items[i])
			continue
		}
		if !full {
			return nil, fmt.Errorf("load %s: %w", s.items[i].path, err)
		}
		bad = append(bad, BadFile{Path: s.items[i].path, Err: err.Error()})
	}
	s.items = slices.Clip(kept)
	return bad, nil
}

// parallel calls fn(i) for i in [0,n) on up to s.workers goroutines, each
// with its own decoder.
func (s *stream) parallel(n int, fn func(i int, dec *decoder)) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(s.workers, n) {
		wg.Go(func() {
			dec, _ := s.scratch.Get().(*decoder)
			if dec == nil {
				dec = new(decoder)
			}
			defer s.scratch.Put(dec)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i, dec)
			}
		})
	}
	wg.Wait()
}

// sampleAug is the random training transform of one sample.
type sampleAug struct {
	resizedCrop bool // torchvision RandomResizedCrop to crop×crop
	flip        bool // then mirror horizontally
	seed        [2]uint64
}

// load decodes and preprocesses the images idx into dst (len(idx)·3·crop²
// bytes, NCHW). aug, when not nil, gives each sample's training transform;
// otherwise the evaluation transform (resize, center crop) is applied. The
// first failure in idx order is returned, naming its file.
func (s *stream) load(dst []uint8, idx []int, aug []sampleAug) error {
	sz := 3 * s.crop * s.crop
	errs := make([]error, len(idx))
	var failed atomic.Bool
	s.parallel(len(idx), func(j int, dec *decoder) {
		if failed.Load() {
			return
		}
		var a *sampleAug
		if aug != nil {
			a = &aug[j]
		}
		it := s.items[idx[j]]
		if err := dec.preprocess(it, s, dst[j*sz:(j+1)*sz], a); err != nil {
			errs[j] = fmt.Errorf("load %s: %w", it.path, err)
			failed.Store(true)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadFloats is load followed by the conversion to float32 values b/255.
func (s *stream) loadFloats(dst []float32, idx []int) error {
	p, _ := s.bytes.Get().(*[]uint8)
	if p == nil || cap(*p) < len(dst) {
		p = new([]uint8)
		*p = make([]uint8, len(dst))
	}
	defer s.bytes.Put(p)
	pix := (*p)[:len(dst)]
	if err := s.load(pix, idx, nil); err != nil {
		return err
	}
	bytesToUnit(dst, pix)
	return nil
}

// decoder holds one goroutine's scratch buffers and resamplers.
type decoder struct {
	rgba    *image.RGBA
	opaque  *image.NRGBA
	scalers []cachedScaler
	seen    [][4]int // size pairs scaled recently without a cached scaler
}

// cachedScaler is an x/image scaler for one (destination, source) size pair;
// it keeps its filter weights and temporary buffer between images of the
// same size.
type cachedScaler struct {
	key [4]int // dw, dh, sw, sh
	s   draw.Scaler
}

// scaler returns a bilinear scaler from sw×sh to dw×dh. A size pair seen
// for the second time gets a scaler of its own, kept among the last few
// (a folder of same-sized images reuses one). A size pair seen once gets
// x/image's plain Kernel, whose temporary buffer is garbage after the call:
// a cached scaler keeps its buffer in a sync.Pool, which survives two
// collections, so building one per image of a varied folder (or per random
// resized crop) let the heap grow with the images read between
// collections, measured at 2.6 GB for 20,000 random resized crops.
func (dec *decoder) scaler(dw, dh, sw, sh int) draw.Scaler {
	key := [4]int{dw, dh, sw, sh}
	for _, c := range dec.scalers {
		if c.key == key {
			return c.s
		}
	}
	if !slices.Contains(dec.seen, key) {
		if len(dec.seen) == 8 {
			dec.seen = dec.seen[1:]
		}
		dec.seen = append(dec.seen, key)
		return draw.BiLinear
	}
	s := draw.BiLinear.NewScaler(dw, dh, sw, sh)
	if len(dec.scalers) == 4 {
		dec.scalers = dec.scalers[1:]
	}
	dec.scalers = append(dec.scalers, cachedScaler{key, s})
	return s
}

// header checks that it is an image in a known format no larger than
// maxPixels, reading only its header.
func (dec *decoder) header(it streamItem, maxPixels int64) error {
	r, c, err := it.open()
	if err != nil {
		return err
	}
	defer c.Close()
	return checkConfig(r, maxPixels)
}

func checkConfig(r io.Reader, maxPixels int64) error {
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return decodeErr(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("%w: image is %d×%d", ErrShape, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > maxPixels {
		return fmt.Errorf("%w: %d×%d image (%d pixels) exceeds the limit of %d pixels (a decompression bomb?); raise it to read it",
			ErrTooLarge, cfg.Width, cfg.Height, px, maxPixels)
	}
	return nil
}

// decodeErr classifies a decoder's error.
func decodeErr(err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return fmt.Errorf("%w: not an image in a known format (JPEG, PNG, BMP, TIFF, WebP)", ErrFormat)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: image data cut short", ErrTruncated)
	}
	return fmt.Errorf("%w: decode: %v", ErrFormat, err)
}

// decode reads and decodes the image it, refusing it from its header if it
// is larger than maxPixels. A decoder panic (the x/image decoders see
// hostile input here) becomes an error.
func (dec *decoder) decode(it streamItem, maxPixels int64) (img image.Image, err error) {
	f, c, err := it.open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := checkConfig(f, maxPixels); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%w: decoder failed: %v", ErrFormat, r)
		}
	}()
	img, _, err = image.Decode(f)
	if err != nil {
		return nil, decodeErr(err)
	}
	if img.Bounds().Empty() {
		return nil, fmt.Errorf("%w: image is empty", ErrShape)
	}
	return img, nil
}

// preprocess decodes it and writes its 3×crop×crop transform into dst:
// the evaluation transform (resize, center crop) when a is nil, else a's
// random resized crop and flip.
func (dec *decoder) preprocess(it streamItem, s *stream, dst []uint8, a *sampleAug) error {
	img, err := dec.decode(it, s.maxPixels)
	if err != nil {
		return err
	}
	dec.transform(img, s.resize, s.crop, dst, a)
	return nil
}

// transform writes img's 3×crop×crop transform into dst (see preprocess).
func (dec *decoder) transform(img image.Image, resize, crop int, dst []uint8, a *sampleAug) {
	img = dec.dropAlpha(img)
	b := img.Bounds()
	flip := false
	if a != nil && a.resizedCrop {
		rng := newSourceFromSeeds(a.seed)
		i, j, h, w := randomResizedCropParams(b.Dx(), b.Dy(), rng)
		dec.resizedCrop(img, i, j, h, w, crop)
		flip = a.flip && rng.Uint64()>>63 == 1
	} else {
		rw, rh := resizedSize(b.Dx(), b.Dy(), resize)
		top, left := centerOffset(rh, crop), centerOffset(rw, crop)
		// The destination's bounds are the crop window within the resized
		// image: x/image computes only those pixels, and leaves the part of
		// a window larger than the image zero (CenterCrop's padding).
		out := dec.canvas(image.Rect(left, top, left+crop, top+crop))
		if rw == b.Dx() && rh == b.Dy() {
			draw.Draw(out, image.Rect(0, 0, rw, rh), img, b.Min, draw.Src)
		} else {
			dec.scaler(rw, rh, b.Dx(), b.Dy()).Scale(out, image.Rect(0, 0, rw, rh), img, b, draw.Src, nil)
		}
		flip = a != nil && a.flip && newSourceFromSeeds(a.seed).Uint64()>>63 == 1
	}
	toPlanar(dst, dec.rgba, crop, flip)
}

// resizedCrop resizes the h×w window of img at (top i, left j) to
// size×size into dec.rgba: torchvision's F.resized_crop, the transform of
// RandomResizedCrop for a given window. x/image reads only the window's
// pixels, as PIL's crop followed by resize does.
func (dec *decoder) resizedCrop(img image.Image, i, j, h, w, size int) {
	b := img.Bounds()
	sr := image.Rect(b.Min.X+j, b.Min.Y+i, b.Min.X+j+w, b.Min.Y+i+h)
	out := dec.canvas(image.Rect(0, 0, size, size))
	if w == size && h == size {
		draw.Draw(out, out.Bounds(), img, sr.Min, draw.Src)
		return
	}
	dec.scaler(size, size, w, h).Scale(out, out.Bounds(), img, sr, draw.Src, nil)
}

// canvas returns dec's RGBA buffer with bounds r, cleared to zero.
func (dec *decoder) canvas(r image.Rectangle) *image.RGBA {
	n := 4 * r.Dx() * r.Dy()
	if dec.rgba == nil || cap(dec.rgba.Pix) < n {
		dec.rgba = &image.RGBA{Pix: make([]uint8, n)}
	}
	dec.rgba.Pix = dec.rgba.Pix[:n]
	clear(dec.rgba.Pix)
	dec.rgba.Stride, dec.rgba.Rect = 4*r.Dx(), r
	return dec.rgba
}

// dropAlpha returns img without transparency: an image that may have
// alpha is copied with every pixel's alpha set to opaque and its colour
// kept (PIL's convert("RGB")), so that resampling does not darken
// transparent regions.
func (dec *decoder) dropAlpha(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr, *image.Gray:
		return img
	case *image.RGBA:
		if m.Opaque() {
			return img
		}
	}
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	n := 4 * b.Dx() * b.Dy()
	if dec.opaque == nil || cap(dec.opaque.Pix) < n {
		dec.opaque = &image.NRGBA{Pix: make([]uint8, n)}
	}
	out := dec.opaque
	out.Pix, out.Stride, out.Rect = out.Pix[:n], 4*b.Dx(), b
	if m, ok := img.(*image.NRGBA); ok {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			copy(out.Pix[(y-b.Min.Y)*out.Stride:], m.Pix[m.PixOffset(b.Min.X, y):m.PixOffset(b.Max.X, y)])
		}
	} else {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				out.SetNRGBA(x, y, c)
			}
		}
	}
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 0xff
	}
	return out
}

// toPlanar writes the crop×crop RGBA image m as three planes (CHW) into
// dst, mirrored horizontally if flip.
func toPlanar(dst []uint8, m *image.RGBA, crop int, flip bool) {
	plane := crop * crop
	r, g, b := dst[:plane], dst[plane:2*plane], dst[2*plane:3*plane]
	for y := range crop {
		row := m.Pix[y*m.Stride : y*m.Stride+4*crop]
		for x := range crop {
			p := y*crop + x
			if flip {
				p = y*crop + crop - 1 - x
			}
			r[p], g[p], b[p] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
}

// resizedSize is torchvision's Resize(size) output for a w×h image: the
// shorter side becomes size, the longer int(size·long/short).
func resizedSize(w, h, size int) (rw, rh int) {
	if w <= h {
		return size, max(int(float64(size)*float64(h)/float64(w)), 1)
	}
	return max(int(float64(size)*float64(w)/float64(h)), 1), size
}

// centerOffset is where torchvision's CenterCrop starts a crop of side crop
// in a side of length n: int(round((n-crop)/2)) (half to even), or, when
// the crop is larger, minus the padding (crop-n)//2 it adds before.
func centerOffset(n, crop int) int {
	if n < crop {
		return -((crop - n) / 2)
	}
	return int(math.RoundToEven(float64(n-crop) / 2))
}

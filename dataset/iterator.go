package dataset

import (
	"fmt"
	"math/rand/v2"
)

// IteratorOptions configures an [Iterator].
type IteratorOptions struct {
	// BatchSize is the number of samples per batch (> 0).
	BatchSize int
	// Shuffle visits each epoch's samples in a random order drawn from
	// (Seed, epoch); otherwise in dataset order.
	Shuffle bool
	// Seed seeds the shuffling and the augmentation.
	Seed uint64
	// DropLast drops each epoch's final partial batch; otherwise it is
	// produced, smaller than BatchSize.
	DropLast bool
	// Augment is applied to every sample as it is copied into a batch.
	Augment Augment
	// Prefetch is the number of batches a streamed data set's iterator
	// decodes ahead of the one being consumed, within an epoch; 0 means 2.
	// Memory for images grows as BatchSize·(1+Prefetch)·C·H·W bytes.
	Prefetch int
}

// IteratorState is the position of an [Iterator], to be stored in training
// checkpoints (it marshals to JSON as {"seed":…, "epoch":…, "batch":…, …}).
// Restoring it makes the iterator produce exactly the batches, in the same
// order and with the same augmentations, that it would have produced next.
type IteratorState struct {
	Seed  uint64 `json:"seed"`
	Epoch int    `json:"epoch"` // current epoch, from 0
	Batch int    `json:"batch"` // batches already produced in Epoch
	// N and BatchSize record the dataset size and batch size the position
	// refers to; Restore rejects a state whose values differ from the
	// iterator's (0 skips the check).
	N         int `json:"n"`
	BatchSize int `json:"batch_size"`
}

// Iterator produces the minibatches of a Dataset, epoch after epoch.
//
// The Next methods return ok=false once at the end of every epoch, after
// which the iterator stands at the start of the next epoch:
//
//	for epoch := range epochs {
//		for {
//			n, ok := it.NextInto(x, y)
//			if !ok {
//				break
//			}
//			train(x[:n*it.ImageSize()], y[:n])
//		}
//	}
//
// Each epoch's order depends only on (seed, epoch) and each batch's
// augmentation only on (seed, epoch, batch index), never on history, so an
// iterator restored from [Iterator.State] continues identically. An Iterator
// is not safe for concurrent use.
type Iterator struct {
	d    *Dataset
	opts IteratorOptions
	nb   int // batches per epoch

	epoch, batch int

	perm      []int32 // sample order of permEpoch (shuffling only)
	permEpoch int     // -1: perm not computed
	shufRng   rand.PCG
	augRng    rand.PCG

	sample []float32 // one converted image (8-bit storage with augmentation)
	err    error     // the error that stopped a streamed batch

	ahead []*pending // streamed batches being decoded, in order
	free  [][]uint8  // decoded-batch buffers to reuse
}

// pending is a streamed batch whose images are being decoded.
type pending struct {
	epoch, batch int
	idx          []int
	pix          []uint8
	done         chan struct{}
	err          error
}

// NewIterator returns an iterator over d, positioned at epoch 0, batch 0.
func NewIterator(d *Dataset, opts IteratorOptions) (*Iterator, error) {
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("dataset: iterator: batch size %d must be positive", opts.BatchSize)
	}
	if opts.Augment.Pad < 0 {
		return nil, fmt.Errorf("dataset: iterator: negative augmentation padding %d", opts.Augment.Pad)
	}
	if rc := opts.Augment.ResizedCrop; rc != 0 {
		if !d.Streamed() {
			return nil, fmt.Errorf("dataset: iterator: random-resized-crop needs images read from files (an image folder), not %s", d.Name)
		}
		if rc != d.H || rc != d.W {
			return nil, fmt.Errorf("dataset: iterator: random-resized-crop:%d does not match the %d×%d images of %s (set the crop size to %d)", rc, d.H, d.W, d.Name, rc)
		}
	}
	if opts.Prefetch < 0 {
		return nil, fmt.Errorf("dataset: iterator: negative prefetch depth %d", opts.Prefetch)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	n := d.Len()
	if n == 0 {
		return nil, fmt.Errorf("dataset: iterator: %w", ErrEmpty)
	}
	if opts.DropLast && n < opts.BatchSize {
		return nil, fmt.Errorf("dataset: iterator: %d samples make no full batch of %d (DropLast)", n, opts.BatchSize)
	}
	nb := (n + opts.BatchSize - 1) / opts.BatchSize
	if opts.DropLast {
		nb = n / opts.BatchSize
	}
	it := &Iterator{d: d, opts: opts, nb: nb, permEpoch: -1}
	if opts.Shuffle {
		it.perm = make([]int32, n)
	}
	return it, nil
}

// Dataset returns the dataset being iterated.
func (it *Iterator) Dataset() *Dataset { return it.d }

// BatchSize returns the (full) batch size.
func (it *Iterator) BatchSize() int { return it.opts.BatchSize }

// ImageSize returns the number of float32 values per sample, C·H·W.
func (it *Iterator) ImageSize() int { return it.d.ImageSize() }

// BatchesPerEpoch returns the number of batches in every epoch.
func (it *Iterator) BatchesPerEpoch() int { return it.nb }

// Epoch returns the current epoch (from 0).
func (it *Iterator) Epoch() int { return it.epoch }

// State returns the iterator's position.
func (it *Iterator) State() IteratorState {
	return IteratorState{Seed: it.opts.Seed, Epoch: it.epoch, Batch: it.batch, N: it.d.Len(), BatchSize: it.opts.BatchSize}
}

// Restore moves the iterator to a position returned by State (possibly by
// another Iterator over the same dataset with the same options), adopting
// its seed.
func (it *Iterator) Restore(s IteratorState) error {
	if s.N != 0 && s.N != it.d.Len() {
		return fmt.Errorf("dataset: iterator: state is for %d samples, dataset has %d", s.N, it.d.Len())
	}
	if s.BatchSize != 0 && s.BatchSize != it.opts.BatchSize {
		return fmt.Errorf("dataset: iterator: state is for batch size %d, iterator has %d", s.BatchSize, it.opts.BatchSize)
	}
	if err := it.Seek(s.Epoch, s.Batch); err != nil {
		return err
	}
	if s.Seed != it.opts.Seed {
		it.opts.Seed = s.Seed
		it.permEpoch = -1
	}
	return nil
}

// Seek moves the iterator to batch index batch of epoch epoch; batch may
// equal BatchesPerEpoch (the end of the epoch).
func (it *Iterator) Seek(epoch, batch int) error {
	if epoch < 0 || batch < 0 || batch > it.nb {
		return fmt.Errorf("dataset: iterator: position (epoch %d, batch %d) out of range (%d batches per epoch)", epoch, batch, it.nb)
	}
	it.epoch, it.batch = epoch, batch
	it.ahead, it.err = nil, nil // batches being decoded finish unseen
	return nil
}

// Err returns the error that stopped the last call to NextInto or Next, or
// nil. Only streamed data sets fail (a file that cannot be read; the error
// names it); the iterator then stays at the batch that failed.
func (it *Iterator) Err() error { return it.err }

// nextSize returns the size of the next batch, 0 at the end of the epoch.
func (it *Iterator) nextSize() int {
	if it.batch >= it.nb {
		return 0
	}
	return min(it.opts.BatchSize, it.d.Len()-it.batch*it.opts.BatchSize)
}

// endEpoch moves to the start of the next epoch.
func (it *Iterator) endEpoch() {
	it.epoch++
	it.batch = 0
}

// NextInto copies the next batch into x (NCHW) and y, which must hold at
// least BatchSize·ImageSize() and BatchSize values, and returns its size n:
// the batch is x[:n·ImageSize()], y[:n]. At the end of an epoch it returns
// (0, false) and moves to the next epoch. For in-memory data it does not
// allocate. It panics if x or y is too short. For a streamed data set it
// also returns (0, false) when an image cannot be read: check
// [Iterator.Err].
func (it *Iterator) NextInto(x []float32, y []int64) (n int, ok bool) {
	n = it.nextSize()
	if n == 0 {
		it.endEpoch()
		return 0, false
	}
	sz := it.d.ImageSize()
	if len(x) < n*sz || len(y) < n {
		panic(fmt.Sprintf("dataset: Iterator.NextInto: buffers of %d values and %d labels, need %d and %d",
			len(x), len(y), n*sz, n))
	}
	if err := it.fill(x[:n*sz], y[:n]); err != nil {
		it.err = err
		return 0, false
	}
	return n, true
}

// Next returns the next batch in newly allocated memory, or ok=false at the
// end of an epoch (moving to the next epoch). [Iterator.NextInto] avoids the
// allocation.
func (it *Iterator) Next() (b Batch, ok bool) {
	n := it.nextSize()
	if n == 0 {
		it.endEpoch()
		return Batch{}, false
	}
	x := make([]float32, n*it.d.ImageSize())
	y := make([]int64, n)
	if err := it.fill(x, y); err != nil {
		it.err = err
		return Batch{}, false
	}
	return NewBatch(x, y, it.d.C, it.d.H, it.d.W), true
}

// sampleIndex returns the dataset index of position pos of the current
// epoch's order.
func (it *Iterator) sampleIndex(pos int) int {
	if !it.opts.Shuffle {
		return pos
	}
	if it.permEpoch != it.epoch {
		for i := range it.perm {
			it.perm[i] = int32(i)
		}
		reseed(&it.shufRng, it.opts.Seed, shuffleStream, it.epoch, 0)
		shuffle(it.perm, &it.shufRng)
		it.permEpoch = it.epoch
	}
	return int(it.perm[pos])
}

// fill gathers the current batch (len(y) samples) and advances.
func (it *Iterator) fill(x []float32, y []int64) error {
	d := it.d
	sz := d.ImageSize()
	aug := it.opts.Augment
	if d.Streamed() {
		if err := it.fillStream(x, y); err != nil {
			return err
		}
		// Streamed images are flipped (and resize-cropped) as they are
		// decoded; only zero-padded cropping remains.
		aug.Flip, aug.ResizedCrop = false, 0
	} else {
		start := it.batch * it.opts.BatchSize
		for i := range y {
			idx := it.sampleIndex(start + i)
			dst := x[i*sz : (i+1)*sz]
			if d.X != nil {
				copy(dst, d.X[idx*sz:(idx+1)*sz])
			} else {
				bytesToUnit(dst, d.Pix[idx*sz:(idx+1)*sz])
			}
			y[i] = d.Y[idx]
		}
	}
	if aug.Enabled() {
		reseed(&it.augRng, it.opts.Seed, augmentStream, it.epoch, it.batch)
		if it.sample == nil {
			it.sample = make([]float32, sz)
		}
		for i := range y {
			dst := x[i*sz : (i+1)*sz]
			copy(it.sample, dst)
			aug.Apply(dst, it.sample, d.C, d.H, d.W, &it.augRng)
		}
	}
	it.batch++
	return nil
}

// fillStream decodes the current batch of a streamed data set into x and
// y, using the batch decoded ahead when there is one, and starts decoding
// the next ones.
func (it *Iterator) fillStream(x []float32, y []int64) error {
	var p *pending
	if len(it.ahead) > 0 && it.ahead[0].epoch == it.epoch && it.ahead[0].batch == it.batch {
		p, it.ahead = it.ahead[0], it.ahead[1:]
	} else {
		it.ahead = nil
		p = it.start(it.batch, nil)
	}
	for b := it.batch + 1 + len(it.ahead); len(it.ahead) < it.opts.Prefetch && b < it.nb; b++ {
		prev := p
		if len(it.ahead) > 0 {
			prev = it.ahead[len(it.ahead)-1]
		}
		it.ahead = append(it.ahead, it.start(b, prev))
	}
	<-p.done
	if p.err != nil {
		it.ahead = nil
		return p.err
	}
	bytesToUnit(x, p.pix[:len(x)])
	for i, idx := range p.idx {
		y[i] = it.d.Y[idx]
	}
	it.free = append(it.free, p.pix)
	return nil
}

// start begins decoding batch b of the current epoch on a new goroutine,
// after prev (when not nil) is done: batches are decoded one after the
// other, each on the data set's pool of workers.
func (it *Iterator) start(b int, prev *pending) *pending {
	d, bs := it.d, it.opts.BatchSize
	n := min(bs, d.Len()-b*bs)
	p := &pending{epoch: it.epoch, batch: b, idx: make([]int, n), done: make(chan struct{})}
	for i := range p.idx {
		p.idx[i] = it.sampleIndex(b*bs + i)
	}
	if k := len(it.free); k > 0 {
		p.pix, it.free = it.free[k-1], it.free[:k-1]
	}
	if need := n * d.ImageSize(); cap(p.pix) < need {
		p.pix = make([]uint8, bs*d.ImageSize())
	}
	p.pix = p.pix[:n*d.ImageSize()]
	var augs []sampleAug
	if a := it.opts.Augment; a.ResizedCrop > 0 || a.Flip {
		augs = make([]sampleAug, n)
		for i := range augs {
			s0, s1 := seeds(it.opts.Seed, sampleStream, it.epoch, b*bs+i)
			augs[i] = sampleAug{resizedCrop: a.ResizedCrop > 0, flip: a.Flip, seed: [2]uint64{s0, s1}}
		}
	}
	go func() {
		defer close(p.done)
		if prev != nil {
			<-prev.done
		}
		p.err = d.stream.load(p.pix, p.idx, augs)
	}()
	return p
}

// Augment describes training augmentation: CIFAR-style (zero-padded random
// crop, flip) for any data, ImageNet-style (random resized crop, flip) for
// streamed image folders.
type Augment struct {
	// Pad > 0 enables random cropping: the image is padded with Pad zero
	// pixels on every side and a window of the original size is cut at a
	// uniformly random offset (e.g. 4 for CIFAR, 2 in free adversarial
	// training's reference code).
	Pad int `json:"pad"`
	// Flip mirrors the image horizontally with probability 1/2.
	Flip bool `json:"flip"`
	// ResizedCrop > 0 applies torchvision's RandomResizedCrop(ResizedCrop)
	// to each image as it is decoded, instead of the data set's resize and
	// center crop: a window of 8–100 % of the image's area with aspect ratio
	// in [3/4, 4/3] is resized to ResizedCrop×ResizedCrop (bilinear,
	// antialiased). Streamed image folders only; ResizedCrop must equal
	// their crop size.
	ResizedCrop int `json:"resized_crop,omitempty"`
}

// Enabled reports whether a changes images at all.
func (a Augment) Enabled() bool { return a.Pad > 0 || a.Flip || a.ResizedCrop > 0 }

// Apply writes an augmented copy of the c×h×w image src into dst, drawing
// the crop offset and the flip from rng. dst and src must not overlap; both
// must hold at least c·h·w values.
func (a Augment) Apply(dst, src []float32, c, h, w int, rng rand.Source) {
	sz := c * h * w
	dst, src = dst[:sz], src[:sz]
	dy, dx := 0, 0
	if a.Pad > 0 {
		span := uint64(2*a.Pad + 1)
		dy = int(uintn(rng, span)) - a.Pad
		dx = int(uintn(rng, span)) - a.Pad
	}
	flip := a.Flip && rng.Uint64()>>63 == 1
	if dy == 0 && dx == 0 && !flip {
		copy(dst, src)
		return
	}
	// Output pixel (y, x) of the crop comes from source (y+dy, x+dx); the
	// crop columns with a source pixel are [xlo, xhi).
	xlo, xhi := max(0, -dx), min(w, w-dx)
	for ch := range c {
		for y := range h {
			orow := dst[(ch*h+y)*w : (ch*h+y+1)*w]
			sy := y + dy
			if sy < 0 || sy >= h || xlo >= xhi {
				clear(orow)
				continue
			}
			srow := src[(ch*h+sy)*w : (ch*h+sy+1)*w]
			if !flip {
				clear(orow[:xlo])
				copy(orow[xlo:xhi], srow[xlo+dx:xhi+dx])
				clear(orow[xhi:])
				continue
			}
			// Flipped: output x shows crop column w-1-x, which has a
			// source pixel for x in [w-xhi, w-xlo).
			clear(orow[:w-xhi])
			seg := srow[xlo+dx : xhi+dx]
			out := orow[w-xhi : w-xlo]
			for i, v := range seg {
				out[len(out)-1-i] = v
			}
			clear(orow[w-xlo:])
		}
	}
}

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
}

// NewIterator returns an iterator over d, positioned at epoch 0, batch 0.
func NewIterator(d *Dataset, opts IteratorOptions) (*Iterator, error) {
	if opts.BatchSize <= 0 {
		return nil, fmt.Errorf("dataset: iterator: batch size %d must be positive", opts.BatchSize)
	}
	if opts.Augment.Pad < 0 {
		return nil, fmt.Errorf("dataset: iterator: negative augmentation padding %d", opts.Augment.Pad)
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
	return nil
}

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
// (0, false) and moves to the next epoch. It does not allocate. It panics if
// x or y is too short.
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
	it.fill(x[:n*sz], y[:n])
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
	it.fill(x, y)
	return NewBatch(x, y, it.d.C, it.d.H, it.d.W), true
}

// fill gathers the current batch (len(y) samples) and advances.
func (it *Iterator) fill(x []float32, y []int64) {
	d := it.d
	sz := d.ImageSize()
	start := it.batch * it.opts.BatchSize
	if it.opts.Shuffle && it.permEpoch != it.epoch {
		for i := range it.perm {
			it.perm[i] = int32(i)
		}
		reseed(&it.shufRng, it.opts.Seed, shuffleStream, it.epoch, 0)
		shuffle(it.perm, &it.shufRng)
		it.permEpoch = it.epoch
	}
	aug := it.opts.Augment
	augment := aug.Enabled()
	if augment {
		reseed(&it.augRng, it.opts.Seed, augmentStream, it.epoch, it.batch)
	}
	for i := range y {
		idx := start + i
		if it.opts.Shuffle {
			idx = int(it.perm[idx])
		}
		src := d.X[idx*sz : (idx+1)*sz]
		dst := x[i*sz : (i+1)*sz]
		if augment {
			aug.Apply(dst, src, d.C, d.H, d.W, &it.augRng)
		} else {
			copy(dst, src)
		}
		y[i] = d.Y[idx]
	}
	it.batch++
}

// Augment describes CIFAR-style training augmentation.
type Augment struct {
	// Pad > 0 enables random cropping: the image is padded with Pad zero
	// pixels on every side and a window of the original size is cut at a
	// uniformly random offset (e.g. 4 for CIFAR, 2 in free adversarial
	// training's reference code).
	Pad int `json:"pad"`
	// Flip mirrors the image horizontally with probability 1/2.
	Flip bool `json:"flip"`
}

// Enabled reports whether a changes images at all.
func (a Augment) Enabled() bool { return a.Pad > 0 || a.Flip }

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

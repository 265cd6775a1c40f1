package dataset

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
)

// epochLabels runs one epoch and returns the labels of each batch,
// checking that every sample's pixels match its label.
func epochLabels(t *testing.T, it *Iterator) [][]int64 {
	t.Helper()
	d := it.Dataset()
	sz := d.ImageSize()
	x := make([]float32, it.BatchSize()*sz)
	y := make([]int64, it.BatchSize())
	var out [][]int64
	for {
		n, ok := it.NextInto(x, y)
		if !ok {
			return out
		}
		if n <= 0 || n > it.BatchSize() {
			t.Fatalf("batch of %d", n)
		}
		for i := range n {
			if !it.opts.Augment.Enabled() && !slices.Equal(x[i*sz:(i+1)*sz], d.Image(int(y[i]))) {
				t.Fatalf("sample %d of batch holds the wrong pixels for label %d", i, y[i])
			}
		}
		out = append(out, slices.Clone(y[:n]))
	}
}

func TestIteratorCoversEpoch(t *testing.T) {
	for _, tc := range []struct {
		n, b          int
		shuffle, drop bool
		wantBatches   int
		wantLast      int
	}{
		{10, 3, false, false, 4, 1},
		{10, 3, true, false, 4, 1},
		{10, 3, true, true, 3, 3},
		{10, 5, true, true, 2, 5},
		{10, 10, true, false, 1, 10},
		{10, 64, false, false, 1, 10},
		{1, 1, true, true, 1, 1},
		{1000, 128, true, false, 8, 1000 - 7*128},
	} {
		d := indexDataset(tc.n, 1, 2, 3)
		it, err := NewIterator(d, IteratorOptions{BatchSize: tc.b, Shuffle: tc.shuffle, DropLast: tc.drop, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		if it.BatchesPerEpoch() != tc.wantBatches {
			t.Errorf("%+v: %d batches per epoch", tc, it.BatchesPerEpoch())
		}
		var orders [][]int64
		for epoch := range 3 {
			if it.Epoch() != epoch {
				t.Fatalf("Epoch() = %d, want %d", it.Epoch(), epoch)
			}
			batches := epochLabels(t, it)
			if len(batches) != tc.wantBatches || len(batches[len(batches)-1]) != tc.wantLast {
				t.Fatalf("%+v: %d batches, last of %d", tc, len(batches), len(batches[len(batches)-1]))
			}
			all := slices.Concat(batches...)
			seen := make(map[int64]int)
			for _, l := range all {
				seen[l]++
			}
			want := tc.n
			if tc.drop {
				want = tc.wantBatches * tc.b
			}
			if len(all) != want || len(seen) != want {
				t.Fatalf("%+v: %d samples, %d distinct, want %d each", tc, len(all), len(seen), want)
			}
			if !tc.shuffle && !slices.IsSorted(all) {
				t.Errorf("%+v: unshuffled order %v", tc, all)
			}
			orders = append(orders, all)
		}
		if tc.shuffle && tc.n >= 10 && slices.Equal(orders[0], orders[1]) && slices.Equal(orders[1], orders[2]) {
			t.Errorf("%+v: same order every epoch", tc)
		}
	}
}

// collect draws k batches (crossing epochs) with Next, recording pixels too.
func collect(t *testing.T, it *Iterator, k int) []Batch {
	t.Helper()
	var out []Batch
	for len(out) < k {
		b, ok := it.Next()
		if ok {
			out = append(out, b)
		}
	}
	return out
}

func equalBatches(a, b []Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].Data, b[i].Data) || !slices.Equal(a[i].Y, b[i].Y) {
			return false
		}
	}
	return true
}

func TestIteratorDeterminism(t *testing.T) {
	d := randomDataset(37, 3, 8, 8, 1)
	opts := IteratorOptions{BatchSize: 8, Shuffle: true, Seed: 42, Augment: Augment{Pad: 2, Flip: true}}
	mk := func(o IteratorOptions) *Iterator {
		it, err := NewIterator(d, o)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	a := collect(t, mk(opts), 15)
	b := collect(t, mk(opts), 15)
	if !equalBatches(a, b) {
		t.Fatal("same seed, different batches")
	}
	other := opts
	other.Seed = 43
	if equalBatches(a, collect(t, mk(other), 15)) {
		t.Fatal("different seeds, same batches")
	}

	// Resume from a serialised state at every position, including the end
	// of an epoch, and compare with the uninterrupted run.
	full := mk(opts)
	ref := collect(t, full, 20)
	for cut := range 12 {
		it := mk(opts)
		collect(t, it, cut)
		if cut == 5 { // stand at the end of epoch 0 (5 batches per epoch)
			if _, ok := it.Next(); ok {
				t.Fatal("expected the end of epoch 0")
			}
		}
		js, err := json.Marshal(it.State())
		if err != nil {
			t.Fatal(err)
		}
		var st IteratorState
		if err := json.Unmarshal(js, &st); err != nil {
			t.Fatal(err)
		}
		other := opts
		other.Seed = 999 // the state's seed wins
		resumed := mk(other)
		if err := resumed.Restore(st); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, resumed, 20-cut); !equalBatches(got, ref[cut:]) {
			t.Fatalf("resumed at batch %d (state %s): batches differ", cut, js)
		}
	}

	// Seek gives the same batches as iterating there.
	it := mk(opts)
	if err := it.Seek(2, 3); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, it, 1); !equalBatches(got, ref[13:14]) {
		t.Fatal("Seek(2, 3) differs from the 14th batch")
	}
}

func TestIteratorState(t *testing.T) {
	d := indexDataset(10, 1, 1, 1)
	it, err := NewIterator(d, IteratorOptions{BatchSize: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	it.Next()
	js, _ := json.Marshal(it.State())
	if string(js) != `{"seed":3,"epoch":0,"batch":1,"n":10,"batch_size":4}` {
		t.Errorf("state JSON %s", js)
	}
	for _, bad := range []IteratorState{
		{N: 11, BatchSize: 4},
		{N: 10, BatchSize: 5},
		{Batch: 4},
		{Epoch: -1},
		{Batch: -1},
	} {
		if err := it.Restore(bad); err == nil {
			t.Errorf("Restore(%+v) accepted", bad)
		}
	}
	if err := it.Restore(IteratorState{Epoch: 5, Batch: 2}); err != nil {
		t.Error(err)
	}
	if b, ok := it.Next(); !ok || b.Len() != 2 || b.Y[0] != 8 {
		t.Errorf("after Restore: %v %v", b.Y, ok)
	}

	for _, o := range []IteratorOptions{
		{BatchSize: 0},
		{BatchSize: 11, DropLast: true},
		{BatchSize: 1, Augment: Augment{Pad: -1}},
	} {
		if _, err := NewIterator(d, o); err == nil {
			t.Errorf("NewIterator(%+v) accepted", o)
		}
	}
	if _, err := NewIterator(d.Subset(0), IteratorOptions{BatchSize: 1}); err == nil {
		t.Error("empty dataset accepted")
	}
}

func TestIteratorNextBatch(t *testing.T) {
	d := indexDataset(5, 3, 4, 2)
	it, _ := NewIterator(d, IteratorOptions{BatchSize: 3})
	b, ok := it.Next()
	if !ok || !reflect.DeepEqual([]int(b.X.Shape()), []int{3, 3, 4, 2}) || b.Len() != 3 {
		t.Fatalf("batch shape %v", b.X.Shape())
	}
	if got := b.X.Data().([]float32); &got[0] != &b.Data[0] {
		t.Error("Batch.Data is not X's backing array")
	}
	if v, _ := b.X.At(2, 1, 3, 1); v.(float32) != d.Image(2)[0] {
		t.Errorf("X.At = %v", v)
	}
	b, _ = it.Next()
	if !reflect.DeepEqual([]int(b.X.Shape()), []int{2, 3, 4, 2}) {
		t.Errorf("last batch shape %v", b.X.Shape())
	}
	if _, ok := it.Next(); ok || it.Epoch() != 1 {
		t.Error("no end of epoch")
	}
	defer func() {
		if recover() == nil {
			t.Error("NextInto with a short buffer did not panic")
		}
	}()
	it.NextInto(make([]float32, 10), make([]int64, 3))
}

// TestNextIntoAllocs counts the heap allocations of NextInto exactly, over
// 50 batches that cross several epoch boundaries (reshuffles): there must
// be none. (testing.AllocsPerRun divides by the number of runs and rounds
// down, so an allocation once per epoch would pass it.) The count is the
// smallest of three measurements: an allocation of NextInto happens in
// every one, while the runtime's own rare background allocations do not.
func TestNextIntoAllocs(t *testing.T) {
	d := randomDataset(1000, 3, 32, 32, 2)
	for _, aug := range []Augment{{}, {Pad: 4, Flip: true}} {
		it, _ := NewIterator(d, IteratorOptions{BatchSize: 128, Shuffle: true, Seed: 1, Augment: aug})
		x := make([]float32, 128*d.ImageSize())
		y := make([]int64, 128)
		it.NextInto(x, y) // draw the first epoch's order
		least, epochs := uint64(math.MaxUint64), 0
		for range 3 {
			epochs = 0
			least = min(least, countMallocs(func() {
				for range 50 {
					if _, ok := it.NextInto(x, y); !ok {
						epochs++
						it.NextInto(x, y)
					}
				}
			}))
		}
		if epochs < 2 {
			t.Fatalf("augment %+v: the batches crossed %d epoch boundaries, want at least 2", aug, epochs)
		}
		if least != 0 {
			t.Errorf("augment %+v: %d heap allocations in 50 batches (%d epoch boundaries)", aug, least, epochs)
		}
	}
}

// countMallocs returns the number of heap allocations f makes, with
// GOMAXPROCS at 1 as testing.AllocsPerRun does, so that other goroutines
// do not run in between.
func countMallocs(f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

// randomDataset returns n random images in [0,1].
func randomDataset(n, c, h, w int, seed uint64) *Dataset {
	r := rand.New(rand.NewPCG(seed, 0))
	d := &Dataset{Name: "random", C: c, H: h, W: w, NumClasses: 10,
		X: make([]float32, n*c*h*w), Y: make([]int64, n)}
	for i := range d.X {
		d.X[i] = r.Float32()
	}
	for i := range d.Y {
		d.Y[i] = int64(r.IntN(10))
	}
	return d
}

// refAugment pads src by pad zeros, crops at (oy, ox) and optionally flips.
func refAugment(src []float32, c, h, w, pad, oy, ox int, flip bool) []float32 {
	ph, pw := h+2*pad, w+2*pad
	padded := make([]float32, c*ph*pw)
	for ch := range c {
		for y := range h {
			for x := range w {
				padded[(ch*ph+y+pad)*pw+x+pad] = src[(ch*h+y)*w+x]
			}
		}
	}
	out := make([]float32, c*h*w)
	for ch := range c {
		for y := range h {
			for x := range w {
				sx := x
				if flip {
					sx = w - 1 - x
				}
				out[(ch*h+y)*w+x] = padded[(ch*ph+y+oy)*pw+sx+ox]
			}
		}
	}
	return out
}

func TestAugment(t *testing.T) {
	const c, h, w = 3, 5, 7
	src := randomDataset(1, c, h, w, 9).X
	for _, aug := range []Augment{{Pad: 2, Flip: true}, {Pad: 4}, {Flip: true}, {Pad: 1}, {Pad: 9, Flip: true}, {}} {
		seen := map[[3]int]bool{}
		draws := uint64(3000)
		if aug.Pad > 4 {
			draws = 20000 // enough to see all 722 choices
		}
		for s := range draws {
			dst := make([]float32, c*h*w)
			aug.Apply(dst, src, c, h, w, rand.NewPCG(s, 5))
			// Draw the same choices as Apply does.
			r := rand.NewPCG(s, 5)
			oy, ox := aug.Pad, aug.Pad
			if aug.Pad > 0 {
				oy = int(uintn(r, uint64(2*aug.Pad+1)))
				ox = int(uintn(r, uint64(2*aug.Pad+1)))
			}
			flip := aug.Flip && r.Uint64()>>63 == 1
			if want := refAugment(src, c, h, w, aug.Pad, oy, ox, flip); !slices.Equal(dst, want) {
				t.Fatalf("%+v seed %d: differs from pad/crop/flip reference (oy %d ox %d flip %v)", aug, s, oy, ox, flip)
			}
			for _, v := range dst {
				if v < 0 || v > 1 {
					t.Fatalf("value %v out of range", v)
				}
			}
			b := 0
			if flip {
				b = 1
			}
			seen[[3]int{oy, ox, b}] = true
		}
		want := (2*aug.Pad + 1) * (2*aug.Pad + 1)
		if aug.Flip {
			want *= 2
		}
		if len(seen) != want {
			t.Errorf("%+v: %d distinct crops/flips in %d draws, want %d", aug, len(seen), draws, want)
		}
	}

	// In the iterator: labels untouched, shape kept, deterministic.
	d := randomDataset(20, c, h, w, 4)
	opts := IteratorOptions{BatchSize: 6, Shuffle: true, Seed: 8, Augment: Augment{Pad: 2, Flip: true}}
	it1, _ := NewIterator(d, opts)
	it2, _ := NewIterator(d, opts)
	b1, b2 := collect(t, it1, 8), collect(t, it2, 8)
	if !equalBatches(b1, b2) {
		t.Error("augmented batches not deterministic")
	}
	changed := false
	for _, b := range b1 {
		for i, l := range b.Y {
			img := b.Data[i*d.ImageSize() : (i+1)*d.ImageSize()]
			if !slices.Equal(img, d.Image(int(l))) {
				changed = true
			}
		}
	}
	if !changed {
		t.Error("augmentation changed nothing")
	}
}

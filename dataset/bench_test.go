package dataset

import (
	"os"
	"testing"

	"github.com/robust-go/robust/internal/testenv/skip"
)

func BenchmarkNextInto(b *testing.B) {
	d := randomDataset(4096, 3, 32, 32, 1)
	for _, bc := range []struct {
		name string
		aug  Augment
	}{{"plain", Augment{}}, {"pad4flip", Augment{Pad: 4, Flip: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			it, _ := NewIterator(d, IteratorOptions{BatchSize: 128, Shuffle: true, Seed: 1, Augment: bc.aug})
			x := make([]float32, 128*d.ImageSize())
			y := make([]int64, 128)
			b.SetBytes(int64(len(x) * 4))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := it.NextInto(x, y); !ok {
					it.NextInto(x, y)
				}
			}
		})
	}
}

func BenchmarkLoadFashionMNIST(b *testing.B) {
	if _, err := os.Stat(DebianFashionMNISTDir); err != nil {
		skip.Missing(b, skip.RequireData, "Fashion-MNIST (apt install dataset-fashion-mnist)", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadFashionMNIST(DebianFashionMNISTDir, true); err != nil {
			b.Fatal(err)
		}
	}
}

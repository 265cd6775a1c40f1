package dataset_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/robust-go/robust/dataset"
)

func Example() {
	dir, err := os.MkdirTemp("", "dataset-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Write a tiny dataset: 10 grey 4×4 images, labels 0…4 twice.
	x := make([]uint8, 10*4*4)
	y := make([]int64, 10)
	for i := range y {
		y[i] = int64(i % 5)
		for p := range 16 {
			x[i*16+p] = uint8(i * 25)
		}
	}
	path := filepath.Join(dir, "tiny.npz")
	if err := dataset.WriteNPZ(path, map[string]dataset.Array{
		"x": {Shape: []int{10, 4, 4}, Data: x},
		"y": {Shape: []int{10}, Data: y},
	}); err != nil {
		log.Fatal(err)
	}

	// Open it as the CLI would, and hold out 2 samples for validation.
	d, err := dataset.Open(path, "train", dataset.Options{})
	if err != nil {
		log.Fatal(err)
	}
	train, val, err := d.Split(2, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d)
	fmt.Println("train", train.Len(), "val", val.Len())

	// Shuffled, augmented batches of 3 into reusable buffers.
	it, err := dataset.NewIterator(train, dataset.IteratorOptions{
		BatchSize: 3, Shuffle: true, Seed: 7, Augment: dataset.Augment{Pad: 1, Flip: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	xb := make([]float32, it.BatchSize()*it.ImageSize())
	yb := make([]int64, it.BatchSize())
	seen := 0
	for {
		n, ok := it.NextInto(xb, yb)
		if !ok {
			break
		}
		seen += n
	}
	fmt.Println("epoch 0:", it.BatchesPerEpoch(), "batches,", seen, "samples")
	fmt.Printf("resume state: %+v\n", it.State())

	// Evaluation batches as gorgonia tensors, sharing the dataset's memory.
	b := val.Slice(0, val.Len())
	fmt.Println("val batch shape", b.X.Shape())
	// Output:
	// tiny: 10×1×4×4, 5 classes
	// train 8 val 2
	// epoch 0: 3 batches, 8 samples
	// resume state: {Seed:7 Epoch:1 Batch:0 N:8 BatchSize:3}
	// val batch shape (2, 1, 4, 4)
}

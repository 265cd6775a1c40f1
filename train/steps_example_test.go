package train_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"math/rand/v2"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/train"
	"github.com/robust-go/robust/zoo"
)

// Train the zoo's small-cnn for a few steps of free adversarial training
// on images made in memory, watching each step through the Progress
// callback (the library draws nothing itself). It needs the ONNX Runtime
// library (scripts/setup-ort.sh).
func ExampleTrainer_Run() {
	env, err := ort.Init(ort.Options{Threads: 2, LogLevel: ort.LogError})
	if err != nil {
		log.Fatal(err)
	}
	// 64 grey 8×8 images of 4 classes: class k brightens the k-th
	// quarter of the columns.
	r := rand.New(rand.NewPCG(1, 2))
	data := &dataset.Dataset{Name: "bands", C: 1, H: 8, W: 8, NumClasses: 4, X: make([]float32, 64*64), Y: make([]int64, 64)}
	for i := range 64 {
		k := i % 4
		data.Y[i] = int64(k)
		for j, img := 0, data.Image(i); j < 64; j++ {
			img[j] = 0.4 * r.Float32()
			if j%8/2 == k {
				img[j] += 0.5
			}
		}
	}
	model, err := zoo.Build("small-cnn", zoo.Options{Classes: 4, InputShape: [3]int64{1, 8, 8}})
	if err != nil {
		log.Fatal(err)
	}
	tr, err := train.New(env, model, data, nil, train.Config{
		Method: train.Free, Replays: 2, Eps: 0.1, Epochs: 2, BatchSize: 32, LR: 0.05, Momentum: 0.9,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	steps := 0
	sum, err := tr.Run(context.Background(), train.RunOptions{Progress: func(p train.Progress) {
		if p.Finished == nil {
			steps++
		}
	}})
	if err != nil {
		log.Fatal(err)
	}
	pass := sum.Epochs[0]
	fmt.Printf("%d weight updates reported, %d done: 2 minibatches × 2 replays\n", steps, sum.Steps)
	fmt.Printf("pass %d/%d, loss finite: %v\n", pass.Pass, pass.Passes, !math.IsNaN(pass.Loss) && !math.IsInf(pass.Loss, 0))
	// Output:
	// 4 weight updates reported, 4 done: 2 minibatches × 2 replays
	// pass 1/1, loss finite: true
}

package train_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/train"
	"github.com/robust-go/robust/zoo"
)

// Free adversarial training of small-cnn on Fashion-MNIST, the recipe of
// `make demo`: 16 epoch-equivalents of m=8 replays (2 passes over the
// data), checkpointed every 500 steps; Ctrl-C saves a checkpoint that
// LoadCheckpoint resumes exactly.
func Example() {
	env, err := ort.Init(ort.Options{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	all, err := dataset.Open("fashion-mnist", "train", dataset.Options{})
	if err != nil {
		log.Fatal(err)
	}
	data, heldout, err := all.Split(1000, 0)
	if err != nil {
		log.Fatal(err)
	}
	model, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		log.Fatal(err)
	}
	tr, err := train.New(env, model, data, heldout, train.Config{
		Method: train.Free, Replays: 8, Eps: 0.1, Epochs: 16,
		BatchSize: 128, LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	if _, err := os.Stat("run.ckpt"); err == nil {
		if err := tr.LoadCheckpoint("run.ckpt"); err != nil {
			log.Fatal(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := tr.Run(ctx, train.RunOptions{Checkpoint: "run.ckpt", CheckpointEvery: 500, Progress: func(p train.Progress) {
		if p.Finished != nil {
			fmt.Fprintln(os.Stderr, p.Finished)
		}
	}})
	if err != nil {
		log.Fatal(err) // ErrInterrupted: run again to resume
	}
	last := sum.Epochs[len(sum.Epochs)-1]
	fmt.Printf("held-out: clean %.1f%%, PGD-10 %.1f%%\n", 100**last.HeldoutClean, 100**last.HeldoutPGD)
	m, err := tr.Model()
	if err != nil {
		log.Fatal(err)
	}
	if err := onnxgraph.Save("model.onnx", m); err != nil {
		log.Fatal(err)
	}
}

func ExampleParseSchedule() {
	s, err := train.ParseSchedule("piecewise:0.5,0.75", 0.1)
	if err != nil {
		log.Fatal(err)
	}
	for _, step := range []int{0, 499, 500, 750} {
		fmt.Printf("step %d of 1000: lr %.3g\n", step, s.LR(step, 1000))
	}
	fmt.Println(s)
	// Output:
	// step 0 of 1000: lr 0.1
	// step 499 of 1000: lr 0.1
	// step 500 of 1000: lr 0.01
	// step 750 of 1000: lr 0.001
	// piecewise 0.1, ×0.1 at [0.5 0.75] of the run
}

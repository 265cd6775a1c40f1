package harden

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/train"
)

// TestRunBuildsTheGraphOnce checks that training runs the training graph
// Prepare built (the graph is built once per hardening), and that a resume
// without a checkpoint is refused instead of training from scratch.
func TestRunBuildsTheGraphOnce(t *testing.T) {
	env := testenv.ORT(t)
	data, _ := testenv.FashionMNIST(t)
	data = data.Subset(64)
	p, err := Prepare(load(t, "torch_resnetish.onnx"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Method: train.Free, Replays: 1, Epochs: 1, BatchSize: 32, LR: 0.01, Eps: 0.1, Params: p.Params}
	tr, err := train.NewFromGraph(env, p.Trainable, p.Graph, data, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TrainingGraph() != p.Graph {
		t.Error("the trainer built its own training graph")
	}
	tr.Close()

	dir := t.TempDir()
	passes := 0
	res, err := Run(context.Background(), env, p, data, nil, Config{
		Train: cfg, Checkpoint: filepath.Join(dir, "h.ckpt"), Progress: func(p train.Progress) {
			if p.Finished != nil {
				passes++
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan != p || passes != 1 || res.Model == nil {
		t.Errorf("plan %p (want %p), %d passes reported", res.Plan, p, passes)
	}
	_, err = Run(context.Background(), env, p, data, nil, Config{
		Train: cfg, Checkpoint: filepath.Join(dir, "missing.ckpt"), Resume: true,
	})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resume without a checkpoint: %v", err)
	}
	if _, err := Run(context.Background(), env, &Plan{}, data, nil, Config{Train: cfg}); err == nil {
		t.Error("a plan not made by Prepare was accepted")
	}
}

package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/liberr"
	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/dataset"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/zoo"
)

// smallConfig is a quick recipe for the synthetic data.
func smallConfig(m Method) Config {
	return Config{
		Method: m, Epochs: 2, BatchSize: 32, LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4,
		Eps: 0.1, Replays: 2, AttackSteps: 2, Seed: 7, EvalSteps: 3,
	}
}

func newTrainer(t *testing.T, m *og.Model, data, val *dataset.Dataset, cfg Config) *Trainer {
	t.Helper()
	tr, err := New(testenv.ORT(t), m, data, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// weights returns a copy of every parameter and running statistic.
func weights(tr *Trainer) [][]float32 {
	s := takeSnapshot(tr.eng, nil)
	return slices.Concat(s.params, s.mean, s.vars)
}

func sameBits(a, b [][]float32) bool {
	return slices.EqualFunc(a, b, func(x, y []float32) bool {
		return slices.EqualFunc(x, y, func(u, v float32) bool { return math.Float32bits(u) == math.Float32bits(v) })
	})
}

// TestMethods trains the tiny BN network with each method on learnable
// synthetic data and checks the training loss falls, the log and the
// per-pass held-out metrics.
func TestMethods(t *testing.T) {
	data := synthData(256, 1, 8, 8, 4, 1)
	val := synthData(64, 1, 8, 8, 4, 2)
	for _, m := range Methods {
		t.Run(string(m), func(t *testing.T) {
			cfg := smallConfig(m)
			cfg.Epochs = 4
			tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 1), data, val, cfg)
			var log bytes.Buffer
			sum, err := tr.Run(context.Background(), RunOptions{Log: &log})
			if err != nil {
				t.Fatal(err)
			}
			wantSteps := cfg.Passes() * 8 * cfg.replays()
			if sum.Steps != wantSteps || tr.TotalSteps() != wantSteps {
				t.Errorf("%d steps (total %d), want %d", sum.Steps, tr.TotalSteps(), wantSteps)
			}
			if len(sum.Epochs) != cfg.Passes() {
				t.Fatalf("%d passes logged, want %d", len(sum.Epochs), cfg.Passes())
			}
			first, last := sum.Epochs[0], sum.Epochs[len(sum.Epochs)-1]
			if !(last.Loss < first.Loss) || last.HeldoutClean == nil || last.HeldoutPGD == nil {
				t.Errorf("loss %v → %v, held-out %v / %v", first.Loss, last.Loss, last.HeldoutClean, last.HeldoutPGD)
			}
			if *last.HeldoutPGD > *last.HeldoutClean {
				t.Errorf("PGD accuracy %v above clean accuracy %v", *last.HeldoutPGD, *last.HeldoutClean)
			}
			if (last.OverfitCheck != nil) != (m == Fast) {
				t.Errorf("overfitting check %v for method %s", last.OverfitCheck, m)
			}
			events := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
				var ev struct{ Event string }
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				events[ev.Event]++
			}
			if events["start"] != 1 || events["pass"] != cfg.Passes() || events["done"] != 1 {
				t.Errorf("log events %v", events)
			}
		})
	}
}

// TestResumeExact interrupts runs mid-pass (mid-minibatch for free
// training), resumes them from their checkpoints in new trainers, and
// checks the final weights are bitwise those of uninterrupted runs.
func TestResumeExact(t *testing.T) {
	data := synthData(200, 1, 8, 8, 4, 3) // 7 batches of 32, the last short
	val := synthData(40, 1, 8, 8, 4, 4)
	tests := []struct {
		method Method
		epochs int
		stops  []int // cumulative step limits of the interrupted runs
	}{
		{Natural, 2, []int{5, 11}},
		{Free, 4, []int{3, 9, 20}}, // 2 passes of 14 replays; 3 is mid-minibatch
		{PGD, 2, []int{4}},
		{Fast, 2, []int{8}}, // 8: after pass 1's overfitting check
	}
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			cfg := smallConfig(tt.method)
			cfg.Epochs = tt.epochs
			model := tinyBNNet(1, 8, 8, 4, 5)
			whole := newTrainer(t, model, data, val, cfg)
			if _, err := whole.Run(context.Background(), RunOptions{}); err != nil {
				t.Fatal(err)
			}
			ckpt := filepath.Join(t.TempDir(), "run.ckpt")
			for i, stop := range tt.stops {
				tr := newTrainer(t, model, data, val, cfg)
				if i > 0 {
					if err := tr.LoadCheckpoint(ckpt); err != nil {
						t.Fatal(err)
					}
				}
				_, err := tr.Run(context.Background(), RunOptions{Checkpoint: ckpt, StopAfter: stop})
				if !errors.Is(err, ErrInterrupted) || tr.Step() != stop {
					t.Fatalf("run to step %d: step %d, error %v; want ErrInterrupted", stop, tr.Step(), err)
				}
			}
			tr := newTrainer(t, model, data, val, cfg)
			if err := tr.LoadCheckpoint(ckpt); err != nil {
				t.Fatal(err)
			}
			sum, err := tr.Run(context.Background(), RunOptions{Checkpoint: ckpt})
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(weights(tr), weights(whole)) {
				t.Error("resumed run's final weights differ from the uninterrupted run's")
			}
			if !slices.EqualFunc(tr.delta, whole.delta, func(a, b float32) bool { return a == b }) {
				t.Error("resumed run's δ differs")
			}
			if len(sum.Epochs) != cfg.Passes() || sum.Epochs[len(sum.Epochs)-1].Loss != whole.History()[cfg.Passes()-1].Loss {
				t.Errorf("resumed history %+v differs from %+v", sum.Epochs, whole.History())
			}
		})
	}
}

// TestInterruptAndDivergence checks that a cancelled context saves a
// checkpoint, and that a diverging run stops with a DivergedError naming
// the last good checkpoint, which it leaves untouched.
func TestInterruptAndDivergence(t *testing.T) {
	data := synthData(128, 1, 8, 8, 4, 5)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")
	model := tinyBNNet(1, 8, 8, 4, 6)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr := newTrainer(t, model, data, nil, smallConfig(Free))
	_, err := tr.Run(ctx, RunOptions{Checkpoint: ckpt})
	if !errors.Is(err, ErrInterrupted) || tr.Step() != 1 {
		t.Fatalf("cancelled run: step %d, %v", tr.Step(), err)
	}
	if _, err := os.Stat(ckpt); err != nil {
		t.Fatalf("no checkpoint after interruption: %v", err)
	}

	cfg := smallConfig(Natural)
	cfg.LR, cfg.Schedule = 1e30, "constant"
	tr = newTrainer(t, model, data, nil, cfg)
	_, err = tr.Run(context.Background(), RunOptions{Checkpoint: ckpt, CheckpointEvery: 1})
	var div *DivergedError
	if !errors.As(err, &div) {
		t.Fatalf("got %v, want a DivergedError", err)
	}
	if div.Checkpoint != ckpt || div.SavedStep != div.Step || !strings.Contains(err.Error(), "last good checkpoint") {
		t.Errorf("divergence error %+v: %v", div, err)
	}
	good := newTrainer(t, model, data, nil, cfg)
	if err := good.LoadCheckpoint(ckpt); err != nil || good.Step() != div.SavedStep {
		t.Fatalf("last good checkpoint: step %d, %v", good.Step(), err)
	}
	for _, p := range good.Params() {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("checkpointed parameter %s is not finite", p.Name)
			}
		}
	}
}

// TestCheckpointErrors feeds LoadCheckpoint corrupted, foreign and
// mismatched files.
func TestCheckpointErrors(t *testing.T) {
	data := synthData(64, 1, 8, 8, 4, 6)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")
	model := tinyBNNet(1, 8, 8, 4, 7)
	tr := newTrainer(t, model, data, nil, smallConfig(Free))
	if _, err := tr.Run(context.Background(), RunOptions{Checkpoint: ckpt, StopAfter: 3}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	good, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 1
	otherLR := smallConfig(Free)
	otherLR.LR = 0.1
	tests := []struct {
		name  string
		path  string
		cfg   Config
		model *og.Model
		want  string
	}{
		{"missing", filepath.Join(dir, "nope.ckpt"), smallConfig(Free), model, "no such file"},
		{"garbage", write("garbage", []byte("hello")), smallConfig(Free), model, "not a robust checkpoint"},
		{"truncated", write("truncated", good[:len(good)-100]), smallConfig(Free), model, "checksum"},
		{"flipped", write("flipped", flipped), smallConfig(Free), model, "checksum"},
		{"config", ckpt, otherLR, model, "lr 0.05, now 0.1"},
		{"model", ckpt, smallConfig(Free), smallCNN(t, 8, 4), "another model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTrainer(t, tt.model, data, nil, tt.cfg)
			err := tr.LoadCheckpoint(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if err := liberr.Check(err, "train"); err != nil {
				t.Error(err)
			}
			if tr.Step() != 0 {
				t.Errorf("failed load changed the step to %d", tr.Step())
			}
		})
	}
}

// TestExport checks the exported inference model: the zoo model's inputs,
// outputs and nodes, the trained weights and running statistics, and that
// plain ONNX Runtime runs it.
// Finish hands over what Values copies, the parameters without a copy,
// and leaves the trainer closed.
func TestFinish(t *testing.T) {
	data := synthData(96, 1, 8, 8, 4, 8)
	tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 9), data, nil, smallConfig(Natural))
	if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	want := tr.Values()
	p0 := tr.Params()[0]
	got, err := tr.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("Finish returned %d values, Values %d", len(got), len(want))
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("value %s differs from Values'", name)
		}
	}
	if &got[p0.Name][0] != &p0.Data[0] {
		t.Error("Finish copied the parameters")
	}
	if _, err := tr.Finish(); err == nil {
		t.Error("Finish on a closed trainer succeeded")
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close after Finish: %v", err)
	}
}

func TestExport(t *testing.T) {
	env := testenv.ORT(t)
	data := synthData(96, 1, 8, 8, 4, 8)
	model := tinyBNNet(1, 8, 8, 4, 9)
	tr := newTrainer(t, model, data, nil, smallConfig(Natural))
	if _, err := tr.Run(context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := tr.Model()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Nodes) != len(model.Graph.Nodes) || m.Graph.Inputs[0].Name != "input" || m.Graph.Outputs[0].Name != model.Graph.Outputs[0].Name {
		t.Fatalf("exported graph differs in structure from the model's")
	}
	for _, p := range tr.Params() {
		got, err := m.Graph.Initializer(p.Name).Float32s()
		if err != nil || !slices.Equal(got, p.Data) {
			t.Errorf("initializer %s does not hold the trained values (%v)", p.Name, err)
		}
	}
	mean, _ := m.Graph.Initializer("bn.running_mean").Float32s()
	if slices.Equal(mean, make([]float32, len(mean))) {
		t.Error("running mean was not updated")
	}
	if v, _ := m.MetadataValue("robust.train.method"); v != "natural" {
		t.Errorf("metadata method %q", v)
	}
	enc, err := og.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := env.NewSession(enc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.RunTensors(&ort.Tensor{Shape: []int64{4, 1, 8, 8}, Data: data.X[:4*64]})
	if err != nil {
		t.Fatal(err)
	}
	if logits := out[0].Data.([]float32); len(logits) != 16 {
		t.Fatalf("%d logits", len(logits))
	}
}

// TestPreActResNet18Smoke trains the CIFAR network for a few free-training
// replays on synthetic 32×32 images.
func TestPreActResNet18Smoke(t *testing.T) {
	testenv.Short(t, "builds and compiles a ResNet-18 training graph")
	m, err := zoo.Build("preact-resnet18", zoo.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	data := synthData(8, 3, 32, 32, 10, 9)
	cfg := Config{Method: Free, Epochs: 2, Replays: 2, BatchSize: 4, LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, Eps: 8.0 / 255}
	tr := newTrainer(t, m, data, nil, cfg)
	before := slices.Clone(tr.Params()[0].Data)
	sum, err := tr.Run(context.Background(), RunOptions{StopAfter: 3})
	if !errors.Is(err, ErrInterrupted) || sum != nil || tr.Step() != 3 {
		t.Fatalf("step %d, %v", tr.Step(), err)
	}
	if slices.Equal(before, tr.Params()[0].Data) {
		t.Error("the first convolution did not change")
	}
	if _, err := tr.Model(); err != nil {
		t.Fatal(err)
	}
}

// smallCNN returns zoo's small-cnn for size×size grey images.
func smallCNN(t *testing.T, size int64, classes int) *og.Model {
	t.Helper()
	m, err := zoo.Build("small-cnn", zoo.Options{InputShape: [3]int64{1, size, size}, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfigErrors(t *testing.T) {
	data := synthData(32, 1, 8, 8, 4, 10)
	model := tinyBNNet(1, 8, 8, 4, 11)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"method", func(c *Config) { c.Method = "magic" }, "unknown training method"},
		{"epochs", func(c *Config) { c.Epochs = 0 }, "epochs"},
		{"eps", func(c *Config) { c.Eps = 0 }, "needs ε"},
		{"replays", func(c *Config) { c.Replays = -1 }, "replay"},
		{"lr", func(c *Config) { c.LR = -1 }, "learning rate"},
		{"schedule", func(c *Config) { c.Schedule = "linear" }, "unknown schedule"},
		{"momentum", func(c *Config) { c.Momentum = 1 }, "momentum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig(Free)
			tt.edit(&cfg)
			_, err := New(testenv.ORT(t), model, data, nil, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if err := liberr.Check(err, "train"); err != nil {
				t.Error(err)
			}
		})
	}
	_, err := New(testenv.ORT(t), model, synthData(8, 3, 8, 8, 4, 1), nil, smallConfig(Natural))
	if err == nil || !strings.Contains(err.Error(), "3×8×8 but the model takes 1×8×8") {
		t.Errorf("shape mismatch: %v", err)
	}
}

// TestFastOverfittingStop forces the catastrophic-overfitting check to
// fire after pass 2 and checks that training stops with pass 1's weights.
func TestFastOverfittingStop(t *testing.T) {
	data := synthData(200, 1, 8, 8, 4, 12) // 7 minibatches of 32
	cfg := smallConfig(Fast)
	cfg.Epochs = 4
	tr := newTrainer(t, tinyBNNet(1, 8, 8, 4, 13), data, nil, cfg)
	if _, err := tr.Run(context.Background(), RunOptions{StopAfter: 8}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	if tr.best == nil || tr.st.PrevRobust < 0 {
		t.Fatal("no overfitting check after pass 1")
	}
	pass1 := slices.Concat(tr.best.params, tr.best.mean, tr.best.vars)
	tr.st.PrevRobust = 1.5 // any accuracy is now a drop of more than 0.2
	sum, err := tr.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.Stopped, "catastrophic overfitting in pass 2") || sum.Steps != 14 || len(sum.Epochs) != 2 {
		t.Fatalf("stopped %q after %d steps and %d passes", sum.Stopped, sum.Steps, len(sum.Epochs))
	}
	if !sameBits(weights(tr), pass1) {
		t.Error("the weights are not those of pass 1")
	}
}

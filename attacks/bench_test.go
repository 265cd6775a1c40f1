package attacks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/zoo"
)

// benchImages returns n Fashion-MNIST test images and labels, or uniform
// random images when the data set is not installed.
func benchImages(n int) (x []float32, y []int64, source string) {
	if d, err := dataset.Open("fashion-mnist", "test", dataset.Options{}); err == nil && d.Len() >= n {
		if x, err := d.Floats(nil, 0, n); err == nil {
			return x, d.Y[:n], "fashion-mnist"
		}
	}
	rng := rand.New(rand.NewPCG(0, 0))
	x = make([]float32, n*28*28)
	for i := range x {
		x[i] = rng.Float32()
	}
	y = make([]int64, n)
	for i := range y {
		y[i] = rng.Int64N(10)
	}
	return x, y, "random"
}

// torchPGDSeconds runs scripts/torch_reference.py's PGD-20 timing, or
// returns 0 when /usr/bin/python3 with torch is not available.
func torchPGDSeconds(tb testing.TB, n int) float64 {
	const python = "/usr/bin/python3"
	script := filepath.Join("..", "scripts", "torch_reference.py")
	if _, err := os.Stat(script); err != nil {
		return 0
	}
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		tb.Logf("no PyTorch reference: %v", err)
		return 0
	}
	out, err := exec.Command(python, script, "--only", "pgd20-small-cnn", "--n", strconv.Itoa(n), "--threads", "2").Output()
	if err != nil {
		tb.Logf("PyTorch reference failed: %v", err)
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r struct {
			Bench   string  `json:"bench"`
			Seconds float64 `json:"seconds"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Bench == "pgd20-small-cnn" {
			return r.Seconds
		}
	}
	return 0
}

// BenchmarkPGD20SmallCNN times PGD-20 (L∞, ε = 0.1, α = ε/4, random start,
// cross-entropy) over 1000 images in batches of 128 on zoo's small-cnn with
// 2 intra-op threads, doing the full work on every sample (NoEarlyStop) as
// scripts/torch_reference.py does, and reports the PyTorch time of the same
// attack and the ratio when PyTorch is installed.
func BenchmarkPGD20SmallCNN(b *testing.B) {
	const n, batch = 1000, 128
	env := testenv.ORT(b)
	g, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewONNXModel(env, g, ModelOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	x, y, source := benchImages(n)
	d := 28 * 28
	pgd := PGD{StepRatio: 0.25, Steps: 20, RandomStart: true, NoEarlyStop: true}
	tm := ThreatModel{Norm: Linf, Eps: 0.1}
	rng := rand.New(rand.NewPCG(1, 1))
	attack := func() {
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			if _, err := pgd.Run(context.Background(), m, x[lo*d:hi*d], y[lo:hi], tm, rng); err != nil {
				b.Fatal(err)
			}
		}
	}
	attack() // build the gradient session and warm up
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		attack()
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()
	b.Logf("data: %s", source)
	b.ReportMetric(sec, "s/1000img")
	b.ReportMetric(n/sec, "img/s")
	if ref := torchPGDSeconds(b, n); ref > 0 {
		b.ReportMetric(ref, "torch-s/1000img")
		b.ReportMetric(sec/ref, "ratio-vs-torch")
	}
}

// BenchmarkFABTSmallCNN times FAB-T (L∞, 9 target classes, 100 steps each)
// doing its full work, FAB.Minimize, on 10 Fashion-MNIST test images in
// one batch on zoo's small-cnn with untrained weights, each labelled with
// the model's prediction: the cost per sample that still stands, which is
// what the autoattack suite pays on the points the APGD attacks leave
// robust.
func BenchmarkFABTSmallCNN(b *testing.B) {
	const n = 10
	env := testenv.ORT(b)
	g, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewONNXModel(env, g, ModelOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	x, _, source := benchImages(n)
	// Label each image with the untrained model's own prediction, so that
	// every sample is attacked for the full 9 × 100 steps.
	logits := make([]float32, n*m.Classes())
	if err := m.Logits(x, n, logits); err != nil {
		b.Fatal(err)
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(Predict(logits[i*m.Classes() : (i+1)*m.Classes()]))
	}
	fab := FAB{TargetClasses: 9}
	tm := ThreatModel{Norm: Linf, Eps: 0.1}
	if _, err := (FAB{TargetClasses: 1, Steps: 1}).Minimize(context.Background(), m, x[:784], y[:1], tm, nil); err != nil {
		b.Fatal(err) // build the gradient session
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := fab.Minimize(context.Background(), m, x, y, tm, nil); err != nil {
			b.Fatal(err)
		}
	}
	sec := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()
	b.Logf("data: %s", source)
	b.ReportMetric(sec/n, "s/img")
}

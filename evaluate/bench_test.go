package evaluate

import (
	"context"
	"os"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
	"github.com/robust-go/robust/onnxgraph"
)

// BenchmarkAutoAttackSuite times the autoattack suite (cascade, L∞ ε = 0.1,
// batches of 128) on the first 1000 Fashion-MNIST test images for the ONNX
// model named by $ROBUST_BENCH_MODEL, e.g. the demo's free-trained
// small-cnn (robust train --model small-cnn --data fashion-mnist --method
// free --replays 8 --eps 0.1 --epochs 16 --out runs/free), and reports
// each attack's seconds and the robust accuracy. Issue 11's targets on 2
// cores: the suite ≤ 60 s, FAB-T ≤ 30 s.
func BenchmarkAutoAttackSuite(b *testing.B) {
	path := os.Getenv("ROBUST_BENCH_MODEL")
	if path == "" {
		b.Skip("set ROBUST_BENCH_MODEL to an ONNX classifier of Fashion-MNIST")
	}
	g, err := onnxgraph.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	m, err := attacks.NewONNXModel(testenv.ORT(b), g, attacks.ModelOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	d, err := dataset.Open("fashion-mnist", "test", dataset.Options{})
	if err != nil {
		b.Skip(err)
	}
	d = d.Subset(1000)
	suite, err := Suite("autoattack", SuiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var r *Report
	b.ResetTimer()
	for range b.N {
		r, err = Run(context.Background(), m, d, Config{Eps: []Eps{{Value: 0.1, Text: "0.1"}}, Norm: attacks.Linf,
			Attacks: suite, SuiteName: "autoattack", Seed: 1, NoSanity: true})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, a := range r.Points[0].Attacks {
		b.ReportMetric(a.Seconds, a.Name+"-s")
	}
	b.ReportMetric(r.Points[0].Robust.Value, "robust-acc")
}

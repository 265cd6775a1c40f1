package archbench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/ort"
)

// BenchmarkThreads times PGD-10 steps on one architecture's input-gradient
// graph (ROBUST_ARCH, default resnet18-64) with every combination of
// intra-op thread count (ROBUST_BENCH_THREADS, comma-separated, default 1
// and the number of CPUs) and spinning (on, off), the combinations
// alternating step by step so that they share the machine's load; the
// metrics are img/s of each, named T-spin and T-nospin:
//
//	ROBUST_BENCH_ARCHS=1 go test ./internal/archbench -run '^$' -bench Threads -benchtime 3x
func BenchmarkThreads(b *testing.B) {
	if os.Getenv("ROBUST_BENCH_ARCHS") == "" {
		b.Skip("set ROBUST_BENCH_ARCHS=1")
	}
	testenv.ORT(b) // skips without ONNX Runtime
	a, size, _ := archFromEnv(b)
	counts := []int{1, runtime.NumCPU()}
	if s := os.Getenv("ROBUST_BENCH_THREADS"); s != "" {
		counts = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("ROBUST_BENCH_THREADS=%q", s)
			}
			counts = append(counts, n)
		}
	}
	m := exportArch(b, a, size)
	ig, _ := inputGradient(b, m, false) // BuildInputGradientGraph specialises
	x, y := images(size)
	adv := make([]float32, len(x))
	type config struct {
		name string
		gs   *gradSession
		sec  float64
	}
	var configs []*config
	for _, n := range counts {
		env, err := ort.Init(ort.Options{Threads: n, LogLevel: ort.LogError})
		if err != nil {
			b.Fatal(err)
		}
		for _, spin := range []ort.Spinning{ort.SpinOn, ort.SpinOff} {
			name := fmt.Sprintf("%d-spin", n)
			if spin == ort.SpinOff {
				name = fmt.Sprintf("%d-nospin", n)
			}
			gs := newGradSession(b, env, ig, size, ort.SessionOptions{Spinning: spin}, 1)
			defer gs.close()
			if err := gs.pgd(x, y, 1, adv, rand.New(rand.NewPCG(2, 2))); err != nil { // warm-up
				b.Fatal(err)
			}
			configs = append(configs, &config{name: name, gs: gs})
		}
		if n > 1 {
			// What robust eval runs by default: n single-threaded
			// sessions, each on a slice of the batch.
			gs := newGradSession(b, env, ig, size, ort.SessionOptions{}, n)
			defer gs.close()
			if err := gs.pgd(x, y, 1, adv, rand.New(rand.NewPCG(2, 2))); err != nil { // warm-up
				b.Fatal(err)
			}
			configs = append(configs, &config{name: fmt.Sprintf("%dx1-sessions", n), gs: gs})
		}
	}
	b.ResetTimer()
	for range b.N {
		for step := range pgdSteps {
			for _, c := range configs {
				start := time.Now()
				if err := c.gs.pgd(x, y, 1, adv, rand.New(rand.NewPCG(uint64(step), 2))); err != nil {
					b.Fatal(err)
				}
				c.sec += time.Since(start).Seconds()
			}
		}
	}
	for _, c := range configs {
		b.ReportMetric(float64(b.N*batch)/c.sec, c.name)
	}
}

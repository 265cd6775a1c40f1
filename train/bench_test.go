package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"

	"github.com/robust-go/robust/dataset"
	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
	"github.com/robust-go/robust/zoo"
)

// benchData returns the Fashion-MNIST training set when it is installed,
// else synthetic 28×28 images.
func benchData() *dataset.Dataset {
	if d, err := dataset.Open("fashion-mnist", "train", dataset.Options{}); err == nil {
		return d
	}
	return synthData(12800, 1, 28, 28, 10, 1)
}

// BenchmarkFreeVsNatural compares the wall time of free training (m=8)
// and natural training of small-cnn for the same number of gradient steps
// (batch 128, 2 threads), through Trainer.Run as `robust train` runs them.
// Each iteration trains naturally for 128 steps, then freely for 128
// replays (16 minibatches), each with a fresh Trainer whose sessions are
// compiled and warmed up before the clock starts and closed after it
// stops, so that one method's idle ONNX Runtime threads never compete with
// the other's. It reports the ratio of the total times (the bar:
// ≤ 1.05), the median of the iterations' ratios (robust to other
// processes' bursts) and both speeds.
func BenchmarkFreeVsNatural(b *testing.B) {
	env := testenv.ORT(b)
	data := benchData()
	m, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Epochs: 1 << 12, BatchSize: 128, LR: 0.01, Schedule: "constant", Momentum: 0.9, WeightDecay: 5e-4,
		Eps: 0.1, Replays: 8}
	const warmup, steps = 16, 128
	timed := func(method Method) time.Duration {
		c := cfg
		c.Method = method
		tr, err := New(env, m, data, nil, c)
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		for _, stop := range []int{warmup, warmup + steps} {
			t0 := time.Now()
			if _, err := tr.Run(context.Background(), RunOptions{StopAfter: stop}); !errors.Is(err, ErrInterrupted) {
				b.Fatal(err)
			}
			if stop > warmup {
				return time.Since(t0)
			}
		}
		panic("unreachable")
	}
	var spent [2]time.Duration
	var ratios []float64
	for b.Loop() {
		natural, free := timed(Natural), timed(Free)
		spent[0] += natural
		spent[1] += free
		ratios = append(ratios, free.Seconds()/natural.Seconds())
	}
	n := float64(b.N * steps * cfg.BatchSize)
	slices.Sort(ratios)
	b.ReportMetric(spent[1].Seconds()/spent[0].Seconds(), "free/natural")
	b.ReportMetric(ratios[len(ratios)/2], "median-free/natural")
	b.ReportMetric(n/spent[0].Seconds(), "natural-img/s")
	b.ReportMetric(n/spent[1].Seconds(), "free-img/s")
}

// BenchmarkTrainStep times one training step (forward, backward and the SGD
// update; batch 128, 2 threads) of small-cnn on 28×28 and preact-resnet18
// on 32×32 images, and, when /usr/bin/python3 has torch, the same step in
// PyTorch (scripts/torch_reference.py), reporting the ratio (target ≤ 0.8).
func BenchmarkTrainStep(b *testing.B) {
	for _, bm := range []struct {
		model string
		size  int64
		c     int64
		torch string
	}{
		{"small-cnn", 28, 1, "train-small-cnn"},
		{"preact-resnet18", 32, 3, "train-preact-resnet18"},
	} {
		b.Run(bm.model, func(b *testing.B) {
			env := testenv.ORT(b)
			m, err := zoo.Build(bm.model, zoo.Options{})
			if err != nil {
				b.Fatal(err)
			}
			const batch = 128
			e, err := newEngine(env, m, batch, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer e.close()
			for i := range e.x {
				e.x[i] = float32(i%251) / 251
			}
			for i := range e.y {
				e.y[i] = int64(i % 10)
			}
			for _, p := range e.params {
				p.Decay = og.WeightDecayed(m.Graph, p.Name)
			}
			opt := SGD{Momentum: 0.9, WeightDecay: 5e-4}
			step := func() {
				if err := e.run(weightPass, batch); err != nil {
					b.Fatal(err)
				}
				if err := opt.Step(e.params, 0.01); err != nil {
					b.Fatal(err)
				}
			}
			flops := 6 * float64(multiplyAdds(b, m, batch)) // forward 2, backward 4 per multiply-add
			step()                                          // compile the session
			step()
			for b.Loop() {
				step()
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(1000*sec, "ms/step")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			if ref, err := torchSeconds(bm.torch); err != nil {
				b.Logf("no PyTorch reference: %v", err)
			} else {
				b.ReportMetric(1000*ref, "torch-ms/step")
				b.ReportMetric(flops/ref/1e9, "torch-GFLOP/s")
				b.ReportMetric(sec/ref, "ratio")
			}
		})
	}
}

// multiplyAdds counts the multiply-adds of the Conv, Gemm and MatMul nodes
// of classifier m's forward pass on a batch: the work a training step
// repeats about three times (forward, input and weight gradients).
func multiplyAdds(tb testing.TB, m *og.Model, batch int64) int64 {
	types, err := og.InferShapes(m)
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, n := range m.Graph.Nodes {
		out, w := types[n.Outputs[0]], types[n.Inputs[min(1, len(n.Inputs)-1)]]
		if out == nil || w == nil {
			continue
		}
		perSample := out.Shape[1:].Size() // output elements of one sample
		switch n.OpType {
		case "Conv": // each output element: Cin/group · kernel taps
			total += batch * perSample * w.Shape[1:].Size()
		case "Gemm", "MatMul": // [N, K] × [K, M]
			total += batch * perSample * types[n.Inputs[0]].Shape[1].Value
		}
	}
	return total
}

// BenchmarkSGEMM measures ONNX Runtime's float32 matrix product, 2048³
// on 2 threads: the machine's practical compute roof for the GFLOP/s that
// BenchmarkTrainStep reports.
func BenchmarkSGEMM(b *testing.B) {
	env := testenv.ORT(b)
	const n = 2048
	bld := og.NewBuilder("sgemm")
	x := bld.Input("x", og.Float, og.Dims(n, n))
	y := bld.Input("y", og.Float, og.Dims(n, n))
	z := bld.MatMul(x, y)
	bld.Output(z, og.Float, og.Dims(n, n))
	data, err := og.Encode(bld.Model())
	if err != nil {
		b.Fatal(err)
	}
	s, err := env.NewSession(data, []string{x, y}, []string{z})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var vals []ort.Value
	for range 3 {
		v, err := ort.NewEmptyValue[float32]([]int64{n, n})
		if err != nil {
			b.Fatal(err)
		}
		defer v.Close()
		for i, d := 0, v.Data(); i < len(d); i++ {
			d[i] = float32(i%7) - 3
		}
		vals = append(vals, v)
	}
	for b.Loop() {
		if err := s.Run(vals[:2], vals[2:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

var torchRef struct {
	sync.Mutex
	secs map[string]float64
}

// torchSeconds runs scripts/torch_reference.py once per benchmark name and
// process, with 2 threads, and returns its seconds per step.
func torchSeconds(name string) (float64, error) {
	torchRef.Lock()
	defer torchRef.Unlock()
	if s, ok := torchRef.secs[name]; ok {
		return s, nil
	}
	out, err := exec.Command("/usr/bin/python3", "../scripts/torch_reference.py", "--threads", "2", "--only", name).Output()
	if err != nil {
		return 0, fmt.Errorf("torch_reference.py: %w", err)
	}
	var res struct{ Seconds float64 }
	line := strings.TrimSpace(string(out))
	if err := json.Unmarshal([]byte(line[strings.LastIndexByte(line, '\n')+1:]), &res); err != nil || res.Seconds <= 0 {
		return 0, fmt.Errorf("torch_reference.py printed %q", line)
	}
	if torchRef.secs == nil {
		torchRef.secs = map[string]float64{}
	}
	torchRef.secs[name] = res.Seconds
	return res.Seconds, nil
}

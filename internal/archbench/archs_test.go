package archbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// The benchmark suite. Every case attacks a batch of 64 random images with
// PGD-10 (L∞, ε = 8/255, α = ε/4, random start, summed cross-entropy) with
// 2 intra-op threads, once in robust (a hand-written PGD loop over the
// input-gradient graph with the steps of attacks.PGD, so that the
// benchmark does not depend on the attack API) and once in PyTorch 1.13
// (scripts/archs_bench.py), back to back in the same process run, and
// reports images/s of both and the time ratio robust/PyTorch:
//
//	make bench-archs                                  # every case
//	make bench-archs ARCHS='Archs/(resnet18|mobilenet_v2)-64'      # a subset, PGD and APGD
//	ROBUST_BENCH_ARCHS=1 go test ./internal/archbench -run '^$' -bench 'Archs$/resnet18-64$' -benchtime 1x -timeout 0
//
// (-benchtime Nx repeats each case N times and averages; on a loaded
// machine add ROBUST_BENCH_PASSIVE=1, see passive.) Cases are
// ARCH-SIZE for ARCH in resnet18, mobilenet_v2, resnet50, efficientnet_b0, vit_b_16, vit_b_32,
// resnet18-bn (BatchNormalization kept unfused in the export) and SIZE in
// 64, 224; 224×224 ResNet-50 takes minutes per case on 2 cores. The
// PyTorch side of vit_b_* does not finish in minutes with Debian's
// python3-torch when libblas.so.3 is the reference BLAS (its Linear
// layers run at ≈1.6 GFLOP/s; the README says more), so robust's img/s
// is printed as soon as it is measured.
// Models are exported by PyTorch at benchmark time into
// $ROBUST_ARCH_CACHE (default: the user cache dir's robust/archs); without
// /usr/bin/python3 and torch the benchmarks are skipped (there is nothing
// to attack). BenchmarkArchsAPGD runs APGD-CE on the same cases, and
// BenchmarkLayers (layers_test.go) times single operators before and after
// onnxgraph.SpecializeFrozen.
const (
	python    = "/usr/bin/python3"
	batch     = 64
	pgdSteps  = 10
	threads   = 2
	classes   = 10
	eps       = float32(8.0 / 255)
	stepAlpha = eps / 4
)

// arch is a benchmarked model: a torchvision architecture, exported with
// BatchNormalization folded by PyTorch (as a deployment export) or kept
// (keepBN, as a model saved from training looks).
type arch struct {
	name   string
	keepBN bool
}

func (a arch) file(size int) string {
	if a.keepBN {
		return fmt.Sprintf("%s-bn-%d", a.name, size)
	}
	return fmt.Sprintf("%s-%d", a.name, size)
}

var archs = []arch{
	{name: "resnet18"}, {name: "mobilenet_v2"}, {name: "resnet50"}, {name: "efficientnet_b0"},
	{name: "resnet18", keepBN: true}, {name: "vit_b_16"}, {name: "vit_b_32"},
}

var sizes = []int{64, 224}

func script(tb testing.TB) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "scripts", "archs_bench.py"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// haveTorch reports whether /usr/bin/python3 has torch and torchvision.
func haveTorch() bool {
	return exec.Command(python, "-c", "import torch, torchvision").Run() == nil
}

func cacheDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("ROBUST_ARCH_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(d, "robust", "archs")
}

// exportArch returns the ONNX export of a at size×size, exporting it when
// it is not cached.
func exportArch(tb testing.TB, a arch, size int) *onnxgraph.Model {
	tb.Helper()
	path := filepath.Join(cacheDir(tb), a.file(size)+".onnx")
	if _, err := os.Stat(path); err != nil {
		if !haveTorch() {
			tb.Skip("no PyTorch to export the model with (/usr/bin/python3 -c 'import torch, torchvision')")
		}
		args := []string{script(tb), "export", "--arch", a.name, "--size", strconv.Itoa(size), "--out", cacheDir(tb)}
		if a.keepBN {
			args = append(args, "--keep-bn")
		}
		if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
			tb.Fatalf("export %s: %v\n%s", a.file(size), err, out)
		}
	}
	m, err := onnxgraph.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// gradSession is an input-gradient session with its tensors for one batch.
type gradSession struct {
	x, logits, loss, grad *ort.TensorValue[float32]
	y                     *ort.TensorValue[int64]
	// parts are the sessions, each with tensors over its slice of the
	// batch's rows, run at the same time (see sessions).
	parts []*gradPart
}

type gradPart struct {
	s    *ort.Session
	ins  []ort.Value
	outs []ort.Value
}

// sessions is how many sessions split every batch, as attacks.ONNXModel
// does for robust eval and attack: by default one single-threaded session
// per intra-op thread of env; ROBUST_BENCH_SESSIONS=1 measures one session
// using every thread instead (ONNX Runtime's intra-op parallelism).
func sessions(tb testing.TB, env *ort.Env) (n, threads int) {
	if v := os.Getenv("ROBUST_BENCH_SESSIONS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			tb.Fatalf("ROBUST_BENCH_SESSIONS=%q: want a count ≥ 1", v)
		}
		if k == 1 {
			return 1, 0
		}
		return k, max(1, env.Threads()/k)
	}
	if env.Threads() > 1 {
		return env.Threads(), 1
	}
	return 1, 0
}

// inputGradient builds the input-gradient graph of m. Specialised means
// onnxgraph.SpecializeFrozen runs on the frozen classifier before the
// gradient is built (so the backward convolutions use the folded weights
// and no BatchNormalization gradient is emitted) and again on the result
// (no-ops emitted by the autodiff): the two calls BuildInputGradientGraph
// is meant to make.
func inputGradient(tb testing.TB, m *onnxgraph.Model, specialize bool) (*traingraph.InputGradientGraph, onnxgraph.SpecializeStats) {
	tb.Helper()
	var st onnxgraph.SpecializeStats
	if specialize {
		m = m.Clone()
		st = onnxgraph.SpecializeFrozen(m)
	}
	ig, err := traingraph.BuildInputGradientGraph(m, traingraph.InputGradientOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	if specialize {
		after := onnxgraph.SpecializeFrozen(ig.Model)
		st.FoldedBatchNorms += after.FoldedBatchNorms
		st.Bypassed += after.Bypassed
		st.ClipMasks += after.ClipMasks
		st.SubpixelConvTransposes += after.SubpixelConvTransposes
		st.DeadNodes += after.DeadNodes
		st.DeadInitializers += after.DeadInitializers
	}
	return ig, st
}

// newGradSession opens ig in parts sessions that split every batch (0:
// the default of sessions).
func newGradSession(tb testing.TB, env *ort.Env, ig *traingraph.InputGradientGraph, size int, so ort.SessionOptions, parts int) *gradSession {
	tb.Helper()
	data, err := onnxgraph.Encode(ig.Model)
	if err != nil {
		tb.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	gs := &gradSession{}
	img := []int64{batch, 3, int64(size), int64(size)}
	gs.x, err = ort.NewEmptyValue[float32](img)
	must(err)
	gs.grad, err = ort.NewEmptyValue[float32](img)
	must(err)
	gs.logits, err = ort.NewEmptyValue[float32]([]int64{batch, classes})
	must(err)
	gs.loss, err = ort.NewEmptyValue[float32]([]int64{batch})
	must(err)
	gs.y, err = ort.NewEmptyValue[int64]([]int64{batch})
	must(err)
	k, threads := sessions(tb, env)
	if parts > 0 {
		k, threads = parts, 0
		if parts > 1 {
			threads = max(1, env.Threads()/parts)
		}
	}
	so.Threads = threads
	d := 3 * size * size
	for i := range k {
		lo, hi := i*batch/k, (i+1)*batch/k
		p := &gradPart{}
		gs.parts = append(gs.parts, p)
		p.s, err = env.NewSessionWith(data, []string{ig.Input, ig.Labels}, []string{ig.Logits, ig.PerSample, ig.InputGrad}, so)
		must(err)
		b := int64(hi - lo)
		wrapF := func(shape []int64, v []float32) ort.Value {
			t, err := ort.NewValue(shape, v)
			must(err)
			return t
		}
		yv, err := ort.NewValue([]int64{b}, gs.y.Data()[lo:hi])
		must(err)
		part := []int64{b, 3, int64(size), int64(size)}
		p.ins = []ort.Value{wrapF(part, gs.x.Data()[lo*d:hi*d]), yv}
		p.outs = []ort.Value{wrapF([]int64{b, classes}, gs.logits.Data()[lo*classes:hi*classes]),
			wrapF([]int64{b}, gs.loss.Data()[lo:hi]), wrapF(part, gs.grad.Data()[lo*d:hi*d])}
	}
	return gs
}

func (gs *gradSession) run() error {
	if len(gs.parts) == 1 {
		p := gs.parts[0]
		return p.s.Run(p.ins, p.outs)
	}
	errs := make([]error, len(gs.parts))
	var wg sync.WaitGroup
	for i, p := range gs.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.s.Run(p.ins, p.outs)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (gs *gradSession) close() error {
	var errs []string
	vs := []ort.Value{gs.x, gs.y, gs.logits, gs.loss, gs.grad}
	for _, p := range gs.parts {
		vs = append(append(vs, p.ins...), p.outs...)
		if err := p.s.Close(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, v := range vs {
		if err := v.Close(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("archbench: close: %s", strings.Join(errs, "; "))
	}
	return nil
}

// images returns a seeded random batch and labels.
func images(size int) ([]float32, []int64) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*3*size*size)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int64, batch)
	for i := range y {
		y[i] = rng.Int64N(classes)
	}
	return x, y
}

// pgd runs PGD (L∞, random start) on x, y and returns the adversarial
// batch in adv; rng draws the random start.
func (gs *gradSession) pgd(x []float32, y []int64, steps int, adv []float32, rng *rand.Rand) error {
	copy(gs.y.Data(), y)
	for i, v := range x {
		adv[i] = min(max(v+eps*(2*rng.Float32()-1), 0), 1)
	}
	xin, g := gs.x.Data(), gs.grad.Data()
	for range steps {
		copy(xin, adv)
		if err := gs.run(); err != nil {
			return err
		}
		for i, v := range x {
			a := adv[i]
			switch {
			case g[i] > 0:
				a += stepAlpha
			case g[i] < 0:
				a -= stepAlpha
			}
			adv[i] = min(max(a, v-eps, 0), v+eps, 1)
		}
	}
	return nil
}

// apgd runs APGD-CE (L∞, one restart, steps iterations, the whole batch
// throughout: no sample is dropped when it is broken) on x, y from a
// random start and returns the best points in adv, with the steps of
// attacks.APGD: step size 2ε halved at checkpoints where the loss rose in
// at most 75% of the steps since the last one (or did not improve after an
// unreduced one), momentum 0.75, checkpoints after 22% of the steps, then
// 3% fewer each time down to 6%.
func (gs *gradSession) apgd(x []float32, y []int64, steps int, adv []float32, rng *rand.Rand) error {
	n, d := len(y), len(x)/len(y)
	copy(gs.y.Data(), y)
	for i, v := range x {
		adv[i] = min(max(v+eps*(2*rng.Float32()-1), 0), 1)
	}
	cur, old := slices.Clone(adv), slices.Clone(adv)
	grad, gradBest := make([]float32, len(x)), make([]float32, len(x))
	eta := make([]float32, n)
	lossPrev, lossBest, lossCheck := make([]float32, n), make([]float32, n), make([]float32, n)
	rises, reduced := make([]int, n), make([]bool, n)
	eval := func() error {
		copy(gs.x.Data(), cur)
		if err := gs.run(); err != nil {
			return err
		}
		copy(grad, gs.grad.Data())
		return nil
	}
	if err := eval(); err != nil {
		return err
	}
	copy(gradBest, grad)
	loss := gs.loss.Data()
	for k := range n {
		eta[k] = 2 * eps
		lossPrev[k], lossBest[k], lossCheck[k] = loss[k], loss[k], loss[k]
	}
	interval, decr, minInterval := max(int(0.22*float64(steps)), 1), max(int(0.03*float64(steps)), 1), max(int(0.06*float64(steps)), 1)
	since := 0
	z := make([]float32, d)
	for i := range steps {
		mom := float32(0.75)
		if i == 0 {
			mom = 1
		}
		for k := range n {
			a, o, g, x0 := cur[k*d:(k+1)*d], old[k*d:(k+1)*d], grad[k*d:(k+1)*d], x[k*d:(k+1)*d]
			for j, v := range a {
				s := v
				switch {
				case g[j] > 0:
					s += eta[k]
				case g[j] < 0:
					s -= eta[k]
				}
				s = min(max(s, x0[j]-eps, 0), x0[j]+eps, 1)
				z[j] = min(max(v+mom*(s-v)+(1-mom)*(v-o[j]), x0[j]-eps, 0), x0[j]+eps, 1)
			}
			copy(o, a)
			copy(a, z)
		}
		if err := eval(); err != nil {
			return err
		}
		for k := range n {
			l := loss[k]
			if l > lossPrev[k] {
				rises[k]++
			}
			lossPrev[k] = l
			if l > lossBest[k] {
				lossBest[k] = l
				copy(adv[k*d:(k+1)*d], cur[k*d:(k+1)*d])
				copy(gradBest[k*d:(k+1)*d], grad[k*d:(k+1)*d])
			}
		}
		if since++; since < interval {
			continue
		}
		for k := range n {
			reduce := float32(rises[k]) <= 0.75*float32(interval) || !reduced[k] && lossCheck[k] >= lossBest[k]
			reduced[k], lossCheck[k], rises[k] = reduce, lossBest[k], 0
			if reduce {
				eta[k] /= 2
				copy(cur[k*d:(k+1)*d], adv[k*d:(k+1)*d])
				copy(grad[k*d:(k+1)*d], gradBest[k*d:(k+1)*d])
			}
		}
		interval, since = max(interval-decr, minInterval), 0
	}
	return nil
}

// torchTime times the same computation in PyTorch (scripts/archs_bench.py
// COMMAND: pgd, apgd, or fwd for forward passes only) and returns its
// images/s; ok is false without PyTorch.
func torchTime(tb testing.TB, command string, a arch, size, steps int) (ips float64, ok bool) {
	tb.Helper()
	if !haveTorch() {
		return 0, false
	}
	cmd := exec.Command(python, script(tb), command, "--arch", a.name, "--size", strconv.Itoa(size),
		"--batch", strconv.Itoa(batch), "--steps", strconv.Itoa(steps), "--threads", strconv.Itoa(threads))
	if passive() {
		cmd.Env = append(os.Environ(), "OMP_WAIT_POLICY=passive")
	}
	out, err := cmd.Output()
	if err != nil {
		tb.Logf("PyTorch reference failed: %v", err)
		return 0, false
	}
	var r struct {
		ImagesPerSecond float64 `json:"images_per_second"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		tb.Logf("PyTorch reference output %q: %v", out, err)
		return 0, false
	}
	return r.ImagesPerSecond, true
}

// passive reports whether ROBUST_BENCH_PASSIVE asks both runtimes not to
// busy-wait: OMP_WAIT_POLICY=passive for PyTorch, [ort.SpinOff] for ONNX
// Runtime. On a machine shared with other work, spinning threads of
// either library lose most of their time to the other processes (PyTorch
// measured 6× slower with its default OpenMP spinning at load average 6 on
// 2 cores), which makes ratios meaningless; on a quiet machine leave it
// unset and both libraries keep their defaults.
func passive() bool { return os.Getenv("ROBUST_BENCH_PASSIVE") != "" }

func spinning() ort.Spinning {
	if passive() {
		return ort.SpinOff
	}
	return ort.SpinDefault
}

// BenchmarkArchs is the suite described at the top of this file. One
// iteration is one PGD-10 attack on the batch in robust; the metrics are
// img/s (robust), torch-img/s (PyTorch, run after robust in the same
// iteration) and ratio-vs-torch (robust time over PyTorch time: below 1 is
// faster than PyTorch), and, for the roofline of the attack, fwd-img/s and
// torch-fwd-img/s: 10 forward passes of the classifier alone (ONNX Runtime
// on the frozen classifier after SpecializeFrozen, PyTorch under no_grad)
// per batch, and fwd-ratio-vs-torch, ONNX Runtime's forward passes alone
// over PyTorch's whole attack: a bound under which ratio-vs-torch cannot
// go while the backward pass costs at least as much as the forward.
func BenchmarkArchs(b *testing.B) { benchArchs(b, "pgd") }

// BenchmarkArchsAPGD is BenchmarkArchs for APGD-CE (10 iterations, one
// restart, see gradSession.apgd), against the same loop in PyTorch; the
// metrics are img/s, torch-img/s and ratio-vs-torch.
func BenchmarkArchsAPGD(b *testing.B) { benchArchs(b, "apgd") }

func benchArchs(b *testing.B, attack string) {
	if os.Getenv("ROBUST_BENCH_ARCHS") == "" {
		b.Skip("set ROBUST_BENCH_ARCHS=1 (make bench-archs): minutes to hours on 2 cores")
	}
	env := testenv.ORT(b)
	if env.Threads() != threads {
		b.Fatalf("ORT env has %d threads, want %d", env.Threads(), threads)
	}
	for _, a := range archs {
		for _, size := range sizes {
			b.Run(a.file(size), func(b *testing.B) {
				b.StopTimer()
				m := exportArch(b, a, size)
				x, y := images(size)
				adv := make([]float32, len(x))
				ig, st := inputGradient(b, m, true)
				rewrites := st.FoldedBatchNorms + st.Bypassed + st.ClipMasks + st.SubpixelConvTransposes
				var robustSec, torchSec, fwdSec, torchFwdSec float64
				for i := range b.N {
					sec := timeAttack(b, env, ig, attack, size, x, y, adv, i == 0)
					robustSec += sec
					// Printed at once (b.Logf waits for the case to end): PyTorch's
					// side may not finish (vit_b_*, see the README).
					fmt.Fprintf(os.Stderr, "%s: robust %s %.3g img/s\n", b.Name(), attack, batch/sec)
					if tips, ok := torchTime(b, attack, a, size, pgdSteps); ok {
						torchSec += batch / tips
					}
					if attack != "pgd" {
						continue
					}
					fwdSec += timeForward(b, env, m, size, x)
					if tips, ok := torchTime(b, "fwd", a, size, pgdSteps); ok {
						torchFwdSec += batch / tips
					}
				}
				n := float64(b.N * batch)
				b.ReportMetric(n/robustSec, "img/s")
				b.ReportMetric(float64(rewrites), "rewrites")
				if torchSec > 0 {
					b.ReportMetric(n/torchSec, "torch-img/s")
					b.ReportMetric(robustSec/torchSec, "ratio-vs-torch")
				}
				if fwdSec > 0 {
					b.ReportMetric(n/fwdSec, "fwd-img/s")
					if torchFwdSec > 0 {
						b.ReportMetric(n/torchFwdSec, "torch-fwd-img/s")
					}
					if torchSec > 0 {
						b.ReportMetric(fwdSec/torchSec, "fwd-ratio-vs-torch")
					}
				}
			})
		}
	}
}

// timeAttack times one attack (pgd: PGD-10, apgd: APGD-CE with 10
// iterations) of the batch on a new session of ig, after a one-step
// warm-up, and counts it in the benchmark's time.
func timeAttack(b *testing.B, env *ort.Env, ig *traingraph.InputGradientGraph, attack string, size int, x []float32, y []int64, adv []float32, logStats bool) float64 {
	b.Helper()
	gs := newGradSession(b, env, ig, size, ort.SessionOptions{Spinning: spinning()}, 0)
	defer func() {
		if err := gs.close(); err != nil {
			b.Error(err)
		}
	}()
	rng := rand.New(rand.NewPCG(2, 2))
	if err := gs.pgd(x, y, 1, adv, rng); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	var err error
	if attack == "apgd" {
		err = gs.apgd(x, y, pgdSteps, adv, rng)
	} else {
		err = gs.pgd(x, y, pgdSteps, adv, rng)
	}
	if err != nil {
		b.Fatal(err)
	}
	sec := time.Since(start).Seconds()
	b.StopTimer()
	if logStats {
		b.Logf("%d-node input-gradient graph", len(ig.Model.Graph.Nodes))
	}
	return sec
}

// timeForward times pgdSteps forward passes of the batch through the
// classifier m alone (after SpecializeFrozen), after one warm-up pass. It
// is not counted in the benchmark's time.
func timeForward(b *testing.B, env *ort.Env, m *onnxgraph.Model, size int, x []float32) float64 {
	b.Helper()
	m = m.Clone()
	onnxgraph.SpecializeFrozen(m)
	data, err := onnxgraph.Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	in, out := m.Graph.Inputs[0].Name, m.Graph.Outputs[0].Name
	s, err := env.NewSessionWith(data, []string{in}, []string{out}, ort.SessionOptions{Spinning: spinning()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	xv, err := ort.NewEmptyValue[float32]([]int64{batch, 3, int64(size), int64(size)})
	if err != nil {
		b.Fatal(err)
	}
	defer xv.Close()
	copy(xv.Data(), x)
	logits, err := ort.NewEmptyValue[float32]([]int64{batch, classes})
	if err != nil {
		b.Fatal(err)
	}
	defer logits.Close()
	run := func() {
		if err := s.Run([]ort.Value{xv}, []ort.Value{logits}); err != nil {
			b.Fatal(err)
		}
	}
	run()
	start := time.Now()
	for range pgdSteps {
		run()
	}
	return time.Since(start).Seconds()
}

// archFromEnv parses $ROBUST_ARCH (ARCH-SIZE, default resnet18-64; an
// ARCH ending in -bn keeps BatchNormalization unfused in the export).
func archFromEnv(tb testing.TB) (a arch, size int, which string) {
	which = os.Getenv("ROBUST_ARCH")
	if which == "" {
		which = "resnet18-64"
	}
	i := strings.LastIndex(which, "-")
	size, err := strconv.Atoi(which[i+1:])
	if i < 0 || err != nil {
		tb.Fatalf("ROBUST_ARCH=%q: want ARCH-SIZE", which)
	}
	return arch{name: strings.TrimSuffix(which[:i], "-bn"), keepBN: strings.HasSuffix(which[:i], "-bn")}, size, which
}

// TestArchProfile dumps, for one architecture, ONNX Runtime's optimised
// input-gradient graph and profile with and without SpecializeFrozen, and
// logs the operator types that take the most time. It runs only when
// ROBUST_ARCH_PROFILE names an output folder:
//
//	ROBUST_ARCH_PROFILE=/tmp/prof ROBUST_ARCH=resnet18-64 go test ./internal/archbench -run ArchProfile -v
func TestArchProfile(t *testing.T) {
	dir := os.Getenv("ROBUST_ARCH_PROFILE")
	if dir == "" {
		t.Skip("set ROBUST_ARCH_PROFILE to an output folder")
	}
	a, size, which := archFromEnv(t)
	env := testenv.ORT(t)
	m := exportArch(t, a, size)
	x, y := images(size)
	adv := make([]float32, len(x))
	for _, specialize := range []bool{false, true} {
		name := which + "-plain"
		if specialize {
			name = which + "-specialized"
		}
		prefix := filepath.Join(dir, name)
		ig, st := inputGradient(t, m, specialize)
		t.Logf("%s: %+v", name, st)
		gs := newGradSession(t, env, ig, size, ort.SessionOptions{
			ProfilePrefix: prefix, OptimizedModelPath: prefix + "-optimized.onnx"}, 1)
		if err := gs.pgd(x, y, 3, adv, rand.New(rand.NewPCG(2, 2))); err != nil {
			t.Fatal(err)
		}
		if err := gs.close(); err != nil {
			t.Fatal(err)
		}
		opt, err := onnxgraph.Load(prefix + "-optimized.onnx")
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, n := range opt.Graph.Nodes {
			counts[n.OpType]++
		}
		files, _ := filepath.Glob(prefix + "_*.json")
		if len(files) == 0 {
			t.Fatalf("no profile %s_*.json", prefix)
		}
		top, total, err := topOps(files[len(files)-1])
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d optimised nodes; kernel time %.0f ms over 3 runs; top operators:\n", name, len(opt.Graph.Nodes), total/1e3)
		for _, o := range top[:min(len(top), 10)] {
			fmt.Fprintf(&b, "  %-28s %5d nodes %8.1f ms %5.1f%%\n", o.op, counts[o.op], o.us/1e3, 100*o.us/total)
		}
		t.Log(b.String())
	}
}

type opTime struct {
	op string
	us float64
}

// topOps sums the kernel time of an ONNX Runtime profile per operator
// type, largest first, and returns the total (µs).
func topOps(path string) ([]opTime, float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var events []struct {
		Cat  string  `json:"cat"`
		Name string  `json:"name"`
		Dur  float64 `json:"dur"`
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, 0, fmt.Errorf("profile %s: %w", path, err)
	}
	sums := map[string]float64{}
	var total float64
	for _, e := range events {
		if e.Cat == "Node" && e.Args.OpName != "" && strings.HasSuffix(e.Name, "_kernel_time") {
			sums[e.Args.OpName] += e.Dur
			total += e.Dur
		}
	}
	out := make([]opTime, 0, len(sums))
	for op, us := range sums {
		out = append(out, opTime{op, us})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].us > out[j].us })
	return out, total, nil
}

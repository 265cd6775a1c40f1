package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/robust-go/robust/internal/testenv"
	"github.com/robust-go/robust/zoo"
)

// l1Norm, l2Norm and maxAbs are the norms of a vector, for closed forms.
func l1Norm(v []float32) (s float64) {
	for _, x := range v {
		s += math.Abs(float64(x))
	}
	return s
}

func l2Norm(v []float32) (s float64) {
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func maxAbs(v []float32) (s float64) {
	for _, x := range v {
		s = max(s, math.Abs(float64(x)))
	}
	return s
}

// TestFABClosedForm checks FAB's minimal perturbations against the exact
// distance from a point to a linear decision boundary |m|/‖u‖_*, where m
// is the margin and ‖·‖_* the dual norm (‖u‖₁ for L∞, ‖u‖₂ for L2,
// ‖u‖_∞ for L1), within 1%; where the box [0,1] binds (L1 on the binary
// model) the minimum is worked out by hand below. Run must break the
// sample at 1.01× the distance and not at 0.99×.
func TestFABClosedForm(t *testing.T) {
	bin, _, _ := binaryModel(t)
	four, _, _ := fourClassModel(t)
	x, y := robustX, []int64{0}
	// Binary model: margin u·x − 1.15 = −2.2 at robustX. The L1 optimum
	// would move pixel 6 (|u| = 3) by 2.2/3 = 0.733, but pixel 6 is 0.55:
	// it goes to 0 (gaining 3·0.55 = 1.65) and pixel 3 (|u| = 2, room 0.7)
	// covers the remaining 0.55 with 0.275: ‖δ‖₁ = 0.825.
	// Four-class model: class 2's logit u·x − 0.3 = −1.35 must reach class
	// 0's 1, a margin of 2.35; the box binds for L1 only: pixel 6 to 0
	// gains 1.65, pixel 3 covers the remaining 0.7 with 0.35: ‖δ‖₁ = 0.9.
	cases := []struct {
		name   string
		m      Model
		attack FAB
		norm   Norm
		want   float64
	}{
		{"binary-linf", bin, FAB{}, Linf, 2.2 / l1Norm(anaU)},
		{"binary-l2", bin, FAB{}, L2, 2.2 / l2Norm(anaU)},
		{"binary-l1-box", bin, FAB{}, L1, 0.825},
		{"four-class-linf", four, FAB{}, Linf, 2.35 / l1Norm(anaU)},
		{"four-class-l2", four, FAB{}, L2, 2.35 / l2Norm(anaU)},
		{"four-class-l1", four, FAB{}, L1, 0.9},
		{"four-class-fab-t-linf", four, FAB{TargetClasses: 3}, Linf, 2.35 / l1Norm(anaU)},
		{"four-class-fab-t-l2", four, FAB{TargetClasses: 1}, L2, 2.35 / l2Norm(anaU)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := ThreatModel{Norm: c.norm, Eps: float32(c.want)}
			min, err := c.attack.Minimize(context.Background(), c.m, x, y, tm, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			got := min.Dist[0]
			if got < c.want*(1-1e-5) || got > c.want*1.01 {
				t.Errorf("minimal %s distance %.6g, want %.6g (+1%%)", c.norm.Symbol(), got, c.want)
			}
			if d := c.norm.Distance(min.Adv, x); math.Abs(d-got) > 1e-9 {
				t.Errorf("Dist %v but Adv at %v", got, d)
			}
			logits := make([]float32, c.m.Classes())
			if err := c.m.Logits(min.Adv, 1, logits); err != nil {
				t.Fatal(err)
			}
			if Predict(logits) == 0 {
				t.Errorf("the minimal example %v is not adversarial (logits %v)", min.Adv, logits)
			}
			for _, f := range []struct {
				scale float64
				want  bool
			}{{1.01, true}, {0.99, false}} {
				tm := ThreatModel{Norm: c.norm, Eps: float32(c.want * f.scale)}
				res, err := c.attack.Run(context.Background(), c.m, x, y, tm, nil)
				if err != nil {
					t.Fatal(err)
				}
				if res.Success[0] != f.want || (f.want && !tm.Contains(x, res.Adv)) {
					t.Errorf("ε = %.3g×distance: success %v, want %v", f.scale, res.Success[0], f.want)
				}
			}
		})
	}
}

// TestFABMulticlass checks untargeted FAB on a random 5-class linear model
// against the closest boundary over all classes, min_j |m_j|/‖w_j − w_y‖_*,
// at points where the closed-form step stays inside the box.
func TestFABMulticlass(t *testing.T) {
	const classes = 5
	rng := rand.New(rand.NewPCG(11, 12))
	d := anaShape[0] * anaShape[1] * anaShape[2]
	w := make([][]float32, classes)
	bias := make([]float32, classes)
	for j := range w {
		w[j] = make([]float32, d)
		for i := range w[j] {
			w[j][i] = 2*rng.Float32() - 1
		}
		bias[j] = 0.2 * rng.Float32()
	}
	m := linearModel(t, anaShape, w, bias)
	checked := 0
	for trial := 0; trial < 40 && checked < 6; trial++ {
		x := make([]float32, d)
		for i := range x {
			x[i] = 0.3 + 0.4*rng.Float32()
		}
		logits := make([]float32, classes)
		if err := m.Logits(x, 1, logits); err != nil {
			t.Fatal(err)
		}
		y := int64(Predict(logits))
		for _, norm := range []Norm{Linf, L2, L1} {
			want, inside := math.Inf(1), true
			for j := range classes {
				if int64(j) == y {
					continue
				}
				diff := make([]float32, d)
				for i := range diff {
					diff[i] = w[j][i] - w[y][i]
				}
				margin := float64(logits[y] - logits[j])
				var dual, move float64 // the dual norm and the largest pixel change of the optimum
				switch norm {
				case Linf:
					dual = l1Norm(diff)
					move = margin / dual
				case L2:
					dual = l2Norm(diff)
					move = margin / dual * maxAbs(diff) / dual
				case L1:
					dual = maxAbs(diff)
					move = margin / dual
				}
				if dist := margin / dual; dist < want {
					want, inside = dist, move < 0.3
				}
			}
			if !inside {
				continue
			}
			checked++
			tm := ThreatModel{Norm: norm, Eps: float32(want)}
			min, err := FAB{}.Minimize(context.Background(), m, x, []int64{y}, tm, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := min.Dist[0]; got < want*(1-1e-4) || got > want*1.01 {
				t.Errorf("trial %d %s: minimal distance %.6g, want %.6g (+1%%)", trial, norm.Symbol(), got, want)
			}
		}
	}
	if checked < 6 {
		t.Fatalf("only %d cases with the optimum inside the box", checked)
	}
}

// TestBoundaryStep checks the projection onto a hyperplane within the box
// on small cases solved by hand.
func TestBoundaryStep(t *testing.T) {
	p := []float32{0.5, 0.9, 0.2}
	w := []float32{1, 2, -1}
	cases := []struct {
		name string
		norm Norm
		r    float64
		want []float32
	}{
		// L∞: δ = λ·sign(w) until pixel 2 (room 0.1) saturates: 0.1·2 +
		// λ·(1+1) = 0.6 gives λ = 0.2.
		{"linf", Linf, 0.6, []float32{0.2, 0.1, -0.2}},
		// L2: δ = μ·w until pixel 2 saturates at μ = 0.05: 0.2 + μ·2 = 0.6
		// gives μ = 0.2.
		{"l2", L2, 0.6, []float32{0.2, 0.1, -0.2}},
		// L1: pixel 2 (|w| = 2) first: 0.2, then pixel 1 or 3 (|w| = 1):
		// pixel 1 comes first on the tie.
		{"l1", L1, 0.6, []float32{0.4, 0.1, 0}},
		// Out of reach: the corner gains 0.5 + 0.2 + 0.2 = 0.9 < 2.
		{"corner", L2, 2, []float32{0.5, 0.1, -0.2}},
		// Negative offset: δ = −λ·sign(w) with λ·(1+2+1) = 0.1.
		{"negative", Linf, -0.1, []float32{-0.025, -0.025, 0.025}},
		{"zero", L1, 0, []float32{0, 0, 0}},
	}
	var b boundary
	for _, c := range cases {
		got := make([]float32, 3)
		b.step(c.norm, p, w, c.r, got)
		for i := range got {
			if math.Abs(float64(got[i]-c.want[i])) > 1e-6 {
				t.Errorf("%s: δ = %v, want %v", c.name, got, c.want)
				break
			}
		}
	}
}

// TestEpsSearch checks the per-sample smallest breaking ε on the binary
// model against the closed form |m|/‖u‖₁ (L∞) within 1%.
func TestEpsSearch(t *testing.T) {
	m, x, y := binaryModel(t)
	got, err := EpsSearch{}.Run(context.Background(), m, x, y, Linf, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, margin := range []float64{2.2, 0.2375} {
		want := margin / l1Norm(anaU)
		if d := got.Dist[i]; d < want*(1-1e-5) || d > want*1.01 {
			t.Errorf("sample %d: minimal ε %.6g, want %.6g (+1%%)", i, d, want)
		}
		if tm := (ThreatModel{Norm: Linf, Eps: float32(got.Dist[i])}); !tm.Contains(x[6*i:6*i+6], got.Adv[6*i:6*i+6]) {
			t.Errorf("sample %d: example outside its ε", i)
		}
	}
}

// TestBoundaryRandom checks the L∞ and L2 projections on random problems:
// δ reaches the hyperplane within the box, and its norm is the level that
// a plain bisection on the gain function min(t·s_i, c_i) finds.
func TestBoundaryRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var b boundary
	for trial := range 200 {
		d := 1 + rng.IntN(50)
		p, w := make([]float32, d), make([]float32, d)
		var reach float64
		for i := range p {
			p[i], w[i] = rng.Float32(), float32(rng.NormFloat64())
			if rng.IntN(4) == 0 {
				p[i] = float32(rng.IntN(2))
			}
			room := 1 - float64(p[i])
			if w[i] < 0 {
				room = float64(p[i])
			}
			reach += math.Abs(float64(w[i])) * room
		}
		for _, norm := range []Norm{Linf, L2} {
			r := rng.Float64() * reach * 0.9 // reachable
			delta := make([]float32, d)
			b.step(norm, p, w, r, delta)
			var gain float64
			for i, v := range delta {
				gain += float64(w[i]) * float64(v)
				if x := p[i] + v; x < -1e-6 || x > 1+1e-6 {
					t.Fatalf("trial %d %s: pixel %d leaves the box: %v", trial, norm, i, x)
				}
			}
			if math.Abs(gain-r) > 1e-4*max(1, r) {
				t.Fatalf("trial %d %s: w·δ = %v, want %v", trial, norm, gain, r)
			}
			// Bisection on the level t of G(t) = Σ min(t·s_i, c_i).
			lo, hi := 0.0, 1e6
			for range 200 {
				mid := (lo + hi) / 2
				var g float64
				for i := range p {
					a := math.Abs(float64(w[i]))
					room := 1 - float64(p[i])
					if float64(w[i]) < 0 {
						room = float64(p[i])
					}
					if norm == Linf {
						g += a * min(mid, room)
					} else {
						g += a * min(mid*a, room)
					}
				}
				if g >= r {
					hi = mid
				} else {
					lo = mid
				}
			}
			got := Linf.Distance(delta, make([]float32, d))
			want := hi
			if norm == L2 {
				// δ_i = min(μ|w_i|, u_i): compare δ's L2 norm with μ's.
				var s float64
				for i := range p {
					a := math.Abs(float64(w[i]))
					room := 1 - float64(p[i])
					if float64(w[i]) < 0 {
						room = float64(p[i])
					}
					v := min(hi*a, room)
					s += v * v
				}
				got, want = L2.Distance(delta, make([]float32, d)), math.Sqrt(s)
			}
			if math.Abs(got-want) > 1e-4*max(1, want) {
				t.Fatalf("trial %d %s: ‖δ‖ = %v, bisection %v", trial, norm, got, want)
			}
		}
	}
}

// BenchmarkFABMove times one FAB step's Go-side work for one row (the two
// projections and the convex combination) on a 28×28 image with half its
// pixels at 0, as Fashion-MNIST's are, and a Gaussian gradient.
func BenchmarkFABMove(b *testing.B) {
	for _, norm := range []Norm{Linf, L2, L1} {
		b.Run(norm.String(), func(b *testing.B) {
			const d = 784
			rng := rand.New(rand.NewPCG(3, 3))
			x0, x1, w := make([]float32, d), make([]float32, d), make([]float32, d)
			for i := range x0 {
				if rng.IntN(2) == 0 {
					x0[i] = rng.Float32()
				}
				x1[i] = min(max(x0[i]+0.05*float32(rng.NormFloat64()), 0), 1)
				w[i] = float32(rng.NormFloat64())
			}
			f := &fab{p: &problem{d: d, t: ThreatModel{Norm: norm, Eps: 0.1}}}
			f.alphaMax, f.eta, f.beta = FAB{}.params()
			f.init()
			x := make([]float32, d)
			b.ResetTimer()
			cpu := cpuTime(b)
			for range b.N {
				copy(x, x1)
				f.move(&f.scratch[0], x, x0, w, 3)
			}
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// TestFABWorkers checks that FAB's per-row work, shared among GOMAXPROCS
// goroutines, gives bit-identical minimal perturbations whatever their
// number: every row's projections use only that row's data.
func TestFABWorkers(t *testing.T) {
	g, err := zoo.Build("small-cnn", zoo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewONNXModel(testenv.ORT(t), g, ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 7
	x, _, _ := benchImages(n)
	logits := make([]float32, n*m.Classes())
	if err := m.Logits(x, n, logits); err != nil {
		t.Fatal(err)
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(Predict(logits[i*m.Classes() : (i+1)*m.Classes()]))
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, norm := range []Norm{Linf, L2, L1} {
		var ref *Minimal
		for _, procs := range []int{1, 3} {
			runtime.GOMAXPROCS(procs)
			got, err := FAB{TargetClasses: 2, Steps: 15}.Minimize(context.Background(), m, x, y, ThreatModel{Norm: norm, Eps: 0.1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = got
				continue
			}
			for i := range got.Dist {
				if math.Float64bits(got.Dist[i]) != math.Float64bits(ref.Dist[i]) {
					t.Errorf("%s sample %d: distance %v with %d goroutines, %v with 1", norm, i, got.Dist[i], procs, ref.Dist[i])
				}
			}
			for j := range got.Adv {
				if math.Float32bits(got.Adv[j]) != math.Float32bits(ref.Adv[j]) {
					t.Fatalf("%s: adversarial images differ at value %d", norm, j)
				}
			}
		}
	}
}

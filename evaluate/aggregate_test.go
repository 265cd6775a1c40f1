package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/robust-go/robust/attacks"
	"github.com/robust-go/robust/dataset"
)

// The aggregation tests run Run on a scripted model and scripted attacks:
// each sample's fate under each attack is decided in advance, so the
// expected counts are exact. All the plumbing that depends on the attack
// API is in this block (scriptedSample, scriptedModel, scriptedAttack).
//
// A scripted attack moves the second pixel of the samples it is to break
// by ε (by 2ε, outside the ball, when the script says so) and claims a
// success for them; the model misclassifies a sample once that pixel has
// moved.

// scriptedSample is one sample's script.
type scriptedSample struct {
	wrong    bool   // misclassified when clean
	brokenBy string // the name of the attack that breaks it ("": none)
	// lies makes the model misclassify the moved sample only the first
	// time it sees it: the attack claims a success that re-verification
	// does not confirm (a non-deterministic model).
	lies bool
	// outside makes the attack move the sample by 2ε, out of the ball: a
	// claimed success that re-verification must reject.
	outside bool
}

// scriptedModel is an attacks.Model of 1×1×2 images in 3 classes. Pixel
// 0 identifies the sample ((i+1)/64, exact in float32), pixel 1 is 0.5 when
// clean; the model misclassifies a sample when its script says so: when
// clean and wrong, or when pixel 1 has moved by more than ε/2.
type scriptedModel struct {
	script []scriptedSample
	eps    float32
	seen   []int // evaluations of each sample at a moved point
}

const scriptedClasses = 3

func (m *scriptedModel) Classes() int  { return scriptedClasses }
func (m *scriptedModel) Shape() [3]int { return [3]int{1, 1, 2} }

// sample returns the script index of the image x.
func (m *scriptedModel) sample(x []float32) int {
	return int(math.Round(float64(x[0])*64)) - 1
}

func (m *scriptedModel) Logits(x []float32, n int, out []float32) error {
	for k := range n {
		img := x[2*k : 2*k+2]
		i := m.sample(img)
		if i < 0 || i >= len(m.script) {
			return fmt.Errorf("scripted model: unknown sample pixel %v", img[0])
		}
		s := m.script[i]
		fooled := s.wrong
		if math.Abs(float64(img[1]-0.5)) > float64(m.eps)/2 {
			m.seen[i]++
			fooled = fooled || s.brokenBy != "" && (!s.lies || m.seen[i] == 1)
		}
		z := out[k*scriptedClasses : (k+1)*scriptedClasses]
		label := scriptedLabel(i)
		for j := range z {
			z[j] = -1
		}
		z[label], z[(label+1)%scriptedClasses] = 1, 0
		if fooled {
			z[label], z[(label+1)%scriptedClasses] = 0, 1
		}
	}
	return nil
}

// Grad is never called: the scripted attacks use no gradients.
func (m *scriptedModel) Grad(attacks.GradInput, attacks.GradOutput) error {
	return errors.New("scripted model: no gradients")
}

func scriptedLabel(i int) int { return i % scriptedClasses }

// scriptedData returns the images the script describes.
func scriptedData(n int) *dataset.Dataset {
	d := &dataset.Dataset{Name: "scripted", Partition: "test", C: 1, H: 1, W: 2, NumClasses: scriptedClasses}
	for i := range n {
		d.X = append(d.X, float32(i+1)/64, 0.5)
		d.Y = append(d.Y, int64(scriptedLabel(i)))
	}
	return d
}

// scriptedAttack breaks the samples whose script names it: it moves them
// and claims a success where the model, asked once, misclassifies.
type scriptedAttack struct {
	name  string
	model *scriptedModel
}

func (a scriptedAttack) Name() string                     { return a.name }
func (a scriptedAttack) String() string                   { return "scripted " + a.name }
func (a scriptedAttack) Supports(attacks.Norm, int) error { return nil }

func (a scriptedAttack) Run(_ context.Context, m attacks.Model, x []float32, y []int64, t attacks.ThreatModel, _ *rand.Rand) (*attacks.Result, error) {
	n := len(y)
	res := &attacks.Result{Adv: slices.Clone(x), Success: make([]bool, n)}
	for k := range n {
		s := a.model.script[a.model.sample(x[2*k:2*k+2])]
		if s.brokenBy != a.name {
			continue
		}
		step := t.Eps
		if s.outside {
			step = 2 * t.Eps
		}
		res.Adv[2*k+1] += step
	}
	logits := make([]float32, n*scriptedClasses)
	if err := m.Logits(res.Adv, n, logits); err != nil {
		return nil, err
	}
	for k := range n {
		res.Success[k] = attacks.Fooled(logits[k*scriptedClasses:(k+1)*scriptedClasses], y[k], -1)
	}
	res.Queries = n
	return res, nil
}

// runScripted evaluates the script at ε = 0.1 with the given attacks.
// The attacks are named by names.
func runScripted(t *testing.T, script []scriptedSample, independent bool, names ...string) *Report {
	t.Helper()
	const eps = 0.1
	m := &scriptedModel{script: script, eps: eps, seen: make([]int, len(script))}
	var suite []attacks.Attack
	for _, name := range names {
		suite = append(suite, scriptedAttack{name: name, model: m})
	}
	rep, err := Run(context.Background(), m, scriptedData(len(script)), Config{
		Eps: []Eps{{Value: eps, Text: "0.1"}}, Norm: attacks.Linf, Attacks: suite,
		Independent: independent, NoSanity: true, BatchSize: 5, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestAggregation runs two attacks that break disjoint samples and checks
// every count in cascade and independent mode: each attack's attacked,
// broken and robust counts, and the overall robust count, which is the
// per-sample worst case (a sample is robust only if no attack broke it).
//
// Mutation caught: the overall robust accuracy taken as the lowest single
// attack's in independent mode.
func TestAggregation(t *testing.T) {
	ce, cw := "first", "second"
	// 14 samples: 2 misclassified, 3 broken by CE, 4 by CW, 5 robust.
	var script []scriptedSample
	add := func(k int, s scriptedSample) {
		for range k {
			script = append(script, s)
		}
	}
	add(2, scriptedSample{wrong: true})
	add(3, scriptedSample{brokenBy: ce})
	add(4, scriptedSample{brokenBy: cw})
	add(5, scriptedSample{})
	type counts struct{ attacked, broken, robust int }
	tests := []struct {
		independent bool
		want        []counts
		robust      int
	}{
		{false, []counts{{12, 3, 9}, {9, 4, 5}}, 5},
		{true, []counts{{12, 3, 9}, {12, 4, 8}}, 5},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("independent=%v", tc.independent), func(t *testing.T) {
			rep := runScripted(t, script, tc.independent, ce, cw)
			if rep.Clean.Correct != 12 || rep.Clean.Total != 14 {
				t.Fatalf("clean %d/%d, want 12/14", rep.Clean.Correct, rep.Clean.Total)
			}
			p := rep.Points[0]
			for i, a := range p.Attacks {
				got := counts{a.Attacked, a.Broken, a.Robust.Correct}
				if got != tc.want[i] || a.Rejected != 0 || a.Robust.Total != 14 {
					t.Errorf("%s: attacked, broken, robust %v, rejected %d; want %v, 0", a.Name, got, a.Rejected, tc.want[i])
				}
			}
			if p.Robust.Correct != tc.robust || p.Robust.Total != 14 {
				t.Errorf("robust under all attacks %d/%d, want %d/14", p.Robust.Correct, p.Robust.Total, tc.robust)
			}
		})
	}
}

// TestAggregationRejects has an attack claim successes that
// re-verification does not confirm: twice the model misclassifies the
// example only the first time it sees it, once the example lies outside
// the ε-ball. They count as rejected, not broken, and the samples stay
// robust.
//
// Mutation caught: the verification in Attack replaced by true (and the
// ball check alone removed, for the sample outside the ball).
func TestAggregationRejects(t *testing.T) {
	ce := "first"
	script := []scriptedSample{
		{brokenBy: ce},
		{brokenBy: ce, lies: true},
		{brokenBy: ce, lies: true},
		{brokenBy: ce, outside: true},
		{},
	}
	for _, independent := range []bool{false, true} {
		t.Run(fmt.Sprintf("independent=%v", independent), func(t *testing.T) {
			rep := runScripted(t, script, independent, ce)
			a, p := rep.Points[0].Attacks[0], rep.Points[0]
			if a.Attacked != 5 || a.Broken != 1 || a.Rejected != 3 || a.Robust.Correct != 4 || p.Robust.Correct != 4 {
				t.Errorf("attacked %d, broken %d, rejected %d, robust %d (overall %d); want 5, 1, 3, 4 (4)",
					a.Attacked, a.Broken, a.Rejected, a.Robust.Correct, p.Robust.Correct)
			}
		})
	}
}

package train

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
)

func TestSchedules(t *testing.T) {
	tests := []struct {
		spec  string
		step  int
		total int
		want  float64
	}{
		{"constant", 7, 10, 0.1},
		{"piecewise", 0, 100, 0.1},
		{"piecewise", 50, 100, 0.01},
		{"piecewise", 75, 100, 0.001},
		{"piecewise:0.5", 99, 100, 0.01},
		{"cyclic", 0, 100, 0},
		{"cyclic", 40, 100, 0.1},
		{"cyclic", 20, 100, 0.05},
		{"cyclic", 70, 100, 0.05},
		{"cosine", 0, 100, 0.1},
		{"cosine", 50, 100, 0.05},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec, 0.1)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		if got := s.LR(tt.step, tt.total); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s at %d/%d: %g, want %g", tt.spec, tt.step, tt.total, got, tt.want)
		}
	}
	for _, bad := range []string{"linear", "piecewise:2", "piecewise:x", "cyclic:0"} {
		if _, err := ParseSchedule(bad, 0.1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseSchedule("constant", -1); err == nil {
		t.Error("negative learning rate accepted")
	}
}

func TestSGDMatchesPyTorch(t *testing.T) {
	// PyTorch: SGD(lr=0.1, momentum=0.9, weight_decay=0.01), two steps with
	// gradient 1 on w=1: v1 = 1.01, w1 = 0.899; v2 = 0.9·1.01 + 1 + 0.00899,
	// w2 = w1 − 0.1·v2.
	p := &Param{Name: "w", Data: []float32{1}, Grad: []float32{1}, Decay: true}
	b := &Param{Name: "b", Data: []float32{1}, Grad: []float32{1}}
	opt := SGD{Momentum: 0.9, WeightDecay: 0.01}
	for range 2 {
		if err := opt.Step([]*Param{p, b}, 0.1); err != nil {
			t.Fatal(err)
		}
	}
	v2 := 0.9*1.01 + 1 + 0.01*0.899
	if want := 0.899 - 0.1*v2; math.Abs(float64(p.Data[0])-want) > 1e-6 {
		t.Errorf("decayed weight %g, want %g", p.Data[0], want)
	}
	if want := 1 - 0.1*1 - 0.1*1.9; math.Abs(float64(b.Data[0])-want) > 1e-6 {
		t.Errorf("bias %g, want %g", b.Data[0], want)
	}
	bad := &Param{Name: "x", Data: []float32{1, 2}, Grad: []float32{1}}
	if err := opt.Step([]*Param{bad}, 0.1); err == nil {
		t.Error("gradient size mismatch accepted")
	}
}

// TestSGDParts checks that the parts of a parallel update, on as many
// goroutines, make exactly one Step, whatever the parameter sizes.
func TestSGDParts(t *testing.T) {
	opt := SGD{Momentum: 0.9, WeightDecay: 5e-4}
	newParams := func() []*Param {
		var ps []*Param
		for i, n := range []int{1, 2, 7, 1000} {
			p := &Param{Name: fmt.Sprint(i), Data: make([]float32, n), Grad: make([]float32, n), Decay: i%2 == 0}
			for j := range n {
				p.Data[j], p.Grad[j] = float32(j%5)-2, float32(j%3)-1
			}
			ps = append(ps, p)
		}
		ps[1].Frozen = true
		return ps
	}
	want := newParams()
	for range 2 {
		if err := opt.Step(want, 0.1); err != nil {
			t.Fatal(err)
		}
	}
	for _, parts := range []int{1, 2, 3, 8} {
		got := newParams()
		for range 2 {
			if err := prepare(got); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for k := range parts {
				wg.Go(func() { opt.stepPart(got, 0.1, k, parts) })
			}
			wg.Wait()
		}
		for i := range want {
			if !slices.Equal(got[i].Data, want[i].Data) || !slices.Equal(got[i].Velocity, want[i].Velocity) {
				t.Errorf("%d parts: parameter %s differs from one Step", parts, want[i].Name)
			}
		}
	}
}

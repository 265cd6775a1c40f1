package attacks

import (
	"math"
	"slices"
)

// L1-APGD constants of Croce & Hein (2021, "Mind the box: l1-APGD for
// sparse adversarial attacks on image classifiers") and AutoAttack.
const (
	apgdL1TopK     = 0.2  // initial fraction of coordinates a step moves
	apgdL1Check    = 0.04 // checkpoint interval, as a fraction of the steps
	apgdL1Shrink   = 0.95 // the support shrank when it fell below this ratio
	apgdL1StepDown = 1.5  // the step size's decrease at a checkpoint
	apgdL1MinStep  = 10   // the step size stays ≥ ε/apgdL1MinStep
)

// apgdL1Loop runs the L1 iterations of APGD: each step moves the topk
// fraction of coordinates with the largest gradient by η/k each (k the
// number moved), along the gradient's sign, then projects onto the L1 ball
// intersected with the box. At checkpoints (every 4% of the steps) the
// fraction becomes the best point's support over 1.5 times the image
// size; if the support shrank by 5% or more, η goes back to ε and the
// iterate to the best point, otherwise η shrinks by 1.5 (not below ε/10).
func (p *problem) apgdL1Loop(r *rows, s *apgdState, steps int) error {
	interval := max(int(apgdL1Check*float64(steps)), 1)
	sinceCheck := 0
	for range steps {
		for k := range r.len() {
			p.apgdL1Step(row(s.adv, k, p.d), row(s.grad, k, p.d), p.clean(r, k), s, p.stepThreat(r.idx[k]).Eps, s.eta[k], s.topk[k])
		}
		if left, err := p.apgdEval(r, s); !left {
			return err
		}
		for k := range r.len() {
			if l := s.losses[k]; l > s.lossBest[k] {
				s.lossBest[k] = l
				copy(row(s.best, k, p.d), row(s.adv, k, p.d))
				copy(row(s.gradBest, k, p.d), row(s.grad, k, p.d))
			}
		}
		if sinceCheck++; sinceCheck < interval {
			continue
		}
		sinceCheck = 0
		for k, i := range r.idx {
			eps := p.stepThreat(i).Eps
			support := float32(l0(row(s.best, k, p.d), p.clean(r, k)))
			shrank := support/s.support[k] < apgdL1Shrink
			s.topk[k], s.support[k] = support/float32(p.d)/1.5, support
			if shrank {
				s.eta[k] = eps
				copy(row(s.adv, k, p.d), row(s.best, k, p.d))
				copy(row(s.grad, k, p.d), row(s.gradBest, k, p.d))
			} else {
				s.eta[k] = min(max(s.eta[k]/apgdL1StepDown, eps/apgdL1MinStep), eps)
			}
		}
	}
	return nil
}

// apgdL1Step moves adv by one sparse L1 step of length eta along the
// coordinates of the largest gradient magnitude and projects it back.
func (p *problem) apgdL1Step(adv, g, x []float32, s *apgdState, eps, eta, topk float32) {
	d := len(adv)
	mags := s.z[:d]
	for i, v := range g {
		mags[i] = float32(math.Abs(float64(v)))
	}
	slices.Sort(mags)
	threshold := mags[min(max(int((1-topk)*float32(d)), 0), d-1)]
	moved := 0
	for _, v := range g {
		if v != 0 && float32(math.Abs(float64(v))) >= threshold {
			moved++
		}
	}
	if moved == 0 {
		return
	}
	step := p.obj.sign * eta / float32(moved)
	for i, v := range g {
		if v == 0 || float32(math.Abs(float64(v))) < threshold {
			continue
		}
		if v > 0 {
			adv[i] += step
		} else {
			adv[i] -= step
		}
	}
	s.l1.project(adv, x, eps)
}

// l0 counts the coordinates where a and b differ.
func l0(a, b []float32) int {
	n := 0
	for i, v := range a {
		if v != b[i] {
			n++
		}
	}
	return n
}

// l1Projection projects onto the intersection of an L1 ball and the box
// [0,1]^d (written here: no Go library offers it). The Euclidean
// projection of x+v is x+δ with δ_i = sign(v_i)·clip(|v_i| − λ, 0, u_i),
// u_i the room in the box in the direction of v_i: soft thresholding then
// clipping, coordinate-wise, with λ ≥ 0 the smallest level whose ‖δ‖₁ is
// at most ε. ‖δ(λ)‖₁ is piecewise linear and decreasing in λ with
// breakpoints |v_i| − u_i and |v_i|; λ is found by sorting them.
type l1Projection struct {
	events []l1Event
}

type l1Event struct {
	at    float64
	slope int
}

// project moves adv to its projection onto {x+δ : ‖δ‖₁ ≤ eps, x+δ ∈ [0,1]}.
func (q *l1Projection) project(adv, x []float32, eps float32) {
	var total float64 // ‖δ(0)‖₁: the box-clipped change
	slope := 0        // −d‖δ‖₁/dλ at the current λ
	q.events = q.events[:0]
	for i, v := range adv {
		a, room := math.Abs(float64(v)-float64(x[i])), float64(x[i])
		if v > x[i] {
			room = 1 - float64(x[i])
		}
		if a == 0 || room <= 0 {
			continue
		}
		total += min(a, room)
		if start := a - room; start > 0 {
			q.events = append(q.events, l1Event{start, 1})
		} else {
			slope++
		}
		q.events = append(q.events, l1Event{a, -1})
	}
	lambda := 0.0
	if want := float64(eps); total > want {
		slices.SortFunc(q.events, func(a, b l1Event) int {
			switch {
			case a.at < b.at:
				return -1
			case a.at > b.at:
				return 1
			}
			return 0
		})
		cur, norm := 0.0, total
		lambda = math.Inf(1)
		for _, e := range q.events {
			next := norm - float64(slope)*(e.at-cur)
			if next <= want {
				lambda = cur + (norm-want)/float64(slope)
				break
			}
			cur, norm = e.at, next
			slope += e.slope
		}
	}
	for i, v := range adv {
		dv, room := float64(v)-float64(x[i]), float64(x[i])
		if dv > 0 {
			room = 1 - float64(x[i])
		}
		m := min(max(math.Abs(dv)-lambda, 0), room)
		if dv < 0 {
			m = -m
		}
		adv[i] = float32(float64(x[i]) + m)
	}
	clip01(adv)
}

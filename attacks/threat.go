package attacks

import (
	"fmt"
	"math"
	"strings"
)

// Norm is the norm of a threat model's ball.
type Norm int

// Norms.
const (
	// Linf bounds every pixel's change by ε.
	Linf Norm = iota
	// L2 bounds the Euclidean length of the change by ε.
	L2
	// L1 bounds the sum of the absolute changes by ε (sparse perturbations).
	L1
)

func (n Norm) String() string {
	switch n {
	case Linf:
		return "linf"
	case L2:
		return "l2"
	case L1:
		return "l1"
	}
	return fmt.Sprintf("Norm(%d)", int(n))
}

// Symbol returns the norm's mathematical name: "L∞", "L2" or "L1".
func (n Norm) Symbol() string {
	switch n {
	case L2:
		return "L2"
	case L1:
		return "L1"
	}
	return "L∞"
}

// ParseNorm parses "linf" (also "inf", "Linf", "l∞"), "l2" or "l1".
func ParseNorm(s string) (Norm, error) {
	switch strings.ToLower(s) {
	case "linf", "inf", "l∞", "∞":
		return Linf, nil
	case "l2", "2":
		return L2, nil
	case "l1", "1":
		return L1, nil
	}
	return 0, fmt.Errorf("%w %q (want linf, l2 or l1)", ErrUnknownNorm, s)
}

// MaxEps returns the largest meaningful radius for images of d values in
// [0,1]: the norm of the all-ones image (1 for L∞, √d for L2, d for L1).
func (n Norm) MaxEps(d int) float64 {
	switch n {
	case L2:
		return math.Sqrt(float64(d))
	case L1:
		return float64(d)
	}
	return 1
}

// Distance returns the norm of a − b.
func (n Norm) Distance(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	switch n {
	case L2:
		for i, v := range a {
			d := float64(v) - float64(b[i])
			s += d * d
		}
		return math.Sqrt(s)
	case L1:
		for i, v := range a {
			s += math.Abs(float64(v) - float64(b[i]))
		}
		return s
	}
	for i, v := range a {
		d := math.Abs(float64(v) - float64(b[i]))
		if d > s {
			s = d
		} else if d != d {
			return d // NaN
		}
	}
	return s
}

// dual returns the dual norm of g: the L1 norm for L∞, L2 for L2 and L∞
// for L1, so that the steepest-ascent step of length 1 in the norm n gains
// n.dual(g) to first order.
func (n Norm) dual(g []float32) float64 {
	var s float64
	for _, v := range g {
		a := math.Abs(float64(v))
		switch n {
		case L2:
			s += a * a
		case L1:
			s = max(s, a)
		default:
			s += a
		}
	}
	if n == L2 {
		return math.Sqrt(s)
	}
	return s
}

// ThreatModel is the set of allowed adversarial images: the ball of
// radius Eps in the norm Norm around each clean image, intersected with
// the box [0,1]. It is given to an attack at call time, so that one attack
// value serves every budget (as in Foolbox 3).
type ThreatModel struct {
	Norm Norm
	Eps  float32
}

func (t ThreatModel) String() string { return fmt.Sprintf("%s ε=%g", t.Norm.Symbol(), t.Eps) }

// Validate checks the radius against the norm's range for images of d
// values.
func (t ThreatModel) Validate(d int) error {
	switch t.Norm {
	case Linf, L2, L1:
	default:
		return fmt.Errorf("%w %v", ErrUnknownNorm, t.Norm)
	}
	limit, eps := t.Norm.MaxEps(d), float64(t.Eps)
	if !(eps > 0 && eps <= limit) {
		if t.Norm == Linf {
			return fmt.Errorf("ε = %g is out of range (0, 1] for the L∞ norm", eps)
		}
		return fmt.Errorf("ε = %g is out of range (0, %.4g] for the %s norm of %d-value images", eps, limit, t.Norm.Symbol(), d)
	}
	return nil
}

// tolerance is the slack of the budget check, for the float32 rounding of
// x + δ: a few units in the last place of values in [0,1], summed over the
// image for L1.
func (t ThreatModel) tolerance(d int) float64 {
	switch t.Norm {
	case L2:
		return 1e-5*float64(t.Eps) + 2e-7*math.Sqrt(float64(d))
	case L1:
		return 1e-5*float64(t.Eps) + 2e-7*float64(d)
	}
	return 1e-6
}

// Contains reports whether adv lies in [0,1] and within ε of the clean
// image x (up to float32 rounding): the check every adversarial example
// passes before it counts.
func (t ThreatModel) Contains(x, adv []float32) bool {
	if len(x) != len(adv) {
		return false
	}
	for _, v := range adv {
		if !(v >= 0 && v <= 1) {
			return false
		}
	}
	return t.Norm.Distance(adv, x) <= float64(t.Eps)+t.tolerance(len(x))
}

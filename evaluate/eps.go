package evaluate

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Eps is a perturbation budget as the user wrote it ("4/255") and its
// value.
type Eps struct {
	Value float32
	Text  string
}

func (e Eps) String() string { return e.Text }

// ParseEps parses a comma-separated list of budgets, each a decimal number
// ("0.03") or a fraction ("4/255"). Each must be positive and finite; the
// norm-specific upper bound is checked by the attacks.
func ParseEps(s string) ([]Eps, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty ε list")
	}
	var out []Eps
	for part := range strings.SplitSeq(s, ",") {
		e, err := parseOneEps(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Value == e.Value {
				return nil, fmt.Errorf("ε %s is listed twice", e.Text)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func parseOneEps(s string) (Eps, error) {
	num, den, isFrac := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return Eps{}, fmt.Errorf("ε %q: not a number or fraction like 4/255", s)
	}
	if isFrac {
		d, err := strconv.ParseFloat(den, 64)
		if err != nil || d == 0 {
			return Eps{}, fmt.Errorf("ε %q: bad denominator", s)
		}
		v /= d
	}
	if !(v > 0) || math.IsInf(v, 0) || v > math.MaxFloat32 {
		return Eps{}, fmt.Errorf("ε %q must be a positive finite number", s)
	}
	return Eps{Value: float32(v), Text: s}, nil
}

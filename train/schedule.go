package train

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/robust-go/robust/internal/liberr"
)

// Schedule gives the learning rate at a step (0-based) of a run of total
// steps. For free training a step is one replay: the schedule counts
// replays, as the reference code does.
type Schedule interface {
	LR(step, total int) float64
	String() string
}

// ParseSchedule reads a schedule description:
//
//	constant                 the base rate throughout
//	piecewise[:F1,F2,...]    ×0.1 at each fraction Fi of the run (default 0.5,0.75)
//	cyclic[:PEAK]            linear 0 → base at fraction PEAK (default 0.4) → 0 (fast AT)
//	cosine                   base·(1+cos(π·t))/2
func ParseSchedule(spec string, base float64) (s Schedule, err error) {
	defer liberr.Prefix(&err, "train")
	if base <= 0 || math.IsNaN(base) || math.IsInf(base, 0) {
		return nil, fmt.Errorf("learning rate %v must be positive", base)
	}
	name, arg, _ := strings.Cut(spec, ":")
	switch name {
	case "constant":
		return constant{base}, nil
	case "piecewise":
		fr := []float64{0.5, 0.75}
		if arg != "" {
			fr = fr[:0]
			for _, f := range strings.Split(arg, ",") {
				v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
				if err != nil || v <= 0 || v >= 1 {
					return nil, fmt.Errorf("schedule %q: milestone %q must be a fraction in (0,1)", spec, f)
				}
				fr = append(fr, v)
			}
		}
		return piecewise{base, fr}, nil
	case "cyclic":
		peak := 0.4
		if arg != "" {
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil || v <= 0 || v >= 1 {
				return nil, fmt.Errorf("schedule %q: peak must be a fraction in (0,1)", spec)
			}
			peak = v
		}
		return cyclic{base, peak}, nil
	case "cosine":
		return cosine{base}, nil
	}
	return nil, fmt.Errorf("unknown schedule %q (want constant, piecewise[:F,...], cyclic[:PEAK] or cosine)", spec)
}

type constant struct{ base float64 }

func (c constant) LR(int, int) float64 { return c.base }
func (c constant) String() string      { return fmt.Sprintf("constant %g", c.base) }

type piecewise struct {
	base       float64
	milestones []float64
}

func (p piecewise) LR(step, total int) float64 {
	lr := p.base
	for _, m := range p.milestones {
		if float64(step) >= m*float64(total) {
			lr *= 0.1
		}
	}
	return lr
}

func (p piecewise) String() string {
	return fmt.Sprintf("piecewise %g, ×0.1 at %v of the run", p.base, p.milestones)
}

type cyclic struct{ base, peak float64 }

func (c cyclic) LR(step, total int) float64 {
	t := float64(step) / float64(max(total, 1))
	if t < c.peak {
		return c.base * t / c.peak
	}
	return c.base * max(0, (1-t)/(1-c.peak))
}

func (c cyclic) String() string { return fmt.Sprintf("cyclic 0→%g at %g→0", c.base, c.peak) }

type cosine struct{ base float64 }

func (c cosine) LR(step, total int) float64 {
	t := float64(step) / float64(max(total, 1))
	return c.base * (1 + math.Cos(math.Pi*t)) / 2
}

func (c cosine) String() string { return fmt.Sprintf("cosine %g→0", c.base) }

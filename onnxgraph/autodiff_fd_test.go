package onnxgraph_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// Finite-difference checks of the gradient rules, run through ONNX Runtime.
//
// Each case builds a small forward graph y = f(inputs). The harness appends
// L = Σ y·R (R a random input, so every output element gets its own
// upstream gradient), differentiates L with respect to every float input
// but R, runs the gradient graph, and compares each gradient element with
// the central difference (L(x+h) − L(x−h))/(x+h − (x−h)), where L is
// summed in float64 in Go from the graph's y (so that only the elements of
// y that depend on x contribute rounding error) and the denominator is the
// step the perturbed inputs really took.
//
// A case runs in double precision when ONNX Runtime's CPU provider has
// double kernels for every operator of its gradient graph (h = 1e-6);
// otherwise (Conv, ConvTranspose, AveragePool, ...) in float32 with h =
// 1e-2. Each element is accepted when
//
//	|fd − analytic| ≤ rtol·|analytic| + atol·max(1, ‖analytic‖∞),
//
// rtol = 1e-6 and atol = 1e-7 in double (the largest errors seen are 50×
// smaller), rtol = 1e-3 and atol = 2e-4 in float32 (the largest errors
// seen, 9e-5 relative and 4e-5 absolute, are 5× smaller). A gradient rule
// off by 0.4% therefore fails on its largest elements, in float32 too
// (TestFDCatchesScaledGradients checks it). Inputs that meet a kink (Relu,
// Abs, Clip bounds, max selections) are generated at least 0.05 away from
// it, farther than h.

// Tolerances of runFD (see above).
const (
	fdRelDouble, fdAbsDouble = 1e-6, 1e-7
	fdRelFloat, fdAbsFloat   = 1e-3, 2e-4
)

// fdCase is one gradient-rule test.
type fdCase struct {
	name string
	// build declares the inputs (float inputs are differentiated; a
	// symbolic dimension is fed as 3) and returns the output y.
	build func(b *og.Builder, e og.DataType) string
	// gen returns the values of float input name (default uniform in
	// [−1, 1)).
	gen func(r *rand.Rand, name string, n int) []float64
	// ints are the values of int64 inputs.
	ints map[string][]int64
	// opts are passed to Gradients.
	opts *og.GradOptions
	// noDiff lists float inputs that are not differentiated.
	noDiff []string
	// load, when set, replaces build: it returns a forward model in the
	// given element type and its output.
	load func(e og.DataType) (*og.Model, string, error)
	// limit caps the elements checked per gradient (default 400).
	limit int
	// feed gives fixed values for some inputs (model parameters).
	feed map[string][]float64
	// skew, when set, multiplies the analytic gradient of that input by
	// skewFactor before the comparison: the harness's own test, a gradient
	// rule that is slightly wrong.
	skew       string
	skewFactor float64
}

const symbolicSize = 3

// concrete replaces symbolic dimensions by symbolicSize.
func concrete(s og.Shape) []int64 {
	out := s.Ints()
	for i, d := range s {
		if !d.Known() {
			out[i] = symbolicSize
		}
	}
	return out
}

// fdResult summarises one checked case.
type fdResult struct {
	elem    og.DataType
	checked int
	// maxErr is the largest |fd − analytic| / max(1, ‖analytic‖∞), maxRel
	// the largest |fd − analytic| / |analytic| over the elements with
	// |analytic| ≥ ‖analytic‖∞/10.
	maxErr, maxRel float64
	// norms holds ‖analytic‖∞ of each differentiated input checked.
	norms map[string]float64
}

// checkCase runs a case in double, falling back to float32 when ONNX
// Runtime lacks a double kernel.
func checkCase(t *testing.T, env *ort.Env, c fdCase) fdResult {
	t.Helper()
	res, err := runFD(env, c, og.Double)
	if errors.Is(err, errSkipDouble) {
		res, err = runFD(env, c, og.Float)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func runFD(env *ort.Env, c fdCase, elem og.DataType) (fdResult, error) {
	m, y, err := c.forward(elem)
	if err != nil {
		return fdResult{}, err
	}
	types, err := og.InferShapes(m)
	if err != nil {
		return fdResult{}, err
	}
	yt := types[y]
	if yt == nil || yt.Shape == nil {
		return fdResult{}, fmt.Errorf("output %q has no inferred shape", y)
	}
	var wrt []string
	for _, in := range m.Graph.Inputs {
		if in.Type.Elem.IsFloat() && !slices.Contains(c.noDiff, in.Name) {
			wrt = append(wrt, in.Name)
		}
	}
	eb := og.Extend(m.Graph, m.Opset(""))
	weights := eb.Input("fd_weights", yt.Elem, yt.Shape)
	loss := eb.ReduceSum(eb.Mul(y, weights), nil, false)
	eb.Output(loss, yt.Elem, og.Shape{})
	if !slices.ContainsFunc(m.Graph.Outputs, func(o *og.ValueInfo) bool { return o.Name == y }) {
		eb.Output(y, yt.Elem, yt.Shape) // for the finite differences
	}
	grads, err := og.Gradients(m, loss, wrt, c.opts)
	if err != nil {
		return fdResult{}, err
	}
	if err := m.Validate(); err != nil {
		return fdResult{}, fmt.Errorf("validate: %w", err)
	}
	sess, err := newSession(env, m, append([]string{loss}, grads...))
	if notImplemented(err) && elem == og.Double {
		return fdResult{}, errSkipDouble
	}
	if err != nil {
		return fdResult{}, err
	}
	defer sess.close()
	fwd, err := newSession(env, m, []string{y})
	if err != nil {
		return fdResult{}, err
	}
	defer fwd.close()

	feeds := c.feeds(m, elem)
	out, err := sess.run(feeds)
	if notImplemented(err) && elem == og.Double {
		return fdResult{}, errSkipDouble
	}
	if err != nil {
		return fdResult{}, err
	}
	h, rtol, atol := 1e-6, fdRelDouble, fdAbsDouble
	if elem == og.Float {
		h, rtol, atol = 1e-2, fdRelFloat, fdAbsFloat
	}
	upstream := values(feeds["fd_weights"])
	res := fdResult{elem: elem, norms: map[string]float64{}}
	for i, w := range wrt {
		analytic := values(out[grads[i]])
		if w == c.skew {
			analytic = slices.Clone(analytic)
			for j := range analytic {
				analytic[j] *= c.skewFactor
			}
		}
		res.norms[w] = maxAbs(analytic)
		if len(analytic) != len(values(feeds[w])) {
			return res, fmt.Errorf("gradient of %q has %d elements, want %d", w, len(analytic), len(values(feeds[w])))
		}
		scale := math.Max(1, maxAbs(analytic))
		limit := c.limit
		if limit == 0 {
			limit = 400
		}
		for _, j := range fdIndices(analytic, limit) {
			fd, err := centralDiff(fwd, feeds, w, j, h, y, upstream)
			if err != nil {
				return res, err
			}
			a := analytic[j]
			e := math.Abs(fd - a)
			res.maxErr = math.Max(res.maxErr, e/scale)
			if math.Abs(a) >= maxAbs(analytic)/10 {
				res.maxRel = math.Max(res.maxRel, e/math.Abs(a))
			}
			if tol := rtol*math.Abs(a) + atol*scale; e > tol {
				return res, fmt.Errorf("%s (%v): ∂L/∂%s[%d] = %.8g, finite difference %.8g (tolerance %.2g)",
					c.name, elem, w, j, a, fd, tol)
			}
			res.checked++
		}
	}
	return res, nil
}

// forward returns the case's forward model and output.
func (c fdCase) forward(elem og.DataType) (*og.Model, string, error) {
	if c.load != nil {
		return c.load(elem)
	}
	b := og.NewBuilder(c.name)
	y := c.build(b, elem)
	return b.Model(), y, nil
}

// feeds generates the inputs of a case.
func (c fdCase) feeds(m *og.Model, elem og.DataType) map[string]*ort.Tensor {
	r := rand.New(rand.NewPCG(1, uint64(len(c.name))))
	feeds := map[string]*ort.Tensor{}
	for _, in := range m.Graph.RealInputs() {
		shape := concrete(in.Type.Shape)
		n := 1
		for _, d := range shape {
			n *= int(d)
		}
		switch {
		case c.feed[in.Name] != nil:
			feeds[in.Name] = tensorOf(elem, shape, c.feed[in.Name])
		case in.Type.Elem == og.Int64:
			feeds[in.Name] = &ort.Tensor{Shape: shape, Data: slices.Clone(c.ints[in.Name])}
		case c.gen != nil && in.Name != "fd_weights":
			feeds[in.Name] = tensorOf(elem, shape, c.gen(r, in.Name, n))
		default:
			feeds[in.Name] = tensorOf(elem, shape, randUniform(r, n, -1, 1))
		}
	}
	return feeds
}

// fdIndices returns the elements to check: all of them up to limit, else a
// sample that includes the largest gradients.
func fdIndices(g []float64, limit int) []int {
	if len(g) <= limit {
		return iotaInts(len(g))
	}
	idx := iotaInts(len(g))
	slices.SortFunc(idx, func(a, b int) int { return -cmpAbs(g[a], g[b]) })
	out := idx[:limit/2]
	r := rand.New(rand.NewPCG(7, 7))
	for range limit / 2 {
		out = append(out, r.IntN(len(g)))
	}
	return out
}

func cmpAbs(a, b float64) int {
	switch {
	case math.Abs(a) < math.Abs(b):
		return -1
	case math.Abs(a) > math.Abs(b):
		return 1
	}
	return 0
}

func iotaInts(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// centralDiff returns (L(x⁺) − L(x⁻))/(x⁺_j − x⁻_j) for input w, where x± is
// x with element j moved by ±h (as stored in the input's type) and
// L = Σ y·weights is summed in float64.
func centralDiff(s *session, feeds map[string]*ort.Tensor, w string, j int, h float64, y string, weights []float64) (float64, error) {
	x := feeds[w]
	orig := values(x)[j]
	defer setElem(x, j, orig)
	var l, at [2]float64
	for k, sign := range []float64{1, -1} {
		setElem(x, j, orig+sign*h)
		at[k] = values(x)[j]
		out, err := s.run(feeds)
		if err != nil {
			return 0, err
		}
		for i, v := range values(out[y]) {
			l[k] += v * weights[i]
		}
	}
	return (l[0] - l[1]) / (at[0] - at[1]), nil
}

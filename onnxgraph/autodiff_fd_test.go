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
// the central difference (L(x+h) − L(x−h))/2h computed with the same graph.
//
// A case runs in double precision when ONNX Runtime's CPU provider has
// double kernels for every operator of its gradient graph (h = 1e-6,
// accepted when |fd − analytic| ≤ 1e-6·max(1, ‖analytic‖∞)); otherwise
// (Conv, ConvTranspose, AveragePool, ...) in float32 with h = 1e-2,
// accepted when |fd − analytic| ≤ 5e-3·max(1, ‖analytic‖∞): central
// differences are exact for the (piecewise) linear and quadratic parts and
// float32 rounding of L (≈ 1e-7·|L|/h) stays below that. Inputs that meet a
// kink (Relu, Abs, Clip bounds, max selections) are generated at least
// 0.05 away from it, farther than h.

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
	maxErr  float64
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
	lossOnly, err := newSession(env, m, []string{loss})
	if err != nil {
		return fdResult{}, err
	}
	defer lossOnly.close()

	feeds := c.feeds(m, elem)
	out, err := sess.run(feeds)
	if notImplemented(err) && elem == og.Double {
		return fdResult{}, errSkipDouble
	}
	if err != nil {
		return fdResult{}, err
	}
	h, rtol := 1e-6, 1e-6
	if elem == og.Float {
		h, rtol = 1e-2, 5e-3
	}
	res := fdResult{elem: elem}
	for i, w := range wrt {
		analytic := values(out[grads[i]])
		if len(analytic) != len(values(feeds[w])) {
			return res, fmt.Errorf("gradient of %q has %d elements, want %d", w, len(analytic), len(values(feeds[w])))
		}
		tol := rtol * math.Max(1, maxAbs(analytic))
		limit := c.limit
		if limit == 0 {
			limit = 400
		}
		for _, j := range fdIndices(analytic, limit) {
			fd, err := centralDiff(lossOnly, feeds, w, j, h, loss)
			if err != nil {
				return res, err
			}
			e := math.Abs(fd - analytic[j])
			res.maxErr = math.Max(res.maxErr, e/math.Max(1, maxAbs(analytic)))
			if e > tol {
				return res, fmt.Errorf("%s (%v): ∂L/∂%s[%d] = %.8g, finite difference %.8g (tolerance %.2g)",
					c.name, elem, w, j, analytic[j], fd, tol)
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

// centralDiff returns (L(x+h·e_j) − L(x−h·e_j))/2h for input w.
func centralDiff(s *session, feeds map[string]*ort.Tensor, w string, j int, h float64, loss string) (float64, error) {
	x := feeds[w]
	orig := values(x)[j]
	defer setElem(x, j, orig)
	var l [2]float64
	for k, sign := range []float64{1, -1} {
		setElem(x, j, orig+sign*h)
		out, err := s.run(feeds)
		if err != nil {
			return 0, err
		}
		l[k] = values(out[loss])[0]
	}
	return (l[0] - l[1]) / (2 * h), nil
}

package onnxgraph_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// Helpers shared by the gradient tests: an ONNX Runtime env, sessions over
// onnxgraph models, and float64 views of tensors whatever their type.

// session runs one model with named inputs and outputs.
type session struct {
	s       *ort.Session
	inputs  []string
	outputs []string
}

// newSession compiles m; inputs default to the model's non-initializer
// inputs.
func newSession(env *ort.Env, m *og.Model, outputs []string) (*session, error) {
	data, err := og.Encode(m)
	if err != nil {
		return nil, err
	}
	var inputs []string
	for _, in := range m.Graph.RealInputs() {
		inputs = append(inputs, in.Name)
	}
	s, err := env.NewSession(data, inputs, outputs)
	if err != nil {
		return nil, err
	}
	return &session{s: s, inputs: inputs, outputs: outputs}, nil
}

func (s *session) close() { _ = s.s.Close() }

// run feeds the named tensors and returns the outputs by name.
func (s *session) run(feeds map[string]*ort.Tensor) (map[string]*ort.Tensor, error) {
	in := make([]*ort.Tensor, len(s.inputs))
	for i, name := range s.inputs {
		if in[i] = feeds[name]; in[i] == nil {
			return nil, fmt.Errorf("no value fed for input %q", name)
		}
	}
	out, err := s.s.RunTensors(in...)
	if err != nil {
		return nil, err
	}
	res := map[string]*ort.Tensor{}
	for i, name := range s.outputs {
		res[name] = out[i]
	}
	return res, nil
}

// notImplemented reports whether a session error says ONNX Runtime has no
// kernel for a type (double support is patchy in the CPU provider).
func notImplemented(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "NOT_IMPLEMENTED") ||
		strings.Contains(err.Error(), "Could not find an implementation"))
}

// values returns a tensor's elements as float64.
func values(t *ort.Tensor) []float64 {
	switch d := t.Data.(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	panic(fmt.Sprintf("values: unsupported %T", t.Data))
}

// tensorOf builds a float or double tensor from float64 values.
func tensorOf(elem og.DataType, shape []int64, v []float64) *ort.Tensor {
	if elem == og.Double {
		return &ort.Tensor{Shape: shape, Data: append([]float64(nil), v...)}
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return &ort.Tensor{Shape: shape, Data: f}
}

// setElem writes v at index i of a float or double tensor.
func setElem(t *ort.Tensor, i int, v float64) {
	switch d := t.Data.(type) {
	case []float64:
		d[i] = v
	case []float32:
		d[i] = float32(v)
	}
}

// randUniform returns n values uniform in [lo, hi).
func randUniform(r *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float64()
	}
	return v
}

// randAwayFromZero returns values with 0.1 ≤ |v| < 1, so that kinks at zero
// (Relu, Abs, Clip bounds placed at 0) are farther than any FD step.
func randAwayFromZero(r *rand.Rand, n int) []float64 {
	v := randUniform(r, n, 0.1, 1)
	for i := range v {
		if r.IntN(2) == 0 {
			v[i] = -v[i]
		}
	}
	return v
}

// randDistinct returns a random permutation of n evenly spaced values in
// [−1, 1]: maxima are unique and separated by 2/n.
func randDistinct(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i, p := range r.Perm(n) {
		v[i] = -1 + 2*float64(p)/float64(max(n-1, 1))
	}
	return v
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}

var errSkipDouble = errors.New("double not supported by ONNX Runtime for this graph")

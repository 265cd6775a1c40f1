package onnxgraph_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
)

const pytorchConverted = "/usr/share/libonnx-testdata/data/pytorch-converted"

// TestGradientsPytorchConverted checks ∂L/∂x and ∂L/∂θ of every model of
// ONNX's pytorch-converted test data that Gradients supports, against
// finite differences (see the tolerances of TestGradientRules; inputs are
// random, parameters the model's own). It logs how many models it covered
// and why it skipped the others.
func TestGradientsPytorchConverted(t *testing.T) {
	testenv.Data(t, pytorchConverted)
	env := testenv.ORT(t)
	paths, err := filepath.Glob(filepath.Join(pytorchConverted, "*", "model.onnx"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no models under %s: %v", pytorchConverted, err)
	}
	covered := 0
	var skipped []string
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		c, reason := pytorchCase(path)
		if reason != "" {
			skipped = append(skipped, name+": "+reason)
			continue
		}
		var res fdResult
		res, err = runFD(env, c, og.Double)
		if errors.Is(err, errSkipDouble) {
			res, err = runFD(env, c, og.Float)
		}
		var unsupported *og.UnsupportedOpError
		switch {
		case errors.As(err, &unsupported):
			skipped = append(skipped, name+": no gradient rule for "+unsupported.Node.OpType)
			continue
		case err != nil && strings.Contains(err.Error(), "only constant padding"):
			skipped = append(skipped, name+": Pad mode is not constant (reflect/edge padding has no rule)")
			continue
		case err != nil:
			t.Errorf("%s: %v", name, err)
			continue
		}
		covered++
		t.Logf("%s: %d gradient elements checked in %v (max error %.2g)", name, res.checked, res.elem, res.maxErr)
	}
	for _, s := range skipped {
		t.Logf("skipped %s", s)
	}
	t.Logf("covered %d of the %d pytorch-converted models, skipped %d", covered, len(paths), len(skipped))
	if covered < 70 {
		t.Errorf("only %d models covered", covered)
	}
}

// pytorchCase returns the FD case of a test model, or why it has none.
func pytorchCase(path string) (fdCase, string) {
	m, err := og.Load(path)
	if err != nil {
		return fdCase{}, "load: " + err.Error()
	}
	hasMaxPool := slices.ContainsFunc(m.Graph.Nodes, func(n *og.Node) bool { return strings.Contains(n.OpType, "Max") })
	c := fdCase{name: filepath.Base(filepath.Dir(path)), limit: 100, feed: map[string][]float64{}, ints: map[string][]int64{}}
	floatInputs := 0
	for _, in := range m.Graph.RealInputs() {
		if in.Type == nil || in.Type.Shape == nil || !in.Type.Shape.Known() {
			return fdCase{}, "input without a static shape"
		}
		if in.Type.Elem == og.Int64 {
			idx := make([]int64, in.Type.Shape.Size())
			for i := range idx {
				idx[i] = int64(i % 2)
			}
			c.ints[in.Name] = idx
			continue
		}
		floatInputs++
	}
	for _, t := range m.Graph.Initializers {
		if t.DataType == og.Float {
			v, err := t.Float64s()
			if err != nil {
				return fdCase{}, err.Error()
			}
			c.feed[t.Name] = v
		}
	}
	if floatInputs == 0 && len(c.feed) == 0 {
		return fdCase{}, "nothing to differentiate"
	}
	c.gen = func(r *rand.Rand, _ string, n int) []float64 {
		if hasMaxPool {
			return randDistinct(r, n)
		}
		return randAwayFromZero(r, n)
	}
	c.load = func(e og.DataType) (*og.Model, string, error) {
		m := m.Clone()
		if err := og.UpgradeOpset(m); err != nil {
			return nil, "", err
		}
		for name := range c.feed {
			t := m.Graph.Initializer(name)
			m.Graph.RemoveInitializer(name)
			if m.Graph.Input(name) == nil {
				m.Graph.Inputs = append(m.Graph.Inputs, og.NewValueInfo(name, t.DataType, t.Shape()))
			}
		}
		if e == og.Double {
			toDouble(m)
		}
		if len(m.Graph.Outputs) != 1 {
			return nil, "", errors.New("model has several outputs")
		}
		return m, m.Graph.Outputs[0].Name, nil
	}
	return c, ""
}

// toDouble converts every float tensor, type and Cast of the model to
// double.
func toDouble(m *og.Model) {
	g := m.Graph
	for i, t := range g.Initializers {
		g.Initializers[i] = tensorToDouble(t)
	}
	for _, vs := range [][]*og.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range vs {
			if v.Type != nil && v.Type.Elem == og.Float {
				v.Type.Elem = og.Double
			}
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Tensor != nil {
				a.Tensor = tensorToDouble(a.Tensor)
			}
			if n.OpType == "Cast" && a.Name == "to" && a.Int == int64(og.Float) {
				a.Int = int64(og.Double)
			}
		}
	}
}

func tensorToDouble(t *og.Tensor) *og.Tensor {
	if t.DataType != og.Float {
		return t
	}
	v, _ := t.Float64s()
	d := og.NewDoubleTensor(t.Name, t.Dims, v)
	return d
}

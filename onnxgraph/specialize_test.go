package onnxgraph_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// specNet builds small frozen classifiers on [N, 3, 8, 8] for the
// SpecializeFrozen tests.
type specNet struct {
	b   *og.Builder
	rng *rand.Rand
	x   string
}

func newSpecNet(seed uint64) *specNet {
	b := og.NewBuilder("spec")
	return &specNet{b: b, rng: rand.New(rand.NewPCG(seed, 7)), x: b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(3), og.D(8), og.D(8)})}
}

func (n *specNet) init(name string, lo, hi float32, dims ...int64) string {
	size := int64(1)
	for _, d := range dims {
		size *= d
	}
	v := make([]float32, size)
	for i := range v {
		v[i] = lo + (hi-lo)*n.rng.Float32()
	}
	return n.b.Initializer(og.NewFloatTensor(name, dims, v))
}

func (n *specNet) conv(name, x string, in, out, k int64, o og.ConvOpts, bias bool) string {
	b := ""
	if bias {
		b = n.init(name+".b", -0.1, 0.1, out)
	}
	g := max(o.Group, 1)
	return n.b.Conv(x, n.init(name+".w", -0.4, 0.4, out, in/g, k, k), b, o)
}

func (n *specNet) bn(name, x string, c int64) string {
	return n.b.BatchNorm(x, n.init(name+".scale", 0.5, 1.5, c), n.init(name+".bias", -0.2, 0.2, c),
		n.init(name+".mean", -0.2, 0.2, c), n.init(name+".var", 0.3, 2, c), 1e-5, 0.9)
}

// head ends the network: global pooling and a linear layer to 5 logits.
func (n *specNet) head(x string, c int64) *og.Model {
	h := n.b.Flatten(n.b.GlobalAveragePool(x), 1)
	logits := n.b.Gemm(h, n.init("fc.w", -0.5, 0.5, 5, c), n.init("fc.b", -0.1, 0.1, 5), og.GemmOpts{TransB: true})
	n.b.Output(logits, og.Float, og.Shape{og.Sym("N"), og.D(5)})
	return n.b.Model()
}

func TestSpecializeFrozen(t *testing.T) {
	pad := og.ConvOpts{Pads: []int64{1, 1, 1, 1}}
	cases := []struct {
		name  string
		build func() *og.Model
		want  og.SpecializeStats // on the input-gradient graph
		// forwardFolds is the number of BatchNormalizations folded in the
		// classifier itself.
		forwardFolds int
	}{
		{
			name: "conv-bn-relu",
			build: func() *og.Model {
				n := newSpecNet(1)
				h := n.b.Relu(n.bn("bn1", n.b.Identity(n.conv("c1", n.x, 3, 8, 3, pad, true)), 8))
				h = n.bn("bn2", n.conv("c2", h, 8, 8, 3, og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}, false), 8)
				return n.head(n.b.Relu(h), 8)
			},
			want:         og.SpecializeStats{FoldedBatchNorms: 2, Bypassed: 1, SubpixelConvTransposes: 1},
			forwardFolds: 2,
		},
		{
			name: "depthwise-bn",
			build: func() *og.Model {
				n := newSpecNet(2)
				h := n.b.Relu(n.bn("bn1", n.conv("c1", n.x, 3, 6, 1, og.ConvOpts{}, false), 6))
				h = n.bn("bn2", n.conv("dw", h, 6, 6, 3, og.ConvOpts{Pads: []int64{1, 1, 1, 1}, Group: 6}, true), 6)
				return n.head(n.b.Relu(h), 6)
			},
			want:         og.SpecializeStats{FoldedBatchNorms: 2},
			forwardFolds: 2,
		},
		{
			// The Conv's output is also read by the residual Add: folding
			// would change what the Add sees.
			name: "conv-output-shared",
			build: func() *og.Model {
				n := newSpecNet(3)
				c := n.conv("c1", n.x, 3, 4, 3, pad, true)
				h := n.b.Add(n.b.Relu(n.bn("bn1", c, 4)), c)
				return n.head(h, 4)
			},
		},
		{
			// ReLU6 (both bounds, with values on both sides of each) and a
			// Clip with a lower bound only.
			name: "clip",
			build: func() *og.Model {
				n := newSpecNet(6)
				h := n.b.Mul(n.conv("c1", n.x, 3, 4, 3, pad, true), n.b.ScalarFloat(12))
				h = n.b.Op("Clip", []string{h, n.b.ScalarFloat(0), n.b.ScalarFloat(6)})
				h = n.conv("c2", h, 4, 4, 3, pad, false)
				return n.head(n.b.Op("Clip", []string{h, n.b.ScalarFloat(-0.5)}), 4)
			},
			want: og.SpecializeStats{ClipMasks: 2},
		},
		{
			name: "no-op-chain",
			build: func() *og.Model {
				n := newSpecNet(4)
				h := n.b.Identity(n.conv("c1", n.x, 3, 4, 3, pad, true))
				h = n.b.Op("Dropout", []string{h, n.b.ScalarFloat(0.5)})
				h = n.b.Op("Cast", []string{h}, og.IntAttr("to", int64(og.Float)))
				h = n.b.Reshape(h, n.b.ConstInt64(0, -1, 8, 8))
				h = n.b.Reshape(n.b.Relu(n.bn("bn1", h, 4)), n.b.ConstInt64(0, 2, 2, 64)) // not a no-op
				return n.head(n.b.Reshape(h, n.b.ConstInt64(0, 4, 8, 8)), 4)
			},
			// The BatchNormalization then reads the Conv, whose output the
			// Reshape's gradient also reads (its Shape): no folding there,
			// but folding in the classifier, before the gradient exists.
			want:         og.SpecializeStats{Bypassed: 4},
			forwardFolds: 1,
		},
	}
	env := testenv.ORT(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.build()
			ig := plainInputGradient(t, m)
			spec := ig.Model.Clone()
			st := og.SpecializeFrozen(spec)
			got := st
			got.DeadNodes, got.DeadInitializers = 0, 0
			if got != c.want {
				t.Errorf("stats %+v, want %+v (dead nodes/initializers not compared)", st, c.want)
			}
			if err := spec.Validate(); err != nil {
				t.Fatalf("specialised graph invalid: %v", err)
			}
			if !slices.EqualFunc(spec.Graph.Inputs, ig.Model.Graph.Inputs, sameValueName) ||
				!slices.EqualFunc(spec.Graph.Outputs, ig.Model.Graph.Outputs, sameValueName) {
				t.Fatal("graph inputs or outputs changed")
			}
			// Each sub-pixel rewrite replaces a ConvTranspose by 4 phase Convs,
			// a Concat and a DepthToSpace; every other rewrite removes nodes.
			if n := len(spec.Graph.Nodes) - 5*st.SubpixelConvTransposes; n > len(ig.Model.Graph.Nodes) ||
				st.FoldedBatchNorms+st.Bypassed > 0 && n == len(ig.Model.Graph.Nodes) {
				t.Errorf("%d nodes after, %d before", len(spec.Graph.Nodes), len(ig.Model.Graph.Nodes))
			}
			// Twice is the same as once.
			if again := og.SpecializeFrozen(spec.Clone()); again != (og.SpecializeStats{}) {
				t.Errorf("second pass rewrote %+v", again)
			}
			// Specialising the classifier before building its gradient
			// (no BatchNormalization gradient, backward convolutions on the
			// folded weights) and the result again.
			frozen := m.Clone()
			if st := og.SpecializeFrozen(frozen); st.FoldedBatchNorms != c.forwardFolds {
				t.Errorf("classifier: %d BatchNormalizations folded, want %d", st.FoldedBatchNorms, c.forwardFolds)
			}
			first, err := traingraph.BuildInputGradientGraph(frozen, traingraph.InputGradientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			og.SpecializeFrozen(first.Model)
			if c.forwardFolds > 0 && len(first.Model.Graph.Nodes) >= len(spec.Graph.Nodes) {
				t.Errorf("specialised before the gradient: %d nodes, after: %d", len(first.Model.Graph.Nodes), len(spec.Graph.Nodes))
			}
			want := runInputGradient(t, env, ig, ig.Model)
			for _, v := range []struct {
				name string
				ig   *traingraph.InputGradientGraph
				m    *og.Model
			}{{"after", ig, spec}, {"before", first, first.Model}} {
				have := runInputGradient(t, env, v.ig, v.m)
				for i, name := range []string{"logits", "per-sample loss", "input gradient"} {
					if err := closeF32(have[i], want[i], 1e-5); err != nil {
						t.Errorf("specialised %s the gradient: %s: %v", v.name, name, err)
					}
				}
			}
		})
	}
}

func TestSpecializeFrozenKeepsTrainingBatchNorm(t *testing.T) {
	n := newSpecNet(5)
	h := n.bn("bn1", n.conv("c1", n.x, 3, 4, 3, og.ConvOpts{Pads: []int64{1, 1, 1, 1}}, true), 4)
	m := n.head(n.b.Relu(h), 4)
	for _, node := range m.Graph.Nodes {
		if node.OpType == "BatchNormalization" {
			node.SetAttr(og.IntAttr("training_mode", 1))
		}
	}
	before := len(m.Graph.Nodes)
	if st := og.SpecializeFrozen(m); st.FoldedBatchNorms != 0 || len(m.Graph.Nodes) != before {
		t.Errorf("training-mode BatchNormalization rewritten: %+v", st)
	}
}

func sameValueName(a, b *og.ValueInfo) bool { return a.Name == b.Name }

// plainInputGradient builds the input-gradient graph of a classifier from
// AddLoss and Gradients, as BuildInputGradientGraph does but without any
// specialisation, whether or not BuildInputGradientGraph calls
// SpecializeFrozen.
func plainInputGradient(t *testing.T, m *og.Model) *traingraph.InputGradientGraph {
	t.Helper()
	work := m.Clone()
	input, logits := work.Graph.Inputs[0].Name, work.Graph.Outputs[0].Name
	head, err := traingraph.AddLoss(work, logits, traingraph.LossOptions{Sum: true})
	if err != nil {
		t.Fatal(err)
	}
	grads, err := og.Gradients(work, head.Loss, []string{input}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &traingraph.InputGradientGraph{Model: work, Input: input, Labels: head.Labels, Logits: logits,
		Loss: head.Loss, PerSample: head.PerSample, InputGrad: grads[0]}
}

// runInputGradient runs m, an input-gradient graph with ig's interface, on
// a fixed batch of two and returns logits, per-sample losses and the input
// gradient.
func runInputGradient(t *testing.T, env *ort.Env, ig *traingraph.InputGradientGraph, m *og.Model) [3][]float32 {
	t.Helper()
	data, err := og.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := env.NewSession(data, []string{ig.Input, ig.Labels}, []string{ig.Logits, ig.PerSample, ig.InputGrad})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 2*3*8*8)
	for i := range x {
		x[i] = rng.Float32()
	}
	out, err := s.RunTensors(&ort.Tensor{Shape: []int64{2, 3, 8, 8}, Data: x}, &ort.Tensor{Shape: []int64{2}, Data: []int64{1, 3}})
	if err != nil {
		t.Fatal(err)
	}
	var r [3][]float32
	for i := range r {
		r[i] = out[i].Data.([]float32)
	}
	return r
}

// closeF32 checks got against want within rel·max|want| (float32 summation
// order: the folded weights round once where the original rounded twice).
func closeF32(got, want []float32, rel float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	tol := rel * max(scale, 1e-3)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= tol) {
			return fmt.Errorf("[%d] = %g, want %g (|Δ| %.3g > %.3g)", i, got[i], want[i], d, tol)
		}
	}
	return nil
}

package onnxgraph_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/robust-go/robust/internal/testenv"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// stepper runs a training graph with inputs and outputs allocated once:
// each step refills nothing but what changed, ONNX Runtime writes every
// result into the pre-allocated outputs, parameters are updated in place
// and BatchNormalization statistics are ping-ponged between the input and
// output tensors.
type stepper struct {
	tg   *traingraph.TrainingGraph
	sess *ort.Session
	in   []ort.Value
	out  []ort.Value
	// index of named values in in and out
	inIdx, outIdx map[string]int
}

func newStepper(t testing.TB, env *ort.Env, tg *traingraph.TrainingGraph, batch int64) *stepper {
	t.Helper()
	data, err := og.Encode(tg.Model)
	if err != nil {
		t.Fatal(err)
	}
	s := &stepper{tg: tg, inIdx: map[string]int{}, outIdx: map[string]int{}}
	g := tg.Model.Graph
	var inNames, outNames []string
	for _, in := range g.RealInputs() {
		s.inIdx[in.Name] = len(inNames)
		inNames = append(inNames, in.Name)
		shape := concreteBatch(in.Type.Shape, batch)
		var v ort.Value
		if in.Type.Elem == og.Int64 {
			v, err = ort.NewEmptyValue[int64](shape)
		} else {
			v, err = ort.NewEmptyValue[float32](shape)
		}
		if err != nil {
			t.Fatal(err)
		}
		s.in = append(s.in, v)
	}
	for _, o := range g.Outputs {
		s.outIdx[o.Name] = len(outNames)
		outNames = append(outNames, o.Name)
		v, err := ort.NewEmptyValue[float32](concreteBatch(o.Type.Shape, batch))
		if err != nil {
			t.Fatal(err)
		}
		s.out = append(s.out, v)
	}
	if s.sess, err = env.NewSession(data, inNames, outNames); err != nil {
		t.Fatal(err)
	}
	for _, p := range tg.Params {
		s.load(p.Name, p.Init)
	}
	for _, st := range tg.BNStats {
		s.load(st.Mean, st.InitMean)
		s.load(st.Var, st.InitVar)
	}
	return s
}

func concreteBatch(s og.Shape, batch int64) []int64 {
	out := s.Ints()
	for i, d := range s {
		if !d.Known() {
			out[i] = batch
		}
	}
	return out
}

func (s *stepper) close() {
	_ = s.sess.Close()
	for _, v := range append(s.in, s.out...) {
		_ = v.Close()
	}
}

// f returns the float32 data of a named input (or output).
func (s *stepper) input(name string) []float32 {
	return s.in[s.inIdx[name]].(*ort.TensorValue[float32]).Data()
}

func (s *stepper) output(name string) *ort.TensorValue[float32] {
	return s.out[s.outIdx[name]].(*ort.TensorValue[float32])
}

func (s *stepper) load(name string, t *og.Tensor) {
	v, _ := t.Float32s()
	copy(s.input(name), v)
}

// setBatch fills the image and label inputs.
func (s *stepper) setBatch(x []float32, labels []int64) {
	copy(s.input(s.tg.Input), x)
	copy(s.in[s.inIdx[s.tg.Labels]].(*ort.TensorValue[int64]).Data(), labels)
}

// step runs forward and backward, applies plain SGD in place and swaps the
// BN statistics tensors; it returns the loss.
func (s *stepper) step(lr float32) (float32, error) {
	if err := s.sess.Run(s.in, s.out); err != nil {
		return 0, err
	}
	for _, p := range s.tg.Params {
		w, g := s.input(p.Name), s.output(p.Grad).Data()
		for i := range w {
			w[i] -= lr * g[i]
		}
	}
	for _, st := range s.tg.BNStats {
		for _, pair := range [][2]string{{st.Mean, st.NewMean}, {st.Var, st.NewVar}} {
			i, o := s.inIdx[pair[0]], s.outIdx[pair[1]]
			s.in[i], s.out[o] = s.out[o], s.in[i]
		}
	}
	return s.output(s.tg.Loss).Item(), nil
}

// TestTrainingGraphZeroCopy runs three SGD steps of the small BatchNorm CNN
// on pre-allocated tensors and checks each step against an allocating run
// of the same state: results land in the very output buffers given, and
// the ping-ponged running statistics follow the momentum update.
func TestTrainingGraphZeroCopy(t *testing.T) {
	env := testenv.ORT(t)
	r := rand.New(rand.NewPCG(5, 6))
	tg, err := traingraph.BuildTrainingGraph(newBNNet(r).model(), traingraph.TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4
	s := newStepper(t, env, tg, batch)
	defer s.close()
	x := randUniform(r, batch*64, -1, 1)
	labels := []int64{1, 0, 4, 2}
	xf := make([]float32, len(x))
	for i, v := range x {
		xf[i] = float32(v)
	}
	s.setBatch(xf, labels)
	check, err := newSession(env, tg.Model, []string{tg.Loss, tg.BNStats[0].NewMean})
	if err != nil {
		t.Fatal(err)
	}
	defer check.close()
	gradBuf := &s.output(tg.Params[0].Grad).Data()[0]
	prevLoss := float32(math.Inf(1))
	for step := range 3 {
		feeds := map[string]*ort.Tensor{}
		for name, i := range s.inIdx {
			if tv, ok := s.in[i].(*ort.TensorValue[float32]); ok {
				feeds[name] = &ort.Tensor{Shape: tv.Shape(), Data: append([]float32(nil), tv.Data()...)}
			} else {
				feeds[name] = &ort.Tensor{Shape: []int64{batch}, Data: append([]int64(nil), labels...)}
			}
		}
		want, err := check.run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := s.step(0.1)
		if err != nil {
			t.Fatal(err)
		}
		if &s.output(tg.Params[0].Grad).Data()[0] != gradBuf {
			t.Fatal("gradient output buffer changed between steps")
		}
		if d := math.Abs(float64(loss) - values(want[tg.Loss])[0]); d > 1e-5 {
			t.Fatalf("step %d: zero-copy loss %g, allocating run %g", step, loss, values(want[tg.Loss])[0])
		}
		// After the swap the new running mean is an input.
		assertClose(t, "running mean", toF64(s.input(tg.BNStats[0].Mean)), values(want[tg.BNStats[0].NewMean]))
		if loss >= prevLoss {
			t.Errorf("step %d: loss %g did not decrease from %g", step, loss, prevLoss)
		}
		prevLoss = loss
	}
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// smallCNN is the zoo's small CNN: Conv 1→16 k4 s2 p1, ReLU, Conv 16→32 k4
// s2 p1, ReLU, Flatten, Gemm 1568→100, ReLU, Gemm 100→10 on [N,1,28,28].
func smallCNN(r *rand.Rand) *og.Model {
	b := og.NewBuilder("small_cnn")
	x := b.Input("x", og.Float, og.Shape{og.Sym("N"), og.D(1), og.D(28), og.D(28)})
	param := func(name string, fanIn int, dims ...int64) string {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		bound := 1 / math.Sqrt(float64(fanIn))
		return b.Initializer(f32(name, dims, randUniform(r, int(n), -bound, bound)))
	}
	conv := og.ConvOpts{Strides: []int64{2, 2}, Pads: []int64{1, 1, 1, 1}}
	h := b.Relu(b.Conv(x, param("conv1.w", 16, 16, 1, 4, 4), param("conv1.b", 16, 16), conv))
	h = b.Relu(b.Conv(h, param("conv2.w", 256, 32, 16, 4, 4), param("conv2.b", 256, 32), conv))
	h = b.Relu(b.Gemm(b.Flatten(h, 1), param("fc1.w", 1568, 100, 1568), param("fc1.b", 1568, 100), og.GemmOpts{TransB: true}))
	logits := b.Gemm(h, param("fc2.w", 100, 10, 100), param("fc2.b", 100, 10), og.GemmOpts{TransB: true})
	b.Output(logits, og.Float, og.Shape{og.Sym("N"), og.D(10)})
	return b.Model()
}

// BenchmarkSmallCNNTrainStep measures one forward+backward pass (loss,
// logits, all parameter gradients and ∂loss/∂x) of the small CNN on a batch
// of 128, plus the in-place SGD update, with pre-allocated tensors.
func BenchmarkSmallCNNTrainStep(b *testing.B) {
	env := testenv.ORT(b)
	r := rand.New(rand.NewPCG(1, 2))
	tg, err := traingraph.BuildTrainingGraph(smallCNN(r), traingraph.TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	s := newStepper(b, env, tg, batch)
	defer s.close()
	x := make([]float32, batch*28*28)
	for i := range x {
		x[i] = r.Float32()
	}
	labels := make([]int64, batch)
	for i := range labels {
		labels[i] = int64(r.IntN(10))
	}
	s.setBatch(x, labels)
	if _, err := s.step(0.01); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.step(0.01); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}

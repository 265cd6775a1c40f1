package train

import (
	"errors"
	"fmt"
	"slices"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// pass selects what one run of the training graph computes. Each pass is a
// session over a copy of the training graph pruned to the pass's outputs,
// so that ONNX Runtime does only the work the pass needs.
type pass int

const (
	// weightPass computes the loss, the logits, ∂loss/∂θ and the updated
	// BatchNormalization running statistics: natural training, and the
	// weight step of PGD and fast training.
	weightPass pass = iota
	// fullPass adds ∂loss/∂input to weightPass: the one backward pass of a
	// free-training replay.
	fullPass
	// inputPass computes the loss, the logits and ∂loss/∂input with the
	// batch statistics of training mode, leaving the running statistics
	// alone: the attack steps of PGD and fast training.
	inputPass
	numPasses
)

func (p pass) weights() bool { return p != inputPass }
func (p pass) input() bool   { return p != weightPass }

// engine runs a training graph in ONNX Runtime on tensors allocated once.
//
// Parameters are graph inputs whose TensorValue data is the Param's Data,
// gradients are pre-allocated outputs whose data is the Param's Grad, and
// the BatchNormalization running statistics alternate between two sets of
// tensors (ping-pong): a weight pass reads one set and writes the other. A
// step therefore copies no tensor between Go and ONNX Runtime.
type engine struct {
	env *ort.Env
	tg  *traingraph.TrainingGraph

	sample  [3]int64 // per-sample input shape C, H, W
	classes int
	batch   int // largest batch size

	params    []*Param
	paramVals []*ort.TensorValue[float32]
	gradVals  []*ort.TensorValue[float32]
	bn        []bnStat
	bnCur     int // index of the current running statistics in bnStat.mean/vars

	// Buffers of the largest batch; smaller batches use their leading rows.
	x, xgrad, logits, losses []float32
	y                        []int64

	io       map[int]*batchIO // tensors viewing the buffers, per batch size
	sessions [numPasses]*ort.Session
	in, out  []ort.Value // argument scratch for Session.Run
}

// bnStat holds the two alternating copies of one BatchNormalization's
// running mean and variance.
type bnStat struct {
	traingraph.BNStat
	mean, vars [2]*ort.TensorValue[float32]
}

// batchIO are the batch-shaped tensors for one batch size, views of the
// engine's buffers.
type batchIO struct {
	x, xgrad, logits, losses *ort.TensorValue[float32]
	y                        *ort.TensorValue[int64]
}

// GraphOptions are the options train builds a classifier's training graph
// with, training params (all parameters when empty). A graph built with
// them (and, where needed, the input and logits names) can be handed to
// [NewFromGraph].
func GraphOptions(params []string) traingraph.TrainOptions {
	return traingraph.TrainOptions{UnbiasedRunningVar: true, Params: params}
}

// newEngine builds the training graph of the classifier m for batches of
// up to batch samples, training params (all parameters when empty).
func newEngine(env *ort.Env, m *og.Model, batch int, params []string) (*engine, error) {
	return newEngineWith(env, m, nil, batch, params)
}

// newEngineWith is newEngine with the training graph tg, built from m when
// nil.
func newEngineWith(env *ort.Env, m *og.Model, tg *traingraph.TrainingGraph, batch int, params []string) (*engine, error) {
	if tg == nil {
		var err error
		if tg, err = traingraph.BuildTrainingGraph(m, GraphOptions(params)); err != nil {
			return nil, err
		}
	}
	e := &engine{env: env, tg: tg, batch: batch, io: map[int]*batchIO{}}
	if err := e.resolveShapes(); err != nil {
		e.close()
		return nil, err
	}
	if err := e.allocate(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// resolveShapes reads the per-sample input shape and the number of classes.
func (e *engine) resolveShapes() error {
	types, err := og.InferShapes(e.tg.Model)
	if err != nil {
		return fmt.Errorf("training graph shapes: %w", err)
	}
	in, out := types[e.tg.Input], types[e.tg.Logits]
	if in == nil || in.Elem != og.Float || len(in.Shape) != 4 || !in.Shape[1:].Known() {
		return fmt.Errorf("input %q must be float32 [N,C,H,W] with static C, H, W; it is %v", e.tg.Input, in)
	}
	if out == nil || out.Elem != og.Float || len(out.Shape) != 2 || !out.Shape[1].Known() {
		return fmt.Errorf("logits %q must be float32 [N,classes]; they are %v", e.tg.Logits, out)
	}
	copy(e.sample[:], in.Shape[1:].Ints())
	e.classes = int(out.Shape[1].Value)
	return nil
}

// allocate creates the parameter, gradient, statistics and batch tensors.
func (e *engine) allocate() error {
	for _, p := range e.tg.Params {
		if p.Init.DataType != og.Float {
			return fmt.Errorf("parameter %s is %s; training needs float32", p.Name, p.Init.DataType)
		}
		data, err := p.Init.Float32s()
		if err != nil {
			return fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		v, err := ort.NewValue(p.Init.Dims, data)
		if err != nil {
			return err
		}
		e.paramVals = append(e.paramVals, v)
		g, err := ort.NewEmptyValue[float32](p.Init.Dims)
		if err != nil {
			return err
		}
		e.gradVals = append(e.gradVals, g)
		e.params = append(e.params, &Param{
			Name: p.Name, Dims: slices.Clone(p.Init.Dims),
			Data: v.Data(), Grad: g.Data(), Velocity: make([]float32, len(data)),
		})
	}
	for _, s := range e.tg.BNStats {
		e.bn = append(e.bn, bnStat{BNStat: s}) // appended first, so that close releases it
		st := &e.bn[len(e.bn)-1]
		for i, t := range []*og.Tensor{s.InitMean, s.InitVar} {
			if t.DataType != og.Float {
				return fmt.Errorf("running statistic %s is %s; training needs float32", t.Name, t.DataType)
			}
			data, err := t.Float32s()
			if err != nil {
				return fmt.Errorf("running statistic %s: %w", t.Name, err)
			}
			dst := &st.mean
			if i == 1 {
				dst = &st.vars
			}
			for k := range dst {
				if dst[k], err = ort.NewValue(t.Dims, slices.Clone(data)); err != nil {
					return err
				}
			}
		}
	}
	sz := e.sampleSize()
	e.x = make([]float32, e.batch*sz)
	e.xgrad = make([]float32, e.batch*sz)
	e.logits = make([]float32, e.batch*e.classes)
	e.losses = make([]float32, e.batch)
	e.y = make([]int64, e.batch)
	return nil
}

// sampleSize returns C·H·W.
func (e *engine) sampleSize() int { return int(e.sample[0] * e.sample[1] * e.sample[2]) }

// batchIO returns the batch tensors for n samples, creating them on first
// use.
func (e *engine) batchIO(n int) (*batchIO, error) {
	if b := e.io[n]; b != nil {
		return b, nil
	}
	if n < 1 || n > e.batch {
		return nil, fmt.Errorf("batch of %d samples; the engine takes 1 to %d", n, e.batch)
	}
	sz, nn := e.sampleSize(), int64(n)
	xs := []int64{nn, e.sample[0], e.sample[1], e.sample[2]}
	b := &batchIO{}
	var err error
	if b.x, err = ort.NewValue(xs, e.x[:n*sz]); err == nil {
		b.xgrad, err = ort.NewValue(xs, e.xgrad[:n*sz])
	}
	if err == nil {
		b.logits, err = ort.NewValue([]int64{nn, int64(e.classes)}, e.logits[:n*e.classes])
	}
	if err == nil {
		b.losses, err = ort.NewValue([]int64{nn}, e.losses[:n])
	}
	if err == nil {
		b.y, err = ort.NewValue([]int64{nn}, e.y[:n])
	}
	if err != nil {
		return nil, errors.Join(err, b.close())
	}
	e.io[n] = b
	return b, nil
}

// close releases the tensors (TensorValue.Close accepts nil).
func (b *batchIO) close() error {
	return errors.Join(b.x.Close(), b.xgrad.Close(), b.logits.Close(), b.losses.Close(), b.y.Close())
}

// names returns the session input and output names of pass p, in the
// order run passes the values.
func (e *engine) names(p pass) (ins, outs []string) {
	tg := e.tg
	ins = []string{tg.Input, tg.Labels}
	for _, q := range tg.Params {
		ins = append(ins, q.Name)
	}
	for _, s := range tg.BNStats {
		ins = append(ins, s.Mean, s.Var)
	}
	outs = []string{tg.PerSample, tg.Logits}
	if p.weights() {
		for _, q := range tg.Params {
			outs = append(outs, q.Grad)
		}
	}
	if p.input() {
		outs = append(outs, tg.InputGrad)
	}
	if p.weights() {
		for _, s := range tg.BNStats {
			outs = append(outs, s.NewMean, s.NewVar)
		}
	}
	return ins, outs
}

// session returns the session of pass p, compiling it on first use.
func (e *engine) session(p pass) (*ort.Session, error) {
	if s := e.sessions[p]; s != nil {
		return s, nil
	}
	ins, outs := e.names(p)
	m, err := pruneTo(e.tg.Model, outs)
	if err != nil {
		return nil, err
	}
	src, err := ort.NewSource(m)
	if err != nil {
		return nil, fmt.Errorf("training graph: %w", err)
	}
	defer src.Close()
	s, err := e.env.Open(src, ins, outs, ort.SessionOptions{})
	if err != nil {
		return nil, fmt.Errorf("training graph session: %w", err)
	}
	e.sessions[p] = s
	return s, nil
}

// run runs pass p on the first n samples of the input buffer e.x and
// labels e.y. A weight pass fills every Param's Grad and makes the updated
// running statistics current.
func (e *engine) run(p pass, n int) error {
	b, err := e.batchIO(n)
	if err != nil {
		return err
	}
	s, err := e.session(p)
	if err != nil {
		return err
	}
	in := append(e.in[:0], b.x, b.y)
	for _, v := range e.paramVals {
		in = append(in, v)
	}
	for _, st := range e.bn {
		in = append(in, st.mean[e.bnCur], st.vars[e.bnCur])
	}
	out := append(e.out[:0], b.losses, b.logits)
	if p.weights() {
		for _, v := range e.gradVals {
			out = append(out, v)
		}
	}
	if p.input() {
		out = append(out, b.xgrad)
	}
	if p.weights() {
		for _, st := range e.bn {
			out = append(out, st.mean[1-e.bnCur], st.vars[1-e.bnCur])
		}
	}
	e.in, e.out = in, out
	if err := s.Run(in, out); err != nil {
		return err
	}
	if p.weights() {
		e.bnCur = 1 - e.bnCur
	}
	return nil
}

// runningStats returns the current running mean and variance of BN node i.
func (e *engine) runningStats(i int) (mean, vars []float32) {
	return e.bn[i].mean[e.bnCur].Data(), e.bn[i].vars[e.bnCur].Data()
}

// close releases the sessions and tensors.
func (e *engine) close() error {
	var errs []error
	for _, s := range e.sessions {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	for _, b := range e.io {
		errs = append(errs, b.close())
	}
	for i := range e.paramVals {
		errs = append(errs, e.paramVals[i].Close())
	}
	for i := range e.gradVals {
		errs = append(errs, e.gradVals[i].Close())
	}
	for _, st := range e.bn {
		for k := range 2 {
			errs = append(errs, st.mean[k].Close(), st.vars[k].Close())
		}
	}
	return errors.Join(errs...)
}

// pruneTo returns a copy of m whose outputs are outs, without the nodes
// and initializers that no output needs. Graph inputs are kept, so every
// pruned copy takes the same inputs.
func pruneTo(m *og.Model, outs []string) (*og.Model, error) {
	c := m.Clone()
	g := c.Graph
	var kept []*og.ValueInfo
	needed := map[string]bool{}
	for _, name := range outs {
		v := g.Output(name)
		if v == nil {
			return nil, fmt.Errorf("training graph has no output %q", name)
		}
		kept = append(kept, v)
		needed[name] = true
	}
	g.Outputs = kept
	live := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !slices.ContainsFunc(n.Outputs, func(o string) bool { return needed[o] }) {
			continue
		}
		live[i] = true
		for _, in := range n.Inputs {
			needed[in] = true
		}
		for _, a := range n.Attrs {
			if a.Graph != nil || len(a.Graphs) > 0 {
				return nil, fmt.Errorf("prune training graph: %v has a subgraph; control flow is not supported", n)
			}
		}
	}
	nodes := g.Nodes[:0]
	for i, n := range g.Nodes {
		if live[i] {
			nodes = append(nodes, n)
		}
	}
	g.Nodes = nodes
	g.Initializers = slices.DeleteFunc(g.Initializers, func(t *og.Tensor) bool { return !needed[t.Name] })
	return c, nil
}

package attacks

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/onnxgraph/traingraph"
	"github.com/robust-go/robust/ort"
)

// Model is a classifier under attack; inputs are NCHW float32 in [0,1].
//
// Implementations need not be safe for concurrent use; attacks call one
// method at a time.
type Model interface {
	// Classes returns the number of logits.
	Classes() int
	// Shape returns the per-sample input shape C, H, W.
	Shape() [3]int
	// Logits writes the logits of the n samples of x into out (len n*Classes()).
	Logits(x []float32, n int, out []float32) error
	// Grad evaluates a loss at a batch: it writes the logits, the
	// per-sample losses and the gradient of the summed loss with respect
	// to the input (each sample's own gradient).
	Grad(in GradInput, out GradOutput) error
}

// GradInput is the batch and loss of a [Model.Grad] call.
type GradInput struct {
	// X holds the N samples (NCHW float32).
	X []float32
	N int
	// Loss is the loss to differentiate.
	Loss Loss
	// Labels holds the N labels the loss compares with.
	Labels []int64
	// Targets holds the N target classes of a targeted loss
	// ([Loss.Targeted]); nil otherwise.
	Targets []int64
}

// GradOutput holds the buffers [Model.Grad] fills: Logits N×classes
// values, Losses N, Grad as many as the input.
type GradOutput struct {
	Logits, Losses, Grad []float32
}

// ModelOptions configure [NewONNXModel].
type ModelOptions struct {
	// Input and Logits name the image input and the logits output; empty
	// means the model's only (non-initializer) input and only output.
	Input, Logits string
	// Shape fixes the per-sample input shape C, H, W where the model leaves
	// dimensions symbolic; zero entries are taken from the model.
	Shape [3]int
	// MaxPool selects the MaxPool gradient formulation.
	MaxPool onnxgraph.MaxPoolGrad
	// Sessions is the number of ONNX Runtime sessions per graph that each
	// run a slice of every batch at the same time (data parallelism
	// inside one process). 0 chooses: on the CPU one session per intra-op
	// thread of the Env, each with one thread, unless the model's weights
	// exceed MaxReplicatedWeights; on a GPU one session. 1 is one session
	// with all the Env's threads.
	Sessions int
}

// MaxReplicatedWeights is the largest size of a model's weights (its
// initializers, in bytes) for which ModelOptions.Sessions = 0 opens one
// session per core. Every session holds its own copy of the weights, so a
// ViT-L (1.2 GB) or ViT-H (2.5 GB) would take that much again per core;
// large models are also the ones whose operators ONNX Runtime's intra-op
// threads already parallelise well, so they run in one session.
const MaxReplicatedWeights = 256 << 20

// WeightBytes is the size of m's initializers in bytes, what each ONNX
// Runtime session of it holds a copy of (compared with
// MaxReplicatedWeights).
func WeightBytes(m *onnxgraph.Model) int64 {
	var n int64
	for _, t := range m.Graph.Initializers {
		n += int64(len(t.Raw))
	}
	return n
}

// sessions returns how many sessions run each graph and the intra-op
// threads of each (0: the Env's).
//
// On the CPU, one single-threaded session per core beats one session whose
// operators are split over the cores for the models attacks usually run:
// ONNX Runtime's intra-op parallelism splits each operator, and on small
// images and batches of a few hundred the split and the synchronisation
// between operators cost as much as they gain (docs/attacks.md: the demo
// model needs twice the CPU time with two threads as with one, for the
// same results). A slice of the batch per session keeps every core busy
// from the first operator to the last with no synchronisation at all.
func (o ModelOptions) sessions(env *ort.Env, weights int64) (n, threads int) {
	if o.Sessions > 0 {
		if o.Sessions == 1 {
			return 1, 0
		}
		return o.Sessions, max(1, cores(env)/o.Sessions)
	}
	if env.Device().Kind != ort.DeviceCPU || weights > MaxReplicatedWeights {
		return 1, 0
	}
	if c := cores(env); c > 1 {
		return c, 1
	}
	return 1, 0
}

// cores is the intra-op thread count of the Env's sessions.
func cores(env *ort.Env) int {
	if t := env.Threads(); t > 0 {
		return t
	}
	return runtime.NumCPU()
}

// ONNXModel is a [Model] backed by ONNX Runtime. It is safe for concurrent
// use (calls are serialised) and must be closed.
type ONNXModel struct {
	env     *ort.Env
	model   *onnxgraph.Model
	opts    ModelOptions
	input   string
	logits  string
	shape   [3]int
	classes int
	weights int64 // bytes of the model's initializers

	mu     sync.Mutex
	closed bool
	fwd    *runner // nil once a large model's gradient graph is open
	grads  map[Loss]*runner
	// oneGraph: the model's weights exceed MaxReplicatedWeights, and each
	// session holds a copy of them, so the forward session is closed when
	// the first gradient session opens, and logits come from a gradient
	// session from then on (with a backward pass that is thrown away:
	// about a tenth more time for PGD-20, a weights-sized session less
	// memory).
	oneGraph bool
	scratch  struct { // a gradient session's unused inputs and outputs when it serves Logits
		labels []int64
		losses []float32
		grad   []float32
	}
	// so and replicas: every graph runs in replicas sessions with these
	// options.
	so       ort.SessionOptions
	replicas int
}

// NewONNXModel prepares a classifier for attacks. The model must take one
// float32 image input [N, C, H, W] (N symbolic or any) and output logits
// [N, classes]; BatchNormalization runs in inference mode. The model is not
// modified and must not be modified while the ONNXModel is in use.
func NewONNXModel(env *ort.Env, m *onnxgraph.Model, opts ModelOptions) (*ONNXModel, error) {
	if env == nil || m == nil || m.Graph == nil {
		return nil, errors.New("attacks: new model: nil environment or model")
	}
	if opts.Sessions < 0 {
		return nil, fmt.Errorf("attacks: new model: %d sessions", opts.Sessions)
	}
	om := &ONNXModel{env: env, model: m, opts: opts, grads: map[Loss]*runner{}}
	if err := om.resolveIO(); err != nil {
		return nil, fmt.Errorf("attacks: new model: %w", err)
	}
	// Attacks run the sessions on batches whose size changes as samples
	// are broken (ort.SessionOptions.VaryingShapes).
	om.weights = WeightBytes(m)
	om.replicas, om.so.Threads = opts.sessions(env, om.weights)
	om.oneGraph = om.weights > MaxReplicatedWeights
	om.so.VaryingShapes = true
	var err error
	om.fwd, err = om.newRunner(m, []string{om.input}, []string{om.logits}, false, false)
	if err != nil {
		return nil, fmt.Errorf("attacks: new model: %w", err)
	}
	return om, nil
}

// resolveIO finds the image input and logits output and their shapes.
func (om *ONNXModel) resolveIO() error {
	g := om.model.Graph
	om.input, om.logits = om.opts.Input, om.opts.Logits
	if om.input == "" {
		ins := g.RealInputs()
		if len(ins) != 1 {
			return fmt.Errorf("the model has %d inputs; name the image input", len(ins))
		}
		om.input = ins[0].Name
	}
	if om.logits == "" {
		if len(g.Outputs) != 1 {
			return fmt.Errorf("the model has %d outputs; name the logits", len(g.Outputs))
		}
		om.logits = g.Outputs[0].Name
	}
	types, err := onnxgraph.InferShapes(om.model)
	if err != nil {
		return err
	}
	in := types[om.input]
	if in == nil || g.Input(om.input) == nil {
		return fmt.Errorf("%q is not a graph input", om.input)
	}
	if in.Elem != onnxgraph.Float || len(in.Shape) != 4 {
		return fmt.Errorf("input %q is %v; want float [N, C, H, W]", om.input, in)
	}
	for i := range 3 {
		d := in.Shape[i+1]
		switch {
		case d.Known() && om.opts.Shape[i] > 0 && int(d.Value) != om.opts.Shape[i]:
			return fmt.Errorf("input %q is %v, not [N, %d, %d, %d]", om.input, in, om.opts.Shape[0], om.opts.Shape[1], om.opts.Shape[2])
		case d.Known():
			om.shape[i] = int(d.Value)
		case om.opts.Shape[i] > 0:
			om.shape[i] = om.opts.Shape[i]
		default:
			return fmt.Errorf("input %q is %v: dimension %d is symbolic; give the shape", om.input, in, i+1)
		}
		if om.shape[i] <= 0 {
			return fmt.Errorf("input %q is %v: empty images", om.input, in)
		}
	}
	out := types[om.logits]
	if out == nil || g.Output(om.logits) == nil {
		return fmt.Errorf("%q is not a graph output", om.logits)
	}
	if out.Elem != onnxgraph.Float || len(out.Shape) != 2 || !out.Shape[1].Known() || out.Shape[1].Value < 2 {
		return fmt.Errorf("output %q is %v; want float logits [N, classes] with a static number (≥ 2) of classes", om.logits, out)
	}
	om.classes = int(out.Shape[1].Value)
	return nil
}

// Classes returns the number of logits.
func (om *ONNXModel) Classes() int { return om.classes }

// Shape returns the per-sample input shape C, H, W.
func (om *ONNXModel) Shape() [3]int { return om.shape }

// Input returns the name of the image input.
func (om *ONNXModel) Input() string { return om.input }

// Output returns the name of the logits output.
func (om *ONNXModel) Output() string { return om.logits }

// Model returns the ONNX model.
func (om *ONNXModel) Model() *onnxgraph.Model { return om.model }

func (om *ONNXModel) sampleSize() int { return om.shape[0] * om.shape[1] * om.shape[2] }

// Logits writes the logits of the n samples of x into out.
func (om *ONNXModel) Logits(x []float32, n int, out []float32) error {
	if err := om.checkArgs(x, n, out, nil); err != nil {
		return fmt.Errorf("attacks: logits: %w", err)
	}
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.closed {
		return fmt.Errorf("attacks: logits: %w", ErrClosed)
	}
	if om.fwd == nil {
		if r := om.gradientForLogits(); r != nil {
			if err := om.logitsByGradient(r, x, n, out); err != nil {
				return fmt.Errorf("attacks: logits: %w", err)
			}
			return nil
		}
		// A gradient session failed to open after the forward one closed.
		var err error
		if om.fwd, err = om.newRunner(om.model, []string{om.input}, []string{om.logits}, false, false); err != nil {
			return fmt.Errorf("attacks: logits: %w", err)
		}
	}
	if err := om.fwd.run(x, nil, nil, n, out, nil, nil); err != nil {
		return fmt.Errorf("attacks: logits: %w", err)
	}
	return nil
}

// gradientForLogits returns an open gradient session, an untargeted one
// where there is one, or nil.
func (om *ONNXModel) gradientForLogits() *runner {
	var r *runner
	for loss := range Loss(len(losses)) {
		if g := om.grads[loss]; g != nil && (r == nil || r.targeted) {
			r = g
		}
	}
	return r
}

// logitsByGradient runs gradient session r for the logits alone
// (ONNXModel.oneGraph); the labels and targets it is given are class 0,
// and its losses and gradient are discarded.
func (om *ONNXModel) logitsByGradient(r *runner, x []float32, n int, out []float32) error {
	sc := &om.scratch
	if len(sc.labels) < n {
		sc.labels, sc.losses = make([]int64, n), make([]float32, n)
	}
	if d := om.sampleSize(); len(sc.grad) < n*d {
		sc.grad = make([]float32, n*d)
	}
	return r.run(x, sc.labels, sc.labels, n, out, sc.losses, sc.grad)
}

// Grad writes the logits, per-sample losses and input gradient of the
// summed loss for the batch.
func (om *ONNXModel) Grad(in GradInput, out GradOutput) error {
	n := in.N
	if err := om.checkArgs(in.X, n, out.Logits, out.Grad); err != nil {
		return fmt.Errorf("attacks: gradient: %w", err)
	}
	if out.Grad == nil {
		return errors.New("attacks: gradient: no gradient buffer")
	}
	if !in.Loss.valid() {
		return fmt.Errorf("attacks: gradient: %w %v", ErrUnknownLoss, in.Loss)
	}
	if len(in.Labels) < n || len(out.Losses) < n {
		return fmt.Errorf("attacks: gradient: %d labels and %d losses for %d samples", len(in.Labels), len(out.Losses), n)
	}
	if targeted := in.Loss.Targeted(); targeted != (in.Targets != nil) || (targeted && len(in.Targets) < n) {
		return fmt.Errorf("attacks: gradient: %d targets for %d samples and the %s loss", len(in.Targets), n, in.Loss)
	}
	for _, ls := range [][]int64{in.Labels[:n], in.Targets} {
		for _, l := range ls[:min(len(ls), n)] {
			if l < 0 || l >= int64(om.classes) {
				return fmt.Errorf("attacks: gradient: class %d outside the model's %d classes", l, om.classes)
			}
		}
	}
	om.mu.Lock()
	defer om.mu.Unlock()
	if om.closed {
		return fmt.Errorf("attacks: gradient: %w", ErrClosed)
	}
	r, err := om.gradRunner(in.Loss)
	if err != nil {
		return fmt.Errorf("attacks: gradient: %w", err)
	}
	if err := r.run(in.X, in.Labels, in.Targets, n, out.Logits, out.Losses, out.Grad); err != nil {
		return fmt.Errorf("attacks: gradient (%s loss): %w", in.Loss, err)
	}
	return nil
}

func (om *ONNXModel) checkArgs(x []float32, n int, logits, grad []float32) error {
	d := om.sampleSize()
	switch {
	case n <= 0:
		return fmt.Errorf("batch of %d samples", n)
	case len(x) < n*d:
		return fmt.Errorf("%d input values for %d samples of %d", len(x), n, d)
	case len(logits) < n*om.classes:
		return fmt.Errorf("logits buffer of %d for %d×%d logits", len(logits), n, om.classes)
	case grad != nil && len(grad) < n*d:
		return fmt.Errorf("gradient buffer of %d for %d samples of %d", len(grad), n, d)
	}
	return nil
}

// gradRunner returns the input-gradient session of a loss, building it on
// first use; om.mu must be held.
func (om *ONNXModel) gradRunner(loss Loss) (*runner, error) {
	if r := om.grads[loss]; r != nil {
		return r, nil
	}
	ig, err := traingraph.BuildInputGradientGraph(om.model, traingraph.InputGradientOptions{
		Input: om.input, Logits: om.logits, MaxPool: om.opts.MaxPool,
		Loss: traingraph.LossOptions{Head: losses[loss].head, Targeted: loss.Targeted(), MinClasses: loss.MinClasses()},
	})
	if err != nil {
		return nil, err
	}
	if om.oneGraph && om.fwd != nil {
		// Before the gradient session opens, so that the two copies of
		// the weights are never held at once (Logits opens it again if
		// the gradient session fails to open).
		err := om.fwd.close()
		om.fwd = nil
		if err != nil {
			return nil, err
		}
	}
	ins := []string{ig.Input, ig.Labels}
	if ig.Targets != "" {
		ins = append(ins, ig.Targets)
	}
	r, err := om.newRunner(ig.Model, ins, []string{ig.Logits, ig.PerSample, ig.InputGrad}, true, loss.Targeted())
	if err != nil {
		return nil, err
	}
	om.grads[loss] = r
	return r, nil
}

// Close releases the sessions and tensors. Closing twice is allowed.
func (om *ONNXModel) Close() error {
	om.mu.Lock()
	defer om.mu.Unlock()
	var errs []error
	om.closed = true
	if om.fwd != nil {
		errs = append(errs, om.fwd.close())
		om.fwd = nil
	}
	for k, r := range om.grads {
		errs = append(errs, r.close())
		delete(om.grads, k)
	}
	return errors.Join(errs...)
}

// runner runs one graph: in om.replicas sessions, each on its own slice of
// every batch at the same time. Inputs and outputs are tensors that wrap
// the caller's buffers for the duration of one run: ONNX Runtime reads the
// images and writes the logits and gradients in place. Earlier versions
// kept tensors of their own per batch size (up to six sizes, the input and
// the gradient each a whole batch of images) and copied in and out; for a
// batch of 128 ImageNet-sized images that was over a gigabyte held for
// nothing, since wrapping a buffer costs no allocation of its size.
//
// A sample's results do not depend on the slice it lands in: the graphs
// treat samples independently (BatchNormalization in inference form), and
// ONNX Runtime's kernels compute each sample's values in the same order
// whatever the batch size (the golden reports and TestSessionsAgree check
// this).
type runner struct {
	ss       []*ort.Session
	d        int // values per sample
	classes  int
	grad     bool // inputs: image, labels (, targets); outputs: logits, losses, gradient
	targeted bool
	shape    [3]int
}

// newRunner creates the sessions of a graph, concurrently (ONNX Runtime
// optimises each).
func (om *ONNXModel) newRunner(m *onnxgraph.Model, ins, outs []string, grad, targeted bool) (*runner, error) {
	src, err := ort.NewSource(m)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	r := &runner{ss: make([]*ort.Session, om.replicas), d: om.sampleSize(), classes: om.classes,
		grad: grad, targeted: targeted, shape: om.shape}
	errs := make([]error, len(r.ss))
	var wg sync.WaitGroup
	for i := range r.ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.ss[i], errs[i] = om.env.Open(src, ins, outs, om.so)
		}()
	}
	wg.Wait()
	if err := errors.Join(append(errs, src.Close())...); err != nil {
		return nil, errors.Join(err, r.close())
	}
	if om.weights > MaxReplicatedWeights {
		// The serialized graph, as large as the weights, is garbage now;
		// returned at once, it makes room for the next session (Go would
		// collect it only after as much again had been allocated).
		debug.FreeOSMemory()
	}
	return r, nil
}

// values wraps caller buffers as tensors for one run and closes them.
type values []ort.Value

// wrap appends a tensor of the given shape over data (exactly its size).
func wrap[T ort.Element](vs *values, shape []int64, data []T) error {
	v, err := ort.NewValue(shape, data)
	if err != nil {
		return err
	}
	*vs = append(*vs, v)
	return nil
}

func (vs values) close() error {
	var errs []error
	for _, v := range vs {
		errs = append(errs, v.Close())
	}
	return errors.Join(errs...)
}

// run evaluates the graph on n samples: x's first n images (and labels,
// targets) in, the logits (losses, gradient) written straight into the
// first n rows of the output buffers. The rows are cut into one slice per
// session, run at the same time.
func (r *runner) run(x []float32, labels, targets []int64, n int, logits, losses, grad []float32) error {
	k := min(len(r.ss), n)
	if k == 1 {
		return r.runSlice(r.ss[0], x, labels, targets, 0, n, logits, losses, grad)
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.runSlice(r.ss[i], x, labels, targets, lo, hi, logits, losses, grad)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runSlice runs one session on rows lo…hi-1.
func (r *runner) runSlice(s *ort.Session, x []float32, labels, targets []int64, lo, hi int, logits, losses, grad []float32) (err error) {
	var ins, outs values
	defer func() { err = errors.Join(err, ins.close(), outs.close()) }()
	b := int64(hi - lo)
	img := []int64{b, int64(r.shape[0]), int64(r.shape[1]), int64(r.shape[2])}
	if err := wrap(&ins, img, x[lo*r.d:hi*r.d]); err != nil {
		return err
	}
	if err := wrap(&outs, []int64{b, int64(r.classes)}, logits[lo*r.classes:hi*r.classes]); err != nil {
		return err
	}
	if r.grad {
		if err := wrap(&ins, []int64{b}, labels[lo:hi]); err != nil {
			return err
		}
		if r.targeted {
			if err := wrap(&ins, []int64{b}, targets[lo:hi]); err != nil {
				return err
			}
		}
		if err := wrap(&outs, []int64{b}, losses[lo:hi]); err != nil {
			return err
		}
		if err := wrap(&outs, img, grad[lo*r.d:hi*r.d]); err != nil {
			return err
		}
	}
	return s.Run(ins, outs)
}

func (r *runner) close() error {
	var errs []error
	for _, s := range r.ss {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

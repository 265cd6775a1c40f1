package ort

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Session runs one ONNX model with a fixed list of inputs and outputs. It
// accepts any size for the model's symbolic dimensions (such as the batch),
// so one session serves every batch size.
//
// Run may be called from several goroutines at once, provided they do not
// share output values. Close must not race with Run.
type Session struct {
	sess    *ortgo.DynamicAdvancedSession
	inputs  []IOInfo
	outputs []IOInfo
}

// NewSession compiles a serialized ONNX model. inputNames and outputNames
// choose the model inputs and outputs, and their order in [Session.Run];
// nil means all of them in the model's order. Every name must exist in the
// model.
func (e *Env) NewSession(model []byte, inputNames, outputNames []string) (*Session, error) {
	info, err := InspectModel(model)
	if err != nil {
		return nil, err
	}
	return e.open(info, inputNames, outputNames, "", nil, func(in, out []string, so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, in, out, so)
	})
}

// NewSessionWith is [Env.NewSession] with per-session options.
func (e *Env) NewSessionWith(model []byte, inputNames, outputNames []string, opts SessionOptions) (*Session, error) {
	info, err := InspectModel(model)
	if err != nil {
		return nil, err
	}
	return e.open(info, inputNames, outputNames, "", &opts, func(in, out []string, so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSessionWithONNXData(model, in, out, so)
	})
}

// Spinning says whether a session's intra-op threads busy-wait for work
// between operators.
type Spinning int

const (
	// SpinDefault keeps ONNX Runtime's choice (spinning on).
	SpinDefault Spinning = iota
	// SpinOn makes idle threads spin: lowest latency on a machine of one's
	// own.
	SpinOn
	// SpinOff makes idle threads sleep: better when the cores are shared
	// with other work (or other sessions running at the same time).
	SpinOff
)

// SessionOptions tune one session beyond its Env's thread count and device.
// The zero value changes nothing.
type SessionOptions struct {
	// ProfilePrefix turns on ONNX Runtime's profiler: a Chrome-trace JSON
	// file whose name starts with ProfilePrefix is written when the session
	// is closed.
	ProfilePrefix string
	// OptimizedModelPath, when set, makes ONNX Runtime save the model as it
	// runs it, after its graph optimisations (fusions, constant folding,
	// layout changes), to inspect which operators remain.
	OptimizedModelPath string
	// Spinning chooses whether idle intra-op threads busy-wait.
	Spinning Spinning
	// VaryingShapes turns off ONNX Runtime's memory pattern, for a session
	// whose input shapes change from run to run (an attack's batch shrinks
	// as samples are broken). The pattern plans one block for all the
	// intermediate tensors of one input shape and is redone, with a new
	// block from the arena, for every new shape; with shapes that keep
	// changing that only adds memory (measured: about 10% of the peak of
	// an ImageNet-sized evaluation) and no speed.
	VaryingShapes bool
	// NoArena turns off ONNX Runtime's CPU memory arena for this session:
	// the buffers of a run are returned when it ends instead of kept for
	// the next. For one-off runs of a graph much larger than the machine's
	// spare memory (torchref's check of a 2.5 GB model).
	NoArena bool
	// Threads, when positive, overrides the Env's intra-op thread count for
	// this session (several sessions that run at the same time, one thread
	// each, instead of one session with a thread per core).
	Threads int
}

// apply sets the options on ONNX Runtime session options.
func (o *SessionOptions) apply(so *ortgo.SessionOptions) error {
	if o.ProfilePrefix != "" {
		if err := so.EnableProfiling(o.ProfilePrefix); err != nil {
			return fmt.Errorf("ort: enable profiling: %w", err)
		}
	}
	if o.OptimizedModelPath != "" {
		if err := so.SetOptimizedModelFilePath(o.OptimizedModelPath); err != nil {
			return fmt.Errorf("ort: set optimized model path: %w", err)
		}
	}
	if o.Threads < 0 {
		return fmt.Errorf("ort: negative thread count %d", o.Threads)
	}
	if o.Threads > 0 {
		if err := so.SetIntraOpNumThreads(o.Threads); err != nil {
			return fmt.Errorf("ort: set %d intra-op threads: %w", o.Threads, err)
		}
	}
	if o.NoArena {
		if err := so.SetCpuMemArena(false); err != nil {
			return fmt.Errorf("ort: turn off the memory arena: %w", err)
		}
	}
	if o.VaryingShapes {
		if err := so.SetMemPattern(false); err != nil {
			return fmt.Errorf("ort: turn off the memory pattern: %w", err)
		}
	}
	switch o.Spinning {
	case SpinDefault:
	case SpinOn, SpinOff:
		v := "1"
		if o.Spinning == SpinOff {
			v = "0"
		}
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", v); err != nil {
			return fmt.Errorf("ort: set thread spinning: %w", err)
		}
	default:
		return fmt.Errorf("ort: unknown spinning setting %d", o.Spinning)
	}
	return nil
}

// NewSessionFromFile is [Env.NewSession] for a model file. ONNX Runtime
// reads the file itself, so weights stored as external data next to it
// are found.
func (e *Env) NewSessionFromFile(path string, inputNames, outputNames []string) (*Session, error) {
	info, err := InspectModelFile(path)
	if err != nil {
		return nil, err
	}
	return e.open(info, inputNames, outputNames, " from "+path, nil, func(in, out []string, so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error) {
		return ortgo.NewDynamicAdvancedSession(path, in, out, so)
	})
}

// open resolves the inputs and outputs of a model and creates its ONNX
// Runtime session with the Env's options and, when not nil, opts.
func (e *Env) open(info *ModelInfo, inputNames, outputNames []string, from string, opts *SessionOptions,
	create func(in, out []string, so *ortgo.SessionOptions) (*ortgo.DynamicAdvancedSession, error)) (*Session, error) {
	s, err := newSession(info, inputNames, outputNames)
	if err != nil {
		return nil, err
	}
	so, err := e.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer func() { _ = so.Destroy() }()
	if opts != nil {
		if err := opts.apply(so); err != nil {
			return nil, err
		}
	}
	if s.sess, err = create(names(s.inputs), names(s.outputs), so); err != nil {
		return nil, fmt.Errorf("ort: create session%s: %w", from, err)
	}
	return s, nil
}

// newSession resolves the chosen inputs and outputs.
func newSession(info *ModelInfo, inputNames, outputNames []string) (*Session, error) {
	ins, err := pick("input", info.Inputs, inputNames)
	if err != nil {
		return nil, err
	}
	outs, err := pick("output", info.Outputs, outputNames)
	if err != nil {
		return nil, err
	}
	return &Session{inputs: ins, outputs: outs}, nil
}

func pick(kind string, all []IOInfo, want []string) ([]IOInfo, error) {
	if want == nil {
		if len(all) == 0 {
			return nil, fmt.Errorf("ort: the model has no %ss", kind)
		}
		return all, nil
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("ort: no %s names given", kind)
	}
	picked := make([]IOInfo, 0, len(want))
	seen := make(map[string]bool, len(want))
	for _, name := range want {
		if seen[name] {
			return nil, fmt.Errorf("ort: %s %q named twice", kind, name)
		}
		seen[name] = true
		i := indexOf(all, name)
		if i < 0 {
			return nil, fmt.Errorf("ort: the model has no %s %q (its %ss: %s)", kind, name, kind, strings.Join(names(all), ", "))
		}
		picked = append(picked, all[i])
	}
	return picked, nil
}

func indexOf(infos []IOInfo, name string) int {
	for i, info := range infos {
		if info.Name == name {
			return i
		}
	}
	return -1
}

func names(infos []IOInfo) []string {
	s := make([]string, len(infos))
	for i, info := range infos {
		s[i] = info.Name
	}
	return s
}

// Inputs returns the session's inputs, in Run order. The slice must not be
// modified.
func (s *Session) Inputs() []IOInfo { return s.inputs }

// Outputs returns the session's outputs, in Run order. The slice must not be
// modified.
func (s *Session) Outputs() []IOInfo { return s.outputs }

// Close releases the session. Closing twice is allowed.
func (s *Session) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return fmt.Errorf("ort: close session: %w", err)
	}
	return nil
}

// Run runs the model. inputs and outputs follow the order of
// [Session.Inputs] and [Session.Outputs].
//
// A non-nil output is pre-allocated: ONNX Runtime writes the result into
// it, and it must have the result's exact shape and element type. Reusing
// the same inputs and outputs at every call (refilling the inputs' Data in
// place) makes a run copy nothing in Go. A nil output is allocated by Run
// and stored into outputs; the caller must Close it.
//
// Inputs are checked against the model's declared element types and fixed
// dimensions before running; an error names the offending value and shape.
func (s *Session) Run(inputs, outputs []Value) error {
	if s.sess == nil {
		return errors.New("ort: run: session is closed")
	}
	if len(inputs) != len(s.inputs) {
		return fmt.Errorf("ort: run: got %d inputs, the session takes %d (%s)", len(inputs), len(s.inputs), strings.Join(names(s.inputs), ", "))
	}
	if len(outputs) != len(s.outputs) {
		return fmt.Errorf("ort: run: got %d outputs, the session gives %d (%s)", len(outputs), len(s.outputs), strings.Join(names(s.outputs), ", "))
	}
	ins := make([]ortgo.Value, len(inputs))
	for i, v := range inputs {
		ov, err := checkValue("input", s.inputs[i], v)
		if err != nil {
			return err
		}
		ins[i] = ov
	}
	outs := make([]ortgo.Value, len(outputs))
	allocated := false
	for i, v := range outputs {
		if v == nil {
			allocated = true
			continue
		}
		ov, err := checkValue("output", s.outputs[i], v)
		if err != nil {
			return err
		}
		outs[i] = ov
	}
	if !allocated {
		if err := s.sess.Run(ins, outs); err != nil {
			return s.runError(inputs, outputs, err)
		}
		return nil
	}
	return s.runAllocating(inputs, outputs, ins, outs)
}

// runAllocating runs with some outputs allocated here or by ONNX Runtime.
func (s *Session) runAllocating(inputs, outputs []Value, ins, outs []ortgo.Value) (err error) {
	mine := make([]Value, len(outputs)) // values to hand over or release
	defer func() {
		if err == nil {
			return
		}
		for i, v := range mine {
			if v != nil {
				_ = v.Close()
			} else if outputs[i] == nil {
				destroyOutput(outs[i])
			}
		}
	}()
	for i, v := range outputs {
		info := s.outputs[i]
		if v != nil || info.Shape == nil || len(info.Shape) != 0 {
			continue
		}
		// onnxruntime_go cannot wrap a rank-0 tensor that ONNX Runtime
		// allocated, so allocate declared scalars here. For an element type
		// not supported here, let ONNX Runtime try.
		if v, err := newEmptyOfType(info.ElementType, nil); err == nil {
			mine[i], outs[i] = v, v.ortValue()
		}
	}
	if err := s.sess.Run(ins, outs); err != nil {
		return s.runError(inputs, outputs, err)
	}
	for i, v := range outputs {
		if v != nil || mine[i] != nil {
			continue
		}
		if mine[i], err = wrapOutput(outs[i]); err != nil {
			outs[i] = nil // already released
			return fmt.Errorf("ort: run: output %q: %w", s.outputs[i].Name, err)
		}
	}
	for i, v := range mine {
		if v != nil {
			outputs[i] = v
		}
	}
	return nil
}

// destroyOutput releases a value ONNX Runtime allocated. onnxruntime_go can
// leave a typed nil pointer in the output slice when a run fails, which an
// interface nil check does not catch.
func destroyOutput(v ortgo.Value) {
	if v == nil {
		return
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return
	}
	_ = v.Destroy()
}

// checkValue checks a run argument against its declaration.
func checkValue(kind string, info IOInfo, v Value) (ortgo.Value, error) {
	if v == nil {
		return nil, fmt.Errorf("ort: run: %s %q is nil", kind, info.Name)
	}
	ov := v.ortValue()
	if ov == nil {
		return nil, fmt.Errorf("ort: run: %s %q is closed", kind, info.Name)
	}
	if info.ElementType != Undefined && v.ElementType() != info.ElementType {
		return nil, fmt.Errorf("ort: run: %s %q has element type %s, the model wants %s",
			kind, info.Name, v.ElementType(), info.ElementType)
	}
	if info.Shape == nil {
		return ov, nil
	}
	shape := v.Shape()
	if len(shape) != len(info.Shape) {
		return nil, fmt.Errorf("ort: run: %s %q has shape %v (rank %d), the model wants %s (rank %d)",
			kind, info.Name, shape, len(shape), info.typeString(), len(info.Shape))
	}
	for k, d := range info.Shape {
		if d > 0 && shape[k] != d {
			return nil, fmt.Errorf("ort: run: %s %q has shape %v, the model wants %s (dimension %d is %d, want %d)",
				kind, info.Name, shape, info.typeString(), k, shape[k], d)
		}
	}
	return ov, nil
}

// runError wraps an ONNX Runtime failure with the values given.
func (s *Session) runError(inputs, outputs []Value, err error) error {
	var b strings.Builder
	b.WriteString("inputs ")
	for i, v := range inputs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s%v", s.inputs[i].Name, v.ElementType(), v.Shape())
	}
	sep := "; pre-allocated outputs "
	for i, v := range outputs {
		if v != nil {
			fmt.Fprintf(&b, "%s%s: %s%v", sep, s.outputs[i].Name, v.ElementType(), v.Shape())
			sep = ", "
		}
	}
	return fmt.Errorf("ort: run (%s): %w", b.String(), err)
}

// RunTensors runs the model on plain tensors, in [Session.Inputs] order,
// and returns all outputs as new tensors. It is a convenience that
// allocates at each call; loops should use [Session.Run].
func (s *Session) RunTensors(inputs ...*Tensor) (out []*Tensor, err error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("ort: run: got %d inputs, the session takes %d (%s)", len(inputs), len(s.inputs), strings.Join(names(s.inputs), ", "))
	}
	ins := make([]Value, len(inputs))
	defer func() {
		for _, v := range ins {
			if v != nil {
				err = errors.Join(err, v.Close())
			}
		}
	}()
	for i, t := range inputs {
		if t == nil {
			return nil, fmt.Errorf("ort: run: input %q is nil", s.inputs[i].Name)
		}
		if ins[i], err = ValueOf(t); err != nil {
			return nil, fmt.Errorf("ort: run: input %q: %w", s.inputs[i].Name, err)
		}
	}
	outs := make([]Value, len(s.outputs))
	if err := s.Run(ins, outs); err != nil {
		return nil, err
	}
	defer func() {
		for _, v := range outs {
			err = errors.Join(err, v.Close())
		}
	}()
	out = make([]*Tensor, len(outs))
	for i, v := range outs {
		// The outputs' data is Go memory that stays valid after Close
		// and that nobody else references: hand it over without a copy.
		if out[i], err = toTensor(v, false); err != nil {
			return nil, fmt.Errorf("ort: run: output %q: %w", s.outputs[i].Name, err)
		}
	}
	return out, nil
}

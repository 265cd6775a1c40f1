// Package torchref checks robust's gradients against PyTorch autograd.
//
// A reference directory, written by scripts/check_torch.py with Debian's
// python3-torch, holds a classifier exported by torch.onnx.export
// (model.onnx), a batch of inputs and labels, and PyTorch's gradients of the
// mean cross-entropy loss with respect to the input and to the parameters
// (ref.json names them; tensors are raw little-endian float32 files). [Check]
// builds the same loss on the exported graph, differentiates it with
// onnxgraph.Gradients, runs it on ONNX Runtime and reports the largest
// error relative to the largest PyTorch gradient, per tensor.
//
// With constant folding on, as users export, PyTorch's exporter folds a
// parameter and the constant operations applied to it (a transposed Linear
// weight, a table gathered by constant indices) into a constant of another
// name. The directory therefore also holds an export without constant
// folding (Reference.Unfolded), in which every parameter keeps its name:
// the parameter gradients are compared on it, the input gradient on both.
// Parameters that still have no initializer of their name are not compared;
// [Result] counts them.
package torchref

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"

	og "github.com/robust-go/robust/onnxgraph"
	"github.com/robust-go/robust/ort"
)

// Reference is the content of ref.json.
type Reference struct {
	// Input is the model's image input; its values are in File.
	Input  Tensor  `json:"input"`
	Labels []int64 `json:"labels"`
	// Grads are PyTorch's gradients by name: the input's name and the
	// parameters' (initializer) names.
	Grads map[string]Tensor `json:"grads"`
	// Grads64, when set, are PyTorch's gradients computed in float64 (the
	// model and input converted), stored rounded to float32: the exact
	// gradients for these weights, against which both float32
	// implementations' rounding can be measured.
	Grads64 map[string]Tensor `json:"grads64,omitempty"`
	// Unfolded, when set, names a second export of the model, made without
	// constant folding, in which every parameter is an initializer of its
	// own name (model.onnx is exported as users do, with folding).
	Unfolded string `json:"unfolded,omitempty"`
}

// Tensor is a float32 tensor stored in a raw file of the directory.
type Tensor struct {
	Name  string  `json:"name,omitempty"`
	Shape []int64 `json:"shape"`
	File  string  `json:"file"`
}

// Result is the comparison of one reference directory.
type Result struct {
	// InputErr and ParamErr are max |Δ| / max |g| of the input gradient
	// and the largest such error over the compared parameters.
	InputErr, ParamErr float64
	// WorstParam names the parameter with the largest error.
	WorstParam string
	// Params is the number of parameter gradients compared, Missing those
	// PyTorch has but the exported graph lacks (folded by the exporter).
	Params, Missing int
	// Trainable is the number of parameters robust trains by default
	// (onnxgraph.TrainableParams) in model.onnx, the export users make.
	Trainable int
	// NotTrainable lists the compared parameters that
	// onnxgraph.TrainableParams leaves out of the graph they were compared
	// on: their gradients are right, but training does not update them by
	// default.
	NotTrainable []string
	// Errors holds each compared parameter's error.
	Errors map[string]float64
	// Exact holds, when the directory has PyTorch's float64 gradients
	// (Reference.Grads64), robust's errors against them, and Torch
	// PyTorch float32's own errors against them; both nil otherwise.
	Exact, Torch *Errors
	// InputByExport is robust's input-gradient error on each export
	// compared, by file name (model.onnx and, where the directory has it,
	// the export without folding), against the float64 gradients when
	// there are some: InputErr and Exact.Input are the larger of the two,
	// and a disagreement is explained export by export, since each rounds
	// differently (BatchNormalization folded into the convolution or not).
	InputByExport map[string]float64
}

// ReadFloats reads a raw little-endian float32 file of n values.
func ReadFloats(path string, n int64) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	if int64(len(raw)) != 4*n {
		return nil, fmt.Errorf("torchref: %s has %d bytes, want %d float32 values", path, len(raw), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// writeFloats writes values as a raw little-endian float32 file.
func writeFloats(path string, v []float32) error {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("torchref: %w", err)
	}
	return nil
}

func size(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// Load reads ref.json of a reference directory.
func Load(dir string) (*Reference, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "ref.json"))
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	var ref Reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		return nil, fmt.Errorf("torchref: %s: %w", dir, err)
	}
	if ref.Input.Name == "" || len(ref.Labels) == 0 {
		return nil, fmt.Errorf("torchref: %s: ref.json names no input or labels", dir)
	}
	return &ref, nil
}

// Check compares robust's gradients of the model in dir with PyTorch's:
// the input gradient on the export as users make it (model.onnx) and, when
// the directory has one, on the export without constant folding, and the
// parameter gradients on the latter (on model.onnx otherwise).
func Check(env *ort.Env, dir string) (*Result, error) { return check(env, dir, false) }

// CheckDump is Check that also writes robust's gradients next to PyTorch's,
// each as "robust_" and the name of PyTorch's file, and the inputs of the
// export's Relu and MaxPool nodes as robust computed them (robust_kinks.json
// lists them in node order): for the export the parameters are compared on,
// and, where that is the export without folding, for model.onnx too, with
// the prefix "user_" (its input gradient only).
// scripts/check_torch.py reads them to test whether a disagreement is
// float32 flips at ReLU and max-pooling kinks.
func CheckDump(env *ort.Env, dir string) (*Result, error) { return check(env, dir, true) }

func check(env *ort.Env, dir string, dump bool) (*Result, error) {
	ref, err := Load(dir)
	if err != nil {
		return nil, err
	}
	userDump := ""
	if ref.Unfolded != "" {
		userDump = "user_"
	}
	user, err := compare(env, dir, ref, "model.onnx", ref.Unfolded == "", dump, userDump)
	if err != nil {
		return nil, err
	}
	params := user
	if ref.Unfolded != "" {
		if params, err = compare(env, dir, ref, ref.Unfolded, true, dump, ""); err != nil {
			return nil, err
		}
	}
	res := &Result{Trainable: user.trainable, Params: len(params.vsTorch.Params), Missing: params.missing,
		NotTrainable: params.notTrainable, Errors: params.vsTorch.Params}
	res.InputErr = max(user.vsTorch.Input, params.vsTorch.Input)
	res.ParamErr, res.WorstParam = params.vsTorch.MaxParam()
	exact := params.vsExact.Params != nil
	if exact {
		res.Exact = &Errors{Input: max(user.vsExact.Input, params.vsExact.Input), Params: params.vsExact.Params}
		res.Torch = &params.torchVsExact
	}
	input := func(s *side) float64 { // against the float64 gradients when there are some
		if exact {
			return s.vsExact.Input
		}
		return s.vsTorch.Input
	}
	res.InputByExport = map[string]float64{"model.onnx": input(user)}
	if ref.Unfolded != "" {
		res.InputByExport[ref.Unfolded] = input(params)
	}
	return res, nil
}

// Pass reports whether robust's gradients agree with PyTorch's: max |Δ| /
// max |g| at most tol for the input gradient and for every parameter's.
//
// With PyTorch's float64 gradients (Exact set), robust's are measured
// against them, the exact gradients for the weights at hand, and may be as
// far from them as PyTorch's own float32 gradients are. Two float32
// implementations round differently, and where a ReLU's input lies within
// float32 rounding of zero (or two pooled values tie), each may take either
// side of the kink: the gradient then jumps by one unit's contribution, in
// PyTorch's float32 result as in robust's. Measured against PyTorch float32
// alone, such a flip reads as an error of robust's (docs/design.md).
// Without float64 gradients, robust's are measured against PyTorch's
// float32 ones. A flip that robust alone makes fails Pass;
// scripts/check_torch.py then tests whether robust's side of the ReLU kinks,
// recomputed in float64, accounts for the whole difference (CheckDump
// writes what it needs).
func (r *Result) Pass(tol float64) bool {
	if r.Exact == nil {
		return r.InputErr <= tol && r.ParamErr <= tol
	}
	pe, _ := r.Exact.MaxParam()
	tpe, _ := r.Torch.MaxParam()
	return r.Exact.Input <= max(tol, r.Torch.Input) && pe <= max(tol, tpe)
}

// side is the comparison of one export.
type side struct {
	// vsTorch are robust's errors against PyTorch's float32 gradients;
	// vsExact against the float64 ones and torchVsExact PyTorch float32's,
	// when the reference has float64 gradients (Params nil otherwise).
	vsTorch, vsExact, torchVsExact Errors
	missing                        int      // PyTorch parameters without an initializer of their name
	trainable                      int      // len(og.TrainableParams)
	notTrainable                   []string // compared parameters og.TrainableParams leaves out
}

// compare differentiates the mean cross-entropy of the export file of dir
// with respect to the input and, if withParams, to every initializer named
// like a PyTorch parameter, runs it and compares the gradients with
// PyTorch's. With dump, it writes robust's gradients (see CheckDump), their
// file names prefixed with prefix.
func compare(env *ort.Env, dir string, ref *Reference, file string, withParams, dump bool, prefix string) (*side, error) {
	debug.FreeOSMemory() // the previous export's graph and gradients, before this one's
	m, err := og.Load(filepath.Join(dir, file))
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	untie(m.Graph)
	trainable := og.TrainableParams(m.Graph)
	res := &side{trainable: len(trainable)}
	if len(m.Graph.Outputs) != 1 {
		return nil, fmt.Errorf("torchref: %s: model has %d outputs, want the logits only", dir, len(m.Graph.Outputs))
	}
	logits := m.Graph.Outputs[0].Name
	b := og.Extend(m.Graph, m.Opset(""))
	labels := b.Input("torchref_labels", og.Int64, og.Dims(int64(len(ref.Labels))))
	loss := b.Op("SoftmaxCrossEntropyLoss", []string{logits, labels}, og.StringAttr("reduction", "mean"))
	m.Graph.Outputs = nil
	b.Output(loss, og.Float, og.Shape{})

	wrt := []string{ref.Input.Name}
	var params []string
	for name := range ref.Grads {
		switch {
		case name == ref.Input.Name || !withParams:
		case m.Graph.Initializer(name) != nil:
			params = append(params, name)
			if !slices.Contains(trainable, name) {
				res.notTrainable = append(res.notTrainable, name)
			}
		default:
			res.missing++
		}
	}
	slices.Sort(params)
	slices.Sort(res.notTrainable)
	wrt = append(wrt, params...)
	// With dump, the inputs of the model's ReLUs and MaxPools are outputs
	// too, listed in the order of the nodes (the order PyTorch runs its
	// modules), so that scripts/check_torch.py can recompute the exact
	// gradients with robust's side of every ReLU kink and robust's choice
	// of every pooling window's maximum (dumpKinks).
	var kinks []kink
	if dump {
		for _, n := range m.Graph.Nodes {
			if (n.OpType == "Relu" || n.OpType == "MaxPool") && n.Domain == "" {
				kinks = append(kinks, kink{Op: n.OpType, Value: n.Inputs[0]})
			}
		}
	}
	grads, err := og.Gradients(m, loss, wrt, nil)
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %s: %w", dir, file, err)
	}
	outs := slices.Clip(grads)
	for _, k := range kinks {
		if !slices.Contains(outs, k.Value) {
			outs = append(outs, k.Value)
			m.Graph.Outputs = append(m.Graph.Outputs, og.NewValueInfo(k.Value, og.Float, nil))
		}
	}
	// The gradients' shapes: robust writes them into buffers of its own
	// (run), which are the parameters' as large.
	shapes := make([][]int64, len(wrt))
	shapes[0] = ref.Input.Shape
	for i, name := range params {
		shapes[i+1] = m.Graph.Initializer(name).Dims
	}
	src, err := ort.NewSource(m)
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %s: %w", dir, file, err)
	}
	defer src.Close()
	// Without the arena, ONNX Runtime returns the intermediate buffers of
	// the run when it ends instead of keeping them for the next.
	sess, err := env.Open(src, []string{ref.Input.Name, labels}, outs, ort.SessionOptions{NoArena: true})
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %s: %w", dir, file, err)
	}
	defer sess.Close()
	// The session has its own copy of the weights: the graph and its
	// serialization (2.5 GB each for ViT-H/14) are not used from here on,
	// and the gradients about to be computed are as large again.
	if err := src.Close(); err != nil {
		return nil, err
	}
	debug.FreeOSMemory()
	x, err := ReadFloats(filepath.Join(dir, ref.Input.File), size(ref.Input.Shape))
	if err != nil {
		return nil, err
	}
	got, kinkValues, err := run(sess, x, ref, shapes)
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %s: %w", dir, file, err)
	}
	for i, name := range wrt {
		g := got[i]
		if want := ref.Grads[name]; int64(len(g)) != size(want.Shape) {
			return nil, fmt.Errorf("torchref: %s: %s: gradient of %q has %d values, PyTorch's %d", dir, file, name, len(g), size(want.Shape))
		}
		if dump {
			if err := writeFloats(filepath.Join(dir, prefix+"robust_"+ref.Grads[name].File), g); err != nil {
				return nil, err
			}
		}
	}
	if dump {
		if err := dumpKinks(dir, prefix, kinks, outs[len(wrt):], kinkValues); err != nil {
			return nil, err
		}
	}
	// PyTorch's gradients are read one tensor at a time: for ViT-H/14 each
	// set is 2.5 GB, beside robust's.
	vsTorch := make([]gap, len(wrt))
	var vsExact, torchVsExact []gap
	if ref.Grads64 != nil {
		vsExact, torchVsExact = make([]gap, len(wrt)), make([]gap, len(wrt))
	}
	for i, name := range wrt {
		torch32, err := readGrad(dir, ref.Grads, name)
		if err != nil {
			return nil, err
		}
		vsTorch[i] = measure(got[i], torch32)
		if ref.Grads64 != nil {
			exact, err := readGrad(dir, ref.Grads64, name)
			if err != nil {
				return nil, err
			}
			vsExact[i], torchVsExact[i] = measure(got[i], exact), measure(torch32, exact)
		}
	}
	res.vsTorch = errorsOf(vsTorch, params)
	if ref.Grads64 != nil {
		res.vsExact, res.torchVsExact = errorsOf(vsExact, params), errorsOf(torchVsExact, params)
	}
	return res, nil
}

// run runs the gradient session once on x and the reference's labels: the
// gradients (of the given shapes) go into Go buffers that ONNX Runtime
// writes in place, so that a model's worth of parameter gradients exists
// once (ONNX Runtime allocating them and Go copying them out needed them
// twice, which a 2.5 GB model could not afford); the remaining outputs,
// robust's kink inputs, are allocated by the run.
func run(sess *ort.Session, x []float32, ref *Reference, shapes [][]int64) (grads [][]float32, rest []*ort.Tensor, err error) {
	var vals []ort.Value
	defer func() {
		for _, v := range vals {
			if v != nil {
				err = errors.Join(err, v.Close())
			}
		}
	}()
	xv, err := ort.NewValue(ref.Input.Shape, x)
	if err != nil {
		return nil, nil, err
	}
	vals = append(vals, xv)
	yv, err := ort.NewValue([]int64{int64(len(ref.Labels))}, ref.Labels)
	if err != nil {
		return nil, nil, err
	}
	vals = append(vals, yv)
	outs := make([]ort.Value, len(sess.Outputs()))
	grads = make([][]float32, len(shapes))
	for i, shape := range shapes {
		grads[i] = make([]float32, size(shape))
		if outs[i], err = ort.NewValue(shape, grads[i]); err != nil {
			return nil, nil, err
		}
		vals = append(vals, outs[i])
	}
	err = sess.Run([]ort.Value{xv, yv}, outs)
	for _, v := range outs[len(shapes):] {
		if v != nil {
			vals = append(vals, v)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	for _, v := range outs[len(shapes):] {
		t, err := ort.TensorOf(v)
		if err != nil {
			return nil, nil, err
		}
		rest = append(rest, t)
	}
	return grads, rest, nil
}

// kink is one entry of robust_kinks.json: the input of a Relu or MaxPool
// node and the file that holds it as robust computed it.
type kink struct {
	Op    string  `json:"op"`
	Value string  `json:"value"`
	Shape []int64 `json:"shape"`
	File  string  `json:"file"`
}

// dumpKinks writes the values the kinks read (robust_kink_K.bin, K in the
// order of names, the extra outputs of the run, with values) and their
// list, robust_kinks.json, in node order; prefix comes before each file
// name.
func dumpKinks(dir, prefix string, kinks []kink, names []string, values []*ort.Tensor) error {
	for i, name := range names {
		v, ok := values[i].Data.([]float32)
		if !ok {
			return fmt.Errorf("torchref: %s: %q is not float32", dir, name)
		}
		file := fmt.Sprintf("%srobust_kink_%d.bin", prefix, i)
		if err := writeFloats(filepath.Join(dir, file), v); err != nil {
			return err
		}
		for j := range kinks {
			if kinks[j].Value == name {
				kinks[j].Shape, kinks[j].File = values[i].Shape, file
			}
		}
	}
	data, err := json.MarshalIndent(kinks, "", " ")
	if err != nil {
		return fmt.Errorf("torchref: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, prefix+"robust_kinks.json"), data, 0o644); err != nil {
		return fmt.Errorf("torchref: %w", err)
	}
	return nil
}

// readGrad reads the reference gradient of the named tensor.
func readGrad(dir string, grads map[string]Tensor, name string) ([]float32, error) {
	t, ok := grads[name]
	if !ok {
		return nil, fmt.Errorf("torchref: %s: no reference gradient of %q", dir, name)
	}
	return ReadFloats(filepath.Join(dir, t.File), size(t.Shape))
}

// Errors are the errors of one set of gradients against another: the
// input's (index 0 of the gradients compared) and each parameter's.
type Errors struct {
	Input  float64
	Params map[string]float64
}

// MaxParam returns the largest parameter error and its parameter (the
// first by name among equal ones); 0 and "" without parameters.
func (e Errors) MaxParam() (float64, string) {
	var worst float64
	var name string
	for _, n := range slices.Sorted(maps.Keys(e.Params)) {
		if e.Params[n] > worst || name == "" {
			worst, name = e.Params[n], n
		}
	}
	return worst, name
}

// gap is what comparing one tensor got with want needs: max |got − want|
// and max |want|.
type gap struct{ diff, scale float64 }

func measure(got, want []float32) gap {
	var diff float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-float64(want[i])))
	}
	return gap{diff, maxAbs(want)}
}

// rel is the gap relative to the tensor's scale floored at floor.
func (g gap) rel(floor float64) float64 {
	if scale := math.Max(g.scale, floor); scale > 0 {
		return g.diff / scale
	}
	return g.diff
}

// errorsOf turns the gaps of the input's gradient (index 0) and the
// parameters' (named params) into errors: the input's relative to its
// largest value, the parameters' relative to their largest value floored
// at ParamFloor of the largest over all parameters.
func errorsOf(gaps []gap, params []string) Errors {
	var largest float64
	for _, g := range gaps[1:] {
		largest = max(largest, g.scale)
	}
	e := Errors{Input: gaps[0].rel(0), Params: make(map[string]float64, len(params))}
	for i, name := range params {
		e.Params[name] = gaps[i+1].rel(ParamFloor * largest)
	}
	return e
}

// ParamFloor bounds the scale of a parameter's error from below, as a
// fraction of the largest gradient over all parameters: a tensor whose
// PyTorch gradient is 1e-14 (a squeeze-and-excitation bias behind a
// saturated HardSigmoid) is rounding noise on both sides, and its error is
// measured against 1e-3 of the model's largest parameter gradient instead.
const ParamFloor = 1e-3

func maxAbs(v []float32) float64 {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// untie gives every initializer read through an Identity node its own
// copy: the exporter deduplicates initializers of equal value (zero
// biases, unit scales, including the ones it made by fusing BatchNorm into
// Conv), so that several parameters are Identity nodes reading one tensor,
// whose gradient is then the sum over all of them. torchvision's
// classifiers share no parameters, so each Identity is a parameter of its
// own.
func untie(g *og.Graph) {
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		src := g.Initializer(n.Input(0))
		if n.OpType != "Identity" || src == nil || len(n.Outputs) != 1 || g.Output(n.Outputs[0]) != nil {
			kept = append(kept, n)
			continue
		}
		t := src.Clone()
		t.Name = n.Outputs[0]
		g.Initializers = append(g.Initializers, t)
	}
	g.Nodes = kept
}

// RelErr returns max |got − want| / max(max |want|, floor), the absolute
// error when both are zero.
func RelErr(got, want []float32, floor float64) float64 { return measure(got, want).rel(floor) }

// ErrNoReference is returned by Dirs when no reference directory is found.
var ErrNoReference = errors.New("torchref: no reference directories")

// Dirs returns the subdirectories of root that hold a ref.json, sorted.
func Dirs(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "*", "ref.json"))
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("%w under %s", ErrNoReference, root)
	}
	dirs := make([]string, len(matches))
	for i, m := range matches {
		dirs[i] = filepath.Dir(m)
	}
	slices.Sort(dirs)
	return dirs, nil
}

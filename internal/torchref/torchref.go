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
// Parameters that the exporter folded away (a BatchNormalization fused into
// the preceding Conv in eval mode) have no initializer of their name and
// are not compared; [Result] counts the ones that are.
package torchref

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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
	// (onnxgraph.TrainableParams).
	Trainable int
	// Errors holds each compared parameter's error.
	Errors map[string]float64
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

// Check compares robust's gradients of the model in dir with PyTorch's.
func Check(env *ort.Env, dir string) (*Result, error) {
	ref, err := Load(dir)
	if err != nil {
		return nil, err
	}
	m, err := og.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	untie(m.Graph)
	res := &Result{Trainable: len(og.TrainableParams(m.Graph))}
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
		case name == ref.Input.Name:
		case m.Graph.Initializer(name) != nil:
			params = append(params, name)
		default:
			res.Missing++
		}
	}
	slices.Sort(params)
	wrt = append(wrt, params...)
	grads, err := og.Gradients(m, loss, wrt, nil)
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %w", dir, err)
	}
	data, err := og.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	sess, err := env.NewSession(data, []string{ref.Input.Name, labels}, grads)
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %w", dir, err)
	}
	defer sess.Close()
	x, err := ReadFloats(filepath.Join(dir, ref.Input.File), size(ref.Input.Shape))
	if err != nil {
		return nil, err
	}
	out, err := sess.RunTensors(&ort.Tensor{Shape: ref.Input.Shape, Data: x},
		&ort.Tensor{Shape: []int64{int64(len(ref.Labels))}, Data: ref.Labels})
	if err != nil {
		return nil, fmt.Errorf("torchref: %s: %w", dir, err)
	}
	type pair struct{ got, want []float32 }
	pairs := make([]pair, len(wrt))
	var largest float64 // over all parameter gradients
	for i, name := range wrt {
		want := ref.Grads[name]
		g, err := ReadFloats(filepath.Join(dir, want.File), size(want.Shape))
		if err != nil {
			return nil, err
		}
		got, ok := out[i].Data.([]float32)
		if !ok || len(got) != len(g) {
			return nil, fmt.Errorf("torchref: %s: gradient of %q has %d values, PyTorch's %d", dir, name, len(got), len(g))
		}
		pairs[i] = pair{got, g}
		if i > 0 {
			largest = max(largest, maxAbs(g))
		}
	}
	res.InputErr = RelErr(pairs[0].got, pairs[0].want, 0)
	res.Errors = map[string]float64{}
	for i, p := range pairs[1:] {
		res.Params++
		e := RelErr(p.got, p.want, ParamFloor*largest)
		res.Errors[params[i]] = e
		if e >= res.ParamErr {
			res.ParamErr, res.WorstParam = e, params[i]
		}
	}
	return res, nil
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
func RelErr(got, want []float32, floor float64) float64 {
	var diff float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-float64(want[i])))
	}
	scale := math.Max(maxAbs(want), floor)
	if scale == 0 {
		return diff
	}
	return diff / scale
}

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

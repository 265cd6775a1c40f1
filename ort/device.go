package ort

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceKind says what kind of processor runs a session.
type DeviceKind int

// Device kinds.
const (
	DeviceCPU DeviceKind = iota
	DeviceCUDA
)

// Device is where sessions run: the CPU, or one CUDA GPU.
type Device struct {
	Kind DeviceKind
	// ID is the CUDA device index; always 0 for the CPU.
	ID int
}

// String returns the device in the form [ParseDevice] reads: "cpu" or
// "cuda:N".
func (d Device) String() string {
	if d.Kind == DeviceCUDA {
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return "cpu"
}

// ParseDevice parses "cpu", "cuda" (GPU 0) or "cuda:N" with N a decimal
// GPU index. Anything else, including upper case and spaces, is an error.
func ParseDevice(s string) (Device, error) {
	switch s {
	case "cpu":
		return Device{Kind: DeviceCPU}, nil
	case "cuda":
		return Device{Kind: DeviceCUDA}, nil
	case "":
		return Device{}, fmt.Errorf(`ort: empty device: want "cpu", "cuda" or "cuda:N"`)
	}
	idx, ok := strings.CutPrefix(s, "cuda:")
	if !ok {
		return Device{}, fmt.Errorf(`ort: unknown device %q: want "cpu", "cuda" or "cuda:N"`, s)
	}
	if idx == "" || strings.TrimLeft(idx, "0123456789") != "" {
		return Device{}, fmt.Errorf("ort: bad device %q: the GPU index %q is not a non-negative decimal integer", s, idx)
	}
	id, err := strconv.Atoi(idx)
	if err != nil {
		return Device{}, fmt.Errorf("ort: bad device %q: GPU index: %w", s, err)
	}
	return Device{Kind: DeviceCUDA, ID: id}, nil
}

// CUDAOptions are the CUDA execution provider settings that matter for
// training and attacking (every session runs forward and backward graphs
// over fixed-shape minibatches, many times). They are applied in one place,
// [CUDAOptions.ProviderOptions], to every session of an Env on a CUDA
// device. The zero value means the defaults below.
//
// The GPU path is not exercised by the project's CI (no GPU there): these
// names and values are ONNX Runtime's documented CUDA provider options.
type CUDAOptions struct {
	// ConvAlgoSearch is how cuDNN picks convolution algorithms:
	// "EXHAUSTIVE" (the default here: benchmark every algorithm once per
	// shape, worth it when the same shapes run thousands of times),
	// "HEURISTIC" or "DEFAULT".
	ConvAlgoSearch string
	// ArenaExtend is how the device memory arena grows: "kSameAsRequested"
	// (the default here: minibatch shapes repeat, so the arena reaches its
	// size in the first steps without the power-of-two overshoot) or
	// "kNextPowerOfTwo" (ONNX Runtime's default).
	ArenaExtend string
	// MemLimit caps the arena in bytes; 0 means no limit.
	MemLimit int64
	// NoMaxWorkspace: by default cuDNN may use as much workspace memory
	// as the fastest convolution algorithm wants
	// (cudnn_conv_use_max_workspace, ONNX Runtime's default since 1.14);
	// NoMaxWorkspace turns that off, saving memory at some speed.
	NoMaxWorkspace bool
}

// ProviderOptions returns the CUDA provider options for device id, as
// ONNX Runtime's OrtCUDAProviderOptionsV2 keys and values. It fails on an
// unknown ConvAlgoSearch or ArenaExtend value.
//
// Input and output copies: robust keeps its tensors in host memory and
// ONNX Runtime copies inputs to the device on every run (IO binding, which
// would keep the weights on the device between training steps, is not
// used yet; see docs/data-parallel.md for where it fits).
func (o CUDAOptions) ProviderOptions(id int) (map[string]string, error) {
	algo := o.ConvAlgoSearch
	if algo == "" {
		algo = "EXHAUSTIVE"
	}
	if algo != "EXHAUSTIVE" && algo != "HEURISTIC" && algo != "DEFAULT" {
		return nil, fmt.Errorf("ort: cuDNN convolution algorithm search %q: want EXHAUSTIVE, HEURISTIC or DEFAULT", algo)
	}
	arena := o.ArenaExtend
	if arena == "" {
		arena = "kSameAsRequested"
	}
	if arena != "kSameAsRequested" && arena != "kNextPowerOfTwo" {
		return nil, fmt.Errorf("ort: arena extend strategy %q: want kSameAsRequested or kNextPowerOfTwo", arena)
	}
	if id < 0 {
		return nil, fmt.Errorf("ort: negative CUDA device id %d", id)
	}
	if o.MemLimit < 0 {
		return nil, fmt.Errorf("ort: negative CUDA memory limit %d", o.MemLimit)
	}
	opts := map[string]string{
		"device_id":                    strconv.Itoa(id),
		"cudnn_conv_algo_search":       algo,
		"arena_extend_strategy":        arena,
		"do_copy_in_default_stream":    "1",
		"cudnn_conv_use_max_workspace": "1",
		// TF32 matrix products would make GPU results differ from the
		// CPU's in the 4th digit: attacks' verdicts should not depend on
		// the device.
		"use_tf32": "0",
	}
	if o.NoMaxWorkspace {
		opts["cudnn_conv_use_max_workspace"] = "0"
	}
	if o.MemLimit > 0 {
		opts["gpu_mem_limit"] = strconv.FormatInt(o.MemLimit, 10)
	}
	return opts, nil
}

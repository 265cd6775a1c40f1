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

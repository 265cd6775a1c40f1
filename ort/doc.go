// Package ort is robust's ONNX Runtime layer.
//
// It finds and loads the ONNX Runtime shared library (see [FindLibrary] and
// scripts/setup-ort.sh), initialises the runtime once per process ([Init]),
// and runs ONNX models through sessions ([Env.NewSession], [Session.Run]).
//
// Tensors handed to ONNX Runtime are [Value]s. A [TensorValue] shares its
// data with ONNX Runtime: inputs are read from, and pre-allocated outputs are
// written to, the Go slice returned by [TensorValue.Data], without copies.
// The hot path of a training loop therefore creates its input and output
// values once and calls [Session.Run] with them at every step. [Tensor] and
// [Session.RunTensors] are a simpler, allocating convenience for one-off runs.
//
// Every Value and Session must be closed when no longer needed. The loaded
// runtime itself stays loaded for the life of the process.
package ort

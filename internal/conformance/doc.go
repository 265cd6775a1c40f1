// Package conformance holds robust's conformance tests against ONNX's own
// operator test models (Debian package libonnx-testdata): each node test is
// a one-operator model with input and expected output tensors, which the
// tests run through ONNX Runtime via package ort.
package conformance

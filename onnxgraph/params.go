package onnxgraph

// TrainableParams returns the float initializers a training graph trains by
// default: weights and biases of Conv, ConvTranspose and Gemm, MatMul
// operands, BatchNormalization scales and biases and PRelu slopes, in order
// of first use. Initializers read through Identity nodes are not included
// (see package harden, which unties them first).
func TrainableParams(g *Graph) []string { return defaultParams(g) }

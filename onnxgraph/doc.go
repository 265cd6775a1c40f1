// Package onnxgraph is robust's ONNX layer and its reverse-mode autodiff.
//
// It reads and writes ONNX models (ModelProto, IR 8+, with initializers
// stored inline as raw data or in external data files), holds them in a small
// mutable graph IR (nodes, named values, initializers, inputs and outputs),
// validates and topologically sorts graphs, infers static shapes with a
// symbolic batch dimension, and offers a Builder to define graphs in Go that
// serialise to valid opset-17 ONNX.
//
// [Gradients] appends to a graph the nodes that compute the gradient of a
// scalar value with respect to inputs, initializers or intermediate values.
// The backward nodes are standard ONNX operators only, so the result runs on
// any ONNX runtime. What robust knows about each operator - its shape rule,
// its gradient rule or that no gradient flows through it, which inputs are
// trainable parameters and get weight decay, how to bring it from an older
// opset - is one entry of the operator table (the ops_*.go files, one per
// family); [GradientOps], [TrainableParams], [WeightDecayed],
// [IsStandardOp] and [IsQuantizedOp] read it.
//
// It also differentiates them: [Gradients] appends to a graph the nodes that
// compute the gradient of a scalar loss with respect to chosen values
// (parameters, the input, intermediate values), made of standard ONNX
// operators only, so that any ONNX Runtime build runs the backward pass.
// The training and input-gradient graphs that packages train and attacks
// run, with their loss heads, are built from these pieces by package
// onnxgraph/traingraph; onnxgraph knows nothing of losses or labels.
// docs/design.md in the repository explains why and lists the gradient
// formulations.
//
// The IR is deliberately thin: a Model converts to and from the protobuf
// schema without loss for everything robust reads or changes (graphs,
// tensors, attributes, metadata); parts it never touches (functions,
// training info, sparse initializers, non-tensor value types) are carried
// through unchanged as their protobuf messages.
package onnxgraph

// Package onnxgraph is robust's ONNX layer: it reads and writes ONNX models
// (ModelProto, IR 8+, with initializers stored inline as raw data or in
// external data files), holds them in a small mutable graph IR (nodes, named
// values, initializers, inputs and outputs), validates and topologically sorts
// graphs, infers static shapes for the CNN operator set with a symbolic batch
// dimension, and offers a Builder to define graphs in Go that serialise to
// valid opset-17 ONNX.
//
// The IR is deliberately thin: a Model converts to and from the protobuf
// schema without loss for everything robust reads or changes (graphs,
// tensors, attributes, metadata); parts it never touches (functions,
// training info, sparse initializers, non-tensor value types) are carried
// through unchanged as their protobuf messages.
package onnxgraph

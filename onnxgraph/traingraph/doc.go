// Package traingraph builds, from a classifier's ONNX graph, the graphs
// that training and attacks run: a loss head on the logits ([AddLoss], with
// the softmax cross-entropy [CrossEntropyHead] by default and [LossBuilder]
// for other heads, such as package attacks' CW margin and DLR), a training
// graph computing the loss, the gradients of every trainable parameter and
// of the input and the updated BatchNormalization statistics in one run
// ([BuildTrainingGraph]), and an input-gradient graph for a frozen
// classifier ([BuildInputGradientGraph]).
//
// It is built on package onnxgraph's IR, builder and autodiff
// (onnxgraph.Gradients); onnxgraph itself knows nothing of losses, labels or
// training.
package traingraph

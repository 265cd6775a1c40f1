// Package harden makes an existing ONNX classifier — one exported by PyTorch,
// tf2onnx or Keras, without its training code — trainable, so that robust can
// fine-tune it with free adversarial training and write back a drop-in
// replacement: the same inputs, outputs, opset, pre- and post-processing,
// with only parameter values (and BatchNormalization running statistics)
// changed.
//
// Prepare turns the model into a trainable form: Constant nodes become
// initializers, parameters that the exporter tied together by value (PyTorch
// deduplicates equal initializers and reads the copies through Identity
// nodes) are untied, normalisation is prepended for models that expect
// normalised input, and it checks before any training that the model can be
// trained at all (float parameters, no integer quantisation, a gradient rule
// for every operator on the path from the input to the logits). Export writes
// the trained values back into a copy of the original model.
package harden

// Package train trains ONNX classifiers, naturally or adversarially, by
// running a training graph (forward, loss, and gradients for the parameters
// and the input, built by onnxgraph's autodiff) in ONNX Runtime and updating
// the parameters with SGD in Go.
//
// Four methods share one loop ([Trainer.Run]):
//
//   - natural: plain empirical risk minimisation;
//   - free (Shafahi et al., 2019): each minibatch is replayed m times. A
//     perturbation δ of the minibatch's shape starts at zero and is never
//     reset: it carries across replays, minibatches and passes (a short last
//     minibatch uses δ's leading rows). Each replay feeds clamp(x+δ, 0, 1),
//     and its one backward pass gives both the weight gradient, for an SGD
//     step, and ∂loss/∂δ, for δ ← clip(δ + ε·sign(∂loss/∂δ), −ε, ε). As in
//     the reference code's automatic differentiation, ∂loss/∂δ is zero where
//     the clamp is active. Epochs count epoch-equivalents: free training
//     makes ⌈epochs/m⌉ passes, and the learning-rate schedule counts replays;
//   - pgd (Madry et al., 2018): k steps of size α from a uniformly random
//     start, each projected onto the ε-ball and [0,1], then a weight step on
//     the adversarial batch;
//   - fast (Wong et al., 2020): the same with one step of 1.25ε from the
//     uniform start. After every pass, PGD-5 (α = ε/4) on the pass's first
//     minibatch checks for catastrophic overfitting: if its accuracy drops by
//     more than 0.2 from the previous pass's, training stops and keeps the
//     previous pass's weights.
//
// Batch normalisation uses batch statistics whenever the training graph
// runs, the attack steps of PGD and fast training included, as in Madry et
// al.'s and Wong et al.'s code (their models stay in training mode while
// crafting). Only the weight-update pass updates the running statistics
// (PyTorch would update them at every attack step too), so that they
// describe the batches the weights are trained on. Running statistics
// follow PyTorch's convention (unbiased variance), as the zoo's models are
// PyTorch's. Weight decay applies to Conv, Gemm and MatMul weights, not to
// biases or normalisation parameters, unless Config.DecayAll is set.
//
// The training graph runs in ONNX Runtime sessions whose inputs and outputs
// are allocated once: parameters are graph inputs whose tensor memory is the
// [Param]'s Data, gradients are written straight into each Param's Grad, and
// the running statistics alternate between two tensor sets. Each kind of run
// (weight gradients; weight and input gradients; input gradients only) uses
// a copy of the graph pruned to what it needs, so natural training never
// computes the input gradient.
//
// After every pass the current weights are exported in eval form and
// measured on a held-out set: clean accuracy and PGD accuracy (package
// attacks). Runs checkpoint atomically (weights, momentum, running
// statistics, δ, RNG state, data position, counters and the pass history),
// resume exactly — the final weights are bitwise those of an uninterrupted
// run — stop cleanly when their context is cancelled, stop with a
// [*DivergedError] at a non-finite loss while keeping the last good
// checkpoint, and export a plain inference ONNX model ([Trainer.Model]).
//
// A run draws nothing: it reports its progress through
// [RunOptions].Progress callbacks (a [Progress] after every weight update
// and at the end of every pass) and logs one JSON object per event to
// [RunOptions].Log. [ReadLog] reads such a log back and
// [RunLog.WriteCurves] draws it (loss, accuracies, learning rate) as PNG,
// SVG or PDF. docs/design.md §3 in the repository describes the
// algorithms as implemented.
package train

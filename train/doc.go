// Package train trains ONNX classifiers, naturally or adversarially, by
// running a training graph (forward, loss, and gradients for the parameters
// and the input, built by onnxgraph's autodiff) in ONNX Runtime and updating
// the parameters with SGD in Go.
//
// Four methods share one loop:
//
//   - natural: plain empirical risk minimisation;
//   - free (Shafahi et al., 2019): each minibatch is replayed m times, and
//     the one backward pass of each replay gives both the weight gradient
//     and the input gradient that moves the persistent perturbation δ;
//   - pgd: k steps of projected gradient ascent per minibatch, then a weight
//     step on the adversarial batch (Madry et al., 2018);
//   - fast: FGSM from a uniform random start with α = 1.25ε, with the
//     catastrophic-overfitting check of Wong et al. (2020).
//
// Runs checkpoint atomically (weights, optimizer state, δ, RNG and data
// position), resume exactly, stop cleanly on SIGINT, and export a plain
// inference ONNX model.
package train

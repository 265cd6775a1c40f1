// Package attacks crafts adversarial examples against image classifiers.
//
// Every attack is a function of a [Model], a batch of clean images x (NCHW
// float32 in [0,1]), their labels y, a [Budget] and a random source, and
// returns a [Result]: the adversarial images, which of them fool the model
// and how many model evaluations it took. Attacks follow the conventions of
// AutoAttack and RobustBench:
//
//   - the threat model is an L∞ or L2 ball of radius Budget.Eps around each
//     clean image, intersected with the box [0,1];
//   - attacks are untargeted (any wrong class counts) unless Budget.Targets
//     names a target class per sample;
//   - each sample stops as soon as it is misclassified (per-sample early
//     stop), and the batch shrinks to the samples still standing, so
//     attacking a non-robust model is cheap;
//   - restarts keep the per-sample worst case: a sample counts as broken if
//     any restart breaks it;
//   - every adversarial example is checked against its ε-ball and [0,1]
//     before it is counted as a success ([WithinBudget]).
//
// The attacks are, one per file: [FGSM] (fast gradient sign / fast gradient
// method), [PGD] (projected gradient descent with random start and
// restarts, cross-entropy, CW-margin or DLR loss), [APGD] (the step-size-free
// Auto-PGD of Croce & Hein 2020, with the CE or DLR loss) and [Square] (the
// score-based black-box Square attack of Andriushchenko et al. 2020, which
// needs no gradients and so exposes gradient masking).
//
// [ONNXModel] adapts an ONNX classifier: it runs the model itself for
// logits and, built on demand, an input-gradient graph per loss
// (onnxgraph.BuildInputGradientGraph, or this package's DLR graph), with
// pre-allocated zero-copy ONNX Runtime tensors cached per batch size so that
// an attack step allocates nothing.
package attacks

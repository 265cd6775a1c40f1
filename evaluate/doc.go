// Package evaluate measures how robust a classifier is: it runs a suite of
// attacks over a data set at one or more budgets ε and reports clean and
// robust accuracy with 95% confidence intervals, perturbation norms,
// throughput and sanity flags, as JSON, Markdown, JUnit, a terminal table
// or a robustness-vs-ε curve (PNG, SVG or PDF, drawn with gonum/plot), and
// checks CI gates against it. [WriteGrid] draws adversarial examples next
// to the clean images.
//
// [Run] evaluates a [dataset.Dataset]; [RunTensor] and [AttackTensor] take
// images a Go program holds in memory as gorgonia.org/tensor tensors (NCHW
// float32 in [0,1]) with their labels. Models are [attacks.Model]s: an
// ONNX classifier becomes one with [Prepare] and [attacks.NewONNXModel].
// Progress is reported through [Config].Progress; the package draws
// nothing on the terminal.
//
// Conventions follow AutoAttack and RobustBench (docs/design.md §4 in the
// repository): inputs in [0,1] with normalisation inside the model
// ([Prepare] prepends it, fixes NHWC layouts and input ranges, and detects
// softmax outputs); a sample is robust only if it survives every attack
// of the suite, every restart included; by default later attacks run only
// on the samples still robust (cascade mode), and every adversarial
// example is checked against its ε-ball and [0,1], and re-run through the
// model, before it is counted.
//
// The sanity checks flag the usual signs of a broken evaluation: zero or
// NaN input gradients, softmax outputs, non-deterministic outputs, a
// black-box attack (Square) stronger than the white-box ones, and
// accuracy that does not fall towards zero as ε grows — all symptoms of
// gradient masking.
package evaluate

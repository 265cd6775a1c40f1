// Package evaluate measures how robust a classifier is: it runs a suite of
// attacks over a data set at one or more budgets ε and reports clean and
// robust accuracy with 95% confidence intervals, perturbation norms,
// throughput and sanity flags, as JSON, Markdown, JUnit, a terminal table
// or a robustness-vs-ε curve (PNG), and checks CI gates against it.
//
// Conventions follow AutoAttack and RobustBench (see the project's
// DESIGN.md §4): inputs in [0,1] with normalisation inside the model
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

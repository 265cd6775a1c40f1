// Package attacks crafts adversarial examples against image classifiers.
//
// An attack is a value of a settings struct ([FGSM], [PGD], [APGD] with
// L1-APGD and EoT, [APGDTargeted], [FAB] and FAB-T, [Square]) that
// implements [Attack]: a name, a
// description and Run(ctx, model, x, y, threat, rng), where x holds clean
// images (NCHW float32 in [0,1]), y their labels and threat the
// [ThreatModel] (norm and ε) given at call time, as in Foolbox 3. Zero
// settings mean the published defaults. Run returns a [Result]: the
// adversarial images, which of them fool the model and how many model
// evaluations it took. Attacks follow the conventions of AutoAttack and
// RobustBench:
//
//   - the threat model is an L∞, L2 or L1 ball of radius ε around each
//     clean image, intersected with the box [0,1];
//   - attacks are untargeted (any wrong class counts) unless their Targets
//     setting names a target class per sample;
//   - each sample stops as soon as it is misclassified (per-sample early
//     stop), and the batch shrinks to the samples still standing, so
//     attacking a non-robust model is cheap;
//   - restarts keep the per-sample worst case: a sample counts as broken if
//     any restart breaks it;
//   - every adversarial example is checked against its ball and [0,1]
//     before it is counted as a success ([ThreatModel.Contains]).
//
// Minimum-norm search: [FAB.Minimize] returns each sample's smallest
// adversarial perturbation found, and [EpsSearch] refines it by bisection
// with APGD ([APGD.RunEach] takes a radius per sample).
//
// The package owns the attack losses ([Loss]: cross-entropy, CW margin,
// DLR, targeted DLR and the logit difference: names, targets, class
// requirements) and the heads that build their graphs ([CWMarginHead],
// [DLRHead], [TargetedDLRHead], [LogitDiffHead]; traingraph.HeadFunc). [Model] is what attacks need of a classifier: logits, and the
// logits, losses and input gradient of a loss ([Model.Grad]).
// [ONNXModel] adapts an ONNX classifier: it runs the model itself for
// logits and, built on demand, an input-gradient graph per loss
// (traingraph.BuildInputGradientGraph), with pre-allocated zero-copy ONNX
// Runtime tensors cached per batch size so that an attack step allocates
// nothing.
package attacks

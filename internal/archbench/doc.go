// Package archbench holds robust's evaluation-speed benchmarks on real
// architectures (torchvision ResNet-18/50, MobileNetV2, EfficientNet-B0 with
// random weights) against the same attack written in PyTorch, and a profile
// dump of the input-gradient graphs they run. It has no API; see the
// benchmark file for how to run it (make bench-archs).
package archbench

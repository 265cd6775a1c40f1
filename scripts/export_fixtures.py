#!/usr/bin/python3
"""Export the PyTorch-made ONNX fixtures of robust's hardening tests.

Run once with Debian's python3-torch (1.13); the .onnx files are committed,
torch is not needed in CI:

    /usr/bin/python3 scripts/export_fixtures.py harden/testdata

Models (28x28 grey images, 10 classes, untrained: robust trains them):
  torch_resnetish.onnx   normalisation inside (Sub/Div), Conv+BN(eval)+ReLU, residual Add,
                         MaxPool, Dropout, GlobalAveragePool, x.view(x.size(0), -1)
                         (Shape/Gather/Unsqueeze/Concat/Reshape), Linear (Gemm transB=1)
  torch_tied.onnx        the same untrained network with default BN values: the exporter
                         deduplicates equal initializers (all-ones BN scales and running
                         variances become one tensor read through Identity nodes), which
                         robust must untie before training
  torch_normalized_input.onnx  expects normalised input (mean 0.286, std 0.353): robust
                         must be told --mean/--std; Conv+BN folded by the exporter's
                         constant folding, Flatten, two Linear layers
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.2860]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.3530]).view(1, 1, 1, 1))
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        h = F.relu(self.bn1(self.conv1(x)))
        h = h + F.relu(self.bn2(self.conv2(h)))  # residual Add
        h = F.max_pool2d(h, 2)                    # 14x14
        h = F.relu(self.conv3(h))                 # 7x7
        h = F.adaptive_avg_pool2d(h, 1)           # GlobalAveragePool
        h = h.view(h.size(0), -1)                 # Shape/Gather/Unsqueeze/Concat/Reshape
        return self.fc(self.drop(h))


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 14 * 14, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(x)))
        return self.fc2(F.relu(self.fc1(torch.flatten(h, 1))))


def pretrained_like(model):
    """Give BatchNorm layers the distinct values a trained network has."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


def export(model, path, fold):
    torch.manual_seed(0)
    model.eval()
    x = torch.rand(2, 1, 28, 28)
    torch.onnx.export(model, x, path, input_names=["image"], output_names=["scores"],
                      dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=13, do_constant_folding=fold,
                      training=torch.onnx.TrainingMode.PRESERVE if not fold else torch.onnx.TrainingMode.EVAL)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "harden/testdata"
    torch.manual_seed(0)
    export(pretrained_like(ResNetish()), f"{out}/torch_resnetish.onnx", fold=False)
    torch.manual_seed(0)
    export(ResNetish(), f"{out}/torch_tied.onnx", fold=False)
    torch.manual_seed(1)
    export(pretrained_like(Plain()), f"{out}/torch_normalized_input.onnx", fold=True)


if __name__ == "__main__":
    main()

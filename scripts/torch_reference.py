#!/usr/bin/python3
"""PyTorch reference timings for robust's benchmarks (Debian python3-torch 1.13).

Prints one JSON object per line: {"bench": NAME, "seconds": S, ...}.
Benchmarks (same shapes, threads and work as robust's Go benchmarks):
  train-small-cnn      forward+backward+SGD step, small-cnn, batch 128, 28x28x1
  train-preact-resnet18  same, PreAct-ResNet18, batch 128, 32x32x3
  pgd20-small-cnn      PGD-20 (L-inf, eps 0.1, alpha eps/4, random start) over N images, batch 128

Usage: torch_reference.py [--threads 2] [--steps 20] [--n 1000] [--only NAME]
Only robust's benchmarks call it; nothing in robust itself depends on PyTorch.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 100), nn.ReLU(), nn.Linear(100, 10))


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        sc = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + sc


class PreActResNet18(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, classes)

    def forward(self, x):
        out = self.layers(self.conv1(x))
        out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def time_train(model, shape, steps, batch=128):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def time_pgd(model, n, steps=20, eps=0.1, batch=128):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x_all = torch.rand(n, 1, 28, 28)
    y_all = torch.randint(0, 10, (n,))
    alpha = eps / 4
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        x, y = x_all[i:i + batch], y_all[i:i + batch]
        delta = (torch.rand_like(x) * 2 - 1) * eps
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y, reduction="sum")
            g, = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
            delta = (x + delta).clamp(0, 1) - x
        with torch.no_grad():
            model(x + delta).argmax(1)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    runs = {
        "train-small-cnn": lambda: time_train(small_cnn(), (1, 28, 28), a.steps),
        "train-preact-resnet18": lambda: time_train(PreActResNet18(), (3, 32, 32), max(3, a.steps // 4)),
        "pgd20-small-cnn": lambda: time_pgd(small_cnn(), a.n),
    }
    for name, fn in runs.items():
        if a.only and name != a.only:
            continue
        s = fn()
        print(json.dumps({"bench": name, "seconds": s, "threads": a.threads, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Real-architecture models and PyTorch attack timings for robust's BenchmarkArchs.

Two commands (Debian python3-torch 1.13, python3-torchvision 0.14):

  archs_bench.py export --arch resnet18 --size 64 --out DIR
      Builds the torchvision model with random weights (seed 0, eval mode,
      10 classes) and exports it to DIR/resnet18-64.onnx (opset 17, symbolic
      batch). Nothing is downloaded. Prints {"onnx": PATH}. With --keep-bn the
      export keeps BatchNormalization nodes unfused (and the exporter's
      Identity nodes), as a model saved from training looks, into
      DIR/resnet18-bn-64.onnx.

  archs_bench.py pgd --arch resnet18 --size 64 --batch 64 --steps 10 --reps 2
      Times PGD-k (L-inf, eps 8/255, alpha eps/4, random start, summed
      cross-entropy) on the same model and input shape, with --threads intra-op
      threads, after one warm-up attack. Prints one JSON object:
      {"arch", "size", "batch", "steps", "seconds_per_attack", "images_per_second"}.

  archs_bench.py apgd ...   the same for APGD-CE (steps iterations, one restart,
      the whole batch throughout; robust's BenchmarkArchsAPGD runs the same loop).
  archs_bench.py fwd ...    steps forward passes only (no_grad): the roofline
      reference of the attack.

  archs_bench.py conv --conv CIN,COUT,H,K,S,P --batch 64 --reps 5
      Times one forward convolution of that shape: {"conv", "batch", "seconds"}
      (robust's BenchmarkLayers compares ONNX Runtime's Conv on the same shape).

Only robust's benchmarks call it; nothing in robust itself depends on PyTorch.
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
import torchvision

ARCHS = {
    "resnet18": lambda size: torchvision.models.resnet18(num_classes=10),
    "resnet50": lambda size: torchvision.models.resnet50(num_classes=10),
    "mobilenet_v2": lambda size: torchvision.models.mobilenet_v2(num_classes=10),
    "efficientnet_b0": lambda size: torchvision.models.efficientnet_b0(num_classes=10),
    "vit_b_16": lambda size: torchvision.models.vit_b_16(num_classes=10, image_size=size),
    "vit_b_32": lambda size: torchvision.models.vit_b_32(num_classes=10, image_size=size),
}


def build(arch, size, freeze=True):
    torch.manual_seed(0)
    m = ARCHS[arch](size)
    m.eval()
    # Exporting keeps requires_grad: PyTorch's fused inference attention,
    # taken when no weight requires a gradient, has no ONNX export.
    for p in m.parameters():
        p.requires_grad_(not freeze)
    return m


def export(args):
    m = build(args.arch, args.size, freeze=False)
    os.makedirs(args.out, exist_ok=True)
    name = args.arch + ("-bn" if args.keep_bn else "")
    path = os.path.join(args.out, "%s-%d.onnx" % (name, args.size))
    tmp = path + ".tmp"
    x = torch.rand(1, 3, args.size, args.size)
    extra = {}
    if args.keep_bn:
        extra = dict(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    torch.onnx.export(m, x, tmp, opset_version=17, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **extra)
    os.replace(tmp, path)
    print(json.dumps({"onnx": path}))


def pgd(model, x, y, eps, alpha, steps):
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        g, = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + alpha * g.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def apgd(model, x, y, eps, steps):
    """APGD-CE (L-inf, one restart, the whole batch throughout) with the steps of
    robust's attacks.APGD and Croce & Hein's reference: step size 2*eps halved at
    checkpoints, momentum 0.75. Returns the best points."""
    n = x.shape[0]
    view = (n, 1, 1, 1)

    def loss_grad(adv):
        adv = adv.clone().requires_grad_(True)
        losses = F.cross_entropy(model(adv), y, reduction="none")
        g, = torch.autograd.grad(losses.sum(), adv)
        return losses.detach(), g.detach()

    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    loss, grad = loss_grad(adv)
    best, grad_best = adv.clone(), grad.clone()
    old = adv.clone()
    eta = torch.full((n,), 2 * eps)
    loss_prev, loss_best, loss_check = loss.clone(), loss.clone(), loss.clone()
    rises = torch.zeros(n)
    reduced = torch.zeros(n, dtype=torch.bool)
    interval, decr, min_interval = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    since = 0
    for i in range(steps):
        mom = 1.0 if i == 0 else 0.75
        with torch.no_grad():
            z = adv + eta.view(view) * grad.sign()
            z = torch.min(torch.max(z, x - eps), x + eps).clamp(0, 1)
            z = adv + mom * (z - adv) + (1 - mom) * (adv - old)
            z = torch.min(torch.max(z, x - eps), x + eps).clamp(0, 1)
            old, adv = adv, z
        loss, grad = loss_grad(adv)
        rises += (loss > loss_prev).float()
        loss_prev = loss
        up = loss > loss_best
        loss_best = torch.where(up, loss, loss_best)
        best[up], grad_best[up] = adv[up], grad[up]
        since += 1
        if since < interval:
            continue
        reduce = (rises <= 0.75 * interval) | (~reduced & (loss_check >= loss_best))
        reduced, loss_check, rises = reduce, loss_best.clone(), torch.zeros(n)
        eta = torch.where(reduce, eta / 2, eta)
        adv = torch.where(reduce.view(view), best, adv)
        grad = torch.where(reduce.view(view), grad_best, grad)
        interval, since = max(interval - decr, min_interval), 0
    return best


def forward(model, x, steps):
    with torch.no_grad():
        for _ in range(steps):
            model(x)


def time_conv(args):
    """Times one forward Conv2d (batch, cin, h, h) -> cout with a k x k kernel,
    stride s, pad p (--conv cin,cout,h,k,s,p) under no_grad, after a warm-up."""
    torch.set_num_threads(args.threads)
    cin, cout, h, k, s, p = (int(v) for v in args.conv.split(","))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(args.batch, cin, h, h, generator=g)
    w = torch.rand(cout, cin, k, k, generator=g) - 0.5
    with torch.no_grad():
        F.conv2d(x, w, stride=s, padding=p)
        start = time.perf_counter()
        for _ in range(args.reps):
            F.conv2d(x, w, stride=s, padding=p)
    sec = (time.perf_counter() - start) / args.reps
    print(json.dumps({"conv": args.conv, "batch": args.batch, "seconds": sec}))


def time_pgd(args):
    torch.set_num_threads(args.threads)
    m = build(args.arch, args.size)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    eps = 8 / 255
    run = {
        "pgd": lambda steps: pgd(m, x, y, eps, eps / 4, steps),
        "apgd": lambda steps: apgd(m, x, y, eps, steps),
        "fwd": lambda steps: forward(m, x, steps),
    }[args.command]
    run(1)  # warm-up
    start = time.perf_counter()
    for _ in range(args.reps):
        run(args.steps)
    sec = (time.perf_counter() - start) / args.reps
    print(json.dumps({"arch": args.arch, "size": args.size, "batch": args.batch, "steps": args.steps,
                      "seconds_per_attack": sec, "images_per_second": args.batch / sec}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["export", "pgd", "apgd", "fwd", "conv"])
    p.add_argument("--arch", choices=sorted(ARCHS))
    p.add_argument("--conv", help="cin,cout,h,k,s,p for the conv command")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out", default=".")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keep-bn", action="store_true")
    args = p.parse_args()
    if args.command == "conv":
        time_conv(args)
        return
    if args.arch is None:
        p.error("--arch is required")
    if args.command == "export":
        export(args)
    else:
        time_pgd(args)


if __name__ == "__main__":
    main()

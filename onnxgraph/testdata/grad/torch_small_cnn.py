"""PyTorch baseline for BenchmarkSmallCNNTrainStep (onnxgraph).

Times one training step of the same small CNN (forward, mean cross-entropy,
backward to every parameter and, with --input-grad, to the input, plain SGD
update) on a batch of 128 with the CPU thread count given (default 2).

    python3 onnxgraph/testdata/grad/torch_small_cnn.py [--threads 2] [--input-grad]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--input-grad", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.rand(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))

    def step():
        xi = x.clone().requires_grad_(args.input_grad)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xi), y)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"torch {torch.__version__} threads={args.threads} input_grad={args.input_grad}: "
          f"median {1e3 * times[len(times) // 2]:.2f} ms/step, mean {1e3 * sum(times) / len(times):.2f} ms/step")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch peer of bench_train's train_step cases: one training step of the "mini" or "alexnet"
AlexNet preset (forward, CrossEntropyLoss, backward, SGD with momentum 0.9 and weight decay
5e-4) on a fixed random batch, timed in real time after warm-up steps; prints the median and
the range of the timed steps.

The layer list is examples/models.cpp's: conv1 -> ReLU -> LocalResponseNorm(5, 1e-4, 0.75, 2)
-> MaxPool(3, 2) -> conv2 (5x5, groups 2) -> ReLU -> LRN -> MaxPool -> conv3 (3x3) -> ReLU ->
conv4 (groups 2) -> ReLU -> conv5 (groups 2) -> ReLU -> MaxPool -> Flatten -> Linear -> ReLU ->
Linear -> ReLU -> Linear (dropout 0). --no-lrn puts Identity in place of both LRNs, as
bench_train's train_step_no_lrn.

usage: /usr/bin/python3 bench/peers/torch_train_step.py mini 64 [--threads 2] [--steps 20] [--no-lrn]
       /usr/bin/python3 bench/peers/torch_train_step.py alexnet 16
"""
import argparse
import statistics
import time

import torch
from torch import nn

# channels, side, c1, k1, s1, p1, c2, c3, c4, c5, hidden, final_side, classes
PRESETS = {
    "mini": (3, 64, 24, 5, 2, 2, 64, 96, 96, 64, 256, 3, 10),
    "alexnet": (3, 224, 96, 11, 4, 2, 256, 384, 384, 256, 4096, 6, 1000),
}


def model(preset, lrn=True):
    ch, _, c1, k1, s1, p1, c2, c3, c4, c5, hidden, side, classes = PRESETS[preset]
    norm = (lambda: nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)) if lrn else nn.Identity
    return nn.Sequential(
        nn.Conv2d(ch, c1, k1, stride=s1, padding=p1), nn.ReLU(), norm(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2, groups=2), nn.ReLU(), norm(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(c4, c5, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(c5 * side * side, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("batch", type=int)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    parser.add_argument("--no-lrn", dest="lrn", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net = model(args.preset, args.lrn)
    side, classes = PRESETS[args.preset][1], PRESETS[args.preset][12]
    x = torch.randn(args.batch, PRESETS[args.preset][0], side, side)
    y = torch.randint(0, classes, (args.batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = [1e3 * t for t in times]
    print(f"torch {torch.__version__}, {args.threads} threads, train_step{'' if args.lrn else '_no_lrn'}/"
          f"{args.preset}/{args.batch}: median {statistics.median(ms):.1f} ms (range {min(ms):.1f}-{max(ms):.1f}, "
          f"{args.steps} steps)")


if __name__ == "__main__":
    main()

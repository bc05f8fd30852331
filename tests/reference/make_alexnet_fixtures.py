"""Writes tests/fixtures/alexnet_mini/: PyTorch's reference for the "mini" AlexNet preset.

    /usr/bin/python3 tests/reference/make_alexnet_fixtures.py   (torch 1.13, numpy)

Contents:
  <key>.npy           every parameter as float32, named by its state_dict key ("0.weight.npy"):
                      the directory itself is a loadable checkpoint
  expected/input.npy  (4, 3, 64, 64) float32
  expected/labels.npy (4,) int64
  expected/logits.npy (4, 10) float64
  expected/loss.npy   () float64
  expected/grad.<key>.npy  every parameter's gradient, float32 (rounded from float64)

The expected values are computed in float64 (model.double() on the same float32 weights and
input), so they are the exact answer up to float64 rounding; the C++ test runs in float32.
The layer order is that of the benchmark peer script (parameter indices 0, 4, 8, 10, 12, 17,
20, 22); the dropout layers are present with p=0 so the comparison is deterministic.
"""
import copy
import os

import numpy as np
import torch
import torch.nn as nn


def mini(classes=10, dropout=0.0):
    return nn.Sequential(
        nn.Conv2d(3, 24, 5, stride=2, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(24, 64, 5, padding=2, groups=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 3 * 3, 256), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "alexnet_mini")
    expected = os.path.join(out, "expected")
    os.makedirs(expected, exist_ok=True)
    for d in (out, expected):
        for name in os.listdir(d):
            if name.endswith(".npy"):
                os.remove(os.path.join(d, name))

    torch.manual_seed(20240611)
    model = mini()
    # Inputs scaled so that the LRN term (alpha/n * sum x^2) is not negligible next to k.
    x = 3.0 * torch.randn(4, 3, 64, 64)
    labels = torch.randint(0, 10, (4,))

    for key, value in model.state_dict().items():
        np.save(os.path.join(out, key + ".npy"), value.numpy().astype(np.float32))
    np.save(os.path.join(expected, "input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(expected, "labels.npy"), labels.numpy().astype(np.int64))

    ref = copy.deepcopy(model).double()
    logits = ref(x.double())
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    np.save(os.path.join(expected, "logits.npy"), logits.detach().numpy())
    np.save(os.path.join(expected, "loss.npy"), np.array(loss.item(), dtype=np.float64))
    for key, p in ref.named_parameters():
        np.save(os.path.join(expected, "grad." + key + ".npy"), p.grad.numpy().astype(np.float32))
    print(f"wrote {out}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()

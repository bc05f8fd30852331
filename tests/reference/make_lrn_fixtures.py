"""Writes tests/fixtures/lrn/: PyTorch's LocalResponseNorm forward and input gradient.

    /usr/bin/python3 tests/reference/make_lrn_fixtures.py   (torch 1.13, numpy)

For each case <name> (all float64, computed by torch.nn.functional.local_response_norm and
autograd in float64):
  <name>.x.npy    the input
  <name>.dy.npy   the output gradient
  <name>.y.npy    the output
  <name>.dx.npy   the input gradient
and cases.txt lists one case a line: "name size alpha beta k". PyTorch has only the
across-channel mode. Inputs are scaled so that alpha/n * sum(x^2) is comparable to k and the
normalisation is far from the identity.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

# name, shape, size, alpha, beta, k, input scale
CASES = [
    ("alexnet_odd", (2, 7, 5, 4), 5, 1e-4, 0.75, 2.0, 60.0),
    ("even_size", (2, 6, 3, 5), 4, 0.3, 0.75, 1.0, 2.0),
    ("size_above_channels", (2, 3, 4, 3), 7, 0.5, 0.75, 1.0, 2.0),
    ("rank3", (3, 9, 11), 3, 1.0, 0.5, 0.5, 1.0),
    ("rank5", (2, 5, 3, 2, 4), 2, 0.2, 1.0, 1.0, 2.0),
    ("generic_beta", (1, 10, 6, 6), 5, 0.8, 0.6, 1.5, 1.5),
    ("long_window", (2, 20, 3, 3), 11, 1.0, 0.75, 0.1, 1.0),
    ("single_channel", (2, 1, 5, 5), 3, 2.0, 0.75, 1.0, 1.0),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "lrn")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".npy") or name == "cases.txt":
            os.remove(os.path.join(out, name))

    generator = torch.Generator().manual_seed(20240612)
    lines = []
    for name, shape, size, alpha, beta, k, scale in CASES:
        x = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale
        dy = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1
        x.requires_grad_(True)
        y = F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)
        (dx,) = torch.autograd.grad(y, x, dy)
        for suffix, value in (("x", x), ("dy", dy), ("y", y), ("dx", dx)):
            np.save(os.path.join(out, f"{name}.{suffix}.npy"), value.detach().numpy())
        lines.append(f"{name} {size} {alpha!r} {beta!r} {k!r}")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Writes tests/fixtures/batch_norm/: PyTorch's BatchNorm2d in training and in evaluation.

    /usr/bin/python3 tests/reference/make_batch_norm_fixtures.py   (torch 1.13, numpy)

For each case <name> (float64, torch.nn.BatchNorm2d with momentum 0.1 and eps 1e-5, its weight
and bias set to random values and its running estimates to random starting values):
  <name>.x.npy, <name>.dy.npy, <name>.weight.npy, <name>.bias.npy   the inputs
  <name>.running_mean0.npy, <name>.running_var0.npy                 the starting estimates
  <name>.y.npy, <name>.dx.npy, <name>.dweight.npy, <name>.dbias.npy  one training step
  <name>.running_mean.npy, <name>.running_var.npy                   the estimates after it
  <name>.y_eval.npy, <name>.dx_eval.npy                             eval() on the same x and dy
and cases.txt lists the names, one a line. Inputs have a per-channel offset and scale, so that
the normalisation is far from the identity.
"""
import os

import numpy as np
import torch

# name, shape
CASES = [
    ("small", (4, 3, 5, 5)),
    ("one_pixel", (6, 5, 1, 1)),
    ("one_image", (1, 2, 3, 4)),
    ("wide", (3, 17, 7, 7)),
]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "fixtures", "batch_norm")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith(".npy") or name == "cases.txt":
            os.remove(os.path.join(out, name))

    g = torch.Generator().manual_seed(20261203)
    rand = lambda *shape: torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    names = []
    for name, shape in CASES:
        c = shape[1]
        x = rand(*shape) * (1 + 3 * torch.rand(c, generator=g, dtype=torch.float64)).view(1, c, 1, 1) \
            + 2 * rand(c).view(1, c, 1, 1)
        dy = rand(*shape)
        bn = torch.nn.BatchNorm2d(c).double()
        with torch.no_grad():
            bn.weight.copy_(rand(c) + 1.5)
            bn.bias.copy_(rand(c))
            bn.running_mean.copy_(rand(c))
            bn.running_var.copy_(rand(c) + 1.5)
        values = {"x": x, "dy": dy, "weight": bn.weight.detach().clone(), "bias": bn.bias.detach().clone(),
                  "running_mean0": bn.running_mean.clone(), "running_var0": bn.running_var.clone()}
        xg = x.clone().requires_grad_(True)
        bn.train()
        y = bn(xg)
        dx, dw, db = torch.autograd.grad(y, (xg, bn.weight, bn.bias), dy)
        values.update(y=y, dx=dx, dweight=dw, dbias=db, running_mean=bn.running_mean.clone(),
                      running_var=bn.running_var.clone())
        bn.eval()
        xe = x.clone().requires_grad_(True)
        ye = bn(xe)
        (dxe,) = torch.autograd.grad(ye, xe, dy)
        values.update(y_eval=ye, dx_eval=dxe)
        for suffix, value in values.items():
            np.save(os.path.join(out, f"{name}.{suffix}.npy"), value.detach().numpy())
        names.append(name)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


if __name__ == "__main__":
    main()

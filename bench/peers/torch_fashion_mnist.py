#!/usr/bin/env python3
"""PyTorch peer of `alexnet_example --dataset fashion-mnist`: the same "fmnist" model, the same
recipe, on the same gzipped IDX files (read here with gzip + struct), for an accuracy and
training-time comparison on the same machine at the same thread count.

Recipe (as examples/alexnet_example.cpp's kFashionMnistRecipe): a seeded split of the 60,000
training images into 55,000 for training and 5,000 for validation (the split is drawn by this
script's generator, so it is not the same images as xgrad's); RandomHorizontalFlip(0.5),
Normalize(0.2860, 0.3530), and RandomCrop(28, padding N) first with --crop-padding N > 0 (0 by
default) and RandomErasing(P) last with --random-erasing P > 0 (0 by default); batch 64 (last batch kept); SGD with momentum 0.9 and weight decay 5e-4 on every parameter
(BatchNorm2d's too); peak lr 0.05 with a linear warm-up over the first 5% of the steps, then cosine
decay to 1% of the peak, set per step; cross-entropy with label smoothing 0.1; Dropout 0 (the layers
kept, as in xgrad's preset); a BatchNorm2d between each of conv3-5 and its ReLU (--batch-norm 0:
none); 15 epochs; He normal weights, zero biases, BatchNorm2d's unit weights. Validation and test
predictions average the logits of each image and of its mirror image (--no-eval-flip: the image
alone). An exponential moving average of the parameters and buffers (--ema-decay 0.999; 0: none),
updated after every step with the decay min(D, (1 + t) / (10 + t)) at step t and started from the
first step's state, is evaluated on validation beside the weights after every epoch. The best of
them on validation (the weights first, on a tie) is tested once.

usage: /usr/bin/python3 bench/peers/torch_fashion_mnist.py [--epochs 15] [--threads 2] [--crop-padding 0]
       [--random-erasing 0]
       [--lr 0.05] [--weight-decay 5e-4] [--label-smoothing 0.1] [--no-eval-flip] [--warmup 0.05]
       [--final-lr 0.01] [--nesterov] [--batch-norm 1] [--ema-decay 0.999]
"""
import argparse
import copy
import gzip
import math
import os
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {array.size} values for dimensions {dims}")
    return array.reshape(dims)


def load(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def fmnist_model(classes=10, dropout=0.5, batch_norm=False):
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    # --batch-norm: a BatchNorm2d between each of conv3-5 and its ReLU (xgrad's batch_norm preset)
    norm = lambda c: [nn.BatchNorm2d(c)] if batch_norm else []
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), lrn(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding=2, groups=2), nn.ReLU(), lrn(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 96, 3, padding=1), *norm(96), nn.ReLU(),
        nn.Conv2d(96, 96, 3, padding=1, groups=2), *norm(96), nn.ReLU(),
        nn.Conv2d(96, 64, 3, padding=1, groups=2), *norm(64), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(576, 512), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, classes))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # N(0, 2 / fan_in)
            nn.init.zeros_(m.bias)
    return model


MEAN, STD = 0.2860, 0.3530


def augment(images_u8, generator, pad):
    """RandomCrop(28, padding pad) (none for 0) + RandomHorizontalFlip(0.5) + Normalize, per image."""
    n = images_u8.shape[0]
    x = images_u8.float().div_(255.0)
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    tops = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    lefts = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        t, l = int(tops[i]), int(lefts[i])
        img = padded[i, :, t : t + 28, l : l + 28]
        out[i] = img.flip(-1) if flips[i] else img
    return out.sub_(MEAN).div_(STD)


def erase(x, generator, p, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    """RandomErasing(p) after Normalize, per image, as xgrad's: up to 10 tries of an area
    (uniform share of H x W) and a log-uniform aspect ratio h / w; the first rectangle that fits
    is set to 0 (the mean)."""
    if p <= 0:
        return x
    n, _, H, W = x.shape
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for i in range(n):
        if not float(torch.rand(1, generator=generator)) < p:
            continue
        for _ in range(10):
            target = H * W * (scale[0] + (scale[1] - scale[0]) * float(torch.rand(1, generator=generator)))
            aspect = math.exp(log_lo + (log_hi - log_lo) * float(torch.rand(1, generator=generator)))
            h, w = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 1 <= h < H and 1 <= w < W:
                top = int(torch.randint(0, H - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, W - w + 1, (1,), generator=generator))
                x[i, :, top : top + h, left : left + w] = 0.0
                break
    return x


def normalize(images_u8):
    return images_u8.float().div_(255.0).sub_(MEAN).div_(STD)


def rate(step, total, base, warmup_fraction=0.05, final_fraction=0.01):
    """xgrad's WarmupCosineLR: the rate of step `step` (0-based)."""
    warmup = max(1.0, warmup_fraction * total)
    final = base * final_fraction
    s = step + 1.0
    if s <= warmup:
        return base * s / warmup
    progress = min(1.0, (s - warmup) / max(1.0, total - warmup))
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def confusion(model, images, labels, flip=False, batch=500):
    """With flip the prediction is the argmax of the logits of the image plus those of its mirror."""
    model.eval()
    m = torch.zeros(10, 10, dtype=torch.int64)
    for i in range(0, images.shape[0], batch):
        x = normalize(images[i : i + batch])
        logits = model(x)
        if flip:
            logits = logits + model(x.flip(-1))
        predicted = logits.argmax(1)
        m += torch.bincount(labels[i : i + batch] * 10 + predicted, minlength=100).reshape(10, 10)
    model.train()
    return m


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--crop-padding", type=int, default=0)
    parser.add_argument("--random-erasing", type=float, default=0.0, help="p of RandomErasing after Normalize")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--nesterov", action="store_true")
    parser.add_argument("--warmup", type=float, default=0.05, help="share of the steps in the linear warm-up")
    parser.add_argument("--final-lr", type=float, default=0.01, help="the cosine's last rate, as a share of --lr")
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--no-eval-flip", dest="eval_flip", action="store_false",
                        help="evaluate on each image alone, not on its logits plus its mirror's")
    parser.add_argument("--batch-norm", type=int, default=1, choices=(0, 1),
                        help="1: BatchNorm2d after conv3-5, before their ReLUs (the default); 0: none")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--train-size", type=int, default=55000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ema-decay", type=float, default=0.999, help="moving average of the weights (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_x, train_y = load(args.data_dir, "train")
    test_x, test_y = load(args.data_dir, "t10k")
    perm = torch.randperm(train_x.shape[0], generator=torch.Generator().manual_seed(args.seed))
    val_idx = perm[-args.val_size :]
    train_idx = perm[: min(args.train_size, train_x.shape[0] - args.val_size)]
    model = fmnist_model(dropout=args.dropout, batch_norm=bool(args.batch_norm))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                          nesterov=args.nesterov)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    steps_per_epoch = math.ceil(len(train_idx) / args.batch_size)
    total = steps_per_epoch * args.epochs
    generator = torch.Generator().manual_seed(args.seed + 1)
    step, train_seconds, best = 0, 0.0, (-1.0, 0, None, False)
    average = None  # with --ema-decay: a copy of the model holding the moving average
    print(f"torch {torch.__version__}, {args.threads} threads, {len(train_idx)} train / {len(val_idx)} validation / "
          f"{test_x.shape[0]} test images, batch {args.batch_size}")
    for epoch in range(1, args.epochs + 1):
        order = train_idx[torch.randperm(len(train_idx), generator=generator)]
        seconds, seen, loss_sum = 0.0, 0, 0.0
        for first in range(0, len(order), args.batch_size):
            idx = order[first : first + args.batch_size]
            # the loader's work, outside the timed step
            x = erase(augment(train_x[idx], generator, args.crop_padding), generator, args.random_erasing)
            y = train_y[idx]
            t0 = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = rate(step, total, args.lr, args.warmup, args.final_lr)
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            if args.ema_decay > 0:
                with torch.no_grad():
                    if average is None:
                        average = copy.deepcopy(model)
                    else:
                        d = min(args.ema_decay, (1.0 + step) / (10.0 + step))
                        for a, w in zip(average.state_dict().values(), model.state_dict().values()):
                            if a.is_floating_point():
                                a.mul_(d).add_(w, alpha=1.0 - d)
                            else:
                                a.copy_(w)
            seconds += time.perf_counter() - t0
            step += 1
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
        m = confusion(model, train_x[val_idx], train_y[val_idx], args.eval_flip)
        val = m.diag().sum().item() / m.sum().item()
        train_seconds += seconds
        average_text = ""
        if average is not None:
            ma = confusion(average, train_x[val_idx], train_y[val_idx], args.eval_flip)
            average_val = ma.diag().sum().item() / ma.sum().item()
            average_text = f" (average {100 * average_val:.2f}%)"
        print(f"epoch {epoch}/{args.epochs}  loss {loss_sum / seen:.4f}  val acc {100 * val:5.2f}%{average_text}  "
              f"{seconds:.1f} s  {seen / seconds:.0f} img/s", flush=True)
        if val > best[0]:
            best = (val, epoch, {k: v.clone() for k, v in model.state_dict().items()}, False)
        if average is not None and average_val > best[0]:
            best = (average_val, epoch, {k: v.clone() for k, v in average.state_dict().items()}, True)
    model.load_state_dict(best[2])
    m = confusion(model, test_x, test_y, args.eval_flip)
    chosen = "moving average of the weights" if best[3] else "weights"
    print(f"model selection: the {chosen} of epoch {best[1]} (validation accuracy {100 * best[0]:.2f}%)")
    print(f"test accuracy {100 * m.diag().sum().item() / m.sum().item():.2f}% after {args.epochs} epochs, "
          f"{train_seconds:.1f} s of training ({train_seconds / args.epochs:.1f} s per epoch)")


if __name__ == "__main__":
    main()

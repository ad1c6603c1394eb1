#!/usr/bin/python3
"""The PyTorch eager reference for bench/own_model_bench.sh.

Trains the same module as mixcal does (examples/own-model/make_model.py's
SmallCnn, here as plain eager PyTorch, not scripted) on the same .npz, the
way a researcher would: normalisation by the training split's per-channel
mean and std, a shuffled order per epoch, SGD (momentum 0.9, weight decay
5e-4), mixup (facebookresearch/mixup-cifar10's train.py). Prints one JSON
line per epoch with the training samples per second (training alone, as
mixcal's samples_per_sec).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "own-model"))
from make_model import SmallCnn  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--alpha", type=float, default=0.4)
    p.add_argument("--width", type=int, default=32)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d = np.load(a.data)
    x = torch.from_numpy(d["x_train"]).float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    y = torch.from_numpy(d["y_train"]).long()
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True)
    classes = int(y.max()) + 1
    model = SmallCnn(x.shape[1], classes, a.width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    n = x.shape[0]
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(n)
        start = time.perf_counter()
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            xb = (x[idx] - mean) / std
            yb = y[idx]
            lam = float(rng.beta(a.alpha, a.alpha))
            perm = torch.randperm(xb.shape[0])
            logits = model(lam * xb + (1 - lam) * xb[perm])
            loss = lam * F.cross_entropy(logits, yb) + (1 - lam) * F.cross_entropy(logits, yb[perm])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "samples_per_sec": n / seconds}), flush=True)


if __name__ == "__main__":
    main()

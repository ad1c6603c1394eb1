#!/usr/bin/python3
"""The PyTorch reference for bench/train_bench.sh.

Does the work mixcal-bench-train does, written as a researcher would in
plain PyTorch (Debian's python3-torch: the same kernels as the LibTorch
mixcal links): Fashion-MNIST in memory, per-channel normalisation per batch,
the same LeNet / CIFAR-style ResNet-18, SGD (momentum 0.9, weight decay
5e-4), batch 128; mixup as in facebookresearch/mixup-cifar10's train.py;
after each epoch the test set's logits, softmax, NLL, Brier and 15-bin ECE.
Prints one JSON line like mixcal-bench-train.
"""
import argparse
import gzip
import json
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class LeNet(nn.Module):
    def __init__(self, channels=1, size=28, classes=10):
        super().__init__()
        pad = 2 if size < 32 else 0
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((size + 2 * pad - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for stage, width in enumerate([64, 128, 256, 512]):
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, width, 2 if stage > 0 and b == 0 else 1))
                cin = width
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def mixup_data(x, y, alpha):
    lam = np.random.beta(alpha, alpha) if alpha > 0 else 1.0
    index = torch.randperm(x.size(0))
    return lam * x + (1 - lam) * x[index], y, y[index], lam


def mixup_criterion(criterion, pred, y_a, y_b, lam):
    return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)


def ece(conf, correct, bins=15):
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            total += mask.double().mean() * (correct[mask].double().mean() - conf[mask].mean()).abs()
    return total.item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet")
    p.add_argument("--method", default="baseline")
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    np.random.seed(0)

    d = a.data_dir
    train_x = torch.from_numpy(read_idx(d + "/train-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    train_y = torch.from_numpy(read_idx(d + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(read_idx(d + "/t10k-images-idx3-ubyte.gz").copy()).unsqueeze(1)
    test_y = torch.from_numpy(read_idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if a.train_limit:
        train_x, train_y = train_x[:a.train_limit], train_y[:a.train_limit]
    if a.test_limit:
        test_x, test_y = test_x[:a.test_limit], test_y[:a.test_limit]
    mean = train_x.double().mean().item()
    std = train_x.double().std().item()

    model = LeNet() if a.model == "lenet" else ResNet18()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    n = train_x.size(0)
    train_sps, eval_sps = [], []
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, 128):
            idx = order[i:i + 128]
            x = (train_x[idx].float() - mean) / std
            y = train_y[idx]
            if a.method == "mixup":
                x, y_a, y_b, lam = mixup_data(x, y, 1.0)
                out = model(x)
                loss = mixup_criterion(criterion, out, y_a, y_b, lam)
            else:
                out = model(x)
                loss = criterion(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model((test_x[i:i + 1000].float() - mean) / std)
                                for i in range(0, test_x.size(0), 1000)]).double()
            logp = F.log_softmax(logits, 1)
            prob = logp.exp()
            conf, pred = prob.max(1)
            correct = pred.eq(test_y)
            nll = F.nll_loss(logp, test_y).item()
            brier = (prob - F.one_hot(test_y, 10)).pow(2).sum(1).mean().item()
            _ = (nll, brier, ece(conf, correct), correct.double().mean().item())
        t2 = time.perf_counter()
        if epoch > 1 or a.epochs == 1:
            train_sps.append(n / (t1 - t0))
            eval_sps.append(test_x.size(0) / (t2 - t1))
    print(json.dumps({"impl": "pytorch", "model": a.model, "method": a.method,
                      "train_sps": round(float(np.median(train_sps)), 1),
                      "eval_sps": round(float(np.median(eval_sps)), 1)}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Builds a network that is not one of mixcal's and saves it as TorchScript.

  /usr/bin/python3 make_model.py --kind cnn --channels 1 --classes 10 --out net.pt
  /usr/bin/python3 make_model.py --kind text --vocab 1000 --classes 4 --out text.pt

mixcal trains the saved module in C++ (docs/own-model.md). The convention:
  forward(x) -> logits [batch, classes]           required
  features(x) -> h, classify(h) -> logits         optional: Manifold Mixup
                                                  may also mix h (block 1)
  embed(x) -> e, forward_embedded(e) -> logits    optional: inputs that are
                                                  token ids are mixed as
                                                  their embeddings (block 0)
Mark the optional methods @torch.jit.export so that torch.jit.script keeps
them. Save with the PyTorch release of the workers' LibTorch or an older one.
"""
import argparse

import torch
from torch import nn
import torch.nn.functional as F


class SmallCnn(nn.Module):
    """Two conv blocks with BatchNorm, dropout, global pooling, a linear head."""

    def __init__(self, channels: int, classes: int, width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(2 * width, classes)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    @torch.jit.export
    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class WideBasic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
            nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-depth-k of Zagoruyko & Komodakis (2016), CIFAR style."""

    def __init__(self, channels: int, classes: int, depth: int = 16, k: int = 4):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.stem = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        layers = []
        cin = widths[0]
        for stage, stride in zip(range(1, 4), (1, 2, 2)):
            for i in range(n):
                layers.append(WideBasic(cin, widths[stage], stride if i == 0 else 1))
                cin = widths[stage]
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.head = nn.Linear(cin, classes)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    @torch.jit.export
    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class TextClassifier(nn.Module):
    """Embedding, mean pooling, a hidden layer and a linear classifier over
    token ids [batch, length]; mixup mixes the embeddings."""

    def __init__(self, vocab: int, classes: int, dim: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.hidden = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)

    @torch.jit.export
    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self.classify(torch.tanh(self.hidden(e.mean(1))))

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.hidden(self.embed(x).mean(1)))

    @torch.jit.export
    def classify(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(x))


class Plain(nn.Module):
    """Only forward(x): the smallest module mixcal trains (no mixing points
    beyond the inputs)."""

    def __init__(self, inputs: int, classes: int):
        super().__init__()
        self.fc1 = nn.Linear(inputs, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["cnn", "wrn", "text", "plain"], default="cnn")
    p.add_argument("--channels", type=int, default=1, help="image channels")
    p.add_argument("--size", type=int, default=28, help="image side (plain)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--vocab", type=int, default=1000, help="text: vocabulary size")
    p.add_argument("--width", type=int, default=32, help="cnn: first conv's width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trace", action="store_true",
                   help="torch.jit.trace instead of torch.jit.script (forward only)")
    p.add_argument("--out", default="net.pt")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    if a.kind == "cnn":
        model = SmallCnn(a.channels, a.classes, a.width)
    elif a.kind == "wrn":
        model = WideResNet(a.channels, a.classes)
    elif a.kind == "text":
        model = TextClassifier(a.vocab, a.classes)
    else:
        model = Plain(a.channels * a.size * a.size, a.classes)
    if a.trace:
        example = torch.zeros(2, a.channels, a.size, a.size)
        scripted = torch.jit.trace(model, example)
    else:
        scripted = torch.jit.script(model)
    scripted.save(a.out)
    params = sum(t.numel() for t in model.parameters())
    print(f"{a.out}: {type(model).__name__}, {params} parameters, "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes your arrays as an .npz dataset mixcal reads (docs/own-model.md).

  /usr/bin/python3 make_data.py --from-fashion-mnist 6000 --out fmnist.npz
  /usr/bin/python3 make_data.py --text --out text.npz
  /usr/bin/python3 make_data.py --images 600 --size 16 --channels 3 --out img.npz

The arrays: x_train, y_train, x_test, y_test, optional x_val/y_val (used as
the validation split instead of holding one out of x_train) and x_ood
(evaluated as out-of-distribution inputs). Images uint8 or float32 as
[N,H,W], [N,H,W,C] or [N,C,H,W]; token ids int64 [N,L]; labels 0..K-1.
"""
import argparse
import gzip
import os
import struct
import zlib

import numpy as np


def idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(n_train: int, root: str) -> dict:
    x = idx(f"{root}/train-images-idx3-ubyte.gz")
    y = idx(f"{root}/train-labels-idx1-ubyte.gz")
    xt = idx(f"{root}/t10k-images-idx3-ubyte.gz")
    yt = idx(f"{root}/t10k-labels-idx1-ubyte.gz")
    return {"x_train": x[:n_train], "y_train": y[:n_train].astype(np.int64),
            "x_test": xt, "y_test": yt.astype(np.int64)}


def images(n: int, size: int, channels: int, classes: int, rng) -> dict:
    """Class c: a bright square at a class-specific place, plus noise (NHWC)."""
    def make(m):
        y = rng.integers(0, classes, m)
        x = rng.integers(0, 80, (m, size, size, channels)).astype(np.uint8)
        for i, c in enumerate(y):
            r = (c * 3) % (size - 4)
            x[i, r:r + 4, r:r + 4, :] = 200
        return x, y.astype(np.int64)
    x, y = make(n)
    xt, yt = make(n // 2)
    return {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}


def text(n: int, length: int, vocab: int, classes: int, rng) -> dict:
    """Class c draws a third of its tokens from its own band of the vocabulary."""
    band = vocab // (classes + 1)

    def make(m):
        y = rng.integers(0, classes, m)
        x = rng.integers(0, vocab, (m, length))
        own = rng.random((m, length)) < 0.35
        for i, c in enumerate(y):
            k = own[i].sum()
            x[i, own[i]] = rng.integers(band * (c + 1), band * (c + 2), k)
        return x.astype(np.int64), y.astype(np.int64)
    x, y = make(n)
    xv, yv = make(n // 5)
    xt, yt = make(n // 2)
    return {"x_train": x, "y_train": y, "x_val": xv, "y_val": yv,
            "x_test": xt, "y_test": yt,
            "x_ood": rng.integers(0, band, (n // 5, length)).astype(np.int64)}


def write_png(path: str, pixels: np.ndarray) -> None:
    """pixels: uint8 [H, W] (grey) or [H, W, 3] (RGB), as an 8-bit PNG."""
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def image_folder(root: str, arrays: dict, names: list) -> None:
    """Writes arrays' images as root/{train,test}/<class name>/<i>.png."""
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        for i, (img, c) in enumerate(zip(x, y)):
            d = os.path.join(root, split, names[c])
            os.makedirs(d, exist_ok=True)
            write_png(os.path.join(d, f"{i:06d}.png"),
                      img[..., 0] if img.shape[-1] == 1 else img)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--from-fashion-mnist", type=int, metavar="N",
                   help="the first N training images of Fashion-MNIST")
    g.add_argument("--images", type=int, metavar="N", help="N synthetic images")
    g.add_argument("--text", action="store_true", help="synthetic token ids")
    p.add_argument("--fashion-mnist-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--count", type=int, default=2000, help="text: training examples")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--length", type=int, default=32, help="text: tokens per example")
    p.add_argument("--vocab", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compressed", action="store_true", help="np.savez_compressed")
    p.add_argument("--as-image-folder", action="store_true",
                   help="write OUT/train/<class>/*.png and OUT/test/<class>/*.png "
                        "instead of an .npz (dataset image-folder)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    if a.from_fashion_mnist:
        arrays = fashion_mnist(a.from_fashion_mnist, a.fashion_mnist_dir)
    elif a.images:
        arrays = images(a.images, a.size, a.channels, a.classes, rng)
    else:
        arrays = text(a.count, a.length, a.vocab, a.classes, rng)
    if a.as_image_folder:
        if arrays["x_train"].ndim == 2:
            p.error("--as-image-folder needs images, not --text")
        for k in ("x_train", "x_test"):
            if arrays[k].ndim == 3:
                arrays[k] = arrays[k][..., None]
        image_folder(a.out, arrays, [f"class_{c}" for c in range(int(arrays["y_train"].max()) + 1)])
        print(a.out + ": " + ", ".join(f"{k} {len(v)} images" for k, v in arrays.items()
                                       if k.startswith("x_")))
        return
    (np.savez_compressed if a.compressed else np.savez)(a.out, **arrays)
    print(a.out + ": " + ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A job's kept predictions as NumPy arrays, through the mixcal package.

    /usr/bin/python3 client/python/predictions_to_numpy.py --job 7
    /usr/bin/python3 client/python/predictions_to_numpy.py --job 7 --epoch 20 --save p.npz

The test split's float16 probabilities and int32 labels the worker kept
(evaluation.predictions, docs/sweep-spec.md "Kept predictions"), with each
label's float32 log-probability where kept. Prints accuracy, the top-label
ECE with 15 equal-width bins and NLL recomputed from them; --save writes the
arrays for np.load.
"""
import argparse
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.environ.get("MIXCAL_PYTHON_STUBS", os.path.join(here, "..", "..", "build", "python")))
import mixcal  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", type=int, required=True, help="job id")
    p.add_argument("--epoch", type=int, default=0, help="a kept epoch (default: the newest)")
    p.add_argument("--split", default="test")
    p.add_argument("--save", help="also write the arrays to this .npz")
    p.add_argument("--address")
    p.add_argument("--token")
    a = p.parse_args()
    try:
        kept = mixcal.Client(a.address, a.token).predictions(
            a.job, epoch=a.epoch or None, split=a.split, full=True)
    except mixcal.MixcalError as e:
        sys.exit("predictions_to_numpy: %s" % e)
    probs, labels, log_p = kept["probabilities"], kept["labels"], kept["label_log_probs"]
    if a.save:
        arrays = {"probabilities": probs, "labels": labels}
        if log_p is not None:
            arrays["label_log_probs"] = log_p
        np.savez(a.save, **arrays)
    conf = probs.astype(np.float64).max(axis=1)
    correct = probs.argmax(axis=1) == labels
    bins = np.clip(np.ceil(conf * 15).astype(int), 1, 15)  # (lo, hi], 0 -> bin 1
    ece = sum(abs(correct[bins == m].mean() - conf[bins == m].mean()) * (bins == m).mean()
              for m in range(1, 16) if (bins == m).any())
    print("job %d, epoch %d, split %s: %d examples x %d classes" % (
        a.job, kept["epoch"], kept["split"], probs.shape[0], probs.shape[1]))
    print("accuracy %.6f, ece %.6f" % (correct.mean(), ece))
    if log_p is not None:
        print("nll %.6f" % float(-log_p.astype(np.float64).mean()))
    else:
        print("nll - (no log-probabilities kept: predictions from before they were)")


if __name__ == "__main__":
    main()

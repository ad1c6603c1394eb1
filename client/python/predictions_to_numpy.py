#!/usr/bin/python3
"""Load a job's kept predictions from a mixcal coordinator into NumPy.

    /usr/bin/python3 client/python/predictions_to_numpy.py --job 7
    /usr/bin/python3 client/python/predictions_to_numpy.py --job 7 --epoch 20 --save p.npz

Streams GetPredictions (the test split's float16 probabilities and int32
labels that the worker kept: evaluation.predictions, the final epoch by
default) into arrays, with each label's float32 log-probability where the
worker kept it (float16 rounds a confidently wrong label's probability to
0), then computes from them what any new metric would start from:
accuracy, the top-label ECE with 15 equal-width bins
(reference/methods-and-metrics.md), and NLL from the log-probabilities. `mixcal predictions JOB --out p.npz`
writes the same arrays for np.load. Uses Debian's python3-grpcio and
python3-numpy and the stubs the build generates (build/python).
"""
import argparse
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", type=int, required=True, help="job id")
    p.add_argument("--epoch", type=int, default=0, help="a kept epoch (default: the newest)")
    p.add_argument("--split", default="test")
    p.add_argument("--save", help="also write the arrays to this .npz")
    p.add_argument("--address", default=os.environ.get("MIXCAL_ADDRESS", "127.0.0.1:7707"))
    p.add_argument("--token", default=os.environ.get("MIXCAL_TOKEN", ""))
    p.add_argument("--stubs", default=os.environ.get(
        "MIXCAL_PYTHON_STUBS", os.path.join(here, "..", "..", "build", "python")))
    a = p.parse_args()
    sys.path.insert(0, a.stubs)
    try:
        import grpc
        import numpy as np
        from mixcal.v1 import experiment_pb2, experiment_pb2_grpc
    except ImportError as e:
        sys.exit("predictions_to_numpy: %s (build first: the stubs go to build/python)" % e)

    api = experiment_pb2_grpc.ExperimentServiceStub(grpc.insecure_channel(a.address))
    metadata = [("authorization", "Bearer " + a.token)] if a.token else []
    request = experiment_pb2.GetPredictionsRequest(job_id=a.job, epoch=a.epoch, split=a.split)
    probs, labels, log_probs, head = [], [], [], None
    try:
        for chunk in api.GetPredictions(request, metadata=metadata, timeout=300):
            if head is None:
                head = chunk
            probs.append(chunk.probabilities)
            labels.append(chunk.labels)
            log_probs.append(chunk.label_log_probs)
    except grpc.RpcError as e:
        sys.exit("predictions_to_numpy: %s: %s" % (e.code().name, e.details()))
    p = np.frombuffer(b"".join(probs), dtype="<f2").reshape(head.count, head.classes)
    y = np.frombuffer(b"".join(labels), dtype="<i4")
    log_p = np.frombuffer(b"".join(log_probs), dtype="<f4")
    arrays = {"probabilities": p, "labels": y}
    if log_p.size == head.count:
        arrays["label_log_probs"] = log_p
    if a.save:
        np.savez(a.save, **arrays)

    conf = p.astype(np.float64).max(axis=1)
    correct = p.argmax(axis=1) == y
    bins = np.clip(np.ceil(conf * 15).astype(int), 1, 15)  # (lo, hi], 0 -> bin 1
    ece = 0.0
    for m in range(1, 16):
        sel = bins == m
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    print("job %d, epoch %d, split %s: %d examples x %d classes" % (
        a.job, head.epoch, head.split, head.count, head.classes))
    print("accuracy %.6f, ece %.6f" % (correct.mean(), ece))
    if "label_log_probs" in arrays:
        print("nll %.6f" % float(-log_p.astype(np.float64).mean()))
    else:
        print("nll - (no log-probabilities kept: predictions from before they were)")


if __name__ == "__main__":
    main()

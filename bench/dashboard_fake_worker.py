#!/usr/bin/python3
"""A worker that does not train, for bench/dashboard_bench.sh: it registers,
leases one job, and reports its epochs one at a time (split test, 15 bins)
every --interval seconds, printing after each ReportEpoch returns (the epoch
is stored when it returns) one JSON line {"job", "epoch", "sent_ms",
"stored_ms"}: the wall clock in milliseconds before the call and after it. The benchmark compares those times with when
the browser shows each epoch.
"""
import argparse
import json
import os
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--stubs", required=True, help="build/python")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--interval", type=float, default=0.25)
    a = p.parse_args()
    sys.path.insert(0, a.stubs)
    import grpc
    from mixcal.v1 import worker_pb2, worker_pb2_grpc, metrics_pb2, jobs_pb2

    stub = worker_pb2_grpc.WorkerServiceStub(grpc.insecure_channel(a.address))
    w = stub.RegisterWorker(worker_pb2.RegisterWorkerRequest(host="bench", device="cpu", name="fake"))
    acq = stub.AcquireJob(worker_pb2.AcquireJobRequest(worker_id=w.worker_id, wait_ms=10000))
    if not acq.HasField("job"):
        sys.exit("no job to lease")
    print(json.dumps({"job": acq.job.id, "leased": True}), flush=True)
    for e in range(1, a.epochs + 1):
        time.sleep(a.interval)
        stub.Heartbeat(worker_pb2.HeartbeatRequest(worker_id=w.worker_id, leases=[acq.lease]))
        m = metrics_pb2.EpochMetrics(epoch=e, split="test", count=100, accuracy=0.9,
                                     ece=0.01 * e, oe=0.005 * e, nll=0.3, samples_per_sec=1000)
        for b in range(15):
            m.bins.add(count=100 if b == 14 else 0, confidence_sum=97.0 if b == 14 else 0,
                       correct=90 if b == 14 else 0)
        sent = time.time() * 1000
        stub.ReportEpoch(worker_pb2.ReportEpochRequest(lease=acq.lease, metrics=[m]))
        print(json.dumps({"job": acq.job.id, "epoch": e, "sent_ms": sent,
                          "stored_ms": time.time() * 1000}), flush=True)
    stub.FinishJob(worker_pb2.FinishJobRequest(lease=acq.lease, outcome=jobs_pb2.SUCCEEDED))


if __name__ == "__main__":
    main()

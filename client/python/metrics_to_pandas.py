#!/usr/bin/python3
"""Load a sweep's per-epoch metrics from a mixcal coordinator into pandas.

    /usr/bin/python3 client/python/metrics_to_pandas.py --sweep 1
    /usr/bin/python3 client/python/metrics_to_pandas.py --sweep 1 --address host:7707 --token T

Uses Debian's python3-grpcio and python3-pandas, and the Python stubs that
the build generates from proto/ with the system protoc and grpc_python_plugin
(build/python; --stubs or $MIXCAL_PYTHON_STUBS to look elsewhere). Prints the
DataFrame's shape and each method's ECE at the final epoch, mean and standard
deviation over seeds, as CSV.
"""
import argparse
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=int, required=True, help="sweep id")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--address", default=os.environ.get("MIXCAL_ADDRESS", "127.0.0.1:7707"))
    p.add_argument("--token", default=os.environ.get("MIXCAL_TOKEN", ""))
    p.add_argument("--stubs", default=os.environ.get(
        "MIXCAL_PYTHON_STUBS", os.path.join(here, "..", "..", "build", "python")))
    a = p.parse_args()
    sys.path.insert(0, a.stubs)
    try:
        import grpc
        import pandas as pd
        from mixcal.v1 import experiment_pb2, experiment_pb2_grpc, metrics_pb2
    except ImportError as e:
        sys.exit("metrics_to_pandas: %s (build first: the stubs go to build/python)" % e)

    channel = grpc.insecure_channel(a.address)
    api = experiment_pb2_grpc.ExperimentServiceStub(channel)
    metadata = [("authorization", "Bearer " + a.token)] if a.token else []
    try:
        api.GetSweep(experiment_pb2.GetSweepRequest(sweep_id=a.sweep), metadata=metadata, timeout=60)
    except grpc.RpcError as e:
        sys.exit("metrics_to_pandas: %s: %s" % (e.code().name, e.details()))
    request = experiment_pb2.QueryMetricsRequest(
        filter=metrics_pb2.MetricsFilter(sweep_id=a.sweep, split=a.split, page_size=10000))
    fields = ["job_id", "method", "value", "seed", "epoch", "split", "accuracy", "nll", "brier",
              "ece", "mce", "oe", "adaptive_ece", "mean_confidence", "mean_entropy", "train_loss"]
    rows = []
    while True:
        try:
            reply = api.QueryMetrics(request, metadata=metadata, timeout=60)
        except grpc.RpcError as e:
            sys.exit("metrics_to_pandas: %s: %s" % (e.code().name, e.details()))
        rows += [{f: getattr(m, f) for f in fields} for m in reply.rows]
        if not reply.next_page_token:
            break
        request.filter.page_token = reply.next_page_token
    df = pd.DataFrame(rows, columns=fields)
    print("rows %d, jobs %d, epochs %d" % (len(df), df["job_id"].nunique(), df["epoch"].max() if len(df) else 0))
    final = df[df["epoch"] == df.groupby("job_id")["epoch"].transform("max")]
    table = final.groupby(["method", "value"])["ece"].agg(["mean", "std", "count"]).reset_index()
    print("method,value,ece_mean,ece_std,seeds")
    for r in table.itertuples(index=False):
        print("%s,%g,%.9f,%.9f,%d" % (r.method, r.value, r.mean, 0.0 if pd.isna(r.std) else r.std, r.count))


if __name__ == "__main__":
    main()

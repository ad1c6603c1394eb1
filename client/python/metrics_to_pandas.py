#!/usr/bin/python3
"""A sweep's per-epoch metrics in pandas, through the mixcal package.

    /usr/bin/python3 client/python/metrics_to_pandas.py --sweep 1
    /usr/bin/python3 client/python/metrics_to_pandas.py --sweep 1 --address host:7707 --token T

Prints the frame's size and each method's ECE at the final epoch (mean and
standard deviation over seeds) as CSV. `import mixcal` works once the setup
ran (deploy/python_path.sh); else the build's python/ folder is used.
"""
import argparse
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.environ.get("MIXCAL_PYTHON_STUBS", os.path.join(here, "..", "..", "build", "python")))
import mixcal  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=int, required=True, help="sweep id")
    p.add_argument("--split", default="test", help="split (default test)")
    p.add_argument("--address")
    p.add_argument("--token")
    a = p.parse_args()
    try:
        df = mixcal.Client(a.address, a.token).metrics(a.sweep, split=a.split)
    except mixcal.MixcalError as e:
        sys.exit("metrics_to_pandas: %s" % e)
    print("rows %d, jobs %d, epochs %d" % (len(df), df["job"].nunique(), df["epoch"].max() if len(df) else 0))
    final = df[df["epoch"] == df.groupby("job")["epoch"].transform("max")]
    table = final.groupby(["method", "hyperparameter"])["ece"].agg(["mean", "std", "count"]).reset_index()
    print("method,value,ece_mean,ece_std,seeds")
    for r in table.itertuples(index=False):
        print("%s,%g,%.9f,%.9f,%d" % (r.method, r.hyperparameter, r.mean, 0.0 if r.std != r.std else r.std, r.count))


if __name__ == "__main__":
    main()

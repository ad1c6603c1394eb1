"""The mixcal Python package against a real coordinator and worker
(tests/python/package_test.sh starts them and passes the address).

Checks, against numbers not computed by the package: the metrics frame
against the CLI's CSV export, the summary's means against pandas over that
frame, kept predictions against the stored accuracy, and that errors come
as mixcal's typed errors."""
import csv
import io
import math
import subprocess
import sys

import numpy as np

import mixcal

cli, spec_path = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    print(("ok: " if ok else "FAILED: ") + what)
    if not ok:
        failures.append(what)


c = mixcal.Client()
sweep = c.submit(spec_path, wait=True, poll_seconds=0.5)
sweeps = c.sweeps()
check(sweep in set(sweeps["sweep"]) and
      sweeps.set_index("sweep").loc[sweep, "state"] == "succeeded",
      "submit(wait=True) returns once the sweep succeeded; sweeps() lists it")

jobs = c.jobs(sweep)
check(len(jobs) == 4 and set(jobs["method"]) == {"baseline", "mixup"},
      "jobs(): 4 jobs, baseline and mixup (%d)" % len(jobs))
check(all("training" in cfg for cfg in jobs["config"]), "jobs(): each row has the job's configuration")

df = c.metrics(sweep)
for col in ("sweep", "job", "method", "hyperparameter", "seed", "epoch", "split",
            "accuracy", "nll", "brier", "ece", "mce", "oe", "adaptive_ece",
            "mean_confidence", "classwise_ece", "temperature", "auroc", "smece"):
    check(col in df.columns, "metrics() has column %s" % col)
exported = list(csv.DictReader(io.StringIO(subprocess.run(
    [cli, "metrics", str(sweep)], check=True, capture_output=True, text=True).stdout)))
check(len(df) == len(exported), "metrics(): as many rows as `mixcal metrics` (%d, %d)"
      % (len(df), len(exported)))
by_key = {(int(r["job_id"]), int(r["epoch"]), r["split"]): float(r["ece"]) for r in exported}
mismatch = [k for k, e in zip(zip(df["job"], df["epoch"], df["split"]), df["ece"])
            if not math.isclose(by_key.get((int(k[0]), int(k[1]), k[2]), -1), e, rel_tol=1e-6, abs_tol=1e-9)]
check(not mismatch, "metrics(): every row's ECE equals the CLI's (%d differ)" % len(mismatch))

test = c.metrics(sweep, split="test")
check(set(test["split"]) == {"test"} and len(test) == 4 * 3, "metrics(split='test'): 4 jobs x 3 epochs")
final = test[test["epoch"] == 3]
s = c.summary(sweep, vs="baseline")
base = s[(s["method"] == "baseline") & (s["split"] == "test")].iloc[0]
check(math.isclose(base["ece_mean"], final[final["method"] == "baseline"]["ece"].mean(), rel_tol=1e-9),
      "summary(): the baseline's ECE mean is pandas' mean over its seeds at the final epoch")
mix = s[(s["method"] == "mixup") & (s["split"] == "test")].iloc[0]
diffs = (final[final["method"] == "mixup"].sort_values("seed")["ece"].values
         - final[final["method"] == "baseline"].sort_values("seed")["ece"].values)
check(math.isclose(mix["ece_diff"], diffs.mean(), rel_tol=1e-9, abs_tol=1e-12),
      "summary(vs='baseline'): mixup's ECE difference is the mean paired difference")
check(mix["ece_low"] <= mix["ece_diff"] <= mix["ece_high"], "summary(): the interval holds the difference")

job = int(jobs.iloc[0]["job"])
probs, labels = c.predictions(job)
acc = float((probs.astype(np.float64).argmax(axis=1) == labels).mean())
stored = test[(test["job"] == job) & (test["epoch"] == 3)]["accuracy"].iloc[0]
check(probs.dtype == np.float16 and labels.dtype == np.int32 and abs(acc - stored) < 0.01,
      "predictions(): float16 x int32 arrays whose accuracy is the stored one (%.4f, %.4f)" % (acc, stored))

updates = list(c.watch(sweep))
kinds = [k for k, _ in updates]
check(kinds and kinds[-1] == "sweep", "watch(): updates ending with the sweep's state (%s)" % kinds[-3:])
check(updates[-1][1]["state"] == "succeeded" and isinstance(updates[-1][1]["id"], int),
      "watch(): plain values (state %r, id %r)" % (updates[-1][1].get("state"), updates[-1][1].get("id")))
# An optional metric a row does not have is absent in the dicts watch()
# yields, not 0 (an AUROC or a temperature of 0 would read as a value).
from mixcal.client import _to_dict  # noqa: E402
from mixcal.v1 import metrics_pb2  # noqa: E402
row = _to_dict(metrics_pb2.EpochMetrics(job_id=3, epoch=2, split="test", ece=0.05))
check(row["job_id"] == 3 and row["ece"] == 0.05 and "temperature" not in row and "auroc" not in row,
      "watch()'s dicts: unset optional metrics absent, set ones as numbers")
job_updates = [u for k, u in updates if k == "job"]
check(job_updates and all(isinstance(u["seed"], int) and u["state"] in
                          ("queued", "running", "succeeded") for u in job_updates),
      "watch(): job updates with int seeds (seed 0 too) and states as words")
check(c.sweep(sweep)["state"] == "succeeded", "sweep(): the state as sweeps() says it")
one = c.job(job)
check(one["settings"].get("training.batch_size") == "64" and one["settings"].get("evaluation.ece_bins") == "15",
      "job(): settings as trained, defaults filled in (%s)" % {k: one["settings"].get(k) for k in ("training.batch_size", "evaluation.ece_bins")})
w = c.workers()
check(len(w) >= 1 and set(w["state"]) <= {"busy", "idle"}, "workers(): the worker is listed as busy/idle (%s)" % list(w["state"]))


def raises(kind, fn, words, what):
    try:
        fn()
    except kind as e:
        check(all(w in str(e) for w in words), "%s: %s(%s)" % (what, kind.__name__, e))
        return
    except Exception as e:  # noqa: BLE001 - any other error is the failure
        check(False, "%s: %s instead of %s" % (what, type(e).__name__, kind.__name__))
        return
    check(False, "%s: no error" % what)


raises(mixcal.NotFound, lambda: c.jobs(9999), ["9999"], "jobs(9999)")
raises(mixcal.NotFound, lambda: c.metrics(sweep, split="tset"), ["tset", "test"], "metrics(split='tset')")
raises(mixcal.NotFound, lambda: c.summary(sweep, split="tset"), ["no split tset", "test"],
       "summary(split='tset')")
raises(mixcal.NotFound, lambda: c.summary(sweep, at=99), ["no epoch 99", "epochs 1 to 3"],
       "summary(at=99)")
raises(mixcal.NotFound, lambda: c.summary(sweep, split="tset", vs="baseline"), ["no split tset"],
       "summary(split='tset', vs='baseline')")
raises(mixcal.NotFound, lambda: c.summary(sweep, at=99, vs="baseline"), ["no epoch 99"],
       "summary(at=99, vs='baseline')")
e2 = c.summary(sweep, at="epoch:2")
check(len(e2) > 0 and all(e == 2 for es in e2["epochs"] for e in es), "summary(at='epoch:2') reads epoch 2 as the CLI's syntax")
raises(mixcal.InvalidArgument, lambda: c.metrics(sweep + 1, job=job), ["is in sweep %d" % sweep],
       "metrics() of a job of another sweep")
raises(mixcal.NotFound, lambda: c.submit("/nonexistent/spec.json"), ["/nonexistent/spec.json"],
       "submit() of a file that is not there")
raises(mixcal.InvalidArgument, lambda: c.summary(sweep, select_split="test"), ["best:METRIC"],
       "summary(select_split=) without at='best:...'")
spec_training = c.sweep(sweep)["spec"]["training"]
check(spec_training.get("batch_size") == 64 and "threads" not in spec_training,
      "sweep(): the spec's fields as set, none at a misleading 0 (%s)" % spec_training)
ens = c.summary(sweep, ensemble=True)
ens_rows = ens[ens["ensemble"]]
check(len(ens_rows) == 2 and all(any("different test sets" in w for w in lo) for lo in ens_rows["left_out"]),
      "summary(ensemble=True) on synthetic data says why there is no ensemble")
raises(mixcal.InvalidArgument, lambda: c.submit({"name": "x", "seeds": [0], "epochz": 3}), ["epochz"],
       "submit() with an unknown field")
raises(mixcal.InvalidArgument,
       lambda: c.submit({"name": "x", "data": {"dataset": "synthetic"}, "model": "mlp",
                         "methods": [{"name": "mixup", "values": [-1]}], "seeds": [0]}),
       ["alpha"], "submit() with alpha out of range")
raises(mixcal.Unavailable, lambda: mixcal.Client(address="127.0.0.1:1").sweeps(), ["127.0.0.1:1"],
       "a coordinator that is not there")
check(mixcal.Client.__doc__ and mixcal.Client.metrics.__doc__, "the package has docstrings")
sys.exit(1 if failures else 0)

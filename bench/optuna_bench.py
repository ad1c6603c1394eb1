#!/usr/bin/python3
"""Optuna doing mixcal-bench-dispatch's work, for bench/dispatch_bench.sh.

N trials, each calling trial.report(value, step) R times (the per-epoch
report of an intermediate value), from P processes, on Optuna's RDB storage
with a SQLite file and on its JournalStorage with a file. Prints one JSON
line per storage: seconds, reports/s, trials/s, and how many reports were
actually stored (errors such as "database is locked" are counted, not
hidden). Uses Debian's python3-optuna.
"""
import argparse
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import warnings

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")


def make_storage(kind, path):
    if kind == "rdb-sqlite":
        return optuna.storages.RDBStorage("sqlite:///" + path, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.JournalStorage(optuna.storages.JournalFileStorage(path))


def work(kind, path, trials, reports, errors):
    storage = make_storage(kind, path)
    study = optuna.load_study(study_name="bench", storage=storage)
    failed = 0
    for _ in range(trials):
        try:
            trial = study.ask()
            for step in range(reports):
                try:
                    trial.report(0.02 + 0.001 * step, step)
                except Exception:
                    failed += 1
            study.tell(trial, 0.02)
        except Exception:
            failed += 1
    errors.put(failed)


def run(kind, trials, reports, procs):
    d = tempfile.mkdtemp(prefix="mixcal-optuna-")
    path = os.path.join(d, "optuna.db" if kind == "rdb-sqlite" else "journal.log")
    optuna.create_study(study_name="bench", storage=make_storage(kind, path))
    errors = mp.Queue()
    per = [trials // procs + (1 if i < trials % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=work, args=(kind, path, n, reports, errors)) for n in per]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    seconds = time.perf_counter() - t0
    failed = sum(errors.get() for _ in ps)
    study = optuna.load_study(study_name="bench", storage=make_storage(kind, path))
    all_trials = study.get_trials(deepcopy=False)
    stored = sum(len(t.intermediate_values) for t in all_trials)
    shutil.rmtree(d)
    return {"impl": "optuna-" + kind, "trials": len(all_trials), "reports": trials * reports,
            "stored": stored, "errors": failed, "seconds": round(seconds, 3),
            "reports_per_sec": round(stored / seconds, 1), "trials_per_sec": round(len(all_trials) / seconds, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--reports", type=int, default=100)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--storages", default="rdb-sqlite,journal")
    a = p.parse_args()
    for kind in a.storages.split(","):
        print(json.dumps(run(kind, a.trials, a.reports, a.procs)), flush=True)


if __name__ == "__main__":
    main()

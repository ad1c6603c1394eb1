#!/usr/bin/env bash
# What the post-hoc calibrators and the per-epoch metrics cost an epoch's
# evaluation on the quickstart's setting (LeNet, 3,000 training and 5,000
# test images, 1,000 noise and 1,000 training examples evaluated, 10% of the
# training set held out for fitting), one thread: mixcal-train with
# temperature scaling only against all eight calibrators, alternating, then
# each calibrator beside temperature once. Prints evaluation and metric
# seconds per epoch (medians over epochs 2..EPOCHS of every run) and the
# shares; the calibrators' cost is the difference in metric seconds (the
# fits and the metrics of their splits), measured inside the evaluation,
# which the forward passes' noise does not blur.
#   bench/calibrators_bench.sh          # after tests/run.sh built build/
#   EPOCHS=3 ROUNDS=1 bench/calibrators_bench.sh   # a quicker look
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
bin="$build/worker/mixcal-train"
[ -x "$bin" ] || { echo "build first: $bin is missing (run tests/run.sh)" >&2; exit 1; }
EPOCHS="${EPOCHS:-4}"
ROUNDS="${ROUNDS:-2}"
args=(--dataset fashion-mnist --model lenet --train-limit 3000 --test-limit 5000
      --noise-eval 1000 --train-eval 1000 --epochs "$EPOCHS" --threads 1
      --weight-decay 0 --schedule cosine)
all=temperature,vector,matrix,dirichlet,histogram,isotonic,platt,beta
work=$(mktemp -d /tmp/mixcal-calibrators-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
for round in $(seq "$ROUNDS"); do
  "$bin" "${args[@]}" --calibrators temperature >"$work/temperature.$round"
  "$bin" "${args[@]}" --calibrators "$all" >"$work/all.$round"
done
for c in vector matrix dirichlet histogram isotonic platt beta; do
  "$bin" "${args[@]}" --calibrators "temperature,$c" >"$work/one.$c"
done
/usr/bin/python3 - "$work" <<'PY'
import glob, json, os, statistics, sys
work = sys.argv[1]
def epochs(pattern):
    ev, me = [], []
    for path in sorted(glob.glob(os.path.join(work, pattern))):
        for line in open(path):
            d = json.loads(line)
            if d.get("split") == "test" and d["epoch"] >= 2:
                ev.append(d["eval_seconds"])
                me.append(d["metrics_seconds"])
    return statistics.median(ev), statistics.median(me), len(ev)
t_eval, t_metrics, n = epochs("temperature.*")
a_eval, a_metrics, _ = epochs("all.*")
print("per epoch (median of %d epochs)    evaluation  metrics+fits  share" % n)
print("temperature only (the default)      %8.3f s  %8.3f s    %4.1f%%" % (t_eval, t_metrics, 100 * t_metrics / t_eval))
print("all eight calibrators               %8.3f s  %8.3f s    %4.1f%%" % (a_eval, a_metrics, 100 * a_metrics / a_eval))
extra = a_metrics - t_metrics
print("the seven beyond temperature add %.3f s of fits and metrics: %.1f%% of the evaluation "
      "with temperature only (target < 10%%: %s)" % (extra, 100 * extra / t_eval,
                                                     "met" if extra < 0.1 * t_eval else "NOT met"))
print("(the evaluations' medians differ by %+.3f s, the forward passes' run-to-run noise included;"
      " outside the metrics and fits by %+.3f s)" % (
    a_eval - t_eval, (a_eval - a_metrics) - (t_eval - t_metrics)))
print("each beside temperature, added metrics+fits seconds per epoch:")
for c in ["vector", "matrix", "dirichlet", "histogram", "isotonic", "platt", "beta"]:
    e, m, _ = epochs("one." + c)
    print("  %-10s %+.3f s" % (c, m - t_metrics))
PY

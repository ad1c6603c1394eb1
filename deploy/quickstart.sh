#!/usr/bin/env bash
# The main job: installs what is missing, builds mixcal-train, trains LeNet on
# Fashion-MNIST with baseline, mixup (alpha 0.2 and 0.4), label smoothing and
# ERL, and prints their calibration side by side.
#
#   deploy/quickstart.sh                 # 10 epochs, seed 0, all cores
#   EPOCHS=3 SEED=1 deploy/quickstart.sh
#   METHODS="baseline mixup:0.4" deploy/quickstart.sh
#
# Each run's per-epoch JSON lines are kept in $OUT_DIR (default
# ./mixcal-work/quickstart).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

EPOCHS="${EPOCHS:-10}"
SEED="${SEED:-0}"
THREADS="${THREADS:-$(nproc)}"
METHODS="${METHODS:-baseline mixup:0.2 mixup:0.4 ls:0.1 erl:0.1}"
OUT_DIR="${OUT_DIR:-$root/mixcal-work/quickstart}"
build="${MIXCAL_BUILD_DIR:-$root/build}"

bash deploy/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target mixcal-train
mkdir -p "$OUT_DIR"

echo
echo "Training LeNet on Fashion-MNIST, $EPOCHS epochs, seed $SEED, $THREADS threads."
for m in $METHODS; do
  file="$OUT_DIR/${m//:/-}.jsonl"
  echo "  $m ... (per-epoch metrics in $file)"
  "$build/worker/mixcal-train" --dataset fashion-mnist --model lenet --method "$m" \
    --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" >"$file"
done

echo
/usr/bin/python3 - "$OUT_DIR" $METHODS <<'PY'
import json, os, sys
out, methods = sys.argv[1], sys.argv[2:]
print("Test-set calibration after the last epoch (ECE, OE, MCE: 15 bins; TS: after temperature scaling)")
print("%-12s %8s %8s %8s %8s %8s %8s %8s %6s" % ("method", "accuracy", "ECE", "OE", "MCE", "NLL",
                                                "ECE(TS)", "NLL(TS)", "T"))
for m in methods:
    rows = [json.loads(l) for l in open(os.path.join(out, m.replace(":", "-") + ".jsonl"))]
    last = max(r["epoch"] for r in rows)
    t = next(r for r in rows if r["epoch"] == last and r["split"] == "test")
    ts = next((r for r in rows if r["epoch"] == last and r["split"] == "test_ts"), None)
    print("%-12s %8.4f %8.4f %8.4f %8.4f %8.4f %8s %8s %6s" % (
        m, t["accuracy"], t["ece"], t["oe"], t["mce"], t["nll"],
        "%.4f" % ts["ece"] if ts else "-", "%.4f" % ts["nll"] if ts else "-",
        "%.2f" % ts["temperature"] if ts else "-"))
PY

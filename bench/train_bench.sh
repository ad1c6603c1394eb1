#!/usr/bin/env bash
# Training and evaluation samples/s of mixcal's core against a plain PyTorch
# script doing the same work (bench/train_bench.py on Debian's python3-torch),
# 2 threads, Fashion-MNIST; prints each pair and the ratio.
#   bench/train_bench.sh            # after tests/run.sh or a build in build/
#   BUILD=dir bench/train_bench.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
bin="$build/bench/mixcal-bench-train"
[ -x "$bin" ] || { echo "build first: $bin is missing (run tests/run.sh)" >&2; exit 1; }
export OMP_NUM_THREADS=2

# lenet: the whole training set; resnet18 (about 100x the work per image): a
# slice, so that a run takes minutes, not hours.
configs=(
  "lenet baseline 0 10000 3"
  "lenet mixup 0 10000 3"
  "resnet18 baseline 1536 1000 2"
  "resnet18 mixup 1536 1000 2"
)
printf '%-9s %-9s %12s %12s %7s %12s %12s %7s %9s\n' model method \
  "train mixcal" "train torch" ratio "eval mixcal" "eval torch" ratio "metrics%"
for c in "${configs[@]}"; do
  read -r model method limit test epochs <<<"$c"
  args=(--model "$model" --method "$method" --train-limit "$limit" --test-limit "$test"
        --epochs "$epochs" --threads 2)
  m=$("$bin" "${args[@]}")
  p=$(/usr/bin/python3 "$root/bench/train_bench.py" "${args[@]}")
  /usr/bin/python3 - "$m" "$p" <<'PY'
import json, sys
m, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-9s %-9s %12.0f %12.0f %6.2fx %12.0f %12.0f %6.2fx %8.2f%%" % (
    m["model"], m["method"], m["train_sps"], p["train_sps"], m["train_sps"] / p["train_sps"],
    m["eval_sps"], p["eval_sps"], m["eval_sps"] / p["eval_sps"], 100 * m["metrics_share"]))
PY
done

#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine: installs what is missing,
# builds, starts a coordinator (its SQLite file in mixcal-work/quickstart/)
# and local workers (one per GPU when there are GPUs and a CUDA build, else
# one CPU worker running a job per core), submits the demo sweep
# (examples/quickstart.json: LeNet on 3,000 Fashion-MNIST images for 30
# epochs without weight decay -- the regime where a network fits its
# training labels and turns overconfident; baseline against mixup 0.2 and
# 0.4, label smoothing 0.1 and ERL 0.1, 3 seeds), follows it live, prints the
# summary with each method's difference to the baseline (95% intervals over
# seeds), writes the plots, and stops what it started (also on Ctrl-C).
#
#   deploy/quickstart.sh
#   EPOCHS=10 SEEDS=1 deploy/quickstart.sh                # a quicker look
#   METHODS=baseline,mixup:0.4 deploy/quickstart.sh
#   SPEC=examples/quickstart-full-data.json deploy/quickstart.sh  # all 60,000
#       images, 10 epochs, weight decay: barely overconfident, little to fix
#   deploy/quickstart.sh --keep    # afterwards keep the coordinator and a
#       dashboard (http://127.0.0.1:8080/) up until Ctrl-C, so the printed
#       follow-up commands work as they are
set -euo pipefail
KEEP="${KEEP:-0}"
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

SPEC="${SPEC:-examples/quickstart.json}"
EPOCHS="${EPOCHS:-}"
SEEDS="${SEEDS:-}"
METHODS="${METHODS:-}"
WORK="${WORK:-$root/mixcal-work/quickstart}"
build="${MIXCAL_BUILD_DIR:-$root/build}"

bash deploy/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target mixcal-coordinator mixcal-worker mixcal mixcal_python
bash deploy/python_path.sh "$build"
bin="$build"
mixcal() { "$bin/client/mixcal" "$@"; }

source deploy/lib/local.sh
start_coordinator "$bin" "$WORK"

gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
if [ "$gpus" -gt 0 ] && ldd "$bin/worker/mixcal-worker" | grep -q libtorch_cuda; then
  for i in $(seq 0 $((gpus - 1))); do
    "$bin/worker/mixcal-worker" --device "cuda:$i" --checkpoint_dir "$WORK/checkpoints" \
      --name "gpu$i" 2>"$WORK/worker-gpu$i.log" &
    pids+=($!)
  done
  echo "coordinator on $MIXCAL_ADDRESS, $gpus GPU workers"
  device=cuda
else
  # One job per core at once (--slots, a thread each): 1.43x the jobs per
  # hour of one job on all cores here (bench/layout_bench.sh,
  # docs/benchmarks.md).
  cores=$(nproc)
  OMP_NUM_THREADS=1 "$bin/worker/mixcal-worker" --threads "$cores" --slots "$cores" \
    --checkpoint_dir "$WORK/checkpoints" --name cpu 2>"$WORK/worker-cpu.log" &
  pids+=($!)
  echo "coordinator on $MIXCAL_ADDRESS, a CPU worker with $cores slots (one job per core)"
  device=cpu
fi

overrides=(--device "$device")
[ -n "$EPOCHS" ] && overrides+=(--epochs "$EPOCHS")
[ -n "$SEEDS" ] && overrides+=(--seeds "$SEEDS")
[ -n "$METHODS" ] && overrides+=(--methods "$METHODS")
sweep_json=$(mixcal submit "$SPEC" "${overrides[@]}" --format json)
sweep=$(echo "$sweep_json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
jobs=$(echo "$sweep_json" | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["job_ids"]))')
echo "sweep $sweep: $(echo $jobs | wc -w) jobs ($SPEC${EPOCHS:+, $EPOCHS epochs}${SEEDS:+, $SEEDS seeds}${METHODS:+, $METHODS})"
echo
mixcal watch "$sweep"

echo
# Two lines on what the tables show, from this sweep's own numbers.
mixcal summary "$sweep" --vs baseline --format json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
all_rows = json.load(sys.stdin)
split = lambda name: [r for r in all_rows if r["split"] == name]
stat = lambda r, m: next((s for s in r.get("stats", []) if s["metric"] == m), None)
key = lambda r: (r["method"], r["value"])
print("What you are looking at: ECE is the gap between confidence and accuracy; OE is the part of it where the network is more confident than right.")
rows, val = split("test"), {key(r): r for r in split("val")}
base = next((r for r in rows if r["method"] == "baseline"), None)
others = [r for r in rows if r["method"] != "baseline" and stat(r, "ece")]
def interval(d):
    if d.get("pairs", 0) < 2:
        return "one seed: no interval"
    return "its interval excludes 0" if d.get("significant") else "its interval includes 0"
if base and others:
    e, o = stat(base, "ece")["mean"], stat(base, "oe")["mean"]
    kind = "overconfident" if o >= e / 2 else "mostly underconfident"
    # The method to speak of is chosen on validation data (split val), and
    # its test numbers reported: choosing on test would flatter it.
    on_val = all(key(r) in val and stat(val[key(r)], "ece") for r in others)
    pick = (lambda r: stat(val[key(r)], "ece")["mean"]) if on_val else (lambda r: stat(r, "ece")["mean"])
    best = min(others, key=pick)
    b, d = stat(best, "ece")["mean"], stat(best, "ece").get("vs", {})
    name = best["method"] + " " + format(best["value"], "g")
    chosen = "lowest validation ECE" if on_val else "lowest test ECE (no validation split: chosen on test data)"
    ratio = f"{e / max(b, 1e-9):.1f}x lower" if b < e else "not below the baseline"
    dm = d.get("mean", 0)
    print(f"Here the baseline has test ECE {e:.4f}, OE {o:.4f} ({kind}); of the other methods {name} has the {chosen}; "
          f"its test ECE is {b:.4f}, {ratio} (difference {dm:+.4f}, {interval(d)}).")
    ts = {key(r): r for r in split("test_ts")}
    if key(base) in ts and key(best) in ts and stat(ts[key(best)], "ece"):
        bt, ot = stat(ts[key(base)], "ece")["mean"], stat(ts[key(best)], "ece")
        dt = ot.get("vs", {})
        om, dtm = ot["mean"], dt.get("mean", 0)
        print(f"After temperature scaling (fitted on the validation split): baseline ECE {bt:.4f}, {name} {om:.4f} "
              f"(difference {dtm:+.4f}, {interval(dt)}).")
' || true
mixcal summary "$sweep" --vs baseline | sed -n '/^difference to/,$p'
echo

plots="$WORK/plots"
mkdir -p "$plots"
base_job=$(echo $jobs | cut -d' ' -f1)
mixup_job=$(mixcal jobs "$sweep" --format json | /usr/bin/python3 -c '
import json, sys
jobs = [j for j in json.load(sys.stdin) if j.get("method") == "mixup"]
print(jobs[0]["id"] if jobs else "")')
mixcal plot curves "$sweep" --metric ece --out "$plots/ece-by-epoch.svg" >/dev/null
mixcal plot curves "$sweep" --metric oe --out "$plots/oe-by-epoch.svg" >/dev/null
mixcal plot curves "$sweep" --metric accuracy --out "$plots/accuracy-by-epoch.svg" >/dev/null
mixcal plot reliability "$base_job" --out "$plots/reliability-baseline-job$base_job.svg" >/dev/null
if [ -n "$mixup_job" ]; then
  mixcal plot reliability "$mixup_job" --out "$plots/reliability-mixup-job$mixup_job.svg" >/dev/null
  mixcal plot evolution "$base_job" --with "$mixup_job" --split test \
    --out "$plots/evolution-test.svg" >/dev/null
fi
# Each method's ECE minus the baseline's (none when the grid has no baseline).
mixcal plot sweep "$sweep" --metric ece --vs baseline \
  --out "$plots/ece-difference-to-baseline.svg" >/dev/null 2>&1 || true
mixcal metrics "$sweep" --format csv > "$WORK/metrics.csv"
echo
echo "plots: $(cd "$plots" && ls *.svg | tr '\n' ' ')"

if [ "$KEEP" = 1 ]; then
  DASH_LISTEN="${DASH_LISTEN:-127.0.0.1:8080}"
  "$bin/client/mixcal" dashboard --listen "$DASH_LISTEN" >"$WORK/dashboard.log" 2>&1 &
  pids+=($!)
  sleep 1
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "the dashboard did not start ($(cat "$WORK/dashboard.log")); try DASH_LISTEN=127.0.0.1:0" >&2
  fi
fi

cat <<MSG

Done. Everything is in $WORK:
  mixcal.db        the coordinator's SQLite file (all sweeps, jobs and per-epoch metrics)
  mixcal.db.predictions   each job's kept test predictions (back it up with mixcal.db)
  metrics.csv      every epoch of every job (pandas: pd.read_csv)
  plots/*.svg      open them in a browser
More, while a coordinator runs (mixcal is $bin/client/mixcal; export MIXCAL_ADDRESS=$MIXCAL_ADDRESS):
  mixcal dashboard --open                  the sweeps in a browser, live (http://127.0.0.1:8080/)
  mixcal summary $sweep --at best:ece --vs baseline   at each job's best epoch by validation ECE
  mixcal summary $sweep --split test_ts    after temperature scaling only
  mixcal plot evolution $base_job --with ${mixup_job:-JOB} --split test   reliability across epochs
  mixcal predictions $base_job --out p.npz    its kept test probabilities and labels (numpy.load)
  mixcal submit examples/papers/thulasidasan-fmnist.json --wait    every method of the paper (39 jobs)
  bench/reproduce.sh       all the papers' claims, written up in docs/results.md
MSG
if [ "$KEEP" = 1 ]; then
  echo "The coordinator ($MIXCAL_ADDRESS) and the dashboard (http://${DASH_LISTEN}/) stay up until Ctrl-C."
  wait "${pids[0]}"
else
  echo "To keep them up: deploy/quickstart.sh --keep (or $bin/server/mixcal-coordinator --db $WORK/mixcal.db)"
fi

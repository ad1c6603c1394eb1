#!/usr/bin/env bash
# The main job. On a fresh Debian 12 machine: installs what is missing,
# builds, starts a coordinator (its SQLite file in mixcal-work/quickstart/)
# and local workers (one per GPU when there are GPUs and a CUDA build, else
# one CPU worker running a job per core), submits the demo sweep (Fashion-MNIST,
# LeNet: baseline against mixup 0.2 and 0.4, label smoothing 0.1 and ERL 0.1),
# follows it live, prints the summary, writes the plots, and stops what it
# started (also on Ctrl-C).
#
#   deploy/quickstart.sh
#   EPOCHS=3 SEEDS=1 deploy/quickstart.sh                 # a quicker look
#   METHODS=baseline,mixup:0.4 deploy/quickstart.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

EPOCHS="${EPOCHS:-10}"
SEEDS="${SEEDS:-2}"
METHODS="${METHODS:-baseline,mixup:0.2,mixup:0.4,ls:0.1,erl:0.1}"
WORK="${WORK:-$root/mixcal-work/quickstart}"
build="${MIXCAL_BUILD_DIR:-$root/build}"

bash deploy/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target mixcal-coordinator mixcal-worker mixcal
bin="$build"
mixcal() { "$bin/client/mixcal" "$@"; }

mkdir -p "$WORK"
rm -f "$WORK/port"
pids=()
cleanup() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping the coordinator and workers"; exit 130' INT TERM

"$bin/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$WORK/mixcal.db" \
  --port_file "$WORK/port" 2>"$WORK/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { echo "the coordinator did not start; see $WORK/coordinator.log" >&2; exit 1; }
export MIXCAL_ADDRESS="127.0.0.1:$(cat "$WORK/port")"

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

sweep_json=$(mixcal submit --name quickstart --dataset fashion-mnist --model lenet \
  --methods "$METHODS" --seeds "$SEEDS" --epochs "$EPOCHS" --device "$device" --format json)
sweep=$(echo "$sweep_json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
jobs=$(echo "$sweep_json" | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["job_ids"]))')
echo "sweep $sweep: $(echo $jobs | wc -w) jobs ($METHODS x $SEEDS seeds x $EPOCHS epochs)"
echo
mixcal watch "$sweep"

echo
plots="$WORK/plots"
mkdir -p "$plots"
first_job=$(echo $jobs | cut -d' ' -f1)
last_job=$(echo $jobs | awk '{print $NF}')
mixcal plot curves "$sweep" --metric ece --out "$plots/ece-by-epoch.svg"
mixcal plot curves "$sweep" --metric accuracy --out "$plots/accuracy-by-epoch.svg"
mixcal plot reliability "$first_job" --out "$plots/reliability-job$first_job.svg"
mixcal plot reliability "$last_job" --out "$plots/reliability-job$last_job.svg"
if echo "$METHODS" | grep -q 'mixup:.*mixup:'; then
  mixcal plot sweep "$sweep" --metric ece --param alpha --out "$plots/ece-vs-alpha.svg"
fi
mixcal metrics "$sweep" --format csv > "$WORK/metrics.csv"

cat <<MSG

Done. Everything is in $WORK:
  mixcal.db        the coordinator's SQLite file (all sweeps, jobs and per-epoch metrics)
  metrics.csv      every epoch of every job (pandas: pd.read_csv)
  plots/*.svg      open them in a browser
More, while a coordinator runs (mixcal is $bin/client/mixcal; MIXCAL_ADDRESS=$MIXCAL_ADDRESS here):
  mixcal summary $sweep --at best:ece      the table at each job's best epoch by ECE
  mixcal summary $sweep --split test_ts    after temperature scaling only
  mixcal submit examples/mixup-fashion-mnist.json --wait    the full sweep of the papers' setting
To keep a coordinator running: $bin/server/mixcal-coordinator --db $WORK/mixcal.db
MSG

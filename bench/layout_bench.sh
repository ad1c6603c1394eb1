#!/usr/bin/env bash
# Which worker layout drains the quickstart's grid fastest on this machine:
# one worker with all cores' threads, one worker per core with one thread
# each, or one worker with --slots equal to the cores. Each layout runs the
# same sweep (the quickstart's 5 methods x SEEDS seeds, EPOCHS epochs) on a
# fresh coordinator, one after another in this script; printed: wall time,
# jobs per hour and the ratio to the first layout. docs/benchmarks.md quotes
# a run; deploy/quickstart.sh uses the winner.
#   bench/layout_bench.sh                 # EPOCHS=2 SEEDS=2
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MIXCAL_BUILD_DIR:-$root/build}"
EPOCHS="${EPOCHS:-2}"
SEEDS="${SEEDS:-2}"
METHODS="${METHODS:-baseline,mixup:0.2,mixup:0.4,ls:0.1,erl:0.1}"
bash "$root/deploy/setup.sh" >/dev/null
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 --target mixcal-coordinator mixcal-worker mixcal >/dev/null
cores=$(nproc)
W="$(mktemp -d /tmp/mixcal_layout.XXXXXX)"
pids=()
stop_all() { [[ ${#pids[@]} -gt 0 ]] && { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }; pids=(); }
trap 'stop_all; rm -rf "$W"' EXIT

run_layout() {  # run_layout NAME: prints seconds
  local name=$1 dir="$W/$1"
  mkdir -p "$dir"
  "$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$dir/mixcal.db" \
    --port_file "$dir/port" 2>"$dir/coordinator.log" & pids+=($!)
  for _ in $(seq 100); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
  export MIXCAL_ADDRESS="127.0.0.1:$(cat "$dir/port")"
  local w=("$build/worker/mixcal-worker" --checkpoint_dir "$dir/ckpt")
  case $name in
    one-worker-${cores}-threads)
      OMP_NUM_THREADS=$cores "${w[@]}" --threads "$cores" 2>"$dir/w.log" & pids+=($!) ;;
    ${cores}-workers-1-thread)
      for i in $(seq "$cores"); do
        OMP_NUM_THREADS=1 "${w[@]}" --threads 1 --name "w$i" 2>"$dir/w$i.log" & pids+=($!)
      done ;;
    one-worker-${cores}-slots)
      OMP_NUM_THREADS=1 "${w[@]}" --threads "$cores" --slots "$cores" 2>"$dir/w.log" & pids+=($!) ;;
  esac
  local start end
  start=$(date +%s.%N)
  "$build/client/mixcal" submit --name layout --dataset fashion-mnist --model lenet \
    --methods "$METHODS" --seeds "$SEEDS" --epochs "$EPOCHS" --device cpu --wait \
    > "$dir/submit.out" 2>&1
  end=$(date +%s.%N)
  grep -q "succeeded" <("$build/client/mixcal" sweeps) || { echo "layout $name: the sweep did not succeed" >&2; cat "$dir/submit.out" >&2; exit 1; }
  stop_all
  /usr/bin/python3 -c "print(round($end - $start, 1))"
}

jobs=$(( 5 * SEEDS ))
echo "layout: the quickstart grid, $jobs jobs x $EPOCHS epochs (LeNet, Fashion-MNIST), $cores cores"
first=""
for layout in "one-worker-${cores}-threads" "${cores}-workers-1-thread" "one-worker-${cores}-slots"; do
  s=$(run_layout "$layout")
  [[ -z "$first" ]] && first=$s
  /usr/bin/python3 -c "
s, first, jobs = $s, $first, $jobs
print(f'layout: {\"$layout\":28s} {s:7.1f} s  {jobs * 3600 / s:7.1f} jobs/h  {first / s:5.2f}x the first')"
done

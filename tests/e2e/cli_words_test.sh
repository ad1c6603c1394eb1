#!/usr/bin/env bash
# The CLI's exit codes and words against a real coordinator and worker:
# what does not exist is exit 1 naming it, never an empty table with 0; a
# daemon's unknown flag is exit 2; a running sweep's summary is not "final";
# gone workers are listed only with --all.
#   tests/e2e/cli_words_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
R="$(mktemp -d /tmp/mixcal_cliwords.XXXXXX)"
cleanup() {
  set +e
  for pidfile in "$R"/*.pid; do [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null; done
  sleep 1; rm -rf "$R"
}
trap cleanup EXIT
mixcal() { "$build/client/mixcal" "$@"; }
fail=0
expect() {  # expect CODE WORDS -- COMMAND...: exit CODE and WORDS in its output
  local code=$1 words=$2; shift 3
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  if [[ $rc -ne $code || "$out" != *"$words"* ]]; then
    echo "FAILED: $* -> exit $rc, wanted $code with \"$words\": $out"; fail=1
  else
    echo "ok: $* -> exit $rc: $(head -1 <<< "$out")"
  fi
}
expect 2 "unknown flag --dbb" -- "$build/server/mixcal-coordinator" --dbb x
expect 2 "unknown flag --bogus" -- "$build/worker/mixcal-worker" --bogus
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$R/mixcal.db" \
  --port_file "$R/port" --lease_seconds 2 --heartbeat_seconds 0.5 \
  > "$R/coordinator.log" 2>&1 & echo $! > "$R/coordinator.pid"
for _ in $(seq 100); do [[ -s "$R/port" ]] && break; sleep 0.1; done
export MIXCAL_ADDRESS="127.0.0.1:$(cat "$R/port")"
cat > "$R/sweep.json" <<JSON
{"name": "words", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 8192, "testCount": 256}},
 "model": "mlp", "training": {"epochs": 6, "batchSize": 64},
 "methods": [{"name": "baseline"}], "seeds": [0], "device": "cpu"}
JSON
mixcal submit "$R/sweep.json" > /dev/null
OMP_NUM_THREADS=1 "$build/worker/mixcal-worker" --checkpoint_dir "$R/ckpt" \
  --cache_dir "$R/cache" --max_jobs 1 > "$R/worker.log" 2>&1 & echo $! > "$R/worker.pid"
for _ in $(seq 300); do [[ $(mixcal metrics 1 --split test | wc -l) -ge 3 ]] && break; sleep 0.1; done
expect 0 "the newest epoch (" -- mixcal summary 1
expect 1 "no sweep 9999" -- mixcal jobs 9999
expect 1 "no sweep 9999" -- mixcal metrics 9999
expect 1 "no split tset in sweep 1 (known:" -- mixcal summary 1 --split tset
expect 1 "no split tset in sweep 1 (known:" -- mixcal metrics 1 --split tset
for _ in $(seq 600); do mixcal sweeps | grep -qE '^ *1 +words +succeeded' && break; sleep 0.2; done
expect 0 ", at final" -- mixcal summary 1
expect 0 "sweep_id,job_id,method" -- mixcal metrics 1
expect 0 "no comparison: the sweep has no configuration other than baseline" -- mixcal summary 1 --vs baseline
for _ in $(seq 100); do kill -0 "$(cat "$R/worker.pid")" 2>/dev/null || break; sleep 0.1; done
expect 0 "1 gone worker(s) not shown; --all lists them" -- mixcal workers
expect 0 "gone (stopped)" -- mixcal workers --all
# Who cancelled a sweep is in its events, and the CLI shows them.
mixcal submit "$R/sweep.json" --name cancelled > /dev/null
expect 0 "of its jobs cancelled" -- mixcal cancel 2
expect 0 "jobs cancelled by" -- mixcal events 2
expect 1 "no sweep 9999" -- mixcal events 9999
expect 2 "--limit must be in [1, 1000000]" -- mixcal events 2 --limit 0
expect 0 "(the newest 1 of " -- mixcal events 2 --limit 1
expect 1 "no sweep 9999" -- mixcal plot curves 9999
expect 1 "no epoch 99 in sweep 1 (its jobs have epochs 1 to 6)" -- mixcal summary 1 --at epoch:99
# One job's settings, defaults filled in (the spec left batch size empty).
settings="$(mixcal jobs --job 1)"
if grep -qE '^  training\.batch_size +64$' <<< "$settings" && grep -qE '^  evaluation\.ece_bins +15$' <<< "$settings" &&
   grep -qE '^  training\.milestones +3, 4$' <<< "$settings"; then
  echo "ok: mixcal jobs --job 1 lists its settings, defaults (15 bins, milestones 3, 4) filled in"
else
  echo "FAILED: mixcal jobs --job 1: $settings"; fail=1
fi
expect 1 "no job 9999" -- mixcal jobs --job 9999
# A file shortened from the command line: its step milestones named, and
# overridden.
expect 2 "training.milestones (5,8) lie past --epochs 2: give --milestones" -- \
  mixcal submit "$root/examples/mixup-fashion-mnist.json" --epochs 2 --seeds 1
expect 0 "submitted" -- mixcal submit "$root/examples/mixup-fashion-mnist.json" --epochs 2 --seeds 1 --milestones 1
expect 0 "submitted" -- mixcal submit "$root/examples/mixup-fashion-mnist.json" --epochs 2 --seeds 1 --schedule cosine
expect 2 "--milestones applies to the step schedule" -- \
  mixcal submit "$root/examples/mixup-fashion-mnist.json" --epochs 2 --schedule cosine --milestones 1
[[ $fail -eq 0 ]] || { tail -n 20 "$R/coordinator.log"; exit 1; }

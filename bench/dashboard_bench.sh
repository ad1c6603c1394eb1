#!/usr/bin/env bash
# The dashboard's speed with a lab-sized sweep: a coordinator holding 1,000
# jobs x 100 epochs (filled by mixcal-bench-dispatch's simulated workers over
# gRPC), `mixcal dashboard` in front of it, and Debian's chromium (headless,
# puppeteer-core) measuring (bench/dashboard_bench.js):
#   - the sweep page's load time until all 1,000 job rows and the summary are
#     drawn (target: under 300 ms), and its curves figure;
#   - live updates: a fake worker stores epochs of a running sweep; the time
#     from each ReportEpoch's return to the browser showing it (target: 1 s).
#   bench/dashboard_bench.sh             # after tests/run.sh built build/
#   JOBS=200 bench/dashboard_bench.sh    # a quicker look
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
JOBS="${JOBS:-1000}"
REPORTS="${REPORTS:-100}"
for f in "$build/bench/mixcal-bench-dispatch" "$build/client/mixcal" "$build/server/mixcal-coordinator"; do
  [ -x "$f" ] || { echo "build first: $f is missing (run tests/run.sh)" >&2; exit 1; }
done
[ -d "$root/tests/dashboard/node_modules/puppeteer-core" ] ||
  { echo "puppeteer-core is missing: run tests/run.sh (npm ci in tests/dashboard)" >&2; exit 1; }

work=$(mktemp -d /tmp/mixcal-dashboard-bench.XXXXXX)
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --port_file "$work/port" \
  --db "$work/mixcal.db" >"$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
address="127.0.0.1:$(cat "$work/port")"

echo "filling the coordinator: $JOBS jobs x $REPORTS epochs ..."
"$build/bench/mixcal-bench-dispatch" --coordinator "$address" --jobs "$JOBS" \
  --reports "$REPORTS" --nounary > "$work/fill.log" 2>&1
# The filler's big sweep is the fresh coordinator's first.
big=1
[ "$("$build/client/mixcal" jobs "$big" --format json --address "$address" |
    /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$JOBS" ] ||
  { echo "sweep $big does not hold $JOBS jobs; see $work/fill.log" >&2; exit 1; }

# A running sweep for the live part: one job, leased by the fake worker.
live=$("$build/client/mixcal" submit --name live --dataset synthetic --model mlp \
  --methods baseline --epochs 20 --format json --address "$address" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

"$build/client/mixcal" dashboard --listen 127.0.0.1:0 --port-file "$work/dash.port" \
  --address "$address" > "$work/dashboard.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/dash.port" ] && break; sleep 0.1; done
dash="http://127.0.0.1:$(cat "$work/dash.port")"
api_ms=$(curl -s -o /dev/null -w '%{time_total}' "$dash/api/sweep/$big")
result=$(node "$root/bench/dashboard_bench.js" "$dash" "$big" "$JOBS" "$live" "$address" "$build/python")
echo "$result"
echo "its JSON /api/sweep/$big alone: $(/usr/bin/python3 -c "print(round($api_ms * 1000))") ms (curl)"
for _ in 1 2 3 4 5; do
  curl -s -o /dev/null -w '%{time_total}\n' "$dash/api/sweep/$big/summary?at=final&split=test&vs=baseline"
done | sort -n | sed -n 3p | { read -r s; echo "its summary JSON (final epoch against the baseline) alone: $(/usr/bin/python3 -c "print(round($s * 1000))") ms (curl, median of 5)"; }

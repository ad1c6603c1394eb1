#!/usr/bin/env bash
# mixcal's coordinator against Optuna's storages on the same work: 1,000 jobs
# (trials) x 100 epoch reports (trial.report calls). mixcal: a
# mixcal-coordinator process and 32 simulated workers over gRPC on 127.0.0.1
# (bench/dispatch_bench.cc), on StreamReports and, for reference, on one
# ReportEpoch call per report. Optuna: 4 processes on RDB storage with a
# SQLite file and on JournalStorage with a file (bench/optuna_bench.py,
# Debian's python3-optuna). Prints each side,
# the stored counts and the ratios.
#   bench/dispatch_bench.sh                 # after tests/run.sh built build/
#   JOBS=200 REPORTS=50 bench/dispatch_bench.sh   # a quicker look
#   PREDICTIONS_ONLY=1 bench/dispatch_bench.sh     # only the last section
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"
bin="$build/bench/mixcal-bench-dispatch"
[ -x "$bin" ] || { echo "build first: $bin is missing (run tests/run.sh)" >&2; exit 1; }
JOBS="${JOBS:-1000}"
REPORTS="${REPORTS:-100}"

if [ "${PREDICTIONS_ONLY:-0}" != 1 ]; then
# The coordinator as a lab runs it: its own process on a fresh SQLite file.
work=$(mktemp -d /tmp/mixcal-dispatch-bench.XXXXXX)
coordinator_pid=""
cleanup() {
  [ -n "$coordinator_pid" ] && kill "$coordinator_pid" 2>/dev/null && wait "$coordinator_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --port_file "$work/port" \
    --db "$work/mixcal.db" >"$work/coordinator.log" 2>&1 &
coordinator_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/coordinator.log" >&2; exit 1; }

m_out=$("$bin" --jobs "$JOBS" --reports "$REPORTS" --workers 32 \
    --coordinator "127.0.0.1:$(cat "$work/port")" --coordinator_pid "$coordinator_pid")
echo "$m_out" | grep -v '^{'
m_json=$(echo "$m_out" | grep '^{')
o_json=$(/usr/bin/python3 "$root/bench/optuna_bench.py" --trials "$JOBS" --reports "$REPORTS" --procs 4)
echo "$o_json"
/usr/bin/python3 - "$m_json" "$o_json" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
optuna = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
print()
print("%-20s %10s %10s %12s %10s %s" % ("", "seconds", "reports/s", "stored", "jobs/s", "stored once?"))
print("%-20s %10.2f %10.0f %12d %10.2f %s" % ("mixcal (stream)", m["seconds"], m["reports_per_sec"], m["stored"],
      m["jobs_per_sec"], "yes" if m["stored"] == m["reports"] == m["distinct"] else "NO"))
for o in optuna:
    print("%-20s %10.2f %10.0f %12d %10.2f %s" % (o["impl"], o["seconds"], o["reports_per_sec"], o["stored"],
          o["trials_per_sec"], "yes" if o["stored"] == o["reports"] else "NO (%d errors)" % o["errors"]))
best = max(optuna, key=lambda o: o["reports_per_sec"])
print("CPU per report: simulated workers %.1f us, coordinator %.1f us" % (
      m["worker_cpu_us_per_report"], m["coordinator_cpu_us_per_report"]))
print()
for o in optuna:
    print("mixcal / %-18s %.1fx reports/s" % (o["impl"] + ":", m["reports_per_sec"] / o["reports_per_sec"]))
print("target: >= 10x the faster Optuna storage (%s): %s" % (best["impl"],
      "met" if m["reports_per_sec"] >= 10 * best["reports_per_sec"] else "NOT met"))
print("dispatch latency, queued -> acquired: median %.2f ms, p99 %.2f ms (target p99 < 20 ms: %s)" % (
      m["dispatch_p50_ms"], m["dispatch_p99_ms"], "met" if m["dispatch_p99_ms"] < 20 else "NOT met"))
PY
fi

# Keeping predictions: each job's last report also carries the test split's
# probabilities (10,000 x 10 float16 + labels: 240 KB, Fashion-MNIST's
# size). Same-script runs, five of each, alternating, on fresh in-process
# coordinators; medians.
echo
plain=() kept=()
for round in 1 2 3 4 5; do
  plain+=("$("$bin" --jobs "$JOBS" --reports "$REPORTS" --no-unary | grep '^{')")
  kept+=("$("$bin" --jobs "$JOBS" --reports "$REPORTS" --no-unary --predictions 10000 | grep '^{')")
done
/usr/bin/python3 - "${plain[@]}" "${kept[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
plain, kept = runs[:len(runs) // 2], runs[len(runs) // 2:]
p = statistics.median(r["reports_per_sec"] for r in plain)
k = statistics.median(r["reports_per_sec"] for r in kept)
print("report stream without predictions: %.0f reports/s (%s)" % (p, ", ".join("%.0f" % r["reports_per_sec"] for r in plain)))
print("with each job's last report keeping 10000 x 10 predictions: %.0f reports/s (%s)" % (
    k, ", ".join("%.0f" % r["reports_per_sec"] for r in kept)))
print("ratio %.2f (target >= 0.90: %s); all stored once: %s" % (
    k / p, "met" if k / p >= 0.9 else "NOT met",
    "yes" if all(r["stored"] == r["reports"] == r["distinct"] for r in runs) else "NO"))
PY


#!/usr/bin/env bash
# Two mixcal-coordinator builds under the same load, alternating on fresh
# databases: the same simulated workers (mixcal-bench-dispatch, 1,000 jobs
# x 100 reports on StreamReports) against each, ROUNDS rounds, the order
# alternating. Prints each run's reports/s and CPU per report.
#   bench/ab_coordinators.sh OLD_COORDINATOR NEW_COORDINATOR
#   e.g. build a57ac71 in a worktree, then
#   bench/ab_coordinators.sh ../old/build/server/mixcal-coordinator build/server/mixcal-coordinator
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -eq 2 ] || { echo "usage: $0 OLD_COORDINATOR NEW_COORDINATOR" >&2; exit 2; }
old=$1 new=$2
bench="${BENCH:-$root/build/bench/mixcal-bench-dispatch}"
rounds="${ROUNDS:-3}"
run() {
  local coord=$1 w pid
  w=$(mktemp -d /tmp/mixcal-ab.XXXXXX)
  "$coord" --listen 127.0.0.1:0 --port_file "$w/port" --db "$w/m.db" >"$w/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -s "$w/port" ] && break; sleep 0.1; done
  "$bench" --coordinator "127.0.0.1:$(cat "$w/port")" --coordinator_pid "$pid" \
      --nounary --nodispatch 2>/dev/null |
    grep -oE '"(reports_per_sec|coordinator_cpu_us_per_report|worker_cpu_us_per_report)":[0-9.]+' |
    tr '\n' ' '
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$w"
}
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    echo "round $r old: $(run "$old")"; echo "round $r new: $(run "$new")"
  else
    echo "round $r new: $(run "$new")"; echo "round $r old: $(run "$old")"
  fi
done

#!/usr/bin/env bash
# The Python package (python/mixcal, built into BUILD/python) against a real
# coordinator and worker: tests/python/package_test.py.
#   tests/python/package_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
R="$(mktemp -d /tmp/mixcal_python.XXXXXX)"
cleanup() {
  set +e
  for pidfile in "$R"/*.pid; do [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null; done
  sleep 1; rm -rf "$R"
}
trap cleanup EXIT
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$R/mixcal.db" \
  --port_file "$R/port" > "$R/coordinator.log" 2>&1 & echo $! > "$R/coordinator.pid"
for _ in $(seq 100); do [[ -s "$R/port" ]] && break; sleep 0.1; done
export MIXCAL_ADDRESS="127.0.0.1:$(cat "$R/port")"
OMP_NUM_THREADS=1 "$build/worker/mixcal-worker" --checkpoint_dir "$R/ckpt" \
  --cache_dir "$R/cache" > "$R/worker.log" 2>&1 & echo $! > "$R/worker.pid"
cat > "$R/sweep.json" <<JSON
{"name": "python", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 1024, "testCount": 256}},
 "model": "mlp", "training": {"epochs": 3, "batchSize": 64},
 "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.4]}],
 "seeds": [0, 1], "device": "cpu", "evaluation": {"temperatureScaling": true}}
JSON
cd "$R"  # not the checkout: the package must come from the build
PYTHONPATH="$build/python" /usr/bin/python3 "$root/tests/python/package_test.py" \
  "$build/client/mixcal" "$R/sweep.json" || {
  tail -n 20 "$R/coordinator.log" "$R/worker.log"; exit 1; }

#!/usr/bin/env bash
# The long chaos run: SIGKILLs of workers and the coordinator and SIGSTOPs of
# workers past their lease for MIXCAL_CHAOS_SECONDS (default 600), then an
# audit of the database with SQL. Prints faults by kind and rows
# expected/found/lost/doubled (docs/benchmarks.md quotes a run).
#   tests/faults/chaos.sh            # 10 minutes, seed 1
#   MIXCAL_CHAOS_SECONDS=900 MIXCAL_CHAOS_SEED=7 tests/faults/chaos.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${MIXCAL_BUILD_DIR:-$root/build}"
if [[ ! -x "$build/tests/faults/chaos_test" ]]; then
  bash "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "${MIXCAL_JOBS:-2}" --target chaos_test
fi
export MIXCAL_CHAOS_SECONDS="${MIXCAL_CHAOS_SECONDS:-600}"
export OMP_NUM_THREADS=1
start=$(date +%s)
"$build/tests/faults/chaos_test" | grep -E '^chaos:|OK|FAILED|Failure|Expected|Which is|actual' 
echo "chaos: wall time $(( $(date +%s) - start )) s"

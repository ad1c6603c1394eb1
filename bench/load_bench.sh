#!/usr/bin/env bash
# Builds and runs mixcal-bench-load: one coordinator process under 200
# heartbeating workers, 100 reading and 20 never-reading watchers while two
# real workers train, then 2,000 streams at once. Extra arguments go to the
# program (--seconds 120 --workers 200 --watchers 100 --slow 20 --streams 2000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MIXCAL_BUILD_DIR:-$root/build}"
if [[ ! -x "$build/bench/mixcal-bench-load" ]]; then
  bash "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j "${MIXCAL_JOBS:-2}" --target mixcal-bench-load >/dev/null
export OMP_NUM_THREADS=1
exec "$build/bench/mixcal-bench-load" "$@"

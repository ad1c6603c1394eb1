#!/usr/bin/env bash
# Builds and runs mixcal-bench-watch-memory: the coordinator's memory while
# WatchSweep streams never read, and after they close. Extra arguments go to
# the program (--watchers 40 --watch_buffer_mb 16 --reports 10000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MIXCAL_BUILD_DIR:-$root/build}"
if [[ ! -x "$build/bench/mixcal-bench-watch-memory" ]]; then
  bash "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j "${MIXCAL_JOBS:-2}" --target mixcal-bench-watch-memory >/dev/null
exec "$build/bench/mixcal-bench-watch-memory" "$@"

#!/usr/bin/env bash
# Installs what is missing, builds mixcal (Release, ccache) and runs every test.
#   tests/run.sh            # everything
#   tests/run.sh -R Metrics # extra arguments go to ctest
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash deploy/setup.sh
# puppeteer-core for the dashboard's browser test, from npm (the lock file
# pins it); again only when the lock file changed.
dash="$root/tests/dashboard"
if [ ! -f "$dash/node_modules/.package-lock.json" ] ||
   [ "$dash/package-lock.json" -nt "$dash/node_modules/.package-lock.json" ]; then
  (cd "$dash" && npm ci --no-audit --no-fund --loglevel=error)
fi

build="${MIXCAL_BUILD_DIR:-$root/build}"
# Paths relative to the checkout, so that clones in other folders (CI's)
# share ccache's entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
jobs="${MIXCAL_JOBS:-2}"
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs"
bash deploy/python_path.sh "$build"
built=$(date +%s)
echo "tests/run.sh: build took $((built - start)) s"

# One intra-op thread per test process: ctest runs two at once on two cores,
# and busy-waiting OpenMP threads oversubscribe badly (TOOLCHAIN.md).
export OMP_NUM_THREADS=1
ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 600 "$@"
echo "tests/run.sh: tests took $(( $(date +%s) - built )) s"

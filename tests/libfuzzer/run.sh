#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer, UBSan) in a
# build of their own and runs each for MIXCAL_LIBFUZZER_SECONDS (default 60).
# Prints libFuzzer's final figures; a crash leaves its input in the build
# directory and fails the script.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${MIXCAL_LIBFUZZER_BUILD_DIR:-$root/build-libfuzzer}"
seconds="${MIXCAL_LIBFUZZER_SECONDS:-60}"
if ! command -v clang++ >/dev/null; then
  apt-get install -y -q clang >/dev/null
fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMIXCAL_LIBFUZZER=ON >/dev/null
cmake --build "$build" -j "${MIXCAL_JOBS:-2}" --target spec_fuzzer bins_codec_fuzzer
mkdir -p "$build/corpus/spec_fuzzer" "$build/corpus/bins_codec_fuzzer"
cp "$root"/examples/*.json "$build/corpus/spec_fuzzer/" 2>/dev/null || true
cp "$root"/examples/papers/*.json "$build/corpus/spec_fuzzer/" 2>/dev/null || true
printf '[[70,0.30000000000000004,10],[30,20.25,25]]' > "$build/corpus/bins_codec_fuzzer/two"
for f in spec_fuzzer bins_codec_fuzzer; do
  echo "== $f, $seconds s"
  (cd "$build" && "./tests/libfuzzer/$f" -max_total_time="$seconds" \
     -max_len=4096 -print_final_stats=1 "corpus/$f" 2>&1 |
     grep -E "^(stat::|#[0-9]+ +DONE|==|SUMMARY|Done)" || true)
  shopt -s nullglob
  bad=("$build"/crash-* "$build"/leak-* "$build"/oom-* "$build"/timeout-*)
  shopt -u nullglob
  if ((${#bad[@]})); then
    echo "$f: found failing inputs: ${bad[*]}"
    exit 1
  fi
done

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
for f in spec_fuzzer bins_codec_fuzzer; do
  mkdir -p "$build/corpus/$f"
  echo "== $f, $seconds s"
  (cd "$build" && "./tests/libfuzzer/$f" -max_total_time="$seconds" \
     -max_len=4096 -print_final_stats=1 "corpus/$f" 2>&1 |
     grep -E "^(stat::|#[0-9]+ +DONE|==|SUMMARY|Done)" || true)
  if ls "$build"/crash-* "$build"/leak-* >/dev/null 2>&1; then
    echo "$f: found a failing input: $(ls "$build"/crash-* "$build"/leak-* 2>/dev/null)"
    exit 1
  fi
done

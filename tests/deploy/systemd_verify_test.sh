#!/usr/bin/env bash
# systemd-analyze verify on deploy/systemd's units (systemd cannot run as
# PID 1 here, so this is the check): a root directory holds the units where
# systemd looks for them and the binaries where ExecStart names them; any
# output (an unknown key, a missing binary, a bad value) fails the test.
#   tests/deploy/systemd_verify_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -q systemd >/dev/null
fi
R="$(mktemp -d /tmp/mixcal_systemd.XXXXXX)"
trap 'rm -rf "$R"' EXIT
mkdir -p "$R/usr/local/bin" "$R/etc/systemd/system" "$R/usr/lib/systemd"
ln -s /lib/systemd/system "$R/usr/lib/systemd/system"
cp "$build/server/mixcal-coordinator" "$build/worker/mixcal-worker" "$R/usr/local/bin/"
cp "$root"/deploy/systemd/*.service "$R/etc/systemd/system/"
out="$(systemd-analyze verify --root="$R" --man=no \
  mixcal-coordinator.service mixcal-worker@0.service mixcal-worker@3.service 2>&1)" || {
  echo "$out"; echo "FAILED: systemd-analyze verify"; exit 1; }
if [[ -n "$out" ]]; then echo "$out"; echo "FAILED: warnings above"; exit 1; fi
echo "systemd-analyze verify: mixcal-coordinator.service, mixcal-worker@.service: ok"

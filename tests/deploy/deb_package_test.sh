#!/usr/bin/env bash
# The .deb as a lab admin installs it: `cpack -G DEB` in the build, then
# dpkg -i (its dependencies are the Debian libraries the build linked,
# found by dpkg-shlibdeps), the installed units through systemd-analyze
# verify, the binaries on PATH answering --help, the credential directories
# mode 700; then dpkg --purge leaves nothing behind. Root; skipped otherwise.
#   tests/deploy/deb_package_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
if [[ $(id -u) -ne 0 ]]; then echo "skipped: needs root"; exit 77; fi
for tool in dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null || apt-get -o DPkg::Lock::Timeout=900 install -y -q dpkg-dev file >/dev/null
done
if dpkg -s mixcal >/dev/null 2>&1; then echo "skipped: a mixcal package is installed"; exit 77; fi
R="$(mktemp -d /tmp/mixcal_deb.XXXXXX)"
trap 'dpkg --purge mixcal >/dev/null 2>&1; rm -rf "$R"' EXIT
start=$(date +%s)
(cd "$R" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$R" > "$R/cpack.log" 2>&1) || {
  cat "$R/cpack.log"; echo "FAILED: cpack"; exit 1; }
deb="$(ls "$R"/mixcal_*.deb)"
echo "built $(basename "$deb"): $(du -h "$deb" | cut -f1) in $(( $(date +%s) - start )) s"
dpkg-deb --field "$deb" Depends
fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
dpkg -i "$deb" > "$R/dpkg.log" 2>&1 || { cat "$R/dpkg.log"; echo "FAILED: dpkg -i"; exit 1; }
for bin in mixcal mixcal-coordinator mixcal-worker mixcal-train; do
  check "[[ \$(command -v $bin) == /usr/bin/$bin ]]" "$bin on PATH in /usr/bin"
  check "$bin --help > /dev/null 2>&1" "$bin --help exits 0"
done
check "[[ -f /usr/lib/systemd/system/mixcal-coordinator.service ]]" "the coordinator unit is installed"
check "[[ -f /usr/lib/systemd/system/mixcal-worker@.service ]]" "the worker unit is installed"
check "[[ -x /usr/share/mixcal/mixcal-worker.sbatch ]]" "the sbatch script is installed"
check "[[ -f /usr/share/mixcal/mixcal-coordinator-slurm.conf ]]" "the launcher's drop-in is installed"
doc="$(sed -n 's|^Documentation=file://||p' /usr/lib/systemd/system/mixcal-coordinator.service)"
check "[[ -f '$doc' ]]" "Documentation= $doc is installed"
check "[[ \$(stat -c %a /etc/mixcal/coordinator) == 700 && \$(stat -c %a /etc/mixcal/worker) == 700 ]]" "the credential directories are mode 700"
out="$(systemd-analyze verify --man=no mixcal-coordinator.service mixcal-worker@0.service 2>&1)" || true
check "[[ -z '$out' ]]" "systemd-analyze verify of the installed units is silent ($out)"
dpkg --purge mixcal > "$R/purge.log" 2>&1
check "[[ ! -e /usr/bin/mixcal-coordinator && ! -e /usr/lib/systemd/system/mixcal-coordinator.service ]]" "dpkg --purge removes it"
[[ $fail -eq 0 ]] || exit 1
echo "deb: installed, verified, purged"

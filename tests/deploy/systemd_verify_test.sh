#!/usr/bin/env bash
# The systemd units as installed (`cmake --install` into a root directory,
# prefix /usr as the .deb has it), then:
#  1. systemd-analyze verify: any output (an unknown key, a missing binary,
#     a bad value) fails; the Slurm launcher's drop-in too.
#  2. Each unit's ExecStart run the way systemd runs it (systemd cannot be
#     PID 1 here): as an unprivileged user of its own, working directory /,
#     $STATE_DIRECTORY its own, and $CREDENTIALS_DIRECTORY holding copies of
#     the root-only files of /etc/mixcal/<unit>/ (LoadCredential=) owned by
#     that user. The coordinator must serve TLS with the tokens from there,
#     the worker register over TLS with its token from there, and the CLI
#     reach it through MIXCAL_TLS_CA and MIXCAL_TOKEN_FILE. The same user
#     reading /etc/mixcal/coordinator/tokens directly is refused, which is
#     why the units use credentials.
# Root for step 2 (a user, chown); skipped without it.
#   tests/deploy/systemd_verify_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -q systemd >/dev/null
fi
R="$(mktemp -d /tmp/mixcal_systemd.XXXXXX)"
U=mixcal-unit-test
cleanup() {
  set +e
  for pidfile in "$R"/*.pid; do [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null; done
  sleep 1
  id "$U" >/dev/null 2>&1 && userdel "$U" 2>/dev/null
  rm -rf "$R"
}
trap cleanup EXIT
chmod 755 "$R"
DESTDIR="$R" cmake --install "$build" --prefix /usr > "$R/install.log"
units="$R/usr/lib/systemd/system"
mkdir -p "$R/lib/systemd/system"
cp -a /lib/systemd/system/. "$R/lib/systemd/system/"  # the targets they name
fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
verify() {
  local out
  out="$(systemd-analyze verify --root="$R" --man=no "$@" 2>&1)" || {
    echo "$out"; echo "FAILED: systemd-analyze verify $*"; exit 1; }
  if [[ -n "$out" ]]; then echo "$out"; echo "FAILED: warnings above"; exit 1; fi
}
verify mixcal-coordinator.service mixcal-worker@0.service mixcal-worker@3.service
check "grep -q '^ExecStart=/usr/bin/mixcal-coordinator ' '$units/mixcal-coordinator.service'" "ExecStart names the installed binary"
doc="$(sed -n 's|^Documentation=file://||p' "$units/mixcal-coordinator.service")"
check "[[ -f '$R$doc' ]]" "Documentation= ($doc) is installed"
check "[[ -x '$R/usr/share/mixcal/mixcal-worker.sbatch' ]]" "the sbatch script is installed"
check "[[ \$(stat -c %a '$R/etc/mixcal/coordinator') == 700 ]]" "/etc/mixcal/coordinator is mode 700"
mkdir -p "$R/etc/systemd/system/mixcal-coordinator.service.d"
cp "$R/usr/share/mixcal/mixcal-coordinator-slurm.conf" \
  "$R/etc/systemd/system/mixcal-coordinator.service.d/slurm.conf"
verify mixcal-coordinator.service
echo "systemd-analyze verify: the units, and the coordinator with the Slurm drop-in: ok"
[[ $fail -eq 0 ]] || exit 1
if [[ $(id -u) -ne 0 ]]; then echo "skipped the run as a service user: needs root"; exit 0; fi

# The files as the docs have an admin make them: root's, directory mode 700.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mixcal \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$R/etc/mixcal/coordinator/server.key" \
  -out "$R/etc/mixcal/coordinator/server.pem" 2>/dev/null
ADMIN=admin-0123456789abcdef
WORKER=worker-0123456789abcdef
printf '%s admin alice\n%s worker lab\n' "$ADMIN" "$WORKER" > "$R/etc/mixcal/coordinator/tokens"
echo "$WORKER" > "$R/etc/mixcal/worker/token"
cp "$R/etc/mixcal/coordinator/server.pem" "$R/etc/mixcal/worker/ca.pem"
chmod 600 "$R"/etc/mixcal/coordinator/* "$R"/etc/mixcal/worker/*
chmod 700 "$R/etc/mixcal/coordinator" "$R/etc/mixcal/worker"
id "$U" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$U"
port=$(( 20000 + RANDOM % 20000 ))

# run_unit UNIT NAME: UNIT's ExecStart as systemd would run it, in the
# background; its environment file's variables are already exported.
run_unit() {
  local unit=$1 name=$2 line state="$R/var/lib/$2" creds="$R/run/credentials/$1"
  mkdir -p "$state" "$creds"
  # LoadCredential=ID:DIR, as systemd does it: each file of DIR becomes the
  # credential ID_FILE (systemd.exec(5)).
  local load id dir f
  load="$(sed -n 's/^LoadCredential=//p' "$units/$unit")"
  id="${load%%:*}"; dir="${load#*:}"
  [[ "$dir" == "/etc/mixcal/$3" ]] || { echo "FAILED: $unit loads $dir, not /etc/mixcal/$3"; exit 1; }
  for f in "$R$dir"/*; do cp "$f" "$creds/${id}_$(basename "$f")"; done
  chown -R "$U:$U" "$state" "$creds"
  chmod 500 "$creds"; chmod 400 "$creds"/*
  line="$(sed -n 's/^ExecStart=//p' "$units/$unit")"
  line="${line//'${STATE_DIRECTORY}'/$state}"
  line="${line//'${CACHE_DIRECTORY}'/$state/cache}"
  line="${line//%i/0}"; line="${line//%H/$(hostname -s)}"
  line="${line//\/usr\/bin\//$R/usr/bin/}"
  ( cd / && eval "exec env STATE_DIRECTORY=$state CREDENTIALS_DIRECTORY=$creds \
      setpriv --reuid=$U --regid=$U --clear-groups $line" ) \
    > "$R/$name.log" 2>&1 & echo $! > "$R/$name.pid"
}

# Without credentials: the service user cannot read root's tokens file.
export MIXCAL_COORDINATOR_ARGS="--listen 127.0.0.1:$port --lease_seconds 5 --heartbeat_seconds 0.5 --tokens_file $R/etc/mixcal/coordinator/tokens"
mkdir -p "$R/var/lib/direct"; chown "$U:$U" "$R/var/lib/direct"
if ( cd / && setpriv --reuid=$U --regid=$U --clear-groups "$R/usr/bin/mixcal-coordinator" \
      --db "$R/var/lib/direct/mixcal.db" $MIXCAL_COORDINATOR_ARGS ) > "$R/direct.log" 2>&1; then
  echo "FAILED: the service user read root's tokens file"; fail=1
fi
check "grep -q 'Permission denied' '$R/direct.log'" "reading root's tokens file directly is refused ($(head -1 "$R/direct.log"))"

export MIXCAL_COORDINATOR_ARGS="--listen 127.0.0.1:$port --lease_seconds 5 --heartbeat_seconds 0.5"
run_unit mixcal-coordinator.service coordinator coordinator
export MIXCAL_TLS_CA="$R/etc/mixcal/worker/ca.pem" MIXCAL_ADDRESS="127.0.0.1:$port"
printf '%s\n' "$ADMIN" > "$R/admin-token"; chmod 600 "$R/admin-token"
export MIXCAL_TOKEN_FILE="$R/admin-token"
for _ in $(seq 100); do "$build/client/mixcal" sweeps >/dev/null 2>&1 && break; sleep 0.1; done
check "'$build/client/mixcal' sweeps > '$R/sweeps.out' 2>&1" "the CLI reaches the unit's coordinator with MIXCAL_TLS_CA and MIXCAL_TOKEN_FILE ($(cat "$R/sweeps.out" 2>/dev/null))"
check "grep -q 'TLS' '$R/coordinator.log'" "the coordinator serves TLS from its credentials"
check "[[ \$(stat -c %U '$R/var/lib/coordinator/mixcal.db') == $U ]]" "its store belongs to the service user"
# Plaintext against it: said plainly.
MIXCAL_TLS_CA= "$build/client/mixcal" sweeps > "$R/plain.out" 2>&1 || true
check "grep -q 'probably serves TLS' '$R/plain.out'" "plaintext against TLS says so ($(cat "$R/plain.out"))"
# Without a token: refused (the tokens were loaded).
MIXCAL_TOKEN_FILE= "$build/client/mixcal" sweeps > "$R/notoken.out" 2>&1 || true
check "grep -qi 'token' '$R/notoken.out'" "a call without a token is refused ($(cat "$R/notoken.out"))"

export MIXCAL_WORKER_ARGS="--exit_when_idle 60s"
( unset MIXCAL_TLS_CA MIXCAL_TOKEN_FILE; run_unit mixcal-worker@.service worker worker )
for _ in $(seq 100); do
  "$build/client/mixcal" workers 2>/dev/null | grep -qE "gpu0 .*(idle|busy)" && break; sleep 0.2
done
"$build/client/mixcal" workers > "$R/workers.out" 2>&1 || true
check "grep -qE 'gpu0 .*(idle|busy)' '$R/workers.out'" "the unit's worker registered over TLS with its credential token"
cat > "$R/sweep.json" <<JSON
{"name": "unit", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 256, "testCount": 128}},
 "model": "mlp", "training": {"epochs": 2, "batchSize": 64},
 "methods": [{"name": "baseline"}], "seeds": [0], "device": "cpu"}
JSON
"$build/client/mixcal" submit "$R/sweep.json" --wait > "$R/submit.out" 2>&1 || true
check "grep -q 'succeeded' '$R/submit.out'" "a sweep trained by the unit's worker succeeded"
echo "units run as $U with LoadCredential-style credentials: coordinator on TLS with tokens, worker registered"
if [[ $fail -ne 0 ]]; then
  cat "$R/coordinator.log" "$R/workers.out" "$R/worker.log" 2>/dev/null | tail -40; exit 1
fi

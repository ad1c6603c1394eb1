#!/usr/bin/env bash
# Two lab users' workers share one checkpoint folder, as docs/cluster.md
# ("Shared checkpoints") sets it up: a root owned by the lab's group, mode
# 2775 (setgid), each user in the group, both with the default umask 022.
# Alice's worker trains a job and is stopped mid-job (it hands the job
# back); Bob's worker must resume it from alice's checkpoint and write its
# own checkpoints into the job folder alice's worker made, to the end.
# Root (users, groups); skipped otherwise.
#   tests/deploy/shared_checkpoints_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
if [[ $(id -u) -ne 0 ]]; then echo "skipped: needs root"; exit 77; fi
G=mixcal-lab-test A=mixcal-alice-test B=mixcal-bob-test
R="$(mktemp -d /tmp/mixcal_shared.XXXXXX)"
cleanup() {
  set +e
  for pidfile in "$R"/*.pid; do [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null; done
  sleep 1
  userdel "$A" 2>/dev/null; userdel "$B" 2>/dev/null; groupdel "$G" 2>/dev/null
  rm -rf "$R"
}
trap cleanup EXIT
chmod 755 "$R"
getent group "$G" >/dev/null || groupadd --system "$G"
for u in "$A" "$B"; do
  id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin -G "$G" "$u"
done
# The admin's one-time setup of the shared root.
install -d -o root -g "$G" -m 2775 "$R/ckpt"
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$R/mixcal.db" \
  --port_file "$R/port" --lease_seconds 5 --heartbeat_seconds 0.5 \
  > "$R/coordinator.log" 2>&1 & echo $! > "$R/coordinator.pid"
for _ in $(seq 100); do [[ -s "$R/port" ]] && break; sleep 0.1; done
export MIXCAL_ADDRESS="127.0.0.1:$(cat "$R/port")"
cat > "$R/sweep.json" <<JSON
{"name": "shared", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 16384, "testCount": 256}},
 "model": "mlp", "training": {"epochs": 12, "batchSize": 64},
 "methods": [{"name": "baseline"}], "seeds": [0], "device": "cpu"}
JSON
"$build/client/mixcal" submit "$R/sweep.json" > /dev/null
worker_as() {  # worker_as USER NAME: a worker run by USER, umask 022
  ( cd / && umask 022 && OMP_NUM_THREADS=1 setpriv --reuid="$1" --regid="$1" --init-groups \
      "$build/worker/mixcal-worker" --checkpoint_dir "$R/ckpt" \
      --cache_dir "$R/cache-$2" --name "$2" --exit_when_idle 5s ) \
    > "$R/$2.log" 2>&1 & echo $! > "$R/$2.pid"
}
install -d -o "$A" "$R/cache-alice"; install -d -o "$B" "$R/cache-bob"
job_field() {
  "$build/client/mixcal" jobs --format json | /usr/bin/python3 -c \
    "import json,sys; j=json.load(sys.stdin)[0]; print(j.get('$1', 0))"
}
worker_as "$A" alice
for _ in $(seq 600); do [[ "$(job_field checkpoint_epoch)" -ge 3 ]] && break; sleep 0.2; done
kill -TERM "$(cat "$R/alice.pid")"   # alice's worker stops: the job is handed back
for _ in $(seq 100); do kill -0 "$(cat "$R/alice.pid")" 2>/dev/null || break; sleep 0.1; done
rm -f "$R/alice.pid"
worker_as "$B" bob
for _ in $(seq 300); do [[ "$(job_field attempt)" -ge 2 ]] && break; sleep 0.1; done
running_error="$(job_field error)"
for _ in $(seq 900); do [[ "$(job_field state)" =~ SUCCEEDED|FAILED ]] && break; sleep 0.2; done
fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
check "[[ '$(job_field state)' == SUCCEEDED ]]" "the job succeeded (state $(job_field state))"
check "grep -q 'resuming from' '$R/bob.log'" "bob's worker resumed alice's checkpoint"
check "! grep -qi 'permission denied' '$R/bob.log'" "bob's worker was never refused a write"
check "[[ '$running_error' == 0 || -z '$running_error' ]]" "the running job's error column is not the old hand-back ($running_error)"
leased="$(/usr/bin/python3 -c "
import sqlite3; c = sqlite3.connect('$R/mixcal.db')
print(*[m for (m,) in c.execute(\"select message from events where kind = 'leased' order by id\")], sep='|')")"
check "[[ '$leased' == *'lease 2: attempt 1 of 3 (1 lease(s) handed back, not counted)'* ]]" "events number a lease once, hand-backs apart ($leased)"
"$build/client/mixcal" workers --all > "$R/workers.out"
check "! grep -q 'out of rotation' '$R/workers.out'" "no worker left rotation"
echo "shared checkpoints: alice's job resumed by bob's worker and finished"
if [[ $fail -ne 0 ]]; then cat "$R/alice.log" "$R/bob.log" "$R/workers.out"; ls -la "$R/ckpt" "$R"/ckpt/*; exit 1; fi

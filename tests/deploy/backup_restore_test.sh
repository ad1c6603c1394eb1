#!/usr/bin/env bash
# An online backup taken during a running sweep, restored as the docs say,
# and read back: a coordinator (tokens, an admin) trains a sweep that keeps
# every epoch's predictions; mid-sweep `mixcal backup` writes a copy. Once
# the sweep ends, the coordinator stops, the backup's two files are copied
# to a new folder and a coordinator started on them. It must hold every
# sweep, every epoch row and every kept prediction of the backup's own
# snapshot, each identical to what the live coordinator served; a
# non-admin token is refused a backup.
#   tests/deploy/backup_restore_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
py=/usr/bin/python3
R="$(mktemp -d /tmp/mixcal_backup.XXXXXX)"
cleanup() {
  set +e
  for pidfile in "$R"/*.pid; do [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null; done
  sleep 1
  rm -rf "$R"
}
trap cleanup EXIT
ADMIN=admin-0123456789abcdef
READER=reader-0123456789abcdef
printf '%s admin alice\n%s submit bob\nworker-0123456789abcdef worker w\n' \
  "$ADMIN" "$READER" > "$R/tokens"
chmod 600 "$R/tokens"
mkdir -p "$R/live" "$R/restored"
start_coordinator() {  # start_coordinator DB NAME
  rm -f "$R/$2.port"
  "$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$1" \
    --port_file "$R/$2.port" --tokens_file "$R/tokens" \
    --backup_dir "$R/backups" --backup_every_hours 0 \
    --lease_seconds 5 --heartbeat_seconds 0.5 > "$R/$2.log" 2>&1 &
  echo $! > "$R/$2.pid"
  for _ in $(seq 100); do [[ -s "$R/$2.port" ]] && break; sleep 0.1; done
  export MIXCAL_ADDRESS="127.0.0.1:$(cat "$R/$2.port")"
}
stop_coordinator() {  # stop_coordinator NAME
  local pid; pid=$(cat "$R/$1.pid")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$R/$1.pid"
}
cli() { "$build/client/mixcal" "$@" --token "$ADMIN"; }
start_coordinator "$R/live/mixcal.db" live
cat > "$R/sweep.json" <<JSON
{"name": "backed-up", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 8192, "testCount": 512}},
 "model": "mlp", "training": {"epochs": 8, "batchSize": 64},
 "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.4]}],
 "seeds": [0], "device": "cpu",
 "evaluation": {"predictions": "every_n", "predictionsEvery": 1}}
JSON
cli submit "$R/sweep.json" > /dev/null
OMP_NUM_THREADS=1 "$build/worker/mixcal-worker" --token worker-0123456789abcdef \
  --checkpoint_dir "$R/ckpt" --cache_dir "$R/cache" --exit_when_idle 3s \
  > "$R/worker.log" 2>&1 & echo $! > "$R/worker.pid"
# Mid-sweep: once 3 epochs of the first job are stored.
for _ in $(seq 600); do
  [[ $(cli metrics 1 --split test 2>/dev/null | wc -l) -ge 4 ]] && break; sleep 0.2
done
fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
"$build/client/mixcal" backup --token "$READER" > "$R/denied.out" 2>&1 || true
check "grep -q 'may not make admin calls' '$R/denied.out'" "a submit token is refused a backup ($(cat "$R/denied.out"))"
cli backup > "$R/backup.out"
cat "$R/backup.out"
dir="$(awk '{print $2}' "$R/backup.out" | tr -d :)"
check "[[ -f '$dir/mixcal.db' && -f '$dir/mixcal.db.predictions' ]]" "the backup holds both files"
# What the backup's snapshot holds.
snapshot="$($py - "$dir/mixcal.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("select count(*) from sweeps").fetchone()[0],
      c.execute("select count(*) from epoch_metrics").fetchone()[0],
      c.execute("select count(*) from predictions").fetchone()[0])
for job, epoch, split in c.execute("select job_id, epoch, split from predictions order by 1, 2, 3"):
    print(job, epoch, split)
PY
)"
read -r sweeps epochs kept <<< "$(head -1 <<< "$snapshot")"
echo "backup snapshot: $sweeps sweep(s), $epochs epoch rows, $kept kept predictions"
check "[[ $epochs -gt 0 && $kept -gt 0 ]]" "the snapshot has epochs and predictions"
# The same predictions from the live coordinator (written once: they do not
# change), then the sweep runs to its end.
mkdir -p "$R/live-pred" "$R/restored-pred"
tail -n +2 <<< "$snapshot" | while read -r job epoch split; do
  cli predictions "$job" --epoch "$epoch" --split "$split" --out "$R/live-pred/$job-$epoch-$split.csv" > /dev/null
done
for _ in $(seq 900); do
  cli sweeps 2>/dev/null | grep -qE '^ *1 +backed-up +succeeded' && break; sleep 0.2
done
cli metrics 1 > "$R/live-metrics.csv"
stop_coordinator live

# Restore: the two files copied into place, a coordinator started on them.
cp "$dir/mixcal.db" "$R/restored/mixcal.db"
cp "$dir/mixcal.db.predictions" "$R/restored/mixcal.db.predictions"
start_coordinator "$R/restored/mixcal.db" restored
for _ in $(seq 100); do cli sweeps >/dev/null 2>&1 && break; sleep 0.1; done
check "[[ \$(cli sweeps | tail -n +2 | wc -l) -eq $sweeps ]]" "every sweep of the backup is read"
cli metrics 1 > "$R/restored-metrics.csv"
check "[[ \$(tail -n +2 '$R/restored-metrics.csv' | wc -l) -eq $epochs ]]" "every epoch row of the backup is read ($(tail -n +2 "$R/restored-metrics.csv" | wc -l) of $epochs)"
check "[[ -z \$(comm -23 <(sort '$R/restored-metrics.csv') <(sort '$R/live-metrics.csv')) ]]" "each restored epoch row is the live coordinator's"
n=0
while read -r job epoch split; do
  cli predictions "$job" --epoch "$epoch" --split "$split" --out "$R/restored-pred/$job-$epoch-$split.csv" > /dev/null
  n=$((n + 1))
done < <(tail -n +2 <<< "$snapshot")
check "[[ $n -eq $kept ]] && diff -r '$R/live-pred' '$R/restored-pred' > /dev/null" "all $kept kept predictions read back, identical"
check "grep -q 'serving on port' '$R/restored.log'" "the restored store passed the start-up integrity check"
if [[ $fail -ne 0 ]]; then cat "$R/restored.log" "$R/live.log" | tail -30; exit 1; fi
echo "restored backup: $sweeps sweep(s), $epochs epoch rows, $kept kept predictions read back"

#!/usr/bin/env bash
# A real single-node Slurm cluster (slurmctld, slurmd, munge; two fake GPUs)
# runs deploy/slurm/mixcal-worker.sbatch as a 2-task array against a real
# coordinator: the tasks take their GPUs (--device auto: cpu here, no CUDA),
# register their Slurm job, task and GPU, train a sweep to the end, and exit
# 0 once idle, releasing the allocation. Needs root (daemons, mknod); exits
# 77 (skipped) otherwise.
#   tests/deploy/slurm_array_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"  # absolute: tasks run elsewhere
if [[ $(id -u) -ne 0 ]]; then echo "skipped: needs root"; exit 77; fi
for tool in slurmctld slurmd sbatch munged; do
  if ! command -v "$tool" >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
    break
  fi
done

R="$(mktemp -d /tmp/mixcal_slurm.XXXXXX)"
NODE="$(hostname -s)"
export SLURM_CONF="$R/etc/slurm.conf"
cleanup() {
  set +e
  scancel --quiet --user=root 2>/dev/null
  for _ in $(seq 50); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.2; done
  for pidfile in "$R/slurmd.mypid" "$R/slurmctld.mypid" "$R/coordinator.pid"; do
    [[ -f "$pidfile" ]] && kill -TERM "$(cat "$pidfile")" 2>/dev/null
  done
  [[ -f "$R/munge/munged.pid" ]] && kill -TERM "$(cat "$R/munge/munged.pid")" 2>/dev/null
  sleep 2
  for pidfile in "$R/slurmd.mypid" "$R/slurmctld.mypid" "$R/coordinator.pid"; do
    [[ -f "$pidfile" ]] && kill -KILL "$(cat "$pidfile")" 2>/dev/null
  done
  if [[ -n "${MIXCAL_KEEP_TEST_DIRS:-}" ]]; then echo "kept $R"; else rm -rf "$R"; fi
}
trap cleanup EXIT

mkdir -p "$R"/{etc,state,spool,log,munge,dev,out,ckpt}
chmod 711 "$R/munge"
dd if=/dev/urandom of="$R/munge/munge.key" bs=1 count=1024 status=none
chmod 400 "$R/munge/munge.key"
munged --force --socket="$R/munge/munge.socket" --key-file="$R/munge/munge.key" \
  --log-file="$R/log/munged.log" --pid-file="$R/munge/munged.pid" \
  --seed-file="$R/munge/munged.seed" 2>/dev/null
mknod "$R/dev/fakegpu0" c 1 3
mknod "$R/dev/fakegpu1" c 1 3
cat > "$R/etc/slurm.conf" <<CONF
ClusterName=mixcal
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$R/munge/munge.socket
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool
SlurmctldPidFile=$R/slurmctld.pid
SlurmdPidFile=$R/slurmd.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$R/log/jobcomp.log
ReturnToService=2
MailProg=/bin/true
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$NODE Name=gpu File=$R/dev/fakegpu[0-1]" > "$R/etc/gres.conf"
slurmctld -D -c -i > "$R/log/slurmctld.out" 2>&1 & echo $! > "$R/slurmctld.mypid"
slurmd -D > "$R/log/slurmd.out" 2>&1 & echo $! > "$R/slurmd.mypid"
for _ in $(seq 100); do
  [[ "$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null)" == idle ]] && break
  sleep 0.2
done
[[ "$(sinfo -h -N -n "$NODE" -o %t)" == idle ]] || { echo "slurm did not come up"; cat "$R/log/slurmctld.log"; exit 1; }

# The coordinator, and a sweep of 4 small jobs.
"$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$R/mixcal.db" \
  --port_file "$R/port" --lease_seconds 5 --heartbeat_seconds 0.5 \
  > "$R/log/coordinator.log" 2>&1 & echo $! > "$R/coordinator.pid"
for _ in $(seq 100); do [[ -s "$R/port" ]] && break; sleep 0.1; done
export MIXCAL_ADDRESS="127.0.0.1:$(cat "$R/port")"
cat > "$R/sweep.json" <<JSON
{"name": "slurm", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 1024, "testCount": 256}},
 "model": "mlp", "training": {"epochs": 3, "batchSize": 64},
 "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.4]}],
 "seeds": [0, 1, 2], "device": "cpu"}
JSON
"$build/client/mixcal" submit "$R/sweep.json" > "$R/submit.out"
sweep="$(grep -oE 'sweep [0-9]+' "$R/submit.out" | head -1 | awk '{print $2}')"
[[ -n "$sweep" ]] || { echo "submit failed"; cat "$R/submit.out"; exit 1; }

# The array: two tasks, a fake GPU each, draining a 6-job sweep; they leave
# 6 s after the queue empties (time enough to reach the coordinator on a
# loaded machine: a worker that never reaches it in that time exits 1).
export MIXCAL_CHECKPOINT_DIR="$R/ckpt" MIXCAL_EXIT_WHEN_IDLE=6s
export MIXCAL_WORKER_BIN="$build/worker/mixcal-worker" OMP_NUM_THREADS=1
start=$(date +%s)
job=$(sbatch --parsable --array=0-1 --cpus-per-task=1 --time=5 \
  -o "$R/out/%A_%a.out" "$root/deploy/slurm/mixcal-worker.sbatch")
for _ in $(seq 600); do [[ -z "$(squeue -h -j "$job" -o %i)" ]] && break; sleep 0.5; done
took=$(( $(date +%s) - start ))

fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
"$build/client/mixcal" sweeps > "$R/sweeps.out"
"$build/client/mixcal" workers --all > "$R/workers.out"
check "grep -qE '^ *$sweep +slurm +succeeded' '$R/sweeps.out'" "the sweep succeeded"
check "[[ -z \$(squeue -h -o %i) ]]" "squeue is empty at the end"
check "[[ \$(grep -c 'JobState=COMPLETED' '$R/log/jobcomp.log') -eq 2 ]]" "both tasks completed (exit 0)"
check "[[ \$(grep -c 'ExitCode=0:0' '$R/log/jobcomp.log') -eq 2 ]]" "both tasks exited 0"
check "grep -q 'slurm job ${job}_0, gpu [01]' '$R/workers.out'" "task 0 registered its Slurm job and GPU"
check "grep -q 'slurm job ${job}_1, gpu [01]' '$R/workers.out'" "task 1 registered its Slurm job and GPU"
check "[[ \$(grep -c 'idle for 6s' '$R/workers.out') -eq 2 ]]" "both left once idle, saying so"
echo "slurm array of 2 tasks: sweep $sweep done and tasks gone in ${took} s"
cat "$R/workers.out"
if [[ $fail -ne 0 ]]; then
  cat "$R/sweeps.out" "$R/log/jobcomp.log" "$R"/out/*.out | tail -60
  exit 1
fi

# Stops the coordinator and waits until it has exited (and released its
# database's lock), as systemd does before starting it again.
stop_coordinator() {
  local pid; pid=$(cat "$R/coordinator.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
# fresh_coordinator NAME: the coordinator replaced by one on $R/NAME.db
# (lease 30 s, heartbeats 0.5 s), serving once this returns.
fresh_coordinator() {
  stop_coordinator
  "$build/server/mixcal-coordinator" --listen "127.0.0.1:$port" \
    --db "$R/$1.db" --lease_seconds 30 --heartbeat_seconds 0.5 \
    > "$R/log/$1.log" 2>&1 & echo $! > "$R/coordinator.pid"
  for _ in $(seq 100); do "$build/client/mixcal" sweeps >/dev/null 2>&1 && break; sleep 0.1; done
}
# one_job_spec NAME EPOCHS: a one-job MLP sweep on synthetic data
one_job_spec() {
  cat <<JSON
{"name": "$1", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 16384, "testCount": 256}},
 "model": "mlp", "training": {"epochs": $2, "batchSize": 64},
 "methods": [{"name": "baseline"}], "seeds": [0], "device": "cpu"}
JSON
}

# Workers on demand: a second coordinator (its own store) that submits the
# array itself when jobs are queued, at most 2 tasks, and marks the launch
# ended once Slurm no longer lists it.
stop_coordinator
port=$(( 20000 + RANDOM % 20000 ))
"$build/server/mixcal-coordinator" --listen "127.0.0.1:$port" \
  --db "$R/ondemand.db" --lease_seconds 5 --heartbeat_seconds 0.5 \
  --launcher slurm --launcher_script "$root/deploy/slurm/mixcal-worker.sbatch" \
  --launcher_device_class cpu --launcher_max_workers 2 \
  --launcher_period_seconds 0.5 --slurm_time 5 --slurm_cpus_per_task 1 \
  --launcher_log_dir "$R/out" \
  > "$R/log/ondemand.log" 2>&1 & echo $! > "$R/coordinator.pid"
export MIXCAL_ADDRESS="127.0.0.1:$port"
for _ in $(seq 100); do "$build/client/mixcal" sweeps >/dev/null 2>&1 && break; sleep 0.1; done
start=$(date +%s)
"$build/client/mixcal" submit "$R/sweep.json" > "$R/submit2.out"
sweep2="$(grep -oE 'sweep [0-9]+' "$R/submit2.out" | head -1 | awk '{print $2}')"
ended=""
for _ in $(seq 600); do
  if grep -q "has ended" "$R/log/ondemand.log" && [[ -z "$(squeue -h -o %i)" ]]; then ended=1; break; fi
  sleep 0.5
done
took=$(( $(date +%s) - start ))
"$build/client/mixcal" sweeps > "$R/sweeps2.out"
"$build/client/mixcal" workers --all > "$R/workers2.out"
check "[[ -n '$ended' ]]" "the launched array ended and the launcher saw it"
check "grep -qE '^ *$sweep2 +slurm +succeeded' '$R/sweeps2.out'" "the on-demand sweep succeeded"
check "grep -q 'with 2 task(s)' '$R/log/ondemand.log'" "it submitted 2 tasks (the maximum) for 6 queued jobs"
check "[[ \$(grep -cE 'with [0-9]+ task' '$R/log/ondemand.log') -eq 1 ]]" "and submitted once"
check "[[ \$(grep -cE 'slurm job [0-9]+_[0-9]+ ' '$R/workers2.out') -eq 2 ]]" "2 workers from Slurm registered"
check "! grep -qE 'slurm job [0-9]+_[0-9]+, gpu' '$R/workers2.out'" "tasks launched for cpu jobs hold no GPU (--gres=none)"
echo "workers on demand: sweep $sweep2 done and the array gone in ${took} s"
grep "launcher" "$R/log/ondemand.log"
cat "$R/workers2.out"
if [[ $fail -ne 0 ]]; then
  cat "$R/sweeps2.out" "$R/log/ondemand.log" "$R"/out/*.out | tail -60
  exit 1
fi

# A restart while tasks are pending submits no second set: a job for cuda
# (no task can start: the launcher asks for a GRES the node lacks, so the
# tasks stay pending), then the coordinator restarted on the same store.
restart_launcher() {
  "$build/server/mixcal-coordinator" --listen "127.0.0.1:$port" \
    --db "$R/ondemand.db" --lease_seconds 5 --heartbeat_seconds 0.5 \
    --launcher slurm --launcher_script "$root/deploy/slurm/mixcal-worker.sbatch" \
    --launcher_device_class cuda --launcher_max_workers 2 \
    --launcher_period_seconds 0.5 --slurm_time 5 --slurm_gres gpu:1 \
    --slurm_args="--cpus-per-task=1 --begin=now+1hour --output=$R/out/%A_%a.out" \
    >> "$R/log/restart.log" 2>&1 & echo $! > "$R/coordinator.pid"
  for _ in $(seq 100); do "$build/client/mixcal" sweeps >/dev/null 2>&1 && break; sleep 0.1; done
}
stop_coordinator
restart_launcher
sed 's/"device": "cpu"/"device": "cuda"/; s/"seeds": \[0, 1, 2\]/"seeds": [0]/' \
  "$R/sweep.json" > "$R/cuda.json"
"$build/client/mixcal" submit "$R/cuda.json" > /dev/null
for _ in $(seq 40); do grep -qE 'with [0-9]+ task' "$R/log/restart.log" && break; sleep 0.25; done
stop_coordinator
restart_launcher
sleep 3
check "[[ \$(grep -cE 'with [0-9]+ task' '$R/log/restart.log') -eq 1 ]]" "no second set after the restart"
check "[[ \$(squeue -h -r -o %i | wc -l) -eq 2 ]]" "the 2 pending tasks are Slurm's only ones"
"$build/client/mixcal" cancel "$("$build/client/mixcal" sweeps | awk 'NR==2 {print $1}')" > /dev/null
for _ in $(seq 40); do [[ -z "$(squeue -h -o %i)" ]] && break; sleep 0.25; done
check "[[ -z \$(squeue -h -o %i) ]]" "an empty queue cancelled the pending tasks"
grep "launcher" "$R/log/restart.log"
if [[ $fail -ne 0 ]]; then cat "$R/log/restart.log"; exit 1; fi

# Slow starts: workers that take 8 s to come up (CUDA, a conda environment)
# are counted as coming, so 2 queued jobs get exactly 2 tasks, not 4.
on_demand() {  # on_demand DB LOG [more flags]: a launcher coordinator
  local db=$1 log=$2; shift 2
  "$build/server/mixcal-coordinator" --listen "127.0.0.1:$port" \
    --db "$db" --lease_seconds 5 --heartbeat_seconds 0.5 \
    --launcher slurm --launcher_script "$root/deploy/slurm/mixcal-worker.sbatch" \
    --launcher_device_class cpu --launcher_max_workers 4 \
    --launcher_period_seconds 0.5 --slurm_time 5 --slurm_cpus_per_task 1 \
    --launcher_log_dir "$R/out" "$@" > "$log" 2>&1 & echo $! > "$R/coordinator.pid"
  for _ in $(seq 100); do "$build/client/mixcal" sweeps >/dev/null 2>&1 && break; sleep 0.1; done
}
stop_coordinator
cat > "$R/slow-worker" <<SH
#!/bin/sh
sleep 8
exec "$build/worker/mixcal-worker" "\$@"
SH
chmod 755 "$R/slow-worker"
MIXCAL_WORKER_BIN="$R/slow-worker" on_demand "$R/slow.db" "$R/log/slow.log"
sed 's/"seeds": \[0, 1, 2\]/"seeds": [0]/' "$R/sweep.json" > "$R/two.json"
"$build/client/mixcal" submit "$R/two.json" > "$R/submit3.out"
sweep3="$(grep -oE 'sweep [0-9]+' "$R/submit3.out" | head -1 | awk '{print $2}')"
for _ in $(seq 600); do
  "$build/client/mixcal" sweeps 2>/dev/null | grep -qE "^ *$sweep3 +slurm +succeeded" && break
  sleep 0.5
done
"$build/client/mixcal" sweeps > "$R/sweeps3.out"
"$build/client/mixcal" workers > "$R/workers3.out"
check "grep -qE '^ *$sweep3 +slurm +succeeded' '$R/sweeps3.out'" "the slow-start sweep succeeded"
check "[[ \$(grep -cE 'with [0-9]+ task' '$R/log/slow.log') -eq 1 ]]" "one launch for 2 queued jobs"
check "grep -q 'with 2 task(s)' '$R/log/slow.log'" "of 2 tasks, not more while they started"
echo "slow-starting workers: $(grep -E 'with [0-9]+ task' "$R/log/slow.log" | sed 's/.*launcher: //')"
if [[ $fail -ne 0 ]]; then cat "$R/log/slow.log" "$R/workers3.out"; exit 1; fi

# Tasks that fail at once (here: the worker binary is missing) are launches
# with no worker registered: the launcher backs off (1, 2, 4, 8 s at a
# 0.5 s period), says why in `mixcal workers`, and stops after 5 in a row.
stop_coordinator
scancel --quiet --user=root 2>/dev/null || true
for _ in $(seq 50); do [[ -z "$(squeue -h -o %i)" ]] && break; sleep 0.2; done
MIXCAL_WORKER_BIN=/nonexistent/mixcal-worker on_demand "$R/fail.db" "$R/log/fail.log"
"$build/client/mixcal" submit "$R/two.json" > /dev/null
start=$(date +%s)
for _ in $(seq 240); do grep -q "launcher_stopped\|submits nothing more" "$R/log/fail.log" && break; sleep 0.5; done
took=$(( $(date +%s) - start ))
sleep 3
"$build/client/mixcal" workers > "$R/workers4.out"
launches=$(grep -cE 'launcher: .* with [0-9]+ task' "$R/log/fail.log" || true)
check "[[ $launches -eq 5 ]]" "5 launches, then no more (got $launches)"
check "grep -q 'launch_failed.*FAILED (reason NonZeroExitCode, exit code 127:0).*output $R/out/mixcal-worker-' '$R/workers4.out'" "mixcal workers shows why, with Slurm's reason and the output file"
check "grep -q 'next launch in 8s' '$R/workers4.out'" "backed off exponentially"
check "grep -q 'launcher_stopped' '$R/workers4.out'" "and says it stopped"
check "[[ -z \$(squeue -h -o %i) ]]" "nothing left in Slurm"
check "ls $R/out/mixcal-worker-*_0.out >/dev/null" "task output in the launcher's log directory"
echo "failing tasks: launcher stopped after $launches launches in ${took} s"
cat "$R/workers4.out"
if [[ $fail -ne 0 ]]; then cat "$R/log/fail.log"; exit 1; fi

# A second user: two lab users' tasks share one checkpoint folder (group
# mixcal-lab, setgid 2770, docs/cluster.md "Shared checkpoints"). Alice's
# task trains a job and is scancel'ed mid-job; Bob's task resumes it from
# her checkpoint, in the job folder her worker made, and finishes.
G=mixcal-lab-slurm; UA=mixcal-alice-slurm; UB=mixcal-bob-slurm
getent group "$G" >/dev/null || groupadd --system "$G"
for u in "$UA" "$UB"; do
  id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh -G "$G" "$u"
done
remove_users() { userdel "$UA" 2>/dev/null; userdel "$UB" 2>/dev/null; groupdel "$G" 2>/dev/null; }
trap 'remove_users; cleanup' EXIT
chmod 755 "$R"
install -d -g "$G" -m 2770 "$R/shared-ckpt"
install -d -m 1777 "$R/u"
fresh_coordinator users
one_job_spec two-users 12 > "$R/users.json"
"$build/client/mixcal" submit "$R/users.json" > /dev/null
as_user() {  # as_user USER: one task run by USER; its array id
  MIXCAL_CHECKPOINT_DIR="$R/shared-ckpt" MIXCAL_EXIT_WHEN_IDLE=60s \
    sbatch --parsable --uid="$1" --chdir="$R/u" --array=0 --cpus-per-task=1 --time=5 \
    -o "$R/u/$1-%A_%a.out" "$root/deploy/slurm/mixcal-worker.sbatch" --cache_dir "$R/u/cache-$1"
}
users_job() {
  "$build/client/mixcal" jobs --format json | /usr/bin/python3 -c \
    "import json,sys; j=json.load(sys.stdin)[0]; print(j.get('$1', 0))"
}
alice_task=$(as_user "$UA")
for _ in $(seq 400); do [[ "$(users_job checkpoint_epoch)" -ge 2 ]] && break; sleep 0.25; done
scancel "$alice_task"
for _ in $(seq 100); do [[ "$(users_job handbacks)" -ge 1 ]] && break; sleep 0.1; done
bob_task=$(as_user "$UB")
for _ in $(seq 600); do [[ "$(users_job state)" =~ SUCCEEDED|FAILED ]] && break; sleep 0.25; done
check "[[ '$(users_job state)' == SUCCEEDED ]]" "the two users' job succeeded ($(users_job state))"
check "grep -q 'resuming from' $R/u/$UB-*.out" "bob's task resumed alice's checkpoint"
check "! grep -qi 'permission denied' $R/u/$UB-*.out" "bob's task was never refused a write"
check "grep -q 'attempt 1' $R/u/$UA-*.out" "alice's task trained the job first"
echo "second user: alice's task (slurm job $alice_task) stopped mid-job, bob's ($bob_task) resumed and finished"
# Bob's task would wait for work until its idle timeout: end it here, so it
# takes nothing of the next part's.
scancel "$bob_task"
for _ in $(seq 100); do [[ -z "$(squeue -h -j "$bob_task" 2>/dev/null)" ]] && break; sleep 0.1; done
if [[ $fail -ne 0 ]]; then cat "$R/log/users.log" "$R"/u/*.out | tail -40; exit 1; fi

# Preemption: scancel of the task that trains a job, mid-job. The job is
# back in the queue at once (a hand-back, not a lease expiry), resumes from
# its checkpoint on the other task, and no epoch is lost or stored twice.
fresh_coordinator preempt
one_job_spec preempt 30 > "$R/long.json"
"$build/client/mixcal" submit "$R/long.json" > /dev/null
MIXCAL_EXIT_WHEN_IDLE=60s sbatch --parsable --array=0-1 --cpus-per-task=1 --time=5 \
  -o "$R/out/p%A_%a.out" "$root/deploy/slurm/mixcal-worker.sbatch" > /dev/null
py=/usr/bin/python3
job_field() {  # job_field FIELD: the one job's FIELD (proto JSON name)
  "$build/client/mixcal" jobs --format json | $py -c \
    "import json,sys; j=json.load(sys.stdin)[0]; print(j.get('$1', 0))"
}
for _ in $(seq 240); do [[ "$(job_field checkpoint_epoch)" -ge 2 ]] && break; sleep 0.25; done
task="$("$build/client/mixcal" workers --format json | $py -c "
import json,sys
for w in json.load(sys.stdin):
  if str(w.get('current_job_id','0')) != '0': print(w['placement'].split(',')[0].split()[-1])")"
if [[ -z "$task" ]]; then
  echo "FAILED: no task holds the job"; "$build/client/mixcal" workers --format json
  "$build/client/mixcal" jobs --format json; cat "$R"/out/p*.out; exit 1
fi
scancel "$task"
t0=$(date +%s.%N)
for _ in $(seq 40); do [[ "$(job_field handbacks)" -ge 1 ]] && break; sleep 0.1; done
back=$($py -c "import time; print(round(time.time() - $t0, 2))")
for _ in $(seq 600); do [[ "$(job_field state)" == SUCCEEDED ]] && break; sleep 0.25; done
check "[[ '$(job_field state)' == SUCCEEDED ]]" "the preempted job succeeded"
check "[[ '$(job_field handbacks)' == 1 ]]" "it was handed back once"
check "$py -c 'import sys; sys.exit(0 if $back < 1.5 else 1)'" "back in the queue within a second or so ($back s)"
check "grep -q 'resuming from' $R/out/p*.out" "the other task resumed it from its checkpoint"
rows=$($py -c "
import sqlite3; c = sqlite3.connect('$R/preempt.db')
print(c.execute(\"select count(*), count(distinct epoch), min(epoch), max(epoch) from epoch_metrics where split='test'\").fetchone())")
check "[[ '$rows' == '(30, 30, 1, 30)' ]]" "epochs 1-30 stored once each (got $rows)"
echo "preemption: task $task cancelled; the job was back in the queue after $back s; rows $rows"
if [[ $fail -ne 0 ]]; then cat "$R/log/preempt.log" "$R"/out/p*.out | tail -40; exit 1; fi

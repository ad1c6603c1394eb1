# Sourced by the scripts that run mixcal on this machine (deploy/quickstart.sh,
# bench/reproduce.sh): the processes they start are stopped when they exit,
# also on Ctrl-C.
#
#   source deploy/lib/local.sh
#   start_coordinator "$build" "$WORK"   # sets MIXCAL_ADDRESS; state in $WORK/mixcal.db
#   some_process & pids+=($!)            # stopped on exit as well

pids=()
stop_started() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_started EXIT
trap 'echo; echo "interrupted: stopping the coordinator and workers"; exit 130' INT TERM

# start_coordinator BUILD_DIR WORK_DIR: a coordinator on a free loopback port
# over WORK_DIR/mixcal.db (its log: WORK_DIR/coordinator.log); exports
# MIXCAL_ADDRESS, or exits naming the log.
start_coordinator() {
  local build=$1 work=$2
  mkdir -p "$work"
  rm -f "$work/port"
  "$build/server/mixcal-coordinator" --listen 127.0.0.1:0 --db "$work/mixcal.db" \
    --port_file "$work/port" 2>>"$work/coordinator.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { echo "the coordinator did not start; see $work/coordinator.log" >&2; exit 1; }
  export MIXCAL_ADDRESS="127.0.0.1:$(cat "$work/port")"
}

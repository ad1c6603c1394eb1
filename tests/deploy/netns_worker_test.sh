#!/usr/bin/env bash
# A worker on "another host": its own network namespace, joined to this one
# by a veth pair with addresses chosen here (nothing leaves the machine). The
# coordinator listens on the veth address with TLS and tokens; the worker
# completes a sweep through it; the same worker without the CA, or with a
# wrong token, is refused with a clear message. Needs root (exits 77,
# skipped, otherwise).
#   tests/deploy/netns_worker_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
  echo "skipped: needs root and ip"; exit 77
fi
R="$(mktemp -d /tmp/mixcal_netns.XXXXXX)"
NS="mixcal-$$"
NET=$(( 10 + RANDOM % 200 ))
HOST_IP="10.231.$NET.1"
WORKER_IP="10.231.$NET.2"
VETH="mxh$$"
cleanup() {
  set +e
  [[ -f "$R/coordinator.pid" ]] && kill -TERM "$(cat "$R/coordinator.pid")" 2>/dev/null
  sleep 0.5
  ip link del "$VETH" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  if [[ -n "${MIXCAL_KEEP_TEST_DIRS:-}" ]]; then echo "kept $R"; else rm -rf "$R"; fi
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$VETH" type veth peer name "mxw$$"
ip link set "mxw$$" netns "$NS"
ip addr add "$HOST_IP/24" dev "$VETH"
ip link set "$VETH" up
ip netns exec "$NS" ip addr add "$WORKER_IP/24" dev "mxw$$"
ip netns exec "$NS" ip link set "mxw$$" up
ip netns exec "$NS" ip link set lo up

# A certificate for the veth address, which is also the clients' CA here.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mixcal \
  -addext "subjectAltName=IP:$HOST_IP" -keyout "$R/key.pem" \
  -out "$R/cert.pem" 2>/dev/null
ADMIN=admin-0123456789abcdef
WORKER=worker-0123456789abcdef
printf '%s admin alice\n%s worker cluster\n' "$ADMIN" "$WORKER" > "$R/tokens"
chmod 600 "$R/tokens" "$R/key.pem"
port=$(( 20000 + RANDOM % 20000 ))
"$build/server/mixcal-coordinator" --listen "$HOST_IP:$port" --db "$R/mixcal.db" \
  --tls_cert "$R/cert.pem" --tls_key "$R/key.pem" --tokens_file "$R/tokens" \
  --lease_seconds 5 --heartbeat_seconds 0.5 > "$R/coordinator.log" 2>&1 &
echo $! > "$R/coordinator.pid"
cli() { "$build/client/mixcal" "$@" --address "$HOST_IP:$port" --tls-ca "$R/cert.pem" --token "$ADMIN"; }
for _ in $(seq 100); do cli sweeps >/dev/null 2>&1 && break; sleep 0.1; done
cat > "$R/sweep.json" <<JSON
{"name": "netns", "data": {"dataset": "synthetic",
  "synthetic": {"trainCount": 1024, "testCount": 256}},
 "model": "mlp", "training": {"epochs": 2, "batchSize": 64},
 "methods": [{"name": "baseline"}, {"name": "mixup", "values": [0.4]}],
 "seeds": [0], "device": "cpu"}
JSON
cli submit "$R/sweep.json" > /dev/null

# The CLI above reached the coordinator from this namespace, which does not
# cross the veth pair: wait until the worker's namespace reaches the port too
# (a veth link can take a moment to carry packets on a loaded machine).
for _ in $(seq 100); do
  ip netns exec "$NS" timeout 1 bash -c "exec 3<>/dev/tcp/$HOST_IP/$port" 2>/dev/null && break
  sleep 0.1
done

fail=0
check() { if ! eval "$1"; then echo "FAILED: $2"; fail=1; fi; }
worker=(ip netns exec "$NS" env OMP_NUM_THREADS=1 "$build/worker/mixcal-worker"
        --coordinator "$HOST_IP:$port" --checkpoint_dir "$R/ckpt" --threads 1)
set +e
"${worker[@]}" --token "$WORKER" > "$R/no_ca.log" 2>&1; no_ca=$?
timeout 60 "${worker[@]}" --token wrong-0123456789abcdef --tls_ca "$R/cert.pem" \
  > "$R/wrong_token.log" 2>&1; wrong=$?
timeout 120 "${worker[@]}" --token "$WORKER" --tls_ca "$R/cert.pem" --max_jobs 2 \
  > "$R/worker.log" 2>&1; good=$?
set -e
cli sweeps > "$R/sweeps.out"
check "[[ $no_ca -ne 0 ]] && grep -q 'refusing to send the token in plaintext' '$R/no_ca.log'" \
  "without the CA the worker refuses, saying why"
check "[[ $wrong -ne 0 && $wrong -ne 124 ]] && grep -q 'unknown token' '$R/wrong_token.log'" \
  "a wrong token is refused, saying so"
check "[[ $good -eq 0 ]]" "the worker in its namespace ran its 2 jobs and exited 0"
check "grep -qE '^ *1 +netns +succeeded' '$R/sweeps.out'" "the sweep succeeded over TLS from the namespace"
echo "netns: worker at $WORKER_IP, coordinator at $HOST_IP:$port (TLS, tokens)"
cat "$R/no_ca.log" "$R/wrong_token.log" | head -4
if [[ $fail -ne 0 ]]; then
  cat "$R/sweeps.out" "$R/worker.log" "$R/coordinator.log" | tail -40
  exit 1
fi

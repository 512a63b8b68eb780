# Sourced by the benchmark scripts: a scratch directory on the real disk (not tmpfs), children killed
# on exit, ports, RSS, medians, and mosquitto as the reference broker.
work=$(mktemp -d /var/tmp/hubgate-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# start_reference_mosquitto PORT: mosquitto without persistence and without a queue limit (its
# default drops QoS 1 messages past 1000 queued); sets mpid.
start_reference_mosquitto() {
  cat > "$work/mosquitto.conf" <<CFG
listener $1 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
user root
CFG
  mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
  mpid=$!
  pids+=("$mpid")
}
# run_hubgate: starts $build/hubgate (or $HUBGATE_BIN, another build) on $work/hubgate.toml (logs
# in $work/hubgate.log), waits for /healthz on $metrics; sets hpid. stop_hubgate: SIGTERM and wait.
run_hubgate() {
  "${HUBGATE_BIN:-$build/hubgate}" run -c "$work/hubgate.toml" 2>"$work/hubgate.log" &
  hpid=$!
  pids+=("$hpid")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null && return; sleep 0.1; done
  echo "hubgate did not start" >&2; cat "$work/hubgate.log" >&2; exit 1
}
stop_hubgate() { kill "$hpid"; wait "$hpid" 2>/dev/null || true; }

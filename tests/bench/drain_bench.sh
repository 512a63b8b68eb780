#!/usr/bin/env bash
# Upstream drain benchmark (on demand, not in CI). In one run, on this machine:
#  - mosquitto's own QoS 1 ingest rate for N x 200-byte messages (the yardstick),
#  - hubgate: the same N messages published while the hub is down, then the hub returns: time to
#    the first batch and messages/s until the store is empty (every batch PUBACKed by the hub),
#  - RSS idle and with the N-message backlog queued, restart time after SIGKILL with it queued,
#  - online relay: devices -> hubgate -> hub, messages/s until relayed, vs devices -> mosquitto.
# Usage: tests/bench/drain_bench.sh [N=1000000] [DEVICES=100]
# Env: HUBGATE_BIN=path (another build, e.g. the one before a change)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-1000000}
devices=${2:-100}
per=$((n / devices))
build=$root/build-bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target mqtt_load $([ -z "${HUBGATE_BIN:-}" ] && echo hubgate) -j2 >/dev/null
bin=${HUBGATE_BIN:-$build/hubgate}
load=$build/tests/bench/mqtt_load

work=$(mktemp -d /var/tmp/hubgate-drain-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
metric() { curl -fs "http://127.0.0.1:$metrics/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
key=$(head -c 32 /dev/urandom | base64)
hub_port=$(free_port); mport=$(free_port); hport=$(free_port); metrics=$(free_port)

start_mosquitto() {  # $1 port, $2 name
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nuser root\n' "$1" > "$work/$2.conf"
  mosquitto -c "$work/$2.conf" 2>"$work/$2.log" &
  pids+=($!); echo $! > "$work/$2.pid"
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
}
start_hubgate() {
  "$bin" run -c "$work/hubgate.toml" 2>>"$work/hubgate.log" &
  hpid=$!; pids+=($hpid)
  for _ in $(seq 2000); do curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null && return; sleep 0.005; done
  echo "hubgate did not start" >&2; exit 1
}
{
  printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work"
  printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:%s"\n\n' "$hub_port"
  printf '[store]\ndurability = "power"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
  printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$hport"
  for i in $(seq 0 $((devices - 1))); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
} > "$work/hubgate.toml"

echo "# drain benchmark: N=$n messages of 200 bytes from $devices devices"
start_mosquitto "$mport" direct
m_rate=$("$load" publish "$mport" "$devices" "$per" 200)
echo "mosquitto QoS 1 ingest (yardstick): $m_rate msg/s"

start_hubgate
idle=$(rss_kb "$hpid")
t0=$(now_ns)
in_rate=$("$load" publish "$hport" "$devices" "$per" 200 "$key")
echo "hubgate durable ingest with the hub down: $in_rate msg/s ($(metric hubgate_store_messages) queued)"
queued_rss=$(rss_kb "$hpid")

kill -9 "$hpid"; wait "$hpid" 2>/dev/null || true
t0=$(now_ns); start_hubgate; t1=$(now_ns)
restart_ms=$(( (t1 - t0) / 1000000 ))
echo "restart after SIGKILL with the backlog queued: serving /healthz after $restart_ms ms"

t0=$(now_ns)
start_mosquitto "$hub_port" hub
first=0
while :; do
  b=$(metric hubgate_upstream_batches_total); b=${b:-0}
  if [ "$first" = 0 ] && [ "${b%.*}" -gt 0 ]; then first=$(( ($(now_ns) - t0) / 1000000 )); fi
  [ "$(metric hubgate_store_messages)" = 0 ] && break
  sleep 0.01
done
t1=$(now_ns)
drain_rate=$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
echo "drain: first batch ${first} ms after the hub came back; $drain_rate msg/s until the store was empty"
echo "drain batches: $(metric hubgate_upstream_batches_total), last fill $(metric hubgate_upstream_last_batch_fill)"

# Online: devices -> hubgate -> hub, until everything is relayed.
online_n=$((n / 10)); online_per=$((online_n / devices))
t0=$(now_ns)
"$load" publish "$hport" "$devices" "$online_per" 200 "$key" >/dev/null
while [ "$(metric hubgate_store_messages)" != 0 ]; do sleep 0.005; done
t1=$(now_ns)
online_rate=$(awk -v n="$online_n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
direct_rate=$("$load" publish "$mport" "$devices" "$online_per" 200)
echo "online relay ($online_n msgs): devices->hubgate->hub $online_rate msg/s vs devices->mosquitto $direct_rate msg/s"

echo
echo "| measure | value | ratio |"
echo "|---|---|---|"
awk -v d="$drain_rate" -v m="$m_rate" 'BEGIN { printf "| drain rate vs mosquitto QoS 1 ingest | %d vs %d msg/s | %.2f |\n", d, m, d / m }'
echo "| first batch after the hub returned | $first ms | |"
awk -v o="$online_rate" -v m="$direct_rate" 'BEGIN { printf "| online relay vs devices->mosquitto | %d vs %d msg/s | %.2f |\n", o, m, o / m }'
awk -v i="$idle" -v q="$queued_rss" -v n="$n" 'BEGIN { printf "| RSS idle -> with %d queued | %d -> %d kB | +%.1f MB |\n", n, i, q, (q - i) / 1024 }'
echo "| restart after SIGKILL with the backlog | $restart_ms ms to /healthz | |"

#!/usr/bin/env bash
# Memory benchmark (on demand, not in CI): hubgate's RSS idle (an MQTT and a CoAP listener, the
# metrics server, the hub online), with an N-message backlog queued (200-byte QoS 1 messages
# published while the hub is down), and once the hub is back and the backlog has drained (after
# SETTLE seconds idle). Goal (issue 12): idle <= 14 MB on amd64, after the drain <= idle + 10 MB.
# Usage: tests/bench/memory_bench.sh [N=1000000] [SETTLE=5]
# Env: HUBGATE_BIN=path (e.g. the one before a change); HUBGATE_RUNNER="qemu-aarch64-static" with
# HUBGATE_BIN=build-arm64/hubgate for the arm64 binary under qemu-user (no -L: see README);
# MEMORY_PMAP=1 also prints the largest mappings after the drain, and the RSS after a malloc_trim(0)
# called through gdb (what the gateway itself could still give back).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-1000000}
settle=${2:-5}
devices=10
# The flags of the .deb (scripts/package.sh: RelWithDebInfo, no test hooks), as on a gateway: the
# idle RSS is mostly text, and -O3 (build-bench's Release) makes more of it.
build=$root/build-memory
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF \
  -DHUBGATE_TEST_HOOKS=OFF >/dev/null
cmake --build "$build" --target mqtt_load $([ -z "${HUBGATE_BIN:-}" ] && echo hubgate) -j2 >/dev/null
bin=${HUBGATE_BIN:-$build/hubgate}
load=$build/tests/bench/mqtt_load

source "$root/tests/bench/common.sh"

key=$(head -c 32 /dev/urandom | base64)
hub_port=$(free_port); hport=$(free_port); cport=$(free_port); metrics=$(free_port)
metric() { curl -fs "http://127.0.0.1:$metrics/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
start_hub() {
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nuser root\n' \
    "$hub_port" > "$work/hub.conf"
  mosquitto -c "$work/hub.conf" 2>"$work/hub.log" & hub_pid=$!; pids+=("$hub_pid")
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && return; sleep 0.05; done
}
{
  printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work"
  printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:%s"\n\n' "$hub_port"
  printf '[store]\ndurability = "power"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
  printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$hport"
  printf '[[listener]]\nprotocol = "coap"\nbind = "127.0.0.1:%s"\nauth = "none"\n\n' "$cport"
  for i in $(seq 0 $((devices - 1))); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
} > "$work/hubgate.toml"

start_hub
${HUBGATE_RUNNER:-} "$bin" run -c "$work/hubgate.toml" 2>"$work/hubgate.log" & hpid=$!; pids+=("$hpid")
for _ in $(seq 600); do curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null && break; sleep 0.1; done
sleep "$settle"
idle=$(rss_kb "$hpid")

kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true
"$load" publish "$hport" "$devices" $((n / devices)) 200 "$key" >/dev/null
queued_n=$(metric hubgate_store_messages)
queued=$(rss_kb "$hpid")
peak_before_drain=$(awk '/^VmHWM/ {print $2}' "/proc/$hpid/status")
start_hub
while [ "$(metric hubgate_store_messages)" != 0 ]; do sleep 0.1; done
drained_at=$(rss_kb "$hpid")
sleep "$settle"
drained=$(rss_kb "$hpid")
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$hpid/status")
[ -n "${MEMORY_PMAP:-}" ] && { pmap -x "$hpid" | sort -k3 -n | tail -8 >&2; gdb -p "$hpid" -batch -ex "call (int)malloc_trim(0)" >/dev/null 2>&1; echo "after gdb malloc_trim: $(rss_kb $hpid)" >&2; }
kill "$hpid"; wait "$hpid" 2>/dev/null || true

echo "# memory: ${HUBGATE_RUNNER:+$HUBGATE_RUNNER }$bin; backlog of $queued_n x 200-byte messages, $devices devices"
echo "| idle | with the backlog queued | just drained | drained + ${settle} s | peak (VmHWM) | after drain - idle |"
echo "|---|---|---|---|---|---|"
echo "| $(mb "$idle") MB | $(mb "$queued") MB | $(mb "$drained_at") MB | $(mb "$drained") MB | $(mb "$peak") MB | $(mb $((drained - idle))) MB |"

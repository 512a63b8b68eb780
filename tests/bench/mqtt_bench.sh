#!/usr/bin/env bash
# MQTT ingest benchmark (on demand, not in CI): QoS 1 rate with 1, 10 and 100 devices and 200-byte
# payloads, hubgate (durable before PUBACK) vs mosquitto (no persistence) in the same run with the
# same client (tests/bench/mqtt_load.cpp); RSS idle and with 1000 connected devices.
# Usage: tests/bench/mqtt_bench.sh [TOTAL_MESSAGES_PER_RUN] [REPEATS]
# Env: HUBGATE_BIN=path (another build of hubgate, e.g. the one before a change; same client).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
total=${1:-20000}
repeats=${2:-3}
build=$root/build-bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target hubgate mqtt_load -j2 >/dev/null

source "$root/tests/bench/common.sh"

key=$(head -c 32 /dev/urandom | base64)
mport=$(free_port); hport=$(free_port); metrics=$(free_port)
start_reference_mosquitto "$mport"

start_hubgate() {  # $1 = durability
  rm -f "$work"/hubgate.db*
  {
    printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work"
    printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:9"\n\n'
    printf '[store]\ndurability = "%s"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$1" "$metrics"
    printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$hport"
    for i in $(seq 0 999); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
  } > "$work/hubgate.toml"
  run_hubgate
}

sleep 0.3
echo "# hubgate vs mosquitto, QoS 1, 200-byte payloads, $total messages per run, median of $repeats"
echo "| devices | mosquitto msg/s | hubgate power msg/s | ratio | hubgate process msg/s | ratio |"
echo "|---|---|---|---|---|---|"
for n in 1 10 100; do
  per=$((total / n))
  m=$(for _ in $(seq "$repeats"); do "$build/tests/bench/mqtt_load" publish "$mport" "$n" "$per" 200; done | median)
  start_hubgate power
  hp=$(for _ in $(seq "$repeats"); do "$build/tests/bench/mqtt_load" publish "$hport" "$n" "$per" 200 "$key"; done | median)
  stop_hubgate
  start_hubgate process
  hq=$(for _ in $(seq "$repeats"); do "$build/tests/bench/mqtt_load" publish "$hport" "$n" "$per" 200 "$key"; done | median)
  stop_hubgate
  awk -v n="$n" -v m="$m" -v hp="$hp" -v hq="$hq" 'BEGIN { printf "| %s | %s | %s | %.2f | %s | %.2f |\n", n, m, hp, hp / m, hq, hq / m }'
done

echo
echo "# RSS (kB): idle, and with 1000 connected devices (same client)"
start_hubgate power
sleep 0.5
h_idle=$(rss_kb "$hpid"); m_idle=$(rss_kb "$mpid")
"$build/tests/bench/mqtt_load" hold "$hport" 1000 4 "$key" > "$work/h.out" &
lp=$!
for _ in $(seq 100); do grep -q connected "$work/h.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5; h_1000=$(rss_kb "$hpid"); wait "$lp"
"$build/tests/bench/mqtt_load" hold "$mport" 1000 4 > "$work/m.out" &
lp=$!
for _ in $(seq 100); do grep -q connected "$work/m.out" 2>/dev/null && break; sleep 0.1; done
sleep 0.5; m_1000=$(rss_kb "$mpid"); wait "$lp"
stop_hubgate
echo "| | idle | 1000 devices |"
echo "|---|---|---|"
echo "| mosquitto | $m_idle | $m_1000 |"
echo "| hubgate | $h_idle | $h_1000 |"

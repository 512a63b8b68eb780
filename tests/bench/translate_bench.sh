#!/usr/bin/env bash
# Translation benchmark (on demand, not in CI), two parts:
# 1. Ingest through a JSON rule vs mosquitto: 10 devices publish QoS 1 a real ~240-byte Tasmota
#    tele/SENSOR payload (tests/data/tasmota/tele_SENSOR_pow.json) on tele/{id}/SENSOR; hubgate
#    (auth = "password", rule with format json + time pointer + 2 templated properties, durable
#    before PUBACK) vs mosquitto (no persistence) with the same client in the same run. Also a
#    47-byte Zigbee2MQTT payload on zigbee2mqtt/{id} (rule without a pointer: no JSON tree built).
# 2. Instructions per translated message for each decoder (callgrind, translate_cost).
# Usage: tests/bench/translate_bench.sh [MESSAGES_PER_RUN] [REPEATS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
total=${1:-20000}
repeats=${2:-3}
build=$root/build-bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target hubgate mqtt_load translate_cost -j2 >/dev/null

source "$root/tests/bench/common.sh"
data=$root/tests/data

key=$(head -c 32 /dev/urandom | base64)
mport=$(free_port); hport=$(free_port); metrics=$(free_port)
start_reference_mosquitto "$mport"

start_hubgate() {
  rm -f "$work"/hubgate.db*
  {
    printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work"
    printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:9"\n\n'
    printf '[store]\ndurability = "power"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
    printf '[[listener]]\nname = "lan"\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "password"\n\n' "$hport"
    printf '[[rule]]\nname = "tasmota"\ntopic = "tele/{device}/SENSOR"\nformat = "json"\ndevice = "{device}"\n'
    printf 'module = "tasmota"\ntime = "/Time"\nproperties = { source = "tasmota", site = "{gateway}" }\n\n'
    printf '[[rule]]\nname = "z2m"\ntopic = "zigbee2mqtt/{device}"\nformat = "json"\ndevice = "{device}"\n'
    printf 'module = "zigbee"\nproperties = { source = "zigbee2mqtt" }\n\n'
    for i in $(seq 0 9); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
  } > "$work/hubgate.toml"
  run_hubgate
}

run_load() {  # $1 port, $2 topic template, $3 body file, $4 key (hubgate) or ""
  local per=$((total / 10))
  for _ in $(seq "$repeats"); do
    MQTT_LOAD_TOPIC=$2 MQTT_LOAD_BODY=$3 MQTT_LOAD_AUTH=password "$build/tests/bench/mqtt_load" publish "$1" 10 "$per" 0 $4
  done | median
}

sleep 0.3
echo "# ingest through a JSON rule vs mosquitto, 10 devices, QoS 1, $total messages per run, median of $repeats"
echo "| payload | mosquitto msg/s | hubgate (rule, durable) msg/s | ratio |"
echo "|---|---|---|---|"
start_hubgate
for case in "tele/{id}/SENSOR $data/tasmota/tele_SENSOR_pow.json" "zigbee2mqtt/{id} $data/zigbee2mqtt/device_WSDCGQ01LM.json"; do
  set -- $case
  m=$(run_load "$mport" "$1" "$2" "")
  h=$(run_load "$hport" "$1" "$2" "$key")
  awk -v t="$1 ($(wc -c < "$2") B)" -v m="$m" -v h="$h" 'BEGIN { printf "| %s | %s | %s | %.2f |\n", t, m, h, h / m }'
done
translated=$(curl -fs "http://127.0.0.1:$metrics/metrics" | awk '/^hubgate_translate_messages_total.*outcome="accepted"/ {s += $2} END {print s + 0}')
stop_hubgate
echo "(hubgate translated and stored $translated messages in that run)"

echo
echo "# instructions per translated message (callgrind; translate_cost N=2000 minus N=0)"
echo "| rule format | payload | bytes | instructions/msg |"
echo "|---|---|---|---|"
cost() {  # format pattern topic file [time] [content-format]
  local ir=()
  for n in 0 2000; do
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$build/tests/bench/translate_cost" "$1" "$2" "$3" "$4" "$n" "${5:-}" ${6:-} >/dev/null 2>"$work/cg.log"
    ir+=("$(awk '/^summary:/ {print $2}' "$work/cg.out")")
  done
  awk -v f="$1" -v p="${4#$data/}" -v b="$(wc -c < "$4")" -v a="${ir[0]}" -v z="${ir[1]}" \
    'BEGIN { printf "| %s | %s | %s | %.0f |\n", f, p, b, (z - a) / 2000 }'
}
cost json "tele/{device}/SENSOR" tele/d0/SENSOR "$data/tasmota/tele_SENSOR_pow.json" /Time
cost json "zigbee2mqtt/{device}" zigbee2mqtt/d0 "$data/zigbee2mqtt/device_WSDCGQ01LM.json"
cost text "shellies/{device}/relay/0" shellies/d0/relay/0 "$data/shelly/relay_0_on.txt"
cost senml "/sensors/{device}" /sensors/d0 "$data/senml/rfc8428-5.1.2-multiple-data-points.json" "" 110
cost senml "/sensors/{device}" /sensors/d0 "$data/senml/rfc8428-5.1.3-multiple-measurements.cbor" "" 112
cost cbor "/sensors/{device}" /sensors/d0 "$data/senml/rfc8428-5.1.3-multiple-measurements.cbor" "" 60
cost binary "/sensors/{device}" /sensors/d0 "$data/senml/rfc8428-5.1.3-multiple-measurements.cbor"

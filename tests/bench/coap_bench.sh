#!/usr/bin/env bash
# CoAP ingest benchmark (on demand, not in CI): confirmable POST rate with 1, 10 and 50 concurrent
# CoAP clients (tests/bench/coap_load.cpp, libcoap) vs the same number of MQTT QoS 1 devices
# (tests/bench/mqtt_load.cpp), 200-byte JSON payloads, one Release hubgate with both listeners; and
# the same MQTT load against mosquitto (no persistence) in the same run as the yardstick.
# Usage: tests/bench/coap_bench.sh [TOTAL_MESSAGES_PER_RUN] [REPEATS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
total=${1:-10000}
repeats=${2:-3}
build=$root/build-bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target hubgate coap_load mqtt_load -j2 >/dev/null

work=$(mktemp -d /var/tmp/hubgate-bench-XXXXXX)  # the store on the real disk, not tmpfs
hpid=; mpid=
cleanup() {
  [[ -n $hpid ]] && kill "$hpid" 2>/dev/null
  [[ -n $mpid ]] && kill "$mpid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

key=$(head -c 32 /dev/urandom | base64)
cport=$(free_udp_port); mport=$(free_port); metrics=$(free_port); qport=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nuser root\n' \
  "$qport" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
mpid=$!
{
  printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work"
  printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:9"\n\n'
  printf '[store]\ndurability = "power"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
  printf '[[listener]]\nprotocol = "coap"\nbind = "127.0.0.1:%s"\nauth = "none"\n\n' "$cport"
  printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$mport"
  for i in $(seq 0 99); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
} > "$work/hubgate.toml"
"$build/hubgate" run -c "$work/hubgate.toml" 2>"$work/hubgate.log" &
hpid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null || { echo "hubgate did not start" >&2; cat "$work/hubgate.log" >&2; exit 1; }

echo "# hubgate CoAP vs MQTT ingest, durability power, 200-byte JSON, $total messages per run, median of $repeats"
echo "| clients | CoAP CON POST msg/s | MQTT QoS 1 msg/s | CoAP/MQTT | mosquitto QoS 1 msg/s | CoAP/mosquitto |"
echo "|---|---|---|---|---|---|"
for n in 1 10 50; do
  per=$((total / n))
  c=$(for _ in $(seq "$repeats"); do "$build/tests/bench/coap_load" "$cport" "$n" "$per" 200; done | median)
  m=$(for _ in $(seq "$repeats"); do "$build/tests/bench/mqtt_load" publish "$mport" "$n" "$per" 200 "$key"; done | median)
  q=$(for _ in $(seq "$repeats"); do "$build/tests/bench/mqtt_load" publish "$qport" "$n" "$per" 200; done | median)
  awk -v n="$n" -v c="$c" -v m="$m" -v q="$q" \
    'BEGIN { printf "| %s | %s | %s | %.2f | %s | %.2f |\n", n, c, m, c / m, q, c / q }'
done

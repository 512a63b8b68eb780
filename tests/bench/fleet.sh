#!/usr/bin/env bash
# A fleet on one cluster (on demand, not in CI): G hubgate processes with D devices each, all relaying
# to one three-node RabbitMQ cluster (tests/support/rabbitmq_cluster.sh, quorum session queues), on
# this machine. In one run:
#  - the yardstick: the same G*D devices publishing M QoS 1 messages each straight to the cluster
#    (spread over its three nodes), messages/s until every device had its PUBACKs;
#  - the fleet: devices -> G gateways (durability "power") -> cluster; ingest rate (until every
#    device had its PUBACKs), aggregate rate until every gateway's store was empty (every batch
#    PUBACKed by the cluster), each gateway's share and RSS;
#  - loss: a persistent subscriber on the cluster (held before any load) must receive every message
#    of every (gateway, device), counted from the batches' JSON.
# Usage: tests/bench/fleet.sh [G=10] [D=100] [M=100]      BUILD=dir to use another build directory
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
G=${1:-10}
D=${2:-100}
M=${3:-100}
build=${BUILD:-$root/build-bench}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target hubgate mqtt_load -j2 >/dev/null
load=$build/tests/bench/mqtt_load
cluster=$root/tests/support/rabbitmq_cluster.sh

work=$(mktemp -d /var/tmp/hubgate-fleet-XXXXXX)
pids=()
cleanup() {
  exec 2>/dev/null  # no "Killed" notices for the children
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  bash "$cluster" stop "$work/rmq" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2}'; }
key=$(head -c 32 /dev/urandom | base64)
total=$((G * D * M))

echo "# fleet benchmark: $G gateways x $D devices x $M QoS 1 messages of 200 bytes = $total messages, $(nproc) cores"
base=$((20000 + (RANDOM % 1000) * 30))
t0=$(now_ns)
bash "$cluster" start "$work/rmq" "$base" >/dev/null
echo "cluster: 3 RabbitMQ nodes up and clustered in $(( ($(now_ns) - t0) / 1000000 )) ms (MQTT on $base-$((base + 2)))"
nodes=("tcp://127.0.0.1:$base" "tcp://127.0.0.1:$((base + 1))" "tcp://127.0.0.1:$((base + 2))")

# The checking subscriber: clean session 0 on node 3, before any load (RabbitMQ drops a QoS 1
# publish that matches no binding).
mosquitto_sub -h 127.0.0.1 -p $((base + 2)) -c -i fleet-check -q 1 -t 'devices/+/messages/events/#' -v \
  >"$work/received.txt" 2>"$work/sub.log" &
pids+=($!)
sleep 1

# Yardstick: the same number of devices straight to the cluster, a third on each node; at most
# ~20 000 messages in all (a device's QoS 1 publishes wait for the quorum queue's commit: slow).
per_node=$(( (G * D + 2) / 3 ))
direct_m=$(( 20000 / (per_node * 3) )); [ "$direct_m" -gt "$M" ] && direct_m=$M; [ "$direct_m" -lt 1 ] && direct_m=1
t0=$(now_ns)
wait_loads() { for p in "$@"; do wait "$p"; done; }
lp=()
for n in 0 1 2; do
  MQTT_LOAD_AUTH=none MQTT_LOAD_ID_PREFIX="direct$n-" "$load" publish $((base + n)) "$per_node" "$direct_m" 200 >"$work/direct-$n.txt" &
  lp+=($!)
done
wait_loads "${lp[@]}"
t1=$(now_ns)
direct_n=$((per_node * 3 * direct_m))
direct_rate=$(awk -v n="$direct_n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
echo "yardstick: $((per_node * 3)) devices straight to the cluster: $direct_rate msg/s ($direct_n messages)"

# And the machine's own ceiling for the same devices: one mosquitto, no persistence.
mq_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nuser root\n' "$mq_port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
mq_pid=$!; pids+=($mq_pid)
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$mq_port") 2>/dev/null && break; sleep 0.05; done
mq_rate=$(MQTT_LOAD_AUTH=none "$load" publish "$mq_port" "$((G * D))" "$M" 200)
kill "$mq_pid"
echo "yardstick: $((G * D)) devices straight to one mosquitto (volatile): $mq_rate msg/s ($total messages)"

# The fleet. Gateway i starts its url list at node i mod 3, so connections spread over the nodes.
hpids=(); mports=(); dports=()
for i in $(seq 0 $((G - 1))); do
  mkdir -p "$work/gw$i"
  mport=$(free_port); dport=$(free_port)
  mports+=("$mport"); dports+=("$dport")
  a=${nodes[$((i % 3))]}; b=${nodes[$(((i + 1) % 3))]}; c=${nodes[$(((i + 2) % 3))]}
  {
    printf '[gateway]\nid = "gw-fleet-%s"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$i" "$work/gw$i"
    printf '[upstream]\nprofile = "mqtt"\nurl = ["%s", "%s", "%s"]\npercent_encode_dots = true\n\n' "$a" "$b" "$c"
    printf '[store]\ndurability = "power"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$mport"
    printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$dport"
    for d in $(seq 0 $((D - 1))); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$d" "$key"; done
  } >"$work/gw$i/hubgate.toml"
  "$build/hubgate" run -c "$work/gw$i/hubgate.toml" 2>"$work/gw$i/hubgate.log" &
  hpids+=($!); pids+=($!)
done
for i in $(seq 0 $((G - 1))); do
  for _ in $(seq 300); do
    [ "$(metric "${mports[$i]}" hubgate_upstream_connected)" = 1 ] && break
    sleep 0.1
  done
  [ "$(metric "${mports[$i]}" hubgate_upstream_connected)" = 1 ] || { echo "gateway $i did not connect" >&2; cat "$work/gw$i/hubgate.log" >&2; exit 1; }
done
idle_rss=$(for p in "${hpids[@]}"; do rss_kb "$p"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

t0=$(now_ns)
lp=()
for i in $(seq 0 $((G - 1))); do
  "$load" publish "${dports[$i]}" "$D" "$M" 200 "$key" >"$work/gw$i/ingest.txt" &
  lp+=($!)
done
wait_loads "${lp[@]}"
t_ingest=$(now_ns)
for i in $(seq 0 $((G - 1))); do
  while [ "$(metric "${mports[$i]}" hubgate_store_messages)" != 0 ]; do sleep 0.02; done
done
t_relayed=$(now_ns)
ingest_rate=$(awk -v n="$total" -v ns=$((t_ingest - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
relay_rate=$(awk -v n="$total" -v ns=$((t_relayed - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
peak_rss=$(for p in "${hpids[@]}"; do rss_kb "$p"; done | sort -n | tail -1)
echo "fleet: $G gateways x $D devices: ingest $ingest_rate msg/s (all devices acknowledged), relayed to the cluster $relay_rate msg/s (every store empty)"
echo "ratios: fleet end to end / devices straight to the cluster = $(awk -v a="$relay_rate" -v b="$direct_rate" 'BEGIN { printf "%.2f", a / b }');" \
  "fleet ingest / one mosquitto = $(awk -v a="$ingest_rate" -v b="$mq_rate" 'BEGIN { printf "%.2f", a / b }')"
echo "per gateway: relayed, ingest msg/s, node in use, RSS (idle median ${idle_rss} KiB, largest now ${peak_rss} KiB)"
for i in $(seq 0 $((G - 1))); do
  relayed=$(metric "${mports[$i]}" hubgate_upstream_messages_relayed_total)
  node=$(curl -fs "http://127.0.0.1:${mports[$i]}/metrics" | awk '/^hubgate_upstream_node\{/ && $2 == 1 {print $1}' | sed 's/.*url="\(.*\)".*/\1/')
  printf '  gw-fleet-%s: %s relayed (%.1f%% of all), ingest %s msg/s, %s, %s KiB\n' "$i" "${relayed%.*}" \
    "$(awk -v r="${relayed%.*}" -v t="$total" 'BEGIN { print 100 * r / t }')" "$(cat "$work/gw$i/ingest.txt")" "$node" "$(rss_kb "${hpids[$i]}")"
done

# Loss: every (gateway, device) must reach the subscriber M times (duplicates allowed).
count() {
  python3 - "$work/received.txt" "$G" "$D" "$M" <<'PY'
import json, sys, collections
path, G, D, M = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
got = collections.Counter()
with open(path, errors="replace") as f:
    for line in f:
        topic, _, payload = line.rstrip("\n").partition(" ")
        parts = topic.split("/")
        if len(parts) < 2 or not parts[1].startswith("gw-fleet-"):
            continue
        try:
            batch = json.loads(payload)
        except ValueError:
            print("undecodable", topic[:80], file=sys.stderr); continue
        for m in batch:
            got[(parts[1], m["deviceId"])] += 1
missing = sum(max(0, M - got[(f"gw-fleet-{g}", f"d{d}")]) for g in range(G) for d in range(D))
print(sum(got.values()), missing)
PY
}
seen=0
for _ in $(seq 600); do
  read -r seen missing < <(count)
  [ "$missing" = 0 ] && break
  sleep 1
done
echo "loss: the subscriber received $seen fleet messages for $total sent; missing $missing"

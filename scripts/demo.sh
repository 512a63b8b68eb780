#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, and shows hubgate doing its job:
# simulated MQTT devices -> hubgate (durable store) -> a local mosquitto standing in for the hub,
# through a hub outage and a gateway SIGKILL, then the backlog drains. Exits 0 only if every
# message the devices got a PUBACK for arrived at the hub.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j"$(nproc)" --target hubgate

bin=$PWD/build/hubgate
work=$(mktemp -d /tmp/hubgate-demo-XXXXXX)
gw_pid= hub_pid= sub_pid= tasmota_pid=
cleanup() {
  for p in $gw_pid $sub_pid $hub_pid $tasmota_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }
metric() { curl -fs "http://127.0.0.1:$metrics_port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
start_gateway() {
  "$bin" run -c "$work/hubgate.toml" 2>> "$work/gateway.log" &
  gw_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$metrics_port/healthz" >/dev/null && return; sleep 0.1; done
  echo "gateway did not start:"; cat "$work/gateway.log"; exit 1
}
start_hub() {
  mosquitto -c "$work/mosquitto.conf" 2>> "$work/hub.log" &
  hub_pid=$!
  for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && return; sleep 0.1; done
  echo "hub did not start"; cat "$work/hub.log"; exit 1
}
# Message ids the hub has received so far (batched elements and single messages), one per line.
hub_ids() { python3 - "$work/hub.out" <<'PY'
import json, sys, urllib.parse
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    topic, _, payload = line.rstrip("\n").partition(" ")
    bag = dict(urllib.parse.parse_qsl(topic.split("/messages/events/", 1)[1]))
    if bag.get("$.ct") == "application/vnd.microsoft.iothub.json":
        for e in json.loads(payload):
            if e["properties"].get("message-type") != "feedback":
                print(e["systemProperties"]["messageId"])
    elif "$.mid" in bag:
        print(bag["$.mid"])
PY
}
publish() {  # device first count: QoS 1 messages; returns once every PUBACK has arrived
  local d=$1 first=$2 count=$3 token
  token=$("$bin" sas-token -c "$work/hubgate.toml" "$d")
  for i in $(seq "$first" $((first + count - 1))); do echo "{\"device\":\"$d\",\"seq\":$i,\"temp\":$((15 + i % 10))}"; done |
    mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$mqtt_port" -q 1 -i "$d" -u "hubgate/$d/?api-version=2021-04-12" \
      -P "$token" -t "devices/$d/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&site=demo" -l
}
publish_all() {  # first count, for every device at once
  local pids=()
  for d in thermo-1 thermo-2 meter-1; do publish "$d" "$1" "$2" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
}

step "1. the documented example config validates; a broken one is refused with FILE:LINE: what"
"$bin" check-config -c config/hubgate.toml
printf '[store]\non_full = "sometimes"\n' > "$work/broken.toml"
set +e; "$bin" check-config -c "$work/broken.toml"; rc=$?; set -e
echo "exit code: $rc"; [ "$rc" -eq 2 ]

step "2. a local mosquitto plays the hub; a subscriber records what the hub receives"
hub_port=$(free_port); metrics_port=$(free_port); mqtt_port=$(free_port); coap_port=$(free_port); lan_port=$(free_port)
tasmota_key=$(head -c 32 /dev/urandom | base64)
cat > "$work/mosquitto.conf" <<CFG
listener $hub_port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/
autosave_interval 1
max_queued_messages 0
CFG
[ "$(id -u)" -eq 0 ] && echo "user root" >> "$work/mosquitto.conf"
start_hub
# clean session 0 and a fixed id: the hub keeps the subscriber's messages across its own restart
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$hub_port" -q 1 -c -i demo-hub-reader -v -t 'devices/+/messages/events/#' > "$work/hub.out" &
sub_pid=$!
echo "hub on 127.0.0.1:$hub_port"

step "3. the gateway starts: MQTT listener (SAS auth, three devices), CoAP listener, a commodity MQTT listener (password auth, translation rules), relay to the hub"
{
  printf '[gateway]\nid = "gw-demo"\ndata_dir = "%s"\n\n' "$work"
  printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:%s"\n\n' "$hub_port"
  printf '[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics_port"
  printf '[c2d]\nfeedback_max_delay_ms = 1000  # gather feedback for 1 s (default 15 s) so the demo shows it\n\n'
  printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\nmodule_id = "telemetry"\n\n' "$mqtt_port"
  printf '[[listener]]\nname = "sensors"\nprotocol = "coap"\nbind = "127.0.0.1:%s"\nauth = "none"\nmodule_id = "coap"\n\n' "$coap_port"
  printf '[[listener]]\nname = "lan"\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "password"\n\n' "$lan_port"
  for d in thermo-1 thermo-2; do
    printf '[[device]]\nid = "%s"\nkey = "%s"\n\n' "$d" "$(head -c 32 /dev/urandom | base64)"
  done
  printf '[[device]]\nid = "tasmota-1"\nkey = "%s"\n\n' "$tasmota_key"
  cat <<'RULES'
# Commodity devices in their own dialects (docs/translation.md): a Tasmota plug and a SenML sensor.
[[rule]]
name = "tasmota-sensor"
listeners = ["lan"]
topic = "tele/{device}/SENSOR"
device = "{device}"
module = "tasmota"
time = "/Time"
properties = { source = "tasmota" }

[[rule]]
name = "tasmota-power"
listeners = ["lan"]
topic = "stat/{device}/POWER"
format = "text"
field = "power"
device = "{device}"
module = "tasmota"
c2d_topic = "cmnd/{device}/{prop:command}"

[[rule]]
name = "senml-sensor"
listeners = ["sensors"]
path = "/sensors/{device}"
format = "senml"
device = "{device}"
module = "senml"
RULES
} > "$work/hubgate.toml"
echo "thermo-1 and thermo-2 are [[device]] entries in the config; meter-1 is paired with the CLI:"
"$bin" devices add meter-1 --host localhost -c "$work/hubgate.toml" 2>/dev/null | sed 's/SharedAccessKey=.*/SharedAccessKey=.../'
"$bin" devices list -c "$work/hubgate.toml"
start_gateway

step "4. three MQTT devices publish 300 QoS 1 messages each, a CoAP device 20; all relayed in batches"
publish_all 1 300
echo "a CoAP device posts 20 readings (coap-client, each answered 2.04 only once stored):"
for i in $(seq 20); do
  coap-client-openssl -m post -B 5 -t 50 -e "{\"soil\":$i}" \
    "coap://127.0.0.1:$coap_port/devices/soil-1/messages/events?site=demo" >/dev/null
done
echo "  coap requests answered 2.04: $(curl -fs "http://127.0.0.1:$metrics_port/metrics" | awk '$1 ~ /^hubgate_coap_requests_total/ && /2.04/ {s += $2} END {print s + 0}')"
for _ in $(seq 100); do [ "$(hub_ids | wc -l)" -ge 920 ] && break; sleep 0.1; done
echo "hub received $(hub_ids | sort -u | wc -l) messages in $(wc -l < "$work/hub.out") publishes; store holds $(metric hubgate_store_messages)"

step "5. the cloud sends a command to meter-1; the device gets it; feedback goes back to the hub"
token=$("$bin" sas-token -c "$work/hubgate.toml" meter-1)
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$mqtt_port" -q 1 -i meter-1 -u "hubgate/meter-1/" -P "$token" \
  -t 'devices/meter-1/messages/devicebound/#' -v -C 1 -W 20 > "$work/device.out" &
dev_pid=$!
for _ in $(seq 50); do [ "$(metric hubgate_mqtt_connections)" = 1 ] && break; sleep 0.1; done
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$hub_port" -q 1 -m '{"command":"reboot"}' \
  -t 'devices/gw-demo/messages/devicebound/%24.mid=cmd-1&%24.cid=demo&device-id=meter-1&iothub-ack=full'
wait "$dev_pid"
echo "meter-1 received: $(cat "$work/device.out")"
grep -q '"command":"reboot"' "$work/device.out"
for _ in $(seq 100); do grep -q 'Success' "$work/hub.out" && break; sleep 0.1; done
# Every element of every batch the hub received, one JSON object per line.
batch_elements() { python3 - "$work/hub.out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    topic, _, payload = line.rstrip("\n").partition(" ")
    if "vnd.microsoft.iothub.json" in topic:
        for e in json.loads(payload):
            print(json.dumps(e))
PY
}
show_feedback() {
  batch_elements | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["properties"].get("message-type") == "feedback":
        for r in json.loads(e["body"]):
            print("feedback at the hub: %s %s for %s" % (r["statusCode"], r["originalMessageId"], r["deviceId"]))'
}
show_feedback
grep -q 'Success' "$work/hub.out"

step "6. a command for the CoAP device soil-1: it GETs it (the ETag is its lock) and completes it with DELETE"
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$hub_port" -q 1 -m '{"command":"water"}' \
  -t 'devices/gw-demo/messages/devicebound/%24.mid=cmd-2&device-id=soil-1&iothub-ack=full'
devicebound="coap://127.0.0.1:$coap_port/devices/soil-1/messages/devicebound"
for _ in $(seq 50); do
  answer=$(coap-client-openssl -m get -v 6 -B 5 "$devicebound" 2>&1 || true)
  grep -q 'ETag:0x' <<<"$answer" && break
  sleep 0.2
done
lock=$(grep -o 'ETag:0x[0-9a-fA-F]*' <<<"$answer" | head -n 1 | cut -c8- | tr 'A-F' 'a-f')
echo "soil-1 received: $(grep -o '{"command":"water"}' <<<"$answer") under lock $lock"
[ -n "$lock" ]
coap-client-openssl -m delete -v 6 -B 5 "$devicebound/$lock" 2>&1 | grep -o '2\.02' | sed 's/^/DELETE answered /'
for _ in $(seq 100); do show_feedback | grep -q 'Success cmd-2' && break; sleep 0.1; done
show_feedback | grep cmd-2
show_feedback | grep -q 'Success cmd-2'

step "7. commodity devices in their own dialects, translated by rules into hub messages"
echo "a Tasmota plug (auth = \"password\", client id DVES_...) publishes its documented tele/SENSOR and stat/POWER:"
for t in tele/tasmota-1/SENSOR:tasmota/tele_SENSOR_pow.json stat/tasmota-1/POWER:tasmota/stat_POWER_on.txt; do
  mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$lan_port" -q 1 -i DVES_A1B2C3 -u tasmota-1 -P "$tasmota_key" \
    -t "${t%%:*}" -f "tests/data/${t#*:}"
done
echo "a SenML sensor posts RFC 8428's example pack over CoAP (Content-Format 110):"
coap-client-openssl -m post -B 5 -t 110 -f tests/data/senml/rfc8428-5.1.2-multiple-data-points.json \
  "coap://127.0.0.1:$coap_port/sensors/urn-dev-ow-10e2073a01080063" >/dev/null
translated=3
for _ in $(seq 100); do [ "$(hub_ids | sort -u | wc -l)" -ge $((920 + translated)) ] && break; sleep 0.1; done
batch_elements | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["moduleId"] in ("tasmota", "senml"):
        print("at the hub: device %s module %s time %s body %s" % (e["deviceId"], e["moduleId"],
              e["systemProperties"].get("creationTimeUtc", "-"), e["body"][:110]))'
echo "the cloud switches the plug off: the command reaches it on Tasmota's own cmnd/ topic"
mosquitto_sub -V mqttv311 -h 127.0.0.1 -p "$lan_port" -q 1 -i DVES_A1B2C3 -u tasmota-1 -P "$tasmota_key" \
  -t 'cmnd/tasmota-1/#' -v -C 1 -W 20 > "$work/tasmota.out" &
tasmota_pid=$!
mosquitto_pub -V mqttv311 -h 127.0.0.1 -p "$hub_port" -q 1 -m 'OFF' \
  -t 'devices/gw-demo/messages/devicebound/%24.mid=cmd-3&device-id=tasmota-1&command=Power&iothub-ack=full'
wait "$tasmota_pid"
echo "tasmota-1 received: $(cat "$work/tasmota.out")"
grep -q '^cmnd/tasmota-1/Power OFF' "$work/tasmota.out"
for _ in $(seq 100); do show_feedback | grep -q 'Success cmd-3' && break; sleep 0.1; done
show_feedback | grep cmd-3
show_feedback | grep -q 'Success cmd-3'

step "8. the hub goes away; devices keep publishing; the gateway buffers on disk"
kill -TERM "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; hub_pid=
publish_all 301 3000
"$bin" status -c "$work/hubgate.toml"

step "9. SIGKILL the gateway during the outage and start it again: the backlog survives"
kill -KILL "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
start_gateway
echo "after restart the store holds $(metric hubgate_store_messages) messages"

step "10. the hub returns: the backlog drains at once, in full batches"
before=$(date +%s%N)
start_hub
for _ in $(seq 600); do [ "$(metric hubgate_store_messages)" = 0 ] && break; sleep 0.1; done
after=$(date +%s%N)
for _ in $(seq 100); do [ "$(hub_ids | sort -u | wc -l)" -ge $((9920 + translated)) ] && break; sleep 0.1; done
"$bin" status -c "$work/hubgate.toml"
awk -v ns=$((after - before)) -v n="$(metric hubgate_upstream_batches_total)" \
  'BEGIN { printf "backlog drained %.1f s after the hub came back (%d batches relayed in all)\n", ns / 1e9, n }'

step "11. every acknowledged message arrived at the hub"
expected=$(( 3 * 3300 + 20 + translated ))
received=$(hub_ids | sort -u | wc -l)
dups=$(( $(hub_ids | wc -l) - received ))
echo "expected $expected, the hub has $received distinct messages ($dups duplicates from resends)"
[ "$received" -eq "$expected" ]

step "12. graceful stop on SIGTERM"
kill -TERM "$gw_pid"; wait "$gw_pid"; rc=$?; gw_pid=
grep -E 'upstream|relay|stopped|opened' "$work/gateway.log" | tail -n 8 | sed 's/^/  /'
echo "gateway exit code: $rc"; [ "$rc" -eq 0 ]

printf '\ndemo: OK\n'

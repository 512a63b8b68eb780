#!/usr/bin/env bash
# Smoke run of a hubgate binary (the arm64 one under qemu-user, on an amd64 host): start it, let
# one device publish one QoS 1 message over MQTT, see the message arrive at a local mosquitto
# standing in for the hub, stop it with SIGTERM (exit 0). scripts/package.sh arm64 runs it.
#   tests/package/arm64_smoke.sh BINARY
set -euo pipefail
binary=$(realpath "$1")
run=("$binary")
if file -b "$binary" | grep -q aarch64 && [ "$(uname -m)" != aarch64 ]; then
    run=(qemu-aarch64-static "$binary")
fi
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hub=$(free_port); dev=$(free_port); metrics=$(free_port)

cat > "$tmp/mosquitto.conf" <<CONF
listener $hub 127.0.0.1
allow_anonymous true
user root
CONF
mosquitto -c "$tmp/mosquitto.conf" > "$tmp/mosquitto.log" 2>&1 & pids+=($!); disown
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$hub) 2>/dev/null && break; sleep 0.1; done
# The hub side: one device-to-cloud message. (Not '#': on connect the gateway also GETs its own
# twin, docs/twins.md, and that request may come first.)
mosquitto_sub -h 127.0.0.1 -p "$hub" -t 'devices/+/messages/events/#' -C 1 -W 60 -v > "$tmp/hub.out" 2>&1 & sub=$!; pids+=($sub)

cat > "$tmp/hubgate.toml" <<CONF
[gateway]
id = "gw-smoke"
data_dir = "$tmp"
[[listener]]
protocol = "mqtt"
bind = "127.0.0.1:$dev"
auth = "none"
[upstream]
profile = "mqtt"
url = "tcp://127.0.0.1:$hub"
[metrics]
bind = "127.0.0.1:$metrics"
CONF
"${run[@]}" run -c "$tmp/hubgate.toml" > "$tmp/hubgate.log" 2>&1 & gw=$!; pids+=($gw)
for _ in $(seq 300); do grep -q ' ready' "$tmp/hubgate.log" && break; sleep 0.1; done
grep -q ' ready' "$tmp/hubgate.log" || { echo "arm64_smoke: the gateway did not get ready:" >&2; cat "$tmp/hubgate.log" >&2; exit 1; }

mosquitto_pub -h 127.0.0.1 -p "$dev" -i smoke-device -q 1 -t 'devices/smoke-device/messages/events/' -m '{"t":21.5}'
if ! wait "$sub"; then
    echo "arm64_smoke: nothing reached the hub" >&2; cat "$tmp/hubgate.log" >&2; exit 1
fi
grep -q '21.5' "$tmp/hub.out" || { echo "arm64_smoke: the hub got something else: $(cat "$tmp/hub.out")" >&2; exit 1; }

kill -TERM "$gw"
code=0; wait "$gw" || code=$?
[ "$code" = 0 ] || { echo "arm64_smoke: exit $code after SIGTERM" >&2; cat "$tmp/hubgate.log" >&2; exit 1; }
echo "arm64_smoke: $(file -b "$binary" | cut -d, -f1-2): started, relayed one MQTT message to mosquitto, stopped (exit 0)"

#!/usr/bin/env bash
# Memory per remembered client id (on demand, not in CI): N distinct clients connect once with
# clean session 0 and no password, then disconnect. hubgate (an auth = "none" listener: each id
# becomes a seen device, persisted, plus its session state) vs mosquitto (it keeps each client's
# session) in the same run; reports RSS growth per id and the ratio. Also checks that with
# gateway.max_seen_devices = N/2 hubgate stops at N/2 ids.
# Usage: tests/bench/seen_bench.sh [N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-10000}
build=$root/build-bench
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
cmake --build "$build" --target hubgate -j2 >/dev/null

source "$root/tests/bench/common.sh"
# connect PORT FIRST COUNT: COUNT clients "seen-FIRST".. each CONNECT (clean session 0), read the
# CONNACK, DISCONNECT; prints how many were accepted.
connect_all() {
  python3 - "$@" <<'PY'
import socket, sys
port, first, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
accepted = 0
for i in range(first, first + count):
    cid = ("seen-%d" % i).encode()
    var = b"\x00\x04MQTT\x04\x00\x00\x3c"  # level 4, flags: clean session 0, keep-alive 60
    body = var + len(cid).to_bytes(2, "big") + cid
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes([0x10, len(body)]) + body)
    ack = b""
    while len(ack) < 4:
        chunk = s.recv(4 - len(ack))
        if not chunk:
            break
        ack += chunk
    if len(ack) == 4 and ack[3] == 0:
        accepted += 1
        s.sendall(b"\xe0\x00")
    s.close()
print(accepted)
PY
}

mport=$(free_port); hport=$(free_port); metrics=$(free_port)
start_reference_mosquitto "$mport"

start_hubgate() {  # $1 = max_seen_devices
  rm -f "$work"/hubgate.db*
  {
    printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\nmax_seen_devices = %s\n\n' "$work" "$1"
    printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:9"\n\n[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
    printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "none"\n\n' "$hport"
  } > "$work/hubgate.toml"
  run_hubgate
}

sleep 0.3
connect_all "$mport" 0 10 >/dev/null  # warm up: first-connection allocations are not per id
m0=$(rss_kb "$mpid")
macc=$(connect_all "$mport" 10 "$n")
m1=$(rss_kb "$mpid")

start_hubgate "$((n + 10))"
connect_all "$hport" 0 10 >/dev/null
h0=$(rss_kb "$hpid")
hacc=$(connect_all "$hport" 10 "$n")
sleep 0.5  # the store writer commits the last seen ids
h1=$(rss_kb "$hpid")
stop_hubgate

start_hubgate "$((n / 2))"
capped=$(connect_all "$hport" 0 "$n")
stop_hubgate

echo "# $n distinct clients, clean session 0, each connects once and disconnects"
echo "| | accepted | RSS before (kB) | RSS after (kB) | bytes per id |"
echo "|---|---|---|---|---|"
echo "| mosquitto | $macc | $m0 | $m1 | $(( (m1 - m0) * 1024 / n )) |"
echo "| hubgate (auth none) | $hacc | $h0 | $h1 | $(( (h1 - h0) * 1024 / n )) |"
python3 -c "import sys; m,h=int(sys.argv[1]),int(sys.argv[2]); print('ratio hubgate/mosquitto bytes per id: %.2f' % (h/m if m else float('nan')))" \
  "$(( m1 - m0 ))" "$(( h1 - h0 ))"
echo "with max_seen_devices = $((n / 2)): $capped of $n new ids accepted"

#!/usr/bin/env bash
# discovery_test.sh HUBGATE: DNS-SD with the real avahi-daemon and avahi-browse (docs/discovery.md).
#
# Two network namespaces ("gw" and "peer") joined by one veth pair, created inside them (the host's
# network is never touched); in each a private dbus-daemon (socket under the test's directory) and
# an avahi-daemon with its own host name and its own /run (a tmpfs mounted in the mount namespace
# `ip netns exec` gives it). The gateway runs on the gw side; the peer browses with avahi-browse.
# Checks: the advertised services, ports, addresses and TXT; the listener on loopback is not
# advertised; a listener bound to one address only on that address's interface; TXT pair= flips
# (`hubgate pair open|close` when the binary has it, else the SIGUSR2 test hook); avahi-daemon
# restarting and the bus itself restarting (the gateway's retry timer) bring the services back,
# with one warning per outage; the services go when the gateway stops.
# Needs root (ip netns, mount). Exits 77 (ctest: skipped) only when namespaces cannot be made.
# Self-contained (a clone of the project needs nothing else); the avahi-in-namespaces pitfalls it
# handles are noted where they matter below.
set -u
HUBGATE=$(readlink -f "${1:?usage: discovery_test.sh HUBGATE}")
GW_ADDR=169.254.77.1
PEER_ADDR=169.254.77.2
METRICS_PORT=19473   # inside the gw namespace: its own loopback
HUB_PORT=19474       # the hub (a mosquitto), inside the gw namespace too
# The enrollment group's key: all a new device is flashed with (no gateway address).
GROUP_KEY=$(head -c 32 /dev/urandom | base64)

fail() { echo "FAIL: $*" >&2; [ -n "${D:-}" ] && [ -f "$D/gw.log" ] && { echo "--- gateway log (tail)" >&2; tail -25 "$D/gw.log" >&2; }; exit 1; }
note() { echo "discovery_test: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: discovery_test needs root to make network namespaces (ip netns add)"; exit 77
fi
for t in ip dbus-daemon avahi-daemon avahi-browse python3 curl mosquitto mosquitto_pub mosquitto_sub; do
  command -v "$t" >/dev/null || fail "$t is missing (run scripts/install-deps.sh)"
done

# Short path: the bus socket path must fit a unix socket address (108 bytes).
D=$(mktemp -d /tmp/hgdisc.XXXXXX)
ID=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NS_GW=hgd-$ID-gw NS_PEER=hgd-$ID-peer IF_GW=hgd${ID}g IF_PEER=hgd${ID}p
GW_PID='' BROWSE_PIDS=()

cleanup() {
  local ns p i left
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null
  # everything still inside our namespaces (daemons, browsers, the gateway): ours
  for ns in "$NS_GW" "$NS_PEER"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
  done
  for ((i = 0; i < 40; i++)); do
    left=$(for ns in "$NS_GW" "$NS_PEER"; do ip netns pids "$ns" 2>/dev/null; done)
    [ -z "$left" ] && break
    sleep 0.05
  done
  for p in $left; do kill -9 "$p" 2>/dev/null; done
  ip netns del "$NS_GW" 2>/dev/null
  ip netns del "$NS_PEER" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT

if ! ip netns add "$NS_GW" 2>"$D/netns.err"; then
  echo "SKIP: cannot create network namespaces here: $(cat "$D/netns.err")"; exit 77
fi
ip netns add "$NS_PEER" || fail "ip netns add $NS_PEER"
ip link add "$IF_GW" netns "$NS_GW" type veth peer name "$IF_PEER" netns "$NS_PEER" || fail "veth pair"
for side in gw peer; do
  if [ $side = gw ]; then ns=$NS_GW ifc=$IF_GW addr=$GW_ADDR; else ns=$NS_PEER ifc=$IF_PEER addr=$PEER_ADDR; fi
  ip -n "$ns" link set lo up
  # IPv4 only: nothing for avahi to pick on IPv6, no link-local chatter
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" addr add "$addr/24" dev "$ifc"
  ip -n "$ns" link set "$ifc" multicast on up
  mkdir -p "$D/$side"
  # Debian's system-bus policy plus avahi's own policy file; only the socket is ours.
  cat >"$D/$side/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$D/$side/bus.sock</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include ignore_missing="yes">/usr/share/dbus-1/system.d/avahi-dbus.conf</include>
</busconfig>
XML
  # Own host names: two daemons with the machine's name collide on the link and one renames
  # itself, resetting every client's entry groups. The gw side also uses lo, so that the test can
  # see which services are on the veth only (a listener bound to its address) and which everywhere.
  allow=$ifc
  [ $side = gw ] && allow="$ifc,lo"
  cat >"$D/$side/avahi.conf" <<INI
[server]
host-name=hgd-$ID-$side
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=$allow
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
[rlimits]
INI
done
BUS_GW="unix:path=$D/gw/bus.sock" BUS_PEER="unix:path=$D/peer/bus.sock"
case "$D" in *[!-0-9A-Za-z_/.]*) fail "test dir $D needs D-Bus address escaping" ;; esac

start_dbus() {  # start_dbus SIDE
  local side=$1 ns i
  if [ "$side" = gw ]; then ns=$NS_GW; else ns=$NS_PEER; fi
  rm -f "$D/$side/bus.sock"
  ip netns exec "$ns" dbus-daemon --config-file="$D/$side/bus.conf" --nofork --nopidfile </dev/null \
    >>"$D/$side/dbus.log" 2>&1 &
  echo $! >"$D/$side/dbus.pid"
  for ((i = 0; i < 100; i++)); do [ -S "$D/$side/bus.sock" ] && return 0; sleep 0.05; done
  fail "dbus-daemon ($side) made no socket: $(tail -2 "$D/$side/dbus.log")"
}
start_avahi() {  # start_avahi SIDE: returns once the daemon is up
  local side=$1 ns bus i pid
  if [ "$side" = gw ]; then ns=$NS_GW bus=$BUS_GW; else ns=$NS_PEER bus=$BUS_PEER; fi
  : >"$D/$side/avahi.log"
  # A tmpfs /run in the command's own mount namespace: avahi's pid file and socket paths are fixed,
  # and a second daemon on one /run refuses to start. Never on the host's /run.
  ip netns exec "$ns" env DBUS_SYSTEM_BUS_ADDRESS="$bus" sh -c \
    'mount -t tmpfs -o mode=0755,size=1m hgdisc /run && exec avahi-daemon -f "$1" --no-drop-root --no-chroot --no-rlimits --no-proc-title' \
    sh "$D/$side/avahi.conf" </dev/null >>"$D/$side/avahi.log" 2>&1 &
  pid=$!
  echo $pid >"$D/$side/avahi.pid"
  for ((i = 0; i < 200; i++)); do
    grep -q 'Server startup complete' "$D/$side/avahi.log" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "avahi-daemon ($side) did not start: $(tail -3 "$D/$side/avahi.log" | tr '\n' ' ')"
}
stop_pidfile() {  # stop_pidfile FILE: SIGTERM the recorded daemon and wait for it
  local pid i
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null
}

start_dbus gw; start_dbus peer
start_avahi gw & a1=$!
start_avahi peer & a2=$!
wait $a1 || exit 1
wait $a2 || exit 1
note "namespaces $NS_GW ($GW_ADDR) and $NS_PEER ($PEER_ADDR), dbus-daemon and avahi-daemon up on both"

# A browser kept running on the peer: its daemon then holds a live query per type and one-shot
# browses answer at once instead of after ~1 s.
for type in _mqtt._tcp _coap._udp; do
  ip netns exec "$NS_PEER" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_PEER" avahi-browse -rpk "$type" >/dev/null 2>&1 &
  BROWSE_PIDS+=($!)
done

# browse SIDE TYPE: one line per resolved service, "name|interface|address|port|txt,txt,..." (TXT
# sorted: avahi-browse prints them in reverse order of adding; names decoded from its \DDD escapes).
browse() {
  local ns bus
  if [ "$1" = gw ]; then ns=$NS_GW bus=$BUS_GW; else ns=$NS_PEER bus=$BUS_PEER; fi
  # timeout: avahi-browse -rt waits forever when a service goes while it resolves it (its resolver
  # count is never decremented); a poll that times out just tries again.
  ip netns exec "$ns" env DBUS_SYSTEM_BUS_ADDRESS="$bus" timeout 8 avahi-browse -rpt "$2" 2>/dev/null | python3 -c '
import re, sys
def label(s):
    out = bytearray(); i = 0
    while i < len(s):
        if s[i] == "\\" and re.match(r"\d{3}", s[i+1:i+4]): out.append(int(s[i+1:i+4])); i += 4
        elif s[i] == "\\" and i + 1 < len(s): out += s[i+1].encode(); i += 2
        else: out += s[i].encode(); i += 1
    return out.decode("utf-8", "replace")
lines = set()
for l in sys.stdin:
    f = l.rstrip("\n").split(";")
    if f[0] != "=" or len(f) < 10: continue
    txt = sorted(t.strip("\"") for t in re.findall(r"\"[^\"]*\"", ";".join(f[9:])))
    lines.add("|".join([label(f[3]), f[1], f[7], f[8], ",".join(txt)]))
print("\n".join(sorted(lines)))'
}

# wait_for SECS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds
wait_for() {
  local secs=$1 what=$2 i; shift 2
  for ((i = 0; i < secs * 5; i++)); do "$@" && return 0; sleep 0.2; done
  fail "$what (not within $secs s)"
}
has() { grep -qxF "$2" <<<"$(browse peer "$1")"; }
lacks_port() { ! grep -q "|$2|" <<<"$(browse peer "$1")"; }
metric() {  # metric NAME: its value from the gateway's /metrics
  ip netns exec "$NS_GW" curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# A name collision: the peer already holds the name the gateway's CoAP service would take, so the
# gateway must take avahi's alternative ("hubgate gw-disc #2").
ip netns exec "$NS_PEER" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_PEER" \
  avahi-publish -s "hubgate gw-disc" _coap._udp 5683 owner=peer >"$D/peer/publish.log" 2>&1 &
PUB_PID=$!
for ((i = 0; i < 100; i++)); do grep -q '^Established' "$D/peer/publish.log" && break; sleep 0.1; done
grep -q '^Established' "$D/peer/publish.log" || fail "avahi-publish on the peer: $(cat "$D/peer/publish.log")"

# The gateway: two MQTT listeners (so both get a suffix), one bound to the veth's address only;
# a CoAP listener; an MQTT listener on loopback (never advertised).
mkdir -p "$D/data"
cat >"$D/hubgate.toml" <<EOF
[gateway]
id = "gw-disc"
data_dir = "$D/data"
[[listener]]
name = "lan"
protocol = "mqtt"
bind = "0.0.0.0:1883"
auth = "sas"
[[listener]]
name = "ops"
protocol = "mqtt"
bind = "$GW_ADDR:1884"
auth = "none"
module_id = "ops"
[[listener]]
protocol = "coap"
bind = "0.0.0.0:5683"
auth = "none"
module_id = "coap"
[[listener]]
name = "local"
protocol = "mqtt"
bind = "127.0.0.1:1885"
auth = "none"
module_id = "local"
[upstream]
profile = "mqtt"
url = "tcp://127.0.0.1:$HUB_PORT"
[metrics]
bind = "127.0.0.1:$METRICS_PORT"
[discovery]
mdns = true
[[enrollment]]
id = "sensors"
key = "$GROUP_KEY"
module_id = "sensors"
register = "window"
EOF
"$HUBGATE" check-config -c "$D/hubgate.toml" >/dev/null || fail "the test's config does not load"

# The hub: a mosquitto on the gw namespace's loopback, and a subscriber recording what reaches it.
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n' "$HUB_PORT" >"$D/hub.conf"
ip netns exec "$NS_GW" mosquitto -c "$D/hub.conf" >"$D/hub.log" 2>&1 &
hub_up() { ip netns exec "$NS_GW" bash -c "echo >/dev/tcp/127.0.0.1/$HUB_PORT" 2>/dev/null; }
wait_for 10 "the hub (mosquitto) listens in the gw namespace" hub_up
ip netns exec "$NS_GW" mosquitto_sub -p "$HUB_PORT" -q 1 -t 'devices/+/messages/events/#' -v >"$D/hub.txt" 2>&1 &

# `hubgate pair open|close` when this binary has it (the pairing window drives TXT pair=); else the
# test hook (HUBGATE_TEST_PAIR_SIGNAL: SIGUSR2 toggles pair=).
PAIR_CLI=0
"$HUBGATE" pair --help >/dev/null 2>&1 && PAIR_CLI=1
[ "${DISCOVERY_TEST_PAIR:-}" = signal ] && PAIR_CLI=0  # to test the hook where the CLI exists
gw_exec() { ip netns exec "$NS_GW" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_GW" "$@"; }
# Not through gw_exec: bash forks for `function &`, and $! must be the gateway's own pid (ip netns
# exec and env exec it).
ip netns exec "$NS_GW" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_GW" HUBGATE_TEST_PAIR_SIGNAL=1 \
  "$HUBGATE" run -c "$D/hubgate.toml" >"$D/gw.log" 2>&1 &
GW_PID=$!
wait_for 10 "the gateway serves /metrics" metric_is hubgate_discovery_services 3

LAN="hubgate gw-disc (lan)|$IF_PEER|$GW_ADDR|1883|auth=sas,gw=gw-disc,pair=closed"
OPS="hubgate gw-disc (ops)|$IF_PEER|$GW_ADDR|1884|auth=none,gw=gw-disc,pair=closed"
COAP="hubgate gw-disc #2|$IF_PEER|$GW_ADDR|5683|auth=none,gw=gw-disc,pair=closed"
t0=$(date +%s.%N)
wait_for 15 "the peer resolves $LAN" has _mqtt._tcp "$LAN"
wait_for 15 "the peer resolves $OPS" has _mqtt._tcp "$OPS"
wait_for 15 "the peer resolves $COAP" has _coap._udp "$COAP"
note "the peer resolved all three services $(python3 -c "import sys,time;print('%.2f' % (time.time()-float(sys.argv[1])))" "$t0") s after the gateway started"
lacks_port _mqtt._tcp 1885 || fail "the listener on 127.0.0.1:1885 is advertised"
[ "$(browse peer _mqtt._tcp | wc -l)" = 2 ] || fail "expected exactly two _mqtt._tcp services: $(browse peer _mqtt._tcp)"
wait_for 5 "hubgate_discovery_registered = 3" metric_is hubgate_discovery_registered 3
metric_is hubgate_discovery_daemon_connected 1 || fail "hubgate_discovery_daemon_connected is not 1"
[ "$(metric hubgate_discovery_name_collisions_total)" -ge 1 ] 2>/dev/null || fail "no name collision counted"
grep -q 'discovery: "hubgate gw-disc" (_coap._udp) is taken on the network; using "hubgate gw-disc #2"' "$D/gw.log" ||
  fail "the collision is not logged"
status_line=$(gw_exec "$HUBGATE" status -c "$D/hubgate.toml" | grep '^discovery:')
[ "$status_line" = "discovery:  3 of 3 services advertised" ] || fail "hubgate status says: $status_line"

# Interfaces, seen by the gw side's own daemon (which also uses lo): "lan" (0.0.0.0) on lo and the
# veth, "ops" (bound to the veth's address) on the veth only.
gw_ifaces() { browse gw _mqtt._tcp | awk -F'|' -v n="$1" '$1 == n {print $2}' | sort | tr '\n' ' '; }
lan_on_both() { [ "$(gw_ifaces "hubgate gw-disc (lan)")" = "$(printf '%s\n' lo "$IF_GW" | sort | tr '\n' ' ')" ]; }
wait_for 10 "\"lan\" (0.0.0.0) on lo and $IF_GW on the gw side (got: $(gw_ifaces "hubgate gw-disc (lan)"))" lan_on_both
[ "$(gw_ifaces "hubgate gw-disc (ops)")" = "$IF_GW " ] ||
  fail "\"ops\" ($GW_ADDR) should be on $IF_GW only, is on: $(gw_ifaces "hubgate gw-disc (ops)")"
note "services, ports, addresses, TXT and interfaces as configured; loopback listener not advertised; the name the peer held taken as \"hubgate gw-disc #2\""

# TXT pair= follows the window, on every service, without a new probe.
pair() {  # pair open|close
  if [ $PAIR_CLI = 1 ]; then gw_exec "$HUBGATE" pair "$1" -c "$D/hubgate.toml" >/dev/null || fail "hubgate pair $1"
  else kill -USR2 "$GW_PID"; fi
}
all_pair() {  # all_pair open|closed: every service on the peer says so
  local out; out=$(browse peer _mqtt._tcp; browse peer _coap._udp)
  [ "$(grep -c "pair=$1\$" <<<"$out")" = 3 ]
}
note "flipping pair= with $([ $PAIR_CLI = 1 ] && echo '`hubgate pair open|close`' || echo 'the SIGUSR2 test hook')"
t0=$(date +%s.%N); pair open
wait_for 15 "TXT pair=open on all three services" all_pair open
note "pair=open seen on the peer after $(python3 -c "import sys,time;print('%.2f' % (time.time()-float(sys.argv[1])))" "$t0") s"
pair close
wait_for 15 "TXT pair=closed on all three services" all_pair closed
pair open
wait_for 15 "TXT pair=open again" all_pair open

# The README's pairing flow, end to end: a device that holds only the group key and its own id, on
# the peer's side of the link, finds the gateway by DNS-SD (an MQTT service with auth=sas and
# pair=open), derives its key and SAS token as DPS devices do (not with hubgate's code), connects to
# the address and port it resolved, and its first message reaches the hub. It is now registered.
if [ $PAIR_CLI = 1 ]; then
  found=$(browse peer _mqtt._tcp | grep 'auth=sas' | grep 'pair=open' | head -1)
  dev_addr=$(cut -d'|' -f3 <<<"$found"); dev_port=$(cut -d'|' -f4 <<<"$found")
  [ -n "$dev_addr" ] && [ -n "$dev_port" ] || fail "the new device found no MQTT service with auth=sas and pair=open"
  token=$(python3 - "$GROUP_KEY" sensor-17 gw-disc <<'PY'
import base64, hashlib, hmac, sys, time, urllib.parse
group, dev, host = sys.argv[1:4]
key = base64.b64encode(hmac.new(base64.b64decode(group), dev.encode(), hashlib.sha256).digest())
sr = urllib.parse.quote(f"{host}/devices/{dev}", safe="")
se = int(time.time()) + 3600
sig = base64.b64encode(hmac.new(base64.b64decode(key), f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
print(f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}")
PY
)
  ip netns exec "$NS_PEER" mosquitto_pub -V mqttv311 -h "$dev_addr" -p "$dev_port" -i sensor-17 \
    -u "gw-disc/sensor-17/?api-version=2021-04-12" -P "$token" -q 1 \
    -t 'devices/sensor-17/messages/events/' -m '{"temperature":21.5}' >"$D/device.log" 2>&1 ||
    fail "the new device could not publish to $dev_addr:$dev_port: $(cat "$D/device.log")"
  at_hub() { grep -q '"deviceId":"sensor-17","moduleId":"sensors"' "$D/hub.txt"; }
  wait_for 15 "the new device's first message at the hub (got: $(head -c 300 "$D/hub.txt"))" at_hub
  gw_exec "$HUBGATE" devices list -c "$D/hubgate.toml" | grep -qE '^sensor-17 +registry' ||
    fail "sensor-17 is not registered: $(gw_exec "$HUBGATE" devices list -c "$D/hubgate.toml")"
  note "a device with only the group key found the gateway at $dev_addr:$dev_port by DNS-SD, joined while the window was open, and its first message reached the hub"
fi

# avahi-daemon restarts under the gateway: the services come back (still pair=open).
stop_pidfile "$D/gw/avahi.pid"
wait_for 5 "hubgate_discovery_daemon_connected = 0 after avahi-daemon stopped" metric_is hubgate_discovery_daemon_connected 0
metric_is hubgate_discovery_registered 0 || fail "hubgate_discovery_registered is not 0 without a daemon"
status_line=$(gw_exec "$HUBGATE" status -c "$D/hubgate.toml" | grep '^discovery:')
[ "$status_line" = "discovery:  0 of 3 services advertised (avahi-daemon not reachable)" ] ||
  fail "hubgate status without the daemon says: $status_line"
sleep 1
t0=$(date +%s.%N)
start_avahi gw
wait_for 15 "services back after the avahi-daemon restart" all_pair open
wait_for 5 "hubgate_discovery_registered = 3 after the restart" metric_is hubgate_discovery_registered 3
note "avahi-daemon restarted: services back on the peer $(python3 -c "import sys,time;print('%.2f' % (time.time()-float(sys.argv[1])))" "$t0") s after it started"

# The bus itself goes away (avahi_client_new fails: the gateway retries on its timer) and returns.
stop_pidfile "$D/gw/avahi.pid"
stop_pidfile "$D/gw/dbus.pid"
sleep 6  # more than one retry period: the retries must stay quiet
start_dbus gw
t0=$(date +%s.%N)
start_avahi gw
wait_for 20 "services back after the bus and avahi-daemon restarted" all_pair open
note "bus and avahi-daemon restarted: services back $(python3 -c "import sys,time;print('%.2f' % (time.time()-float(sys.argv[1])))" "$t0") s after the daemon started"
metric_is hubgate_discovery_registered 3 || fail "hubgate_discovery_registered is not 3 at the end"

# One warning per outage (two outages), no spam from the retries.
warnings=$(grep -cE 'warning discovery: (lost avahi-daemon|cannot reach avahi-daemon|no avahi-daemon)' "$D/gw.log")
[ "$warnings" = 2 ] || fail "expected 2 discovery outage warnings (one per outage), got $warnings"
[ "$(grep -c 'discovery: avahi-daemon is back' "$D/gw.log")" = 2 ] || fail "expected two 'avahi-daemon is back' lines"

# The gateway stops: its services leave the network (the peer's own service goes first).
kill "$PUB_PID"
kill -TERM "$GW_PID"
wait "$GW_PID"; rc=$?
GW_PID=''
[ $rc = 0 ] || fail "hubgate exited $rc on SIGTERM"
listed() {  # listed TYPE: the instances browsed on the peer, without resolving them
  ip netns exec "$NS_PEER" env DBUS_SYSTEM_BUS_ADDRESS="$BUS_PEER" timeout 8 avahi-browse -pt "$1" 2>/dev/null | grep '^+'
}
gone() { [ -z "$(listed _mqtt._tcp)" ] && [ -z "$(listed _coap._udp)" ]; }
wait_for 10 "services withdrawn after the gateway stopped" gone
note "ok"

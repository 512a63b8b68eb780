#!/usr/bin/env bash
# SD-card wear benchmark (on demand, not in CI): bytes the gateway makes the kernel write
# (/proc/PID/io write_bytes) and fsyncs (fsync + fdatasync, counted by `perf stat` tracepoints) per
# message, 200-byte QoS 1 messages from 10 MQTT devices, each message stored, relayed to the hub (a
# local mosquitto) and deleted. Three cases, each on a fresh store:
#   low     paced at 500 msg/s for LOW_SECONDS (a busy Pi site), hub online;
#   high    paced at 20000 msg/s, HIGH_N messages (100 devices), hub online;
#   backlog BACKLOG_N messages published while the hub is down, then the hub returns and drains it.
# "during" = write_bytes from the first message until the store is empty again (plus 1 s);
# "total" also counts the shutdown (SIGTERM: the last deletes and the closing checkpoint), read from
# a wrapper shell that reaped the gateway (Linux adds a reaped child's I/O to its parent's).
# The same loads go to mosquitto with persistence (autosave_interval 1, a durable subscriber) for
# scale: mosquitto acknowledges before anything is on disk, so its figure is not a durability peer.
# Usage: tests/bench/wear_bench.sh [LOW_SECONDS=20] [HIGH_N=200000] [BACKLOG_N=100000]
# Env: HUBGATE_BIN=path (another build, e.g. the one before a change); WEAR_STORE="key = value; ..."
# (extra [store] lines, e.g. "commit_window_ms = 0"); WEAR_CASES="low high backlog"; WEAR_MOSQUITTO=0
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
low_seconds=${1:-20}
high_n=${2:-200000}
backlog_n=${3:-100000}
build=$root/build-bench
if [ -z "${HUBGATE_BIN:-}" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBGATE_BENCH=ON -DHUBGATE_TESTS=OFF >/dev/null
  cmake --build "$build" --target hubgate mqtt_load -j2 >/dev/null
fi
bin=${HUBGATE_BIN:-$build/hubgate}
load=$build/tests/bench/mqtt_load
cases=${WEAR_CASES:-low high backlog}

source "$root/tests/bench/common.sh"

key=$(head -c 32 /dev/urandom | base64)
hub_port=$(free_port); hport=$(free_port); metrics=$(free_port); mq_port=$(free_port)
metric() { curl -fs "http://127.0.0.1:$metrics/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
io_field() { awk -v k="$2:" '$1 == k {print $2}' "$1"; }

hub_pid=
start_hub() {
  [ -n "$hub_pid" ] && return
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nuser root\n' \
    "$hub_port" > "$work/hub.conf"
  mosquitto -c "$work/hub.conf" 2>"$work/hub.log" & hub_pid=$!; pids+=("$hub_pid")
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$hub_port") 2>/dev/null && return; sleep 0.05; done
}
stop_hub() { if [ -n "$hub_pid" ]; then kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; hub_pid=; fi; }

# Starts the gateway under a wrapper shell that writes its own /proc/PID/io (which then holds the
# reaped gateway's I/O) to $work/total.io when the gateway exits; sets hpid (the gateway) and wpid.
start_gateway() {  # $1 devices
  rm -rf "$work/data"; mkdir -p "$work/data"
  {
    printf '[gateway]\nid = "gw-bench"\ndata_dir = "%s"\nlog_level = "warn"\n\n' "$work/data"
    printf '[upstream]\nprofile = "mqtt"\nurl = "tcp://127.0.0.1:%s"\n\n' "$hub_port"
    printf '[store]\ndurability = "power"\n%s\n\n' "$(tr ';' '\n' <<<"${WEAR_STORE:-}")"
    printf '[metrics]\nbind = "127.0.0.1:%s"\n\n' "$metrics"
    printf '[[listener]]\nprotocol = "mqtt"\nbind = "127.0.0.1:%s"\nauth = "sas"\n\n' "$hport"
    for i in $(seq 0 $(($1 - 1))); do printf '[[device]]\nid = "d%s"\nkey = "%s"\n' "$i" "$key"; done
  } > "$work/hubgate.toml"
  rm -f "$work/total.io"
  bash -c '"$@"; cat /proc/$$/io > "'"$work"'/total.io"' wrapper "$bin" run -c "$work/hubgate.toml" \
    2>>"$work/hubgate.log" & wpid=$!; pids+=("$wpid")
  hpid=
  for _ in $(seq 200); do
    [ -z "$hpid" ] && hpid=$(pgrep -P "$wpid" || true)
    [ -n "$hpid" ] && curl -fs "http://127.0.0.1:$metrics/healthz" >/dev/null && return
    sleep 0.05
  done
  echo "hubgate did not start" >&2; cat "$work/hubgate.log" >&2; exit 1
}

wait_empty() { while [ "$(metric hubgate_store_messages)" != 0 ]; do sleep 0.05; done; }

# run_case NAME RATE DEVICES PER_DEVICE ONLINE: prints one table row.
run_case() {
  local name=$1 rate=$2 devices=$3 per=$4 online=$5
  local n=$((devices * per))
  [ "$online" = 1 ] && start_hub || stop_hub
  start_gateway "$devices"
  local w0; w0=$(io_field "/proc/$hpid/io" write_bytes)
  perf stat -x, -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -p "$hpid" -o "$work/perf.out" &
  local perf_pid=$!
  sleep 0.2
  local got
  got=$(MQTT_LOAD_RATE=$rate "$load" publish "$hport" "$devices" "$per" 200 "$key")
  [ "$online" = 1 ] || start_hub
  wait_empty
  sleep 1
  local w1; w1=$(io_field "/proc/$hpid/io" write_bytes)
  local commits; commits=$(metric hubgate_store_commits_total)
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  kill "$hpid"; wait "$wpid" 2>/dev/null || true
  local w2; w2=$(io_field "$work/total.io" write_bytes)
  local syncs; syncs=$(awk -F, '/sys_enter_f(data)?sync/ {s += $1} END {print s + 0}' "$work/perf.out")
  awk -v name="$name" -v n="$n" -v got="$got" -v d=$((w1 - w0)) -v t=$((w2 - w0)) -v s="$syncs" -v c="${commits%.*}" \
    'BEGIN { printf "| hubgate %s | %d | %d | %.0f | %.1fx | %.0f | %.1fx | %.3f | %.3f |\n",
             name, n, got, d / n, d / (n * 200), t / n, t / (n * 200), s / n, c / n }'
}

# mosquitto with persistence, the same load, a durable (clean session 0) QoS 1 subscriber: online,
# or away while the backlog is published and back to drain it.
run_mosquitto_case() {
  local name=$1 rate=$2 devices=$3 per=$4 online=$5
  local n=$((devices * per))
  rm -rf "$work/mq"; mkdir -p "$work/mq"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nmax_queued_messages 0\nuser root\n' \
    "$mq_port" "$work/mq" > "$work/mq.conf"
  rm -f "$work/mq.io"
  bash -c '"$@"; cat /proc/$$/io > "'"$work"'/mq.io"' wrapper mosquitto -c "$work/mq.conf" 2>"$work/mq.log" &
  local wp=$! mp=; pids+=("$wp")
  for _ in $(seq 100); do
    [ -z "$mp" ] && mp=$(pgrep -P "$wp" || true)
    [ -n "$mp" ] && (echo > "/dev/tcp/127.0.0.1/$mq_port") 2>/dev/null && break
    sleep 0.05
  done
  mosquitto_sub -p "$mq_port" -i wear-sub -c -q 1 -t 'devices/#' -E
  local w0; w0=$(io_field "/proc/$mp/io" write_bytes)
  local sp=
  if [ "$online" = 1 ]; then mosquitto_sub -p "$mq_port" -i wear-sub -c -q 1 -t 'devices/#' -C "$n" >/dev/null & sp=$!; fi
  sleep 0.2
  local got; got=$(MQTT_LOAD_RATE=$rate "$load" publish "$mq_port" "$devices" "$per" 200)
  if [ "$online" = 1 ]; then wait "$sp"; else mosquitto_sub -p "$mq_port" -i wear-sub -c -q 1 -t 'devices/#' -C "$n" >/dev/null; fi
  sleep 1.5  # one autosave after the last change
  local w1; w1=$(io_field "/proc/$mp/io" write_bytes)
  kill "$mp"; wait "$wp" 2>/dev/null || true
  local w2; w2=$(io_field "$work/mq.io" write_bytes)
  awk -v name="$name" -v n="$n" -v got="$got" -v d=$((w1 - w0)) -v t=$((w2 - w0)) \
    'BEGIN { printf "| mosquitto %s | %d | %d | %.0f | %.1fx | %.0f | %.1fx | | |\n",
             name, n, got, d / n, d / (n * 200), t / n, t / (n * 200) }'
}

echo "# wear: 200-byte QoS 1 messages; bytes written per message (and x payload), fsyncs and commits per message"
echo "# hubgate: $bin; extra [store]: ${WEAR_STORE:-none}"
echo "| case | messages | msg/s | during B/msg | during x | total B/msg | total x | fsyncs/msg | commits/msg |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in $cases; do
  case $c in
    low) args=(low 500 10 $((low_seconds * 50)) 1) ;;
    high) args=(high 20000 100 $((high_n / 100)) 1) ;;
    backlog) args=(backlog 0 10 $((backlog_n / 10)) 0) ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
  run_case "${args[@]}"
  [ "${WEAR_MOSQUITTO:-1}" = 1 ] && run_mosquitto_case "${args[@]}"
done
stop_hub

#!/usr/bin/env bash
# A three-node RabbitMQ cluster with the MQTT plugin on loopback, as background processes (no
# systemd), for tests and benchmarks. Debian's rabbitmq-server 3.10.
#
#   rabbitmq_cluster.sh start DIR BASE   nodes hg1..hg3@localhost, MQTT on BASE, BASE+1, BASE+2;
#                                        AMQP on BASE+10.., Erlang distribution on BASE+20..;
#                                        waits until all three run and are clustered; prints
#                                        "node N pid PID mqtt PORT" per node
#   rabbitmq_cluster.sh kill DIR N       kill -9 node N (1-3)
#   rabbitmq_cluster.sh stop DIR         kill every node of DIR (and forget the data)
#
# Each node has its own name, ports, data and log directories; they share one Erlang cookie (a HOME
# of their own) and are clustered through cluster_formation.classic_config. MQTT session queues are
# quorum queues (mqtt.durable_queue_type = quorum): with classic queues a clean-session-0 client's
# queue lives on the node where it first subscribed, and while that node is down every QoS 1
# SUBSCRIBE elsewhere kills the connection, so no such client could fail over.
set -euo pipefail

cmd=${1:?start|kill|stop}
dir=${2:?directory}
sbin=/usr/lib/rabbitmq/bin
[[ -x $sbin/rabbitmq-server ]] || sbin=/usr/sbin

node_env() {  # N -> the environment of node N
  local n=$1 base=$(<"$dir/base")
  echo "HOME=$dir/home RABBITMQ_NODENAME=hg$n@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
       "RABBITMQ_NODE_PORT=$((base + 10 + n - 1)) RABBITMQ_DIST_PORT=$((base + 20 + n - 1))" \
       "RABBITMQ_MNESIA_BASE=$dir/n$n/mnesia RABBITMQ_LOG_BASE=$dir/n$n/log" \
       "RABBITMQ_CONFIG_FILE=$dir/n$n/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins" \
       "RABBITMQ_PID_FILE=$dir/n$n/pid RABBITMQ_ADVANCED_CONFIG_FILE=$dir/n$n/advanced.config" \
       "RABBITMQ_SERVER_ERL_ARGS=+S2:2" "RABBITMQ_CTL_ERL_ARGS=+S1:1"
}

ctl() {  # N args...: rabbitmqctl against node N
  local n=$1; shift
  env $(node_env "$n") "$sbin/rabbitmqctl" -n "hg$n@localhost" "$@"
}

case $cmd in
start)
  base=${3:?base port}
  mkdir -p "$dir/home"
  echo "$base" >"$dir/base"
  # One cookie for all three (and for rabbitmqctl).
  [[ -f $dir/home/.erlang.cookie ]] || { head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/home/.erlang.cookie"; }
  chmod 400 "$dir/home/.erlang.cookie"
  echo '[rabbitmq_mqtt].' >"$dir/enabled_plugins"
  for n in 1 2 3; do
    mkdir -p "$dir/n$n/mnesia" "$dir/n$n/log"
    echo '[].' >"$dir/n$n/advanced.config"
    cat >"$dir/n$n/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$((base + 10 + n - 1))
loopback_users = none
mqtt.listeners.tcp.1 = 127.0.0.1:$((base + n - 1))
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.durable_queue_type = quorum
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = hg1@localhost
cluster_formation.classic_config.nodes.2 = hg2@localhost
cluster_formation.classic_config.nodes.3 = hg3@localhost
log.console = false
log.file.level = warning
CONF
    # setsid: the node is its own process group, so kill -9 of the node takes its port programs too.
    env $(node_env "$n") setsid "$sbin/rabbitmq-server" >"$dir/n$n/log/stdout.log" 2>&1 &
    echo $! >"$dir/n$n/launcher.pid"
  done
  for n in 1 2 3; do
    if ! timeout 120 env $(node_env "$n") "$sbin/rabbitmqctl" -n "hg$n@localhost" wait --timeout 110 "$dir/n$n/pid" >/dev/null 2>&1; then
      echo "rabbitmq_cluster: node hg$n did not start; its log:" >&2
      tail -n 30 "$dir/n$n/log/stdout.log" "$dir/n$n/log/"*.log >&2 2>/dev/null || true
      exit 1
    fi
  done
  # Clustered: all three running, as node 1 sees it.
  for _ in $(seq 1 120); do
    running=$(ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null || echo 0)
    [[ $running == 3 ]] && break
    sleep 1
  done
  if [[ ${running:-0} != 3 ]]; then
    echo "rabbitmq_cluster: the nodes did not form a cluster of three (node 1 sees ${running:-0} running)" >&2
    exit 1
  fi
  for n in 1 2 3; do
    echo "node $n pid $(<"$dir/n$n/pid") mqtt $((base + n - 1))"
  done
  ;;
kill)
  n=${3:?node}
  # The launcher leads the node's process group (setsid): beam.smp and its port programs die together.
  kill -9 -- "-$(<"$dir/n$n/launcher.pid")" 2>/dev/null || kill -9 "$(<"$dir/n$n/pid")"
  ;;
stop)
  for n in 1 2 3; do
    [[ -f $dir/n$n/launcher.pid ]] && kill -9 -- "-$(<"$dir/n$n/launcher.pid")" 2>/dev/null || true
    [[ -f $dir/n$n/pid ]] && kill -9 "$(<"$dir/n$n/pid")" 2>/dev/null || true
  done
  ;;
*)
  echo "usage: $0 start DIR BASE | kill DIR N | stop DIR" >&2
  exit 2
  ;;
esac

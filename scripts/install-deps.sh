#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages hubgate needs to build, test and run its demo.
# Idempotent: packages already present are skipped by apt. Run as root.
set -euo pipefail

PKGS=(
  # toolchain
  cmake g++ ninja-build pkg-config ccache clang-14 libclang-rt-14-dev
  # libraries (DESIGN.md "Dependencies")
  libboost-dev libsqlite3-dev libspdlog-dev doctest-dev libtoml11-dev nlohmann-json3-dev
  libssl-dev libcli11-dev libpaho-mqttpp-dev libpaho-mqtt-dev libcoap3-dev libcbor-dev
  libavahi-client-dev libqrencode-dev
  # real peers for tests and the demo
  mosquitto mosquitto-clients libcoap3-bin curl python3 openssl
  # a QR decoder for `hubgate devices add --qr` (tests/integration/pairing_test.cpp)
  zbar-tools
  # the upstream cluster test and the fleet benchmark: three RabbitMQ nodes with the MQTT plugin
  rabbitmq-server
  # DNS-SD tests: a private dbus-daemon and avahi-daemon per network namespace, avahi-browse
  dbus avahi-daemon avahi-utils iproute2
  # the .deb (CPack: dpkg-shlibdeps, dpkg-deb, file) and the unit's checks (systemd-analyze)
  dpkg-dev file fakeroot systemd
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm for node-coap, the second CoAP client in the tests (tests/node). Debian's nodejs
# (18) is enough; a machine that already has node (e.g. from NodeSource) keeps its own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present"
fi

# The Debian mosquitto package starts a broker on :1883 at install; tests start their own brokers
# on free ports, so the system one is stopped to keep the machine quiet (ignored where no systemd).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
fi
# The same for RabbitMQ: tests start their own nodes (tests/support/rabbitmq_cluster.sh).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rabbitmq-server 2>/dev/null; then
  systemctl stop rabbitmq-server || true
fi

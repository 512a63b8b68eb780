#!/usr/bin/env bash
# Makes dist/hubgate_<version>_<arch>.deb with CPack from the top-level CMakeLists' install rules.
#   bash scripts/package.sh            # amd64 (the host)
#   bash scripts/package.sh arm64      # cross-built: crossbuild-essential-arm64 + :arm64 dev packages
# Installs what it needs (apt-get update first when it installs; run as root, like the other
# scripts). arm64 also builds the unit tests and runs them under qemu-user, plus a smoke run of the
# binary (HUBGATE_SKIP_ARM64_TESTS=1 skips both). Then tests/package/check_deb.sh checks the .deb.
# Build directories: build-pkg (amd64), build-arm64.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-amd64}
jobs=${JOBS:-$(nproc)}
export DEBIAN_FRONTEND=noninteractive

need() {  # installs the packages (PKG or PKG:ARCH) that are not installed yet
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "package.sh: installing ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Build dependencies are the project's (install-deps.sh); packaging adds dpkg-dev (dpkg-shlibdeps,
# dpkg-deb) and file (CPack's DEB generator uses it).
bash scripts/install-deps.sh >/dev/null
need dpkg-dev file fakeroot  # also in install-deps.sh (CI packages amd64)

case "$arch" in
amd64)
    [ "$(dpkg --print-architecture)" = amd64 ] || { echo "package.sh: amd64 packages are built on amd64" >&2; exit 2; }
    cmake -S . -B build-pkg -G Ninja -DHUBGATE_WERROR=ON -DHUBGATE_TESTS=OFF -DHUBGATE_TEST_HOOKS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
    cmake --build build-pkg -j"$jobs" --target hubgate
    (cd build-pkg && cpack -G DEB >/dev/null)
    mkdir -p dist && mv -f build-pkg/hubgate_*_amd64.deb dist/
    ;;
arm64)
    # Multiarch: the arm64 libraries next to the host's. Their versions must equal the host's
    # (Multi-Arch: same), so apt may upgrade a host library to match.
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get update -qq
    fi
    need crossbuild-essential-arm64 qemu-user-static \
        libboost-dev:arm64 libsqlite3-dev:arm64 libspdlog-dev:arm64 libssl-dev:arm64 \
        libpaho-mqttpp-dev:arm64 libpaho-mqtt-dev:arm64 libcoap3-dev:arm64 libcbor-dev:arm64 libavahi-client-dev:arm64 libqrencode-dev:arm64
    cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake -DHUBGATE_WERROR=ON \
        -DHUBGATE_TEST_HOOKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
    if [ "${HUBGATE_SKIP_ARM64_TESTS:-0}" = 1 ]; then
        cmake --build build-arm64 -j"$jobs" --target hubgate
    else
        cmake --build build-arm64 -j"$jobs" --target hubgate unit_tests
        echo "== arm64 unit tests under qemu-user =="
        # Tests qemu-user cannot run (tests/package/qemu-excluded-tests.txt says why) are left out.
        excluded=$(grep -vE '^(#|$)' tests/package/qemu-excluded-tests.txt | paste -sd'|' || true)
        ctest --test-dir build-arm64 -L unit --output-on-failure -j"$jobs" --timeout 600 ${excluded:+-E "$excluded"}
        echo "== arm64 smoke run under qemu-user =="
        bash tests/package/arm64_smoke.sh build-arm64/hubgate
    fi
    (cd build-arm64 && cpack -G DEB >/dev/null)
    mkdir -p dist && mv -f build-arm64/hubgate_*_arm64.deb dist/
    ;;
*)
    echo "usage: scripts/package.sh [amd64|arm64]" >&2
    exit 2
    ;;
esac

version=$(sed -nE 's/^project\(hubgate VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
deb=dist/hubgate_${version}_${arch}.deb
bash tests/package/check_deb.sh "$deb" "$arch"
echo "package.sh: $deb"

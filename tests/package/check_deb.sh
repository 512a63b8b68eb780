#!/usr/bin/env bash
# Unpacks a hubgate .deb with dpkg-deb and checks it: metadata and Depends (from dpkg-shlibdeps),
# the conffile, the maintainer scripts, every file the package must ship, the binary's
# architecture, the example config (identical to config/hubgate.toml and accepted by
# `check-config` as shipped) and the unit (tests/package/check_unit.sh).
#   tests/package/check_deb.sh DEB amd64|arm64
# scripts/package.sh runs it after each build.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$1
arch=$2
fail=0
bad() { echo "check_deb: $deb: $*" >&2; fail=1; }

[ -f "$deb" ] || { echo "check_deb: $deb not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = hubgate ] || bad "Package is '$(field Package)'"
[ "$(field Architecture)" = "$arch" ] || bad "Architecture is '$(field Architecture)', not $arch"
version=$(sed -nE 's/^project\(hubgate VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
[ "$(field Version)" = "$version" ] || bad "Version is '$(field Version)', not $version"
[ "$(basename "$deb")" = "hubgate_${version}_${arch}.deb" ] || bad "file name is not hubgate_${version}_${arch}.deb"

# Depends: what dpkg-shlibdeps found for the libraries hubgate links, with versions, plus systemd and
# libavahi-client3 (dlopen'd by discovery, named in cmake/packaging.cmake).
depends=$(field Depends)
# (Extended regexes: the package names as Debian 12 spells them.)
for lib in 'libc6' 'libstdc\+\+6' 'libsqlite3-0' 'libssl3' 'libpaho-mqttpp3-1' 'libpaho-mqtt1\.3' \
           'libcoap3' 'libfmt9' 'libcbor0\.8' 'libavahi-client3' 'systemd'; do
    echo "$depends" | tr ',' '\n' | grep -qE "^ *$lib( |$)" || bad "Depends lacks $lib: $depends"
done
# Compiled in or written here (docs/BENCHMARKS.md, "Memory"): spdlog (gateway/logging/), systemd's
# notify protocol (gateway/app/service_notify.*).
for lib in 'libspdlog' 'libsystemd0'; do
    if echo "$depends" | tr ',' '\n' | grep -qE "^ *$lib"; then bad "Depends has $lib, which hubgate no longer links: $depends"; fi
done
[ "$(field Recommends)" = avahi-daemon ] || bad "Recommends is not avahi-daemon: $(field Recommends)"
echo "$depends" | grep -qE 'libc6 \(>= [0-9.]+\)' || bad "Depends has no versioned libc6 (dpkg-shlibdeps not run?): $depends"

# Exactly one conffile: the config.
conffiles=$(grep -v '^$' "$tmp/control/conffiles" 2>/dev/null || true)
[ "$conffiles" = /etc/hubgate/hubgate.toml ] || bad "conffiles is '$conffiles'"
for s in postinst prerm postrm; do
    [ -x "$tmp/control/$s" ] || bad "no executable $s"
    cmp -s "$tmp/control/$s" "packaging/deb/$s" || bad "$s differs from packaging/deb/$s"
done

for f in usr/bin/hubgate usr/lib/systemd/system/hubgate.service usr/lib/sysusers.d/hubgate.conf \
         usr/lib/tmpfiles.d/hubgate.conf etc/hubgate/hubgate.toml usr/share/hubgate/hubgate.toml.example \
         usr/share/doc/hubgate/README.md usr/share/doc/hubgate/docs/config.md usr/share/doc/hubgate/docs/store.md \
         usr/share/doc/hubgate/config/hubgate.toml usr/share/doc/hubgate/config/examples/tasmota.toml; do
    [ -f "$tmp/root/$f" ] || bad "missing /$f"
done
# Nothing outside the expected trees (no build paths, no /usr/local).
unexpected=$(cd "$tmp/root" && find . -type f | grep -vE '^\./(usr/bin/hubgate|usr/lib/(systemd/system|sysusers\.d|tmpfiles\.d)/|usr/share/(doc/)?hubgate/|etc/hubgate/hubgate\.toml$)' || true)
[ -z "$unexpected" ] || bad "unexpected files: $unexpected"
[ "$(stat -c %a "$tmp/root/usr/bin/hubgate")" = 755 ] || bad "/usr/bin/hubgate is not 0755"

case "$arch" in
amd64) want='x86-64' ;;
arm64) want='ARM aarch64' ;;
*) want='?' ;;
esac
file -b "$tmp/root/usr/bin/hubgate" | grep -q "$want" || bad "binary is not $want: $(file -b "$tmp/root/usr/bin/hubgate")"
file -b "$tmp/root/usr/bin/hubgate" | grep -q "not stripped" && bad "binary is not stripped"

cmp -s "$tmp/root/etc/hubgate/hubgate.toml" config/hubgate.toml || bad "/etc/hubgate/hubgate.toml is not config/hubgate.toml"
cmp -s "$tmp/root/usr/share/hubgate/hubgate.toml.example" config/hubgate.toml || bad "hubgate.toml.example differs"
cmp -s "$tmp/root/usr/lib/systemd/system/hubgate.service" systemd/hubgate.service || bad "the unit differs from systemd/hubgate.service"

# The shipped config passes check-config, run by the packaged binary itself (arm64: under qemu).
run=("$tmp/root/usr/bin/hubgate")
if [ "$arch" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
    if command -v qemu-aarch64-static >/dev/null 2>&1; then
        run=(qemu-aarch64-static "$tmp/root/usr/bin/hubgate")
    else
        run=()
        echo "check_deb: no qemu-aarch64-static; check-config of the arm64 binary skipped"
    fi
fi
if ((${#run[@]})); then
    out=$("${run[@]}" check-config -c "$tmp/root/etc/hubgate/hubgate.toml" 2>&1) || bad "check-config refuses the shipped config: $out"
    "${run[@]}" --version >/dev/null 2>&1 || bad "the packaged binary does not run (--version)"
fi

# The unit as shipped: verify clean, exposure <= 2.0 (against a host binary for verify).
host_bin=build-pkg/hubgate
[ "$arch" = amd64 ] && host_bin=$tmp/root/usr/bin/hubgate
[ -x "$host_bin" ] || host_bin=build/hubgate
if [ -x "$host_bin" ]; then
    bash tests/package/check_unit.sh "$tmp/root/usr/lib/systemd/system/hubgate.service" "$host_bin" >/dev/null ||
        bad "the shipped unit fails tests/package/check_unit.sh"
fi

if ((fail)); then exit 1; fi
echo "check_deb: $deb ok ($(dpkg-deb -c "$deb" | wc -l) entries; Depends: $depends)"

#!/usr/bin/env bash
# systemd/hubgate.service: `systemd-analyze verify` clean and `systemd-analyze security` exposure
# <= 2.0 (DESIGN.md "On gateway hardware"). Run by scripts/test.sh; skipped where systemd-analyze
# is missing. verify needs the ExecStart binary to exist, so it checks a copy pointing at BINARY.
#   tests/package/check_unit.sh [UNIT] [BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
unit=${1:-systemd/hubgate.service}
binary=$(realpath "${2:-build/hubgate}")
max=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check_unit: systemd-analyze not found; skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/bin/hubgate#$binary#g" "$unit" > "$tmp/hubgate.service"

if ! out=$(systemd-analyze verify "$tmp/hubgate.service" 2>&1) || [ -n "$out" ]; then
    echo "check_unit: systemd-analyze verify $unit is not clean:" >&2
    echo "$out" >&2
    exit 1
fi

report=$(systemd-analyze security --offline=yes "$tmp/hubgate.service" 2>&1)
score=$(echo "$report" | sed -nE 's/.*Overall exposure level for hubgate.service: ([0-9.]+).*/\1/p')
if [ -z "$score" ]; then
    echo "check_unit: no exposure score in:" >&2
    echo "$report" >&2
    exit 1
fi
if ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    echo "check_unit: exposure $score > $max:" >&2
    echo "$report" | grep -v '✓' >&2
    exit 1
fi
echo "check_unit: $unit verifies clean, exposure $score (<= $max)"

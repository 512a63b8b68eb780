#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan+UBSan) in build-fuzz and runs each for an equal share
# of SECONDS (default 60 s in total) on a scratch copy of the committed seed corpus, so the corpus
# does not grow. Exits non-zero if a target crashes; crash inputs are kept in build-fuzz/artifacts/.
# Usage: tests/fuzz/run.sh [SECONDS]
set -euo pipefail

total=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${HUBGATE_FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=(mqtt_codec property_bag coap_paths rule_match json cbor senml)

CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DHUBGATE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "${targets[@]/#/fuzz_}" -j2

per=$((total / ${#targets[@]}))
((per >= 1)) || per=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
artifacts="$build/artifacts"
mkdir -p "$artifacts"

status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  cp "$root/tests/fuzz/corpus/$t/"* "$scratch/$t/"
  echo "fuzz: $t for ${per}s"
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$per" -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$scratch/$t" 2>"$scratch/$t.log"; then
    tail -n 60 "$scratch/$t.log" >&2
    echo "fuzz: $t FAILED (reproduce: $build/tests/fuzz/fuzz_$t $artifacts/$t-<crash file>)" >&2
    status=1
  else
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units)' "$scratch/$t.log" || true
  fi
done
exit "$status"

#!/usr/bin/env bash
# The README's test command (and all .ci/run does): installs what is missing, builds twice
# (warnings as errors; then ASan+UBSan), runs the whole suite, then the unit tests under sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
jobs=$(nproc)
start=$(date +%s)

echo "== build (-Wall -Wextra -Werror) =="
cmake -S . -B build -G Ninja -DHUBGATE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== build (ASan + UBSan, unit tests) =="
cmake -S . -B build-asan -G Ninja -DHUBGATE_WERROR=ON -DHUBGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" --target unit_tests

echo "== unit tests under ASan + UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs" --timeout 300

echo "== all tests (unit + integration with real peers) =="
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300

echo "test.sh: done in $(( $(date +%s) - start )) s"

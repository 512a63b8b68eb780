#!/usr/bin/env bash
# The README's test command (and all .ci/run does): installs what is missing, builds twice
# (warnings as errors; then ASan+UBSan), runs the unit tests under sanitizers, the whole suite,
# and a short fuzz run of the parsers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# node-coap at the version package-lock.json pins, for the node-coap integration tests.
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
jobs=$(nproc)
start=$(date +%s)

# ctest hands each doctest case to its binary by name; CMake splits names at ';', and such a case
# then runs nothing and "passes". Refuse them rather than let a test silently vanish.
if grep -rnE 'TEST_CASE\("[^"]*;' tests/; then
  echo "test.sh: test case names must not contain ';' (ctest would run nothing for them)" >&2
  exit 1
fi

echo "== build (-Wall -Wextra -Werror) =="
cmake -S . -B build -G Ninja -DHUBGATE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

echo "== build (ASan + UBSan: unit tests, in-process integration tests) =="
cmake -S . -B build-asan -G Ninja -DHUBGATE_WERROR=ON -DHUBGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs" --target unit_tests sanitized_tests

echo "== unit tests and in-process integration tests (MQTT server, upstream client, CoAP server) under ASan + UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  ctest --test-dir build-asan -L 'unit|sanitize' --output-on-failure -j"$jobs" --timeout 300

echo "== fuzzing (libFuzzer, clang-14): MQTT codec, property bags, CoAP paths, 60 s in total =="
bash tests/fuzz/run.sh 60

echo "== the systemd unit (verify clean, exposure <= 2.0) and the amd64 .deb from build/ (contents, conffiles, Depends) =="
bash tests/package/check_unit.sh systemd/hubgate.service build/hubgate
rm -f build/hubgate_*.deb
(cd build && cpack -G DEB >/dev/null)
bash tests/package/check_deb.sh build/hubgate_*_amd64.deb amd64

echo "== all tests (unit + integration with real peers) =="
echo "(builds and sanitizer run took $(( $(date +%s) - start )) s; ctest's summary is the last line)"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300

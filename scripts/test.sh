#!/usr/bin/env bash
# Builds everything (warnings are errors) and runs every test once: the execution-sentinel program's integration
# tests and the real-client fidelity tests in the Debug build, packaging consumers (header-only and compiled), the
# unit and the other integration tests and the fuzz smoke runs under AddressSanitizer + UndefinedBehaviorSanitizer,
# and ThreadSanitizer runs (scripts/tsan.sh). Each step prints the time since the start.
# Usage: scripts/test.sh   (fresh Debian 12 machine: installs dependencies first)
#   ES_CLEAN_BUILDS=1 (set by .ci/run) removes each build tree once its step is done, so that the disk holds one at a
#   time (the Debug tree takes about 3 GiB, the sanitizer tree about 4 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
step() { echo "== [$(date -u +%H:%M:%S), ${SECONDS}s] $* (disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free)"; }
done_with() { if [ "${ES_CLEAN_BUILDS:-0}" = 1 ]; then rm -rf "$@"; fi; }
root=$(pwd)
jobs=${JOBS:-$(nproc)}
scripts/install-deps.sh

step "build (warnings in our own code are errors)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DEXECUTION_SENTINEL_WERROR=ON >/dev/null
cmake --build build/test -j "$jobs"

# The unit tests and the integration tests that do not run the execution-sentinel program run once, under the
# sanitizers below (where they would find more); here: the program's own tests and the real-client fidelity tests.
step "tests of the execution-sentinel program and real clients"
(cd build/test && ctest --output-on-failure -j 1 -E '^(unit_tests|integration_tests)$')

step "packaging: find_package and add_subdirectory consumers, header-only and compiled"
rm -rf build/prefix build/consumer-fp build/consumer-as
cmake --install build/test --prefix build/prefix >/dev/null
cmake -S tests/consumers/find_package -B build/consumer-fp -DCMAKE_PREFIX_PATH="$root/build/prefix" >/dev/null
cmake --build build/consumer-fp -j "$jobs" >/dev/null
build/consumer-fp/consumer
build/consumer-fp/consumer_compiled
cmake -S tests/consumers/add_subdirectory -B build/consumer-as -DEXECUTION_SENTINEL_SOURCE="$root" >/dev/null
cmake --build build/consumer-as -j "$jobs" >/dev/null
build/consumer-as/consumer
build/consumer-as/consumer_compiled
done_with build/test build/prefix build/consumer-fp build/consumer-as

step "unit and integration tests and the fuzz smoke runs under ASan + UBSan"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DEXECUTION_SENTINEL_SANITIZE=ON \
  -DEXECUTION_SENTINEL_BUILD_EXAMPLES=OFF -DEXECUTION_SENTINEL_BUILD_BENCHMARKS=OFF \
  -DEXECUTION_SENTINEL_BUILD_TOOLS=OFF -DEXECUTION_SENTINEL_HEADER_CHECKS=OFF -DEXECUTION_SENTINEL_BUILD_FUZZ=ON >/dev/null
cmake --build build/asan -j "$jobs"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j 1)
done_with build/asan
step "ThreadSanitizer: the report channel and the sentinel over FakeCluster on a multi-threaded io_context"
bash scripts/tsan.sh
step "all tests passed"

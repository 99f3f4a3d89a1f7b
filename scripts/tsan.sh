#!/usr/bin/env bash
# Builds and runs the ThreadSanitizer checks, without CMake:
#   * tests/unit/channel_test.cpp: the report channel with publishers, subscribers and cancellations on many threads;
#   * tests/tsan/sentinel_tsan.cpp: the Sentinel over FakeCluster on an io_context run by four threads, with three
#     subscribers draining its reports while the simulated cluster plays a small HyperFlow run with faults.
# Any race stops the run (halt_on_error) with ThreadSanitizer's report; exit status 0 when both pass.
# Objects are kept in build/tsan and rebuilt when their source or a header changed.
# Usage: scripts/tsan.sh   (JOBS=1 compiles one file at a time; by default the three files compile at once)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
out=build/tsan
mkdir -p "$out"
# -Wno-tsan: GCC notes that Asio's std::atomic_thread_fence is not instrumented.
flags=(-std=c++20 -g -O1 -fsanitize=thread -Wno-tsan -Iinclude -Itests/support -DBOOST_ASIO_NO_DEPRECATED)

# compile SOURCE OBJECT: only when the object is missing or older than the source or any header.
compile() {
  local src=$1 obj=$2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] ||
     [ -n "$(find include tests/support -newer "$obj" \( -name '*.hpp' -o -name '*.ipp' \) -print -quit)" ]; then
    echo "compiling $src"
    g++ "${flags[@]}" -c "$src" -o "$obj"
  fi
}

start=$(date +%s)
sources=(tests/support/main.cpp tests/unit/channel_test.cpp tests/tsan/sentinel_tsan.cpp)
pids=()
for src in "${sources[@]}"; do
  obj=$out/$(basename "${src%.cpp}").o
  if [ "$jobs" -gt 1 ]; then
    compile "$src" "$obj" &
    pids+=($!)
  else
    compile "$src" "$obj"
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
g++ -fsanitize=thread "$out/main.o" "$out/channel_test.o" -o "$out/channel_tsan" -lboost_json -pthread
g++ -fsanitize=thread "$out/sentinel_tsan.o" -o "$out/sentinel_tsan" \
  -lboost_json -lboost_url -lyaml-cpp -lssl -lcrypto -pthread
built=$(date +%s)
echo "built in $((built - start)) s"

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
echo "== the report channel under ThreadSanitizer"
"$out/channel_tsan" "[channel]"
echo "== the Sentinel over FakeCluster under ThreadSanitizer (io_context on 4 threads)"
"$out/sentinel_tsan"
echo "ThreadSanitizer runs passed in $(($(date +%s) - built)) s (build $((built - start)) s)"

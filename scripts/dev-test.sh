#!/usr/bin/env bash
# Builds and runs a test executable from only the given test sources, without CMake: handy while working on
# one component. Usage: scripts/dev-test.sh NAME test1.cpp [test2.cpp ...] [-- CATCH_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
sources=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sources+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
mkdir -p build/dev-test
flags=(-std=c++20 -g -O0 -Wall -Wextra -Wno-unused-parameter -Iinclude -Itests/support
       -DEXECUTION_SENTINEL_SOURCE_DIR="\"$(pwd)\"" -DEXECUTION_SENTINEL_BINARY_DIR="\"$(pwd)/build/dev-test\""
       -DBOOST_ASIO_NO_DEPRECATED ${EXTRA_FLAGS:-})
main=build/dev-test/catch_main.o
[ -f "$main" ] || g++ "${flags[@]}" -c tests/support/main.cpp -o "$main"
objs=()
for s in "${sources[@]}"; do
  o=build/dev-test/${name}_$(basename "${s%.cpp}").o
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find include tests/support -newer "$o" -name '*.hpp' -print -quit)" ]; then
    g++ "${flags[@]}" -c "$s" -o "$o"
  fi
  objs+=("$o")
done
g++ "${flags[@]}" "${objs[@]}" "$main" -o "build/dev-test/$name" -lboost_json -lboost_url -lyaml-cpp -lssl -lcrypto -pthread
exec "build/dev-test/$name" "$@"

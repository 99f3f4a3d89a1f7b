#!/usr/bin/env bash
# Builds execution-sentinel and runs the main job. With no arguments: the demo, on the embedded simulated cluster
# and watched by the real sentinel over HTTPS — first a short run that goes wrong (a task's memory climbing
# towards its limit is reported before it is killed for it, and a failed task's report shows the last lines of
# its log; about 15 s), then a realistic 1000genome HyperFlow run (about a minute).
# Any arguments are passed to the CLI instead, e.g.:
#   scripts/demo.sh watch --context context.json            (against the cluster of your kubeconfig)
#   scripts/demo.sh demo --scenario memory-pressure-oom     (one demo run)
# Usage on a fresh Debian 12 machine: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
scripts/install-deps.sh >&2
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DEXECUTION_SENTINEL_BUILD_TESTS=OFF \
  -DEXECUTION_SENTINEL_BUILD_BENCHMARKS=OFF -DEXECUTION_SENTINEL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/release -j "$jobs" --target execution-sentinel >&2
bin=build/release/tools/execution-sentinel/execution-sentinel
if [ $# -eq 0 ]; then
  # The diagnosis run ends as a failed workflow (exit status 1) on purpose: go on to the full run.
  status=0
  "$bin" demo --scenario memory-pressure-oom || status=$?
  if [ "$status" -ne 1 ] && [ "$status" -ne 0 ]; then exit "$status"; fi
  echo >&2
  set -- demo
fi
exec "$bin" "$@"

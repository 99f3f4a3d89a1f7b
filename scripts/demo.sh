#!/usr/bin/env bash
# Builds execution-sentinel and runs the main job. With no arguments: the demo — a simulated 1000genome
# HyperFlow run on the embedded simulated cluster, watched by the real sentinel over HTTPS (about a minute).
# Any arguments are passed to the CLI instead, e.g.:
#   scripts/demo.sh watch --context context.json            (against the cluster of your kubeconfig)
# Usage on a fresh Debian 12 machine: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
scripts/install-deps.sh >&2
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DEXECUTION_SENTINEL_BUILD_TESTS=OFF \
  -DEXECUTION_SENTINEL_BUILD_BENCHMARKS=OFF -DEXECUTION_SENTINEL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/release -j "$jobs" --target execution-sentinel >&2
if [ $# -eq 0 ]; then set -- demo; fi
exec build/release/tools/execution-sentinel/execution-sentinel "$@"

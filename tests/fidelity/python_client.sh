#!/usr/bin/env bash
# The Python kubernetes client (Debian's python3-kubernetes) against FakeCluster: list, a Watch().stream resumed
# from a resourceVersion, a watch from a compacted resourceVersion failing with 410, and stream() exec of the
# completion signal. Usage: bash python_client.sh <path-to-execution-sentinel-cluster>. Exit 77 = skipped.
set -u
cluster_bin=${1:?usage: python_client.sh <path-to-execution-sentinel-cluster>}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ] || ! "$py" -c 'import kubernetes' >/dev/null 2>&1; then
  echo "SKIP: the Python kubernetes client is not installed (apt-get install python3-kubernetes)"
  exit 77
fi

tmp=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The shared fidelity scenario plus a compaction 6 s after start, for the 410 check.
compact_at=6
"$py" - "$here/fidelity_scenario.json" "$tmp/scenario.json" "$compact_at" <<'PY'
import json, sys
scenario = json.load(open(sys.argv[1]))
scale = float(scenario.get("time_scale", 1.0))
scenario.setdefault("steps", []).append({"at": float(sys.argv[3]) / scale, "action": "compact"})
json.dump(scenario, open(sys.argv[2], "w"))
PY

export HOME="$tmp/home"
mkdir -p "$HOME"
"$cluster_bin" --scenario "$tmp/scenario.json" --port 0 --kubeconfig-out "$tmp/kubeconfig" \
  >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
for _ in $(seq 1 200); do
  grep -q '^ready ' "$tmp/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^ready ' "$tmp/server.out" 2>/dev/null; then
  echo "FAIL: the cluster did not print 'ready <url>' within 20 s"
  cat "$tmp/server.err"
  exit 1
fi
timeout 120 "$py" "$here/python_client.py" "$tmp/kubeconfig" "$compact_at"

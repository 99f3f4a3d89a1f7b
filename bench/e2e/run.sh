#!/usr/bin/env bash
# End-to-end CPU per watch event: the same stream of pod events, served over TLS by the simulated cluster, to this
# project's watcher, `kubectl get pods -w -o name` and the Python client (python3-kubernetes), one after the other,
# ROUNDS times interleaved. Each client first receives the PODS existing pods (its list or initial events), then a
# burst of PODS MODIFIED events (about 6 KB each); the CPU it spends on the burst (utime + stime from
# /proc/PID/stat) divided by PODS is its CPU per event. Prints every sample, the medians and the ratios.
#
#   bench/e2e/run.sh BUILD_DIR [PODS=20000] [ROUNDS=3] [CLIENTS="watcher kubectl python"]
#
# BUILD_DIR holds bench/e2e/e2e_bench (cmake --build BUILD_DIR --target e2e_bench, Release). kubectl and
# /usr/bin/python3 with python3-kubernetes are used when present and skipped otherwise.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [PODS] [ROUNDS] [CLIENTS]}
pods=${2:-20000}
rounds=${3:-3}
clients=${4:-watcher kubectl python}
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bench/e2e/e2e_bench
[ -x "$bin" ] || { echo "no $bin: build the e2e_bench target first" >&2; exit 2; }
tmp=$(mktemp -d)
hz=$(getconf CLK_TCK)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mkfifo "$tmp/to_server" "$tmp/from_server"
"$bin" serve "$tmp/kubeconfig" "$pods" <"$tmp/to_server" >"$tmp/from_server" &
server_pid=$!
exec 3>"$tmp/to_server" 4<"$tmp/from_server"
read -r line <&4
[ "$line" = ready ] || { echo "server did not start" >&2; exit 1; }

lines() { wc -l <"$1" 2>/dev/null || echo 0; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_lines() { # file count pid
  local deadline=$((SECONDS + 600))
  while [ "$(lines "$1")" -lt "$2" ]; do
    kill -0 "$3" 2>/dev/null || { echo "client exited early: $(cat "$1.err" 2>/dev/null | head -3)" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $2 lines in $1" >&2; return 1; }
    sleep 0.05
  done
}

run_client() { # name command...
  local name=$1; shift
  local out=$tmp/$name.out
  : >"$out"
  "$@" >"$out" 2>"$out.err" &
  local pid=$!
  wait_lines "$out" "$pods" "$pid" || { kill "$pid" 2>/dev/null; return 1; }
  sleep 0.5 # the initial list is printed; let the client settle into its watch
  local t0; t0=$(ticks "$pid")
  echo burst >&3
  read -r line <&4
  wait_lines "$out" $((2 * pods)) "$pid" || { kill "$pid" 2>/dev/null; return 1; }
  local t1; t1=$(ticks "$pid")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # microseconds of CPU per event
  echo $(( (t1 - t0) * 1000000 / hz / pods ))
}

declare -A samples
for ((r = 1; r <= rounds; ++r)); do
  for c in $clients; do
    case $c in
      watcher) cmd=("$bin" watch "$tmp/kubeconfig") ;;
      kubectl) command -v kubectl >/dev/null || continue
               cmd=(kubectl --kubeconfig "$tmp/kubeconfig" get pods -n wf -w -o name) ;;
      python) /usr/bin/python3 -c 'import kubernetes' 2>/dev/null || continue
              cmd=(/usr/bin/python3 "$here/watch_pods.py" "$tmp/kubeconfig") ;;
      *) echo "unknown client $c" >&2; exit 2 ;;
    esac
    us=$(run_client "$c" "${cmd[@]}")
    echo "round $r: $c $us us CPU/event"
    samples[$c]="${samples[$c]:-} $us"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "--- medians over $rounds rounds, $pods events per burst (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
declare -A med
for c in $clients; do
  [ -n "${samples[$c]:-}" ] || continue
  med[$c]=$(echo "${samples[$c]}" | median)
  echo "$c: ${med[$c]} us CPU/event"
done
if [ -n "${med[watcher]:-}" ]; then
  for c in kubectl python; do
    [ -n "${med[$c]:-}" ] && awk -v a="${med[watcher]}" -v b="${med[$c]}" -v c="$c" \
      'BEGIN {printf "watcher / %s = %.3f\n", c, (b > 0 ? a / b : 0)}'
  done
fi

#!/usr/bin/env bash
# The execution-sentinel command end to end: exit codes, NDJSON content, context from stdin, bad inputs, the
# simulate → watch --kubeconfig path, credentials refused, and SIGINT. Runs the built program against FakeCluster
# scenarios (demo --scenario, simulate). Usage: bash cli.sh <path-to-execution-sentinel-cluster>
set -u
cluster_bin=${1:?usage: cli.sh <path-to-execution-sentinel-cluster>}
bin="$(cd "$(dirname "$cluster_bin")/.." && pwd)/execution-sentinel/execution-sentinel"
if [ ! -x "$bin" ]; then
  echo "FAIL: execution-sentinel not found at $bin"
  exit 1
fi
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 is needed to check the JSON output"
  exit 77
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1
# No user configuration leaks in: no kubeconfig, no .env, no SENTINEL_* variables.
unset KUBECONFIG $(env | sed -n 's/^\(SENTINEL_[A-Z_]*\)=.*/\1/p')
export HOME="$tmp/home"
mkdir -p "$HOME"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && sed 's/^/    /' <<<"$2"; }

# expect_status NAME WANT CMD... : runs CMD (stdout → out, stderr → err) with a time limit.
expect_status() {
  local name=$1 want=$2
  shift 2
  timeout -s KILL 120 "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" = "$want" ]; then ok "$name (exit $got)"; else not_ok "$name: exit $got, expected $want" "$(tail -5 "$tmp/err")"; fi
}

# stderr is exactly one line containing each of the given strings.
expect_one_error_line() {
  local name=$1
  shift
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ "$lines" != 1 ]; then not_ok "$name: $lines lines on stderr, expected 1" "$(cat "$tmp/err")"; return; fi
  for s in "$@"; do
    if ! grep -qF -- "$s" "$tmp/err"; then not_ok "$name: stderr lacks '$s'" "$(cat "$tmp/err")"; return; fi
  done
  if [ -s "$tmp/out" ]; then not_ok "$name: wrote to stdout" "$(head -3 "$tmp/out")"; return; fi
  ok "$name: message names the problem"
}

# check_ndjson NAME OUTCOME EXIT [PY-CONDITION...]: every line of out is a JSON object with a type; the last is
# the SUMMARY with the given outcome and exit status; reports are numbered in order; each extra condition is a
# Python expression over `reports` (list of report objects) and `summary` (the WatchSummary object).
check_ndjson() {
  local name=$1 outcome=$2 status=$3
  shift 3
  if python3 - "$tmp/out" "$outcome" "$status" "$@" >"$tmp/check" 2>&1 <<'EOF'
import json, sys
path, outcome, status, *conditions = sys.argv[1:]
lines = open(path, encoding="utf-8").read().split("\n")
assert lines[-1] == "", "output does not end with a newline"
records = [json.loads(l) for l in lines[:-1]]
assert records, "no output"
for r in records:
    assert isinstance(r, dict) and isinstance(r.get("type"), str), f"line without a type: {r}"
last = records[-1]
assert last["type"] == "SUMMARY", f"last line is not the summary: {last}"
assert [r for r in records if r["type"] == "SUMMARY"] == [last], "more than one SUMMARY line"
assert last["outcome"] == outcome, f"outcome {last['outcome']!r}, expected {outcome!r}"
assert last["exit_status"] == int(status), f"exit_status {last['exit_status']}"
summary = last["summary"]
reports = records[:-1]
seqs = [r["sequence"] for r in reports]
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"sequence numbers out of order: {seqs}"
for r in reports:
    for key in ("type", "severity", "sequence", "timestamp", "completed_tasks", "total_tasks", "message", "details"):
        assert key in r, f"report without {key}: {r}"
for c in conditions:
    assert eval(c), f"failed: {c}\nreports: {[(r['type'], r['message']) for r in reports]}\nsummary: {summary}"
EOF
  then ok "$name: NDJSON"; else not_ok "$name: NDJSON" "$(cat "$tmp/check"; head -c 2000 "$tmp/out")"; fi
}

# ------------------------------------------------------------------------------------------ scenarios
# Small runs (a few seconds of wall time) on the simulated cluster.
cat >happy.json <<'EOF'
{"name": "cli-happy", "namespace": "cli-happy", "time_scale": 0.05, "seed": 7,
 "engine": {"at": 0},
 "task_defaults": {"pending": 2, "duration": 10},
 "tasks": [
   {"type": "individuals", "proc_id": 1, "start": 1},
   {"type": "individuals", "proc_id": 2, "start": 1, "duration": 14},
   {"type": "sifting", "proc_id": 3, "start": 1, "duration": 4},
   {"type": "individuals_merge", "proc_id": 4, "start": 20},
   {"type": "mutation_overlap", "proc_id": 5, "start": 34},
   {"type": "frequency", "proc_id": 6, "start": 34}],
 "completion": {"at": 50, "exit_code": 0}}
EOF
cat >failed.json <<'EOF'
{"name": "cli-failed", "namespace": "cli-failed", "time_scale": 0.05, "seed": 8,
 "engine": {"at": 0},
 "tasks": [
   {"type": "individuals", "proc_id": 1, "start": 1, "pending": 2, "duration": 6},
   {"type": "individuals", "proc_id": 2, "start": 1, "pending": 2, "duration": 8, "outcome": "fail", "exit_code": 2,
    "failed_attempts": 1, "backoff_limit": 0}],
 "completion": {"at": 20, "exit_code": 1}}
EOF
cat >endless.json <<'EOF'
{"name": "cli-endless", "namespace": "cli-endless", "time_scale": 0.05, "seed": 9,
 "engine": {"at": 0},
 "tasks": [{"type": "individuals", "proc_id": 1, "start": 1, "pending": 2, "outcome": "running"},
           {"type": "sifting", "proc_id": 2, "start": 1, "pending": 2, "duration": 4}]}
EOF

# ------------------------------------------------------------------------------------------ basics
expect_status "version" 0 "$bin" version
grep -qE '^execution-sentinel [0-9]+\.[0-9]+\.[0-9]+$' out && ok "version prints the version" || not_ok "version output" "$(cat out)"
expect_status "--help" 0 "$bin" --help
grep -q "Examples:" out && grep -q "watch" out && grep -q "demo" out && ok "--help lists commands and examples" || not_ok "--help output" "$(cat out)"
for sub in watch demo simulate; do
  expect_status "$sub --help" 0 "$bin" "$sub" --help
  grep -q "Examples:" out && ok "$sub --help has examples" || not_ok "$sub --help has no examples" "$(cat out)"
done
grep -q -- "--kubeconfig-out" out && ok "simulate --help names its flags" || not_ok "simulate --help" "$(cat out)"

# ------------------------------------------------------------------------------------------ usage errors → 2
expect_status "no command" 2 "$bin"
expect_one_error_line "no command"
expect_status "unknown flag" 2 "$bin" watch --context x.json --frobnicate
expect_one_error_line "unknown flag" "frobnicate"
expect_status "missing --context" 2 "$bin" watch
expect_one_error_line "missing --context" "--context"

echo 'this is not JSON' >notjson.json
expect_status "context not JSON" 2 "$bin" watch --context notjson.json
expect_one_error_line "context not JSON" "notjson.json" "not valid JSON"
expect_status "context not JSON on stdin" 2 sh -c "echo '{\"namespace\": ' | \"$bin\" watch --context -"
expect_one_error_line "context not JSON on stdin" "(stdin)" "not valid JSON"
expect_status "context without namespace" 2 sh -c "echo '{\"engine_pod_name\": \"engine-1\"}' | \"$bin\" watch --context -"
expect_one_error_line "context without namespace" "namespace"
echo '{"namespace": "ns", "engine_pod_name": "e", "task_inventory": [{"name": "a", "dag_order": "first"}]}' >badfield.json
expect_status "context with a mistyped field" 2 "$bin" watch --context badfield.json
expect_one_error_line "context with a mistyped field" "task_inventory[0].dag_order"
expect_status "context file missing" 2 "$bin" watch --context does-not-exist.json
expect_one_error_line "context file missing" "does-not-exist.json"

echo '{"namespace": "ns", "engine_pod_name": "engine-1"}' >good.json
for bad in abc 0 -5 nan 1e400 1e-9 0.05; do
  expect_status "--poll $bad" 2 "$bin" watch --context good.json --poll "$bad"
  expect_one_error_line "--poll $bad" "--poll"
done
expect_status "demo --poll 1e-9" 2 "$bin" demo --scenario happy.json --poll 1e-9
expect_one_error_line "demo --poll 1e-9" "--poll: must be at least 0.1 seconds"
expect_status "--timeout 0" 2 "$bin" watch --context good.json --timeout 0
expect_one_error_line "--timeout 0" "--timeout"
expect_status "--output yaml" 2 "$bin" watch --context good.json --output yaml
expect_one_error_line "--output yaml" "--output"
expect_status "SENTINEL_POLL_INTERVAL invalid" 2 env SENTINEL_POLL_INTERVAL=soon "$bin" watch --context good.json
expect_one_error_line "SENTINEL_POLL_INTERVAL invalid" "SENTINEL_POLL_INTERVAL"
expect_status "SENTINEL_POLL_INTERVAL=1e-9" 2 env SENTINEL_POLL_INTERVAL=1e-9 "$bin" watch --context good.json
expect_one_error_line "SENTINEL_POLL_INTERVAL=1e-9" "SENTINEL_POLL_INTERVAL: must be at least 100ms"
mkdir -p dotenv && (cd dotenv && echo 'SENTINEL_POLL_INTERVAL=10ms' >.env && cp ../good.json .)
expect_status "SENTINEL_POLL_INTERVAL=10ms in .env" 2 sh -c "cd dotenv && \"$bin\" watch --context good.json"
expect_one_error_line "SENTINEL_POLL_INTERVAL=10ms in .env" "SENTINEL_POLL_INTERVAL: must be at least 100ms"
expect_status "kubeconfig missing" 2 "$bin" watch --context good.json --kubeconfig "$tmp/none.yaml"
expect_one_error_line "kubeconfig missing" "kubeconfig"
printf 'apiVersion: v1\nclusters: [[[\n' >broken.yaml
expect_status "kubeconfig not YAML" 2 "$bin" watch --context good.json --kubeconfig broken.yaml
expect_one_error_line "kubeconfig not YAML" "kubeconfig"
expect_status "demo --speed 0" 2 "$bin" demo --scenario happy.json --speed 0
expect_one_error_line "demo --speed 0" "--speed"
echo '{"name": "x", "tasks": [{"type": "individuals"}]}' >badscenario.json
expect_status "demo with a bad scenario" 2 "$bin" demo --scenario badscenario.json
expect_one_error_line "demo with a bad scenario" "badscenario.json" "proc_id"
expect_status "simulate --port 70000" 2 "$bin" simulate --scenario happy.json --port 70000
expect_one_error_line "simulate --port 70000" "--port"
if [ -x "$cluster_bin" ]; then
  expect_status "execution-sentinel-cluster --port 70000" 2 "$cluster_bin" --scenario happy.json --port 70000
  expect_one_error_line "execution-sentinel-cluster --port 70000" "execution-sentinel-cluster: --port"
  expect_status "execution-sentinel-cluster with a bad scenario" 2 "$cluster_bin" --scenario badscenario.json
  expect_one_error_line "execution-sentinel-cluster with a bad scenario" "badscenario.json" "proc_id"
fi

# ------------------------------------------------------------------------------------------ output errors → 5
# The reader goes away after 10 bytes: the watch stops at once (not at its timeout) with its own status.
start=$(date +%s)
timeout -s KILL 60 bash -c "\"$bin\" demo --scenario endless.json --poll 0.2 --timeout 50 --output json 2>head.err | head -c 10 >/dev/null; exit \${PIPESTATUS[0]}"
head_status=$?
elapsed=$(( $(date +%s) - start ))
if [ "$head_status" = 5 ] && [ "$elapsed" -lt 30 ]; then ok "stdout closed early (| head -c 10): exit 5 after ${elapsed} s";
else not_ok "stdout closed early: exit $head_status after ${elapsed} s, expected 5 well before the timeout" "$(cat head.err)"; fi
grep -q "cannot write to standard output" head.err && ok "stdout closed early: the message says so" \
  || not_ok "stdout closed early: message" "$(cat head.err)"
start=$(date +%s)
timeout -s KILL 60 "$bin" demo --scenario endless.json --poll 0.2 --timeout 50 --output json >/dev/full 2>full.err
full_status=$?
elapsed=$(( $(date +%s) - start ))
if [ "$full_status" = 5 ] && [ "$elapsed" -lt 30 ]; then ok "stdout full (>/dev/full): exit 5 after ${elapsed} s";
else not_ok "stdout full: exit $full_status after ${elapsed} s, expected 5 well before the timeout" "$(cat full.err)"; fi
grep -q "No space left on device" full.err && ok "stdout full: the message says so" || not_ok "stdout full: message" "$(cat full.err)"
expect_status "version >/dev/full" 5 sh -c "\"$bin\" version >/dev/full"

# ------------------------------------------------------------------------------------------ demo runs
expect_status "demo: a successful run" 0 "$bin" demo --scenario happy.json --poll 0.2 --output json
check_ndjson "demo: a successful run" succeeded 0 \
  'summary["exit_code"] == 0 and not summary["timed_out"] and not summary["mass_failure"]' \
  'summary["total_tasks"] == 6 and summary["completed_tasks"] == 6' \
  'any(r["type"] == "COMPLETION" for r in reports)' \
  'reports[-1]["type"] == "COMPLETION"' \
  '[r["details"].get("phase") for r in reports if r["details"].get("event") == "phase_started"][:1] != []' \
  'any(r["type"] == "PROGRESS" and r["details"].get("event") == "phase_completed" and r["task_type"] == "frequency" for r in reports)' \
  'summary["reports"].get("COMPLETION") == 1'

expect_status "demo: a failed run" 1 "$bin" demo --scenario failed.json --poll 0.2 --output json
check_ndjson "demo: a failed run" failed 1 'summary["exit_code"] == 1' 'summary["failed_tasks"] >= 1'

expect_status "demo: timeout" 3 "$bin" demo --scenario endless.json --poll 0.2 --timeout 2 --output json
check_ndjson "demo: timeout" timed_out 3 'summary["timed_out"] is True' 'summary["exit_code"] is None'

# Not a terminal and no --output: NDJSON as well.
expect_status "demo: NDJSON when stdout is not a terminal" 0 "$bin" demo --scenario happy.json --poll 0.2
check_ndjson "demo: NDJSON when stdout is not a terminal" succeeded 0
# --output text on a pipe: plain lines, no escape sequences, the summary last.
expect_status "demo: --output text on a pipe" 0 "$bin" demo --scenario happy.json --poll 0.2 --output text
if grep -q $'\x1b' out; then not_ok "--output text on a pipe has escape sequences" "$(cat -v out | head)";
elif tail -5 out | grep -q "Workflow succeeded: 6/6 tasks completed"; then ok "--output text on a pipe ends with the summary";
else not_ok "--output text on a pipe: no summary" "$(cat out)"; fi

# ------------------------------------------------------------------------------------------ simulate + watch
"$bin" simulate --scenario happy.json --speed 0.5 --kubeconfig-out sim.kubeconfig --context-out sim-context.json \
  --linger 60 >sim.out 2>sim.err &
sim_pid=$!
pids+=("$sim_pid")
for _ in $(seq 1 100); do [ -s sim.kubeconfig ] && [ -s sim-context.json ] && break; sleep 0.1; done
if [ -s sim.kubeconfig ] && [ -s sim-context.json ]; then
  ok "simulate wrote the kubeconfig and the context"
  [ "$(stat -c %a sim.kubeconfig)" = 600 ] && ok "the kubeconfig is private (0600)" || not_ok "kubeconfig mode $(stat -c %a sim.kubeconfig)"
  expect_status "watch --context - --kubeconfig (simulated cluster)" 0 \
    sh -c "\"$bin\" watch --context - --kubeconfig sim.kubeconfig --poll 0.2 --timeout 60 < sim-context.json"
  check_ndjson "watch --context - --kubeconfig" succeeded 0 'summary["exit_code"] == 0' \
    'any(r["type"] == "COMPLETION" for r in reports)'

  # Refused credentials: the same cluster with a wrong token → 4.
  sed 's/^\(\s*token:\s*\).*/\1wrong-token-0123456789/' sim.kubeconfig >wrong-token.kubeconfig
  expect_status "watch with a refused token" 4 "$bin" watch --context sim-context.json --kubeconfig wrong-token.kubeconfig \
    --poll 0.2 --timeout 30 --output json
  check_ndjson "watch with a refused token" cluster_unreachable 4 'isinstance(summary, dict)'
  if grep -q "wrong-token-0123456789" out err; then not_ok "the token appears in the output"; else ok "the token is not printed"; fi
  # Nothing listens on the server's address: the watch fails fast at start with 4, long before its timeout.
  sed 's#^\(\s*server:\s*\).*#\1https://127.0.0.1:1#' sim.kubeconfig >refused.kubeconfig
  start=$(date +%s)
  expect_status "watch against a closed port" 4 "$bin" watch --context sim-context.json --kubeconfig refused.kubeconfig \
    --timeout 60 --output json
  elapsed=$(( $(date +%s) - start ))
  [ "$elapsed" -lt 30 ] && ok "a closed port ends the run after ${elapsed} s" || not_ok "a closed port: ${elapsed} s"
  grep -q "127.0.0.1:1\|connect" err && ok "a closed port: the cause is on stderr" || not_ok "a closed port: stderr" "$(cat err)"
  expect_status "watch with an unknown --kube-context" 2 "$bin" watch --context sim-context.json \
    --kubeconfig sim.kubeconfig --kube-context nope
  expect_one_error_line "watch with an unknown --kube-context" "nope"

  # A field of the kubeconfig far too large (a 1 MiB token) is an input error naming the field, not "unreachable".
  python3 - sim.kubeconfig big-token.kubeconfig <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(re.sub(r"(?m)^(\s*token:\s*).*$", lambda m: m.group(1) + "A" * (1 << 20), text, count=1))
PYEOF
  expect_status "watch with a 1 MiB token" 2 "$bin" watch --context sim-context.json --kubeconfig big-token.kubeconfig \
    --poll 0.2 --timeout 30 --output json
  if grep -q "token" err && [ "$(wc -c <err)" -lt 2000 ]; then ok "watch with a 1 MiB token: the message names the field";
  else not_ok "watch with a 1 MiB token: message" "$(head -c 500 err)"; fi

  # A context whose dag_structure is a 100,000-type chain: the start-up is linear and counts towards --timeout.
  python3 - sim-context.json chain.json <<'PYEOF'
import json, sys
ctx = json.load(open(sys.argv[1]))
ctx["namespace"] = "cli-chain"
ctx["dag_structure"] = {f"step_{i}": ([f"step_{i-1}"] if i else []) for i in range(100000)}
json.dump(ctx, open(sys.argv[2], "w"))
PYEOF
  start=$(date +%s)
  expect_status "watch with a 100k-type dag_structure chain and --timeout 2" 3 "$bin" watch --context chain.json \
    --kubeconfig sim.kubeconfig --poll 0.5 --timeout 2 --output json
  elapsed=$(( $(date +%s) - start ))
  [ "$elapsed" -lt 30 ] && ok "100k-type chain: ended after ${elapsed} s" || not_ok "100k-type chain: ended after ${elapsed} s"
else
  not_ok "simulate did not write its files" "$(cat sim.err)"
fi
kill -TERM "$sim_pid" 2>/dev/null
wait "$sim_pid"
sim_status=$?
[ "$sim_status" = 0 ] && ok "simulate stops on SIGTERM with status 0" || not_ok "simulate exit $sim_status" "$(cat sim.err)"

# ------------------------------------------------------------------------------------------ the standalone cluster
# The same path against the standalone execution-sentinel-cluster program, when it is built.
if [ -x "$cluster_bin" ]; then
  "$cluster_bin" --scenario happy.json --kubeconfig-out standalone.kubeconfig --context-out standalone-context.json \
    >standalone.out 2>standalone.err &
  standalone_pid=$!
  pids+=("$standalone_pid")
  for _ in $(seq 1 100); do [ -s standalone.kubeconfig ] && [ -s standalone-context.json ] && break; sleep 0.1; done
  if [ -s standalone.kubeconfig ] && [ -s standalone-context.json ]; then
    expect_status "watch against execution-sentinel-cluster" 0 "$bin" watch --context standalone-context.json \
      --kubeconfig standalone.kubeconfig --poll 0.2 --timeout 60 --output json
    check_ndjson "watch against execution-sentinel-cluster" succeeded 0 'summary["exit_code"] == 0' \
      'summary["total_tasks"] == 6'
  else
    not_ok "execution-sentinel-cluster did not write its files" "$(cat standalone.err)"
  fi
  kill -TERM "$standalone_pid" 2>/dev/null
  wait "$standalone_pid" 2>/dev/null
fi

# ------------------------------------------------------------------------------------------ SIGINT → 130
"$bin" demo --scenario endless.json --poll 0.2 --timeout 60 --output json >out 2>err &
demo_pid=$!
pids+=("$demo_pid")
for _ in $(seq 1 100); do [ -s out ] && break; sleep 0.1; done
sleep 0.5
kill -INT "$demo_pid"
for _ in $(seq 1 100); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$demo_pid" 2>/dev/null; then
  not_ok "SIGINT: still running 10 s later"
  kill -KILL "$demo_pid"
fi
wait "$demo_pid"
int_status=$?
[ "$int_status" = 130 ] && ok "SIGINT: exit 130" || not_ok "SIGINT: exit $int_status, expected 130" "$(cat err)"
check_ndjson "SIGINT" interrupted 130 'summary["exit_code"] is None'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Real kubectl (1.32) against FakeCluster: version, get pods/jobs -o json with a label selector, table output,
# get --watch seeing an update, logs, exec (the completion signal, a missing file, an unknown command), create and
# delete. Usage: bash kubectl.sh <path-to-execution-sentinel-cluster>. Exit 77 = skipped (no kubectl or no python3).
set -u
cluster_bin=${1:?usage: kubectl.sh <path-to-execution-sentinel-cluster>}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubectl not found"
  exit 77
fi
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -z "$py" ]; then
  echo "SKIP: python3 is needed to check kubectl's JSON output"
  exit 77
fi

tmp=$(mktemp -d)
server_pid=
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# ---------------------------------------------------------------- start the cluster
export HOME="$tmp/home"
mkdir -p "$HOME"
"$cluster_bin" --scenario "$here/fidelity_scenario.json" --port 0 --kubeconfig-out "$tmp/kubeconfig" \
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
export KUBECONFIG="$tmp/kubeconfig"
k() { timeout 30 kubectl --request-timeout=20s "$@"; }
json_check() { # json_check FILE PYTHON-EXPRESSION-ON-d
  "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"
}

# ---------------------------------------------------------------- version and discovery
if k version -o json >"$tmp/version.json" 2>"$tmp/err" &&
   json_check "$tmp/version.json" "d['serverVersion']['major'] == '1' and d['serverVersion']['gitVersion'].startswith('v1.')"; then
  pass "kubectl version"
else
  fail "kubectl version: $(cat "$tmp/err")"
fi
if k api-resources -o name >"$tmp/resources" 2>"$tmp/err" && grep -qx pods "$tmp/resources" && grep -qx jobs.batch "$tmp/resources"; then
  pass "kubectl api-resources"
else
  fail "kubectl api-resources: $(cat "$tmp/err")"
fi

# ---------------------------------------------------------------- objects of our own (kubectl create)
cat >"$tmp/objects.json" <<'JSON'
{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fidelity-a", "labels": {"app": "hyperflow", "job-name": "fidelity-job"}},
  "spec": {"containers": [{"name": "test", "image": "busybox"}]}, "status": {"phase": "Running"}},
 {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fidelity-unlabelled"},
  "spec": {"containers": [{"name": "test", "image": "busybox"}]}},
 {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fidelity-job", "labels": {"app": "hyperflow"}},
  "spec": {"backoffLimit": 6, "template": {"metadata": {"labels": {"app": "hyperflow"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "test", "image": "busybox"}]}}}}
]}
JSON
if k create --validate=false -f "$tmp/objects.json" >"$tmp/out" 2>"$tmp/err"; then
  pass "kubectl create -f (pods and a job)"
else
  fail "kubectl create: $(cat "$tmp/err")"
fi
if k create --validate=false -f "$tmp/objects.json" >"$tmp/out" 2>"$tmp/err"; then
  fail "a second kubectl create succeeded"
elif grep -q 'AlreadyExists\|already exists' "$tmp/err"; then
  pass "kubectl create of an existing object reports AlreadyExists"
else
  fail "second create: unexpected error $(cat "$tmp/err")"
fi

# ---------------------------------------------------------------- get -o json with a label selector
if k get pods -l app=hyperflow -o json >"$tmp/pods.json" 2>"$tmp/err" &&
   json_check "$tmp/pods.json" "d['kind'] == 'List' and 'fidelity-a' in [i['metadata']['name'] for i in d['items']] and 'fidelity-unlabelled' not in [i['metadata']['name'] for i in d['items']] and all(i['metadata']['labels']['app'] == 'hyperflow' for i in d['items']) and any(i['metadata']['name'].startswith('hyperflow-engine') for i in d['items'])"; then
  pass "kubectl get pods -l app=hyperflow -o json"
else
  fail "kubectl get pods -l app=hyperflow: $(cat "$tmp/err")"
fi
if k get jobs -l app=hyperflow -o json >"$tmp/jobs.json" 2>"$tmp/err" &&
   json_check "$tmp/jobs.json" "'fidelity-job' in [i['metadata']['name'] for i in d['items']] and all(i['kind'] == 'Job' and i['apiVersion'] == 'batch/v1' for i in d['items'])"; then
  pass "kubectl get jobs -l app=hyperflow -o json"
else
  fail "kubectl get jobs: $(cat "$tmp/err")"
fi
if k get pods fidelity-a -o jsonpath='{.metadata.labels.job-name}' >"$tmp/out" 2>"$tmp/err" && [ "$(cat "$tmp/out")" = fidelity-job ]; then
  pass "kubectl get pod NAME -o jsonpath"
else
  fail "kubectl get pod NAME: $(cat "$tmp/out") $(cat "$tmp/err")"
fi
if k get pods --field-selector metadata.name=fidelity-a -o name >"$tmp/out" 2>"$tmp/err" && [ "$(cat "$tmp/out")" = pod/fidelity-a ]; then
  pass "kubectl get pods --field-selector"
else
  fail "kubectl get pods --field-selector: $(cat "$tmp/out") $(cat "$tmp/err")"
fi
if k get pods >"$tmp/out" 2>"$tmp/err" && grep -Eq '^NAME +READY +STATUS +RESTARTS +AGE' "$tmp/out" &&
   grep -Eq '^fidelity-a +0/1 +Running +0 ' "$tmp/out"; then
  pass "kubectl get pods (table)"
else
  fail "kubectl get pods (table): $(cat "$tmp/out") $(cat "$tmp/err")"
fi
if k get pods --chunk-size=1 -o name >"$tmp/out" 2>"$tmp/err" && [ "$(grep -c . "$tmp/out")" -ge 3 ] &&
   [ "$(sort "$tmp/out" | uniq -d | wc -l)" -eq 0 ]; then
  pass "kubectl get pods --chunk-size=1 (limit/continue)"
else
  fail "kubectl get pods --chunk-size=1: $(cat "$tmp/out") $(cat "$tmp/err")"
fi

# ---------------------------------------------------------------- get --watch sees an update
timeout 30 kubectl get pods fidelity-a --watch -o json >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
for _ in $(seq 1 100); do
  grep -q '"fidelity-a"' "$tmp/watch.out" 2>/dev/null && break
  sleep 0.1
done
if k label pod fidelity-a stage=second >"$tmp/out" 2>"$tmp/err"; then
  pass "kubectl label (merge patch)"
else
  fail "kubectl label: $(cat "$tmp/err")"
fi
seen=no
for _ in $(seq 1 100); do
  if grep -q '"stage": "second"' "$tmp/watch.out" 2>/dev/null; then seen=yes; break; fi
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
watch_pid=
if [ "$seen" = yes ]; then
  pass "kubectl get pods --watch sees the update"
else
  fail "kubectl get --watch did not show the update: $(head -c 2000 "$tmp/watch.out") $(cat "$tmp/watch.err")"
fi

# the same in table form: every event prints a row
timeout 30 kubectl get pods fidelity-a --watch >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
for _ in $(seq 1 100); do
  grep -q '^fidelity-a ' "$tmp/watch.out" 2>/dev/null && break
  sleep 0.1
done
k label pod fidelity-a stage=third --overwrite >/dev/null 2>&1
seen=no
for _ in $(seq 1 100); do
  if [ "$(grep -c '^fidelity-a ' "$tmp/watch.out" 2>/dev/null)" -ge 2 ]; then seen=yes; break; fi
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
watch_pid=
if [ "$seen" = yes ] && grep -Eq '^NAME +READY +STATUS' "$tmp/watch.out"; then
  pass "kubectl get pods --watch (table) prints a row per update"
else
  fail "kubectl get --watch (table): $(cat "$tmp/watch.out") $(cat "$tmp/watch.err")"
fi

# ---------------------------------------------------------------- logs
engine=$("$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print(next(i['metadata']['name'] for i in d['items'] if i['metadata']['name'].startswith('hyperflow-engine')))" "$tmp/pods.json" 2>/dev/null)
if [ -z "$engine" ]; then
  fail "no engine pod in the scenario"
else
  if k logs "$engine" -c hyperflow >"$tmp/log" 2>"$tmp/err" && grep -q 'workflow.json' "$tmp/log"; then
    pass "kubectl logs"
  else
    fail "kubectl logs: $(cat "$tmp/log") $(cat "$tmp/err")"
  fi
  if k logs "$engine" -c hyperflow --tail=1 --timestamps >"$tmp/log" 2>"$tmp/err" && [ "$(grep -c . "$tmp/log")" -eq 1 ] &&
     grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ' "$tmp/log"; then
    pass "kubectl logs --tail=1 --timestamps"
  else
    fail "kubectl logs --tail --timestamps: $(cat "$tmp/log") $(cat "$tmp/err")"
  fi
  if timeout 3 kubectl logs -f "$engine" -c hyperflow >"$tmp/log" 2>"$tmp/err"; then
    fail "kubectl logs -f ended although the container runs"
  elif grep -q 'workflow.json' "$tmp/log"; then
    pass "kubectl logs -f streams (still open after 3 s)"
  else
    fail "kubectl logs -f: $(cat "$tmp/log") $(cat "$tmp/err")"
  fi

  # ------------------------------------------------------------ exec over WebSocket
  if k exec "$engine" -c hyperflow -- cat /work_dir/.workflow-exit-code >"$tmp/out" 2>"$tmp/err" && [ "$(cat "$tmp/out")" = 0 ]; then
    pass "kubectl exec -- cat /work_dir/.workflow-exit-code"
  else
    fail "kubectl exec cat: '$(cat "$tmp/out")' $(cat "$tmp/err")"
  fi
  k exec "$engine" -c hyperflow -- cat /work_dir/missing >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ "$rc" -eq 1 ] && grep -q "No such file or directory" "$tmp/err"; then
    pass "kubectl exec of a failing command exits 1"
  else
    fail "kubectl exec cat missing: rc=$rc $(cat "$tmp/err")"
  fi
  k exec "$engine" -c hyperflow -- test -f /work_dir/.workflow-exit-code
  rc=$?
  [ "$rc" -eq 0 ] && pass "kubectl exec -- test -f" || fail "kubectl exec test -f: rc=$rc"
  k exec "$engine" -c hyperflow -- no-such-program >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" -eq 127 ] && pass "kubectl exec of an unknown command exits 127" || fail "kubectl exec unknown: rc=$rc $(cat "$tmp/err")"
fi

# ---------------------------------------------------------------- errors and delete
if k get pod does-not-exist >"$tmp/out" 2>"$tmp/err"; then
  fail "get of a missing pod succeeded"
elif grep -q 'NotFound\|not found' "$tmp/err"; then
  pass "kubectl get of a missing pod reports NotFound"
else
  fail "get missing: $(cat "$tmp/err")"
fi
if k delete pod fidelity-unlabelled --wait=true --timeout=15s >"$tmp/out" 2>"$tmp/err" &&
   ! k get pod fidelity-unlabelled >/dev/null 2>&1; then
  pass "kubectl delete"
else
  fail "kubectl delete: $(cat "$tmp/err")"
fi
if KUBECONFIG="$tmp/kubeconfig" k --context fake-cert get pods -o name >"$tmp/out" 2>"$tmp/err" && grep -q pod/fidelity-a "$tmp/out"; then
  pass "client-certificate context"
else
  fail "client-certificate context: $(cat "$tmp/err")"
fi
if k --token wrong-token get pods >"$tmp/out" 2>"$tmp/err"; then
  fail "a wrong token was accepted"
elif grep -qi 'unauthorized\|must be logged in' "$tmp/err"; then
  pass "a wrong token is refused"
else
  fail "wrong token: $(cat "$tmp/err")"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures kubectl check(s) failed"
  exit 1
fi
echo "all kubectl checks passed"

"""Checks FakeCluster with the Python kubernetes client. Usage: python_client.py KUBECONFIG COMPACT_AFTER_SECONDS.

The cluster plays tests/fidelity/fidelity_scenario.json plus a `compact` step COMPACT_AFTER_SECONDS after start.
Exit status 0 when every check passed, 1 otherwise.
"""
import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

started = time.monotonic()
kubeconfig, compact_after = sys.argv[1], float(sys.argv[2])
config.load_kube_config(config_file=kubeconfig)
core = client.CoreV1Api()
batch = client.BatchV1Api()
ns = "default"
failures = []


def check(name, condition, detail=""):
    if condition:
        print("ok:", name)
    else:
        print("FAIL:", name, detail)
        failures.append(name)


def pod_body(name, labels):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="test", image="busybox")]))


# ------------------------------------------------------------------ list
pods = core.list_namespaced_pod(ns, label_selector="app=hyperflow")
names = [p.metadata.name for p in pods.items]
list_rv = pods.metadata.resource_version
engine = next((n for n in names if n.startswith("hyperflow-engine")), None)
check("list_namespaced_pod with a label selector", engine is not None and bool(list_rv) and list_rv.isdigit(), names)
jobs = batch.list_namespaced_job(ns, label_selector="app=hyperflow")
check("list_namespaced_job", len(jobs.items) >= 1 and all(j.metadata.labels.get("app") == "hyperflow" for j in jobs.items))
page = core.list_namespaced_pod(ns, limit=1)
check("list with limit returns a continue token", len(page.items) == 1 and bool(page.metadata._continue))
rest = core.list_namespaced_pod(ns, limit=100, _continue=page.metadata._continue)
check("the continue token lists the rest", len(rest.items) == len(core.list_namespaced_pod(ns).items) - 1)
try:
    core.read_namespaced_pod("does-not-exist", ns)
    check("read of a missing pod raises 404", False)
except ApiException as e:
    check("read of a missing pod raises 404", e.status == 404, e.status)

# ------------------------------------------------------------------ watch resumed from a resourceVersion
# The oldest resourceVersion this client saw: the scenario changes objects after it, and compacts later.
oldest_rv = str(min(int(p.metadata.resource_version) for p in core.list_namespaced_pod(ns).items))
core.create_namespaced_pod(ns, pod_body("py-watch", {"app": "hyperflow", "fidelity": "python"}))
core.patch_namespaced_pod("py-watch", ns, {"metadata": {"labels": {"stage": "second"}}})
for attempt in range(2):
    w = watch.Watch()
    events = []
    try:
        for event in w.stream(core.list_namespaced_pod, ns, label_selector="fidelity=python",
                              resource_version=list_rv, timeout_seconds=3):
            events.append((event["type"], event["object"].metadata.name, event["object"].metadata.labels.get("stage")))
            if len(events) == 2:
                w.stop()
        break
    except ApiException as e:
        # The scenario compacted between our list and this watch (a slow machine): relist, as a client must.
        if e.status != 410 or attempt == 1:
            raise
        listed = core.list_namespaced_pod(ns, label_selector="fidelity=python")
        list_rv = listed.metadata.resource_version
        core.patch_namespaced_pod("py-watch", ns, {"metadata": {"labels": {"stage": "first"}}})
        core.patch_namespaced_pod("py-watch", ns, {"metadata": {"labels": {"stage": "second"}}})
expected_first = "ADDED" if attempt == 0 else "MODIFIED"
check("Watch().stream resumed from the list resourceVersion sees the changes in order",
      [e[0] for e in events] == [expected_first, "MODIFIED"] and events[-1][1:] == ("py-watch", "second"), events)
check("the watch remembers the last resourceVersion", w.resource_version is not None and int(w.resource_version) > int(list_rv))

# ------------------------------------------------------------------ watch from a compacted resourceVersion
# Until the scenario compacts the history the old resourceVersion still works; after it, the server answers an
# ERROR event with a 410 Status, which the client raises as ApiException(status=410).
status = None
reason = ""
deadline = time.monotonic() + compact_after + 20
while time.monotonic() < deadline and status is None:
    try:
        for _ in watch.Watch().stream(core.list_namespaced_pod, ns, resource_version=oldest_rv, timeout_seconds=1):
            pass
        time.sleep(0.3)
    except ApiException as e:
        status = e.status
        reason = e.reason or ""
check("a watch from a compacted resourceVersion fails with 410", status == 410, status)
if status == 410:
    check("the 410 names the Expired reason", "Expired" in reason and "too old resource version" in reason, reason)

# ------------------------------------------------------------------ exec
if engine:
    out = stream(core.connect_get_namespaced_pod_exec, engine, ns, container="hyperflow",
                 command=["cat", "/work_dir/.workflow-exit-code"], stderr=True, stdin=False, stdout=True, tty=False)
    check("stream() exec of cat returns the completion signal", out.strip() == "0", repr(out))
    resp = stream(core.connect_get_namespaced_pod_exec, engine, ns, container="hyperflow",
                  command=["cat", "/work_dir/missing"], stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    resp.run_forever(timeout=10)
    check("stream() exec of a failing command reports return code 1", resp.returncode == 1, resp.returncode)
    resp.close()
    log = core.read_namespaced_pod_log(engine, ns, container="hyperflow", tail_lines=1)
    check("read_namespaced_pod_log with tail_lines", len(log.splitlines()) == 1, repr(log))

if failures:
    print(len(failures), "Python client check(s) failed")
    sys.exit(1)
print("all Python client checks passed")

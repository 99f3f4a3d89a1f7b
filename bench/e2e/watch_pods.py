# The Python client's watch of namespace "wf", printing one line per event (bench/e2e/run.sh).
import sys

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
for event in watch.Watch().stream(v1.list_namespaced_pod, "wf"):
    print("pod/" + event["object"].metadata.name, flush=True)

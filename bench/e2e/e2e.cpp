// End-to-end watch cost, driven by bench/e2e/run.sh (docs/performance.md, "End to end").
//
//   e2e_bench serve KUBECONFIG PODS   a simulated cluster on 127.0.0.1 (TLS) holding PODS HyperFlow task pods in
//                                     namespace "wf" (with managedFields, about 6 KB each as served); writes its
//                                     kubeconfig, prints "ready", then for every "burst" line on stdin modifies
//                                     every pod once (PODS MODIFIED events on every open watch) and prints "done".
//   e2e_bench watch KUBECONFIG        this project's Watcher<Pod> on namespace "wf": one line with the pod's name
//                                     per delivered event (as `kubectl get pods -w -o name` prints), until killed.
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/watcher.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace es = execution_sentinel;
namespace kube = es::kube;
namespace hf = es::testing;
namespace asio = boost::asio;
using namespace std::chrono;

namespace {

boost::json::array managed_fields(const std::string& when) {
    return boost::json::parse(R"([
 {"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":")" + when + R"(",
  "fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:finalizers":{".":{},"v:\"batch.kubernetes.io/job-tracking\"":{}},
  "f:generateName":{},"f:labels":{".":{},"f:app":{},"f:batch.kubernetes.io/controller-uid":{},
  "f:batch.kubernetes.io/job-name":{},"f:controller-uid":{},"f:job-name":{}},"f:ownerReferences":{".":{},
  "k:{\"uid\":\"5861e0a8-b31e-46cd-8f75-b7a4adc7c518\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"test\"}":{
  ".":{},"f:command":{},"f:env":{".":{},"k:{\"name\":\"HF_VAR_WORK_DIR\"}":{".":{},"f:name":{},"f:value":{}},
  "k:{\"name\":\"HF_LOG_NODE_NAME\"}":{".":{},"f:name":{},"f:valueFrom":{".":{},"f:fieldRef":{}}}},
  "f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{".":{},"f:requests":{".":{},"f:cpu":{},
  "f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},
  "k:{\"mountPath\":\"/work_dir\"}":{".":{},"f:mountPath":{},"f:name":{}}},"f:workingDir":{}}},"f:dnsPolicy":{},
  "f:enableServiceLinks":{},"f:nodeSelector":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},
  "f:terminationGracePeriodSeconds":{},"f:volumes":{".":{},"k:{\"name\":\"my-pvc-nfs\"}":{".":{},
  "f:name":{},"f:persistentVolumeClaim":{".":{},"f:claimName":{}}}}}}},
 {"manager":"kubelet","operation":"Update","apiVersion":"v1","time":")" + when + R"(","fieldsType":"FieldsV1",
  "subresource":"status","fieldsV1":{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},
  "f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{
  ".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{
  ".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},
  "f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.244.0.17\"}":{
  ".":{},"f:ip":{}}},"f:startTime":{}}}}])")
        .as_array();
}

int serve(const std::string& kubeconfig, std::size_t pods) {
    hf::FakeClusterOptions o;
    o.default_namespace = "wf";
    o.history_limit = 4 * pods + 1000;
    o.watch_queue_limit = 4 * pods + 1000; // the slowest client must not be disconnected
    o.bookmark_interval = hours{1};
    hf::FakeCluster cluster(o);
    cluster.write_kubeconfig(kubeconfig);

    hf::NameSource names(42);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    std::vector<std::string> pod_names;
    for (std::size_t i = 0; i < pods; ++i) {
        hf::TaskJobOptions jo;
        jo.namespace_name = "wf";
        jo.name = hf::job_name(names.job_fragment(), i % 3 == 0 ? "individuals" : "mutation_overlap",
                               static_cast<int>(i % 40), 1);
        jo.uid = names.uid();
        jo.created = t0 + seconds{i};
        auto job = hf::task_job(jo);
        hf::TaskPodOptions po;
        po.name = jo.name + "-" + names.pod_suffix();
        po.uid = names.uid();
        po.created = jo.created;
        auto pod = hf::task_pod(job, po);
        switch (i % 4) {
        case 0: break;
        case 1: hf::pod_set_running(pod, jo.created + seconds{3}); break;
        case 2: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 0); break;
        case 3: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 137, "OOMKilled"); break;
        }
        pod["metadata"].as_object()["managedFields"] = managed_fields(hf::rfc3339(jo.created));
        pod_names.push_back(po.name);
        cluster.create("pods", "wf", std::move(pod));
    }
    std::cout << "ready" << std::endl;
    std::string line;
    int round = 0;
    while (std::getline(std::cin, line)) {
        if (line != "burst") continue;
        ++round;
        for (auto& n : pod_names)
            cluster.modify("pods", "wf", n, [&](boost::json::object& pod) {
                pod["metadata"].as_object()["annotations"] = boost::json::object{{"bench/round", round}};
            });
        std::cout << "done" << std::endl;
    }
    return 0;
}

int watch(const std::string& kubeconfig) {
    kube::KubeconfigOptions ko;
    ko.path = kubeconfig;
    auto config = kube::load_kubeconfig(ko);
    asio::io_context io;
    kube::Client client(io.get_executor(), config);
    kube::Watcher<kube::Pod> watcher(client, "wf");
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto e = co_await watcher.next();
                if (e.type == kube::WatchEventType::synced) continue;
                // One write per event, as kubectl does.
                std::string out = "pod/" + e.object.meta.name + "\n";
                std::fwrite(out.data(), 1, out.size(), stdout);
                std::fflush(stdout);
            }
        },
        [](std::exception_ptr p) {
            if (!p) return;
            try {
                std::rethrow_exception(p);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "watch failed: %s\n", e.what());
                std::exit(1);
            }
        });
    io.run();
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "serve") return serve(args[1], static_cast<std::size_t>(std::stoul(args[2])));
    if (args.size() == 2 && args[0] == "watch") return watch(args[1]);
    std::fprintf(stderr, "usage: e2e_bench serve KUBECONFIG PODS | e2e_bench watch KUBECONFIG\n");
    return 2;
}

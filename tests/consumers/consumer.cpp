// A downstream program: it needs the installed (or added) target to compile, link (Boost.JSON, OpenSSL,
// yaml-cpp come through the target) and run.
#include <execution_sentinel.hpp>

#include <iostream>

int main() {
    namespace es = execution_sentinel;
    std::error_code ec = es::kube::error::expired;
    if (ec != es::kube::condition::resync_required) return 1;
    auto context = es::context_from_json_text(
        R"({"namespace": "wf", "engine_pod_name": "hyperflow-engine-6c4b46d86-jdl7w",
            "task_inventory": [{"name": "sifting", "task_type": "sifting", "dag_order": 0}]})");
    if (context.total_expected_tasks() != 1) return 1;
    // A part that execution_sentinel::compiled compiles once (kubeconfig loading), and a Sentinel type.
    auto cluster = es::kube::load_kubeconfig_from_string(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
        "users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
        "current-context: x\n",
        "consumer");
    if (cluster.port != "6443") return 1;
    static_assert(sizeof(es::DefaultSentinel) > 0);
    std::cout << "consumer built against execution-sentinel " << es::version_string << ", context for namespace "
              << context.namespace_ << "\n";
    return 0;
}

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
    std::cout << "consumer built against execution-sentinel " << es::version_string << ", context for namespace "
              << context.namespace_ << "\n";
    return 0;
}

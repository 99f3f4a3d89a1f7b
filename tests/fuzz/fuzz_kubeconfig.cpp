// kubeconfig YAML: every failure is a kube::Error naming the problem. (Exec plugins are only run when
// credentials are requested, which this target never does.)
#include <execution_sentinel/kube/config.hpp>

#include "fuzz_target.hpp"

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    try {
        (void)kube::load_kubeconfig_from_string(data, "/nonexistent-fuzz-dir/kubeconfig");
    } catch (const kube::Error&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

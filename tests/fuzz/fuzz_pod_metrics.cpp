// An answer of the metrics API (metrics.k8s.io/v1beta1 PodMetricsList) as the Sentinel reads it: the text parsed
// with parse_pod_metrics_list under limits taken from the first input byte. Properties: only MetricsParseError
// escapes, and what is returned holds the limits and only finite, non-negative usage.
#include <execution_sentinel/kube/metrics.hpp>

#include "fuzz_target.hpp"

#include <cmath>
#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    if (data.empty()) return;
    const auto head = static_cast<unsigned char>(data[0]);
    data.remove_prefix(1);
    kube::MetricsLimits limits;
    limits.max_items = 1 + head % 8;
    limits.max_containers = 1 + (head >> 3) % 4;
    limits.max_name_bytes = 4 + (head >> 5) * 8;
    try {
        auto pods = kube::parse_pod_metrics_list(data, limits);
        expect(pods.size() <= limits.max_items, "no more pods than the limit");
        for (auto& p : pods) {
            expect(!p.name.empty() && p.name.size() <= limits.max_name_bytes, "every pod has a bounded name");
            expect(p.containers.size() <= limits.max_containers, "no more containers than the limit");
            expect(std::isfinite(p.window_seconds) && p.window_seconds >= 0, "the window is finite and not negative");
            for (auto& c : p.containers) {
                expect(c.name.size() <= limits.max_name_bytes, "container names are bounded");
                expect(std::isfinite(c.cpu_cores) && c.cpu_cores >= 0, "CPU usage is finite and not negative");
                expect(c.memory_bytes >= 0, "memory usage is not negative");
            }
        }
    } catch (const kube::MetricsParseError&) {
        // documented
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

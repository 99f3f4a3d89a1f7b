// An answer of the metrics API (metrics.k8s.io/v1beta1 PodMetricsList) as the Sentinel reads it: the text parsed
// with parse_pod_metrics_list under limits taken from the first input byte, and in steps with PodMetricsListReader
// (pieces and batches sized from the same byte). Properties: only MetricsParseError escapes, what is returned holds
// the limits and only finite, non-negative usage, and both ways give the same pods or the same error.
#include <execution_sentinel/kube/metrics.hpp>

#include "fuzz_target.hpp"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    if (data.empty()) return;
    const auto head = static_cast<unsigned char>(data[0]);
    data.remove_prefix(1);
    kube::MetricsLimits limits;
    limits.max_items = 1 + head % 8;
    limits.max_containers = 1 + (head >> 3) % 4;
    limits.max_name_bytes = 4 + (head >> 5) * 8;
    // The same text read in steps (as the Sentinel reads it): pieces and batches sized from the first byte.
    std::optional<std::vector<kube::PodMetrics>> stepped;
    std::string stepped_error;
    try {
        kube::PodMetricsListReader r(limits);
        const std::size_t piece = 1 + (head * 7u) % 23;
        for (std::size_t at = 0; at < data.size(); at += piece) r.feed(data.substr(at, piece));
        r.finish();
        while (!r.done()) r.read(head % 3);
        stepped = r.take();
    } catch (const kube::MetricsParseError& e) {
        stepped_error = e.what();
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
    try {
        auto pods = kube::parse_pod_metrics_list(data, limits);
        expect(stepped && *stepped == pods, "read in steps, the same pods as read at once");
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
    } catch (const kube::MetricsParseError& e) {
        // documented; read in steps, the same error
        expect(!stepped && stepped_error == e.what(), "read in steps, the same error as read at once");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

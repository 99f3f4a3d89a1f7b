// What the simulated metrics API (metrics.k8s.io/v1beta1, as metrics-server serves it) knows about a pod, and
// how it writes quantities and durations. Light on purpose: FakeCluster's declaration includes it.
#ifndef EXECUTION_SENTINEL_TESTING_METRICS_HPP
#define EXECUTION_SENTINEL_TESTING_METRICS_HPP

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::testing {

/// Whether the cluster serves the metrics API, as a cluster with or without metrics-server does.
enum class MetricsApi : std::uint8_t {
    available,   ///< metrics-server installed: PodMetrics served, `metrics.k8s.io` in discovery
    absent,      ///< no metrics-server: the group is not registered, every path answers 404 NotFound
    forbidden,   ///< RBAC denies it: 403 Forbidden (the group is in discovery)
    unavailable, ///< APIService registered but metrics-server down: 503 ServiceUnavailable
};

/// The scenario/JSON name ("available", "absent", "forbidden", "unavailable").
inline std::string_view metrics_api_name(MetricsApi m) noexcept {
    switch (m) {
    case MetricsApi::available: return "available";
    case MetricsApi::absent: return "absent";
    case MetricsApi::forbidden: return "forbidden";
    case MetricsApi::unavailable: return "unavailable";
    }
    return "unknown";
}

inline std::optional<MetricsApi> metrics_api_from(std::string_view s) noexcept {
    for (auto m : {MetricsApi::available, MetricsApi::absent, MetricsApi::forbidden, MetricsApi::unavailable})
        if (metrics_api_name(m) == s) return m;
    return std::nullopt;
}

/// The usage of one container, in base units.
struct ContainerUsage {
    std::string name;
    std::int64_t cpu_nanocores = 0; ///< usage.cpu (1 core = 1e9)
    std::int64_t memory_bytes = 0;  ///< usage.memory (working set)
    friend bool operator==(const ContainerUsage&, const ContainerUsage&) = default;
};

/// Usage of a running container that nobody set (metrics-server reports every running pod): 2m CPU, 24 MiB.
inline ContainerUsage baseline_usage(std::string name) {
    return ContainerUsage{std::move(name), 2'000'000, 24LL * 1024 * 1024};
}

/// A CPU quantity in nanocores as apimachinery writes a DecimalSI quantity: the largest exact unit among
/// cores, m, u, n ("1", "250m", "1500m", "1234u", "1234567n").
inline std::string format_cpu_quantity(std::int64_t nanocores) {
    if (nanocores == 0) return "0";
    if (nanocores % 1'000'000'000 == 0) return std::to_string(nanocores / 1'000'000'000);
    if (nanocores % 1'000'000 == 0) return std::to_string(nanocores / 1'000'000) + "m";
    if (nanocores % 1'000 == 0) return std::to_string(nanocores / 1'000) + "u";
    return std::to_string(nanocores) + "n";
}

/// A memory quantity in bytes as apimachinery writes a BinarySI quantity: the largest exact binary unit
/// ("123456Ki", "900Mi", "1Gi"), plain bytes when below 1024 or not a multiple of it.
inline std::string format_memory_quantity(std::int64_t bytes) {
    if (bytes == 0) return "0";
    const char* units[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    if (bytes < 1024 && bytes > -1024) return std::to_string(bytes);
    int unit = -1;
    std::int64_t v = bytes;
    while (unit < 5 && v % 1024 == 0) {
        v /= 1024;
        ++unit;
    }
    return unit < 0 ? std::to_string(bytes) : std::to_string(v) + units[unit];
}

/// A duration as Go's time.Duration.String() writes it (metav1.Duration): "15s", "1.5s", "300ms", "1m0s".
inline std::string format_go_duration(std::chrono::nanoseconds d) {
    std::int64_t ns = d.count();
    if (ns == 0) return "0s";
    std::string sign = ns < 0 ? "-" : "";
    if (ns < 0) ns = -ns;
    auto trimmed = [](std::int64_t whole, std::int64_t frac, int digits) {
        std::string s = std::to_string(whole);
        if (frac != 0) {
            std::string f = std::to_string(frac);
            f.insert(0, static_cast<std::size_t>(digits) - f.size(), '0');
            while (!f.empty() && f.back() == '0') f.pop_back();
            s += "." + f;
        }
        return s;
    };
    if (ns < 1000) return sign + std::to_string(ns) + "ns";
    if (ns < 1'000'000) return sign + trimmed(ns / 1000, ns % 1000, 3) + "\xC2\xB5s";
    if (ns < 1'000'000'000) return sign + trimmed(ns / 1'000'000, ns % 1'000'000, 6) + "ms";
    const std::int64_t total_s = ns / 1'000'000'000, frac = ns % 1'000'000'000;
    const std::int64_t h = total_s / 3600, m = (total_s % 3600) / 60, s = total_s % 60;
    std::string out = sign;
    if (h > 0) out += std::to_string(h) + "h";
    if (h > 0 || m > 0) out += std::to_string(m) + "m";
    out += trimmed(s, frac, 9) + "s";
    return out;
}

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_METRICS_HPP

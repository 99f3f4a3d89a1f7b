// ANOMALY_MEMORY_PRESSURE: a task's memory stays near its limit — the warning before an OOM kill. Also the run's
// resource account (peaks per task type, CPU-seconds, memory GiB-seconds) from the metrics API.
#ifndef EXECUTION_SENTINEL_DETECTORS_MEMORY_PRESSURE_HPP
#define EXECUTION_SENTINEL_DETECTORS_MEMORY_PRESSURE_HPP

#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/kube/quantity.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace execution_sentinel {

namespace detail {

/// "512 MiB", "1.5 GiB", "800 KiB", "12 bytes": memory as a person reads it (binary units).
inline std::string es_human_bytes(double bytes) {
    char buf[64];
    const double kib = 1024.0, mib = kib * 1024, gib = mib * 1024, tib = gib * 1024;
    auto fmt = [&](double v, const char* unit) {
        double tenths = std::round(v * 10) / 10;
        if (tenths == std::floor(tenths)) std::snprintf(buf, sizeof buf, "%.0f %s", v, unit);
        else std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
    };
    if (bytes >= tib) fmt(bytes / tib, "TiB");
    else if (bytes >= gib) fmt(bytes / gib, "GiB");
    else if (bytes >= mib) fmt(bytes / mib, "MiB");
    else if (bytes >= kib) fmt(bytes / kib, "KiB");
    else std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
    return buf;
}

} // namespace detail

/// Rules (docs/detectors.md), for each metrics sample (Monitor::on_metrics):
///  - a sample with available = false: nothing is reported; the first problem goes to the summary
///    (WatchSummary::metrics_available = false, metrics_problem) unless a sample worked before;
///  - each PodMetrics is mapped to its task by pod name (WorkflowState::find_task); other pods are ignored;
///  - a container's memory limit is the pod's own (Pod::resources, seen through on_pod), else, for a pod whose
///    usage has a single container, the inventory's TaskSpec::memory_limit;
///  - a container at or above `memory_pressure_ratio` (0.9) of its limit in two consecutive samples of that pod
///    (samples are told apart by their timestamp: the same sample delivered twice counts once) →
///    ANOMALY_MEMORY_PRESSURE warning, once per attempt (scope: the task, fingerprint "memory:<pod>"), naming the
///    usage and the limit; details.cpu_throttled says whether the CPU usage is at ≥ 95 % of the CPU limit;
///  - usage is integrated over the samples into WatchSummary::resources: for each task pod, usage × the time since
///    that pod's previous sample (at most 4 × metrics_interval; the first sample of a pod counts its sampling
///    window), and the peak memory and CPU of one pod per task type.
class MemoryPressureDetector {
public:
    static constexpr std::string_view name = "memory_pressure";

    struct Options {
        double ratio = 0.9;                              ///< memory / limit at or above this is pressure
        int consecutive = 2;                             ///< samples in a row
        double cpu_throttle_ratio = 0.95;                ///< CPU usage / CPU limit at or above this is throttling
        std::chrono::milliseconds metrics_interval{15'000}; ///< caps the time one sample stands for (× 4)
    };

    MemoryPressureDetector() = default;
    explicit MemoryPressureDetector(Options o) : options_(o), configured_(true) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        options_.ratio = s.memory_pressure_ratio;
        if (s.metrics_interval.count() > 0) options_.metrics_interval = s.metrics_interval;
        configured_ = true;
    }

    void on_pod(const WorkflowState& s, const kube::Pod& pod, ChangeKind, Timestamp, ReportSink&) {
        if (pod.resources.empty() || !s.find_task(pod.meta.name)) return;
        if (limits_.size() >= 100'000 && !limits_.count(pod.meta.name)) return;
        limits_[pod.meta.name] = pod.resources;
    }

    void on_metrics(const WorkflowState& s, const MetricsSample& sample, Timestamp now, ReportSink& sink) {
        if (!sample.available) {
            if (!available_) {
                available_ = false;
                if (problem_.empty()) problem_ = sample.problem.empty() ? "the metrics API is not available" : sample.problem.substr(0, 512);
            }
            return;
        }
        available_ = true;
        if (!sample.continued) ++samples_;
        for (auto& pm : sample.pods) {
            const auto* task = s.find_task(pm.name);
            if (!task) continue;
            Timestamp at = pm.timestamp != Timestamp{} ? pm.timestamp : now;
            auto& track = pods_[pm.name];
            if (track.last && at <= *track.last) continue; // the same (or an older) sample again
            account(*task, pm, at, track);
            track.last = at;
            if (task->finished()) continue;
            check_pressure(s, *task, pm, track, sink);
        }
    }

    void on_summary(WatchSummary& w) const {
        if (available_) {
            w.metrics_available = *available_;
            if (!*available_) w.metrics_problem = problem_;
        }
        w.resources.cpu_seconds += cpu_seconds_;
        w.resources.memory_gib_seconds += memory_gib_seconds_;
        w.resources.samples += samples_;
        for (auto& [type, p] : peaks_) {
            auto& q = w.resources.peak_by_type[type];
            q.memory_bytes = std::max(q.memory_bytes, p.memory_bytes);
            q.cpu_cores = std::max(q.cpu_cores, p.cpu_cores);
        }
    }

    const Options& options() const noexcept { return options_; }
    /// Tasks warned about, in order.
    const std::vector<std::string>& warned() const noexcept { return warned_; }

private:
    struct Track {
        std::optional<Timestamp> last;           ///< timestamp of the last sample counted
        std::map<std::string, int> streak;       ///< container → samples in a row at or above the ratio
    };

    struct Limit {
        std::int64_t memory_bytes = 0;
        std::int32_t cpu_millicores = 0;
        std::string source; ///< "pod" or "inventory"
    };

    Limit limit_of(const WorkflowState& s, const TaskRecord& task, const std::string& pod, const std::string& container,
                   std::size_t containers) const {
        Limit l;
        if (auto it = limits_.find(pod); it != limits_.end())
            for (auto& r : it->second)
                if (r.name == container) {
                    l.memory_bytes = r.memory_limit_bytes;
                    l.cpu_millicores = r.cpu_limit_millicores;
                    if (l.memory_bytes > 0) l.source = "pod";
                }
        if (l.memory_bytes <= 0 && containers == 1 && !task.memory_limit.empty())
            if (auto b = kube::parse_memory_bytes(task.memory_limit); b && *b > 0) {
                l.memory_bytes = *b;
                l.source = "inventory";
            }
        if (l.cpu_millicores <= 0 && containers == 1 && task.inventory_index &&
            *task.inventory_index < s.context().task_inventory.size()) {
            const auto& cpu = s.context().task_inventory[*task.inventory_index].cpu_limit;
            if (!cpu.empty())
                if (auto m = kube::parse_millicores(cpu); m && *m > 0) l.cpu_millicores = *m;
        }
        return l;
    }

    void account(const TaskRecord& task, const kube::PodMetrics& pm, Timestamp at, const Track& track) {
        double memory = 0, cpu = 0;
        for (auto& c : pm.containers) {
            memory += static_cast<double>(std::max<std::int64_t>(0, c.memory_bytes));
            cpu += std::max(0.0, c.cpu_cores);
        }
        double cap = 4 * std::chrono::duration<double>(options_.metrics_interval).count();
        double span = track.last ? std::chrono::duration<double>(at - *track.last).count() : pm.window_seconds;
        span = std::clamp(span, 0.0, cap);
        cpu_seconds_ += cpu * span;
        memory_gib_seconds_ += memory / (1024.0 * 1024 * 1024) * span;
        if (peaks_.size() < 10'000 || peaks_.count(task.task_type)) {
            auto& p = peaks_[task.task_type];
            p.memory_bytes = std::max(p.memory_bytes, static_cast<std::int64_t>(memory));
            p.cpu_cores = std::max(p.cpu_cores, cpu);
        }
    }

    void check_pressure(const WorkflowState& s, const TaskRecord& task, const kube::PodMetrics& pm, Track& track,
                        ReportSink& sink) {
        for (auto& c : pm.containers) {
            auto limit = limit_of(s, task, pm.name, c.name, pm.containers.size());
            if (limit.memory_bytes <= 0) continue;
            double share = static_cast<double>(c.memory_bytes) / static_cast<double>(limit.memory_bytes);
            int& streak = track.streak[c.name];
            streak = share >= options_.ratio ? streak + 1 : 0;
            if (streak < options_.consecutive) continue;
            std::string fingerprint = "memory:" + pm.name;
            if (sink.seen(ReportType::ANOMALY_MEMORY_PRESSURE, task.key, fingerprint)) continue;
            double cpu_limit = limit.cpu_millicores / 1000.0;
            bool throttled = cpu_limit > 0 && c.cpu_cores >= options_.cpu_throttle_ratio * cpu_limit;
            int percent = static_cast<int>(share * 100 + 0.5);
            Finding f;
            f.type = ReportType::ANOMALY_MEMORY_PRESSURE;
            f.severity = Severity::warning;
            f.task_name = task.name;
            f.task_type = task.task_type;
            f.scope = task.key;
            f.fingerprint = std::move(fingerprint);
            f.message = "Task " + task.name + " is using " + detail::es_human_bytes(static_cast<double>(c.memory_bytes)) +
                        " of its " + detail::es_human_bytes(static_cast<double>(limit.memory_bytes)) +
                        " memory limit (" + std::to_string(percent) +
                        "%) and may soon be stopped for running out of memory" +
                        (throttled ? "; it is also using all the processor time it is allowed" : "") + ".";
            f.details["pod_name"] = pm.name;
            f.details["container"] = c.name;
            f.details["job_name"] = task.job_name;
            f.details["memory_bytes"] = c.memory_bytes;
            f.details["memory_limit_bytes"] = limit.memory_bytes;
            f.details["memory"] = detail::es_human_bytes(static_cast<double>(c.memory_bytes));
            f.details["memory_limit"] = detail::es_human_bytes(static_cast<double>(limit.memory_bytes));
            f.details["limit_source"] = limit.source;
            f.details["ratio"] = share;
            f.details["threshold"] = options_.ratio;
            f.details["consecutive_samples"] = streak;
            f.details["cpu_cores"] = c.cpu_cores;
            if (cpu_limit > 0) f.details["cpu_limit_cores"] = cpu_limit;
            else f.details["cpu_limit_cores"] = nullptr;
            f.details["cpu_throttled"] = throttled;
            f.details["attempts"] = task.attempts;
            if (sink.emit(std::move(f))) warned_.push_back(task.name);
        }
    }

    Options options_;
    bool configured_ = false;
    // by pod name, looked up per pod of every metrics sample (10,000s at fleet scale), never iterated
    std::unordered_map<std::string, std::vector<kube::ContainerResources>> limits_; ///< task pod → its containers' limits
    std::unordered_map<std::string, Track> pods_;
    std::map<std::string, ResourcePeak> peaks_;
    std::optional<bool> available_;
    std::string problem_;
    int samples_ = 0;
    double cpu_seconds_ = 0;
    double memory_gib_seconds_ = 0;
    std::vector<std::string> warned_;
};

static_assert(Detector<MemoryPressureDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_MEMORY_PRESSURE_HPP

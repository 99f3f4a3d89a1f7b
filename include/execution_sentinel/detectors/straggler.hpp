// ANOMALY_STRAGGLER: a task running far longer than its expected or typical duration.
#ifndef EXECUTION_SENTINEL_DETECTORS_STRAGGLER_HPP
#define EXECUTION_SENTINEL_DETECTORS_STRAGGLER_HPP

#include <execution_sentinel/detector.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace execution_sentinel {

/// The exact rule, checked at every tick for each running task not yet reported (docs/detectors.md):
///  1. baseline: the median run time of the task's succeeded siblings (same type) once a quorum has succeeded —
///     at least max(min_siblings, ceil(quorum × tasks of the type)) — the Spark/Flink rule (75 % quorum)
///     measured on this run (basis "sibling_median"); otherwise the task's expectation (TaskRecord::expectation,
///     baselines.hpp): the inventory's expected_duration_seconds (basis "inventory") or the P50 of the type's
///     succeeded attempts in past runs (basis "history": when the inventory has no estimate, or when the two are
///     more than baseline_override_factor apart); otherwise none (no report);
///  2. threshold = max(min_runtime, multiplier × baseline) (Flink's 1-minute lower bound);
///  3. the task is a straggler when its current attempt has run longer than the threshold.
/// No task is judged while the driver reports the task states as stale (WorkflowState::tasks_stale(): the pod or
/// Job watch is down or resyncing), since a task that finished meanwhile would still look as running.
/// One report per task (severity warning). Defaults: multiplier 3.0, quorum 0.75, min_siblings 3,
/// min_runtime 60 s (SentinelSettings).
class StragglerDetector {
public:
    static constexpr std::string_view name = "straggler";

    struct Options {
        double multiplier = 3.0;
        double quorum = 0.75;
        int min_siblings = 3;
        std::chrono::milliseconds min_runtime{60'000};
    };

    StragglerDetector() = default;
    explicit StragglerDetector(Options o) : options_(o), configured_(true) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        options_.multiplier = s.straggler_multiplier;
        options_.quorum = s.straggler_quorum;
        options_.min_siblings = s.straggler_min_siblings;
        options_.min_runtime = s.straggler_min_runtime;
        configured_ = true;
    }

    /// The sibling median of `type` when the quorum is met, else nullopt.
    std::optional<double> sibling_median(const WorkflowState& s, const std::string& type, Timestamp now,
                                         int* finished_count = nullptr) const {
        const auto* ph = s.phase(type);
        int total = ph ? ph->total : 0;
        auto needed = std::max<double>(options_.min_siblings, std::ceil(options_.quorum * total));
        // Too few of the type have succeeded for a quorum: no need to look at the tasks (a scan of them all).
        if (ph && ph->succeeded < needed) {
            if (finished_count) *finished_count = ph->succeeded;
            return std::nullopt;
        }
        std::vector<double> runs;
        for (auto& t : s.tasks())
            if (t.task_type == type && t.status == TaskStatus::succeeded)
                if (auto r = t.runtime_seconds(now)) runs.push_back(*r);
        if (finished_count) *finished_count = static_cast<int>(runs.size());
        if (runs.empty() || static_cast<double>(runs.size()) < needed) return std::nullopt;
        std::sort(runs.begin(), runs.end());
        auto n = runs.size();
        return n % 2 ? runs[n / 2] : (runs[n / 2 - 1] + runs[n / 2]) / 2;
    }

    void on_tick(const WorkflowState& s, Timestamp now, ReportSink& sink) {
        // A watch that is down or not yet resynced leaves finished tasks looking as running: no judgement
        // until the picture is current again.
        if (s.tasks_stale()) return;
        std::map<std::string, std::pair<std::optional<double>, int>> medians; // per type, computed lazily
        for (auto& t : s.tasks()) {
            if (t.status != TaskStatus::running || flagged_.count(t.key)) continue;
            auto runtime = t.runtime_seconds(now);
            if (!runtime) continue;
            auto it = medians.find(t.task_type);
            if (it == medians.end()) {
                int n = 0;
                auto m = sibling_median(s, t.task_type, now, &n);
                it = medians.emplace(t.task_type, std::make_pair(m, n)).first;
            }
            auto [median, finished] = it->second;
            std::optional<double> base;
            std::string basis;
            if (median && *median > 0) {
                base = median;
                basis = "sibling_median";
            } else if (t.expectation.seconds && *t.expectation.seconds > 0) {
                base = t.expectation.seconds;
                basis = std::string(to_string(t.expectation.basis));
            }
            if (!base) continue;
            double floor = std::chrono::duration<double>(options_.min_runtime).count();
            double threshold = std::max(floor, options_.multiplier * *base);
            if (*runtime <= threshold) continue;
            flagged_.insert(t.key);
            Finding f;
            f.type = ReportType::ANOMALY_STRAGGLER;
            f.severity = Severity::warning;
            f.task_name = t.name;
            f.task_type = t.task_type;
            f.scope = t.key;
            f.fingerprint = "straggler";
            char mult[32];
            std::snprintf(mult, sizeof mult, "%g", options_.multiplier);
            const std::string kind = t.task_type.empty() ? std::string("similar") : t.task_type;
            std::string compared;
            if (basis == "sibling_median")
                compared = "the " + detail::es_human_duration(*base) + " that " + std::to_string(finished) +
                           " finished " + kind + " tasks typically took";
            else if (basis == "history")
                compared = "the " + detail::es_human_duration(*base) + " that " + kind +
                           " tasks typically took in past runs (median of " +
                           std::to_string(t.expectation.history ? t.expectation.history->samples : 0) + ")" +
                           (t.expectation.overrides_inventory
                                ? ", rather than the workflow's estimate of " +
                                      detail::es_human_duration(t.expectation.inventory_seconds.value_or(0))
                                : std::string());
            else
                compared = "its expected " + detail::es_human_duration(*base) + " (the workflow's estimate)";
            f.message = "Task " + t.name + " has been running for " + detail::es_human_duration(*runtime) +
                        ", more than " + mult + " times " + compared + ".";
            f.details["running_seconds"] = *runtime;
            f.details["threshold_seconds"] = threshold;
            f.details["basis"] = basis;
            f.details["baseline_seconds"] = *base;
            f.details["multiplier"] = options_.multiplier;
            f.details["finished_siblings"] = finished;
            if (basis == "history" && t.expectation.history) {
                f.details["history_samples"] = t.expectation.history->samples;
                f.details["history_p95_seconds"] = t.expectation.history->p95_seconds;
                f.details["history_scope"] = t.expectation.history->scope;
                if (t.expectation.inventory_seconds) f.details["inventory_seconds"] = *t.expectation.inventory_seconds;
            }
            f.details["job_name"] = t.job_name;
            f.details["attempts"] = t.attempts;
            if (sink.emit(std::move(f))) stragglers_.push_back(t.name);
        }
    }

    void on_summary(WatchSummary& s) const {
        for (auto& n : stragglers_) s.stragglers.push_back(n);
    }

    const Options& options() const noexcept { return options_; }
    const std::vector<std::string>& stragglers() const noexcept { return stragglers_; }

private:
    Options options_;
    bool configured_ = false;
    std::set<std::string> flagged_;
    std::vector<std::string> stragglers_;
};

static_assert(Detector<StragglerDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_STRAGGLER_HPP

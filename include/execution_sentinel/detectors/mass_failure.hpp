// MASS_FAILURE: too many tasks fail, over the whole workflow or within one task type.
#ifndef EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP
#define EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP

#include <execution_sentinel/detector.hpp>

#include <boost/json/array.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace execution_sentinel {

/// Rules (docs/detectors.md), checked whenever a task's status changes:
///  - workflow: failed / (succeeded + failed) > threshold, once at least `min_finished` tasks have finished;
///  - per type: the same ratio within one task type, once min(min_finished_per_type, tasks of the type) of that
///    type have finished, and never before 3 (or min_finished_per_type when it is lower): a whole small phase
///    failing at once points to bad input or a bad image;
///  - both ratios need at least two failed tasks: one failure is bad luck, whatever the ratio;
///  - a task that vanished (TaskStatus::vanished: its objects were deleted before an end was seen) counts neither
///    as failed nor as finished in either ratio: its outcome is unknown;
///  - burst: `burst_count` task failures finished within `burst_window` of each other, over the workflow (the
///    "everything fails right now" case); 0 turns it off. Failure times are the attempts' finish times, so
///    failures learnt late (after a reconnect) are not mistaken for a burst.
/// Severity critical, once per scope ("workflow" — ratio and burst share it —, "type/<type>").
/// Sets WatchSummary::mass_failure.
/// Defaults: threshold 0.3, min_finished 10, min_finished_per_type 5, burst 5 within 60 s (SentinelSettings).
/// Note: a HyperFlow task whose script fails usually leaves its pod Succeeded (HyperFlow on Kubernetes); the ratio
/// counts what the cluster shows (pods and Jobs that failed).
class MassFailureDetector {
public:
    static constexpr std::string_view name = "mass_failure";

    struct Options {
        double threshold = 0.3;
        int min_finished = 10;
        int min_finished_per_type = 5;
        int burst_count = 5; ///< 0 = no burst rule
        std::chrono::milliseconds burst_window{60'000};
    };

    MassFailureDetector() = default;
    explicit MassFailureDetector(Options o) : options_(o), configured_(true) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        options_.threshold = s.mass_failure_threshold;
        options_.min_finished = s.mass_failure_min_finished;
        options_.min_finished_per_type = s.mass_failure_min_finished_per_type;
        options_.burst_count = s.mass_failure_burst_count;
        options_.burst_window = s.mass_failure_burst_window;
        configured_ = true;
    }

    /// Finished tasks of a type needed before its ratio is judged: min(min_finished_per_type, tasks of the type),
    /// at least 3 (or min_finished_per_type when it is lower).
    int needed_per_type(int tasks_of_type) const noexcept {
        int floor = std::min(3, options_.min_finished_per_type);
        return std::max(floor, std::min(options_.min_finished_per_type, tasks_of_type));
    }

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp now, ReportSink& sink) {
        if (!c.status_changed()) return;
        const auto& task = s.tasks()[c.index];
        if (sink.seen(ReportType::MASS_FAILURE, "workflow", "mass-failure")) fired_ = true; // also from a restored ledger
        else if (c.after == TaskStatus::failed && options_.burst_count > 0) check_burst(s, task, now, sink);
        int finished = s.completed() + s.failed();
        if (finished >= options_.min_finished && s.failed() >= min_failed &&
            ratio(s.failed(), finished) > options_.threshold) {
            Finding f;
            f.type = ReportType::MASS_FAILURE;
            f.severity = Severity::critical;
            f.scope = "workflow";
            f.fingerprint = "mass-failure";
            f.message = std::to_string(s.failed()) + " of " + std::to_string(finished) + " finished tasks have failed (" +
                        percent(s.failed(), finished) +
                        "), which points to a shared cause such as bad input data or a broken software image "
                        "rather than bad luck.";
            f.details["scope"] = "workflow";
            f.details["rule"] = "ratio";
            f.details["failed"] = s.failed();
            f.details["finished"] = finished;
            f.details["ratio"] = ratio(s.failed(), finished);
            f.details["threshold"] = options_.threshold;
            if (sink.emit(std::move(f)) || sink.seen(ReportType::MASS_FAILURE, "workflow", "mass-failure"))
                fired_ = true;
        }
        const auto* ph = s.phase(task.task_type);
        if (ph && ph->finished() >= needed_per_type(ph->total) && ph->failed >= min_failed &&
            ratio(ph->failed, ph->finished()) > options_.threshold) {
            const std::string label = task.task_type.empty() ? std::string("unnamed") : task.task_type;
            Finding f;
            f.type = ReportType::MASS_FAILURE;
            f.severity = Severity::critical;
            f.task_type = task.task_type;
            f.scope = "type/" + task.task_type;
            f.fingerprint = "mass-failure";
            f.message = std::to_string(ph->failed) + " of " + std::to_string(ph->finished()) + " finished " + label +
                        " tasks have failed (" + percent(ph->failed, ph->finished()) +
                        "), which points to a problem shared by this step, such as its input data or software image.";
            f.details["scope"] = "type";
            f.details["rule"] = "ratio";
            f.details["failed"] = ph->failed;
            f.details["finished"] = ph->finished();
            f.details["ratio"] = ratio(ph->failed, ph->finished());
            f.details["threshold"] = options_.threshold;
            f.details["last_failure_reason"] = task.last_failure_reason;
            if (sink.emit(std::move(f)) || sink.seen(ReportType::MASS_FAILURE, "type/" + task.task_type, "mass-failure"))
                fired_ = true;
        }
    }

    void on_summary(WatchSummary& s) const { s.mass_failure = s.mass_failure || fired_; }

    bool fired() const noexcept { return fired_; }
    const Options& options() const noexcept { return options_; }

private:
    void check_burst(const WorkflowState& s, const TaskRecord& task, Timestamp now, ReportSink& sink) {
        Timestamp at = task.finished_at ? *task.finished_at : now;
        failures_.insert({at, task.name});
        // keep only what can still be part of a burst with a later failure
        auto latest = failures_.rbegin()->first;
        while (!failures_.empty() && failures_.begin()->first + options_.burst_window < latest - options_.burst_window)
            failures_.erase(failures_.begin());
        // a window holding burst_count failures (two pointers over the sorted times: linear)
        auto first = failures_.begin();
        int in_window = 0;
        bool burst = false;
        for (auto it = failures_.begin(); it != failures_.end(); ++it) {
            ++in_window;
            while (it->first - first->first > options_.burst_window) {
                ++first;
                --in_window;
            }
            if (in_window >= options_.burst_count) {
                burst = true;
                break;
            }
        }
        if (!burst) return;
        std::vector<std::string> names;
        for (auto it = first; it != failures_.end() && it->first - first->first <= options_.burst_window; ++it)
            names.push_back(it->second);
        double window_s = std::chrono::duration<double>(options_.burst_window).count();
        Finding f;
        f.type = ReportType::MASS_FAILURE;
        f.severity = Severity::critical;
        f.scope = "workflow";
        f.fingerprint = "mass-failure";
        f.message = std::to_string(names.size()) + " tasks failed within " + detail::es_human_duration(window_s) + " (" +
                    detail::es_join_names(names) +
                    "), which points to a shared cause such as bad input data, a broken software image or a cluster "
                    "problem rather than bad luck.";
        f.details["scope"] = "workflow";
        f.details["rule"] = "burst";
        f.details["failed"] = static_cast<int>(names.size());
        f.details["finished"] = s.completed() + s.failed();
        f.details["window_seconds"] = window_s;
        f.details["burst_count"] = options_.burst_count;
        boost::json::array tasks;
        for (auto& n : names) tasks.push_back(boost::json::string(n));
        f.details["tasks"] = std::move(tasks);
        if (sink.emit(std::move(f)) || sink.seen(ReportType::MASS_FAILURE, "workflow", "mass-failure")) fired_ = true;
    }

    static double ratio(int a, int b) { return b > 0 ? static_cast<double>(a) / b : 0.0; }
    static std::string percent(int a, int b) { return std::to_string(static_cast<int>(std::lround(100.0 * ratio(a, b)))) + "%"; }

    /// One failed task is bad luck, never a mass failure, whatever the ratio (1 of 3 is 33 %).
    static constexpr int min_failed = 2;

    Options options_;
    bool configured_ = false;
    bool fired_ = false;
    std::multiset<std::pair<Timestamp, std::string>> failures_; ///< failure finish times (pruned), task names
};

static_assert(Detector<MassFailureDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP

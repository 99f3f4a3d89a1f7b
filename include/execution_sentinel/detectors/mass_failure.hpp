// MASS_FAILURE: too many tasks fail, over the whole workflow or within one task type.
#ifndef EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP
#define EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP

#include <execution_sentinel/detector.hpp>

#include <cmath>
#include <string>

namespace execution_sentinel {

/// Rules (docs/detectors.md), checked whenever a task's status changes:
///  - workflow: failed / (succeeded + failed) > threshold, once at least `min_finished` tasks have finished;
///  - per type: the same ratio within one task type, once at least `min_finished_per_type` of that type have
///    finished (a whole phase failing at once points to bad input or a bad image).
/// Severity critical, once per scope ("workflow", "type/<type>"). Sets WatchSummary::mass_failure.
/// Defaults: threshold 0.3, min_finished 10, min_finished_per_type 5 (SentinelSettings).
/// Note: a HyperFlow task whose script fails usually leaves its pod Succeeded (HyperFlow on Kubernetes); the ratio
/// counts what the cluster shows (pods and Jobs that failed).
class MassFailureDetector {
public:
    static constexpr std::string_view name = "mass_failure";

    struct Options {
        double threshold = 0.3;
        int min_finished = 10;
        int min_finished_per_type = 5;
    };

    MassFailureDetector() = default;
    explicit MassFailureDetector(Options o) : options_(o), configured_(true) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        options_.threshold = s.mass_failure_threshold;
        options_.min_finished = s.mass_failure_min_finished;
        options_.min_finished_per_type = s.mass_failure_min_finished_per_type;
        configured_ = true;
    }

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp, ReportSink& sink) {
        if (!c.status_changed()) return;
        const auto& task = s.tasks()[c.index];
        int finished = s.completed() + s.failed();
        if (finished >= options_.min_finished && ratio(s.failed(), finished) > options_.threshold) {
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
            f.details["failed"] = s.failed();
            f.details["finished"] = finished;
            f.details["ratio"] = ratio(s.failed(), finished);
            f.details["threshold"] = options_.threshold;
            if (sink.emit(std::move(f)) || sink.seen(ReportType::MASS_FAILURE, "workflow", "mass-failure"))
                fired_ = true;
        }
        const auto* ph = s.phase(task.task_type);
        if (ph && ph->finished() >= options_.min_finished_per_type &&
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
    static double ratio(int a, int b) { return b > 0 ? static_cast<double>(a) / b : 0.0; }
    static std::string percent(int a, int b) { return std::to_string(static_cast<int>(std::lround(100.0 * ratio(a, b)))) + "%"; }

    Options options_;
    bool configured_ = false;
    bool fired_ = false;
};

static_assert(Detector<MassFailureDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_MASS_FAILURE_HPP

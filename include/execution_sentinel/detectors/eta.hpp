// The ETA in the summary: the latest estimate of the time left, the run's duration as first estimated, and (with
// Monitor::summary, settle_eta) that estimate's error at the end. Makes no report.
#ifndef EXECUTION_SENTINEL_DETECTORS_ETA_HPP
#define EXECUTION_SENTINEL_DETECTORS_ETA_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/monitor_view.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

namespace execution_sentinel {

/// The rule (docs/detectors.md, "ETA"): at every tick until the engine writes its exit code or the watch times
/// out, the ETA is estimate_eta(state, now) (monitor_view.hpp). The first ETA made while at least one task is
/// running (so that the parallelism is seen) and not stale is the run's estimate: estimated duration = the time
/// from the watch's first input to that tick + that ETA. WatchSummary gets eta_seconds and eta_basis (the last
/// tick's; 0 and "done" once the exit code is known), estimated_duration_seconds, estimated_at_seconds and
/// estimate_basis; Monitor::summary then sets eta_error_pct (settle_eta, summary.hpp).
class EtaDetector {
public:
    static constexpr std::string_view name = "eta";

    void on_pod(const WorkflowState&, const kube::Pod&, ChangeKind, Timestamp now, ReportSink&) { note(now); }
    void on_job(const WorkflowState&, const kube::Job&, ChangeKind, Timestamp now, ReportSink&) { note(now); }
    void on_event(const WorkflowState&, const kube::Event&, Timestamp now, ReportSink&) { note(now); }
    void on_api_call(const WorkflowState&, const ApiCall&, Timestamp now, ReportSink&) { note(now); }
    void on_engine_log(const WorkflowState&, const kube::LogLine&, Timestamp now, ReportSink&) { note(now); }
    void on_metrics(const WorkflowState&, const MetricsSample&, Timestamp now, ReportSink&) { note(now); }

    void on_completion_probe(const WorkflowState&, const CompletionProbe& p, Timestamp now, ReportSink&) {
        note(now);
        if (p.file_found && parse_exit_code(p.content)) completed_ = true;
    }

    void on_timeout(const WorkflowState&, Timestamp now, ReportSink&) {
        note(now);
        timed_out_ = true;
    }

    void on_tick(const WorkflowState& s, Timestamp now, ReportSink&) {
        note(now);
        if (completed_ || timed_out_ || s.tasks_stale()) return;
        last_ = estimate_eta(s, now);
        if (!first_ && last_->seconds && s.running() > 0) {
            first_ = last_;
            first_at_ = std::max(0.0, std::chrono::duration<double>(now - *started_).count());
        }
    }

    void on_summary(WatchSummary& w) const {
        if (completed_) {
            w.eta_seconds = 0.0;
            w.eta_basis = "done";
        } else if (last_) {
            w.eta_seconds = last_->seconds;
            w.eta_basis = last_->basis;
        }
        if (first_ && first_->seconds) {
            w.estimated_duration_seconds = first_at_ + *first_->seconds;
            w.estimated_at_seconds = first_at_;
            w.estimate_basis = first_->basis;
        }
    }

    // ------------------------------------------------------------------ checkpoint

    /// The start of the watch and the run's estimate survive a restart (the latest ETA is made again).
    void save_checkpoint(boost::json::object& o) const {
        detail::es_put_time(o, "started", started_);
        if (first_ && first_->seconds) {
            o["first_seconds"] = *first_->seconds;
            o["first_basis"] = first_->basis;
            o["first_at"] = first_at_;
        }
    }

    void restore_checkpoint(const boost::json::object& o) {
        detail::CheckpointFields f(o, "detectors.eta.", detail::CheckpointFail{});
        started_ = detail::es_get_time(f, "started");
        first_.reset();
        first_at_ = 0;
        if (auto seconds = f.number("first_seconds")) {
            if (*seconds < 0) f.fail("first_seconds", "expected a number of at least 0");
            auto at = f.number("first_at").value_or(0);
            if (at < 0) f.fail("first_at", "expected a number of at least 0");
            first_ = EtaEstimate{*seconds, detail::es_bounded(f, "first_basis", 64), 0};
            first_at_ = at;
        }
    }

    /// The latest ETA (nullopt before the first tick).
    const std::optional<EtaEstimate>& last() const noexcept { return last_; }
    /// The run's estimate: the first ETA made while a task was running (nullopt until then).
    const std::optional<EtaEstimate>& first() const noexcept { return first_; }

private:
    void note(Timestamp now) {
        if (!started_) started_ = now;
    }

    std::optional<Timestamp> started_;
    std::optional<EtaEstimate> last_;
    std::optional<EtaEstimate> first_;
    double first_at_ = 0;
    bool completed_ = false;
    bool timed_out_ = false;
};

static_assert(Detector<EtaDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_ETA_HPP

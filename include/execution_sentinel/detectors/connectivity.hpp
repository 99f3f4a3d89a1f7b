// CONNECTIVITY_LOSS / CONNECTIVITY_RESTORED: the sentinel lost, then regained, contact with the cluster's API.
#ifndef EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP
#define EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/detector.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace execution_sentinel {

/// Rules (docs/detectors.md), one state machine with two states, connected and lost:
///  - connected → lost: `failures` (default 3, SentinelSettings::connectivity_failures) consecutive failed API
///    calls or stream attempts → one CONNECTIVITY_LOSS (warning) naming the cause of the last failure (e.g.
///    "connection refused", "the API server answered with invalid JSON"). A success in between starts the
///    count again, so a single dropped watch is not a loss.
///  - lost → connected: when the driver reports feed health (FeedHealth, known), only once every feed is
///    healthy again — each watch streams — and no call has failed since (the last call succeeded, or the feeds
///    became healthy after the last failure): one CONNECTIVITY_RESTORED (info) with the outage's length. A
///    single successful request while the watches are still refused restores nothing. Without feed health
///    (a Monitor fed by hand), the next successful call restores.
/// Each outage has its own fingerprint ("outage-N"): a second outage is reported again, replays are not.
class ConnectivityDetector {
public:
    static constexpr std::string_view name = "connectivity";

    ConnectivityDetector() = default;
    explicit ConnectivityDetector(int failures) : failures_needed_(failures < 1 ? 1 : failures), configured_(true) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        failures_needed_ = s.connectivity_failures < 1 ? 1 : s.connectivity_failures;
        configured_ = true;
    }

    void on_api_call(const WorkflowState& s, const ApiCall& call, Timestamp now, ReportSink& sink) {
        if (call.ok) {
            consecutive_ = 0;
            if (lost_ && may_restore(s)) restore(now, sink);
            return;
        }
        if (consecutive_ == 0) first_failure_ = now;
        ++consecutive_;
        ++failed_in_outage_;
        last_failure_at_ = now;
        last_cause_ = std::string(call.cause.substr(0, 500));
        if (!lost_ && consecutive_ >= failures_needed_) {
            lost_ = true;
            ++outages_;
            outage_start_ = first_failure_ ? *first_failure_ : now;
            failed_in_outage_ = consecutive_;
            Finding f;
            f.type = ReportType::CONNECTIVITY_LOSS;
            f.severity = Severity::warning;
            f.scope = "workflow";
            f.fingerprint = "outage-" + std::to_string(outages_);
            f.message = "The sentinel has lost contact with the cluster (" + std::to_string(consecutive_) +
                        " attempts in a row failed" + (last_cause_.empty() ? std::string() : "; last: " + last_cause_) +
                        "), so the workflow's progress cannot be seen until it is back; it keeps retrying.";
            f.details["failed_calls"] = consecutive_;
            f.details["last_call"] = std::string(call.what.substr(0, 200));
            f.details["cause"] = last_cause_;
            f.details["since"] = format_timestamp(outage_start_);
            f.details["outage"] = outages_;
            sink.emit(std::move(f));
        }
    }

    /// Restoration without a new call: every feed became healthy after the last failure.
    void on_tick(const WorkflowState& s, Timestamp now, ReportSink& sink) {
        if (lost_ && may_restore(s)) restore(now, sink);
    }

    void save_checkpoint(boost::json::object& o) const {
        o["outages"] = outages_;
        o["lost"] = lost_;
        if (lost_) {
            o["outage_start"] = detail::es_ns(outage_start_);
            o["failed_in_outage"] = failed_in_outage_;
            o["cause"] = last_cause_;
            detail::es_put_time(o, "last_failure", last_failure_at_);
        }
    }

    /// An outage open at the restart stays open: the first healthy contact reports it restored, once.
    void restore_checkpoint(const boost::json::object& o) {
        detail::CheckpointFields f(o, "detectors.connectivity.", detail::CheckpointFail{});
        if (auto n = f.integer("outages", 0, INT32_MAX)) outages_ = static_cast<int>(*n);
        f.boolean("lost", lost_);
        if (!lost_) return;
        if (auto t = detail::es_get_time(f, "outage_start")) outage_start_ = *t;
        if (auto n = f.integer("failed_in_outage", 0, INT32_MAX)) failed_in_outage_ = static_cast<int>(*n);
        last_cause_ = detail::es_bounded(f, "cause", 1000);
        last_failure_at_ = detail::es_get_time(f, "last_failure");
        consecutive_ = failures_needed_;
    }

    bool lost() const noexcept { return lost_; }
    int consecutive_failures() const noexcept { return consecutive_; }
    int outages() const noexcept { return outages_; }
    /// The cause of the last failed call ("" when none failed).
    const std::string& last_cause() const noexcept { return last_cause_; }

private:
    bool may_restore(const WorkflowState& s) const {
        const auto& h = s.feed_health();
        if (!h.known) return consecutive_ == 0;
        if (!h.all_healthy) return false;
        if (consecutive_ == 0) return true;
        return h.healthy_since && last_failure_at_ && *h.healthy_since > *last_failure_at_;
    }

    void restore(Timestamp now, ReportSink& sink) {
        double secs = std::chrono::duration<double>(now - outage_start_).count();
        if (secs < 0) secs = 0;
        Finding f;
        f.type = ReportType::CONNECTIVITY_RESTORED;
        f.severity = Severity::info;
        f.scope = "workflow";
        f.fingerprint = "outage-" + std::to_string(outages_);
        f.message = "Contact with the cluster is back after " + detail::es_human_duration(secs) +
                    "; monitoring continues where it left off.";
        f.details["outage_seconds"] = secs;
        f.details["failed_calls"] = failed_in_outage_;
        f.details["outage"] = outages_;
        f.details["cause"] = last_cause_;
        sink.emit(std::move(f));
        lost_ = false;
        consecutive_ = 0;
        failed_in_outage_ = 0;
        first_failure_.reset();
    }

    int failures_needed_ = 3;
    bool configured_ = false;
    int consecutive_ = 0;
    int failed_in_outage_ = 0;
    bool lost_ = false;
    int outages_ = 0;
    std::optional<Timestamp> first_failure_;
    std::optional<Timestamp> last_failure_at_;
    Timestamp outage_start_{};
    std::string last_cause_;
};

static_assert(Detector<ConnectivityDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP

// CONNECTIVITY_LOSS / CONNECTIVITY_RESTORED: the sentinel lost, then regained, contact with the cluster's API.
#ifndef EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP
#define EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP

#include <execution_sentinel/detector.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace execution_sentinel {

/// Rules (docs/detectors.md): `failures` (default 3, SentinelSettings::connectivity_failures) consecutive failed
/// API calls or stream attempts → CONNECTIVITY_LOSS (warning), once per outage; the next successful call →
/// CONNECTIVITY_RESTORED (info) with the outage's length. A single dropped watch is not a loss: the driver
/// reconnects and its next call succeeds. Each outage has its own fingerprint ("outage-N"), so a second
/// outage is reported again, but replays of the same one are not.
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

    void on_api_call(const WorkflowState&, const ApiCall& call, Timestamp now, ReportSink& sink) {
        if (call.ok) {
            if (lost_) {
                double secs = first_failure_ ? std::chrono::duration<double>(now - *first_failure_).count() : 0.0;
                Finding f;
                f.type = ReportType::CONNECTIVITY_RESTORED;
                f.severity = Severity::info;
                f.scope = "workflow";
                f.fingerprint = "outage-" + std::to_string(outages_);
                f.message = "Contact with the cluster is back after " + detail::es_human_duration(secs) +
                            "; monitoring continues where it left off.";
                f.details["outage_seconds"] = secs;
                f.details["failed_calls"] = consecutive_;
                f.details["outage"] = outages_;
                sink.emit(std::move(f));
            }
            lost_ = false;
            consecutive_ = 0;
            first_failure_.reset();
            return;
        }
        if (consecutive_ == 0) first_failure_ = now;
        ++consecutive_;
        if (!lost_ && consecutive_ >= failures_needed_) {
            lost_ = true;
            ++outages_;
            Finding f;
            f.type = ReportType::CONNECTIVITY_LOSS;
            f.severity = Severity::warning;
            f.scope = "workflow";
            f.fingerprint = "outage-" + std::to_string(outages_);
            f.message = "The sentinel has lost contact with the cluster (" + std::to_string(consecutive_) +
                        " attempts in a row failed), so the workflow's progress cannot be seen until it is back; it "
                        "keeps retrying.";
            f.details["failed_calls"] = consecutive_;
            f.details["last_call"] = std::string(call.what.substr(0, 200));
            f.details["since"] = format_timestamp(first_failure_ ? *first_failure_ : now);
            f.details["outage"] = outages_;
            sink.emit(std::move(f));
        }
    }

    bool lost() const noexcept { return lost_; }
    int consecutive_failures() const noexcept { return consecutive_; }
    int outages() const noexcept { return outages_; }

private:
    int failures_needed_ = 3;
    bool configured_ = false;
    int consecutive_ = 0;
    bool lost_ = false;
    int outages_ = 0;
    std::optional<Timestamp> first_failure_;
};

static_assert(Detector<ConnectivityDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_CONNECTIVITY_HPP

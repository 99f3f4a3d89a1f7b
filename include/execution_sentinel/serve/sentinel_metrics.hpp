// SentinelMetrics: the sentinel's own metric families (docs/metrics.md lists every one), fed from reports, monitor
// views, watch summaries and the events of the watch, the store and the alert sinks.
//
// Usage:
//   es::serve::SentinelMetrics metrics;                    // registers every family in metrics.registry()
//   metrics.run_started("wf", "run-1");
//   metrics.observe("wf", "run-1", report);                // reports, stalls, reaction latency, health
//   metrics.observe("wf", "run-1", monitor.view(now));     // tasks by phase and status, health
//   metrics.run_finished("wf", "run-1", summary);          // outcome, duration; the run's series are removed
//   std::string text = metrics.registry().expose();
//
// Every function is thread-safe and cheap (the watch path calls them): reports are counted through handles looked
// up once in the constructor; per-run series are bounded by SentinelMetricsOptions::max_runs.
#ifndef EXECUTION_SENTINEL_SERVE_SENTINEL_METRICS_HPP
#define EXECUTION_SENTINEL_SERVE_SENTINEL_METRICS_HPP

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/serve/metrics.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace execution_sentinel::serve {

/// Limits and identity of SentinelMetrics. Aggregate: use designated initializers.
struct SentinelMetricsOptions {
    /// Runs with their own series (health, tasks by phase) at most; the others share the overflow series.
    /// Default 500; 0 is read as 1.
    std::size_t max_runs = 500;
    /// Series of execution_sentinel_tasks at most (one per run, phase and status); default 4000 (e.g. 80 runs of
    /// 10 phases, 5 statuses each). 0 is read as 1.
    std::size_t max_task_series = 4000;
    /// The `version` label of execution_sentinel_build_info. Default: the library's version.
    std::string version = version_string;
};

/// Buckets of execution_sentinel_reaction_latency_seconds: 1 ms to 10 s (reactions take milliseconds).
inline std::vector<double> reaction_latency_buckets() {
    return {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
}

/// Buckets of execution_sentinel_run_duration_seconds: 1 minute to 1 day.
inline std::vector<double> run_duration_buckets() { return {60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400}; }

/// The task statuses of execution_sentinel_tasks.
inline constexpr std::array<std::string_view, 5> task_statuses{"pending", "running", "succeeded", "failed", "vanished"};

class SentinelMetrics {
public:
    explicit SentinelMetrics(SentinelMetricsOptions options = {}) : options_(std::move(options)) {
        const std::size_t runs = std::max<std::size_t>(options_.max_runs, 1);
        registry_
            .gauge("execution_sentinel_build_info",
                   "Build information of the sentinel; the value is always 1.", {"version"})
            .with({options_.version})
            .set(1);
        runs_tracked_ = registry_.gauge("execution_sentinel_runs_tracked", "Workflow runs being watched now.").with();
        runs_finished_ = &registry_.counter("execution_sentinel_runs_finished_total",
                                            "Workflow runs whose watch ended, by outcome (succeeded, failed, "
                                            "timed_out).",
                                            {"outcome"});
        run_duration_ = registry_
                            .histogram("execution_sentinel_run_duration_seconds",
                                       "Duration of finished workflow runs, from the first observation to "
                                       "completion or timeout.",
                                       {}, run_duration_buckets())
                            .with();
        tasks_ = &registry_.gauge("execution_sentinel_tasks",
                                  "Tasks of a watched run, by phase (task type) and status (pending, running, "
                                  "succeeded, failed, vanished: ended with its outcome unknown).",
                                  {"namespace", "run", "phase", "status"},
                                  {.max_series = options_.max_task_series});
        health_ = &registry_.gauge("execution_sentinel_run_health_ratio",
                                   "Health score of a watched run, from 0 to 1 (1: nothing failed).",
                                   {"namespace", "run"}, {.max_series = runs});
        auto& reports = registry_.counter("execution_sentinel_reports_total", "Reports emitted, by type and severity.",
                                          {"type", "severity"});
        for (auto t : all_report_types)
            for (auto s : {Severity::info, Severity::warning, Severity::error, Severity::critical})
                reports_[index(t)][static_cast<std::size_t>(s)] = reports.with({to_string(t), to_string(s)});
        auto& stalls = registry_.counter("execution_sentinel_stalls_total",
                                         "Stalls detected: level=\"workflow\" counts stall episodes (from their first "
                                         "tier), level=\"task\" tasks stuck waiting or running.",
                                         {"level"});
        workflow_stalls_ = stalls.with({"workflow"});
        task_stalls_ = stalls.with({"task"});
        auto& latency = registry_.histogram(
            "execution_sentinel_reaction_latency_seconds",
            "Time from the input that caused a report (a cluster event, a log line, a timer) to its publication.",
            {"type"}, reaction_latency_buckets());
        for (auto t : all_report_types) latency_[index(t)] = latency.with({to_string(t)});
        last_report_ = registry_
                           .gauge("execution_sentinel_last_report_timestamp_seconds",
                                  "Time of the last report published, in seconds since the Unix epoch.")
                           .with();
        watch_restarts_ = &registry_.counter("execution_sentinel_watch_restarts_total",
                                             "Watches of the Kubernetes API restarted, by resource and reason.",
                                             {"resource", "reason"}, {.max_series = 100});
        shared_resyncs_ = &registry_.counter("execution_sentinel_shared_watch_resyncs_total",
                                             "Runs resynchronised from a shared watch's store because they fell too "
                                             "far behind its changes, by resource.",
                                             {"resource"}, {.max_series = 20});
        api_errors_ = &registry_.counter("execution_sentinel_kube_api_errors_total",
                                         "Failed calls to the Kubernetes API, by HTTP status code (or \"transport\" "
                                         "when no answer came).",
                                         {"code"}, {.max_series = 100});
        store_writes_ = &registry_.counter("execution_sentinel_store_writes_total",
                                           "Writes to the run history store, by outcome (ok, failed, dropped).",
                                           {"outcome"}, {.max_series = 20});
        alert_deliveries_ = &registry_.counter("execution_sentinel_alert_deliveries_total",
                                               "Alert messages handed to a sink, by sink and outcome (sent, failed, "
                                               "dropped).",
                                               {"sink", "outcome"}, {.max_series = 200});
        leases_held_ = registry_
                           .gauge("execution_sentinel_leases_held",
                                  "Run leases this replica holds (serve with ha.enabled; docs/serve.md).")
                           .with();
        lease_takeovers_ = registry_
                               .counter("execution_sentinel_lease_takeovers_total",
                                        "Run leases this replica took over from another replica (expired or "
                                        "released).")
                               .with();
        leases_lost_ = registry_
                           .counter("execution_sentinel_leases_lost_total",
                                    "Run leases this replica lost (another replica took them, or they could not be "
                                    "renewed in time).")
                           .with();
    }
    SentinelMetrics(const SentinelMetrics&) = delete;
    SentinelMetrics& operator=(const SentinelMetrics&) = delete;

    /// The registry holding these families (add more families to it, or hand it to the HTTP server).
    Registry& registry() noexcept { return registry_; }
    const Registry& registry() const noexcept { return registry_; }

    /// A run is watched from now on.
    void run_started(std::string_view, std::string_view) { runs_tracked_.inc(); }

    /// A run's watch ended: its outcome and duration are counted, it is no longer tracked, and its per-run series
    /// (health, tasks) are removed.
    void run_finished(std::string_view ns, std::string_view run, const WatchSummary& summary) {
        observe(summary);
        runs_tracked_.dec();
        forget_run(ns, run);
    }

    /// Counts a finished watch (outcome and duration) without per-run bookkeeping: the single-run `watch`.
    void observe(const WatchSummary& summary) {
        runs_finished_->with({to_string(summary.outcome())}).inc();
        run_duration_.observe(summary.duration_seconds);
    }

    /// Counts a report (type, severity, stalls), its reaction latency (`observed_at` − `report.timestamp`, when
    /// the report has a timestamp; negative differences count as 0) and the time of the last report.
    void observe(const Report& r, Timestamp observed_at = Clock::now()) {
        reports_[index(r.type)][static_cast<std::size_t>(r.severity) & 3].inc();
        if (r.type == ReportType::ANOMALY_STALL) count_stall(r);
        if (r.timestamp.time_since_epoch().count() != 0) {
            const double seconds = std::chrono::duration<double>(observed_at - r.timestamp).count();
            latency_[index(r.type)].observe(seconds > 0 ? seconds : 0);
        }
        last_report_.set(std::chrono::duration<double>(observed_at.time_since_epoch()).count());
    }

    /// observe(report), and the run's health when the report carries it (every PROGRESS report does).
    void observe(std::string_view ns, std::string_view run, const Report& r, Timestamp observed_at = Clock::now()) {
        observe(r, observed_at);
        if (const auto* h = r.details.if_contains("health"); h && h->is_number()) set_health(ns, run, h->to_number<double>());
    }

    /// The run's tasks by phase and status, and its health, from a snapshot.
    void observe(std::string_view ns, std::string_view run, const MonitorView& view) {
        for (const auto& p : view.phases) {
            const int counts[] = {p.pending, p.running, p.succeeded, p.failed, p.vanished};
            for (std::size_t i = 0; i < task_statuses.size(); ++i)
                tasks_->with({ns, run, p.task_type, task_statuses[i]}).set(counts[i]);
        }
        set_health(ns, run, view.health);
    }

    /// The run's health score, clamped to [0, 1].
    void set_health(std::string_view ns, std::string_view run, double health) {
        if (std::isnan(health)) return;
        health_->with({ns, run}).set(std::clamp(health, 0.0, 1.0));
    }

    /// Removes the run's series (health, tasks).
    void forget_run(std::string_view ns, std::string_view run) {
        health_->remove_where({{"namespace", ns}, {"run", run}});
        tasks_->remove_where({{"namespace", ns}, {"run", run}});
    }

    /// A watch of `resource` ("pods", "jobs", "events", …) was restarted, for `reason` ("expired" after a 410,
    /// "closed" by the server, "error", …).
    void watch_restarted(std::string_view resource, std::string_view reason) {
        watch_restarts_->with({resource, reason}).inc();
    }

    /// `n` runs were resynchronised from the shared watch of `resource` ("pods", "jobs", "events") because they fell
    /// behind (kube::InformerStatus::resyncs).
    void shared_watch_resynced(std::string_view resource, std::uint64_t n = 1) {
        if (n > 0) shared_resyncs_->with({resource}).inc(static_cast<double>(n));
    }

    /// A Kubernetes API call failed with this HTTP status (0: no answer, counted as "transport").
    void api_error(int http_status) {
        if (http_status <= 0) api_errors_->with({"transport"}).inc();
        else api_errors_->with({std::to_string(http_status)}).inc();
    }

    /// A history store write ended with `outcome` ("ok", "failed", "dropped").
    void store_write(std::string_view outcome) { store_writes_->with({outcome}).inc(); }

    /// An alert message to `sink` ended with `outcome` ("sent", "failed", "dropped").
    void alert_delivery(std::string_view sink, std::string_view outcome) {
        alert_deliveries_->with({sink, outcome}).inc();
    }

    double runs_tracked() const noexcept { return runs_tracked_.value(); }

    /// The number of run leases held now.
    void set_leases_held(std::size_t n) { leases_held_.set(static_cast<double>(n)); }
    /// A lease was taken over from another replica.
    void lease_taken_over() { lease_takeovers_.inc(); }
    /// A lease was lost (another replica holds it, or the renew deadline passed).
    void lease_lost() { leases_lost_.inc(); }

private:
    static std::size_t index(ReportType t) noexcept {
        const auto i = static_cast<std::size_t>(t);
        return i < all_report_types.size() ? i : 0;
    }

    void count_stall(const Report& r) {
        const auto* level = r.details.if_contains("level");
        if (!level || !level->is_string()) return;
        if (*level == "task") {
            task_stalls_.inc();
            return;
        }
        const auto* resolved = r.details.if_contains("resolved");
        const auto* tier = r.details.if_contains("tier");
        const bool is_resolved = resolved && resolved->is_bool() && resolved->get_bool();
        if (*level == "workflow" && !is_resolved && tier && tier->is_string() && *tier == "LOW")
            workflow_stalls_.inc();
    }

    SentinelMetricsOptions options_;
    Registry registry_;
    Gauge runs_tracked_;
    CounterFamily* runs_finished_ = nullptr;
    Histogram run_duration_;
    GaugeFamily* tasks_ = nullptr;
    GaugeFamily* health_ = nullptr;
    std::array<std::array<Counter, 4>, all_report_types.size()> reports_{};
    Counter workflow_stalls_;
    Counter task_stalls_;
    std::array<Histogram, all_report_types.size()> latency_{};
    Gauge last_report_;
    CounterFamily* watch_restarts_ = nullptr;
    CounterFamily* shared_resyncs_ = nullptr;
    CounterFamily* api_errors_ = nullptr;
    CounterFamily* store_writes_ = nullptr;
    CounterFamily* alert_deliveries_ = nullptr;
    Gauge leases_held_;
    Counter lease_takeovers_;
    Counter leases_lost_;
};

/// Feeds every report received on `subscription` to `metrics` (with the run's health when `ns` and `run` are
/// given) until the channel is closed and drained, or the receive is cancelled. A loss (the subscriber fell
/// behind; channel_error::reports_lost) is skipped. Completes on the subscription's executor; `subscription` and
/// `metrics` must outlive it. Cancel it through the awaiting coroutine's cancellation slot.
inline boost::asio::awaitable<void> observe_reports(ReportSubscription& subscription, SentinelMetrics& metrics,
                                                    std::string ns = {}, std::string run = {}) {
    for (;;) {
        auto [ec, report] = co_await subscription.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec == channel_error::reports_lost) continue;
        if (ec) co_return;
        if (run.empty()) metrics.observe(report);
        else metrics.observe(ns, run, report);
    }
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_SENTINEL_METRICS_HPP

// Monitor: the sans-io core of the Sentinel. The driver (sentinel.hpp) feeds it what the cluster says — pod,
// Job and Event changes, API call outcomes, completion-file probes, ticks and the timeout — and drains the
// reports it makes. No I/O, no clock (`now` is an argument), no threads: one Monitor is used from one strand.
#ifndef EXECUTION_SENTINEL_MONITOR_HPP
#define EXECUTION_SENTINEL_MONITOR_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/detectors/connectivity.hpp>
#include <execution_sentinel/detectors/engine_log.hpp>
#include <execution_sentinel/detectors/mass_failure.hpp>
#include <execution_sentinel/detectors/oom_kill.hpp>
#include <execution_sentinel/detectors/progress.hpp>
#include <execution_sentinel/detectors/memory_pressure.hpp>
#include <execution_sentinel/detectors/stall.hpp>
#include <execution_sentinel/detectors/straggler.hpp>
#include <execution_sentinel/detectors/task_failure.hpp>
#include <execution_sentinel/detectors/task_lifecycle.hpp>
#include <execution_sentinel/detectors/structure.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/task_matching.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <chrono>
#include <concepts>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel {

namespace detail {
template <class T, class... Ts> inline constexpr std::size_t es_count_of = (std::size_t{0} + ... + (std::is_same_v<T, Ts> ? 1 : 0));
}

/// The core a Sentinel drives. `Ds...` are the detectors (Detector concept), called in order for every input.
/// Every on_* call stamps `now` on the reports it makes; take_reports() hands them over.
template <Detector... Ds> class Monitor {
public:
    /// Detectors passed in are used as given; each gets configure(ctx, settings) if it has that hook
    /// (the built-ins keep explicit Options and take the settings otherwise). `ctx` is validated
    /// (ContextError). `rule` overrides the task matching rule (task_matching.hpp); empty = DefaultTaskRule.
    Monitor(MonitoringContext ctx, SentinelSettings settings, Ds... detectors)
        : Monitor(std::move(ctx), std::move(settings), MatchRule{}, std::move(detectors)...) {}

    /// Default-constructed detectors.
    Monitor(MonitoringContext ctx, SentinelSettings settings)
        requires(sizeof...(Ds) > 0 && (std::default_initializable<Ds> && ...))
        : Monitor(std::move(ctx), std::move(settings), MatchRule{}, Ds{}...) {}

    Monitor(MonitoringContext ctx, SentinelSettings settings, MatchRule rule, Ds... detectors)
        : settings_(std::move(settings)), state_(validated(std::move(ctx)), std::move(rule)),
          detectors_(std::move(detectors)...) {
        std::apply([&](auto&... d) { (configure_one(d), ...); }, detectors_);
    }

    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    void on_pod(const kube::Pod& pod, ChangeKind kind, Timestamp now) {
        begin(now);
        auto changes = state_.apply_pod(pod, kind, now);
        sink_.update_counts(state_.completed(), state_.total());
        each([&](auto& d) {
            if constexpr (HasPodHook<std::remove_cvref_t<decltype(d)>>) d.on_pod(state_, pod, kind, now, sink_);
        });
        dispatch_changes(changes, now);
    }

    void on_job(const kube::Job& job, ChangeKind kind, Timestamp now) {
        begin(now);
        auto changes = state_.apply_job(job, kind, now);
        sink_.update_counts(state_.completed(), state_.total());
        each([&](auto& d) {
            if constexpr (HasJobHook<std::remove_cvref_t<decltype(d)>>) d.on_job(state_, job, kind, now, sink_);
        });
        dispatch_changes(changes, now);
    }

    void on_event(const kube::Event& ev, Timestamp now) {
        begin(now);
        state_.apply_event(ev, now);
        each([&](auto& d) {
            if constexpr (HasEventHook<std::remove_cvref_t<decltype(d)>>) d.on_event(state_, ev, now, sink_);
        });
    }

    void on_tick(Timestamp now) {
        begin(now);
        each([&](auto& d) {
            if constexpr (HasTickHook<std::remove_cvref_t<decltype(d)>>) d.on_tick(state_, now, sink_);
        });
    }

    /// One API call or stream attempt: `cause` says why it failed (see ApiCall).
    void on_api_call(bool ok, std::string_view what, Timestamp now) { on_api_call(ok, what, {}, now); }
    void on_api_call(bool ok, std::string_view what, std::string_view cause, Timestamp now) {
        begin(now);
        ApiCall call{ok, what, cause};
        each([&](auto& d) {
            if constexpr (HasApiCallHook<std::remove_cvref_t<decltype(d)>>) d.on_api_call(state_, call, now, sink_);
        });
    }

    /// The driver's feeds changed health (FeedHealth, workflow_state.hpp). Kept in the state for the
    /// detectors' next inputs (the straggler check pauses while task states are stale; connectivity is
    /// restored only when every feed is healthy again).
    void on_feed_health(FeedHealth health, Timestamp now) {
        begin(now);
        state_.set_feed_health(std::move(health));
    }

    void on_completion_probe(const CompletionProbe& probe, Timestamp now) {
        begin(now);
        each([&](auto& d) {
            if constexpr (HasCompletionProbeHook<std::remove_cvref_t<decltype(d)>>)
                d.on_completion_probe(state_, probe, now, sink_);
        });
        if (!finished_at_ && collect().exit_code) finished_at_ = now;
    }

    /// One line of the engine container's log, in order, each line once (the driver follows the log).
    void on_engine_log(const kube::LogLine& line, Timestamp now) {
        begin(now);
        each([&](auto& d) {
            if constexpr (HasEngineLogHook<std::remove_cvref_t<decltype(d)>>) d.on_engine_log(state_, line, now, sink_);
        });
    }

    /// One reading of the metrics API (or the news that it is not available).
    void on_metrics(const MetricsSample& sample, Timestamp now) {
        begin(now);
        each([&](auto& d) {
            if constexpr (HasMetricsHook<std::remove_cvref_t<decltype(d)>>) d.on_metrics(state_, sample, now, sink_);
        });
    }

    /// The watch's time limit passed. Ignored once the workflow completed.
    void on_timeout(Timestamp now) {
        begin(now);
        if (finished_at_) return;
        timed_out_ = true;
        finished_at_ = now;
        each([&](auto& d) {
            if constexpr (HasTimeoutHook<std::remove_cvref_t<decltype(d)>>) d.on_timeout(state_, now, sink_);
        });
    }

    /// New reports since the last call, in emission order, deduplicated and numbered.
    std::vector<Report> take_reports() {
        auto reports = sink_.take();
        recent_.note(reports);
        return reports;
    }

    /// A snapshot for orchestrators and live views (monitor_view.hpp): per phase counts, running tasks, ETA,
    /// health, anomalies so far (the recent ones as handed out by take_reports).
    MonitorView view(Timestamp now) const {
        return make_view(state_, sink_.counts(), recent_.items(), now, finished(), timed_out_);
    }

    WatchSummary summary(Timestamp now) const {
        WatchSummary s = collect();
        s.timed_out = timed_out_;
        s.total_tasks = state_.total();
        s.completed_tasks = state_.completed();
        s.failed_tasks = state_.failed();
        if (s.exit_code && *s.exit_code == 0) {
            int unseen = 0; // the engine exited 0: every inventory task it ran has finished
            for (auto& t : state_.tasks())
                if (t.inventory_index && !t.finished()) ++unseen;
            s.inferred_completed = unseen;
            s.completed_tasks += unseen;
        }
        auto end = finished_at_ ? *finished_at_ : now;
        if (started_at_ && end > *started_at_) s.duration_seconds = std::chrono::duration<double>(end - *started_at_).count();
        s.reports = sink_.counts();
        return s;
    }

    /// Completion seen (exit code known) or timed out.
    bool finished() const noexcept { return finished_at_.has_value(); }
    bool timed_out() const noexcept { return timed_out_; }

    const WorkflowState& state() const noexcept { return state_; }
    const SentinelSettings& settings() const noexcept { return settings_; }
    const MonitoringContext& context() const noexcept { return state_.context(); }
    ReportSink& sink() noexcept { return sink_; }

    /// The detector of type D (must occur exactly once in Ds...).
    template <class D> D& detector() noexcept {
        static_assert(detail::es_count_of<D, Ds...> == 1, "D must be one of the Monitor's detector types, exactly once");
        return std::get<D>(detectors_);
    }
    template <class D> const D& detector() const noexcept {
        static_assert(detail::es_count_of<D, Ds...> == 1, "D must be one of the Monitor's detector types, exactly once");
        return std::get<D>(detectors_);
    }

private:
    static MonitoringContext validated(MonitoringContext ctx) {
        validate(ctx);
        return ctx;
    }

    template <class D> void configure_one(D& d) {
        if constexpr (HasConfigure<D>) d.configure(state_.context(), settings_);
    }

    template <class F> void each(F&& f) {
        std::apply([&](auto&... d) { (f(d), ...); }, detectors_);
    }

    void begin(Timestamp now) {
        if (!started_at_) started_at_ = now;
        sink_.begin(now, state_.completed(), state_.total());
    }

    void dispatch_changes(const std::vector<TaskChange>& changes, Timestamp now) {
        for (auto& c : changes)
            each([&](auto& d) {
                if constexpr (HasTaskChangedHook<std::remove_cvref_t<decltype(d)>>)
                    d.on_task_changed(state_, c, now, sink_);
            });
    }

    WatchSummary collect() const {
        WatchSummary s;
        std::apply(
            [&](const auto&... d) {
                auto one = [&](const auto& x) {
                    if constexpr (HasSummaryHook<std::remove_cvref_t<decltype(x)>>) x.on_summary(s);
                };
                (one(d), ...);
            },
            detectors_);
        return s;
    }

    SentinelSettings settings_;
    WorkflowState state_;
    std::tuple<Ds...> detectors_;
    ReportSink sink_;
    RecentReports recent_;
    std::optional<Timestamp> started_at_;
    std::optional<Timestamp> finished_at_;
    bool timed_out_ = false;
};

/// The built-in detectors, in dispatch order.
/// The list as a macro too, for the explicit instantiations of DefaultMonitor and DefaultSentinel (src.hpp).
#define EXECUTION_SENTINEL_DEFAULT_DETECTORS                                                                          \
    ::execution_sentinel::ProgressDetector,                                                                           \
    ::execution_sentinel::OomKillDetector,                                                                            \
    ::execution_sentinel::TaskFailureDetector,                                                                        \
    ::execution_sentinel::StragglerDetector,                                                                          \
    ::execution_sentinel::MassFailureDetector,                                                                        \
    ::execution_sentinel::EngineLogDetector,                                                                          \
    ::execution_sentinel::TaskLifecycleDetector,                                                                      \
    ::execution_sentinel::ConnectivityDetector,                                                                       \
    ::execution_sentinel::StallDetector,                                                                              \
    ::execution_sentinel::MemoryPressureDetector,                                                                     \
    ::execution_sentinel::StructureDetector,                                                                          \
    ::execution_sentinel::CompletionDetector
using DefaultDetectors = std::tuple<EXECUTION_SENTINEL_DEFAULT_DETECTORS>;

template <class Tuple> struct MonitorOf;
template <class... Ds> struct MonitorOf<std::tuple<Ds...>> {
    using type = Monitor<Ds...>;
};

/// A Monitor with the built-in detectors: `DefaultMonitor m(ctx, settings);`
using DefaultMonitor = typename MonitorOf<DefaultDetectors>::type;

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_MONITOR_HPP

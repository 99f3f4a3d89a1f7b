// Monitor: the sans-io core of the Sentinel. The driver (sentinel.hpp) feeds it what the cluster says — pod,
// Job and Event changes, API call outcomes, completion-file probes, ticks and the timeout — and drains the
// reports it makes. No I/O, no clock (`now` is an argument), no threads: one Monitor is used from one strand.
#ifndef EXECUTION_SENTINEL_MONITOR_HPP
#define EXECUTION_SENTINEL_MONITOR_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/detectors/connectivity.hpp>
#include <execution_sentinel/detectors/engine_log.hpp>
#include <execution_sentinel/detectors/eta.hpp>
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
#include <set>
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
        if (auto changes = state_.sweep(now); !changes.empty()) {
            sink_.update_counts(state_.completed(), state_.total());
            dispatch_changes(changes, now);
        }
        each([&](auto& d) {
            if constexpr (HasTickHook<std::remove_cvref_t<decltype(d)>>) d.on_tick(state_, now, sink_);
        });
        // after a restore, the first tick with every feed current ends the catching up
        const auto& h = state_.feed_health();
        if (catching_up_ && h.known && h.all_healthy) {
            catching_up_ = false;
            sink_.set_late(false);
        }
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

    // ------------------------------------------------------------------ checkpoints (checkpoint.hpp)

    /// What must survive a restart of the watching process: the report ledger, sequence and counts, the start
    /// (and end) of the watch, per-task facts and the detectors' own state (HasCheckpointHooks).
    /// `pending` are the keys (Report::key) of reports made but not yet handed on (a report waiting for its
    /// evidence): they are left out of the ledger, so that after a restart they are made again rather than lost.
    boost::json::object checkpoint(Timestamp now, const std::set<std::string>& pending = {}) const {
        boost::json::object cp;
        cp["version"] = checkpoint_version;
        cp["context_digest"] = context_digest(state_.context());
        cp["saved_at"] = detail::es_ns(now);
        detail::es_put_time(cp, "started_at", started_at_);
        detail::es_put_time(cp, "finished_at", finished_at_);
        cp["timed_out"] = timed_out_;
        cp["sequence"] = sink_.last_sequence();
        boost::json::object counts;
        for (auto& [t, n] : sink_.counts()) counts[to_string(t)] = n;
        cp["counts"] = std::move(counts);
        boost::json::array ledger;
        for (auto& k : sink_.ledger())
            if (!pending.count(k)) ledger.push_back(boost::json::string(k));
        cp["ledger"] = std::move(ledger);
        cp["tasks"] = tasks_to_json(state_.tasks());
        boost::json::object dets;
        std::apply(
            [&](const auto&... d) {
                auto one = [&](const auto& x) {
                    using D = std::remove_cvref_t<decltype(x)>;
                    if constexpr (HasCheckpointHooks<D>) {
                        boost::json::object o;
                        x.save_checkpoint(o);
                        dets[D::name] = std::move(o);
                    }
                };
                (one(d), ...);
            },
            detectors_);
        cp["detectors"] = std::move(dets);
        return cp;
    }

    /// Resumes from a checkpoint of this run, before any input. Throws CheckpointError (naming the field) when
    /// it is malformed, of another version, or made for another context; the monitor is then unchanged only
    /// if the error came before any part was taken (use a fresh Monitor after a failure). Until the first tick
    /// after the driver reports every feed current again (on_feed_health), the reports made are marked late
    /// (details.late): they became due while nobody watched.
    void restore(const boost::json::object& cp, Timestamp now) {
        using detail::CheckpointFail;
        detail::CheckpointFields f(cp, "", CheckpointFail{});
        if (f.integer("version", 0) != checkpoint_version)
            f.fail("version", "expected " + std::to_string(checkpoint_version));
        if (f.string("context_digest", true) != context_digest(state_.context()))
            f.fail("context_digest", "made for another context (a different run or a changed context file)");
        auto ledger = f.strings("ledger");
        if (ledger.size() > max_checkpoint_ledger) f.fail("ledger", "too many entries");
        auto sequence = f.integer("sequence", 0);
        std::map<ReportType, int> counts;
        if (const auto* c = f.object("counts"))
            for (auto& [k, v] : *c) {
                auto t = report_type_from_string(std::string_view(k));
                if (!t || !v.is_int64() || v.as_int64() < 0 || v.as_int64() > INT32_MAX)
                    f.fail("counts", "bad entry '" + std::string(k).substr(0, 64) + "'");
                counts[*t] = static_cast<int>(v.as_int64());
            }
        std::vector<TaskRecord> tasks;
        if (const auto* a = f.array("tasks")) tasks = tasks_from_json(*a);
        const boost::json::object* dets = f.object("detectors");
        // the detectors' parts are read into copies first: a bad one leaves every detector as it was
        std::tuple<std::optional<Ds>...> staged;
        auto stage = [&](auto& out, const auto& current) {
            using D = std::remove_cvref_t<decltype(current)>;
            if constexpr (HasCheckpointHooks<D>) {
                static_assert(std::copy_constructible<D>, "a detector with checkpoint hooks must be copyable");
                if (!dets) return;
                if (auto* v = dets->if_contains(D::name)) {
                    if (!v->is_object()) f.fail("detectors." + std::string(D::name), "expected an object");
                    out.emplace(current);
                    out->restore_checkpoint(v->as_object());
                }
            }
        };
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (stage(std::get<I>(staged), std::get<I>(detectors_)), ...);
        }(std::index_sequence_for<Ds...>{});
        auto started = detail::es_get_time(f, "started_at");
        auto finished = detail::es_get_time(f, "finished_at");
        bool timed_out = false;
        f.boolean("timed_out", timed_out);
        // everything read: take it over
        auto take = [](auto& staged_one, auto& current) {
            using D = std::remove_cvref_t<decltype(current)>;
            if constexpr (HasCheckpointHooks<D>) {
                static_assert(std::is_move_assignable_v<D>, "a detector with checkpoint hooks must be assignable");
                if (staged_one) current = std::move(*staged_one);
            }
        };
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (take(std::get<I>(staged), std::get<I>(detectors_)), ...);
        }(std::index_sequence_for<Ds...>{});
        state_.restore_tasks(std::move(tasks));
        sink_.restore_ledger(ledger, static_cast<std::uint64_t>(sequence.value_or(0)));
        sink_.restore_counts(counts);
        started_at_ = started ? started : std::optional<Timestamp>(now);
        if (finished) finished_at_ = finished;
        timed_out_ = timed_out;
        catching_up_ = true;
        sink_.set_late(true);
        resumed_ = true;
    }

    /// Grows with every report made and every task change: a checkpoint is due when it moved.
    std::uint64_t revision() const noexcept { return revision_ + sink_.last_sequence(); }
    /// Restored from a checkpoint (restore()).
    bool resumed() const noexcept { return resumed_; }
    /// Restored and not yet current again: reports made now are marked late.
    bool catching_up() const noexcept { return catching_up_; }
    /// When the watch started (the first input, or the restored run's start).
    std::optional<Timestamp> started_at() const noexcept { return started_at_; }

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
        std::vector<TaskChange> changes; // a task's end as the engine tells it (WorkflowState::apply_engine_outcome)
        if (auto sig = parse_engine_line(line.text); sig && sig->id &&
                                                     (sig->kind == EngineSignal::Kind::task_finished ||
                                                      sig->kind == EngineSignal::Kind::task_failed)) {
            changes = state_.apply_engine_outcome({sig->task_type, sig->id->proc_id, sig->task_failed(), sig->exit_code}, now);
            sink_.update_counts(state_.completed(), state_.total());
        }
        each([&](auto& d) {
            if constexpr (HasEngineLogHook<std::remove_cvref_t<decltype(d)>>) d.on_engine_log(state_, line, now, sink_);
        });
        dispatch_changes(changes, now);
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
        s.vanished_tasks = state_.vanished();
        if (s.exit_code && *s.exit_code == 0) {
            int unseen = 0; // the engine exited 0: every inventory task it ran has succeeded
            for (auto& t : state_.tasks())
                if (t.inventory_index && (t.active() || t.status == TaskStatus::vanished)) {
                    ++unseen;
                    if (t.status == TaskStatus::vanished) --s.vanished_tasks;
                }
            s.inferred_completed = unseen;
            s.completed_tasks += unseen;
        }
        auto end = finished_at_ ? *finished_at_ : now;
        if (started_at_ && end > *started_at_) s.duration_seconds = std::chrono::duration<double>(end - *started_at_).count();
        settle_eta(s); // the first ETA's error, once the exit code is known
        s.reports = sink_.counts();
        return s;
    }

    /// Completion seen (exit code known) or timed out.
    bool finished() const noexcept { return finished_at_.has_value(); }
    bool timed_out() const noexcept { return timed_out_; }

    const WorkflowState& state() const noexcept { return state_; }
    /// Baselines learned from past runs (baselines.hpp, history/baselines.hpp), used as the settings say
    /// (baseline_min_samples, baseline_override_factor): every task's expectation is chosen again.
    void set_baselines(Baselines b) {
        state_.set_baselines(std::move(b), BaselineOptions{static_cast<std::size_t>(std::max(1, settings_.baseline_min_samples)),
                                                           settings_.baseline_override_factor});
    }
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
        if (!changes.empty()) ++revision_;
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
    bool resumed_ = false;
    bool catching_up_ = false;
    std::uint64_t revision_ = 0;
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
    ::execution_sentinel::EtaDetector,                                                                                \
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

// Sentinel<Detectors...>: watches one HyperFlow workflow run on Kubernetes until the engine writes its exit code,
// the time limit passes, or the caller cancels; streams reports to any number of subscribers meanwhile.
//
// `watch()` is a thin driver: it turns Kubernetes watch events, completion-file probes, clock ticks
// and API call outcomes into calls on the pure `Monitor<Detectors...>` (monitor.hpp) and publishes the reports the
// monitor makes to the `ReportChannel` (channel.hpp). docs/embedding.md documents every contract.
#ifndef EXECUTION_SENTINEL_SENTINEL_HPP
#define EXECUTION_SENTINEL_SENTINEL_HPP

#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/exec.hpp>
#include <execution_sentinel/kube/logs.hpp>
#include <execution_sentinel/kube/metrics.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/shared_informer.hpp>
#include <execution_sentinel/kube/watcher.hpp>

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/sentinel_policy.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// How the Sentinel talks to the cluster. Aggregate: use designated initializers. The defaults suit a real
/// cluster; tests shorten them.
struct SentinelOptions {
    /// Options of the Kubernetes client. `on_request`, when set, sees every HTTP attempt; it may run on any
    /// thread of the executor. `log` receives the Sentinel's log lines too: a watcher that starts failing
    /// (with the cause and the delay before the next attempt), its cause changing, every 10th failure in a row,
    /// and its recovery. Empty = no log.
    kube::ClientOptions client{};
    /// Backoff between failed list/watch attempts of every watcher (default 0.8 s doubling to 30 s, jitter
    /// never past 30 s, started again once a watch is healthy). Every watcher retries until watch() ends.
    kube::BackoffOptions watch_backoff{};
    /// A quiet watch stream open this long counts as working (for connectivity restoration and task-state
    /// freshness); a stream that delivers an event counts at once. Default 2 s.
    std::chrono::milliseconds stream_settle{2000};
    /// Period of the clock tick that drives time-based detectors (stragglers). Default 1 s; 0 is read as 1 s.
    std::chrono::milliseconds tick_interval{1000};
    /// Limit of one completion-file probe (exec `cat`), connect to exit. Default 30 s; 0 = none.
    std::chrono::milliseconds exec_timeout{30'000};
    /// When the completion file holds an exit code, the run's task pods and Jobs are listed once (consistent
    /// reads), and COMPLETION waits at most this long until the pod and Job feeds have delivered them at least as
    /// new as listed (a feed reconnecting, relisting, holding changes not yet taken, or just slow is behind), so
    /// that the last tasks' ends (an OOM kill, a failure) are told first and counted in the summary. A current
    /// feed costs no wait; a feed that never worked is not waited for. Default 10 s; 0 = no wait and no list.
    std::chrono::milliseconds completion_catch_up{10'000};
    /// Also watch the namespace's Warning Events (OOM and scheduling evidence). Default true.
    bool watch_events = true;
    /// Fail at start instead of retrying: when the API server is unreachable, refuses the credentials or
    /// answers garbage before the first successful list, watch() ends by throwing the kube::Error with the
    /// cause (docs/embedding.md, "Failing fast at start"). Default false: retry until the timeout.
    bool fail_fast = false;
    /// With fail_fast: consecutive transient failures (refused, timeout, 429, 5xx) of one watcher before
    /// watch() gives up at start. Default 3.
    int fail_fast_attempts = 3;
    /// Follow the engine container's log and feed its lines to the detectors. Default true.
    bool follow_engine_log = true;
    /// Limit of one evidence fetch (the log tail of a failed container); also how long watch() waits at its end
    /// for the fetches still running. Default 5 s.
    std::chrono::milliseconds evidence_timeout{5000};
    /// Evidence fetches running at the same time (more wait their turn). Default 4; 0 is read as 1.
    std::size_t evidence_concurrency = 4;
    /// The snapshot Sentinel::view() returns is made again after an input at most this often (and at every
    /// tick). Default 100 ms.
    std::chrono::milliseconds view_interval{100};
    /// Expected durations per task type learned from past runs (history/baselines.hpp: load_baselines), used by
    /// the straggler and stall rules and the ETA as the settings say (docs/history.md, "Baselines"). Default: none.
    Baselines baselines{};
    /// Where the run's checkpoint lives (checkpoint.hpp: the history store, a ConfigMap, memory). When set,
    /// watch() first loads the checkpoint under `checkpoint_key` and resumes from it — no report made before is
    /// made again, what became due meanwhile is reported once with details.late — and saves a new one at most
    /// every `checkpoint_interval` after a report or a task change, and at its end. A checkpoint that cannot be
    /// read or used (malformed, made for another context, of a finished run) is logged and a fresh watch starts.
    AnyCheckpointStore checkpoints{};
    /// The checkpoint to resume from when the caller loaded it already (takes precedence over loading one).
    std::optional<boost::json::object> resume_from{};
    /// The run's key in the store; empty = checkpoint_key(context): "<namespace>/<engine pod or selector>".
    std::string checkpoint_key{};
    /// Saved with every checkpoint under "extra" (e.g. the history run id an application records under).
    boost::json::object checkpoint_extra{};
    /// Least time between two checkpoint saves. Default 200 ms.
    std::chrono::milliseconds checkpoint_interval{200};
    /// Feeds taken from shared informers (kube/shared_informer.hpp) instead of the Sentinel's own watches: task
    /// pods and the engine pod from `pods`, Jobs from `jobs`, Warning Events from `events`, each selected locally by
    /// the context's namespace and selectors (the same objects its own watch would get). Many Sentinels of one
    /// namespace then share one list+watch per kind; relists, deletions found by a relist, connectivity failures
    /// and the "feed current" signal reach each of them as from its own watch (docs/embedding.md, "Sharing
    /// watches"). The informers must run (SharedInformer::run) while watch() runs. Default: none (own watches).
    kube::SharedFeeds shared{};
};

namespace detail {

/// The completion probe from an exec result (pure): the file was read when `cat` exited 0.
inline CompletionProbe completion_probe_from(const kube::ExecResult& r) {
    return completion_probe_from(r.exit_code, r.stdout_data, r.stderr_data);
}

/// A completion probe and what it says about contact with the API (a failed call or not, and why).
struct ProbeOutcome {
    CompletionProbe probe{};
    bool api_failed = false; ///< the API could not be reached or answered garbage
    std::string cause{};
};

/// One step of the engine log follower: a line, the end of the log, or the error that stopped it.
struct EngineLogStep {
    std::optional<kube::LogLine> line{};
    bool ended = false;
    std::optional<kube::Error> error{};
};

/// The next line of `follower`; every outcome but cancellation as a value.
inline boost::asio::awaitable<EngineLogStep> next_engine_log_step(kube::LogFollower& follower) {
    EngineLogStep step;
    try {
        step.line = co_await follower.next();
        step.ended = !step.line;
    } catch (const kube::Error& e) {
        step.error = e;
    }
    co_return step;
}

/// The last `lines` lines of a container's log as evidence; every outcome but cancellation as a value.
inline boost::asio::awaitable<EvidenceOutcome> read_log_tail(kube::Client client, std::string ns, EvidenceRequest request,
                                                             int lines) {
    EvidenceOutcome out;
    try {
        auto tail = co_await kube::tail(client, std::move(ns), std::move(request.pod), std::move(request.container),
                                        std::optional<int>(lines));
        std::vector<std::string> texts;
        texts.reserve(tail.size());
        for (auto& l : tail) texts.push_back(std::move(l.text));
        out.lines = std::move(texts);
    } catch (const kube::Error& e) {
        out.unavailable = evidence_unavailable_reason(e.code(), e.diagnostics().server_message);
    }
    co_return out;
}

} // namespace detail

/// Watches one workflow run. `Ds...` are the detectors (the Detector concept, detector.hpp), dispatched in order
/// without virtual calls. Not copyable or movable. Member functions other than watch() and reports()/
/// subscribe() must not be called while watch() runs, except from the Sentinel's executor when it is
/// single-threaded.
template <Detector... Ds> class Sentinel {
public:
    using executor_type = boost::asio::any_io_executor;
    using monitor_type = Monitor<Ds...>;

    /// Loads the cluster configuration with kube::load_default from settings.kubeconfig and
    /// settings.kube_context. Throws ContextError (invalid context, naming the field) and kube::Error
    /// (configuration not found or invalid).
    Sentinel(executor_type ex, MonitoringContext context, SentinelSettings settings, SentinelOptions options = {})
        requires(std::default_initializable<Ds> && ...)
        : Sentinel(std::move(ex), std::move(context), std::move(settings), std::nullopt, std::move(options), Ds{}...) {}

    /// Uses the given cluster configuration. Throws ContextError.
    Sentinel(executor_type ex, MonitoringContext context, SentinelSettings settings, kube::ClusterConfig cluster,
             SentinelOptions options = {})
        requires(std::default_initializable<Ds> && ...)
        : Sentinel(std::move(ex), std::move(context), std::move(settings), std::optional(std::move(cluster)),
                   std::move(options), Ds{}...) {}

    /// The general form: detectors given as values (configured ones), cluster optional (nullopt = load_default).
    Sentinel(executor_type ex, MonitoringContext context, SentinelSettings settings,
             std::optional<kube::ClusterConfig> cluster, SentinelOptions options, Ds... detectors)
        : executor_(ex), strand_(boost::asio::make_strand(ex)), options_(std::move(options)),
          cluster_(cluster ? std::move(*cluster) : load_cluster(settings)),
          monitor_(std::move(context), std::move(settings), std::move(detectors)...), channel_(ex),
          feeds_(options_.stream_settle), gate_(options_.fail_fast, options_.fail_fast_attempts),
          evidence_(evidence_limits_from(monitor_.settings().evidence_log_lines, monitor_.settings().evidence_log_bytes),
                    options_.evidence_concurrency),
          view_throttle_(options_.view_interval), view_(std::make_shared<const MonitorView>(monitor_.view(Clock::now()))) {
        if (!options_.baselines.empty()) monitor_.set_baselines(options_.baselines);
    }

    Sentinel(const Sentinel&) = delete;
    Sentinel& operator=(const Sentinel&) = delete;

    /// Watches until the engine's exit code is read (summary.exit_code set), the settings' timeout passes
    /// (summary.timed_out, exit_code empty) or the operation is cancelled. Then publishes the last reports
    /// (COMPLETION or TIMEOUT among them), closes the report channel and completes with the summary.
    ///
    /// Errors (thrown): boost::system::system_error(operation_aborted) when cancelled through the awaiting
    /// coroutine's cancellation slot (terminal cancellation, e.g. awaitable operators, co_spawn with
    /// bind_cancellation_slot, asio::cancel_after); every internal coroutine has finished by then and the
    /// channel is closed; summary() still gives the state reached. kube::Error(operation_in_progress) when
    /// watch() was called before on this Sentinel. kube::Error for fatal API failures of the watches (401
    /// after a credential refresh, 403 RBAC, 400) or of the completion probe (401, 403 on pods/exec).
    /// Transient failures (refused or lost connections, 429, 5xx, 410 Expired, garbage answers) never end the
    /// watch: every watcher retries them with backoff until watch() ends, feeds them to the connectivity
    /// detector (with their cause) and logs them (SentinelOptions::client.log). With SentinelOptions::fail_fast,
    /// failures before the first successful list end the watch instead (StartupGate, sentinel_policy.hpp:
    /// unreachable, credentials refused, TLS rejected, garbage answers), with the kube::Error of the cause.
    ///
    /// Runs on a strand of the Sentinel's executor; completes on the awaiting coroutine's executor. The
    /// Sentinel must outlive the operation.
    boost::asio::awaitable<WatchSummary> watch();

    /// The report channel. Subscribe before watch() to see every report (late subscribers see reports from
    /// then on). Closed when watch() ends. A report that needs its evidence (a failed container's log tail,
    /// Report::evidence_request) is published once that was read (at most options.evidence_timeout later), so
    /// it may come after reports made later: order by `sequence` where it matters.
    ReportChannel& reports() noexcept { return channel_; }
    /// Shorthand for reports().subscribe(options).
    ReportSubscription subscribe(SubscriptionOptions options = {}) { return channel_.subscribe(options); }

    /// The summary of what was observed so far (also after a cancelled watch()).
    WatchSummary summary() const { return monitor_.summary(Clock::now()); }
    /// A snapshot of the run (monitor_view.hpp: per phase counts, running tasks with their elapsed time, ETA,
    /// health, anomalies so far). Safe from any thread at any time, also while watch() runs on a multi-threaded
    /// executor: it is a copy of the snapshot the Sentinel makes on its strand after its inputs (at most every
    /// options.view_interval, and at every tick and at the end of watch()). Before watch() it shows the
    /// inventory with nothing started.
    MonitorView view() const {
        std::lock_guard lock(view_mutex_);
        return *view_;
    }
    /// The core, for inspection after watch() (detector state, workflow state).
    const monitor_type& monitor() const noexcept { return monitor_; }
    /// Whether watch() resumed from a checkpoint (SentinelOptions::checkpoints), and why not when it did not
    /// ("" = none was found or none configured). Valid once watch() started.
    bool resumed() const noexcept { return monitor_.resumed(); }
    const std::string& resume_problem() const noexcept { return resume_problem_; }
    /// The engine pod the completion probe addresses now ("" until one is found).
    const std::string& engine_pod() const noexcept { return engine_pod_; }
    const kube::ClusterConfig& cluster() const noexcept { return cluster_; }
    executor_type get_executor() const noexcept { return executor_; }

private:
    using Strand = boost::asio::strand<executor_type>;
    using SteadyTimer = boost::asio::steady_timer;

    static kube::ClusterConfig load_cluster(const SentinelSettings& s) {
        kube::KubeconfigOptions o;
        o.path = s.kubeconfig;
        o.context = s.kube_context;
        return kube::load_default(o);
    }

    const MonitoringContext& context() const noexcept { return monitor_.context(); }

    kube::WatchOptions watch_options(std::string feed, std::string label_selector, std::string field_selector = {}) {
        kube::WatchOptions o;
        o.label_selector = std::move(label_selector);
        o.field_selector = std::move(field_selector);
        o.backoff = options_.watch_backoff;
        o.on_attempt = [this, feed = std::move(feed)](const kube::WatchAttempt& a) { on_attempt(feed, a); };
        return o;
    }

    /// Registers a watcher (or a shared informer's subscription) as a feed while it lives (its health is sampled
    /// at every input and tick).
    template <class W> struct FeedRegistration {
        Sentinel& self;
        std::string name;
        FeedRegistration(Sentinel& s, std::string n, const W& w) : self(s), name(std::move(n)) {
            LiveFeed& f = self.live_feeds_[name];
            f.sample = [&w] {
                return FeedSample{w.synced(), w.streaming(), w.stats().watch_requests, w.stream_events()};
            };
            f.pending = [&w] { return w.pending(); };
            if constexpr (requires { w.status().resource_version; })
                f.resource_version = [&w] { return w.status().resource_version; };
            else
                f.resource_version = [&w] { return w.resource_version(); };
        }
        ~FeedRegistration() {
            self.live_feeds_.erase(name);
            self.feeds_.remove(name);
        }
        FeedRegistration(const FeedRegistration&) = delete;
        FeedRegistration& operator=(const FeedRegistration&) = delete;
    };

    void sample_feeds(Timestamp now) {
        for (auto& [name, live] : live_feeds_) {
            feeds_.sample(name, live.sample(), now);
            if (feeds_.healthy(name, now)) ever_healthy_.insert(name);
        }
        auto h = feeds_.health(now, monitor_.state().feed_health());
        if (!(h == monitor_.state().feed_health())) monitor_.on_feed_health(std::move(h), now);
    }

    void log(const std::string& line) {
        if (options_.client.log) options_.client.log(line);
    }

    /// Every list/watch attempt of every watcher (inside its next(), on the strand): log line, connectivity
    /// input, fail-fast decision (throws the cause to end watch()).
    void on_attempt(const std::string& feed, const kube::WatchAttempt& a) {
        const auto now = Clock::now();
        if (auto line = attempt_log_.on_attempt(feed, a)) log(*line);
        sample_feeds(now);
        const std::string what = std::string(a.kind == kube::WatchAttempt::Kind::list ? "list " : "watch ") + feed;
        monitor_.on_api_call(a.ok, what, a.ok ? std::string() : a.describe(), now);
        publish_reports();
        if (gate_.should_end(feed, a)) {
            auto e = gate_.error_for(a);
            log("sentinel: giving up: " + std::string(e.what()));
            throw e;
        }
    }

    /// Publishes the monitor's new reports; a report that needs its log tail waits for it (evidence_).
    void publish_reports() {
        for (auto& r : monitor_.take_reports()) {
            if (r.evidence_request && evidence_.limits().max_lines > 0) {
                evidence_.add(std::move(r));
                continue;
            }
            if (r.evidence_request) attach_evidence(r, EvidenceOutcome{std::vector<std::string>{}, {}}, evidence_.limits());
            // COMPLETION and TIMEOUT stay the last reports: they wait for the reports still waiting for evidence.
            if ((r.type == ReportType::COMPLETION || r.type == ReportType::TIMEOUT) && !evidence_.empty()) {
                held_final_.push_back(std::move(r));
                continue;
            }
            channel_.publish(std::move(r));
        }
        start_evidence_fetches();
    }

    /// Starts the evidence fetches the queue allows (each in its own coroutine, off the watch path).
    void start_evidence_fetches() {
        if (!client_) return;
        for (auto id : evidence_finished_) evidence_cancel_.erase(id);
        evidence_finished_.clear();
        while (auto fetch = evidence_.next_fetch()) {
            auto signal = std::make_unique<boost::asio::cancellation_signal>();
            auto slot = signal->slot();
            evidence_cancel_[fetch->id] = std::move(signal);
            ++evidence_in_flight_;
            boost::asio::co_spawn(strand_, fetch_evidence(*client_, fetch->request),
                                  boost::asio::bind_cancellation_slot(
                                      slot, [this, id = fetch->id](std::exception_ptr, EvidenceOutcome outcome) {
                                          on_evidence_fetched(id, std::move(outcome));
                                      }));
        }
    }

    void on_evidence_fetched(std::uint64_t id, EvidenceOutcome outcome) {
        --evidence_in_flight_;
        evidence_finished_.push_back(id);
        if (auto r = evidence_.complete(id, outcome)) channel_.publish(std::move(*r));
        start_evidence_fetches();
        if (evidence_wake_) evidence_wake_->cancel();
    }

    /// One log-tail fetch, bounded by options.evidence_timeout; cancellation ends it with the reason.
    boost::asio::awaitable<EvidenceOutcome> fetch_evidence(kube::Client client, EvidenceRequest request) {
        using namespace boost::asio::experimental::awaitable_operators;
        EvidenceOutcome out;
        SteadyTimer limit(strand_);
        limit.expires_after(options_.evidence_timeout);
        try {
            auto r = co_await (detail::read_log_tail(std::move(client), context().namespace_, std::move(request),
                                                     monitor_.settings().evidence_log_lines) ||
                               limit.async_wait(boost::asio::use_awaitable));
            if (r.index() == 0) out = std::move(std::get<0>(r));
            else out.unavailable = "the log could not be read within " +
                                   std::to_string(options_.evidence_timeout.count()) + " ms";
        } catch (const std::exception&) { // cancelled: operation_aborted (both branches: multiple_exceptions)
            out.unavailable = "the watch ended before the log was read";
        }
        co_return out;
    }
    /// One input: the feeds' health sampled, `f` applied to the monitor, its reports published, the view made
    /// again (when due, or always with `force_view`), the checkpoint saver woken.
    template <class F> void feed(F&& f, bool force_view = false) {
        const auto now = Clock::now();
        sample_feeds(now);
        f(now);
        publish_reports();
        refresh_view(now, force_view);
        if (checkpoint_wake_ && monitor_.revision() != saved_revision_) checkpoint_wake_->cancel();
        if (catch_up_wake_) catch_up_wake_->cancel(); // the completion's wait looks at the feeds again
    }

    std::string run_key() const {
        return options_.checkpoint_key.empty() ? checkpoint_key(context()) : options_.checkpoint_key;
    }

    /// Loads the checkpoint and restores the monitor from it; a problem is logged and leaves a fresh watch.
    boost::asio::awaitable<void> resume() {
        std::optional<boost::json::object> cp = std::move(options_.resume_from);
        options_.resume_from.reset();
        if (!cp && options_.checkpoints) {
            try {
                cp = co_await options_.checkpoints.async_load(run_key());
            } catch (const std::exception& e) {
                resume_problem_ = std::string("the checkpoint could not be read: ") + e.what();
            }
        }
        if (cp && cp->if_contains("finished_at")) {
            resume_problem_ = "the checkpoint is of a run that finished";
            cp.reset();
        }
        if (cp) {
            try {
                monitor_.restore(*cp, Clock::now());
                log("sentinel: resumed run " + run_key() + " from its checkpoint (" +
                    std::to_string(monitor_.sink().last_sequence()) + " reports made before)");
            } catch (const CheckpointError& e) {
                resume_problem_ = e.what();
            }
        }
        if (!resume_problem_.empty()) log("sentinel: not resuming run " + run_key() + ": " + resume_problem_ + "; starting afresh");
        saved_revision_ = monitor_.revision();
    }

    /// A checkpoint of the monitor as it is now (reports waiting for evidence left out of its ledger) to the store.
    void save_checkpoint(Timestamp now) {
        std::set<std::string> pending;
        evidence_.keys(pending);
        for (auto& r : held_final_) pending.insert(r.key);
        auto cp = monitor_.checkpoint(now, pending);
        cp["key"] = run_key();
        if (!options_.checkpoint_extra.empty()) cp["extra"] = options_.checkpoint_extra;
        saved_revision_ = monitor_.revision();
        try {
            options_.checkpoints.save(run_key(), std::move(cp));
        } catch (const std::exception& e) {
            log(std::string("sentinel: checkpoint not saved: ") + e.what());
        }
    }

    /// Saves a checkpoint after each change, at most every options.checkpoint_interval.
    boost::asio::awaitable<void> checkpoint_loop() {
        if (!options_.checkpoints) co_return co_await wait_forever();
        SteadyTimer wake(strand_);
        WakeSlot slot(checkpoint_wake_, wake);
        const auto spacing = std::max(options_.checkpoint_interval, std::chrono::milliseconds(1));
        for (;;) {
            if (monitor_.revision() == saved_revision_) {
                wake.expires_at(SteadyTimer::time_point::max());
                co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)); // woken by feed()
                co_await throw_if_cancelled();
            }
            wake.expires_after(spacing);
            co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            co_await throw_if_cancelled();
            if (monitor_.revision() != saved_revision_) save_checkpoint(Clock::now());
        }
    }

    /// Makes the snapshot view() hands out (on the strand), at most every options.view_interval unless forced.
    void refresh_view(Timestamp now, bool force = false) {
        if (!view_throttle_.due(now, force)) return;
        auto v = std::make_shared<const MonitorView>(monitor_.view(now));
        std::lock_guard lock(view_mutex_);
        view_ = std::move(v);
    }

    static boost::asio::awaitable<void> throw_if_cancelled() {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
    }

    boost::asio::awaitable<WatchSummary> run();
    template <class T> boost::asio::awaitable<void> object_loop(kube::Client& client, std::string label_selector);
    template <class T, class Source> boost::asio::awaitable<void> object_feed(Source& source);
    template <class Source> boost::asio::awaitable<void> event_feed(Source& source, bool local_warning_filter);
    template <class Source> boost::asio::awaitable<bool> engine_feed(Source& source, std::string& selector);
    /// The observer a shared informer's subscription calls with every list/watch attempt of the shared watch.
    std::function<void(const kube::WatchAttempt&)> attempt_observer(std::string feed) {
        return [this, feed = std::move(feed)](const kube::WatchAttempt& a) { on_attempt(feed, a); };
    }
    boost::asio::awaitable<void> event_loop(kube::Client& client);
    boost::asio::awaitable<void> engine_loop(kube::Client& client);
    boost::asio::awaitable<void> engine_log_loop(kube::Client& client);
    boost::asio::awaitable<void> metrics_loop(kube::Client& client);
    /// The metrics API's answer is parsed this many bytes, then read and handed to the detectors this many pods,
    /// at a time (each under a millisecond), with the strand's other work let in between.
    static constexpr std::size_t metrics_bite_bytes = 64 * 1024;
    static constexpr std::size_t metrics_bite_pods = 500;
    boost::asio::awaitable<void> wait_forever();
    boost::asio::awaitable<void> poll_loop(kube::Client& client);
    boost::asio::awaitable<void> tick_loop();
    boost::asio::awaitable<void> timeout_loop();
    boost::asio::awaitable<detail::ProbeOutcome> probe_completion(kube::Client& client, std::string pod);
    /// The newest resourceVersion of the run's task pods and Jobs on the apiserver now (consistent lists);
    /// nullopt when they cannot be read or compared (the reason logged).
    struct TaskVersions {
        std::uint64_t pods = 0, jobs = 0;
    };
    boost::asio::awaitable<std::optional<TaskVersions>> read_task_versions(kube::Client& client);
    /// True when the pod and Job feeds are healthy (or never were), every change they received was delivered,
    /// and (with `versions`) they have delivered the objects as the apiserver held them at `versions`.
    bool task_feeds_current(const std::optional<TaskVersions>& versions);
    /// Waits (at most SentinelOptions::completion_catch_up) until task_feeds_current() holds for the task
    /// objects' versions read now.
    boost::asio::awaitable<void> catch_up_task_feeds(kube::Client& client);

    void set_engine_pod(std::string name) {
        if (name == engine_pod_) return;
        engine_pod_ = std::move(name);
        if (!engine_pod_.empty() && poll_timer_) poll_timer_->cancel(); // probe the new engine at once
        if (engine_log_wake_) engine_log_wake_->cancel();                // follow the new engine's log
    }

    executor_type executor_;
    Strand strand_;
    SentinelOptions options_;
    kube::ClusterConfig cluster_;
    monitor_type monitor_;
    ReportChannel channel_;
    FeedTracker feeds_;
    StartupGate gate_;
    AttemptLog attempt_log_;
    /// A live watcher (or shared informer subscription), read through these.
    struct LiveFeed {
        std::function<FeedSample()> sample;               ///< its health, sampled at every input and tick
        std::function<bool()> pending;                    ///< changes received, not yet delivered
        std::function<std::string()> resource_version;    ///< reached: all delivered up to it when not pending
    };
    std::map<std::string, LiveFeed> live_feeds_; ///< by feed name
    std::set<std::string> ever_healthy_; ///< feeds that were healthy at some time
    std::atomic<bool> started_{false};
    std::string engine_pod_;
    boost::asio::steady_timer* poll_timer_ = nullptr;
    boost::asio::steady_timer* engine_log_wake_ = nullptr;
    // Evidence: reports waiting for their log tail, the fetches running (each with its cancellation signal).
    kube::Client* client_ = nullptr; ///< run()'s client while it runs
    EvidenceQueue evidence_;
    std::map<std::uint64_t, std::unique_ptr<boost::asio::cancellation_signal>> evidence_cancel_;
    std::vector<std::uint64_t> evidence_finished_;
    std::size_t evidence_in_flight_ = 0;
    boost::asio::steady_timer* evidence_wake_ = nullptr;
    std::vector<Report> held_final_; ///< COMPLETION / TIMEOUT waiting for the evidence reports before them
    // Checkpoints: the monitor revision last saved, the saver's timer while it waits, its stop signal.
    std::uint64_t saved_revision_ = 0;
    boost::asio::steady_timer* checkpoint_wake_ = nullptr;
    /// Points a timer slot above (poll_timer_, engine_log_wake_, ...) at the timer a loop waits on while it
    /// lives, so that a change elsewhere can wake the loop; clears it when the loop leaves.
    struct WakeSlot {
        boost::asio::steady_timer*& slot;
        WakeSlot(boost::asio::steady_timer*& s, boost::asio::steady_timer& timer) : slot(s) { slot = &timer; }
        ~WakeSlot() { slot = nullptr; }
        WakeSlot(const WakeSlot&) = delete;
        WakeSlot& operator=(const WakeSlot&) = delete;
    };
    boost::asio::steady_timer* catch_up_wake_ = nullptr; ///< the completion's wait for the feeds, while it waits
    std::string resume_problem_;
    // view(): the latest snapshot, replaced on the strand, copied out under the mutex from any thread.
    ViewThrottle view_throttle_;
    mutable std::mutex view_mutex_;
    std::shared_ptr<const MonitorView> view_;
};

template <class Tuple> struct SentinelOf;
template <class... Ds> struct SentinelOf<std::tuple<Ds...>> {
    using type = Sentinel<Ds...>;
};

/// A Sentinel with the built-in detectors (monitor.hpp, DefaultDetectors).
using DefaultSentinel = typename SentinelOf<DefaultDetectors>::type;

// ------------------------------------------------------------------------------------------- implementation

template <Detector... Ds> boost::asio::awaitable<WatchSummary> Sentinel<Ds...>::watch() {
    if (started_.exchange(true)) {
        kube::Diagnostics d;
        d.client_message = "Sentinel::watch() may be called once per Sentinel; create another Sentinel to watch again";
        throw kube::Error(kube::make_error_code(kube::error::operation_in_progress), std::move(d));
    }
    co_return co_await boost::asio::co_spawn(strand_, run(), boost::asio::use_awaitable);
}

template <Detector... Ds> boost::asio::awaitable<WatchSummary> Sentinel<Ds...>::run() {
    kube::Client client(strand_, cluster_, options_.client);
    client_ = &client;
    std::exception_ptr failure;
    co_await resume();
    try {
        feed([&](Timestamp now) { monitor_.on_tick(now); }); // the monitor's clock starts now
        // The first child to finish (completion, timeout, a fatal error, or all of them on cancellation) ends
        // the group: the others are cancelled and awaited, so nothing outlives watch().
        using boost::asio::co_spawn;
        using boost::asio::deferred;
        auto [order, e0, e1, e2, e3, e4, e5, e6, e7, e8, e9] =
            co_await boost::asio::experimental::make_parallel_group(
                co_spawn(strand_, object_loop<kube::Pod>(client, context().task_label_selector), deferred),
                co_spawn(strand_, object_loop<kube::Job>(client, context().task_label_selector), deferred),
                co_spawn(strand_, event_loop(client), deferred), co_spawn(strand_, engine_loop(client), deferred),
                co_spawn(strand_, poll_loop(client), deferred), co_spawn(strand_, tick_loop(), deferred),
                co_spawn(strand_, timeout_loop(), deferred), co_spawn(strand_, engine_log_loop(client), deferred),
                co_spawn(strand_, metrics_loop(client), deferred), co_spawn(strand_, checkpoint_loop(), deferred))
                .async_wait(boost::asio::experimental::wait_for_one(), boost::asio::use_awaitable);
        const std::exception_ptr errors[] = {e0, e1, e2, e3, e4, e5, e6, e7, e8, e9};
        if (errors[order[0]]) std::rethrow_exception(errors[order[0]]);
    } catch (...) {
        failure = std::current_exception();
    }
    poll_timer_ = nullptr;
    engine_log_wake_ = nullptr;
    publish_reports();
    // Reports still waiting for their log tail: after a normal end, the fetches get until their time limit;
    // after a cancellation or an error they are cancelled at once. Either way each such report is published
    // once, with its tail or with the reason it has none, before the channel closes.
    co_await boost::asio::this_coro::reset_cancellation_state();
    {
        SteadyTimer wake(strand_);
        WakeSlot slot(evidence_wake_, wake);
        const auto deadline = SteadyTimer::clock_type::now() + options_.evidence_timeout;
        while (!failure && !evidence_.empty() && SteadyTimer::clock_type::now() < deadline) {
            wake.expires_at(deadline);
            co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        for (auto& [id, signal] : evidence_cancel_) signal->emit(boost::asio::cancellation_type::terminal);
        while (evidence_in_flight_ > 0) { // cancelled fetches end promptly
            wake.expires_after(std::chrono::milliseconds(100));
            co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
    }
    for (auto& r : evidence_.abandon("the watch ended before the log was read")) channel_.publish(std::move(r));
    for (auto& r : held_final_) channel_.publish(std::move(r));
    held_final_.clear();
    evidence_cancel_.clear();
    evidence_finished_.clear();
    client_ = nullptr;
    refresh_view(Clock::now(), true);
    if (options_.checkpoints) save_checkpoint(Clock::now()); // the last one (a finished run is not resumed)
    channel_.close();
    if (failure) std::rethrow_exception(failure);
    co_return monitor_.summary(Clock::now());
}

template <Detector... Ds>
template <class T>
boost::asio::awaitable<void> Sentinel<Ds...>::object_loop(kube::Client& client, std::string label_selector) {
    const std::string feed_name = std::is_same_v<T, kube::Pod> ? "pods" : "jobs";
    std::shared_ptr<kube::SharedInformer<T>> informer;
    if constexpr (std::is_same_v<T, kube::Pod>) informer = options_.shared.pods;
    else informer = options_.shared.jobs;
    if (informer) { // the task selector applied locally to the shared watch
        // (named locals, not temporaries, in the co_await expression: g++ 12 may destroy those twice)
        kube::ObjectFilter filter{context().namespace_, std::move(label_selector), {}};
        auto observer = attempt_observer(feed_name);
        auto subscription = co_await informer->subscribe(std::move(filter), std::move(observer));
        FeedRegistration<kube::InformerSubscription<T>> registration(*this, feed_name, *subscription);
        co_return co_await object_feed<T>(*subscription);
    }
    kube::Watcher<T> watcher(client, context().namespace_, watch_options(feed_name, std::move(label_selector)));
    FeedRegistration<kube::Watcher<T>> registration(*this, feed_name, watcher);
    co_return co_await object_feed<T>(watcher);
}

template <Detector... Ds>
template <class T, class Source>
boost::asio::awaitable<void> Sentinel<Ds...>::object_feed(Source& source) {
    for (;;) {
        auto ev = co_await source.next();
        if (ev.type == kube::WatchEventType::synced) {
            feed([](Timestamp) {});
            continue;
        }
        feed([&](Timestamp now) {
            if constexpr (std::is_same_v<T, kube::Pod>)
                monitor_.on_pod(ev.object, detail::es_change_kind(ev.type), now);
            else
                monitor_.on_job(ev.object, detail::es_change_kind(ev.type), now);
        });
        if (monitor_.finished()) co_return;
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::wait_forever() {
    boost::asio::steady_timer forever(strand_, boost::asio::steady_timer::time_point::max());
    co_await forever.async_wait(boost::asio::use_awaitable);
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::event_loop(kube::Client& client) {
    if (!options_.watch_events) co_return co_await wait_forever();
    // Only Warning Events are evidence (OOM kills, scheduling, back-offs, evictions): the apiserver filters the
    // rest out (field selector type=Warning), a good part of a namespace's Event traffic.
    if (auto informer = options_.shared.events) { // the namespace's Warning Events, from the shared watch
        kube::ObjectFilter filter{context().namespace_, {}, {}};
        auto observer = attempt_observer("events");
        auto subscription = co_await informer->subscribe(std::move(filter), std::move(observer));
        FeedRegistration<kube::InformerSubscription<kube::Event>> registration(*this, "events", *subscription);
        co_return co_await event_feed(*subscription, true);
    }
    kube::Watcher<kube::Event> watcher(client, context().namespace_, watch_options("events", {}, "type=Warning"));
    FeedRegistration<kube::Watcher<kube::Event>> registration(*this, "events", watcher);
    co_return co_await event_feed(watcher, false);
}

template <Detector... Ds>
template <class Source>
boost::asio::awaitable<void> Sentinel<Ds...>::event_feed(Source& source, bool local_warning_filter) {
    for (;;) {
        auto ev = co_await source.next();
        // A deleted Event (expired after its TTL) is no news; neither is a sync.
        if (ev.type != kube::WatchEventType::added && ev.type != kube::WatchEventType::modified) continue;
        // type=Warning, as the field selector of the Sentinel's own watch (a shared watch may carry more)
        if (local_warning_filter && ev.object.type != "Warning") continue;
        feed([&](Timestamp now) { monitor_.on_event(ev.object, now); });
        if (monitor_.finished()) co_return;
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::engine_loop(kube::Client& client) {
    const std::string& name = context().engine_pod_name;
    std::string selector = context().engine_pod_selector;
    for (;;) {
        // By selector (follows a restarted engine), else by name until that pod is gone (sentinel_policy.hpp).
        auto target = detail::engine_watch_target(name, selector);
        if (auto informer = options_.shared.pods) { // the engine pod's selector (or name) applied locally
            kube::ObjectFilter filter{context().namespace_, std::move(target.label_selector), {}};
            if (!target.field_selector.empty()) filter.name = name;
            auto observer = attempt_observer("engine");
            auto subscription = co_await informer->subscribe(std::move(filter), std::move(observer));
            FeedRegistration<kube::InformerSubscription<kube::Pod>> registration(*this, "engine", *subscription);
            co_await engine_feed(*subscription, selector);
            continue;
        }
        kube::Watcher<kube::Pod> watcher(client, context().namespace_,
                                         watch_options("engine", std::move(target.label_selector),
                                                       std::move(target.field_selector)));
        FeedRegistration<kube::Watcher<kube::Pod>> registration(*this, "engine", watcher);
        co_await engine_feed(watcher, selector);
    }
}

/// Follows the engine pod through `source` until the selector to watch by changes (then returns true).
template <Detector... Ds>
template <class Source>
boost::asio::awaitable<bool> Sentinel<Ds...>::engine_feed(Source& source, std::string& selector) {
    const std::string& name = context().engine_pod_name;
    for (;;) {
        auto ev = co_await source.next();
        if (!source.synced()) continue;
        set_engine_pod(detail::choose_engine_pod(source.store().list(), name));
        // The named engine pod was deleted: follow its Deployment by its labels, if it has any.
        if (auto next = detail::engine_follow_after(ev.type, ev.object, engine_pod_, selector)) {
            selector = std::move(*next);
            co_return true;
        }
    }
}

template <Detector... Ds>
boost::asio::awaitable<detail::ProbeOutcome> Sentinel<Ds...>::probe_completion(kube::Client& client, std::string pod) {
    kube::ExecRequest req;
    req.namespace_ = context().namespace_;
    req.pod = std::move(pod);
    req.container = context().engine_container;
    req.command = {"cat", context().completion_signal_path};
    req.timeout = options_.exec_timeout;
    req.max_output_bytes = 4096; // an exit code and a newline
    detail::ProbeOutcome out;
    try {
        out.probe = detail::completion_probe_from(co_await kube::exec(client, std::move(req)));
    } catch (const kube::Error& e) {
        if (detail::probe_error_ends_watch(e.code())) throw;
        out.probe.error = e.what();
        out.api_failed = detail::probe_error_is_connectivity(e.code());
        out.cause = e.code().message() + ": " + e.diagnostics().to_string();
    } catch (const boost::system::system_error& e) {
        if (e.code() == boost::asio::error::operation_aborted) throw;
        out.probe.error = e.what();
        out.api_failed = true;
        out.cause = e.what();
    }
    co_return out;
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::poll_loop(kube::Client& client) {
    boost::asio::steady_timer timer(strand_);
    WakeSlot slot(poll_timer_, timer);
    const auto interval = std::max(monitor_.settings().poll_interval, std::chrono::milliseconds(1));
    for (;;) {
        if (!engine_pod_.empty()) {
            auto outcome = co_await probe_completion(client, engine_pod_);
            if (!monitor_.finished() && outcome.probe.file_found && parse_exit_code(outcome.probe.content))
                co_await catch_up_task_feeds(client);
            feed([&](Timestamp now) {
                monitor_.on_api_call(!outcome.api_failed, "exec completion probe", outcome.cause, now);
                monitor_.on_completion_probe(outcome.probe, now);
            });
            if (monitor_.finished()) co_return;
        }
        timer.expires_after(interval);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)); // woken early by set_engine_pod
        co_await throw_if_cancelled();
    }
}

template <Detector... Ds>
boost::asio::awaitable<std::optional<typename Sentinel<Ds...>::TaskVersions>>
Sentinel<Ds...>::read_task_versions(kube::Client& client) {
    TaskVersions v;
    try {
        auto pods = co_await kube::newest_resource_version<kube::Pod>(client, context().namespace_,
                                                                      context().task_label_selector);
        auto jobs = co_await kube::newest_resource_version<kube::Job>(client, context().namespace_,
                                                                      context().task_label_selector);
        if (!pods || !jobs) {
            log("sentinel: the task objects' resourceVersions are not numbers; completion waits only for the "
                "changes already received");
            co_return std::nullopt;
        }
        v.pods = *pods;
        v.jobs = *jobs;
    } catch (const kube::Error& e) {
        log("sentinel: the task objects could not be listed at completion (" + std::string(e.what()) +
            "); completion waits only for the changes already received");
        co_return std::nullopt;
    }
    co_return v;
}

template <Detector... Ds> bool Sentinel<Ds...>::task_feeds_current(const std::optional<TaskVersions>& versions) {
    const auto now = Clock::now();
    sample_feeds(now);
    for (const std::string name : {"pods", "jobs"}) {
        // a feed that never worked (its watch forbidden, say) is not waited for: it would not come
        if (!ever_healthy_.count(name)) continue;
        if (!feeds_.healthy(name, now)) return false;
        auto live = live_feeds_.find(name);
        if (live != live_feeds_.end() && live->second.pending()) return false;
        if (!versions) continue;
        const std::uint64_t target = name == "pods" ? versions->pods : versions->jobs;
        if (target == 0) continue; // no such object
        if (live == live_feeds_.end()) return false;
        auto reached = kube::detail::numeric_resource_version(live->second.resource_version());
        if (!reached || *reached < target) return false;
    }
    return true;
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::catch_up_task_feeds(kube::Client& client) {
    using namespace boost::asio::experimental::awaitable_operators;
    if (options_.completion_catch_up.count() <= 0) co_return;
    const auto deadline = SteadyTimer::clock_type::now() + options_.completion_catch_up;
    SteadyTimer wait(strand_);
    // What the apiserver holds now: the feeds must have delivered the task objects at least as new as this, or
    // a change still on its way (in a socket, a queue, a relist) would be missed by the summary.
    std::optional<TaskVersions> versions;
    std::optional<std::string> failed;
    wait.expires_at(deadline);
    try {
        auto read = read_task_versions(client);
        auto expiry = wait.async_wait(boost::asio::use_awaitable);
        auto first = co_await (std::move(read) || std::move(expiry));
        if (first.index() == 0) versions = std::get<0>(first);
        else log("sentinel: the task objects could not be listed at completion within " +
                 std::to_string(options_.completion_catch_up.count()) + " ms");
    } catch (const std::exception& e) { // cancelled (both branches: multiple_exceptions), or a failure
        failed = e.what();
    }
    if (failed) {
        co_await throw_if_cancelled();
        log("sentinel: the task objects could not be listed at completion (" + *failed + ")");
    }
    for (;;) {
        publish_reports();
        if (monitor_.finished() || task_feeds_current(versions)) co_return;
        if (SteadyTimer::clock_type::now() >= deadline) {
            std::string which;
            for (auto& f : monitor_.state().feed_health().unhealthy) which += (which.empty() ? "" : ", ") + f;
            log("sentinel: the completion file was read while the task feeds were not current (" +
                (which.empty() ? std::string("changes not yet taken") : which) + "); telling the completion after " +
                std::to_string(options_.completion_catch_up.count()) + " ms");
            co_return;
        }
        // Woken by the next input of any feed (feed()); a resourceVersion reached by a bookmark alone, or a
        // feed's health changing with time, is seen within 100 ms.
        wait.expires_at(std::min(deadline, SteadyTimer::clock_type::now() + std::chrono::milliseconds(100)));
        WakeSlot slot(catch_up_wake_, wait);
        co_await wait.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        co_await throw_if_cancelled();
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::tick_loop() {
    boost::asio::steady_timer timer(strand_);
    auto interval = options_.tick_interval.count() > 0 ? options_.tick_interval : std::chrono::milliseconds(1000);
    for (;;) {
        timer.expires_after(interval);
        co_await timer.async_wait(boost::asio::use_awaitable);
        feed([&](Timestamp now) { monitor_.on_tick(now); }, true); // the view made once per tick, not twice
        if (monitor_.finished()) co_return;
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::engine_log_loop(kube::Client& client) {
    if (!options_.follow_engine_log) co_return co_await wait_forever();
    using Steady = SteadyTimer::clock_type;
    SteadyTimer wake(strand_);
    WakeSlot slot(engine_log_wake_, wake);
    std::string done_pod; // the log of this pod ended or cannot be read: wait for another engine pod
    // The time of the last line delivered per pod followed before: an engine pod that becomes the engine again
    // is read on from there (sinceTime, and lines up to that instant dropped), not from its beginning again.
    std::map<std::string, Timestamp> resume;
    for (;;) {
        const std::string pod = engine_pod_;
        if (pod.empty() || pod == done_pod) {
            wake.expires_at(Steady::time_point::max());
            co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)); // woken by set_engine_pod
            co_await throw_if_cancelled();
            continue;
        }
        // A new engine pod's log is read from its beginning; the follower reopens after a lost connection or a
        // container restart with sinceTime and drops the lines it already delivered.
        kube::LogRequest request;
        request.namespace_ = context().namespace_;
        request.pod = pod;
        request.container = context().engine_container;
        request.max_line_bytes = engine_log_max_line_bytes;
        std::optional<Timestamp> skip_through;
        if (auto it = resume.find(pod); it != resume.end()) skip_through = request.since_time = it->second;
        kube::LogFollower follower(client, std::move(request));
        std::optional<Steady::time_point> drain_until; // the engine moved: the old pod's last lines, then switch
        for (;;) {
            if (!drain_until && engine_pod_ != pod) drain_until = Steady::now() + engine_log_drain_grace;
            wake.expires_at(drain_until ? *drain_until : Steady::time_point::max());
            // Both results are looked at: a line that was ready when the wake-up came is never lost.
            auto [order, e_line, step, ec_wake] =
                co_await boost::asio::experimental::make_parallel_group(
                    boost::asio::co_spawn(strand_, detail::next_engine_log_step(follower), boost::asio::deferred),
                    wake.async_wait(boost::asio::deferred))
                    .async_wait(boost::asio::experimental::wait_for_one(), boost::asio::use_awaitable);
            (void)order;
            (void)ec_wake;
            co_await throw_if_cancelled();
            if (e_line) { // interrupted by the wake-up: a pod change, or the old pod's grace is over
                if (drain_until && Steady::now() >= *drain_until) break;
                continue;
            }
            if (step.line) {
                if (skip_through && step.line->time <= *skip_through) continue; // delivered before
                skip_through.reset();
                if (resume.size() >= 16 && !resume.count(pod)) resume.erase(resume.begin());
                resume[pod] = step.line->time;
                feed([&](Timestamp now) { monitor_.on_engine_log(*step.line, now); });
                continue;
            }
            if (step.ended) {
                done_pod = pod;
                break;
            }
            const auto retry = engine_log_retry_after(step.error->code());
            log("sentinel: engine log of pod " + pod + ": " + std::string(step.error->what()) +
                (retry ? "; trying again in " + AttemptLog::format_delay(*retry)
                       : std::string("; not read until the engine moves to another pod")));
            if (!retry) {
                done_pod = pod;
                break;
            }
            wake.expires_after(*retry);
            co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            co_await throw_if_cancelled();
        }
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::metrics_loop(kube::Client& client) {
    const auto interval = monitor_.settings().metrics_interval;
    if (interval <= std::chrono::milliseconds::zero()) co_return co_await wait_forever();
    MetricsPolicy policy(interval);
    const std::string target = kube::pod_metrics_target(context().namespace_, context().task_label_selector);
    const kube::MetricsLimits limits{};
    SteadyTimer timer(strand_);
    for (;;) {
        MetricsStep step;
        try {
            kube::RequestOptions ro;
            ro.max_retries = 0; // the next period is the retry
            ro.max_response_bytes = limits.max_body_bytes;
            std::string no_body;
            auto answer = co_await client.request(boost::beast::http::verb::get, target, std::move(no_body), std::move(ro));
            try {
                // The answer holds every task pod (5 MB for 10,000): read in bites, letting the watch events and
                // timers queued on the strand run between them, so that none waits for the whole of it.
                kube::PodMetricsListReader reader(limits);
                const std::string_view body(answer.body);
                for (std::size_t at = 0; at < body.size(); at += metrics_bite_bytes) {
                    reader.feed(body.substr(at, metrics_bite_bytes));
                    co_await boost::asio::post(strand_, boost::asio::use_awaitable);
                }
                reader.finish();
                while (!reader.done()) {
                    reader.read(metrics_bite_pods);
                    co_await boost::asio::post(strand_, boost::asio::use_awaitable);
                }
                step = policy.on_answer(reader.take());
            } catch (const kube::MetricsParseError& e) {
                step = policy.on_malformed(e.what());
            }
        } catch (const kube::Error& e) {
            step = policy.on_failure(e.code(), e.diagnostics().http_status, e.what());
        }
        if (step.log_line) log(*step.log_line);
        if (step.sample.pods.size() <= metrics_bite_pods) {
            feed([&](Timestamp now) { monitor_.on_metrics(step.sample, now); });
        } else {
            // to the detectors in parts too (MetricsSample::continued)
            MetricsSample part;
            auto& pods = step.sample.pods;
            for (std::size_t at = 0; at < pods.size(); at += metrics_bite_pods) {
                const std::size_t end = std::min(pods.size(), at + metrics_bite_pods);
                part.pods.assign(std::make_move_iterator(pods.begin() + static_cast<std::ptrdiff_t>(at)),
                                 std::make_move_iterator(pods.begin() + static_cast<std::ptrdiff_t>(end)));
                part.continued = at > 0;
                feed([&](Timestamp now) { monitor_.on_metrics(part, now); });
                co_await boost::asio::post(strand_, boost::asio::use_awaitable);
            }
        }
        timer.expires_after(step.next_in);
        co_await timer.async_wait(boost::asio::use_awaitable);
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::timeout_loop() {
    boost::asio::steady_timer timer(strand_);
    // a resumed run's limit counts from its first start
    auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(monitor_.settings().timeout);
    if (auto started = monitor_.started_at(); started && monitor_.resumed())
        limit -= std::chrono::duration_cast<std::chrono::steady_clock::duration>(Clock::now() - *started);
    timer.expires_after(std::max(limit, std::chrono::steady_clock::duration::zero()));
    co_await timer.async_wait(boost::asio::use_awaitable);
    feed([&](Timestamp now) { monitor_.on_timeout(now); });
}

} // namespace execution_sentinel

// DefaultMonitor and DefaultSentinel are compiled once by <execution_sentinel/src.hpp> under
// EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#if EXECUTION_SENTINEL_EXTERN_TEMPLATES
namespace execution_sentinel {
extern template class Monitor<EXECUTION_SENTINEL_DEFAULT_DETECTORS>;
extern template class Sentinel<EXECUTION_SENTINEL_DEFAULT_DETECTORS>;
} // namespace execution_sentinel
#endif

#endif // EXECUTION_SENTINEL_SENTINEL_HPP

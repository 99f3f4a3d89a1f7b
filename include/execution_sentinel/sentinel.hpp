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
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/watcher.hpp>

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// How the Sentinel talks to the cluster. Aggregate: use designated initializers. The defaults suit a real
/// cluster; tests shorten them.
struct SentinelOptions {
    /// Options of the Kubernetes client. `on_request`, when set, is called after the Sentinel's own observer
    /// (which feeds the connectivity detector); it may run on any thread of the executor.
    kube::ClientOptions client{};
    /// Backoff between failed list/watch attempts of every watcher (default 0.8 s doubling to 30 s, jitter).
    kube::BackoffOptions watch_backoff{};
    /// Period of the clock tick that drives time-based detectors (stragglers). Default 1 s; 0 is read as 1 s.
    std::chrono::milliseconds tick_interval{1000};
    /// Limit of one completion-file probe (exec `cat`), connect to exit. Default 30 s; 0 = none.
    std::chrono::milliseconds exec_timeout{30'000};
    /// Also watch the namespace's Events (OOM and scheduling evidence). Default true.
    bool watch_events = true;
};

namespace detail {

inline ChangeKind es_change_kind(kube::WatchEventType t) noexcept {
    switch (t) {
    case kube::WatchEventType::added: return ChangeKind::added;
    case kube::WatchEventType::deleted: return ChangeKind::deleted;
    default: return ChangeKind::modified;
    }
}

/// The engine pod among the pods the engine watcher sees (pure): not being deleted and not finished; Running
/// before Pending; then `preferred` (the context's engine_pod_name); then the newest. Empty when none.
inline std::string choose_engine_pod(const std::vector<const kube::Pod*>& pods, std::string_view preferred) {
    const kube::Pod* best = nullptr;
    auto rank = [&](const kube::Pod& p) {
        return std::tuple(p.phase == kube::PodPhase::running, !preferred.empty() && p.meta.name == preferred,
                          p.meta.creation_timestamp, p.meta.name);
    };
    for (const kube::Pod* p : pods) {
        if (p->meta.deletion_timestamp) continue;
        if (p->phase == kube::PodPhase::succeeded || p->phase == kube::PodPhase::failed) continue;
        if (!best || rank(*p) > rank(*best)) best = p;
    }
    return best ? best->meta.name : std::string();
}

/// A label selector that finds the replacement of an engine pod known only by name: its `component` label
/// (HyperFlow's engine Deployment sets component=hyperflow-engine), else its `app` + `name` labels; empty
/// when the pod has none of them (pure).
inline std::string engine_follow_selector(const kube::Labels& labels) {
    if (auto* c = labels.find("component")) return "component=" + *c;
    auto* app = labels.find("app");
    auto* name = labels.find("name");
    if (app && name) return "app=" + *app + ",name=" + *name;
    return {};
}

/// The completion probe from an exec result (pure): the file was read when `cat` exited 0.
inline CompletionProbe completion_probe_from(const kube::ExecResult& r) {
    CompletionProbe p;
    if (r.exit_code == 0) {
        p.file_found = true;
        p.content = r.stdout_data;
    } else {
        p.error = "cat exited with status " + std::to_string(r.exit_code);
        if (!r.stderr_data.empty()) p.error += ": " + r.stderr_data.substr(0, 300);
    }
    return p;
}

/// API call outcomes recorded by the client's observer (any thread) and fed to the monitor on its strand.
/// Bounded: past `max_entries`, the oldest outcomes are dropped (the connectivity detector needs only
/// the recent run of failures).
class ApiCallLog {
public:
    struct Entry {
        bool ok = false;
        std::string what;
        Timestamp at{};
    };
    static constexpr std::size_t max_entries = 1024;

    void record(bool ok, std::string what, Timestamp at) {
        std::lock_guard lock(mutex_);
        if (!active_) return;
        if (entries_.size() >= max_entries) entries_.erase(entries_.begin(), entries_.begin() + max_entries / 2);
        entries_.push_back({ok, std::move(what), at});
    }
    std::vector<Entry> take() {
        std::lock_guard lock(mutex_);
        return std::exchange(entries_, {});
    }
    void set_active(bool active) {
        std::lock_guard lock(mutex_);
        active_ = active;
        if (!active) entries_.clear();
    }

private:
    std::mutex mutex_;
    std::vector<Entry> entries_;
    bool active_ = false;
};

/// Whether an HTTP attempt counts as the API answering (for the connectivity detector): anything but a
/// transport failure, 429 or 5xx. A 404 or 403 is an answer.
inline bool api_answered(const kube::RequestOutcome& o) noexcept { return !kube::is_retryable(o.ec); }

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
          api_log_(std::make_shared<detail::ApiCallLog>()) {}

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
    /// Transient failures (refused or lost connections, 429, 5xx, 410 Expired) never end the watch: they are
    /// retried with backoff and fed to the connectivity detector.
    ///
    /// Runs on a strand of the Sentinel's executor; completes on the awaiting coroutine's executor. The
    /// Sentinel must outlive the operation.
    boost::asio::awaitable<WatchSummary> watch();

    /// The report channel. Subscribe before watch() to see every report (late subscribers see reports from
    /// then on). Closed when watch() ends.
    ReportChannel& reports() noexcept { return channel_; }
    /// Shorthand for reports().subscribe(options).
    ReportSubscription subscribe(SubscriptionOptions options = {}) { return channel_.subscribe(options); }

    /// The summary of what was observed so far (also after a cancelled watch()).
    WatchSummary summary() const { return monitor_.summary(Clock::now()); }
    /// The core, for inspection after watch() (detector state, workflow state).
    const monitor_type& monitor() const noexcept { return monitor_; }
    /// The engine pod the completion probe addresses now ("" until one is found).
    const std::string& engine_pod() const noexcept { return engine_pod_; }
    const kube::ClusterConfig& cluster() const noexcept { return cluster_; }
    executor_type get_executor() const noexcept { return executor_; }

private:
    using Strand = boost::asio::strand<executor_type>;

    static kube::ClusterConfig load_cluster(const SentinelSettings& s) {
        kube::KubeconfigOptions o;
        o.path = s.kubeconfig;
        o.context = s.kube_context;
        return kube::load_default(o);
    }

    const MonitoringContext& context() const noexcept { return monitor_.context(); }

    kube::WatchOptions watch_options(std::string label_selector, std::string field_selector = {}) const {
        kube::WatchOptions o;
        o.label_selector = std::move(label_selector);
        o.field_selector = std::move(field_selector);
        o.backoff = options_.watch_backoff;
        return o;
    }

    /// Feeds the API outcomes recorded since the last call, then publishes the monitor's reports.
    void drain_api_calls() {
        for (auto& e : api_log_->take()) monitor_.on_api_call(e.ok, e.what, e.at);
    }
    void publish_reports() {
        for (auto& r : monitor_.take_reports()) channel_.publish(std::move(r));
    }
    template <class F> void feed(F&& f) {
        drain_api_calls();
        f(Clock::now());
        publish_reports();
    }

    static boost::asio::awaitable<void> throw_if_cancelled() {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
    }

    boost::asio::awaitable<WatchSummary> run();
    template <class T> boost::asio::awaitable<void> object_loop(kube::Client& client, std::string label_selector);
    boost::asio::awaitable<void> event_loop(kube::Client& client);
    boost::asio::awaitable<void> engine_loop(kube::Client& client);
    boost::asio::awaitable<void> poll_loop(kube::Client& client);
    boost::asio::awaitable<void> tick_loop();
    boost::asio::awaitable<void> timeout_loop();
    boost::asio::awaitable<CompletionProbe> probe_completion(kube::Client& client, std::string pod);

    void set_engine_pod(std::string name) {
        if (name == engine_pod_) return;
        engine_pod_ = std::move(name);
        if (!engine_pod_.empty() && poll_timer_) poll_timer_->cancel(); // probe the new engine at once
    }

    executor_type executor_;
    Strand strand_;
    SentinelOptions options_;
    kube::ClusterConfig cluster_;
    monitor_type monitor_;
    ReportChannel channel_;
    std::shared_ptr<detail::ApiCallLog> api_log_;
    std::atomic<bool> started_{false};
    std::string engine_pod_;
    boost::asio::steady_timer* poll_timer_ = nullptr;
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
    kube::ClientOptions copts = options_.client;
    auto log = api_log_;
    copts.on_request = [log, user = options_.client.on_request](const kube::RequestOutcome& o) {
        log->record(detail::api_answered(o), o.resource, Clock::now());
        if (user) user(o);
    };
    api_log_->set_active(true);
    kube::Client client(strand_, cluster_, std::move(copts));
    std::exception_ptr failure;
    try {
        feed([&](Timestamp now) { monitor_.on_tick(now); }); // the monitor's clock starts now
        // The first child to finish (completion, timeout, a fatal error, or all of them on cancellation) ends
        // the group: the others are cancelled and awaited, so nothing outlives watch().
        using boost::asio::co_spawn;
        using boost::asio::deferred;
        auto [order, e0, e1, e2, e3, e4, e5, e6] =
            co_await boost::asio::experimental::make_parallel_group(
                co_spawn(strand_, object_loop<kube::Pod>(client, context().task_label_selector), deferred),
                co_spawn(strand_, object_loop<kube::Job>(client, context().task_label_selector), deferred),
                co_spawn(strand_, event_loop(client), deferred), co_spawn(strand_, engine_loop(client), deferred),
                co_spawn(strand_, poll_loop(client), deferred), co_spawn(strand_, tick_loop(), deferred),
                co_spawn(strand_, timeout_loop(), deferred))
                .async_wait(boost::asio::experimental::wait_for_one(), boost::asio::use_awaitable);
        const std::exception_ptr errors[] = {e0, e1, e2, e3, e4, e5, e6};
        if (errors[order[0]]) std::rethrow_exception(errors[order[0]]);
    } catch (...) {
        failure = std::current_exception();
    }
    poll_timer_ = nullptr;
    api_log_->set_active(false);
    publish_reports();
    channel_.close();
    if (failure) std::rethrow_exception(failure);
    co_return monitor_.summary(Clock::now());
}

template <Detector... Ds>
template <class T>
boost::asio::awaitable<void> Sentinel<Ds...>::object_loop(kube::Client& client, std::string label_selector) {
    kube::Watcher<T> watcher(client, context().namespace_, watch_options(std::move(label_selector)));
    for (;;) {
        auto ev = co_await watcher.next();
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

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::event_loop(kube::Client& client) {
    if (!options_.watch_events) {
        boost::asio::steady_timer forever(strand_, boost::asio::steady_timer::time_point::max());
        co_await forever.async_wait(boost::asio::use_awaitable);
        co_return;
    }
    kube::Watcher<kube::Event> watcher(client, context().namespace_, watch_options({}));
    for (;;) {
        auto ev = co_await watcher.next();
        // A deleted Event (expired after its TTL) is no news; neither is a sync.
        if (ev.type != kube::WatchEventType::added && ev.type != kube::WatchEventType::modified) continue;
        feed([&](Timestamp now) { monitor_.on_event(ev.object, now); });
        if (monitor_.finished()) co_return;
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::engine_loop(kube::Client& client) {
    const std::string& name = context().engine_pod_name;
    std::string selector = context().engine_pod_selector;
    for (;;) {
        // By selector (follows a restarted engine), else by name until that pod is gone.
        kube::Watcher<kube::Pod> watcher(client, context().namespace_,
                                         selector.empty() ? watch_options({}, "metadata.name=" + name)
                                                          : watch_options(selector));
        for (;;) {
            auto ev = co_await watcher.next();
            if (!watcher.synced()) continue;
            set_engine_pod(detail::choose_engine_pod(watcher.store().list(), name));
            if (engine_pod_.empty() && selector.empty() && ev.type == kube::WatchEventType::deleted) {
                // The named engine pod was deleted: follow its Deployment by its labels, if it has any.
                selector = detail::engine_follow_selector(ev.object.meta.labels);
                if (!selector.empty()) break;
            }
        }
    }
}

template <Detector... Ds>
boost::asio::awaitable<CompletionProbe> Sentinel<Ds...>::probe_completion(kube::Client& client, std::string pod) {
    kube::ExecRequest req;
    req.namespace_ = context().namespace_;
    req.pod = std::move(pod);
    req.container = context().engine_container;
    req.command = {"cat", context().completion_signal_path};
    req.timeout = options_.exec_timeout;
    req.max_output_bytes = 4096; // an exit code and a newline
    CompletionProbe probe;
    try {
        probe = detail::completion_probe_from(co_await kube::exec(client, std::move(req)));
    } catch (const kube::Error& e) {
        const auto ec = e.code();
        if (ec == kube::error::forbidden || ec == kube::error::unauthorized) throw;
        probe.error = e.what();
    } catch (const boost::system::system_error& e) {
        if (e.code() == boost::asio::error::operation_aborted) throw;
        probe.error = e.what();
    }
    co_return probe;
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::poll_loop(kube::Client& client) {
    boost::asio::steady_timer timer(strand_);
    poll_timer_ = &timer;
    struct Reset {
        boost::asio::steady_timer*& p;
        ~Reset() { p = nullptr; }
    } reset{poll_timer_};
    const auto interval = std::max(monitor_.settings().poll_interval, std::chrono::milliseconds(1));
    for (;;) {
        if (!engine_pod_.empty()) {
            auto probe = co_await probe_completion(client, engine_pod_);
            feed([&](Timestamp now) { monitor_.on_completion_probe(probe, now); });
            if (monitor_.finished()) co_return;
        }
        timer.expires_after(interval);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable)); // woken early by set_engine_pod
        co_await throw_if_cancelled();
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::tick_loop() {
    boost::asio::steady_timer timer(strand_);
    auto interval = options_.tick_interval.count() > 0 ? options_.tick_interval : std::chrono::milliseconds(1000);
    for (;;) {
        timer.expires_after(interval);
        co_await timer.async_wait(boost::asio::use_awaitable);
        feed([&](Timestamp now) { monitor_.on_tick(now); });
        if (monitor_.finished()) co_return;
    }
}

template <Detector... Ds> boost::asio::awaitable<void> Sentinel<Ds...>::timeout_loop() {
    boost::asio::steady_timer timer(strand_);
    timer.expires_after(monitor_.settings().timeout);
    co_await timer.async_wait(boost::asio::use_awaitable);
    feed([&](Timestamp now) { monitor_.on_timeout(now); });
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SENTINEL_HPP

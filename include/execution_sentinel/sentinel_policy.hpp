// The decisions of Sentinel::watch() (sentinel.hpp), out of the I/O: which pod is the engine and how to find
// its replacement, what a completion probe or its error means, how healthy the watches are (for connectivity
// and staleness), when to fail fast at start, and when a watcher's failures deserve a log line. Pure: no I/O,
// no clock (`now` is an argument), unit-tested on their own (tests/unit/sentinel_policy_test.cpp).
#ifndef EXECUTION_SENTINEL_SENTINEL_POLICY_HPP
#define EXECUTION_SENTINEL_SENTINEL_POLICY_HPP

#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace execution_sentinel {


namespace detail {

// ------------------------------------------------------------------------------------------- watch events

inline ChangeKind es_change_kind(kube::WatchEventType t) noexcept {
    switch (t) {
    case kube::WatchEventType::added: return ChangeKind::added;
    case kube::WatchEventType::deleted: return ChangeKind::deleted;
    default: return ChangeKind::modified;
    }
}

// ------------------------------------------------------------------------------------------- the engine pod

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

/// What the engine watcher watches: by label selector when one is known (it follows a restarted engine),
/// else the one pod by name (field selector metadata.name=NAME).
struct EngineWatchTarget {
    std::string label_selector{};
    std::string field_selector{};
    friend bool operator==(const EngineWatchTarget&, const EngineWatchTarget&) = default;
};

inline EngineWatchTarget engine_watch_target(std::string_view engine_pod_name, std::string_view selector) {
    if (!selector.empty()) return {std::string(selector), {}};
    return {{}, "metadata.name=" + std::string(engine_pod_name)};
}

/// After an event of the engine watcher: the selector to switch to, or nullopt to keep watching as now. Only a
/// watch by name switches, when the named pod was deleted and no live engine pod is left, to the labels of
/// the deleted pod (engine_follow_selector); a pod without such labels cannot be followed (pure).
inline std::optional<std::string> engine_follow_after(kube::WatchEventType type, const kube::Pod& pod,
                                                      std::string_view chosen_engine_pod,
                                                      std::string_view current_selector) {
    if (!current_selector.empty() || !chosen_engine_pod.empty() || type != kube::WatchEventType::deleted)
        return std::nullopt;
    auto selector = engine_follow_selector(pod.meta.labels);
    if (selector.empty()) return std::nullopt;
    return selector;
}

// ------------------------------------------------------------------------------------------- completion probe

/// The completion probe from the exit status and output of `cat <signal file>` (pure): the file was read when
/// `cat` exited 0.
inline CompletionProbe completion_probe_from(int exit_code, const std::string& stdout_data,
                                             const std::string& stderr_data) {
    CompletionProbe p;
    if (exit_code == 0) {
        p.file_found = true;
        p.content = stdout_data;
    } else {
        p.error = "cat exited with status " + std::to_string(exit_code);
        if (!stderr_data.empty()) p.error += ": " + stderr_data.substr(0, 300);
    }
    return p;
}

/// Whether an error of the completion probe ends the watch (pure): the credentials were refused (401 after a
/// refresh) or RBAC denies pods/exec (403). Everything else (pod gone, container not ready, transient
/// failures) is an informational probe error, and the next poll tries again.
inline bool probe_error_ends_watch(const std::error_code& ec) noexcept {
    return ec == kube::error::forbidden || ec == kube::error::unauthorized;
}

/// Whether a probe error means the API could not be reached or answered garbage (a failed call for the
/// connectivity detector), as opposed to an answer about the pod (pure).
inline bool probe_error_is_connectivity(const std::error_code& ec) noexcept {
    return kube::is_retryable(ec) || ec == kube::error::malformed_response;
}

} // namespace detail

// ------------------------------------------------------------------------------------------- feed health

/// What the driver samples of one watch (a "feed"): Watcher::synced(), streaming(), the number of the current
/// stream (stats().watch_requests), and the events it delivered.
struct FeedSample {
    bool synced = false;
    bool streaming = false;
    std::uint64_t stream_id = 0;
    std::uint64_t stream_events = 0;
};

/// Tracks the health of every feed from samples taken at any time (each input, each tick), and says how current
/// the picture is (FeedHealth, workflow_state.hpp). A feed is healthy when it is synced and streaming, and its
/// current stream delivered an event or has been seen open for `settle` (a quiet watch that stays up). Feeds of
/// task state: "pods" and "jobs".
class FeedTracker {
public:
    explicit FeedTracker(std::chrono::milliseconds settle = std::chrono::milliseconds(2000)) : settle_(settle) {}

    /// Records a sample of `feed` taken at `now`.
    void sample(const std::string& feed, const FeedSample& s, Timestamp now) {
        auto& f = feeds_[feed];
        if (!s.streaming) {
            f = Feed{};
            f.synced = s.synced;
            return;
        }
        if (!f.streaming || f.stream_id != s.stream_id) f.open_since = now; // first seen open
        f.synced = s.synced;
        f.streaming = true;
        f.stream_id = s.stream_id;
        f.events = s.stream_events;
    }
    /// Forgets a feed (a watcher that ended, or one replaced by another).
    void remove(const std::string& feed) { feeds_.erase(feed); }

    bool healthy(const std::string& feed, Timestamp now) const {
        auto it = feeds_.find(feed);
        return it != feeds_.end() && healthy(it->second, now);
    }

    /// The health at `now`. `healthy_since` is carried over from `previous` while every feed stays healthy.
    FeedHealth health(Timestamp now, const FeedHealth& previous = {}) const {
        FeedHealth h;
        h.known = true;
        h.tasks_fresh = feeds_.count("pods") && feeds_.count("jobs") ? true : false;
        for (auto& [name, f] : feeds_) {
            if (healthy(f, now)) continue;
            h.unhealthy.push_back(name);
            if (name == "pods" || name == "jobs") h.tasks_fresh = false;
        }
        h.all_healthy = h.unhealthy.empty() && !feeds_.empty();
        if (h.all_healthy) h.healthy_since = previous.all_healthy && previous.healthy_since ? previous.healthy_since : now;
        return h;
    }

    std::chrono::milliseconds settle() const noexcept { return settle_; }

private:
    struct Feed {
        bool synced = false;
        bool streaming = false;
        std::uint64_t stream_id = 0;
        std::uint64_t events = 0;
        Timestamp open_since{};
    };
    bool healthy(const Feed& f, Timestamp now) const {
        return f.synced && f.streaming && (f.events > 0 || now - f.open_since >= settle_);
    }

    std::chrono::milliseconds settle_;
    std::map<std::string, Feed> feeds_;
};

// ------------------------------------------------------------------------------------------- fail fast

/// The fail-fast decision at start (SentinelOptions::fail_fast). Until the first list page arrives from the API
/// server (from any watcher), a failed attempt ends the watch:
///  - at once when retrying cannot help or the server is not the API it should be: fatal errors (401 after a
///    credential refresh, 403, 404, 400, configuration), TLS verification failure, a TLS handshake the server
///    aborts (e.g. it rejects the client certificate), credentials that cannot be obtained, a malformed
///    answer (an HTML page, invalid JSON or UTF-8, nesting too deep) or an oversized event;
///  - after `max_transient` consecutive failed attempts of one watcher otherwise (connection refused, timeouts,
///    429, 5xx, a list that answers 410 even without a resourceVersion): with the default backoff, 3 attempts
///    take 2.4 to 5 s, plus the Retry-After the server asks for.
/// After the first list page, nothing fails fast: failures are retried and reported (CONNECTIVITY_LOSS).
class StartupGate {
public:
    explicit StartupGate(bool enabled, int max_transient = 3)
        : enabled_(enabled), max_transient_(max_transient < 1 ? 1 : max_transient) {}

    /// True when watch() must end with this attempt's error.
    bool should_end(const std::string& feed, const kube::WatchAttempt& a) {
        if (a.ok) {
            if (a.kind == kube::WatchAttempt::Kind::list) started_ = true;
            streaks_[feed] = 0;
            return false;
        }
        if (!enabled_ || started_ || a.synced) return false;
        if (fails_at_once(a.error)) return true;
        return ++streaks_[feed] >= max_transient_;
    }

    /// The errors that end a fail-fast start at once.
    static bool fails_at_once(const std::error_code& ec) noexcept {
        return kube::is_fatal(ec) || ec == kube::error::tls_handshake_failed ||
               ec == kube::error::tls_verification_failed || ec == kube::error::credentials_unavailable ||
               ec == kube::error::malformed_response || ec == kube::error::event_too_large;
    }

    /// The exception watch() ends with: the attempt's error and diagnostics, saying why it did not retry.
    kube::Error error_for(const kube::WatchAttempt& a) const {
        kube::Diagnostics d = a.diagnostics;
        std::string why = fails_at_once(a.error)
                              ? "at start, before any list succeeded (fail-fast)"
                              : "at start, " + std::to_string(max_transient_) +
                                    " attempts in a row failed before any list succeeded (fail-fast)";
        d.client_message = d.client_message.empty() ? a.error.message() + "; " + why
                                                    : d.client_message + "; " + why;
        return kube::Error(a.error, std::move(d));
    }

    bool started() const noexcept { return started_; }
    bool enabled() const noexcept { return enabled_; }

private:
    bool enabled_;
    int max_transient_;
    bool started_ = false;
    std::map<std::string, int> streaks_;
};

// ------------------------------------------------------------------------------------------- log lines

/// Decides which watcher attempts deserve a log line, so that a watcher failing for minutes is visible without
/// a line per retry: the first failure after a success, a change of cause, every `every`-th failure of one
/// streak, and the first success after failures. Returns the line, or nullopt. Lines hold the error, what was
/// asked and the server's words (kube::Diagnostics), never credentials.
class AttemptLog {
public:
    explicit AttemptLog(int every = 10) : every_(every < 1 ? 1 : every) {}

    std::optional<std::string> on_attempt(const std::string& feed, const kube::WatchAttempt& a) {
        auto& s = streaks_[feed];
        if (a.ok) {
            if (s.failures == 0) return std::nullopt;
            std::string line = "sentinel: " + feed + " watch works again after " + std::to_string(s.failures) +
                               " failed attempt" + (s.failures == 1 ? "" : "s");
            s = Streak{};
            return line;
        }
        ++s.failures;
        bool changed = s.failures == 1 || a.error != s.last_error;
        s.last_error = a.error;
        if (!changed && s.failures % every_ != 0) return std::nullopt;
        std::string line = "sentinel: " + feed + " " + a.describe();
        if (s.failures > 1) line += " (" + std::to_string(s.failures) + " attempts in a row)";
        if (a.fatal()) line += "; not retried until the caller asks again";
        else line += "; retrying in " + format_delay(a.retry_in);
        return line;
    }

    static std::string format_delay(std::chrono::milliseconds d) {
        auto ms = d.count();
        std::string s = std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + " s";
        return s;
    }

private:
    struct Streak {
        int failures = 0;
        std::error_code last_error{};
    };
    int every_;
    std::map<std::string, Streak> streaks_;
};

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SENTINEL_POLICY_HPP

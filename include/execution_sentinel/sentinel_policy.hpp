// The decisions of Sentinel::watch() (sentinel.hpp), out of the I/O: which pod is the engine and how to find
// its replacement, what a completion probe or its error means, how healthy the watches are (for connectivity
// and staleness), when to fail fast at start, when a watcher's failures deserve a log line, the evidence log
// tails (cutting, redaction, once per report), the metrics API's readings and the engine log's failures. Pure: no I/O,
// no clock (`now` is an argument), unit-tested on their own (tests/unit/sentinel_policy_test.cpp).
#ifndef EXECUTION_SENTINEL_SENTINEL_POLICY_HPP
#define EXECUTION_SENTINEL_SENTINEL_POLICY_HPP

#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
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

// ------------------------------------------------------------------------------------------- evidence

namespace detail {

/// `text` with invalid UTF-8 bytes and control characters (other than tab) replaced by '?' (pure).
inline std::string evidence_clean_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            out.push_back((c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c));
            ++i;
            continue;
        }
        std::size_t len = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
        bool valid = len != 0 && i + len <= text.size();
        for (std::size_t k = 1; valid && k < len; ++k) valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
        if (!valid) {
            out.push_back('?');
            ++i;
            continue;
        }
        out.append(text.substr(i, len));
        i += len;
    }
    return out;
}

inline char es_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
inline bool es_key_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

} // namespace detail

/// A log line with the obvious secrets replaced by "[redacted]" (pure): the credential of an `Authorization`-style
/// "Bearer …" or "Basic …", the value after a key that names a secret (password, passwd, pwd, secret, token,
/// api_key, apikey, access_key, private_key, credential; also as a suffix such as DB_PASSWORD) followed by `=`
/// or `:` (quoted or not, as in `password=x`, `"token": "x"`), and the password of a URL's `user:password@`.
inline std::string redact_secrets(std::string_view line) {
    static constexpr std::string_view keys[] = {"password", "passwd", "pwd", "secret", "token", "api_key",
                                                "apikey", "api-key", "access_key", "accesskey", "private_key",
                                                "credential"};
    static constexpr std::string_view placeholder = "[redacted]";
    std::string lower(line.size(), ' ');
    for (std::size_t i = 0; i < line.size(); ++i) lower[i] = detail::es_lower(line[i]);
    std::string out;
    out.reserve(line.size());
    std::size_t i = 0;
    auto value_end = [&](std::size_t from) {
        std::size_t e = from;
        while (e < line.size()) {
            char c = line[e];
            if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '&' || c == ',' || c == ';' || c == '}' ||
                c == ']' || c == ')')
                break;
            ++e;
        }
        return e;
    };
    while (i < line.size()) {
        // "Bearer <credential>", "Basic <credential>"
        bool done = false;
        for (std::string_view scheme : {std::string_view("bearer "), std::string_view("basic ")}) {
            if (lower.compare(i, scheme.size(), scheme) != 0) continue;
            if (i > 0 && detail::es_key_char(line[i - 1])) continue;
            std::size_t v = i + scheme.size();
            while (v < line.size() && line[v] == ' ') ++v;
            std::size_t e = value_end(v);
            if (e - v < 8) continue; // "basic setup", "bearer of news": not a credential
            out.append(line.substr(i, v - i));
            out.append(placeholder);
            i = e;
            done = true;
            break;
        }
        if (done) continue;
        // key (=|:) value
        for (std::string_view key : keys) {
            if (lower.compare(i, key.size(), key) != 0) continue;
            std::size_t k = i + key.size();
            if (k < line.size() && detail::es_key_char(line[k])) continue; // "tokenizer=", "secrets_dir" …
            std::size_t p = k;
            if (p < line.size() && (line[p] == '"' || line[p] == '\'')) ++p;
            while (p < line.size() && line[p] == ' ') ++p;
            if (p >= line.size() || (line[p] != '=' && line[p] != ':')) continue;
            ++p;
            while (p < line.size() && line[p] == ' ') ++p;
            std::size_t v = p;
            if (v < line.size() && (line[v] == '"' || line[v] == '\'')) ++v;
            std::size_t e = value_end(v);
            if (e == v) continue;
            out.append(line.substr(i, v - i));
            out.append(placeholder);
            i = e;
            done = true;
            break;
        }
        if (done) continue;
        // scheme://user:password@host
        if (line.compare(i, 3, "://") == 0) {
            std::size_t p = i + 3;
            std::size_t colon = std::string_view::npos;
            std::size_t at = std::string_view::npos;
            for (std::size_t q = p; q < line.size(); ++q) {
                char c = line[q];
                if (c == '/' || c == ' ' || c == '\t' || c == '"' || c == '\'') break;
                if (c == ':' && colon == std::string_view::npos) colon = q;
                if (c == '@') at = q;
            }
            if (colon != std::string_view::npos && at != std::string_view::npos && colon < at) {
                out.append(line.substr(i, colon + 1 - i));
                out.append(placeholder);
                i = at;
                continue;
            }
        }
        out.push_back(line[i]);
        ++i;
    }
    return out;
}

/// Limits of the log tail attached as evidence (SentinelSettings::evidence_log_lines / evidence_log_bytes).
struct EvidenceLimits {
    int max_lines = 20;                 ///< last lines kept; ≤ 0 = no log tail at all
    std::size_t max_bytes = 4096;       ///< bytes of all kept lines together
    std::size_t max_line_bytes = 512;   ///< one line longer than this is cut (ending with "…")
};

inline EvidenceLimits evidence_limits_from(int lines, int bytes) {
    EvidenceLimits l;
    l.max_lines = lines;
    l.max_bytes = bytes > 0 ? static_cast<std::size_t>(bytes) : 0;
    l.max_line_bytes = std::min<std::size_t>(512, l.max_bytes);
    return l;
}

/// Cuts `text` to at most `max_bytes` bytes at a UTF-8 character boundary, ending with "…" when cut (pure).
inline std::string cut_utf8(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return std::string(text);
    static constexpr std::string_view ellipsis = "\xe2\x80\xa6";
    if (max_bytes < ellipsis.size()) return std::string();
    std::size_t n = max_bytes - ellipsis.size();
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
    return std::string(text.substr(0, n)) + std::string(ellipsis);
}

/// The log tail as evidence (pure): the last `max_lines` of `lines`, each cleaned (valid UTF-8, no control
/// characters), its secrets redacted and cut to `max_line_bytes`; then as many of the latest of them as fit in
/// `max_bytes` together. Order kept (oldest first).
inline std::vector<std::string> evidence_log_tail(const std::vector<std::string>& lines, const EvidenceLimits& limits) {
    std::vector<std::string> out;
    if (limits.max_lines <= 0 || limits.max_bytes == 0) return out;
    const std::size_t n = std::min(lines.size(), static_cast<std::size_t>(limits.max_lines));
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& raw = lines[lines.size() - 1 - i];
        // A line far longer than the limit is cut before the work on it (its end is cut anyway).
        std::string line = cut_utf8(redact_secrets(detail::evidence_clean_utf8(
                                        std::string_view(raw).substr(0, limits.max_line_bytes * 4 + 64))),
                                    limits.max_line_bytes);
        if (total + line.size() > limits.max_bytes) break;
        total += line.size();
        out.push_back(std::move(line));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

/// Why a log tail could not be read, in words, from the error of kube::tail (pure).
inline std::string evidence_unavailable_reason(const std::error_code& ec, std::string_view server_message = {}) {
    if (ec == kube::error::not_found) return "the pod or its log is gone";
    if (ec == kube::error::bad_request) {
        std::string s = "the container has no log to read (it never started, or it is not in the pod)";
        if (!server_message.empty()) s += ": " + std::string(server_message.substr(0, 200));
        return s;
    }
    if (ec == kube::error::forbidden) return "reading container logs is not allowed (RBAC: get on pods/log)";
    if (ec == kube::error::unauthorized) return "the API server refused the credentials";
    if (ec == kube::error::timeout) return "the API server did not answer in time";
    if (kube::is_retryable(ec)) return "the API server could not be reached (" + ec.message() + ")";
    return "the log could not be read (" + ec.message() + ")";
}

/// What a log-tail fetch came to: the raw lines (oldest first), or why there are none.
struct EvidenceOutcome {
    std::optional<std::vector<std::string>> lines{};
    std::string unavailable{};
};

/// Attaches the outcome to the report (pure): details.evidence.log_tail (array of strings) or
/// details.evidence.log_tail_unavailable (why), keeping whatever else details.evidence holds; clears the
/// report's evidence_request.
inline void attach_evidence(Report& r, const EvidenceOutcome& outcome, const EvidenceLimits& limits) {
    auto& slot = r.details["evidence"];
    if (!slot.is_object()) slot = boost::json::object();
    auto& evidence = slot.get_object();
    evidence.erase("log_tail");
    evidence.erase("log_tail_unavailable");
    std::vector<std::string> tail;
    if (outcome.lines) tail = evidence_log_tail(*outcome.lines, limits);
    if (outcome.lines && !tail.empty()) {
        boost::json::array a;
        a.reserve(tail.size());
        for (auto& l : tail) a.emplace_back(l);
        evidence["log_tail"] = std::move(a);
    } else {
        std::string why = outcome.lines ? (limits.max_lines <= 0 || limits.max_bytes == 0
                                               ? std::string("log tails are turned off (evidence_log_lines)")
                                               : std::string("the container wrote no log lines"))
                                        : outcome.unavailable;
        if (why.empty()) why = "the log could not be read";
        evidence["log_tail_unavailable"] = why;
    }
    r.evidence_request.reset();
}

/// The reports that wait for their log tail, in the order they were made. Each report leaves exactly once:
/// through complete() (its fetch ended) or abandon() (the watch ended first), with its evidence attached and
/// its request cleared. At most `max_concurrent` fetches run at a time (next_fetch() says which to start).
class EvidenceQueue {
public:
    struct Fetch {
        std::uint64_t id = 0;
        EvidenceRequest request{};
    };

    explicit EvidenceQueue(EvidenceLimits limits = {}, std::size_t max_concurrent = 4)
        : limits_(limits), max_concurrent_(max_concurrent < 1 ? 1 : max_concurrent) {}

    /// Takes a report whose evidence_request is set; returns its id.
    std::uint64_t add(Report r) {
        const std::uint64_t id = ++next_id_;
        entries_.emplace(id, Entry{std::move(r), false});
        waiting_.push_back(id);
        return id;
    }

    /// The next fetch to start, marked as running; nullopt when none waits or `max_concurrent` run.
    std::optional<Fetch> next_fetch() {
        if (waiting_.empty() || running_ >= max_concurrent_) return std::nullopt;
        const std::uint64_t id = waiting_.front();
        waiting_.pop_front();
        auto& e = entries_.at(id);
        e.running = true;
        ++running_;
        return Fetch{id, *e.report.evidence_request};
    }

    /// A fetch ended: the report with its evidence, ready to publish; nullopt for an id that already left.
    std::optional<Report> complete(std::uint64_t id, const EvidenceOutcome& outcome) {
        auto it = entries_.find(id);
        if (it == entries_.end()) return std::nullopt;
        if (it->second.running) --running_;
        std::erase(waiting_, id);
        Report r = std::move(it->second.report);
        entries_.erase(it);
        attach_evidence(r, outcome, limits_);
        return r;
    }

    /// Every report still here (waiting or running), with `why` as the reason its log tail is missing, in
    /// the order they were added. Running fetches that end later find their id gone.
    std::vector<Report> abandon(const std::string& why) {
        std::vector<Report> out;
        for (auto& [id, e] : entries_) {
            EvidenceOutcome o;
            o.unavailable = why;
            attach_evidence(e.report, o, limits_);
            out.push_back(std::move(e.report));
        }
        entries_.clear();
        waiting_.clear();
        running_ = 0;
        return out;
    }

    bool empty() const noexcept { return entries_.empty(); }
    /// The keys (Report::key) of the reports waiting: made, not yet handed on.
    template <class Set> void keys(Set& out) const {
        for (auto& [id, e] : entries_) out.insert(e.report.key);
    }
    std::size_t running() const noexcept { return running_; }
    std::size_t waiting() const noexcept { return waiting_.size(); }
    const EvidenceLimits& limits() const noexcept { return limits_; }

private:
    struct Entry {
        Report report;
        bool running = false;
    };
    EvidenceLimits limits_;
    std::size_t max_concurrent_;
    std::uint64_t next_id_ = 0;
    std::size_t running_ = 0;
    std::map<std::uint64_t, Entry> entries_;
    std::deque<std::uint64_t> waiting_;
};

// ------------------------------------------------------------------------------------------- metrics API

/// One reading of the metrics API as the driver does it next: what to tell the monitor, when to read again,
/// and a log line when there is news (the API missing, forbidden or failing; answering again).
struct MetricsStep {
    MetricsSample sample{};
    std::chrono::milliseconds next_in{};
    std::optional<std::string> log_line{};
};

/// The decisions of the metrics reading (pure). The API answering: read again after `interval`. 404 (not
/// installed), 403 (not allowed) or 503 (not serving): the sample says it is unavailable and why, the next
/// reading comes later (4 × interval, at least 1 minute, at most 5 minutes), and the log says so once until
/// it answers again. Other failures (unreachable, garbage): unavailable, read again after `interval`, logged
/// at the first failure of a streak.
class MetricsPolicy {
public:
    explicit MetricsPolicy(std::chrono::milliseconds interval) : interval_(std::max(interval, std::chrono::milliseconds(1))) {}

    MetricsStep on_answer(std::vector<kube::PodMetrics> pods) {
        MetricsStep s;
        s.sample.available = true;
        s.sample.pods = std::move(pods);
        s.next_in = interval_;
        if (failing_) s.log_line = "sentinel: the metrics API answers again";
        failing_ = false;
        last_problem_.clear();
        return s;
    }

    /// A failed reading: the error of the request (`http_status` 0 when no answer came) and its description.
    MetricsStep on_failure(const std::error_code& ec, int http_status, std::string_view what) {
        MetricsStep s;
        s.sample.available = false;
        const bool absent = ec == kube::error::not_found || ec == kube::error::forbidden || http_status == 503;
        if (ec == kube::error::not_found)
            s.sample.problem = "the metrics API (metrics.k8s.io) is not installed in this cluster";
        else if (ec == kube::error::forbidden)
            s.sample.problem = "reading the metrics API is not allowed (RBAC: list on pods.metrics.k8s.io)";
        else if (http_status == 503)
            s.sample.problem = "the metrics API is not serving (HTTP 503)";
        else
            s.sample.problem = "the metrics API could not be read: " + std::string(what.substr(0, 300));
        s.next_in = absent ? slow_interval() : interval_;
        if (!failing_ || s.sample.problem != last_problem_) {
            std::string line = "sentinel: " + s.sample.problem;
            if (absent)
                line += "; memory use is not watched until it answers (next try in " +
                        std::to_string(s.next_in.count() / 1000) + " s)";
            s.log_line = std::move(line);
        }
        failing_ = true;
        last_problem_ = s.sample.problem;
        return s;
    }

    /// An answer that is not a PodMetricsList (MetricsParseError's message).
    MetricsStep on_malformed(std::string_view what) {
        return on_failure(kube::make_error_code(kube::error::malformed_response), 200, what);
    }

    std::chrono::milliseconds interval() const noexcept { return interval_; }
    std::chrono::milliseconds slow_interval() const noexcept {
        return std::clamp(interval_ * 4, std::chrono::milliseconds(60'000), std::chrono::milliseconds(300'000));
    }

private:
    std::chrono::milliseconds interval_;
    bool failing_ = false;
    std::string last_problem_;
};

// ------------------------------------------------------------------------------------------- engine log

/// After the engine log follower of one pod failed with `ec` (it retries transient failures itself): how long
/// to wait before following the same pod again, or nullopt to wait for another engine pod (the pod is gone,
/// or logs cannot be read: 403, 401, an unknown container) (pure).
inline std::optional<std::chrono::milliseconds> engine_log_retry_after(const std::error_code& ec) noexcept {
    if (ec == kube::error::not_found || ec == kube::error::forbidden || ec == kube::error::unauthorized ||
        ec == kube::error::bad_request)
        return std::nullopt;
    return std::chrono::milliseconds(30'000);
}

/// Lines of the engine's log longer than this are cut into pieces (LogRequest::max_line_bytes).
inline constexpr std::size_t engine_log_max_line_bytes = 16 * 1024;

/// How long the log of a replaced engine pod is still read (its last lines) before the new pod's log.
inline constexpr std::chrono::milliseconds engine_log_drain_grace{2000};

// ------------------------------------------------------------------------------------------- view snapshot

/// When to refresh the view snapshot after an input (pure): at most once per `interval`, unless forced.
class ViewThrottle {
public:
    explicit ViewThrottle(std::chrono::milliseconds interval = std::chrono::milliseconds(100)) : interval_(interval) {}
    bool due(Timestamp now, bool force = false) {
        if (!force && last_ && now - *last_ < interval_) return false;
        last_ = now;
        return true;
    }

private:
    std::chrono::milliseconds interval_;
    std::optional<Timestamp> last_{};
};

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SENTINEL_POLICY_HPP

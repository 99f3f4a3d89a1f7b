// Container logs (the `pods/log` subresource): a one-shot tail and a follower that yields lines as they are
// written, survives container restarts and dropped connections by reopening with `sinceTime`, and drops the
// lines it already delivered. See docs/client.md.
#ifndef EXECUTION_SENTINEL_KUBE_LOGS_HPP
#define EXECUTION_SENTINEL_KUBE_LOGS_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/detail/credentials_util.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/request_machine.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

// LogLine (one line with the kubelet's timestamp) is in kube/objects.hpp.

/// Which log to follow.
struct LogRequest {
    std::string namespace_{};
    std::string pod{};
    std::string container{};               ///< empty = the pod's only container
    std::optional<int> tail_lines{};       ///< first open only: start with the last N lines (nullopt = all)
    std::optional<Timestamp> since_time{}; ///< first open only: lines at or after this instant
    /// A stream silent this long is reopened (quiet containers are fine: the reopen is cheap and exact).
    std::chrono::milliseconds idle_timeout{305000};
    std::size_t max_line_bytes = std::size_t{1} << 20; ///< a longer line is cut into pieces of this size
};

/// The last `tail_lines` lines of a container's log (all lines when nullopt), with timestamps. Throws
/// kube::Error: bad_request (container waiting to start, unknown container), not_found, and the errors of
/// Client::request(). Cancellation as in Client.
EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::vector<LogLine>> tail(Client& client, std::string namespace_, std::string pod,
                                                  std::string container, std::optional<int> tail_lines);

// ------------------------------------------------------------------------------------------- pure pieces

/// "2024-05-01T10:00:00Z": RFC 3339 in UTC, whole seconds (the precision `sinceTime` is given in; the kubelet
/// returns lines at or after it, so the deduplicator drops the few repeated ones).
inline std::string format_since_time(Timestamp t) { return detail::format_rfc3339(t); }

/// Splits "2024-05-01T10:00:00.123456789Z text" into time and text. A line without a valid timestamp prefix
/// keeps its whole text and gets `fallback` (the previous line's time) as its time.
inline LogLine split_log_line(std::string_view line, Timestamp fallback = {}) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto space = line.find(' ');
    if (space != std::string_view::npos && space >= 20 && space <= 40) {
        if (auto t = parse_timestamp(line.substr(0, space))) return LogLine{*t, std::string(line.substr(space + 1))};
    }
    if (space == std::string_view::npos && line.size() >= 20 && line.size() <= 40) {
        if (auto t = parse_timestamp(line)) return LogLine{*t, std::string()};
    }
    return LogLine{fallback, std::string(line)};
}

/// Cuts a byte stream into lines ('\n'), carrying a partial line across reads. Lines longer than `max_line`
/// are delivered in pieces of `max_line` bytes (0 is read as 1).
template <class OnLine>
void split_lines(std::string& partial, std::string_view bytes, std::size_t max_line, OnLine&& on_line) {
    if (max_line == 0) max_line = 1; // a limit of 0 would never consume a byte
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        std::string_view piece = bytes.substr(0, nl);
        if (partial.size() + piece.size() > max_line) {
            std::size_t take = max_line > partial.size() ? max_line - partial.size() : 0;
            partial.append(piece.substr(0, take));
            on_line(std::string_view(partial));
            partial.clear();
            bytes.remove_prefix(take);
            continue;
        }
        if (nl == std::string_view::npos) {
            partial.append(piece);
            return;
        }
        if (partial.empty()) {
            on_line(piece);
        } else {
            partial.append(piece);
            on_line(std::string_view(partial));
            partial.clear();
        }
        bytes.remove_prefix(nl + 1);
    }
}

/// Drops lines a reopened log stream repeats. The kubelet returns every line at or after `sinceTime`, so after
/// a reopen the lines before the last delivered instant are dropped, and at that instant as many copies of each
/// text as were delivered before (two identical lines written at the same instant are both kept).
class LogDeduplicator {
public:
    /// A new stream starts at last_time(): enter replay.
    void begin_replay() {
        replaying_ = last_.has_value();
        replay_ = seen_at_last_;
    }

    /// True when the line is new and must be delivered.
    bool accept(const LogLine& line) {
        if (replaying_) {
            if (line.time < *last_) return false;
            if (line.time == *last_) {
                auto it = replay_.find(line.text);
                if (it != replay_.end() && it->second > 0) {
                    --it->second;
                    return false;
                }
            } else {
                replaying_ = false;
            }
        }
        if (!last_ || line.time > *last_) {
            last_ = line.time;
            seen_at_last_.clear();
        }
        if (line.time == *last_ && seen_at_last_.size() < max_remembered) ++seen_at_last_[line.text];
        return true;
    }

    std::optional<Timestamp> last_time() const noexcept { return last_; }
    bool replaying() const noexcept { return replaying_; }

    static constexpr std::size_t max_remembered = 10000;

private:
    std::optional<Timestamp> last_{};
    std::map<std::string, int> seen_at_last_{};
    std::map<std::string, int> replay_{};
    bool replaying_ = false;
};

/// "/api/v1/namespaces/{ns}/pods/{pod}/log?container=..&follow=true&timestamps=true[&sinceTime=..][&tailLines=..]".
inline std::string log_target(std::string_view ns, std::string_view pod, std::string_view container, bool follow,
                              std::optional<Timestamp> since_time, std::optional<int> tail_lines) {
    QueryString q;
    q.add_if("container", container);
    if (follow) q.add("follow", true);
    q.add("timestamps", true);
    if (since_time) q.add("sinceTime", format_since_time(*since_time));
    if (tail_lines) q.add("tailLines", *tail_lines);
    return "/api/v1/namespaces/" + escape_path_segment(ns) + "/pods/" + escape_path_segment(pod) + "/log" + q.str();
}

/// After a follow stream ended: true when no more lines will come (the pod finished, or the container
/// terminated and its restartPolicy will not restart it). `pod` is the pod's JSON.
inline bool log_finished(const boost::json::value& pod, std::string_view container) {
    const auto* o = pod.if_object();
    if (!o) return false;
    const auto* status = o->if_contains("status");
    const auto* so = status ? status->if_object() : nullptr;
    if (!so) return false;
    std::string_view phase{};
    if (auto* p = so->if_contains("phase"); p && p->is_string()) phase = p->get_string();
    if (phase == "Succeeded" || phase == "Failed") return true;
    std::string_view restart_policy = "Always";
    if (auto* spec = o->if_contains("spec"); spec && spec->is_object())
        if (auto* rp = spec->get_object().if_contains("restartPolicy"); rp && rp->is_string())
            restart_policy = rp->get_string();
    if (auto* cs = so->if_contains("containerStatuses"); cs && cs->is_array()) {
        for (const auto& c : cs->get_array()) {
            const auto* co = c.if_object();
            if (!co) continue;
            auto* name = co->if_contains("name");
            if (!container.empty() && (!name || !name->is_string() || name->get_string() != container)) continue;
            auto* state = co->if_contains("state");
            auto* st = state ? state->if_object() : nullptr;
            auto* term = st ? st->if_contains("terminated") : nullptr;
            if (!term || !term->is_object()) return false;
            if (restart_policy == "Never") return true;
            if (restart_policy == "OnFailure") {
                auto* code = term->get_object().if_contains("exitCode");
                return code && code->is_int64() && code->as_int64() == 0;
            }
            return false;
        }
    }
    return false;
}

/// Follows a container's log as an asynchronous sequence of lines (`timestamps=true`).
///
///  - While the container is waiting to start (400), the open is retried with the client's backoff until it
///    runs; bound it with cancellation.
///  - When the stream ends, the pod is read: a pod that finished (Succeeded/Failed, or the container terminated
///    and will not restart) or vanished ends the sequence; otherwise (a restart) the log is reopened with
///    `sinceTime=<last timestamp>` and lines already delivered are dropped.
///  - A silent or lost connection (stream_idle, connection_lost, 5xx, 429) is reopened the same way after a
///    backoff delay.
///
/// next() must not be called concurrently. The follower holds a copy of the client (shared state).
class LogFollower {
public:
    LogFollower(Client client, LogRequest request) : client_(std::move(client)), request_(std::move(request)),
        reopen_(RequestPolicy{RequestKind::log_follow, 0, true}, client_.state()->backoff_options()) {}

    /// The next line, or nullopt once the container has finished and its log is exhausted. Throws
    /// kube::Error for fatal errors (forbidden, not_found at the first open, unauthorized, TLS verification);
    /// cancellation as boost::system::system_error(operation_aborted) — the follower may be used again after.
    boost::asio::awaitable<std::optional<LogLine>> next();

    /// How many times the log was (re)opened.
    std::size_t opens() const noexcept { return opens_; }

private:
    boost::asio::awaitable<void> open();
    boost::asio::awaitable<void> on_stream_end(bool delivered_any);
    void take_lines(std::string_view bytes);

    Client client_;
    LogRequest request_;
    RequestMachine reopen_; ///< when and whether to reopen the log after a failure
    LogDeduplicator dedup_;
    std::optional<Stream> stream_{};
    std::deque<LogLine> pending_{};
    std::string partial_{};
    Timestamp last_time_{};
    bool finished_ = false;
    bool delivered_since_open_ = false;
    std::size_t opens_ = 0;
};



namespace detail {
/// A 400 answer to a log request that waiting will cure ("container … is waiting to start: ContainerCreating"),
/// as opposed to one that it will not ("container x is not valid for pod y").
inline bool log_not_ready_yet(const Error& e) {
    if (e.code() != error::bad_request) return false;
    const auto& m = e.diagnostics().server_message;
    return m.find("not valid") == std::string::npos && m.find("not found") == std::string::npos &&
           m.find("previous terminated") == std::string::npos;
}
} // namespace detail

} // namespace execution_sentinel::kube

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/impl/logs.ipp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_LOGS_HPP

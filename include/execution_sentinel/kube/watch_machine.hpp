// The list-then-watch protocol as one visible state machine, in the manner of client-go's reflector and
// kube-rs's watcher, with no I/O and no clock reads (`now` is an argument). A driver (kube/watcher.hpp, or a
// test script) asks it what to do, does it, and reports the result:
//
//     auto a = m.resume(now);                        // list page 1
//     a = m.on_list_page(page, now);                 // … until the last page: watch from the list's RV
//     a = m.on_watch_opened(now);                    // read
//     a = m.on_watch_event(std::move(raw), now);     // read, or list/wait/fail when the stream must end
//     a = m.on_watch_end(ec, diagnostics, now);      // watch again, relist, or wait first
//     while (m.has_events()) deliver(m.pop_event()); // Added/Modified/Deleted/Synced, deduplicated by the store
//
// Semantics (docs/watching.md): a paged list (limit 500, continue tokens) is folded into the store, which
// reports the difference — additions, modifications (only when resourceVersion changed) and deletions of
// what vanished — then a Synced marker; a watch from the list's resourceVersion with bookmarks and a
// timeoutSeconds drawn in [300, 600]; a normal end re-watches from the last resourceVersion; a watch that
// ends within 1 s with no event backs off first; 410 (HTTP status, ERROR event, or an expired continue
// token) relists, first at the last synced resourceVersion, then from "" if that is gone too; retryable
// errors (connection, 429, 5xx, idle stream, malformed stream) back off (honouring Retry-After) and
// re-watch the SAME resourceVersion; fatal errors (401, 403, 404, 400, configuration) are returned as a
// `fail` action, and the machine keeps its state: calling resume() afterwards backs off and retries.
// The backoff starts again from its first delay once a watch is healthy again: it delivered an event, or it
// stayed open for `healthy_watch` (10 s). Every list or watch attempt that succeeds or fails leaves a
// WatchAttempt (take_attempt()) for the driver's observer: connectivity, logs and fail-fast decisions.
#ifndef EXECUTION_SENTINEL_KUBE_WATCH_MACHINE_HPP
#define EXECUTION_SENTINEL_KUBE_WATCH_MACHINE_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// The knobs of the protocol. Defaults carry client-go's values.
struct WatchMachineOptions {
    std::uint32_t page_size = 500;                        ///< list `limit`; 0 = unpaginated
    bool bookmarks = true;                                ///< ask for `allowWatchBookmarks`
    std::chrono::seconds min_watch_timeout{300};          ///< `timeoutSeconds` is drawn in [min, max]
    std::chrono::seconds max_watch_timeout{600};
    std::chrono::milliseconds very_short_watch{1000};     ///< a watch ending this soon with no event backs off
    std::chrono::milliseconds healthy_watch{10'000};      ///< a watch open this long resets the backoff
    BackoffOptions backoff{};                             ///< the one backoff policy
    std::uint64_t seed = 0x9a7c4e11u;                     ///< seed of the timeoutSeconds draw
};

/// Where the protocol is. One value at a time; `phase()` exposes it.
enum class WatchPhase : std::uint8_t {
    initial,     ///< nothing done yet: resume() asks for the first list page
    listing,     ///< a list page was asked for: on_list_page() or on_list_error() next
    watching,    ///< a watch was asked for or is streaming: on_watch_opened/event/end() next
    backing_off, ///< a wait was asked for: on_wait_done() next
    failed,      ///< a fatal error was returned: resume() next (it backs off, then retries)
};

/// Parameters of a list request (one page).
struct ListRequest {
    std::string resource_version{};       ///< "" = most recent (consistent read)
    std::string resource_version_match{}; ///< "NotOlderThan" when resource_version is set
    std::string continue_token{};         ///< set for pages after the first (then resource_version is "")
    std::uint32_t limit = 0;
    friend bool operator==(const ListRequest&, const ListRequest&) = default;
};

/// Parameters of a watch request.
struct WatchRequest {
    std::string resource_version{};
    bool allow_watch_bookmarks = true;
    std::uint32_t timeout_seconds = 0;
    friend bool operator==(const WatchRequest&, const WatchRequest&) = default;
};

/// What the driver does next.
struct WatchAction {
    enum class Kind : std::uint8_t {
        list,  ///< GET one list page (`list`); report with on_list_page / on_list_error
        watch, ///< open a watch (`watch`), closing any open one; report with on_watch_opened / on_watch_end
        read,  ///< keep reading the open watch stream; report events and its end
        wait,  ///< close any open stream, sleep `delay`, then on_wait_done
        fail,  ///< close any open stream and surface `error` + `diagnostics`; then resume()
    };
    Kind kind = Kind::read;
    ListRequest list{};
    WatchRequest watch{};
    std::chrono::milliseconds delay{0};
    std::error_code error{};
    Diagnostics diagnostics{};
};

/// What one list or watch attempt came to (WatchMachine::take_attempt(), WatchOptions::on_attempt).
///
/// A list attempt succeeds when its page arrives. A watch attempt succeeds when its first event (bookmarks
/// included) arrives: a watch that opens with 200 and then breaks or streams garbage is a failure. A clean
/// end of a watch, an immediate relist after 410 and a fatal error's later retries leave no attempt behind
/// unless the machine backs off because of them.
struct WatchAttempt {
    enum class Kind : std::uint8_t { list, watch };
    Kind kind = Kind::list;
    bool ok = false;
    std::error_code error{};               ///< why it failed (empty when ok)
    Diagnostics diagnostics{};             ///< what was asked and what the server said (failures)
    std::chrono::milliseconds retry_in{0}; ///< the backoff chosen before the next attempt (failures)
    bool synced = false;                   ///< the machine had completed a list before this attempt
    bool fatal() const noexcept { return is_fatal(error); }
    /// One line: "list failed: <error message>: <diagnostics>" (never holds credentials).
    std::string describe() const {
        std::string s = std::string(kind == Kind::list ? "list" : "watch") + (ok ? " succeeded" : " failed");
        if (!ok && error) s += ": " + error.message();
        if (!ok) {
            auto d = diagnostics.to_string();
            if (!d.empty()) s += ": " + d;
        }
        return s;
    }
};

/// One page of a list answer.
template <class T> struct ListPage {
    std::vector<T> items{};
    std::string resource_version{}; ///< metadata.resourceVersion of the list
    std::string continue_token{};   ///< metadata.continue; "" on the last page
};

/// Reads a list answer ({"metadata":{"resourceVersion","continue"},"items":[…]}). Returns
/// error::malformed_response (and leaves `out` unspecified) when it is not a list.
template <class T> std::error_code parse_list_page(const boost::json::value& body, ListPage<T>& out);

/// Counters for tests, logs and metrics.
struct WatchStats {
    std::uint64_t list_requests = 0;   ///< list pages asked for
    std::uint64_t lists_completed = 0; ///< full lists folded in (initial + relists)
    std::uint64_t relists = 0;         ///< lists started because the position was lost (410 …)
    std::uint64_t watch_requests = 0;
    std::uint64_t backoffs = 0;
    std::uint64_t failures = 0;        ///< fatal errors surfaced
    std::uint64_t events = 0;          ///< watch events received (all types)
};

/// The state machine. T is Pod, Job or Event (anything with ResourceTraits).
template <Resource T> class WatchMachine {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;

    explicit WatchMachine(WatchMachineOptions options = {})
        : options_(options), backoff_(options.backoff), rng_state_(options.seed) {}

    /// What to do now: the first list page in `initial`, the backoff wait after a `fail`, or — after an
    /// interruption (a cancelled driver) — the interrupted step again (a watch restarts from the last
    /// resourceVersion; the events already received are kept).
    WatchAction resume(time_point now);

    /// A list page arrived.
    WatchAction on_list_page(ListPage<T> page, time_point now);
    /// A list request failed: `ec` classifies it, `diag` carries the server's Status and Retry-After.
    WatchAction on_list_error(std::error_code ec, Diagnostics diag, time_point now);

    /// The watch answered 200 and streams.
    WatchAction on_watch_opened(time_point now);
    /// A decoded watch event (WatchDecoder). Returns `read` to go on, or another action that ends the stream.
    WatchAction on_watch_event(DecodedWatchEvent<T> event, time_point now);
    /// A framed watch event (WatchFramer): decoded with ResourceTraits<T>::parse / parse_status, then as above.
    WatchAction on_watch_event(RawWatchEvent event, time_point now);
    /// The watch ended: empty `ec` for a clean end of stream, else why (also for a failed open).
    WatchAction on_watch_end(std::error_code ec, Diagnostics diag, time_point now);

    /// A `wait` is over.
    WatchAction on_wait_done(time_point now);

    /// What the last list or watch attempt came to, once (then empty until another attempt ends).
    std::optional<WatchAttempt> take_attempt() { return std::exchange(attempt_, std::nullopt); }

    /// True while a watch stream is open (answered 200 and not ended).
    bool streaming() const noexcept { return phase_ == WatchPhase::watching && watch_opened_at_.has_value(); }
    /// Events (bookmarks included) received on the current watch stream.
    std::uint64_t stream_events() const noexcept { return watch_events_; }
    /// When the current watch stream opened (empty when none is open).
    std::optional<time_point> stream_opened_at() const noexcept {
        return streaming() ? watch_opened_at_ : std::nullopt;
    }

    /// Events to deliver, in order.
    bool has_events() const noexcept { return events_.size() > events_head_; }
    WatchEvent<T> pop_event() {
        WatchEvent<T> e = std::move(events_[events_head_++]);
        if (events_head_ == events_.size()) { // drained: reuse the storage (no allocation per event) …
            events_.clear();
            events_head_ = 0;
            if (events_.capacity() > 256) events_.shrink_to_fit(); // … but do not keep a relist's worth
        }
        return e;
    }
    std::size_t pending_events() const noexcept { return events_.size() - events_head_; }

    WatchPhase phase() const noexcept { return phase_; }
    const Store<T>& store() const noexcept { return store_; }
    /// The resourceVersion a watch resumes from (of the last list, event or bookmark).
    const std::string& resource_version() const noexcept { return last_synced_rv_; }
    /// True once a list has completed (the store is a complete picture, kept current by the watch).
    bool synced() const noexcept { return ever_synced_; }
    const WatchStats& stats() const noexcept { return stats_; }
    const WatchMachineOptions& options() const noexcept { return options_; }

private:
    enum class After : std::uint8_t { list, watch };

    void prepare_list(std::string resource_version);
    WatchAction start_list(std::string resource_version) {
        prepare_list(std::move(resource_version));
        return list_action();
    }
    WatchAction list_action();
    WatchAction watch_action();
    WatchAction wait_action(After after, std::optional<int> retry_after, time_point now);
    WatchAction fail_action(std::error_code ec, Diagnostics diag, After after, time_point now);
    WatchAction relist(bool resource_version_unavailable, time_point now);
    void expect(WatchPhase p, const char* what) const {
        if (phase_ != p) throw std::logic_error(std::string("WatchMachine: ") + what + " in the wrong phase");
    }
    std::uint32_t draw_timeout() noexcept {
        std::uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        auto lo = static_cast<std::uint64_t>(options_.min_watch_timeout.count());
        auto hi = static_cast<std::uint64_t>(std::max(options_.max_watch_timeout, options_.min_watch_timeout).count());
        return static_cast<std::uint32_t>(lo + z % (hi - lo + 1));
    }

    WatchMachineOptions options_;
    Backoff backoff_;
    std::uint64_t rng_state_;
    Store<T> store_;
    std::vector<WatchEvent<T>> events_; ///< a queue: delivered from events_head_, cleared once drained
    std::size_t events_head_ = 0;
    WatchStats stats_;

    WatchPhase phase_ = WatchPhase::initial;
    ListRequest list_request_;          ///< the list page asked for (or to ask for after a wait)
    std::string list_rv_{};               ///< resourceVersion reported by the list in progress
    std::string last_synced_rv_{};
    bool ever_synced_ = false;
    After after_wait_ = After::list;
    std::chrono::milliseconds current_delay_{0}; ///< of the last wait or the wait after a fail
    time_point wait_until_{};                    ///< when the current wait ends
    std::optional<time_point> watch_opened_at_;
    std::uint64_t watch_events_ = 0;    ///< events received on the current watch
    unsigned resync_streak_ = 0;        ///< relists without an event in between
    std::optional<WatchAttempt> attempt_; ///< the last attempt's outcome, not yet taken

    void record_ok(WatchAttempt::Kind kind) {
        WatchAttempt a;
        a.kind = kind;
        a.ok = true;
        a.synced = ever_synced_;
        attempt_ = std::move(a);
    }
    void record_failure(WatchAttempt::Kind kind, std::error_code ec, const Diagnostics& diag,
                        std::chrono::milliseconds retry_in) {
        WatchAttempt a;
        a.kind = kind;
        a.error = ec;
        a.diagnostics = diag;
        a.retry_in = retry_in;
        a.synced = ever_synced_;
        attempt_ = std::move(a);
    }
    /// The watch was healthy (an event arrived, or it stayed open long enough): back off from the start.
    void healthy() noexcept { backoff_.reset(); }
};

// ------------------------------------------------------------------------------------------- definitions

template <class T> std::error_code parse_list_page(const boost::json::value& body, ListPage<T>& out) {
    auto* o = body.if_object();
    if (!o) return error::malformed_response;
    auto* items_v = o->if_contains("items");
    if (!items_v) return error::malformed_response;
    out.items.clear();
    if (auto* items = items_v->if_array()) {
        out.items.reserve(items->size());
        for (auto& item : *items) {
            auto* io = item.if_object();
            if (!io) return error::malformed_response;
            out.items.push_back(ResourceTraits<T>::parse(*io));
            if (out.items.back().meta.name.empty()) return error::malformed_response;
        }
    } else if (!items_v->is_null()) {
        return error::malformed_response;
    }
    out.resource_version.clear();
    out.continue_token.clear();
    if (auto* meta = detail::obj_field(*o, "metadata")) {
        detail::assign_str(out.resource_version, *meta, "resourceVersion");
        detail::assign_str(out.continue_token, *meta, "continue");
    }
    return {};
}

template <Resource T> WatchAction WatchMachine<T>::list_action() {
    phase_ = WatchPhase::listing;
    ++stats_.list_requests;
    WatchAction a;
    a.kind = WatchAction::Kind::list;
    a.list = list_request_;
    return a;
}

template <Resource T> void WatchMachine<T>::prepare_list(std::string resource_version) {
    store_.begin_relist();
    list_rv_.clear();
    list_request_ = ListRequest{};
    list_request_.limit = options_.page_size;
    list_request_.resource_version = std::move(resource_version);
    if (!list_request_.resource_version.empty() && list_request_.resource_version != "0")
        list_request_.resource_version_match = "NotOlderThan";
}

template <Resource T> WatchAction WatchMachine<T>::watch_action() {
    phase_ = WatchPhase::watching;
    watch_opened_at_.reset();
    watch_events_ = 0;
    ++stats_.watch_requests;
    WatchAction a;
    a.kind = WatchAction::Kind::watch;
    a.watch.resource_version = last_synced_rv_;
    a.watch.allow_watch_bookmarks = options_.bookmarks;
    a.watch.timeout_seconds = draw_timeout();
    return a;
}

template <Resource T>
WatchAction WatchMachine<T>::wait_action(After after, std::optional<int> retry_after, time_point now) {
    phase_ = WatchPhase::backing_off;
    after_wait_ = after;
    ++stats_.backoffs;
    WatchAction a;
    a.kind = WatchAction::Kind::wait;
    a.delay = current_delay_ = backoff_.next_delay(now, retry_after);
    wait_until_ = now + a.delay;
    return a;
}

template <Resource T>
WatchAction WatchMachine<T>::fail_action(std::error_code ec, Diagnostics diag, After after, time_point now) {
    phase_ = WatchPhase::failed;
    after_wait_ = after;
    ++stats_.failures;
    current_delay_ = backoff_.next_delay(now, diag.retry_after_seconds);
    WatchAction a;
    a.kind = WatchAction::Kind::fail;
    a.error = ec;
    a.diagnostics = std::move(diag);
    return a;
}

template <Resource T> WatchAction WatchMachine<T>::relist(bool resource_version_unavailable, time_point now) {
    ++stats_.relists;
    ++resync_streak_;
    std::string rv = resource_version_unavailable ? std::string{} : last_synced_rv_;
    if (resync_streak_ > 1) {
        // The position keeps getting lost without progress in between: do not hammer the server.
        prepare_list(std::move(rv));
        return wait_action(After::list, std::nullopt, now);
    }
    return start_list(std::move(rv));
}

template <Resource T> WatchAction WatchMachine<T>::resume(time_point now) {
    switch (phase_) {
    case WatchPhase::initial: return start_list({});
    case WatchPhase::failed: {
        phase_ = WatchPhase::backing_off;
        ++stats_.backoffs;
        wait_until_ = now + current_delay_;
        WatchAction a;
        a.kind = WatchAction::Kind::wait;
        a.delay = current_delay_;
        return a;
    }
    case WatchPhase::backing_off: { // an interrupted wait: only what is left of it
        WatchAction a;
        a.kind = WatchAction::Kind::wait;
        a.delay = now < wait_until_ ? std::chrono::ceil<std::chrono::milliseconds>(wait_until_ - now)
                                    : std::chrono::milliseconds{0};
        return a;
    }
    case WatchPhase::listing: return list_action();
    case WatchPhase::watching: return watch_action();
    }
    return start_list({});
}

template <Resource T> WatchAction WatchMachine<T>::on_list_page(ListPage<T> page, time_point now) {
    expect(WatchPhase::listing, "on_list_page");
    record_ok(WatchAttempt::Kind::list);
    if (!page.resource_version.empty()) list_rv_ = page.resource_version;
    store_.relist_page(std::move(page.items), events_);
    if (!page.continue_token.empty()) {
        list_request_.continue_token = std::move(page.continue_token);
        list_request_.resource_version.clear(); // a continued list takes its position from the token
        list_request_.resource_version_match.clear();
        return list_action();
    }
    if (list_rv_.empty()) {
        // Without the list's resourceVersion a watch cannot start where the list ended: list again.
        prepare_list({});
        auto a = wait_action(After::list, std::nullopt, now);
        Diagnostics d{};
        d.client_message = "the list answer has no metadata.resourceVersion, so no watch can start from it";
        record_failure(WatchAttempt::Kind::list, make_error_code(error::malformed_response), d, a.delay);
        return a;
    }
    store_.end_relist(events_);
    events_.push_back(WatchEvent<T>{WatchEventType::synced, T{}, false});
    ++stats_.lists_completed;
    last_synced_rv_ = list_rv_;
    ever_synced_ = true;
    return watch_action();
}

template <Resource T>
WatchAction WatchMachine<T>::on_list_error(std::error_code ec, Diagnostics diag, time_point now) {
    expect(WatchPhase::listing, "on_list_error");
    if (needs_resync(ec)) {
        // An expired continue token or resourceVersion: list again from the most recent state.
        bool from_scratch = list_request_.continue_token.empty() && list_request_.resource_version.empty();
        if (!from_scratch) {
            ++stats_.relists;
            return start_list({});
        }
        // Even a consistent read says 410: odd; treat as retryable.
        prepare_list({});
        auto a = wait_action(After::list, diag.retry_after_seconds, now);
        if (diag.client_message.empty())
            diag.client_message = "even a list without a resourceVersion was answered 410: the server's state is not readable";
        record_failure(WatchAttempt::Kind::list, ec, diag, a.delay);
        return a;
    }
    if (is_fatal(ec)) {
        record_failure(WatchAttempt::Kind::list, ec, diag, current_delay_);
        auto a = fail_action(ec, std::move(diag), After::list, now);
        attempt_->retry_in = current_delay_;
        return a;
    }
    auto a = wait_action(After::list, diag.retry_after_seconds, now); // retry the same page
    record_failure(WatchAttempt::Kind::list, ec, diag, a.delay);
    return a;
}

template <Resource T> WatchAction WatchMachine<T>::on_watch_opened(time_point now) {
    expect(WatchPhase::watching, "on_watch_opened");
    watch_opened_at_ = now;
    watch_events_ = 0;
    WatchAction a;
    a.kind = WatchAction::Kind::read;
    return a;
}

template <Resource T> WatchAction WatchMachine<T>::on_watch_event(RawWatchEvent event, time_point now) {
    DecodedWatchEvent<T> decoded;
    decoded.type = event.type;
    if (event.type == RawWatchEventType::error) decoded.status = parse_status(boost::json::value(std::move(event.object)));
    else decoded.object = ResourceTraits<T>::parse(event.object);
    return on_watch_event(std::move(decoded), now);
}

template <Resource T> WatchAction WatchMachine<T>::on_watch_event(DecodedWatchEvent<T> event, time_point now) {
    expect(WatchPhase::watching, "on_watch_event");
    ++stats_.events;
    ++watch_events_;
    WatchAction read;
    read.kind = WatchAction::Kind::read;
    if (event.type == RawWatchEventType::error) {
        const ApiStatus& status = event.status;
        auto ec = error_for_status(0, status);
        if (!ec) ec = error::server_error;
        Diagnostics d = diagnostics_for(0, status);
        return on_watch_end(ec, std::move(d), now);
    }
    T obj = std::move(event.object);
    if (event.type != RawWatchEventType::bookmark && obj.meta.name.empty()) {
        Diagnostics d{};
        d.client_message = "a watch event without metadata.name";
        return on_watch_end(error::malformed_response, std::move(d), now);
    }
    if (watch_events_ == 1) record_ok(WatchAttempt::Kind::watch); // the stream works
    healthy();
    std::string rv = obj.meta.resource_version;
    switch (event.type) {
    case RawWatchEventType::added:
    case RawWatchEventType::modified: store_.upsert(std::move(obj), events_); break;
    case RawWatchEventType::deleted: store_.remove(std::move(obj), events_); break;
    case RawWatchEventType::bookmark:
    case RawWatchEventType::error: break;
    }
    if (!rv.empty()) last_synced_rv_ = std::move(rv);
    resync_streak_ = 0;
    return read;
}

template <Resource T>
WatchAction WatchMachine<T>::on_watch_end(std::error_code ec, Diagnostics diag, time_point now) {
    expect(WatchPhase::watching, "on_watch_end");
    if (watch_opened_at_ && now - *watch_opened_at_ >= options_.healthy_watch) healthy();
    const auto kind = WatchAttempt::Kind::watch;
    if (!ec) {
        bool very_short = watch_events_ == 0 &&
                          (!watch_opened_at_ || now - *watch_opened_at_ < options_.very_short_watch);
        if (very_short) {
            auto a = wait_action(After::watch, std::nullopt, now);
            if (diag.client_message.empty())
                diag.client_message = "the watch ended at once without a single event";
            record_failure(kind, make_error_code(error::connection_lost), diag, a.delay);
            return a;
        }
        return watch_action(); // a normal end (timeoutSeconds): resume from the last resourceVersion
    }
    if (needs_resync(ec)) {
        auto a = relist(ec == error::resource_version_too_large, now);
        if (a.kind == WatchAction::Kind::wait) { // relisted again and again without progress
            if (diag.client_message.empty()) diag.client_message = "the watch position keeps expiring right after a list";
            record_failure(kind, ec, diag, a.delay);
        }
        return a;
    }
    if (is_fatal(ec)) {
        record_failure(kind, ec, diag, {});
        auto a = fail_action(ec, std::move(diag), After::watch, now);
        attempt_->retry_in = current_delay_;
        return a;
    }
    auto a = wait_action(After::watch, diag.retry_after_seconds, now); // same resourceVersion, no relist
    record_failure(kind, ec, diag, a.delay);
    return a;
}

template <Resource T> WatchAction WatchMachine<T>::on_wait_done(time_point /*now*/) {
    expect(WatchPhase::backing_off, "on_wait_done");
    if (after_wait_ == After::list) return list_action();
    return watch_action();
}

} // namespace execution_sentinel::kube

// Compiled once by <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#include <execution_sentinel/detail/build_mode.hpp>
#if EXECUTION_SENTINEL_EXTERN_TEMPLATES
namespace execution_sentinel::kube {
extern template class WatchMachine<Pod>;
extern template class WatchMachine<Job>;
extern template class WatchMachine<Event>;
} // namespace execution_sentinel::kube
#endif

#endif // EXECUTION_SENTINEL_KUBE_WATCH_MACHINE_HPP

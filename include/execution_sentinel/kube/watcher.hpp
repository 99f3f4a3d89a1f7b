// Watcher<T>: list-then-watch of pods, jobs or events in a namespace, delivered one event at a time with
// `co_await watcher.next()`, plus a reflector store of every object. The decisions are made by the pure
// WatchMachine (kube/watch_machine.hpp); this is the thin driver that turns its actions into Client calls
// (kube/client.hpp), frames the watch bytes (kube/watch_framer.hpp) and sleeps the backoff. See
// docs/watching.md.
#ifndef EXECUTION_SENTINEL_KUBE_WATCHER_HPP
#define EXECUTION_SENTINEL_KUBE_WATCHER_HPP

#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// Options of a Watcher. Works with designated initializers.
struct WatchOptions {
    std::string label_selector{}; ///< e.g. "app=hyperflow"; empty = every object
    std::string field_selector{}; ///< e.g. "involvedObject.kind=Pod"; empty = none
    std::uint32_t page_size = 500; ///< list `limit`; 0 = one unpaginated list
    bool bookmarks = true;         ///< ask for BOOKMARK events (they advance the resume position)
    /// `timeoutSeconds` of each watch is drawn in [min, max] (default [300, 600] s, client-go's range). The
    /// server ends the watch then; the Watcher re-watches from the last resourceVersion.
    std::chrono::seconds min_watch_timeout{300};
    std::chrono::seconds max_watch_timeout{600};
    /// Inactivity limit of a watch stream: no byte for this long ⇒ the connection is considered dead
    /// (half-open) and replaced. 0 (the default) = the watch's timeoutSeconds + 5 s.
    std::chrono::milliseconds idle_timeout{0};
    std::size_t max_event_size = WatchFramer::default_max_event_size; ///< cap on ONE watch event (bytes)
    /// Caps on one list page: its bytes and its items. A server that ignores `limit` (or a namespace far larger
    /// than expected) fails the list with error::response_too_large (fatal) instead of growing the process.
    /// Defaults 64 MiB and 100,000 items; 0 = no cap.
    std::size_t max_list_page_bytes = std::size_t{64} << 20;
    std::size_t max_list_page_items = 100000;
    BackoffOptions backoff{}; ///< the backoff policy between failed attempts (0.8 s doubling to 30 s, jitter)
    /// A watch that delivered an event or stayed open this long is healthy: the backoff starts again from
    /// its first delay. Default 10 s.
    std::chrono::milliseconds healthy_watch{10'000};
    /// Observer of every list and watch attempt that succeeded or failed (WatchAttempt, kube/watch_machine.hpp),
    /// retried failures included: the way to see a watcher that keeps failing (connectivity reports, logs).
    /// Called on the Watcher's executor inside next(). If it throws, next() ends with that exception and the
    /// Watcher stays usable (the next call goes on where it stopped).
    std::function<void(const WatchAttempt&)> on_attempt{};
    /// Called on the Watcher's executor inside next() each time a watch stream opens (streaming() has just become
    /// true), before any event of it: the way to see a quiet stream start. Must not throw.
    std::function<void()> on_stream_opened{};
    /// Seed of the timeoutSeconds draw and the backoff jitter; 0 (the default) = from std::random_device.
    std::uint64_t seed = 0;
};

/// Watches the objects of type T (Pod, Job, Event) in one namespace ("" = all namespaces).
///
/// `next()` completes with the next event: added / modified / deleted (with the object; for deleted, its
/// last state) and `synced` once the initial list or a relist has been folded in (from then on the store
/// is a complete, current picture). Nothing is delivered twice as a new change and nothing is missed: after
/// a 410 the Watcher relists and delivers the difference, including deletions (final_state_unknown) of
/// objects that vanished meanwhile. Transient failures (connection refused or lost, 429, 5xx, a silent
/// stream, a malformed event) are retried internally with backoff and never thrown; WatchOptions::on_attempt
/// sees each of them. Fatal failures (401,
/// 403, 404, 400, configuration) are thrown from next() as kube::Error (with the server's Status in its
/// diagnostics); the Watcher keeps its state, and calling next() again backs off and retries.
///
/// Not thread-safe: one next() at a time (a concurrent call throws kube::Error(operation_in_progress)).
/// The Watcher and its Client must outlive a pending next(). Cancellation: next() supports terminal
/// cancellation through the awaiting coroutine's cancellation slot (e.g. asio::cancel_after); it then throws
/// boost::system::system_error(operation_aborted) and the Watcher may be used again: the interrupted step
/// is redone (a watch resumes from the last resourceVersion; no event is lost or repeated).
template <Resource T> class Watcher {
public:
    Watcher(Client& client, std::string namespace_, WatchOptions options = {})
        : client_(client),
          namespace_(std::move(namespace_)),
          options_(std::move(options)),
          machine_(machine_options(options_)),
          framer_(options_.max_event_size) {}

    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    /// The next event. Completes on the awaiting coroutine's executor. Throws kube::Error for fatal
    /// failures (see above), boost::system::system_error(operation_aborted) when cancelled.
    boost::asio::awaitable<WatchEvent<T>> next();

    /// The current state of every object (namespace/name → object), as of the events delivered so far.
    const Store<T>& store() const noexcept { return machine_.store(); }
    /// True once the first list has been folded in.
    bool synced() const noexcept { return machine_.synced(); }
    /// The resourceVersion a watch resumes from: every change up to it is in store(); once pending() is false,
    /// every change up to it has also been delivered by next().
    const std::string& resource_version() const noexcept { return machine_.resource_version(); }
    /// True while changes received (decoded, or folded into the store) were not yet delivered by next().
    bool pending() const noexcept { return raw_next_ < raw_.size() || machine_.has_events(); }
    const WatchStats& stats() const noexcept { return machine_.stats(); }
    WatchPhase phase() const noexcept { return machine_.phase(); }
    /// True while a watch stream is open; see WatchMachine::streaming().
    bool streaming() const noexcept { return machine_.streaming(); }
    /// Events received on the open watch stream (0 when none is open).
    std::uint64_t stream_events() const noexcept { return machine_.streaming() ? machine_.stream_events() : 0; }
    const std::string& namespace_name() const noexcept { return namespace_; }
    const WatchOptions& options() const noexcept { return options_; }

private:
    static WatchMachineOptions machine_options(const WatchOptions& o) {
        WatchMachineOptions m;
        m.page_size = o.page_size;
        m.bookmarks = o.bookmarks;
        m.min_watch_timeout = o.min_watch_timeout;
        m.max_watch_timeout = o.max_watch_timeout;
        m.backoff = o.backoff;
        m.healthy_watch = o.healthy_watch;
        std::uint64_t seed = o.seed;
        if (seed == 0) {
            std::random_device rd;
            seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
        }
        m.seed = seed;
        m.backoff.seed ^= seed * 0x9E3779B97F4A7C15ull;
        return m;
    }
    static typename WatchMachine<T>::time_point now() { return WatchMachine<T>::clock::now(); }

    std::string describe(const char* what) const {
        std::string s = std::string(what) + " " + std::string(ResourceTraits<T>::plural);
        s += namespace_.empty() ? std::string(" in all namespaces") : " in namespace " + namespace_;
        if (!options_.label_selector.empty()) s += " (labelSelector=" + options_.label_selector + ")";
        if (!options_.field_selector.empty()) s += " (fieldSelector=" + options_.field_selector + ")";
        return s;
    }

    boost::asio::awaitable<WatchAction> do_list(const ListRequest& r);
    boost::asio::awaitable<WatchAction> do_watch(const WatchRequest& r);
    boost::asio::awaitable<WatchAction> do_read();
    boost::asio::awaitable<WatchAction> do_wait(std::chrono::milliseconds delay);

    /// Hands the last attempt's outcome to the observer (which may throw: the step is then kept in action_).
    void report_attempt() {
        auto attempt = machine_.take_attempt();
        if (attempt && options_.on_attempt) options_.on_attempt(*attempt);
    }

    void close_stream() noexcept {
        if (stream_) {
            stream_->close();
            stream_.reset();
        }
        raw_.clear();
        raw_next_ = 0;
        pending_stream_error_.reset();
    }

    struct BusyGuard {
        bool& busy;
        explicit BusyGuard(bool& b) : busy(b) { busy = true; }
        ~BusyGuard() { busy = false; }
    };

    Client client_; // a copy shares the connection pool and configuration
    std::string namespace_{};
    WatchOptions options_;
    WatchMachine<T> machine_;
    WatchDecoder<T> framer_;
    std::optional<Stream> stream_;
    std::vector<DecodedWatchEvent<T>> raw_{}; ///< decoded, not yet given to the machine
    std::size_t raw_next_ = 0;
    std::optional<std::pair<std::error_code, Diagnostics>> pending_stream_error_; ///< after raw_ is consumed
    std::optional<WatchAction> action_; ///< the next step; empty = ask machine_.resume()
    std::chrono::seconds watch_timeout_{0};
    bool busy_ = false;
};

// ------------------------------------------------------------------------------------------- definitions

namespace detail {
/// Why a list answer has more items than `max_items` (0 = no cap) allows, or nullopt. Checked before the items
/// are decoded.
inline std::optional<std::string> list_page_too_large(const boost::json::value& body, std::size_t max_items) {
    if (max_items == 0 || !body.is_object()) return std::nullopt;
    const auto* items = body.get_object().if_contains("items");
    if (items == nullptr || !items->is_array() || items->get_array().size() <= max_items) return std::nullopt;
    return "the list page holds " + std::to_string(items->get_array().size()) + " items, more than " +
           std::to_string(max_items) + " (WatchOptions::max_list_page_items); the server does not honour `limit`, "
           "or the namespace is larger than expected: raise the cap";
}

inline bool is_cancelled_exception(const boost::system::system_error& e) noexcept {
    return e.code() == boost::asio::error::operation_aborted;
}
} // namespace detail

template <Resource T> boost::asio::awaitable<WatchEvent<T>> Watcher<T>::next() {
    if (busy_) {
        Diagnostics d{};
        d.client_message = "Watcher::next() called while another next() is pending";
        d.resource = describe("watch");
        throw Error(make_error_code(error::operation_in_progress), std::move(d));
    }
    BusyGuard guard(busy_);
    auto cancellation = co_await boost::asio::this_coro::cancellation_state;
    for (;;) {
        if (machine_.has_events()) {
            // Cancelled after the last read completed but before we could return: keep the event for the
            // next call rather than hand it to a caller that no longer listens.
            if (cancellation.cancelled() != boost::asio::cancellation_type::none) {
                if (action_ && action_->kind == WatchAction::Kind::read) {
                    close_stream(); // a watch resumes from the last applied resourceVersion
                    action_.reset();
                }
                throw boost::system::system_error(boost::asio::error::operation_aborted);
            }
            co_return machine_.pop_event();
        }
        if (!action_) action_ = machine_.resume(now());
        WatchAction a = std::move(*action_);
        action_.reset();
        try {
            switch (a.kind) {
            case WatchAction::Kind::list:
                close_stream();
                action_ = co_await do_list(a.list);
                break;
            case WatchAction::Kind::watch:
                close_stream();
                action_ = co_await do_watch(a.watch);
                break;
            case WatchAction::Kind::read: action_ = co_await do_read(); break;
            case WatchAction::Kind::wait:
                close_stream();
                action_ = co_await do_wait(a.delay);
                break;
            case WatchAction::Kind::fail:
                close_stream();
                // action_ stays empty: the next call asks resume(), which backs off and retries.
                throw Error(a.error, std::move(a.diagnostics));
            }
            report_attempt();
        } catch (const boost::system::system_error& e) {
            if (!detail::is_cancelled_exception(e)) throw;
            // Interrupted: drop the stream and whatever was framed but not applied; the next call redoes
            // the step through resume() (a watch restarts from the last applied resourceVersion).
            close_stream();
            action_.reset();
            throw;
        }
    }
}

template <Resource T> boost::asio::awaitable<WatchAction> Watcher<T>::do_list(const ListRequest& r) {
    ListQuery q;
    q.label_selector = options_.label_selector;
    q.field_selector = options_.field_selector;
    q.resource_version = r.resource_version;
    q.resource_version_match = r.resource_version_match;
    q.continue_token = r.continue_token;
    q.limit = r.limit;
    std::string target = ResourceTraits<T>::target(namespace_, q);
    boost::json::value body;
    try {
        if (options_.max_list_page_bytes > 0)
            body = co_await client_.get_json_once(std::move(target), options_.max_list_page_bytes);
        else
            body = co_await client_.get_json_once(std::move(target));
    } catch (const Error& e) {
        Diagnostics d = e.diagnostics();
        if (d.resource.empty()) d.resource = describe("list");
        co_return machine_.on_list_error(e.code(), std::move(d), now());
    } catch (const boost::system::system_error& e) {
        if (detail::is_cancelled_exception(e)) throw;
        Diagnostics d{};
        d.resource = describe("list");
        d.client_message = e.what();
        co_return machine_.on_list_error(make_error_code(error::connection_lost), std::move(d), now());
    }
    if (auto problem = detail::list_page_too_large(body, options_.max_list_page_items)) {
        Diagnostics d{};
        d.resource = describe("list");
        d.client_message = std::move(*problem);
        co_return machine_.on_list_error(make_error_code(error::response_too_large), std::move(d), now());
    }
    ListPage<T> page;
    if (auto ec = parse_list_page(body, page)) {
        Diagnostics d{};
        d.resource = describe("list");
        d.client_message = "the list answer is not a list of " + std::string(ResourceTraits<T>::kind) + " objects";
        co_return machine_.on_list_error(ec, std::move(d), now());
    }
    co_return machine_.on_list_page(std::move(page), now());
}

template <Resource T> boost::asio::awaitable<WatchAction> Watcher<T>::do_watch(const WatchRequest& r) {
    ListQuery q;
    q.label_selector = options_.label_selector;
    q.field_selector = options_.field_selector;
    q.resource_version = r.resource_version;
    q.watch = true;
    q.allow_watch_bookmarks = r.allow_watch_bookmarks;
    q.timeout_seconds = r.timeout_seconds;
    StreamOptions so;
    so.idle_timeout = options_.idle_timeout.count() > 0
                          ? options_.idle_timeout
                          : std::chrono::milliseconds(std::chrono::seconds(r.timeout_seconds) + std::chrono::seconds(5));
    framer_.reset();
    try {
        stream_.emplace(co_await client_.open_stream(ResourceTraits<T>::target(namespace_, q), so));
    } catch (const Error& e) {
        stream_.reset();
        Diagnostics d = e.diagnostics();
        if (d.resource.empty()) d.resource = describe("watch");
        co_return machine_.on_watch_end(e.code(), std::move(d), now());
    } catch (const boost::system::system_error& e) {
        stream_.reset();
        if (detail::is_cancelled_exception(e)) throw;
        Diagnostics d{};
        d.resource = describe("watch");
        d.client_message = e.what();
        co_return machine_.on_watch_end(make_error_code(error::connection_lost), std::move(d), now());
    }
    auto action = machine_.on_watch_opened(now());
    if (options_.on_stream_opened) options_.on_stream_opened();
    co_return action;
}

template <Resource T> boost::asio::awaitable<WatchAction> Watcher<T>::do_read() {
    for (;;) {
        if (raw_next_ < raw_.size()) {
            DecodedWatchEvent<T> ev = std::move(raw_[raw_next_++]);
            if (raw_next_ == raw_.size()) {
                raw_.clear();
                raw_next_ = 0;
            }
            co_return machine_.on_watch_event(std::move(ev), now());
        }
        if (pending_stream_error_) {
            auto [ec, d] = std::move(*pending_stream_error_);
            pending_stream_error_.reset();
            close_stream();
            co_return machine_.on_watch_end(ec, std::move(d), now());
        }
        if (!stream_) co_return machine_.on_watch_end(make_error_code(error::connection_lost), {}, now());
        std::string_view bytes;
        try {
            bytes = co_await stream_->read_some();
        } catch (const Error& e) {
            close_stream();
            Diagnostics d = e.diagnostics();
            if (d.resource.empty()) d.resource = describe("watch");
            co_return machine_.on_watch_end(e.code(), std::move(d), now());
        } catch (const boost::system::system_error& e) {
            if (detail::is_cancelled_exception(e)) throw;
            close_stream();
            Diagnostics d{};
            d.resource = describe("watch");
            d.client_message = e.what();
            co_return machine_.on_watch_end(make_error_code(error::connection_lost), std::move(d), now());
        }
        if (bytes.empty()) { // the server ended the watch
            auto ec = framer_.finish();
            Diagnostics d{};
            if (ec) {
                d.resource = describe("watch");
                d.client_message = framer_.error_message();
            }
            close_stream();
            co_return machine_.on_watch_end(ec, std::move(d), now());
        }
        if (auto ec = framer_.feed(bytes, raw_)) {
            // Deliver the events framed before the bad one, then end the stream with the error.
            Diagnostics d{};
            d.resource = describe("watch");
            d.client_message = framer_.error_message();
            pending_stream_error_.emplace(ec, std::move(d));
        }
    }
}

template <Resource T> boost::asio::awaitable<WatchAction> Watcher<T>::do_wait(std::chrono::milliseconds delay) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
    co_await timer.async_wait(boost::asio::use_awaitable);
    co_return machine_.on_wait_done(now());
}

namespace detail {
/// A resourceVersion as a number: the decimal form every known apiserver gives (etcd's revision); nullopt for
/// any other (resourceVersions are opaque: a client may compare them only where they are numbers).
inline std::optional<std::uint64_t> numeric_resource_version(std::string_view rv) noexcept {
    if (rv.empty() || rv.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : rv) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}
} // namespace detail

/// The newest resourceVersion among the objects of type T in `namespace_` that `label_selector` selects, read by a
/// consistent (quorum) list, page by page: a watch that has delivered this version has delivered every one of
/// these objects as the apiserver holds it now. 0 when there is none; nullopt when a version is not a number.
/// Throws kube::Error.
template <Resource T>
boost::asio::awaitable<std::optional<std::uint64_t>> newest_resource_version(Client& client, std::string namespace_,
                                                                            std::string label_selector,
                                                                            std::uint32_t page_size = 500) {
    const auto list_problem = [&](const char* what) {
        Diagnostics d{};
        d.client_message = what;
        d.resource = "list " + std::string(ResourceTraits<T>::plural) + " in namespace " + namespace_;
        return d;
    };
    std::uint64_t newest = 0;
    ListQuery q;
    q.label_selector = std::move(label_selector);
    q.limit = page_size;
    ListPage<T> page;
    for (int pages = 1;; ++pages) {
        auto body = co_await client.get_json(ResourceTraits<T>::target(namespace_, q));
        if (parse_list_page(body, page))
            throw Error(make_error_code(error::malformed_response), list_problem("the answer is not a list"));
        for (const auto& item : page.items) {
            auto v = detail::numeric_resource_version(item.meta.resource_version);
            if (!v) co_return std::nullopt;
            newest = std::max(newest, *v);
        }
        if (page.continue_token.empty()) co_return newest;
        if (pages >= 10'000)
            throw Error(make_error_code(error::malformed_response), list_problem("the list does not end after 10000 pages"));
        q.continue_token = std::move(page.continue_token);
    }
}

} // namespace execution_sentinel::kube

// Compiled once by <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#if EXECUTION_SENTINEL_EXTERN_TEMPLATES
namespace execution_sentinel::kube {
extern template class Watcher<Pod>;
extern template class Watcher<Job>;
extern template class Watcher<Event>;
} // namespace execution_sentinel::kube
#endif

#endif // EXECUTION_SENTINEL_KUBE_WATCHER_HPP

// Bodies of testing/detail/streaming.hpp: included by that header (header-only use) or by
// <execution_sentinel/testing/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_STREAMING_IPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_STREAMING_IPP

#include <execution_sentinel/testing/detail/streaming.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>

namespace execution_sentinel::testing::detail {

// ------------------------------------------------------------------------------------------------ registry
EXECUTION_SENTINEL_DECL StreamRegistry::StreamRegistry(boost::asio::io_context& ioc, std::size_t queue_limit)
    : ioc_(ioc), queue_limit_(queue_limit) {}

EXECUTION_SENTINEL_DECL ChannelPtr StreamRegistry::open_watch(std::weak_ptr<SslStream> stream, const WatchStart& w) {
    auto ch = std::make_shared<StreamChannel>(ioc_);
    ch->stream = std::move(stream);
    ch->filter = w.filter;
    ch->format = w.format;
    ch->end_requested = w.end_after_initial;
    watches_.push_back(ch);
    return ch;
}

EXECUTION_SENTINEL_DECL ChannelPtr StreamRegistry::open_log(std::weak_ptr<SslStream> stream, const LogFollow& f) {
    auto ch = std::make_shared<StreamChannel>(ioc_);
    ch->stream = std::move(stream);
    ch->log_namespace = f.ns;
    ch->log_pod = f.pod;
    ch->log_container = f.container;
    ch->log_timestamps = f.timestamps;
    log_streams_.push_back(ch);
    return ch;
}

EXECUTION_SENTINEL_DECL void StreamRegistry::close(const ChannelPtr& ch) {
    std::erase(watches_, ch);
    std::erase(log_streams_, ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::wake(StreamChannel& ch) {
    boost::asio::post(ioc_, [weak = ch.weak_from_this()] {
        if (auto c = weak.lock()) c->wake.cancel();
    });
}

EXECUTION_SENTINEL_DECL void StreamRegistry::push(StreamChannel& ch, std::string bytes) {
    if (ch.end_requested || ch.overflowed) return;
    if (ch.pending.size() >= queue_limit_) {
        // The client does not keep up: drop it, as the apiserver closes unresponsive watchers. Closing the
        // socket also ends a write that is stuck on a full TCP window.
        ch.overflowed = true;
        ch.pending.clear();
        boost::asio::post(ioc_, [weak = ch.stream] {
            if (auto st = weak.lock()) {
                boost::system::error_code ignored;
                boost::beast::get_lowest_layer(*st).socket().close(ignored);
            }
        });
    } else {
        ch.pending.push_back(std::move(bytes));
    }
    wake(ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::end(StreamChannel& ch) {
    ch.end_requested = true;
    wake(ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::stored(const StoreEvent& e) {
    const auto now = std::chrono::system_clock::now();
    for (auto& ch : watches_) {
        auto ev = watch_event_for(e, ch->filter);
        if (ev) push(*ch, ch->format.line(ev->first, ev->second, now));
    }
}

EXECUTION_SENTINEL_DECL void StreamRegistry::pod_removed(std::string_view ns, std::string_view pod) {
    for (auto& ch : log_streams_)
        if (ch->log_namespace == ns && ch->log_pod == pod) end(*ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::log_appended(std::string_view ns, std::string_view pod, std::string_view container,
                                                          const LogLine& line) {
    for (auto& ch : log_streams_) {
        if (ch->log_namespace != ns || ch->log_pod != pod || ch->log_container != container) continue;
        push(*ch, format_log_line(line, ch->log_timestamps));
    }
}

EXECUTION_SENTINEL_DECL void StreamRegistry::log_restarted(std::string_view ns, std::string_view pod, std::string_view container) {
    for (auto& ch : log_streams_)
        if (ch->log_namespace == ns && ch->log_pod == pod && ch->log_container == container) end(*ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::end_watches() {
    for (auto& ch : watches_) end(*ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::reset_watches() {
    for (auto& ch : watches_) {
        // No more bytes for it: the connection ends abruptly, whatever was queued.
        ch->overflowed = true;
        ch->pending.clear();
        boost::asio::post(ioc_, [weak = ch->stream] {
            if (auto st = weak.lock()) {
                auto& socket = boost::beast::get_lowest_layer(*st).socket();
                boost::system::error_code ignored;
                socket.set_option(boost::asio::socket_base::linger(true, 0), ignored); // close sends RST
                socket.close(ignored);
            }
        });
        wake(*ch);
    }
}

EXECUTION_SENTINEL_DECL void StreamRegistry::send_raw_to_watches(const std::string& bytes) {
    for (auto& ch : watches_) push(*ch, bytes);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::wake_watches() {
    for (auto& ch : watches_) wake(*ch);
}

EXECUTION_SENTINEL_DECL void StreamRegistry::wake_all() {
    // On the I/O thread, while stopping: cancel directly.
    for (auto& ch : watches_) ch->wake.cancel();
    for (auto& ch : log_streams_) ch->wake.cancel();
}

// ------------------------------------------------------------------------------------------------ serving
namespace streaming_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

/// Reads and discards whatever the client sends while a response streams; marks the channel when the client
/// leaves so the stream ends without waiting for the next event.
inline asio::awaitable<void> watch_client(std::shared_ptr<SslStream> stream, ChannelPtr ch) {
    char scratch[512];
    for (;;) {
        auto [ec, n] = co_await stream->async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
        if (ec) break;
    }
    ch->client_gone = true;
    ch->wake.cancel();
}

inline http::response<http::empty_body> stream_header(const Request& req, std::string_view content_type) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-cache, private");
    res.set("Audit-Id", random_uid());
    res.chunked(true);
    res.keep_alive(false); // the connection closes after the stream ends
    return res;
}

/// Unregisters the channel when the stream ends, however it ends.
struct ChannelGuard {
    StreamContext& ctx;
    ChannelPtr ch;
    ~ChannelGuard() {
        std::lock_guard lock(ctx.mu);
        ctx.registry.close(ch);
    }
};

} // namespace streaming_detail

EXECUTION_SENTINEL_DECL boost::asio::awaitable<bool> serve_stream(StreamContext ctx, std::shared_ptr<SslStream> stream,
                                                                  const Request& req, ChannelPtr ch, std::string_view content_type,
                                                                  std::chrono::steady_clock::time_point deadline,
                                                                  const ResourceInfo* bookmarks_for, std::vector<std::string> initial) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    streaming_detail::ChannelGuard guard{ctx, ch};
    auto& s = *stream;
    auto header = streaming_detail::stream_header(req, content_type);
    http::response_serializer<http::empty_body> sr{header};
    auto [hec, hn] = co_await http::async_write_header(s, sr, asio::as_tuple(asio::use_awaitable));
    if (hec) co_return false;
    asio::co_spawn(s.get_executor(), streaming_detail::watch_client(stream, ch), asio::detached);
    bool ok = true;
    for (auto& line : initial) {
        auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
        if (ec) { ok = false; break; }
    }
    StreamSchedule schedule(std::chrono::steady_clock::now(), deadline, bookmarks_for != nullptr, ctx.bookmark_interval);
    while (ok && !ctx.stopping && !ch->client_gone) {
        std::deque<std::string> lines;
        bool end = false, stalled = false;
        std::uint64_t rv = 0;
        {
            std::lock_guard lock(ctx.mu);
            stalled = ctx.state.stalled && ch->log_pod.empty();
            if (!stalled) {
                lines.swap(ch->pending);
                end = ch->end_requested || ch->overflowed;
            }
            rv = ctx.state.store.resource_version();
        }
        for (auto& line : lines) {
            auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
            if (ec) { ok = false; break; }
        }
        if (!ok || end) break;
        const auto now = std::chrono::steady_clock::now();
        const auto next = schedule.due(now, stalled);
        if (next == StreamSchedule::Next::finish) break;
        if (next == StreamSchedule::Next::bookmark) {
            std::string line = watch_line("BOOKMARK", bookmark_object(*bookmarks_for, rv));
            auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            schedule.bookmark_sent(now);
        }
        const auto wake_at = schedule.wake_at(std::chrono::steady_clock::now(), stalled);
        {
            std::lock_guard lock(ctx.mu);
            const bool ready = !(ctx.state.stalled && ch->log_pod.empty()) && (!ch->pending.empty() || ch->end_requested || ch->overflowed);
            if (ready) continue;
        }
        ch->wake.expires_at(wake_at);
        co_await ch->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (ok && !ctx.stopping && !ch->client_gone) {
        co_await asio::async_write(s, http::make_chunk_last(), asio::as_tuple(asio::use_awaitable));
    }
    // The reader started above still has a read pending on the TLS stream, so no TLS shutdown (it would read
    // too): the response is complete, close the connection.
    boost::system::error_code ignored;
    beast::get_lowest_layer(s).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(s).socket().close(ignored);
    co_return false;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_STREAMING_IPP

// Bodies of kube/client.hpp: included by that header when header-only, compiled once by
// <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_KUBE_IMPL_CLIENT_IPP
#define EXECUTION_SENTINEL_KUBE_IMPL_CLIENT_IPP

#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/request_machine.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace execution_sentinel::kube {

namespace detail {

EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::unique_ptr<Connection>> ClientState::connect(const Credentials& creds) {
    auto ctx = tls_context(creds);
    auto c = std::make_unique<Connection>();
    c->tls.context = ctx;
    c->tls.stream = std::make_unique<TlsStream>(executor, *ctx);
    c->context_key = ctx.get();
    co_await connect_tls(*c->tls.stream, c->tls.verify_failure, config, connect_settings());
    co_return c;
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<Credentials> ClientState::async_credentials() {
    if (!config.credentials) co_return Credentials{};
    if (!config.credentials->refresh_would_block()) co_return config.credentials->current();
    boost::asio::thread_pool* pool = nullptr;
    {
        std::lock_guard lock(credential_thread_mutex);
        if (!credential_thread) credential_thread = std::make_unique<boost::asio::thread_pool>(1);
        pool = credential_thread.get();
    }
    auto provider = config.credentials;
    // Run the plugin on the credential thread; resume on the client's executor whatever happens.
    std::optional<Credentials> result;
    std::exception_ptr failure;
    co_await boost::asio::post(boost::asio::bind_executor(pool->get_executor(), boost::asio::use_awaitable));
    try {
        result = provider->current();
    } catch (...) {
        failure = std::current_exception();
    }
    co_await boost::asio::post(boost::asio::bind_executor(executor, boost::asio::use_awaitable));
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*result);
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> sleep_for(boost::asio::any_io_executor ex, std::chrono::milliseconds d) {
    boost::asio::steady_timer timer(ex, d);
    co_await timer.async_wait(boost::asio::use_awaitable);
}

} // namespace detail

EXECUTION_SENTINEL_DECL boost::asio::awaitable<boost::json::value> Client::get_json(std::string target) {
    auto r = co_await request(boost::beast::http::verb::get, target);
    co_return parse_json(r.body, "GET", target);
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<boost::json::value> Client::get_json_once(std::string target) {
    RequestOptions ro;
    ro.max_retries = 0;
    std::string no_body;
    auto r = co_await request(boost::beast::http::verb::get, target, std::move(no_body), std::move(ro));
    co_return parse_json(r.body, "GET", target);
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<boost::json::value> Client::get_json_once(std::string target,
                                                                                std::size_t max_response_bytes) {
    RequestOptions ro;
    ro.max_retries = 0;
    ro.max_response_bytes = max_response_bytes;
    std::string no_body;
    auto r = co_await request(boost::beast::http::verb::get, target, std::move(no_body), std::move(ro));
    co_return parse_json(r.body, "GET", target);
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<boost::json::value> Client::request_json(boost::beast::http::verb method, std::string target,
                                                        std::optional<boost::json::value> body,
                                                        RequestOptions options) {
    std::string text = body ? boost::json::serialize(*body) : std::string();
    auto r = co_await request(method, target, std::move(text), std::move(options));
    co_return parse_json(r.body, std::string(boost::beast::http::to_string(method)), target);
}

EXECUTION_SENTINEL_DECL boost::json::value Client::parse_json(const std::string& body, const std::string& method, const std::string& target) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) {
        Diagnostics d;
        d.resource = describe_request(method, target);
        d.client_message = "the API server answered with invalid JSON (" + ec.message() + ")";
        throw Error(make_error_code(error::malformed_response), std::move(d));
    }
    return v;
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<Client::Exchange> Client::exchange(detail::Connection& c,
                                                 boost::beast::http::request<boost::beast::http::string_body>& req,
                                                 std::chrono::milliseconds timeout, std::size_t max_body) {
    namespace http = boost::beast::http;
    namespace asio = boost::asio;
    Exchange out;
    auto& tcp = boost::beast::get_lowest_layer(c.stream());
    tcp.expires_after(timeout);
    auto [wec, wn] = co_await http::async_write(c.stream(), req, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec) {
        out.ec = wec;
        co_return out;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body);
    auto [rec, rn] = co_await http::async_read(c.stream(), c.buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)rn;
    out.got_bytes = parser.got_some();
    if (rec) {
        out.ec = rec;
        co_return out;
    }
    tcp.expires_never();
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.keep_alive = res.keep_alive();
    out.content_type = std::string(res[http::field::content_type]);
    out.retry_after = std::string(res[http::field::retry_after]);
    out.body = std::move(res.body());
    co_return out;
}


EXECUTION_SENTINEL_DECL boost::asio::awaitable<HttpResponse> Client::request(boost::beast::http::verb method, std::string target,
                                                            std::string body, RequestOptions options) {
    namespace http = boost::beast::http;
    using Action = RequestDecision::Action;
    auto st = state_; // keeps the state alive for the whole call
    const auto& opts = st->options;
    const std::string method_name(http::to_string(method));
    const std::string resource = describe_request(method_name, target);
    const std::string full_target = join_target(st->config.base_path, target);
    const std::size_t max_body = options.max_response_bytes.value_or(opts.max_response_bytes);
    RequestPolicy policy;
    policy.kind = RequestKind::unary;
    policy.max_retries = std::max(0, options.max_retries.value_or(opts.max_retries));
    policy.idempotent = options.idempotent.value_or(method == http::verb::get || method == http::verb::head ||
                                                    method == http::verb::put || method == http::verb::delete_);
    RequestMachine machine(policy, st->backoff_options());
    int attempt = 0;
    bool fresh_connection = false;

    for (;;) {
        if (!fresh_connection) ++attempt; // the retry of a stale pooled connection is the same attempt
        auto start = std::chrono::steady_clock::now();
        RequestOutcome outcome{resource, 0, {}, attempt, false, {}};
        std::optional<Error> failure; // a transport failure of this attempt
        bool reused = false;
        Exchange ex;
        Credentials creds = co_await st->async_credentials();
        try {
            auto ctx = st->tls_context(creds);
            auto conn = fresh_connection ? nullptr : st->take_idle(ctx.get());
            fresh_connection = false;
            http::request<http::string_body> req{method, full_target, 11};
            st->prepare(req, creds, options.accept);
            if (!body.empty() || method == http::verb::post || method == http::verb::put || method == http::verb::patch) {
                req.set(http::field::content_type, options.content_type);
                req.body() = body;
            }
            req.prepare_payload();
            if (!conn) conn = co_await st->connect(creds);
            reused = conn->reused;
            ex = co_await exchange(*conn, req, opts.request_timeout, max_body);
            if (ex.ec) {
                if (ex.ec == http::error::body_limit) {
                    Diagnostics d;
                    d.resource = resource;
                    d.client_message = "the answer is larger than " + std::to_string(max_body) +
                                       " bytes (the limit of this request: ClientOptions::max_response_bytes, or "
                                       "WatchOptions::max_list_page_bytes for a list page); raise the limit, or "
                                       "check that the server honours `limit` in lists";
                    outcome.ec = make_error_code(error::response_too_large);
                    outcome.elapsed = detail::elapsed_since(start);
                    st->report(outcome);
                    throw Error(make_error_code(error::response_too_large), std::move(d));
                }
                detail::throw_transport_error(ex.ec, resource, "the request", opts.request_timeout);
            }
            if (ex.keep_alive) st->give_back(std::move(conn));
        } catch (const Error& e) {
            if (e.code() == error::response_too_large) throw;
            failure = e;
        }

        RequestDecision decision;
        std::optional<Error> answer_error;
        if (failure) {
            decision = machine.on_transport_failure(static_cast<error>(failure->code().value()), reused, ex.got_bytes,
                                                    RequestMachine::clock::now());
            if (decision.action == Action::retry_on_fresh_connection) {
                fresh_connection = true; // the server had closed the kept-alive connection: once more, unreported
                continue;
            }
            outcome.ec = failure->code();
            outcome.elapsed = detail::elapsed_since(start);
            st->report(outcome);
        } else {
            outcome.http_status = ex.status;
            outcome.elapsed = detail::elapsed_since(start);
            if (ex.status >= 200 && ex.status < 300) {
                st->report(outcome);
                co_return HttpResponse{ex.status, std::move(ex.body), std::move(ex.content_type)};
            }
            auto [code, diag] = error_from_response(ex.status, ex.body, ex.retry_after, resource, st->credentials_source());
            outcome.ec = make_error_code(code);
            st->report(outcome);
            decision = machine.on_answer(code, diag.retry_after_seconds, RequestMachine::clock::now());
            if (decision.action == Action::fail && (code == error::too_many_requests || code == error::server_error))
                diag.client_message += " (gave up after " + std::to_string(decision.gave_up_after_retries) + " retries)";
            answer_error.emplace(make_error_code(code), std::move(diag));
        }
        switch (decision.action) {
        case Action::refresh_credentials:
            st->invalidate(creds); // then at once, with fresh credentials
            continue;
        case Action::retry_after_delay:
            co_await detail::sleep_for(st->executor, decision.delay);
            continue;
        case Action::retry_on_fresh_connection:
            fresh_connection = true;
            continue;
        case Action::done:
        case Action::fail:
            break;
        }
        if (failure) throw *failure;
        throw *answer_error;
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<Stream> Client::open_stream(std::string target, StreamOptions options) {
    namespace http = boost::beast::http;
    namespace asio = boost::asio;
    auto st = state_;
    const auto& opts = st->options;
    const std::string resource = describe_request("GET", target);
    const std::string full_target = join_target(st->config.base_path, target);
    RequestPolicy policy;
    policy.kind = RequestKind::stream_open; // the caller (the watch machine, the log follower) owns the retries
    RequestMachine machine(policy, st->backoff_options());
    for (int attempt = 1;; ++attempt) {
        auto start = std::chrono::steady_clock::now();
        RequestOutcome outcome{resource, 0, {}, attempt, true, {}};
        Credentials creds = co_await st->async_credentials();
        std::unique_ptr<detail::Connection> conn;
        http::request<http::empty_body> req{http::verb::get, full_target, 11};
        st->prepare(req, creds, options.accept);
        http::response_parser<http::empty_body> header;
        header.body_limit(boost::none);
        boost::system::error_code ec;
        try {
            conn = co_await st->connect(creds);
            auto& tcp = boost::beast::get_lowest_layer(conn->stream());
            tcp.expires_after(opts.request_timeout);
            auto [wec, wn] = co_await http::async_write(conn->stream(), req, asio::as_tuple(asio::use_awaitable));
            (void)wn;
            ec = wec;
            if (!ec) {
                auto [rec, rn] = co_await http::async_read_header(conn->stream(), conn->buffer, header,
                                                                  asio::as_tuple(asio::use_awaitable));
                (void)rn;
                ec = rec;
            }
            if (ec) detail::throw_transport_error(ec, resource, "opening the stream", opts.request_timeout);
        } catch (const Error& e) {
            outcome.ec = e.code();
            outcome.elapsed = detail::elapsed_since(start);
            st->report(outcome);
            auto decision = machine.on_transport_failure(static_cast<error>(e.code().value()), false, false,
                                                         RequestMachine::clock::now());
            if (decision.action == RequestDecision::Action::refresh_credentials) {
                st->invalidate(creds);
                continue;
            }
            throw;
        }
        int status = static_cast<int>(header.get().result_int());
        outcome.http_status = status;
        outcome.elapsed = detail::elapsed_since(start);
        if (status == 200) {
            st->report(outcome);
            Stream s;
            s.impl_ = std::make_unique<Stream::Impl>();
            s.impl_->parser.emplace(std::move(header));
            s.impl_->parser->body_limit(boost::none);
            s.impl_->options = options;
            s.impl_->resource = resource;
            s.impl_->connection = std::move(conn);
            co_return s;
        }
        // An error answer: read its (small) body for the Status.
        std::string body, retry_after(header.get()[http::field::retry_after]);
        {
            http::response_parser<http::string_body> rest(std::move(header));
            rest.body_limit(64 * 1024);
            auto [rec, rn] = co_await http::async_read(conn->stream(), conn->buffer, rest, asio::as_tuple(asio::use_awaitable));
            (void)rn;
            if (rec && detail::is_cancellation(rec)) detail::throw_cancelled();
            body = std::move(rest.get().body());
        }
        auto [code, diag] = error_from_response(status, body, retry_after, resource, st->credentials_source());
        outcome.ec = make_error_code(code);
        st->report(outcome);
        auto decision = machine.on_answer(code, diag.retry_after_seconds, RequestMachine::clock::now());
        if (decision.action == RequestDecision::Action::refresh_credentials) {
            st->invalidate(creds);
            continue;
        }
        throw Error(make_error_code(code), std::move(diag));
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::string_view> Stream::read_some() {
    try {
        co_return co_await read_some_once();
    } catch (const boost::system::system_error& e) {
        // Cancellation seen at a suspension point other than the socket's wait (the yield): closed all the same.
        if (detail::is_cancellation(e.code())) close();
        throw;
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<std::string_view> Stream::read_some_once() {
    // The lean read loop: the HTTP framing (chunked or not) is parsed synchronously from the connection's buffer,
    // and the TLS stream is read synchronously (non-blocking) while it has data; the coroutine waits for the
    // socket only when it has none. One wake-up per socket readiness instead of a chain of posted completions
    // per chunk and TLS record; after 64 KiB read without a wait, it lets the executor's other work run once.
    namespace http = boost::beast::http;
    namespace asio = boost::asio;
    constexpr std::size_t read_size = 64 * 1024;
    constexpr std::size_t bytes_between_yields = 64 * 1024;
    const auto fail = [this](boost::system::error_code ec) {
        auto resource = impl_->resource;
        auto idle = impl_->options.idle_timeout;
        bool idle_fired = impl_->watchdog && impl_->watchdog->fired();
        close();
        if (ec == boost::beast::error::timeout || idle_fired) {
            Diagnostics d;
            d.resource = std::move(resource);
            d.client_message = "no data on the stream for " + std::to_string(idle.count()) +
                               " ms (silent or half-open connection); reconnect";
            throw Error(make_error_code(error::stream_idle), std::move(d));
        }
        detail::throw_transport_error(ec, std::move(resource), "reading the stream", idle);
    };
    for (;;) {
        if (!impl_) co_return std::string_view{};
        auto& impl = *impl_;
        auto& parser = *impl.parser;
        if (parser.is_done()) { // the body ended: with the bytes the last read returned, with the connection, or empty
            close();
            co_return std::string_view{};
        }
        auto& buffer = impl.connection->buffer;
        auto& tcp = boost::beast::get_lowest_layer(impl.connection->stream());
        if (!impl.watchdog) {
            // One inactivity timer for the whole stream, moved at most once per idle period (not per read).
            tcp.expires_never();
            impl.watchdog = std::make_shared<detail::IdleWatchdog>(tcp.get_executor(), tcp.socket(),
                                                                   impl.options.idle_timeout);
            impl.watchdog->start();
            impl.watchdog->touch();
            parser.eager(true); // every whole chunk in the buffer in one put()
            boost::system::error_code ec;
            tcp.socket().non_blocking(true, ec);
            if (ec) fail(ec);
        }
        // 1. The body bytes already buffered.
        if (buffer.size() > 0) {
            parser.get().body().data = impl.buffer.data();
            parser.get().body().size = impl.buffer.size();
            parser.get().body().more = true;
            boost::system::error_code ec;
            std::size_t used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
            if (ec) fail(ec); // a malformed chunk: the connection cannot be trusted further
            std::size_t got = impl.buffer.size() - parser.get().body().size;
            if (got > 0) co_return std::string_view(impl.buffer.data(), got);
            if (used > 0 || parser.is_done()) continue; // framing consumed (a chunk header), or the end
        }
        // 2. More bytes: what the TLS stream has now, else wait for the socket.
        boost::system::error_code ec;
        std::size_t n = 0;
        if (buffer.size() >= 16 * 1024 * 1024) {
            ec = http::error::header_limit; // a chunk header that never ends
        } else {
            auto space = buffer.prepare(read_size);
            n = impl.connection->stream().read_some(space, ec);
            buffer.commit(n);
        }
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            impl.unyielded = 0;
            auto [wec] = co_await tcp.socket().async_wait(asio::ip::tcp::socket::wait_read,
                                                          asio::as_tuple(asio::use_awaitable));
            if (wec) fail(wec);
            continue;
        }
        if (ec == asio::error::eof) {
            // Clean end of the connection: complete a body that ends with it; anything else is cut short.
            boost::system::error_code eec;
            parser.put_eof(eec);
            if (eec) fail(eec);
            continue; // done: the end, above
        }
        if (ec) fail(ec);
        impl.watchdog->touch();
        impl.unyielded += n;
        if (impl.unyielded >= bytes_between_yields) {
            impl.unyielded = 0;
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        }
    }
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_IMPL_CLIENT_IPP

// The HTTPS transport of the Kubernetes client: unary requests over a small pool of kept-alive TLS connections,
// with timeouts, 401 credential refresh, and retries of 429/5xx/transport failures through the one backoff
// policy; and streams (watch, log) on their own connection, read incrementally under an inactivity timer plus
// TCP keepalive. See docs/client.md.
#ifndef EXECUTION_SENTINEL_KUBE_CLIENT_HPP
#define EXECUTION_SENTINEL_KUBE_CLIENT_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/detail/tls_connection.hpp>
#include <execution_sentinel/kube/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// What one HTTP attempt came to, for ClientOptions::on_request. Never holds headers or credentials.
struct RequestOutcome {
    std::string resource{};  ///< "GET /api/v1/namespaces/x/pods" (method and path, no query)
    int http_status = 0;   ///< 0 when no HTTP answer arrived (connect, TLS or transport failure)
    std::error_code ec{};    ///< empty for a 2xx answer; otherwise the classified error of this attempt
    int attempt = 1;       ///< 1 for the first attempt of a call, 2 for its first retry, ...
    bool stream = false;   ///< true for the opening of a stream (watch, log, exec)
    std::chrono::milliseconds elapsed{}; ///< time the attempt took
};

/// Options of a Client. Every duration is a per-attempt limit; zero is not allowed for the timeouts.
struct ClientOptions {
    std::chrono::milliseconds connect_timeout{30000};   ///< DNS + TCP connect. Default 30 s (client-go).
    std::chrono::milliseconds handshake_timeout{10000}; ///< TLS handshake. Default 10 s (client-go).
    std::chrono::milliseconds request_timeout{60000};   ///< unary request: write + whole answer; stream: until
                                                        ///< the response header. Default 60 s.
    std::size_t max_idle_connections = 4;  ///< idle kept-alive connections kept for unary requests; 0 = no reuse
    int max_retries = 10;                  ///< retries of a unary request on 429/5xx/transport failure; 0 = none
    std::size_t max_response_bytes = 256 << 20; ///< largest unary body, bytes; larger answers fail
    /// Observer called after every HTTP attempt (success or failure). Must not block; never sees secrets.
    std::function<void(const RequestOutcome&)> on_request{};
    /// Receives warning lines (e.g. disabled TLS verification). Empty = written to std::cerr. Never sees secrets.
    std::function<void(std::string_view)> log{};
    /// The backoff policy of every retry (kube/backoff.hpp: client-go's 0.8 s doubling to 30 s with jitter); a
    /// Retry-After hint (header or Status.details.retryAfterSeconds) lengthens a delay, clamped to
    /// backoff.max_retry_after. Each call gets its own jitter sequence.
    BackoffOptions backoff{};
    /// TCP keepalive of every connection (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT): 30 s idle, 10 s interval, 3 probes.
    detail::KeepaliveSettings keepalive{};
    /// A pooled connection idle longer than this is closed instead of reused. Default 50 s.
    std::chrono::milliseconds max_idle_time{50000};
    std::string user_agent = "execution-sentinel";
};

/// Options of one stream (watch, log follow).
struct StreamOptions {
    /// Inactivity limit: read_some() fails with error::stream_idle when no byte arrives for this long (it
    /// measures silence, not the stream's age). Default 305 s = the longest watch timeoutSeconds + 5 s.
    std::chrono::milliseconds idle_timeout{305000};
    std::string accept = "application/json"; ///< Accept header
};

/// A unary answer with a 2xx status.
struct HttpResponse {
    int status = 0;
    std::string body{};
    std::string content_type{};
};

/// Per-call options of Client::request().
struct RequestOptions {
    std::string content_type = "application/json"; ///< of the request body (e.g. application/merge-patch+json)
    std::string accept = "application/json";
    std::optional<int> max_retries{};  ///< overrides ClientOptions::max_retries
    /// Whether 5xx and transport failures may be retried. Default (nullopt): GET, HEAD, PUT and DELETE are,
    /// POST and PATCH are not (429 and connect failures, where nothing was processed, are always retried).
    std::optional<bool> idempotent{};
};

namespace detail {

/// One TLS connection with its read buffer (which may hold bytes read past a response).
struct Connection {
    TlsSession tls;
    boost::beast::flat_buffer buffer;
    const void* context_key = nullptr;
    std::chrono::steady_clock::time_point idle_since{};
    bool reused = false;
    TlsStream& stream() { return *tls.stream; }
};

/// State shared by a Client and its copies, and by the coroutines they run (held by shared_ptr, so a Client
/// may be destroyed while an operation is still finishing).
struct ClientState {
    boost::asio::any_io_executor executor;
    ClusterConfig config;
    ClientOptions options;

    std::mutex mutex{};
    std::shared_ptr<boost::asio::ssl::context> context; // for context_cert/context_key
    std::string context_cert, context_key{};
    std::vector<std::unique_ptr<Connection>> idle{};
    std::atomic<std::uint64_t> backoff_sequence{0};

    /// The client's backoff options with a seed of its own, so that concurrent retry loops do not jitter alike.
    BackoffOptions backoff_options() {
        BackoffOptions b = options.backoff;
        b.seed ^= (++backoff_sequence) * 0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(this);
        return b;
    }

    ConnectSettings connect_settings() const {
        return {options.connect_timeout, options.handshake_timeout, options.keepalive};
    }

    Credentials credentials() {
        if (!config.credentials) return {};
        return config.credentials->current();
    }

    void invalidate(const Credentials& used) {
        if (config.credentials) config.credentials->invalidate(used.generation);
    }

    std::string credentials_source() const {
        return config.credentials ? config.credentials->describe() : std::string("no credentials");
    }

    std::shared_ptr<boost::asio::ssl::context> tls_context(const Credentials& creds) {
        std::lock_guard lock(mutex);
        if (!context || context_cert != creds.client_certificate_pem || context_key != creds.client_key_pem) {
            context = make_tls_context(config, creds);
            context_cert = creds.client_certificate_pem;
            context_key = creds.client_key_pem;
            idle.clear(); // connections authenticated with the old certificate
        }
        return context;
    }

    void warn(std::string_view line) {
        if (options.log) options.log(line);
        else std::cerr << line << std::endl;
    }

    void report(const RequestOutcome& outcome) {
        if (!options.on_request) return;
        try {
            options.on_request(outcome);
        } catch (...) {
            // an observer's failure must not break the request
        }
    }

    std::unique_ptr<Connection> take_idle(const void* key) {
        std::lock_guard lock(mutex);
        auto now = std::chrono::steady_clock::now();
        while (!idle.empty()) {
            auto c = std::move(idle.back());
            idle.pop_back();
            if (c->context_key == key && now - c->idle_since < options.max_idle_time) {
                c->reused = true;
                return c;
            }
        }
        return nullptr;
    }

    void give_back(std::unique_ptr<Connection> c) {
        std::lock_guard lock(mutex);
        if (idle.size() >= options.max_idle_connections || c->context_key != context.get()) return;
        c->idle_since = std::chrono::steady_clock::now();
        idle.push_back(std::move(c));
    }

    /// A new connected, verified TLS connection for `creds`.
    boost::asio::awaitable<std::unique_ptr<Connection>> connect(const Credentials& creds) {
        auto ctx = tls_context(creds);
        auto c = std::make_unique<Connection>();
        c->tls.context = ctx;
        c->tls.stream = std::make_unique<TlsStream>(executor, *ctx);
        c->context_key = ctx.get();
        co_await connect_tls(*c->tls.stream, c->tls.verify_failure, config, connect_settings());
        co_return c;
    }

    template <class Body>
    void prepare(boost::beast::http::request<Body>& req, const Credentials& creds, std::string_view accept) const {
        namespace http = boost::beast::http;
        req.set(http::field::host, host_header(config));
        req.set(http::field::user_agent, options.user_agent);
        if (!accept.empty()) req.set(http::field::accept, accept);
        if (!creds.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + creds.bearer_token);
        req.keep_alive(true);
    }
};

inline boost::asio::awaitable<void> sleep_for(boost::asio::any_io_executor ex, std::chrono::milliseconds d) {
    boost::asio::steady_timer timer(ex, d);
    co_await timer.async_wait(boost::asio::use_awaitable);
}

inline std::chrono::milliseconds elapsed_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

} // namespace detail

/// An open HTTP response body read as it arrives (chunked decoding done). Move-only; owns its connection.
/// Not thread-safe: one read_some() at a time; close() from the same executor, not during a read (cancel the
/// read through its cancellation slot instead).
class Stream {
public:
    Stream() = default;
    Stream(Stream&&) noexcept = default;
    Stream& operator=(Stream&& other) noexcept {
        if (this != &other) {
            close();
            impl_ = std::move(other.impl_);
        }
        return *this;
    }
    ~Stream() { close(); }

    /// The next body bytes. Completes with an empty view at the clean end of the body. The view stays valid
    /// until the next read_some(), close() or destruction. Throws kube::Error: stream_idle (no byte within
    /// StreamOptions::idle_timeout: a silent or half-open connection), connection_lost (reset, EOF mid-body,
    /// truncated TLS). Cancellation (per-operation slot, terminal) closes the stream and throws
    /// boost::system::system_error(operation_aborted). Completes on the client's executor.
    boost::asio::awaitable<std::string_view> read_some();

    /// Closes the connection; later read_some() calls complete with an empty view.
    void close() noexcept {
        if (!impl_) return;
        boost::system::error_code ec;
        boost::beast::get_lowest_layer(impl_->connection->stream()).socket().close(ec);
        impl_.reset();
    }

    bool is_open() const noexcept { return impl_ != nullptr; }

private:
    friend class Client;
    struct Impl {
        std::unique_ptr<detail::Connection> connection;
        std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser;
        std::vector<char> buffer = std::vector<char>(64 * 1024);
        StreamOptions options;
        std::string resource;
        bool done = false;
    };
    std::unique_ptr<Impl> impl_{};
};

/// Note for GCC 12: a brace-initialized aggregate temporary inside a co_await expression is destroyed twice
/// by that compiler (`co_await client.open_stream(t, StreamOptions{...})` crashes). Name such arguments first
/// (`StreamOptions o{...}; co_await client.open_stream(t, o);`). The overloads without options avoid default
/// arguments of aggregate type for the same reason.
///
/// The Kubernetes API client. Copies share one connection pool and configuration. Thread-safe: calls may run
/// concurrently from several coroutines and threads. Every awaitable below runs on the client's executor,
/// supports per-operation cancellation (terminal; experimental::awaitable_operators and cancel_after work),
/// reports cancellation as boost::system::system_error(asio::error::operation_aborted), and every other
/// failure as kube::Error whose Diagnostics say what was asked, what the server said and what to do next.
class Client {
public:
    /// Logs one loud warning line when the configuration disables TLS verification.
    Client(boost::asio::any_io_executor ex, ClusterConfig config, ClientOptions options = {})
        : state_(std::make_shared<detail::ClientState>()) {
        state_->executor = std::move(ex);
        state_->config = std::move(config);
        state_->options = std::move(options);
        if (state_->config.insecure_skip_tls_verify)
            state_->warn("WARNING: TLS verification of the Kubernetes API server " + state_->config.server +
                         " is DISABLED (insecure-skip-tls-verify in " + state_->config.source +
                         "); anyone on the network path can impersonate the server and read the credentials");
    }

    const ClusterConfig& config() const noexcept { return state_->config; }
    const ClientOptions& options() const noexcept { return state_->options; }
    boost::asio::any_io_executor get_executor() const noexcept { return state_->executor; }

    /// GET `target` (an API path with query, e.g. "/api/v1/namespaces/x/pods?limit=500"; the config's base_path
    /// is prepended) and parse the JSON body. Retries 429/5xx/transport failures up to max_retries through the
    /// backoff policy, honouring Retry-After; refreshes credentials once on 401. Throws kube::Error.
    boost::asio::awaitable<boost::json::value> get_json(std::string target) {
        auto r = co_await request(boost::beast::http::verb::get, target);
        co_return parse_json(r.body, "GET", target);
    }

    /// Like get_json() with a single attempt (still one credential refresh on 401).
    boost::asio::awaitable<boost::json::value> get_json_once(std::string target) {
        RequestOptions ro;
        ro.max_retries = 0;
        std::string no_body;
        auto r = co_await request(boost::beast::http::verb::get, target, std::move(no_body), std::move(ro));
        co_return parse_json(r.body, "GET", target);
    }

    /// A request with a JSON body (POST/PUT/PATCH) or none (DELETE, or an empty optional), answered with JSON.
    /// Throws kube::Error.
    boost::asio::awaitable<boost::json::value> request_json(boost::beast::http::verb method, std::string target,
                                                            std::optional<boost::json::value> body,
                                                            RequestOptions options) {
        std::string text = body ? boost::json::serialize(*body) : std::string();
        auto r = co_await request(method, target, std::move(text), std::move(options));
        co_return parse_json(r.body, std::string(boost::beast::http::to_string(method)), target);
    }
    boost::asio::awaitable<boost::json::value> request_json(boost::beast::http::verb method, std::string target,
                                                            boost::json::value body) {
        RequestOptions options;
        return request_json(method, std::move(target), std::optional<boost::json::value>(std::move(body)),
                            std::move(options));
    }
    boost::asio::awaitable<boost::json::value> request_json(boost::beast::http::verb method, std::string target) {
        RequestOptions options;
        return request_json(method, std::move(target), std::nullopt, std::move(options));
    }

    /// Any unary request; completes with the 2xx answer, throws kube::Error for anything else.
    boost::asio::awaitable<HttpResponse> request(boost::beast::http::verb method, std::string target,
                                                 std::string body, RequestOptions options);
    boost::asio::awaitable<HttpResponse> request(boost::beast::http::verb method, std::string target,
                                                 std::string body = {}) {
        RequestOptions options;
        return request(method, std::move(target), std::move(body), std::move(options));
    }

    /// Opens a stream (watch, log follow) on a connection of its own and completes once a 200 header has
    /// arrived (within request_timeout). Non-200 → kube::Error with the server's Status (no retries, except
    /// one credential refresh on 401; the caller owns the retry policy of streams). Transport failures as in
    /// request().
    boost::asio::awaitable<Stream> open_stream(std::string target, StreamOptions options);
    boost::asio::awaitable<Stream> open_stream(std::string target) {
        StreamOptions options;
        return open_stream(std::move(target), std::move(options));
    }

    /// Number of idle pooled connections (for tests and metrics).
    std::size_t idle_connections() const {
        std::lock_guard lock(state_->mutex);
        return state_->idle.size();
    }

    /// The shared state, for the exec and log helpers of this library. Not for applications.
    const std::shared_ptr<detail::ClientState>& state() const noexcept { return state_; }

private:
    struct Exchange {
        boost::system::error_code ec;
        bool got_bytes = false;
        int status = 0;
        std::string body;
        std::string content_type;
        std::string retry_after;
        bool keep_alive = false;
    };

    static boost::json::value parse_json(const std::string& body, const std::string& method, const std::string& target) {
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

    static boost::asio::awaitable<Exchange> exchange(detail::Connection& c,
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

    std::shared_ptr<detail::ClientState> state_{};
};

// ------------------------------------------------------------------------------------------------ bodies

inline boost::asio::awaitable<HttpResponse> Client::request(boost::beast::http::verb method, std::string target,
                                                            std::string body, RequestOptions options) {
    namespace http = boost::beast::http;
    auto st = state_; // keeps the state alive for the whole call
    const auto& opts = st->options;
    const std::string method_name(http::to_string(method));
    const std::string resource = describe_request(method_name, target);
    const std::string full_target = join_target(st->config.base_path, target);
    const int max_retries = std::max(0, options.max_retries.value_or(opts.max_retries));
    const bool idempotent = options.idempotent.value_or(method == http::verb::get || method == http::verb::head ||
                                                        method == http::verb::put || method == http::verb::delete_);
    Backoff backoff(st->backoff_options());
    int retries = 0;
    int attempt = 0;
    bool refreshed_credentials = false;

    for (;;) {
        ++attempt;
        auto start = std::chrono::steady_clock::now();
        RequestOutcome outcome{resource, 0, {}, attempt, false, {}};
        std::optional<Error> failure; // a transport failure of this attempt
        Exchange ex;
        Credentials creds = st->credentials();
        try {
            auto ctx = st->tls_context(creds);
            auto conn = st->take_idle(ctx.get());
            http::request<http::string_body> req{method, full_target, 11};
            st->prepare(req, creds, options.accept);
            if (!body.empty() || method == http::verb::post || method == http::verb::put || method == http::verb::patch) {
                req.set(http::field::content_type, options.content_type);
                req.body() = body;
            }
            req.prepare_payload();
            if (!conn) conn = co_await st->connect(creds);
            ex = co_await exchange(*conn, req, opts.request_timeout, opts.max_response_bytes);
            if (ex.ec && !ex.got_bytes && conn->reused && idempotent && !detail::is_cancellation(ex.ec) &&
                ex.ec != boost::beast::error::timeout) {
                // The pooled connection had been closed by the server: once more on a fresh one.
                conn = co_await st->connect(creds);
                ex = co_await exchange(*conn, req, opts.request_timeout, opts.max_response_bytes);
            }
            if (ex.ec) {
                if (ex.ec == http::error::body_limit) {
                    Diagnostics d;
                    d.resource = resource;
                    d.client_message = "the answer is larger than max_response_bytes (" +
                                       std::to_string(opts.max_response_bytes) +
                                       " bytes); raise ClientOptions::max_response_bytes or list in pages (limit/continue)";
                    outcome.ec = make_error_code(error::malformed_response);
                    outcome.elapsed = detail::elapsed_since(start);
                    st->report(outcome);
                    throw Error(make_error_code(error::malformed_response), std::move(d));
                }
                detail::throw_transport_error(ex.ec, resource, "the request", opts.request_timeout);
            }
            if (ex.keep_alive) st->give_back(std::move(conn));
        } catch (const Error& e) {
            if (e.code() == error::malformed_response) throw;
            failure = e;
        }

        if (failure) {
            outcome.ec = failure->code();
            outcome.elapsed = detail::elapsed_since(start);
            st->report(outcome);
            bool may_retry = failure->code() == error::connect_failed ||
                             (idempotent && (failure->code() == error::timeout || failure->code() == error::connection_lost ||
                                             failure->code() == error::tls_handshake_failed));
            if (!may_retry || retries >= max_retries) throw *failure;
            ++retries;
            co_await detail::sleep_for(st->executor, backoff.next_delay(Backoff::clock::now()));
            continue;
        }

        outcome.http_status = ex.status;
        outcome.elapsed = detail::elapsed_since(start);
        if (ex.status >= 200 && ex.status < 300) {
            st->report(outcome);
            co_return HttpResponse{ex.status, std::move(ex.body), std::move(ex.content_type)};
        }
        auto [code, diag] = error_from_response(ex.status, ex.body, ex.retry_after, resource, st->credentials_source());
        outcome.ec = make_error_code(code);
        st->report(outcome);
        if (code == error::unauthorized && !refreshed_credentials) {
            refreshed_credentials = true;
            st->invalidate(creds);
            continue; // at once, with fresh credentials
        }
        bool retry = (code == error::too_many_requests || (code == error::server_error && idempotent)) &&
                     retries < max_retries;
        if (!retry) {
            if (code == error::too_many_requests || code == error::server_error)
                diag.client_message += " (gave up after " + std::to_string(retries) + " retries)";
            throw Error(make_error_code(code), std::move(diag));
        }
        ++retries;
        co_await detail::sleep_for(st->executor, backoff.next_delay(Backoff::clock::now(), diag.retry_after_seconds));
    }
}

inline boost::asio::awaitable<Stream> Client::open_stream(std::string target, StreamOptions options) {
    namespace http = boost::beast::http;
    namespace asio = boost::asio;
    auto st = state_;
    const auto& opts = st->options;
    const std::string resource = describe_request("GET", target);
    const std::string full_target = join_target(st->config.base_path, target);
    bool refreshed_credentials = false;
    for (int attempt = 1;; ++attempt) {
        auto start = std::chrono::steady_clock::now();
        RequestOutcome outcome{resource, 0, {}, attempt, true, {}};
        Credentials creds = st->credentials();
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
        if (code == error::unauthorized && !refreshed_credentials) {
            refreshed_credentials = true;
            st->invalidate(creds);
            continue;
        }
        throw Error(make_error_code(code), std::move(diag));
    }
}

inline boost::asio::awaitable<std::string_view> Stream::read_some() {
    namespace http = boost::beast::http;
    namespace asio = boost::asio;
    for (;;) {
        if (!impl_ || impl_->done) co_return std::string_view{};
        auto& impl = *impl_;
        auto& parser = *impl.parser;
        parser.get().body().data = impl.buffer.data();
        parser.get().body().size = impl.buffer.size();
        parser.get().body().more = true;
        auto& tcp = boost::beast::get_lowest_layer(impl.connection->stream());
        tcp.expires_after(impl.options.idle_timeout);
        auto [ec, n] = co_await http::async_read_some(impl.connection->stream(), impl.connection->buffer, parser,
                                                      asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            auto resource = impl.resource;
            auto idle = impl.options.idle_timeout;
            close();
            if (ec == boost::beast::error::timeout) {
                Diagnostics d;
                d.resource = std::move(resource);
                d.client_message = "no data on the stream for " + std::to_string(idle.count()) +
                                   " ms (silent or half-open connection); reconnect";
                throw Error(make_error_code(error::stream_idle), std::move(d));
            }
            detail::throw_transport_error(ec, std::move(resource), "reading the stream", idle);
        }
        std::size_t got = impl.buffer.size() - parser.get().body().size;
        if (parser.is_done()) {
            impl.done = true;
            tcp.expires_never();
        }
        if (got == 0) {
            if (impl.done) {
                close();
                co_return std::string_view{};
            }
            continue;
        }
        co_return std::string_view(impl.buffer.data(), got);
    }
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_CLIENT_HPP

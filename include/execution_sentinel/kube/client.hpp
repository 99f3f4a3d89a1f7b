// The HTTPS transport of the Kubernetes client: unary requests over a small pool of kept-alive TLS connections,
// with timeouts, 401 credential refresh, and retries of 429/5xx/transport failures through the one backoff
// policy; and streams (watch, log) on their own connection, read incrementally under an inactivity timer plus
// TCP keepalive. See docs/client.md.
#ifndef EXECUTION_SENTINEL_KUBE_CLIENT_HPP
#define EXECUTION_SENTINEL_KUBE_CLIENT_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/detail/credentials_util.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/detail/tls_connection.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/detail/build_mode.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
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
    std::size_t max_response_bytes = 256 << 20; ///< largest unary body, bytes; larger answers fail with
                                                ///< error::response_too_large
    /// Observer called after every HTTP attempt (success or failure). Must not block; never sees secrets.
    std::function<void(const RequestOutcome&)> on_request{};
    /// Receives warning lines (e.g. disabled TLS verification). Empty = not written anywhere (the library never
    /// writes to stderr by itself). Never sees secrets.
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
    std::optional<std::size_t> max_response_bytes{}; ///< overrides ClientOptions::max_response_bytes
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

    /// The credentials to use now, without blocking the executor: when getting them would run an exec plugin,
    /// current() runs on the client's credential thread and the coroutine resumes on `executor` after it.
    boost::asio::awaitable<Credentials> async_credentials();
    std::mutex credential_thread_mutex{};
    std::unique_ptr<boost::asio::thread_pool> credential_thread{}; // created on first need, one thread

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
    boost::asio::awaitable<std::unique_ptr<Connection>> connect(const Credentials& creds);

    template <class Body>
    void prepare(boost::beast::http::request<Body>& req, const Credentials& creds, std::string_view accept) const {
        namespace http = boost::beast::http;
        // The token was checked by the CredentialProvider when it was read (every source goes through it).
        if (auto problem = header_value_problem(options.user_agent, "ClientOptions::user_agent", 1024))
            throw_config_error(error::config_invalid, *problem);
        req.set(http::field::host, host_header(config));
        req.set(http::field::user_agent, options.user_agent);
        if (!accept.empty()) req.set(http::field::accept, accept);
        if (!creds.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + creds.bearer_token);
        req.keep_alive(true);
    }
};

EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> sleep_for(boost::asio::any_io_executor ex, std::chrono::milliseconds d);

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
    boost::asio::awaitable<std::string_view> read_some_once();
    struct Impl {
        std::unique_ptr<detail::Connection> connection;
        std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser;
        std::vector<char> buffer = std::vector<char>(64 * 1024);
        StreamOptions options;
        std::string resource;
        std::size_t unyielded = 0; ///< bytes read since the reader last waited or yielded
        std::shared_ptr<detail::IdleWatchdog> watchdog; ///< the inactivity limit (destroyed before connection)
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
    boost::asio::awaitable<boost::json::value> get_json(std::string target);

    /// Like get_json() with a single attempt (still one credential refresh on 401).
    boost::asio::awaitable<boost::json::value> get_json_once(std::string target);
    /// Like get_json_once() with a body limit of its own: a larger answer throws error::response_too_large
    /// without being kept whole (e.g. a list page from a server that ignores `limit`).
    boost::asio::awaitable<boost::json::value> get_json_once(std::string target, std::size_t max_response_bytes);

    /// A request with a JSON body (POST/PUT/PATCH) or none (DELETE, or an empty optional), answered with JSON.
    /// Throws kube::Error.
    boost::asio::awaitable<boost::json::value> request_json(boost::beast::http::verb method, std::string target,
                                                            std::optional<boost::json::value> body,
                                                            RequestOptions options);
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

    static boost::json::value parse_json(const std::string& body, const std::string& method, const std::string& target);

    static boost::asio::awaitable<Exchange> exchange(detail::Connection& c,
                                                     boost::beast::http::request<boost::beast::http::string_body>& req,
                                                     std::chrono::milliseconds timeout, std::size_t max_body);

    std::shared_ptr<detail::ClientState> state_{};
};

} // namespace execution_sentinel::kube

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/impl/client.ipp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_CLIENT_HPP

// HttpServer: a bounded HTTP/1.1 server on Boost.Beast for /metrics, /healthz, /readyz, JSON API routes and
// server-sent event streams. Plain TCP by default; with HttpServerOptions::tls (make_server_tls_context(): a PEM
// certificate chain and key) every connection is HTTPS only (TLS 1.2 or later; a client that does not complete the
// TLS handshake within read_timeout is disconnected, and nothing is answered in plain text).
//
// Usage:
//   es::serve::SentinelMetrics metrics;
//   es::serve::Router router;
//   es::serve::add_health_routes(router, metrics.registry(), [&] { return readiness_checks(); });
//   auto hub = std::make_shared<es::serve::EventHub>(es::serve::EventStreamOptions{}, &metrics.registry());
//   router.get("/api/v1/events", [hub](const es::serve::RouteRequest&) {
//       return es::serve::HttpResponse::event_stream(hub); });
//   es::serve::HttpServer server(io.get_executor(), std::move(router),
//                                {.address = "0.0.0.0", .port = 9464, .metrics = &metrics.registry()});
//   server.start();          // binds and listens; throws naming the address when it cannot
//   hub->publish(report);    // from any thread, never blocks
//   io.run();
//
// Bounds (every request from outside may be hostile; the statuses are in router.hpp):
//   * at most max_connections open connections (event streams included); one more is answered 503 and closed;
//   * headers at most HttpLimits::header_limit (431), bodies at most body_limit (413);
//   * a request must arrive complete within read_timeout of its first byte (408, then the connection is closed: a
//     slow "slowloris" sender holds a connection for read_timeout at most); a keep-alive connection without a new
//     request for idle_timeout is closed; an answer not written within write_timeout closes the connection;
//   * a malformed request is answered 400 and its connection closed; at most max_requests_per_connection requests
//     are served on one connection.
//
// Threads: the server runs on the executor it is given; each connection on its own strand, so the io_context may be
// run by several threads. start(), stop() and stats() may be called from any thread. Handlers run on the
// connection's strand and must not block (they answer from memory). The server's state is shared with its
// connections: destroying the HttpServer stops it; the io_context must still run (or be destroyed) afterwards for
// the connections to finish.
#ifndef EXECUTION_SENTINEL_SERVE_HTTP_SERVER_HPP
#define EXECUTION_SENTINEL_SERVE_HTTP_SERVER_HPP

#include <execution_sentinel/serve/event_stream.hpp>
#include <execution_sentinel/serve/metrics.hpp>
#include <execution_sentinel/serve/router.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

/// Options of HttpServer. Aggregate: use designated initializers.
struct HttpServerOptions {
    /// The address to listen on: "127.0.0.1" (default: this machine only), "0.0.0.0" or "::" for every interface.
    std::string address = "127.0.0.1";
    /// The port; 0 (default) picks a free one (see HttpServer::local_endpoint()).
    unsigned short port = 0;
    HttpLimits limits{};
    /// From the first byte of a request to its last. Default 10 s.
    std::chrono::milliseconds read_timeout{10000};
    /// A keep-alive connection waiting for its next request is closed after this long. Default 60 s.
    std::chrono::milliseconds idle_timeout{60000};
    /// Writing one answer (or one batch of events). Default 10 s.
    std::chrono::milliseconds write_timeout{10000};
    /// Open connections at most (event streams included). Default 128; 0 is read as 1.
    std::size_t max_connections = 128;
    /// Requests served on one keep-alive connection before it is closed. Default 1000.
    std::size_t max_requests_per_connection = 1000;
    /// When set, the server speaks HTTPS only, with this context (make_server_tls_context()).
    std::shared_ptr<boost::asio::ssl::context> tls{};
    /// When set, the server registers execution_sentinel_http_requests_total{handler,code},
    /// execution_sentinel_http_connections and execution_sentinel_http_connections_rejected_total here. Must
    /// outlive the server.
    Registry* metrics = nullptr;
};

/// Counters of a server (a snapshot).
struct HttpServerStats {
    std::size_t open_connections = 0;
    std::uint64_t accepted = 0;  ///< connections accepted (rejected ones included)
    std::uint64_t rejected = 0;  ///< connections answered 503 because max_connections were open
    std::uint64_t requests = 0;  ///< requests answered (errors included)
    std::uint64_t tls_handshake_failures = 0; ///< TLS connections closed because their handshake failed
};

namespace detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

/// The bytes of a connection: the TCP stream itself, or TLS over it. A Beast AsyncReadStream and AsyncWriteStream
/// (http::async_read and async_write take it); timeouts and closing are the TCP stream's.
class HttpIo {
public:
    using executor_type = beast::tcp_stream::executor_type;
    HttpIo(beast::tcp_stream& tcp, asio::ssl::context* tls) : tcp_(tcp) {
        if (tls) tls_.emplace(tcp_, *tls);
    }
    HttpIo(const HttpIo&) = delete;
    HttpIo& operator=(const HttpIo&) = delete;

    executor_type get_executor() { return tcp_.get_executor(); }
    bool is_tls() const noexcept { return tls_.has_value(); }
    asio::ssl::stream<beast::tcp_stream&>& tls() { return *tls_; }

    template <class MutableBuffers, class Token> auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                if (tls_) tls_->async_read_some(b, std::move(handler));
                else tcp_.async_read_some(b, std::move(handler));
            },
            token, buffers);
    }
    template <class ConstBuffers, class Token> auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return asio::async_initiate<Token, void(beast::error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                if (tls_) tls_->async_write_some(b, std::move(handler));
                else tcp_.async_write_some(b, std::move(handler));
            },
            token, buffers);
    }

private:
    beast::tcp_stream& tcp_;
    std::optional<asio::ssl::stream<beast::tcp_stream&>> tls_;
};

/// One connection, owned by its coroutine; the server keeps a weak reference to close it on stop().
struct HttpConnection : std::enable_shared_from_this<HttpConnection> {
    HttpConnection(asio::ip::tcp::socket socket, asio::ssl::context* tls)
        : stream(std::move(socket)), io(stream, tls), wake(stream.get_executor()), deadline(stream.get_executor()) {}

    /// Closes the socket and wakes an event stream; runs on the connection's strand.
    void close_now() {
        beast::error_code ec;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        stream.close();
        wake.cancel();
        deadline.cancel();
    }
    /// Schedules close_now() on the connection's strand (callable from any thread).
    void close() {
        asio::post(stream.get_executor(), [self = shared_from_this()] { self->close_now(); });
    }

    /// Reads must end within `limit`: when it passes, the pending read is cancelled (the socket stays open, so
    /// that a 408 can still be written) and timed_out is set. Runs on the connection's strand.
    void arm_read_deadline(std::chrono::milliseconds limit) {
        stream.expires_never(); // the stream's own timer would close the socket
        timed_out = false;
        deadline.expires_after(limit);
        deadline.async_wait([weak = weak_from_this(), generation = ++deadline_generation](const beast::error_code& ec) {
            if (ec) return;
            auto self = weak.lock();
            // A stale expiry (the read completed and the deadline was disarmed or re-armed meanwhile) does nothing.
            if (self && self->deadline_generation == generation) {
                self->timed_out = true;
                beast::error_code ignored;
                self->stream.socket().cancel(ignored);
            }
        });
    }
    void disarm_read_deadline() {
        ++deadline_generation;
        deadline.cancel();
    }

    beast::tcp_stream stream;
    HttpIo io;                   ///< what is read and written: `stream`, or TLS over it
    asio::steady_timer wake;     ///< an event stream waits on it; cancelled to wake it
    asio::steady_timer deadline; ///< the read deadline
    bool timed_out = false;
    std::uint64_t deadline_generation = 0;
};

struct HttpServerState : std::enable_shared_from_this<HttpServerState> {
    HttpServerState(asio::any_io_executor ex, Router r, HttpServerOptions o)
        : executor(std::move(ex)), router(std::move(r)), options(std::move(o)),
          acceptor(asio::make_strand(executor)) {
        if (options.max_connections == 0) options.max_connections = 1;
        if (options.metrics) {
            requests_family = &options.metrics->counter(
                "execution_sentinel_http_requests_total",
                "HTTP requests answered by the sentinel's server, by route (handler) and status code.",
                {"handler", "code"}, {.max_series = 500});
            connections_gauge = options.metrics
                                    ->gauge("execution_sentinel_http_connections",
                                            "Open connections to the sentinel's HTTP server.")
                                    .with();
            rejected_counter = options.metrics
                                   ->counter("execution_sentinel_http_connections_rejected_total",
                                             "Connections refused (503) because the connection limit was reached.")
                                   .with();
        }
    }

    asio::any_io_executor executor;
    const Router router;
    HttpServerOptions options;
    asio::ip::tcp::acceptor acceptor;

    std::mutex mutex;
    std::map<std::uint64_t, std::weak_ptr<HttpConnection>> connections;
    std::uint64_t next_id = 0;
    std::atomic<bool> stopped{false};
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, requests{0}, tls_handshake_failures{0};

    CounterFamily* requests_family = nullptr;
    Gauge connections_gauge;
    Counter rejected_counter;

    void count_request(const std::string& handler, unsigned status) {
        ++requests;
        if (requests_family) requests_family->with({handler, std::to_string(status)}).inc();
    }

    /// Registers a connection; 0 when the limit is reached.
    std::uint64_t add(const std::shared_ptr<HttpConnection>& c) {
        std::lock_guard lock(mutex);
        if (stopped || connections.size() >= options.max_connections) return 0;
        const auto id = ++next_id;
        connections.emplace(id, c);
        connections_gauge.inc();
        return id;
    }
    void remove(std::uint64_t id) {
        std::lock_guard lock(mutex);
        if (connections.erase(id)) connections_gauge.dec();
    }
    std::size_t open() {
        std::lock_guard lock(mutex);
        return connections.size();
    }

    void stop() {
        if (stopped.exchange(true)) return;
        asio::post(acceptor.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            self->acceptor.close(ec);
        });
        std::vector<std::shared_ptr<HttpConnection>> open_now;
        {
            std::lock_guard lock(mutex);
            for (auto& [id, weak] : connections)
                if (auto c = weak.lock()) open_now.push_back(std::move(c));
        }
        for (auto& c : open_now) c->close();
    }

    asio::awaitable<void> write_message(HttpConnection& c, http::response<http::string_body>& m) {
        c.stream.expires_after(options.write_timeout);
        auto [ec, n] = co_await http::async_write(c.io, m, asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec) c.close_now();
    }

    /// Refuses a connection over the limit: a 503, then close (the request is not read).
    asio::awaitable<void> refuse(std::shared_ptr<HttpConnection> c) {
        ++rejected;
        rejected_counter.inc();
        if (c->io.is_tls()) { // no handshake for a connection that is refused: closed at once
            c->close_now();
            co_return;
        }
        auto m = to_message(HttpResponse::error(503, "too many connections; retry later"), 11, false, false);
        m.set(http::field::retry_after, "1");
        c->stream.expires_after(std::chrono::seconds(1));
        auto [ec, n] = co_await http::async_write(c->stream, m, asio::as_tuple(asio::use_awaitable));
        (void)ec;
        (void)n;
        beast::error_code ignored;
        c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        c->stream.close();
    }

    asio::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        asio::steady_timer pause(acceptor.get_executor());
        while (!stopped) {
            auto [ec, socket] =
                co_await acceptor.async_accept(asio::make_strand(executor), asio::as_tuple(asio::use_awaitable));
            if (stopped || ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // Out of file descriptors, or a connection reset before it was accepted: wait, then go on.
                pause.expires_after(std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            ++accepted;
            auto c = std::make_shared<HttpConnection>(std::move(socket), options.tls.get());
            const auto id = add(c);
            if (id == 0) {
                asio::co_spawn(c->stream.get_executor(), refuse(c), asio::detached);
                continue;
            }
            asio::co_spawn(c->stream.get_executor(), run_connection(c, id), asio::detached);
        }
    }

    asio::awaitable<void> run_connection(std::shared_ptr<HttpConnection> c, std::uint64_t id) {
        auto self = shared_from_this();
        try {
            co_await serve_requests(*c);
        } catch (...) {
            // Nothing a client sends may end the server; the connection is closed below.
        }
        c->close_now();
        remove(id);
    }

    asio::awaitable<void> serve_requests(HttpConnection& c) {
        if (c.io.is_tls()) { // the handshake, within the read timeout; a client that does not speak TLS is closed
            c.arm_read_deadline(options.read_timeout);
            auto [ec] = co_await c.io.tls().async_handshake(asio::ssl::stream_base::server,
                                                            asio::as_tuple(asio::use_awaitable));
            c.disarm_read_deadline();
            if (ec) {
                ++tls_handshake_failures;
                co_return;
            }
        }
        beast::flat_buffer buffer;
        for (std::size_t served = 0; !stopped; ++served) {
            if (buffer.size() == 0) {
                // Keep-alive: wait for the first byte of the next request; silence closes the connection.
                c.arm_read_deadline(options.idle_timeout);
                auto [ec, n] = co_await c.io.async_read_some(buffer.prepare(4096), asio::as_tuple(asio::use_awaitable));
                c.disarm_read_deadline();
                if (ec) co_return;
                buffer.commit(n);
            }
            c.arm_read_deadline(options.read_timeout);
            http::request_parser<http::string_body> parser;
            configure_parser(parser, options.limits);
            auto [ec, n] = co_await http::async_read(c.io, buffer, parser, asio::as_tuple(asio::use_awaitable));
            (void)n;
            c.disarm_read_deadline();
            if (ec) {
                const auto status = c.timed_out ? std::optional<unsigned>(408) : status_for_read_error(ec);
                if (!status || stopped) co_return;
                count_request("invalid", *status);
                auto m = to_message(HttpResponse::error(*status, *status == 408   ? "the request did not arrive in time"
                                                                 : *status == 431 ? "the request headers are too large"
                                                                 : *status == 413 ? "the request body is too large"
                                                                                  : "the request is not valid HTTP/1.1"),
                                    11, false, false);
                co_await write_message(c, m);
                co_return;
            }
            HttpRequest req = parser.release();
            RouteResult result = router.handle(req);
            if (result.response.deferred) result.response = co_await deferred_response(std::move(result.response.deferred));
            count_request(result.handler, result.response.event_hub ? 200 : result.response.status);
            if (result.response.event_hub) {
                co_await serve_events(c, req, result.response);
                co_return;
            }
            const bool keep = req.keep_alive() && served + 1 < options.max_requests_per_connection && !stopped;
            auto m = to_message(result.response, req.version(), keep, req.method() == http::verb::head);
            c.stream.expires_after(options.write_timeout);
            auto [wec, wn] = co_await http::async_write(c.io, m, asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec || !keep) co_return;
        }
    }

    /// The answer a deferred handler computes (router.hpp, HttpResponse::deferred), its exception made an answer.
    static asio::awaitable<HttpResponse> deferred_response(std::function<asio::awaitable<HttpResponse>()> work) {
        std::exception_ptr failed;
        try {
            auto r = co_await work();
            if (r.status < 100 || r.status > 599) r.status = 500;
            r.deferred = nullptr;
            co_return r;
        } catch (...) {
            failed = std::current_exception();
        }
        co_return error_response(failed);
    }

    asio::awaitable<void> write_text(HttpConnection& c, std::string_view text, bool& ok) {
        c.stream.expires_after(options.write_timeout);
        auto [ec, n] = co_await asio::async_write(c.io, asio::buffer(text.data(), text.size()),
                                                  asio::as_tuple(asio::use_awaitable));
        (void)n;
        ok = !ec;
    }

    /// Streams `response.event_hub`'s events until the client goes, is dropped, or the server stops.
    asio::awaitable<void> serve_events(HttpConnection& c, const HttpRequest& req, const HttpResponse& response) {
        auto hub = response.event_hub;
        std::weak_ptr<HttpConnection> weak = c.shared_from_this();
        auto client = hub->attach(response.event_topic, [weak](bool drop) {
            auto conn = weak.lock();
            if (!conn) return;
            asio::post(conn->stream.get_executor(), [conn, drop] {
                if (drop) conn->close_now();
                else conn->wake.cancel();
            });
        });
        if (!client) {
            auto m = to_message(HttpResponse::error(503, "too many event stream clients; retry later"),
                                req.version(), false, false);
            co_await write_message(c, m);
            co_return;
        }
        struct Detach {
            std::shared_ptr<EventHub> hub;
            std::shared_ptr<EventHub::Client> client;
            ~Detach() { hub->detach(client); }
        } detach{hub, client};

        bool ok = true;
        if (req.method() == http::verb::head) {
            co_await write_text(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                   "Connection: close\r\n\r\n", ok);
            co_return;
        }
        std::string start = "HTTP/1.1 200 OK\r\nServer: execution-sentinel\r\nContent-Type: text/event-stream\r\n"
                            "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: " +
                            std::to_string(hub->options().retry.count()) + "\n\n";
        co_await write_text(c, start, ok);
        std::vector<std::shared_ptr<const std::string>> frames;
        std::vector<asio::const_buffer> buffers;
        while (ok && !stopped) {
            frames.clear();
            const auto took = hub->take(*client, frames);
            if (took == EventHub::Take::dropped) co_return;
            if (took == EventHub::Take::events) {
                buffers.clear();
                for (auto& f : frames) buffers.push_back(asio::buffer(*f));
                c.stream.expires_after(options.write_timeout);
                auto [ec, n] = co_await asio::async_write(c.io, buffers, asio::as_tuple(asio::use_awaitable));
                (void)n;
                ok = !ec;
                continue;
            }
            c.wake.expires_after(hub->options().keepalive_interval);
            auto [ec] = co_await c.wake.async_wait(asio::as_tuple(asio::use_awaitable));
            if (!ec) co_await write_text(c, ": keep-alive\n\n", ok); // nothing was published for a while
            // operation_aborted: woken by the hub (events, or a drop) or closed by stop(); the loop sees which.
            if (!c.stream.socket().is_open()) co_return;
        }
    }
};

} // namespace detail

/// A server certificate or key file that cannot be used. what() is "FILE: problem" (never the file's content);
/// field() is "cert_file" or "key_file".
class TlsFileError : public std::invalid_argument {
public:
    TlsFileError(std::string field, const std::string& file, const std::string& problem)
        : std::invalid_argument(file + ": " + problem), field_(std::move(field)) {}
    const std::string& field() const noexcept { return field_; }

private:
    std::string field_;
};

/// The TLS context of an HTTPS server: the certificate chain of `cert_file` (PEM, the server's certificate first)
/// and the private key of `key_file` (PEM, unencrypted), TLS 1.2 or later. Throws TlsFileError naming the file
/// that cannot be read, holds no PEM certificate or key, or whose key is not the certificate's.
inline std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& cert_file,
                                                                          const std::string& key_file) {
    namespace ssl = boost::asio::ssl;
    auto readable = [](const std::string& field, const std::string& file) {
        std::error_code ec;
        if (std::filesystem::is_directory(file, ec)) throw TlsFileError(field, file, "is a directory");
        std::ifstream in(file, std::ios::binary);
        if (!in) throw TlsFileError(field, file, "cannot be read");
    };
    readable("cert_file", cert_file);
    readable("key_file", key_file);
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                     ec);
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) {
        ERR_clear_error();
        throw TlsFileError("cert_file", cert_file, "not a PEM certificate (chain)");
    }
    // The key is read here (an encrypted key is refused, never prompted for), then given to the context, which
    // refuses a key that is not the certificate's.
    struct BioFree {
        void operator()(BIO* b) const noexcept { BIO_free(b); }
    };
    struct KeyFree {
        void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
    };
    std::unique_ptr<BIO, BioFree> bio(BIO_new_file(key_file.c_str(), "r"));
    std::unique_ptr<EVP_PKEY, KeyFree> key;
    if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    if (!key) {
        ERR_clear_error();
        throw TlsFileError("key_file", key_file, "not a PEM private key (an unencrypted key is expected)");
    }
    if (SSL_CTX_use_PrivateKey(ctx->native_handle(), key.get()) != 1 ||
        SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        ERR_clear_error();
        throw TlsFileError("key_file", key_file, "is not the key of the certificate in " + cert_file);
    }
    return ctx;
}

class HttpServer {
public:
    HttpServer(boost::asio::any_io_executor executor, Router router, HttpServerOptions options = {})
        : state_(std::make_shared<detail::HttpServerState>(std::move(executor), std::move(router), std::move(options))) {}
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;
    /// Stops the server (see stop()).
    ~HttpServer() { stop(); }

    /// Binds options.address:options.port, listens and starts accepting. Returns the bound endpoint. Throws
    /// std::system_error naming the address when the address is not valid or cannot be bound (in use, no
    /// permission). Call once.
    boost::asio::ip::tcp::endpoint start() {
        namespace asio = boost::asio;
        auto& o = state_->options;
        const std::string where = o.address + ":" + std::to_string(o.port);
        boost::system::error_code ec;
        const auto address = asio::ip::make_address(o.address, ec);
        if (ec) throw std::system_error(ec, "HTTP server: listen address " + o.address + " is not an IP address");
        asio::ip::tcp::endpoint ep(address, o.port);
        auto& a = state_->acceptor;
        a.open(ep.protocol(), ec);
        if (!ec) a.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
        if (!ec) a.bind(ep, ec);
        if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            boost::system::error_code ignored;
            a.close(ignored);
            throw std::system_error(ec, "HTTP server: cannot listen on " + where);
        }
        endpoint_ = a.local_endpoint();
        asio::co_spawn(a.get_executor(), state_->accept_loop(), asio::detached);
        return endpoint_;
    }

    /// The bound endpoint (after start()).
    boost::asio::ip::tcp::endpoint local_endpoint() const { return endpoint_; }

    /// Stops accepting and closes every connection, event streams included (their clients see the stream end).
    /// Idempotent and thread-safe; returns at once, the connections finish on the executor.
    void stop() { state_->stop(); }

    HttpServerStats stats() const {
        return {state_->open(), state_->accepted.load(), state_->rejected.load(), state_->requests.load(),
                state_->tls_handshake_failures.load()};
    }

private:
    std::shared_ptr<detail::HttpServerState> state_;
    boost::asio::ip::tcp::endpoint endpoint_;
};

// ------------------------------------------------------------------------------------------------ standard routes

/// One readiness condition: what it is, whether it holds, and why not.
struct ReadinessCheck {
    std::string name;    ///< "caches", "store", "shard", …
    bool ready = true;
    std::string message; ///< why it is not ready (or a note), "" when nothing to say
};

/// Returns the readiness conditions now; called for every GET /readyz on a connection's strand (must not block).
using ReadinessProbe = std::function<std::vector<ReadinessCheck>()>;

/// The body and status of /readyz for these checks: 200 {"status": "ready", "checks": [...]} when every check is
/// ready, else 503 {"status": "not_ready", "not_ready": ["store", ...], "checks": [...]}. Pure.
inline HttpResponse readiness_response(const std::vector<ReadinessCheck>& checks) {
    boost::json::array list, failing;
    for (const auto& c : checks) {
        boost::json::object o;
        o["name"] = c.name;
        o["ready"] = c.ready;
        if (!c.message.empty()) o["message"] = c.message;
        list.push_back(std::move(o));
        if (!c.ready) failing.push_back(boost::json::string(c.name));
    }
    boost::json::object body;
    const bool ready = failing.empty();
    body["status"] = ready ? "ready" : "not_ready";
    if (!ready) body["not_ready"] = std::move(failing);
    body["checks"] = std::move(list);
    return HttpResponse::json(ready ? 200 : 503, body);
}

/// Adds GET /metrics (`registry`'s exposition), GET /healthz (200 {"status": "ok"} while the process serves) and
/// GET /readyz (readiness_response(probe()); without a probe always ready; a probe that throws: 503 with a check
/// "probe"). `registry` must outlive the router.
inline Router& add_health_routes(Router& router, const Registry& registry, ReadinessProbe probe = {}) {
    router.get("/metrics", [&registry](const RouteRequest&) {
        return HttpResponse::text(200, registry.expose(), std::string(exposition_content_type));
    });
    router.get("/healthz", [](const RouteRequest&) { return HttpResponse::json(200, {{"status", "ok"}}); });
    router.get("/readyz", [probe = std::move(probe)](const RouteRequest&) {
        if (!probe) return readiness_response({});
        try {
            return readiness_response(probe());
        } catch (const std::exception&) {
            return readiness_response({{"probe", false, "the readiness check failed"}});
        }
    });
    return router;
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_HTTP_SERVER_HPP

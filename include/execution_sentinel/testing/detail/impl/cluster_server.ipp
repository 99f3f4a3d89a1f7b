// Bodies of testing/detail/cluster_server.hpp: included by that header (header-only use) or by
// <execution_sentinel/testing/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_CLUSTER_SERVER_IPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_CLUSTER_SERVER_IPP

#include <execution_sentinel/testing/detail/cluster_server.hpp>
#include <execution_sentinel/testing/detail/exec_session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <future>
#include <type_traits>
#include <variant>

namespace execution_sentinel::testing::detail {

namespace cluster_server_detail {

/// Writes `res`; true when the connection stays open for the next request.
inline boost::asio::awaitable<bool> send(SslStream& s, Response res) {
    auto [ec, n] = co_await http::async_write(s, res, boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return !ec && res.keep_alive();
}

} // namespace cluster_server_detail

struct ClusterServer::ConnectionGuard {
    ClusterServer* server;
    std::uint64_t id;
    ~ConnectionGuard() {
        server->connections_.erase(id);
        server->traffic_connection_closed(id);
    }
};

EXECUTION_SENTINEL_DECL ClusterServer::ClusterServer(ServerConfig config)
    : config_(std::move(config)), certs_(generate_certificates()), state_(config_.history_limit) {
    namespace asio = boost::asio;
    if (config_.bearer_token.empty()) config_.bearer_token = random_token(32);
    if (config_.bookmark_interval.count() <= 0) config_.bookmark_interval = std::chrono::milliseconds(60000);
    if (config_.metrics_window.count() <= 0) config_.metrics_window = std::chrono::milliseconds(15000);
    state_.metrics_api = config_.metrics_api;
    state_.metrics_window = config_.metrics_window;
    ioc_ = std::make_unique<asio::io_context>(1);
    streams_ = std::make_unique<StreamRegistry>(*ioc_, config_.watch_queue_limit);
    ssl_ctx_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    configure_tls();
    acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(*ioc_);
    open_acceptor(asio::ip::tcp::endpoint(asio::ip::make_address(config_.address), config_.port));
    port_ = acceptor_->local_endpoint().port();
    RouterConfig rc;
    rc.bearer_token = config_.bearer_token;
    rc.server_address = config_.address + ":" + std::to_string(port_);
    rc.default_watch_timeout = config_.default_watch_timeout;
    router_ = std::make_unique<Router>(std::move(rc), state_, *streams_);
    refuse_timer_ = std::make_unique<asio::steady_timer>(*ioc_);
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(ioc_->get_executor());
    asio::co_spawn(*ioc_, accept_loop(accept_generation_), asio::detached);
    builder_ioc_ = std::make_unique<asio::io_context>(1);
    builder_work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(builder_ioc_->get_executor());
    builder_thread_ = std::thread([this] { builder_ioc_->run(); });
    thread_ = std::thread([this] {
        for (;;) {
            try {
                ioc_->run();
                return;
            } catch (...) {
                // A handler must never throw; keep serving if one does.
            }
        }
    });
}

EXECUTION_SENTINEL_DECL ClusterServer::~ClusterServer() {
    stop();
    // Coroutines still suspended are destroyed with the io_context, while the state they touch is alive.
    refuse_timer_.reset();
    acceptor_.reset();
    connections_.clear();
    builder_ioc_.reset();
    ioc_.reset();
}

EXECUTION_SENTINEL_DECL void ClusterServer::stop() {
    if (stopped_.exchange(true)) return;
    run_on_io([this] {
        stopping_ = true;
        boost::system::error_code ec;
        acceptor_->close(ec);
        refuse_timer_->cancel();
        for (auto& [id, weak] : connections_)
            if (auto c = weak.lock()) boost::beast::get_lowest_layer(*c).socket().close(ec);
        std::lock_guard lock(mu_);
        streams_->wake_all();
    });
    work_.reset();
    ioc_->stop();
    if (thread_.joinable()) thread_.join();
    builder_work_.reset();
    builder_ioc_->stop();
    if (builder_thread_.joinable()) builder_thread_.join();
}

EXECUTION_SENTINEL_DECL std::string ClusterServer::server_url() const {
    const bool v6 = config_.address.find(':') != std::string::npos;
    return "https://" + (v6 ? "[" + config_.address + "]" : config_.address) + ":" + std::to_string(port_);
}

// ------------------------------------------------------------------------------------------------ objects
EXECUTION_SENTINEL_DECL boost::json::object ClusterServer::create(const ResourceInfo& r, std::string_view ns, boost::json::object obj) {
    std::lock_guard lock(mu_);
    return router_->create(r, ns, std::move(obj));
}

EXECUTION_SENTINEL_DECL boost::json::object ClusterServer::replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj,
                                                                  std::string_view name) {
    std::lock_guard lock(mu_);
    return router_->replace(r, ns, std::move(obj), name);
}

EXECUTION_SENTINEL_DECL boost::json::object ClusterServer::modify(const ResourceInfo& r, std::string_view ns, std::string_view name,
                                                                 const std::function<void(boost::json::object&)>& mutate) {
    std::lock_guard lock(mu_);
    return router_->modify(r, ns, name, mutate);
}

EXECUTION_SENTINEL_DECL std::optional<boost::json::object> ClusterServer::remove(const ResourceInfo& r, std::string_view ns,
                                                                                std::string_view name) {
    std::lock_guard lock(mu_);
    return router_->remove(r, ns, name);
}

EXECUTION_SENTINEL_DECL std::optional<boost::json::object> ClusterServer::get(const ResourceInfo& r, std::string_view ns,
                                                                             std::string_view name) const {
    std::lock_guard lock(mu_);
    const auto* o = state_.store.get(r, ns, name);
    if (o == nullptr) return std::nullopt;
    return *o;
}

EXECUTION_SENTINEL_DECL std::vector<boost::json::object> ClusterServer::list(const ResourceInfo& r, std::string_view ns) const {
    std::lock_guard lock(mu_);
    std::vector<boost::json::object> out;
    for (const auto* o : state_.store.list(r, ns)) out.push_back(*o);
    return out;
}

EXECUTION_SENTINEL_DECL std::uint64_t ClusterServer::resource_version() const {
    std::lock_guard lock(mu_);
    return state_.store.resource_version();
}

// ------------------------------------------------------------------------------------------------ pod side
EXECUTION_SENTINEL_DECL void ClusterServer::write_file(std::string_view ns, std::string_view pod, std::string path, std::string content) {
    std::lock_guard lock(mu_);
    state_.files[{std::string(ns), std::string(pod)}][normalize_path(path)] = std::move(content);
}

EXECUTION_SENTINEL_DECL void ClusterServer::remove_file(std::string_view ns, std::string_view pod, std::string_view path) {
    std::lock_guard lock(mu_);
    auto it = state_.files.find({std::string(ns), std::string(pod)});
    if (it != state_.files.end()) it->second.erase(normalize_path(path));
}

EXECUTION_SENTINEL_DECL void ClusterServer::append_log(std::string_view ns, std::string_view pod, std::string_view container,
                                                      std::string line, std::chrono::system_clock::time_point when) {
    std::lock_guard lock(mu_);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    auto& log = state_.logs[{std::string(ns), std::string(pod), std::string(container)}];
    log.current.push_back(LogLine{when, std::move(line)});
    streams_->log_appended(ns, pod, container, log.current.back());
}

EXECUTION_SENTINEL_DECL void ClusterServer::restart_container_log(std::string_view ns, std::string_view pod, std::string_view container) {
    std::lock_guard lock(mu_);
    auto& log = state_.logs[{std::string(ns), std::string(pod), std::string(container)}];
    log.previous = std::move(log.current);
    log.current.clear();
    ++log.generation;
    streams_->log_restarted(ns, pod, container);
}

// ------------------------------------------------------------------------------------------------ metrics
EXECUTION_SENTINEL_DECL void ClusterServer::set_pod_usage(std::string_view ns, std::string_view pod,
                                                         std::vector<ContainerUsage> containers,
                                                         std::chrono::system_clock::time_point when,
                                                         std::optional<std::chrono::milliseconds> window) {
    std::lock_guard lock(mu_);
    auto& u = state_.usage[{std::string(ns), std::string(pod)}];
    u.timestamp = when;
    u.window = window && window->count() > 0 ? *window : state_.metrics_window;
    u.containers = std::move(containers);
}

EXECUTION_SENTINEL_DECL void ClusterServer::set_metrics_api(MetricsApi mode) {
    std::lock_guard lock(mu_);
    state_.metrics_api = mode;
}

// ------------------------------------------------------------------------------------------------ faults
EXECUTION_SENTINEL_DECL void ClusterServer::close_watches() {
    std::lock_guard lock(mu_);
    streams_->end_watches();
}

EXECUTION_SENTINEL_DECL void ClusterServer::reset_watches() {
    std::lock_guard lock(mu_);
    streams_->reset_watches();
}

EXECUTION_SENTINEL_DECL void ClusterServer::fail_next_requests(int count, int status, std::optional<int> retry_after) {
    std::lock_guard lock(mu_);
    state_.fail_count = count < 0 ? 0 : count;
    state_.fail_status = status;
    state_.fail_retry_after = retry_after;
}

EXECUTION_SENTINEL_DECL void ClusterServer::refuse_connections(std::chrono::milliseconds duration) {
    run_on_io([this, duration] {
        if (stopping_) return;
        boost::system::error_code ec;
        acceptor_->close(ec);
        const std::uint64_t generation = ++accept_generation_;
        refuse_timer_->expires_after(duration);
        refuse_timer_->async_wait([this, generation](boost::system::error_code wait_ec) {
            if (wait_ec || stopping_ || generation != accept_generation_) return;
            try {
                open_acceptor(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(config_.address), port_));
                boost::asio::co_spawn(*ioc_, accept_loop(generation), boost::asio::detached);
            } catch (const std::exception&) {
                // The port was taken meanwhile: stay refused.
            }
        });
    });
}

EXECUTION_SENTINEL_DECL void ClusterServer::compact() {
    std::lock_guard lock(mu_);
    state_.store.compact();
}

EXECUTION_SENTINEL_DECL void ClusterServer::delay_responses(std::chrono::milliseconds delay) {
    std::lock_guard lock(mu_);
    state_.delay = delay.count() < 0 ? std::chrono::milliseconds(0) : delay;
}

EXECUTION_SENTINEL_DECL void ClusterServer::delay_watches(std::chrono::milliseconds delay) {
    std::lock_guard lock(mu_);
    state_.watch_delay = delay.count() < 0 ? std::chrono::milliseconds(0) : delay;
}

EXECUTION_SENTINEL_DECL void ClusterServer::send_raw_watch_line(std::string bytes) {
    std::lock_guard lock(mu_);
    streams_->send_raw_to_watches(bytes);
}

EXECUTION_SENTINEL_DECL void ClusterServer::stall_watches(bool stalled) {
    std::lock_guard lock(mu_);
    state_.stalled = stalled;
    streams_->wake_watches();
}

EXECUTION_SENTINEL_DECL ServerStats ClusterServer::stats() const {
    std::lock_guard lock(mu_);
    ServerStats s = state_.stats;
    s.open_watches = streams_->open_watches();
    return s;
}

// ------------------------------------------------------------------------------------------------ traffic
EXECUTION_SENTINEL_DECL void ClusterServer::traffic_connection_opened(std::uint64_t id, std::shared_ptr<ConnectionBytes> bytes) {
    std::lock_guard lock(traffic_mu_);
    ++traffic_connections_total_;
    traffic_connections_.push_back(TrafficConnection{id, std::move(bytes), 0, true});
    // Forget the oldest closed connections beyond the limit; their bytes stay in the totals.
    while (traffic_connections_.size() > traffic_records && !traffic_connections_.front().open) {
        dropped_sent_ += traffic_connections_.front().bytes->sent.load(std::memory_order_relaxed);
        dropped_received_ += traffic_connections_.front().bytes->received.load(std::memory_order_relaxed);
        traffic_connections_.pop_front();
    }
}

EXECUTION_SENTINEL_DECL void ClusterServer::traffic_connection_closed(std::uint64_t id) {
    std::lock_guard lock(traffic_mu_);
    for (auto it = traffic_connections_.rbegin(); it != traffic_connections_.rend(); ++it)
        if (it->id == id) {
            it->open = false;
            break;
        }
}

EXECUTION_SENTINEL_DECL std::uint64_t ClusterServer::traffic_request_started(std::uint64_t connection, const Request& req,
                                                                            std::uint64_t sent0, std::uint64_t received0) {
    std::lock_guard lock(traffic_mu_);
    ++traffic_requests_total_;
    std::shared_ptr<ConnectionBytes> bytes;
    for (auto it = traffic_connections_.rbegin(); it != traffic_connections_.rend(); ++it)
        if (it->id == connection) {
            ++it->requests;
            bytes = it->bytes;
            break;
        }
    if (!bytes) bytes = std::make_shared<ConnectionBytes>();
    TrafficRequest r;
    r.connection = connection;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.bytes = std::move(bytes);
    r.sent0 = sent0;
    r.received0 = received0;
    traffic_requests_.push_back(std::move(r));
    while (traffic_requests_.size() > traffic_records && !traffic_requests_.front().open) {
        traffic_requests_.pop_front();
        ++traffic_first_request_;
    }
    return traffic_first_request_ + traffic_requests_.size() - 1;
}

EXECUTION_SENTINEL_DECL void ClusterServer::traffic_request_ended(std::uint64_t record) {
    std::lock_guard lock(traffic_mu_);
    if (record < traffic_first_request_ || record - traffic_first_request_ >= traffic_requests_.size()) return;
    auto& r = traffic_requests_[static_cast<std::size_t>(record - traffic_first_request_)];
    r.sent1 = r.bytes->sent.load(std::memory_order_relaxed);
    r.received1 = r.bytes->received.load(std::memory_order_relaxed);
    r.open = false;
}

EXECUTION_SENTINEL_DECL Traffic ClusterServer::traffic(bool records) const {
    std::lock_guard lock(traffic_mu_);
    Traffic t;
    t.bytes_sent = dropped_sent_;
    t.bytes_received = dropped_received_;
    t.connections_total = traffic_connections_total_;
    t.requests_total = traffic_requests_total_;
    if (records) t.connections.reserve(traffic_connections_.size());
    for (auto& c : traffic_connections_) {
        ConnectionTraffic out;
        out.id = c.id;
        out.bytes_sent = c.bytes->sent.load(std::memory_order_relaxed);
        out.bytes_received = c.bytes->received.load(std::memory_order_relaxed);
        out.requests = c.requests;
        out.open = c.open;
        t.bytes_sent += out.bytes_sent;
        t.bytes_received += out.bytes_received;
        if (records) t.connections.push_back(out);
    }
    if (!records) return t;
    t.requests.reserve(traffic_requests_.size());
    for (auto& r : traffic_requests_) {
        RequestTraffic out;
        out.connection = r.connection;
        out.method = r.method;
        out.target = r.target;
        const std::uint64_t sent1 = r.open ? r.bytes->sent.load(std::memory_order_relaxed) : r.sent1;
        const std::uint64_t received1 = r.open ? r.bytes->received.load(std::memory_order_relaxed) : r.received1;
        out.bytes_sent = sent1 - r.sent0;
        out.bytes_received = received1 - r.received0;
        out.open = r.open;
        t.requests.push_back(std::move(out));
    }
    return t;
}

// ------------------------------------------------------------------------------------------------ set-up
EXECUTION_SENTINEL_DECL void ClusterServer::configure_tls() {
    namespace ssl = boost::asio::ssl;
    auto& ctx = *ssl_ctx_;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    ctx.use_certificate_chain(boost::asio::buffer(certs_.server_certificate_pem));
    ctx.use_private_key(boost::asio::buffer(certs_.server_key_pem), ssl::context::pem);
    ctx.add_certificate_authority(boost::asio::buffer(certs_.ca_certificate_pem));
    // Ask for a client certificate but do not require one (verify_peer without fail_if_no_peer_cert).
    ctx.set_verify_mode(ssl::verify_peer);
    BioPtr bio(BIO_new_mem_buf(certs_.ca_certificate_pem.data(), static_cast<int>(certs_.ca_certificate_pem.size())));
    X509Ptr ca(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (ca) SSL_CTX_add_client_CA(ctx.native_handle(), ca.get());
    static const unsigned char session_context[] = "execution-sentinel-fake-cluster";
    SSL_CTX_set_session_id_context(ctx.native_handle(), session_context, sizeof session_context - 1);
}

EXECUTION_SENTINEL_DECL void ClusterServer::open_acceptor(const boost::asio::ip::tcp::endpoint& endpoint) {
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen(boost::asio::socket_base::max_listen_connections);
}

EXECUTION_SENTINEL_DECL void ClusterServer::run_on_io(const std::function<void()>& f) {
    if (ioc_->get_executor().running_in_this_thread() || ioc_->stopped() || !thread_.joinable()) {
        f();
        return;
    }
    std::promise<void> done;
    auto future = done.get_future();
    boost::asio::post(*ioc_, [&] {
        f();
        done.set_value();
    });
    if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        // The I/O thread is gone: nothing else can touch the sockets now.
    }
}

EXECUTION_SENTINEL_DECL StreamContext ClusterServer::stream_context() {
    return StreamContext{mu_, state_, *streams_, stopping_, config_.bookmark_interval};
}

// ------------------------------------------------------------------------------------------------ connections
EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> ClusterServer::accept_loop(std::uint64_t generation) {
    namespace asio = boost::asio;
    for (;;) {
        auto [ec, socket] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
        if (stopping_ || generation != accept_generation_ || !acceptor_->is_open()) co_return;
        if (ec) {
            // Out of descriptors or a transient failure: pause instead of spinning.
            asio::steady_timer pause(*ioc_, std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        // Watch events are small writes that must leave at once: no Nagle delay (a real apiserver's Go
        // net package sets TCP_NODELAY by default too).
        boost::system::error_code nodelay_ec;
        socket.set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
        auto stream = std::make_shared<SslStream>(CountingTcpStream(std::move(socket)), *ssl_ctx_);
        const std::uint64_t id = ++connection_ids_;
        connections_[id] = stream;
        traffic_connection_opened(id, boost::beast::get_lowest_layer(*stream).rate_policy().bytes());
        asio::co_spawn(*ioc_, run_connection(stream, id), asio::detached);
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<void> ClusterServer::run_connection(std::shared_ptr<SslStream> stream, std::uint64_t id) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    ConnectionGuard guard{this, id};
    auto& s = *stream;
    beast::get_lowest_layer(s).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await s.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (hec || stopping_) co_return;
    bool cert_ok = false;
    if (X509* peer = SSL_get1_peer_certificate(s.native_handle())) {
        cert_ok = SSL_get_verify_result(s.native_handle()) == X509_V_OK;
        X509_free(peer);
    }
    beast::flat_buffer buffer;
    const auto& bytes = *beast::get_lowest_layer(s).rate_policy().bytes();
    for (;;) {
        // A request's bytes count from the read of its first byte (bytes already buffered were read with the
        // request before, and are counted there: a client that pipelines is rare and the totals stay exact).
        const std::uint64_t sent0 = bytes.sent.load(std::memory_order_relaxed);
        const std::uint64_t received0 = bytes.received.load(std::memory_order_relaxed);
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
        parser.body_limit(config_.max_body_bytes);
        beast::get_lowest_layer(s).expires_after(std::chrono::seconds(120));
        auto [rec, n] = co_await http::async_read(s, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (stopping_) co_return;
        if (rec == http::error::end_of_stream || rec == asio::error::eof || rec == asio::ssl::error::stream_truncated ||
            rec == beast::error::timeout || rec == asio::error::operation_aborted || rec == asio::error::connection_reset)
            break;
        if (rec) {
            // Malformed or oversized request: answer 400 once and close.
            Response res = malformed_request_response(rec.message());
            beast::get_lowest_layer(s).expires_after(std::chrono::seconds(5));
            co_await http::async_write(s, res, asio::as_tuple(asio::use_awaitable));
            // Lingering close: discard what the client still sends (for at most a second) so that it reads
            // the answer instead of a connection reset.
            beast::get_lowest_layer(s).expires_after(std::chrono::seconds(1));
            char scratch[4096];
            for (;;) {
                auto [dec, dn] = co_await s.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
                if (dec || stopping_) break;
            }
            break;
        }
        Request req = parser.release();
        beast::get_lowest_layer(s).expires_never();
        const std::uint64_t record = traffic_request_started(id, req, sent0, received0);
        const bool keep = co_await handle_request(stream, req, cert_ok);
        traffic_request_ended(record);
        if (!keep || stopping_) break;
    }
    if (!stopping_) {
        beast::get_lowest_layer(s).expires_after(std::chrono::seconds(2));
        co_await s.async_shutdown(asio::as_tuple(asio::use_awaitable));
    }
    boost::system::error_code ec;
    beast::get_lowest_layer(s).socket().close(ec);
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<Response> ClusterServer::build_deferred(const DeferredResponse& d,
                                                                                     const Request& req) {
    try {
        co_return d.build(req);
    } catch (const std::exception& e) {
        co_return status_response(req, make_status(500, "InternalError", std::string("Internal error occurred: ") + e.what()));
    }
}

EXECUTION_SENTINEL_DECL boost::asio::awaitable<bool> ClusterServer::handle_request(std::shared_ptr<SslStream> stream, Request& req,
                                                                                   bool cert_ok) {
    namespace asio = boost::asio;
    using cluster_server_detail::send;
    Admission admission;
    {
        std::lock_guard lock(mu_);
        admission = router_->admit(req, cert_ok);
    }
    if (admission.delay.count() > 0) {
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(admission.delay);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopping_) co_return false;
    }
    if (admission.early) co_return co_await send(*stream, std::move(*admission.early));

    Decision decision;
    ChannelPtr channel;
    {
        std::lock_guard lock(mu_);
        decision = router_->route(req, std::chrono::system_clock::now());
        // Registered under the same lock as the initial lines were decided: no change falls in between.
        if (const auto* w = std::get_if<WatchStart>(&decision)) channel = streams_->open_watch(stream, *w);
        else if (const auto* f = std::get_if<LogFollow>(&decision)) channel = streams_->open_log(stream, *f);
    }
    if (auto* res = std::get_if<Response>(&decision)) co_return co_await send(*stream, std::move(*res));
    if (auto* d = std::get_if<DeferredResponse>(&decision)) {
        // Gathered a batch at a time under the lock, each batch a handler of its own (what waits for the lock or
        // the I/O thread comes in between, in order), then built on the builder thread without the lock.
        for (;;) {
            bool gathered = false;
            {
                std::lock_guard lock(mu_);
                gathered = d->gather();
            }
            if (gathered) break;
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            if (stopping_) co_return false;
        }
        Response res = co_await asio::co_spawn(builder_ioc_->get_executor(), build_deferred(*d, req), asio::use_awaitable);
        if (stopping_) co_return false;
        co_return co_await send(*stream, std::move(res));
    }
    if (auto* w = std::get_if<WatchStart>(&decision))
        co_return co_await serve_stream(stream_context(), stream, req, channel, "application/json",
                                        std::chrono::steady_clock::now() + w->timeout, w->bookmarks ? w->resource : nullptr,
                                        std::move(w->initial));
    if (auto* f = std::get_if<LogFollow>(&decision)) {
        std::vector<std::string> initial;
        if (!f->initial.empty()) initial.push_back(std::move(f->initial));
        co_return co_await serve_stream(stream_context(), stream, req, channel, "text/plain",
                                        std::chrono::steady_clock::now() + std::chrono::hours(4), nullptr, std::move(initial));
    }
    co_return co_await serve_exec_session(*stream, req, std::get<ExecStart>(decision));
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_CLUSTER_SERVER_IPP

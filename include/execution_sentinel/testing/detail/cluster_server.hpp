// The HTTPS server behind FakeCluster: one I/O thread, one mutex for all state, one coroutine per
// connection, and a bounded queue per open watch or log stream. Decisions come from the pure headers next
// to this one (object_store, list_watch, selectors, pod_runtime); this file only moves bytes.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP

#include <execution_sentinel/testing/certificates.hpp>
#include <execution_sentinel/testing/detail/list_watch.hpp>
#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/pod_runtime.hpp>
#include <execution_sentinel/testing/detail/resources.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>
#include <execution_sentinel/testing/detail/table.hpp>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace execution_sentinel::testing::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// Settings of the server (FakeClusterOptions, resolved).
struct ServerConfig {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    std::string bearer_token;
    std::size_t history_limit = 10000;
    std::chrono::milliseconds bookmark_interval{60000};
    std::size_t watch_queue_limit = 10000;                 ///< queued events per watch before it is closed
    std::size_t max_header_bytes = 64 * 1024;
    std::size_t max_body_bytes = 8 * 1024 * 1024;
    std::chrono::seconds default_watch_timeout{1800};
};

/// Request counters.
struct ServerStats {
    std::size_t requests = 0, gets = 0, lists = 0, watches = 0, writes = 0, execs = 0, logs = 0, unauthorized = 0,
                injected_failures = 0, open_watches = 0;
};

inline std::string random_token(std::size_t length) {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::random_device rd;
    std::string s;
    for (std::size_t i = 0; i < length; ++i) s += alphabet[rd() % (sizeof alphabet - 1)];
    return s;
}

/// strconv.ParseBool as the apiserver uses it; nullopt when not a boolean.
inline std::optional<bool> parse_bool(std::string_view s) {
    if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
    if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
    return std::nullopt;
}

/// Applies an RFC 7386 JSON merge patch.
inline void apply_merge_patch(boost::json::value& target, const boost::json::value& patch) {
    if (!patch.is_object()) {
        target = patch;
        return;
    }
    if (!target.is_object()) target = boost::json::object{};
    auto& t = target.as_object();
    for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null()) t.erase(k);
        else apply_merge_patch(t[k], v);
    }
}

/// Decoded query parameters (repeated keys kept in order).
class QueryParams {
public:
    explicit QueryParams(const boost::urls::url_view& url) {
        for (auto p : url.params()) params_.emplace_back(std::string(p.key), p.has_value ? std::string(p.value) : std::string());
    }
    std::optional<std::string> get(std::string_view key) const {
        for (const auto& [k, v] : params_)
            if (k == key) return v;
        return std::nullopt;
    }
    std::string value(std::string_view key) const { return get(key).value_or(std::string()); }
    std::vector<std::string> all(std::string_view key) const {
        std::vector<std::string> out;
        for (const auto& [k, v] : params_)
            if (k == key) out.push_back(v);
        return out;
    }
    bool flag(std::string_view key) const {
        auto v = get(key);
        return v && parse_bool(*v).value_or(false);
    }

private:
    std::vector<std::pair<std::string, std::string>> params_;
};

/// A queue of bytes for one open watch or log-follow stream. Filled under the server mutex from any thread,
/// drained by the connection coroutine on the I/O thread, which `wake` resumes.
struct StreamChannel : std::enable_shared_from_this<StreamChannel> {
    explicit StreamChannel(asio::io_context& ioc) : wake(ioc) {}
    asio::steady_timer wake;          ///< only touched on the I/O thread
    std::deque<std::string> pending;  ///< guarded by the server mutex
    bool end_requested = false;       ///< guarded: end the stream cleanly after draining
    bool overflowed = false;          ///< guarded: the queue limit was hit
    bool client_gone = false;         ///< I/O thread only
    std::weak_ptr<beast::ssl_stream<beast::tcp_stream>> stream; ///< closed when the queue overflows
    // watch streams
    ObjectFilter filter;
    bool as_table = false;            ///< objects as meta.k8s.io/v1 Tables (kubectl get --watch)
    std::string include_object;       ///< includeObject of Table rows
    // log streams
    std::string log_namespace, log_pod, log_container;
    bool log_timestamps = false;
};

/// Where the path of a request points.
struct Route {
    enum class Kind { not_found, version, api, api_v1, apis, group, group_version, openapi, health, collection, object, log, exec, status_subresource };
    Kind kind = Kind::not_found;
    const ResourceInfo* resource = nullptr;
    std::string namespace_, name, group;
};

/// Maps a decoded path to a Route. Pure.
inline Route route_path(const std::vector<std::string>& seg) {
    Route r;
    auto n = seg.size();
    if (n == 1 && seg[0] == "version") { r.kind = Route::Kind::version; return r; }
    if (n >= 1 && (seg[0] == "healthz" || seg[0] == "livez" || seg[0] == "readyz")) { r.kind = Route::Kind::health; return r; }
    if (n >= 1 && seg[0] == "openapi") { r.kind = Route::Kind::openapi; return r; }
    std::vector<std::string> rest;
    std::string group, version;
    if (n >= 1 && seg[0] == "api") {
        if (n == 1) { r.kind = Route::Kind::api; return r; }
        if (seg[1] != "v1") return r;
        if (n == 2) { r.kind = Route::Kind::api_v1; return r; }
        version = "v1";
        rest.assign(seg.begin() + 2, seg.end());
    } else if (n >= 1 && seg[0] == "apis") {
        if (n == 1) { r.kind = Route::Kind::apis; return r; }
        group = seg[1];
        if (group != "batch" && group != "coordination.k8s.io") return r;
        r.group = group;
        if (n == 2) { r.kind = Route::Kind::group; return r; }
        if (seg[2] != "v1") return r;
        if (n == 3) { r.kind = Route::Kind::group_version; return r; }
        version = "v1";
        rest.assign(seg.begin() + 3, seg.end());
    } else {
        return r;
    }
    if (rest.size() == 1) {
        r.resource = find_resource(group, version, rest[0]);
        if (r.resource != nullptr) r.kind = Route::Kind::collection;
        return r;
    }
    if (rest.size() < 3 || rest[0] != "namespaces" || rest[1].empty()) return r;
    r.namespace_ = rest[1];
    r.resource = find_resource(group, version, rest[2]);
    if (r.resource == nullptr) return r;
    if (rest.size() == 3) { r.kind = Route::Kind::collection; return r; }
    r.name = rest[3];
    if (r.name.empty()) return r;
    if (rest.size() == 4) { r.kind = Route::Kind::object; return r; }
    if (rest.size() == 5 && rest[4] == "status") { r.kind = Route::Kind::status_subresource; return r; }
    if (rest.size() == 5 && r.resource->plural == "pods" && rest[4] == "log") { r.kind = Route::Kind::log; return r; }
    if (rest.size() == 5 && r.resource->plural == "pods" && rest[4] == "exec") { r.kind = Route::Kind::exec; return r; }
    return r;
}

/// The server. Public members are thread-safe.
class ClusterServer {
public:
    using Request = http::request<http::string_body>;
    using Response = http::response<http::string_body>;
    using SslStream = beast::ssl_stream<beast::tcp_stream>;

    explicit ClusterServer(ServerConfig config)
        : config_(std::move(config)), certs_(generate_certificates()), store_(config_.history_limit) {
        if (config_.bearer_token.empty()) config_.bearer_token = random_token(32);
        if (config_.bookmark_interval.count() <= 0) config_.bookmark_interval = std::chrono::milliseconds(60000);
        ioc_ = std::make_unique<asio::io_context>(1);
        ssl_ctx_ = std::make_unique<ssl::context>(ssl::context::tls_server);
        configure_tls();
        acceptor_ = std::make_unique<tcp::acceptor>(*ioc_);
        open_acceptor(tcp::endpoint(asio::ip::make_address(config_.address), config_.port));
        port_ = acceptor_->local_endpoint().port();
        refuse_timer_ = std::make_unique<asio::steady_timer>(*ioc_);
        work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(ioc_->get_executor());
        asio::co_spawn(*ioc_, accept_loop(accept_generation_), asio::detached);
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

    ClusterServer(const ClusterServer&) = delete;
    ClusterServer& operator=(const ClusterServer&) = delete;

    ~ClusterServer() {
        stop();
        // Coroutines still suspended are destroyed with the io_context, while the state they touch is alive.
        refuse_timer_.reset();
        acceptor_.reset();
        connections_.clear();
        ioc_.reset();
    }

    void stop() {
        if (stopped_.exchange(true)) return;
        run_on_io([this] {
            stopping_ = true;
            boost::system::error_code ec;
            acceptor_->close(ec);
            refuse_timer_->cancel();
            for (auto& [id, weak] : connections_)
                if (auto c = weak.lock()) beast::get_lowest_layer(*c).socket().close(ec);
            std::lock_guard lock(mu_);
            for (auto& ch : watches_) ch->wake.cancel();
            for (auto& ch : log_streams_) ch->wake.cancel();
        });
        work_.reset();
        ioc_->stop();
        if (thread_.joinable()) thread_.join();
    }

    std::uint16_t port() const { return port_; }
    const ServerConfig& config() const { return config_; }
    const CertificateBundle& certificates() const { return certs_; }
    std::string server_url() const {
        const bool v6 = config_.address.find(':') != std::string::npos;
        return "https://" + (v6 ? "[" + config_.address + "]" : config_.address) + ":" + std::to_string(port_);
    }

    // ------------------------------------------------------------------------------------------- objects
    boost::json::object create(const ResourceInfo& r, std::string_view ns, boost::json::object obj) {
        std::lock_guard lock(mu_);
        const StoreEvent& e = store_.create(r, ns, std::move(obj));
        publish_locked(e);
        return e.object;
    }

    boost::json::object replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj, std::string_view name = {}) {
        std::lock_guard lock(mu_);
        const StoreEvent& e = store_.replace(r, ns, std::move(obj), name);
        publish_locked(e);
        return e.object;
    }

    boost::json::object modify(const ResourceInfo& r, std::string_view ns, std::string_view name,
                               const std::function<void(boost::json::object&)>& mutate) {
        std::lock_guard lock(mu_);
        const StoreEvent& e = store_.modify(r, ns, name, mutate);
        publish_locked(e);
        return e.object;
    }

    std::optional<boost::json::object> remove(const ResourceInfo& r, std::string_view ns, std::string_view name) {
        std::lock_guard lock(mu_);
        const StoreEvent* e = store_.remove(r, ns, name);
        if (e == nullptr) return std::nullopt;
        publish_locked(*e);
        if (r.plural == "pods") pod_removed_locked(ns, name);
        return e->object;
    }

    std::optional<boost::json::object> get(const ResourceInfo& r, std::string_view ns, std::string_view name) const {
        std::lock_guard lock(mu_);
        const auto* o = store_.get(r, ns, name);
        if (o == nullptr) return std::nullopt;
        return *o;
    }

    std::vector<boost::json::object> list(const ResourceInfo& r, std::string_view ns) const {
        std::lock_guard lock(mu_);
        std::vector<boost::json::object> out;
        for (const auto* o : store_.list(r, ns)) out.push_back(*o);
        return out;
    }

    std::uint64_t resource_version() const {
        std::lock_guard lock(mu_);
        return store_.resource_version();
    }

    // ------------------------------------------------------------------------------------------- pod side
    void write_file(std::string_view ns, std::string_view pod, std::string path, std::string content) {
        std::lock_guard lock(mu_);
        files_[{std::string(ns), std::string(pod)}][normalize_path(path)] = std::move(content);
    }

    void remove_file(std::string_view ns, std::string_view pod, std::string_view path) {
        std::lock_guard lock(mu_);
        auto it = files_.find({std::string(ns), std::string(pod)});
        if (it != files_.end()) it->second.erase(normalize_path(path));
    }

    void append_log(std::string_view ns, std::string_view pod, std::string_view container, std::string line,
                    std::chrono::system_clock::time_point when) {
        std::lock_guard lock(mu_);
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        auto& log = logs_[{std::string(ns), std::string(pod), std::string(container)}];
        log.current.push_back(LogLine{when, std::move(line)});
        for (auto& ch : log_streams_) {
            if (ch->log_namespace != ns || ch->log_pod != pod || ch->log_container != container) continue;
            push_locked(*ch, format_log_line(log.current.back(), ch->log_timestamps));
        }
    }

    void restart_container_log(std::string_view ns, std::string_view pod, std::string_view container) {
        std::lock_guard lock(mu_);
        auto& log = logs_[{std::string(ns), std::string(pod), std::string(container)}];
        log.previous = std::move(log.current);
        log.current.clear();
        ++log.generation;
        for (auto& ch : log_streams_)
            if (ch->log_namespace == ns && ch->log_pod == pod && ch->log_container == container) end_locked(*ch);
    }

    // ------------------------------------------------------------------------------------------- faults
    void close_watches() {
        std::lock_guard lock(mu_);
        for (auto& ch : watches_) end_locked(*ch);
    }

    void fail_next_requests(int count, int status, std::optional<int> retry_after) {
        std::lock_guard lock(mu_);
        fail_count_ = count < 0 ? 0 : count;
        fail_status_ = status;
        fail_retry_after_ = retry_after;
    }

    void refuse_connections(std::chrono::milliseconds duration) {
        run_on_io([this, duration] {
            if (stopping_) return;
            boost::system::error_code ec;
            acceptor_->close(ec);
            const std::uint64_t generation = ++accept_generation_;
            refuse_timer_->expires_after(duration);
            refuse_timer_->async_wait([this, generation](boost::system::error_code wait_ec) {
                if (wait_ec || stopping_ || generation != accept_generation_) return;
                try {
                    open_acceptor(tcp::endpoint(asio::ip::make_address(config_.address), port_));
                    asio::co_spawn(*ioc_, accept_loop(generation), asio::detached);
                } catch (const std::exception&) {
                    // The port was taken meanwhile: stay refused.
                }
            });
        });
    }

    void compact() {
        std::lock_guard lock(mu_);
        store_.compact();
    }

    void delay_responses(std::chrono::milliseconds delay) {
        std::lock_guard lock(mu_);
        delay_ = delay.count() < 0 ? std::chrono::milliseconds(0) : delay;
    }

    void send_raw_watch_line(std::string bytes) {
        std::lock_guard lock(mu_);
        for (auto& ch : watches_) push_locked(*ch, bytes);
    }

    void stall_watches(bool stalled) {
        std::lock_guard lock(mu_);
        stalled_ = stalled;
        for (auto& ch : watches_) wake_locked(*ch);
    }

    ServerStats stats() const {
        std::lock_guard lock(mu_);
        ServerStats s = stats_;
        s.open_watches = watches_.size();
        return s;
    }

private:
    using ChannelPtr = std::shared_ptr<StreamChannel>;

    void configure_tls() {
        auto& ctx = *ssl_ctx_;
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
        ctx.use_certificate_chain(asio::buffer(certs_.server_certificate_pem));
        ctx.use_private_key(asio::buffer(certs_.server_key_pem), ssl::context::pem);
        ctx.add_certificate_authority(asio::buffer(certs_.ca_certificate_pem));
        // Ask for a client certificate but do not require one (verify_peer without fail_if_no_peer_cert).
        ctx.set_verify_mode(ssl::verify_peer);
        BioPtr bio(BIO_new_mem_buf(certs_.ca_certificate_pem.data(), static_cast<int>(certs_.ca_certificate_pem.size())));
        X509Ptr ca(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
        if (ca) SSL_CTX_add_client_CA(ctx.native_handle(), ca.get());
        static const unsigned char session_context[] = "execution-sentinel-fake-cluster";
        SSL_CTX_set_session_id_context(ctx.native_handle(), session_context, sizeof session_context - 1);
    }

    void open_acceptor(const tcp::endpoint& endpoint) {
        acceptor_->open(endpoint.protocol());
        acceptor_->set_option(asio::socket_base::reuse_address(true));
        acceptor_->bind(endpoint);
        acceptor_->listen(asio::socket_base::max_listen_connections);
    }

    /// Runs `f` on the I/O thread and waits for it (inline when stopped or already there).
    template <class F>
    void run_on_io(F f) {
        if (ioc_->get_executor().running_in_this_thread() || ioc_->stopped() || !thread_.joinable()) {
            f();
            return;
        }
        std::promise<void> done;
        auto future = done.get_future();
        asio::post(*ioc_, [&] {
            f();
            done.set_value();
        });
        if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
            // The I/O thread is gone: nothing else can touch the sockets now.
        }
    }

    // ------------------------------------------------------------------------------------------- notification
    void wake_locked(StreamChannel& ch) {
        asio::post(*ioc_, [weak = ch.weak_from_this()] {
            if (auto c = weak.lock()) c->wake.cancel();
        });
    }

    void push_locked(StreamChannel& ch, std::string bytes) {
        if (ch.end_requested || ch.overflowed) return;
        if (ch.pending.size() >= config_.watch_queue_limit) {
            // The client does not keep up: drop it, as the apiserver closes unresponsive watchers. Closing the
            // socket also ends a write that is stuck on a full TCP window.
            ch.overflowed = true;
            ch.pending.clear();
            asio::post(*ioc_, [weak = ch.stream] {
                if (auto st = weak.lock()) {
                    boost::system::error_code ignored;
                    beast::get_lowest_layer(*st).socket().close(ignored);
                }
            });
        } else {
            ch.pending.push_back(std::move(bytes));
        }
        wake_locked(ch);
    }

    void end_locked(StreamChannel& ch) {
        ch.end_requested = true;
        wake_locked(ch);
    }

    /// The line of one watch event for `ch` (a one-row Table when the watcher asked for Tables).
    static std::string event_line(const StreamChannel& ch, std::string_view type, const boost::json::object& obj) {
        if (!ch.as_table || type == "ERROR" || type == "BOOKMARK") return watch_line(type, obj);
        boost::json::object meta;
        meta["resourceVersion"] = metadata_string(obj, "resourceVersion");
        return watch_line(type, pod_table({obj}, std::move(meta), ch.include_object, std::chrono::system_clock::now()));
    }

    void publish_locked(const StoreEvent& e) {
        for (auto& ch : watches_) {
            auto ev = watch_event_for(e, ch->filter);
            if (ev) push_locked(*ch, event_line(*ch, ev->first, ev->second));
        }
    }

    void pod_removed_locked(std::string_view ns, std::string_view pod) {
        files_.erase({std::string(ns), std::string(pod)});
        for (auto it = logs_.begin(); it != logs_.end();) {
            if (std::get<0>(it->first) == ns && std::get<1>(it->first) == pod) it = logs_.erase(it);
            else ++it;
        }
        for (auto& ch : log_streams_)
            if (ch->log_namespace == ns && ch->log_pod == pod) end_locked(*ch);
    }

    // ------------------------------------------------------------------------------------------- accept
    asio::awaitable<void> accept_loop(std::uint64_t generation) {
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
            auto stream = std::make_shared<SslStream>(beast::tcp_stream(std::move(socket)), *ssl_ctx_);
            const std::uint64_t id = ++connection_ids_;
            connections_[id] = stream;
            asio::co_spawn(*ioc_, run_connection(stream, id), asio::detached);
        }
    }

    struct ConnectionGuard {
        ClusterServer* server;
        std::uint64_t id;
        ~ConnectionGuard() { server->connections_.erase(id); }
    };

    asio::awaitable<void> run_connection(std::shared_ptr<SslStream> stream, std::uint64_t id) {
        ConnectionGuard guard{this, id};
        auto& s = *stream;
        beast::get_lowest_layer(s).expires_after(std::chrono::seconds(10));
        auto [hec] = co_await s.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
        if (hec || stopping_) co_return;
        bool cert_ok = false;
        if (X509* peer = SSL_get1_peer_certificate(s.native_handle())) {
            cert_ok = SSL_get_verify_result(s.native_handle()) == X509_V_OK;
            X509_free(peer);
        }
        beast::flat_buffer buffer;
        for (;;) {
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
                Response res{http::status::bad_request, 11};
                set_json_body(res, bad_request_status("malformed HTTP request: " + rec.message()));
                res.keep_alive(false);
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
            const bool keep = co_await handle_request(stream, req, cert_ok);
            if (!keep || stopping_) break;
        }
        if (!stopping_) {
            beast::get_lowest_layer(s).expires_after(std::chrono::seconds(2));
            co_await s.async_shutdown(asio::as_tuple(asio::use_awaitable));
        }
        boost::system::error_code ec;
        beast::get_lowest_layer(s).socket().close(ec);
    }

    // ------------------------------------------------------------------------------------------- responses
    static void set_json_body(Response& res, const boost::json::object& body) {
        res.set(http::field::content_type, "application/json");
        res.set(http::field::cache_control, "no-cache, private");
        res.body() = boost::json::serialize(body);
        res.prepare_payload();
    }

    static Response json_response(const Request& req, http::status status, const boost::json::object& body) {
        Response res{status, req.version()};
        res.set("Audit-Id", random_uid());
        set_json_body(res, body);
        res.keep_alive(req.keep_alive());
        return res;
    }

    static Response status_response(const Request& req, const boost::json::object& status) {
        int code = 500;
        if (const auto* c = status.if_contains("code"); c != nullptr && c->is_int64()) code = static_cast<int>(c->as_int64());
        return json_response(req, static_cast<http::status>(code), status);
    }

    asio::awaitable<bool> send(SslStream& s, Response res) {
        auto [ec, n] = co_await http::async_write(s, res, asio::as_tuple(asio::use_awaitable));
        co_return !ec && res.keep_alive();
    }

    bool authenticated(const Request& req, bool cert_ok) const {
        if (cert_ok) return true;
        auto it = req.find(http::field::authorization);
        if (it == req.end()) return false;
        std::string_view v(it->value().data(), it->value().size());
        if (v.size() < 7 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) return false;
        v.remove_prefix(7);
        v = trim(v);
        return !v.empty() && v == config_.bearer_token;
    }

    static boost::json::object injected_status(int code) {
        switch (code) {
        case 429: return make_status(429, "TooManyRequests", "Too many requests, please try again later.");
        case 500: return make_status(500, "InternalError", "Internal error occurred: injected failure");
        case 503: return make_status(503, "ServiceUnavailable", "The server is currently unable to handle the request");
        case 504: return make_status(504, "Timeout", "The server was unable to return a response in the time allotted");
        case 410: return make_status(410, "Expired", "too old resource version");
        case 401: return make_status(401, "Unauthorized", "Unauthorized");
        case 403: return make_status(403, "Forbidden", "forbidden: injected failure");
        case 404: return make_status(404, "NotFound", "the server could not find the requested resource");
        case 409: return make_status(409, "Conflict", "injected conflict");
        default: return make_status(code, code >= 500 ? "InternalError" : "BadRequest", "injected failure");
        }
    }

    // ------------------------------------------------------------------------------------------- dispatch
    asio::awaitable<bool> handle_request(std::shared_ptr<SslStream> stream, Request& req, bool cert_ok) {
        auto& s = *stream;
        std::chrono::milliseconds delay{0};
        std::optional<Response> early;
        {
            std::lock_guard lock(mu_);
            ++stats_.requests;
            delay = delay_;
            if (!authenticated(req, cert_ok)) {
                ++stats_.unauthorized;
                early = json_response(req, http::status::unauthorized, make_status(401, "Unauthorized", "Unauthorized"));
            } else if (fail_count_ > 0) {
                --fail_count_;
                ++stats_.injected_failures;
                early = status_response(req, injected_status(fail_status_));
                if (fail_retry_after_) early->set(http::field::retry_after, std::to_string(*fail_retry_after_));
            }
        }
        if (delay.count() > 0) {
            asio::steady_timer t(co_await asio::this_coro::executor);
            t.expires_after(delay);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            if (stopping_) co_return false;
        }
        if (early) co_return co_await send(s, std::move(*early));

        auto parsed = boost::urls::parse_origin_form(std::string_view(req.target().data(), req.target().size()));
        if (!parsed) co_return co_await send(s, status_response(req, bad_request_status("malformed request target")));
        const boost::urls::url_view url = *parsed;
        std::vector<std::string> segments;
        for (auto seg : url.segments()) segments.emplace_back(seg);
        while (!segments.empty() && segments.back().empty()) segments.pop_back();
        const QueryParams q(url);
        const Route route = route_path(segments);
        const auto method = req.method();
        std::optional<Response> error_response;
        try {
            switch (route.kind) {
            case Route::Kind::version:
                co_return co_await send(s, json_response(req, http::status::ok, version_info()));
            case Route::Kind::api:
                co_return co_await send(s, json_response(req, http::status::ok, api_versions(config_.address + ":" + std::to_string(port_))));
            case Route::Kind::api_v1:
                co_return co_await send(s, json_response(req, http::status::ok, api_resource_list("", "v1")));
            case Route::Kind::apis:
                co_return co_await send(s, json_response(req, http::status::ok, api_group_list()));
            case Route::Kind::group: {
                boost::json::object g = api_group(route.group, "v1");
                g["kind"] = "APIGroup";
                g["apiVersion"] = "v1";
                co_return co_await send(s, json_response(req, http::status::ok, g));
            }
            case Route::Kind::group_version:
                co_return co_await send(s, json_response(req, http::status::ok, api_resource_list(route.group, "v1")));
            case Route::Kind::health: {
                Response res{http::status::ok, req.version()};
                res.set(http::field::content_type, "text/plain; charset=utf-8");
                res.body() = "ok";
                res.prepare_payload();
                res.keep_alive(req.keep_alive());
                co_return co_await send(s, std::move(res));
            }
            case Route::Kind::openapi:
            case Route::Kind::not_found:
                co_return co_await send(s, status_response(req, make_status(404, "NotFound", "the server could not find the requested resource")));
            case Route::Kind::status_subresource:
                if (method == http::verb::get) {
                    count(&ServerStats::gets);
                    co_return co_await send(s, json_response(req, http::status::ok, get_or_throw(route)));
                }
                if (method == http::verb::put) co_return co_await send(s, handle_replace(req, route));
                if (method == http::verb::patch) co_return co_await send(s, handle_patch(req, route));
                co_return co_await send(s, method_not_allowed(req));
            case Route::Kind::collection:
                if (method == http::verb::get) {
                    if (q.flag("watch")) co_return co_await serve_watch(stream, req, route, q);
                    co_return co_await send(s, handle_list(req, route, q));
                }
                if (method == http::verb::post && !route.namespace_.empty()) co_return co_await send(s, handle_create(req, route));
                if (method == http::verb::delete_ && !route.namespace_.empty()) co_return co_await send(s, handle_delete_collection(req, route, q));
                co_return co_await send(s, method_not_allowed(req));
            case Route::Kind::object:
                if (method == http::verb::get) {
                    count(&ServerStats::gets);
                    boost::json::object obj = get_or_throw(route);
                    const auto accept = req[http::field::accept];
                    if (route.resource->plural == "pods" && accepts_table(std::string_view(accept.data(), accept.size()))) {
                        boost::json::object meta;
                        meta["resourceVersion"] = metadata_string(obj, "resourceVersion");
                        obj = pod_table({obj}, std::move(meta), q.value("includeObject"), std::chrono::system_clock::now());
                    }
                    co_return co_await send(s, json_response(req, http::status::ok, obj));
                }
                if (method == http::verb::put) co_return co_await send(s, handle_replace(req, route));
                if (method == http::verb::patch) co_return co_await send(s, handle_patch(req, route));
                if (method == http::verb::delete_) co_return co_await send(s, handle_delete(req, route));
                co_return co_await send(s, method_not_allowed(req));
            case Route::Kind::log:
                if (method != http::verb::get) co_return co_await send(s, method_not_allowed(req));
                co_return co_await serve_log(stream, req, route, q);
            case Route::Kind::exec:
                if (method != http::verb::get && method != http::verb::post) co_return co_await send(s, method_not_allowed(req));
                co_return co_await serve_exec(stream, req, route, q);
            }
        } catch (const StatusError& e) {
            error_response = status_response(req, e.status());
        } catch (const std::exception& e) {
            error_response = status_response(req, make_status(500, "InternalError", std::string("Internal error occurred: ") + e.what()));
        }
        if (error_response) co_return co_await send(s, std::move(*error_response));
        co_return false;
    }

    void count(std::size_t ServerStats::*field) {
        std::lock_guard lock(mu_);
        ++(stats_.*field);
    }

    static Response method_not_allowed(const Request& req) {
        return status_response(req, make_status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
    }

    boost::json::object get_or_throw(const Route& route) {
        std::lock_guard lock(mu_);
        const auto* o = store_.get(*route.resource, route.namespace_, route.name);
        if (o == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
        return *o;
    }

    static boost::json::object parse_body_object(const Request& req) {
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(req.body(), ec);
        if (ec) throw StatusError(bad_request_status("the request body is not valid JSON: " + ec.message()));
        if (!v.is_object()) throw StatusError(bad_request_status("the request body must be a JSON object"));
        return std::move(v.as_object());
    }

    Response handle_create(const Request& req, const Route& route) {
        boost::json::object obj = parse_body_object(req);
        count(&ServerStats::writes);
        return json_response(req, http::status::created, create(*route.resource, route.namespace_, std::move(obj)));
    }

    Response handle_replace(const Request& req, const Route& route) {
        boost::json::object obj = parse_body_object(req);
        count(&ServerStats::writes);
        return json_response(req, http::status::ok, replace(*route.resource, route.namespace_, std::move(obj), route.name));
    }

    Response handle_patch(const Request& req, const Route& route) {
        const auto ct = req[http::field::content_type];
        if (ct.find("json-patch") != beast::string_view::npos || ct.find("apply-patch") != beast::string_view::npos)
            return status_response(req, make_status(415, "UnsupportedMediaType",
                                                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json"));
        boost::system::error_code ec;
        boost::json::value patch = boost::json::parse(req.body(), ec);
        if (ec || !patch.is_object()) throw StatusError(bad_request_status("the request body is not a JSON object"));
        count(&ServerStats::writes);
        std::lock_guard lock(mu_);
        const auto* current = store_.get(*route.resource, route.namespace_, route.name);
        if (current == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
        const std::string expected_rv = json_string_at(patch.as_object(), "metadata.resourceVersion");
        if (!expected_rv.empty() && expected_rv != metadata_string(*current, "resourceVersion"))
            throw StatusError(conflict_status(*route.resource, route.name));
        const StoreEvent& e = store_.modify(*route.resource, route.namespace_, route.name, [&](boost::json::object& o) {
            boost::json::value v = std::move(o);
            apply_merge_patch(v, patch);
            o = v.is_object() ? std::move(v.as_object()) : boost::json::object{};
        });
        publish_locked(e);
        return json_response(req, http::status::ok, e.object);
    }

    Response handle_delete(const Request& req, const Route& route) {
        count(&ServerStats::writes);
        auto removed = remove(*route.resource, route.namespace_, route.name);
        if (!removed) throw StatusError(not_found_status(*route.resource, route.name));
        if (route.resource->delete_returns_object) return json_response(req, http::status::ok, *removed);
        boost::json::object st;
        st["kind"] = "Status";
        st["apiVersion"] = "v1";
        st["metadata"] = boost::json::object{};
        st["status"] = "Success";
        boost::json::object details = status_details(*route.resource, route.name);
        details["uid"] = metadata_string(*removed, "uid");
        st["details"] = std::move(details);
        return json_response(req, http::status::ok, st);
    }

    ObjectFilter make_filter(const Route& route, const QueryParams& q) const {
        ObjectFilter f;
        f.resource = route.resource;
        f.namespace_ = route.namespace_;
        auto labels = parse_label_selector(q.value("labelSelector"));
        if (auto* err = std::get_if<std::string>(&labels)) throw StatusError(bad_request_status(*err));
        f.labels = std::get<Selector>(std::move(labels));
        auto fields = parse_field_selector(q.value("fieldSelector"), *route.resource);
        if (auto* err = std::get_if<std::string>(&fields)) throw StatusError(bad_request_status(*err));
        f.fields = std::get<Selector>(std::move(fields));
        return f;
    }

    Response handle_delete_collection(const Request& req, const Route& route, const QueryParams& q) {
        const ObjectFilter filter = make_filter(route, q);
        count(&ServerStats::writes);
        std::lock_guard lock(mu_);
        boost::json::array items;
        std::vector<std::string> names;
        for (const auto* o : store_.list(*route.resource, route.namespace_))
            if (filter.matches(*o)) names.push_back(metadata_string(*o, "name"));
        for (const auto& name : names) {
            const StoreEvent* e = store_.remove(*route.resource, route.namespace_, name);
            if (e == nullptr) continue;
            publish_locked(*e);
            if (route.resource->plural == "pods") pod_removed_locked(route.namespace_, name);
            items.push_back(e->object);
        }
        boost::json::object out;
        out["kind"] = route.resource->list_kind();
        out["apiVersion"] = route.resource->api_version();
        boost::json::object meta;
        meta["resourceVersion"] = std::to_string(store_.resource_version());
        out["metadata"] = std::move(meta);
        out["items"] = std::move(items);
        return json_response(req, http::status::ok, out);
    }

    Response handle_list(const Request& req, const Route& route, const QueryParams& q) {
        const ObjectFilter filter = make_filter(route, q);
        std::size_t limit = 0;
        if (auto l = q.get("limit"); l && !l->empty()) {
            auto v = parse_resource_version(*l);
            if (!v) throw StatusError(bad_request_status("invalid limit: " + *l));
            limit = static_cast<std::size_t>(*v);
        }
        const std::string rv_param = q.value("resourceVersion");
        const std::string cont = q.value("continue");
        std::lock_guard lock(mu_);
        ++stats_.lists;
        const std::uint64_t current = store_.resource_version();
        std::uint64_t list_rv = current;
        std::string start_after;
        if (!cont.empty()) {
            if (!rv_param.empty() && rv_param != "0")
                throw StatusError(bad_request_status("specifying resource version is not allowed when using continue"));
            auto token = decode_continue(cont);
            if (!token) throw StatusError(bad_request_status("continue key is not valid: illegal base64 data or malformed token"));
            if (token->resource_version < store_.oldest_watchable())
                throw StatusError(make_status(410, "Expired",
                                              "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
            list_rv = token->resource_version;
            start_after = token->start_after;
        } else if (!rv_param.empty()) {
            auto rv = parse_resource_version(rv_param);
            if (!rv) throw StatusError(bad_request_status("invalid resource version: " + rv_param));
            if (*rv > current) {
                boost::json::object details;
                boost::json::object cause;
                cause["reason"] = "ResourceVersionTooLarge";
                cause["message"] = "Too large resource version";
                details["causes"] = boost::json::array{cause};
                details["retryAfterSeconds"] = 1;
                throw StatusError(make_status(504, "Timeout",
                                              "Too large resource version: " + rv_param + ", current: " + std::to_string(current),
                                              std::move(details)));
            }
            if (limit > 0 && q.value("resourceVersionMatch") == "Exact" && *rv < store_.oldest_watchable())
                throw StatusError(expired_status(*rv, store_.oldest_watchable()));
        }
        ListPage page = paginate(store_.list(*route.resource, route.namespace_), filter, limit, start_after, list_rv);
        const auto accept = req[http::field::accept];
        const bool as_table = route.resource->plural == "pods" && accepts_table(std::string_view(accept.data(), accept.size()));
        boost::json::array items;
        for (auto& item : page.items) {
            item.erase("kind");
            item.erase("apiVersion");
            items.push_back(std::move(item));
        }
        boost::json::object meta;
        meta["resourceVersion"] = std::to_string(list_rv);
        if (page.next) {
            meta["continue"] = encode_continue(*page.next);
            meta["remainingItemCount"] = page.remaining;
        }
        if (as_table) {
            std::vector<boost::json::object> objects;
            for (auto& item : items) objects.push_back(std::move(item.as_object()));
            return json_response(req, http::status::ok,
                                 pod_table(objects, std::move(meta), q.value("includeObject"), std::chrono::system_clock::now()));
        }
        boost::json::object out;
        out["kind"] = route.resource->list_kind();
        out["apiVersion"] = route.resource->api_version();
        out["metadata"] = std::move(meta);
        out["items"] = std::move(items);
        return json_response(req, http::status::ok, out);
    }

    // ------------------------------------------------------------------------------------------- streams
    /// Reads and discards whatever the client sends while a response streams; marks the channel when the client
    /// leaves so the stream ends without waiting for the next event.
    asio::awaitable<void> watch_client(std::shared_ptr<SslStream> stream, ChannelPtr ch) {
        char scratch[512];
        for (;;) {
            auto [ec, n] = co_await stream->async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
            if (ec) break;
        }
        ch->client_gone = true;
        ch->wake.cancel();
    }

    static http::response<http::empty_body> stream_header(const Request& req, std::string_view content_type) {
        http::response<http::empty_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, content_type);
        res.set(http::field::cache_control, "no-cache, private");
        res.set("Audit-Id", random_uid());
        res.chunked(true);
        res.keep_alive(false); // the connection closes after the stream ends
        return res;
    }

    /// Writes the chunked header, then the queued lines of `ch` until it ends. Returns false (the connection
    /// is closed afterwards).
    asio::awaitable<bool> pump_stream(std::shared_ptr<SslStream> stream, const Request& req, ChannelPtr ch,
                                      std::string_view content_type, std::chrono::steady_clock::time_point deadline,
                                      const ResourceInfo* bookmarks_for, std::vector<std::string> initial) {
        auto& s = *stream;
        auto header = stream_header(req, content_type);
        http::response_serializer<http::empty_body> sr{header};
        auto [hec, hn] = co_await http::async_write_header(s, sr, asio::as_tuple(asio::use_awaitable));
        if (hec) co_return false;
        asio::co_spawn(s.get_executor(), watch_client(stream, ch), asio::detached);
        bool ok = true;
        for (auto& line : initial) {
            auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
            if (ec) { ok = false; break; }
        }
        auto next_bookmark = std::chrono::steady_clock::now() + config_.bookmark_interval;
        while (ok && !stopping_ && !ch->client_gone) {
            std::deque<std::string> lines;
            bool end = false, stalled = false;
            std::uint64_t rv = 0;
            {
                std::lock_guard lock(mu_);
                stalled = stalled_ && ch->log_pod.empty();
                if (!stalled) {
                    lines.swap(ch->pending);
                    end = ch->end_requested || ch->overflowed;
                }
                rv = store_.resource_version();
            }
            for (auto& line : lines) {
                auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
                if (ec) { ok = false; break; }
            }
            if (!ok || end) break;
            const auto now = std::chrono::steady_clock::now();
            if (!stalled && now >= deadline) break;
            if (!stalled && bookmarks_for != nullptr && now >= next_bookmark) {
                std::string line = watch_line("BOOKMARK", bookmark_object(*bookmarks_for, rv));
                auto [ec, n] = co_await asio::async_write(s, http::make_chunk(asio::buffer(line)), asio::as_tuple(asio::use_awaitable));
                if (ec) break;
                next_bookmark = now + config_.bookmark_interval;
            }
            auto wake_at = deadline;
            if (bookmarks_for != nullptr && next_bookmark < wake_at) wake_at = next_bookmark;
            if (stalled) wake_at = std::chrono::steady_clock::now() + std::chrono::hours(24);
            {
                std::lock_guard lock(mu_);
                const bool ready = !(stalled_ && ch->log_pod.empty()) && (!ch->pending.empty() || ch->end_requested || ch->overflowed);
                if (ready) continue;
            }
            ch->wake.expires_at(wake_at);
            co_await ch->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (ok && !stopping_ && !ch->client_gone) {
            co_await asio::async_write(s, http::make_chunk_last(), asio::as_tuple(asio::use_awaitable));
        }
        // The reader started above still has a read pending on the TLS stream, so no TLS shutdown (it would read
        // too): the response is complete, close the connection.
        boost::system::error_code ignored;
        beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ignored);
        beast::get_lowest_layer(s).socket().close(ignored);
        co_return false;
    }

    struct ChannelGuard {
        ClusterServer* server;
        ChannelPtr ch;
        std::vector<ChannelPtr>* registry;
        ~ChannelGuard() {
            std::lock_guard lock(server->mu_);
            std::erase(*registry, ch);
        }
    };

    asio::awaitable<bool> serve_watch(std::shared_ptr<SslStream> stream, const Request& req, const Route& route,
                                      const QueryParams& q) {
        const ObjectFilter filter = make_filter(route, q);
        const std::string rv_param = q.value("resourceVersion");
        std::optional<std::uint64_t> from;
        if (!rv_param.empty() && rv_param != "0") {
            from = parse_resource_version(rv_param);
            if (!from) throw StatusError(bad_request_status("invalid resource version: " + rv_param));
        }
        auto timeout = config_.default_watch_timeout;
        if (auto t = q.get("timeoutSeconds"); t && !t->empty()) {
            auto v = parse_resource_version(*t);
            if (!v) throw StatusError(bad_request_status("invalid timeoutSeconds: " + *t));
            timeout = std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 365ULL * 86400)));
        }
        const bool bookmarks = q.flag("allowWatchBookmarks");
        auto ch = std::make_shared<StreamChannel>(*ioc_);
        ch->stream = stream;
        ch->filter = filter;
        const auto accept = req[http::field::accept];
        ch->as_table = route.resource->plural == "pods" && accepts_table(std::string_view(accept.data(), accept.size()));
        ch->include_object = q.value("includeObject");
        std::vector<std::string> initial;
        {
            std::lock_guard lock(mu_);
            ++stats_.watches;
            if (!from) {
                for (const auto* o : store_.list(*route.resource, route.namespace_))
                    if (filter.matches(*o)) initial.push_back(event_line(*ch, "ADDED", *o));
            } else {
                EventsAfter after = store_.events_after(*from);
                if (after.expired) {
                    initial.push_back(watch_line("ERROR", expired_status(*from, after.oldest)));
                    ch->end_requested = true;
                } else {
                    for (const auto* e : after.events)
                        if (auto ev = watch_event_for(*e, filter)) initial.push_back(event_line(*ch, ev->first, ev->second));
                }
            }
            watches_.push_back(ch);
        }
        ChannelGuard guard{this, ch, &watches_};
        co_return co_await pump_stream(stream, req, ch, "application/json", std::chrono::steady_clock::now() + timeout,
                                       bookmarks ? route.resource : nullptr, std::move(initial));
    }

    asio::awaitable<bool> serve_log(std::shared_ptr<SslStream> stream, const Request& req, const Route& route,
                                    const QueryParams& q) {
        LogQuery query;
        query.timestamps = q.flag("timestamps");
        query.previous = q.flag("previous");
        const bool follow = q.flag("follow");
        if (auto t = q.get("tailLines"); t && !t->empty()) {
            auto v = parse_resource_version(*t);
            if (!v) throw StatusError(bad_request_status("invalid tailLines: " + *t));
            query.tail_lines = static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1u << 30));
        }
        if (auto t = q.get("limitBytes"); t && !t->empty()) {
            auto v = parse_resource_version(*t);
            if (!v || *v == 0) throw StatusError(bad_request_status("invalid limitBytes: " + *t));
            query.limit_bytes = static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1ULL << 40));
        }
        if (auto t = q.get("sinceTime"); t && !t->empty()) {
            query.since_time = parse_rfc3339(*t);
            if (!query.since_time) throw StatusError(bad_request_status("invalid sinceTime: " + *t));
        }
        if (auto t = q.get("sinceSeconds"); t && !t->empty()) {
            auto v = parse_resource_version(*t);
            if (!v || *v == 0) throw StatusError(bad_request_status("invalid sinceSeconds: " + *t));
            query.since_time = std::chrono::system_clock::now() - std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1ULL << 32)));
        }
        std::string body;
        auto ch = std::make_shared<StreamChannel>(*ioc_);
        ch->stream = stream;
        {
            std::lock_guard lock(mu_);
            ++stats_.logs;
            const auto* pod = store_.get(*route.resource, route.namespace_, route.name);
            if (pod == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
            std::string fallback;
            for (const auto& [key, log] : logs_)
                if (std::get<0>(key) == route.namespace_ && std::get<1>(key) == route.name) {
                    fallback = std::get<2>(key);
                    break;
                }
            const std::string container = resolve_container(*pod, q.value("container"), fallback);
            auto it = logs_.find({route.namespace_, route.name, container});
            const bool has_lines = it != logs_.end() && (!it->second.current.empty() || it->second.previous);
            if (!query.previous && !has_lines) {
                // Like the kubelet: a container that never started has no log yet.
                const std::string waiting = container_waiting_reason(*pod, container);
                if (!waiting.empty())
                    throw StatusError(bad_request_status("container \"" + container + "\" in pod \"" + route.name +
                                                         "\" is waiting to start: " + waiting));
            }
            if (query.previous) {
                if (it == logs_.end() || !it->second.previous)
                    throw StatusError(bad_request_status("previous terminated container \"" + container + "\" in pod \"" +
                                                         route.name + "\" not found"));
                body = render_log(*it->second.previous, query);
            } else if (it != logs_.end()) {
                body = render_log(it->second.current, query);
            }
            if (follow && !query.previous) {
                ch->log_namespace = route.namespace_;
                ch->log_pod = route.name;
                ch->log_container = container;
                ch->log_timestamps = query.timestamps;
                log_streams_.push_back(ch);
            }
        }
        if (!follow || query.previous) {
            Response res{http::status::ok, req.version()};
            res.set(http::field::content_type, "text/plain");
            res.set(http::field::cache_control, "no-cache, private");
            res.body() = std::move(body);
            res.prepare_payload();
            res.keep_alive(req.keep_alive());
            co_return co_await send(*stream, std::move(res));
        }
        ChannelGuard guard{this, ch, &log_streams_};
        std::vector<std::string> initial;
        if (!body.empty()) initial.push_back(std::move(body));
        co_return co_await pump_stream(stream, req, ch, "text/plain", std::chrono::steady_clock::now() + std::chrono::hours(4),
                                       nullptr, std::move(initial));
    }

    /// The waiting reason of a container that has never run (no lastState), or empty.
    static std::string container_waiting_reason(const boost::json::object& pod, const std::string& container) {
        for (const char* field : {"status.containerStatuses", "status.initContainerStatuses"}) {
            const auto* statuses = json_path(pod, field);
            if (statuses == nullptr || !statuses->is_array()) continue;
            for (const auto& c : statuses->as_array()) {
                if (!c.is_object() || json_string_at(c.as_object(), "name") != container) continue;
                const auto* last = json_path(c.as_object(), "lastState.terminated");
                if (last != nullptr) return {};
                return json_string_at(c.as_object(), "state.waiting.reason");
            }
        }
        return {};
    }

    static std::vector<std::string> requested_subprotocols(const Request& req) {
        std::vector<std::string> out;
        for (auto it = req.find(http::field::sec_websocket_protocol); it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
            for (auto part : split(std::string_view(it->value().data(), it->value().size()), ',')) {
                part = trim(part);
                if (!part.empty()) out.emplace_back(part);
            }
        }
        return out;
    }

    asio::awaitable<bool> serve_exec(std::shared_ptr<SslStream> stream, Request& req, const Route& route, const QueryParams& q) {
        std::vector<std::string> command = q.all("command");
        const bool want_stdin = q.flag("stdin");
        const bool want_stdout = q.get("stdout") ? q.flag("stdout") : false;
        const bool want_stderr = q.flag("stderr");
        const bool tty = q.flag("tty");
        ExecResult result;
        {
            std::lock_guard lock(mu_);
            ++stats_.execs;
            const auto* pod = store_.get(*route.resource, route.namespace_, route.name);
            if (pod == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
            resolve_container(*pod, q.value("container"), "main");
            if (!want_stdin && !want_stdout && !want_stderr)
                throw StatusError(bad_request_status("you must specify at least 1 of stdin, stdout, stderr"));
            if (command.empty()) throw StatusError(bad_request_status("you must specify at least one command for the container"));
            auto fit = files_.find({route.namespace_, route.name});
            static const VirtualFileSystem empty_fs;
            result = run_exec_command(fit != files_.end() ? fit->second : empty_fs, command);
        }
        if (!websocket::is_upgrade(req))
            throw StatusError(bad_request_status("Upgrade request required"));
        std::string protocol;
        for (const auto& p : requested_subprotocols(req)) {
            if (p == "v5.channel.k8s.io" || p == "v4.channel.k8s.io") {
                protocol = p;
                break;
            }
        }
        if (protocol.empty())
            throw StatusError(bad_request_status("unable to upgrade: none of the requested subprotocols is supported (v5.channel.k8s.io, v4.channel.k8s.io)"));

        websocket::stream<SslStream&> ws(*stream);
        ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
            res.set(http::field::sec_websocket_protocol, protocol);
        }));
        websocket::stream_base::timeout timeouts{};
        timeouts.handshake_timeout = std::chrono::seconds(5);
        timeouts.idle_timeout = websocket::stream_base::none();
        timeouts.keep_alive_pings = false;
        ws.set_option(timeouts);
        ws.binary(true);
        auto [aec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
        if (aec) co_return false;

        auto frame = [](char channel, std::string_view payload) {
            std::string f;
            f.reserve(payload.size() + 1);
            f += channel;
            f += payload;
            return f;
        };
        std::vector<std::string> frames;
        frames.push_back(frame(want_stdout ? '\1' : '\2', ""));
        std::string out = result.stdout_data;
        std::string err = result.stderr_data;
        if (tty) {
            out += err;
            err.clear();
        }
        constexpr std::size_t max_frame = 32 * 1024;
        for (std::size_t i = 0; want_stdout && i < out.size(); i += max_frame) frames.push_back(frame('\1', std::string_view(out).substr(i, max_frame)));
        for (std::size_t i = 0; want_stderr && i < err.size(); i += max_frame) frames.push_back(frame('\2', std::string_view(err).substr(i, max_frame)));
        boost::json::object status;
        status["metadata"] = boost::json::object{};
        if (result.exit_code == 0) {
            status["status"] = "Success";
        } else {
            status["status"] = "Failure";
            status["message"] = "command terminated with non-zero exit code: error executing command [" +
                                [&] {
                                    std::string joined;
                                    for (const auto& c : command) joined += (joined.empty() ? "" : " ") + c;
                                    return joined;
                                }() + "], exit code " + std::to_string(result.exit_code);
            status["reason"] = "NonZeroExitCode";
            boost::json::object cause;
            cause["reason"] = "ExitCode";
            cause["message"] = std::to_string(result.exit_code);
            boost::json::object details;
            details["causes"] = boost::json::array{cause};
            status["details"] = std::move(details);
        }
        frames.push_back(frame('\3', boost::json::serialize(status)));
        for (const auto& f : frames) {
            auto [ec, n] = co_await ws.async_write(asio::buffer(f), asio::as_tuple(asio::use_awaitable));
            if (ec) co_return false;
        }
        ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(5), std::chrono::seconds(5), false});
        co_await ws.async_close(websocket::close_code::normal, asio::as_tuple(asio::use_awaitable));
        co_return false;
    }

    // ------------------------------------------------------------------------------------------- state
    ServerConfig config_;
    CertificateBundle certs_;
    std::uint16_t port_ = 0;

    mutable std::mutex mu_;
    ObjectStore store_;
    std::map<std::pair<std::string, std::string>, VirtualFileSystem> files_;
    std::map<std::tuple<std::string, std::string, std::string>, ContainerLog> logs_;
    std::vector<ChannelPtr> watches_;
    std::vector<ChannelPtr> log_streams_;
    int fail_count_ = 0;
    int fail_status_ = 500;
    std::optional<int> fail_retry_after_;
    std::chrono::milliseconds delay_{0};
    bool stalled_ = false;
    ServerStats stats_;

    std::atomic<bool> stopped_{false};
    std::atomic<bool> stopping_{false};
    std::uint64_t accept_generation_ = 0;   // I/O thread only
    std::uint64_t connection_ids_ = 0;      // I/O thread only
    std::map<std::uint64_t, std::weak_ptr<SslStream>> connections_; // I/O thread only

    std::unique_ptr<asio::io_context> ioc_;
    std::unique_ptr<ssl::context> ssl_ctx_;
    std::unique_ptr<tcp::acceptor> acceptor_;
    std::unique_ptr<asio::steady_timer> refuse_timer_;
    std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
    std::thread thread_;
};

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP

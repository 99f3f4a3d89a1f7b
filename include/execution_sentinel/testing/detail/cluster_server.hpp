// The HTTPS server behind FakeCluster: one I/O thread, one mutex for all state, one coroutine per connection.
// It only moves bytes: the router (router.hpp) decides every answer, the streaming handlers (streaming.hpp)
// carry watches and followed logs, exec_session.hpp carries exec sessions.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/certificates.hpp>
#include <execution_sentinel/testing/detail/router.hpp>
#include <execution_sentinel/testing/detail/streaming.hpp>
#include <execution_sentinel/testing/traffic.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace execution_sentinel::testing::detail {

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
    MetricsApi metrics_api = MetricsApi::available;
    std::chrono::milliseconds metrics_window{15000};
};

/// The server. Public members are thread-safe.
class ClusterServer {
public:
    /// Generates certificates, binds and starts the I/O thread. Throws std::system_error when the address cannot
    /// be bound, std::runtime_error when OpenSSL fails.
    explicit ClusterServer(ServerConfig config);
    ClusterServer(const ClusterServer&) = delete;
    ClusterServer& operator=(const ClusterServer&) = delete;
    ~ClusterServer();

    /// Closes the listener and every connection, joins the I/O thread. Idempotent.
    void stop();

    std::uint16_t port() const { return port_; }
    const ServerConfig& config() const { return config_; }
    const CertificateBundle& certificates() const { return certs_; }
    std::string server_url() const;

    // objects
    boost::json::object create(const ResourceInfo& r, std::string_view ns, boost::json::object obj);
    boost::json::object replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj, std::string_view name = {});
    boost::json::object modify(const ResourceInfo& r, std::string_view ns, std::string_view name,
                               const std::function<void(boost::json::object&)>& mutate);
    std::optional<boost::json::object> remove(const ResourceInfo& r, std::string_view ns, std::string_view name);
    std::optional<boost::json::object> get(const ResourceInfo& r, std::string_view ns, std::string_view name) const;
    std::vector<boost::json::object> list(const ResourceInfo& r, std::string_view ns) const;
    std::uint64_t resource_version() const;

    // pod side
    void write_file(std::string_view ns, std::string_view pod, std::string path, std::string content);
    void remove_file(std::string_view ns, std::string_view pod, std::string_view path);
    void append_log(std::string_view ns, std::string_view pod, std::string_view container, std::string line,
                    std::chrono::system_clock::time_point when);
    void restart_container_log(std::string_view ns, std::string_view pod, std::string_view container);

    // metrics API
    void set_pod_usage(std::string_view ns, std::string_view pod, std::vector<ContainerUsage> containers,
                       std::chrono::system_clock::time_point when, std::optional<std::chrono::milliseconds> window);
    void set_metrics_api(MetricsApi mode);

    // faults
    void close_watches();
    void reset_watches();
    void fail_next_requests(int count, int status, std::optional<int> retry_after);
    void refuse_connections(std::chrono::milliseconds duration);
    void compact();
    void delay_responses(std::chrono::milliseconds delay);
    void delay_watches(std::chrono::milliseconds delay);
    void send_raw_watch_line(std::string bytes);
    void stall_watches(bool stalled);

    ServerStats stats() const;
    /// The traffic; only the totals when `records` is false.
    Traffic traffic(bool records = true) const;

private:
    struct ConnectionGuard;
    struct TrafficConnection {
        std::uint64_t id = 0;
        std::shared_ptr<ConnectionBytes> bytes;
        std::size_t requests = 0;
        bool open = true;
    };
    struct TrafficRequest {
        std::uint64_t connection = 0;
        std::string method, target;
        std::shared_ptr<ConnectionBytes> bytes;
        std::uint64_t sent0 = 0, received0 = 0, sent1 = 0, received1 = 0;
        bool open = true;
    };
    static constexpr std::size_t traffic_records = 100000;

    /// Traffic bookkeeping (any thread; takes traffic_mu_).
    void traffic_connection_opened(std::uint64_t id, std::shared_ptr<ConnectionBytes> bytes);
    void traffic_connection_closed(std::uint64_t id);
    /// A request whose bytes started at `sent0`/`received0` on its connection; returns its record number.
    std::uint64_t traffic_request_started(std::uint64_t connection, const Request& req, std::uint64_t sent0,
                                          std::uint64_t received0);
    void traffic_request_ended(std::uint64_t record);

    void configure_tls();
    void open_acceptor(const boost::asio::ip::tcp::endpoint& endpoint);
    /// Runs `f` on the I/O thread and waits for it (inline when stopped or already there).
    void run_on_io(const std::function<void()>& f);
    boost::asio::awaitable<void> accept_loop(std::uint64_t generation);
    boost::asio::awaitable<void> run_connection(std::shared_ptr<SslStream> stream, std::uint64_t id);
    boost::asio::awaitable<bool> handle_request(std::shared_ptr<SslStream> stream, Request& req, bool cert_ok);
    /// Runs on builder_ioc_: a DeferredResponse's answer, or a 500 when building it throws.
    static boost::asio::awaitable<Response> build_deferred(const DeferredResponse& d, const Request& req);
    StreamContext stream_context();

    ServerConfig config_;
    CertificateBundle certs_;
    std::uint16_t port_ = 0;

    mutable std::mutex mu_;
    ClusterState state_;                          ///< guarded by mu_
    std::unique_ptr<StreamRegistry> streams_;     ///< guarded by mu_
    std::unique_ptr<Router> router_;              ///< guarded by mu_

    std::atomic<bool> stopped_{false};
    std::atomic<bool> stopping_{false};
    std::uint64_t accept_generation_ = 0;   // I/O thread only
    std::uint64_t connection_ids_ = 0;      // I/O thread only
    std::map<std::uint64_t, std::weak_ptr<SslStream>> connections_; // I/O thread only

    mutable std::mutex traffic_mu_;
    std::deque<TrafficConnection> traffic_connections_; ///< guarded by traffic_mu_
    std::deque<TrafficRequest> traffic_requests_;       ///< guarded by traffic_mu_
    std::uint64_t traffic_first_request_ = 0;           ///< record number of traffic_requests_.front()
    std::uint64_t traffic_requests_total_ = 0, traffic_connections_total_ = 0;
    std::uint64_t dropped_sent_ = 0, dropped_received_ = 0; ///< bytes of connections no longer listed

    std::unique_ptr<boost::asio::io_context> ioc_;
    std::unique_ptr<boost::asio::ssl::context> ssl_ctx_;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::unique_ptr<boost::asio::steady_timer> refuse_timer_;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::thread thread_;
    // Deferred answers (DeferredResponse) are built here, off the I/O thread.
    std::unique_ptr<boost::asio::io_context> builder_ioc_;
    std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> builder_work_;
    std::thread builder_thread_;
};

} // namespace execution_sentinel::testing::detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/detail/impl/cluster_server.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_CLUSTER_SERVER_HPP

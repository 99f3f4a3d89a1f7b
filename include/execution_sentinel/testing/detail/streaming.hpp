// The simulated apiserver's streaming responses: open watches and followed logs. A StreamRegistry holds one
// bounded queue of bytes per open stream and fills it as the router reports changes (under the server's lock,
// from any thread); serve_stream() is the coroutine that drains one queue onto its connection as HTTP chunks,
// with BOOKMARK events and the watch timeout. What to send is decided by the router (router.hpp), when to send
// bookmarks and end by the StreamSchedule (stream_schedule.hpp).
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_STREAMING_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_STREAMING_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/detail/router.hpp>
#include <execution_sentinel/testing/detail/stream_schedule.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/rate_policy.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing::detail {

/// Bytes one connection moved, counted as its socket reads and writes complete: the TLS records as they travel
/// above TCP (handshake, HTTP headers, bodies, chunk framing, record overhead). Written on the I/O thread, read
/// from any thread.
struct ConnectionBytes {
    std::atomic<std::uint64_t> sent{0};
    std::atomic<std::uint64_t> received{0};
};

/// A Beast rate policy that limits nothing and counts every byte the connection's socket transfers.
class CountingRatePolicy {
public:
    const std::shared_ptr<ConnectionBytes>& bytes() const noexcept { return bytes_; }

private:
    friend class boost::beast::rate_policy_access;
    static std::size_t available_read_bytes() noexcept { return (std::numeric_limits<std::size_t>::max)(); }
    static std::size_t available_write_bytes() noexcept { return (std::numeric_limits<std::size_t>::max)(); }
    void transfer_read_bytes(std::size_t n) noexcept { bytes_->received.fetch_add(n, std::memory_order_relaxed); }
    void transfer_write_bytes(std::size_t n) noexcept { bytes_->sent.fetch_add(n, std::memory_order_relaxed); }
    static void on_timer() noexcept {}

    std::shared_ptr<ConnectionBytes> bytes_ = std::make_shared<ConnectionBytes>();
};

/// A TCP stream with Beast's timeouts whose bytes are counted.
using CountingTcpStream = boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::any_io_executor, CountingRatePolicy>;
using SslStream = boost::beast::ssl_stream<CountingTcpStream>;

/// The queue of one open watch or log-follow stream. Filled under the server mutex from any thread, drained by
/// the connection coroutine on the I/O thread, which `wake` resumes.
struct StreamChannel : std::enable_shared_from_this<StreamChannel> {
    explicit StreamChannel(boost::asio::io_context& ioc) : wake(ioc) {}
    boost::asio::steady_timer wake;   ///< only touched on the I/O thread
    std::deque<std::string> pending;  ///< guarded by the server mutex
    bool end_requested = false;       ///< guarded: end the stream cleanly after draining
    bool overflowed = false;          ///< guarded: the queue limit was hit
    bool client_gone = false;         ///< I/O thread only
    std::weak_ptr<SslStream> stream;  ///< closed when the queue overflows
    // watch streams
    ObjectFilter filter;
    WatchFormat format;
    // log streams
    std::string log_namespace, log_pod, log_container;
    bool log_timestamps = false;
};
using ChannelPtr = std::shared_ptr<StreamChannel>;

/// The open streams. Every member requires the server mutex.
class StreamRegistry final : public ChangeListener {
public:
    /// `queue_limit`: queued chunks per stream before the client is disconnected as too slow.
    StreamRegistry(boost::asio::io_context& ioc, std::size_t queue_limit);

    /// Registers a watch that starts with `w` (its initial lines are sent by serve_stream).
    ChannelPtr open_watch(std::weak_ptr<SslStream> stream, const WatchStart& w);
    /// Registers a followed log.
    ChannelPtr open_log(std::weak_ptr<SslStream> stream, const LogFollow& f);
    /// Unregisters a stream that ended.
    void close(const ChannelPtr& ch);

    void stored(const StoreEvent& e) override;
    void pod_removed(std::string_view ns, std::string_view pod) override;
    /// A line appended to a container log: sent to the streams following it.
    void log_appended(std::string_view ns, std::string_view pod, std::string_view container, const LogLine& line);
    /// A container restarted: the streams following its log end.
    void log_restarted(std::string_view ns, std::string_view pod, std::string_view container);
    /// Ends every watch cleanly.
    void end_watches();
    /// Resets the connection of every watch (TCP RST, no terminating chunk), as a failing load balancer or node.
    void reset_watches();
    /// Sends `bytes` verbatim on every watch.
    void send_raw_to_watches(const std::string& bytes);
    /// Wakes every watch (the stall setting changed).
    void wake_watches();
    /// Wakes every stream so that it sees the server stopping.
    void wake_all();
    std::size_t open_watches() const noexcept { return watches_.size(); }

private:
    void wake(StreamChannel& ch);
    void push(StreamChannel& ch, std::string bytes);
    void end(StreamChannel& ch);

    boost::asio::io_context& ioc_;
    std::size_t queue_limit_;
    std::vector<ChannelPtr> watches_;
    std::vector<ChannelPtr> log_streams_;
};

/// What serve_stream() shares with the server.
struct StreamContext {
    std::mutex& mu;                       ///< the server mutex
    const ClusterState& state;            ///< the stall setting and the current resourceVersion
    StreamRegistry& registry;
    const std::atomic<bool>& stopping;
    std::chrono::milliseconds bookmark_interval;
};

/// Writes the chunked response header, the `initial` chunks, then the queued chunks of `ch` until it ends (end
/// requested, overflow, `deadline`, the client leaving, the server stopping), with a BOOKMARK of `bookmarks_for`
/// every bookmark interval when not null. Unregisters `ch` and closes the connection; completes with false
/// (the connection is not reused).
EXECUTION_SENTINEL_DECL boost::asio::awaitable<bool> serve_stream(StreamContext ctx, std::shared_ptr<SslStream> stream,
                                                                  const Request& req, ChannelPtr ch, std::string_view content_type,
                                                                  std::chrono::steady_clock::time_point deadline,
                                                                  const ResourceInfo* bookmarks_for, std::vector<std::string> initial);

} // namespace execution_sentinel::testing::detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/detail/impl/streaming.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_STREAMING_HPP

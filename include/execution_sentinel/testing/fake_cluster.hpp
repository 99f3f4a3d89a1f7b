// FakeCluster: an in-process, simulated kube-apiserver over real HTTPS on 127.0.0.1, for tests, examples,
// benchmarks and demos. Real Kubernetes clients (kubectl, client-go, the Python client, this project's
// client) talk to it as to a cluster; the test drives the objects, pod files, container logs and faults.
//
// What it serves (see docs/fake-cluster.md):
//   - discovery: /version, /api, /api/v1, /apis, /apis/batch[/v1], /apis/coordination.k8s.io[/v1]
//   - namespaced pods, events, configmaps (core/v1), jobs (batch/v1), leases (coordination.k8s.io/v1):
//     get, list (labelSelector, fieldSelector, limit/continue, resourceVersion), watch (resourceVersion,
//     allowWatchBookmarks, timeoutSeconds, selectors), create, update (PUT), merge patch, delete;
//     cluster-wide list/watch at /api/v1/pods etc.
//   - pods/NAME/log (container, follow, tailLines, timestamps, sinceTime, sinceSeconds, previous, limitBytes)
//   - pods/NAME/exec over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io) running `cat`, `test`, `ls`,
//     `echo`, `true`, `false` and `sh -c '<one of those>'` against a per-pod virtual file system
//   - the metrics API (metrics.k8s.io/v1beta1 PodMetrics, as metrics-server serves it), or its absence
//   - authentication by bearer token or by a client certificate signed by the cluster CA; 401 otherwise
#ifndef EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP
#define EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/metrics.hpp>
#include <execution_sentinel/testing/traffic.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing {

namespace detail {
class ClusterServer;
}

/// Settings of a FakeCluster. Works with designated initializers.
struct FakeClusterOptions {
    /// Address to listen on. Default "127.0.0.1" (the server certificate covers 127.0.0.1, ::1 and localhost).
    std::string address = "127.0.0.1";
    /// TCP port; 0 (the default) picks any free port, see `FakeCluster::port()`.
    std::uint16_t port = 0;
    /// The token the "token-user" authenticates with; empty (the default) = a random 32-character token.
    std::string bearer_token;
    /// Watch events retained (default 10000). A watch from an older resourceVersion gets an ERROR event with a
    /// 410 Expired Status, as from a real apiserver whose history was compacted.
    std::size_t history_limit = 10000;
    /// Period of BOOKMARK events on watches that ask for them (default 60 s, like the apiserver's watch cache).
    std::chrono::milliseconds bookmark_interval{60000};
    /// Namespace of the kubeconfig contexts (default "default").
    std::string default_namespace = "default";
    /// Events queued for one watch that has not sent them yet (default 10000). A watcher that falls this far
    /// behind is disconnected, as the apiserver disconnects unresponsive watchers.
    std::size_t watch_queue_limit = 10000;
    /// Whether the metrics API is served (default: available, as with metrics-server installed).
    MetricsApi metrics_api = MetricsApi::available;
    /// The `window` of PodMetrics whose usage was set without one (default 15 s, metrics-server's usual
    /// resolution).
    std::chrono::milliseconds metrics_window{15000};
};

/// A simulated kube-apiserver. Constructing it generates a CA, server and client certificates, binds the port
/// and starts serving on its own I/O thread. All members are thread-safe. Not copyable or movable.
///
/// Resources are named by their plural: "pods", "events", "configmaps" (core/v1), "jobs" (batch/v1),
/// "leases" (coordination.k8s.io/v1); any other name throws std::invalid_argument. Objects are Kubernetes
/// JSON exactly as served; every change takes the next value of one global resourceVersion and is seen by
/// open watches.
class FakeCluster {
public:
    /// Generates certificates, binds `options.address:options.port` and starts serving.
    /// Throws std::system_error when the address cannot be bound, std::runtime_error when OpenSSL fails.
    explicit FakeCluster(FakeClusterOptions options = {});
    /// Stops serving (see stop()) and releases everything.
    ~FakeCluster();
    FakeCluster(const FakeCluster&) = delete;
    FakeCluster& operator=(const FakeCluster&) = delete;

    /// Closes the listening socket and every connection (open watches, log streams and exec sessions end
    /// abruptly) and joins the I/O thread; returns within a second. Idempotent. The object API keeps working.
    void stop();

    /// The bound port.
    std::uint16_t port() const;
    /// "https://127.0.0.1:PORT".
    std::string server_url() const;
    /// PEM of the CA that signed the server and client certificates.
    std::string ca_pem() const;
    /// The bearer token the server accepts.
    std::string bearer_token() const;
    /// PEM certificate and key of the user "fake-client" (group "system:masters"), signed by the CA.
    std::string client_certificate_pem() const;
    std::string client_key_pem() const;
    /// A kubeconfig (YAML) for this cluster: cluster "fake" (server, certificate-authority-data), users
    /// "token-user" (token) and "cert-user" (client-certificate-data, client-key-data), contexts "fake-token"
    /// (current) and "fake-cert", both in `default_namespace`. Holds secrets: do not log it.
    std::string kubeconfig() const;
    /// Writes kubeconfig() to `path` (mode 0600). Throws std::runtime_error when it cannot be written.
    void write_kubeconfig(const std::filesystem::path& path) const;

    // ------------------------------------------------------------------------------------------- objects
    /// Stores a new object (ADDED event) and returns it as stored: apiVersion, kind, metadata.namespace, uid,
    /// resourceVersion and creationTimestamp filled in (a given creationTimestamp is kept; generateName works).
    /// Throws std::runtime_error if an object of that name exists or the object is invalid.
    boost::json::object create(std::string_view resource, std::string_view ns, boost::json::object obj);
    /// Replaces a whole object (MODIFIED event). metadata.resourceVersion, when set, must equal the stored one.
    /// Throws std::runtime_error when absent or on a resourceVersion conflict.
    boost::json::object replace(std::string_view resource, std::string_view ns, boost::json::object obj);
    /// Read-modify-write under the server lock (MODIFIED event); returns the new object. Throws std::runtime_error
    /// when absent. `mutate` must not call back into the FakeCluster.
    boost::json::object modify(std::string_view resource, std::string_view ns, std::string_view name,
                               const std::function<void(boost::json::object&)>& mutate);
    /// Deletes an object (DELETED event carrying the last state with a new resourceVersion). False when absent.
    /// Deleting a pod also drops its files and logs and ends its log streams.
    bool remove(std::string_view resource, std::string_view ns, std::string_view name);
    /// The stored object, if any.
    std::optional<boost::json::object> get(std::string_view resource, std::string_view ns, std::string_view name) const;
    /// Objects of a resource in `ns` (all namespaces when empty), ordered by namespace and name.
    std::vector<boost::json::object> list(std::string_view resource, std::string_view ns) const;
    /// The current (latest) resourceVersion.
    std::uint64_t resource_version() const;

    // ------------------------------------------------------------------------------------------- pod side
    /// Creates or overwrites a file in the pod's virtual file system (seen by exec `cat`, `test -f`, `ls`).
    /// The pod object need not exist yet.
    void write_file(std::string_view ns, std::string_view pod, std::string path, std::string content);
    /// Removes a file; no effect when absent.
    void remove_file(std::string_view ns, std::string_view pod, std::string_view path);
    /// Appends one line (a trailing newline is removed) to the container's log, timestamped now; open
    /// `follow` streams receive it at once.
    void append_log(std::string_view ns, std::string_view pod, std::string_view container, std::string line);
    /// Simulates a container restart: the current lines become the `previous=true` log, the current log starts
    /// empty, and following streams end.
    void restart_container_log(std::string_view ns, std::string_view pod, std::string_view container);

    // ------------------------------------------------------------------------------------------- metrics
    /// Sets the usage the metrics API reports for a pod from now on (`timestamp` now, `window` as given or the
    /// cluster's). Containers not listed report a small baseline. Only Running pods are served, only their
    /// running containers; the usage goes with the pod when it is deleted.
    void set_pod_usage(std::string_view ns, std::string_view pod, std::vector<ContainerUsage> containers,
                       std::optional<std::chrono::milliseconds> window = std::nullopt);
    /// Serves the metrics API, or answers as a cluster without it (404), with RBAC denying it (403), or with
    /// metrics-server down (503).
    void set_metrics_api(MetricsApi mode);

    // ------------------------------------------------------------------------------------------- faults
    /// Ends every open watch stream cleanly (terminating chunk), as an apiserver does at its watch timeout.
    void close_watches();
    /// Resets the connection of every open watch (TCP RST: no terminating chunk, the client's read fails), as
    /// when a load balancer, a node or the apiserver process goes away.
    void reset_watches();
    /// Answers the next `count` authenticated requests with `http_status` and a matching Status body
    /// (500 InternalError, 429 TooManyRequests, 503 ServiceUnavailable, 504 Timeout, ...), with a Retry-After
    /// header when `retry_after_seconds` is given. A new call replaces the previous setting; count 0 clears it.
    void fail_next_requests(int count, int http_status, std::optional<int> retry_after_seconds = {});
    /// Closes the listening socket for `duration`: new connections are refused (ECONNREFUSED); open ones stay.
    void refuse_connections(std::chrono::milliseconds duration);
    /// Drops the retained watch history: a watch from any older resourceVersion gets ERROR 410 Expired.
    void compact();
    /// Waits `delay` before answering every request (0 = off).
    void delay_responses(std::chrono::milliseconds delay);
    /// Waits `delay` before answering every watch request (an overloaded apiserver, slow to open a watch that
    /// reconnects); other requests are answered at once (0 = off).
    void delay_watches(std::chrono::milliseconds delay);
    /// Sends `bytes` verbatim as one chunk on every open watch (malformed or truncated JSON lines).
    void send_raw_watch_line(std::string bytes);
    /// While stalled, open watches send nothing (no events, bookmarks or end at timeout) but stay open, like a
    /// half-open connection; events are queued and flow again when unstalled.
    void stall_watches(bool stalled);

    /// Request counters since construction.
    struct Stats {
        std::size_t requests = 0, gets = 0, lists = 0, watches = 0, writes = 0, execs = 0, logs = 0,
                    unauthorized = 0, injected_failures = 0, open_watches = 0;
        std::size_t metrics = 0; ///< metrics API reads answered (get and list)
        std::uint64_t connections = 0;    ///< connections accepted
        std::uint64_t bytes_sent = 0;     ///< bytes written to all connections (TLS records, as on the wire)
        std::uint64_t bytes_received = 0; ///< bytes read from all connections
    };
    Stats stats() const;

    /// Bytes per connection and per request since construction, counted as the sockets transfer them (TLS
    /// handshake, headers, bodies, chunk framing and record overhead included), for traffic comparisons.
    Traffic traffic() const;

private:
    std::unique_ptr<detail::ClusterServer> server_;
    FakeClusterOptions options_;
};

} // namespace execution_sentinel::testing

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/impl/fake_cluster.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP

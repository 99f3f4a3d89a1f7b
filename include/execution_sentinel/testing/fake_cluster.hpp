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
//   - authentication by bearer token or by a client certificate signed by the cluster CA; 401 otherwise
#ifndef EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP
#define EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP

#include <boost/json.hpp>

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

    // ------------------------------------------------------------------------------------------- faults
    /// Ends every open watch stream cleanly (terminating chunk), as an apiserver does at its watch timeout.
    void close_watches();
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
    /// Sends `bytes` verbatim as one chunk on every open watch (malformed or truncated JSON lines).
    void send_raw_watch_line(std::string bytes);
    /// While stalled, open watches send nothing (no events, bookmarks or end at timeout) but stay open, like a
    /// half-open connection; events are queued and flow again when unstalled.
    void stall_watches(bool stalled);

    /// Request counters since construction.
    struct Stats {
        std::size_t requests = 0, gets = 0, lists = 0, watches = 0, writes = 0, execs = 0, logs = 0,
                    unauthorized = 0, injected_failures = 0, open_watches = 0;
    };
    Stats stats() const;

private:
    std::unique_ptr<detail::ClusterServer> server_;
    FakeClusterOptions options_;
};

} // namespace execution_sentinel::testing

// ------------------------------------------------------------------------------------------------ implementation

#include <execution_sentinel/testing/detail/cluster_server.hpp>

#include <fstream>
#include <stdexcept>
#include <system_error>

namespace execution_sentinel::testing {

namespace detail {
inline const ResourceInfo& resource_or_throw(std::string_view plural) {
    const ResourceInfo* r = find_resource(plural);
    if (r == nullptr) throw std::invalid_argument("FakeCluster does not serve the resource \"" + std::string(plural) + "\"");
    return *r;
}
} // namespace detail

inline FakeCluster::FakeCluster(FakeClusterOptions options) : options_(std::move(options)) {
    detail::ServerConfig config;
    config.address = options_.address;
    config.port = options_.port;
    config.bearer_token = options_.bearer_token;
    config.history_limit = options_.history_limit;
    config.bookmark_interval = options_.bookmark_interval;
    config.watch_queue_limit = options_.watch_queue_limit == 0 ? 1 : options_.watch_queue_limit;
    server_ = std::make_unique<detail::ClusterServer>(std::move(config));
}

inline FakeCluster::~FakeCluster() = default;

inline void FakeCluster::stop() { server_->stop(); }
inline std::uint16_t FakeCluster::port() const { return server_->port(); }
inline std::string FakeCluster::server_url() const { return server_->server_url(); }
inline std::string FakeCluster::ca_pem() const { return server_->certificates().ca_certificate_pem; }
inline std::string FakeCluster::bearer_token() const { return server_->config().bearer_token; }
inline std::string FakeCluster::client_certificate_pem() const { return server_->certificates().client_certificate_pem; }
inline std::string FakeCluster::client_key_pem() const { return server_->certificates().client_key_pem; }

inline std::string FakeCluster::kubeconfig() const {
    const std::string ns = options_.default_namespace.empty() ? "default" : options_.default_namespace;
    std::string y;
    y += "apiVersion: v1\nkind: Config\npreferences: {}\n";
    y += "clusters:\n- name: fake\n  cluster:\n    server: " + server_url() + "\n";
    y += "    certificate-authority-data: " + detail::base64_encode(ca_pem()) + "\n";
    y += "users:\n- name: token-user\n  user:\n    token: " + bearer_token() + "\n";
    y += "- name: cert-user\n  user:\n    client-certificate-data: " + detail::base64_encode(client_certificate_pem()) + "\n";
    y += "    client-key-data: " + detail::base64_encode(client_key_pem()) + "\n";
    y += "contexts:\n- name: fake-token\n  context:\n    cluster: fake\n    user: token-user\n    namespace: " + ns + "\n";
    y += "- name: fake-cert\n  context:\n    cluster: fake\n    user: cert-user\n    namespace: " + ns + "\n";
    y += "current-context: fake-token\n";
    return y;
}

inline void FakeCluster::write_kubeconfig(const std::filesystem::path& path) const {
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) throw std::runtime_error("cannot write kubeconfig to " + path.string());
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::replace);
        out << kubeconfig();
        out.flush();
        if (!out) throw std::runtime_error("cannot write kubeconfig to " + path.string());
    }
}

inline boost::json::object FakeCluster::create(std::string_view resource, std::string_view ns, boost::json::object obj) {
    return server_->create(detail::resource_or_throw(resource), ns, std::move(obj));
}

inline boost::json::object FakeCluster::replace(std::string_view resource, std::string_view ns, boost::json::object obj) {
    return server_->replace(detail::resource_or_throw(resource), ns, std::move(obj));
}

inline boost::json::object FakeCluster::modify(std::string_view resource, std::string_view ns, std::string_view name,
                                               const std::function<void(boost::json::object&)>& mutate) {
    return server_->modify(detail::resource_or_throw(resource), ns, name, mutate);
}

inline bool FakeCluster::remove(std::string_view resource, std::string_view ns, std::string_view name) {
    return server_->remove(detail::resource_or_throw(resource), ns, name).has_value();
}

inline std::optional<boost::json::object> FakeCluster::get(std::string_view resource, std::string_view ns,
                                                           std::string_view name) const {
    return server_->get(detail::resource_or_throw(resource), ns, name);
}

inline std::vector<boost::json::object> FakeCluster::list(std::string_view resource, std::string_view ns) const {
    return server_->list(detail::resource_or_throw(resource), ns);
}

inline std::uint64_t FakeCluster::resource_version() const { return server_->resource_version(); }

inline void FakeCluster::write_file(std::string_view ns, std::string_view pod, std::string path, std::string content) {
    server_->write_file(ns, pod, std::move(path), std::move(content));
}

inline void FakeCluster::remove_file(std::string_view ns, std::string_view pod, std::string_view path) {
    server_->remove_file(ns, pod, path);
}

inline void FakeCluster::append_log(std::string_view ns, std::string_view pod, std::string_view container, std::string line) {
    server_->append_log(ns, pod, container, std::move(line), std::chrono::system_clock::now());
}

inline void FakeCluster::restart_container_log(std::string_view ns, std::string_view pod, std::string_view container) {
    server_->restart_container_log(ns, pod, container);
}

inline void FakeCluster::close_watches() { server_->close_watches(); }

inline void FakeCluster::fail_next_requests(int count, int http_status, std::optional<int> retry_after_seconds) {
    server_->fail_next_requests(count, http_status, retry_after_seconds);
}

inline void FakeCluster::refuse_connections(std::chrono::milliseconds duration) { server_->refuse_connections(duration); }
inline void FakeCluster::compact() { server_->compact(); }
inline void FakeCluster::delay_responses(std::chrono::milliseconds delay) { server_->delay_responses(delay); }
inline void FakeCluster::send_raw_watch_line(std::string bytes) { server_->send_raw_watch_line(std::move(bytes)); }
inline void FakeCluster::stall_watches(bool stalled) { server_->stall_watches(stalled); }

inline FakeCluster::Stats FakeCluster::stats() const {
    const detail::ServerStats s = server_->stats();
    Stats out;
    out.requests = s.requests;
    out.gets = s.gets;
    out.lists = s.lists;
    out.watches = s.watches;
    out.writes = s.writes;
    out.execs = s.execs;
    out.logs = s.logs;
    out.unauthorized = s.unauthorized;
    out.injected_failures = s.injected_failures;
    out.open_watches = s.open_watches;
    return out;
}

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_FAKE_CLUSTER_HPP

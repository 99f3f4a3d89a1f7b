// The simulated apiserver's decisions: one HTTP request in, one answer out, over the object store, the pods'
// files and logs and the injected faults. No sockets, no clock of its own, no threads: the caller holds the
// server's lock and passes `now`. The answer is a complete response, or the start of a stream (a watch, a
// followed log, an exec session) whose first bytes are already decided; the streaming handlers
// (streaming.hpp, exec_session.hpp) only move those bytes.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_ROUTER_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_ROUTER_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/detail/list_watch.hpp>
#include <execution_sentinel/testing/detail/metrics_api.hpp>
#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/pod_runtime.hpp>
#include <execution_sentinel/testing/detail/resources.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/url/url_view.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace execution_sentinel::testing::detail {

namespace http = boost::beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

/// Request counters.
struct ServerStats {
    std::size_t requests = 0, gets = 0, lists = 0, watches = 0, writes = 0, execs = 0, logs = 0, unauthorized = 0,
                injected_failures = 0, open_watches = 0, metrics = 0;
};

/// `length` random letters and digits.
EXECUTION_SENTINEL_DECL std::string random_token(std::size_t length);

/// strconv.ParseBool as the apiserver uses it; nullopt when not a boolean.
EXECUTION_SENTINEL_DECL std::optional<bool> parse_bool(std::string_view s);

/// Applies an RFC 7386 JSON merge patch.
EXECUTION_SENTINEL_DECL void apply_merge_patch(boost::json::value& target, const boost::json::value& patch);

/// Decoded query parameters (repeated keys kept in order).
class QueryParams {
public:
    explicit QueryParams(const boost::urls::url_view& url);
    std::optional<std::string> get(std::string_view key) const;
    std::string value(std::string_view key) const;
    std::vector<std::string> all(std::string_view key) const;
    /// True when present and a true boolean ("true", "1", ...).
    bool flag(std::string_view key) const;

private:
    std::vector<std::pair<std::string, std::string>> params_;
};

/// Where the path of a request points.
struct Route {
    enum class Kind {
        not_found, version, api, api_v1, apis, group, group_version, openapi, health, collection, object, log, exec,
        status_subresource,
        metrics_group,         ///< /apis/metrics.k8s.io
        metrics_group_version, ///< /apis/metrics.k8s.io/v1beta1
        metrics_pods,          ///< …/v1beta1[/namespaces/{ns}]/pods
        metrics_pod,           ///< …/v1beta1/namespaces/{ns}/pods/{name}
        metrics_nodes,         ///< …/v1beta1/nodes[/{name}]
    };
    Kind kind = Kind::not_found;
    const ResourceInfo* resource = nullptr;
    std::string namespace_, name, group;
};

/// Maps a decoded path (segments, no trailing empty ones) to a Route.
EXECUTION_SENTINEL_DECL Route route_path(const std::vector<std::string>& seg);

/// Everything the router reads and changes. Not synchronised: the server guards it with its one mutex.
struct ClusterState {
    explicit ClusterState(std::size_t history_limit) : store(history_limit) {}
    ObjectStore store;
    std::map<std::pair<std::string, std::string>, VirtualFileSystem> files;          ///< (namespace, pod)
    std::map<std::tuple<std::string, std::string, std::string>, ContainerLog> logs; ///< (namespace, pod, container)
    // injected faults
    int fail_count = 0;                   ///< requests still to fail
    int fail_status = 500;
    std::optional<int> fail_retry_after;  ///< Retry-After seconds of the failures
    std::chrono::milliseconds delay{0};   ///< before every answer
    std::chrono::milliseconds watch_delay{0}; ///< before every watch's answer (delay_watches)
    bool stalled = false;                 ///< watches send nothing
    // metrics API
    MetricsApi metrics_api = MetricsApi::available;
    std::chrono::milliseconds metrics_window{15000};                         ///< window of unset usage
    std::map<std::pair<std::string, std::string>, PodUsage> usage;           ///< (namespace, pod)
    ServerStats stats;
};

/// Told about every change the router makes, so that open streams see it. Called with the server's lock held.
class ChangeListener {
public:
    /// A stored change (ADDED, MODIFIED or DELETED) for the open watches.
    virtual void stored(const StoreEvent& e) = 0;
    /// A deleted pod: its log streams end.
    virtual void pod_removed(std::string_view ns, std::string_view pod) = 0;

protected:
    ~ChangeListener() = default;
};

/// How a watch shows objects: as themselves, or as one-row meta.k8s.io/v1 Tables (kubectl get --watch).
struct WatchFormat {
    bool as_table = false;
    std::string include_object; ///< includeObject of the Table rows
    /// The line of one watch event.
    std::string line(std::string_view type, const boost::json::object& obj, std::chrono::system_clock::time_point now) const;
};

/// Answer: start a watch stream.
struct WatchStart {
    const ResourceInfo* resource = nullptr;
    ObjectFilter filter;
    WatchFormat format;
    /// The first lines: ADDED for every matching object (no resourceVersion), the retained events after the
    /// given resourceVersion, or one ERROR event with a 410 Expired Status when it was compacted.
    std::vector<std::string> initial;
    bool end_after_initial = false; ///< the ERROR event ends the stream
    std::chrono::seconds timeout{1800};
    bool bookmarks = false;         ///< allowWatchBookmarks
};

/// Answer: follow a container log.
struct LogFollow {
    std::string initial; ///< the lines so far
    std::string ns, pod, container;
    bool timestamps = false;
};

/// Answer: upgrade to a WebSocket exec session that sends `frames` and closes.
struct ExecStart {
    std::string protocol; ///< the chosen subprotocol (v5.channel.k8s.io or v4.channel.k8s.io)
    std::vector<std::string> frames;
};

/// Answer: a response gathered under the server's lock a batch at a time, other work let in between (gather()
/// until it returns true), then built without the lock and off the I/O thread (build()): the metrics API's lists,
/// which metrics-server serves from its own process without holding up the apiserver's reads and writes.
struct DeferredResponse {
    std::function<bool()> gather;
    std::function<Response(const Request&)> build;
};

/// The router's answer to one request.
using Decision = std::variant<Response, WatchStart, LogFollow, ExecStart, DeferredResponse>;

/// What comes first for every request: authentication and the injected failures.
struct Admission {
    std::optional<Response> early;     ///< 401, or an injected failure: send it instead of routing
    std::chrono::milliseconds delay{0};///< wait this long before answering (delay_responses)
};

/// The settings the router needs.
struct RouterConfig {
    std::string bearer_token;
    std::string server_address;                     ///< "host:port", advertised by /api
    std::chrono::seconds default_watch_timeout{1800};
};

/// The frames of an exec session: the channel-open frame, stdout and stderr in frames of at most 32 KiB (stderr
/// merged into stdout with a TTY), and the final Status on channel 3.
EXECUTION_SENTINEL_DECL std::vector<std::string> exec_frames(const ExecResult& result, const std::vector<std::string>& command,
                                                             bool want_stdout, bool want_stderr, bool tty);

/// The subprotocols a WebSocket request offers, in order.
EXECUTION_SENTINEL_DECL std::vector<std::string> requested_subprotocols(const Request& req);

/// The waiting reason of a container that has never run (no lastState), or empty.
EXECUTION_SENTINEL_DECL std::string container_waiting_reason(const boost::json::object& pod, const std::string& container);

/// The response carrying a Status object, its HTTP status from the Status's code.
EXECUTION_SENTINEL_DECL Response status_response(const Request& req, const boost::json::object& status);

/// The 400 answer to a request that cannot be parsed (`why`: the parser's message); the connection closes.
EXECUTION_SENTINEL_DECL Response malformed_request_response(std::string_view why);

/// The Status of an injected failure with HTTP status `code`.
EXECUTION_SENTINEL_DECL boost::json::object injected_status(int code);

/// Request → Decision over a ClusterState. Every call requires the server's lock (DeferredResponse::build does not).
class Router {
public:
    Router(RouterConfig config, ClusterState& state, ChangeListener& listener);

    /// Counts the request, checks its credentials (a verified client certificate or the bearer token) and
    /// consumes one injected failure.
    Admission admit(const Request& req, bool client_certificate_verified);
    /// The answer to an admitted request. Never throws: errors are Status responses.
    Decision route(const Request& req, std::chrono::system_clock::time_point now);

    // Object changes shared with the FakeCluster API; each notifies the listener. Throw StatusError.
    boost::json::object create(const ResourceInfo& r, std::string_view ns, boost::json::object obj);
    boost::json::object replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj, std::string_view name = {});
    boost::json::object modify(const ResourceInfo& r, std::string_view ns, std::string_view name,
                               const std::function<void(boost::json::object&)>& mutate);
    std::optional<boost::json::object> remove(const ResourceInfo& r, std::string_view ns, std::string_view name);

    const RouterConfig& config() const noexcept { return config_; }

    /// Pods a metrics list reads under the lock at a time (DeferredResponse::gather; about 0.3 ms).
    static constexpr std::size_t metrics_batch = 64;

private:
    Decision dispatch(const Request& req, std::chrono::system_clock::time_point now);
    const boost::json::object& get_or_throw(const Route& route) const;
    Response get_object(const Request& req, const Route& route, const QueryParams& q, std::chrono::system_clock::time_point now);
    Response handle_create(const Request& req, const Route& route);
    Response handle_replace(const Request& req, const Route& route);
    Response handle_patch(const Request& req, const Route& route);
    Response handle_delete(const Request& req, const Route& route);
    Response handle_delete_collection(const Request& req, const Route& route, const QueryParams& q);
    Response handle_list(const Request& req, const Route& route, const QueryParams& q, std::chrono::system_clock::time_point now);
    WatchStart start_watch(const Request& req, const Route& route, const QueryParams& q, std::chrono::system_clock::time_point now);
    Decision handle_log(const Request& req, const Route& route, const QueryParams& q, std::chrono::system_clock::time_point now);
    ExecStart start_exec(const Request& req, const Route& route, const QueryParams& q);
    Decision handle_metrics(const Request& req, const Route& route, const QueryParams& q, std::chrono::system_clock::time_point now);
    ObjectFilter make_filter(const Route& route, const QueryParams& q) const;
    void forget_pod(std::string_view ns, std::string_view pod);

    RouterConfig config_;
    ClusterState& state_;
    ChangeListener& listener_;
};

} // namespace execution_sentinel::testing::detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/detail/impl/router.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_ROUTER_HPP

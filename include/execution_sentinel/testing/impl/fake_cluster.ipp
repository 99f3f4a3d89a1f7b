// Bodies of testing/fake_cluster.hpp: included by that header (header-only use) or by
// <execution_sentinel/testing/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_IMPL_FAKE_CLUSTER_IPP
#define EXECUTION_SENTINEL_TESTING_IMPL_FAKE_CLUSTER_IPP

#include <execution_sentinel/testing/fake_cluster.hpp>
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

EXECUTION_SENTINEL_DECL FakeCluster::FakeCluster(FakeClusterOptions options) : options_(std::move(options)) {
    detail::ServerConfig config;
    config.address = options_.address;
    config.port = options_.port;
    config.bearer_token = options_.bearer_token;
    config.history_limit = options_.history_limit;
    config.bookmark_interval = options_.bookmark_interval;
    config.watch_queue_limit = options_.watch_queue_limit == 0 ? 1 : options_.watch_queue_limit;
    config.metrics_api = options_.metrics_api;
    config.metrics_window = options_.metrics_window;
    server_ = std::make_unique<detail::ClusterServer>(std::move(config));
}

EXECUTION_SENTINEL_DECL FakeCluster::~FakeCluster() = default;

EXECUTION_SENTINEL_DECL void FakeCluster::stop() { server_->stop(); }
EXECUTION_SENTINEL_DECL std::uint16_t FakeCluster::port() const { return server_->port(); }
EXECUTION_SENTINEL_DECL std::string FakeCluster::server_url() const { return server_->server_url(); }
EXECUTION_SENTINEL_DECL std::string FakeCluster::ca_pem() const { return server_->certificates().ca_certificate_pem; }
EXECUTION_SENTINEL_DECL std::string FakeCluster::bearer_token() const { return server_->config().bearer_token; }
EXECUTION_SENTINEL_DECL std::string FakeCluster::client_certificate_pem() const { return server_->certificates().client_certificate_pem; }
EXECUTION_SENTINEL_DECL std::string FakeCluster::client_key_pem() const { return server_->certificates().client_key_pem; }

EXECUTION_SENTINEL_DECL std::string FakeCluster::kubeconfig() const {
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

EXECUTION_SENTINEL_DECL void FakeCluster::write_kubeconfig(const std::filesystem::path& path) const {
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

EXECUTION_SENTINEL_DECL boost::json::object FakeCluster::create(std::string_view resource, std::string_view ns, boost::json::object obj) {
    return server_->create(detail::resource_or_throw(resource), ns, std::move(obj));
}

EXECUTION_SENTINEL_DECL boost::json::object FakeCluster::replace(std::string_view resource, std::string_view ns, boost::json::object obj) {
    return server_->replace(detail::resource_or_throw(resource), ns, std::move(obj));
}

EXECUTION_SENTINEL_DECL boost::json::object FakeCluster::modify(std::string_view resource, std::string_view ns, std::string_view name,
                                               const std::function<void(boost::json::object&)>& mutate) {
    return server_->modify(detail::resource_or_throw(resource), ns, name, mutate);
}

EXECUTION_SENTINEL_DECL bool FakeCluster::remove(std::string_view resource, std::string_view ns, std::string_view name) {
    return server_->remove(detail::resource_or_throw(resource), ns, name).has_value();
}

EXECUTION_SENTINEL_DECL std::optional<boost::json::object> FakeCluster::get(std::string_view resource, std::string_view ns,
                                                           std::string_view name) const {
    return server_->get(detail::resource_or_throw(resource), ns, name);
}

EXECUTION_SENTINEL_DECL std::vector<boost::json::object> FakeCluster::list(std::string_view resource, std::string_view ns) const {
    return server_->list(detail::resource_or_throw(resource), ns);
}

EXECUTION_SENTINEL_DECL std::uint64_t FakeCluster::resource_version() const { return server_->resource_version(); }

EXECUTION_SENTINEL_DECL void FakeCluster::write_file(std::string_view ns, std::string_view pod, std::string path, std::string content) {
    server_->write_file(ns, pod, std::move(path), std::move(content));
}

EXECUTION_SENTINEL_DECL void FakeCluster::remove_file(std::string_view ns, std::string_view pod, std::string_view path) {
    server_->remove_file(ns, pod, path);
}

EXECUTION_SENTINEL_DECL void FakeCluster::append_log(std::string_view ns, std::string_view pod, std::string_view container, std::string line) {
    server_->append_log(ns, pod, container, std::move(line), std::chrono::system_clock::now());
}

EXECUTION_SENTINEL_DECL void FakeCluster::restart_container_log(std::string_view ns, std::string_view pod, std::string_view container) {
    server_->restart_container_log(ns, pod, container);
}

EXECUTION_SENTINEL_DECL void FakeCluster::set_pod_usage(std::string_view ns, std::string_view pod,
                                                       std::vector<ContainerUsage> containers,
                                                       std::optional<std::chrono::milliseconds> window) {
    server_->set_pod_usage(ns, pod, std::move(containers), std::chrono::system_clock::now(), window);
}

EXECUTION_SENTINEL_DECL void FakeCluster::set_metrics_api(MetricsApi mode) { server_->set_metrics_api(mode); }

EXECUTION_SENTINEL_DECL void FakeCluster::close_watches() { server_->close_watches(); }
EXECUTION_SENTINEL_DECL void FakeCluster::reset_watches() { server_->reset_watches(); }

EXECUTION_SENTINEL_DECL void FakeCluster::fail_next_requests(int count, int http_status, std::optional<int> retry_after_seconds) {
    server_->fail_next_requests(count, http_status, retry_after_seconds);
}

EXECUTION_SENTINEL_DECL void FakeCluster::refuse_connections(std::chrono::milliseconds duration) { server_->refuse_connections(duration); }
EXECUTION_SENTINEL_DECL void FakeCluster::compact() { server_->compact(); }
EXECUTION_SENTINEL_DECL void FakeCluster::delay_responses(std::chrono::milliseconds delay) { server_->delay_responses(delay); }
EXECUTION_SENTINEL_DECL void FakeCluster::delay_watches(std::chrono::milliseconds delay) { server_->delay_watches(delay); }
EXECUTION_SENTINEL_DECL void FakeCluster::send_raw_watch_line(std::string bytes) { server_->send_raw_watch_line(std::move(bytes)); }
EXECUTION_SENTINEL_DECL void FakeCluster::stall_watches(bool stalled) { server_->stall_watches(stalled); }

EXECUTION_SENTINEL_DECL FakeCluster::Stats FakeCluster::stats() const {
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
    out.metrics = s.metrics;
    const Traffic t = server_->traffic(false);
    out.connections = t.connections_total;
    out.bytes_sent = t.bytes_sent;
    out.bytes_received = t.bytes_received;
    return out;
}

EXECUTION_SENTINEL_DECL Traffic FakeCluster::traffic() const { return server_->traffic(); }

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_IMPL_FAKE_CLUSTER_IPP

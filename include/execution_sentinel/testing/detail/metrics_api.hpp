// The metrics API as metrics-server serves it (metrics.k8s.io/v1beta1): PodMetrics objects built from the stored
// pods and the usage set for them, discovery documents, and the errors of a cluster without it. Pure.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_METRICS_API_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_METRICS_API_HPP

#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/pod_runtime.hpp>
#include <execution_sentinel/testing/detail/resources.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>
#include <execution_sentinel/testing/metrics.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing::detail {

inline constexpr std::string_view metrics_group = "metrics.k8s.io";
inline constexpr std::string_view metrics_version = "v1beta1";
inline constexpr std::string_view metrics_api_version = "metrics.k8s.io/v1beta1";

/// The usage set for one pod (FakeCluster::set_pod_usage).
struct PodUsage {
    std::chrono::system_clock::time_point timestamp{};
    std::chrono::milliseconds window{15000};
    std::vector<ContainerUsage> containers;
};

/// Names of the containers that are running, from status.containerStatuses (all spec containers when the pod
/// has no statuses).
inline std::vector<std::string> running_container_names(const boost::json::object& pod) {
    const auto* statuses = json_path(pod, "status.containerStatuses");
    if (statuses == nullptr || !statuses->is_array()) return pod_container_names(pod);
    std::vector<std::string> out;
    for (const auto& c : statuses->as_array()) {
        if (!c.is_object() || json_path(c.as_object(), "state.running") == nullptr) continue;
        out.push_back(json_string_at(c.as_object(), "name"));
    }
    return out;
}

/// What one pod's PodMetrics is made of, copied from the stored pod: the server takes these under its lock and
/// builds the answer after releasing it, as metrics-server serves from its own process without holding up the
/// apiserver's writes.
struct PodMetricsSource {
    std::string name, namespace_;
    std::optional<boost::json::object> labels;
    std::vector<std::string> containers; ///< the running ones
    std::optional<PodUsage> usage;
};

/// The source of `pod`'s PodMetrics, or nullopt when metrics-server has none for it: only Running pods with at
/// least one running container have metrics.
inline std::optional<PodMetricsSource> pod_metrics_source(const boost::json::object& pod, const PodUsage* usage) {
    if (json_string_at(pod, "status.phase") != "Running") return std::nullopt;
    PodMetricsSource src;
    src.containers = running_container_names(pod);
    if (src.containers.empty()) return std::nullopt;
    src.name = metadata_string(pod, "name");
    src.namespace_ = metadata_string(pod, "namespace");
    if (const auto* labels = json_path(pod, "metadata.labels"); labels != nullptr && labels->is_object())
        src.labels = labels->as_object();
    if (usage != nullptr) src.usage = *usage;
    return src;
}

/// The PodMetrics of a source. Containers without a set usage show `baseline_usage`. `creationTimestamp` is the
/// time of the request, as metrics-server writes it; `timestamp` the end of the sampling window.
inline boost::json::object pod_metrics(const PodMetricsSource& src, std::chrono::system_clock::time_point now,
                                       std::chrono::milliseconds default_window) {
    boost::json::array containers;
    for (const auto& name : src.containers) {
        ContainerUsage u = baseline_usage(name);
        if (src.usage)
            for (const auto& c : src.usage->containers)
                if (c.name == name) u = c;
        boost::json::object usage_json;
        usage_json["cpu"] = format_cpu_quantity(u.cpu_nanocores);
        usage_json["memory"] = format_memory_quantity(u.memory_bytes);
        boost::json::object c;
        c["name"] = name;
        c["usage"] = std::move(usage_json);
        containers.push_back(std::move(c));
    }
    boost::json::object meta;
    meta["name"] = src.name;
    meta["namespace"] = src.namespace_;
    meta["creationTimestamp"] = format_rfc3339(now);
    if (src.labels) meta["labels"] = *src.labels;
    boost::json::object m;
    m["metadata"] = std::move(meta);
    m["timestamp"] = format_rfc3339(src.usage ? src.usage->timestamp : now);
    m["window"] = format_go_duration(src.usage ? src.usage->window : default_window);
    m["containers"] = std::move(containers);
    return m;
}

/// The PodMetrics metrics-server serves for `pod`, or nullopt when it has none.
inline std::optional<boost::json::object> pod_metrics(const boost::json::object& pod, const PodUsage* usage,
                                                      std::chrono::system_clock::time_point now,
                                                      std::chrono::milliseconds default_window) {
    auto src = pod_metrics_source(pod, usage);
    if (!src) return std::nullopt;
    return pod_metrics(*src, now, default_window);
}

/// APIGroup discovery of metrics.k8s.io.
inline boost::json::object metrics_api_group() {
    boost::json::object gv;
    gv["groupVersion"] = metrics_api_version;
    gv["version"] = metrics_version;
    boost::json::object g;
    g["kind"] = "APIGroup";
    g["apiVersion"] = "v1";
    g["name"] = metrics_group;
    g["versions"] = boost::json::array{gv};
    g["preferredVersion"] = gv;
    return g;
}

/// APIResourceList of metrics.k8s.io/v1beta1 as metrics-server registers it (nodes and pods; get, list).
inline boost::json::object metrics_api_resource_list() {
    auto resource = [](std::string_view name, std::string_view kind, bool namespaced) {
        boost::json::object o;
        o["name"] = name;
        o["singularName"] = "";
        o["namespaced"] = namespaced;
        o["kind"] = kind;
        o["verbs"] = boost::json::array{"get", "list"};
        return o;
    };
    boost::json::object o;
    o["kind"] = "APIResourceList";
    o["apiVersion"] = "v1";
    o["groupVersion"] = metrics_api_version;
    o["resources"] = boost::json::array{resource("nodes", "NodeMetrics", false), resource("pods", "PodMetrics", true)};
    return o;
}

/// The 403 RBAC answers for `verb` ("get", "list") on pods.metrics.k8s.io.
inline boost::json::object metrics_forbidden_status(std::string_view verb, std::string_view ns, std::string_view name) {
    std::string message = "pods.metrics.k8s.io ";
    if (!name.empty()) message += "\"" + std::string(name) + "\" ";
    message += "is forbidden: User \"fake-client\" cannot " + std::string(verb) +
               " resource \"pods\" in API group \"metrics.k8s.io\"";
    message += ns.empty() ? " at the cluster scope" : " in the namespace \"" + std::string(ns) + "\"";
    boost::json::object details;
    if (!name.empty()) details["name"] = name;
    details["group"] = metrics_group;
    details["kind"] = "pods";
    return make_status(403, "Forbidden", message, std::move(details));
}

/// The 503 the aggregator answers while the APIService's backend (metrics-server) is down.
inline boost::json::object metrics_unavailable_status(std::string_view verb) {
    boost::json::object cause;
    cause["reason"] = "UnexpectedServerResponse";
    cause["message"] = "service unavailable";
    boost::json::object details;
    details["group"] = metrics_group;
    details["kind"] = "pods";
    details["causes"] = boost::json::array{cause};
    return make_status(503, "ServiceUnavailable",
                       "the server is currently unable to handle the request (" + std::string(verb) +
                           " pods.metrics.k8s.io)",
                       std::move(details));
}

/// metrics-server's 404 for a pod that exists but has no metrics (not running, or not scraped yet).
inline boost::json::object pod_metrics_not_found_status(std::string_view ns, std::string_view name) {
    const std::string key = std::string(ns) + "/" + std::string(name);
    boost::json::object details;
    details["name"] = key;
    details["group"] = metrics_group;
    details["kind"] = "pods";
    return make_status(404, "NotFound", "pods.metrics.k8s.io \"" + key + "\" not found", std::move(details));
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_METRICS_API_HPP

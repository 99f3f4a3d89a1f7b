// meta.k8s.io/v1 Table answers for pods, as `kubectl get pods` asks for them (Accept: ...;as=Table;...).
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_TABLE_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_TABLE_HPP

#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::testing::detail {

/// Whether an Accept header asks for a meta.k8s.io Table.
inline bool accepts_table(std::string_view accept) {
    return accept.find("as=Table") != std::string_view::npos && accept.find("g=meta.k8s.io") != std::string_view::npos;
}

/// kubectl's short age: "45s", "12m", "5h", "3d" (HumanDuration, simplified).
inline std::string short_age(std::chrono::seconds age) {
    const auto s = age.count() < 0 ? 0 : age.count();
    if (s < 120) return std::to_string(s) + "s";
    if (s < 3600 * 3) return std::to_string(s / 60) + "m";
    if (s < 86400 * 2) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

/// The STATUS column of a pod, as kubectl prints it (phase, or the reason of a waiting/terminated container).
inline std::string pod_status_text(const boost::json::object& pod) {
    std::string status = json_string_at(pod, "status.phase");
    if (const std::string reason = json_string_at(pod, "status.reason"); !reason.empty()) status = reason;
    const auto* statuses = json_path(pod, "status.containerStatuses");
    if (statuses != nullptr && statuses->is_array()) {
        for (const auto& c : statuses->as_array()) {
            if (!c.is_object()) continue;
            const std::string waiting = json_string_at(c.as_object(), "state.waiting.reason");
            const std::string terminated = json_string_at(c.as_object(), "state.terminated.reason");
            if (!waiting.empty()) status = waiting;
            else if (!terminated.empty()) status = terminated;
        }
    }
    if (!metadata_string(pod, "deletionTimestamp").empty()) status = "Terminating";
    return status.empty() ? "Pending" : status;
}

/// One Table row for a pod: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates.
inline boost::json::object pod_table_row(const boost::json::object& pod, std::string_view include_object,
                                         std::chrono::system_clock::time_point now) {
    const auto containers = json_path(pod, "spec.containers");
    std::size_t total = containers != nullptr && containers->is_array() ? containers->as_array().size() : 0;
    std::size_t ready = 0;
    std::int64_t restarts = 0;
    const auto* statuses = json_path(pod, "status.containerStatuses");
    if (statuses != nullptr && statuses->is_array()) {
        if (total == 0) total = statuses->as_array().size();
        for (const auto& c : statuses->as_array()) {
            if (!c.is_object()) continue;
            const auto* r = c.as_object().if_contains("ready");
            if (r != nullptr && r->is_bool() && r->as_bool()) ++ready;
            const auto* n = c.as_object().if_contains("restartCount");
            if (n != nullptr && n->is_int64()) restarts += n->as_int64();
        }
    }
    std::string age = "<unknown>";
    if (auto created = parse_rfc3339(metadata_string(pod, "creationTimestamp")))
        age = short_age(std::chrono::duration_cast<std::chrono::seconds>(now - *created));
    const std::string ip = json_string_at(pod, "status.podIP");
    const std::string node = json_string_at(pod, "spec.nodeName");
    boost::json::array cells{boost::json::value(metadata_string(pod, "name")),
                             boost::json::value(std::to_string(ready) + "/" + std::to_string(total)),
                             boost::json::value(pod_status_text(pod)), boost::json::value(std::to_string(restarts)),
                             boost::json::value(age), boost::json::value(ip.empty() ? "<none>" : ip),
                             boost::json::value(node.empty() ? "<none>" : node), boost::json::value("<none>"),
                             boost::json::value("<none>")};
    boost::json::object row;
    row["cells"] = std::move(cells);
    if (include_object == "Object") {
        row["object"] = pod;
    } else if (include_object != "None") {
        boost::json::object partial;
        partial["kind"] = "PartialObjectMetadata";
        partial["apiVersion"] = "meta.k8s.io/v1";
        const auto* meta = pod.if_contains("metadata");
        partial["metadata"] = meta != nullptr ? *meta : boost::json::value(boost::json::object{});
        row["object"] = std::move(partial);
    }
    return row;
}

inline boost::json::array pod_table_columns() {
    auto column = [](std::string_view name, std::string_view type, std::string_view format, int priority,
                     std::string_view description) {
        boost::json::object c;
        c["name"] = name;
        c["type"] = type;
        c["format"] = format;
        c["description"] = description;
        c["priority"] = priority;
        return c;
    };
    return {column("Name", "string", "name", 0, "Name must be unique within a namespace."),
            column("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
            column("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            column("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
            column("IP", "string", "", 1, "podIP address allocated to the pod."),
            column("Node", "string", "", 1, "Name of the Node this pod is scheduled on."),
            column("Nominated Node", "string", "", 1, "nominatedNodeName is set when this pod preempts other pods on the node."),
            column("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness.")};
}

/// A Table of pods with the list metadata (resourceVersion, continue, remainingItemCount).
inline boost::json::object pod_table(const std::vector<boost::json::object>& pods, boost::json::object list_metadata,
                                     std::string_view include_object, std::chrono::system_clock::time_point now) {
    boost::json::array rows;
    for (const auto& p : pods) rows.push_back(pod_table_row(p, include_object, now));
    boost::json::object t;
    t["kind"] = "Table";
    t["apiVersion"] = "meta.k8s.io/v1";
    t["metadata"] = std::move(list_metadata);
    t["columnDefinitions"] = pod_table_columns();
    t["rows"] = std::move(rows);
    return t;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_TABLE_HPP

// The resources the simulated cluster serves, their discovery data, and Kubernetes `Status` bodies.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_RESOURCES_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_RESOURCES_HPP

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <string>
#include <string_view>

namespace execution_sentinel::testing::detail {

/// One served resource type.
struct ResourceInfo {
    std::string_view plural;     ///< "pods"
    std::string_view singular;   ///< "pod"
    std::string_view group;      ///< "" for core
    std::string_view version;    ///< "v1"
    std::string_view kind;       ///< "Pod"
    std::string_view short_name; ///< "po", or empty
    bool delete_returns_object;  ///< pods answer DELETE with the object, the others with a Status

    std::string api_version() const {
        return group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
    }
    std::string list_kind() const { return std::string(kind) + "List"; }
};

inline const std::array<ResourceInfo, 5>& served_resources() {
    static const std::array<ResourceInfo, 5> table{{
        {"pods", "pod", "", "v1", "Pod", "po", true},
        {"events", "event", "", "v1", "Event", "ev", false},
        {"configmaps", "configmap", "", "v1", "ConfigMap", "cm", false},
        {"jobs", "job", "batch", "v1", "Job", "", false},
        {"leases", "lease", "coordination.k8s.io", "v1", "Lease", "", false},
    }};
    return table;
}

/// The resource with this plural name, or nullptr.
inline const ResourceInfo* find_resource(std::string_view plural) {
    for (const auto& r : served_resources())
        if (r.plural == plural) return &r;
    return nullptr;
}

/// The resource with this group and plural name, or nullptr.
inline const ResourceInfo* find_resource(std::string_view group, std::string_view version, std::string_view plural) {
    const ResourceInfo* r = find_resource(plural);
    return r != nullptr && r->group == group && r->version == version ? r : nullptr;
}

/// A `metav1.Status` failure body as kube-apiserver writes it.
inline boost::json::object make_status(int code, std::string_view reason, std::string_view message,
                                       boost::json::object details = {}) {
    boost::json::object s;
    s["kind"] = "Status";
    s["apiVersion"] = "v1";
    s["metadata"] = boost::json::object{};
    s["status"] = "Failure";
    s["message"] = message;
    if (!reason.empty()) s["reason"] = reason;
    if (!details.empty()) s["details"] = std::move(details);
    s["code"] = code;
    return s;
}

/// `details` of a Status about one named object ({"name","group"?,"kind"}).
inline boost::json::object status_details(const ResourceInfo& r, std::string_view name) {
    boost::json::object d;
    d["name"] = name;
    if (!r.group.empty()) d["group"] = r.group;
    d["kind"] = r.plural;
    return d;
}

/// The qualified resource name used in messages: "pods", "jobs.batch", "leases.coordination.k8s.io".
inline std::string qualified_resource(const ResourceInfo& r) {
    return r.group.empty() ? std::string(r.plural) : std::string(r.plural) + "." + std::string(r.group);
}

inline boost::json::object not_found_status(const ResourceInfo& r, std::string_view name) {
    return make_status(404, "NotFound", qualified_resource(r) + " \"" + std::string(name) + "\" not found",
                       status_details(r, name));
}

inline boost::json::object already_exists_status(const ResourceInfo& r, std::string_view name) {
    return make_status(409, "AlreadyExists", qualified_resource(r) + " \"" + std::string(name) + "\" already exists",
                       status_details(r, name));
}

inline boost::json::object conflict_status(const ResourceInfo& r, std::string_view name) {
    return make_status(409, "Conflict",
                       "Operation cannot be fulfilled on " + qualified_resource(r) + " \"" + std::string(name) +
                           "\": the object has been modified; please apply your changes to the latest version and try again",
                       status_details(r, name));
}

inline boost::json::object expired_status(std::uint64_t requested, std::uint64_t oldest) {
    return make_status(410, "Expired",
                       "too old resource version: " + std::to_string(requested) + " (" + std::to_string(oldest) + ")");
}

inline boost::json::object bad_request_status(std::string_view message) {
    return make_status(400, "BadRequest", message);
}

// ------------------------------------------------------------------------------------------------ discovery

inline boost::json::array resource_verbs() {
    return {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
}

inline boost::json::object api_resource(const ResourceInfo& r) {
    boost::json::object o;
    o["name"] = r.plural;
    o["singularName"] = r.singular;
    o["namespaced"] = true;
    o["kind"] = r.kind;
    o["verbs"] = resource_verbs();
    if (!r.short_name.empty()) o["shortNames"] = boost::json::array{r.short_name};
    if (r.plural == "pods") o["categories"] = boost::json::array{"all"};
    if (r.plural == "jobs") o["categories"] = boost::json::array{"all"};
    o["storageVersionHash"] = std::string(r.kind) + "Hash=";
    return o;
}

inline boost::json::object subresource(std::string_view name, std::string_view kind, boost::json::array verbs) {
    boost::json::object o;
    o["name"] = name;
    o["singularName"] = "";
    o["namespaced"] = true;
    o["kind"] = kind;
    o["verbs"] = std::move(verbs);
    return o;
}

/// APIResourceList of one group version ("v1", "batch/v1", "coordination.k8s.io/v1").
inline boost::json::object api_resource_list(std::string_view group, std::string_view version) {
    boost::json::array list;
    for (const auto& r : served_resources()) {
        if (r.group != group || r.version != version) continue;
        list.push_back(api_resource(r));
        if (r.plural == "pods") {
            list.push_back(subresource("pods/exec", "PodExecOptions", {"create", "get"}));
            list.push_back(subresource("pods/log", "Pod", {"get"}));
            list.push_back(subresource("pods/status", "Pod", {"get", "patch", "update"}));
        }
        if (r.plural == "jobs") list.push_back(subresource("jobs/status", "Job", {"get", "patch", "update"}));
    }
    boost::json::object o;
    o["kind"] = "APIResourceList";
    o["apiVersion"] = "v1";
    o["groupVersion"] = group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
    o["resources"] = std::move(list);
    return o;
}

inline boost::json::object api_versions(std::string_view server_address) {
    boost::json::object o;
    o["kind"] = "APIVersions";
    o["versions"] = boost::json::array{"v1"};
    boost::json::object cidr;
    cidr["clientCIDR"] = "0.0.0.0/0";
    cidr["serverAddress"] = server_address;
    o["serverAddressByClientCIDRs"] = boost::json::array{cidr};
    return o;
}

inline boost::json::object api_group(std::string_view name, std::string_view version) {
    boost::json::object gv;
    gv["groupVersion"] = std::string(name) + "/" + std::string(version);
    gv["version"] = version;
    boost::json::object g;
    g["name"] = name;
    g["versions"] = boost::json::array{gv};
    g["preferredVersion"] = gv;
    return g;
}

inline boost::json::object api_group_list() {
    boost::json::object o;
    o["kind"] = "APIGroupList";
    o["apiVersion"] = "v1";
    o["groups"] = boost::json::array{api_group("batch", "v1"), api_group("coordination.k8s.io", "v1")};
    return o;
}

inline boost::json::object version_info() {
    boost::json::object o;
    o["major"] = "1";
    o["minor"] = "32";
    o["gitVersion"] = "v1.32.0-fake";
    o["gitCommit"] = "0000000000000000000000000000000000000000";
    o["gitTreeState"] = "clean";
    o["buildDate"] = "2024-12-11T00:00:00Z";
    o["goVersion"] = "go1.23.3";
    o["compiler"] = "gc";
    o["platform"] = "linux/amd64";
    return o;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_RESOURCES_HPP

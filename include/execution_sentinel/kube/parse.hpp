// From apiserver JSON to the compact typed views of kube/objects.hpp, the apiserver's Status, its
// classification into kube::error, and the per-resource facts (API group path, plural, kind) that requests
// need. Pure functions: no I/O, no exceptions for malformed objects (wrong or missing fields read as absent).
#ifndef EXECUTION_SENTINEL_KUBE_PARSE_HPP
#define EXECUTION_SENTINEL_KUBE_PARSE_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/quantity.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace execution_sentinel::kube {

// ------------------------------------------------------------------------------------------- declarations

/// One entry of Status.details.causes.
struct StatusCause {
    std::string reason{}; ///< e.g. "ResourceVersionTooLarge", "ExitCode", "FieldValueInvalid"
    std::string message{};
    std::string field{};
    friend bool operator==(const StatusCause&, const StatusCause&) = default;
};

/// A `metav1.Status` as the apiserver sends it in error bodies and in watch ERROR events.
struct ApiStatus {
    int code = 0;             ///< Status.code (the HTTP status it stands for); 0 when absent
    std::string status{};       ///< "Success" or "Failure"
    std::string reason{};       ///< e.g. "Expired", "Gone", "NotFound", "Forbidden", "TooManyRequests"
    std::string message{};      ///< the server's words, verbatim
    std::optional<int> retry_after_seconds{}; ///< Status.details.retryAfterSeconds
    std::vector<StatusCause> causes{};        ///< Status.details.causes
    friend bool operator==(const ApiStatus&, const ApiStatus&) = default;
};

/// Reads a `metav1.Status`. Anything that is not an object yields an empty ApiStatus (code 0).
inline ApiStatus parse_status(const boost::json::value& v);

/// The client error for an apiserver answer. `http_status` is the response status; pass 0 for a watch
/// ERROR event, whose Status.code is used instead. 410 or reason Expired/Gone/ResourceExpired → expired;
/// 504 (or any status) with cause ResourceVersionTooLarge → resource_version_too_large; 429 →
/// too_many_requests; 5xx → server_error; 401 unauthorized; 403 forbidden; 404 not_found; 409 conflict;
/// other 4xx bad_request; anything else unexpected_status. Returns an empty code for 2xx.
inline std::error_code error_for_status(int http_status, const ApiStatus& status);

/// Diagnostics that keep the server's Status apart from our words. `retry_after_header` is the
/// Retry-After header in seconds when there was one (it wins over Status.details.retryAfterSeconds).
inline Diagnostics diagnostics_for(int http_status, const ApiStatus& status, std::string resource = {},
                                   std::optional<int> retry_after_header = std::nullopt);

/// RFC 3339 timestamp ("2024-05-01T10:00:00Z", "…T10:00:00.123456Z", "…T12:00:00+02:00"); nullopt if invalid.
inline std::optional<Timestamp> parse_timestamp(std::string_view text) noexcept;

/// The typed views. Unknown or mistyped fields read as absent; nothing throws.
inline ObjectMeta parse_object_meta(const boost::json::object& metadata);
inline Pod parse_pod(const boost::json::object& object);
inline Job parse_job(const boost::json::object& object);
inline Event parse_event(const boost::json::object& object);

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters are kept).
inline void append_query_encoded(std::string& out, std::string_view value);

/// The query parameters of a list or watch request. Empty strings and zero numbers are omitted.
struct ListQuery {
    std::string label_selector{};
    std::string field_selector{};
    std::string resource_version{};
    std::string resource_version_match{}; ///< "NotOlderThan" or "Exact"; only with resource_version
    std::string continue_token{};
    std::uint32_t limit = 0;            ///< 0 = no limit
    bool watch = false;
    bool allow_watch_bookmarks = false;
    std::uint32_t timeout_seconds = 0;  ///< 0 = server default
};

/// "?a=b&c=d" for the non-empty fields of `q` (an empty string when none is set).
inline std::string to_query_string(const ListQuery& q);

/// Per-resource facts and the parser for T. Specialised for Pod, Job and Event.
template <class T> struct ResourceTraits;

namespace detail {
template <class Derived> struct ResourcePaths {
    /// "/api/v1/namespaces/{ns}/pods[/{name}]", or the cluster-wide "/api/v1/pods" when `ns` is empty.
    static std::string path(std::string_view ns, std::string_view name = {}) {
        std::string out{Derived::api_prefix};
        if (!ns.empty()) {
            out += "/namespaces/";
            append_path_segment(out, ns);
        }
        out += '/';
        out += Derived::plural;
        if (!name.empty()) {
            out += '/';
            append_path_segment(out, name);
        }
        return out;
    }
    /// path(ns) followed by the query: the request target of a list or watch.
    static std::string target(std::string_view ns, const ListQuery& q) { return path(ns) + to_query_string(q); }

    static void append_path_segment(std::string& out, std::string_view seg) { append_query_encoded(out, seg); }
};
} // namespace detail

template <> struct ResourceTraits<Pod> : detail::ResourcePaths<ResourceTraits<Pod>> {
    static constexpr std::string_view api_prefix = "/api/v1";
    static constexpr std::string_view plural = "pods";
    static constexpr std::string_view kind = "Pod";
    static Pod parse(const boost::json::object& o) { return parse_pod(o); }
};
template <> struct ResourceTraits<Job> : detail::ResourcePaths<ResourceTraits<Job>> {
    static constexpr std::string_view api_prefix = "/apis/batch/v1";
    static constexpr std::string_view plural = "jobs";
    static constexpr std::string_view kind = "Job";
    static Job parse(const boost::json::object& o) { return parse_job(o); }
};
template <> struct ResourceTraits<Event> : detail::ResourcePaths<ResourceTraits<Event>> {
    static constexpr std::string_view api_prefix = "/api/v1";
    static constexpr std::string_view plural = "events";
    static constexpr std::string_view kind = "Event";
    static Event parse(const boost::json::object& o) { return parse_event(o); }
};

/// T is a resource the client can list and watch.
template <class T>
concept Resource = requires(const boost::json::object& o, const T& t) {
    { ResourceTraits<T>::parse(o) } -> std::same_as<T>;
    { t.meta } -> std::convertible_to<const ObjectMeta&>;
};

// ------------------------------------------------------------------------------------------- definitions

namespace detail {

inline const boost::json::value* field(const boost::json::object& o, std::string_view key) noexcept {
    return o.if_contains(key);
}
inline std::string_view str_field(const boost::json::object& o, std::string_view key) noexcept {
    if (auto* v = o.if_contains(key))
        if (auto* s = v->if_string()) return {s->data(), s->size()};
    return {};
}
inline void assign_str(std::string& out, const boost::json::object& o, std::string_view key) {
    auto s = str_field(o, key);
    out.assign(s.data(), s.size());
}
inline void assign_str(InternedString& out, const boost::json::object& o, std::string_view key) {
    out = InternedString(str_field(o, key));
}
inline const boost::json::object* obj_field(const boost::json::object& o, std::string_view key) noexcept {
    if (auto* v = o.if_contains(key)) return v->if_object();
    return nullptr;
}
inline const boost::json::array* arr_field(const boost::json::object& o, std::string_view key) noexcept {
    if (auto* v = o.if_contains(key)) return v->if_array();
    return nullptr;
}
inline std::optional<std::int64_t> int_value(const boost::json::value& v) noexcept {
    if (auto* i = v.if_int64()) return *i;
    if (auto* u = v.if_uint64())
        return *u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                   ? std::numeric_limits<std::int64_t>::max()
                   : static_cast<std::int64_t>(*u);
    if (auto* d = v.if_double())
        if (*d >= -9.0e18 && *d <= 9.0e18) return static_cast<std::int64_t>(*d);
    return std::nullopt;
}
inline std::optional<int> int_field(const boost::json::object& o, std::string_view key) noexcept {
    auto* v = o.if_contains(key);
    if (!v) return std::nullopt;
    auto i = int_value(*v);
    if (!i) return std::nullopt;
    return static_cast<int>(std::clamp<std::int64_t>(*i, std::numeric_limits<int>::min(),
                                                     std::numeric_limits<int>::max()));
}
inline bool bool_field(const boost::json::object& o, std::string_view key) noexcept {
    if (auto* v = o.if_contains(key))
        if (auto* b = v->if_bool()) return *b;
    return false;
}
inline std::optional<Timestamp> time_field(const boost::json::object& o, std::string_view key) noexcept {
    auto s = str_field(o, key);
    if (s.empty()) return std::nullopt;
    return parse_timestamp(s);
}

inline ContainerState parse_container_state(const boost::json::object* state) {
    ContainerState out;
    if (!state) return out;
    if (auto* t = obj_field(*state, "terminated")) {
        out.kind = ContainerState::Kind::terminated;
        assign_str(out.reason, *t, "reason");
        assign_str(out.message, *t, "message");
        out.exit_code = int_field(*t, "exitCode").value_or(0);
        out.signal = int_field(*t, "signal").value_or(0);
        out.started_at = time_field(*t, "startedAt");
        out.finished_at = time_field(*t, "finishedAt");
    } else if (auto* w = obj_field(*state, "waiting")) {
        out.kind = ContainerState::Kind::waiting;
        assign_str(out.reason, *w, "reason");
        assign_str(out.message, *w, "message");
    } else if (auto* r = obj_field(*state, "running")) {
        out.kind = ContainerState::Kind::running;
        out.started_at = time_field(*r, "startedAt");
    }
    return out;
}

inline std::vector<ContainerStatus> parse_container_statuses(const boost::json::array* arr) {
    std::vector<ContainerStatus> out{};
    if (!arr) return out;
    out.reserve(arr->size());
    for (auto& v : *arr) {
        auto* o = v.if_object();
        if (!o) continue;
        ContainerStatus cs;
        assign_str(cs.name, *o, "name");
        cs.ready = bool_field(*o, "ready");
        cs.restart_count = int_field(*o, "restartCount").value_or(0);
        cs.state = parse_container_state(obj_field(*o, "state"));
        cs.last_state = parse_container_state(obj_field(*o, "lastState"));
        out.push_back(std::move(cs));
    }
    return out;
}

inline PodPhase parse_phase(std::string_view s) noexcept {
    if (s == "Running") return PodPhase::running;
    if (s == "Pending") return PodPhase::pending;
    if (s == "Succeeded") return PodPhase::succeeded;
    if (s == "Failed") return PodPhase::failed;
    return PodPhase::unknown;
}

inline JobCondition::Type parse_job_condition_type(std::string_view s) noexcept {
    using T = JobCondition::Type;
    if (s == "Complete") return T::complete;
    if (s == "Failed") return T::failed;
    if (s == "FailureTarget") return T::failure_target;
    if (s == "SuccessCriteriaMet") return T::success_criteria_met;
    if (s == "Suspended") return T::suspended;
    return T::other;
}

inline std::string_view http_reason_phrase(int s) noexcept {
    switch (s) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return {};
    }
}

} // namespace detail

inline std::optional<Timestamp> parse_timestamp(std::string_view s) noexcept { return parse_rfc3339(s); }

inline ObjectMeta parse_object_meta(const boost::json::object& m) {
    using namespace detail;
    ObjectMeta meta;
    assign_str(meta.name, m, "name");
    assign_str(meta.namespace_, m, "namespace");
    assign_str(meta.uid, m, "uid");
    assign_str(meta.resource_version, m, "resourceVersion");
    if (auto t = time_field(m, "creationTimestamp")) meta.creation_timestamp = *t;
    meta.deletion_timestamp = time_field(m, "deletionTimestamp");
    if (auto* labels = obj_field(m, "labels")) {
        meta.labels.items.reserve(labels->size());
        for (auto& kv : *labels) {
            auto* s = kv.value().if_string();
            if (!s) continue;
            meta.labels.items.emplace_back(std::string_view(kv.key()), std::string_view(s->data(), s->size()));
        }
        std::sort(meta.labels.items.begin(), meta.labels.items.end());
    }
    if (auto* owners = arr_field(m, "ownerReferences")) {
        const boost::json::object* chosen = nullptr;
        for (auto& v : *owners) {
            auto* o = v.if_object();
            if (!o) continue;
            if (!chosen) chosen = o;
            if (bool_field(*o, "controller")) {
                chosen = o;
                break;
            }
        }
        if (chosen) {
            OwnerRef ref;
            assign_str(ref.kind, *chosen, "kind");
            assign_str(ref.name, *chosen, "name");
            assign_str(ref.uid, *chosen, "uid");
            meta.owner = std::move(ref);
        }
    }
    return meta;
}

namespace detail {
/// spec.containers[].resources: the containers that set a memory/CPU limit or request (malformed quantities
/// count as unset).
inline std::vector<ContainerResources> parse_container_resources(const boost::json::array& containers) {
    std::vector<ContainerResources> out;
    for (auto& v : containers) {
        auto* c = v.if_object();
        if (!c) continue;
        auto* res = obj_field(*c, "resources");
        if (!res) continue;
        ContainerResources r;
        auto read = [&](const char* section, std::int64_t& memory, std::int32_t& cpu) {
            auto* q = obj_field(*res, section);
            if (!q) return;
            if (auto m = parse_memory_bytes(str_field(*q, "memory"))) memory = *m;
            if (auto m = parse_millicores(str_field(*q, "cpu"))) cpu = *m;
        };
        read("limits", r.memory_limit_bytes, r.cpu_limit_millicores);
        read("requests", r.memory_request_bytes, r.cpu_request_millicores);
        if (r.memory_limit_bytes == 0 && r.memory_request_bytes == 0 && r.cpu_limit_millicores == 0 &&
            r.cpu_request_millicores == 0)
            continue;
        assign_str(r.name, *c, "name");
        out.push_back(std::move(r));
    }
    return out;
}
} // namespace detail

inline Pod parse_pod(const boost::json::object& o) {
    using namespace detail;
    Pod pod;
    if (auto* m = obj_field(o, "metadata")) pod.meta = parse_object_meta(*m);
    if (auto* spec = obj_field(o, "spec")) {
        assign_str(pod.node_name, *spec, "nodeName");
        if (auto* cs = arr_field(*spec, "containers")) pod.resources = parse_container_resources(*cs);
    }
    if (auto* st = obj_field(o, "status")) {
        pod.phase = parse_phase(str_field(*st, "phase"));
        assign_str(pod.reason, *st, "reason");
        assign_str(pod.message, *st, "message");
        pod.start_time = time_field(*st, "startTime");
        if (auto* conds = arr_field(*st, "conditions")) {
            for (auto& v : *conds) {
                auto* c = v.if_object();
                if (!c) continue;
                auto type = str_field(*c, "type");
                auto status = str_field(*c, "status");
                if (status == "True") {
                    auto bit = Pod::ordinary_condition_bit(type);
                    if (bit != 0) { // an ordinary condition that holds: one bit, not a vector entry
                        pod.true_conditions |= bit;
                        continue;
                    }
                }
                Condition cond;
                cond.type.assign(type.data(), type.size());
                cond.status.assign(status.data(), status.size());
                assign_str(cond.reason, *c, "reason");
                assign_str(cond.message, *c, "message");
                cond.last_transition_time = time_field(*c, "lastTransitionTime");
                pod.conditions.push_back(std::move(cond));
            }
        }
        pod.init_containers = parse_container_statuses(arr_field(*st, "initContainerStatuses"));
        pod.containers = parse_container_statuses(arr_field(*st, "containerStatuses"));
    }
    return pod;
}

inline Job parse_job(const boost::json::object& o) {
    using namespace detail;
    Job job;
    if (auto* m = obj_field(o, "metadata")) job.meta = parse_object_meta(*m);
    if (auto* spec = obj_field(o, "spec")) job.backoff_limit = int_field(*spec, "backoffLimit");
    if (auto* st = obj_field(o, "status")) {
        job.active = int_field(*st, "active").value_or(0);
        job.succeeded = int_field(*st, "succeeded").value_or(0);
        job.failed = int_field(*st, "failed").value_or(0);
        job.ready = int_field(*st, "ready").value_or(0);
        job.terminating = int_field(*st, "terminating").value_or(0);
        job.start_time = time_field(*st, "startTime");
        job.completion_time = time_field(*st, "completionTime");
        if (auto* conds = arr_field(*st, "conditions")) {
            for (auto& v : *conds) {
                auto* c = v.if_object();
                if (!c) continue;
                JobCondition jc;
                jc.type = parse_job_condition_type(str_field(*c, "type"));
                jc.status = str_field(*c, "status") == "True";
                assign_str(jc.reason, *c, "reason");
                assign_str(jc.message, *c, "message");
                job.conditions.push_back(std::move(jc));
            }
        }
    }
    return job;
}

inline Event parse_event(const boost::json::object& o) {
    using namespace detail;
    Event ev;
    if (auto* m = obj_field(o, "metadata")) ev.meta = parse_object_meta(*m);
    // core/v1 names first, events.k8s.io/v1 names as a fallback (same storage, both shapes are served).
    const boost::json::object* involved = obj_field(o, "involvedObject");
    if (!involved) involved = obj_field(o, "regarding");
    if (involved) {
        assign_str(ev.involved.kind, *involved, "kind");
        assign_str(ev.involved.name, *involved, "name");
        assign_str(ev.involved.uid, *involved, "uid");
    }
    assign_str(ev.reason, o, "reason");
    assign_str(ev.message, o, "message");
    if (ev.message.empty()) assign_str(ev.message, o, "note");
    assign_str(ev.type, o, "type");
    ev.count = int_field(o, "count").value_or(0);
    if (ev.count == 0)
        if (auto* series = obj_field(o, "series")) ev.count = int_field(*series, "count").value_or(0);
    if (ev.count == 0) ev.count = 1;
    ev.first_timestamp = time_field(o, "firstTimestamp");
    ev.last_timestamp = time_field(o, "lastTimestamp");
    if (!ev.last_timestamp) ev.last_timestamp = time_field(o, "eventTime");
    if (!ev.first_timestamp) ev.first_timestamp = ev.last_timestamp;
    return ev;
}

inline ApiStatus parse_status(const boost::json::value& v) {
    using namespace detail;
    ApiStatus st;
    auto* o = v.if_object();
    if (!o) return st;
    st.code = int_field(*o, "code").value_or(0);
    assign_str(st.status, *o, "status");
    assign_str(st.reason, *o, "reason");
    assign_str(st.message, *o, "message");
    if (auto* details = obj_field(*o, "details")) {
        st.retry_after_seconds = int_field(*details, "retryAfterSeconds");
        if (auto* causes = arr_field(*details, "causes")) {
            for (auto& c : *causes) {
                auto* co = c.if_object();
                if (!co) continue;
                StatusCause cause;
                assign_str(cause.reason, *co, "reason");
                if (cause.reason.empty()) assign_str(cause.reason, *co, "type");
                assign_str(cause.message, *co, "message");
                assign_str(cause.field, *co, "field");
                st.causes.push_back(std::move(cause));
            }
        }
    }
    return st;
}

inline std::error_code error_for_status(int http_status, const ApiStatus& status) {
    int code = http_status != 0 ? http_status : status.code;
    if (status.reason == "Expired" || status.reason == "Gone" || status.reason == "ResourceExpired" || code == 410)
        return error::expired;
    for (auto& c : status.causes)
        if (c.reason == "ResourceVersionTooLarge") return error::resource_version_too_large;
    if (code >= 200 && code < 300) return {};
    switch (code) {
    case 401: return error::unauthorized;
    case 403: return error::forbidden;
    case 404: return error::not_found;
    case 409: return error::conflict;
    case 429: return error::too_many_requests;
    default: break;
    }
    if (code >= 500 && code < 600) return error::server_error;
    if (code >= 400 && code < 500) return error::bad_request;
    if (code == 0 && status.status == "Failure") return error::server_error; // an ERROR event without a code
    return error::unexpected_status;
}

inline Diagnostics diagnostics_for(int http_status, const ApiStatus& status, std::string resource,
                                   std::optional<int> retry_after_header) {
    Diagnostics d{};
    d.http_status = http_status != 0 ? http_status : status.code;
    d.reason = status.reason;
    if (d.reason.empty()) d.reason = std::string(detail::http_reason_phrase(d.http_status));
    d.server_message = status.message;
    d.resource = std::move(resource);
    d.retry_after_seconds = retry_after_header ? retry_after_header : status.retry_after_seconds;
    auto ec = error_for_status(http_status, status);
    if (ec) d.client_message = ec.message();
    return d;
}

inline void append_query_encoded(std::string& out, std::string_view value) {
    // The library's one percent-encoding path: Boost.URL, everything but RFC 3986 unreserved characters.
    out += boost::urls::encode(boost::urls::string_view(value.data(), value.size()), boost::urls::unreserved_chars);
}

inline std::string to_query_string(const ListQuery& q) {
    std::string out{};
    auto add = [&out](std::string_view key, std::string_view value) {
        out += out.empty() ? '?' : '&';
        out += key;
        out += '=';
        append_query_encoded(out, value);
    };
    if (q.watch) add("watch", "true");
    if (!q.label_selector.empty()) add("labelSelector", q.label_selector);
    if (!q.field_selector.empty()) add("fieldSelector", q.field_selector);
    if (!q.resource_version.empty()) add("resourceVersion", q.resource_version);
    if (!q.resource_version.empty() && !q.resource_version_match.empty())
        add("resourceVersionMatch", q.resource_version_match);
    if (!q.continue_token.empty()) add("continue", q.continue_token);
    if (q.limit != 0) add("limit", std::to_string(q.limit));
    if (q.allow_watch_bookmarks) add("allowWatchBookmarks", "true");
    if (q.timeout_seconds != 0) add("timeoutSeconds", std::to_string(q.timeout_seconds));
    return out;
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_PARSE_HPP

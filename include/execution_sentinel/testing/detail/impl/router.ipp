// Bodies of testing/detail/router.hpp: included by that header (header-only use) or by
// <execution_sentinel/testing/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_ROUTER_IPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_ROUTER_IPP

#include <execution_sentinel/testing/detail/router.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>
#include <execution_sentinel/testing/detail/table.hpp>

#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <exception>
#include <random>

namespace execution_sentinel::testing::detail {

EXECUTION_SENTINEL_DECL std::string random_token(std::size_t length) {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::random_device rd;
    std::string s;
    for (std::size_t i = 0; i < length; ++i) s += alphabet[rd() % (sizeof alphabet - 1)];
    return s;
}

EXECUTION_SENTINEL_DECL std::optional<bool> parse_bool(std::string_view s) {
    if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
    if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
    return std::nullopt;
}

EXECUTION_SENTINEL_DECL void apply_merge_patch(boost::json::value& target, const boost::json::value& patch) {
    if (!patch.is_object()) {
        target = patch;
        return;
    }
    if (!target.is_object()) target = boost::json::object{};
    auto& t = target.as_object();
    for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null()) t.erase(k);
        else apply_merge_patch(t[k], v);
    }
}

// ------------------------------------------------------------------------------------------------ QueryParams
EXECUTION_SENTINEL_DECL QueryParams::QueryParams(const boost::urls::url_view& url) {
    for (auto p : url.params()) params_.emplace_back(std::string(p.key), p.has_value ? std::string(p.value) : std::string());
}

EXECUTION_SENTINEL_DECL std::optional<std::string> QueryParams::get(std::string_view key) const {
    for (const auto& [k, v] : params_)
        if (k == key) return v;
    return std::nullopt;
}

EXECUTION_SENTINEL_DECL std::string QueryParams::value(std::string_view key) const { return get(key).value_or(std::string()); }

EXECUTION_SENTINEL_DECL std::vector<std::string> QueryParams::all(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : params_)
        if (k == key) out.push_back(v);
    return out;
}

EXECUTION_SENTINEL_DECL bool QueryParams::flag(std::string_view key) const {
    auto v = get(key);
    return v && parse_bool(*v).value_or(false);
}

// ------------------------------------------------------------------------------------------------ routes
EXECUTION_SENTINEL_DECL Route route_path(const std::vector<std::string>& seg) {
    Route r;
    auto n = seg.size();
    if (n == 1 && seg[0] == "version") { r.kind = Route::Kind::version; return r; }
    if (n >= 1 && (seg[0] == "healthz" || seg[0] == "livez" || seg[0] == "readyz")) { r.kind = Route::Kind::health; return r; }
    if (n >= 1 && seg[0] == "openapi") { r.kind = Route::Kind::openapi; return r; }
    std::vector<std::string> rest;
    std::string group, version;
    if (n >= 1 && seg[0] == "api") {
        if (n == 1) { r.kind = Route::Kind::api; return r; }
        if (seg[1] != "v1") return r;
        if (n == 2) { r.kind = Route::Kind::api_v1; return r; }
        version = "v1";
        rest.assign(seg.begin() + 2, seg.end());
    } else if (n >= 1 && seg[0] == "apis") {
        if (n == 1) { r.kind = Route::Kind::apis; return r; }
        group = seg[1];
        if (group == metrics_group) {
            r.group = group;
            if (n == 2) { r.kind = Route::Kind::metrics_group; return r; }
            if (seg[2] != metrics_version) return r;
            if (n == 3) { r.kind = Route::Kind::metrics_group_version; return r; }
            const std::vector<std::string> m(seg.begin() + 3, seg.end());
            if (m[0] == "nodes" && m.size() <= 2) {
                if (m.size() == 2) r.name = m[1];
                r.kind = Route::Kind::metrics_nodes;
                return r;
            }
            if (m.size() == 1 && m[0] == "pods") { r.kind = Route::Kind::metrics_pods; return r; }
            if (m.size() < 3 || m[0] != "namespaces" || m[1].empty() || m[2] != "pods") return r;
            r.namespace_ = m[1];
            if (m.size() == 3) { r.kind = Route::Kind::metrics_pods; return r; }
            if (m.size() == 4 && !m[3].empty()) {
                r.name = m[3];
                r.kind = Route::Kind::metrics_pod;
            }
            return r;
        }
        if (group != "batch" && group != "coordination.k8s.io") return r;
        r.group = group;
        if (n == 2) { r.kind = Route::Kind::group; return r; }
        if (seg[2] != "v1") return r;
        if (n == 3) { r.kind = Route::Kind::group_version; return r; }
        version = "v1";
        rest.assign(seg.begin() + 3, seg.end());
    } else {
        return r;
    }
    if (rest.size() == 1) {
        r.resource = find_resource(group, version, rest[0]);
        if (r.resource != nullptr) r.kind = Route::Kind::collection;
        return r;
    }
    if (rest.size() < 3 || rest[0] != "namespaces" || rest[1].empty()) return r;
    r.namespace_ = rest[1];
    r.resource = find_resource(group, version, rest[2]);
    if (r.resource == nullptr) return r;
    if (rest.size() == 3) { r.kind = Route::Kind::collection; return r; }
    r.name = rest[3];
    if (r.name.empty()) return r;
    if (rest.size() == 4) { r.kind = Route::Kind::object; return r; }
    if (rest.size() == 5 && rest[4] == "status") { r.kind = Route::Kind::status_subresource; return r; }
    if (rest.size() == 5 && r.resource->plural == "pods" && rest[4] == "log") { r.kind = Route::Kind::log; return r; }
    if (rest.size() == 5 && r.resource->plural == "pods" && rest[4] == "exec") { r.kind = Route::Kind::exec; return r; }
    return r;
}

// ------------------------------------------------------------------------------------------------ responses
namespace router_detail {

inline void set_json_body(Response& res, const boost::json::object& body) {
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-cache, private");
    res.body() = boost::json::serialize(body);
    res.prepare_payload();
}

inline Response json_response(const Request& req, http::status status, const boost::json::object& body) {
    Response res{status, req.version()};
    res.set("Audit-Id", random_uid());
    set_json_body(res, body);
    res.keep_alive(req.keep_alive());
    return res;
}

inline Response method_not_allowed(const Request& req) {
    return status_response(req, make_status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
}

inline bool authenticated(const Request& req, bool cert_ok, const std::string& bearer_token) {
    if (cert_ok) return true;
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return false;
    std::string_view v(it->value().data(), it->value().size());
    if (v.size() < 7 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) return false;
    v.remove_prefix(7);
    v = trim(v);
    return !v.empty() && v == bearer_token;
}

inline boost::json::object parse_body_object(const Request& req) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(req.body(), ec);
    if (ec) throw StatusError(bad_request_status("the request body is not valid JSON: " + ec.message()));
    if (!v.is_object()) throw StatusError(bad_request_status("the request body must be a JSON object"));
    return std::move(v.as_object());
}

inline bool wants_pod_table(const Request& req, const Route& route) {
    const auto accept = req[http::field::accept];
    return route.resource->plural == "pods" && accepts_table(std::string_view(accept.data(), accept.size()));
}

} // namespace router_detail

EXECUTION_SENTINEL_DECL Response status_response(const Request& req, const boost::json::object& status) {
    int code = 500;
    if (const auto* c = status.if_contains("code"); c != nullptr && c->is_int64()) code = static_cast<int>(c->as_int64());
    return router_detail::json_response(req, static_cast<http::status>(code), status);
}

EXECUTION_SENTINEL_DECL Response malformed_request_response(std::string_view why) {
    Response res{http::status::bad_request, 11};
    router_detail::set_json_body(res, bad_request_status("malformed HTTP request: " + std::string(why)));
    res.keep_alive(false);
    return res;
}

EXECUTION_SENTINEL_DECL boost::json::object injected_status(int code) {
    switch (code) {
    case 429: return make_status(429, "TooManyRequests", "Too many requests, please try again later.");
    case 500: return make_status(500, "InternalError", "Internal error occurred: injected failure");
    case 503: return make_status(503, "ServiceUnavailable", "The server is currently unable to handle the request");
    case 504: return make_status(504, "Timeout", "The server was unable to return a response in the time allotted");
    case 410: return make_status(410, "Expired", "too old resource version");
    case 401: return make_status(401, "Unauthorized", "Unauthorized");
    case 403: return make_status(403, "Forbidden", "forbidden: injected failure");
    case 404: return make_status(404, "NotFound", "the server could not find the requested resource");
    case 409: return make_status(409, "Conflict", "injected conflict");
    default: return make_status(code, code >= 500 ? "InternalError" : "BadRequest", "injected failure");
    }
}

EXECUTION_SENTINEL_DECL std::string WatchFormat::line(std::string_view type, const boost::json::object& obj,
                                                      std::chrono::system_clock::time_point now) const {
    if (!as_table || type == "ERROR" || type == "BOOKMARK") return watch_line(type, obj);
    boost::json::object meta;
    meta["resourceVersion"] = metadata_string(obj, "resourceVersion");
    return watch_line(type, pod_table({obj}, std::move(meta), include_object, now));
}

EXECUTION_SENTINEL_DECL std::vector<std::string> exec_frames(const ExecResult& result, const std::vector<std::string>& command,
                                                             bool want_stdout, bool want_stderr, bool tty) {
    auto frame = [](char channel, std::string_view payload) {
        std::string f;
        f.reserve(payload.size() + 1);
        f += channel;
        f += payload;
        return f;
    };
    std::vector<std::string> frames;
    frames.push_back(frame(want_stdout ? '\1' : '\2', ""));
    std::string out = result.stdout_data;
    std::string err = result.stderr_data;
    if (tty) {
        out += err;
        err.clear();
    }
    constexpr std::size_t max_frame = 32 * 1024;
    for (std::size_t i = 0; want_stdout && i < out.size(); i += max_frame) frames.push_back(frame('\1', std::string_view(out).substr(i, max_frame)));
    for (std::size_t i = 0; want_stderr && i < err.size(); i += max_frame) frames.push_back(frame('\2', std::string_view(err).substr(i, max_frame)));
    boost::json::object status;
    status["metadata"] = boost::json::object{};
    if (result.exit_code == 0) {
        status["status"] = "Success";
    } else {
        std::string joined;
        for (const auto& c : command) joined += (joined.empty() ? "" : " ") + c;
        status["status"] = "Failure";
        status["message"] = "command terminated with non-zero exit code: error executing command [" + joined +
                            "], exit code " + std::to_string(result.exit_code);
        status["reason"] = "NonZeroExitCode";
        boost::json::object cause;
        cause["reason"] = "ExitCode";
        cause["message"] = std::to_string(result.exit_code);
        boost::json::object details;
        details["causes"] = boost::json::array{cause};
        status["details"] = std::move(details);
    }
    frames.push_back(frame('\3', boost::json::serialize(status)));
    return frames;
}

EXECUTION_SENTINEL_DECL std::vector<std::string> requested_subprotocols(const Request& req) {
    std::vector<std::string> out;
    for (auto it = req.find(http::field::sec_websocket_protocol); it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
        for (auto part : split(std::string_view(it->value().data(), it->value().size()), ',')) {
            part = trim(part);
            if (!part.empty()) out.emplace_back(part);
        }
    }
    return out;
}

EXECUTION_SENTINEL_DECL std::string container_waiting_reason(const boost::json::object& pod, const std::string& container) {
    for (const char* field : {"status.containerStatuses", "status.initContainerStatuses"}) {
        const auto* statuses = json_path(pod, field);
        if (statuses == nullptr || !statuses->is_array()) continue;
        for (const auto& c : statuses->as_array()) {
            if (!c.is_object() || json_string_at(c.as_object(), "name") != container) continue;
            const auto* last = json_path(c.as_object(), "lastState.terminated");
            if (last != nullptr) return {};
            return json_string_at(c.as_object(), "state.waiting.reason");
        }
    }
    return {};
}

// ------------------------------------------------------------------------------------------------ Router
EXECUTION_SENTINEL_DECL Router::Router(RouterConfig config, ClusterState& state, ChangeListener& listener)
    : config_(std::move(config)), state_(state), listener_(listener) {}

EXECUTION_SENTINEL_DECL Admission Router::admit(const Request& req, bool client_certificate_verified) {
    Admission a;
    ++state_.stats.requests;
    a.delay = state_.delay;
    if (state_.watch_delay > a.delay &&
        std::string_view(req.target().data(), req.target().size()).find("watch=true") != std::string_view::npos)
        a.delay = state_.watch_delay;
    if (!router_detail::authenticated(req, client_certificate_verified, config_.bearer_token)) {
        ++state_.stats.unauthorized;
        a.early = router_detail::json_response(req, http::status::unauthorized, make_status(401, "Unauthorized", "Unauthorized"));
    } else if (state_.fail_count > 0) {
        --state_.fail_count;
        ++state_.stats.injected_failures;
        a.early = status_response(req, injected_status(state_.fail_status));
        if (state_.fail_retry_after) a.early->set(http::field::retry_after, std::to_string(*state_.fail_retry_after));
    }
    return a;
}

EXECUTION_SENTINEL_DECL Decision Router::route(const Request& req, std::chrono::system_clock::time_point now) {
    try {
        return dispatch(req, now);
    } catch (const StatusError& e) {
        return status_response(req, e.status());
    } catch (const std::exception& e) {
        return status_response(req, make_status(500, "InternalError", std::string("Internal error occurred: ") + e.what()));
    }
}

EXECUTION_SENTINEL_DECL Decision Router::dispatch(const Request& req, std::chrono::system_clock::time_point now) {
    using router_detail::json_response;
    using router_detail::method_not_allowed;
    auto parsed = boost::urls::parse_origin_form(std::string_view(req.target().data(), req.target().size()));
    if (!parsed) return status_response(req, bad_request_status("malformed request target"));
    const boost::urls::url_view url = *parsed;
    std::vector<std::string> segments;
    for (auto seg : url.segments()) segments.emplace_back(seg);
    while (!segments.empty() && segments.back().empty()) segments.pop_back();
    const QueryParams q(url);
    const Route route = route_path(segments);
    const auto method = req.method();
    switch (route.kind) {
    case Route::Kind::version:
        return json_response(req, http::status::ok, version_info());
    case Route::Kind::api:
        return json_response(req, http::status::ok, api_versions(config_.server_address));
    case Route::Kind::api_v1:
        return json_response(req, http::status::ok, api_resource_list("", "v1"));
    case Route::Kind::apis: {
        boost::json::object groups = api_group_list();
        // An APIService that is registered is listed even while its backend is down or forbidden.
        if (state_.metrics_api != MetricsApi::absent) {
            boost::json::object g = metrics_api_group();
            g.erase("kind");
            g.erase("apiVersion");
            groups["groups"].as_array().push_back(std::move(g));
        }
        return json_response(req, http::status::ok, groups);
    }
    case Route::Kind::metrics_group:
    case Route::Kind::metrics_group_version:
    case Route::Kind::metrics_pods:
    case Route::Kind::metrics_pod:
    case Route::Kind::metrics_nodes:
        return handle_metrics(req, route, q, now);
    case Route::Kind::group: {
        boost::json::object g = api_group(route.group, "v1");
        g["kind"] = "APIGroup";
        g["apiVersion"] = "v1";
        return json_response(req, http::status::ok, g);
    }
    case Route::Kind::group_version:
        return json_response(req, http::status::ok, api_resource_list(route.group, "v1"));
    case Route::Kind::health: {
        Response res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "ok";
        res.prepare_payload();
        res.keep_alive(req.keep_alive());
        return res;
    }
    case Route::Kind::openapi:
    case Route::Kind::not_found:
        return status_response(req, make_status(404, "NotFound", "the server could not find the requested resource"));
    case Route::Kind::status_subresource:
        if (method == http::verb::get) {
            ++state_.stats.gets;
            return json_response(req, http::status::ok, get_or_throw(route));
        }
        if (method == http::verb::put) return handle_replace(req, route);
        if (method == http::verb::patch) return handle_patch(req, route);
        return method_not_allowed(req);
    case Route::Kind::collection:
        if (method == http::verb::get) {
            if (q.flag("watch")) return start_watch(req, route, q, now);
            return handle_list(req, route, q, now);
        }
        if (method == http::verb::post && !route.namespace_.empty()) return handle_create(req, route);
        if (method == http::verb::delete_ && !route.namespace_.empty()) return handle_delete_collection(req, route, q);
        return method_not_allowed(req);
    case Route::Kind::object:
        if (method == http::verb::get) return get_object(req, route, q, now);
        if (method == http::verb::put) return handle_replace(req, route);
        if (method == http::verb::patch) return handle_patch(req, route);
        if (method == http::verb::delete_) return handle_delete(req, route);
        return method_not_allowed(req);
    case Route::Kind::log:
        if (method != http::verb::get) return method_not_allowed(req);
        return handle_log(req, route, q, now);
    case Route::Kind::exec:
        if (method != http::verb::get && method != http::verb::post) return method_not_allowed(req);
        return start_exec(req, route, q);
    }
    return status_response(req, make_status(404, "NotFound", "the server could not find the requested resource"));
}

// ------------------------------------------------------------------------------------------------ objects
EXECUTION_SENTINEL_DECL boost::json::object Router::create(const ResourceInfo& r, std::string_view ns, boost::json::object obj) {
    const StoreEvent& e = state_.store.create(r, ns, std::move(obj));
    listener_.stored(e);
    return e.object;
}

EXECUTION_SENTINEL_DECL boost::json::object Router::replace(const ResourceInfo& r, std::string_view ns, boost::json::object obj,
                                                           std::string_view name) {
    const StoreEvent& e = state_.store.replace(r, ns, std::move(obj), name);
    listener_.stored(e);
    return e.object;
}

EXECUTION_SENTINEL_DECL boost::json::object Router::modify(const ResourceInfo& r, std::string_view ns, std::string_view name,
                                                          const std::function<void(boost::json::object&)>& mutate) {
    const StoreEvent& e = state_.store.modify(r, ns, name, mutate);
    listener_.stored(e);
    return e.object;
}

EXECUTION_SENTINEL_DECL std::optional<boost::json::object> Router::remove(const ResourceInfo& r, std::string_view ns,
                                                                         std::string_view name) {
    const StoreEvent* e = state_.store.remove(r, ns, name);
    if (e == nullptr) return std::nullopt;
    boost::json::object last = e->object;
    listener_.stored(*e);
    if (r.plural == "pods") forget_pod(ns, name);
    return last;
}

EXECUTION_SENTINEL_DECL void Router::forget_pod(std::string_view ns, std::string_view pod) {
    state_.files.erase({std::string(ns), std::string(pod)});
    state_.usage.erase({std::string(ns), std::string(pod)});
    for (auto it = state_.logs.begin(); it != state_.logs.end();) {
        if (std::get<0>(it->first) == ns && std::get<1>(it->first) == pod) it = state_.logs.erase(it);
        else ++it;
    }
    listener_.pod_removed(ns, pod);
}

EXECUTION_SENTINEL_DECL const boost::json::object& Router::get_or_throw(const Route& route) const {
    const auto* o = state_.store.get(*route.resource, route.namespace_, route.name);
    if (o == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
    return *o;
}

EXECUTION_SENTINEL_DECL Response Router::get_object(const Request& req, const Route& route, const QueryParams& q,
                                                   std::chrono::system_clock::time_point now) {
    ++state_.stats.gets;
    boost::json::object obj = get_or_throw(route);
    if (router_detail::wants_pod_table(req, route)) {
        boost::json::object meta;
        meta["resourceVersion"] = metadata_string(obj, "resourceVersion");
        obj = pod_table({obj}, std::move(meta), q.value("includeObject"), now);
    }
    return router_detail::json_response(req, http::status::ok, obj);
}

EXECUTION_SENTINEL_DECL Response Router::handle_create(const Request& req, const Route& route) {
    boost::json::object obj = router_detail::parse_body_object(req);
    ++state_.stats.writes;
    return router_detail::json_response(req, http::status::created, create(*route.resource, route.namespace_, std::move(obj)));
}

EXECUTION_SENTINEL_DECL Response Router::handle_replace(const Request& req, const Route& route) {
    boost::json::object obj = router_detail::parse_body_object(req);
    ++state_.stats.writes;
    return router_detail::json_response(req, http::status::ok, replace(*route.resource, route.namespace_, std::move(obj), route.name));
}

EXECUTION_SENTINEL_DECL Response Router::handle_patch(const Request& req, const Route& route) {
    const auto ct = req[http::field::content_type];
    if (ct.find("json-patch") != boost::beast::string_view::npos || ct.find("apply-patch") != boost::beast::string_view::npos)
        return status_response(req, make_status(415, "UnsupportedMediaType",
                                                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json"));
    boost::system::error_code ec;
    boost::json::value patch = boost::json::parse(req.body(), ec);
    if (ec || !patch.is_object()) throw StatusError(bad_request_status("the request body is not a JSON object"));
    ++state_.stats.writes;
    const auto* current = state_.store.get(*route.resource, route.namespace_, route.name);
    if (current == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
    const std::string expected_rv = json_string_at(patch.as_object(), "metadata.resourceVersion");
    if (!expected_rv.empty() && expected_rv != metadata_string(*current, "resourceVersion"))
        throw StatusError(conflict_status(*route.resource, route.name));
    boost::json::object patched = modify(*route.resource, route.namespace_, route.name, [&](boost::json::object& o) {
        boost::json::value v = std::move(o);
        apply_merge_patch(v, patch);
        o = v.is_object() ? std::move(v.as_object()) : boost::json::object{};
    });
    return router_detail::json_response(req, http::status::ok, patched);
}

EXECUTION_SENTINEL_DECL Response Router::handle_delete(const Request& req, const Route& route) {
    ++state_.stats.writes;
    // DeleteOptions' preconditions (uid, resourceVersion), as the API server checks them: 409 Conflict when the
    // object is not the one the client meant.
    if (!req.body().empty()) {
        boost::system::error_code ec;
        boost::json::value options = boost::json::parse(req.body(), ec);
        if (ec || !options.is_object()) throw StatusError(bad_request_status("the request body is not a JSON object"));
        const auto* current = state_.store.get(*route.resource, route.namespace_, route.name);
        if (current == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
        for (auto [field, meta] : {std::pair{"uid", "UID"}, std::pair{"resourceVersion", "ResourceVersion"}}) {
            const std::string wanted = json_string_at(options.as_object(), std::string("preconditions.") + field);
            const std::string actual = metadata_string(*current, field);
            if (!wanted.empty() && wanted != actual)
                throw StatusError(make_status(409, "Conflict",
                                              std::string("Precondition failed: ") + meta + " in precondition: " + wanted +
                                                  ", " + meta + " in object meta: " + actual,
                                              status_details(*route.resource, route.name)));
        }
    }
    auto removed = remove(*route.resource, route.namespace_, route.name);
    if (!removed) throw StatusError(not_found_status(*route.resource, route.name));
    if (route.resource->delete_returns_object) return router_detail::json_response(req, http::status::ok, *removed);
    boost::json::object st;
    st["kind"] = "Status";
    st["apiVersion"] = "v1";
    st["metadata"] = boost::json::object{};
    st["status"] = "Success";
    boost::json::object details = status_details(*route.resource, route.name);
    details["uid"] = metadata_string(*removed, "uid");
    st["details"] = std::move(details);
    return router_detail::json_response(req, http::status::ok, st);
}

EXECUTION_SENTINEL_DECL ObjectFilter Router::make_filter(const Route& route, const QueryParams& q) const {
    ObjectFilter f;
    f.resource = route.resource;
    f.namespace_ = route.namespace_;
    auto labels = parse_label_selector(q.value("labelSelector"));
    if (auto* err = std::get_if<std::string>(&labels)) throw StatusError(bad_request_status(*err));
    f.labels = std::get<Selector>(std::move(labels));
    auto fields = parse_field_selector(q.value("fieldSelector"), *route.resource);
    if (auto* err = std::get_if<std::string>(&fields)) throw StatusError(bad_request_status(*err));
    f.fields = std::get<Selector>(std::move(fields));
    return f;
}

EXECUTION_SENTINEL_DECL Response Router::handle_delete_collection(const Request& req, const Route& route, const QueryParams& q) {
    const ObjectFilter filter = make_filter(route, q);
    ++state_.stats.writes;
    boost::json::array items;
    std::vector<std::string> names;
    for (const auto* o : state_.store.list(*route.resource, route.namespace_))
        if (filter.matches(*o)) names.push_back(metadata_string(*o, "name"));
    for (const auto& name : names) {
        auto removed = remove(*route.resource, route.namespace_, name);
        if (removed) items.push_back(std::move(*removed));
    }
    boost::json::object out;
    out["kind"] = route.resource->list_kind();
    out["apiVersion"] = route.resource->api_version();
    boost::json::object meta;
    meta["resourceVersion"] = std::to_string(state_.store.resource_version());
    out["metadata"] = std::move(meta);
    out["items"] = std::move(items);
    return router_detail::json_response(req, http::status::ok, out);
}

EXECUTION_SENTINEL_DECL Response Router::handle_list(const Request& req, const Route& route, const QueryParams& q,
                                                    std::chrono::system_clock::time_point now) {
    const ObjectFilter filter = make_filter(route, q);
    std::size_t limit = 0;
    if (auto l = q.get("limit"); l && !l->empty()) {
        auto v = parse_resource_version(*l);
        if (!v) throw StatusError(bad_request_status("invalid limit: " + *l));
        limit = static_cast<std::size_t>(*v);
    }
    const std::string rv_param = q.value("resourceVersion");
    const std::string cont = q.value("continue");
    ++state_.stats.lists;
    const std::uint64_t current = state_.store.resource_version();
    std::uint64_t list_rv = current;
    std::string start_after;
    if (!cont.empty()) {
        if (!rv_param.empty() && rv_param != "0")
            throw StatusError(bad_request_status("specifying resource version is not allowed when using continue"));
        auto token = decode_continue(cont);
        if (!token) throw StatusError(bad_request_status("continue key is not valid: illegal base64 data or malformed token"));
        if (token->resource_version < state_.store.oldest_watchable())
            throw StatusError(make_status(410, "Expired",
                                          "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
        list_rv = token->resource_version;
        start_after = token->start_after;
    } else if (!rv_param.empty()) {
        auto rv = parse_resource_version(rv_param);
        if (!rv) throw StatusError(bad_request_status("invalid resource version: " + rv_param));
        if (*rv > current) {
            boost::json::object details;
            boost::json::object cause;
            cause["reason"] = "ResourceVersionTooLarge";
            cause["message"] = "Too large resource version";
            details["causes"] = boost::json::array{cause};
            details["retryAfterSeconds"] = 1;
            throw StatusError(make_status(504, "Timeout",
                                          "Too large resource version: " + rv_param + ", current: " + std::to_string(current),
                                          std::move(details)));
        }
        if (limit > 0 && q.value("resourceVersionMatch") == "Exact" && *rv < state_.store.oldest_watchable())
            throw StatusError(expired_status(*rv, state_.store.oldest_watchable()));
    }
    ListPage page = paginate(state_.store.list(*route.resource, route.namespace_), filter, limit, start_after, list_rv);
    const bool as_table = router_detail::wants_pod_table(req, route);
    boost::json::array items;
    for (auto& item : page.items) {
        item.erase("kind");
        item.erase("apiVersion");
        items.push_back(std::move(item));
    }
    boost::json::object meta;
    meta["resourceVersion"] = std::to_string(list_rv);
    if (page.next) {
        meta["continue"] = encode_continue(*page.next);
        meta["remainingItemCount"] = page.remaining;
    }
    if (as_table) {
        std::vector<boost::json::object> objects;
        for (auto& item : items) objects.push_back(std::move(item.as_object()));
        return router_detail::json_response(req, http::status::ok, pod_table(objects, std::move(meta), q.value("includeObject"), now));
    }
    boost::json::object out;
    out["kind"] = route.resource->list_kind();
    out["apiVersion"] = route.resource->api_version();
    out["metadata"] = std::move(meta);
    out["items"] = std::move(items);
    return router_detail::json_response(req, http::status::ok, out);
}

// ------------------------------------------------------------------------------------------------ streams
EXECUTION_SENTINEL_DECL WatchStart Router::start_watch(const Request& req, const Route& route, const QueryParams& q,
                                                      std::chrono::system_clock::time_point now) {
    WatchStart w;
    w.resource = route.resource;
    w.filter = make_filter(route, q);
    const std::string rv_param = q.value("resourceVersion");
    std::optional<std::uint64_t> from;
    if (!rv_param.empty() && rv_param != "0") {
        from = parse_resource_version(rv_param);
        if (!from) throw StatusError(bad_request_status("invalid resource version: " + rv_param));
    }
    w.timeout = config_.default_watch_timeout;
    if (auto t = q.get("timeoutSeconds"); t && !t->empty()) {
        auto v = parse_resource_version(*t);
        if (!v) throw StatusError(bad_request_status("invalid timeoutSeconds: " + *t));
        w.timeout = std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 365ULL * 86400)));
    }
    w.bookmarks = q.flag("allowWatchBookmarks");
    w.format.as_table = router_detail::wants_pod_table(req, route);
    w.format.include_object = q.value("includeObject");
    ++state_.stats.watches;
    if (!from) {
        for (const auto* o : state_.store.list(*route.resource, route.namespace_))
            if (w.filter.matches(*o)) w.initial.push_back(w.format.line("ADDED", *o, now));
    } else {
        EventsAfter after = state_.store.events_after(*from);
        if (after.expired) {
            w.initial.push_back(watch_line("ERROR", expired_status(*from, after.oldest)));
            w.end_after_initial = true;
        } else {
            for (const auto* e : after.events)
                if (auto ev = watch_event_for(*e, w.filter)) w.initial.push_back(w.format.line(ev->first, ev->second, now));
        }
    }
    return w;
}

EXECUTION_SENTINEL_DECL Decision Router::handle_log(const Request& req, const Route& route, const QueryParams& q,
                                                   std::chrono::system_clock::time_point now) {
    LogQuery query;
    query.timestamps = q.flag("timestamps");
    query.previous = q.flag("previous");
    const bool follow = q.flag("follow");
    if (auto t = q.get("tailLines"); t && !t->empty()) {
        auto v = parse_resource_version(*t);
        if (!v) throw StatusError(bad_request_status("invalid tailLines: " + *t));
        query.tail_lines = static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1u << 30));
    }
    if (auto t = q.get("limitBytes"); t && !t->empty()) {
        auto v = parse_resource_version(*t);
        if (!v || *v == 0) throw StatusError(bad_request_status("invalid limitBytes: " + *t));
        query.limit_bytes = static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1ULL << 40));
    }
    if (auto t = q.get("sinceTime"); t && !t->empty()) {
        query.since_time = parse_rfc3339(*t);
        if (!query.since_time) throw StatusError(bad_request_status("invalid sinceTime: " + *t));
    }
    if (auto t = q.get("sinceSeconds"); t && !t->empty()) {
        auto v = parse_resource_version(*t);
        if (!v || *v == 0) throw StatusError(bad_request_status("invalid sinceSeconds: " + *t));
        query.since_time = now - std::chrono::seconds(static_cast<std::int64_t>(std::min<std::uint64_t>(*v, 1ULL << 32)));
    }
    std::string body;
    ++state_.stats.logs;
    const auto* pod = state_.store.get(*route.resource, route.namespace_, route.name);
    if (pod == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
    std::string fallback;
    for (const auto& [key, log] : state_.logs)
        if (std::get<0>(key) == route.namespace_ && std::get<1>(key) == route.name) {
            fallback = std::get<2>(key);
            break;
        }
    const std::string container = resolve_container(*pod, q.value("container"), fallback);
    auto it = state_.logs.find({route.namespace_, route.name, container});
    const bool has_lines = it != state_.logs.end() && (!it->second.current.empty() || it->second.previous);
    if (!query.previous && !has_lines) {
        // Like the kubelet: a container that never started has no log yet.
        const std::string waiting = container_waiting_reason(*pod, container);
        if (!waiting.empty())
            throw StatusError(bad_request_status("container \"" + container + "\" in pod \"" + route.name +
                                                 "\" is waiting to start: " + waiting));
    }
    if (query.previous) {
        if (it == state_.logs.end() || !it->second.previous)
            throw StatusError(bad_request_status("previous terminated container \"" + container + "\" in pod \"" +
                                                 route.name + "\" not found"));
        body = render_log(*it->second.previous, query);
    } else if (it != state_.logs.end()) {
        body = render_log(it->second.current, query);
    }
    if (follow && !query.previous) {
        LogFollow f;
        f.initial = std::move(body);
        f.ns = route.namespace_;
        f.pod = route.name;
        f.container = container;
        f.timestamps = query.timestamps;
        return f;
    }
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::cache_control, "no-cache, private");
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(req.keep_alive());
    return res;
}

EXECUTION_SENTINEL_DECL ExecStart Router::start_exec(const Request& req, const Route& route, const QueryParams& q) {
    std::vector<std::string> command = q.all("command");
    const bool want_stdin = q.flag("stdin");
    const bool want_stdout = q.get("stdout") ? q.flag("stdout") : false;
    const bool want_stderr = q.flag("stderr");
    const bool tty = q.flag("tty");
    ++state_.stats.execs;
    const auto* pod = state_.store.get(*route.resource, route.namespace_, route.name);
    if (pod == nullptr) throw StatusError(not_found_status(*route.resource, route.name));
    resolve_container(*pod, q.value("container"), "main");
    if (!want_stdin && !want_stdout && !want_stderr)
        throw StatusError(bad_request_status("you must specify at least 1 of stdin, stdout, stderr"));
    if (command.empty()) throw StatusError(bad_request_status("you must specify at least one command for the container"));
    auto fit = state_.files.find({route.namespace_, route.name});
    static const VirtualFileSystem empty_fs;
    const ExecResult result = run_exec_command(fit != state_.files.end() ? fit->second : empty_fs, command);
    if (!boost::beast::websocket::is_upgrade(req)) throw StatusError(bad_request_status("Upgrade request required"));
    ExecStart start;
    for (const auto& p : requested_subprotocols(req)) {
        if (p == "v5.channel.k8s.io" || p == "v4.channel.k8s.io") {
            start.protocol = p;
            break;
        }
    }
    if (start.protocol.empty())
        throw StatusError(bad_request_status("unable to upgrade: none of the requested subprotocols is supported (v5.channel.k8s.io, v4.channel.k8s.io)"));
    start.frames = exec_frames(result, command, want_stdout, want_stderr, tty);
    return start;
}

// ------------------------------------------------------------------------------------------------ metrics
EXECUTION_SENTINEL_DECL Decision Router::handle_metrics(const Request& req, const Route& route, const QueryParams& q,
                                                       std::chrono::system_clock::time_point now) {
    using router_detail::json_response;
    const MetricsApi mode = state_.metrics_api;
    // Without metrics-server the group is not registered: the apiserver's own 404 for any path under it.
    if (mode == MetricsApi::absent)
        return status_response(req, make_status(404, "NotFound", "the server could not find the requested resource"));
    if (route.kind == Route::Kind::metrics_group) {
        if (req.method() != http::verb::get) return router_detail::method_not_allowed(req);
        return json_response(req, http::status::ok, metrics_api_group());
    }
    const bool single = route.kind == Route::Kind::metrics_pod;
    const std::string verb = single ? "get" : "list";
    if (mode == MetricsApi::unavailable) return status_response(req, metrics_unavailable_status(verb));
    if (route.kind == Route::Kind::metrics_group_version) {
        if (req.method() != http::verb::get) return router_detail::method_not_allowed(req);
        return json_response(req, http::status::ok, metrics_api_resource_list());
    }
    // metrics-server serves get and list only: no watch, no writes.
    if (req.method() != http::verb::get || q.flag("watch")) return router_detail::method_not_allowed(req);
    if (mode == MetricsApi::forbidden)
        return status_response(req, metrics_forbidden_status(verb, route.namespace_, route.name));
    if (route.kind == Route::Kind::metrics_nodes) {
        ++state_.stats.metrics;
        if (!route.name.empty())
            return status_response(req, make_status(404, "NotFound", "nodemetrics.metrics.k8s.io \"" + route.name + "\" not found"));
        boost::json::object out;
        out["kind"] = "NodeMetricsList";
        out["apiVersion"] = metrics_api_version;
        out["metadata"] = boost::json::object{};
        out["items"] = boost::json::array{};
        return json_response(req, http::status::ok, out);
    }
    const ResourceInfo& pods = *find_resource("pods");
    auto usage_of = [&](const std::string& ns, const std::string& name) -> const PodUsage* {
        auto it = state_.usage.find({ns, name});
        return it == state_.usage.end() ? nullptr : &it->second;
    };
    if (single) {
        ++state_.stats.metrics;
        const auto* pod = state_.store.get(pods, route.namespace_, route.name);
        if (pod == nullptr) {
            // metrics-server looks the pod up in its informer cache, whose lister names the resource "pod".
            boost::json::object details;
            details["name"] = route.name;
            details["kind"] = "pod";
            throw StatusError(make_status(404, "NotFound", "pod \"" + route.name + "\" not found", std::move(details)));
        }
        auto m = pod_metrics(*pod, usage_of(route.namespace_, route.name), now, state_.metrics_window);
        if (!m) throw StatusError(pod_metrics_not_found_status(route.namespace_, route.name));
        boost::json::object out;
        out["kind"] = "PodMetrics";
        out["apiVersion"] = metrics_api_version;
        for (auto& kv : *m) out[kv.key()] = std::move(kv.value());
        return json_response(req, http::status::ok, out);
    }
    Route as_pods = route;
    as_pods.resource = &pods;
    const ObjectFilter filter = make_filter(as_pods, q);
    ++state_.stats.metrics;
    // The pods are read a batch at a time under the lock, and the answer built and serialized without it.
    struct Gathered {
        std::vector<PodMetricsSource> sources;
        std::chrono::milliseconds window{};
        std::string after_ns, after_name;
    };
    auto g = std::make_shared<Gathered>();
    auto gather = [this, g, filter, ns = route.namespace_] {
        g->window = state_.metrics_window;
        const auto batch = state_.store.list_after(*find_resource("pods"), ns, g->after_ns, g->after_name, metrics_batch);
        for (const auto* o : batch) {
            g->after_ns = metadata_string(*o, "namespace");
            g->after_name = metadata_string(*o, "name");
            if (!filter.matches(*o)) continue;
            auto it = state_.usage.find({g->after_ns, g->after_name});
            if (auto src = pod_metrics_source(*o, it == state_.usage.end() ? nullptr : &it->second))
                g->sources.push_back(std::move(*src));
        }
        return batch.size() < metrics_batch;
    };
    auto build = [g, now](const Request& r) {
        boost::json::array items;
        items.reserve(g->sources.size());
        for (const auto& src : g->sources) items.push_back(pod_metrics(src, now, g->window));
        boost::json::object out;
        out["kind"] = "PodMetricsList";
        out["apiVersion"] = metrics_api_version;
        out["metadata"] = boost::json::object{};
        out["items"] = std::move(items);
        return json_response(r, http::status::ok, out);
    };
    return DeferredResponse{std::move(gather), std::move(build)};
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_ROUTER_IPP

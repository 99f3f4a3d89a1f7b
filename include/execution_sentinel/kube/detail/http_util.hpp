// Pure pieces of the HTTP transport: building request targets, escaping, Retry-After, turning an error answer
// into a classified kube::Error. No I/O here; unit-tested in tests/unit/kube_client_unit_test.cpp.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_HTTP_UTIL_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_HTTP_UTIL_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// Builds a request target: an API path plus query parameters, each escaped.
///
///     QueryString q;  q.add("labelSelector", "app=hyperflow,tier in (a,b)").add("limit", 500);
///     std::string target = "/api/v1/namespaces/" + escape_path_segment(ns) + "/pods" + q.str();
class QueryString {
public:
    /// Adds name=value (both percent-encoded). Repeating a name adds it again (exec's `command`).
    QueryString& add(std::string_view name, std::string_view value);
    QueryString& add(std::string_view name, const char* value) { return add(name, std::string_view(value)); }
    QueryString& add(std::string_view name, long long value) { return add(name, std::string_view(std::to_string(value))); }
    QueryString& add(std::string_view name, int value) { return add(name, static_cast<long long>(value)); }
    QueryString& add(std::string_view name, bool value) { return add(name, value ? std::string_view("true") : "false"); }
    /// Adds the parameter only when `value` is not empty.
    QueryString& add_if(std::string_view name, std::string_view value) { return value.empty() ? *this : add(name, value); }

    /// "" when empty, else "?a=1&b=2".
    std::string str() const { return text_.empty() ? std::string() : "?" + text_; }
    bool empty() const noexcept { return text_.empty(); }

private:
    std::string text_;
};

/// Percent-encodes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~). Used for query names
/// and values, so '&', '=', '+', ' ', ',' and non-ASCII bytes are all encoded.
inline std::string escape_query_component(std::string_view text) {
    std::string out;
    append_query_encoded(out, text);
    return out;
}

/// Escapes one path segment (a namespace, a pod or container name). Names that Kubernetes accepts never need
/// escaping; anything else ('/', '?', '#', '%', spaces, "..") is encoded so it cannot change the path.
inline std::string escape_path_segment(std::string_view segment) {
    if (segment == "." || segment == "..") return segment == "." ? "%2E" : "%2E%2E";
    return escape_query_component(segment);
}

inline QueryString& QueryString::add(std::string_view name, std::string_view value) {
    if (!text_.empty()) text_ += '&';
    text_ += escape_query_component(name);
    text_ += '=';
    text_ += escape_query_component(value);
    return *this;
}

/// `base_path` + `target` (target starts with '/').
inline std::string join_target(std::string_view base_path, std::string_view target) {
    std::string out(base_path);
    while (!out.empty() && out.back() == '/') out.pop_back();
    if (target.empty() || target.front() != '/') out += '/';
    out += target;
    return out;
}

/// "GET /api/v1/namespaces/x/pods": method and path without the query, for Diagnostics::resource. Never
/// carries headers.
inline std::string describe_request(std::string_view method, std::string_view target) {
    auto q = target.find('?');
    return std::string(method) + " " + std::string(target.substr(0, q));
}

/// Parses an HTTP Retry-After value in delta-seconds ("5"). HTTP dates and garbage give nullopt (the backoff
/// policy alone decides then). Values above `cap` are capped; negative values are rejected.
inline std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                             std::chrono::seconds cap = std::chrono::seconds(32)) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty() || value.size() > 19) {
        if (value.size() > 19 && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return cap;
        return std::nullopt;
    }
    long long n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc::result_out_of_range) return cap;
    if (ec != std::errc() || p != value.data() + value.size() || n < 0) return std::nullopt;
    return std::min(std::chrono::seconds(n), cap);
}

namespace detail {

/// What to do next, in our words, for an error answer.
inline std::string advice_for(error e, std::string_view credentials_source) {
    switch (e) {
    case error::unauthorized:
        return "the API server rejected the credentials even after refreshing them; check the token, client "
               "certificate or exec plugin of " + std::string(credentials_source.empty() ? "the configuration" : credentials_source);
    case error::forbidden: return "RBAC denies this request; grant the verb on the resource to the user or service account";
    case error::not_found: return "the object or resource does not exist (check the namespace and the name)";
    case error::conflict: return "the object changed or already exists; read it again and retry";
    case error::expired: return "the resourceVersion is too old; list again";
    case error::resource_version_too_large: return "the API server has not caught up with that resourceVersion; list again";
    case error::too_many_requests: return "the API server is throttling requests; retry later";
    case error::server_error: return "the API server failed; retry with backoff";
    case error::bad_request: return "the API server rejected the request as invalid";
    default: return "unexpected answer from the API server";
    }
}

} // namespace detail

/// Turns an error answer into the error and Diagnostics a kube::Error carries: the Status in the body is read
/// with parse_status() and classified with error_for_status() (kube/parse.hpp); a body that is not a Status
/// (HTML from a proxy, plain text) becomes the server message, cut to 200 printable bytes. `retry_after_header`
/// is the raw Retry-After header ("" when absent); it wins over Status.details.retryAfterSeconds. Headers are
/// never copied into the diagnostics.
inline std::pair<error, Diagnostics> error_from_response(int http_status, std::string_view body,
                                                        std::string_view retry_after_header, std::string resource,
                                                        std::string_view credentials_source = {}) {
    boost::system::error_code jec;
    auto json = boost::json::parse(body, jec);
    ApiStatus status;
    if (!jec) status = parse_status(json);
    bool is_status = !jec && json.is_object() && (status.code != 0 || !status.status.empty() || !status.message.empty());
    if (!is_status) {
        status = ApiStatus{};
        std::string text;
        for (char c : body.substr(0, 200)) text += (c >= 0x20 && c < 0x7f) ? c : ' ';
        while (!text.empty() && text.back() == ' ') text.pop_back();
        status.message = std::move(text);
    }
    std::optional<int> header_seconds;
    if (auto ra = parse_retry_after(retry_after_header, std::chrono::seconds(1 << 20)))
        header_seconds = static_cast<int>(ra->count());
    auto ec = error_for_status(http_status, status);
    error e = ec && ec.category() == error_category() ? static_cast<error>(ec.value()) : error::unexpected_status;
    Diagnostics d = diagnostics_for(http_status, status, std::move(resource), header_seconds);
    d.client_message = detail::advice_for(e, credentials_source);
    return {e, std::move(d)};
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_HTTP_UTIL_HPP

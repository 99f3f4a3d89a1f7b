// Errors of the Kubernetes client: one enum with its category, coarse conditions that tell the caller what
// to do next (retry with backoff, relist, stop and fix the configuration), and Diagnostics that keep the
// apiserver's own words (its Status) apart from ours.
#ifndef EXECUTION_SENTINEL_KUBE_ERROR_HPP
#define EXECUTION_SENTINEL_KUBE_ERROR_HPP

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace execution_sentinel::kube {

/// Specific failures of the client. Each one compares equal to exactly one `condition`.
enum class error {
    // -- transport (retryable)
    connect_failed = 1,       ///< TCP connect refused, DNS failure, unreachable network
    tls_handshake_failed,     ///< TLS handshake failed for a reason other than verification
    timeout,                  ///< connect, handshake or request deadline passed
    connection_lost,          ///< the peer closed or reset the connection mid-request or mid-stream
    stream_idle,              ///< a watch/log/exec stream was silent longer than its inactivity limit
    // -- apiserver answers
    too_many_requests,        ///< 429 (API Priority and Fairness); honour Retry-After
    server_error,             ///< 500, 502, 503, 504 (other than ResourceVersionTooLarge)
    expired,                  ///< 410 Gone / Expired / ResourceExpired: the resourceVersion is too old, relist
    resource_version_too_large, ///< 504 with cause ResourceVersionTooLarge: relist without a resourceVersion
    unauthorized,             ///< 401: credentials missing, wrong or expired
    forbidden,                ///< 403: RBAC denies the request
    not_found,                ///< 404
    conflict,                 ///< 409: resourceVersion conflict or already exists
    bad_request,              ///< 400, 422 and other 4xx the client cannot fix by retrying
    unexpected_status,        ///< any other HTTP status
    // -- protocol
    malformed_response,       ///< an answer or watch event that is not what the API promises
    event_too_large,          ///< one watch event larger than the configured cap
    response_too_large,       ///< an answer (a list page) larger than the configured byte or item cap
    // -- configuration and credentials
    config_invalid,           ///< kubeconfig, in-cluster files or options are wrong: fix the configuration
    credentials_unavailable,  ///< an exec plugin or token file did not yield credentials
    tls_verification_failed,  ///< the server certificate does not verify against the cluster CA
    client_certificate_rejected, ///< the server refused our client certificate in the TLS handshake (alert)
    // -- exec
    exec_failed,              ///< exec could not be started (e.g. container missing, 400 from the server)
    // -- misuse
    operation_in_progress,    ///< a second concurrent call on an object that allows one at a time
};

/// What the caller does next.
enum class condition {
    retryable = 1,   ///< retry the same request after the backoff policy's delay
    resync_required, ///< the watch position is lost: list again and deliver the difference
    fatal,           ///< retrying will not help: stop and fix configuration, credentials or RBAC
};

} // namespace execution_sentinel::kube

namespace std {
template <> struct is_error_code_enum<execution_sentinel::kube::error> : true_type {};
template <> struct is_error_condition_enum<execution_sentinel::kube::condition> : true_type {};
} // namespace std

namespace execution_sentinel::kube {

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "execution_sentinel.kube"; }

    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
        case error::connect_failed: return "cannot connect to the Kubernetes API server";
        case error::tls_handshake_failed: return "TLS handshake with the Kubernetes API server failed";
        case error::timeout: return "request to the Kubernetes API server timed out";
        case error::connection_lost: return "connection to the Kubernetes API server was lost";
        case error::stream_idle: return "stream from the Kubernetes API server went silent";
        case error::too_many_requests: return "the API server asked to slow down (429)";
        case error::server_error: return "the API server reported an internal error (5xx)";
        case error::expired: return "resource version expired (410): the list must be read again";
        case error::resource_version_too_large:
            return "resource version is newer than the server's (504): the list must be read again";
        case error::unauthorized: return "the API server rejected the credentials (401)";
        case error::forbidden: return "the API server denied the request (403): check RBAC permissions";
        case error::not_found: return "object or resource not found (404)";
        case error::conflict: return "conflict (409): the object changed or already exists";
        case error::bad_request: return "the API server rejected the request as invalid";
        case error::unexpected_status: return "unexpected HTTP status from the API server";
        case error::malformed_response: return "malformed response from the API server";
        case error::event_too_large: return "a watch event exceeded the size limit";
        case error::response_too_large: return "an answer of the API server exceeded the size limit";
        case error::config_invalid: return "invalid Kubernetes client configuration";
        case error::credentials_unavailable: return "credentials could not be obtained";
        case error::tls_verification_failed:
            return "the API server's certificate does not verify against the cluster CA";
        case error::client_certificate_rejected:
            return "the API server rejected the client certificate during the TLS handshake";
        case error::exec_failed: return "exec in the pod failed";
        case error::operation_in_progress: return "another operation of this kind is in progress";
        }
        return "unknown execution_sentinel.kube error";
    }

    bool equivalent(int value, const std::error_condition& cond) const noexcept override;
};

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "execution_sentinel.kube.condition"; }
    std::string message(int value) const override {
        switch (static_cast<condition>(value)) {
        case condition::retryable: return "retryable";
        case condition::resync_required: return "resync required";
        case condition::fatal: return "fatal";
        }
        return "unknown condition";
    }
};

} // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline const std::error_category& condition_category() noexcept {
    static const detail::condition_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }
inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// The condition a specific error belongs to.
constexpr condition classify(error e) noexcept {
    switch (e) {
    case error::connect_failed:
    case error::tls_handshake_failed:
    case error::timeout:
    case error::connection_lost:
    case error::stream_idle:
    case error::too_many_requests:
    case error::server_error:
    case error::malformed_response: // a truncated or garbled stream: reconnect
        return condition::retryable;
    case error::expired:
    case error::resource_version_too_large:
    case error::event_too_large: // the stream position cannot be trusted past a dropped event
        return condition::resync_required;
    default:
        return condition::fatal;
    }
}

inline bool detail::error_category_impl::equivalent(int value, const std::error_condition& cond) const noexcept {
    return cond.category() == condition_category() &&
           static_cast<int>(classify(static_cast<error>(value))) == cond.value();
}

namespace detail {
inline bool is_our(const std::error_code& ec) noexcept { return ec.category() == error_category(); }
} // namespace detail

/// True when retrying cannot help. Errors of other categories (Asio, SSL) are classified as transport
/// failures, that is retryable, except operation_aborted (cancellation), which is fatal for the operation.
inline bool is_fatal(const std::error_code& ec) noexcept {
    if (!ec) return false;
    if (detail::is_our(ec)) return classify(static_cast<error>(ec.value())) == condition::fatal;
    return ec == std::errc::operation_canceled;
}
inline bool is_retryable(const std::error_code& ec) noexcept { return ec && !is_fatal(ec) && ec != condition::resync_required; }
inline bool needs_resync(const std::error_code& ec) noexcept { return ec == condition::resync_required; }

/// What the API server said, kept apart from what the client says. Never holds credentials.
struct Diagnostics {
    int http_status = 0;            ///< 0 when no HTTP answer was received
    std::string reason;             ///< Status.reason, e.g. "Expired", "Forbidden", "NotFound"
    std::string server_message;     ///< Status.message, verbatim
    std::string client_message;     ///< our own explanation and what to do next
    std::string resource;           ///< what was asked for, e.g. "GET pods in namespace wf-1 (labelSelector=app=hyperflow)"
    std::optional<int> retry_after_seconds; ///< Retry-After header or Status.details.retryAfterSeconds

    void clear() { *this = Diagnostics{}; }

    /// One line for a log or an exception: our words, then the server's in quotes.
    std::string to_string() const {
        std::string out = client_message;
        if (!resource.empty()) out += (out.empty() ? "" : " ") + std::string("[") + resource + "]";
        if (http_status != 0) out += " HTTP " + std::to_string(http_status);
        if (!reason.empty()) out += " " + reason;
        if (!server_message.empty()) out += ": server said \"" + server_message + "\"";
        return out;
    }
};

/// Exception thrown by the throwing overloads: an error code plus the diagnostics.
class Error : public std::system_error {
public:
    Error(std::error_code ec, Diagnostics diag)
        : std::system_error(ec, diag.to_string()), diagnostics_(std::move(diag)) {}
    explicit Error(std::error_code ec, const std::string& what = {})
        : std::system_error(ec, what) { diagnostics_.client_message = what; }

    const Diagnostics& diagnostics() const noexcept { return diagnostics_; }

private:
    Diagnostics diagnostics_;
};

} // namespace execution_sentinel::kube


#endif // EXECUTION_SENTINEL_KUBE_ERROR_HPP

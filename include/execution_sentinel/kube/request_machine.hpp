// RequestMachine: every decision the client makes about one call, with no I/O — whether a failed attempt is
// tried again, at once on a fresh connection, after refreshing the credentials, or after a backoff delay (with the
// server's Retry-After), or given up. The coroutines that do the I/O (Client::request, Client::open_stream, exec,
// the log follower's reopening) are thin drivers: they make an attempt, tell the machine what came of it, and do
// what it answers. Unit-tested with an error injected at every attempt (tests/unit/kube_request_machine_test.cpp).
#ifndef EXECUTION_SENTINEL_KUBE_REQUEST_MACHINE_HPP
#define EXECUTION_SENTINEL_KUBE_REQUEST_MACHINE_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/kube/error.hpp>

#include <chrono>
#include <optional>

namespace execution_sentinel::kube {

/// The kind of call: it decides what may be retried by the machine itself.
enum class RequestKind : unsigned char {
    unary,       ///< a request with its whole answer (GET, POST, ...): retried within max_retries
    stream_open, ///< the opening of a watch or log stream: the caller owns the retry policy (the watch machine)
    exec,        ///< a pods/exec WebSocket upgrade: never retried (the command may have run)
    log_follow,  ///< (re)opening a followed log: transient failures and a container not started yet are
                 ///< retried without limit (bound it by cancellation)
};

/// The policy of one call.
struct RequestPolicy {
    RequestKind kind = RequestKind::unary;
    /// Retries of a unary call after 429, 5xx or a transport failure; 0 = none.
    int max_retries = 10;
    /// Whether 5xx and transport failures after the request may have been processed can be retried (GET, HEAD,
    /// PUT, DELETE are; POST and PATCH are not). 429 and refused connections are always retryable: nothing was
    /// processed.
    bool idempotent = true;
};

/// What the driver does next.
struct RequestDecision {
    enum class Action : unsigned char {
        done,                ///< the attempt succeeded: complete the call with its answer
        retry_on_fresh_connection, ///< at once, on a new connection (a kept-alive one had been closed by the server)
        refresh_credentials, ///< invalidate the credentials used, then try again at once
        retry_after_delay,   ///< sleep `delay`, then try again
        fail,                ///< give up: throw the attempt's error
    };
    Action action = Action::fail;
    std::chrono::milliseconds delay{};
    /// For `fail` after retries of 429/5xx: how many retries were made (for the message), else 0.
    int gave_up_after_retries = 0;
};

/// The decisions of one call. Not thread-safe; one per call.
class RequestMachine {
public:
    using clock = Backoff::clock;

    RequestMachine(RequestPolicy policy, BackoffOptions backoff) : policy_(policy), backoff_(backoff) {}

    /// The attempt failed before an HTTP answer arrived. `code` is its classified error (connect_failed,
    /// timeout, connection_lost, tls_handshake_failed, client_certificate_rejected, config_invalid, ...);
    /// `reused_connection`: the attempt ran on a pooled connection; `got_bytes`: some of the answer arrived.
    RequestDecision on_transport_failure(error code, bool reused_connection, bool got_bytes, clock::time_point now) {
        using A = RequestDecision::Action;
        if (code == error::client_certificate_rejected && policy_.kind != RequestKind::log_follow)
            return refresh_once(); // an exec plugin may hand out a renewed certificate
        if (reused_connection && !got_bytes && !stale_retry_used_ && code != error::timeout && policy_.idempotent) {
            // The server closed the kept-alive connection while it was idle: nothing was processed.
            stale_retry_used_ = true;
            return {A::retry_on_fresh_connection, {}, 0};
        }
        stale_retry_used_ = false;
        bool nothing_processed = code == error::connect_failed;
        bool transient = code == error::timeout || code == error::connection_lost || code == error::tls_handshake_failed ||
                         code == error::stream_idle;
        switch (policy_.kind) {
        case RequestKind::unary:
            if ((nothing_processed || (policy_.idempotent && transient)) && retries_ < policy_.max_retries)
                return retry_after(now, std::nullopt);
            return {A::fail, {}, 0};
        case RequestKind::log_follow:
            if (nothing_processed || transient) return retry_after(now, std::nullopt);
            return {A::fail, {}, 0};
        case RequestKind::stream_open:
        case RequestKind::exec:
            return {A::fail, {}, 0};
        }
        return {A::fail, {}, 0};
    }

    /// An HTTP answer arrived. `code` is the classified error of a non-success answer (error_from_response), or
    /// nullopt for success (2xx; 200 for a stream; 101 for exec). `retry_after_seconds`: the server's hint.
    /// `not_ready_yet`: a log_follow open refused because the container has not started (400 that waiting cures).
    RequestDecision on_answer(std::optional<error> code, std::optional<int> retry_after_seconds, clock::time_point now,
                              bool not_ready_yet = false) {
        using A = RequestDecision::Action;
        stale_retry_used_ = false;
        if (!code) return {A::done, {}, 0};
        // A follower's open has refreshed the credentials itself (its stream_open call): a 401 here is final.
        if (*code == error::unauthorized && policy_.kind != RequestKind::log_follow) return refresh_once();
        switch (policy_.kind) {
        case RequestKind::unary: {
            bool retryable = *code == error::too_many_requests || (*code == error::server_error && policy_.idempotent);
            if (retryable && retries_ < policy_.max_retries) return retry_after(now, retry_after_seconds);
            bool backpressure = *code == error::too_many_requests || *code == error::server_error;
            return {A::fail, {}, backpressure ? retries_ : 0};
        }
        case RequestKind::log_follow:
            if (not_ready_yet || is_retryable(make_error_code(*code))) return retry_after(now, retry_after_seconds);
            return {A::fail, {}, 0};
        case RequestKind::stream_open:
        case RequestKind::exec:
            return {A::fail, {}, 0};
        }
        return {A::fail, {}, 0};
    }

    /// A stream delivered data: the next failure starts the backoff again from its first delay.
    void on_healthy() noexcept { backoff_.reset(); }

    /// The delay before trying again for a reason the caller found itself (a followed log that ended without a
    /// line, a failed probe of its pod): the same backoff sequence as the machine's own retries.
    std::chrono::milliseconds delay_before_retry(clock::time_point now) {
        ++retries_;
        return backoff_.next_delay(now);
    }

    int retries() const noexcept { return retries_; }
    bool refreshed_credentials() const noexcept { return refreshed_; }
    const RequestPolicy& policy() const noexcept { return policy_; }

private:
    RequestDecision refresh_once() {
        using A = RequestDecision::Action;
        if (refreshed_) return {A::fail, {}, 0};
        refreshed_ = true; // once per call: a second refusal is final
        return {A::refresh_credentials, {}, 0};
    }
    RequestDecision retry_after(clock::time_point now, std::optional<int> retry_after_seconds) {
        ++retries_;
        return {RequestDecision::Action::retry_after_delay, backoff_.next_delay(now, retry_after_seconds), 0};
    }

    RequestPolicy policy_;
    Backoff backoff_;
    int retries_ = 0;
    bool refreshed_ = false;
    bool stale_retry_used_ = false;
};

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_REQUEST_MACHINE_HPP

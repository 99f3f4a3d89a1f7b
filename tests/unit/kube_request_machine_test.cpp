// RequestMachine: the retry, backoff, Retry-After and credential-refresh decisions of every request kind, driven
// through scripted attempt sequences with an error injected at every attempt.
#include <execution_sentinel/kube/request_machine.hpp>

#include "catch.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;
using Action = kube::RequestDecision::Action;

namespace {

kube::BackoffOptions no_jitter() {
    kube::BackoffOptions b;
    b.initial = 100ms;
    b.cap = 1000ms;
    b.jitter = 0;
    return b;
}

kube::RequestMachine machine(kube::RequestKind kind, int max_retries = 3, bool idempotent = true) {
    return kube::RequestMachine(kube::RequestPolicy{kind, max_retries, idempotent}, no_jitter());
}

const auto t0 = kube::RequestMachine::clock::time_point{} + 1000s;

// Every failure an attempt can end with, as the drivers report them.
struct Injected {
    const char* name;
    bool answer;                   // an HTTP answer (on_answer) or a transport failure
    kube::error code;
    std::optional<int> retry_after{};
};

const std::vector<Injected> injected = {
    {"connect refused", false, kube::error::connect_failed},
    {"connect timeout", false, kube::error::timeout},
    {"connection lost", false, kube::error::connection_lost},
    {"TLS handshake", false, kube::error::tls_handshake_failed},
    {"TLS verification", false, kube::error::tls_verification_failed},
    {"client certificate rejected", false, kube::error::client_certificate_rejected},
    {"bad header value", false, kube::error::config_invalid},
    {"401", true, kube::error::unauthorized},
    {"403", true, kube::error::forbidden},
    {"404", true, kube::error::not_found},
    {"429 Retry-After 3", true, kube::error::too_many_requests, 3},
    {"500", true, kube::error::server_error},
    {"410", true, kube::error::expired},
    {"400", true, kube::error::bad_request},
};

kube::RequestDecision feed(kube::RequestMachine& m, const Injected& e, kube::RequestMachine::clock::time_point now) {
    return e.answer ? m.on_answer(e.code, e.retry_after, now) : m.on_transport_failure(e.code, false, false, now);
}

} // namespace

TEST_CASE("request machine: a unary GET, each error injected at each attempt", "[kube][request_machine]") {
    for (const auto& e : injected) {
        for (int at = 0; at < 4; ++at) {
            INFO(e.name << " at attempt " << at + 1);
            auto m = machine(kube::RequestKind::unary, 3, true);
            // `at` earlier attempts that failed with 503 and were retried
            for (int i = 0; i < at && i < 3; ++i) {
                auto d = m.on_answer(kube::error::server_error, std::nullopt, t0);
                REQUIRE(d.action == Action::retry_after_delay);
            }
            auto d = feed(m, e, t0);
            bool retryable = e.code == kube::error::connect_failed || e.code == kube::error::timeout ||
                             e.code == kube::error::connection_lost || e.code == kube::error::tls_handshake_failed ||
                             e.code == kube::error::too_many_requests || e.code == kube::error::server_error;
            bool refresh = e.code == kube::error::unauthorized || e.code == kube::error::client_certificate_rejected;
            if (refresh) {
                CHECK(d.action == Action::refresh_credentials);
                // once per call: the same refusal again is final
                CHECK(feed(m, e, t0).action == Action::fail);
            } else if (retryable && at < 3) {
                CHECK(d.action == Action::retry_after_delay);
                if (e.retry_after) CHECK(d.delay == 3s); // Retry-After beats the policy's 100-800 ms
                else CHECK(d.delay == 100ms * (1 << at));
            } else {
                CHECK(d.action == Action::fail);
                if (e.code == kube::error::server_error || e.code == kube::error::too_many_requests)
                    CHECK(d.gave_up_after_retries == 3);
            }
        }
    }
}

TEST_CASE("request machine: POST is not repeated after it may have been processed", "[kube][request_machine]") {
    auto m = machine(kube::RequestKind::unary, 5, false);
    CHECK(m.on_transport_failure(kube::error::connection_lost, false, true, t0).action == Action::fail);
    auto m2 = machine(kube::RequestKind::unary, 5, false);
    CHECK(m2.on_answer(kube::error::server_error, std::nullopt, t0).action == Action::fail);
    auto m3 = machine(kube::RequestKind::unary, 5, false);
    // nothing was processed: refused connections and 429 are retried even for POST
    CHECK(m3.on_transport_failure(kube::error::connect_failed, false, false, t0).action == Action::retry_after_delay);
    CHECK(m3.on_answer(kube::error::too_many_requests, 1, t0).action == Action::retry_after_delay);
    // a pooled connection the server had closed: not retried for POST (it may have been read)
    auto m4 = machine(kube::RequestKind::unary, 5, false);
    CHECK(m4.on_transport_failure(kube::error::connection_lost, true, false, t0).action == Action::fail);
}

TEST_CASE("request machine: a stale pooled connection is replaced once, at once, without a retry", "[kube][request_machine]") {
    auto m = machine(kube::RequestKind::unary, 0, true);
    auto d = m.on_transport_failure(kube::error::connection_lost, true, false, t0);
    CHECK(d.action == Action::retry_on_fresh_connection);
    CHECK(m.retries() == 0);
    // on the fresh connection it fails too: with no retries left, final
    CHECK(m.on_transport_failure(kube::error::connection_lost, false, false, t0).action == Action::fail);
    // bytes of an answer arrived: the request was processed; a timeout is no sign of a stale connection
    auto m2 = machine(kube::RequestKind::unary, 0, true);
    CHECK(m2.on_transport_failure(kube::error::connection_lost, true, true, t0).action == Action::fail);
    auto m3 = machine(kube::RequestKind::unary, 0, true);
    CHECK(m3.on_transport_failure(kube::error::timeout, true, false, t0).action == Action::fail);
}

TEST_CASE("request machine: stream opens and exec refresh credentials once and never retry by themselves",
          "[kube][request_machine]") {
    for (auto kind : {kube::RequestKind::stream_open, kube::RequestKind::exec}) {
        for (const auto& e : injected) {
            INFO(e.name);
            auto m = machine(kind, 10, true);
            auto d = feed(m, e, t0);
            bool refresh = e.code == kube::error::unauthorized || e.code == kube::error::client_certificate_rejected;
            CHECK(d.action == (refresh ? Action::refresh_credentials : Action::fail));
        }
    }
}

TEST_CASE("request machine: a followed log reopens after transient failures without limit, with backoff",
          "[kube][request_machine]") {
    auto m = machine(kube::RequestKind::log_follow, 0, true);
    std::vector<std::chrono::milliseconds> delays;
    for (int i = 0; i < 6; ++i) {
        auto d = m.on_transport_failure(kube::error::stream_idle, false, false, t0 + std::chrono::seconds(i));
        REQUIRE(d.action == Action::retry_after_delay);
        delays.push_back(d.delay);
    }
    CHECK(delays == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms});
    // a container that has not started yet (400 that waiting cures) is waited for; another 400 is final
    CHECK(m.on_answer(kube::error::bad_request, std::nullopt, t0, true).action == Action::retry_after_delay);
    CHECK(m.on_answer(kube::error::bad_request, std::nullopt, t0, false).action == Action::fail);
    // 401 after the open's own refresh, 403 and 404 are final
    CHECK(m.on_answer(kube::error::unauthorized, std::nullopt, t0).action == Action::fail);
    CHECK(m.on_answer(kube::error::forbidden, std::nullopt, t0).action == Action::fail);
    // 429 honours Retry-After; data resets the backoff
    CHECK(m.on_answer(kube::error::too_many_requests, 5, t0).delay == 5s);
    m.on_healthy();
    CHECK(m.delay_before_retry(t0) == 100ms);
}

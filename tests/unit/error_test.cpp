#include <execution_sentinel/kube/error.hpp>

#include "catch.hpp"

namespace kube = execution_sentinel::kube;

TEST_CASE("every error belongs to exactly one condition", "[error]") {
    using kube::error;
    using kube::condition;
    for (int v = static_cast<int>(error::connect_failed); v <= static_cast<int>(error::operation_in_progress); ++v) {
        std::error_code ec = static_cast<error>(v);
        int matches = (ec == condition::retryable) + (ec == condition::resync_required) + (ec == condition::fatal);
        INFO(ec.message());
        CHECK(matches == 1);
        CHECK_FALSE(ec.message().empty());
        CHECK(ec.message() != "unknown execution_sentinel.kube error");
    }
}

TEST_CASE("classification tells the caller's next step", "[error]") {
    using kube::error;
    CHECK(kube::needs_resync(error::expired));
    CHECK(kube::needs_resync(error::resource_version_too_large));
    CHECK(kube::is_retryable(error::too_many_requests));
    CHECK(kube::is_retryable(error::connection_lost));
    CHECK(kube::is_fatal(error::forbidden));
    CHECK(kube::is_fatal(error::config_invalid));
    CHECK_FALSE(kube::is_fatal(error::expired));
    CHECK_FALSE(kube::is_retryable(std::error_code{}));
    CHECK(kube::is_retryable(std::make_error_code(std::errc::connection_refused)));
    CHECK(kube::is_fatal(std::make_error_code(std::errc::operation_canceled)));
}

TEST_CASE("diagnostics keep the server's words apart from ours", "[error]") {
    kube::Diagnostics d;
    d.http_status = 410;
    d.reason = "Expired";
    d.server_message = "too old resource version: 5 (100)";
    d.client_message = "watch position lost";
    d.resource = "watch pods in namespace wf";
    kube::Error e(kube::error::expired, d);
    std::string what = e.what();
    CHECK(what.find("watch position lost") != std::string::npos);
    CHECK(what.find("\"too old resource version: 5 (100)\"") != std::string::npos);
    CHECK(e.code() == kube::condition::resync_required);
    CHECK(e.diagnostics().http_status == 410);
}

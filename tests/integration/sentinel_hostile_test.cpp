// Sentinel::watch() against servers that answer garbage (an HTML page with status 200, invalid JSON, invalid
// UTF-8, very deep arrays, a list that always answers 410), refuse connections, refuse the credentials or reject
// the client certificate: retried with backoff but reported (CONNECTIVITY_LOSS naming the cause, a log line),
// and with SentinelOptions::fail_fast, ended at start with the kube::Error of the cause.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"
#include "hostile_server.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using es::tests::HostileResponse;
using namespace std::chrono_literals;

namespace {

es::MonitoringContext small_context() {
    es::MonitoringContext c;
    c.namespace_ = "wf";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    return c;
}

struct Outcome {
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    std::vector<es::Report> reports;
    std::vector<std::string> log;
    double seconds = 0;
};

asio::awaitable<void> collect(es::ReportSubscription& sub, std::vector<es::Report>& out) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec != es::channel_error::reports_lost) co_return;
            continue;
        }
        out.push_back(std::move(r));
    }
}

Outcome watch_server(const std::string& kubeconfig, bool fail_fast, std::chrono::milliseconds timeout) {
    auto config = es::kube::load_kubeconfig_from_string(kubeconfig, "test-kubeconfig");
    es::SentinelOptions o;
    o.watch_backoff.initial = 50ms;
    o.watch_backoff.cap = 400ms;
    o.client.connect_timeout = 2s;
    o.client.request_timeout = 5s;
    o.client.max_retries = 0;
    o.tick_interval = 50ms;
    o.stream_settle = 200ms;
    o.fail_fast = fail_fast;
    Outcome out;
    std::mutex log_mutex;
    o.client.log = [&](std::string_view line) {
        std::lock_guard lock(log_mutex);
        out.log.emplace_back(line);
    };
    es::SentinelSettings settings;
    settings.timeout = timeout;
    settings.poll_interval = 100ms;
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), small_context(), settings, config, o);
    auto sub = sentinel.subscribe({.capacity = 10000});
    asio::co_spawn(io, collect(sub, out.reports), asio::detached);
    const auto start = std::chrono::steady_clock::now();
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary s) {
        if (e) out.error = e;
        else out.summary = s;
    });
    io.run();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

std::optional<es::kube::Error> kube_error_of(const Outcome& o) {
    if (!o.error) return std::nullopt;
    try {
        std::rethrow_exception(o.error);
    } catch (const es::kube::Error& e) {
        return e;
    } catch (...) {
    }
    return std::nullopt;
}

std::string deep_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

struct Garbage {
    const char* name;
    HostileResponse response;
    es::kube::error code;
    const char* cause; ///< a word of the cause the user is told
};

std::vector<Garbage> garbage_kinds() {
    const std::string status_410 = R"j({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)j"
                                   R"j("message":"too old resource version: 1 (5)","reason":"Expired","code":410})j";
    return {
        {"an HTML page with status 200",
         {200, "text/html", "<html><body><h1>Welcome to the hotel network</h1>Please log in.</body></html>"},
         es::kube::error::malformed_response, "invalid JSON"},
        {"invalid JSON", {200, "application/json", R"({"kind":"PodList","items":[{"metadata":)"},
         es::kube::error::malformed_response, "invalid JSON"},
        {"invalid UTF-8",
         {200, "application/json",
          "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[{\"metadata\":{\"name\":\"\xff\xfe\"}}]}"},
         es::kube::error::malformed_response, "invalid JSON"},
        {"10^6-deep arrays", {200, "application/json", deep_arrays(1'000'000)}, es::kube::error::malformed_response,
         "invalid JSON"},
        {"a list that always answers 410", {410, "application/json", status_410}, es::kube::error::expired, "410"},
    };
}

} // namespace

TEST_CASE("sentinel: garbage answers are retried but reported with their cause and logged",
          "[integration][sentinel][hostile]") {
    for (auto& g : garbage_kinds()) {
        INFO(g.name);
        es::tests::HostileServer server({.respond = [&](const std::string&) { return g.response; }});
        auto o = watch_server(server.kubeconfig(), false, 2500ms);
        if (o.error) {
            auto e = kube_error_of(o);
            FAIL("watch() failed: " << (e ? e->what() : "not a kube::Error"));
        }
        REQUIRE(o.summary);
        CHECK(o.summary->timed_out); // retried until the timeout, as before
        CHECK(server.requests() >= 6); // every watcher kept trying
        std::optional<es::Report> loss;
        for (auto& r : o.reports)
            if (r.type == es::ReportType::CONNECTIVITY_LOSS) loss = r;
        REQUIRE(loss);
        const std::string cause(loss->details.at("cause").as_string());
        CAPTURE(cause);
        CHECK(cause.find(g.cause) != std::string::npos);
        CHECK(loss->message.find(g.cause) != std::string::npos);
        CHECK(cause.find("hostile-test-token") == std::string::npos);
        bool logged = false;
        for (auto& l : o.log) {
            CHECK(l.find("hostile-test-token") == std::string::npos);
            if (l.find(g.cause) != std::string::npos && l.find("retrying in") != std::string::npos) logged = true;
        }
        CHECK(logged);
    }
}

TEST_CASE("sentinel: fail-fast ends watch() at start with the cause of garbage answers",
          "[integration][sentinel][hostile][failfast]") {
    for (auto& g : garbage_kinds()) {
        INFO(g.name);
        es::tests::HostileServer server({.respond = [&](const std::string&) { return g.response; }});
        auto o = watch_server(server.kubeconfig(), true, 20s);
        auto e = kube_error_of(o);
        REQUIRE(e);
        CHECK(e->code() == g.code);
        CHECK(std::string(e->what()).find("fail-fast") != std::string::npos);
        CHECK(o.seconds < 10);
        CHECK_FALSE(o.summary);
    }
}

TEST_CASE("sentinel: fail-fast at start: unreachable, credentials refused, client certificate rejected",
          "[integration][sentinel][failfast]") {
    SECTION("nothing listens on the port: connect_failed after a bounded number of attempts") {
        unsigned short port = 0;
        {
            asio::io_context io;
            asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
            port = a.local_endpoint().port();
        } // closed: connections are refused
        est::FakeCluster cluster;
        auto kc = cluster.kubeconfig();
        auto url = cluster.server_url();
        kc.replace(kc.find(url), url.size(), "https://127.0.0.1:" + std::to_string(port));
        auto o = watch_server(kc, true, 20s);
        auto e = kube_error_of(o);
        REQUIRE(e);
        CHECK(e->code() == es::kube::error::connect_failed);
        CHECK(std::string(e->what()).find("3 attempts in a row") != std::string::npos);
        CHECK(o.seconds < 10);

        // Without fail-fast, the same start retries until the timeout and reports the loss.
        auto patient = watch_server(kc, false, 1500ms);
        REQUIRE(patient.summary);
        CHECK(patient.summary->timed_out);
        bool lost = false;
        for (auto& r : patient.reports) lost = lost || r.type == es::ReportType::CONNECTIVITY_LOSS;
        CHECK(lost);
    }
    SECTION("a wrong token: 401 at once") {
        est::FakeCluster cluster;
        auto kc = cluster.kubeconfig();
        auto token = cluster.bearer_token();
        kc.replace(kc.find(token), token.size(), "not-the-token");
        auto o = watch_server(kc, true, 20s);
        auto e = kube_error_of(o);
        REQUIRE(e);
        CHECK(e->code() == es::kube::error::unauthorized);
        CHECK(std::string(e->what()).find("not-the-token") == std::string::npos);
    }
    SECTION("the client certificate is rejected during the handshake: at once with fail-fast") {
        es::tests::HostileServer server({.respond = {}, .reject_client_certificates = true});
        auto o = watch_server(server.kubeconfig(true), true, 20s);
        auto e = kube_error_of(o);
        REQUIRE(e);
        // An authentication failure of the handshake (the client names the TLS alert where it can), never
        // taken for an unreachable server.
        CAPTURE(e->what());
        CHECK(es::StartupGate::fails_at_once(e->code()));
        CHECK(e->code() != es::kube::error::connect_failed);
        const std::string what = e->what();
        CHECK((what.find("certificate") != std::string::npos || what.find("handshake") != std::string::npos));
        CHECK(o.seconds < 5);
        CHECK(server.handshakes_failed() >= 1);
    }
    SECTION("a server that works: fail-fast changes nothing") {
        est::FakeCluster cluster([] {
            est::FakeClusterOptions fo;
            fo.default_namespace = "wf";
            return fo;
        }());
        auto o = watch_server(cluster.kubeconfig(), true, 1500ms);
        REQUIRE(o.summary);
        CHECK(o.summary->timed_out);
        for (auto& r : o.reports) CHECK(r.type != es::ReportType::CONNECTIVITY_LOSS);
    }
}

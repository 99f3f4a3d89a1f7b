// The HTTPS transport, exec and logs over real TLS against FakeCluster, with its faults.
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/exec.hpp>
#include <execution_sentinel/kube/logs.hpp>
#include <execution_sentinel/kube/watcher.hpp>
#include <execution_sentinel/testing/certificates.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>

#include "catch.hpp"
#include "hostile_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace asio = boost::asio;
namespace kube = execution_sentinel::kube;
namespace es_testing = execution_sentinel::testing;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

es_testing::FakeCluster& cluster() {
    static es_testing::FakeCluster fc;
    return fc;
}

kube::ClusterConfig config(const std::string& context = "fake-token") {
    kube::KubeconfigOptions o;
    o.context = context;
    return kube::load_kubeconfig_from_string(cluster().kubeconfig(), "fake", o);
}

/// Small, fast retry delays for tests; records every attempt.
struct Recorder {
    std::mutex mutex;
    std::vector<kube::RequestOutcome> outcomes;
    std::vector<std::string> warnings;
    std::size_t size() {
        std::lock_guard lock(mutex);
        return outcomes.size();
    }
};

kube::ClientOptions fast_options(Recorder& rec) {
    kube::ClientOptions o;
    o.backoff.initial = 20ms;
    o.backoff.cap = 200ms;
    o.connect_timeout = 2s;
    o.handshake_timeout = 2s;
    o.request_timeout = 5s;
    o.on_request = [&rec](const kube::RequestOutcome& r) {
        std::lock_guard lock(rec.mutex);
        rec.outcomes.push_back(r);
    };
    o.log = [&rec](std::string_view line) {
        std::lock_guard lock(rec.mutex);
        rec.warnings.emplace_back(line);
    };
    return o;
}

/// Runs one coroutine to completion (at most `limit`), rethrowing what it throws.
template <class T> T run(asio::io_context& ioc, asio::awaitable<T> op, std::chrono::seconds limit = 20s) {
    auto f = asio::co_spawn(ioc, std::move(op), asio::use_future);
    ioc.restart();
    ioc.run_for(limit);
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    return f.get();
}

template <class F> kube::Error expect_error(F&& f) {
    try {
        f();
    } catch (const kube::Error& e) {
        return e;
    }
    FAIL("no kube::Error was thrown");
    throw std::logic_error("unreachable");
}

boost::json::object pod_json(const std::string& name, const std::string& phase = "Running") {
    return boost::json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
                              R"("},"spec":{"restartPolicy":"Always","containers":[{"name":"main","image":"busybox"}]},"status":{"phase":")" +
                              phase + R"(","containerStatuses":[{"name":"main","ready":true,"restartCount":0,"state":{"running":{}}}]}})")
        .as_object();
}

void ensure_pod(const std::string& ns, const std::string& name) {
    if (!cluster().get("pods", ns, name)) cluster().create("pods", ns, pod_json(name));
}

/// The "fake-cert" context with the client certificate replaced by one from `bundle`.
kube::ClusterConfig with_client_certificate(const es_testing::CertificateBundle& bundle) {
    auto cfg = config("fake-cert");
    kube::CredentialSource source;
    source.client_certificate_pem = bundle.client_certificate_pem;
    source.client_key_pem = bundle.client_key_pem;
    source.origin = "test kubeconfig, user \"stranger\"";
    cfg.credentials = kube::CredentialProvider::create(std::move(source));
    return cfg;
}

boost::json::object small_pod(const std::string& name) {
    return boost::json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
                              R"("},"spec":{"containers":[{"name":"main","image":"busybox"}]},"status":{"phase":"Running"}})")
        .as_object();
}

} // namespace

TEST_CASE("token and client-certificate authentication, connection reuse, IP SAN verification", "[client][integration]") {
    for (std::string context : {"fake-token", "fake-cert"}) {
        INFO(context);
        asio::io_context ioc;
        Recorder rec;
        auto cfg = config(context);
        REQUIRE(cfg.host == "127.0.0.1"); // verified against the certificate's IP SAN
        kube::Client client(ioc.get_executor(), cfg, fast_options(rec));
        ensure_pod("auth", "p1");
        auto list = run(ioc, client.get_json("/api/v1/namespaces/auth/pods"));
        REQUIRE(list.is_object());
        CHECK(list.at("kind").as_string() == "PodList");
        CHECK(list.at("items").as_array().size() == 1);
        CHECK(client.idle_connections() == 1);
        auto pod = run(ioc, client.get_json_once("/api/v1/namespaces/auth/pods/p1"));
        CHECK(pod.at("metadata").at("name").as_string() == "p1");
        CHECK(client.idle_connections() == 1); // the same connection went back to the pool
        REQUIRE(rec.size() == 2);
        CHECK(rec.outcomes[0].http_status == 200);
        CHECK(rec.outcomes[0].resource == "GET /api/v1/namespaces/auth/pods");
        CHECK_FALSE(rec.outcomes[0].ec);
        CHECK(rec.warnings.empty());
    }
}

TEST_CASE("create, update and delete through request_json", "[client][integration]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    namespace http = boost::beast::http;
    auto created = run(ioc, client.request_json(http::verb::post, "/api/v1/namespaces/crud/configmaps",
                                                boost::json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"1"}})")));
    CHECK(created.at("metadata").at("name").as_string() == "cm");
    kube::RequestOptions patch;
    patch.content_type = "application/merge-patch+json";
    auto patched = run(ioc, client.request_json(http::verb::patch, "/api/v1/namespaces/crud/configmaps/cm",
                                                boost::json::parse(R"({"data":{"b":"2"}})"), patch));
    CHECK(patched.at("data").at("b").as_string() == "2");
    auto conflict = expect_error([&] {
        run(ioc, client.request_json(http::verb::post, "/api/v1/namespaces/crud/configmaps",
                                     boost::json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}})")));
    });
    CHECK(conflict.code() == kube::error::conflict);
    run(ioc, client.request_json(http::verb::delete_, "/api/v1/namespaces/crud/configmaps/cm"));
    CHECK_FALSE(cluster().get("configmaps", "crud", "cm"));
}

TEST_CASE("TLS verification: a wrong CA and a wrong server name are fatal; tls_server_name is honoured", "[client][integration][tls]") {
    asio::io_context ioc;
    SECTION("wrong CA") {
        Recorder rec;
        auto cfg = config();
        cfg.ca_pem = es_testing::generate_certificates().ca_certificate_pem;
        kube::Client client(ioc.get_executor(), cfg, fast_options(rec));
        auto e = expect_error([&] { run(ioc, client.get_json("/api/v1/namespaces/default/pods")); });
        CHECK(e.code() == kube::error::tls_verification_failed);
        CHECK(kube::is_fatal(e.code()));
        CHECK(e.diagnostics().client_message.find("certificate-authority") != std::string::npos);
        CHECK(rec.size() == 1); // not retried
    }
    SECTION("tls_server_name = localhost (a DNS SAN) while connecting to 127.0.0.1") {
        Recorder rec;
        auto cfg = config();
        cfg.tls_server_name = "localhost";
        kube::Client client(ioc.get_executor(), cfg, fast_options(rec));
        auto v = run(ioc, client.get_json("/api"));
        CHECK(v.is_object());
    }
    SECTION("tls_server_name not in the certificate") {
        Recorder rec;
        auto cfg = config();
        cfg.tls_server_name = "apiserver.example.com";
        kube::Client client(ioc.get_executor(), cfg, fast_options(rec));
        auto e = expect_error([&] { run(ioc, client.get_json("/api")); });
        CHECK(e.code() == kube::error::tls_verification_failed);
        CHECK(e.diagnostics().client_message.find("apiserver.example.com") != std::string::npos);
    }
    SECTION("insecure_skip_tls_verify accepts any certificate and warns once") {
        Recorder rec;
        auto cfg = config();
        cfg.ca_pem = es_testing::generate_certificates().ca_certificate_pem;
        cfg.insecure_skip_tls_verify = true;
        kube::Client client(ioc.get_executor(), cfg, fast_options(rec));
        run(ioc, client.get_json("/api"));
        run(ioc, client.get_json("/api"));
        REQUIRE(rec.warnings.size() == 1);
        CHECK(rec.warnings[0].find("DISABLED") != std::string::npos);
        CHECK(rec.warnings[0].find(cluster().bearer_token()) == std::string::npos);
    }
}

TEST_CASE("401: the credentials are refreshed once, then the error is fatal", "[client][integration][auth]") {
    asio::io_context ioc;
    auto dir = std::filesystem::temp_directory_path() / ("es-client-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto token_file = dir / "token";
    std::ofstream(token_file) << "wrong-token\n";
    auto cfg = config();
    cfg.credentials = kube::CredentialProvider::from_token_file(token_file.string());
    Recorder rec;
    kube::Client client(ioc.get_executor(), cfg, fast_options(rec));

    SECTION("rotated token is picked up after one 401") {
        std::ofstream(token_file) << cluster().bearer_token() << "\n"; // rotated on disk, not yet re-read
        auto before = cluster().stats().unauthorized;
        auto v = run(ioc, client.get_json("/api"));
        CHECK(v.is_object());
        CHECK(cluster().stats().unauthorized == before + 1);
        REQUIRE(rec.size() == 2);
        CHECK(rec.outcomes[0].http_status == 401);
        CHECK(rec.outcomes[0].ec == kube::error::unauthorized);
        CHECK(rec.outcomes[1].http_status == 200);
    }
    SECTION("a token that stays wrong") {
        auto e = expect_error([&] { run(ioc, client.get_json("/api")); });
        CHECK(e.code() == kube::error::unauthorized);
        CHECK(kube::is_fatal(e.code()));
        CHECK(e.diagnostics().http_status == 401);
        CHECK(std::string(e.what()).find("wrong-token") == std::string::npos);
        CHECK(rec.size() == 2); // the first attempt and the one after refreshing
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("429 and 5xx are retried through the backoff policy, honouring Retry-After", "[client][integration][retry]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    auto& fc = cluster();

    SECTION("two 500s then success") {
        fc.fail_next_requests(2, 500);
        auto v = run(ioc, client.get_json("/api"));
        CHECK(v.is_object());
        REQUIRE(rec.size() == 3);
        CHECK(rec.outcomes[0].http_status == 500);
        CHECK(rec.outcomes[0].ec == kube::error::server_error);
        CHECK(rec.outcomes[1].attempt == 2);
        CHECK(rec.outcomes[2].http_status == 200);
    }
    SECTION("429 with Retry-After: 1 waits at least a second") {
        fc.fail_next_requests(1, 429, 1);
        auto start = std::chrono::steady_clock::now();
        run(ioc, client.get_json("/api"));
        CHECK(std::chrono::steady_clock::now() - start >= 950ms);
        REQUIRE(rec.size() == 2);
        CHECK(rec.outcomes[0].ec == kube::error::too_many_requests);
    }
    SECTION("max_retries, then the error with the server's Status") {
        auto opts = fast_options(rec);
        opts.max_retries = 2;
        kube::Client limited(ioc.get_executor(), config(), opts);
        fc.fail_next_requests(10, 503);
        auto e = expect_error([&] { run(ioc, limited.get_json("/api/v1/namespaces/default/pods")); });
        fc.fail_next_requests(0, 0);
        CHECK(e.code() == kube::error::server_error);
        CHECK(kube::is_retryable(e.code()));
        CHECK(e.diagnostics().http_status == 503);
        CHECK(e.diagnostics().resource == "GET /api/v1/namespaces/default/pods");
        CHECK(rec.size() == 3);
    }
    SECTION("get_json_once does not retry") {
        fc.fail_next_requests(1, 500);
        auto e = expect_error([&] { run(ioc, client.get_json_once("/api")); });
        CHECK(e.code() == kube::error::server_error);
        CHECK(rec.size() == 1);
    }
    SECTION("4xx is not retried") {
        auto e = expect_error([&] { run(ioc, client.get_json("/api/v1/namespaces/default/pods/does-not-exist")); });
        CHECK(e.code() == kube::error::not_found);
        CHECK(e.diagnostics().reason == "NotFound");
        CHECK_FALSE(e.diagnostics().server_message.empty());
        CHECK(rec.size() == 1);
    }
}

TEST_CASE("refused connections, then recovery", "[client][integration][retry]") {
    asio::io_context ioc;
    Recorder rec;
    auto opts = fast_options(rec);
    opts.backoff.initial = 100ms;
    opts.backoff.cap = 400ms;
    kube::Client client(ioc.get_executor(), config(), opts);
    cluster().refuse_connections(600ms);
    auto v = run(ioc, client.get_json("/api"));
    CHECK(v.is_object());
    REQUIRE(rec.size() >= 2);
    CHECK(rec.outcomes.front().ec == kube::error::connect_failed);
    CHECK(rec.outcomes.front().http_status == 0);
    CHECK(rec.outcomes.back().http_status == 200);
}

TEST_CASE("request timeout", "[client][integration][timeout]") {
    asio::io_context ioc;
    Recorder rec;
    auto opts = fast_options(rec);
    opts.request_timeout = 300ms;
    opts.max_retries = 1;
    kube::Client client(ioc.get_executor(), config(), opts);
    cluster().delay_responses(2s);
    auto e = expect_error([&] { run(ioc, client.get_json("/api")); });
    cluster().delay_responses(0ms);
    CHECK(e.code() == kube::error::timeout);
    CHECK(kube::is_retryable(e.code()));
    CHECK(rec.size() == 2);
}

TEST_CASE("streams: incremental reads, clean end, idle timeout on a silent watch, cancellation", "[client][integration][stream]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    auto& fc = cluster();
    ensure_pod("streams", "s1");

    SECTION("a watch delivers its events and ends cleanly") {
        auto got = run(ioc, [&]() -> asio::awaitable<std::string> {
            kube::StreamOptions so{.idle_timeout = 5s};
            auto s = co_await client.open_stream("/api/v1/namespaces/streams/pods?watch=true&resourceVersion=0", so);
            std::string all;
            while (all.find("\"s1\"") == std::string::npos) all += co_await s.read_some();
            fc.close_watches();
            for (;;) {
                auto bytes = co_await s.read_some();
                if (bytes.empty()) break;
                all += bytes;
            }
            co_return all;
        }());
        CHECK(got.find("\"type\":\"ADDED\"") != std::string::npos);
        CHECK(client.idle_connections() == 0); // streams never go to the pool
    }
    SECTION("a stalled (half-open) watch is reported as stream_idle") {
        fc.stall_watches(true);
        auto e = expect_error([&] {
            run(ioc, [&]() -> asio::awaitable<void> {
                kube::StreamOptions so{.idle_timeout = 300ms};
                auto s = co_await client.open_stream("/api/v1/namespaces/streams/pods?watch=true&resourceVersion=0", so);
                for (;;) co_await s.read_some();
            }());
        });
        fc.stall_watches(false);
        CHECK(e.code() == kube::error::stream_idle);
        CHECK(kube::is_retryable(e.code()));
    }
    SECTION("a read is cancelled by awaitable operators and the stream closes") {
        auto outcome = run(ioc, [&]() -> asio::awaitable<int> {
            kube::StreamOptions so{.idle_timeout = 30s};
            // A namespace without pods: the watch stays silent, so the timer wins.
            auto s = co_await client.open_stream("/api/v1/namespaces/streams-empty/pods?watch=true", so);
            asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
            auto r = co_await (s.read_some() || timer.async_wait(asio::use_awaitable));
            CHECK(r.index() == 1);
            CHECK_FALSE(s.is_open());
            co_return static_cast<int>(r.index());
        }(), 5s);
        CHECK(outcome == 1);
    }
    SECTION("a non-200 stream answer carries the Status") {
        auto e = expect_error([&] { run(ioc, client.open_stream("/api/v1/namespaces/streams/nothings?watch=true")); });
        CHECK(e.code() == kube::error::not_found);
        CHECK(e.diagnostics().http_status == 404);
    }
}

TEST_CASE("streams: the HTTP framing in any cut, ends clean and cut short, and the executor's other work between reads", "[client][integration][stream]") {
    // The stream body is parsed from the connection's buffer and the TLS stream read only when that holds no
    // whole piece: whatever the records' boundaries, the body arrives whole and in order, and each way a
    // connection can end gives its answer.
    const std::string chunked_header =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    const auto chunk = [](const std::string& data) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx", data.size());
        return std::string(size) + "\r\n" + data + "\r\n";
    };
    // Cuts `bytes` into pieces of 1, 2, 3, 5, 7, 11, 4096 and 17000 bytes in turn: pieces that cut a chunk's size
    // line, its data and its CRLF, and pieces that hold many chunks.
    const auto cut = [](const std::string& bytes) {
        static constexpr std::size_t sizes[] = {1, 2, 3, 5, 7, 11, 4096, 17000};
        std::vector<std::string> pieces;
        for (std::size_t at = 0, i = 0; at < bytes.size(); ++i) {
            std::size_t n = std::min(sizes[i % std::size(sizes)], bytes.size() - at);
            pieces.push_back(bytes.substr(at, n));
            at += n;
        }
        return pieces;
    };
    execution_sentinel::tests::HostileResponse response;
    std::mutex response_mutex;
    execution_sentinel::tests::HostileServerOptions so;
    so.respond = [&](const std::string&) {
        std::lock_guard lock(response_mutex);
        return response;
    };
    execution_sentinel::tests::HostileServer server(so);
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(),
                        kube::load_kubeconfig_from_string(server.kubeconfig(), "hostile", kube::KubeconfigOptions{}),
                        fast_options(rec));
    const auto set_response = [&](std::vector<std::string> raw, bool abrupt) {
        std::lock_guard lock(response_mutex);
        response.raw = std::move(raw);
        response.abrupt_end = abrupt;
    };
    // Reads the stream to its end; what it read comes back in `read` even when a read throws.
    const auto read_all = [&](std::string& read) -> asio::awaitable<void> {
        kube::StreamOptions o{.idle_timeout = 5s};
        auto s = co_await client.open_stream("/api/v1/namespaces/wf/pods?watch=true", o);
        for (;;) {
            auto bytes = co_await s.read_some();
            if (bytes.empty()) break;
            read += bytes;
        }
        CHECK_FALSE(s.is_open());
        CHECK((co_await s.read_some()).empty()); // a read after the end is an end again
    };

    SECTION("a chunked body whose records cut through the framing arrives whole, in order, and ends clean") {
        std::string body, wire = chunked_header;
        for (int i = 0; i < 400; ++i) {
            std::string event = "{\"type\":\"MODIFIED\",\"object\":{\"n\":" + std::to_string(i) + "}}\n";
            if (i == 200) event = std::string(150 * 1024, 'x') + "\n"; // larger than a read's buffer: in parts
            body += event;
            wire += chunk(event);
        }
        wire += "0\r\n\r\n";
        set_response(cut(wire), false);
        std::string read;
        run(ioc, read_all(read));
        CHECK(read.size() == body.size());
        CHECK(read == body);
    }
    SECTION("a body without a length ends with the connection's close_notify") {
        set_response(cut("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
                         std::string(70000, 'y')),
                     false);
        std::string read;
        run(ioc, read_all(read));
        CHECK(read == std::string(70000, 'y'));
    }
    SECTION("a body without a length cut without a close_notify is a lost connection") {
        set_response({"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\nyyyy"}, true);
        std::string read;
        auto e = expect_error([&] { run(ioc, read_all(read)); });
        CHECK(e.code() == kube::error::connection_lost);
        CHECK(read == "yyyy");
    }
    SECTION("a chunked body cut in a chunk is a lost connection, however the connection ends") {
        for (bool abrupt : {false, true}) {
            CAPTURE(abrupt);
            set_response({chunked_header + chunk("first\n") + "10\r\nabc"}, abrupt);
            std::string read;
            auto e = expect_error([&] { run(ioc, read_all(read)); });
            CHECK(e.code() == kube::error::connection_lost);
            CHECK(kube::is_retryable(e.code()));
            CHECK(read == "first\nabc");
        }
    }
    SECTION("a malformed chunk size is a lost connection, with the events before it delivered") {
        set_response({chunked_header + chunk("first\n"), "zz\r\nnot a chunk\r\n"}, false);
        std::string read;
        auto e = expect_error([&] { run(ioc, read_all(read)); });
        CHECK(e.code() == kube::error::connection_lost);
        CHECK(read == "first\n");
    }
    SECTION("reading a long body that is there already lets the executor's other work run in between") {
        std::string wire = chunked_header;
        for (int i = 0; i < 64; ++i) wire += chunk(std::string(64 * 1024, 'z'));
        wire += "0\r\n\r\n";
        set_response({wire}, false);
        std::vector<std::size_t> seen; // the bytes read so far at each turn of the other coroutine
        bool done = false;
        std::string read;
        run(ioc, [&]() -> asio::awaitable<void> {
            kube::StreamOptions o{.idle_timeout = 5s};
            auto s = co_await client.open_stream("/api/v1/namespaces/wf/pods?watch=true", o);
            // Let the server fill the socket's buffers, so that the reader finds data at every read.
            std::this_thread::sleep_for(300ms);
            // Another coroutine on the same executor, taking a turn whenever the reader lets it.
            asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
                while (!done) {
                    seen.push_back(read.size());
                    co_await asio::post(ioc, asio::use_awaitable);
                }
            }, asio::detached);
            co_await asio::post(ioc, asio::use_awaitable);
            for (;;) {
                auto bytes = co_await s.read_some();
                if (bytes.empty()) break;
                read += bytes;
            }
            done = true;
        }());
        CHECK(read.size() == 64u * 64 * 1024);
        // Never more than 64 KiB read (plus the last TLS record and the body bytes of one read) without a turn.
        std::size_t longest = 0;
        for (std::size_t i = 1; i < seen.size(); ++i) longest = std::max(longest, seen[i] - seen[i - 1]);
        longest = std::max(longest, read.size() - (seen.empty() ? 0 : seen.back()));
        UNSCOPED_INFO("turns " << seen.size() << ", longest stretch " << longest);
        CHECK(longest <= 64u * 1024 + 16 * 1024 + 64 * 1024);
    }
}

TEST_CASE("exec over WebSocket v5: exit codes, stdout and stderr, refusals", "[client][integration][exec]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    auto& fc = cluster();
    ensure_pod("exec", "worker");
    fc.write_file("exec", "worker", "/work/out.txt", "line one\nline two\n");

    auto run_exec = [&](std::vector<std::string> command, std::string container = "main") {
        kube::ExecRequest r;
        r.namespace_ = "exec";
        r.pod = "worker";
        r.container = std::move(container);
        r.command = std::move(command);
        r.timeout = 10s;
        return run(ioc, kube::exec(client, r));
    };

    auto ok = run_exec({"cat", "/work/out.txt"});
    CHECK(ok.exit_code == 0);
    CHECK(ok.stdout_data == "line one\nline two\n");
    CHECK(ok.stderr_data.empty());
    CHECK(ok.protocol == "v5.channel.k8s.io");

    auto one = run_exec({"test", "-f", "/work/missing"});
    CHECK(one.exit_code == 1);

    auto missing = run_exec({"cat", "/work/missing"});
    CHECK(missing.exit_code != 0);
    CHECK_FALSE(missing.stderr_data.empty());

    auto not_found = run_exec({"no-such-program", "x"});
    CHECK(not_found.exit_code == 127);
    CHECK(not_found.stderr_data.find("not found") != std::string::npos);

    auto e1 = expect_error([&] {
        kube::ExecRequest r{.namespace_ = "exec", .pod = "ghost", .container = "main", .command = {"true"}};
        run(ioc, kube::exec(client, r));
    });
    CHECK(e1.code() == kube::error::not_found);

    auto e2 = expect_error([&] { run_exec({"true"}, "sidecar"); });
    CHECK(e2.code() == kube::error::exec_failed);
    CHECK_FALSE(e2.diagnostics().server_message.empty());

    fc.delay_responses(1500ms);
    auto e3 = expect_error([&] {
        kube::ExecRequest r{.namespace_ = "exec", .pod = "worker", .container = "main", .command = {"true"}, .timeout = 300ms};
        run(ioc, kube::exec(client, r));
    });
    fc.delay_responses(0ms);
    CHECK(e3.code() == kube::error::timeout);
}

TEST_CASE("logs: tail, follow, reopen after a restart without duplicates, end of a finished pod", "[client][integration][logs]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    auto& fc = cluster();
    const std::string ns = "logs";
    const std::string pod = "l1";
    if (fc.get("pods", ns, pod)) fc.remove("pods", ns, pod);
    fc.create("pods", ns, pod_json(pod));
    for (int i = 1; i <= 5; ++i) fc.append_log(ns, pod, "main", "early " + std::to_string(i));

    auto tailed = run(ioc, kube::tail(client, ns, pod, "main", 2));
    REQUIRE(tailed.size() == 2);
    CHECK(tailed[0].text == "early 4");
    CHECK(tailed[1].text == "early 5");
    CHECK(tailed[0].time <= tailed[1].time);
    CHECK(tailed[1].time > kube::Timestamp{});

    auto texts = run(ioc, [&]() -> asio::awaitable<std::vector<std::string>> {
        kube::LogFollower follower(client, kube::LogRequest{.namespace_ = ns, .pod = pod, .container = "main"});
        std::vector<std::string> seen;
        auto next_text = [&]() -> asio::awaitable<std::string> {
            auto line = co_await follower.next();
            co_return line ? line->text : std::string("<end>");
        };
        for (int i = 0; i < 5; ++i) seen.push_back(co_await next_text());
        fc.append_log(ns, pod, "main", "live 1");
        seen.push_back(co_await next_text());
        fc.restart_container_log(ns, pod, "main"); // the stream ends; the follower reopens from sinceTime
        fc.append_log(ns, pod, "main", "after restart 1");
        fc.append_log(ns, pod, "main", "after restart 2");
        seen.push_back(co_await next_text());
        seen.push_back(co_await next_text());
        CHECK(follower.opens() == 2);
        fc.modify("pods", ns, pod, [](boost::json::object& o) { o["status"].as_object()["phase"] = "Succeeded"; });
        fc.restart_container_log(ns, pod, "main");
        seen.push_back(co_await next_text());
        co_return seen;
    }());
    CHECK(texts == std::vector<std::string>{"early 1", "early 2", "early 3", "early 4", "early 5", "live 1",
                                            "after restart 1", "after restart 2", "<end>"});
}

TEST_CASE("logs: an unknown container is an error, a missing pod is not_found", "[client][integration][logs]") {
    asio::io_context ioc;
    Recorder rec;
    kube::Client client(ioc.get_executor(), config(), fast_options(rec));
    ensure_pod("logs", "l2");
    auto e1 = expect_error([&] { run(ioc, kube::tail(client, "logs", "ghost", "main", 1)); });
    CHECK(e1.code() == kube::error::not_found);
    auto e2 = expect_error([&] {
        run(ioc, [&]() -> asio::awaitable<void> {
            kube::LogFollower f(client, kube::LogRequest{.namespace_ = "logs", .pod = "l2", .container = "nope"});
            co_await f.next();
        }());
    });
    CHECK(e2.code() == kube::error::bad_request);
}

// ------------------------------------------------------------------- hostile or misconfigured peers

TEST_CASE("a client certificate the server refuses in the TLS handshake is an authentication failure, at once",
          "[client][integration][tls][hardening]") {
    auto& fc = cluster();
    struct Case {
        const char* what;
        es_testing::CertificateBundle bundle;
    };
    std::vector<Case> cases;
    cases.push_back({"signed by another CA", es_testing::generate_certificates()});
    es_testing::CertificateOptions short_lived;
    short_lived.validity_days = 0; // valid from one hour ago until one hour ago
    cases.push_back({"expired, from another CA", es_testing::generate_certificates(short_lived)});
    for (auto& c : cases) {
        INFO(c.what);
        asio::io_context ioc;
        Recorder attempts;
        kube::Client client(ioc.get_executor(), with_client_certificate(c.bundle), fast_options(attempts));
        auto e = expect_error([&] { run(ioc, client.get_json("/api/v1/namespaces/default/pods")); });
        CHECK(e.code() == kube::error::client_certificate_rejected);
        CHECK(kube::is_fatal(e.code()));
        std::string message = e.what();
        CHECK(message.find("rejected the client certificate") != std::string::npos);
        CHECK(message.find("alert") != std::string::npos);
        CHECK(message.find("BEGIN") == std::string::npos); // no PEM in the message
        // One attempt and one with refreshed credentials; no retry loop until a timeout.
        std::lock_guard lock(attempts.mutex);
        CHECK(attempts.outcomes.size() <= 2);
        for (auto& o : attempts.outcomes) CHECK(o.ec == kube::error::client_certificate_rejected);
    }
    // The cluster's own client certificate still works on the same server.
    asio::io_context ioc;
    Recorder attempts;
    kube::Client client(ioc.get_executor(), config("fake-cert"), fast_options(attempts));
    auto list = run(ioc, client.get_json("/api/v1/namespaces/default/pods"));
    CHECK(list.at("kind").as_string() == "PodList");
    (void)fc;
}

TEST_CASE("a list page beyond its byte or item cap fails clearly instead of growing the process",
          "[client][integration][watcher][hardening]") {
    auto& fc = cluster();
    const std::string ns = "big-list";
    for (int i = 0; i < 40; ++i) // once for all the sections below
        if (!fc.get("pods", ns, "p" + std::to_string(i))) fc.create("pods", ns, small_pod("p" + std::to_string(i)));

    SECTION("a unary answer larger than the request's limit") {
        asio::io_context ioc;
        Recorder attempts;
        kube::Client client(ioc.get_executor(), config("fake-token"), fast_options(attempts));
        auto e = expect_error(
            [&] { run(ioc, client.get_json_once("/api/v1/namespaces/" + ns + "/pods", 2000)); });
        CHECK(e.code() == kube::error::response_too_large);
        CHECK(kube::is_fatal(e.code()));
        CHECK(std::string(e.what()).find("2000 bytes") != std::string::npos);
    }

    for (bool by_items : {true, false}) {
        DYNAMIC_SECTION("an unpaginated list page over the " << (by_items ? "item" : "byte") << " cap") {
            asio::io_context ioc;
            kube::Client client(ioc.get_executor(), config("fake-token"));
            kube::WatchOptions o;
            o.page_size = 0; // as from a server that ignores `limit`
            o.backoff.initial = 20ms;
            o.backoff.cap = 100ms;
            if (by_items) o.max_list_page_items = 10;
            else o.max_list_page_bytes = 4096;
            kube::Watcher<kube::Pod> watcher(client, ns, o);
            auto e = expect_error([&] {
                run(ioc, [&]() -> asio::awaitable<int> {
                    for (;;) (void)co_await watcher.next();
                }());
            });
            CHECK(e.code() == kube::error::response_too_large);
            std::string message = e.what();
            CHECK(message.find(by_items ? "max_list_page_items" : "max_list_page_bytes") != std::string::npos);
            CHECK(watcher.store().size() == 0); // nothing of the oversized page was kept
        }
    }

    SECTION("within the caps the same list is delivered whole") {
        asio::io_context ioc;
        kube::Client client(ioc.get_executor(), config("fake-token"));
        kube::WatchOptions o;
        o.page_size = 0;
        o.max_list_page_items = 40;
        kube::Watcher<kube::Pod> watcher(client, ns, o);
        int added = 0;
        run(ioc, [&]() -> asio::awaitable<int> {
            for (;;) {
                auto ev = co_await watcher.next();
                if (ev.type == kube::WatchEventType::synced) co_return 0;
                ++added;
            }
        }());
        CHECK(added == 40);
    }
}

TEST_CASE("a token that would inject a header never reaches the server", "[client][integration][auth][hardening]") {
    auto& fc = cluster();
    auto before = fc.stats().requests;
    asio::io_context ioc;
    auto cfg = config("fake-token");
    // The provider refuses it when built from a source ...
    auto e = expect_error([&] {
        kube::CredentialProvider::from_token(fc.bearer_token() + "\r\nX-Injected: y", "test token");
    });
    CHECK(e.code() == kube::error::config_invalid);
    CHECK(std::string(e.what()).find("control character") != std::string::npos);
    CHECK(std::string(e.what()).find(fc.bearer_token()) == std::string::npos); // the secret stays out
    // ... and a user agent holding CR/LF is refused by the client before any byte is sent.
    Recorder attempts;
    auto options = fast_options(attempts);
    options.user_agent = "agent\r\nX-Injected: y";
    kube::Client client(ioc.get_executor(), cfg, options);
    auto e2 = expect_error([&] { run(ioc, client.get_json("/api/v1/namespaces/default/pods")); });
    CHECK(e2.code() == kube::error::config_invalid);
    CHECK(fc.stats().requests == before);
}

TEST_CASE("a slow exec credential plugin does not block the executor", "[client][integration][auth][exec][hardening]") {
    auto& fc = cluster();
    char dir_template[] = "/tmp/es-slow-plugin-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const std::string done_marker = dir + "/done";
    const std::string script = dir + "/plugin.sh";
    {
        std::FILE* f = std::fopen(script.c_str(), "w");
        REQUIRE(f != nullptr);
        std::string body = "#!/bin/sh\nsleep 3\ntouch '" + done_marker + "'\n"
                           "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
                           "\"status\":{\"token\":\"" + fc.bearer_token() + "\"}}'\n";
        std::fputs(body.c_str(), f);
        std::fclose(f);
        ::chmod(script.c_str(), 0755);
    }
    auto cfg = config("fake-token");
    kube::CredentialSource source;
    kube::ExecPluginConfig exec;
    exec.command = script;
    exec.api_version = "client.authentication.k8s.io/v1";
    exec.interactive_mode = kube::ExecPluginConfig::InteractiveMode::never;
    source.exec = exec;
    source.origin = "test";
    kube::CredentialProviderOptions po;
    po.host_environment = std::vector<std::string>{"PATH=/usr/bin:/bin"};
    cfg.credentials = kube::CredentialProvider::create(std::move(source), po);

    asio::io_context ioc; // one thread: a blocking plugin would hold it
    kube::Client client(ioc.get_executor(), cfg);
    bool timer_fired = false, plugin_done_when_timer_fired = true, request_done = false;
    asio::steady_timer timer(ioc, 100ms);
    timer.async_wait([&](boost::system::error_code) {
        timer_fired = true;
        plugin_done_when_timer_fired = ::access(done_marker.c_str(), F_OK) == 0 || request_done;
    });
    auto list = run(ioc, client.get_json("/api/v1/namespaces/default/pods"), 30s);
    request_done = true;
    CHECK(list.at("kind").as_string() == "PodList");
    CHECK(timer_fired);
    CHECK_FALSE(plugin_done_when_timer_fired); // the timer ran while the plugin was still running
    std::remove(done_marker.c_str());
    std::remove(script.c_str());
    ::rmdir(dir.c_str());
}

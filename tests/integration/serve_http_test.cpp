// The sentinel's HTTP server on 127.0.0.1 checked by real clients: raw sockets sending hostile requests (malformed,
// oversized, slow, too many), a server-sent event stream with a fast and a slow reader, Debian's `promtool check
// metrics` on the scraped text, and a real Prometheus server scraping it and answering a query about it; the same
// server with a certificate speaks HTTPS only.
#include <execution_sentinel/serve/event_stream.hpp>
#include <execution_sentinel/serve/http_server.hpp>
#include <execution_sentinel/serve/sentinel_metrics.hpp>
#include <execution_sentinel/testing/certificates.hpp>

#include "catch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace es = execution_sentinel;
namespace sv = execution_sentinel::serve;
using namespace std::chrono_literals;

namespace {

/// A plain TCP client on a POSIX socket, with timeouts on every read (so a server that hangs fails the test
/// instead of hanging it).
class RawClient {
public:
    explicit RawClient(unsigned short port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~RawClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return fd_ >= 0; }

    /// Sends everything; false when the peer is gone.
    bool send(std::string_view data) {
        while (!data.empty()) {
            auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads into buffer() until `done(buffer())`, the peer closes, or `limit` passes; returns whether `done` held.
    bool read_until(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds limit = 10s) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (!done(buffer_)) {
            if (closed_) return false;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[65536];
            auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) {
                closed_ = true;
                continue;
            }
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Waits until the peer closes the connection (reading and keeping what comes); false after `limit`.
    bool wait_closed(std::chrono::milliseconds limit = 10s) {
        read_until([&](const std::string&) { return closed_; }, limit);
        return closed_;
    }

    std::string& buffer() { return buffer_; }
    bool closed() const { return closed_; }

private:
    int fd_ = -1;
    std::string buffer_;
    bool closed_ = false;
};

/// The first complete response in `bytes`, or nullopt. `head`: the answer to a HEAD request (no body).
std::optional<http::response<http::string_body>> parse_response(const std::string& bytes, bool head = false,
                                                                 std::size_t* used = nullptr) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(64u << 20);
    if (head) p.skip(true);
    boost::beast::error_code ec;
    const std::size_t n = p.put(asio::buffer(bytes), ec);
    if (ec || !p.is_done()) return std::nullopt;
    if (used) *used = n;
    return p.release();
}

bool has_response(const std::string& bytes) { return parse_response(bytes).has_value(); }

/// Sends `request` on a new connection and returns the response (status 0 when none came).
http::response<http::string_body> fetch(unsigned short port, const std::string& request) {
    RawClient c(port);
    c.send(request);
    c.read_until(has_response);
    auto r = parse_response(c.buffer());
    return r ? *r : http::response<http::string_body>{};
}

std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"; }

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return condition();
}

es::Report report(std::uint64_t sequence, es::ReportType type = es::ReportType::PROGRESS) {
    es::Report r;
    r.type = type;
    r.severity = type == es::ReportType::PROGRESS ? es::Severity::info : es::Severity::error;
    r.sequence = sequence;
    r.timestamp = es::Clock::now();
    r.message = "report " + std::to_string(sequence);
    return r;
}

/// The answer of the route /deferred/{what}, after a wait: 201 naming `what`, or what `what` asks to be thrown.
asio::awaitable<sv::HttpResponse> deferred_answer(std::string what) {
    asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    if (what == "conflict") throw sv::HttpError(409, "known with another context");
    if (what == "broken") throw std::runtime_error("a detail clients must not see");
    co_return sv::HttpResponse::json(201, boost::json::object{{"stored", what}});
}

/// The server with the sentinel's metrics, the standard routes and two event stream routes, run by two threads.
struct Served {
    explicit Served(sv::HttpServerOptions options = {}, sv::EventStreamOptions events = {})
        : hub(std::make_shared<sv::EventHub>(events, &metrics.registry())) {
        sv::Router router;
        sv::add_health_routes(router, metrics.registry(), [this] {
            return std::vector<sv::ReadinessCheck>{{"caches", caches_synced.load(), caches_synced ? "" : "pods not synced"},
                                                   {"store", true, ""}};
        });
        router.get("/api/v1/events", [this](const sv::RouteRequest&) { return sv::HttpResponse::event_stream(hub); });
        router.get("/api/v1/runs/{namespace}/{run}/events", [this](const sv::RouteRequest& q) {
            return sv::HttpResponse::event_stream(hub, std::string(q.param("namespace")) + "/" +
                                                           std::string(q.param("run")));
        });
        router.post("/deferred/{what}", [](const sv::RouteRequest& q) {
            sv::HttpResponse r;
            r.deferred = [what = std::string(q.param("what"))] { return deferred_answer(what); };
            return r;
        });
        options.metrics = &metrics.registry();
        server.emplace(io.get_executor(), std::move(router), options);
        port = server->start().port();
        for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
    }
    ~Served() {
        server->stop();
        wait_for([&] { return server->stats().open_connections == 0; }, 5s);
        io.stop();
        for (auto& t : threads) t.join();
    }

    sv::SentinelMetrics metrics;
    std::shared_ptr<sv::EventHub> hub;
    std::atomic<bool> caches_synced{true};
    asio::io_context io;
    std::optional<sv::HttpServer> server;
    std::vector<std::thread> threads;
    unsigned short port = 0;
};

/// Feeds the metrics with something of every kind, including label values that need escaping.
void populate(sv::SentinelMetrics& m) {
    m.run_started("wf", "run-1");
    es::MonitorView v;
    v.health = 0.5;
    v.phases.push_back({.task_type = "mProject", .total = 3, .pending = 1, .running = 1, .succeeded = 1});
    v.phases.push_back({.task_type = "odd \"type\"\nwith\\escapes \xFF", .total = 1, .failed = 1});
    m.observe("wf", "run-1", v);
    auto r = report(1, es::ReportType::ANOMALY_OOMKILL);
    m.observe("wf", "run-1", r, r.timestamp + 7ms);
    m.observe(report(2), es::Clock::now());
    m.watch_restarted("pods", "expired");
    m.api_error(410);
    m.store_write("ok");
    m.alert_delivery("slack", "sent");
    es::WatchSummary s;
    s.exit_code = 0;
    s.duration_seconds = 90;
    m.observe(s);
}

// ------------------------------------------------------------------------------------------------ child processes

unsigned short free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

std::filesystem::path temp_dir(const std::string& name) {
    auto d = std::filesystem::temp_directory_path() /
             ("es-serve-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(d);
    return d;
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A child process, stopped (SIGTERM, then SIGKILL) and reaped when destroyed; stdout and stderr go to `log`,
/// stdin comes from `input` when given.
class Child {
public:
    Child(std::vector<std::string> argv, const std::filesystem::path& log, const std::filesystem::path& input = {}) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (!input.empty()) posix_spawn_file_actions_addopen(&fa, 0, input.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        std::string path_env = "PATH=/usr/bin:/bin";
        char* env[] = {path_env.data(), nullptr};
        if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), env) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Child() {
        if (pid_ <= 0 || exited_) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 50; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(100ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    bool started() const { return pid_ > 0; }
    bool running() {
        if (pid_ <= 0 || exited_) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
            return false;
        }
        return true;
    }
    /// Waits for the exit (at most `limit`); its exit status, or -1 when still running.
    int wait(std::chrono::milliseconds limit) {
        wait_for([&] { return !running(); }, limit);
        return exited_ ? exit_status_ : -1;
    }

private:
    pid_t pid_ = -1;
    bool exited_ = false;
    int exit_status_ = -1;
};

} // namespace

// ------------------------------------------------------------------------------------------------ basic answers

TEST_CASE("serve http: /metrics, /healthz and /readyz answer a real client, with keep-alive",
          "[serve][http][integration]") {
    Served s;
    populate(s.metrics);
    RawClient c(s.port);
    REQUIRE(c.connected());
    // Three requests on one connection: two pipelined, then one more.
    REQUIRE(c.send(get("/metrics") + get("/healthz")));
    REQUIRE(c.read_until([](const std::string& b) {
        std::size_t used = 0;
        return parse_response(b, false, &used) && parse_response(b.substr(used)).has_value();
    }));
    std::size_t used = 0;
    auto metrics = *parse_response(c.buffer(), false, &used);
    auto health = *parse_response(c.buffer().substr(used));
    CHECK(metrics.result_int() == 200);
    CHECK(metrics[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(metrics.body().find("execution_sentinel_build_info{version=\"" + std::string(es::version_string) + "\"} 1\n") !=
          std::string::npos);
    CHECK(metrics.keep_alive());
    CHECK(health.result_int() == 200);
    CHECK(boost::json::parse(health.body()) == boost::json::parse(R"({"status":"ok"})"));
    c.buffer().clear();
    REQUIRE(c.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(c.read_until([](const std::string& b) { return parse_response(b, true).has_value(); }));
    auto head = *parse_response(c.buffer(), true);
    CHECK(head.result_int() == 200);
    CHECK(std::stoul(std::string(head[http::field::content_length])) > 1000);
    CHECK_FALSE(c.closed());

    // Readiness follows the probe.
    auto ready = fetch(s.port, get("/readyz"));
    CHECK(ready.result_int() == 200);
    s.caches_synced = false;
    auto not_ready = fetch(s.port, get("/readyz"));
    CHECK(not_ready.result_int() == 503);
    auto body = boost::json::parse(not_ready.body());
    CHECK(body.at("not_ready") == boost::json::parse(R"(["caches"])"));

    // The server counts its own requests.
    auto again = fetch(s.port, get("/metrics"));
    CHECK(again.body().find("execution_sentinel_http_requests_total{handler=\"/metrics\",code=\"200\"} 2\n") !=
          std::string::npos);
    CHECK(again.body().find("execution_sentinel_http_requests_total{handler=\"/readyz\",code=\"503\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("serve http: a deferred handler answers when its work is done, in order on a keep-alive connection",
          "[serve][http][integration]") {
    Served s;
    auto post = [](const std::string& what) {
        return "POST /deferred/" + what + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    };
    RawClient c(s.port);
    REQUIRE(c.connected());
    REQUIRE(c.send(post("first") + post("conflict") + post("broken") + post("last")));
    std::vector<http::response<http::string_body>> answers;
    REQUIRE(c.read_until([&](const std::string& b) {
        answers.clear();
        std::size_t at = 0, used = 0;
        while (auto r = parse_response(b.substr(at), false, &used)) {
            answers.push_back(*r);
            at += used;
        }
        return answers.size() == 4;
    }));
    CHECK(answers[0].result_int() == 201);
    CHECK(boost::json::parse(answers[0].body()) == boost::json::parse(R"({"stored":"first"})"));
    CHECK(answers[1].result_int() == 409);
    CHECK(boost::json::parse(answers[1].body()).at("error").at("message") == "known with another context");
    CHECK(answers[2].result_int() == 500); // no detail of an unexpected exception reaches the client
    CHECK(answers[2].body().find("detail") == std::string::npos);
    CHECK(answers[3].result_int() == 201);
    CHECK(answers[3].keep_alive());
    auto metrics = fetch(s.port, get("/metrics")).body();
    CHECK(metrics.find("execution_sentinel_http_requests_total{handler=\"/deferred/{what}\",code=\"409\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("serve http: hostile requests get a 4xx and the server keeps serving", "[serve][http][integration]") {
    Served s({.read_timeout = 500ms, .idle_timeout = 800ms});
    auto expect_status_and_close = [&](const std::string& request, unsigned status) {
        INFO("request: " << request.substr(0, 80));
        RawClient c(s.port);
        REQUIRE(c.send(request));
        REQUIRE(c.read_until(has_response));
        CHECK(parse_response(c.buffer())->result_int() == status);
        CHECK(c.wait_closed(5s));
    };
    expect_status_and_close("GARBAGE\r\n\r\n", 400);
    expect_status_and_close("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n", 431);
    expect_status_and_close("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", 413);
    expect_status_and_close("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n", 400);
    std::string binary(200, '\0');
    std::mt19937 rng(7);
    for (auto& ch : binary) ch = static_cast<char>(rng());
    expect_status_and_close(binary + "\r\n\r\n", 400);

    // Unknown paths and methods: 4xx, and the connection stays usable.
    RawClient c(s.port);
    REQUIRE(c.send(get("/nope") + "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + get("/healthz")));
    REQUIRE(c.read_until([](const std::string& b) {
        std::size_t a = 0, b2 = 0;
        return parse_response(b, false, &a) && parse_response(b.substr(a), false, &b2) &&
               parse_response(b.substr(a + b2));
    }));
    std::size_t a = 0, b = 0;
    auto r1 = *parse_response(c.buffer(), false, &a);
    auto r2 = *parse_response(c.buffer().substr(a), false, &b);
    auto r3 = *parse_response(c.buffer().substr(a + b));
    CHECK(r1.result_int() == 404);
    CHECK(r2.result_int() == 405);
    CHECK(r2[http::field::allow] == "GET, HEAD");
    CHECK(r3.result_int() == 200);

    // Slowloris: headers dripping in never complete the request; 408 after the read timeout, then close.
    {
        RawClient slow(s.port);
        REQUIRE(slow.send("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
        const auto t0 = std::chrono::steady_clock::now();
        bool answered = false;
        for (int i = 0; i < 100 && !answered; ++i) {
            slow.send("X-Drip-" + std::to_string(i) + ": 1\r\n");
            answered = slow.read_until(has_response, 100ms) || slow.closed();
        }
        REQUIRE(answered);
        const auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(parse_response(slow.buffer())->result_int() == 408);
        CHECK(slow.wait_closed(5s));
        CHECK(waited < 5s); // bounded by the read timeout (500 ms), not by the sender
    }

    // An idle keep-alive connection is closed after the idle timeout.
    {
        RawClient idle(s.port);
        REQUIRE(idle.send(get("/healthz")));
        REQUIRE(idle.read_until(has_response));
        CHECK(idle.wait_closed(5s));
    }
    // A connection that sends nothing at all is closed too.
    {
        RawClient silent(s.port);
        CHECK(silent.wait_closed(5s));
        CHECK(silent.buffer().empty());
    }
    CHECK(fetch(s.port, get("/healthz")).result_int() == 200);
    auto text = fetch(s.port, get("/metrics")).body();
    CHECK(text.find("execution_sentinel_http_requests_total{handler=\"invalid\",code=\"408\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_http_requests_total{handler=\"unmatched\",code=\"404\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("serve http: connections beyond the limit are answered 503", "[serve][http][integration]") {
    Served s({.max_connections = 3});
    std::vector<std::unique_ptr<RawClient>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<RawClient>(s.port));
        REQUIRE(held.back()->connected());
    }
    REQUIRE(wait_for([&] { return s.server->stats().open_connections == 3; }, 5s));
    RawClient extra(s.port);
    REQUIRE(extra.read_until(has_response));
    CHECK(parse_response(extra.buffer())->result_int() == 503);
    CHECK(extra.wait_closed(5s));
    CHECK(s.server->stats().rejected == 1);

    held.pop_back(); // one goes: room again
    REQUIRE(wait_for([&] { return s.server->stats().open_connections == 2; }, 5s));
    CHECK(fetch(s.port, get("/healthz")).result_int() == 200);
    // A held connection is served as usual.
    REQUIRE(held[0]->send(get("/metrics")));
    REQUIRE(held[0]->read_until(has_response));
    CHECK(parse_response(held[0]->buffer())->body().find("execution_sentinel_http_connections_rejected_total 1\n") !=
          std::string::npos);
}

// ------------------------------------------------------------------------------------------------ event streams

namespace {

/// The events in an event stream's bytes (after the response head): (id, event, data) of each complete one.
struct Event {
    std::uint64_t id = 0;
    std::string event;
    std::string data;
};

std::vector<Event> parse_events(const std::string& bytes, std::size_t* comments = nullptr) {
    std::vector<Event> out;
    auto start = bytes.find("\r\n\r\n");
    if (start == std::string::npos) return out;
    start += 4;
    std::size_t keepalives = 0;
    for (;;) {
        const auto end = bytes.find("\n\n", start);
        if (end == std::string::npos) break;
        const std::string block = bytes.substr(start, end - start);
        start = end + 2;
        if (block.rfind(": keep-alive", 0) == 0) {
            ++keepalives;
            continue;
        }
        if (block.rfind("retry:", 0) == 0) continue;
        Event e;
        std::size_t pos = 0;
        while (pos <= block.size()) {
            auto nl = block.find('\n', pos);
            auto line = block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            if (line.rfind("id: ", 0) == 0) e.id = std::stoull(line.substr(4));
            else if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
            else if (line.rfind("data: ", 0) == 0) e.data += line.substr(6);
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
        out.push_back(std::move(e));
    }
    if (comments) *comments = keepalives;
    return out;
}

} // namespace

TEST_CASE("serve http: an event stream delivers every report in order, with keep-alive comments",
          "[serve][http][events][integration]") {
    Served s({}, {.keepalive_interval = 200ms});
    RawClient all(s.port);
    RawClient one_run(s.port);
    REQUIRE(all.send(get("/api/v1/events")));
    REQUIRE(one_run.send(get("/api/v1/runs/wf/run-2/events")));
    REQUIRE(all.read_until([](const std::string& b) { return b.find("retry: 3000\n\n") != std::string::npos; }));
    REQUIRE(one_run.read_until([](const std::string& b) { return b.find("retry: 3000\n\n") != std::string::npos; }));
    CHECK(all.buffer().rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(all.buffer().find("Content-Type: text/event-stream\r\n") != std::string::npos);
    REQUIRE(wait_for([&] { return s.hub->stats().clients == 2; }, 5s));

    // Nothing published yet: keep-alive comments.
    std::size_t comments = 0;
    REQUIRE(all.read_until([&](const std::string& b) {
        parse_events(b, &comments);
        return comments >= 2;
    }));

    for (std::uint64_t i = 1; i <= 200; ++i) s.hub->publish(report(i), i % 2 ? "wf/run-1" : "wf/run-2");
    REQUIRE(all.read_until([](const std::string& b) { return parse_events(b).size() == 200; }));
    REQUIRE(one_run.read_until([](const std::string& b) { return parse_events(b).size() == 100; }));
    auto events = parse_events(all.buffer());
    for (std::uint64_t i = 1; i <= 200; ++i) {
        const auto& e = events[i - 1];
        REQUIRE(e.id == i);
        CHECK(e.event == "report");
        auto v = boost::json::parse(e.data);
        CHECK(v.at("sequence") == i);
        CHECK(v.at("run") == (i % 2 ? "wf/run-1" : "wf/run-2"));
    }
    auto mine = parse_events(one_run.buffer());
    for (std::size_t k = 0; k < mine.size(); ++k) {
        CHECK(mine[k].id == 2 * (k + 1));
        CHECK(boost::json::parse(mine[k].data).at("run") == "wf/run-2");
    }

    // Stopping the server ends the streams.
    s.server->stop();
    CHECK(all.wait_closed(5s));
    CHECK(one_run.wait_closed(5s));
}

TEST_CASE("serve http: a slow event stream client is dropped and never blocks the publisher",
          "[serve][http][events][integration]") {
    Served s({}, {.max_queued_events = 64, .max_queued_bytes = 64u << 20});
    RawClient fast(s.port);
    RawClient slow(s.port, 4096); // a small receive buffer, and it never reads
    REQUIRE(fast.send(get("/api/v1/events")));
    REQUIRE(slow.send(get("/api/v1/events")));
    REQUIRE(wait_for([&] { return s.hub->stats().clients == 2; }, 5s));

    std::atomic<std::size_t> fast_received{0};
    std::atomic<bool> reading{true};
    std::thread reader([&] {
        std::size_t count = 0, pos = 0;
        while (reading && !fast.closed()) {
            fast.read_until([&](const std::string&) { return !reading; }, 50ms);
            const auto& b = fast.buffer();
            while ((pos = b.find("event: report\n", pos)) != std::string::npos) {
                ++count;
                pos += 14;
            }
            pos = b.size() >= 13 ? b.size() - 13 : 0; // a marker split by the read is found next time
            fast_received = count;
        }
    });

    const std::string payload(16 * 1024, 'x');
    std::size_t published = 0;
    for (int batch = 0; batch < 40; ++batch) {
        for (int i = 0; i < 32; ++i) {
            auto r = report(++published);
            r.message = payload;
            s.hub->publish(r);
        }
        // The fast client keeps up between batches; the slow one reads nothing, yet every publish returned.
        REQUIRE(wait_for([&] { return fast_received.load() == published; }, 20s));
    }
    reading = false;
    reader.join();

    CHECK(s.hub->stats().dropped == 1);
    CHECK(s.hub->stats().clients == 1);
    CHECK(slow.wait_closed(10s)); // what the kernel had buffered, then the end
    auto events = parse_events(fast.buffer());
    REQUIRE(events.size() == published);
    for (std::size_t i = 0; i < events.size(); ++i) REQUIRE(events[i].id == i + 1);
    CHECK(fetch(s.port, get("/metrics")).body().find("execution_sentinel_event_stream_clients_dropped_total 1\n") !=
          std::string::npos);
}

// ------------------------------------------------------------------------------------------------ Prometheus

TEST_CASE("serve http: promtool check metrics accepts the scraped text", "[serve][http][integration][prometheus]") {
    const std::string promtool = "/usr/bin/promtool";
    if (::access(promtool.c_str(), X_OK) != 0) {
        WARN("SKIP: promtool is not installed (apt-get install prometheus)");
        SUCCEED("skipped (the warning above says why)");
        SUCCEED("skipped");
        return;
    }
    Served s;
    populate(s.metrics);
    fetch(s.port, get("/nope")); // an http_requests_total series
    auto scraped = fetch(s.port, get("/metrics"));
    REQUIRE(scraped.result_int() == 200);
    auto dir = temp_dir("promtool");
    {
        std::ofstream out(dir / "metrics.txt", std::ios::binary);
        out << scraped.body();
    }
    Child check({promtool, "check", "metrics"}, dir / "promtool.log", dir / "metrics.txt");
    REQUIRE(check.started());
    const int status = check.wait(60s);
    const std::string output = read_file(dir / "promtool.log");
    INFO("promtool said: " << output);
    INFO("metrics:\n" << scraped.body());
    CHECK(status == 0);
    CHECK(output.empty());
    std::filesystem::remove_all(dir);
}

TEST_CASE("serve http: a real Prometheus server scrapes the sentinel", "[serve][http][integration][prometheus]") {
    const std::string prometheus = "/usr/bin/prometheus";
    if (::access(prometheus.c_str(), X_OK) != 0) {
        WARN("SKIP: prometheus is not installed (apt-get install prometheus)");
        SUCCEED("skipped (the warning above says why)");
        SUCCEED("skipped");
        return;
    }
    Served s;
    populate(s.metrics);
    auto dir = temp_dir("prometheus");
    {
        std::ofstream cfg(dir / "prometheus.yml");
        cfg << "global:\n"
               "  scrape_interval: 1s\n"
               "  evaluation_interval: 1s\n"
               "scrape_configs:\n"
               "  - job_name: sentinel\n"
               "    static_configs:\n"
               "      - targets: ['127.0.0.1:" << s.port << "']\n";
    }
    const unsigned short prom_port = free_port();
    Child prom({prometheus, "--config.file=" + (dir / "prometheus.yml").string(),
                "--storage.tsdb.path=" + (dir / "data").string(),
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
               dir / "prometheus.log");
    if (!wait_for([&] { return fetch(prom_port, get("/-/ready")).result_int() == 200; }, 30s)) {
        if (!prom.running()) {
            WARN("SKIP: prometheus cannot start here: " << read_file(dir / "prometheus.log"));
            SUCCEED("skipped (the warning above says why)");
            SUCCEED("skipped");
            std::filesystem::remove_all(dir);
            return;
        }
        FAIL("Prometheus did not become ready: " << read_file(dir / "prometheus.log"));
    }

    auto query = [&](const std::string& promql) -> boost::json::array {
        std::string encoded;
        for (unsigned char ch : promql) {
            if (std::isalnum(ch) || ch == '_') encoded += static_cast<char>(ch);
            else {
                char hex[4];
                std::snprintf(hex, sizeof hex, "%%%02X", ch);
                encoded += hex;
            }
        }
        auto r = fetch(prom_port, get("/api/v1/query?query=" + encoded));
        if (r.result_int() != 200) return {};
        auto v = boost::json::parse(r.body());
        return v.at("data").at("result").as_array();
    };
    boost::json::array build;
    REQUIRE(wait_for([&] { return !(build = query("execution_sentinel_build_info")).empty(); }, 30s));
    CHECK(build.at(0).at("metric").at("version") == es::version_string);
    CHECK(build.at(0).at("metric").at("job") == "sentinel");
    CHECK(build.at(0).at("value").at(1) == "1");

    auto up = query("up{job=\"sentinel\"}");
    REQUIRE(up.size() == 1);
    CHECK(up.at(0).at("value").at(1) == "1");
    auto ooms = query("execution_sentinel_reports_total{type=\"ANOMALY_OOMKILL\",severity=\"error\"}");
    REQUIRE(ooms.size() == 1);
    CHECK(ooms.at(0).at("value").at(1) == "1");
    auto latency = query("execution_sentinel_reaction_latency_seconds_bucket{type=\"ANOMALY_OOMKILL\",le=\"0.01\"}");
    REQUIRE(latency.size() == 1);
    CHECK(latency.at(0).at("value").at(1) == "1");
    // The label that needed escaping arrived intact (the invalid byte as U+FFFD).
    auto odd = query("execution_sentinel_tasks{status=\"failed\",run=\"run-1\"}");
    REQUIRE(odd.size() == 2);
    bool found = false;
    for (auto& series : odd)
        if (series.at("metric").at("phase") == "odd \"type\"\nwith\\escapes \xEF\xBF\xBD") found = true;
    CHECK(found);
    std::filesystem::remove_all(dir);
}

TEST_CASE("serve http: with a certificate the server speaks HTTPS only", "[serve][http][tls][integration]") {
    const auto dir = temp_dir("tls");
    const auto certs = es::testing::generate_certificates();
    std::ofstream(dir / "tls.crt") << certs.server_certificate_pem;
    std::ofstream(dir / "tls.key") << certs.server_key_pem;
    sv::HttpServerOptions options;
    options.read_timeout = 500ms;
    options.tls = sv::make_server_tls_context((dir / "tls.crt").string(), (dir / "tls.key").string());
    Served served(options);

    // A verifying client: two requests on one keep-alive TLS connection, then an event stream on another.
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(certs.ca_certificate_pem));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    std::vector<unsigned> statuses;
    std::string events, failure;
    auto client = [&]() -> asio::awaitable<void> {
        const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), served.port);
        {
            asio::ssl::stream<asio::ip::tcp::socket> s(io, ctx);
            s.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
            co_await s.next_layer().async_connect(at, asio::use_awaitable);
            co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            boost::beast::flat_buffer buffer;
            for (const char* target : {"/healthz", "/readyz"}) {
                http::request<http::empty_body> req{http::verb::get, target, 11};
                req.set(http::field::host, "127.0.0.1");
                co_await http::async_write(s, req, asio::use_awaitable);
                http::response<http::string_body> res;
                co_await http::async_read(s, buffer, res, asio::use_awaitable);
                statuses.push_back(res.result_int());
            }
        }
        asio::ssl::stream<asio::ip::tcp::socket> s(io, ctx);
        co_await s.next_layer().async_connect(at, asio::use_awaitable);
        co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        http::request<http::empty_body> req{http::verb::get, "/api/v1/events", 11};
        req.set(http::field::host, "127.0.0.1");
        co_await http::async_write(s, req, asio::use_awaitable);
        char chunk[4096];
        while (events.find("event: report") == std::string::npos) {
            const auto n = co_await s.async_read_some(asio::buffer(chunk), asio::use_awaitable);
            events.append(chunk, n);
            if (events.find("retry:") != std::string::npos) served.hub->publish(report(1, es::ReportType::ANOMALY_OOMKILL));
        }
    };
    asio::co_spawn(io, client(), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            failure = x.what();
        }
    });
    io.run_for(15s);
    INFO("client: " << failure);
    CHECK(failure.empty());
    CHECK(statuses == std::vector<unsigned>{200, 200});
    CHECK(events.find("HTTP/1.1 200 OK") == 0);
    CHECK(events.find("\"type\":\"ANOMALY_OOMKILL\"") != std::string::npos);

    // Plain HTTP gets no answer: the connection is closed when the bytes are not a TLS handshake.
    RawClient plain(served.port);
    REQUIRE(plain.connected());
    plain.send(get("/healthz"));
    CHECK(plain.wait_closed(5s));
    CHECK(plain.buffer().find("HTTP/1.1") == std::string::npos);
    // A client that never starts its handshake is closed after the read timeout.
    RawClient silent(served.port);
    REQUIRE(silent.connected());
    const auto start = std::chrono::steady_clock::now();
    CHECK(silent.wait_closed(5s));
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    CHECK(served.server->stats().tls_handshake_failures >= 2);
    std::filesystem::remove_all(dir);
}

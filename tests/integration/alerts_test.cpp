// Alert delivery against real receivers: a local HTTPS receiver (test certificates) standing in for Slack and a
// webhook, with its failures (500, 429, answers too slow, an unverifiable certificate); exactly-once across a
// restart of the dispatcher with the JSON-file ledger; and Debian's prometheus-alertmanager started on 127.0.0.1,
// routing to a webhook and, by e-mail, to a real SMTP server (python3-aiosmtpd).
#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/alerts/dispatcher.hpp>
#include <execution_sentinel/alerts/ledger.hpp>
#include <execution_sentinel/alerts/payload.hpp>
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/testing/certificates.hpp>

#include "catch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace es = execution_sentinel;
namespace al = execution_sentinel::alerts;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

/// One request the receiver got.
struct Received {
    std::string target;
    std::map<std::string, std::string> headers; ///< lower-case names
    std::string body;
    std::chrono::steady_clock::time_point at;
};

/// What the receiver answers to one request.
struct Answer {
    int status = 200;
    std::string body = "ok";
    std::chrono::milliseconds delay{0}; ///< before answering (a slow receiver)
    std::string retry_after{};
};

/// An HTTP or HTTPS receiver on 127.0.0.1 (free port), on its own thread; answers as `script(n)` says for the n-th
/// request (0-based).
class Receiver {
public:
    explicit Receiver(bool tls, std::function<Answer(std::size_t)> script = {})
        : tls_(tls), script_(std::move(script)), certificates_(es::testing::generate_certificates()),
          ssl_(asio::ssl::context::tls_server), acceptor_(io_) {
        ssl_.use_certificate_chain(asio::buffer(certificates_.server_certificate_pem));
        ssl_.use_private_key(asio::buffer(certificates_.server_key_pem), asio::ssl::context::pem);
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        asio::co_spawn(io_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~Receiver() {
        asio::post(io_, [this] {
            boost::system::error_code ec;
            acceptor_.close(ec);
            io_.stop();
        });
        thread_.join();
    }
    std::string url(const std::string& path) const {
        return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::string ca() const { return certificates_.ca_certificate_pem; }
    std::vector<Received> received() const {
        std::lock_guard lock(mutex_);
        return received_;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return received_.size();
    }
    /// Requests whose answer was 2xx.
    std::size_t accepted() const { return accepted_.load(); }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            if (tls_) asio::co_spawn(io_, tls_session(std::move(socket)), asio::detached);
            else asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
        }
    }
    asio::awaitable<void> tls_session(asio::ip::tcp::socket socket) {
        asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), ssl_);
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
        if (hec) co_return;
        co_await serve(stream);
    }
    asio::awaitable<void> serve(asio::ip::tcp::socket socket) { co_await serve<asio::ip::tcp::socket>(socket); }
    template <class Stream> asio::awaitable<void> serve(Stream& stream) {
        boost::beast::flat_buffer buffer;
        http::request<http::string_body> req;
        auto [rec, rn] = co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        if (rec) co_return;
        Received r;
        r.target = std::string(req.target());
        for (const auto& f : req) {
            std::string name(f.name_string());
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            r.headers[name] = std::string(f.value());
        }
        r.body = req.body();
        r.at = std::chrono::steady_clock::now();
        std::size_t n;
        {
            std::lock_guard lock(mutex_);
            n = received_.size();
            received_.push_back(std::move(r));
        }
        Answer a = script_ ? script_(n) : Answer{};
        if (a.delay.count() > 0) {
            asio::steady_timer t(io_, a.delay);
            (void)co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
        res.set(http::field::content_type, "text/plain");
        if (!a.retry_after.empty()) res.set(http::field::retry_after, a.retry_after);
        res.body() = a.body;
        res.keep_alive(false);
        res.prepare_payload();
        auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
        (void)wn;
        if (!wec && a.status >= 200 && a.status < 300) ++accepted_;
    }

    bool tls_;
    std::function<Answer(std::size_t)> script_;
    es::testing::CertificateBundle certificates_;
    asio::io_context io_;
    asio::ssl::context ssl_;
    asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<Received> received_;
    std::atomic<std::size_t> accepted_{0};
};

es::Report oom(std::uint64_t sequence, const std::string& task = "frequency-38") {
    es::Report r;
    r.type = es::ReportType::ANOMALY_OOMKILL;
    r.severity = es::Severity::error;
    r.sequence = sequence;
    r.timestamp = es::Clock::now();
    r.task_name = task;
    r.task_type = "frequency";
    r.message = "Task " + task + " ran out of memory (limit 1Gi) and was stopped.";
    r.details = {{"pod_name", task + "-pod"}, {"memory_limit", "1Gi"}, {"exit_code", 137}, {"attempts", 1}};
    return r;
}

/// Fast retries for tests.
kube::BackoffOptions fast_backoff() {
    kube::BackoffOptions b;
    b.initial = 50ms;
    b.cap = 200ms;
    b.jitter = 0;
    return b;
}

/// Runs `dispatcher` over `reports` (offered through a real report channel) until it has drained.
void deliver(al::AlertDispatcher& dispatcher, asio::io_context& io, const std::vector<es::Report>& reports) {
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    for (const auto& r : reports) channel.publish(r);
    channel.close();
    auto done = asio::co_spawn(io, dispatcher.run(std::move(sub)), asio::use_future);
    io.restart();
    io.run();
    done.get();
}

std::filesystem::path temp_dir(const std::string& name) {
    auto p = std::filesystem::temp_directory_path() / ("es-alerts-it-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
}

struct LogLines {
    std::vector<std::string> lines;
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view l) { lines.emplace_back(l); };
    }
    bool contains(const std::string& s) const {
        for (const auto& l : lines)
            if (l.find(s) != std::string::npos) return true;
        return false;
    }
};

} // namespace

TEST_CASE("alerts: webhook over verified HTTPS: 500 then success, signed, idempotent, recorded once",
          "[alerts][integration]") {
    Receiver rx(true, [](std::size_t n) { return n == 0 ? Answer{500, "try later"} : Answer{}; });
    const std::string secret_path = "/hooks/in/S3CR3T-PATH";
    asio::io_context io;
    auto ledger = std::make_shared<al::MemoryDeliveryLedger>();
    LogLines logs;
    al::AlertsConfig config{{al::SinkConfig{.name = "hook",
                                            .kind = al::SinkKind::webhook,
                                            .url = rx.url(secret_path),
                                            .hmac_key = "k3y",
                                            .ca_pem = rx.ca(),
                                            .group_window = 0ms,
                                            .max_attempts = 3,
                                            .timeout = 5s,
                                            .backoff = fast_backoff()}}};
    al::AlertDispatcher d(io.get_executor(), config, ledger,
                          {.context = {"wf/engine", "wf"}, .log = logs.sink()});
    deliver(d, io, {oom(1)});

    auto got = rx.received();
    REQUIRE(got.size() == 2);
    CHECK(rx.accepted() == 1);
    CHECK(got[0].body == got[1].body); // a retry sends the same bytes
    CHECK(got[1].target == secret_path);
    CHECK(got[1].headers["x-sentinel-signature"] == "sha256=" + al::hmac_sha256_hex("k3y", got[1].body));
    auto body = boost::json::parse(got[1].body).as_object();
    CHECK(got[1].headers["idempotency-key"] == std::string(body.at("idempotency_key").as_string()));
    auto key = std::string(body.at("alerts").at(0).at("idempotency_key").as_string());
    CHECK(key == al::alert_key(oom(1), "wf/engine"));
    CHECK(body.at("alerts").at(0).at("report").at("task_name") == "frequency-38");
    auto rec = ledger->find("hook", key);
    REQUIRE(rec);
    CHECK(rec->state == "sent");
    CHECK(rec->attempts == 2);
    CHECK(d.stats("hook").failed_attempts == 1);
    CHECK(d.stats("hook").messages_sent == 1);
    // The failure was logged, without the URL's secret path.
    CHECK(logs.contains("answered 500"));
    for (const auto& l : logs.lines) CHECK(l.find("S3CR3T") == std::string::npos);
}

TEST_CASE("alerts: Slack receives a burst as one Block Kit message, and at most one message per second",
          "[alerts][integration]") {
    Receiver rx(true);
    asio::io_context io;
    al::AlertsConfig config{{al::SinkConfig{.name = "slack",
                                            .kind = al::SinkKind::slack,
                                            .url = rx.url("/services/T0/B0/XYZ"),
                                            .ca_pem = rx.ca(),
                                            .group_window = 300ms,
                                            .max_group = 3,
                                            .min_interval = 1s,
                                            .backoff = fast_backoff()}}};
    al::AlertDispatcher d(io.get_executor(), config, std::make_shared<al::MemoryDeliveryLedger>(),
                          {.context = {"wf/engine", "wf"}});
    deliver(d, io, {oom(1, "a"), oom(2, "b"), oom(3, "c"), oom(4, "d")});
    auto got = rx.received();
    REQUIRE(got.size() == 2); // groups of at most three
    auto first = boost::json::parse(got[0].body).as_object();
    CHECK(std::string(first.at("text").as_string()).starts_with("3 alerts: ANOMALY_OOMKILL (error): Task a ran"));
    CHECK(first.at("blocks").as_array().size() == 5); // header, three sections, context
    CHECK(got[1].at - got[0].at >= 900ms);              // the sink's pace, one message per second
    CHECK(d.stats("slack").alerts_sent == 4);
}

TEST_CASE("alerts: a receiver too slow to answer is retried; one that never answers ends as a dead letter",
          "[alerts][integration]") {
    SECTION("slow once, then fine") {
        Receiver rx(true, [](std::size_t n) { return n == 0 ? Answer{200, "late", 1500ms} : Answer{}; });
        asio::io_context io;
        auto ledger = std::make_shared<al::MemoryDeliveryLedger>();
        al::AlertsConfig config{{al::SinkConfig{.name = "hook",
                                                .kind = al::SinkKind::webhook,
                                                .url = rx.url("/h"),
                                                .ca_pem = rx.ca(),
                                                .group_window = 0ms,
                                                .max_attempts = 3,
                                                .timeout = 400ms,
                                                .backoff = fast_backoff()}}};
        al::AlertDispatcher d(io.get_executor(), config, ledger, {.context = {"r", "ns"}});
        deliver(d, io, {oom(1)});
        CHECK(rx.count() == 2);
        auto rec = ledger->find("hook", al::alert_key(oom(1), "r"));
        REQUIRE(rec);
        CHECK(rec->state == "sent");
        CHECK(rec->attempts == 2);
    }
    SECTION("429 with Retry-After is honoured, then 503 until the last attempt: dead letter") {
        Receiver rx(true, [](std::size_t n) { return n == 0 ? Answer{429, "slow down", 0ms, "1"} : Answer{503, "down"}; });
        asio::io_context io;
        auto ledger = std::make_shared<al::MemoryDeliveryLedger>();
        LogLines logs;
        al::AlertsConfig config{{al::SinkConfig{.name = "hook",
                                                .kind = al::SinkKind::webhook,
                                                .url = rx.url("/h/SECRET"),
                                                .ca_pem = rx.ca(),
                                                .group_window = 0ms,
                                                .max_attempts = 3,
                                                .timeout = 2s,
                                                .backoff = fast_backoff()}}};
        al::AlertDispatcher d(io.get_executor(), config, ledger, {.context = {"r", "ns"}, .log = logs.sink()});
        deliver(d, io, {oom(1)});
        auto got = rx.received();
        REQUIRE(got.size() == 3);
        CHECK(got[1].at - got[0].at >= 900ms); // Retry-After: 1 beats the 50 ms backoff
        auto rec = ledger->find("hook", al::alert_key(oom(1), "r"));
        REQUIRE(rec);
        CHECK(rec->state == "dead");
        CHECK(rec->attempts == 3);
        CHECK(rec->last_error.find("answered 503") != std::string::npos);
        CHECK(rec->last_error.find("SECRET") == std::string::npos);
        CHECK(d.stats("hook").dead_letters == 1);
        CHECK(logs.contains("dead letter"));
    }
    SECTION("a certificate that does not verify is not trusted") {
        Receiver rx(true);
        asio::io_context io;
        auto ledger = std::make_shared<al::MemoryDeliveryLedger>();
        al::AlertsConfig config{{al::SinkConfig{.name = "hook",
                                                .kind = al::SinkKind::webhook,
                                                .url = rx.url("/h"),
                                                .group_window = 0ms,
                                                .max_attempts = 1,
                                                .timeout = 2s}}}; // no ca_pem: the test CA is unknown
        al::AlertDispatcher d(io.get_executor(), config, ledger, {.context = {"r", "ns"}});
        deliver(d, io, {oom(1)});
        CHECK(rx.accepted() == 0);
        auto rec = ledger->find("hook", al::alert_key(oom(1), "r"));
        REQUIRE(rec);
        CHECK(rec->state == "dead");
        CHECK(rec->last_error.find("does not verify") != std::string::npos);
    }
}

TEST_CASE("alerts: exactly once across a restart of the dispatcher with the JSON-file ledger",
          "[alerts][integration]") {
    Receiver hook(true);
    Receiver slack(true);
    auto dir = temp_dir("restart");
    auto ledger_path = dir / "deliveries.json";
    auto config = [&] {
        return al::AlertsConfig{{al::SinkConfig{.name = "hook",
                                                .kind = al::SinkKind::webhook,
                                                .url = hook.url("/h"),
                                                .hmac_key = "k",
                                                .ca_pem = hook.ca(),
                                                .group_window = 0ms,
                                                .backoff = fast_backoff()},
                                 al::SinkConfig{.name = "slack",
                                                .kind = al::SinkKind::slack,
                                                .url = slack.url("/services/x"),
                                                .ca_pem = slack.ca(),
                                                .group_window = 0ms,
                                                .backoff = fast_backoff()}}};
    };
    {
        asio::io_context io;
        al::AlertDispatcher d(io.get_executor(), config(), std::make_shared<al::JsonFileDeliveryLedger>(ledger_path),
                              {.context = {"wf/engine", "wf"}});
        deliver(d, io, {oom(7)});
    }
    REQUIRE(hook.accepted() == 1);
    REQUIRE(slack.accepted() == 1);
    {
        // A restarted sentinel reports the same OOM kill again (new sequence number, new time).
        asio::io_context io;
        al::AlertDispatcher d(io.get_executor(), config(), std::make_shared<al::JsonFileDeliveryLedger>(ledger_path),
                              {.context = {"wf/engine", "wf"}});
        deliver(d, io, {oom(3), oom(4, "frequency-39")});
        CHECK(d.stats("hook").duplicates == 1);
        CHECK(d.stats("slack").duplicates == 1);
    }
    CHECK(hook.accepted() == 2); // only frequency-39 is new
    CHECK(slack.accepted() == 2);
    auto last = boost::json::parse(hook.received().back().body);
    CHECK(last.at("alerts").as_array().size() == 1);
    CHECK(last.at("alerts").at(0).at("report").at("task_name") == "frequency-39");
    // The ledger file holds no secret.
    std::ifstream in(ledger_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.find("/services/x") == std::string::npos);
    CHECK(text.find("\"state\":\"sent\"") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("alerts: a delivery cut short by shutdown stays failed in the ledger and resumes after a restart",
          "[alerts][integration]") {
    Receiver rx(true, [](std::size_t n) { return n == 0 ? Answer{503, "down"} : Answer{}; });
    auto dir = temp_dir("resume");
    auto ledger_path = dir / "deliveries.json";
    auto backoff = fast_backoff();
    backoff.initial = 10s; // the retry would come long after the shutdown grace
    backoff.cap = 10s;
    auto config = al::AlertsConfig{{al::SinkConfig{.name = "hook",
                                                   .kind = al::SinkKind::webhook,
                                                   .url = rx.url("/h"),
                                                   .ca_pem = rx.ca(),
                                                   .group_window = 0ms,
                                                   .max_attempts = 3,
                                                   .backoff = backoff}}};
    const auto key = al::alert_key(oom(1), "r");
    {
        asio::io_context io;
        LogLines logs;
        al::AlertDispatcher d(io.get_executor(), config, std::make_shared<al::JsonFileDeliveryLedger>(ledger_path),
                              {.context = {"r", "ns"}, .log = logs.sink(), .shutdown_grace = 300ms});
        auto t0 = std::chrono::steady_clock::now();
        deliver(d, io, {oom(1)});
        CHECK(std::chrono::steady_clock::now() - t0 < 5s); // the grace, not the 10 s backoff
        CHECK(logs.contains("undelivered"));
    }
    CHECK(rx.count() == 1);
    {
        al::JsonFileDeliveryLedger ledger(ledger_path);
        auto rec = ledger.find("hook", key);
        REQUIRE(rec);
        CHECK(rec->state == "failed");
        CHECK(rec->attempts == 1);
    }
    {
        asio::io_context io;
        auto ledger = std::make_shared<al::JsonFileDeliveryLedger>(ledger_path);
        al::AlertDispatcher d(io.get_executor(), config, ledger, {.context = {"r", "ns"}});
        deliver(d, io, {oom(2)}); // the same finding, reported again after the restart
        auto rec = ledger->find("hook", key);
        REQUIRE(rec);
        CHECK(rec->state == "sent");
        CHECK(rec->attempts == 2); // counted on from the first process
    }
    CHECK(rx.accepted() == 1);
    std::filesystem::remove_all(dir);
}

TEST_CASE("alerts: a full sink queue drops and counts, and never blocks the report path", "[alerts][integration]") {
    Receiver rx(true, [](std::size_t) { return Answer{200, "ok", 300ms}; });
    asio::io_context io;
    al::AlertsConfig config{{al::SinkConfig{.name = "hook",
                                            .kind = al::SinkKind::webhook,
                                            .url = rx.url("/h"),
                                            .ca_pem = rx.ca(),
                                            .cooldown = 0ms,
                                            .group_window = 0ms,
                                            .max_group = 1,
                                            .queue_capacity = 3}}};
    LogLines logs;
    al::AlertDispatcher d(io.get_executor(), config, std::make_shared<al::MemoryDeliveryLedger>(),
                          {.context = {"r", "ns"}, .log = logs.sink()});
    std::size_t queued = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i) queued += d.offer(oom(static_cast<std::uint64_t>(i), "t" + std::to_string(i)));
    auto offered_in = std::chrono::steady_clock::now() - t0;
    CHECK(queued == 3);
    CHECK(d.stats("hook").overflowed == 7);
    CHECK(logs.contains("queue full"));
    CHECK(offered_in < 1s); // offer() returned without delivering anything
    auto done = asio::co_spawn(io, d.drain(), asio::use_future);
    io.run();
    done.get();
    CHECK(rx.accepted() == 3);
}

// ------------------------------------------------------------------------------------------------ Alertmanager

namespace {

unsigned short free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

/// A child process, killed (SIGTERM, then SIGKILL) and reaped when destroyed; stdout and stderr go to `log`.
class Child {
public:
    Child(std::vector<std::string> argv, const std::filesystem::path& log) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        std::vector<std::string> env_strings{"PYTHONUNBUFFERED=1", "PATH=/usr/bin:/bin"};
        std::vector<char*> env;
        for (auto& e : env_strings) env.push_back(e.data());
        env.push_back(nullptr);
        if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), env.data()) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Child() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 50; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(100ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    bool running() {
        if (pid_ <= 0) return false;
        return ::waitpid(pid_, nullptr, WNOHANG) == 0;
    }

private:
    pid_t pid_ = -1;
};

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// GET http://127.0.0.1:port/path; the status, 0 when nothing answers.
int http_get_status(unsigned short port, const std::string& path) {
    try {
        asio::io_context io;
        asio::ip::tcp::socket s(io);
        s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        http::request<http::empty_body> req{http::verb::get, path, 11};
        req.set(http::field::host, "127.0.0.1");
        http::write(s, req);
        boost::beast::flat_buffer b;
        http::response<http::string_body> res;
        http::read(s, b, res);
        return static_cast<int>(res.result_int());
    } catch (const std::exception&) {
        return 0;
    }
}

bool wait_for(const std::function<bool()>& condition, std::chrono::seconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(100ms);
    }
    return condition();
}

} // namespace

TEST_CASE("alerts: an OOM report reaches Alertmanager, its webhook receiver and an e-mail inbox; a stall resolves",
          "[alerts][integration][alertmanager]") {
    const std::string am_binary = "/usr/bin/prometheus-alertmanager";
    const std::string python = "/usr/bin/python3";
    if (::access(am_binary.c_str(), X_OK) != 0 || ::access(python.c_str(), X_OK) != 0 ||
        std::system("/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1") != 0) {
        WARN("SKIP: prometheus-alertmanager or python3-aiosmtpd is not installed "
             "(apt-get install prometheus-alertmanager python3-aiosmtpd)");
        SUCCEED("skipped");
        return;
    }
    auto dir = temp_dir("alertmanager");
    Receiver am_webhook(false); // Alertmanager's own webhook notifications
    const unsigned short smtp_port = free_port();
    Child smtp({python, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + std::to_string(smtp_port)}, dir / "smtp.log");
    const unsigned short am_port = free_port();
    {
        std::ofstream cfg(dir / "alertmanager.yml");
        cfg << "route:\n"
               "  receiver: team\n"
               "  group_by: [alertname, task]\n"
               "  group_wait: 1s\n"
               "  group_interval: 1s\n"
               "  repeat_interval: 1h\n"
               "receivers:\n"
               "  - name: team\n"
               "    webhook_configs:\n"
               "      - url: " << am_webhook.url("/am") << "\n"
               "        send_resolved: true\n"
               "    email_configs:\n"
               "      - to: oncall@example.org\n"
               "        from: sentinel@example.org\n"
               "        smarthost: 127.0.0.1:" << smtp_port << "\n"
               "        require_tls: false\n"
               "        headers:\n"
               "          Subject: 'sentinel {{ .CommonLabels.alertname }} {{ .CommonLabels.task }}'\n"
               "        html: ''\n"
               "        text: '{{ range .Alerts }}{{ .Annotations.summary }} {{ end }}'\n";
    }
    Child am({am_binary, "--config.file=" + (dir / "alertmanager.yml").string(),
              "--storage.path=" + (dir / "data").string(), "--web.listen-address=127.0.0.1:" + std::to_string(am_port),
              "--cluster.listen-address="},
             dir / "alertmanager.log");
    if (!wait_for([&] { return http_get_status(am_port, "/-/ready") == 200; }, 20s)) {
        if (!am.running()) {
            WARN("SKIP: prometheus-alertmanager cannot start here: " << read_file(dir / "alertmanager.log"));
            SUCCEED("skipped");
            return;
        }
        FAIL("Alertmanager did not become ready: " << read_file(dir / "alertmanager.log"));
    }
    REQUIRE(smtp.running());

    asio::io_context io;
    auto ledger = std::make_shared<al::MemoryDeliveryLedger>();
    al::AlertsConfig config{{al::SinkConfig{.name = "am",
                                            .kind = al::SinkKind::alertmanager,
                                            .url = "http://127.0.0.1:" + std::to_string(am_port),
                                            .min_severity = es::Severity::warning,
                                            .group_window = 200ms,
                                            .backoff = fast_backoff(),
                                            .generator_url = "http://sentinel.example/run"}}};
    al::AlertDispatcher d(io.get_executor(), config, ledger, {.context = {"wf/engine", "wf"}});

    es::Report stall;
    stall.type = es::ReportType::ANOMALY_STALL;
    stall.severity = es::Severity::warning;
    stall.timestamp = es::Clock::now();
    stall.task_name = "mAdd-1";
    stall.task_type = "mAdd";
    stall.message = "Task mAdd-1 has made no progress for 10 minutes.";
    stall.details = {{"tier", "LOW"}, {"resolved", false}};
    deliver(d, io, {oom(1), stall});
    CHECK(d.stats("am").messages_sent == 1);
    CHECK(d.stats("am").alerts_sent == 2);

    // Alertmanager's webhook notification, then the e-mail.
    auto notification_for = [&](const std::string& alertname, const std::string& status) -> std::optional<boost::json::value> {
        for (const auto& r : am_webhook.received()) {
            auto v = boost::json::parse(r.body);
            if (v.at("commonLabels").as_object().if_contains("alertname") &&
                v.at("commonLabels").at("alertname") == alertname.c_str() && v.at("status") == status.c_str())
                return v;
        }
        return std::nullopt;
    };
    REQUIRE(wait_for([&] { return notification_for("Sentinel_ANOMALY_OOMKILL", "firing").has_value(); }, 30s));
    auto n = *notification_for("Sentinel_ANOMALY_OOMKILL", "firing");
    auto labels = n.at("alerts").at(0).at("labels");
    CHECK(labels.at("run") == "wf/engine");
    CHECK(labels.at("namespace") == "wf");
    CHECK(labels.at("task") == "frequency-38");
    CHECK(labels.at("type") == "ANOMALY_OOMKILL");
    CHECK(labels.at("severity") == "error");
    CHECK(n.at("alerts").at(0).at("annotations").at("summary") ==
          "Task frequency-38 ran out of memory (limit 1Gi) and was stopped.");
    CHECK(n.at("alerts").at(0).at("generatorURL") == "http://sentinel.example/run");

    REQUIRE(wait_for([&] { return read_file(dir / "smtp.log").find("Sentinel_ANOMALY_OOMKILL") != std::string::npos; },
                     30s));
    auto mail = read_file(dir / "smtp.log");
    CHECK(mail.find("Subject: sentinel Sentinel_ANOMALY_OOMKILL frequency-38") != std::string::npos);
    CHECK(mail.find("oncall@example.org") != std::string::npos);
    CHECK(mail.find("ran out of memory") != std::string::npos);

    // The stall resolves: Alertmanager tells its receivers so.
    REQUIRE(wait_for([&] { return notification_for("Sentinel_ANOMALY_STALL", "firing").has_value(); }, 30s));
    es::Report resolved = stall;
    resolved.severity = es::Severity::info;
    resolved.timestamp = es::Clock::now();
    resolved.message = "Task mAdd-1 makes progress again.";
    resolved.details = {{"tier", "RESOLVED"}, {"resolved", true}};
    deliver(d, io, {resolved});
    CHECK(d.stats("am").messages_sent == 2);
    REQUIRE(wait_for([&] { return notification_for("Sentinel_ANOMALY_STALL", "resolved").has_value(); }, 30s));

    // A restarted sentinel (a new dispatcher on the same ledger) reports the OOM kill again: nothing is sent.
    {
        asio::io_context io2;
        al::AlertDispatcher again(io2.get_executor(), config, ledger, {.context = {"wf/engine", "wf"}});
        deliver(again, io2, {oom(9)});
        CHECK(again.stats("am").duplicates == 1);
        CHECK(again.stats("am").messages_sent == 0);
    }
    std::size_t oom_notifications = 0;
    for (const auto& r : am_webhook.received())
        if (r.body.find("Sentinel_ANOMALY_OOMKILL") != std::string::npos) ++oom_notifications;
    CHECK(oom_notifications == 1);
    std::filesystem::remove_all(dir);
}

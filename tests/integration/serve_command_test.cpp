// `execution-sentinel serve` end to end: the program run as a process against a FakeCluster playing scenarios in
// several namespaces. Runs are discovered from their engine pods (context from a labelled ConfigMap, or inferred),
// watched to their end (completion, engine deletion) with at most `runs.max_active` at once, shown by the HTTP API, streamed live as server-sent events,
// recorded in a SQLite history store; the configuration is checked at start (exit 2 naming file, line, field).
// Runs registered by a client (POST /api/v1/runs with a bearer token) over HTTPS are watched the same way.
#include <execution_sentinel/history/baselines.hpp>
#include <execution_sentinel/history/open.hpp>
#include <execution_sentinel/testing/certificates.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include "catch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <sstream>
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

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace es = execution_sentinel::testing;
using namespace std::chrono_literals;

const std::string serve_binary = EXECUTION_SENTINEL_BINARY_DIR "/tools/execution-sentinel/execution-sentinel";

struct ServeDir {
    fs::path path;
    ServeDir() {
        std::string tmpl = (fs::temp_directory_path() / "es-serve-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~ServeDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    void write(const std::string& name, const std::string& text) const { std::ofstream(file(name)) << text; }
    std::string read(const std::string& name) const {
        std::ifstream in(file(name));
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
};

struct CliResult {
    int status = -1;
    std::string out, err;
};

/// Runs the program to its end with `args` (a shell command line), in `dir`.
CliResult run_serve_cli(const ServeDir& dir, const std::string& args) {
    const std::string line = "cd " + dir.path.string() + " && " + serve_binary + " " + args + " >" + dir.file("cli.out") +
                             " 2>" + dir.file("cli.err") + " </dev/null";
    CliResult r;
    const int raw = std::system(line.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.out = dir.read("cli.out");
    r.err = dir.read("cli.err");
    return r;
}

/// The program running in the background, its stdout and stderr in files; SIGKILLed if the test ends early.
class ServeProcess {
public:
    ServeProcess(const ServeDir& dir, std::vector<std::string> args) : dir_(dir) {
        args.insert(args.begin(), serve_binary);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, dir.file("serve.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&actions, 2, dir.file("serve.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int rc = ::posix_spawn(&pid_, serve_binary.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(rc == 0);
    }
    ~ServeProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    ServeProcess(const ServeProcess&) = delete;
    ServeProcess& operator=(const ServeProcess&) = delete;

    /// The port from the line "listening on http://127.0.0.1:PORT" (https:// with TLS); 0 when it did not come
    /// within `limit`.
    unsigned short wait_port(std::chrono::milliseconds limit = 30s) {
        const auto until = std::chrono::steady_clock::now() + limit;
        const std::regex line(R"(listening on https?://127\.0\.0\.1:([0-9]+))");
        while (std::chrono::steady_clock::now() < until) {
            std::smatch m;
            const auto err = stderr_text();
            if (std::regex_search(err, m, line)) return static_cast<unsigned short>(std::stoi(m[1].str()));
            if (exited()) return 0;
            std::this_thread::sleep_for(50ms);
        }
        return 0;
    }
    std::string stderr_text() const { return dir_.read("serve.err"); }
    int raw_status() const { return status_; }

    bool exited() {
        if (pid_ <= 0) return true;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            status_ = status;
            pid_ = -1;
            return true;
        }
        return false;
    }
    /// SIGTERM, then the exit status (-1 when it did not exit within `limit`).
    int stop(std::chrono::milliseconds limit = 30s) {
        if (pid_ > 0) ::kill(pid_, SIGTERM);
        const auto until = std::chrono::steady_clock::now() + limit;
        while (!exited() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
        if (!exited()) return -1;
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    }

private:
    const ServeDir& dir_;
    pid_t pid_ = -1;
    int status_ = 0;
};

int connect_local(unsigned short port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

struct HttpAnswer {
    int status = 0;
    std::string head, body;
    std::string error; ///< why there is no answer (HTTPS requests)
    boost::json::value json() const { return boost::json::parse(body); }
};

/// One HTTP/1.1 request on its own connection (Connection: close), read to the end.
HttpAnswer http_get(unsigned short port, const std::string& target, const std::string& extra_headers = "",
                    const std::string& method = "GET", const std::string& body = "") {
    HttpAnswer a;
    int fd = connect_local(port);
    if (fd < 0) return a;
    const std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                                extra_headers + (body.empty() ? std::string() : "Content-Length: " + std::to_string(body.size()) + "\r\n") +
                                "\r\n" + body;
    (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string raw;
    char buf[65536];
    for (;;) {
        auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || end == std::string::npos) return a;
    a.status = std::stoi(raw.substr(9, 3));
    a.head = raw.substr(0, end);
    a.body = raw.substr(end + 4);
    return a;
}

/// One HTTPS request to 127.0.0.1:`port`, the server's certificate verified against `ca_pem` (and its IP address),
/// Connection: close. `headers` are added as given. status 0 (and `error`) when TLS or HTTP failed.
HttpAnswer https_request(unsigned short port, const std::string& ca_pem, const std::string& method,
                         const std::string& target, const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& body = "") {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    HttpAnswer a;
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(ca_pem));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    asio::ssl::stream<asio::ip::tcp::socket> stream(io, ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.body() = body;
    req.prepare_payload();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await stream.next_layer().async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
            co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            co_await http::async_write(stream, req, asio::use_awaitable);
            beast::flat_buffer buffer;
            http::response_parser<http::string_body> parser;
            parser.body_limit(64 * 1024 * 1024);
            co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
            const auto& res = parser.get();
            a.status = static_cast<int>(res.result_int());
            for (const auto& field : res) a.head += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
            a.body = res.body();
        },
        [&](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                a.error = x.what();
            }
        });
    io.run_for(15s);
    if (a.status == 0 && a.error.empty()) a.error = "no answer within 15 s";
    return a;
}

/// Polls `condition` every 100 ms until it holds or `limit` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(100ms);
    }
    return condition();
}

/// The run of namespace `ns` in GET /api/v1/runs, or null.
boost::json::value run_in(const boost::json::value& runs, const std::string& ns) {
    for (const auto& r : runs.at("runs").as_array())
        if (r.at("namespace") == ns.c_str()) return r;
    return nullptr;
}

/// Whether serve on `port` lists a run of namespace `ns` that is no longer watched.
bool run_finished(unsigned short port, const std::string& ns) {
    auto runs = http_get(port, "/api/v1/runs");
    if (runs.status != 200) return false;
    auto r = run_in(runs.json(), ns);
    return !r.is_null() && r.at("state") != "watching";
}

es::Scenario small_scenario(const std::string& ns, std::uint64_t seed, bool completes, double time_scale = 0.02) {
    std::string text = R"({
        "name": "serve", "namespace": ")" + ns + R"(", "time_scale": )" + std::to_string(time_scale) +
                       R"(, "seed": )" + std::to_string(seed) + R"(,
        "engine": {"at": 0},
        "tasks": [
          {"type": "individuals", "proc_id": 1, "start": 10, "pending": 5, "duration": 40},
          {"type": "individuals", "proc_id": 2, "start": 10, "pending": 5, "duration": 30, "outcome": "oom",
           "backoff_limit": 0, "memory_limit": "1Gi"},
          {"type": "sifting", "proc_id": 3, "start": 10, "pending": 5, "duration": 20}
        ])";
    if (completes) text += R"(, "completion": {"at": 120, "exit_code": 0})";
    text += "}";
    return es::Scenario::parse(text);
}

bool serve_built() {
    if (fs::exists(serve_binary)) return true;
    WARN("SKIP: the execution-sentinel program is not built");
    SUCCEED("skipped (the warning above says why)");
    return false;
}

} // namespace

TEST_CASE("serve --print-default-config prints a configuration --check-config accepts", "[serve][cli]") {
    if (!serve_built()) return;
    ServeDir dir;
    auto printed = run_serve_cli(dir, "serve --print-default-config");
    REQUIRE(printed.status == 0);
    CHECK(printed.out.find("engine_selector: component=hyperflow-engine") != std::string::npos);
    dir.write("default.yaml", printed.out);
    auto checked = run_serve_cli(dir, "serve --config default.yaml --check-config");
    CHECK(checked.status == 0);
    CHECK(checked.err.find("default.yaml is valid") != std::string::npos);
}

TEST_CASE("serve refuses an invalid configuration with the file, the line and the field (exit 2)", "[serve][cli]") {
    if (!serve_built()) return;
    ServeDir dir;
    dir.write("bad.yaml", "namespaces: [wf]\nthresholds:\n  poll_interval: 1s\n  timeout: soon\n");
    auto r = run_serve_cli(dir, "serve --config bad.yaml");
    CHECK(r.status == 2);
    CHECK(r.err.find("bad.yaml:4: thresholds.timeout: expected a duration") != std::string::npos);

    dir.write("alerts.yaml", "sinks:\n  - name: x\n    kind: pager\n    url: http://127.0.0.1:1/\n");
    dir.write("sinks.yaml", "sinks:\n  alerts: alerts.yaml\n");
    auto s = run_serve_cli(dir, "serve --config sinks.yaml --check-config");
    CHECK(s.status == 2);
    CHECK(s.err.find("sinks.yaml: sinks.alerts: alerts.yaml:2: sinks[0].kind: expected alertmanager") != std::string::npos);

    auto missing = run_serve_cli(dir, "serve --config nowhere.yaml");
    CHECK(missing.status == 2);
    CHECK(missing.err.find("nowhere.yaml:?: (file): cannot be read") != std::string::npos);

    auto none = run_serve_cli(dir, "serve");
    CHECK(none.status == 2);
    CHECK(none.err.find("--config is required") != std::string::npos);
}

TEST_CASE("serve discovers runs in several namespaces, serves them over HTTP and records them", "[serve][integration]") {
    if (!serve_built()) return;
    ServeDir dir;
    es::FakeClusterOptions options;
    options.default_namespace = "wf-a";
    es::FakeCluster cluster(options);
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    dir.write("sentinel.yaml", "namespaces: [wf-a, wf-b, wf-c]\n"
                               "thresholds:\n  poll_interval: 200ms\n  timeout: 5m\n  metrics_interval: 0\n"
                               "store:\n  history: sqlite:" + dir.file("history.db") + "\n"
                               "http:\n  listen: 127.0.0.1:0\n"
                               "runs:\n  max_active: 2\n"
                               "kubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n");

    ServeProcess serve(dir, {"serve", "--config", dir.file("sentinel.yaml")});
    const auto port = serve.wait_port();
    INFO("serve's stderr:\n" << serve.stderr_text());
    REQUIRE(port != 0);
    REQUIRE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s));
    CHECK(http_get(port, "/healthz").status == 200);

    // A live stream of every run's reports, opened before the runs start.
    const int events = connect_local(port);
    REQUIRE(events >= 0);
    const std::string subscribe = "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    (void)::send(events, subscribe.data(), subscribe.size(), MSG_NOSIGNAL);

    // wf-a: the context comes from a labelled ConfigMap (its inventory: 3 tasks); wf-b: inferred; wf-c: its engine
    // pod is deleted before the run completes.
    auto a = small_scenario("wf-a", 11, true);
    auto b = small_scenario("wf-b", 12, true);
    auto c = small_scenario("wf-c", 13, false);
    boost::json::object cm;
    cm["metadata"] = {{"name", "run-context"}, {"labels", {{"execution-sentinel/context", "true"}}}};
    cm["data"] = {{"context.json", a.context_json()}};
    cluster.create("configmaps", "wf-a", cm);
    es::ScenarioRunner ra(cluster, a), rb(cluster, b), rc(cluster, c);
    ra.start();
    rb.start();
    rc.start();

    auto finished = [&](const std::string& ns) { return run_finished(port, ns); };
    REQUIRE(eventually([&] { return finished("wf-a") && finished("wf-b"); }, 60s));
    REQUIRE(eventually([&] { return !rc.engine_pod_name().empty(); }, 10s));
    const auto engine_c = rc.engine_pod_name();
    REQUIRE(eventually([&] { return !run_in(http_get(port, "/api/v1/runs").json(), "wf-c").is_null(); }, 20s));
    cluster.remove("pods", "wf-c", engine_c);
    REQUIRE(eventually([&] { return finished("wf-c"); }, 20s));

    auto runs = http_get(port, "/api/v1/runs").json();
    auto run_a = run_in(runs, "wf-a");
    auto run_b = run_in(runs, "wf-b");
    auto run_c = run_in(runs, "wf-c");
    CHECK(run_a.at("state") == "succeeded");
    CHECK(run_a.at("context_source") == "configmap/run-context");
    CHECK(run_a.at("total") == 3);
    CHECK(run_a.at("anomalies").as_int64() >= 1); // the OOM-killed task
    CHECK(run_b.at("state") == "succeeded");
    CHECK(run_b.at("context_source") == "inferred");
    CHECK(run_c.at("state") == "engine_deleted");
    CHECK(run_c.at("run") == engine_c.c_str());

    // One run's view, its reports in pages, and errors for hostile or unknown paths.
    const std::string path_a = "/api/v1/runs/wf-a/" + std::string(run_a.at("run").as_string());
    auto detail = http_get(port, path_a);
    REQUIRE(detail.status == 200);
    auto dj = detail.json();
    CHECK(dj.at("view").at("phases").as_array().size() == 2);
    CHECK(dj.at("summary").at("exit_code") == 0);
    CHECK(dj.at("context").at("task_inventory").as_array().size() == 3);
    auto first = http_get(port, path_a + "/reports?limit=2");
    REQUIRE(first.status == 200);
    auto fj = first.json();
    REQUIRE(fj.at("reports").as_array().size() == 2);
    REQUIRE(fj.as_object().contains("next_after"));
    auto after = fj.at("next_after").as_int64();
    auto second = http_get(port, path_a + "/reports?limit=1000&after=" + std::to_string(after)).json();
    // The OOM-killed task is reported as an anomaly (ANOMALY_OOMKILL, and ANOMALY_TASK_FAILED once it failed for
    // good), the end as COMPLETION.
    bool anomaly = false, completion = false;
    auto is_anomaly = [](const boost::json::value& r) { return r.at("type").as_string().starts_with("ANOMALY_"); };
    for (const auto& r : fj.at("reports").as_array()) anomaly = anomaly || is_anomaly(r);
    for (const auto& r : second.at("reports").as_array()) {
        CHECK(r.at("sequence").as_int64() > after);
        anomaly = anomaly || is_anomaly(r);
        completion = completion || r.at("type") == "COMPLETION";
    }
    CHECK_FALSE(second.as_object().contains("next_after"));
    CHECK(anomaly);
    CHECK(completion);
    CHECK(http_get(port, "/api/v1/runs/Not_A_Namespace/x").status == 400);
    CHECK(http_get(port, "/api/v1/runs/wf-a/no-such-run").status == 404);
    CHECK(http_get(port, path_a + "/reports?limit=abc").status == 400);
    CHECK(http_get(port, path_a + "/reports?limit=0").status == 400);
    CHECK(http_get(port, "/api/v1/runs/wf-a/../../etc").status == 404);

    auto stats = http_get(port, "/api/v1/stats").json();
    CHECK(stats.at("runs_started") == 3);
    CHECK(stats.at("runs_finished") == 3);
    CHECK(stats.at("outcomes").at("succeeded") == 2);
    CHECK(stats.at("runs_waiting") == 0);
    // Three engine pods appeared at once with room for two runs: the third waited for a slot, then was watched.
    CHECK(serve.stderr_text().find("waits: 2 runs are watched already") != std::string::npos);
    auto metrics = http_get(port, "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("execution_sentinel_runs_finished_total") != std::string::npos);
    CHECK(metrics.body.find("execution_sentinel_reports_total{type=\"COMPLETION\"") != std::string::npos);
    CHECK(metrics.body.find("execution_sentinel_reports_total{type=\"ANOMALY_TASK_FAILED\"") != std::string::npos);
    if (std::system("command -v promtool >/dev/null 2>&1") == 0) {
        dir.write("metrics.txt", metrics.body);
        const std::string check = "promtool check metrics < " + dir.file("metrics.txt") + " >" + dir.file("promtool.out") +
                                  " 2>&1";
        const int raw = std::system(check.c_str());
        INFO("promtool: " << dir.read("promtool.out"));
        CHECK((WIFEXITED(raw) && WEXITSTATUS(raw) == 0));
    } else {
        WARN("SKIP: promtool is not installed; /metrics of serve not checked by it");
    }
    // /readyz tells the shared watches of each namespace (listed, streaming, the runs they feed).
    auto ready = http_get(port, "/readyz");
    CHECK(ready.status == 200);
    {
        bool watches = false;
        const auto rj = ready.json();
        for (const auto& c : rj.at("checks").as_array()) {
            if (c.at("name") != "watches") continue;
            watches = true;
            CHECK(c.at("ready") == true);
            const std::string msg(c.at("message").as_string());
            INFO(msg);
            CHECK(msg.find("wf-a pods: listed, streaming") != std::string::npos);
            CHECK(msg.find("wf-c events: listed") != std::string::npos);
        }
        CHECK(watches);
    }
    // A failed call and dropped watches are counted: the API errors by code, the watch restarts by resource.
    cluster.fail_next_requests(1, 503);
    cluster.reset_watches();
    CHECK(eventually([&] {
        auto m = http_get(port, "/metrics").body;
        return m.find("execution_sentinel_kube_api_errors_total{code=\"503\"} 1") != std::string::npos &&
               m.find("execution_sentinel_watch_restarts_total{resource=\"pods\"") != std::string::npos &&
               m.find("execution_sentinel_watch_restarts_total{resource=\"jobs\"") != std::string::npos;
    }, 20s));
    auto page = http_get(port, "/");
    CHECK(page.status == 200);
    CHECK(page.head.find("text/html") != std::string::npos);
    CHECK(page.body.find("new EventSource(\"/api/v1/events\")") != std::string::npos);

    // The live stream carried the reports as they came, with their run.
    std::string streamed;
    char buf[65536];
    pollfd pfd{events, POLLIN, 0};
    while (::poll(&pfd, 1, 200) > 0) {
        auto n = ::recv(events, buf, sizeof buf, 0);
        if (n <= 0) break;
        streamed.append(buf, static_cast<std::size_t>(n));
    }
    ::close(events);
    CHECK(streamed.find("text/event-stream") != std::string::npos);
    CHECK(streamed.find("event: report") != std::string::npos);
    CHECK(streamed.find("\"type\":\"ANOMALY_") != std::string::npos);
    CHECK(streamed.find("\"type\":\"COMPLETION\"") != std::string::npos);
    CHECK(streamed.find("\"run\":\"wf-b/") != std::string::npos);

    CHECK(serve.stop() == 0);

    // The history store has every run, with its outcome.
    auto history = run_serve_cli(dir, "history --store sqlite:" + dir.file("history.db") + " runs --output json");
    REQUIRE(history.status == 0);
    auto hj = boost::json::parse(history.out).at("runs").as_array();
    CHECK(hj.size() == 3);
    int succeeded = 0;
    for (const auto& r : hj) succeeded += r.at("outcome") == "succeeded" ? 1 : 0;
    CHECK(succeeded == 2);
}

TEST_CASE("serve learns task durations from the runs its history store recorded", "[serve][integration]") {
    if (!serve_built()) return;
    ServeDir dir;
    es::FakeClusterOptions options;
    options.default_namespace = "wf-a";
    es::FakeCluster cluster(options);
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    const std::string store_address = "sqlite:" + dir.file("history.db");
    dir.write("sentinel.yaml", "namespaces: [wf-a, wf-b]\n"
                               "thresholds:\n  poll_interval: 200ms\n  timeout: 5m\n  metrics_interval: 0\n"
                               "  baseline_min_samples: 1\n"
                               "store:\n  history: " + store_address + "\n"
                               "http:\n  listen: 127.0.0.1:0\n"
                               "kubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n");
    ServeProcess serve(dir, {"serve", "--config", dir.file("sentinel.yaml")});
    const auto port = serve.wait_port();
    INFO("serve's stderr:\n" << serve.stderr_text());
    REQUIRE(port != 0);
    auto finished = [&](const std::string& ns) { return run_finished(port, ns); };

    // A first run, recorded: nothing learned yet when it starts. (Its tasks run for seconds: durations are
    // measured from the pods' timestamps, which have whole seconds.)
    es::ScenarioRunner first(cluster, small_scenario("wf-a", 31, true, 0.1));
    first.start();
    REQUIRE(eventually([&] { return finished("wf-a"); }, 60s));
    CHECK(serve.stderr_text().find("learned durations") == std::string::npos);
    auto store = execution_sentinel::history::open_store(execution_sentinel::history::parse_store_location(store_address));
    execution_sentinel::BaselineOptions learn;
    learn.min_samples = 1;
    REQUIRE(eventually([&] { return execution_sentinel::history::load_baselines(*store, "", learn).size() == 2; }, 20s));

    // The next run starts with the durations of the first one's task types
    // (individuals, sifting): its first ETA, made while its first tasks run and before any of them finished,
    // rests on them.
    es::ScenarioRunner second(cluster, small_scenario("wf-b", 32, true, 0.1));
    second.start();
    REQUIRE(eventually([&] { return finished("wf-b"); }, 60s));
    CHECK(serve.stderr_text().find("history: learned durations of 2 task types from past runs") != std::string::npos);
    auto run_b = run_in(http_get(port, "/api/v1/runs").json(), "wf-b");
    REQUIRE(!run_b.is_null());
    auto detail = http_get(port, "/api/v1/runs/wf-b/" + std::string(run_b.at("run").as_string()));
    REQUIRE(detail.status == 200);
    const auto summary = detail.json().at("summary");
    INFO(boost::json::serialize(summary));
    CHECK(summary.at("estimate_basis") == "history");
    CHECK(serve.stop() == 0);
}

TEST_CASE("deploy/ manifests are accepted by kubectl", "[serve][deploy]") {
    if (std::system("command -v kubectl >/dev/null 2>&1") != 0) {
        WARN("SKIP: kubectl is not installed");
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    // `kubectl apply --dry-run=client` needs an API server for its discovery; the local mode reads and decodes
    // every manifest with kubectl's own scheme (an unknown kind or a malformed document fails) without one.
    ServeDir dir;
    const std::string deploy = std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/deploy";
    const std::string line = "kubectl annotate --local --dry-run=client -o name -f " + deploy + " checked=true >" +
                             dir.file("k.out") + " 2>" + dir.file("k.err");
    const int raw = std::system(line.c_str());
    INFO(dir.read("k.err"));
    REQUIRE((WIFEXITED(raw) && WEXITSTATUS(raw) == 0));
    const auto out = dir.read("k.out");
    for (const auto* object : {"deployment.apps/execution-sentinel", "service/execution-sentinel",
                               "serviceaccount/execution-sentinel", "configmap/execution-sentinel-config",
                               "clusterrole.rbac.authorization.k8s.io/execution-sentinel",
                               "clusterrolebinding.rbac.authorization.k8s.io/execution-sentinel"})
        CHECK(out.find(object) != std::string::npos);
}

TEST_CASE("the live page shows runs, phase progress and anomalies arriving live in headless Chromium",
          "[serve][page][integration]") {
    if (!serve_built()) return;
    std::string chromium;
    for (const auto* name : {"chromium", "chromium-browser"})
        if (std::system(("command -v " + std::string(name) + " >/dev/null 2>&1").c_str()) == 0) {
            chromium = name;
            break;
        }
    if (chromium.empty() || std::system("command -v python3 >/dev/null 2>&1") != 0) {
        WARN("SKIP: chromium (Debian package `chromium`) or python3 is not installed");
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    ServeDir dir;
    es::FakeClusterOptions options;
    options.default_namespace = "wf-page";
    es::FakeCluster cluster(options);
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    dir.write("sentinel.yaml", "namespaces: [wf-page]\nthresholds:\n  poll_interval: 200ms\n  metrics_interval: 0\n"
                               "http:\n  listen: 127.0.0.1:0\nkubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n");
    ServeProcess serve(dir, {"serve", "--config", dir.file("sentinel.yaml")});
    const auto port = serve.wait_port();
    INFO("serve's stderr:\n" << serve.stderr_text());
    REQUIRE(port != 0);
    REQUIRE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s));

    // A run with a task that is OOM-killed and one whose script fails (its log tail is the evidence), played slowly
    // enough for the page to be open before the anomalies happen.
    auto scenario = es::Scenario::parse(R"({
        "name": "page", "namespace": "wf-page", "time_scale": 0.05, "seed": 21, "engine": {"at": 0},
        "tasks": [
          {"type": "individuals", "proc_id": 1, "start": 40, "pending": 5, "duration": 40},
          {"type": "individuals", "proc_id": 2, "start": 40, "pending": 5, "duration": 30, "outcome": "oom",
           "backoff_limit": 0, "memory_limit": "1Gi"},
          {"type": "sifting", "proc_id": 3, "start": 40, "pending": 5, "duration": 20, "outcome": "fail",
           "exit_code": 2, "backoff_limit": 0,
           "log_tail": ["Traceback (most recent call last):", "ValueError: no variants in region"]}
        ],
        "completion": {"at": 200, "exit_code": 1}
    })");
    const std::string script = std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/tests/integration/serve_page_check.py";
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
    const std::string condition =
        "document.querySelector('#live li[data-type^=ANOMALY_]') && "
        "document.querySelector('.run .phase[data-phase=individuals] .bar .failed') && "
        "document.querySelector('.run .state.failed')";
    // The page is loaded first (in the background), then the run plays.
    std::string command = "python3 " + script + " " + chromium + " '" + url + "' \"" + condition + "\" 60 " +
                          dir.file("page.html") + " " + dir.file("page.png") + " 2>" + dir.file("page.err");
    int page_status = -1;
    std::thread page([&] {
        const int raw = std::system(command.c_str());
        page_status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    });
    // The run starts once the page follows the live stream (the server counts its event stream clients).
    const bool following = eventually(
        [&] { return http_get(port, "/metrics").body.find("execution_sentinel_event_stream_clients 1") != std::string::npos; },
        60s);
    es::ScenarioRunner runner(cluster, scenario);
    runner.start();
    page.join();
    if (page_status == 77) {
        WARN("SKIP: chromium could not start: " << dir.read("page.err"));
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    // Where the screenshot is, for a person to look at (kept out of the temporary directory).
    const auto shot = fs::temp_directory_path() / "execution-sentinel-serve-page.png";
    std::error_code ec;
    fs::copy_file(dir.file("page.png"), shot, fs::copy_options::overwrite_existing, ec);
    WARN("screenshot of the live page: " << shot.string());
    const auto dom = dir.read("page.html");
    INFO("DOM:\n" << dom.substr(dom.find("<body")));
    CHECK(following);
    CHECK(page_status == 0);
    CHECK(dom.find("data-type=\"ANOMALY_") != std::string::npos);
    CHECK(dom.find("data-phase=\"sifting\"") != std::string::npos);
    CHECK(dom.find("class=\"state failed\"") != std::string::npos);

    // The run's detail: its phases and anomalies, with the failed task's log tail as evidence.
    const auto runs = http_get(port, "/api/v1/runs").json();
    const auto run = run_in(runs, "wf-page");
    REQUIRE(!run.is_null());
    const std::string detail_url = url + "#/run/wf-page/" + std::string(run.at("run").as_string());
    const std::string detail_condition = "document.querySelector('#run-detail pre.evidence')";
    const std::string detail_command = "python3 " + script + " " + chromium + " '" + detail_url + "' \"" +
                                       detail_condition + "\" 30 " + dir.file("detail.html") + " " +
                                       dir.file("detail.png") + " 2>" + dir.file("detail.err");
    const int raw = std::system(detail_command.c_str());
    const auto detail = dir.read("detail.html");
    INFO("detail DOM:\n" << detail.substr(std::min(detail.size(), detail.find("<body"))));
    CHECK((WIFEXITED(raw) && WEXITSTATUS(raw) == 0));
    CHECK(detail.find("ValueError: no variants in region") != std::string::npos);
    CHECK(detail.find("data-type=\"ANOMALY_TASK_FAILED\"") != std::string::npos);
    const auto detail_shot = fs::temp_directory_path() / "execution-sentinel-serve-run.png";
    fs::copy_file(dir.file("detail.png"), detail_shot, fs::copy_options::overwrite_existing, ec);
    WARN("screenshot of the run's detail: " << detail_shot.string());
    CHECK(serve.stop() == 0);
}

TEST_CASE("serve registers a run POSTed over HTTPS with a bearer token and watches it to its end",
          "[serve][registration][tls][integration]") {
    if (!serve_built()) return;
    ServeDir dir;
    es::FakeClusterOptions options;
    options.default_namespace = "wf-r";
    es::FakeCluster cluster(options);
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    const auto certs = es::generate_certificates();
    dir.write("tls.crt", certs.server_certificate_pem);
    dir.write("tls.key", certs.server_key_pem);
    const std::string token = "ci-7f3a9c1e5b2d4f6a8c0e";
    dir.write("tokens", "# who may register runs\nci:" + token + "\n");
    // Discovery looks for engine pods of another label: the run is watched only because it is registered.
    dir.write("sentinel.yaml", "namespaces: [wf-r]\nengine_selector: component=not-this-engine\n"
                               "thresholds:\n  poll_interval: 200ms\n  timeout: 5m\n  metrics_interval: 0\n"
                               "store:\n  history: sqlite:" + dir.file("history.db") + "\n"
                               "http:\n  listen: 127.0.0.1:0\n  tls:\n    cert_file: " + dir.file("tls.crt") +
                               "\n    key_file: " + dir.file("tls.key") + "\n"
                               "api:\n  tokens_file: " + dir.file("tokens") + "\n  max_body_bytes: 4096\n"
                               "kubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n");

    ServeProcess serve(dir, {"serve", "--config", dir.file("sentinel.yaml")});
    const auto port = serve.wait_port();
    INFO("serve's stderr:\n" << serve.stderr_text());
    REQUIRE(port != 0);
    CHECK(serve.stderr_text().find("listening on https://127.0.0.1:") != std::string::npos);
    const auto& ca = certs.ca_certificate_pem;
    REQUIRE(eventually([&] { return https_request(port, ca, "GET", "/readyz").status == 200; }, 20s));
    // HTTPS only: a plain HTTP request gets no HTTP answer.
    CHECK(http_get(port, "/healthz").status == 0);

    const std::vector<std::pair<std::string, std::string>> json{{"Content-Type", "application/json"}};
    auto with_token = [&](const std::string& t) {
        auto h = json;
        h.emplace_back("Authorization", "Bearer " + t);
        return h;
    };
    auto scenario = small_scenario("wf-r", 31, true);
    const std::string context = scenario.context_json();
    REQUIRE(context.size() < 4096);

    // Refusals: no token, a wrong token, not JSON, a context with a bad field, too large, another namespace.
    auto none = https_request(port, ca, "POST", "/api/v1/runs", json, context);
    INFO("no token: " << none.error << none.head << none.body);
    CHECK(none.status == 401);
    CHECK(none.head.find("WWW-Authenticate: Bearer realm=\"execution-sentinel\"") != std::string::npos);
    auto wrong = https_request(port, ca, "POST", "/api/v1/runs", with_token(token + "x"), context);
    CHECK(wrong.status == 401);
    CHECK(wrong.head.find("error=\"invalid_token\"") != std::string::npos);
    auto not_json = https_request(port, ca, "POST", "/api/v1/runs", with_token(token), "{\"namespace\": ");
    CHECK(not_json.status == 400);
    CHECK(not_json.body.find("\"field\":\"(root)\"") != std::string::npos);
    auto bad_field = https_request(port, ca, "POST", "/api/v1/runs", with_token(token),
                                   R"({"namespace": "wf-r", "engine_pod_name": "e", "agglomeration_factor": "x"})");
    CHECK(bad_field.status == 400);
    CHECK(bad_field.body.find("\"field\":\"agglomeration_factor\"") != std::string::npos);
    auto plain_text = with_token(token);
    plain_text[0].second = "text/plain";
    CHECK(https_request(port, ca, "POST", "/api/v1/runs", plain_text, context).status == 415);
    CHECK(https_request(port, ca, "POST", "/api/v1/runs", with_token(token), std::string(5000, ' ') + context).status ==
          413);
    auto elsewhere = https_request(port, ca, "POST", "/api/v1/runs", with_token(token),
                                   R"({"namespace": "wf-other", "engine_pod_name": "e"})");
    CHECK(elsewhere.status == 400);
    CHECK(elsewhere.body.find("\"field\":\"namespace\"") != std::string::npos);

    // The run starts, and its client registers it.
    es::ScenarioRunner runner(cluster, scenario);
    runner.start();
    auto created = https_request(port, ca, "POST", "/api/v1/runs", with_token(token), context);
    INFO("registration: " << created.error << created.head << created.body);
    REQUIRE(created.status == 201);
    const std::string url = "/api/v1/runs/wf-r/" + scenario.engine_pod_name();
    CHECK(created.head.find("Location: " + url) != std::string::npos);
    auto cj = created.json();
    CHECK(cj.at("state") == "watching");
    CHECK(cj.at("context_source") == "registered");
    CHECK(cj.at("url") == url.c_str());
    // The same context again: the run it names, no second watch; another context for it: a conflict.
    auto again = https_request(port, ca, "POST", "/api/v1/runs", with_token(token), context);
    CHECK(again.status == 200);
    CHECK(again.head.find("Location: " + url) != std::string::npos);
    auto changed = boost::json::parse(context).as_object();
    changed["task_label_selector"] = "app=something-else";
    auto conflict = https_request(port, ca, "POST", "/api/v1/runs", with_token(token), boost::json::serialize(changed));
    CHECK(conflict.status == 409);

    auto state = [&] {
        auto r = https_request(port, ca, "GET", url);
        return r.status == 200 ? std::string(r.json().at("state").as_string()) : std::string();
    };
    const bool ended = eventually([&] { auto s = state(); return !s.empty() && s != "watching"; }, 60s);
    const auto last = https_request(port, ca, "GET", url);
    if (serve.exited()) FAIL("serve exited: raw status " << serve.raw_status());
    INFO("serve's stderr now:\n" << serve.stderr_text() << "\nGET " << url << ": " << last.status << " " << last.error
                                  << last.body.substr(0, 300));
    REQUIRE(ended);
    CHECK(state() == "succeeded");
    auto detail = https_request(port, ca, "GET", url).json();
    CHECK(detail.at("context_source") == "registered");
    CHECK(detail.at("total") == 3);
    CHECK(detail.at("summary").at("exit_code") == 0);
    auto reports = https_request(port, ca, "GET", url + "/reports?limit=1000").json();
    bool completion = false;
    for (const auto& r : reports.at("reports").as_array()) completion = completion || r.at("type") == "COMPLETION";
    CHECK(completion);
    auto stats = https_request(port, ca, "GET", "/api/v1/stats").json();
    CHECK(stats.at("runs_started") == 1);
    CHECK(stats.at("runs_finished") == 1);
    // The registration after the end: the run as it ended, not watched again.
    auto after_end = https_request(port, ca, "POST", "/api/v1/runs", with_token(token), context);
    CHECK(after_end.status == 200);
    CHECK(after_end.json().at("state") == "succeeded");

    // The tokens file changes (a Secret updated in place): read again within seconds. A file that is not valid is
    // logged and the tokens in use kept; a valid one replaces them.
    const std::string rotated = "rotated-0123456789abcdef";
    dir.write("tokens", "ci: short\n");
    REQUIRE(eventually([&] { return serve.stderr_text().find("the tokens read before are kept") != std::string::npos; },
                       10s));
    CHECK(https_request(port, ca, "POST", "/api/v1/runs", with_token(token), context).status == 200);
    dir.write("tokens", "ci2:" + rotated + "\n");
    CHECK(eventually([&] { return https_request(port, ca, "POST", "/api/v1/runs", with_token(token), context).status == 401; },
                     10s));
    CHECK(https_request(port, ca, "POST", "/api/v1/runs", with_token(rotated), context).status == 200);

    CHECK(serve.stop() == 0);
    const auto log = serve.stderr_text();
    CHECK(log.find(rotated) == std::string::npos);
    CHECK(log.find("run wf-r/" + scenario.engine_pod_name() + " registered (token ci)") != std::string::npos);
    CHECK(log.find(token) == std::string::npos); // the secret is never logged

    // Its summary is in the history store.
    auto history = run_serve_cli(dir, "history --store sqlite:" + dir.file("history.db") + " runs --output json");
    REQUIRE(history.status == 0);
    auto hj = boost::json::parse(history.out).at("runs").as_array();
    REQUIRE(hj.size() == 1);
    CHECK(hj[0].at("outcome") == "succeeded");
}

TEST_CASE("serve: registration without tokens is refused (403); unusable TLS and token files stop it (exit 2)",
          "[serve][registration][tls][integration]") {
    if (!serve_built()) return;
    ServeDir dir;
    es::FakeClusterOptions options;
    options.default_namespace = "wf-n";
    es::FakeCluster cluster(options);
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    const std::string base = "namespaces: [wf-n]\nkubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n";
    dir.write("plain.yaml", base + "http:\n  listen: 127.0.0.1:0\n");
    {
        ServeProcess serve(dir, {"serve", "--config", dir.file("plain.yaml")});
        const auto port = serve.wait_port();
        INFO("serve's stderr:\n" << serve.stderr_text());
        REQUIRE(port != 0);
        CHECK(serve.stderr_text().find("listening on http://127.0.0.1:") != std::string::npos);
        auto refused = http_get(port, "/api/v1/runs", "Content-Type: application/json\r\nAuthorization: Bearer "
                                                      "abcdefghijklmnopqrstuvwxyz\r\n",
                                "POST", R"({"namespace": "wf-n", "engine_pod_name": "e"})");
        CHECK(refused.status == 403);
        CHECK(refused.body.find("run registration is disabled") != std::string::npos);
        CHECK(serve.stop() == 0);
    }

    const auto certs = es::generate_certificates();
    dir.write("tls.crt", certs.server_certificate_pem);
    dir.write("tls.key", certs.server_key_pem);
    dir.write("missing-cert.yaml", base + "http:\n  tls:\n    cert_file: " + dir.file("nowhere.crt") +
                                       "\n    key_file: " + dir.file("tls.key") + "\n");
    auto missing = run_serve_cli(dir, "serve --config missing-cert.yaml");
    CHECK(missing.status == 2);
    CHECK(missing.err.find("missing-cert.yaml: http.tls.cert_file: " + dir.file("nowhere.crt") + ": cannot be read") !=
          std::string::npos);
    dir.write("swapped.yaml", base + "http:\n  tls:\n    cert_file: " + dir.file("tls.key") + "\n    key_file: " +
                                  dir.file("tls.crt") + "\n");
    auto swapped = run_serve_cli(dir, "serve --config swapped.yaml --check-config");
    CHECK(swapped.status == 2);
    CHECK(swapped.err.find("swapped.yaml: http.tls.cert_file: " + dir.file("tls.key") + ": not a PEM certificate") !=
          std::string::npos);
    dir.write("tokens", "ci: too-short\n");
    dir.write("tokens.yaml", base + "api:\n  tokens_file: " + dir.file("tokens") + "\n");
    auto tokens = run_serve_cli(dir, "serve --config tokens.yaml --check-config");
    CHECK(tokens.status == 2);
    CHECK(tokens.err.find("tokens.yaml: api.tokens_file: " + dir.file("tokens") + ":1: a token must be 16 to 4096 characters") !=
          std::string::npos);
    CHECK(tokens.err.find("too-short") == std::string::npos);
    dir.write("good-tokens", "ci: abcdefghijklmnopqrstuvwxyz\n");
    dir.write("good.yaml", base + "http:\n  tls:\n    cert_file: " + dir.file("tls.crt") + "\n    key_file: " +
                               dir.file("tls.key") + "\napi:\n  tokens_file: " + dir.file("good-tokens") + "\n");
    auto good = run_serve_cli(dir, "serve --config good.yaml --check-config");
    CHECK(good.status == 0);
}

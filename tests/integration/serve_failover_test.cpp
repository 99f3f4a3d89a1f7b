// `execution-sentinel serve` with several replicas sharing the runs through coordination.k8s.io/v1 Leases
// (docs/serve.md, "Several replicas"): three replicas (processes of the program) and twenty runs on one FakeCluster
// with one history store (a SQLite file, or a PostgreSQL server the test starts); one replica is SIGKILLed mid-run,
// then another. Every run completes on the
// replica left with exactly the reports (by key, in the store) of a run nobody interrupted, none twice, and the
// failover time (kill → another replica holding and watching the run) is measured.
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/history/open.hpp>
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/serve/registration.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include "catch.hpp"
#include "pg_server.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
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
using SteadyClock = std::chrono::steady_clock;

const std::string cli = EXECUTION_SENTINEL_BINARY_DIR "/tools/execution-sentinel/execution-sentinel";

struct Dir {
    fs::path path;
    Dir() {
        std::string tmpl = (fs::temp_directory_path() / "es-failover-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~Dir() {
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

/// One replica: the program running `serve` in the background, its stderr in a file.
class Replica {
public:
    Replica(const Dir& dir, std::string name, const std::string& config) : dir_(dir), name_(std::move(name)) {
        std::vector<std::string> args{cli, "serve", "--config", config};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, dir.file(name_ + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&actions, 2, dir.file(name_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int rc = ::posix_spawn(&pid_, cli.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(rc == 0);
    }
    ~Replica() { kill(); }
    Replica(const Replica&) = delete;
    Replica& operator=(const Replica&) = delete;

    const std::string& name() const { return name_; }
    std::string log() const { return dir_.read(name_ + ".err"); }
    unsigned short port() const { return port_; }

    /// Waits for "listening on http://127.0.0.1:PORT"; false when it did not come.
    bool wait_port(std::chrono::milliseconds limit = 60s) {
        const auto until = SteadyClock::now() + limit;
        const std::regex line(R"(listening on http://127\.0\.0\.1:([0-9]+))");
        while (SteadyClock::now() < until) {
            std::smatch m;
            const auto err = log();
            if (std::regex_search(err, m, line)) {
                port_ = static_cast<unsigned short>(std::stoi(m[1].str()));
                return true;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    /// SIGTERM, then the exit status (-1 when it did not exit within `limit`).
    int stop(std::chrono::milliseconds limit = 60s) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        const auto until = SteadyClock::now() + limit;
        while (SteadyClock::now() < until) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(50ms);
        }
        return -1;
    }

private:
    const Dir& dir_;
    std::string name_;
    pid_t pid_ = -1;
    unsigned short port_ = 0;
};

struct HttpAnswer {
    int status = 0;
    std::string body;
};

/// One request over a new connection; `headers` are extra header lines ("Name: value\r\n" each).
HttpAnswer http_call(unsigned short port, const std::string& method, const std::string& target,
                     const std::string& headers = "", const std::string& body = "") {
    HttpAnswer a;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return a;
    }
    const std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers +
                                (body.empty() && method == "GET" ? std::string()
                                                                 : "Content-Length: " + std::to_string(body.size()) + "\r\n") +
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
    a.body = raw.substr(end + 4);
    return a;
}

HttpAnswer http_get(unsigned short port, const std::string& target) { return http_call(port, "GET", target); }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto until = SteadyClock::now() + limit;
    while (SteadyClock::now() < until) {
        if (condition()) return true;
        std::this_thread::sleep_for(100ms);
    }
    return condition();
}

/// The runs a replica's API shows in the state "watching" ("namespace/run").
std::set<std::string> watching(const Replica& r) {
    std::set<std::string> out;
    auto a = http_get(r.port(), "/api/v1/runs");
    if (a.status != 200) return out;
    boost::system::error_code ec;
    auto v = boost::json::parse(a.body, ec);
    if (ec) return out;
    for (const auto& run : v.at("runs").as_array())
        if (run.at("state") == "watching")
            out.insert(std::string(run.at("namespace").as_string()) + "/" + std::string(run.at("run").as_string()));
    return out;
}

/// The runs' Leases (not the replicas' memberships), by the run they are for.
std::map<std::string, boost::json::object> run_leases(es::FakeCluster& cluster) {
    std::map<std::string, boost::json::object> out;
    for (auto& lease : cluster.list("leases", "")) {
        const auto& meta = lease.at("metadata").as_object();
        if (!std::string_view(meta.at("name").as_string()).starts_with("execution-sentinel-run-")) continue;
        out[std::string(meta.at("annotations").at("execution-sentinel/run").as_string())] = lease;
    }
    return out;
}

std::string holder_of(const boost::json::object& lease) {
    return std::string(lease.at("spec").at("holderIdentity").as_string());
}

bool finished(const boost::json::object& lease) {
    const auto& ann = lease.at("metadata").at("annotations").as_object();
    return ann.contains("execution-sentinel/finished");
}

/// Runs (keys "namespace/engine pod") whose lease `holder` holds now.
std::set<std::string> held_by(es::FakeCluster& cluster, const std::string& holder) {
    std::set<std::string> out;
    for (auto& [run, lease] : run_leases(cluster))
        if (holder_of(lease) == holder && !finished(lease)) out.insert(run);
    return out;
}

/// Seconds from `since` until every run of `runs` is held by another replica of `others` and watched there.
double wait_failover(es::FakeCluster& cluster, const std::set<std::string>& runs, std::vector<Replica*> others,
                     SteadyClock::time_point since, std::chrono::milliseconds limit) {
    const auto until = since + limit;
    while (SteadyClock::now() < until) {
        std::set<std::string> done;
        auto leases = run_leases(cluster);
        for (auto* r : others) {
            auto w = watching(*r);
            for (const auto& run : runs) {
                auto it = leases.find(run);
                if (it != leases.end() && holder_of(it->second) == r->name() && w.count(run)) done.insert(run);
            }
        }
        if (done == runs) return std::chrono::duration<double>(SteadyClock::now() - since).count();
        std::this_thread::sleep_for(50ms);
    }
    return -1;
}

/// A run of a few phases over `seconds` of wall time: tasks succeed, one is OOM-killed and retried, one fails
/// for good; the same seed everywhere, so every namespace plays the same run.
es::Scenario failover_scenario(const std::string& ns, double time_scale) {
    return es::Scenario::parse(R"({
        "name": "failover", "namespace": ")" + ns + R"(", "time_scale": )" + std::to_string(time_scale) + R"(,
        "seed": 7, "metrics": {"api": "absent"}, "ttl_seconds_after_finished": 30,
        "engine": {"at": 0},
        "tasks": [
          {"type": "individuals", "proc_id": 1, "start": 4, "pending": 2, "duration": 20},
          {"type": "individuals", "proc_id": 2, "start": 4, "pending": 2, "duration": 30},
          {"type": "individuals", "proc_id": 3, "start": 30, "pending": 2, "duration": 20, "outcome": "oom",
           "failed_attempts": 1, "backoff_limit": 4, "memory_limit": "1Gi"},
          {"type": "individuals", "proc_id": 4, "start": 40, "pending": 2, "duration": 30},
          {"type": "sifting", "proc_id": 5, "start": 60, "pending": 2, "duration": 20, "outcome": "fail",
           "exit_code": 2, "backoff_limit": 0},
          {"type": "sifting", "proc_id": 6, "start": 70, "pending": 2, "duration": 20},
          {"type": "frequency", "proc_id": 7, "start": 100, "pending": 2, "duration": 15},
          {"type": "frequency", "proc_id": 8, "start": 105, "pending": 2, "duration": 20},
          {"type": "frequency", "proc_id": 9, "start": 110, "pending": 2, "duration": 10}
        ],
        "completion": {"at": 150, "exit_code": 0}
    })");
}

/// A replica's configuration; its history store: `store` ("" = a SQLite file in `dir`).
std::string config_yaml(const Dir& dir, const std::string& identity, const std::string& lease_settings,
                        const std::string& store = "") {
    return "namespaces: []\n"
           "thresholds:\n  poll_interval: 1s\n  timeout: 10m\n  metrics_interval: 0\n  evidence_log_lines: 0\n"
           "store:\n  history: " + (store.empty() ? "sqlite:" + dir.file("history.db") : store) + "\n"
           "http:\n  listen: 127.0.0.1:0\n"
           "kubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n"
           "ha:\n  enabled: true\n  identity: " + identity + "\n" + lease_settings;
}

/// A report key with what differs between two plays of the same run taken out: uids, the namespace, the
/// engine pod's name.
std::string normalized(std::string key, const std::string& ns, const std::string& engine) {
    static const std::regex uid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    key = std::regex_replace(key, uid, "<uid>");
    for (auto [from, to] : {std::pair{engine, std::string("<engine>")}, std::pair{ns, std::string("<ns>")}}) {
        if (from.empty()) continue;
        for (auto p = key.find(from); p != std::string::npos; p = key.find(from, p + to.size())) key.replace(p, from.size(), to);
    }
    return key;
}

bool cli_built() {
    if (fs::exists(cli)) return true;
    WARN("SKIP: the execution-sentinel program is not built");
    SUCCEED("skipped (the warning above says why)");
    return false;
}


/// Three replicas sharing the history store `store` ("" = one SQLite file), twenty runs, two replicas SIGKILLed
/// mid-run: every run ends on the last replica with the reports of an uninterrupted run, none twice.
void three_replicas_two_killed(const std::string& store) {
    Dir dir;
    es::FakeCluster cluster;
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    const std::string store_address = store.empty() ? "sqlite:" + dir.file("history.db") : store;
    const std::string timing = "  lease_duration: 3s\n  renew_deadline: 2s\n  retry_period: 500ms\n";
    std::vector<std::unique_ptr<Replica>> replicas;
    for (const auto* name : {"replica-a", "replica-b", "replica-c"}) {
        dir.write(std::string(name) + ".yaml", config_yaml(dir, name, timing, store_address));
        replicas.push_back(std::make_unique<Replica>(dir, name, dir.file(std::string(name) + ".yaml")));
    }
    auto& a = *replicas[0];
    auto& b = *replicas[1];
    auto& c = *replicas[2];
    for (auto& r : replicas) {
        INFO(r->name() << "'s log:\n" << r->log());
        REQUIRE(r->wait_port());
        REQUIRE(eventually([&] { return http_get(r->port(), "/readyz").status == 200; }, 30s));
    }

    // 20 runs of 150 scenario seconds at 0.25 s each: about 40 s.
    const int runs = 20;
    std::vector<std::unique_ptr<es::ScenarioRunner>> runners;
    std::vector<std::string> namespaces;
    std::vector<es::Scenario> scenarios;
    for (int i = 0; i < runs; ++i) {
        char ns[16];
        std::snprintf(ns, sizeof ns, "wf-%02d", i);
        namespaces.emplace_back(ns);
        scenarios.push_back(failover_scenario(ns, 0.25));
    }
    for (int i = 0; i < runs; ++i) runners.push_back(std::make_unique<es::ScenarioRunner>(cluster, scenarios[static_cast<std::size_t>(i)]));
    const auto start = SteadyClock::now();
    for (auto& r : runners) r->start();

    auto log_all = [&] {
        std::string text;
        for (auto& r : replicas) text += "--- " + r->name() + ":\n" + r->log();
        return text;
    };
    // Every run is held by one replica, and the three share them.
    REQUIRE(eventually([&] {
        auto leases = run_leases(cluster);
        return leases.size() == static_cast<std::size_t>(runs);
    }, 20s));
    REQUIRE(eventually([&] { return watching(a).size() + watching(b).size() + watching(c).size() == runs; }, 20s));
    const auto held_a = held_by(cluster, "replica-a");
    const auto held_b0 = held_by(cluster, "replica-b");
    const auto held_c0 = held_by(cluster, "replica-c");
    INFO("held at first: a " << held_a.size() << ", b " << held_b0.size() << ", c " << held_c0.size());
    CHECK(held_a.size() + held_b0.size() + held_c0.size() == static_cast<std::size_t>(runs));
    REQUIRE(!held_a.empty());
    REQUIRE(!held_b0.empty());
    REQUIRE(!held_c0.empty());
    auto metrics_c = http_get(c.port(), "/metrics").body;
    CHECK(metrics_c.find("execution_sentinel_leases_held " + std::to_string(held_c0.size())) != std::string::npos);
    auto ready_c = http_get(c.port(), "/readyz");
    CHECK(ready_c.body.find("leases") != std::string::npos);

    // Kill replica a mid-run (while the first phase runs and an OOM kill is due); b and c take its runs over.
    std::this_thread::sleep_until(start + 9s);
    const auto held_a_now = held_by(cluster, "replica-a");
    const auto kill_a = SteadyClock::now();
    a.kill();
    const double failover_a = wait_failover(cluster, held_a_now, {&b, &c}, kill_a, 30s);
    INFO(log_all());
    REQUIRE(failover_a > 0);
    WARN("failover after SIGKILL of replica-a (" << held_a_now.size() << " runs; lease 3 s, renew 2 s, retry 0.5 s): "
                                                 << failover_a << " s");
    CHECK(failover_a < 8.0);

    // Then kill replica b (while the failing phase runs); c goes on with every run.
    std::this_thread::sleep_until(std::max(start + 21s, SteadyClock::now()));
    const auto held_b = held_by(cluster, "replica-b");
    REQUIRE(!held_b.empty());
    const auto kill_b = SteadyClock::now();
    b.kill();
    const double failover_b = wait_failover(cluster, held_b, {&c}, kill_b, 30s);
    REQUIRE(failover_b > 0);
    WARN("failover after SIGKILL of replica-b (" << held_b.size() << " runs): " << failover_b << " s");
    CHECK(failover_b < 8.0);
    auto takeovers = http_get(c.port(), "/metrics").body;
    CHECK(takeovers.find("execution_sentinel_lease_takeovers_total 0") == std::string::npos);

    // Every run completes (on c) and its lease says so.
    for (auto& r : runners) r->wait();
    const bool all_finished = eventually([&] {
        auto leases = run_leases(cluster);
        return std::all_of(leases.begin(), leases.end(), [](const auto& kv) { return finished(kv.second); });
    }, 60s);
    if (!all_finished) {
        for (const auto& [run, lease] : run_leases(cluster))
            if (!finished(lease)) UNSCOPED_INFO("not finished: " << run << ": " << boost::json::serialize(lease));
        UNSCOPED_INFO("replica-c's log now:\n" << c.log());
    }
    REQUIRE(all_finished);
    const auto final_leases = run_leases(cluster);
    // An ended run's Lease is deleted once its engine pod is (a new engine pod of that name is a new run).
    {
        const auto& [first, lease] = *final_leases.begin();
        const auto slash = first.find('/');
        REQUIRE(cluster.remove("pods", first.substr(0, slash), first.substr(slash + 1)));
        CHECK(eventually([&] { return run_leases(cluster).count(first) == 0; }, 15s));
        CHECK(run_leases(cluster).size() == final_leases.size() - 1);
    }
    CHECK(c.stop() == 0);

    // In the store: one history run per namespace; each with exactly the reports of an uninterrupted run (one held
    // by the same replica from start to end: no lease transition), none twice.
    auto opened = execution_sentinel::history::open_store(execution_sentinel::history::parse_store_location(store_address));
    auto& recorded_in = *opened;
    auto recorded = recorded_in.list_runs({.workflow_name = "", .limit = 100});
    std::map<std::string, int> runs_per_ns;
    for (const auto& r : recorded) ++runs_per_ns[r.namespace_];
    CHECK(runs_per_ns.size() == static_cast<std::size_t>(runs));
    for (const auto& [ns, n] : runs_per_ns) {
        INFO(ns);
        CHECK(n == 1);
    }
    const auto& leases = final_leases;
    std::map<std::string, std::multiset<std::string>> keys; // namespace → normalized report keys
    std::map<std::string, std::multiset<std::string>> raw;  // namespace → report keys as recorded
    std::map<std::string, std::string> outcome;
    for (const auto& r : recorded) {
        std::string engine;
        for (const auto& [run, lease] : leases)
            if (run.starts_with(r.namespace_ + "/")) engine = run.substr(r.namespace_.size() + 1);
        for (const auto& rep : recorded_in.reports(r.id)) {
            raw[r.namespace_].insert(rep.key);
            keys[r.namespace_].insert(normalized(rep.key, r.namespace_, engine));
        }
        outcome[r.namespace_] = r.outcome;
    }
    std::set<std::string> uninterrupted, moved;
    for (const auto& [run, lease] : leases) {
        const auto ns = run.substr(0, run.find('/'));
        (lease.at("spec").at("leaseTransitions").as_int64() == 0 ? uninterrupted : moved).insert(ns);
    }
    INFO("uninterrupted: " << uninterrupted.size() << ", taken over: " << moved.size());
    REQUIRE(!uninterrupted.empty());
    REQUIRE(moved.size() >= held_a_now.size());
    const auto expected = keys[*uninterrupted.begin()];
    REQUIRE(!expected.empty());
    bool oom = false, failed = false, completion = false;
    for (const auto& k : expected) {
        oom = oom || k.starts_with("ANOMALY_OOMKILL");
        failed = failed || k.starts_with("ANOMALY_TASK_FAILED");
        completion = completion || k.starts_with("COMPLETION");
    }
    CHECK(oom);
    CHECK(failed);
    CHECK(completion);
    for (const auto& ns : namespaces) {
        INFO(ns << (moved.count(ns) ? " (taken over)" : " (uninterrupted)"));
        const auto& got = keys[ns];
        std::vector<std::string> missing, extra;
        std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::back_inserter(missing));
        std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(), std::back_inserter(extra));
        for (const auto& k : missing) UNSCOPED_INFO("missing: " << k);
        for (const auto& k : extra) UNSCOPED_INFO("extra (or twice): " << k);
        CHECK(got == expected);
        const auto& as_recorded = raw[ns];
        CHECK(std::set<std::string>(as_recorded.begin(), as_recorded.end()).size() == as_recorded.size()); // none twice
        CHECK(outcome[ns] == outcome[*uninterrupted.begin()]);
    }
    CHECK(c.log().find("lease taken over from replica-a") != std::string::npos);
    CHECK(c.log().find("lease taken over from replica-b") != std::string::npos);
}

} // namespace

TEST_CASE("serve ha: three replicas, twenty runs, two replicas SIGKILLed mid-run: every report once",
          "[serve][ha][integration]") {
    if (!cli_built()) return;
    three_replicas_two_killed("");
}

TEST_CASE("serve ha on a shared PostgreSQL store: two replicas SIGKILLed mid-run, every report once",
          "[serve][ha][integration]") {
    if (!cli_built()) return;
    auto& pg = execution_sentinel::test_support::PgServer::instance();
    if (!pg.skip().empty()) {
        WARN("SKIP: no PostgreSQL server: " << pg.skip());
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    three_replicas_two_killed(pg.create_database());
}

TEST_CASE("serve ha: SIGTERM releases the leases at once; the defaults' failover time is measured",
          "[serve][ha][integration]") {
    if (!cli_built()) return;
    Dir dir;
    es::FakeCluster cluster;
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    // client-go's defaults: nothing in the ha section but `enabled`.
    dir.write("x.yaml", config_yaml(dir, "replica-x", ""));
    dir.write("y.yaml", config_yaml(dir, "replica-y", ""));
    Replica x(dir, "replica-x", dir.file("x.yaml"));
    REQUIRE(x.wait_port());
    REQUIRE(eventually([&] { return http_get(x.port(), "/readyz").status == 200; }, 30s));
    auto s1 = failover_scenario("wf-x1", 1.0);
    auto s2 = failover_scenario("wf-x2", 1.0);
    es::ScenarioRunner r1(cluster, s1), r2(cluster, s2);
    r1.start();
    r2.start();
    REQUIRE(eventually([&] { return held_by(cluster, "replica-x").size() == 2; }, 20s)); // alone: x holds both
    Replica y(dir, "replica-y", dir.file("y.yaml"));
    REQUIRE(y.wait_port());
    REQUIRE(eventually([&] { return http_get(y.port(), "/readyz").status == 200; }, 30s));

    // Graceful: x stops; its leases are released, and y takes the runs over without waiting for them to expire.
    auto runs = held_by(cluster, "replica-x");
    auto stop = SteadyClock::now();
    CHECK(x.stop() == 0);
    const double handover = wait_failover(cluster, runs, {&y}, stop, 20s);
    INFO("replica-x:\n" << x.log() << "\nreplica-y:\n" << y.log());
    REQUIRE(handover > 0);
    WARN("handover after SIGTERM (defaults 15 s / 10 s / 2 s): " << handover << " s");
    CHECK(handover < 8.0); // well below the 15 s lease duration
    CHECK(x.log().find("lease released") != std::string::npos);

    // Killed: a new replica takes the runs over from y once y's leases expire (15 s), within about 20 s.
    dir.write("z.yaml", config_yaml(dir, "replica-z", ""));
    Replica z(dir, "replica-z", dir.file("z.yaml"));
    REQUIRE(z.wait_port());
    REQUIRE(eventually([&] { return http_get(z.port(), "/readyz").status == 200; }, 30s));
    std::this_thread::sleep_for(3s); // z has seen y's leases renewed
    auto held_y = held_by(cluster, "replica-y");
    REQUIRE(!held_y.empty());
    auto kill = SteadyClock::now();
    y.kill();
    const double failover = wait_failover(cluster, held_y, {&z}, kill, 40s);
    INFO("replica-z:\n" << z.log());
    REQUIRE(failover > 0);
    WARN("failover after SIGKILL (defaults 15 s / 10 s / 2 s): " << failover << " s");
    CHECK(failover < 25.0);
    CHECK(failover >= 13.0); // not before the lease expired (15 s after its last renewal, renewed every 2 s)
    CHECK(z.stop() == 0);
    r1.stop();
    r2.stop();
}

TEST_CASE("serve ha: without a history store a run is resumed from its ConfigMap; a lease taken away stops the watch",
          "[serve][ha][integration]") {
    if (!cli_built()) return;
    Dir dir;
    es::FakeCluster cluster;
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    auto config = [&](const std::string& identity) {
        return "namespaces: [wf-cm]\n"
               "thresholds:\n  poll_interval: 1s\n  timeout: 10m\n  metrics_interval: 0\n  evidence_log_lines: 0\n"
               "http:\n  listen: 127.0.0.1:0\n"
               "kubernetes:\n  kubeconfig: " + dir.file("kubeconfig") + "\n"
               "ha:\n  enabled: true\n  identity: " + identity + "\n"
               "  lease_duration: 3s\n  renew_deadline: 2s\n  retry_period: 500ms\n";
    };
    dir.write("p.yaml", config("replica-p"));
    dir.write("q.yaml", config("replica-q"));
    Replica p(dir, "replica-p", dir.file("p.yaml"));
    REQUIRE(p.wait_port());
    REQUIRE(eventually([&] { return http_get(p.port(), "/readyz").status == 200; }, 30s));
    auto scenario = failover_scenario("wf-cm", 0.25);
    es::ScenarioRunner runner(cluster, scenario);
    runner.start();
    REQUIRE(eventually([&] { return held_by(cluster, "replica-p").size() == 1; }, 20s));
    const auto run = *held_by(cluster, "replica-p").begin();
    Replica q(dir, "replica-q", dir.file("q.yaml"));
    REQUIRE(q.wait_port());
    REQUIRE(eventually([&] { return http_get(q.port(), "/readyz").status == 200; }, 30s));
    // The checkpoint is written to a ConfigMap of the run's namespace.
    REQUIRE(eventually([&] {
        for (const auto& cm : cluster.list("configmaps", "wf-cm"))
            if (std::string_view(cm.at("metadata").at("name").as_string()).starts_with("execution-sentinel-ckpt-")) return true;
        return false;
    }, 20s));
    std::this_thread::sleep_until(SteadyClock::now() + 3s);

    // p is killed: q takes the run over and resumes it from the ConfigMap.
    const auto kill = SteadyClock::now();
    p.kill();
    REQUIRE(wait_failover(cluster, {run}, {&q}, kill, 20s) > 0);
    INFO("replica-q:\n" << q.log());
    CHECK(q.log().find("lease taken over from replica-p") != std::string::npos);
    CHECK(eventually([&] { return q.log().find("resumed run " + run + " from its checkpoint") != std::string::npos; }, 10s));

    // Someone else writes the Lease (another holder): q stops watching the run at its next look, counts the loss,
    // and takes the run back once that holder's lease expires (it never renews it).
    cluster.modify("leases", "wf-cm", execution_sentinel::serve::lease_name(run), [](boost::json::object& lease) {
        lease["spec"].as_object()["holderIdentity"] = "intruder";
    });
    REQUIRE(eventually([&] { return q.log().find("run " + run + ": lease lost") != std::string::npos; }, 10s));
    CHECK(eventually([&] { return watching(q).empty(); }, 10s));
    CHECK(http_get(q.port(), "/metrics").body.find("execution_sentinel_leases_lost_total 1\n") != std::string::npos);
    REQUIRE(eventually([&] { return held_by(cluster, "replica-q").count(run) == 1 && watching(q).count(run) == 1; }, 20s));
    CHECK(q.log().find("lease taken over from intruder") != std::string::npos);
    CHECK(q.stop() == 0);
    runner.stop();
}

TEST_CASE("serve ha: a registered run has a Lease and its context in a ConfigMap; another replica takes it over",
          "[serve][ha][registration][integration]") {
    if (!cli_built()) return;
    Dir dir;
    es::FakeCluster cluster;
    cluster.write_kubeconfig(dir.file("kubeconfig"));
    const std::string token = "ha-registration-0123456789";
    dir.write("tokens", "orchestrator:" + token + "\n");
    const std::string timing = "  lease_duration: 3s\n  renew_deadline: 2s\n  retry_period: 500ms\n";
    // Discovery does not find these engine pods: the runs are known only from their registrations.
    const std::string extra = "engine_selector: component=not-this-engine\napi:\n  tokens_file: " + dir.file("tokens") + "\n";
    dir.write("p.yaml", config_yaml(dir, "replica-p", timing) + extra);
    dir.write("q.yaml", config_yaml(dir, "replica-q", timing) + extra);
    Replica p(dir, "replica-p", dir.file("p.yaml")), q(dir, "replica-q", dir.file("q.yaml"));
    for (auto* r : {&p, &q}) {
        INFO(r->name() << "'s log:\n" << r->log());
        REQUIRE(r->wait_port());
        REQUIRE(eventually([&] { return http_get(r->port(), "/readyz").status == 200; }, 30s));
    }
    // Run a is registered with p (then killed), run b with q (never interrupted: the reference).
    auto sa = failover_scenario("wf-reg-a", 0.25), sb = failover_scenario("wf-reg-b", 0.25);
    es::ScenarioRunner ra(cluster, sa), rb(cluster, sb);
    const auto start = SteadyClock::now();
    ra.start();
    rb.start();
    const std::string auth = "Content-Type: application/json\r\nAuthorization: Bearer " + token + "\r\n";
    const auto run_a = "wf-reg-a/" + sa.engine_pod_name(), run_b = "wf-reg-b/" + sb.engine_pod_name();
    const auto context_a = execution_sentinel::context_from_json_text(sa.context_json());
    auto log_all = [&] { return "--- replica-p:\n" + p.log() + "--- replica-q:\n" + q.log(); };
    // A registration of run a with another context failed before its Lease was written, and left its ConfigMap:
    // the registration below replaces it.
    auto other = boost::json::parse(sa.context_json()).as_object();
    other["completion_signal_path"] = "/tmp/another-signal";
    cluster.create("configmaps", "wf-reg-a",
                   execution_sentinel::serve::registration_configmap(execution_sentinel::context_from_json(other)));
    auto created_a = http_call(p.port(), "POST", "/api/v1/runs", auth, sa.context_json());
    auto created_b = http_call(q.port(), "POST", "/api/v1/runs", auth, sb.context_json());
    INFO("registrations: " << created_a.status << " " << created_a.body << "; " << created_b.status << " " << created_b.body
                           << "\n" << log_all());
    REQUIRE(created_a.status == 201);
    REQUIRE(created_b.status == 201);

    // Each run's Lease is held by the replica that accepted it and says it is registered; its context is in a
    // ConfigMap of its namespace.
    auto leases = run_leases(cluster);
    REQUIRE(leases.count(run_a) == 1);
    CHECK(holder_of(leases[run_a]) == "replica-p");
    CHECK(holder_of(leases[run_b]) == "replica-q");
    CHECK(leases[run_a].at("metadata").at("annotations").at("execution-sentinel/registered") == "true");
    std::size_t configmaps = 0;
    for (const auto& cm : cluster.list("configmaps", "wf-reg-a"))
        if (std::string_view(cm.at("metadata").at("name").as_string()).starts_with("execution-sentinel-registered-")) {
            ++configmaps;
            auto stored = boost::json::parse(cm.at("data").at("context.json").as_string());
            CHECK(execution_sentinel::context_from_json(stored) == context_a);
        }
    CHECK(configmaps == 1);
    REQUIRE(eventually([&] { return watching(p).count(run_a) == 1 && watching(q).count(run_b) == 1; }, 20s));

    // The same registration with the other replica is known (200); another context for that run is refused (409).
    auto again = http_call(q.port(), "POST", "/api/v1/runs", auth, sa.context_json());
    CHECK(again.status == 200);
    auto conflict = http_call(q.port(), "POST", "/api/v1/runs", auth, boost::json::serialize(other));
    INFO(conflict.body);
    CHECK(conflict.status == 409);
    CHECK(watching(q).count(run_a) == 0); // still held by p

    // p is killed mid-run: q takes run a over, with the context it was registered with.
    std::this_thread::sleep_until(start + 9s);
    const auto kill = SteadyClock::now();
    p.kill();
    const double failover = wait_failover(cluster, {run_a}, {&q}, kill, 20s);
    INFO(log_all());
    REQUIRE(failover > 0);
    WARN("failover of a registered run after SIGKILL (lease 3 s, renew 2 s, retry 0.5 s): " << failover << " s");
    CHECK(q.log().find("lease taken over from replica-p") != std::string::npos);
    auto shown = http_get(q.port(), "/api/v1/runs/" + run_a);
    REQUIRE(shown.status == 200);
    auto shown_json = boost::json::parse(shown.body);
    CHECK(shown_json.at("context_source") == "registered");
    CHECK(execution_sentinel::context_from_json(shown_json.at("context")) == context_a);

    // Both runs end; in the store the taken-over run has exactly the reports of the uninterrupted one, none twice.
    ra.wait();
    rb.wait();
    REQUIRE(eventually([&] {
        auto now = run_leases(cluster);
        return now.size() == 2 && finished(now[run_a]) && finished(now[run_b]);
    }, 60s));
    // The ended runs' Leases and contexts stay while their engine pods exist (this discovery does not see them go).
    std::size_t kept = 0;
    for (const auto& cm : cluster.list("configmaps", "wf-reg-a"))
        kept += std::string_view(cm.at("metadata").at("name").as_string()).starts_with("execution-sentinel-registered-");
    CHECK(kept == 1);
    CHECK(q.stop() == 0);
    auto opened = execution_sentinel::history::open_store(
        execution_sentinel::history::parse_store_location("sqlite:" + dir.file("history.db")));
    std::map<std::string, std::multiset<std::string>> keys;
    std::map<std::string, std::string> outcome;
    std::map<std::string, int> runs_per_ns;
    for (const auto& r : opened->list_runs({.workflow_name = "", .limit = 10})) {
        ++runs_per_ns[r.namespace_];
        const auto engine = r.namespace_ == "wf-reg-a" ? sa.engine_pod_name() : sb.engine_pod_name();
        std::set<std::string> distinct;
        for (const auto& rep : opened->reports(r.id)) {
            keys[r.namespace_].insert(normalized(rep.key, r.namespace_, engine));
            CHECK(distinct.insert(rep.key).second); // none twice
        }
        outcome[r.namespace_] = r.outcome;
    }
    CHECK(runs_per_ns == std::map<std::string, int>{{"wf-reg-a", 1}, {"wf-reg-b", 1}});
    const auto& expected = keys["wf-reg-b"];
    CHECK(std::any_of(expected.begin(), expected.end(), [](const auto& k) { return k.starts_with("ANOMALY_OOMKILL"); }));
    CHECK(std::any_of(expected.begin(), expected.end(), [](const auto& k) { return k.starts_with("COMPLETION"); }));
    std::vector<std::string> missing, extra_keys;
    std::set_difference(expected.begin(), expected.end(), keys["wf-reg-a"].begin(), keys["wf-reg-a"].end(),
                        std::back_inserter(missing));
    std::set_difference(keys["wf-reg-a"].begin(), keys["wf-reg-a"].end(), expected.begin(), expected.end(),
                        std::back_inserter(extra_keys));
    for (const auto& k : missing) UNSCOPED_INFO("missing: " << k);
    for (const auto& k : extra_keys) UNSCOPED_INFO("extra (or twice): " << k);
    CHECK(keys["wf-reg-a"] == expected);
    CHECK(outcome["wf-reg-a"] == outcome["wf-reg-b"]);
}

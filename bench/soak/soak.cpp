// The soak at scale (docs/performance.md, "Reliability at scale"): a DefaultSentinel watches a HyperFlow run of
// 2,000 tasks on a simulated cluster (testing/soak.hpp) through 100 watch drops (50 resets, 50 clean ends),
// 10 compactions, bursts of 500 and of 429 with Retry-After and 3 outages, then the reports are audited: every
// task's end counted once, no report repeated, one COMPLETION.
//
// The simulated cluster and the scenario run in a child process, so that the figures of this process are the
// Sentinel's alone: peak RSS (getrusage ru_maxrss), CPU seconds (user + system) and the traffic, as the cluster's
// sockets counted it.
//
// Usage: soak_bench [--tasks 2000] [--spread 900] [--time-scale 0.1] [--ttl SECONDS] [--outage 3] [--seed 7]
// Exits 0 when the audit passes, 1 when it finds a problem (each is printed), 2 on a usage error.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>
#include <execution_sentinel/testing/soak.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

/// One line from a pipe (without the newline); empty at its end.
std::string read_line(int fd) {
    std::string line;
    char c = 0;
    while (::read(fd, &c, 1) == 1) {
        if (c == '\n') return line;
        line += c;
    }
    return line;
}

void write_line(int fd, const std::string& line) {
    std::string s = line + "\n";
    const char* p = s.data();
    std::size_t left = s.size();
    while (left > 0) {
        auto n = ::write(fd, p, left);
        if (n <= 0) return;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

/// The child: the simulated cluster and the scenario runner. Tells the parent "ready" once the kubeconfig is
/// written, plays the scenario on "go", and on "end" answers with the traffic and request counters.
int cluster_process(const est::Scenario& scenario, const std::string& kubeconfig, int to_parent, int from_parent) {
    est::FakeClusterOptions o;
    o.default_namespace = scenario.namespace_name;
    o.history_limit = 20000;
    o.watch_queue_limit = 100000;
    est::FakeCluster cluster(o);
    cluster.write_kubeconfig(kubeconfig);
    write_line(to_parent, "ready");
    if (read_line(from_parent) != "go") return 1;
    est::ScenarioRunner runner(cluster, scenario);
    runner.start();
    const std::string end = read_line(from_parent); // the watch ended (or the parent is gone)
    runner.stop();
    const auto errors = runner.errors();
    const auto t = cluster.traffic();
    const auto s = cluster.stats();
    std::ostringstream out;
    out << "traffic " << t.bytes_sent << ' ' << t.bytes_received << ' ' << t.connections_total << ' '
        << t.requests_total << ' ' << s.lists << ' ' << s.watches << ' ' << s.execs << ' ' << s.logs << ' '
        << s.injected_failures << ' ' << errors.size() << ' ' << runner.steps_run() << ' ' << runner.timeline().size();
    write_line(to_parent, out.str());
    for (auto& e : errors) std::fprintf(stderr, "scenario step failed: %s\n", e.c_str());
    if (std::getenv("SOAK_REQUESTS")) { // the request log, for a closer look
        std::ofstream log(std::getenv("SOAK_REQUESTS"));
        for (auto& r : t.requests)
            log << r.connection << ' ' << r.method << ' ' << r.target << ' ' << r.bytes_sent << '\n';
    }
    return 0;
}

asio::awaitable<void> collect(es::ReportSubscription& sub, std::vector<es::Report>& out, bool& lost) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec != es::channel_error::reports_lost) co_return;
            lost = true;
            continue;
        }
        out.push_back(std::move(r));
    }
}

es::kube::BackoffOptions scaled_backoff(double scale) {
    // The documented policy (0.8 s doubling to 30 s, reset after 2 minutes) at the scenario's time scale.
    es::kube::BackoffOptions b;
    b.initial = std::chrono::milliseconds(static_cast<long>(800 * scale));
    b.cap = std::chrono::milliseconds(static_cast<long>(30000 * scale));
    b.jitter = 1.0;
    b.reset_after = std::chrono::milliseconds(static_cast<long>(120000 * scale));
    b.max_retry_after = std::chrono::milliseconds(static_cast<long>(std::max(1000.0, 60000 * scale)));
    return b;
}

double cpu_seconds(const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int usage() {
    std::fprintf(stderr, "usage: soak_bench [--tasks N] [--spread S] [--time-scale X] [--ttl S] [--outage S] [--seed N]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    est::SoakOptions o; // the defaults: 2,000 tasks, 50 + 50 watch drops, 10 compactions, 5 + 5 bursts, 3 outages
    for (int i = 1; i < argc; ++i) {
        const std::string key = argv[i];
        if (i + 1 >= argc) return usage();
        const double v = std::atof(argv[++i]);
        if (key == "--tasks" && v >= 1) o.tasks = static_cast<int>(v);
        else if (key == "--spread" && v > 0) o.start_spread = v;
        else if (key == "--time-scale" && v > 0) o.time_scale = v;
        else if (key == "--ttl" && v >= 0) o.ttl = v;
        else if (key == "--outage" && v > 0) o.outage_wall_seconds = v;
        else if (key == "--seed" && v >= 1) o.seed = static_cast<std::uint64_t>(v);
        else return usage();
    }
    const auto scenario = est::soak_scenario(o);
    const auto expected = est::soak_expectation(o);
    const auto kubeconfig =
        (std::filesystem::temp_directory_path() / ("soak-bench-" + std::to_string(::getpid()) + ".kubeconfig")).string();

    int to_parent[2], to_child[2];
    if (::pipe(to_parent) != 0 || ::pipe(to_child) != 0) return 1;
    const pid_t child = ::fork(); // before any thread exists
    if (child < 0) return 1;
    if (child == 0) {
        ::close(to_parent[0]);
        ::close(to_child[1]);
        int rc = 1;
        try {
            rc = cluster_process(scenario, kubeconfig, to_parent[1], to_child[0]);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "cluster: %s\n", e.what());
        }
        std::_Exit(rc);
    }
    ::close(to_parent[1]);
    ::close(to_child[0]);
    if (read_line(to_parent[0]) != "ready") {
        std::fprintf(stderr, "the simulated cluster did not start\n");
        return 1;
    }

    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    auto context = es::context_from_json_text(scenario.context_json());
    es::kube::KubeconfigOptions ko;
    ko.path = kubeconfig;
    auto config = es::kube::load_kubeconfig(ko);
    std::filesystem::remove(kubeconfig);
    es::SentinelSettings settings;
    settings.poll_interval = std::chrono::milliseconds(static_cast<long>(10000 * o.time_scale));
    settings.timeout = std::chrono::milliseconds(static_cast<long>(expected.duration * o.time_scale * 2000) + 30000);
    es::SentinelOptions so;
    so.watch_backoff = scaled_backoff(o.time_scale);
    so.client.backoff = scaled_backoff(o.time_scale);
    so.client.connect_timeout = 2s;
    so.client.request_timeout = 10s;
    so.client.max_retries = 2;
    so.tick_interval = 100ms;
    so.stream_settle = 200ms;
    if (std::getenv("SOAK_LOG")) { // the Sentinel's log lines (watchers failing and recovering), timed
        so.client.log = [wall0 = std::chrono::steady_clock::now()](std::string_view line) {
            std::fprintf(stderr, "%8.3f %.*s\n",
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count(),
                         static_cast<int>(line.size()), line.data());
        };
    }
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, so);
    auto sub = sentinel.subscribe({.capacity = 1000000, .overflow_limit = 1000000, .lifecycle = true});
    std::vector<es::Report> reports;
    bool lost = false;
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    asio::co_spawn(io, collect(sub, reports, lost), asio::detached);
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary sum) {
        if (e) error = e;
        else summary = sum;
    });
    const auto wall0 = std::chrono::steady_clock::now();
    write_line(to_child[1], "go");
    io.run();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    write_line(to_child[1], "end");
    std::istringstream traffic(read_line(to_parent[0]));
    std::string word;
    unsigned long long sent = 0, received = 0, connections = 0, requests = 0, lists = 0, watches = 0, execs = 0,
                       logs = 0, injected = 0, step_errors = 0, steps_run = 0, steps = 0;
    traffic >> word >> sent >> received >> connections >> requests >> lists >> watches >> execs >> logs >> injected >>
        step_errors >> steps_run >> steps;
    int status = 0;
    ::waitpid(child, &status, 0);

    std::printf("soak: %d tasks over %.0f scenario s at time scale %.3g (%.1f wall s), %d watch resets, %d watch "
                "closes, %d compactions, %d + %d bursts of %d (500, 429 Retry-After %d s), %d outages of %.1f s%s\n",
                o.tasks, expected.duration, o.time_scale, wall, o.watch_resets, o.watch_closes, o.compactions,
                o.bursts_500, o.bursts_429, o.burst_size, o.retry_after_seconds, o.outages, o.outage_wall_seconds,
                o.ttl ? (", Job TTL " + std::to_string(static_cast<int>(*o.ttl)) + " s").c_str() : "");
    std::printf("cluster: %llu of %llu steps played (%llu failed), %llu injected failures answered, %llu lists, "
                "%llu watches, %llu execs, %llu log streams\n",
                steps_run, steps, step_errors, injected, lists, watches, execs, logs);
    std::printf("sentinel: peak RSS %.1f MiB, CPU %.2f s (user + system; %.2f s before the watch), %.1f%% of one core\n",
                static_cast<double>(after.ru_maxrss) / 1024.0, cpu_seconds(after), cpu_seconds(before),
                100.0 * (cpu_seconds(after) - cpu_seconds(before)) / wall);
    std::printf("traffic: %.2f MiB received by the sentinel, %.2f MiB sent, %llu connections, %llu requests\n",
                static_cast<double>(sent) / 1048576.0, static_cast<double>(received) / 1048576.0, connections, requests);

    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            std::printf("FAIL: watch() failed: %s\n", e.what());
        }
        return 1;
    }
    if (!summary) return 1;
    const auto audit = est::audit_soak(reports, *summary, expected);
    if (std::getenv("SOAK_REPORTS")) { // every report, one JSON line each, for a closer look
        std::ofstream log(std::getenv("SOAK_REPORTS"));
        for (auto& r : reports) log << boost::json::serialize(es::to_json(r)) << '\n';
    }
    std::printf("reports: %zu (", reports.size());
    bool first = true;
    for (auto& [type, n] : audit.counts) {
        std::printf("%s%s %d", first ? "" : ", ", std::string(es::to_string(type)).c_str(), n);
        first = false;
    }
    std::printf(")\nsummary: %d of %d tasks completed, %d failed, %d inferred, %d with an unknown outcome, %zu "
                "OOM-killed, exit code %s\n",
                summary->completed_tasks, summary->total_tasks, summary->failed_tasks, summary->inferred_completed,
                summary->vanished_tasks, summary->oom_killed.size(),
                summary->exit_code ? std::to_string(*summary->exit_code).c_str() : "none");
    std::printf("vanished: %d tasks told vanished (their objects deleted before their end was seen), %d of them "
                "resolved later by the engine's log, %d left with an unknown outcome; %d straggler reports\n",
                audit.vanished_told, audit.vanished_told - audit.vanished_unresolved, audit.vanished_unresolved,
                audit.stragglers);
    // How long the Sentinel had no full contact (CONNECTIVITY_LOSS to CONNECTIVITY_RESTORED), and how many of the
    // run's transitions it saw.
    double blind = 0;
    bool in_loss = false;
    es::Timestamp loss{};
    for (auto& r : reports) {
        if (r.type == es::ReportType::CONNECTIVITY_LOSS) {
            loss = r.timestamp;
            in_loss = true;
        }
        if (r.type == es::ReportType::CONNECTIVITY_RESTORED && in_loss) {
            blind += std::chrono::duration<double>(r.timestamp - loss).count();
            in_loss = false;
        }
    }
    std::printf("contact: lost %d times, %.1f of %.1f wall s without full contact; %d of %d task starts seen "
                "(TASK_STARTED), %d of %d failed attempts seen as such (TASK_FAILED)\n",
                audit.connectivity_losses, blind, wall, audit.counts.count(es::ReportType::TASK_STARTED) ? audit.counts.at(es::ReportType::TASK_STARTED) : 0,
                o.tasks + expected.failed_attempts + expected.oom_kills, audit.lifecycle_failed,
                expected.failed_attempts + expected.oom_kills);
    if (lost) std::printf("FAIL: the subscription lost reports\n");
    for (auto& p : audit.problems) std::printf("FAIL: %s\n", p.c_str());
    const bool ok = audit.ok() && !lost && step_errors == 0;
    std::printf("%s\n", ok ? "audit: every task's end counted once, no report repeated, one COMPLETION"
                           : "audit: FAILED");
    return ok ? 0 : 1;
}

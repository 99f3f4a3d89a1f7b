// Traffic of watching against polling (docs/performance.md, "Traffic"): the same HyperFlow run of 1,000 tasks is
// played on two simulated clusters at once; a DefaultSentinel watches one (everything it opens: the pod, Job,
// Event and engine watches with bookmarks, the engine's log, the completion probe every 10 s, the metrics API
// every 15 s) in real (scaled) time; a polling client lists the task pods, the task Jobs and the namespace's
// Events of the other every 10 scenario seconds, as the original monitoring tool did (that cluster is stepped to
// each poll's time, so the lists are exactly those of that moment). Each cluster counts the bytes its sockets carry (FakeCluster::
// traffic()); the bench prints both totals, the Sentinel's bytes per request kind and the ratio, once without a
// Job TTL and once with HyperFlow's 100 s TTL (finished Jobs and their pods deleted 100 s after they finish).
//
// The run: 400 individuals (50 s), 20 individuals_merge (160 s), 20 sifting (4 s), 280 mutation_overlap (200 s)
// and 280 frequency (480 s) tasks, each ±20 %, 10 s from Job to running, on 32 slots in DAG order: about
// 6,900 s of scenario time, played at `time_scale` (default 0.02: 10 scenario seconds are 0.2 wall seconds; the
// polling interval, the probes, the metrics period and the bookmarks scale with it).
//
// Usage: traffic_bench [--tasks 1000] [--time-scale 0.02] [--ttl none|100|both] [--slots 32]
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

struct RunShape {
    int tasks = 1000;
    int slots = 32;
    double time_scale = 0.02;
    std::optional<double> ttl;
};

/// The run: 1000genome's task mix in DAG order on `slots` slots (a task holds its slot from its Job's creation to
/// its end), durations ±20 % from a fixed seed.
est::Scenario run_scenario(const RunShape& shape) {
    struct Type {
        const char* name;
        double share, duration;
    };
    static const Type types[] = {{"individuals", 0.40, 50},       {"sifting", 0.02, 4},
                                 {"individuals_merge", 0.02, 160}, {"mutation_overlap", 0.28, 200},
                                 {"frequency", 0.28, 480}};
    est::Scenario s;
    s.name = "traffic";
    s.namespace_name = "wf-traffic";
    s.time_scale = shape.time_scale;
    s.seed = 5;
    s.engine_at = 0;
    s.support_objects_at = 0;
    s.ttl_seconds_after_finished = shape.ttl;
    std::mt19937_64 rng(17);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
    for (int i = 0; i < shape.slots; ++i) free_at.push(5);
    int proc = 0;
    double last_end = 0;
    for (const auto& type : types) {
        const int n = std::max(1, static_cast<int>(type.share * shape.tasks + 0.5));
        for (int k = 0; k < n && proc < shape.tasks; ++k) {
            est::TaskDecl t;
            t.type = type.name;
            t.proc_id = ++proc;
            t.name = t.effective_id();
            t.start = free_at.top();
            free_at.pop();
            t.pending = 10;
            t.duration = type.duration * jitter(rng);
            t.expected_duration = type.duration * 3;
            const double end = t.start + t.pending + t.duration;
            free_at.push(end);
            last_end = std::max(last_end, end);
            s.add_task(t);
        }
    }
    s.complete_at(last_end + 15, 0);
    return s;
}

std::chrono::milliseconds scaled(double scenario_seconds, double time_scale) {
    return std::chrono::milliseconds(std::max<long>(1, static_cast<long>(scenario_seconds * time_scale * 1000)));
}

/// What a request was, for the breakdown: "watch pods", "list events", "exec", "log", "metrics" …
std::string request_kind(const std::string& target) {
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    const std::string query = q == std::string::npos ? std::string() : target.substr(q + 1);
    if (path.find("metrics.k8s.io") != std::string::npos) return "metrics";
    if (path.ends_with("/exec")) return "exec (completion probe)";
    if (path.ends_with("/log")) return "engine log";
    const bool watch = query.find("watch=true") != std::string::npos || query.find("watch=1") != std::string::npos;
    std::string resource = path.substr(path.rfind('/') + 1);
    if (query.find("fieldSelector=metadata.name") != std::string::npos ||
        query.find("component") != std::string::npos)
        resource = "engine pod";
    return (watch ? "watch " : "list ") + resource;
}

struct Totals {
    std::uint64_t bytes = 0; ///< server → client
    std::map<std::string, std::uint64_t> by_kind;
    std::map<std::string, int> requests_by_kind;
};

Totals totals_of(const est::FakeCluster& cluster) {
    Totals t;
    const auto traffic = cluster.traffic();
    t.bytes = traffic.bytes_sent;
    std::uint64_t in_requests = 0;
    for (const auto& r : traffic.requests) {
        const auto kind = request_kind(r.target);
        t.by_kind[kind] += r.bytes_sent;
        ++t.requests_by_kind[kind];
        in_requests += r.bytes_sent;
    }
    t.by_kind["TLS handshakes and closes"] += traffic.bytes_sent - in_requests;
    return t;
}

asio::awaitable<void> drain(es::ReportSubscription& sub) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec == es::channel_error::closed) co_return;
    }
}

/// Lists the task pods, the task Jobs and the Events at scenario times 0, 10, 20 … (`count` polls): `advance(t)`
/// plays the polled cluster's scenario up to t first, so each poll sees the cluster exactly as it is at its
/// time, however long the lists take to serve.
asio::awaitable<void> poll(es::kube::Client& client, std::string ns, std::string selector,
                           std::function<void(double)> advance, int count, int& polls) {
    const std::string encoded = [&] {
        std::string out;
        for (char c : selector) out += c == '=' ? std::string("%3D") : c == ',' ? std::string("%2C") : std::string(1, c);
        return out;
    }();
    const std::string targets[] = {"/api/v1/namespaces/" + ns + "/pods?labelSelector=" + encoded,
                                   "/apis/batch/v1/namespaces/" + ns + "/jobs?labelSelector=" + encoded,
                                   "/api/v1/namespaces/" + ns + "/events"};
    for (int k = 0; k < count; ++k) {
        advance(10.0 * k);
        for (const auto& target : targets) {
            es::kube::RequestOptions ro;
            ro.max_response_bytes = std::size_t{1} << 30;
            try {
                (void)co_await client.request(boost::beast::http::verb::get, target, std::string(), std::move(ro));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "poll failed: %s\n", e.what());
            }
        }
        ++polls;
    }
}

int measure(const RunShape& shape) {
    const auto scenario = run_scenario(shape);
    const double duration = *scenario.completion_at;
    est::FakeClusterOptions co;
    co.default_namespace = scenario.namespace_name;
    co.bookmark_interval = scaled(60, shape.time_scale); // the apiserver's watch cache sends one a minute
    co.history_limit = 100000;
    co.watch_queue_limit = 100000;
    est::FakeCluster watched(co), polled(co);
    est::ScenarioRunner watched_runner(watched, scenario), polled_runner(polled, scenario);
    const auto context = es::context_from_json_text(scenario.context_json());

    // The Sentinel with its defaults, its periods at the run's scale.
    es::SentinelSettings settings;
    settings.poll_interval = scaled(10, shape.time_scale);
    settings.metrics_interval = scaled(15, shape.time_scale);
    settings.timeout = scaled(duration * 2, shape.time_scale) + 60s;
    es::SentinelOptions so;
    so.tick_interval = 100ms;
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings,
                                 es::kube::load_kubeconfig_from_string(watched.kubeconfig(), "watched"), so);
    auto sub = sentinel.subscribe({.capacity = 100000});
    asio::co_spawn(io, drain(sub), asio::detached);
    std::optional<es::WatchSummary> summary;
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary s) {
        if (!e) summary = s;
    });

    // The polling client on its own thread.
    asio::io_context poll_io;
    es::kube::Client poll_client(poll_io.get_executor(),
                                 es::kube::load_kubeconfig_from_string(polled.kubeconfig(), "polled"));
    int polls = 0;
    const int poll_count = static_cast<int>(duration / 10) + 1; // at t = 0, 10, 20 … until the engine's exit code
    asio::co_spawn(poll_io,
                   poll(poll_client, scenario.namespace_name, context.task_label_selector,
                        [&](double t) { polled_runner.run_until(t); }, poll_count, polls),
                   asio::detached);

    const auto wall0 = std::chrono::steady_clock::now();
    watched_runner.start();
    std::thread poll_thread([&] { poll_io.run(); });
    io.run(); // until the Sentinel reads the completion signal
    poll_thread.join();
    watched_runner.stop();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();

    const auto w = totals_of(watched);
    const auto p = totals_of(polled);
    std::printf("\n%d tasks on %d slots, %.0f scenario s (%.1f wall s at time scale %g), Job TTL %s\n", shape.tasks,
                shape.slots, duration, wall, shape.time_scale,
                shape.ttl ? (std::to_string(static_cast<int>(*shape.ttl)) + " s").c_str() : "none");
    if (!summary) std::printf("  the Sentinel did not finish\n");
    else
        std::printf("  Sentinel: %d of %d tasks completed, exit code %s\n", summary->completed_tasks,
                    summary->total_tasks, summary->exit_code ? std::to_string(*summary->exit_code).c_str() : "none");
    std::printf("  Sentinel (watches):   %10.2f MiB over %llu connections\n", static_cast<double>(w.bytes) / 1048576.0,
                static_cast<unsigned long long>(watched.stats().connections));
    for (auto& [kind, bytes] : w.by_kind)
        std::printf("    %-28s %10.3f MiB  %5d requests\n", kind.c_str(), static_cast<double>(bytes) / 1048576.0,
                    w.requests_by_kind.count(kind) ? w.requests_by_kind.at(kind) : 0);
    std::printf("  polling every 10 s:   %10.2f MiB (%d polls)\n", static_cast<double>(p.bytes) / 1048576.0, polls);
    for (auto& [kind, bytes] : p.by_kind)
        std::printf("    %-28s %10.3f MiB  %5d requests\n", kind.c_str(), static_cast<double>(bytes) / 1048576.0,
                    p.requests_by_kind.count(kind) ? p.requests_by_kind.at(kind) : 0);
    std::printf("  ratio (polling / watches): %.1fx\n", w.bytes > 0 ? static_cast<double>(p.bytes) / static_cast<double>(w.bytes) : 0.0);
    return summary ? 0 : 1;
}

int usage() {
    std::fprintf(stderr, "usage: traffic_bench [--tasks N] [--time-scale X] [--ttl none|100|both] [--slots N]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    RunShape shape;
    std::string ttl = "both";
    for (int i = 1; i < argc; ++i) {
        const std::string key = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string value = argv[++i];
        if (key == "--tasks") shape.tasks = std::max(1, std::atoi(value.c_str()));
        else if (key == "--time-scale") shape.time_scale = std::max(1e-4, std::atof(value.c_str()));
        else if (key == "--slots") shape.slots = std::max(1, std::atoi(value.c_str()));
        else if (key == "--ttl") ttl = value;
        else return usage();
    }
    int rc = 0;
    if (ttl == "none" || ttl == "both") rc |= measure(shape);
    if (ttl != "none") {
        shape.ttl = ttl == "both" ? 100.0 : std::atof(ttl.c_str());
        rc |= measure(shape);
    }
    return rc;
}

// Reaction time of the Sentinel: a FakeCluster on loopback plays task completions one at a time; for each, the time
// from the write of the pod/Job status change to the PROGRESS report reaching a subscriber is measured.
//
// Usage: reaction_time_bench [changes=300] [builtin|original6] [--tracked N] [--background R]
//   builtin       DefaultSentinel: the built-in detectors (default)
//   original6     a Sentinel with the six original detectors only (progress, OOM kill, straggler, mass failure,
//                 connectivity, completion): run both in turn to see what the diagnosis detectors add to the read
//                 path
//   --tracked N   fleet scale: N more running task pods (and their Jobs) that the Sentinel tracks (default 0)
//   --background R  R changes per second to those pods (an annotation written, a MODIFIED event each) streaming in
//                 during the whole measurement, from another thread (default 0); the measured changes are then
//                 spread 20–80 ms apart
//   --no-metrics  the Sentinel does not read the metrics API (to tell its share of the tail)
//   --view-interval MS  SentinelOptions::view_interval (how often the view() snapshot is made again; default 100)
// Prints p50, p90, p99 and max in milliseconds, one line each, then the load (background changes per second
// achieved, the Sentinel thread's CPU), and exits 1 when fewer reports than changes arrived.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using Clock = std::chrono::steady_clock;

static est::FakeClusterOptions cluster_options(std::string ns) {
    est::FakeClusterOptions o;
    o.default_namespace = std::move(ns);
    return o;
}

using Original6Sentinel = es::Sentinel<es::ProgressDetector, es::OomKillDetector, es::StragglerDetector,
                                       es::MassFailureDetector, es::ConnectivityDetector, es::CompletionDetector>;

/// CPU seconds a thread has used so far.
static double thread_cpu_seconds(std::thread& t) {
    clockid_t id{};
    if (pthread_getcpuclockid(t.native_handle(), &id) != 0) return 0;
    timespec ts{};
    if (clock_gettime(id, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

static std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five, fifteen;
    in >> one >> five >> fifteen;
    return one + " " + five + " " + fifteen;
}

struct Fleet {
    int tracked = 0;          ///< more running task pods the Sentinel tracks
    double background = 0;    ///< changes per second to them while measuring
    bool metrics = true;      ///< the Sentinel reads the metrics API (every 15 s, its default)
    long view_interval_ms = -1; ///< SentinelOptions::view_interval; -1 = its default
};

template <class SentinelType> static int measure(int changes, const char* label, Fleet fleet) {
    // `changes` tasks that all run from t=12; task i finishes at t = 20 + i (scenario seconds, stepped by hand).
    // At fleet scale, `fleet.tracked` more tasks run from t=12 and never end.
    est::Scenario s;
    s.name = "reaction-time";
    s.namespace_name = "bench";
    s.engine_at = 0;
    for (int i = 0; i < changes; ++i) {
        est::TaskDecl t;
        t.type = "individuals";
        t.proc_id = i + 1;
        t.name = t.effective_id();
        t.start = 1;
        t.pending = 1;
        t.duration = 18 + i;
        s.add_task(t);
    }
    std::vector<std::string> fleet_tasks;
    for (int i = 0; i < fleet.tracked; ++i) {
        est::TaskDecl t;
        t.type = "frequency";
        t.proc_id = changes + i + 1;
        t.name = t.effective_id();
        t.start = 1;
        t.pending = 1;
        t.outcome = est::TaskOutcome::running;
        t.expected_duration = 1e6; // never a straggler
        fleet_tasks.push_back(t.effective_id());
        s.add_task(t);
    }

    auto options_of_cluster = cluster_options("bench");
    options_of_cluster.history_limit = 20000 + 12 * static_cast<std::size_t>(fleet.tracked);
    options_of_cluster.watch_queue_limit = 100000;
    est::FakeCluster cluster(options_of_cluster);
    est::ScenarioRunner runner(cluster, s);
    runner.run_until(12); // every task running before the watch starts
    std::vector<std::string> fleet_pods;
    for (auto& t : fleet_tasks) fleet_pods.push_back(runner.pod_names_of(t).back());

    es::SentinelSettings settings;
    settings.poll_interval = std::chrono::seconds(60); // keep completion probes out of the measurement
    if (!fleet.metrics) settings.metrics_interval = std::chrono::milliseconds(0);
    settings.timeout = std::chrono::hours(1);
    es::SentinelOptions options;
    options.watch_events = false;
    if (fleet.view_interval_ms >= 0) options.view_interval = std::chrono::milliseconds(fleet.view_interval_ms);
    auto context = es::context_from_json_text(s.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");

    asio::io_context io;
    SentinelType sentinel(io.get_executor(), context, settings, config, options);
    auto sub = sentinel.subscribe({.capacity = 100000});

    std::mutex mu;
    std::condition_variable cv;
    int completed = 0;         // highest completed count reported so far
    Clock::time_point arrived; // when it arrived

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
                if (ec == es::channel_error::closed) co_return;
                if (ec || r.type != es::ReportType::PROGRESS) continue;
                std::lock_guard lock(mu);
                if (r.completed_tasks > completed) {
                    completed = r.completed_tasks;
                    arrived = Clock::now();
                    cv.notify_all();
                }
            }
        },
        asio::detached);
    asio::cancellation_signal stop;
    asio::co_spawn(io, sentinel.watch(), asio::bind_cancellation_slot(stop.slot(), asio::detached));
    std::thread io_thread([&] { io.run(); });

    // Let the initial lists settle (the first report is the running phase): every task is seen running (a list of
    // 10,000 pods and Jobs takes seconds on a loaded machine), then half a second more.
    for (int waited = 0; waited < 600 && sentinel.view().running < changes + fleet.tracked; ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));

    // The background: other pods change at a steady rate, paced on an absolute schedule.
    std::atomic<bool> stop_background{false};
    std::atomic<long> background_changes{0};
    std::thread background;
    if (!fleet_pods.empty() && fleet.background > 0) {
        background = std::thread([&] {
            const auto period = std::chrono::duration<double>(1.0 / fleet.background);
            const auto start = Clock::now();
            for (long n = 0; !stop_background; ++n) {
                std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(period * n));
                const auto& pod = fleet_pods[static_cast<std::size_t>(n) % fleet_pods.size()];
                cluster.modify("pods", "bench", pod, [n](boost::json::object& p) {
                    p["metadata"].as_object()["annotations"] = boost::json::object{{"bench/change", n}};
                });
                ++background_changes;
            }
        });
        std::this_thread::sleep_for(std::chrono::seconds(1)); // the stream is flowing before the first sample
    }
    const auto measure_start = Clock::now();
    const double cpu_start = thread_cpu_seconds(io_thread);
    const long background_start = background_changes;

    std::vector<double> samples, writes; // writes: how long the simulated cluster took to take the change
    samples.reserve(static_cast<std::size_t>(changes));
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> spacing(20, 80);
    for (int i = 0; i < changes; ++i) {
        const auto before = Clock::now();
        runner.run_until(20 + i); // writes the pod's terminated status, then the Job's
        writes.push_back(std::chrono::duration<double, std::milli>(Clock::now() - before).count());
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return completed >= i + 1; })) {
            std::fprintf(stderr, "no report for change %d within 5 s\n", i + 1);
            break;
        }
        samples.push_back(std::chrono::duration<double, std::milli>(arrived - before).count());
        lock.unlock();
        // With a background stream, the changes are spread out (20–80 ms apart, at random) so that the samples
        // fall anywhere among the background's changes rather than in one burst between two of them.
        if (fleet.background > 0) std::this_thread::sleep_for(std::chrono::milliseconds(spacing(rng)));
    }

    const double measured = std::chrono::duration<double>(Clock::now() - measure_start).count();
    const double cpu = thread_cpu_seconds(io_thread) - cpu_start;
    const long streamed = background_changes - background_start;
    stop_background = true;
    if (background.joinable()) background.join();
    asio::post(io, [&] { stop.emit(asio::cancellation_type::terminal); });
    io_thread.join();

    if (samples.empty()) return 1;
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        auto idx = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
        return samples[std::min(idx, samples.size() - 1)];
    };
    std::printf("reaction time over %zu pod status changes (FakeCluster on loopback, HTTPS watch, %s detectors)\n",
                samples.size(), label);
    std::printf("p50 %.3f ms\np90 %.3f ms\np99 %.3f ms\nmax %.3f ms\n", pct(0.50), pct(0.90), pct(0.99),
                samples.back());
    std::sort(writes.begin(), writes.end());
    std::printf("the simulated cluster's writes (included above): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
                writes[writes.size() / 2], writes[std::min(writes.size() - 1, static_cast<std::size_t>(0.99 * static_cast<double>(writes.size() - 1) + 0.5))],
                writes.back());
    std::printf("metrics API read every %lld ms (0 = not at all)\n",
                static_cast<long long>(settings.metrics_interval.count()));
    std::printf("load: %d tasks tracked (%d + %d), %.1f other pod changes/s streamed in (%ld in %.1f s), "
                "Sentinel thread %.1f%% of a core, load average %s\n",
                changes + fleet.tracked, changes, fleet.tracked, static_cast<double>(streamed) / measured, streamed,
                measured, 100.0 * cpu / measured, load_average().c_str());
    return static_cast<int>(samples.size()) == changes ? 0 : 1;
}

int main(int argc, char** argv) {
    std::vector<std::string_view> positional;
    Fleet fleet;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--no-metrics") {
            fleet.metrics = false;
        } else if ((a == "--tracked" || a == "--background" || a == "--view-interval") && i + 1 < argc) {
            if (a == "--view-interval") fleet.view_interval_ms = std::max(0, std::atoi(argv[++i]));
            else if (a == "--tracked") fleet.tracked = std::max(0, std::atoi(argv[++i]));
            else fleet.background = std::max(0.0, std::atof(argv[++i]));
        } else if (a.starts_with("--")) {
            std::fprintf(stderr, "unknown option '%.*s' (--tracked N, --background R, --no-metrics, --view-interval MS)\n", static_cast<int>(a.size()),
                         a.data());
            return 2;
        } else {
            positional.push_back(a);
        }
    }
    const int changes = !positional.empty() ? std::max(1, std::atoi(std::string(positional[0]).c_str())) : 300;
    const std::string_view set = positional.size() > 1 ? positional[1] : "builtin";
    if (set == "builtin") return measure<es::DefaultSentinel>(changes, "built-in", fleet);
    if (set == "original6") return measure<Original6Sentinel>(changes, "the six original", fleet);
    std::fprintf(stderr, "unknown detector set '%.*s' (builtin or original6)\n", static_cast<int>(set.size()), set.data());
    return 2;
}

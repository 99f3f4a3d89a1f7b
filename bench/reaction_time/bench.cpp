// Reaction time of the Sentinel: a FakeCluster on loopback plays task completions one at a time; for each, the time
// from the write of the pod/Job status change to the PROGRESS report reaching a subscriber is measured.
//
// Usage: reaction_time_bench [changes=300]
// Prints p50, p90, p99 and max in milliseconds, one line each, and exits 1 when fewer reports than changes arrived.
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

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
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

int main(int argc, char** argv) {
    const int changes = argc > 1 ? std::max(1, std::atoi(argv[1])) : 300;

    // `changes` tasks that all run from t=12; task i finishes at t = 20 + i (scenario seconds, stepped by hand).
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

    est::FakeCluster cluster(cluster_options("bench"));
    est::ScenarioRunner runner(cluster, s);
    runner.run_until(12); // every task running before the watch starts

    es::SentinelSettings settings;
    settings.poll_interval = std::chrono::seconds(60); // keep completion probes out of the measurement
    settings.timeout = std::chrono::hours(1);
    es::SentinelOptions options;
    options.watch_events = false;
    auto context = es::context_from_json_text(s.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");

    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, options);
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

    // Let the initial lists settle (the first report is the running phase).
    std::this_thread::sleep_for(std::chrono::milliseconds(500));

    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(changes));
    for (int i = 0; i < changes; ++i) {
        const auto before = Clock::now();
        runner.run_until(20 + i); // writes the pod's terminated status, then the Job's
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return completed >= i + 1; })) {
            std::fprintf(stderr, "no report for change %d within 5 s\n", i + 1);
            break;
        }
        samples.push_back(std::chrono::duration<double, std::milli>(arrived - before).count());
    }

    asio::post(io, [&] { stop.emit(asio::cancellation_type::terminal); });
    io_thread.join();

    if (samples.empty()) return 1;
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        auto idx = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1) + 0.5);
        return samples[std::min(idx, samples.size() - 1)];
    };
    std::printf("reaction time over %zu pod status changes (FakeCluster on loopback, HTTPS watch)\n", samples.size());
    std::printf("p50 %.3f ms\np90 %.3f ms\np99 %.3f ms\nmax %.3f ms\n", pct(0.50), pct(0.90), pct(0.99),
                samples.back());
    return static_cast<int>(samples.size()) == changes ? 0 : 1;
}

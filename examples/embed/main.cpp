// Embedding execution-sentinel in a C++ workflow orchestrator.
//
// The orchestrator has started a HyperFlow run and knows its MonitoringContext. It constructs a Sentinel, starts
// watch() as a coroutine, drains reports concurrently from a subscription (a UI, a replanner...), and reads the
// WatchSummary when watch() completes. To run without a cluster, this example starts a FakeCluster playing a
// small scenario; with a real cluster, drop the FakeCluster and construct the Sentinel without a ClusterConfig
// (it is then loaded from settings.kubeconfig, KUBECONFIG, ~/.kube/config or the in-cluster service account).
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <exception>
#include <iostream>

namespace asio = boost::asio;
namespace es = execution_sentinel;

namespace {

es::testing::FakeClusterOptions cluster_options(std::string ns) {
    es::testing::FakeClusterOptions o;
    o.default_namespace = std::move(ns);
    return o;
}

/// A small run: four tasks, one of which runs out of memory; the engine writes exit code 1.
es::testing::Scenario demo_scenario() {
    es::testing::Scenario s;
    s.name = "embed-demo";
    s.namespace_name = "wf-demo";
    s.time_scale = 0.02; // 100 scenario seconds play in 2 wall seconds
    s.engine_at = 0;
    int proc = 1;
    for (auto type : {"individuals", "individuals", "sifting", "frequency"}) {
        es::testing::TaskDecl t;
        t.type = type;
        t.proc_id = proc++;
        t.name = t.effective_id();
        t.start = 1 + proc;
        t.duration = 20;
        if (t.type == "frequency") {
            t.outcome = es::testing::TaskOutcome::oom;
            t.memory_limit = "512Mi";
            t.backoff_limit = 0;
        }
        s.add_task(t);
    }
    s.complete_at(60, 1);
    return s;
}

/// The orchestrator's consumer: prints every report until the channel closes.
asio::awaitable<void> print_reports(es::ReportSubscription subscription) {
    for (;;) {
        auto [ec, report] = co_await subscription.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec == es::channel_error::reports_lost) {
            std::cout << "(" << subscription.lost_reports() << " reports lost: the consumer fell behind)\n";
            continue;
        }
        if (ec) co_return; // channel_error::closed: watch() has ended and everything was received
        std::cout << "[" << es::to_string(report.type) << "] " << report.completed_tasks << "/" << report.total_tasks
                  << "  " << report.message << "\n";
    }
}

} // namespace

int main() try {
    // --- the simulated cluster (replace with a real one in production)
    auto scenario = demo_scenario();
    es::testing::FakeCluster cluster(cluster_options(scenario.namespace_name));
    es::testing::ScenarioRunner runner(cluster, scenario);
    runner.start();
    auto cluster_config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "demo-kubeconfig");

    // --- what the orchestrator knows about its run
    es::MonitoringContext context = es::context_from_json_text(scenario.context_json());
    es::SentinelSettings settings;
    settings.poll_interval = std::chrono::milliseconds(250);
    settings.timeout = std::chrono::seconds(60);

    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, cluster_config);

    // Subscribe before watch() starts so that no report is missed.
    asio::co_spawn(io, print_reports(sentinel.subscribe()), asio::detached);

    asio::co_spawn(io, sentinel.watch(), [](std::exception_ptr error, es::WatchSummary summary) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                std::cerr << "watch failed: " << e.what() << "\n";
            }
            return;
        }
        std::cout << "summary: " << boost::json::serialize(es::to_json(summary)) << "\n";
        // succeeded, failed (non-zero exit code, mass failure, or no exit code at all) or timed_out
        std::cout << "outcome: " << es::to_string(summary.outcome()) << "\n";
    });

    io.run(); // returns when watch() has ended and the reports are drained
    runner.stop();
    return 0;
} catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
}

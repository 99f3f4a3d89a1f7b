// A soak on FakeCluster over real HTTPS: a run of 60 tasks (some OOM-killed or failing once, then retried) while
// the watches are reset and closed, the watch history is compacted, bursts of 500 and of 429 with Retry-After
// come, and the API server is unreachable twice. The Sentinel must tell the run exactly once: every task's end
// counted once, no report repeated, one COMPLETION (testing/soak.hpp, audit_soak). bench/soak runs the large one
// (2,000 tasks, 100 watch drops, 10 compactions, 3 outages). About 15 wall seconds.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>
#include <execution_sentinel/testing/soak.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

/// The documented backoff policy at a tenth of its scale, as the scenario runs at a tenth of real time.
es::kube::BackoffOptions tenth_scale_backoff() {
    es::kube::BackoffOptions b;
    b.initial = 80ms;
    b.cap = 3000ms;
    b.jitter = 1.0;
    b.reset_after = 12000ms;
    b.max_retry_after = 1000ms;
    return b;
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

est::SoakOptions small_soak() {
    est::SoakOptions o;
    o.tasks = 60;
    o.time_scale = 0.1;
    o.start_spread = 60;
    o.task_duration = 20;
    o.fail_every = 10;
    o.oom_every = 12;
    o.watch_resets = 6;
    o.watch_closes = 6;
    o.compactions = 2;
    o.bursts_500 = 2;
    o.bursts_429 = 2;
    o.burst_size = 15;
    o.retry_after_seconds = 1;
    o.outages = 2;
    o.outage_wall_seconds = 1.5;
    o.seed = 13;
    return o;
}

} // namespace

TEST_CASE("soak: every task's end counted once, no report repeated, one COMPLETION through a storm of faults",
          "[integration][sentinel][soak]") {
    const auto options = small_soak();
    const auto scenario = est::soak_scenario(options);
    const auto expected = est::soak_expectation(options);
    // The soak has the faults it claims.
    int resets = 0, closes = 0, compactions = 0, bursts = 0, outages = 0;
    for (auto& s : scenario.timeline()) {
        if (s.kind == est::StepKind::reset_watches) ++resets;
        if (s.kind == est::StepKind::close_watches) ++closes;
        if (s.kind == est::StepKind::compact) ++compactions;
        if (s.kind == est::StepKind::fail_next) ++bursts;
        if (s.kind == est::StepKind::refuse_connections) ++outages;
    }
    REQUIRE(resets == options.watch_resets + options.outages + options.compactions);
    REQUIRE(closes == options.watch_closes);
    REQUIRE(compactions == options.compactions);
    REQUIRE(bursts == options.bursts_500 + options.bursts_429);
    REQUIRE(outages == options.outages);

    est::FakeCluster cluster([&] {
        est::FakeClusterOptions o;
        o.default_namespace = scenario.namespace_name;
        return o;
    }());
    auto context = es::context_from_json_text(scenario.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    es::SentinelSettings settings;
    settings.poll_interval = 500ms;
    settings.timeout = 60s;
    settings.straggler_min_runtime = 0ms;
    es::SentinelOptions so;
    so.watch_backoff = tenth_scale_backoff();
    so.client.backoff = tenth_scale_backoff();
    so.client.connect_timeout = 2s;
    so.client.request_timeout = 5s;
    so.client.max_retries = 2;
    so.tick_interval = 100ms;
    so.exec_timeout = 5s;
    so.stream_settle = 200ms;
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, so);
    auto sub = sentinel.subscribe({.capacity = 100000, .overflow_limit = 100000, .lifecycle = true});
    std::vector<es::Report> reports;
    bool lost = false;
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    est::ScenarioRunner runner(cluster, scenario);
    // The lists made before the first compaction: the watchers must list again after it (410 Expired).
    std::optional<std::size_t> lists_before_compaction;
    runner.on_step([&](std::string_view what, bool) {
        if (!lists_before_compaction && what.find("stall_watches") != std::string_view::npos)
            lists_before_compaction = cluster.stats().lists;
    });
    runner.start();
    asio::co_spawn(io, collect(sub, reports, lost), asio::detached);
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary sum) {
        if (e) error = e;
        else summary = sum;
    });
    io.run();
    runner.stop();
    CHECK(runner.errors().empty());
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            FAIL("watch() failed: " << e.what());
        }
    }
    REQUIRE(summary);
    CHECK_FALSE(lost);
    const auto audit = est::audit_soak(reports, *summary, expected);
    std::string problems;
    for (auto& p : audit.problems) problems += p + "\n";
    INFO("problems:\n" << problems);
    CHECK(audit.ok());
    CHECK(audit.completions == 1);
    CHECK(audit.last_progress == expected.succeeded);
    CHECK(audit.lifecycle_completed == expected.succeeded);
    CHECK(audit.started_again.empty()); // a task told started twice (e.g. its Job seen active before its pod)
    // The faults reached the watchers: 500s and 429s were answered, and the watchers listed again after the
    // compactions (pods, Jobs, Events and the engine pod: four lists each time at least).
    const auto stats = cluster.stats();
    CHECK(stats.injected_failures > 0);
    REQUIRE(lists_before_compaction);
    CHECK(stats.lists >= *lists_before_compaction + 4);
}

TEST_CASE("soak: the reset_watches step reads from JSON and its scenario has the faults it claims",
          "[integration][soak][scenario]") {
    auto s = est::Scenario::parse(R"({"namespace": "ns", "steps": [{"at": 1, "action": "reset_watches"}]})");
    REQUIRE(s.steps.size() == 1);
    CHECK(s.steps[0].kind == est::StepKind::reset_watches);
    CHECK(est::step_kind_name(est::StepKind::reset_watches) == "reset_watches");
    CHECK_THROWS_AS(est::Scenario::parse(R"({"steps": [{"at": 1, "action": "reset_watches", "count": 2}]})"),
                    est::ScenarioError); // no fields of its own

    // The faults fall before the last task starts, and the run completes after every task has finished.
    est::SoakOptions o;
    o.tasks = 40;
    const auto scenario = est::soak_scenario(o);
    double last_fault = 0, last_task_step = 0, completion = 0;
    for (auto& step : scenario.timeline()) {
        switch (step.kind) {
        case est::StepKind::reset_watches:
        case est::StepKind::close_watches:
        case est::StepKind::compact:
        case est::StepKind::fail_next:
        case est::StepKind::refuse_connections:
        case est::StepKind::stall_watches: last_fault = std::max(last_fault, step.at); break;
        case est::StepKind::finish_task: last_task_step = std::max(last_task_step, step.at); break;
        case est::StepKind::write_file: completion = step.at; break;
        default: break;
        }
    }
    CHECK(last_fault <= est::soak_faults_end(o) + 2);
    CHECK(last_task_step <= est::soak_last_finish(o));
    CHECK(completion > last_task_step);
    CHECK(completion == est::soak_expectation(o).duration);
}

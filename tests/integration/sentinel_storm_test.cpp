// Sentinel::watch() through a fault storm on FakeCluster over real HTTPS: 429s with Retry-After and a reset of
// every watch, then refused connections, then 503s with a compaction. Every watcher must keep trying with the
// backoff policy and catch up, no task may be judged a straggler on a picture known to be stale, and
// CONNECTIVITY_LOSS/RESTORED must come once per real outage, RESTORED only once the watches stream again.
// The backoff policy keeps its shape (doubling, jitter 1.0, cap, reset) at a tenth of its scale, and so does the
// scenario, so the storm plays in about 16 wall seconds.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

/// The documented policy (0.8 s doubling to 30 s, jitter 1.0, reset after 2 minutes, Retry-After up to 60 s)
/// at a tenth of its scale, except Retry-After, clamped harder so the storm's hints stay short.
es::kube::BackoffOptions tenth_scale_backoff() {
    es::kube::BackoffOptions b;
    b.initial = 80ms;
    b.cap = 3000ms;
    b.jitter = 1.0;
    b.reset_after = 12000ms;
    b.max_retry_after = 300ms;
    return b;
}

es::SentinelOptions storm_options(std::vector<std::string>* log_lines, std::mutex* log_mutex) {
    es::SentinelOptions o;
    o.watch_backoff = tenth_scale_backoff();
    o.client.backoff = tenth_scale_backoff();
    o.client.connect_timeout = 2s;
    o.client.request_timeout = 5s;
    o.client.max_retries = 2;
    o.client.log = [log_lines, log_mutex](std::string_view line) {
        std::lock_guard lock(*log_mutex);
        log_lines->emplace_back(line);
    };
    o.tick_interval = 50ms;
    o.exec_timeout = 5s;
    o.stream_settle = 200ms;
    return o;
}

asio::awaitable<void> collect(es::ReportSubscription& sub, std::vector<es::Report>& out) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec != es::channel_error::reports_lost) co_return;
            continue;
        }
        out.push_back(std::move(r));
    }
}

est::TaskDecl task(int proc_id, double start) {
    est::TaskDecl t;
    t.type = "frequency";
    t.proc_id = proc_id;
    t.name = t.effective_id();
    t.start = start;
    t.pending = 2;
    t.duration = 10;          // 1 wall second
    t.expected_duration = 10; // straggler threshold: 3 wall seconds
    return t;
}

double seconds_between(es::Timestamp a, es::Timestamp b) { return std::chrono::duration<double>(b - a).count(); }

} // namespace

TEST_CASE("sentinel: after a fault storm every watcher catches up, no false straggler, one loss per outage",
          "[integration][sentinel][storm]") {
    est::Scenario s;
    s.name = "storm";
    s.namespace_name = "wf-storm-20261204-220000";
    s.time_scale = 0.1; // 10 scenario seconds per wall second
    s.seed = 11;
    s.engine_at = 0;
    s.support_objects_at = 0;
    const int tasks = 32;
    for (int i = 0; i < tasks; ++i) s.add_task(task(i + 1, 5 + 3 * i)); // one every 0.3 wall s, until 10 s
    s.add(est::step::close_watches(20));
    s.add(est::step::fail_next(20, 30, 429, 3)); // 30 × 429 with Retry-After 3 on whatever comes next
    constexpr double refuse_at = 40, refuse_wall = 2.0;
    s.add(est::step::refuse_connections(refuse_at, refuse_wall));
    // A new outage five wall seconds after the refusal (a watcher may stay blind up to the 3 s cap after the
    // refusal ends, and the first outage is restored only then).
    s.add(est::step::compact(110));
    s.add(est::step::close_watches(110));
    s.add(est::step::fail_next(110, 15, 503)); // the relists after the compaction meet 503s
    s.complete_at(160, 0);

    est::FakeCluster cluster([&] {
        est::FakeClusterOptions o;
        o.default_namespace = s.namespace_name;
        return o;
    }());
    auto context = es::context_from_json_text(s.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    es::SentinelSettings settings;
    settings.poll_interval = 100ms;
    settings.timeout = 40s;
    settings.straggler_min_runtime = 0ms;
    std::vector<std::string> log_lines;
    std::mutex log_mutex;
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, storm_options(&log_lines, &log_mutex));
    auto sub = sentinel.subscribe({.capacity = 100000});
    std::vector<es::Report> reports;
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    est::ScenarioRunner runner(cluster, s);
    // When each task's finish step really ran (the runner may lag behind its plan on a slow machine): a
    // straggler judged while the task still ran in the cluster is a fair judgement, one judged after is not.
    std::mutex finish_mutex;
    std::map<std::string, es::Timestamp> finished_at;
    runner.on_step([&](std::string_view what, bool ok) {
        auto open = what.find("(tasks[");
        if (!ok || open == std::string_view::npos || what.find("finish_task") == std::string_view::npos) return;
        auto close = what.find(']', open);
        int index = std::stoi(std::string(what.substr(open + 7, close - open - 7)));
        std::lock_guard lock(finish_mutex);
        finished_at.emplace("frequency-" + std::to_string(index + 1), es::Clock::now());
    });
    runner.start();
    asio::co_spawn(io, collect(sub, reports), asio::detached);
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
    std::string trace;
    for (auto& r : reports) trace += std::string(es::to_string(r.type)) + " " + r.message + "\n";
    INFO("reports:\n" << trace);
    CHECK(summary->exit_code == std::optional<int>(0));

    // Every task was seen finishing: the watchers caught up before the end, nothing had to be inferred.
    CHECK(summary->inferred_completed == 0);
    CHECK(summary->completed_tasks == tasks);
    std::set<int> counts;
    for (auto& r : reports)
        if (r.type == es::ReportType::PROGRESS) counts.insert(r.completed_tasks);
    CHECK(counts.count(tasks) == 1);

    // Every task ran for its expected duration: none is a straggler on a stale picture, whatever the watches
    // went through. A task the runner finished late (a loaded machine) really ran long: judging it while it still
    // ran in the cluster is right; judging it after it had finished would be the stale picture this guards.
    {
        std::lock_guard lock(finish_mutex);
        int late_judgements = 0;
        for (auto& r : reports) {
            if (r.type != es::ReportType::ANOMALY_STRAGGLER) continue;
            auto it = finished_at.find(r.task_name);
            INFO("straggler " << r.task_name);
            REQUIRE(it != finished_at.end());
            if (r.timestamp >= it->second) ++late_judgements;
        }
        CHECK(late_judgements == 0);
    }

    // Losses and restorations alternate, one of each per outage, never a restoration while connections are
    // refused, and never a new loss right after a restoration (flapping).
    const auto refuse_from = runner.wall_time(refuse_at) + 200ms;
    const auto refuse_to = runner.wall_time(refuse_at) +
                           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(refuse_wall));
    std::optional<es::Report> last;
    int losses = 0, restorations = 0;
    for (auto& r : reports) {
        if (r.type != es::ReportType::CONNECTIVITY_LOSS && r.type != es::ReportType::CONNECTIVITY_RESTORED) continue;
        if (r.type == es::ReportType::CONNECTIVITY_LOSS) {
            ++losses;
            CHECK((!last || last->type == es::ReportType::CONNECTIVITY_RESTORED));
            if (last) CHECK(seconds_between(last->timestamp, r.timestamp) >= 1.0);
            CHECK_FALSE(r.details.at("cause").as_string().empty());
        } else {
            ++restorations;
            REQUIRE(last);
            CHECK(last->type == es::ReportType::CONNECTIVITY_LOSS);
            INFO("restored " << seconds_between(refuse_from, r.timestamp) << " s after the refusal began");
            CHECK_FALSE((r.timestamp > refuse_from && r.timestamp < refuse_to));
        }
        last = r;
    }
    CHECK(losses >= 1);
    CHECK(losses <= 3); // three storms at most
    CHECK(restorations == losses);

    // The failing watchers were logged through the client's logger, with their cause.
    std::lock_guard lock(log_mutex);
    bool refused_logged = false;
    for (auto& l : log_lines)
        if (l.find("cannot connect") != std::string::npos) refused_logged = true;
    CHECK(refused_logged);
}

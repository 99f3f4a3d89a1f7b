// Baselines learned from past runs, end to end: a history store filled with past runs of a type, then a watched
// run on FakeCluster (real HTTPS) where a task of that type takes far longer than its history while the inventory
// has no estimate.
#include <execution_sentinel/history/baselines.hpp>
#include <execution_sentinel/history/memory_store.hpp>
#include <execution_sentinel/history/sqlite_store.hpp>
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
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
namespace h = execution_sentinel::history;
using namespace std::chrono_literals;

namespace {

es::SentinelOptions fast_options() {
    es::SentinelOptions o;
    o.watch_backoff.initial = 50ms;
    o.watch_backoff.cap = 400ms;
    o.client.backoff.initial = 50ms;
    o.client.backoff.cap = 400ms;
    o.client.connect_timeout = 2s;
    o.client.request_timeout = 5s;
    o.client.max_retries = 2;
    o.tick_interval = 50ms;
    o.exec_timeout = 5s;
    o.stream_settle = 200ms;
    return o;
}

es::SentinelSettings fast_settings() {
    es::SentinelSettings s;
    s.poll_interval = 100ms;
    s.timeout = 30s;
    s.straggler_min_runtime = 0ms;
    return s;
}

struct Outcome {
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    std::vector<es::Report> reports;
    std::vector<std::string> runner_errors;
};

asio::awaitable<void> collect(es::ReportSubscription& sub, Outcome& out) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec != es::channel_error::reports_lost) co_return;
            continue;
        }
        out.reports.push_back(std::move(r));
    }
}

/// Plays `scenario` and watches it with `baselines`; the inventory carries no expected duration.
Outcome watch_with(const est::Scenario& scenario, es::Baselines baselines) {
    est::FakeClusterOptions co;
    co.default_namespace = scenario.namespace_name;
    est::FakeCluster cluster(co);
    auto context = es::context_from_json_text(scenario.context_json());
    for (auto& t : context.task_inventory) REQUIRE_FALSE(t.expected_duration_seconds.has_value());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    asio::io_context io;
    auto options = fast_options();
    options.baselines = std::move(baselines);
    es::DefaultSentinel sentinel(io.get_executor(), context, fast_settings(), config, options);
    auto sub = sentinel.subscribe({.capacity = 100000, .lifecycle = false});
    Outcome out;
    est::ScenarioRunner runner(cluster, scenario);
    runner.start();
    asio::co_spawn(io, collect(sub, out), asio::detached);
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary s) {
        if (e) out.error = e;
        else out.summary = s;
    });
    io.run();
    runner.stop();
    out.runner_errors = runner.errors();
    return out;
}

est::TaskDecl task(std::string type, int proc_id, double start, double duration,
                   est::TaskOutcome outcome = est::TaskOutcome::succeed) {
    est::TaskDecl t;
    t.type = std::move(type);
    t.proc_id = proc_id;
    t.name = t.effective_id();
    t.start = start;
    t.pending = 2;
    t.duration = duration;
    t.outcome = outcome;
    return t;
}

/// mutation_overlap-1 runs on (1000 scenario seconds, 50 wall seconds), mutation_overlap-2 takes 40 (2 s); the engine
/// exits 0 at 140 (7 wall seconds), well after the 3 s threshold of a 1 s history. Two tasks of the type never
/// make a sibling quorum (at least 3).
est::Scenario slow_run() {
    est::Scenario s;
    s.name = "baselines";
    s.namespace_name = "wf-1000g-20261205-050000";
    s.time_scale = 0.05;
    s.seed = 7;
    s.engine_at = 0;
    s.support_objects_at = 0;
    s.add_task(task("mutation_overlap", 1, 1, 1000, est::TaskOutcome::running));
    s.add_task(task("mutation_overlap", 2, 1, 40));
    s.complete_at(140, 0);
    return s;
}

/// Six past runs of "1000genome", each with one succeeded mutation_overlap attempt of 1 s (and a failed one of
/// 100 s, which is no duration of the type).
void fill(h::RunHistoryStore& store) {
    const auto t0 = es::Timestamp{} + std::chrono::hours(490'000);
    for (int i = 1; i <= 6; ++i) {
        h::RunRecord run;
        run.id = "past-" + std::to_string(i);
        run.namespace_ = "wf-1000g-past-" + std::to_string(i);
        run.workflow_name = "1000genome";
        run.started = t0 + std::chrono::hours(i);
        store.begin_run(run);
        h::TaskAttempt ok;
        ok.run_id = run.id;
        ok.task_name = "mutation_overlap-1";
        ok.task_type = "mutation_overlap";
        ok.started = run.started;
        ok.ended = run.started + 1s;
        ok.status = "succeeded";
        h::TaskAttempt bad = ok;
        bad.task_name = "mutation_overlap-2";
        bad.ended = run.started + 100s;
        bad.status = "failed";
        store.write(std::vector<h::HistoryRecord>{ok, bad});
    }
}

std::vector<es::Report> stragglers(const Outcome& o) {
    std::vector<es::Report> out;
    for (auto& r : o.reports)
        if (r.type == es::ReportType::ANOMALY_STRAGGLER) out.push_back(r);
    return out;
}

void check_finished(const Outcome& o) {
    if (o.error) {
        try {
            std::rethrow_exception(o.error);
        } catch (const std::exception& e) {
            FAIL("watch() failed: " << e.what());
        }
    }
    REQUIRE(o.summary);
    CHECK(o.runner_errors.empty());
    CHECK(o.summary->exit_code == std::optional<int>(0));
}

} // namespace

TEST_CASE("baselines: a task far longer than its history is a straggler on the history basis",
          "[integration][baselines]") {
    std::shared_ptr<h::RunHistoryStore> store;
    std::filesystem::path file;
    SECTION("in memory") {
        store = std::make_shared<h::MemoryHistoryStore>();
        REQUIRE(store);
    }
    SECTION("in a SQLite file") {
        file = std::filesystem::temp_directory_path() /
               ("es-baselines-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".db");
        store = std::make_shared<h::SqliteHistoryStore>(file.string());
        REQUIRE(std::filesystem::exists(file));
    }
    fill(*store);
    auto baselines = h::load_baselines(*store, "1000genome");
    REQUIRE(baselines.find("mutation_overlap"));
    CHECK(baselines.find("mutation_overlap")->samples == 6);
    CHECK(baselines.find("mutation_overlap")->p50_seconds == Approx(1));

    auto o = watch_with(slow_run(), baselines);
    check_finished(o);
    auto found = stragglers(o);
    REQUIRE(found.size() == 1);
    CHECK(found[0].task_name == "mutation_overlap-1");
    CHECK(found[0].details.at("basis") == "history");
    CHECK(found[0].details.at("baseline_seconds").as_double() == Approx(1));
    CHECK(found[0].details.at("history_samples").to_number<double>() == 6);
    CHECK(found[0].message.find("in past runs (median of 6)") != std::string::npos);
    CHECK(o.summary->stragglers == std::vector<std::string>{"mutation_overlap-1"});
    // the ETA: estimated while the tasks ran, and its error once the engine exited
    REQUIRE(o.summary->estimated_duration_seconds.has_value());
    CHECK(o.summary->estimate_basis == "history");
    REQUIRE(o.summary->eta_error_pct.has_value());
    CHECK(*o.summary->eta_error_pct ==
          Approx((*o.summary->estimated_duration_seconds - o.summary->duration_seconds) / o.summary->duration_seconds *
                 100));
    CHECK(*o.summary->eta_error_pct < 0); // the run took longer than its history said
    auto j = es::to_json(*o.summary);
    CHECK(j.at("eta_error_pct").is_double());

    store.reset();
    if (!file.empty()) {
        std::error_code ec;
        for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix, ec);
    }
}

TEST_CASE("baselines: without history the same run has no straggler", "[integration][baselines]") {
    auto o = watch_with(slow_run(), es::Baselines{});
    check_finished(o);
    CHECK(stragglers(o).empty());
    // an estimate, if any, can only rest on the finished sibling (one suffices for the ETA)
    CHECK(o.summary->estimate_basis != "history");
    CHECK(o.summary->eta_basis == "done");
}

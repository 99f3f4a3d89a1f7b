// Sentinel::watch() against FakeCluster over real HTTPS: scenario by scenario, with faults injected.
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
#include <exception>
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

est::FakeClusterOptions cluster_options(std::string ns) {
    est::FakeClusterOptions o;
    o.default_namespace = std::move(ns);
    return o;
}

/// Short timers and backoffs: every scenario runs in a few wall seconds.
es::SentinelOptions fast_options() {
    es::SentinelOptions o;
    o.watch_backoff.initial = 50ms;
    o.watch_backoff.cap = 400ms;
    o.watch_backoff.jitter = 0.2;
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
    boost::system::error_code end; ///< how the subscription ended (closed)
    std::vector<std::string> runner_errors;
};

asio::awaitable<void> collect(es::ReportSubscription& sub, Outcome& out) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            out.end = ec;
            if (ec != es::channel_error::reports_lost) co_return;
            continue;
        }
        out.reports.push_back(std::move(r));
    }
}

/// Plays `scenario` on a FakeCluster and watches it; `during` runs on the test thread while both run.
template <class During>
Outcome watch_scenario(est::Scenario scenario, es::SentinelSettings settings, During during) {
    est::FakeCluster cluster(cluster_options(scenario.namespace_name));
    auto context = es::context_from_json_text(scenario.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, fast_options());
    auto sub = sentinel.subscribe({.capacity = 100000, .lifecycle = true});
    Outcome out;
    est::ScenarioRunner runner(cluster, scenario);
    runner.start();
    asio::co_spawn(io, collect(sub, out), asio::detached);
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary s) {
        if (e) out.error = e;
        else out.summary = s;
    });
    during(cluster, runner);
    io.run();
    runner.stop();
    out.runner_errors = runner.errors();
    return out;
}

Outcome watch_scenario(est::Scenario scenario, es::SentinelSettings settings = fast_settings()) {
    return watch_scenario(std::move(scenario), settings, [](est::FakeCluster&, est::ScenarioRunner&) {});
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

est::Scenario base_scenario(std::string name, double time_scale = 0.01) {
    est::Scenario s;
    s.name = std::move(name);
    s.namespace_name = "wf-1000g-20261123-060000";
    s.time_scale = time_scale;
    s.seed = 7;
    s.engine_at = 0;
    s.support_objects_at = 0;
    return s;
}

/// The 1000genome shape: individuals ×4 → individuals_merge → sifting (a root too) → mutation_overlap ×2,
/// frequency ×2; 10 tasks, 150 scenario seconds.
est::Scenario genome_run() {
    auto s = base_scenario("1000genome");
    int proc = 1;
    for (int i = 0; i < 4; ++i) s.add_task(task("individuals", proc++, 1 + i, 20 + 3 * i));
    s.add_task(task("sifting", proc++, 2, 15));
    s.add_task(task("individuals_merge", proc++, 40, 20));
    for (int i = 0; i < 2; ++i) s.add_task(task("mutation_overlap", proc++, 70 + i, 30 + 5 * i));
    for (int i = 0; i < 2; ++i) s.add_task(task("frequency", proc++, 70 + i, 40 + 5 * i));
    s.complete_at(130, 0);
    return s;
}

std::vector<es::Report> of_type(const Outcome& o, es::ReportType t) {
    std::vector<es::Report> out;
    for (auto& r : o.reports)
        if (r.type == t) out.push_back(r);
    return out;
}

/// Every report exactly once: sequence numbers 1..N without a gap or a repeat (the subscription takes the
/// lifecycle stream too), in order except the reports that waited for their evidence (a log tail).
void check_contiguous(const Outcome& o) {
    std::vector<std::uint64_t> all, in_order;
    for (auto& r : o.reports) {
        all.push_back(r.sequence);
        const auto* ev = r.details.if_contains("evidence");
        const bool waited = ev && ev->is_object() &&
                            (ev->as_object().contains("log_tail") || ev->as_object().contains("log_tail_unavailable"));
        if (!waited) in_order.push_back(r.sequence);
    }
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i < all.size(); ++i) {
        INFO("sequence " << i + 1);
        REQUIRE(all[i] == i + 1);
    }
    CHECK(std::is_sorted(in_order.begin(), in_order.end()));
}

std::set<std::string> strings_of(const boost::json::value& v) {
    std::set<std::string> out;
    for (auto& x : v.as_array()) out.insert(std::string(x.as_string()));
    return out;
}

void check_finished_cleanly(const Outcome& o) {
    if (o.error) {
        try {
            std::rethrow_exception(o.error);
        } catch (const std::exception& e) {
            FAIL("watch() failed: " << e.what());
        }
    }
    REQUIRE(o.summary);
    CHECK(o.end == es::channel_error::closed);
    CHECK(o.runner_errors.empty());
}

} // namespace

TEST_CASE("sentinel: the happy 1000genome run ends with exit code 0 and every progress report in order",
          "[integration][sentinel]") {
    auto scenario = genome_run();
    auto o = watch_scenario(scenario);
    check_finished_cleanly(o);
    const auto& s = *o.summary;
    CHECK(s.exit_code == std::optional<int>(0));
    CHECK_FALSE(s.timed_out);
    CHECK_FALSE(s.mass_failure);
    CHECK(s.total_tasks == 10);
    CHECK(s.completed_tasks == 10);
    CHECK(s.failed_tasks == 0);
    CHECK(s.duration_seconds > 0);
    check_contiguous(o);

    auto progress = of_type(o, es::ReportType::PROGRESS);
    REQUIRE_FALSE(progress.empty());
    // Completed counts only grow, and every count from 1 to 10 was reported.
    std::set<int> counts;
    int last = 0;
    for (auto& r : progress) {
        CHECK(r.completed_tasks >= last);
        last = r.completed_tasks;
        CHECK(r.total_tasks == 10);
        CHECK_FALSE(r.message.empty());
        counts.insert(r.completed_tasks);
    }
    for (int c = 1; c <= 10; ++c) CHECK(counts.count(c) == 1);
    // Every phase (task type) started and completed.
    std::set<std::string> phases_seen;
    for (auto& r : progress)
        if (!r.task_type.empty()) phases_seen.insert(r.task_type);
    CHECK(phases_seen == std::set<std::string>{"individuals", "individuals_merge", "sifting", "mutation_overlap",
                                               "frequency"});
    // COMPLETION is the last report; nothing alarming happened.
    REQUIRE_FALSE(o.reports.empty());
    CHECK(o.reports.back().type == es::ReportType::COMPLETION);
    CHECK(of_type(o, es::ReportType::ANOMALY_OOMKILL).empty());
    CHECK(of_type(o, es::ReportType::MASS_FAILURE).empty());
    CHECK(s.reports.at(es::ReportType::COMPLETION) == 1);
}

TEST_CASE("sentinel: an OOM kill is reported once, with a warning naming its running siblings",
          "[integration][sentinel]") {
    auto s = base_scenario("oom");
    s.add_task(task("frequency", 1, 1, 5));       // finishes before the kill: not at risk
    auto killed = task("frequency", 2, 1, 20, est::TaskOutcome::oom);
    killed.memory_limit = "1Gi";
    killed.backoff_limit = 0;
    s.add_task(killed);
    s.add_task(task("frequency", 3, 2, 100, est::TaskOutcome::running));
    s.add_task(task("frequency", 4, 3, 100, est::TaskOutcome::running));
    s.add_task(task("sifting", 5, 1, 100, est::TaskOutcome::running)); // another type: not at risk
    s.complete_at(60, 1);
    auto o = watch_scenario(s);
    check_finished_cleanly(o);
    CHECK(o.summary->exit_code == std::optional<int>(1));
    check_contiguous(o);

    auto oom = of_type(o, es::ReportType::ANOMALY_OOMKILL);
    REQUIRE(oom.size() == 2);
    auto error = std::find_if(oom.begin(), oom.end(), [](auto& r) { return r.severity == es::Severity::error; });
    auto warning = std::find_if(oom.begin(), oom.end(), [](auto& r) { return r.severity == es::Severity::warning; });
    REQUIRE(error != oom.end());
    REQUIRE(warning != oom.end());
    CHECK(error->task_name == "frequency-2");
    CHECK(error->task_type == "frequency");
    CHECK(warning->task_type == "frequency");
    CHECK(strings_of(warning->details.at("at_risk")) == std::set<std::string>{"frequency-3", "frequency-4"});
    CHECK(warning->message.find("frequency-3") != std::string::npos);
    CHECK(o.summary->oom_killed == std::vector<std::string>{"frequency-2"});
}

TEST_CASE("sentinel: stragglers, with and without expected durations", "[integration][sentinel]") {
    // Object timestamps have one-second precision, as on a real apiserver: thresholds are kept well above it.
    SECTION("against the expected duration") {
        auto s = base_scenario("straggler-expected", 0.05);
        auto slow = task("mutation_overlap", 1, 1, 1000, est::TaskOutcome::running);
        slow.expected_duration = 20; // 1 wall second: threshold 3 × 1 s
        s.add_task(slow);
        auto fine = task("mutation_overlap", 2, 1, 10);
        fine.expected_duration = 20;
        s.add_task(fine);
        s.complete_at(100, 0);
        auto o = watch_scenario(s);
        check_finished_cleanly(o);
        check_contiguous(o);
        auto stragglers = of_type(o, es::ReportType::ANOMALY_STRAGGLER);
        REQUIRE(stragglers.size() == 1);
        CHECK(stragglers[0].task_name == "mutation_overlap-1");
        CHECK(stragglers[0].details.at("basis").as_string() == "inventory");
        CHECK(o.summary->stragglers == std::vector<std::string>{"mutation_overlap-1"});
    }
    SECTION("against the median of finished siblings") {
        auto s = base_scenario("straggler-median", 0.05);
        for (int i = 0; i < 4; ++i) s.add_task(task("frequency", 1 + i, 1, 40 + i)); // about 2 wall seconds each
        s.add_task(task("frequency", 5, 1, 1000, est::TaskOutcome::running));
        s.complete_at(150, 0);
        auto settings = fast_settings();
        settings.straggler_multiplier = 2.0;
        auto o = watch_scenario(s, settings);
        check_finished_cleanly(o);
        check_contiguous(o);
        auto stragglers = of_type(o, es::ReportType::ANOMALY_STRAGGLER);
        REQUIRE(stragglers.size() == 1);
        CHECK(stragglers[0].task_name == "frequency-5");
        CHECK(stragglers[0].task_type == "frequency");
        CHECK(stragglers[0].details.at("basis").as_string() == "sibling_median");
    }
}

TEST_CASE("sentinel: a mass failure is reported and the run ends with exit code 1", "[integration][sentinel]") {
    auto s = base_scenario("mass-failure");
    for (int i = 0; i < 12; ++i) {
        auto t = task("individuals", i + 1, 1 + 0.5 * i, 5, i < 9 ? est::TaskOutcome::fail : est::TaskOutcome::succeed);
        t.backoff_limit = 0;
        s.add_task(t);
    }
    s.complete_at(40, 1);
    auto o = watch_scenario(s);
    check_finished_cleanly(o);
    check_contiguous(o);
    CHECK(o.summary->exit_code == std::optional<int>(1));
    CHECK(o.summary->mass_failure);
    CHECK(o.summary->failed_tasks == 9);
    CHECK(o.summary->completed_tasks == 3);
    auto mass = of_type(o, es::ReportType::MASS_FAILURE);
    REQUIRE_FALSE(mass.empty());
    CHECK(mass.size() <= 2); // once per scope: the workflow and the individuals type
    CHECK(o.reports.back().type == es::ReportType::COMPLETION);
}

TEST_CASE("sentinel: no signal file ends in a timeout without an exit code", "[integration][sentinel]") {
    auto s = base_scenario("timeout");
    s.add_task(task("sifting", 1, 1, 1000, est::TaskOutcome::running));
    auto settings = fast_settings();
    settings.timeout = 1500ms;
    const auto started = std::chrono::steady_clock::now();
    auto o = watch_scenario(s, settings);
    const auto took = std::chrono::steady_clock::now() - started;
    check_finished_cleanly(o);
    CHECK(o.summary->timed_out);
    CHECK_FALSE(o.summary->exit_code);
    CHECK(o.summary->total_tasks == 1);
    CHECK(took < 20s);
    REQUIRE_FALSE(o.reports.empty());
    CHECK(o.reports.back().type == es::ReportType::TIMEOUT);
    CHECK(of_type(o, es::ReportType::COMPLETION).empty());
}

TEST_CASE("sentinel: the engine pod restarted under a new name is followed", "[integration][sentinel]") {
    const bool by_selector = GENERATE(true, false);
    INFO((by_selector ? "found by engine_pod_selector" : "found by name, followed by its labels"));
    auto s = base_scenario("engine-restart");
    s.engine_name = "hyperflow-engine-6c4b46d86-jdl7w";
    if (by_selector) s.engine_pod_selector = "component=hyperflow-engine";
    s.add_task(task("sifting", 1, 1, 10));
    s.add_task(task("frequency", 2, 1, 60));
    s.add(est::step::replace_engine_pod(20, "hyperflow-engine-7f5d9c8b4-plhmv"));
    s.complete_at(90, 0);
    auto o = watch_scenario(s);
    check_finished_cleanly(o);
    check_contiguous(o);
    CHECK(o.summary->exit_code == std::optional<int>(0));
    CHECK(o.summary->completed_tasks == 2);
}

TEST_CASE("sentinel: connectivity lost and restored, watching resumes without losing state",
          "[integration][sentinel]") {
    auto s = base_scenario("connectivity", 0.02);
    int proc = 1;
    for (int i = 0; i < 4; ++i) s.add_task(task("individuals", proc++, 1 + 10 * i, 10));
    s.add(est::step::close_watches(15));
    s.add(est::step::refuse_connections(15.5, 1.5)); // watches must reconnect, and cannot for 1.5 wall seconds
    s.add(est::step::fail_next(140, 4, 503));
    s.complete_at(150, 0);
    auto o = watch_scenario(s);
    check_finished_cleanly(o);
    check_contiguous(o);
    CHECK(o.summary->exit_code == std::optional<int>(0));
    CHECK(o.summary->completed_tasks == 4);
    auto lost = of_type(o, es::ReportType::CONNECTIVITY_LOSS);
    auto back = of_type(o, es::ReportType::CONNECTIVITY_RESTORED);
    REQUIRE(lost.size() >= 1);
    REQUIRE(back.size() == lost.size());
    CHECK(lost[0].sequence < back[0].sequence);
    std::set<int> counts;
    for (auto& r : of_type(o, es::ReportType::PROGRESS)) counts.insert(r.completed_tasks);
    for (int c = 1; c <= 4; ++c) CHECK(counts.count(c) == 1);
}

TEST_CASE("sentinel: watches dropped and history compacted mid-run lose and repeat nothing",
          "[integration][sentinel]") {
    auto s = genome_run();
    for (double at : {10.0, 35.0, 61.0, 95.0}) s.add(est::step::close_watches(at));
    for (double at : {36.0, 96.0}) s.add(est::step::compact(at));
    auto oom = task("frequency", 11, 72, 10, est::TaskOutcome::oom);
    oom.backoff_limit = 0;
    s.add_task(oom);
    s.add(est::step::close_watches(85));
    s.add(est::step::compact(85.5));
    auto o = watch_scenario(s);
    check_finished_cleanly(o);
    check_contiguous(o);
    CHECK(o.summary->exit_code == std::optional<int>(0));
    // One report per distinct finding: no repeat of an anomaly or of a progress count after a relist.
    std::set<std::string> keys;
    for (auto& r : o.reports) {
        std::string key = std::string(es::to_string(r.type)) + "|" + r.task_name + "|" + r.message;
        if (es::is_lifecycle(r.type)) key += "|" + std::string(r.details.at("pod_name").as_string()); // per attempt
        INFO(key);
        CHECK(keys.insert(key).second);
    }
    auto ooms = of_type(o, es::ReportType::ANOMALY_OOMKILL);
    REQUIRE(ooms.size() >= 1);
    CHECK(ooms[0].task_name == "frequency-11");
    std::set<int> counts;
    for (auto& r : of_type(o, es::ReportType::PROGRESS)) counts.insert(r.completed_tasks);
    for (int c = 1; c <= 10; ++c) CHECK(counts.count(c) == 1);
}

TEST_CASE("sentinel: watch() is cancelled cleanly, and a second watch() is refused", "[integration][sentinel]") {
    auto s = base_scenario("cancel");
    s.add_task(task("sifting", 1, 1, 1000, est::TaskOutcome::running));
    est::FakeCluster cluster(cluster_options(s.namespace_name));
    auto context = es::context_from_json_text(s.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, fast_settings(), config, fast_options());
    auto sub = sentinel.subscribe();
    est::ScenarioRunner runner(cluster, s);
    runner.run_until(10);

    Outcome out;
    asio::co_spawn(io, collect(sub, out), asio::detached);
    asio::cancellation_signal cancel;
    bool done = false;
    asio::co_spawn(io, sentinel.watch(),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, es::WatchSummary) {
                       done = true;
                       out.error = e;
                   }));
    std::optional<std::error_code> second;
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr e, es::WatchSummary) {
        try {
            if (e) std::rethrow_exception(e);
        } catch (const es::kube::Error& err) {
            second = err.code();
        }
    });
    asio::steady_timer t(io, 800ms);
    t.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    const auto started = std::chrono::steady_clock::now();
    io.run(); // returns only when every coroutine of the watch has finished
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    CHECK(done);
    REQUIRE(out.error);
    try {
        std::rethrow_exception(out.error);
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::operation_aborted);
    }
    REQUIRE(second);
    CHECK(*second == es::kube::error::operation_in_progress);
    CHECK(out.end == es::channel_error::closed);
    CHECK(sentinel.reports().is_closed());
    auto summary = sentinel.summary();
    CHECK(summary.total_tasks == 1);
    CHECK_FALSE(summary.exit_code);
    CHECK_FALSE(summary.timed_out);
    CHECK(sentinel.engine_pod() == s.engine_pod_name());
}

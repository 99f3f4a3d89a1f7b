// Diagnosis end to end: each failure shape of a HyperFlow run, played by a FakeCluster scenario over HTTPS and
// watched by DefaultSentinel, gives its report once, in time, with its evidence.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

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
    o.evidence_timeout = 3s;
    return o;
}

/// Short thresholds: each scenario runs in a few wall seconds. `timeout` ends a run that never completes.
es::SentinelSettings fast_settings(std::chrono::milliseconds timeout) {
    es::SentinelSettings s;
    s.poll_interval = 100ms;
    s.timeout = timeout;
    s.straggler_min_runtime = 0ms;
    s.metrics_interval = 300ms;
    return s;
}

struct Outcome {
    std::optional<es::WatchSummary> summary;
    std::exception_ptr error;
    std::vector<es::Report> reports;
    std::vector<std::string> runner_errors;
    es::Timestamp base{};   ///< wall time of scenario time 0
    double time_scale = 1;

    /// Scenario seconds at which a report was made.
    double scenario_time(const es::Report& r) const {
        return std::chrono::duration<double>(r.timestamp - base).count() / time_scale;
    }
    std::vector<es::Report> of_type(es::ReportType t) const {
        std::vector<es::Report> out;
        for (auto& r : reports)
            if (r.type == t) out.push_back(r);
        return out;
    }
    /// ANOMALY_TASK_FAILED reports about `task` with `details.cause == cause`.
    std::vector<es::Report> failures(std::string_view task, std::string_view cause) const {
        std::vector<es::Report> out;
        for (auto& r : of_type(es::ReportType::ANOMALY_TASK_FAILED))
            if (r.task_name == task && detail_string(r, "cause") == cause) out.push_back(r);
        return out;
    }
    static std::string detail_string(const es::Report& r, std::string_view key) {
        const auto* v = r.details.if_contains(key);
        return v && v->is_string() ? std::string(v->as_string()) : std::string();
    }
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

/// Plays `scenario` on a FakeCluster and watches it with DefaultSentinel until the exit code or the timeout. The
/// tasks are named by their ids ("frequency-3") in the inventory, so reports can be told apart.
Outcome watch(est::Scenario scenario, es::SentinelSettings settings) {
    for (auto& t : scenario.tasks) t.name = t.effective_id();
    est::FakeClusterOptions co;
    co.default_namespace = scenario.namespace_name;
    est::FakeCluster cluster(co);
    auto context = es::context_from_json_text(scenario.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    asio::io_context io;
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, fast_options());
    auto sub = sentinel.subscribe({.capacity = 100000});
    Outcome out;
    out.time_scale = scenario.time_scale;
    est::ScenarioRunner runner(cluster, scenario);
    runner.start();
    out.base = runner.wall_time(0);
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

est::Scenario shipped(std::string_view name) {
    return est::Scenario::from_file(std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/examples/scenarios/" +
                                    std::string(name) + ".json");
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
}

/// No report is delivered twice: (type, task or task type, cause, level/tier, check and its upstream) identify a
/// finding; STRUCTURE findings about two phases, or about one phase and two upstream types, are different ones.
void check_no_duplicate(const Outcome& o) {
    std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
    for (auto& r : o.reports) {
        if (r.type == es::ReportType::PROGRESS) continue;
        std::string sub = Outcome::detail_string(r, "cause") + "|" + Outcome::detail_string(r, "tier") + "|" +
                          Outcome::detail_string(r, "check") + "|" + Outcome::detail_string(r, "upstream") + "|" +
                          Outcome::detail_string(r, "pod_name") + "|" +
                          Outcome::detail_string(r, "level") + "|" + boost::json::serialize(r.details.contains("restart_count") ? r.details.at("restart_count") : boost::json::value()) +
                          "|" + boost::json::serialize(r.details.contains("resolved") ? r.details.at("resolved") : boost::json::value());
        auto key = std::make_tuple(std::string(es::to_string(r.type)), r.task_name, sub, r.task_type);
        INFO("report " << es::to_string(r.type) << " " << r.task_name << ": " << r.message);
        CHECK(seen.insert(key).second);
    }
}

/// The evidence object of a report (empty when absent).
boost::json::object evidence_of(const es::Report& r) {
    const auto* e = r.details.if_contains("evidence");
    return e && e->is_object() ? e->as_object() : boost::json::object{};
}

std::string log_tail_of(const es::Report& r) {
    auto e = evidence_of(r);
    const auto* tail = e.if_contains("log_tail");
    if (!tail) return {};
    if (tail->is_string()) return std::string(tail->as_string());
    std::string s;
    if (tail->is_array())
        for (auto& line : tail->as_array())
            if (line.is_string()) s += std::string(line.as_string()) + "\n";
    return s;
}

} // namespace

TEST_CASE("diagnosis: an evicted pod is reported once, when it happens, with the eviction message and log tail",
          "[integration][diagnosis]") {
    auto scenario = shipped("failure-evicted"); // frequency-3 evicted at t = 85 s (1.7 s wall)
    auto o = watch(scenario, fast_settings(5s));
    check_finished(o);
    check_no_duplicate(o);
    auto evicted = o.failures("frequency-3", "evicted");
    REQUIRE(evicted.size() == 1);
    const auto& r = evicted[0];
    CHECK(r.severity == es::Severity::error);
    CHECK(o.scenario_time(r) >= 84);
    CHECK(o.scenario_time(r) <= 85 + 100); // 2 wall seconds at time scale 0.02
    CHECK(r.message.find("ran short of memory") != std::string::npos);
    CHECK(Outcome::detail_string(r, "reason") == "Evicted");
    CHECK(Outcome::detail_string(r, "cluster_message").find("The node was low on resource: memory.") == 0);
    CHECK(log_tail_of(r).find("processed 7 of 12 chunks") != std::string::npos);
    // The tasks that finished normally are not reported as failed.
    CHECK(o.failures("frequency-4", "evicted").empty());
    CHECK(o.of_type(es::ReportType::TIMEOUT).size() == 1);
}

TEST_CASE("diagnosis: a Job past its deadline is reported as DeadlineExceeded", "[integration][diagnosis]") {
    auto scenario = shipped("failure-deadline"); // mutation_overlap-3 fails at t = 122 s (3.05 s wall)
    auto o = watch(scenario, fast_settings(6s));
    check_finished(o);
    check_no_duplicate(o);
    auto deadline = o.failures("mutation_overlap-3", "deadline_exceeded");
    REQUIRE(deadline.size() == 1);
    const auto& r = deadline[0];
    CHECK(o.scenario_time(r) >= 121);
    CHECK(o.scenario_time(r) <= 122 + 80); // 2 wall seconds at time scale 0.025
    CHECK(r.message.find("time limit") != std::string::npos);
    CHECK(Outcome::detail_string(r, "cluster_message").find("active longer than specified deadline") != std::string::npos);
}

TEST_CASE("diagnosis: a crash loop is reported with its restart count and the crash's last log lines",
          "[integration][diagnosis]") {
    auto scenario = shipped("failure-crashloop"); // individuals-3 crashes at t = 14, 30, 56, 102 s
    auto o = watch(scenario, fast_settings(5s));
    check_finished(o);
    check_no_duplicate(o);
    auto loops = o.failures("individuals-3", "crash_loop");
    REQUIRE_FALSE(loops.empty());
    const auto& first = loops.front();
    CHECK(o.scenario_time(first) >= 13);
    CHECK(o.scenario_time(first) <= 14 + 100);
    CHECK(first.details.at("restart_count").to_number<int>() >= 1);
    CHECK(first.details.at("exit_code").to_number<int>() == 1);
    CHECK(Outcome::detail_string(first, "reason") == "CrashLoopBackOff");
    CHECK(log_tail_of(first).find("ECONNREFUSED") != std::string::npos);
    // The Job gives up at the fourth crash.
    auto exhausted = o.failures("individuals-3", "backoff_limit_exceeded");
    REQUIRE(exhausted.size() == 1);
    CHECK(o.scenario_time(exhausted[0]) >= 101);
    CHECK(o.failures("individuals-2", "crash_loop").empty());
}

TEST_CASE("diagnosis: an image that cannot be pulled is reported at once for each task", "[integration][diagnosis]") {
    auto scenario = shipped("failure-image-pull"); // ErrImagePull at t = 8 and 9 s, ImagePullBackOff 10 s later
    auto o = watch(scenario, fast_settings(3s));
    check_finished(o);
    check_no_duplicate(o);
    for (const char* task : {"individuals-1", "individuals-2"}) {
        INFO(task);
        auto pull = o.failures(task, "image_pull");
        REQUIRE(pull.size() == 1); // ErrImagePull then ImagePullBackOff: one cause, one report
        CHECK(o.scenario_time(pull[0]) >= 7);
        CHECK(o.scenario_time(pull[0]) <= 9 + 100);
        CHECK(Outcome::detail_string(pull[0], "cluster_message").find("1.4-je1.4.2: not found") != std::string::npos);
        CHECK(pull[0].message.find("cannot be downloaded") != std::string::npos);
    }
}

TEST_CASE("diagnosis: an unschedulable pod is reported as waiting, with the scheduler's message",
          "[integration][diagnosis]") {
    auto scenario = shipped("failure-unschedulable"); // the merge pod is created unschedulable at t = 42 s
    auto settings = fast_settings(5s);
    // 100 scenario seconds; well above the other pods' pending time plus the one-second precision of creation times.
    settings.pending_timeout = 2s;
    auto o = watch(scenario, settings);
    check_finished(o);
    check_no_duplicate(o);
    std::vector<es::Report> pending;
    for (auto& r : o.of_type(es::ReportType::ANOMALY_STALL))
        if (Outcome::detail_string(r, "level") == "task" && Outcome::detail_string(r, "state") == "pending") pending.push_back(r);
    for (auto& r : pending) UNSCOPED_INFO(r.task_name << " at " << o.scenario_time(r) << ": " << r.message);
    REQUIRE(pending.size() == 1);
    const auto& r = pending[0];
    CHECK(r.task_name == "individuals_merge-4");
    CHECK(o.scenario_time(r) >= 42 + 100 - 50); // creation times have one-second precision (50 scenario seconds)
    CHECK(o.scenario_time(r) <= 42 + 100 + 100);
    CHECK(Outcome::detail_string(r, "reason") == "Unschedulable");
    CHECK(Outcome::detail_string(r, "cause").find("Insufficient cpu") != std::string::npos);
}

TEST_CASE("diagnosis: a failing task script is known from the engine's log, with the task's last log lines",
          "[integration][diagnosis]") {
    auto scenario = shipped("failure-script-error"); // individuals-2 fails at t = 28.4 s; exit code 1 at t = 30 s
    auto o = watch(scenario, fast_settings(10s));
    check_finished(o);
    check_no_duplicate(o);
    CHECK(o.summary->exit_code == std::optional<int>(1));
    auto engine = o.failures("individuals-2", "engine_failed");
    REQUIRE(engine.size() == 1);
    const auto& r = engine[0];
    CHECK(Outcome::detail_string(r, "source") == "engine log");
    CHECK(r.details.at("exit_code").to_number<int>() == 1);
    CHECK(o.scenario_time(r) >= 27);
    CHECK(o.scenario_time(r) <= 28.4 + 100);
    CHECK(log_tail_of(r).find("ValueError: no variants in region") != std::string::npos);
    // Its pod Succeeded: no cluster-side failure of that task.
    CHECK(o.failures("individuals-2", "exit").empty());
}

TEST_CASE("diagnosis: a hang is a workflow stall once the engine log and the tasks go quiet", "[integration][diagnosis]") {
    auto scenario = shipped("hang"); // the last change: the merge pod Succeeds at t = 68 s (1.36 s wall)
    auto settings = fast_settings(6s);
    settings.stall_threshold = 1500ms; // 75 scenario seconds
    auto o = watch(scenario, settings);
    check_finished(o);
    check_no_duplicate(o);
    CHECK_FALSE(o.summary->exit_code);
    std::vector<es::Report> stalls;
    for (auto& r : o.of_type(es::ReportType::ANOMALY_STALL))
        if (Outcome::detail_string(r, "level") == "workflow") stalls.push_back(r);
    REQUIRE_FALSE(stalls.empty());
    const auto& low = stalls.front();
    CHECK(Outcome::detail_string(low, "tier") == "LOW");
    CHECK(o.scenario_time(low) >= 68 + 75 - 1);
    CHECK(o.scenario_time(low) <= 68 + 75 + 100);
    CHECK(low.details.at("remaining").to_number<int>() >= 1);
    // Tiers only escalate, each once; a hang never resolves here.
    std::set<std::string> tiers;
    for (auto& r : stalls) {
        CHECK_FALSE(r.details.at("resolved").as_bool());
        CHECK(tiers.insert(Outcome::detail_string(r, "tier")).second);
    }
}

TEST_CASE("diagnosis: memory pressure is reported before the OOM kill, and an exit-1 failure with its log tail",
          "[integration][diagnosis]") {
    // frequency-4: ≥ 90 % of its 1Gi limit from t ≈ 78 s (3.9 s wall), OOM-killed at t = 218 s (10.9 s wall);
    // individuals-3 exits 1 at t = 158 s (7.9 s wall); the engine writes 1 at t = 225 s.
    auto scenario = shipped("memory-pressure-oom");
    auto o = watch(scenario, fast_settings(20s));
    check_finished(o);
    check_no_duplicate(o);
    CHECK(o.summary->exit_code == std::optional<int>(1));
    auto pressure = o.of_type(es::ReportType::ANOMALY_MEMORY_PRESSURE);
    REQUIRE(pressure.size() == 1);
    const auto& p = pressure[0];
    CHECK(p.task_name == "frequency-4");
    CHECK(o.scenario_time(p) >= 77);
    auto oom = o.of_type(es::ReportType::ANOMALY_OOMKILL);
    auto killed = std::find_if(oom.begin(), oom.end(), [](auto& r) { return r.task_name == "frequency-4"; });
    REQUIRE(killed != oom.end());
    CHECK(p.timestamp < killed->timestamp); // the warning came first
    CHECK(o.scenario_time(p) <= 218);
    CHECK(p.details.at("memory_limit_bytes").to_number<double>() == 1024.0 * 1024 * 1024);
    CHECK(p.details.at("memory_bytes").to_number<double>() >= 0.9 * 1024 * 1024 * 1024);
    CHECK(Outcome::detail_string(p, "limit_source") == "pod");
    auto exit1 = o.failures("individuals-3", "exit");
    REQUIRE(exit1.size() == 1);
    CHECK(exit1[0].details.at("exit_code").to_number<int>() == 1);
    CHECK(o.scenario_time(exit1[0]) >= 157);
    CHECK(o.scenario_time(exit1[0]) <= 158 + 40); // 2 wall seconds at time scale 0.05
    const std::string tail = log_tail_of(exit1[0]);
    CHECK(tail.find("OSError: [Errno 121] Remote I/O error") != std::string::npos);
    CHECK(tail.find("Command failed with exit code 1") != std::string::npos);
    CHECK(o.summary->metrics_available == std::optional<bool>(true));
}

namespace {

est::Scenario inline_scenario(std::string_view json) { return est::Scenario::from_json(boost::json::parse(json)); }

} // namespace

TEST_CASE("diagnosis: a container that cannot be created, or whose image name is invalid, is reported at once",
          "[integration][diagnosis]") {
    // individuals-1 refers to a ConfigMap that does not exist; individuals-2's image name is not valid. Both wait at
    // t = 8 s (start 2 + pending 6), forever.
    auto scenario = inline_scenario(R"({
      "name": "never-creatable", "namespace": "wf-1000g-20260305-150000", "time_scale": 0.02, "seed": 5,
      "engine": {"at": 0}, "task_defaults": {"pending": 6},
      "tasks": [
        {"type": "individuals", "proc_id": 1, "start": 2, "outcome": "container_waiting",
         "waiting_reason": "CreateContainerConfigError", "message": "configmap \"worker-config\" not found"},
        {"type": "individuals", "proc_id": 2, "start": 2, "outcome": "container_waiting",
         "waiting_reason": "InvalidImageName",
         "message": "Failed to apply default image tag \"hyperflowwms/1000genome-worker:1.4 je\": invalid reference format"},
        {"type": "individuals", "proc_id": 3, "start": 2, "duration": 20}
      ]})");
    auto o = watch(scenario, fast_settings(3s));
    check_finished(o);
    check_no_duplicate(o);
    auto config = o.failures("individuals-1", "container_config");
    REQUIRE(config.size() == 1);
    CHECK(o.scenario_time(config[0]) >= 7);
    CHECK(o.scenario_time(config[0]) <= 8 + 100); // 2 wall seconds at time scale 0.02
    CHECK(Outcome::detail_string(config[0], "reason") == "CreateContainerConfigError");
    CHECK(Outcome::detail_string(config[0], "cluster_message").find("worker-config") != std::string::npos);
    CHECK(config[0].message.find("cannot start") != std::string::npos);
    auto image = o.failures("individuals-2", "invalid_image");
    REQUIRE(image.size() == 1);
    CHECK(o.scenario_time(image[0]) <= 8 + 100);
    CHECK(Outcome::detail_string(image[0], "reason") == "InvalidImageName");
    // a task that never ran has no log to show
    CHECK(evidence_of(image[0]).if_contains("log_tail") == nullptr);
    CHECK(o.failures("individuals-3", "container_config").empty());
    CHECK(o.failures("individuals-3", "invalid_image").empty());
}

TEST_CASE("diagnosis: a task whose machine stops answering is reported as lost, once", "[integration][diagnosis]") {
    // frequency-2 runs from t = 8 s; its node is lost 40 s later (t = 48 s) and the pod deleted 60 s after that.
    auto scenario = inline_scenario(R"({
      "name": "node-lost", "namespace": "wf-1000g-20260305-151500", "time_scale": 0.02, "seed": 9,
      "engine": {"at": 0}, "task_defaults": {"pending": 6},
      "tasks": [
        {"type": "frequency", "proc_id": 1, "start": 2, "duration": 30},
        {"type": "frequency", "proc_id": 2, "start": 2, "duration": 40, "outcome": "node_lost", "delete_after": 60,
         "failed_attempts": 1, "backoff_limit": 0}
      ]})");
    auto o = watch(scenario, fast_settings(4s));
    check_finished(o);
    check_no_duplicate(o);
    auto lost = o.failures("frequency-2", "node_lost");
    REQUIRE(lost.size() == 1);
    CHECK(o.scenario_time(lost[0]) >= 47);
    CHECK(o.scenario_time(lost[0]) <= 48 + 100);
    CHECK(lost[0].message.find("stopped answering") != std::string::npos);
    CHECK(o.failures("frequency-1", "node_lost").empty());
}

// The Sentinel's other sources over real HTTPS against FakeCluster: evidence (a failed container's log tail
// attached to its report, off the watch path, once), the engine container's log (every line once across a
// container restart and an engine pod replacement) and the metrics API (absent, then serving).
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

const std::string ns = "wf-evidence";

est::FakeClusterOptions cluster_options(est::MetricsApi metrics = est::MetricsApi::available) {
    est::FakeClusterOptions o;
    o.default_namespace = ns;
    o.metrics_api = metrics;
    return o;
}

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
    s.metrics_interval = 0ms;
    return s;
}

boost::json::object pod_json(const std::string& name, const std::string& container, boost::json::object labels,
                             const std::string& phase = "Running") {
    return boost::json::object{
        {"metadata", {{"name", name}, {"labels", std::move(labels)}}},
        {"spec", {{"restartPolicy", "Always"}, {"containers", boost::json::array{{{"name", container}, {"image", "x"}}}}}},
        {"status", {{"phase", phase}}}};
}

es::MonitoringContext context(bool by_selector = false) {
    boost::json::object c{{"namespace", ns}, {"engine_container", "hyperflow"}, {"task_label_selector", "app=hyperflow"}};
    if (by_selector) c["engine_pod_selector"] = "component=hyperflow-engine";
    else c["engine_pod_name"] = "engine-1";
    return es::context_from_json_text(boost::json::serialize(c));
}

/// A task pod that turns Failed asks for its container's log tail (as the task-failure rule does).
struct FailedPodEvidence {
    static constexpr std::string_view name = "failed_pod_evidence";
    void on_pod(const es::WorkflowState&, const es::kube::Pod& pod, es::ChangeKind, es::Timestamp, es::ReportSink& sink) {
        if (pod.phase != es::kube::PodPhase::failed) return;
        es::Finding f;
        f.type = es::ReportType::ANOMALY_TASK_FAILED;
        f.severity = es::Severity::error;
        f.task_name = pod.meta.name;
        f.message = "Task " + pod.meta.name + " failed.";
        f.details["evidence"] = boost::json::object{{"exit_code", 1}};
        std::string target = pod.meta.name == "task-gone-trigger" ? std::string("task-never-existed") : pod.meta.name;
        f.evidence_request = es::EvidenceRequest{target, "main"};
        sink.emit(std::move(f));
    }
};

/// Records every engine log line and every metrics sample.
struct Recorder {
    static constexpr std::string_view name = "recorder";
    std::vector<std::string> lines;
    std::vector<es::MetricsSample> samples;
    void on_engine_log(const es::WorkflowState&, const es::kube::LogLine& l, es::Timestamp, es::ReportSink&) {
        lines.push_back(l.text);
    }
    void on_metrics(const es::WorkflowState&, const es::MetricsSample& s, es::Timestamp, es::ReportSink&) {
        samples.push_back(s);
    }
};

using TestSentinel = es::Sentinel<es::CompletionDetector, FailedPodEvidence, Recorder>;

struct Run {
    std::vector<es::Report> reports;
    std::exception_ptr error;
    std::optional<es::WatchSummary> summary;
    std::vector<std::string> log;
};

/// Runs the Sentinel on its own thread while `act` drives the cluster from this one; `cancel` is emitted on
/// the io thread when `act` returns true.
template <class Act>
Run watch(est::FakeCluster& cluster, TestSentinel& sentinel, asio::io_context& io, std::mutex& log_mutex,
          std::vector<std::string>& log, Act act) {
    Run run;
    auto sub = sentinel.subscribe({.capacity = 10000});
    asio::cancellation_signal cancel;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        for (;;) {
            auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            run.reports.push_back(std::move(r));
        }
    }, asio::detached);
    asio::co_spawn(io, sentinel.watch(), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, es::WatchSummary s) {
        if (e) run.error = e;
        else run.summary = s;
    }));
    std::thread t([&] { io.run(); });
    const bool cancel_it = act(cluster);
    if (cancel_it) asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
    t.join();
    std::lock_guard lock(log_mutex);
    run.log = log;
    return run;
}

std::vector<const es::Report*> of_type(const Run& run, es::ReportType type) {
    std::vector<const es::Report*> out;
    for (auto& r : run.reports)
        if (r.type == type) out.push_back(&r);
    return out;
}

} // namespace

TEST_CASE("sentinel evidence: a failed task's report carries its log tail, redacted and bounded, once",
          "[sentinel][evidence][integration]") {
    est::FakeCluster cluster(cluster_options());
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    cluster.create("pods", ns, pod_json("task-a", "main", {{"app", "hyperflow"}}));
    cluster.create("pods", ns, pod_json("task-gone-trigger", "main", {{"app", "hyperflow"}}));
    for (int i = 1; i <= 30; ++i) cluster.append_log(ns, "task-a", "main", "step " + std::to_string(i));
    cluster.append_log(ns, "task-a", "main", "connecting with password=hunter22 to the database");
    cluster.append_log(ns, "task-a", "main", "Traceback: ValueError: bad input");

    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    auto settings = fast_settings();
    settings.evidence_log_lines = 20;
    settings.evidence_log_bytes = 4096;
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    auto options = fast_options();
    options.client.log = [&](std::string_view l) {
        std::lock_guard lock(log_mutex);
        log.emplace_back(l);
    };
    TestSentinel sentinel(io.get_executor(), context(), settings, config, options, {}, {}, {});
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        std::this_thread::sleep_for(700ms);
        c.modify("pods", ns, "task-a", [](boost::json::object& p) { p["status"].as_object()["phase"] = "Failed"; });
        c.modify("pods", ns, "task-gone-trigger", [](boost::json::object& p) { p["status"].as_object()["phase"] = "Failed"; });
        std::this_thread::sleep_for(100ms);
        c.write_file(ns, "engine-1", "/work_dir/.workflow-exit-code", "1\n");
        return false;
    });
    REQUIRE_FALSE(run.error);
    REQUIRE(run.summary);
    auto failed = of_type(run, es::ReportType::ANOMALY_TASK_FAILED);
    REQUIRE(failed.size() == 2); // each published once
    const es::Report* a = failed[0]->task_name == "task-a" ? failed[0] : failed[1];
    const es::Report* gone = failed[0]->task_name == "task-a" ? failed[1] : failed[0];
    CHECK_FALSE(a->evidence_request);
    const auto& ev = a->details.at("evidence").as_object();
    CHECK(ev.at("exit_code").as_int64() == 1); // what the detector put there stays
    const auto& tail = ev.at("log_tail").as_array();
    REQUIRE(tail.size() == 20);
    CHECK(tail.front().as_string() == "step 13");
    CHECK(tail[18].as_string() == "connecting with password=[redacted] to the database");
    CHECK(tail.back().as_string() == "Traceback: ValueError: bad input");
    CHECK(gone->details.at("evidence").at("log_tail_unavailable") == "the pod or its log is gone");
    // The completion comes last; the evidence reports were published before the channel closed.
    REQUIRE_FALSE(run.reports.empty());
    CHECK(run.reports.back().type == es::ReportType::COMPLETION);
    for (auto& l : run.log) CHECK(l.find("hunter22") == std::string::npos);
}

TEST_CASE("sentinel evidence: a watch cancelled while the tail is being read publishes the report once, without it",
          "[sentinel][evidence][integration]") {
    est::FakeCluster cluster(cluster_options());
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    cluster.create("pods", ns, pod_json("task-a", "main", {{"app", "hyperflow"}}));
    cluster.append_log(ns, "task-a", "main", "about to fail");
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    auto options = fast_options();
    options.evidence_timeout = 20s;
    TestSentinel sentinel(io.get_executor(), context(), fast_settings(), config, options, {}, {}, {});
    const auto started = std::chrono::steady_clock::now();
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        std::this_thread::sleep_for(700ms);
        c.delay_responses(3s); // the log request hangs; the open watches still deliver
        c.modify("pods", ns, "task-a", [](boost::json::object& p) { p["status"].as_object()["phase"] = "Failed"; });
        std::this_thread::sleep_for(400ms);
        return true; // cancel
    });
    const auto took = std::chrono::steady_clock::now() - started;
    cluster.delay_responses(0ms);
    REQUIRE(run.error);
    CHECK_THROWS_AS(std::rethrow_exception(run.error), boost::system::system_error);
    auto failed = of_type(run, es::ReportType::ANOMALY_TASK_FAILED);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]->details.at("evidence").at("log_tail_unavailable") == "the watch ended before the log was read");
    CHECK_FALSE(failed[0]->evidence_request);
    CHECK(took < 10s); // the cancelled fetch did not wait for its 20 s limit
}

TEST_CASE("sentinel engine log: every line once across a container restart and an engine pod replacement",
          "[sentinel][engine-log][integration]") {
    est::FakeCluster cluster(cluster_options());
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    for (int i = 1; i <= 3; ++i) cluster.append_log(ns, "engine-1", "hyperflow", "L" + std::to_string(i));
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    TestSentinel sentinel(io.get_executor(), context(true), fast_settings(), config, fast_options(), {}, {}, {});
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        auto pause = [] { std::this_thread::sleep_for(300ms); };
        std::this_thread::sleep_for(800ms);
        c.append_log(ns, "engine-1", "hyperflow", "L4");
        pause();
        c.restart_container_log(ns, "engine-1", "hyperflow"); // the stream ends; the follower reopens
        pause();
        c.append_log(ns, "engine-1", "hyperflow", "L5");
        pause();
        c.create("pods", ns, pod_json("engine-2", "hyperflow", {{"component", "hyperflow-engine"}}));
        c.append_log(ns, "engine-2", "hyperflow", "M1");
        c.append_log(ns, "engine-1", "hyperflow", "L6"); // the old engine's last words, within its grace
        pause();
        c.remove("pods", ns, "engine-1");
        c.append_log(ns, "engine-2", "hyperflow", "M2");
        std::this_thread::sleep_for(2500ms);
        c.write_file(ns, "engine-2", "/work_dir/.workflow-exit-code", "0\n");
        return false;
    });
    REQUIRE_FALSE(run.error);
    REQUIRE(run.summary);
    CHECK(sentinel.monitor().detector<Recorder>().lines ==
          std::vector<std::string>{"L1", "L2", "L3", "L4", "L5", "L6", "M1", "M2"});
}

TEST_CASE("sentinel metrics: an absent API is said once and read less often; a serving one gives the usage",
          "[sentinel][metrics][integration]") {
    est::FakeCluster cluster(cluster_options(est::MetricsApi::absent));
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    cluster.create("pods", ns, pod_json("task-a", "main", {{"app", "hyperflow"}}));
    cluster.set_pod_usage(ns, "task-a", {est::ContainerUsage{"main", 250'000'000, 900LL * 1024 * 1024}});
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    auto settings = fast_settings();
    settings.metrics_interval = 100ms;
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    auto options = fast_options();
    options.client.log = [&](std::string_view l) {
        std::lock_guard lock(log_mutex);
        log.emplace_back(l);
    };
    TestSentinel sentinel(io.get_executor(), context(), settings, config, options, {}, {}, {});
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        std::this_thread::sleep_for(1500ms);
        c.write_file(ns, "engine-1", "/work_dir/.workflow-exit-code", "0\n");
        return false;
    });
    REQUIRE_FALSE(run.error);
    const auto& samples = sentinel.monitor().detector<Recorder>().samples;
    REQUIRE_FALSE(samples.empty());
    // Absent: one reading, then the next only after the slow interval (60 s): one sample in 1.5 s.
    CHECK(samples.size() == 1);
    CHECK_FALSE(samples[0].available);
    CHECK(samples[0].problem.find("not installed") != std::string::npos);
    int said = 0;
    for (auto& l : run.log) said += l.find("metrics API (metrics.k8s.io) is not installed") != std::string::npos;
    CHECK(said == 1);
}

TEST_CASE("sentinel metrics: the namespace's task pods are read every period", "[sentinel][metrics][integration]") {
    est::FakeCluster cluster(cluster_options());
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    cluster.create("pods", ns, pod_json("task-a", "main", {{"app", "hyperflow"}}));
    cluster.set_pod_usage(ns, "task-a", {est::ContainerUsage{"main", 250'000'000, 900LL * 1024 * 1024}});
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    auto settings = fast_settings();
    settings.metrics_interval = 100ms;
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    TestSentinel sentinel(io.get_executor(), context(), settings, config, fast_options(), {}, {}, {});
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        std::this_thread::sleep_for(1000ms);
        c.write_file(ns, "engine-1", "/work_dir/.workflow-exit-code", "0\n");
        return false;
    });
    REQUIRE_FALSE(run.error);
    const auto& samples = sentinel.monitor().detector<Recorder>().samples;
    REQUIRE(samples.size() >= 3);
    const auto& last = samples.back();
    REQUIRE(last.available);
    REQUIRE(last.pods.size() == 1); // the engine pod does not match the task selector
    CHECK(last.pods[0].name == "task-a");
    REQUIRE(last.pods[0].containers.size() == 1);
    CHECK(last.pods[0].containers[0].memory_bytes == 900LL * 1024 * 1024);
    CHECK(last.pods[0].containers[0].cpu_cores == Approx(0.25));
    // The snapshot after the end of the watch: finished by the exit code, not by the time limit.
    auto view = sentinel.view();
    CHECK(view.finished);
    CHECK_FALSE(view.timed_out);
}

TEST_CASE("sentinel metrics: a reading of many pods reaches the detectors in parts, each pod once",
          "[sentinel][metrics][integration]") {
    est::FakeCluster cluster(cluster_options());
    cluster.create("pods", ns, pod_json("engine-1", "hyperflow", {{"component", "hyperflow-engine"}}));
    constexpr int pods = 1234;
    for (int i = 0; i < pods; ++i) {
        const std::string name = "task-" + std::to_string(10000 + i);
        cluster.create("pods", ns, pod_json(name, "main", {{"app", "hyperflow"}}));
        cluster.set_pod_usage(ns, name, {est::ContainerUsage{"main", 1'000'000, (i + 1) * 1024LL * 1024}});
    }
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake");
    auto settings = fast_settings();
    settings.metrics_interval = 300ms;
    asio::io_context io;
    std::mutex log_mutex;
    std::vector<std::string> log;
    TestSentinel sentinel(io.get_executor(), context(), settings, config, fast_options(), {}, {}, {});
    auto run = watch(cluster, sentinel, io, log_mutex, log, [](est::FakeCluster& c) {
        std::this_thread::sleep_for(1500ms);
        c.write_file(ns, "engine-1", "/work_dir/.workflow-exit-code", "0\n");
        return false;
    });
    REQUIRE_FALSE(run.error);
    // The parts, grouped into readings: each reading starts with a part that is not `continued`.
    std::vector<std::vector<const es::MetricsSample*>> readings;
    for (const auto& s : sentinel.monitor().detector<Recorder>().samples) {
        REQUIRE(s.available);
        if (!s.continued) readings.emplace_back();
        REQUIRE_FALSE(readings.empty()); // the first part of all is not continued
        readings.back().push_back(&s);
    }
    REQUIRE(readings.size() >= 2);
    readings.pop_back(); // the last may have been cut short by the end of the watch
    for (const auto& parts : readings) {
        REQUIRE(parts.size() == 3);
        CHECK(parts[0]->pods.size() == 500);
        CHECK(parts[1]->pods.size() == 500);
        CHECK(parts[2]->pods.size() == pods - 1000);
        std::set<std::string> names;
        for (const auto* part : parts)
            for (const auto& p : part->pods) {
                REQUIRE(p.containers.size() == 1);
                const int i = std::stoi(p.name.substr(5)) - 10000;
                CHECK(p.containers[0].memory_bytes == (i + 1) * 1024LL * 1024);
                names.insert(p.name);
            }
        CHECK(names.size() == static_cast<std::size_t>(pods)); // each pod once
    }
}

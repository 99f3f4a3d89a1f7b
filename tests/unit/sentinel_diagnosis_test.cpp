// Diagnosis detectors with synthetic inputs and a fixed clock, the Monitor driven directly: stalls (task and
// workflow level, tiers and resolution), memory pressure and the resource account, the structure check, the
// health score, the MonitorView snapshot, and the summary's JSON form.
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/memory_pressure.hpp>
#include <execution_sentinel/detectors/progress.hpp>
#include <execution_sentinel/detectors/stall.hpp>
#include <execution_sentinel/detectors/structure.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string job_name(const std::string& type, int proc) {
    return "jobr" + std::to_string(proc) + "x-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
}

kube::Pod pod_of(const std::string& type, int proc, kube::PodPhase phase, double started = 0, double finished = 0,
                 const std::string& suffix = "abcde") {
    auto job = job_name(type, proc);
    kube::Pod p;
    p.meta.name = job + "-" + suffix;
    p.meta.uid = "uid-" + p.meta.name;
    p.meta.creation_timestamp = at(started);
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "test";
    if (phase == kube::PodPhase::running) {
        c.state.kind = kube::ContainerState::Kind::running;
        c.state.started_at = at(started);
        p.start_time = at(started);
    } else if (phase == kube::PodPhase::succeeded || phase == kube::PodPhase::failed) {
        c.state.kind = kube::ContainerState::Kind::terminated;
        c.state.reason = phase == kube::PodPhase::succeeded ? "Completed" : "Error";
        c.state.exit_code = phase == kube::PodPhase::succeeded ? 0 : 1;
        c.state.started_at = at(started);
        c.state.finished_at = at(finished);
        p.start_time = at(started);
    } else {
        c.state.kind = kube::ContainerState::Kind::waiting;
        c.state.reason = "ContainerCreating";
    }
    p.containers.push_back(c);
    return p;
}

kube::Pod engine_pod(const es::MonitoringContext& ctx, kube::PodPhase phase = kube::PodPhase::running) {
    kube::Pod p;
    p.meta.name = ctx.engine_pod_name;
    p.meta.uid = "uid-engine";
    p.meta.labels.items = {{"component", "hyperflow-engine"}};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "hyperflow";
    c.state.kind = kube::ContainerState::Kind::running;
    p.containers.push_back(c);
    return p;
}

es::MonitoringContext context_of(std::vector<std::pair<std::string, int>> counts, std::optional<double> expected = {},
                                 std::string memory = "", std::string cpu = "") {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    int order = 0;
    for (auto& [type, n] : counts) {
        for (int i = 0; i < n; ++i) c.task_inventory.push_back({type, type, order, expected, memory, cpu});
        ++order;
    }
    return c;
}

std::vector<es::Report> of_type(const std::vector<es::Report>& rs, es::ReportType t) {
    std::vector<es::Report> out;
    for (auto& r : rs)
        if (r.type == t) out.push_back(r);
    return out;
}

kube::PodMetrics usage(const kube::Pod& pod, double t, double memory_mib, double cpu_cores,
                       const std::string& container = "test") {
    kube::PodMetrics m;
    m.name = pod.meta.name;
    m.namespace_ = "wf-test";
    m.timestamp = at(t);
    m.window_seconds = 15;
    m.containers.push_back({container, cpu_cores, static_cast<std::int64_t>(memory_mib * 1024 * 1024)});
    return m;
}

es::MetricsSample sample_of(std::vector<kube::PodMetrics> pods) {
    es::MetricsSample s;
    s.pods = std::move(pods);
    return s;
}

std::string text(const boost::json::value& v) { return v.is_string() ? std::string(v.get_string()) : "<not a string>"; }

es::CompletionProbe exit_code(int code) { return {true, std::to_string(code) + "\n", ""}; }

} // namespace

// ------------------------------------------------------------------------------------------- stall, task level

TEST_CASE("stall: a task waiting to start past pending_timeout, with the scheduler's message", "[diagnosis][stall]") {
    es::SentinelSettings settings; // pending_timeout 600 s
    auto ctx = context_of({{"frequency", 3}});
    es::Monitor<es::StallDetector> m(ctx, settings);
    auto unschedulable = pod_of("frequency", 1, kube::PodPhase::pending, 0);
    unschedulable.containers.clear();
    unschedulable.conditions.push_back({"PodScheduled", "False", "Unschedulable",
                                        "0/2 nodes are available: 2 Insufficient cpu.", at(0)});
    auto creating = pod_of("frequency", 2, kube::PodPhase::pending, 0); // ContainerCreating
    auto pulling = pod_of("frequency", 3, kube::PodPhase::pending, 100);
    pulling.containers[0].state.reason = "ImagePullBackOff";
    pulling.containers[0].state.message = "Back-off pulling image \"hyperflowwms/1000genome:9.9\"";
    m.on_pod(unschedulable, es::ChangeKind::added, at(0));
    m.on_pod(creating, es::ChangeKind::added, at(0));
    m.on_pod(pulling, es::ChangeKind::added, at(100));
    m.on_tick(at(600)); // exactly the limit: not past it
    CHECK(m.take_reports().empty());
    m.on_tick(at(601));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].type == es::ReportType::ANOMALY_STALL);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].task_name == "frequency-1");
    CHECK(rs[0].message == "Task frequency-1 has been waiting to start for 10 minutes: no computer in the cluster can "
                           "take it (the scheduler says: 0/2 nodes are available: 2 Insufficient cpu.).");
    CHECK(rs[0].details.at("reason") == "Unschedulable");
    CHECK(rs[0].details.at("level") == "task");
    CHECK(rs[0].details.at("state") == "pending");
    CHECK(rs[0].details.at("waited_seconds").as_double() == Approx(601));
    CHECK(text(rs[0].details.at("pod_name")) == unschedulable.meta.name);
    CHECK(rs[1].task_name == "frequency-2");
    CHECK(rs[1].details.at("reason") == "ContainerCreating");
    CHECK(rs[1].message == "Task frequency-2 has been waiting to start for 10 minutes: its software environment is "
                           "still being prepared.");
    m.on_tick(at(701));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_name == "frequency-3");
    CHECK(rs[0].details.at("reason") == "ImagePullBackOff");
    CHECK(rs[0].details.at("cause") == "Back-off pulling image \"hyperflowwms/1000genome:9.9\"");

    // re-delivery (a relist) and later ticks: nothing new; the names are in the summary
    m.on_pod(unschedulable, es::ChangeKind::added, at(710));
    m.on_pod(creating, es::ChangeKind::added, at(710));
    m.on_pod(pulling, es::ChangeKind::added, at(710));
    m.on_tick(at(720));
    m.on_tick(at(3000));
    CHECK(m.take_reports().empty());
    auto s = m.summary(at(3000));
    CHECK(s.stall.stalled_tasks == std::vector<std::string>{"frequency-1", "frequency-2", "frequency-3"});
    CHECK(s.reports.at(es::ReportType::ANOMALY_STALL) == 3);
}

TEST_CASE("stall: a FailedScheduling event names the cause; a Job without pods uses its warning", "[diagnosis][stall]") {
    es::SentinelSettings settings;
    settings.pending_timeout = 60s;
    auto ctx = context_of({{"sifting", 2}});
    es::Monitor<es::StallDetector> m(ctx, settings);
    auto p = pod_of("sifting", 1, kube::PodPhase::pending, 0);
    p.containers.clear();
    m.on_pod(p, es::ChangeKind::added, at(0));
    kube::Event ev;
    ev.type = "Warning";
    ev.reason = "FailedScheduling";
    ev.message = "0/3 nodes are available: 3 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }.";
    ev.involved = {"Pod", p.meta.name, p.meta.uid};
    m.on_event(ev, at(5));

    kube::Job j; // the Job exists, its pods are refused by a quota
    j.meta.name = job_name("sifting", 2);
    j.meta.uid = "uid-j2";
    j.meta.labels.items = {{"app", "hyperflow"}};
    j.active = 0;
    m.on_job(j, es::ChangeKind::added, at(10));
    kube::Event quota;
    quota.type = "Warning";
    quota.reason = "FailedCreate";
    quota.message = "pods \"x\" is forbidden: exceeded quota: compute, requested: limits.cpu=1, limited: limits.cpu=64";
    quota.involved = {"Job", j.meta.name, j.meta.uid};
    m.on_event(quota, at(11));

    m.on_tick(at(65));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("reason") == "Unschedulable");
    CHECK(text(rs[0].details.at("cause")) == ev.message);
    m.on_tick(at(71));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_name == "sifting-2");
    CHECK(rs[0].details.at("reason") == "FailedCreate");
    CHECK(rs[0].message == "Task sifting-2 has been waiting to start for 61 seconds: the cluster refuses or delays it "
                           "(FailedCreate).");
}

TEST_CASE("stall: a task running past the threshold only when no straggler baseline exists", "[diagnosis][stall]") {
    es::SentinelSettings settings; // stall_threshold 300 s
    auto ctx = context_of({{"frequency", 4}});
    ctx.task_inventory[3].expected_duration_seconds = 100; // this one has a baseline: the straggler rule judges it
    es::Monitor<es::StallDetector> m(ctx, settings);
    for (int i = 1; i <= 4; ++i) m.on_pod(pod_of("frequency", i, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
    m.on_tick(at(300));
    CHECK(m.take_reports().empty());
    m.on_tick(at(301));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 3);
    CHECK(rs[0].task_name == "frequency-1");
    CHECK(rs[0].details.at("state") == "running");
    CHECK(rs[0].details.at("running_seconds").as_double() == Approx(301));
    CHECK(rs[0].message == "Task frequency-1 has been running for 5 minutes and there is nothing to compare it with (no "
                           "expected duration and no finished frequency tasks yet), so it may be stuck; check its "
                           "progress.");
    for (auto& r : rs) CHECK(r.task_name != "frequency-4");
    m.on_tick(at(900));
    CHECK(m.take_reports().empty());

    // once three siblings finished (quorum of a 4-task type: max(3, ceil(0.75 × 4)) = 3), a new attempt is the
    // straggler rule's business
    es::Monitor<es::StallDetector> n(context_of({{"frequency", 4}}), settings);
    for (int i = 1; i <= 3; ++i)
        n.on_pod(pod_of("frequency", i, kube::PodPhase::succeeded, 0, 50), es::ChangeKind::added, at(50));
    n.on_pod(pod_of("frequency", 4, kube::PodPhase::running, 60), es::ChangeKind::added, at(60));
    n.on_tick(at(1000));
    CHECK(n.take_reports().empty());
}

TEST_CASE("stall: no task judgement while the task states are stale", "[diagnosis][stall]") {
    es::SentinelSettings settings;
    settings.pending_timeout = 60s;
    es::Monitor<es::StallDetector> m(context_of({{"sifting", 1}}), settings);
    m.on_pod(pod_of("sifting", 1, kube::PodPhase::pending, 0), es::ChangeKind::added, at(0));
    es::FeedHealth down;
    down.known = true;
    down.tasks_fresh = false;
    down.all_healthy = false;
    down.unhealthy = {"pods"};
    m.on_feed_health(down, at(10));
    m.on_tick(at(100));
    CHECK(m.take_reports().empty());
    es::FeedHealth up;
    up.known = true;
    up.healthy_since = at(110);
    m.on_feed_health(up, at(110));
    m.on_tick(at(111));
    CHECK(m.take_reports().size() == 1);
}

// ------------------------------------------------------------------------------------------- stall, workflow level

TEST_CASE("stall: workflow tiers LOW to CRITICAL once each, then a resolution, then a new episode",
          "[diagnosis][stall]") {
    es::SentinelSettings settings;
    settings.stall_threshold = 100s; // tiers at 100, 200, 400, 800 s
    settings.pending_timeout = 100'000s;
    auto ctx = context_of({{"frequency", 2}}, 10'000.0); // a baseline: no task-level stall
    es::Monitor<es::StallDetector> m(ctx, settings);
    m.on_pod(engine_pod(ctx), es::ChangeKind::added, at(0));
    auto p1 = pod_of("frequency", 1, kube::PodPhase::running, 0);
    m.on_pod(p1, es::ChangeKind::added, at(0));
    m.on_tick(at(99));
    CHECK(m.take_reports().empty());
    m.on_tick(at(100));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::ANOMALY_STALL);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].task_name.empty());
    CHECK(rs[0].details.at("tier") == "LOW");
    CHECK(rs[0].details.at("level") == "workflow");
    CHECK_FALSE(rs[0].details.at("resolved").as_bool());
    CHECK(rs[0].details.at("stalled_seconds").as_double() == Approx(100));
    CHECK(rs[0].details.at("remaining").as_int64() == 2);
    CHECK(rs[0].message == "The workflow has made no progress for 100 seconds: no task started, finished or failed and "
                           "the workflow engine wrote nothing, although 2 tasks have not finished (1 running).");
    // the same objects delivered again are no activity; ticks in between report nothing
    m.on_pod(p1, es::ChangeKind::modified, at(150));
    m.on_pod(engine_pod(ctx), es::ChangeKind::modified, at(150));
    m.on_tick(at(150));
    CHECK(m.take_reports().empty());
    m.on_tick(at(200));
    m.on_tick(at(250));
    m.on_tick(at(400));
    m.on_tick(at(800));
    m.on_tick(at(801));
    rs = m.take_reports();
    REQUIRE(rs.size() == 3);
    CHECK(rs[0].details.at("tier") == "MEDIUM");
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[1].details.at("tier") == "HIGH");
    CHECK(rs[1].severity == es::Severity::error);
    CHECK(rs[2].details.at("tier") == "CRITICAL");
    CHECK(rs[2].severity == es::Severity::critical);
    CHECK(m.detector<es::StallDetector>().current_tier() == 3);
    auto mid = m.summary(at(850));
    CHECK(mid.stall.stalled_at_end);
    CHECK(mid.stall.highest_tier == "CRITICAL");

    // any engine log line is activity: the stall is resolved once
    m.on_engine_log({at(900), "Job frequency-1 still working"}, at(900));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].severity == es::Severity::info);
    CHECK(rs[0].details.at("resolved").as_bool());
    CHECK(rs[0].details.at("stalled_seconds").as_double() == Approx(900));
    CHECK(rs[0].details.at("tier") == "CRITICAL");
    CHECK(rs[0].message == "The workflow is making progress again after 15 minutes without any.");
    m.on_engine_log({at(901), "another line"}, at(901));
    CHECK(m.take_reports().empty());

    // a second episode reports from LOW again; a task finishing resolves it
    m.on_tick(at(1001));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("tier") == "LOW");
    CHECK(rs[0].details.at("episode").as_int64() == 2);
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 0, 1050), es::ChangeKind::modified, at(1050));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("resolved").as_bool());
    CHECK(rs[0].details.at("stalled_seconds").as_double() == Approx(149));

    auto s = m.summary(at(1100));
    CHECK(s.stall.episodes == 2);
    CHECK(s.stall.highest_tier == "CRITICAL");
    CHECK(s.stall.longest_seconds == Approx(900));
    CHECK_FALSE(s.stall.stalled_at_end);
    CHECK(s.reports.at(es::ReportType::ANOMALY_STALL) == 7);
}

TEST_CASE("stall: a long gap between ticks reports only the highest tier reached", "[diagnosis][stall]") {
    es::SentinelSettings settings;
    settings.stall_threshold = 100s;
    auto ctx = context_of({{"frequency", 1}}, 10'000.0);
    es::Monitor<es::StallDetector> m(ctx, settings);
    m.on_pod(engine_pod(ctx), es::ChangeKind::added, at(0));
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
    m.on_tick(at(450));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("tier") == "HIGH");
    m.on_tick(at(500));
    CHECK(m.take_reports().empty());
}

TEST_CASE("stall: no workflow judgement without a running engine, while stale, or after completion",
          "[diagnosis][stall]") {
    es::SentinelSettings settings;
    settings.stall_threshold = 100s;
    auto ctx = context_of({{"frequency", 1}}, 10'000.0);

    SECTION("engine not running") {
        es::Monitor<es::StallDetector> m(ctx, settings);
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
        m.on_tick(at(1000));
        CHECK(m.take_reports().empty());
        // the engine starts: the clock starts with it
        m.on_pod(engine_pod(ctx), es::ChangeKind::added, at(1000));
        m.on_tick(at(1099));
        CHECK(m.take_reports().empty());
        m.on_tick(at(1100));
        CHECK(m.take_reports().size() == 1);
    }
    SECTION("feeds stale: time that could not be seen does not count") {
        es::Monitor<es::StallDetector> m(ctx, settings);
        m.on_pod(engine_pod(ctx), es::ChangeKind::added, at(0));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
        es::FeedHealth down;
        down.known = true;
        down.tasks_fresh = false;
        down.all_healthy = false;
        m.on_feed_health(down, at(50));
        m.on_tick(at(60));
        m.on_tick(at(500));
        CHECK(m.take_reports().empty());
        es::FeedHealth up;
        up.known = true;
        m.on_feed_health(up, at(600));
        m.on_tick(at(600));
        m.on_tick(at(699));
        CHECK(m.take_reports().empty());
        m.on_tick(at(700));
        CHECK(m.take_reports().size() == 1);
    }
    SECTION("after the exit code") {
        es::Monitor<es::StallDetector> m(ctx, settings);
        m.on_pod(engine_pod(ctx), es::ChangeKind::added, at(0));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
        m.on_completion_probe(exit_code(1), at(10));
        m.on_tick(at(1000));
        CHECK(m.take_reports().empty());
    }
}

// ------------------------------------------------------------------------------------------- memory pressure

TEST_CASE("memory pressure: two samples in a row at 90% of the pod's limit, once per attempt", "[diagnosis][memory]") {
    auto ctx = context_of({{"frequency", 2}});
    es::Monitor<es::MemoryPressureDetector> m(ctx, es::SentinelSettings{});
    auto p = pod_of("frequency", 1, kube::PodPhase::running, 0);
    p.resources.push_back({"test", 1024LL * 1024 * 1024, 512LL * 1024 * 1024, 1000, 500});
    m.on_pod(p, es::ChangeKind::added, at(0));

    m.on_metrics(sample_of({usage(p, 15, 950, 0.99)}), at(15));
    m.on_metrics(sample_of({usage(p, 15, 950, 0.99)}), at(20)); // the same sample again: counts once
    CHECK(m.take_reports().empty());
    m.on_metrics(sample_of({usage(p, 30, 800, 0.5)}), at(30)); // below: the streak restarts
    m.on_metrics(sample_of({usage(p, 45, 930, 0.99)}), at(45));
    CHECK(m.take_reports().empty());
    m.on_metrics(sample_of({usage(p, 60, 1000, 0.99)}), at(60));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::ANOMALY_MEMORY_PRESSURE);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].task_name == "frequency-1");
    CHECK(rs[0].message == "Task frequency-1 is using 1000 MiB of its 1 GiB memory limit (98%) and may soon be stopped "
                           "for running out of memory; it is also using all the processor time it is allowed.");
    CHECK(rs[0].details.at("memory_limit_bytes").as_int64() == 1024LL * 1024 * 1024);
    CHECK(rs[0].details.at("memory") == "1000 MiB");
    CHECK(rs[0].details.at("memory_limit") == "1 GiB");
    CHECK(rs[0].details.at("limit_source") == "pod");
    CHECK(rs[0].details.at("cpu_throttled").as_bool());
    CHECK(rs[0].details.at("cpu_limit_cores").as_double() == Approx(1.0));
    CHECK(rs[0].details.at("consecutive_samples").as_int64() == 2);
    m.on_metrics(sample_of({usage(p, 75, 1010, 0.2)}), at(75));
    m.on_metrics(sample_of({usage(p, 75, 1010, 0.2)}), at(80));
    CHECK(m.take_reports().empty());

    // a new attempt of the same task is a new finding
    auto retry = pod_of("frequency", 1, kube::PodPhase::running, 100, 0, "fghij");
    retry.resources = p.resources;
    m.on_pod(retry, es::ChangeKind::added, at(100));
    m.on_metrics(sample_of({usage(retry, 115, 990, 0.1)}), at(115));
    m.on_metrics(sample_of({usage(retry, 130, 990, 0.1)}), at(130));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK_FALSE(rs[0].details.at("cpu_throttled").as_bool());
    CHECK(text(rs[0].details.at("pod_name")) == retry.meta.name);
    CHECK(m.detector<es::MemoryPressureDetector>().warned().size() == 2);
}

TEST_CASE("memory pressure: the inventory's limit when the pod declares none; other pods ignored",
          "[diagnosis][memory]") {
    auto ctx = context_of({{"individuals", 1}}, {}, "512Mi", "500m");
    es::Monitor<es::MemoryPressureDetector> m(ctx, es::SentinelSettings{});
    auto p = pod_of("individuals", 1, kube::PodPhase::running, 0);
    m.on_pod(p, es::ChangeKind::added, at(0));
    kube::PodMetrics stranger;
    stranger.name = "redis-0";
    stranger.timestamp = at(15);
    stranger.containers.push_back({"redis", 1.0, 10LL * 1024 * 1024 * 1024});
    m.on_metrics(sample_of({usage(p, 15, 470, 0.48), stranger}), at(15));
    m.on_metrics(sample_of({usage(p, 30, 480.5, 0.1), stranger}), at(30));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("limit_source") == "inventory");
    CHECK(rs[0].details.at("memory_limit") == "512 MiB");
    CHECK(rs[0].details.at("memory") == "480.5 MiB");
    CHECK(rs[0].details.at("cpu_limit_cores").as_double() == Approx(0.5));
    CHECK(rs[0].message == "Task individuals is using 480.5 MiB of its 512 MiB memory limit (94%) and may soon be "
                           "stopped for running out of memory.");
}

TEST_CASE("memory pressure: no limit, no report; metrics unavailable said once in the summary", "[diagnosis][memory]") {
    auto ctx = context_of({{"sifting", 1}});
    es::Monitor<es::MemoryPressureDetector> m(ctx, es::SentinelSettings{});
    auto p = pod_of("sifting", 1, kube::PodPhase::running, 0);
    m.on_pod(p, es::ChangeKind::added, at(0));
    CHECK_FALSE(m.summary(at(0)).metrics_available.has_value());
    es::MetricsSample missing;
    missing.available = false;
    missing.problem = "the metrics API (metrics.k8s.io) is not served by this cluster";
    m.on_metrics(missing, at(15));
    es::MetricsSample forbidden;
    forbidden.available = false;
    forbidden.problem = "forbidden";
    m.on_metrics(forbidden, at(30));
    CHECK(m.take_reports().empty());
    auto s = m.summary(at(30));
    CHECK(s.metrics_available == std::optional<bool>(false));
    CHECK(s.metrics_problem == missing.problem);
    CHECK(s.resources.samples == 0);

    m.on_metrics(sample_of({usage(p, 45, 5000, 1)}), at(45)); // no limit anywhere: no judgement
    m.on_metrics(sample_of({usage(p, 60, 5000, 1)}), at(60));
    CHECK(m.take_reports().empty());
    s = m.summary(at(60));
    CHECK(s.metrics_available == std::optional<bool>(true));
    CHECK(s.metrics_problem.empty());
}

TEST_CASE("resources: usage integrated over samples, peaks per task type", "[diagnosis][memory][resources]") {
    es::SentinelSettings settings; // metrics_interval 15 s: a sample stands for at most 60 s
    auto ctx = context_of({{"frequency", 2}, {"sifting", 1}});
    es::Monitor<es::MemoryPressureDetector> m(ctx, settings);
    auto f1 = pod_of("frequency", 1, kube::PodPhase::running, 0);
    auto f2 = pod_of("frequency", 2, kube::PodPhase::running, 0);
    auto s3 = pod_of("sifting", 3, kube::PodPhase::running, 0);
    for (auto* p : {&f1, &f2, &s3}) m.on_pod(*p, es::ChangeKind::added, at(0));
    // first samples count their 15 s window; then the time since the pod's previous sample
    m.on_metrics(sample_of({usage(f1, 15, 1024, 1.0), usage(f2, 15, 512, 0.5), usage(s3, 15, 100, 0.2)}), at(15));
    m.on_metrics(sample_of({usage(f1, 15, 1024, 1.0)}), at(20)); // re-delivered: adds nothing
    m.on_metrics(sample_of({usage(f1, 30, 2048, 2.0), usage(f2, 30, 512, 0.5)}), at(30));
    m.on_metrics(sample_of({usage(f1, 230, 1024, 1.0)}), at(230)); // a 200 s gap counts 60 s at most
    auto s = m.summary(at(230));
    // cpu: 15×(1+0.5+0.2) + 15×(2+0.5) + 60×1 = 25.5 + 37.5 + 60 = 123
    CHECK(s.resources.cpu_seconds == Approx(123.0));
    // memory GiB: 15×(1+0.5+100/1024) + 15×(2+0.5) + 60×1
    CHECK(s.resources.memory_gib_seconds == Approx(15 * (1.5 + 100.0 / 1024) + 15 * 2.5 + 60));
    CHECK(s.resources.samples == 4);
    REQUIRE(s.resources.peak_by_type.size() == 2);
    CHECK(s.resources.peak_by_type.at("frequency").memory_bytes == 2048LL * 1024 * 1024);
    CHECK(s.resources.peak_by_type.at("frequency").cpu_cores == Approx(2.0));
    CHECK(s.resources.peak_by_type.at("sifting").memory_bytes == 100LL * 1024 * 1024);
}

TEST_CASE("a reading handed over in parts counts once and accounts as a whole", "[diagnosis][memory]") {
    es::SentinelSettings settings;
    auto ctx = context_of({{"frequency", 2}, {"sifting", 1}});
    es::Monitor<es::MemoryPressureDetector> whole(ctx, settings), parted(ctx, settings);
    auto f1 = pod_of("frequency", 1, kube::PodPhase::running, 0);
    auto f2 = pod_of("frequency", 2, kube::PodPhase::running, 0);
    auto s3 = pod_of("sifting", 3, kube::PodPhase::running, 0);
    for (auto* m : {&whole, &parted})
        for (auto* p : {&f1, &f2, &s3}) m->on_pod(*p, es::ChangeKind::added, at(0));
    for (int t : {15, 30}) {
        whole.on_metrics(sample_of({usage(f1, t, 1024, 1.0), usage(f2, t, 512, 0.5), usage(s3, t, 100, 0.2)}), at(t));
        auto first = sample_of({usage(f1, t, 1024, 1.0), usage(f2, t, 512, 0.5)});
        auto rest = sample_of({usage(s3, t, 100, 0.2)});
        rest.continued = true;
        parted.on_metrics(first, at(t));
        parted.on_metrics(rest, at(t));
    }
    auto a = whole.summary(at(30)), b = parted.summary(at(30));
    CHECK(b.resources.samples == 2);
    CHECK(a.resources.samples == 2);
    CHECK(b.resources.cpu_seconds == Approx(a.resources.cpu_seconds));
    CHECK(b.resources.cpu_seconds == Approx(30 * 1.7));
    CHECK(b.resources.memory_gib_seconds == Approx(a.resources.memory_gib_seconds));
    CHECK(b.resources.peak_by_type.at("sifting").memory_bytes == 100LL * 1024 * 1024);
}

TEST_CASE("human byte sizes", "[diagnosis][memory]") {
    CHECK(es::detail::es_human_bytes(12) == "12 bytes");
    CHECK(es::detail::es_human_bytes(2048) == "2 KiB");
    CHECK(es::detail::es_human_bytes(1.5 * 1024 * 1024 * 1024) == "1.5 GiB");
    CHECK(es::detail::es_human_bytes(950.0 * 1024 * 1024) == "950 MiB");
}

// ------------------------------------------------------------------------------------------- structure

TEST_CASE("structure: a phase that started before its declared upstream finished, at its end, once",
          "[diagnosis][structure]") {
    auto ctx = context_of({{"individuals", 2}, {"individuals_merge", 1}, {"sifting", 1}});
    ctx.dag_structure = {{"individuals", {}}, {"individuals_merge", {"individuals"}}, {"sifting", {"individuals_merge"}}};
    es::Monitor<es::StructureDetector> m(ctx, es::SentinelSettings{});
    auto sift = pod_of("sifting", 4, kube::PodPhase::running, 0);
    m.on_pod(sift, es::ChangeKind::added, at(1));
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::running, 1), es::ChangeKind::added, at(2));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::running, 1), es::ChangeKind::added, at(2));
    CHECK(m.take_reports().empty()); // judged at the phase's end, not at its start
    auto done = pod_of("sifting", 4, kube::PodPhase::succeeded, 0, 3);
    m.on_pod(done, es::ChangeKind::modified, at(4));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::STRUCTURE);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].task_type == "sifting");
    CHECK(rs[0].details.at("check") == "order");
    CHECK(rs[0].details.at("when") == "phase_end");
    CHECK(rs[0].details.at("upstream") == "individuals_merge");
    CHECK_FALSE(rs[0].details.at("upstream_completed").as_bool());
    CHECK(rs[0].details.at("upstream_first_finished_at").is_null());
    CHECK(rs[0].message == "The sifting tasks started before any of the individuals_merge tasks they are declared to "
                           "depend on had finished, so that declared dependency did not hold in this run.");
    // a merge starting once one individuals task finished, while the other still runs (another branch of the
    // DAG), is normal: no finding
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 1, 40), es::ChangeKind::modified, at(41));
    m.on_pod(pod_of("individuals_merge", 3, kube::PodPhase::running, 45), es::ChangeKind::added, at(45));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::succeeded, 1, 50), es::ChangeKind::modified, at(51));
    m.on_pod(pod_of("individuals_merge", 3, kube::PodPhase::succeeded, 45, 160), es::ChangeKind::modified, at(161));
    // the completion check repeats the order check: the same finding is not reported again
    m.on_completion_probe(exit_code(0), at(170));
    m.on_completion_probe(exit_code(0), at(180));
    m.on_pod(done, es::ChangeKind::added, at(190));
    CHECK(m.take_reports().empty());
}

TEST_CASE("structure at completion: unexpected and missing types, counts off", "[diagnosis][structure]") {
    auto ctx = context_of({{"individuals", 3}, {"sifting", 1}, {"frequency", 2}});
    ctx.dag_structure = {{"individuals", {}}, {"sifting", {}}, {"frequency", {"individuals", "sifting"}}};
    es::Monitor<es::StructureDetector> m(ctx, es::SentinelSettings{});
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("sifting", 4, kube::PodPhase::running, 0), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("sifting", 9, kube::PodPhase::succeeded, 0, 5), es::ChangeKind::added, at(10)); // one more
    m.on_pod(pod_of("mystery", 7, kube::PodPhase::succeeded, 0, 5), es::ChangeKind::added, at(10));
    CHECK(m.take_reports().empty());
    m.on_pod(pod_of("sifting", 4, kube::PodPhase::succeeded, 0, 11), es::ChangeKind::modified, at(12));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1); // the sifting phase ended with two tasks seen for one listed
    CHECK(rs[0].details.at("check") == "count");
    CHECK(rs[0].details.at("when") == "phase_end");
    CHECK(rs[0].message == "2 sifting tasks were seen, but the workflow lists 1; the extra ones were not announced.");

    m.on_completion_probe(exit_code(0), at(20));
    rs = m.take_reports();
    std::map<std::string, es::Report> by_check;
    for (auto& r : rs) by_check[r.details.at("check").as_string().c_str() + std::string(":") + r.task_type] = r;
    REQUIRE(rs.size() == 3); // the sifting count was reported already
    REQUIRE(by_check.count("unexpected_type:mystery"));
    CHECK(by_check["unexpected_type:mystery"].message ==
          "1 task of type mystery, which the workflow's task list does not mention, was seen; the list may be out of "
          "date.");
    REQUIRE(by_check.count("missing_type:frequency"));
    CHECK(by_check["missing_type:frequency"].message ==
          "No frequency task was seen although the workflow lists 2; the workflow may not have run them.");
    REQUIRE(by_check.count("count:individuals"));
    CHECK(by_check["count:individuals"].details.at("expected").as_int64() == 3);
    CHECK(by_check["count:individuals"].details.at("observed").as_int64() == 2);
    CHECK(by_check["count:individuals"].message ==
          "2 individuals tasks were seen, but the workflow lists 3; the others may not have run.");
    CHECK(by_check.count("count:sifting") == 0);
    for (auto& r : rs) CHECK(r.details.at("when") == "completion");
    m.on_completion_probe(exit_code(0), at(30));
    CHECK(m.take_reports().empty());
}

TEST_CASE("structure at completion: a failed run is not blamed for what it never ran; nothing seen at all",
          "[diagnosis][structure]") {
    auto ctx = context_of({{"individuals", 3}, {"frequency", 2}});
    es::Monitor<es::StructureDetector> failed(ctx, es::SentinelSettings{});
    failed.on_pod(pod_of("individuals", 1, kube::PodPhase::failed, 0, 10), es::ChangeKind::added, at(10));
    failed.on_completion_probe(exit_code(1), at(20));
    CHECK(failed.take_reports().empty());

    es::Monitor<es::StructureDetector> blind(ctx, es::SentinelSettings{});
    blind.on_completion_probe({true, "", ""}, at(5)); // being written: not yet
    blind.on_completion_probe(exit_code(0), at(10));
    auto rs = blind.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("check") == "none_observed");
    CHECK(rs[0].message == "None of the 5 tasks the workflow lists was seen running, so its progress could not be "
                           "followed; check that the sentinel watches the right namespace and labels.");

    auto agglomerated = ctx;
    agglomerated.agglomeration_factor = 3;
    es::Monitor<es::StructureDetector> a(agglomerated, es::SentinelSettings{});
    a.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    a.on_pod(pod_of("frequency", 4, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    a.on_completion_probe(exit_code(0), at(20));
    CHECK(a.take_reports().empty());
}

// ------------------------------------------------------------------------------------------- health

TEST_CASE("health score: failed tasks count against it, retried running tasks by half, pending not at all",
          "[diagnosis][health]") {
    CHECK(es::health_score(0, 0, 0, 0) == 1.0);
    CHECK(es::health_score(3, 0, 2, 0) == 1.0);
    CHECK(es::health_score(3, 1, 0, 0) == 0.75);
    CHECK(es::health_score(0, 4, 0, 0) == 0.0);
    CHECK(es::health_score(2, 1, 1, 1) == Approx(0.625));
    CHECK(es::health_score(1, 0, 2, 5) == 0.667); // retries capped by running
    CHECK(es::health_score(2, 0, 0, 0) == es::health_score(2, 0, 0, 0));

    auto ctx = context_of({{"frequency", 10}});
    es::Monitor<es::ProgressDetector> m(ctx, es::SentinelSettings{});
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("frequency", 2, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("frequency", 3, kube::PodPhase::failed, 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("frequency", 4, kube::PodPhase::running, 0), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("frequency", 5, kube::PodPhase::pending, 0), es::ChangeKind::added, at(10));
    m.on_pod(pod_of("frequency", 6, kube::PodPhase::succeeded, 0, 20), es::ChangeKind::added, at(20));
    auto rs = m.take_reports();
    auto counts = of_type(rs, es::ReportType::PROGRESS);
    REQUIRE_FALSE(counts.empty());
    // 3 succeeded, 1 failed, 1 running (the pending one does not count): 1 - 1/5
    CHECK(counts.back().details.at("health").as_double() == Approx(0.8));
    CHECK(m.summary(at(20)).health == std::optional<double>(0.8));
    CHECK(es::health_score(m.state()) == Approx(0.8));
}

// ------------------------------------------------------------------------------------------- view

TEST_CASE("monitor view: phases, running tasks, ETA with its basis, health, anomalies", "[diagnosis][view]") {
    auto ctx = context_of({{"individuals", 3}, {"frequency", 2}}, 100.0);
    es::SentinelSettings settings;
    settings.pending_timeout = 60s;
    es::DefaultMonitor m(ctx, settings);
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 0, 40), es::ChangeKind::added, at(40));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::running, 10), es::ChangeKind::added, at(40));
    m.on_pod(pod_of("individuals", 3, kube::PodPhase::running, 30), es::ChangeKind::added, at(40));
    m.on_pod(pod_of("frequency", 4, kube::PodPhase::pending, 0), es::ChangeKind::added, at(40));
    m.on_tick(at(70)); // frequency-4 has waited 70 s: an anomaly
    (void)m.take_reports();
    auto v = m.view(at(70));
    CHECK(v.at == at(70));
    CHECK(v.total == 5);
    CHECK(v.completed == 1);
    CHECK(v.running == 2);
    CHECK(v.pending == 2);
    REQUIRE(v.phases.size() == 2);
    CHECK(v.phases[0].task_type == "individuals");
    CHECK(v.phases[0].succeeded == 1);
    CHECK(v.phases[0].running == 2);
    CHECK(v.phases[1].task_type == "frequency");
    CHECK(v.phases[1].pending == 2);
    REQUIRE(v.running_tasks.size() == 2);
    CHECK(v.running_tasks[0].name == "individuals-2"); // longest first
    CHECK(v.running_tasks[0].elapsed_seconds == Approx(60));
    CHECK(v.running_tasks[0].basis == "sibling_median");
    CHECK(v.running_tasks[0].expected_seconds == Approx(40));
    // individuals: median 40 s → 0 s and 0 s left; frequency: expected 100 s each, not started → 200 s of work;
    // 2 running in parallel: ETA = max(0, 200 / 2) = 100 s
    REQUIRE(v.eta_seconds.has_value());
    CHECK(*v.eta_seconds == Approx(100));
    CHECK(v.eta_basis == "mixed");
    CHECK(v.health == 1.0);
    CHECK(v.anomaly_counts.at(es::ReportType::ANOMALY_STALL) == 1);
    REQUIRE(v.recent_anomalies.size() == 1);
    CHECK(v.recent_anomalies[0].task_name == "frequency-4");
    CHECK_FALSE(v.finished);
    CHECK(v.anomaly_counts.count(es::ReportType::PROGRESS) == 0);
    auto j = es::to_json(v);
    CHECK(j.at("eta_basis") == "mixed");
    CHECK(j.at("phases").as_array().size() == 2);
    CHECK(j.at("recent_anomalies").as_array().size() == 1);

    // without any baseline the ETA is unknown, and says why
    es::Monitor<es::ProgressDetector> n(context_of({{"sifting", 2}}), settings);
    n.on_pod(pod_of("sifting", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    auto w = n.view(at(10));
    CHECK_FALSE(w.eta_seconds.has_value());
    CHECK(w.eta_basis == "none");
    CHECK(w.eta_unknown_tasks == 2);
    CHECK(w.running_tasks.at(0).basis.empty());
}

TEST_CASE("recent reports keep the last anomalies only", "[diagnosis][view]") {
    es::RecentReports recent;
    std::vector<es::Report> batch;
    for (int i = 0; i < 30; ++i) {
        es::Report r;
        r.type = i % 2 ? es::ReportType::PROGRESS : es::ReportType::ANOMALY_STRAGGLER;
        r.sequence = static_cast<std::uint64_t>(i + 1);
        batch.push_back(r);
    }
    recent.note(batch);
    auto items = recent.items();
    REQUIRE(items.size() == 15);
    CHECK(items.front().sequence == 1);
    recent.note(batch);
    items = recent.items();
    REQUIRE(items.size() == es::RecentReports::capacity);
    CHECK(items.back().sequence == 29);
}

// ------------------------------------------------------------------------------------------- defaults and summary

TEST_CASE("the built-in set includes the diagnosis detectors, configured from the settings", "[diagnosis][defaults]") {
    es::SentinelSettings settings;
    settings.stall_threshold = 42s;
    settings.memory_pressure_ratio = 0.8;
    es::DefaultMonitor m(context_of({{"sifting", 1}}), settings);
    CHECK(m.detector<es::StallDetector>().options().stall_threshold == 42s);
    CHECK(m.detector<es::MemoryPressureDetector>().options().ratio == 0.8);
    CHECK_FALSE(m.detector<es::StructureDetector>().checked_at_completion());

    // COMPLETION stays the last report of a run
    m.on_pod(pod_of("mystery", 3, kube::PodPhase::succeeded, 0, 5), es::ChangeKind::added, at(5));
    m.on_completion_probe(exit_code(0), at(10));
    auto rs = m.take_reports();
    REQUIRE_FALSE(rs.empty());
    CHECK(rs.back().type == es::ReportType::COMPLETION);
    CHECK_FALSE(of_type(rs, es::ReportType::STRUCTURE).empty());
}

TEST_CASE("summary JSON round trip with resources, health, metrics and stall", "[diagnosis][summary]") {
    es::WatchSummary s;
    s.total_tasks = 40;
    s.completed_tasks = 38;
    s.failed_tasks = 2;
    s.exit_code = 1;
    s.health = 0.95;
    s.metrics_available = false;
    s.metrics_problem = "forbidden";
    s.resources.cpu_seconds = 1234.5;
    s.resources.memory_gib_seconds = 67.25;
    s.resources.samples = 12;
    s.resources.peak_by_type["frequency"] = {123456789, 0.75};
    s.resources.peak_by_type["sifting"] = {7500000, 0.05};
    s.stall.episodes = 1;
    s.stall.longest_seconds = 620;
    s.stall.highest_tier = "MEDIUM";
    s.stall.stalled_at_end = true;
    s.stall.stalled_tasks = {"frequency-3"};
    auto j = es::to_json(s);
    CHECK(j.at("health").as_double() == 0.95);
    CHECK(j.at("resources").at("peak_by_type").at("frequency").at("memory_bytes").as_int64() == 123456789);
    CHECK(j.at("stall").at("highest_tier") == "MEDIUM");
    CHECK(es::summary_from_json(boost::json::value(j)) == s);
    CHECK(es::summary_from_json(boost::json::parse(boost::json::serialize(j))) == s);

    es::WatchSummary empty;
    auto e = es::to_json(empty);
    CHECK(e.at("health").is_null());
    CHECK(e.at("metrics_available").is_null());
    CHECK(es::summary_from_json(boost::json::value(e)) == empty);
    // older summaries without the new fields still read
    auto old = es::summary_from_json(boost::json::parse(R"({"total_tasks": 3, "exit_code": 0})"));
    CHECK_FALSE(old.health.has_value());
    CHECK(old.resources == es::ResourceUse{});

    auto failure = [](const char* text) {
        try {
            es::summary_from_json(boost::json::parse(text));
        } catch (const es::SummaryFormatError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(failure(R"({"health": 1.5})") == "health: expected a number between 0 and 1");
    CHECK(failure(R"({"resources": {"cpu_seconds": -1}})") == "resources.cpu_seconds: expected a number of at least 0");
    CHECK(failure(R"({"resources": {"peak_by_type": {"x": {"memory_bytes": "1"}}}})") ==
          "resources.peak_by_type.x.memory_bytes: expected an integer");
    CHECK(failure(R"({"stall": {"stalled_tasks": [1]}})") == "stall.stalled_tasks[0]: expected a string");
    CHECK(failure(R"({"metrics_available": "yes"})") == "metrics_available: expected true or false");
}

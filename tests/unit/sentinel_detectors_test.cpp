// Every built-in detector with synthetic event sequences and a fixed clock; deduplication across a replayed
// relist; a user-written detector.
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/detectors/connectivity.hpp>
#include <execution_sentinel/detectors/mass_failure.hpp>
#include <execution_sentinel/detectors/oom_kill.hpp>
#include <execution_sentinel/detectors/progress.hpp>
#include <execution_sentinel/detectors/straggler.hpp>
#include <execution_sentinel/monitor.hpp>

#include <chrono>
#include <map>
#include <set>
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
    std::string slug = es::type_slug(type);
    return "job" + std::string("r") + std::to_string(proc) + "x-" + slug + "-" + std::to_string(proc) + "-1";
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

kube::Pod oom_pod(const std::string& type, int proc, double started, double finished) {
    auto p = pod_of(type, proc, kube::PodPhase::failed, started, finished);
    p.containers[0].state.reason = "OOMKilled";
    p.containers[0].state.exit_code = 137;
    return p;
}

kube::Job failed_job(const std::string& type, int proc) {
    kube::Job j;
    j.meta.name = job_name(type, proc);
    j.meta.uid = "uid-" + j.meta.name;
    j.meta.labels.items = {{"app", "hyperflow"}};
    j.failed = 7;
    j.conditions.push_back({kube::JobCondition::Type::failed, true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"});
    return j;
}

/// An inventory of `counts` tasks per type, in order; procIds are positions.
es::MonitoringContext context_of(std::vector<std::pair<std::string, int>> counts, std::optional<double> expected = {},
                                 std::string memory = "") {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    int order = 0;
    for (auto& [type, n] : counts) {
        for (int i = 0; i < n; ++i) c.task_inventory.push_back({type, type, order, expected, memory, ""});
        ++order;
    }
    return c;
}

} // namespace

TEST_CASE("progress: counts in order, phases started and completed, out-of-order start", "[detectors][progress]") {
    auto ctx = context_of({{"individuals", 2}, {"individuals_merge", 1}, {"sifting", 1}});
    ctx.dag_structure = {{"individuals", {}}, {"individuals_merge", {"individuals"}}, {"sifting", {"individuals_merge"}}};
    es::Monitor<es::ProgressDetector> m(ctx, es::SentinelSettings{});
    // reality (HyperFlow on Kubernetes): sifting (procId 4) starts first and finishes in seconds
    m.on_pod(pod_of("sifting", 4, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::running, 1), es::ChangeKind::added, at(2));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::running, 1), es::ChangeKind::added, at(2));
    m.on_pod(pod_of("sifting", 4, kube::PodPhase::succeeded, 0, 3), es::ChangeKind::modified, at(4));
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 1, 40), es::ChangeKind::modified, at(41));
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::succeeded, 1, 50), es::ChangeKind::modified, at(51));
    m.on_pod(pod_of("individuals_merge", 3, kube::PodPhase::running, 52), es::ChangeKind::added, at(52));
    m.on_pod(pod_of("individuals_merge", 3, kube::PodPhase::succeeded, 52, 160), es::ChangeKind::modified, at(161));
    auto rs = m.take_reports();
    std::vector<std::string> msgs;
    for (std::size_t i = 0; i < rs.size(); ++i) {
        CHECK(rs[i].sequence == i + 1);
        CHECK(rs[i].type == es::ReportType::PROGRESS);
        CHECK(rs[i].severity == es::Severity::info);
        msgs.push_back(rs[i].message);
    }
    std::vector<std::string> expected{
        "The sifting phase has started (1 task), earlier than the declared order, before individuals_merge has finished.",
        "The individuals phase has started (2 tasks).",
        "1 of 4 tasks has completed.",
        "The only sifting task has completed.",
        "2 of 4 tasks have completed.",
        "3 of 4 tasks have completed.",
        "All 2 individuals tasks have completed.",
        "The individuals_merge phase has started (1 task).",
        "4 of 4 tasks have completed.",
        "The only individuals_merge task has completed.",
    };
    CHECK(msgs == expected);
    REQUIRE(rs.size() == expected.size());
    CHECK(rs[0].details.at("out_of_order").as_bool());
    CHECK(rs[0].details.at("waiting_for").as_array().size() >= 1);
    CHECK_FALSE(rs[1].details.at("out_of_order").as_bool());
    CHECK(rs[2].completed_tasks == 1);
    CHECK(rs[2].total_tasks == 4);
    CHECK(rs.back().completed_tasks == 4);
    CHECK(m.detector<es::ProgressDetector>().last_completed() == 4);
}

TEST_CASE("oom kill: once per task, one warning naming the siblings at risk", "[detectors][oom]") {
    auto ctx = context_of({{"frequency", 5}}, {}, "1Gi");
    es::Monitor<es::OomKillDetector> m(ctx, es::SentinelSettings{});
    for (int i = 1; i <= 5; ++i) m.on_pod(pod_of("frequency", i, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    CHECK(m.take_reports().empty());

    auto killed = oom_pod("frequency", 3, 0, 30);
    m.on_pod(killed, es::ChangeKind::modified, at(30));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].type == es::ReportType::ANOMALY_OOMKILL);
    CHECK(rs[0].severity == es::Severity::error);
    CHECK(rs[0].task_name == "frequency-3");
    CHECK(rs[0].message ==
          "Task frequency-3 ran out of memory (limit 1Gi) and was stopped; 4 other frequency tasks are still running "
          "and may hit the same limit.");
    CHECK(rs[0].details.at("exit_code").as_int64() == 137);
    CHECK(rs[1].type == es::ReportType::ANOMALY_OOMKILL);
    CHECK(rs[1].severity == es::Severity::warning);
    std::set<std::string> at_risk;
    for (auto& v : rs[1].details.at("at_risk").as_array()) at_risk.insert(std::string(v.as_string()));
    CHECK(at_risk == std::set<std::string>{"frequency-1", "frequency-2", "frequency-4", "frequency-5"});
    CHECK(rs[1].message.find("frequency-3") != std::string::npos);

    // the same status again, and a whole relist: nothing new
    m.on_pod(killed, es::ChangeKind::modified, at(31));
    for (int i = 1; i <= 5; ++i)
        if (i != 3) m.on_pod(pod_of("frequency", i, kube::PodPhase::running, 0), es::ChangeKind::added, at(40));
    m.on_pod(killed, es::ChangeKind::added, at(40));
    CHECK(m.take_reports().empty());

    // a second OOM in the same type, seen in lastState of a restarted container: error only, no second warning
    auto restarted = pod_of("frequency", 4, kube::PodPhase::running, 50);
    restarted.containers[0].restart_count = 1;
    restarted.containers[0].last_state = {kube::ContainerState::Kind::terminated, "OOMKilled", "", 137, 9, at(0), at(49)};
    m.on_pod(restarted, es::ChangeKind::modified, at(50));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_name == "frequency-4");
    CHECK(rs[0].severity == es::Severity::error);

    // exit code 137 without OOMKilled is a kill, not an out-of-memory
    auto sigkill = pod_of("frequency", 5, kube::PodPhase::failed, 0, 60);
    sigkill.containers[0].state.exit_code = 137;
    m.on_pod(sigkill, es::ChangeKind::modified, at(60));
    CHECK(m.take_reports().empty());

    auto s = m.summary(at(70));
    CHECK(s.oom_killed == std::vector<std::string>{"frequency-3", "frequency-4"});
    CHECK(s.reports.at(es::ReportType::ANOMALY_OOMKILL) == 3);
}

TEST_CASE("oom kill with no other active task of the type: no warning", "[detectors][oom]") {
    es::Monitor<es::OomKillDetector> m(context_of({{"individuals_merge", 1}}), es::SentinelSettings{});
    m.on_pod(oom_pod("individuals_merge", 1, 0, 10), es::ChangeKind::added, at(10));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].message == "Task individuals_merge ran out of memory and was stopped.");
}

TEST_CASE("straggler against the expected duration, with the minimum runtime floor", "[detectors][straggler]") {
    es::Monitor<es::StragglerDetector> m(context_of({{"align", 1}}, 100.0), es::SentinelSettings{});
    m.on_pod(pod_of("align", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_tick(at(200));
    m.on_tick(at(300));
    CHECK(m.take_reports().empty());
    m.on_tick(at(301));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::ANOMALY_STRAGGLER);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].task_name == "align");
    CHECK(rs[0].details.at("basis").as_string() == "inventory");
    CHECK(rs[0].message == "Task align has been running for 5 minutes, more than 3 times its expected 100 seconds "
                           "(the workflow's estimate).");
    m.on_tick(at(400));
    m.on_tick(at(4000));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(4000)).stragglers == std::vector<std::string>{"align"});

    es::Monitor<es::StragglerDetector> floor(context_of({{"sifting", 1}}, 5.0), es::SentinelSettings{});
    floor.on_pod(pod_of("sifting", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    floor.on_tick(at(30)); // 30 s > 3 × 5 s, but below the 60 s floor
    CHECK(floor.take_reports().empty());
    floor.on_tick(at(61));
    CHECK(floor.take_reports().size() == 1);
}

TEST_CASE("straggler against the median of finished siblings once a quorum finished", "[detectors][straggler]") {
    es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 4}}), es::SentinelSettings{});
    for (int i = 1; i <= 4; ++i) m.on_pod(pod_of("frequency", i, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 0, 90), es::ChangeKind::modified, at(90));
    m.on_pod(pod_of("frequency", 2, kube::PodPhase::succeeded, 0, 100), es::ChangeKind::modified, at(100));
    m.on_tick(at(1000)); // two of four finished: below the quorum of ceil(0.75 × 4) = 3, no baseline
    CHECK(m.take_reports().empty());
    CHECK_FALSE(m.detector<es::StragglerDetector>().sibling_median(m.state(), "frequency", at(1000)).has_value());

    es::Monitor<es::StragglerDetector> q(context_of({{"frequency", 4}}), es::SentinelSettings{});
    for (int i = 1; i <= 4; ++i) q.on_pod(pod_of("frequency", i, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    q.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 0, 90), es::ChangeKind::modified, at(90));
    q.on_pod(pod_of("frequency", 2, kube::PodPhase::succeeded, 0, 100), es::ChangeKind::modified, at(100));
    q.on_pod(pod_of("frequency", 3, kube::PodPhase::succeeded, 0, 110), es::ChangeKind::modified, at(110));
    CHECK(q.detector<es::StragglerDetector>().sibling_median(q.state(), "frequency", at(110)) == std::optional<double>(100.0));
    q.on_tick(at(250));
    q.on_tick(at(300));
    CHECK(q.take_reports().empty());
    q.on_tick(at(301));
    auto rs = q.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_name == "frequency-4");
    CHECK(rs[0].details.at("basis").as_string() == "sibling_median");
    CHECK(rs[0].details.at("finished_siblings").as_int64() == 3);
    CHECK(rs[0].message ==
          "Task frequency-4 has been running for 5 minutes, more than 3 times the 100 seconds that 3 finished frequency "
          "tasks typically took.");
}

TEST_CASE("straggler options given explicitly win over the settings", "[detectors][straggler]") {
    es::StragglerDetector::Options o;
    o.multiplier = 1.5;
    o.min_runtime = 0ms;
    es::Monitor<es::StragglerDetector> m(context_of({{"align", 1}}, 100.0), es::SentinelSettings{},
                                         es::StragglerDetector(o));
    CHECK(m.detector<es::StragglerDetector>().options().multiplier == 1.5);
    m.on_pod(pod_of("align", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_tick(at(151));
    CHECK(m.take_reports().size() == 1);
}

TEST_CASE("mass failure: workflow-wide and per type, once each, with minimum finished counts", "[detectors][mass]") {
    // eas-hla (HyperFlow on Kubernetes): 12 tasks, 9 failed, 3 completed
    es::SentinelSettings settings;
    // The failures below finish within 20 s, which the burst rule (5 within 60 s) would report first, for the
    // workflow scope; this test is about the ratio rules (the burst rule: sentinel_failure_test.cpp).
    settings.mass_failure_burst_count = 0;
    es::Monitor<es::MassFailureDetector> m(context_of({{"individuals", 12}}), settings);
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::failed, 0, 10), es::ChangeKind::added, at(10));
    CHECK(m.take_reports().empty()); // one early failure is not a mass failure
    for (int i = 2; i <= 4; ++i) m.on_job(failed_job("individuals", i), es::ChangeKind::added, at(20));
    CHECK(m.take_reports().empty()); // 4 finished < 5 per type
    m.on_pod(pod_of("individuals", 5, kube::PodPhase::failed, 0, 30), es::ChangeKind::added, at(30));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::MASS_FAILURE);
    CHECK(rs[0].severity == es::Severity::critical);
    CHECK(rs[0].task_type == "individuals");
    CHECK(rs[0].details.at("scope").as_string() == "type");
    CHECK(rs[0].message == "5 of 5 finished individuals tasks have failed (100%), which points to a problem shared by "
                           "this step, such as its input data or software image.");
    for (int i = 6; i <= 9; ++i) m.on_pod(pod_of("individuals", i, kube::PodPhase::failed, 0, 40), es::ChangeKind::added, at(40));
    CHECK(m.take_reports().empty()); // 9 finished < 10 workflow-wide
    m.on_pod(pod_of("individuals", 10, kube::PodPhase::succeeded, 0, 50), es::ChangeKind::added, at(50));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("scope").as_string() == "workflow");
    CHECK(rs[0].message.starts_with("9 of 10 finished tasks have failed (90%)"));
    m.on_pod(pod_of("individuals", 11, kube::PodPhase::succeeded, 0, 60), es::ChangeKind::added, at(60));
    m.on_pod(pod_of("individuals", 12, kube::PodPhase::succeeded, 0, 60), es::ChangeKind::added, at(60));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(60)).mass_failure);
    CHECK(m.summary(at(60)).failed_tasks == 9);
    CHECK(m.summary(at(60)).completed_tasks == 3);
}

TEST_CASE("mass failure stays quiet under the threshold", "[detectors][mass]") {
    // 2 of 31 failed (sporadic race, real HyperFlow runs)
    es::Monitor<es::MassFailureDetector> m(context_of({{"frequency", 31}}), es::SentinelSettings{});
    for (int i = 1; i <= 31; ++i)
        m.on_pod(pod_of("frequency", i, i % 15 == 0 ? kube::PodPhase::failed : kube::PodPhase::succeeded, 0, 10),
                 es::ChangeKind::added, at(10));
    CHECK(m.take_reports().empty());
    CHECK_FALSE(m.summary(at(10)).mass_failure);
}

TEST_CASE("connectivity: three consecutive failures, then restored; each outage once", "[detectors][connectivity]") {
    es::Monitor<es::ConnectivityDetector> m(context_of({}), es::SentinelSettings{});
    m.on_api_call(false, "watch pods", at(0));
    m.on_api_call(false, "watch pods", at(1));
    m.on_api_call(true, "list pods", at(2)); // a success resets the streak
    m.on_api_call(false, "watch pods", at(3));
    m.on_api_call(false, "watch jobs", at(4));
    CHECK(m.take_reports().empty());
    m.on_api_call(false, "watch pods", at(5));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_LOSS);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].details.at("failed_calls").as_int64() == 3);
    for (int i = 6; i < 20; ++i) m.on_api_call(false, "watch pods", at(i));
    CHECK(m.take_reports().empty());
    m.on_api_call(true, "list pods", at(123));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_RESTORED);
    CHECK(rs[0].severity == es::Severity::info);
    CHECK(rs[0].message == "Contact with the cluster is back after 2 minutes; monitoring continues where it left off.");
    m.on_api_call(true, "watch pods", at(124));
    CHECK(m.take_reports().empty());
    for (int i = 0; i < 3; ++i) m.on_api_call(false, "watch pods", at(200 + i));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_LOSS);
    CHECK(rs[0].details.at("outage").as_int64() == 2);
    CHECK(m.detector<es::ConnectivityDetector>().outages() == 2);
}

TEST_CASE("completion: exit code from the signal file; bad content reported, not fatal", "[detectors][completion]") {
    es::Monitor<es::CompletionDetector> m(context_of({{"sifting", 2}}), es::SentinelSettings{});
    m.on_completion_probe({false, "", "cat: /work_dir/.workflow-exit-code: No such file or directory"}, at(10));
    m.on_completion_probe({true, "", ""}, at(20)); // being written
    CHECK(m.take_reports().empty());
    CHECK_FALSE(m.finished());
    m.on_completion_probe({true, "done\n", ""}, at(30));
    m.on_completion_probe({true, "done\n", ""}, at(40));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::COMPLETION_SIGNAL_INVALID);
    CHECK(rs[0].severity == es::Severity::warning);
    CHECK(rs[0].details.at("content").as_string() == "done\\n");
    CHECK_FALSE(m.finished());
    m.on_completion_probe({true, "0\n", ""}, at(50));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::COMPLETION);
    CHECK(rs[0].severity == es::Severity::info);
    CHECK(rs[0].message == "The workflow finished successfully; all 2 tasks are done.");
    CHECK(m.finished());
    CHECK(m.summary(at(60)).exit_code == std::optional<int>(0));
    m.on_completion_probe({true, "1\n", ""}, at(60)); // later probes change nothing
    m.on_timeout(at(70));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(70)).exit_code == std::optional<int>(0));
    CHECK_FALSE(m.summary(at(70)).timed_out);

    CHECK(es::parse_exit_code(" 1\n") == std::optional<int>(1));
    CHECK(es::parse_exit_code("137") == std::optional<int>(137));
    CHECK_FALSE(es::parse_exit_code("1 2").has_value());
    CHECK_FALSE(es::parse_exit_code("99999999999").has_value());
    CHECK_FALSE(es::parse_exit_code("").has_value());
    CHECK_FALSE(es::parse_exit_code("\x01\x02").has_value());
}

TEST_CASE("completion with a non-zero code is an error; timeout without code", "[detectors][completion]") {
    es::Monitor<es::CompletionDetector> m(context_of({{"individuals", 3}}), es::SentinelSettings{});
    m.on_pod(pod_of("individuals", 1, kube::PodPhase::succeeded, 0, 10), es::ChangeKind::added, at(10));
    m.on_completion_probe({true, "1\n", ""}, at(30));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].severity == es::Severity::error);
    CHECK(rs[0].message == "The workflow stopped with exit code 1 after 1 of 3 tasks had completed, most likely because "
                           "a task failed.");
    CHECK(m.summary(at(30)).exit_code == std::optional<int>(1));

    es::SentinelSettings short_limit;
    short_limit.timeout = 8s;
    es::Monitor<es::CompletionDetector> t(context_of({{"individuals", 3}}), short_limit);
    t.on_completion_probe({false, "", "not found"}, at(0));
    t.on_timeout(at(8));
    t.on_timeout(at(9));
    rs = t.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::TIMEOUT);
    CHECK(rs[0].message == "The workflow did not finish within the 8 seconds allowed; 0 of 3 tasks had completed and 0 "
                           "were still running.");
    auto s = t.summary(at(9));
    CHECK(s.timed_out);
    CHECK_FALSE(s.exit_code.has_value());
    CHECK(t.finished());
}

TEST_CASE("reports are deduplicated across a replayed relist after a reconnect", "[detectors][dedupe]") {
    auto ctx = context_of({{"frequency", 4}, {"mutation_overlap", 2}}, 100.0, "1Gi");
    es::DefaultMonitor m(ctx, es::SentinelSettings{});
    std::vector<kube::Pod> seen; // the watch cache a relist would deliver again
    auto deliver = [&](kube::Pod p, double t) {
        m.on_pod(p, es::ChangeKind::modified, at(t));
        for (auto& s : seen)
            if (s.meta.uid == p.meta.uid) {
                s = p;
                return;
            }
        seen.push_back(p);
    };
    for (int i = 1; i <= 4; ++i) deliver(pod_of("frequency", i, kube::PodPhase::running, 0), 1);
    deliver(pod_of("mutation_overlap", 5, kube::PodPhase::running, 0), 1);
    deliver(oom_pod("frequency", 1, 0, 20), 20);
    deliver(pod_of("frequency", 2, kube::PodPhase::succeeded, 0, 50), 50);
    m.on_tick(at(400)); // stragglers: frequency 3, 4 and mutation_overlap 5
    for (int i = 0; i < 3; ++i) m.on_api_call(false, "watch pods", at(401 + i));
    m.on_api_call(true, "list pods", at(410));
    auto first = m.take_reports();
    std::map<es::ReportType, int> per_type;
    for (auto& r : first) ++per_type[r.type];
    CHECK(per_type[es::ReportType::ANOMALY_OOMKILL] == 2);
    CHECK(per_type[es::ReportType::ANOMALY_STRAGGLER] == 3);
    CHECK(per_type[es::ReportType::CONNECTIVITY_LOSS] == 1);
    CHECK(per_type[es::ReportType::CONNECTIVITY_RESTORED] == 1);
    auto before = m.summary(at(410));

    // reconnect: the relist delivers every object again as "added", twice, in reverse order
    for (int round = 0; round < 2; ++round)
        for (auto it = seen.rbegin(); it != seen.rend(); ++it) m.on_pod(*it, es::ChangeKind::added, at(420 + round));
    m.on_tick(at(430));
    CHECK(m.take_reports().empty());
    auto after = m.summary(at(410));
    CHECK(after == before);
    CHECK(m.state().total() == 6);
}

TEST_CASE("the report sink numbers, deduplicates and restores its ledger", "[detectors][sink]") {
    es::ReportSink sink;
    sink.begin(at(5), 3, 10);
    es::Finding f;
    f.type = es::ReportType::ANOMALY_STRAGGLER;
    f.task_name = "frequency-38";
    f.message = "m";
    f.fingerprint = "straggler";
    CHECK(sink.emit(f));
    CHECK_FALSE(sink.emit(f));
    f.fingerprint = "other";
    CHECK(sink.emit(f));
    auto rs = sink.take();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].sequence == 1);
    CHECK(rs[1].sequence == 2);
    CHECK(rs[0].completed_tasks == 3);
    CHECK(rs[0].total_tasks == 10);
    CHECK(rs[0].timestamp == at(5));
    CHECK(sink.take().empty());

    es::ReportSink restarted;
    restarted.restore_ledger(sink.ledger(), sink.last_sequence());
    CHECK_FALSE(restarted.emit(f));
    f.fingerprint = "new";
    CHECK(restarted.emit(f));
    CHECK(restarted.take().at(0).sequence == 3);
}

namespace {

/// A user-written detector: a task waiting to start for longer than a limit (unschedulable, image pull…).
class PendingTooLong {
public:
    static constexpr std::string_view name = "pending_too_long";
    explicit PendingTooLong(std::chrono::seconds limit) : limit_(limit) {}

    void on_tick(const es::WorkflowState& s, es::Timestamp now, es::ReportSink& sink) {
        for (auto& t : s.tasks()) {
            if (t.status != es::TaskStatus::pending || !t.first_seen || now - *t.first_seen <= limit_) continue;
            es::Finding f;
            f.type = es::ReportType::ANOMALY_STALL;
            f.severity = es::Severity::warning;
            f.task_name = t.name;
            f.task_type = t.task_type;
            f.scope = t.key;
            f.fingerprint = "pending";
            f.message = "Task " + t.name + " has been waiting to start for too long.";
            sink.emit(std::move(f));
        }
    }

private:
    std::chrono::seconds limit_;
};
static_assert(es::Detector<PendingTooLong>);

/// Only a pod hook: image pull failures.
struct ImagePullWatch {
    static constexpr std::string_view name = "image_pull";
    int seen = 0;
    void on_pod(const es::WorkflowState& s, const kube::Pod& p, es::ChangeKind, es::Timestamp, es::ReportSink& sink) {
        for (auto& c : p.containers)
            if (c.state.kind == kube::ContainerState::Kind::waiting &&
                (c.state.reason == "ErrImagePull" || c.state.reason == "ImagePullBackOff")) {
                ++seen;
                const auto* t = s.find_task(p.meta.name);
                es::Finding f;
                f.type = es::ReportType::ANOMALY_STALL;
                f.severity = es::Severity::error;
                f.task_name = t ? t->name : p.meta.name;
                f.fingerprint = "image";
                f.message = "Task " + f.task_name + " cannot start because its software image cannot be downloaded.";
                sink.emit(std::move(f));
            }
    }
};
static_assert(es::Detector<ImagePullWatch>);

struct NotADetector {
    static constexpr std::string_view name = "nothing";
};
static_assert(!es::Detector<NotADetector>);
static_assert(!es::Detector<int>);

} // namespace

TEST_CASE("a user-written detector plugs into a Monitor beside the built-ins", "[detectors][custom]") {
    es::Monitor<es::ProgressDetector, PendingTooLong, ImagePullWatch> m(
        context_of({{"sifting", 2}}), es::SentinelSettings{}, es::ProgressDetector{}, PendingTooLong(300s),
        ImagePullWatch{});
    m.on_pod(pod_of("sifting", 1, kube::PodPhase::pending, 0), es::ChangeKind::added, at(0));
    auto pulling = pod_of("sifting", 2, kube::PodPhase::pending, 0);
    pulling.containers[0].state.reason = "ImagePullBackOff";
    m.on_pod(pulling, es::ChangeKind::added, at(0));
    m.on_pod(pulling, es::ChangeKind::modified, at(10));
    m.on_tick(at(100));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].message == "Task sifting-2 cannot start because its software image cannot be downloaded.");
    CHECK(m.detector<ImagePullWatch>().seen == 2);
    m.on_tick(at(301));
    m.on_tick(at(302));
    rs = m.take_reports();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].type == es::ReportType::ANOMALY_STALL);
    CHECK(rs[0].sequence == 2);
    CHECK(m.summary(at(302)).reports.at(es::ReportType::ANOMALY_STALL) == 3);
}

TEST_CASE("detectors chosen at run time through AnyDetector", "[detectors][custom]") {
    es::DetectorList list;
    list.add(es::CompletionDetector{}).add(PendingTooLong(60s)).add(es::ConnectivityDetector(1));
    CHECK(list.size() == 3);
    CHECK(list.items()[1].detector_name() == "pending_too_long");
    CHECK(list.items()[0].target<es::CompletionDetector>() != nullptr);
    CHECK(list.items()[0].target<PendingTooLong>() == nullptr);
    es::Monitor<es::DetectorList> m(context_of({{"sifting", 1}}), es::SentinelSettings{}, std::move(list));
    m.on_api_call(false, "watch pods", at(1)); // ConnectivityDetector(1): one failure is enough
    m.on_completion_probe({true, "0", ""}, at(2));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_LOSS);
    CHECK(rs[1].type == es::ReportType::COMPLETION);
    CHECK(m.finished());
    CHECK(m.summary(at(3)).exit_code == std::optional<int>(0));
}

TEST_CASE("straggler: no judgement while the task states are stale (watch down or resyncing)",
          "[detectors][straggler][stale]") {
    // The task finished at 120 s while the pod watch was down; the driver knows its picture is stale.
    es::Monitor<es::StragglerDetector> m(context_of({{"align", 1}}, 100.0), es::SentinelSettings{});
    es::FeedHealth fresh;
    fresh.known = true;
    m.on_feed_health(fresh, at(0));
    m.on_pod(pod_of("align", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    es::FeedHealth stale;
    stale.known = true;
    stale.tasks_fresh = false;
    stale.all_healthy = false;
    stale.unhealthy = {"pods"};
    m.on_feed_health(stale, at(100));
    CHECK(m.state().tasks_stale());
    for (int t = 301; t < 600; t += 50) m.on_tick(at(t)); // would be a straggler from 300 s on
    CHECK(m.take_reports().empty());
    // The relist shows it finished: never a straggler.
    m.on_pod(pod_of("align", 1, kube::PodPhase::succeeded, 0, 120), es::ChangeKind::modified, at(600));
    m.on_feed_health(fresh, at(600));
    m.on_tick(at(601));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(601)).stragglers.empty());

    // Still running once the picture is fresh again: judged then.
    es::Monitor<es::StragglerDetector> r(context_of({{"align", 1}}, 100.0), es::SentinelSettings{});
    r.on_pod(pod_of("align", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    r.on_feed_health(stale, at(100));
    r.on_tick(at(400));
    CHECK(r.take_reports().empty());
    r.on_feed_health(fresh, at(401));
    r.on_tick(at(402));
    CHECK(r.take_reports().size() == 1);
}

TEST_CASE("connectivity with feed health: restored only when every watch streams again, once per outage",
          "[detectors][connectivity]") {
    es::Monitor<es::ConnectivityDetector> m(context_of({}), es::SentinelSettings{});
    es::FeedHealth up;
    up.known = true;
    up.healthy_since = at(0);
    m.on_feed_health(up, at(0));
    es::FeedHealth down = up;
    down.all_healthy = false;
    down.tasks_fresh = false;
    down.healthy_since.reset();
    down.unhealthy = {"pods", "jobs", "events", "engine"};

    for (int i = 0; i < 3; ++i) m.on_api_call(false, "watch pods", "watch failed: cannot connect (connection refused)", at(10 + i));
    m.on_feed_health(down, at(12));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_LOSS);
    CHECK(rs[0].details.at("cause").as_string() == "watch failed: cannot connect (connection refused)");
    CHECK(rs[0].message.find("connection refused") != std::string::npos);

    // A single list succeeds while the watches are still refused: not restored, and no flapping after.
    m.on_api_call(true, "list pods", at(13));
    m.on_tick(at(13));
    CHECK(m.take_reports().empty());
    for (int i = 0; i < 5; ++i) m.on_api_call(false, "watch jobs", "refused", at(14 + i));
    CHECK(m.take_reports().empty()); // the same outage: no second LOSS

    // The watches stream again after the last failure: restored at the next tick, once.
    es::FeedHealth back = up;
    back.healthy_since = at(30);
    m.on_feed_health(back, at(30));
    m.on_tick(at(30));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_RESTORED);
    CHECK(rs[0].details.at("outage_seconds").as_double() == Approx(20.0));
    m.on_tick(at(31));
    m.on_api_call(true, "watch pods", at(32));
    CHECK(m.take_reports().empty());
    CHECK(m.detector<es::ConnectivityDetector>().outages() == 1);
}

TEST_CASE("connectivity: failures of one kind while the watches stream are restored by a success, not a tick",
          "[detectors][connectivity]") {
    es::Monitor<es::ConnectivityDetector> m(context_of({}), es::SentinelSettings{});
    es::FeedHealth up;
    up.known = true;
    up.healthy_since = at(0);
    m.on_feed_health(up, at(0));
    for (int i = 0; i < 3; ++i)
        m.on_api_call(false, "exec completion probe", "too many requests (429)", at(10 + i));
    CHECK(m.take_reports().size() == 1);
    m.on_tick(at(13)); // the feeds were healthy before the failures: that proves nothing about the probe
    CHECK(m.take_reports().empty());
    m.on_api_call(true, "exec completion probe", at(14));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::CONNECTIVITY_RESTORED);
}

// Task failures classified (ANOMALY_TASK_FAILED), mass failure of a small phase and bursts, the task-lifecycle
// stream, what WorkflowState keeps as evidence, and the settings of these detectors — each with a fixed clock, and
// each checked for no duplicate when the same objects are delivered again (a relist).
#include <execution_sentinel/detectors/mass_failure.hpp>
#include <execution_sentinel/detectors/task_failure.hpp>
#include <execution_sentinel/detectors/task_lifecycle.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/settings.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string job_of(const std::string& type, int proc) { return "jobq" + std::to_string(proc) + "z-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1"; }

/// A task pod with container "test"; `state` describes it.
kube::Pod task_pod(const std::string& type, int proc, kube::PodPhase phase, double started = 0,
                   const std::string& suffix = "abcde") {
    auto job = job_of(type, proc);
    kube::Pod p;
    p.meta.name = job + "-" + suffix;
    p.meta.uid = "uid-" + p.meta.name;
    p.meta.creation_timestamp = at(started);
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    p.node_name = "worker-2";
    kube::ContainerStatus c;
    c.name = "test";
    if (phase == kube::PodPhase::running) {
        c.state.kind = kube::ContainerState::Kind::running;
        c.state.started_at = at(started);
        p.start_time = at(started);
    } else if (phase == kube::PodPhase::pending) {
        c.state.kind = kube::ContainerState::Kind::waiting;
        c.state.reason = "ContainerCreating";
    }
    p.containers.push_back(c);
    return p;
}

kube::Pod terminated_pod(const std::string& type, int proc, int exit_code, std::string reason, double started,
                         double finished, const std::string& suffix = "abcde") {
    auto p = task_pod(type, proc, exit_code == 0 ? kube::PodPhase::succeeded : kube::PodPhase::failed, started, suffix);
    auto& st = p.containers[0].state;
    st.kind = kube::ContainerState::Kind::terminated;
    st.reason = std::move(reason);
    st.exit_code = exit_code;
    st.started_at = at(started);
    st.finished_at = at(finished);
    p.start_time = at(started);
    return p;
}

kube::Pod waiting_pod(const std::string& type, int proc, const std::string& reason, double created) {
    auto p = task_pod(type, proc, kube::PodPhase::pending, created);
    p.containers[0].state.reason = reason;
    p.containers[0].state.message = "Back-off pulling image \"hyperflowwms/1000genome-worker:1.4-je1.4.2\"";
    return p;
}

kube::Event warning(const kube::Pod& p, const std::string& uid, const std::string& reason, const std::string& message,
                    int count = 1) {
    kube::Event ev;
    ev.meta.name = p.meta.name + "." + uid;
    ev.meta.uid = uid;
    ev.involved = {"Pod", p.meta.name, p.meta.uid};
    ev.type = "Warning";
    ev.reason = reason;
    ev.message = message;
    ev.count = count;
    return ev;
}

es::MonitoringContext context_of(std::vector<std::pair<std::string, int>> counts) {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    int order = 0;
    for (auto& [type, n] : counts) {
        for (int i = 0; i < n; ++i) c.task_inventory.push_back({type, type, order, std::nullopt, "", ""});
        ++order;
    }
    return c;
}

using FailureMonitor = es::Monitor<es::TaskFailureDetector>;

std::vector<es::Report> of_type(const std::vector<es::Report>& rs, es::ReportType t) {
    std::vector<es::Report> out;
    for (auto& r : rs)
        if (r.type == t) out.push_back(r);
    return out;
}

} // namespace

TEST_CASE("task failure: a non-zero exit is one error with its cause, evidence and next step; a relist repeats nothing",
          "[failure][exit]") {
    FailureMonitor m(context_of({{"frequency", 4}}), es::SentinelSettings{});
    auto running = task_pod("frequency", 3, kube::PodPhase::running, 10);
    m.on_pod(running, es::ChangeKind::added, at(10));
    // seven Warning Events, one of them delivered twice with a higher count: the newest five are kept
    for (int i = 1; i <= 7; ++i) m.on_event(warning(running, "ev" + std::to_string(i), "BackOff", "event " + std::to_string(i)), at(11));
    m.on_event(warning(running, "ev7", "BackOff", "event 7", 3), at(12));
    CHECK(m.take_reports().empty());
    auto failed = terminated_pod("frequency", 3, 1, "Error", 10, 40);
    m.on_pod(failed, es::ChangeKind::modified, at(41));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    const auto& r = rs[0];
    CHECK(r.type == es::ReportType::ANOMALY_TASK_FAILED);
    CHECK(r.severity == es::Severity::error);
    CHECK(r.timestamp == at(41));
    CHECK(r.task_type == "frequency");
    CHECK(r.message == "Task " + r.task_name + " failed: its program exited with code 1.");
    CHECK(r.details.at("reason").as_string() == "Error");
    CHECK(r.details.at("cause").as_string() == "exit");
    CHECK(r.details.at("exit_code").as_int64() == 1);
    CHECK(r.details.at("container").as_string() == "test");
    CHECK(r.details.at("attempt").as_int64() == 1);
    CHECK(r.details.at("restart_count").as_int64() == 0);
    CHECK(r.details.at("node").as_string() == "worker-2");
    CHECK(r.details.at("source").as_string() == "cluster");
    CHECK_FALSE(r.details.at("next_step").as_string().empty());
    const auto& ev = r.details.at("evidence").as_object();
    CHECK(ev.at("container").as_string() == "test");
    CHECK(ev.at("exit_code").as_int64() == 1);
    const auto& events = ev.at("events").as_array();
    REQUIRE(events.size() == es::max_task_events);
    CHECK(events.front().at("message").as_string() == "event 3");
    CHECK(events.back().at("message").as_string() == "event 7");
    CHECK(events.back().at("count").as_int64() == 3);
    REQUIRE(r.evidence_request);
    CHECK(r.evidence_request->pod == failed.meta.name);
    CHECK(r.evidence_request->container == "test");

    // the same pod again (modified, then added by a relist), and its deletion after it finished: nothing new
    m.on_pod(failed, es::ChangeKind::modified, at(50));
    m.on_pod(failed, es::ChangeKind::added, at(60));
    m.on_pod(failed, es::ChangeKind::deleted, at(70));
    CHECK(m.take_reports().empty());

    // a retry pod of the same Job failing again is a new attempt: one more report, attempt 2
    m.on_pod(terminated_pod("frequency", 3, 2, "Error", 80, 90, "fghij"), es::ChangeKind::added, at(91));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("attempt").as_int64() == 2);
    CHECK(rs[0].details.at("exit_code").as_int64() == 2);
}

TEST_CASE("task failure: 143 (SIGTERM) and 137 (SIGKILL) are told apart from an OOM kill", "[failure][signals]") {
    es::Monitor<es::TaskFailureDetector, es::OomKillDetector> m(context_of({{"sifting", 3}}), es::SentinelSettings{});
    m.on_pod(terminated_pod("sifting", 1, 143, "Error", 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(terminated_pod("sifting", 2, 137, "Error", 0, 10), es::ChangeKind::added, at(10));
    m.on_pod(terminated_pod("sifting", 3, 137, "OOMKilled", 0, 10), es::ChangeKind::added, at(10));
    auto rs = m.take_reports();
    auto failed = of_type(rs, es::ReportType::ANOMALY_TASK_FAILED);
    REQUIRE(failed.size() == 2);
    CHECK(failed[0].details.at("reason").as_string() == "SIGTERM");
    CHECK(failed[0].message.find("termination signal, exit code 143") != std::string::npos);
    CHECK(failed[1].details.at("reason").as_string() == "SIGKILL");
    CHECK(failed[1].message.find("not an out-of-memory kill") != std::string::npos);
    CHECK(of_type(rs, es::ReportType::ANOMALY_OOMKILL).size() == 1); // the OOM kill stays the OOM detector's
}

TEST_CASE("task failure: a crash loop reports its restart count once per pod", "[failure][crashloop]") {
    FailureMonitor m(context_of({{"individuals", 1}}), es::SentinelSettings{});
    auto p = task_pod("individuals", 1, kube::PodPhase::running, 0);
    auto& c = p.containers[0];
    c.restart_count = 4;
    c.state = {};
    c.state.kind = kube::ContainerState::Kind::waiting;
    c.state.reason = "CrashLoopBackOff";
    c.state.message = "back-off 1m20s restarting failed container";
    c.last_state.kind = kube::ContainerState::Kind::terminated;
    c.last_state.reason = "Error";
    c.last_state.exit_code = 2;
    m.on_pod(p, es::ChangeKind::modified, at(100));
    auto rs = m.take_reports();
    auto loop = std::find_if(rs.begin(), rs.end(), [](auto& r) { return r.details.at("cause").as_string() == "crash_loop"; });
    REQUIRE(loop != rs.end());
    CHECK(loop->details.at("reason").as_string() == "CrashLoopBackOff");
    CHECK(loop->details.at("restart_count").as_int64() == 4);
    CHECK(loop->details.at("exit_code").as_int64() == 2);
    CHECK(loop->message.find("restarted 4 times (last exit code 2)") != std::string::npos);
    CHECK(m.state().tasks()[0].pods[0].restart_count == 4);
    c.restart_count = 5; // the next restart: the same cause of the same pod, no new report
    m.on_pod(p, es::ChangeKind::modified, at(200));
    CHECK(m.take_reports().empty());
}

TEST_CASE("task failure: an evicted pod names the resource the machine ran short of", "[failure][evicted]") {
    FailureMonitor m(context_of({{"mutation_overlap", 2}}), es::SentinelSettings{});
    m.on_pod(task_pod("mutation_overlap", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    auto p = task_pod("mutation_overlap", 1, kube::PodPhase::failed, 0);
    p.reason = "Evicted";
    p.message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi.";
    p.containers[0].state.kind = kube::ContainerState::Kind::terminated;
    p.containers[0].state.reason = "ContainerStatusUnknown";
    p.containers[0].state.exit_code = 137;
    m.on_pod(p, es::ChangeKind::modified, at(30));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1); // the eviction, not also the container's exit code
    CHECK(rs[0].details.at("reason").as_string() == "Evicted");
    CHECK(rs[0].message.find("ran short of memory") != std::string::npos);
    CHECK(rs[0].details.at("cluster_message").as_string().starts_with("The node was low on resource: memory."));
    m.on_pod(p, es::ChangeKind::added, at(40));
    CHECK(m.take_reports().empty());
}

TEST_CASE("task failure: Job DeadlineExceeded and BackoffLimitExceeded, once per Job and reason", "[failure][job]") {
    FailureMonitor m(context_of({{"frequency", 2}}), es::SentinelSettings{});
    auto make_job = [](int proc, std::string reason) {
        kube::Job j;
        j.meta.name = job_of("frequency", proc);
        j.meta.uid = "uid-" + j.meta.name;
        j.meta.labels.items = {{"app", "hyperflow"}};
        j.failed = 7;
        j.conditions.push_back({kube::JobCondition::Type::failed, true, std::move(reason), "Job was active longer than specified deadline"});
        return j;
    };
    m.on_pod(task_pod("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_job(make_job(1, "DeadlineExceeded"), es::ChangeKind::modified, at(600));
    m.on_job(make_job(2, "BackoffLimitExceeded"), es::ChangeKind::added, at(601));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 2);
    CHECK(rs[0].details.at("reason").as_string() == "DeadlineExceeded");
    CHECK(rs[0].message.find("ran past its time limit") != std::string::npos);
    REQUIRE(rs[0].evidence_request); // its pod ran: ask for its log
    CHECK(rs[0].details.at("pod_name").as_string() == rs[0].evidence_request->pod);
    CHECK(rs[1].details.at("reason").as_string() == "BackoffLimitExceeded");
    CHECK(rs[1].message.find("every retry failed (7 attempts)") != std::string::npos);
    CHECK_FALSE(rs[1].evidence_request); // no pod of it was seen
    m.on_job(make_job(1, "DeadlineExceeded"), es::ChangeKind::added, at(700));
    m.on_job(make_job(2, "BackoffLimitExceeded"), es::ChangeKind::modified, at(700));
    CHECK(m.take_reports().empty());
}

TEST_CASE("task failure: image and configuration problems fail at once, one report per cause", "[failure][waiting]") {
    FailureMonitor m(context_of({{"individuals", 3}}), es::SentinelSettings{});
    m.on_pod(waiting_pod("individuals", 1, "ContainerCreating", 0), es::ChangeKind::added, at(0));
    CHECK(m.take_reports().empty());
    m.on_pod(waiting_pod("individuals", 1, "ErrImagePull", 0), es::ChangeKind::modified, at(5));
    m.on_pod(waiting_pod("individuals", 1, "ImagePullBackOff", 0), es::ChangeKind::modified, at(15));
    m.on_pod(waiting_pod("individuals", 2, "InvalidImageName", 0), es::ChangeKind::added, at(6));
    m.on_pod(waiting_pod("individuals", 3, "CreateContainerConfigError", 0), es::ChangeKind::added, at(7));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 3);
    CHECK(rs[0].timestamp == at(5)); // at the first sign, not after a back-off
    CHECK(rs[0].details.at("cause").as_string() == "image_pull");
    CHECK(rs[0].message.find("cannot start: its software image cannot be downloaded") != std::string::npos);
    CHECK_FALSE(rs[0].evidence_request); // it never ran: there is no log
    CHECK(rs[1].details.at("cause").as_string() == "invalid_image");
    CHECK(rs[2].details.at("cause").as_string() == "container_config");
    CHECK(rs[2].details.at("exit_code").is_null());
}

TEST_CASE("task failure: a pod lost while running (deleted, node lost, disrupted, unknown)", "[failure][lost]") {
    FailureMonitor m(context_of({{"sifting", 6}}), es::SentinelSettings{});
    // deleted while running (the deletion as the API announces it: the object carries its deletion time)
    auto r1 = task_pod("sifting", 1, kube::PodPhase::running, 0);
    m.on_pod(r1, es::ChangeKind::added, at(1));
    r1.meta.deletion_timestamp = at(20);
    m.on_pod(r1, es::ChangeKind::deleted, at(20));
    // deleted after it succeeded (garbage collection), and deleted before it ever started: no report
    m.on_pod(task_pod("sifting", 2, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    auto done = terminated_pod("sifting", 2, 0, "Completed", 0, 10);
    m.on_pod(done, es::ChangeKind::modified, at(10));
    m.on_pod(done, es::ChangeKind::deleted, at(110));
    auto never = task_pod("sifting", 3, kube::PodPhase::pending, 0);
    m.on_pod(never, es::ChangeKind::added, at(1));
    never.meta.deletion_timestamp = at(2);
    m.on_pod(never, es::ChangeKind::deleted, at(2));
    // node lost (status reason), disrupted (condition), phase Unknown after running
    auto r4 = task_pod("sifting", 4, kube::PodPhase::running, 0);
    m.on_pod(r4, es::ChangeKind::added, at(1));
    r4.reason = "NodeLost";
    r4.phase = kube::PodPhase::unknown;
    m.on_pod(r4, es::ChangeKind::modified, at(30));
    auto r5 = task_pod("sifting", 5, kube::PodPhase::running, 0);
    m.on_pod(r5, es::ChangeKind::added, at(1));
    r5.conditions.push_back({"DisruptionTarget", "True", "PreemptionByScheduler", "preempted by a higher-priority pod", {}});
    m.on_pod(r5, es::ChangeKind::modified, at(31));
    auto r6 = task_pod("sifting", 6, kube::PodPhase::running, 0);
    m.on_pod(r6, es::ChangeKind::added, at(1));
    r6.phase = kube::PodPhase::unknown;
    m.on_pod(r6, es::ChangeKind::modified, at(32));
    auto rs = m.take_reports();
    std::vector<std::string> causes;
    for (auto& r : rs) causes.push_back(std::string(r.details.at("cause").as_string()) + ":" + r.task_name);
    CHECK(causes == std::vector<std::string>{"deleted:sifting-1", "node_lost:sifting-4", "disrupted:sifting-5",
                                             "node_lost:sifting-6"});
    CHECK(rs[0].message.find("was removed while it was still running") != std::string::npos);
    CHECK(rs[2].message.find("to make room for more important work") != std::string::npos);
    CHECK(rs[0].details.at("attempt").as_int64() == 1);
    // delivered again: nothing
    m.on_pod(r1, es::ChangeKind::deleted, at(40));
    m.on_pod(r4, es::ChangeKind::modified, at(40));
    m.on_pod(r5, es::ChangeKind::added, at(40));
    CHECK(m.take_reports().empty());
}

TEST_CASE("task failure: a running pod that vanished while the watch was away is no report", "[failure][lost]") {
    // the relist no longer lists it: the store delivers its last known copy (running, no deletion time) as deleted;
    // it may have finished and been cleaned up meanwhile, so its outcome is unknown
    FailureMonitor m(context_of({{"sifting", 1}}), es::SentinelSettings{});
    auto p = task_pod("sifting", 1, kube::PodPhase::running, 0);
    m.on_pod(p, es::ChangeKind::added, at(1));
    m.on_pod(p, es::ChangeKind::deleted, at(500));
    CHECK(m.take_reports().empty());
}

TEST_CASE("classify_pod_failure is pure: a succeeded pod and a running one have no cause", "[failure][classify]") {
    CHECK(es::classify_pod_failure(terminated_pod("a", 1, 0, "Completed", 0, 1), es::ChangeKind::deleted, true).empty());
    CHECK(es::classify_pod_failure(task_pod("a", 1, kube::PodPhase::running), es::ChangeKind::modified, true).empty());
    auto init = task_pod("a", 1, kube::PodPhase::failed);
    kube::ContainerStatus ic;
    ic.name = "data-preprocess";
    ic.state.kind = kube::ContainerState::Kind::terminated;
    ic.state.exit_code = 3;
    init.init_containers.push_back(ic);
    auto causes = es::classify_pod_failure(init, es::ChangeKind::modified, false);
    REQUIRE(causes.size() == 1);
    CHECK(causes[0].key == "init_exit");
    CHECK(causes[0].container == "data-preprocess");
    CHECK(causes[0].what.find("preparation step (data-preprocess) failed with exit code 3") != std::string::npos);
}

TEST_CASE("workflow state keeps the main container, its restarts and its limits per attempt", "[failure][state]") {
    es::WorkflowState s(context_of({{"frequency", 1}}));
    auto p = task_pod("frequency", 1, kube::PodPhase::running, 0);
    p.containers[0].restart_count = 2;
    p.resources.push_back({"test", 512LL * 1024 * 1024, 256LL * 1024 * 1024, 1500, 500});
    s.apply_pod(p, es::ChangeKind::added, at(1));
    const auto& a = s.tasks()[0].pods.at(0);
    CHECK(a.container == "test");
    CHECK(a.restart_count == 2);
    CHECK(a.memory_limit_bytes == 512LL * 1024 * 1024);
    CHECK(a.cpu_limit_millicores == 1500);
    // an update without resources keeps what was learnt; a stale restart count does not go back
    p.resources.clear();
    p.containers[0].restart_count = 1;
    s.apply_pod(p, es::ChangeKind::modified, at(2));
    CHECK(s.tasks()[0].pods.at(0).memory_limit_bytes == 512LL * 1024 * 1024);
    CHECK(s.tasks()[0].pods.at(0).restart_count == 2);
}

TEST_CASE("mass failure: a whole small phase failing at once is caught", "[failure][mass]") {
    es::SentinelSettings settings;
    settings.mass_failure_burst_count = 0; // the ratio rule alone
    es::Monitor<es::MassFailureDetector> m(context_of({{"frequency", 4}, {"sifting", 2}, {"individuals", 10}}), settings);
    for (int i = 1; i <= 3; ++i)
        m.on_pod(terminated_pod("frequency", i, 1, "Error", 0, 10 + i * 0.2), es::ChangeKind::added, at(11));
    CHECK(m.take_reports().empty()); // 3 of 4 finished: min(5, 4) = 4 needed
    m.on_pod(terminated_pod("frequency", 4, 1, "Error", 0, 10.9), es::ChangeKind::added, at(11));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::MASS_FAILURE);
    CHECK(rs[0].task_type == "frequency");
    CHECK(rs[0].details.at("scope").as_string() == "type");
    CHECK(rs[0].details.at("rule").as_string() == "ratio");
    CHECK(rs[0].message.starts_with("4 of 4 finished frequency tasks have failed (100%)"));
    // a phase of two tasks both failing is below the floor of 3
    m.on_pod(terminated_pod("sifting", 5, 1, "Error", 0, 12), es::ChangeKind::added, at(12));
    m.on_pod(terminated_pod("sifting", 6, 1, "Error", 0, 12), es::ChangeKind::added, at(12));
    CHECK(m.take_reports().empty());
    // the same pods again (relist): nothing new
    for (int i = 1; i <= 4; ++i)
        m.on_pod(terminated_pod("frequency", i, 1, "Error", 0, 10.9), es::ChangeKind::added, at(20));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(20)).mass_failure);
}

TEST_CASE("mass failure: the per-type quorum is min(min_finished_per_type, tasks of the type), floor 3",
          "[failure][mass]") {
    es::MassFailureDetector d(es::MassFailureDetector::Options{0.3, 10, 5, 0});
    CHECK(d.needed_per_type(12) == 5);
    CHECK(d.needed_per_type(4) == 4);
    CHECK(d.needed_per_type(3) == 3);
    CHECK(d.needed_per_type(2) == 3);
    es::MassFailureDetector low(es::MassFailureDetector::Options{0.3, 10, 2, 0});
    CHECK(low.needed_per_type(12) == 2); // a lower setting is the user's choice
    CHECK(low.needed_per_type(1) == 2);
}

TEST_CASE("mass failure: a burst of failures within the window over the workflow", "[failure][mass][burst]") {
    es::SentinelSettings settings; // burst 5 within 60 s
    settings.mass_failure_min_finished = 1000; // the burst rule alone
    settings.mass_failure_min_finished_per_type = 1000;
    es::Monitor<es::MassFailureDetector> m(
        context_of({{"individuals", 20}, {"sifting", 20}, {"frequency", 20}}), settings);
    // 20 successes first, so no ratio rule fires
    for (int i = 1; i <= 20; ++i)
        m.on_pod(terminated_pod("individuals", i, 0, "Completed", 0, 5), es::ChangeKind::added, at(5));
    // four failures spread over 10 minutes (finish times), learnt at once after a reconnect: no burst
    for (int i = 0; i < 4; ++i)
        m.on_pod(terminated_pod("sifting", 21 + i, 1, "Error", 0, 100 + i * 150), es::ChangeKind::added, at(700));
    CHECK(m.take_reports().empty());
    // then five failures of two types within 40 s: one workflow report
    for (int i = 0; i < 3; ++i)
        m.on_pod(terminated_pod("frequency", 41 + i, 1, "Error", 0, 800 + i * 10), es::ChangeKind::added, at(800 + i * 10));
    m.on_pod(terminated_pod("sifting", 25, 1, "Error", 0, 830), es::ChangeKind::added, at(830));
    CHECK(m.take_reports().empty());
    m.on_pod(terminated_pod("sifting", 26, 1, "Error", 0, 840), es::ChangeKind::added, at(840));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].timestamp == at(840));
    CHECK(rs[0].details.at("scope").as_string() == "workflow");
    CHECK(rs[0].details.at("rule").as_string() == "burst");
    CHECK(rs[0].details.at("failed").as_int64() == 5);
    CHECK(rs[0].details.at("tasks").as_array().size() == 5);
    CHECK(rs[0].message.starts_with("5 tasks failed within 60 seconds ("));
    // more failures: the workflow scope reports once
    for (int i = 0; i < 8; ++i)
        m.on_pod(terminated_pod("frequency", 44 + i, 1, "Error", 0, 850), es::ChangeKind::added, at(850));
    CHECK(m.take_reports().empty());
    CHECK(m.summary(at(900)).mass_failure);

    // a restarted monitor with the restored ledger: no second report, and the summary still says mass failure
    es::Monitor<es::MassFailureDetector> again(
        context_of({{"individuals", 20}, {"sifting", 20}, {"frequency", 20}}), settings);
    again.sink().restore_ledger(m.sink().ledger(), m.sink().last_sequence());
    for (int i = 0; i < 5; ++i)
        again.on_pod(terminated_pod("frequency", 41 + i, 1, "Error", 0, 800 + i), es::ChangeKind::added, at(1000));
    CHECK(again.take_reports().empty());
    CHECK(again.summary(at(1000)).mass_failure);
}

TEST_CASE("lifecycle: started, failed, retried, completed — once per attempt", "[failure][lifecycle]") {
    es::Monitor<es::TaskLifecycleDetector> m(context_of({{"frequency", 1}}), es::SentinelSettings{});
    auto first = task_pod("frequency", 1, kube::PodPhase::running, 0);
    m.on_pod(first, es::ChangeKind::added, at(1));
    m.on_pod(terminated_pod("frequency", 1, 1, "Error", 0, 20), es::ChangeKind::modified, at(20));
    auto retry = task_pod("frequency", 1, kube::PodPhase::pending, 30, "fghij");
    m.on_pod(retry, es::ChangeKind::added, at(30));
    m.on_pod(task_pod("frequency", 1, kube::PodPhase::running, 31, "fghij"), es::ChangeKind::modified, at(31));
    m.on_pod(terminated_pod("frequency", 1, 0, "Completed", 31, 60, "fghij"), es::ChangeKind::modified, at(60));
    auto rs = m.take_reports();
    std::vector<std::string> seen;
    for (auto& r : rs) {
        CHECK(r.severity == es::Severity::info);
        CHECK(es::is_lifecycle(r.type));
        seen.push_back(std::string(es::to_string(r.type)) + "/" + std::to_string(r.details.at("attempt").as_int64()));
    }
    CHECK(seen == std::vector<std::string>{"TASK_STARTED/1", "TASK_FAILED/1", "TASK_RETRIED/2", "TASK_STARTED/2",
                                           "TASK_COMPLETED/2"});
    CHECK(rs[1].details.at("exit_code").as_int64() == 1);
    CHECK(rs[4].details.at("runtime_seconds").as_double() == Approx(29.0));
    // a relist delivers both pods again: nothing
    m.on_pod(terminated_pod("frequency", 1, 1, "Error", 0, 20), es::ChangeKind::added, at(70));
    m.on_pod(terminated_pod("frequency", 1, 0, "Completed", 31, 60, "fghij"), es::ChangeKind::added, at(70));
    CHECK(m.take_reports().empty());
}

TEST_CASE("the default monitor reports a failed task and the lifecycle", "[failure][default]") {
    es::DefaultMonitor m(context_of({{"frequency", 2}}), es::SentinelSettings{});
    m.on_pod(task_pod("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(terminated_pod("frequency", 1, 1, "Error", 0, 9), es::ChangeKind::modified, at(10));
    auto rs = m.take_reports();
    CHECK(of_type(rs, es::ReportType::ANOMALY_TASK_FAILED).size() == 1);
    CHECK(of_type(rs, es::ReportType::TASK_STARTED).size() == 1);
    CHECK(of_type(rs, es::ReportType::TASK_FAILED).size() == 1);
}

// ------------------------------------------------------------------------------------------- settings

namespace {
es::SentinelSettings settings_with(std::map<std::string, std::string> vars) {
    return es::load_settings([&](const std::string& n) -> std::optional<std::string> {
        if (auto it = vars.find(n); it != vars.end()) return it->second;
        return std::nullopt;
    });
}
std::string settings_error(std::map<std::string, std::string> vars) {
    try {
        settings_with(std::move(vars));
    } catch (const es::SettingsError& e) {
        return e.what();
    }
    return "";
}
} // namespace

TEST_CASE("settings: the diagnosis settings read from SENTINEL_* variables", "[failure][settings]") {
    auto d = settings_with({});
    CHECK(d.stall_threshold == std::chrono::seconds(300));
    CHECK(d.stall_tiers == std::vector<double>{1, 2, 4, 8});
    CHECK(d.pending_timeout == std::chrono::seconds(600));
    CHECK(d.mass_failure_burst_count == 5);
    CHECK(d.mass_failure_burst_window == std::chrono::seconds(60));
    CHECK(d.memory_pressure_ratio == 0.9);
    CHECK(d.metrics_interval == std::chrono::seconds(15));
    CHECK(d.log_patterns_file.empty());
    CHECK(d.evidence_log_lines == 20);
    CHECK(d.evidence_log_bytes == 4096);

    auto s = settings_with({{"SENTINEL_STALL_SECONDS", "90"},
                            {"SENTINEL_STALL_TIERS", " 1, 1.5,3 ,10"},
                            {"SENTINEL_PENDING_TIMEOUT", "2m"},
                            {"SENTINEL_MASS_FAILURE_BURST_COUNT", "0"},
                            {"SENTINEL_MASS_FAILURE_BURST_WINDOW", "30s"},
                            {"SENTINEL_MEMORY_PRESSURE_RATIO", "0.8"},
                            {"SENTINEL_METRICS_INTERVAL", "0"},
                            {"SENTINEL_LOG_PATTERNS", " /etc/sentinel/patterns.yaml "},
                            {"SENTINEL_EVIDENCE_LOG_LINES", "50"},
                            {"SENTINEL_EVIDENCE_LOG_BYTES", "8192"}});
    CHECK(s.stall_threshold == std::chrono::seconds(90));
    CHECK(s.stall_tiers == std::vector<double>{1, 1.5, 3, 10});
    CHECK(s.pending_timeout == std::chrono::minutes(2));
    CHECK(s.mass_failure_burst_count == 0);
    CHECK(s.mass_failure_burst_window == std::chrono::seconds(30));
    CHECK(s.memory_pressure_ratio == 0.8);
    CHECK(s.metrics_interval.count() == 0);
    CHECK(s.log_patterns_file == "/etc/sentinel/patterns.yaml");
    CHECK(s.evidence_log_lines == 50);
    CHECK(s.evidence_log_bytes == 8192);
    CHECK(settings_with({{"SENTINEL_METRICS_INTERVAL", "1s"}}).metrics_interval == std::chrono::seconds(1));
}

TEST_CASE("settings: bad diagnosis settings name the variable and the problem", "[failure][settings]") {
    CHECK(settings_error({{"SENTINEL_STALL_SECONDS", "0"}}) == "SENTINEL_STALL_SECONDS: must be greater than zero");
    CHECK(settings_error({{"SENTINEL_STALL_SECONDS", "soon"}}).starts_with("SENTINEL_STALL_SECONDS: expected a duration"));
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "1,2,4"}}) ==
          "SENTINEL_STALL_TIERS: expected four tiers (LOW, MEDIUM, HIGH, CRITICAL), such as 1,2,4,8");
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "1,2,4,8,16"}}).starts_with("SENTINEL_STALL_TIERS: expected four tiers"));
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "1,4,2,8"}}) == "SENTINEL_STALL_TIERS: tiers must be in ascending order");
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "1,1,2,8"}}) == "SENTINEL_STALL_TIERS: tiers must be in ascending order");
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "0.5,2,4,8"}}) == "SENTINEL_STALL_TIERS: each tier must be between 1 and 1000");
    CHECK(settings_error({{"SENTINEL_STALL_TIERS", "1,,4,8"}}).starts_with("SENTINEL_STALL_TIERS: expected four numbers"));
    CHECK(settings_error({{"SENTINEL_PENDING_TIMEOUT", "0s"}}) == "SENTINEL_PENDING_TIMEOUT: must be greater than zero");
    CHECK(settings_error({{"SENTINEL_MASS_FAILURE_BURST_COUNT", "-1"}}) ==
          "SENTINEL_MASS_FAILURE_BURST_COUNT: must be between 0 and 1000000");
    CHECK(settings_error({{"SENTINEL_MASS_FAILURE_BURST_COUNT", "2.5"}}) ==
          "SENTINEL_MASS_FAILURE_BURST_COUNT: expected a whole number");
    CHECK(settings_error({{"SENTINEL_MASS_FAILURE_BURST_WINDOW", "0"}}) ==
          "SENTINEL_MASS_FAILURE_BURST_WINDOW: must be greater than zero");
    CHECK(settings_error({{"SENTINEL_MEMORY_PRESSURE_RATIO", "0"}}) == "SENTINEL_MEMORY_PRESSURE_RATIO: must be greater than 0");
    CHECK(settings_error({{"SENTINEL_MEMORY_PRESSURE_RATIO", "1.2"}}) ==
          "SENTINEL_MEMORY_PRESSURE_RATIO: must be a ratio between 0 and 1");
    CHECK(settings_error({{"SENTINEL_METRICS_INTERVAL", "200ms"}}) ==
          "SENTINEL_METRICS_INTERVAL: must be 0 (off) or at least 1s");
    CHECK(settings_error({{"SENTINEL_EVIDENCE_LOG_LINES", "1001"}}) ==
          "SENTINEL_EVIDENCE_LOG_LINES: must be between 0 and 1000");
    CHECK(settings_error({{"SENTINEL_EVIDENCE_LOG_BYTES", "2000000"}}) ==
          "SENTINEL_EVIDENCE_LOG_BYTES: must be between 0 and 1048576");
}

// The sans-io Monitor with the built-in detectors: the workflow conductor's expectations (HyperFlow on Kubernetes) and
// whole runs driven by synthetic pod/Job sequences.
#include <execution_sentinel/monitor.hpp>

#include <boost/json.hpp>

#include <chrono>
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

es::MonitoringContext conductor_context() {
    es::MonitoringContext c;
    c.namespace_ = "hf-sentinel-test";
    c.engine_pod_name = "fake-engine";
    c.task_inventory = {{"task-a", "samtools", 0, {}, "", ""}, {"task-b", "samtools", 0, {}, "", ""}};
    return c;
}

/// BRCA1/GBR (conductor E2E, real HyperFlow runs): 11 individuals, merge, sifting, mutation_overlap, frequency.
es::MonitoringContext brca1_context() {
    es::MonitoringContext c;
    c.namespace_ = "wf-1000g-20260806-151759";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    c.engine_pod_selector = "component=hyperflow-engine";
    for (int i = 0; i < 11; ++i) c.task_inventory.push_back({"individuals", "individuals", 0, 30.0, "", ""});
    c.task_inventory.push_back({"individuals_merge", "individuals_merge", 1, 10.0, "", ""});
    c.task_inventory.push_back({"sifting", "sifting", 2, 45.0, "", ""});
    c.task_inventory.push_back({"mutation_overlap", "mutation_overlap", 3, 20.0, "", ""});
    c.task_inventory.push_back({"frequency", "frequency", 4, 15.0, "", ""});
    c.dag_structure = {{"individuals", {}},
                       {"individuals_merge", {"individuals"}},
                       {"sifting", {"individuals_merge"}},
                       {"mutation_overlap", {"sifting"}},
                       {"frequency", {"sifting"}}};
    return c;
}

struct TaskObjects {
    kube::Job job;
    kube::Pod pod;
};

TaskObjects task(const std::string& type, int proc, const std::string& rand) {
    TaskObjects t;
    t.job.meta.name = "job" + rand + "-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
    t.job.meta.uid = "uid-" + t.job.meta.name;
    t.job.meta.labels.items = {{"app", "hyperflow"}};
    t.pod.meta.name = t.job.meta.name + "-" + rand.substr(0, 4) + "q";
    t.pod.meta.uid = "uid-" + t.pod.meta.name;
    t.pod.meta.labels.items = {{"app", "hyperflow"}, {"job-name", t.job.meta.name}};
    t.pod.meta.owner = kube::OwnerRef{"Job", t.job.meta.name, t.job.meta.uid};
    kube::ContainerStatus c;
    c.name = "test";
    t.pod.containers.push_back(c);
    return t;
}

void start(TaskObjects& t, double when) {
    t.job.active = 1;
    t.job.start_time = at(when);
    t.pod.phase = kube::PodPhase::running;
    t.pod.start_time = at(when);
    t.pod.containers[0].state = {kube::ContainerState::Kind::running, "", "", 0, 0, at(when), {}};
}

void succeed(TaskObjects& t, double when) {
    t.job.active = 0;
    t.job.succeeded = 1;
    t.job.completion_time = at(when);
    t.job.conditions = {{kube::JobCondition::Type::complete, true, "", ""}};
    t.pod.phase = kube::PodPhase::succeeded;
    auto started = t.pod.containers[0].state.started_at;
    t.pod.containers[0].state = {kube::ContainerState::Kind::terminated, "Completed", "", 0, 0, started, at(when)};
}

kube::Pod engine_pod(const std::string& name) {
    kube::Pod p;
    p.meta.name = name;
    p.meta.uid = "uid-" + name;
    p.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"name", "hyperflow-engine"}};
    p.meta.owner = kube::OwnerRef{"ReplicaSet", "hyperflow-engine-6c4b46d86", "rs"};
    p.phase = kube::PodPhase::running;
    kube::ContainerStatus a, b;
    a.name = "hyperflow";
    b.name = "hflow-tools";
    p.containers = {a, b};
    return p;
}

int count(const std::vector<es::Report>& rs, es::ReportType t) {
    int n = 0;
    for (auto& r : rs) n += r.type == t;
    return n;
}

} // namespace

TEST_CASE("conductor: total comes from the inventory, exit 0 with no Jobs completes", "[monitor]") {
    es::DefaultMonitor m(conductor_context(), es::SentinelSettings{});
    auto empty = m.summary(at(0));
    CHECK(empty.total_tasks == 2);
    CHECK(empty.completed_tasks == 0);
    CHECK_FALSE(empty.exit_code.has_value());
    CHECK_FALSE(m.finished());
    m.on_api_call(true, "list pods", at(0));
    m.on_completion_probe({false, "", "No such file or directory"}, at(5));
    CHECK_FALSE(m.finished());
    m.on_completion_probe({true, "0\n", ""}, at(10));
    CHECK(m.finished());
    auto s = m.summary(at(11));
    CHECK(s.total_tasks == 2);
    CHECK(s.exit_code == std::optional<int>(0));
    CHECK_FALSE(s.timed_out);
    CHECK_FALSE(s.mass_failure);
    CHECK(s.completed_tasks == 2); // the engine says all done: the unseen tasks are inferred complete
    CHECK(s.inferred_completed == 2);
    CHECK(s.duration_seconds == 10.0);
    auto rs = m.take_reports();
    REQUIRE_FALSE(rs.empty());
    CHECK(rs.back().type == es::ReportType::COMPLETION);
    CHECK(rs.back().completed_tasks == 2);
    CHECK(s.reports.at(es::ReportType::COMPLETION) == 1);
}

TEST_CASE("conductor: exit 1 is reported as failed; timeout has no exit code", "[monitor]") {
    es::DefaultMonitor failed(conductor_context(), es::SentinelSettings{});
    failed.on_completion_probe({true, "1\n", ""}, at(3));
    auto s = failed.summary(at(3));
    CHECK(s.exit_code == std::optional<int>(1));
    CHECK_FALSE(s.timed_out);
    CHECK(s.completed_tasks == 0);
    CHECK(s.inferred_completed == 0);

    es::SentinelSettings short_run;
    short_run.poll_interval = 2s;
    short_run.timeout = 8s;
    es::DefaultMonitor slow(conductor_context(), short_run);
    for (int t = 0; t <= 8; t += 2) slow.on_completion_probe({false, "", "not found"}, at(t));
    CHECK_FALSE(slow.finished());
    slow.on_timeout(at(8));
    CHECK(slow.finished());
    CHECK(slow.timed_out());
    auto st = slow.summary(at(9));
    CHECK(st.timed_out);
    CHECK_FALSE(st.exit_code.has_value());
    CHECK(st.duration_seconds == 8.0);
    auto rs = slow.take_reports();
    CHECK(count(rs, es::ReportType::TIMEOUT) == 1);
    // a signal file appearing after the timeout does not change the outcome
    slow.on_completion_probe({true, "0", ""}, at(12));
    CHECK(slow.summary(at(12)).timed_out);
}

TEST_CASE("a whole BRCA1 run: progress in order, Jobs deleted after finishing keep counting", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    m.on_pod(engine_pod("hyperflow-engine-6c4b46d86-jdl7w"), es::ChangeKind::added, at(0));
    std::vector<TaskObjects> tasks;
    for (int i = 1; i <= 11; ++i) tasks.push_back(task("individuals", i, "a" + std::to_string(i) + "zz"));
    tasks.push_back(task("individuals_merge", 12, "mrg1"));
    tasks.push_back(task("sifting", 13, "czr2t"));
    tasks.push_back(task("mutation_overlap", 14, "mo1x"));
    tasks.push_back(task("frequency", 15, "ulwsfh"));
    auto run = [&](TaskObjects& t, double from, double to) {
        m.on_job(t.job, es::ChangeKind::added, at(from));
        m.on_pod(t.pod, es::ChangeKind::added, at(from));
        start(t, from + 1);
        m.on_pod(t.pod, es::ChangeKind::modified, at(from + 1));
        m.on_job(t.job, es::ChangeKind::modified, at(from + 1));
        succeed(t, to);
        m.on_pod(t.pod, es::ChangeKind::modified, at(to));
        m.on_job(t.job, es::ChangeKind::modified, at(to));
        m.on_tick(at(to));
    };
    auto ttl_delete = [&](TaskObjects& t, double when) {
        m.on_pod(t.pod, es::ChangeKind::deleted, at(when));
        m.on_job(t.job, es::ChangeKind::deleted, at(when));
    };
    run(tasks[12], 1, 4); // sifting first, as in real runs
    for (int i = 0; i < 11; ++i) run(tasks[i], 2 + i, 40 + i);
    for (int i = 0; i < 11; ++i) ttl_delete(tasks[i], 150 + i); // ttlSecondsAfterFinished 100
    run(tasks[11], 60, 160);
    // mutation_overlap and frequency run in parallel, far beyond the conductor's default durations (20 s, 15 s)
    for (int i : {13, 14}) {
        m.on_job(tasks[i].job, es::ChangeKind::added, at(170));
        start(tasks[i], 171);
        m.on_pod(tasks[i].pod, es::ChangeKind::added, at(171));
    }
    m.on_tick(at(200));
    m.on_tick(at(240)); // both have run 69 s > max(60 s floor, 3 × 20 s)
    succeed(tasks[13], 250);
    m.on_pod(tasks[13].pod, es::ChangeKind::modified, at(250));
    m.on_tick(at(300));
    succeed(tasks[14], 400);
    m.on_pod(tasks[14].pod, es::ChangeKind::modified, at(400));
    m.on_completion_probe({true, "0\n", ""}, at(410));
    CHECK(m.finished());

    auto s = m.summary(at(420));
    CHECK(s.total_tasks == 15);
    CHECK(s.completed_tasks == 15);
    CHECK(s.inferred_completed == 0);
    CHECK(s.failed_tasks == 0);
    CHECK(s.exit_code == std::optional<int>(0));
    CHECK(s.oom_killed.empty());
    CHECK(s.stragglers == std::vector<std::string>{"mutation_overlap", "frequency"});
    CHECK(s.duration_seconds == 410.0);
    CHECK(m.state().ignored(es::ObjectRole::engine) == 1);

    auto rs = m.take_reports();
    std::vector<int> counts;
    std::vector<std::string> phases_started;
    for (auto& r : rs) {
        if (r.type != es::ReportType::PROGRESS) continue;
        auto ev = r.details.at("event").as_string();
        if (ev == "count") counts.push_back(r.completed_tasks);
        if (ev == "phase_started") phases_started.push_back(r.task_type);
    }
    std::vector<int> expected_counts;
    for (int i = 1; i <= 15; ++i) expected_counts.push_back(i);
    CHECK(counts == expected_counts);
    CHECK(phases_started ==
          std::vector<std::string>{"sifting", "individuals", "individuals_merge", "mutation_overlap", "frequency"});
    for (std::size_t i = 1; i < rs.size(); ++i) CHECK(rs[i].sequence == rs[i - 1].sequence + 1);
    CHECK(count(rs, es::ReportType::COMPLETION) == 1);
    CHECK(rs.back().type == es::ReportType::COMPLETION);
    auto j = boost::json::value_from(s);
    CHECK(j.at("reports").at("PROGRESS").as_int64() == count(rs, es::ReportType::PROGRESS));
}

TEST_CASE("the engine restarted under a new name is followed, never counted", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    m.on_pod(engine_pod("hyperflow-engine-6c4b46d86-jdl7w"), es::ChangeKind::added, at(0));
    CHECK(m.state().engine_pod_name() == "hyperflow-engine-6c4b46d86-jdl7w");
    m.on_pod(engine_pod("hyperflow-engine-6c4b46d86-jdl7w"), es::ChangeKind::deleted, at(10));
    CHECK_FALSE(m.state().engine_pod_running());
    m.on_pod(engine_pod("hyperflow-engine-6c4b46d86-plhmv"), es::ChangeKind::added, at(20));
    CHECK(m.state().engine_pod_name() == "hyperflow-engine-6c4b46d86-plhmv");
    CHECK(m.state().engine_pod_running());
    CHECK(m.state().total() == 15);
    CHECK(m.state().observed() == 0);
    CHECK(m.take_reports().empty());
}

TEST_CASE("stale and repeated updates do not move a task backwards or count twice", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    auto t = task("sifting", 13, "czr2t");
    start(t, 1);
    auto running = t;
    succeed(t, 5);
    m.on_pod(t.pod, es::ChangeKind::added, at(5));   // the final state arrives first
    m.on_pod(running.pod, es::ChangeKind::modified, at(6)); // a stale update afterwards
    m.on_job(running.job, es::ChangeKind::modified, at(6));
    m.on_pod(t.pod, es::ChangeKind::modified, at(7));
    m.on_job(t.job, es::ChangeKind::added, at(7));
    CHECK(m.state().completed() == 1);
    CHECK(m.state().running() == 0);
    const auto* rec = m.state().find_task(t.job.meta.name);
    REQUIRE(rec);
    CHECK(rec->status == es::TaskStatus::succeeded);
    CHECK(rec->attempts == 1);
    CHECK(rec->runtime_seconds(at(100)) == std::optional<double>(4.0));
    auto rs = m.take_reports();
    int progress_counts = 0;
    for (auto& r : rs)
        if (r.type == es::ReportType::PROGRESS && r.details.at("event").as_string() == "count") ++progress_counts;
    CHECK(progress_counts == 1);
}

TEST_CASE("Jobs alone are enough to follow tasks", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    auto t = task("frequency", 15, "ulwsfh");
    start(t, 10);
    m.on_job(t.job, es::ChangeKind::added, at(10));
    CHECK(m.state().running() == 1);
    CHECK(m.state().find_task(t.job.meta.name)->started_at == std::optional<es::Timestamp>(at(10)));
    succeed(t, 30);
    m.on_job(t.job, es::ChangeKind::modified, at(30));
    CHECK(m.state().completed() == 1);
    CHECK(m.state().find_task(t.job.meta.name)->finished_at == std::optional<es::Timestamp>(at(30)));
}

TEST_CASE("a pod deleted before it finished is a lost attempt, not a failure; a replacement continues", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    auto t = task("individuals", 1, "abcd");
    start(t, 1);
    m.on_pod(t.pod, es::ChangeKind::added, at(1));
    m.on_pod(t.pod, es::ChangeKind::deleted, at(20));
    const auto* rec = m.state().find_task(t.job.meta.name);
    REQUIRE(rec);
    CHECK(rec->status == es::TaskStatus::running); // outcome unknown: keeps its last known status
    CHECK(rec->last_failure_reason == "Deleted");
    CHECK(m.state().failed() == 0);
    auto replacement = task("individuals", 1, "abcd");
    replacement.pod.meta.name = t.job.meta.name + "-zzzzz";
    replacement.pod.meta.uid = "uid-replacement";
    replacement.pod.meta.creation_timestamp = at(30);
    start(replacement, 31);
    m.on_pod(replacement.pod, es::ChangeKind::added, at(31));
    CHECK(rec->status == es::TaskStatus::running);
    CHECK(rec->attempts == 2);
    CHECK(m.state().failed() == 0);
    // the engine's exit code 0 settles what the lost updates could not
    m.on_completion_probe({true, "0", ""}, at(100));
    auto s = m.summary(at(100));
    CHECK(s.completed_tasks == 15);
    CHECK(s.inferred_completed == 15);
}

TEST_CASE("warning events are attached to their task", "[monitor]") {
    es::DefaultMonitor m(brca1_context(), es::SentinelSettings{});
    auto t = task("individuals", 1, "abcd");
    t.pod.phase = kube::PodPhase::pending;
    m.on_pod(t.pod, es::ChangeKind::added, at(1));
    kube::Event ev;
    ev.involved = {"Pod", t.pod.meta.name, t.pod.meta.uid};
    ev.reason = "FailedScheduling";
    ev.message = "0/1 nodes are available: 1 Insufficient cpu.";
    ev.type = "Warning";
    m.on_event(ev, at(2));
    const auto* rec = m.state().find_task(t.pod.meta.name);
    REQUIRE(rec);
    CHECK(rec->last_warning_reason == "FailedScheduling");
    ev.involved.name = "unknown-pod";
    CHECK_NOTHROW(m.on_event(ev, at(3)));
}

TEST_CASE("a Monitor refuses a broken context", "[monitor]") {
    auto c = conductor_context();
    c.engine_pod_name.clear();
    CHECK_THROWS_AS(es::DefaultMonitor(c, es::SentinelSettings{}), es::ContextError);
}

TEST_CASE("mass failure ends up in the summary next to exit code 1", "[monitor]") {
    auto c = brca1_context();
    es::DefaultMonitor m(c, es::SentinelSettings{});
    for (int i = 1; i <= 11; ++i) {
        auto t = task("individuals", i, "f" + std::to_string(i) + "aa");
        t.job.conditions = {{kube::JobCondition::Type::failed, true, "BackoffLimitExceeded", "backoff limit"}};
        m.on_job(t.job, es::ChangeKind::added, at(i));
    }
    m.on_completion_probe({true, "1", ""}, at(20));
    auto s = m.summary(at(20));
    CHECK(s.mass_failure);
    CHECK(s.exit_code == std::optional<int>(1));
    CHECK(s.failed_tasks == 11);
    auto rs = m.take_reports();
    CHECK(count(rs, es::ReportType::MASS_FAILURE) == 2); // individuals, then the whole workflow
}

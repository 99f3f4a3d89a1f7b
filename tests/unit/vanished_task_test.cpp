// Tasks whose Job and pods finished and were deleted (Job TTL) while the watch could not see them. After the relist,
// the watcher delivers their deletions with the last state it knew (pod Running, Job active). Such a task must not
// stay "running" (and later be reported as a straggler), nor end "failed" for a first attempt whose retry was not
// seen to end: it is decided by the evidence left (the engine's log, the Job's last known counts), else it ends
// "vanished" (finished, outcome unknown), counted on its own everywhere and kept across a checkpoint.
#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "../../tools/execution-sentinel/view.hpp"

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string job_name(int proc) { return "jobrqx-frequency-" + std::to_string(proc) + "-1"; }

const std::string job = job_name(1);

kube::Pod running_pod(int proc = 1, const std::string& suffix = "abcde") {
    const auto j = job_name(proc);
    kube::Pod p;
    p.meta.name = j + "-" + suffix;
    p.meta.uid = "uid-pod-" + std::to_string(proc) + suffix;
    p.meta.creation_timestamp = at(0);
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", j}};
    p.meta.owner = kube::OwnerRef{"Job", j, "uid-" + j};
    p.phase = kube::PodPhase::running;
    p.start_time = at(1);
    kube::ContainerStatus c;
    c.name = "test";
    c.state.kind = kube::ContainerState::Kind::running;
    c.state.started_at = at(1);
    p.containers.push_back(c);
    return p;
}

kube::Pod succeeded_pod(int proc = 1) {
    auto p = running_pod(proc);
    p.phase = kube::PodPhase::succeeded;
    p.containers[0].state.kind = kube::ContainerState::Kind::terminated;
    p.containers[0].state.reason = "Completed";
    p.containers[0].state.exit_code = 0;
    p.containers[0].state.finished_at = at(30);
    return p;
}

kube::Pod failed_pod(int proc = 1) {
    auto p = running_pod(proc);
    p.phase = kube::PodPhase::failed;
    p.containers[0].state.kind = kube::ContainerState::Kind::terminated;
    p.containers[0].state.reason = "Error";
    p.containers[0].state.exit_code = 1;
    p.containers[0].state.finished_at = at(30);
    return p;
}

kube::Job active_job(int proc = 1) {
    const auto j = job_name(proc);
    kube::Job k;
    k.meta.name = j;
    k.meta.uid = "uid-" + j;
    k.meta.labels.items = {{"app", "hyperflow"}};
    k.active = 1;
    k.start_time = at(0);
    return k;
}

kube::Job complete_job(int proc = 1) {
    auto k = active_job(proc);
    k.active = 0;
    k.succeeded = 1;
    k.conditions.push_back({kube::JobCondition::Type::complete, true, "", ""});
    k.completion_time = at(31);
    return k;
}

es::MonitoringContext context(int tasks = 4) {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    for (int i = 0; i < tasks; ++i) c.task_inventory.push_back({"frequency", "frequency", 4, 60.0, "", ""});
    return c;
}

/// The task of `proc` ran, then its pod and Job vanished while the watch was away: the relist delivers their
/// deletions with the last state known.
template <class Target> void run_then_vanish(Target& s, int proc, double vanish_at) {
    s.apply_job(active_job(proc), es::ChangeKind::added, at(0));
    s.apply_pod(running_pod(proc), es::ChangeKind::added, at(1));
    s.apply_pod(running_pod(proc), es::ChangeKind::deleted, at(vanish_at));
    s.apply_job(active_job(proc), es::ChangeKind::deleted, at(vanish_at));
}

void monitor_run_then_vanish(es::DefaultMonitor& m, int proc, double vanish_at) {
    m.on_job(active_job(proc), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(proc), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(proc), es::ChangeKind::deleted, at(vanish_at));
    m.on_job(active_job(proc), es::ChangeKind::deleted, at(vanish_at));
}

kube::LogLine engine_line(const std::string& text, double t = 300) { return {at(t), text}; }

int count_of(const std::vector<es::Report>& reports, es::ReportType type, std::string_view event = {}) {
    int n = 0;
    for (auto& r : reports) {
        if (r.type != type) continue;
        if (!event.empty()) {
            auto* e = r.details.if_contains("event");
            if (!e || !e->is_string() || e->get_string() != event) continue;
        }
        ++n;
    }
    return n;
}

} // namespace

TEST_CASE("workflow state: a task whose running pod and active Job vanished in a relist is not left running",
          "[vanished][workflow_state]") {
    es::WorkflowState s(context());
    s.apply_job(active_job(), es::ChangeKind::added, at(0));
    s.apply_pod(running_pod(), es::ChangeKind::added, at(1));
    REQUIRE(s.tasks()[0].status == es::TaskStatus::running);
    REQUIRE(s.running() == 1);

    // The watch was away while the task finished and its Job and pod were deleted (TTL 100 s); its resume got
    // 410 Expired and the relist no longer holds them: the watcher delivers their deletions with the last state
    // it knew (final_state_unknown).
    s.apply_pod(running_pod(), es::ChangeKind::deleted, at(400));
    s.apply_job(active_job(), es::ChangeKind::deleted, at(400));

    INFO("status after the relist: " << es::to_string(s.tasks()[0].status));
    CHECK(s.tasks()[0].status == es::TaskStatus::vanished);
    CHECK(s.running() == 0);
}

TEST_CASE("monitor: a vanished task is not reported as a straggler hours later", "[vanished][monitor]") {
    es::SentinelSettings settings;
    settings.straggler_min_runtime = std::chrono::milliseconds(0);
    es::DefaultMonitor m(context(), settings);
    m.on_job(active_job(), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(), es::ChangeKind::deleted, at(400));
    m.on_job(active_job(), es::ChangeKind::deleted, at(400));
    (void)m.take_reports();
    for (int minute = 7; minute <= 180; ++minute) m.on_tick(at(60.0 * minute));
    int stragglers = 0;
    for (auto& r : m.take_reports())
        if (r.type == es::ReportType::ANOMALY_STRAGGLER) ++stragglers;
    CHECK(stragglers == 0);
    CHECK(m.state().running() == 0);
}

TEST_CASE("workflow state: a retried task whose running retry vanished is not counted failed", "[vanished][workflow_state]") {
    es::WorkflowState s(context());
    auto failed = failed_pod();
    auto retry = running_pod(1, "fghij");
    retry.meta.creation_timestamp = at(40);
    s.apply_job(active_job(), es::ChangeKind::added, at(0));
    s.apply_pod(failed, es::ChangeKind::added, at(30));
    REQUIRE(s.tasks()[0].status == es::TaskStatus::failed);
    s.apply_pod(retry, es::ChangeKind::added, at(41));
    REQUIRE(s.tasks()[0].status == es::TaskStatus::running);
    // The retry succeeded and the Job and both pods were deleted (TTL) while the watch was away; the relist
    // delivers the deletions with the last states known: the first pod Failed, the retry Running, the Job active.
    s.apply_pod(failed, es::ChangeKind::deleted, at(400));
    s.apply_pod(retry, es::ChangeKind::deleted, at(400));
    s.apply_job(active_job(), es::ChangeKind::deleted, at(400));
    INFO("status after the relist: " << es::to_string(s.tasks()[0].status));
    CHECK(s.tasks()[0].status == es::TaskStatus::vanished); // its last attempt did not fail: unknown, not failed
    CHECK(s.failed() == 0);
    CHECK(s.vanished() == 1);
}

TEST_CASE("workflow state: a failed attempt whose Job vanished without a verdict is not the task's end",
          "[vanished][workflow_state]") {
    // The retry was created, ran and was deleted while the watch was away: only the failed first pod is known.
    es::WorkflowState s(context());
    s.apply_job(active_job(), es::ChangeKind::added, at(0));
    s.apply_pod(failed_pod(), es::ChangeKind::added, at(30));
    REQUIRE(s.tasks()[0].status == es::TaskStatus::failed);
    s.apply_pod(failed_pod(), es::ChangeKind::deleted, at(400));
    s.apply_job(active_job(), es::ChangeKind::deleted, at(400));
    CHECK(s.tasks()[0].status == es::TaskStatus::vanished);

    SECTION("a Job seen failed for good stays failed when it is deleted") {
        es::WorkflowState f(context());
        auto j = active_job();
        j.active = 0;
        j.failed = 1;
        j.conditions.push_back({kube::JobCondition::Type::failed, true, "BackoffLimitExceeded", "too many"});
        f.apply_job(active_job(), es::ChangeKind::added, at(0));
        f.apply_pod(failed_pod(), es::ChangeKind::added, at(30));
        f.apply_job(j, es::ChangeKind::modified, at(31));
        f.apply_pod(failed_pod(), es::ChangeKind::deleted, at(400));
        f.apply_job(j, es::ChangeKind::deleted, at(400));
        CHECK(f.tasks()[0].status == es::TaskStatus::failed);
    }
    SECTION("a Job deleted with its final Complete state is a success (the deletion carries its last state)") {
        es::WorkflowState c(context());
        c.apply_job(active_job(), es::ChangeKind::added, at(0));
        c.apply_pod(running_pod(), es::ChangeKind::added, at(1));
        c.apply_pod(running_pod(), es::ChangeKind::deleted, at(400));
        c.apply_job(complete_job(), es::ChangeKind::deleted, at(400));
        CHECK(c.tasks()[0].status == es::TaskStatus::succeeded);
    }
}

TEST_CASE("workflow state: evidence left decides a vanished task", "[vanished][workflow_state]") {
    SECTION("the Job's last known succeeded count") {
        es::WorkflowState s(context());
        auto j = active_job();
        j.succeeded = 1; // seen counted, its Complete condition not yet
        s.apply_job(active_job(), es::ChangeKind::added, at(0));
        s.apply_pod(running_pod(), es::ChangeKind::added, at(1));
        s.apply_job(j, es::ChangeKind::modified, at(31));
        REQUIRE(s.tasks()[0].status == es::TaskStatus::running); // alive: the cluster still decides
        s.apply_pod(running_pod(), es::ChangeKind::deleted, at(400));
        s.apply_job(j, es::ChangeKind::deleted, at(400));
        CHECK(s.tasks()[0].status == es::TaskStatus::succeeded);
        CHECK(s.completed() == 1);
    }
    SECTION("the engine's task-finished line, read before the relist") {
        es::WorkflowState s(context());
        s.apply_job(active_job(), es::ChangeKind::added, at(0));
        s.apply_pod(running_pod(), es::ChangeKind::added, at(1));
        s.apply_engine_outcome({"frequency", 1, false, 0}, at(300));
        CHECK(s.tasks()[0].status == es::TaskStatus::running); // its objects are alive: the cluster decides
        s.apply_pod(running_pod(), es::ChangeKind::deleted, at(400));
        s.apply_job(active_job(), es::ChangeKind::deleted, at(400));
        CHECK(s.tasks()[0].status == es::TaskStatus::succeeded);
        CHECK(s.vanished() == 0);
    }
    SECTION("the engine's line read after the relist turns vanished into its outcome") {
        es::WorkflowState s(context());
        run_then_vanish(s, 1, 400);
        REQUIRE(s.tasks()[0].status == es::TaskStatus::vanished);
        auto ch = s.apply_engine_outcome({"frequency", 1, true, 2}, at(500));
        REQUIRE(ch.size() == 1);
        CHECK(ch[0].before == es::TaskStatus::vanished);
        CHECK(ch[0].after == es::TaskStatus::failed);
        CHECK(s.failed() == 1);
        CHECK(s.vanished() == 0);
    }
    SECTION("a later success of a retry wins over an earlier failure") {
        es::WorkflowState s(context());
        s.apply_job(active_job(), es::ChangeKind::added, at(0));
        s.apply_pod(failed_pod(), es::ChangeKind::added, at(30));
        s.apply_engine_outcome({"frequency", 1, true, 1}, at(31));
        s.apply_engine_outcome({"frequency", 1, false, 0}, at(80));
        s.apply_pod(failed_pod(), es::ChangeKind::deleted, at(400));
        s.apply_job(active_job(), es::ChangeKind::deleted, at(400));
        CHECK(s.tasks()[0].status == es::TaskStatus::succeeded);
    }
    SECTION("a line about a task the inventory does not have, or of another type, decides nothing") {
        es::WorkflowState s(context());
        run_then_vanish(s, 1, 400);
        CHECK(s.apply_engine_outcome({"frequency", 7, false, 0}, at(500)).empty()); // not in the inventory
        CHECK(s.apply_engine_outcome({"sifting", 1, false, 0}, at(500)).empty());
        CHECK(s.tasks()[0].status == es::TaskStatus::vanished);
    }
}

TEST_CASE("workflow state: vanished tasks are counted on their own, in totals and phases", "[vanished][workflow_state]") {
    es::WorkflowState s(context(3));
    run_then_vanish(s, 1, 400);
    s.apply_job(active_job(2), es::ChangeKind::added, at(0));
    s.apply_pod(succeeded_pod(2), es::ChangeKind::added, at(30));
    s.apply_job(active_job(3), es::ChangeKind::added, at(0));
    s.apply_pod(running_pod(3), es::ChangeKind::added, at(1));
    CHECK(s.vanished() == 1);
    CHECK(s.completed() == 1);
    CHECK(s.running() == 1);
    CHECK(s.failed() == 0);
    CHECK(s.unfinished() == 1);
    const auto* ph = s.phase("frequency");
    REQUIRE(ph != nullptr);
    CHECK(ph->vanished == 1);
    CHECK(ph->succeeded == 1);
    CHECK(ph->running == 1);
    CHECK(ph->finished() == 1); // known outcomes only
    CHECK_FALSE(ph->completed);
    CHECK(s.tasks()[0].finished());
    CHECK_FALSE(s.tasks()[0].active());

    // the last task ends: every inventory task succeeded or vanished, so the phase is over
    auto changes = s.apply_pod(succeeded_pod(3), es::ChangeKind::modified, at(60));
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].phase_completed);
    CHECK(s.phase("frequency")->completed);
}

TEST_CASE("monitor: a vanished task is told once, counted in the view and the summary, and the run completes",
          "[vanished][monitor]") {
    es::DefaultMonitor m(context(2), es::SentinelSettings{});
    monitor_run_then_vanish(m, 1, 400);
    m.on_job(active_job(2), es::ChangeKind::added, at(0));
    m.on_pod(succeeded_pod(2), es::ChangeKind::added, at(30));
    // the same deletions delivered again (another relist) repeat nothing
    m.on_pod(running_pod(1), es::ChangeKind::deleted, at(410));
    m.on_job(active_job(1), es::ChangeKind::deleted, at(410));
    auto reports = m.take_reports();
    CHECK(count_of(reports, es::ReportType::PROGRESS, "task_vanished") == 1);
    for (auto& r : reports)
        if (r.type == es::ReportType::PROGRESS && r.details.at("event").as_string() == "task_vanished") {
            CHECK(r.task_name == m.state().tasks()[0].name);
            CHECK(r.details.at("status").as_string() == "vanished");
            CHECK(r.details.at("previous_status").as_string() == "running");
            CHECK(r.severity == es::Severity::info);
        }
    // no failure of any kind was reported for it
    CHECK(count_of(reports, es::ReportType::TASK_FAILED) == 0);
    CHECK(count_of(reports, es::ReportType::MASS_FAILURE) == 0);

    auto v = m.view(at(420));
    CHECK(v.vanished == 1);
    CHECK(v.completed == 1);
    CHECK(v.running == 0);
    CHECK(v.running_tasks.empty());
    REQUIRE(v.phases.size() == 1);
    CHECK(v.phases[0].vanished == 1);
    CHECK(v.phases[0].completed); // every task has ended
    CHECK(v.eta_basis == "done"); // nothing left to wait for
    auto j = es::to_json(v);
    CHECK(j.at("vanished").as_int64() == 1);
    CHECK(j.at("phases").as_array()[0].as_object().at("vanished").as_int64() == 1);

    auto before_exit = m.summary(at(420));
    CHECK(before_exit.vanished_tasks == 1);
    CHECK(before_exit.completed_tasks == 1);
    CHECK(before_exit.failed_tasks == 0);

    // the engine exits 0: the run completes, and its exit 0 says the vanished inventory task completed too
    m.on_completion_probe({true, "0\n", ""}, at(430));
    CHECK(m.finished());
    auto s = m.summary(at(430));
    CHECK(s.outcome() == es::WatchOutcome::succeeded);
    CHECK(s.completed_tasks == 2);
    CHECK(s.inferred_completed == 1);
    CHECK(s.vanished_tasks == 0);
}

TEST_CASE("monitor: the engine's log resolves a vanished task, with its lifecycle report", "[vanished][monitor]") {
    es::DefaultMonitor m(context(2), es::SentinelSettings{});
    monitor_run_then_vanish(m, 1, 400);
    (void)m.take_reports();
    REQUIRE(m.state().vanished() == 1);
    m.on_engine_log(engine_line("2026-08-06T15:17:59.250Z [hf] task finished: frequency (J7rLf9D0i:2:1:1) exit=0 time=30s", 450),
                    at(450));
    CHECK(m.state().vanished() == 0);
    CHECK(m.state().completed() == 1);
    auto reports = m.take_reports();
    CHECK(count_of(reports, es::ReportType::TASK_COMPLETED) == 1);
    CHECK(count_of(reports, es::ReportType::PROGRESS, "count") == 1);
    // read again (the log follower resumed): nothing new
    m.on_engine_log(engine_line("2026-08-06T15:17:59.250Z [hf] task finished: frequency (J7rLf9D0i:2:1:1) exit=0 time=30s", 451),
                    at(451));
    CHECK(m.take_reports().empty());
}

TEST_CASE("monitor: vanished tasks are not failures for the mass failure rule", "[vanished][monitor]") {
    // 10 succeed, 2 fail for good, 8 vanish: 2 of 12 known outcomes failed (under 30 %); counting the vanished
    // ones as failures would make it 10 of 20.
    es::DefaultMonitor m(context(20), es::SentinelSettings{});
    for (int i = 1; i <= 10; ++i) {
        m.on_job(active_job(i), es::ChangeKind::added, at(0));
        m.on_pod(succeeded_pod(i), es::ChangeKind::added, at(30 + i));
    }
    for (int i = 11; i <= 18; ++i) monitor_run_then_vanish(m, i, 400 + i);
    for (int i = 19; i <= 20; ++i) {
        auto j = active_job(i);
        m.on_job(j, es::ChangeKind::added, at(0));
        m.on_pod(failed_pod(i), es::ChangeKind::added, at(30));
        j.active = 0;
        j.failed = 1;
        j.conditions.push_back({kube::JobCondition::Type::failed, true, "BackoffLimitExceeded", "too many"});
        m.on_job(j, es::ChangeKind::modified, at(500 + i * 100));
    }
    CHECK(m.state().vanished() == 8);
    CHECK(m.state().failed() == 2);
    CHECK(count_of(m.take_reports(), es::ReportType::MASS_FAILURE) == 0);
    CHECK_FALSE(m.summary(at(2000)).mass_failure);
}

TEST_CASE("monitor: a run whose unfinished tasks all vanished is not a stall", "[vanished][monitor]") {
    es::DefaultMonitor m(context(1), es::SentinelSettings{});
    kube::Pod engine;
    engine.meta.name = "hyperflow-engine-6c4b46d86-jdl7w";
    engine.meta.uid = "uid-engine";
    engine.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}};
    engine.phase = kube::PodPhase::running;
    m.on_pod(engine, es::ChangeKind::added, at(0));
    REQUIRE(m.state().engine_pod_running());
    monitor_run_then_vanish(m, 1, 400);
    (void)m.take_reports();
    for (int minute = 7; minute <= 180; ++minute) m.on_tick(at(60.0 * minute));
    CHECK(count_of(m.take_reports(), es::ReportType::ANOMALY_STALL) == 0);
}

TEST_CASE("checkpoint: the vanished status and the evidence survive a restore", "[vanished][checkpoint]") {
    es::DefaultMonitor m(context(3), es::SentinelSettings{});
    monitor_run_then_vanish(m, 1, 400);
    m.on_job(active_job(2), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(2), es::ChangeKind::added, at(1));
    m.on_engine_log(engine_line("[hf] task finished: frequency (J7rLf9D0i:2:2:1) exit=0 time=30s"), at(300));
    auto j3 = active_job(3);
    j3.succeeded = 1;
    m.on_job(active_job(3), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(3), es::ChangeKind::added, at(1));
    m.on_job(j3, es::ChangeKind::modified, at(31));
    auto cp = m.checkpoint(at(450));
    // through its text form, as a store keeps it
    auto text = boost::json::serialize(cp);
    auto back = boost::json::parse(text).as_object();

    es::DefaultMonitor r(context(3), es::SentinelSettings{});
    r.restore(back, at(500));
    const auto& tasks = r.state().tasks();
    CHECK(tasks[0].status == es::TaskStatus::vanished);
    CHECK(r.state().vanished() == 1);
    CHECK(r.state().phase("frequency")->vanished == 1);
    CHECK(tasks[1].engine_outcome == es::EngineOutcome::succeeded);
    CHECK(tasks[1].engine_exit_code == 0);
    CHECK(tasks[2].job_succeeded == 1);
    // the evidence still decides after the restart: tasks 2 and 3 vanish now and are known to have succeeded
    r.on_pod(running_pod(2), es::ChangeKind::deleted, at(600));
    r.on_job(active_job(2), es::ChangeKind::deleted, at(600));
    r.on_pod(running_pod(3), es::ChangeKind::deleted, at(600));
    r.on_job(j3, es::ChangeKind::deleted, at(600));
    CHECK(r.state().tasks()[1].status == es::TaskStatus::succeeded);
    CHECK(r.state().tasks()[2].status == es::TaskStatus::succeeded);
    // the vanished task is not told again after the restart
    CHECK(count_of(r.take_reports(), es::ReportType::PROGRESS, "task_vanished") == 0);
}

TEST_CASE("checkpoint: task records from before the vanished status still load; a bad status is refused",
          "[vanished][checkpoint]") {
    // as written before the status and the evidence fields existed
    auto old = boost::json::parse(R"([{"key": "inventory/0", "name": "frequency", "type": "frequency", "proc_id": 1,
        "job": "jobrqx-frequency-1-1", "status": "running", "observed": true, "attempts": 1,
        "job_state": {"seen": true, "deleted": false, "complete": false, "failed": false, "active": 1},
        "pods": [{"name": "jobrqx-frequency-1-1-abcde", "uid": "u", "phase": "running", "deleted": false, "oom": false}]}])")
                   .as_array();
    auto tasks = es::tasks_from_json(old);
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].status == es::TaskStatus::running);
    CHECK(tasks[0].job_succeeded == 0);
    CHECK(tasks[0].engine_outcome == es::EngineOutcome::none);

    auto bad = old;
    bad[0].as_object()["status"] = "lost";
    CHECK_THROWS_WITH(es::tasks_from_json(bad), Catch::Contains("tasks[0].status") && Catch::Contains("vanished"));
    auto bad_count = old;
    bad_count[0].as_object()["job_state"].as_object()["succeeded"] = -1;
    CHECK_THROWS_AS(es::tasks_from_json(bad_count), es::CheckpointError);
    auto bad_engine = old;
    bad_engine[0].as_object()["engine"] = "yes";
    CHECK_THROWS_AS(es::tasks_from_json(bad_engine), es::CheckpointError);
    auto bad_exit = old;
    bad_exit[0].as_object()["engine"] = boost::json::object{{"failed", true}, {"exit_code", "1"}};
    CHECK_THROWS_AS(es::tasks_from_json(bad_exit), es::CheckpointError);
}

TEST_CASE("summary: vanished_tasks in the JSON form, read back and bounded", "[vanished][summary]") {
    es::WatchSummary s;
    s.total_tasks = 5;
    s.vanished_tasks = 2;
    auto j = es::to_json(s);
    CHECK(j.at("vanished_tasks").as_int64() == 2);
    CHECK(es::summary_from_json(j) == s);
    j.erase("vanished_tasks"); // written before it existed
    CHECK(es::summary_from_json(j).vanished_tasks == 0);
    j["vanished_tasks"] = -1;
    CHECK_THROWS_AS(es::summary_from_json(j), es::SummaryFormatError);
}

TEST_CASE("task status names", "[vanished][workflow_state]") {
    for (auto t : {es::TaskStatus::pending, es::TaskStatus::running, es::TaskStatus::succeeded, es::TaskStatus::failed,
                   es::TaskStatus::vanished})
        CHECK(es::task_status_from_string(es::to_string(t)) == t);
    CHECK(es::to_string(es::TaskStatus::vanished) == "vanished");
    CHECK_FALSE(es::task_status_from_string("unknown").has_value());
}

TEST_CASE("workflow state: a task never seen on the cluster takes the engine's word", "[vanished][workflow_state]") {
    // Its Job and pods were created, ran and were deleted while the watch was away: only the engine's log knows.
    es::WorkflowState s(context(3));
    auto ch = s.apply_engine_outcome({"frequency", 2, false, 0}, at(300));
    REQUIRE(ch.size() == 1);
    CHECK(ch[0].index == 1); // procId 2 is the inventory's second entry, as its Job would be bound
    CHECK(s.tasks()[1].status == es::TaskStatus::succeeded);
    CHECK(s.completed() == 1);
    CHECK_FALSE(s.tasks()[1].observed);
    // its Job seen later (a late relist, or the log was faster than the watch) is the same task: nothing changes
    s.apply_job(complete_job(2), es::ChangeKind::added, at(310));
    CHECK(s.tasks()[1].status == es::TaskStatus::succeeded);
    CHECK(s.total() == 3);
    CHECK(s.completed() == 1);
    // an entry of another type, or a procId the inventory does not have, is not guessed
    CHECK(s.apply_engine_outcome({"sifting", 3, false, 0}, at(320)).empty());
    CHECK(s.apply_engine_outcome({"frequency", 9, false, 0}, at(320)).empty());
    CHECK(s.apply_engine_outcome({"frequency", 0, false, 0}, at(320)).empty());
    CHECK(s.tasks()[2].status == es::TaskStatus::pending);
}

TEST_CASE("task lifecycle: each attempt has its own number, whatever order a relist brings the pods in",
          "[vanished][monitor]") {
    es::DefaultMonitor m(context(1), es::SentinelSettings{});
    auto first = failed_pod();
    first.meta.creation_timestamp = at(0);
    auto retry = running_pod(1, "fghij");
    retry.meta.uid = "uid-retry";
    retry.meta.creation_timestamp = at(40);
    auto waiting = retry;
    waiting.phase = kube::PodPhase::pending;
    waiting.containers[0].state = {};
    waiting.containers[0].state.kind = kube::ContainerState::Kind::waiting;
    waiting.containers[0].state.reason = "ContainerCreating";
    m.on_job(active_job(), es::ChangeKind::added, at(0));
    // the relist brings the retry (still waiting) before the failed first pod; then the retry runs
    m.on_pod(waiting, es::ChangeKind::added, at(100));
    m.on_pod(first, es::ChangeKind::added, at(100));
    m.on_pod(retry, es::ChangeKind::modified, at(101));
    std::map<std::string, std::vector<std::int64_t>> started; // pod → attempt numbers told
    for (auto& r : m.take_reports())
        if (r.type == es::ReportType::TASK_STARTED)
            started[std::string(r.details.at("pod_name").as_string())].push_back(r.details.at("attempt").as_int64());
    // each attempt is told started once, under its own number (the n-th pod seen: the retry came first)
    CHECK(started[retry.meta.name] == std::vector<std::int64_t>{1});
    CHECK(started[first.meta.name] == std::vector<std::int64_t>{2});
}

TEST_CASE("terminal view: tasks of unknown outcome are shown on their own", "[vanished][cli]") {
    namespace cli = execution_sentinel::cli;
    cli::ViewState state;
    es::MonitorView mv;
    mv.total = 10;
    mv.completed = 7;
    mv.vanished = 2;
    cli::apply_monitor_view(state, mv);
    CHECK(state.vanished_tasks == 2);
    CHECK(cli::render_live(state, {80, 24, false, false}).find("2 outcome unknown") != std::string::npos);
    // from the reports alone (no snapshot): the count and task_vanished events carry it
    cli::ViewState from_reports;
    es::Report r;
    r.type = es::ReportType::PROGRESS;
    r.completed_tasks = 7;
    r.total_tasks = 10;
    r.details = {{"event", "task_vanished"}, {"vanished", 3}};
    cli::apply_report(from_reports, r);
    CHECK(from_reports.vanished_tasks == 3);
    es::WatchSummary s;
    s.total_tasks = 10;
    s.completed_tasks = 7;
    s.vanished_tasks = 2;
    CHECK(cli::render_summary(s, cli::ExitCode::workflow_failed, {80, 24, false, false}).find("2 with an unknown outcome") !=
          std::string::npos);
}

namespace {

/// Feed health as a driver reports it: every feed current (or the pod/Job feeds stale).
es::FeedHealth feeds(bool tasks_fresh) {
    es::FeedHealth h;
    h.known = true;
    h.tasks_fresh = tasks_fresh;
    h.all_healthy = tasks_fresh;
    if (!tasks_fresh) h.unhealthy = {"jobs"};
    return h;
}

} // namespace

TEST_CASE("monitor: a task whose pod was lost while its Job was never seen ends vanished once the feeds are current",
          "[vanished][monitor][orphan]") {
    // Task 2's Job lived and was deleted (TTL) while the Job watch was away; its pod had been seen running and
    // was lost in a relist of the pods. Task 1's Job was seen, so the Job feed does deliver this run's Jobs.
    es::SentinelSettings settings;
    settings.straggler_min_runtime = std::chrono::milliseconds(0);
    es::DefaultMonitor m(context(2), settings);
    m.on_feed_health(feeds(true), at(0));
    m.on_job(active_job(1), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(1), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(2), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(2), es::ChangeKind::deleted, at(40));
    (void)m.take_reports();
    REQUIRE(m.state().tasks()[1].status == es::TaskStatus::running);
    CHECK(m.state().orphans() == 1);

    // Within the grace, or while the task feeds are stale, nothing is decided.
    m.on_tick(at(42));
    CHECK(m.state().tasks()[1].status == es::TaskStatus::running);
    m.on_feed_health(feeds(false), at(43));
    m.on_tick(at(50));
    CHECK(m.state().tasks()[1].status == es::TaskStatus::running);
    m.on_feed_health(feeds(true), at(51));
    m.on_tick(at(52));
    CHECK(m.state().tasks()[1].status == es::TaskStatus::vanished);
    CHECK(m.state().orphans() == 0);
    for (int minute = 1; minute <= 120; ++minute) m.on_tick(at(52 + 60.0 * minute));
    auto reports = m.take_reports();
    CHECK(count_of(reports, es::ReportType::PROGRESS, "task_vanished") == 1);
    CHECK(count_of(reports, es::ReportType::TASK_FAILED) == 0);
    int stragglers = 0; // task 1 still runs, hours past its expected minute: it is one; task 2 is not
    for (auto& r : reports)
        if (r.type == es::ReportType::ANOMALY_STRAGGLER) {
            CHECK(r.task_name == m.state().tasks()[0].name);
            ++stragglers;
        }
    CHECK(stragglers == 1);

    // a pod of it that appears later revives it, as for any other task
    m.on_pod(running_pod(2, "zzzzz"), es::ChangeKind::added, at(8000));
    CHECK(m.state().tasks()[1].status == es::TaskStatus::running);
}

TEST_CASE("workflow state: the engine's log decides a task with only lost pods and no Job seen at once",
          "[vanished][workflow_state][orphan]") {
    es::DefaultMonitor m(context(2), es::SentinelSettings{});
    m.on_job(active_job(2), es::ChangeKind::added, at(0));
    m.on_pod(running_pod(1), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(1), es::ChangeKind::deleted, at(40));
    REQUIRE(m.state().tasks()[0].status == es::TaskStatus::running);
    m.on_engine_log(engine_line("2026-08-06T15:17:59.250Z [hf] task finished: frequency (J7rLf9D0i:2:1:1) exit=0 time=30s", 41),
                    at(41));
    CHECK(m.state().tasks()[0].status == es::TaskStatus::succeeded);
    CHECK(m.state().orphans() == 0);
    CHECK(count_of(m.take_reports(), es::ReportType::TASK_COMPLETED) == 1);
}

TEST_CASE("workflow state: without any Job seen, a lost pod keeps its task as it was", "[vanished][workflow_state][orphan]") {
    // A deployment whose Jobs the task selector does not match: the Job feed says nothing about any task, so a
    // lost pod (an eviction, its replacement to come) must not end its task.
    es::DefaultMonitor m(context(1), es::SentinelSettings{});
    m.on_feed_health(feeds(true), at(0));
    m.on_pod(running_pod(1), es::ChangeKind::added, at(1));
    m.on_pod(running_pod(1), es::ChangeKind::deleted, at(40));
    for (int s = 41; s < 200; s += 5) m.on_tick(at(s));
    CHECK(m.state().tasks()[0].status == es::TaskStatus::running);
    CHECK(count_of(m.take_reports(), es::ReportType::PROGRESS, "task_vanished") == 0);
}

TEST_CASE("checkpoint: an orphaned task restored from a checkpoint is still decided", "[vanished][checkpoint][orphan]") {
    es::DefaultMonitor a(context(2), es::SentinelSettings{});
    a.on_feed_health(feeds(true), at(0));
    a.on_job(active_job(1), es::ChangeKind::added, at(0));
    a.on_pod(running_pod(2), es::ChangeKind::added, at(1));
    a.on_pod(running_pod(2), es::ChangeKind::deleted, at(40));
    auto cp = a.checkpoint(at(41));
    es::DefaultMonitor b(context(2), es::SentinelSettings{});
    b.restore(boost::json::parse(boost::json::serialize(cp)).as_object(), at(100));
    REQUIRE(b.state().tasks()[1].status == es::TaskStatus::running);
    b.on_feed_health(feeds(true), at(100));
    b.on_tick(at(101)); // the grace starts again at the restore
    CHECK(b.state().tasks()[1].status == es::TaskStatus::running);
    b.on_tick(at(107));
    CHECK(b.state().tasks()[1].status == es::TaskStatus::vanished);
}

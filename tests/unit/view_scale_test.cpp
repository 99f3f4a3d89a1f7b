// The view and the health score at fleet scale: what make_view chooses among many running tasks (ties on their
// elapsed time included) and the running-retry count WorkflowState keeps as tasks change, each checked against a
// plain recomputation from the task records.
#include <execution_sentinel/monitor.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <tuple>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string job_name(const std::string& type, int proc) {
    return "jobv" + std::to_string(proc) + "x-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
}

kube::Pod pod_of(const std::string& type, int proc, kube::PodPhase phase, double started, double finished = 0,
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
    } else {
        c.state.kind = kube::ContainerState::Kind::terminated;
        c.state.reason = phase == kube::PodPhase::succeeded ? "Completed" : "Error";
        c.state.exit_code = phase == kube::PodPhase::succeeded ? 0 : 1;
        c.state.started_at = at(started);
        c.state.finished_at = at(finished);
        p.start_time = at(started);
    }
    p.containers.push_back(c);
    return p;
}

/// `n` tasks alternating between two types (so that consecutive tasks change type), procId = position + 1.
es::MonitoringContext alternating_context(int n) {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    for (int i = 0; i < n; ++i) {
        if (i % 2 == 0) c.task_inventory.push_back({"individuals", "individuals", 0, std::nullopt, "", ""});
        else c.task_inventory.push_back({"frequency", "frequency", 1, 50.0, "", ""});
    }
    return c;
}

std::string type_of(int proc) { return proc % 2 == 1 ? "individuals" : "frequency"; }

/// Running tasks with a running retry, counted from the records.
int retries_by_scan(const es::WorkflowState& s) {
    int n = 0;
    for (auto& t : s.tasks())
        if (t.status == es::TaskStatus::running && t.attempts > 1) ++n;
    return n;
}

} // namespace

TEST_CASE("view at scale: the longest-running tasks as a full sort chooses them, ties in the tasks' order", "[view]") {
    const int n = 400;
    auto ctx = alternating_context(n);
    es::DefaultMonitor m(ctx, es::SentinelSettings{});
    // the individuals among procIds 1..20 succeeded (a sibling median for their type; frequency keeps its inventory
    // estimate); the rest run, started at one of 7 instants: many tasks tie on their elapsed time, ordered as
    // WorkflowState::tasks() holds them (the inventory's order)
    for (int proc = 1; proc <= n; ++proc) {
        if (proc <= 20 && proc % 2 == 1) m.on_pod(pod_of(type_of(proc), proc, kube::PodPhase::succeeded, 0, 30 + proc), es::ChangeKind::added, at(60));
        else m.on_pod(pod_of(type_of(proc), proc, kube::PodPhase::running, 10.0 * ((proc * 5) % 7)), es::ChangeKind::added, at(60));
    }
    const auto& state = m.state();
    REQUIRE(state.running() == n - 10);
    const auto now = at(100);

    // the reference: every running task, fully sorted, longest first, then in the tasks' order
    std::vector<std::tuple<double, std::string, std::string, int>> all; // elapsed, name, type, attempts
    for (auto& t : state.tasks())
        if (t.status == es::TaskStatus::running)
            all.emplace_back(t.runtime_seconds(now).value_or(0), t.name, t.task_type, t.attempts);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });

    es::ViewOptions few;
    few.max_running_tasks = 25;
    auto v = es::make_view(state, {}, {}, now, false, false, few);
    REQUIRE(v.running_tasks.size() == 25);
    CHECK(v.running_tasks_omitted == n - 10 - 25);
    for (std::size_t i = 0; i < v.running_tasks.size(); ++i) {
        INFO("position " << i);
        CHECK(v.running_tasks[i].elapsed_seconds == std::get<0>(all[i]));
        CHECK(v.running_tasks[i].name == std::get<1>(all[i]));
        CHECK(v.running_tasks[i].task_type == std::get<2>(all[i]));
        CHECK(v.running_tasks[i].attempts == std::get<3>(all[i]));
        // each shown task has its own type's baseline: the median of its succeeded siblings, else its estimate
        if (v.running_tasks[i].task_type == "individuals") {
            CHECK(v.running_tasks[i].basis == "sibling_median");
            CHECK(v.running_tasks[i].expected_seconds == std::optional<double>(40.0)); // 31, 33 .. 49: median 40
        } else {
            CHECK(v.running_tasks[i].basis == "inventory");
            CHECK(v.running_tasks[i].expected_seconds == std::optional<double>(50.0));
        }
    }
    // ties were there to order: the top 25 include tasks of equal elapsed time
    CHECK(std::get<0>(all[0]) == std::get<0>(all[24]));

    // every running task when the limit allows, in the reference order
    es::ViewOptions every;
    every.max_running_tasks = 1000;
    auto full = es::make_view(state, {}, {}, now, false, false, every);
    REQUIRE(full.running_tasks.size() == all.size());
    CHECK(full.running_tasks_omitted == 0);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(full.running_tasks[i].name == std::get<1>(all[i]));

    // the ETA in the view is estimate_eta's
    auto eta = es::estimate_eta(state, now);
    CHECK(v.eta_seconds == eta.seconds);
    CHECK(v.eta_basis == eta.basis);
    CHECK(v.eta_basis == "mixed");
    CHECK(v.eta_unknown_tasks == eta.unknown_tasks);
    auto mv = m.view(now); // Monitor::view shows the default 50, the same first 25
    REQUIRE(mv.running_tasks.size() == 50);
    CHECK(std::equal(v.running_tasks.begin(), v.running_tasks.end(), mv.running_tasks.begin()));
    CHECK(mv.running_tasks_omitted == n - 10 - 50);
}

TEST_CASE("health score: the running-retry count is kept as tasks change and restored from a checkpoint",
          "[view][diagnosis]") {
    auto ctx = alternating_context(6);
    es::Monitor<es::ProgressDetector> m(ctx, es::SentinelSettings{});
    auto check = [](const es::WorkflowState& s) {
        CHECK(s.running_retries() == retries_by_scan(s));
        CHECK(es::health_score(s) == es::health_score(s.completed(), s.failed(), s.running(), retries_by_scan(s)));
    };
    m.on_pod(pod_of(type_of(1), 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(pod_of(type_of(2), 2, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(pod_of(type_of(3), 3, kube::PodPhase::succeeded, 0, 5), es::ChangeKind::added, at(5));
    check(m.state());
    CHECK(m.state().running_retries() == 0);
    // task 1's first pod fails, its Job retries: a second pod runs
    m.on_pod(pod_of(type_of(1), 1, kube::PodPhase::failed, 0, 10), es::ChangeKind::modified, at(10));
    check(m.state());
    m.on_pod(pod_of(type_of(1), 1, kube::PodPhase::running, 11, 0, "fghij"), es::ChangeKind::added, at(11));
    check(m.state());
    CHECK(m.state().running_retries() == 1);
    // a third attempt of task 2 (two failures): still one retry per task
    m.on_pod(pod_of(type_of(2), 2, kube::PodPhase::failed, 0, 12), es::ChangeKind::modified, at(12));
    m.on_pod(pod_of(type_of(2), 2, kube::PodPhase::running, 13, 0, "klmno"), es::ChangeKind::added, at(13));
    check(m.state());
    CHECK(m.state().running_retries() == 2);
    CHECK(es::health_score(m.state()) == es::health_score(1, 0, 2, 2)); // 1 - 0.5 * 2 / 3

    // the checkpoint's records give the same count
    es::Monitor<es::ProgressDetector> resumed(ctx, es::SentinelSettings{});
    resumed.restore(m.checkpoint(at(14)), at(14));
    check(resumed.state());
    CHECK(resumed.state().running_retries() == 2);

    // the retries end: one succeeds, the other fails for good
    m.on_pod(pod_of(type_of(1), 1, kube::PodPhase::succeeded, 11, 20, "fghij"), es::ChangeKind::modified, at(20));
    check(m.state());
    CHECK(m.state().running_retries() == 1);
    m.on_pod(pod_of(type_of(2), 2, kube::PodPhase::failed, 13, 21, "klmno"), es::ChangeKind::modified, at(21));
    check(m.state());
    CHECK(m.state().running_retries() == 0);
    CHECK(es::health_score(m.state()) == es::health_score(2, 1, 0, 0));
}

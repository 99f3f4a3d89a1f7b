// A soak: one long HyperFlow run with many tasks under a storm of faults (watch connections reset and closed,
// watch history compacted, bursts of 500 and of 429 with Retry-After, outages), built as an ordinary Scenario
// (`soak_scenario`), and the audit of what a watcher reported about it (`audit_soak`): every task's end counted
// once, no report repeated, one COMPLETION. The integration tests run a small one, bench/soak a large one.
#ifndef EXECUTION_SENTINEL_TESTING_SOAK_HPP
#define EXECUTION_SENTINEL_TESTING_SOAK_HPP

#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace execution_sentinel::testing {

/// The shape of a soak. Times are scenario seconds (wall seconds = scenario seconds × time_scale), except the
/// outages, which last `outage_wall_seconds` of wall time.
struct SoakOptions {
    int tasks = 2000;
    double time_scale = 0.1;    ///< wall seconds per scenario second
    double start_spread = 900;  ///< the tasks start evenly over this span (from t = 10)
    double task_duration = 30;  ///< each attempt runs this long (plus 3 s pending)
    int fail_every = 20;        ///< every n-th task fails once (exit 1), then its retry succeeds; 0 = none
    int oom_every = 25;         ///< every n-th task is OOM-killed once, then its retry succeeds; 0 = none
    int watch_resets = 50;      ///< every open watch connection reset (TCP RST)
    int watch_closes = 50;      ///< every open watch ended cleanly
    int compactions = 10;       ///< watches stalled, history dropped, watches reset: they resume with 410 Expired
    int bursts_500 = 5;         ///< bursts of `burst_size` requests answered 500
    int bursts_429 = 5;         ///< bursts of `burst_size` requests answered 429 with Retry-After
    int burst_size = 20;
    int retry_after_seconds = 1;
    int outages = 3;            ///< connections refused and every watch reset, for `outage_wall_seconds`
    double outage_wall_seconds = 3;
    std::optional<double> ttl;  ///< finished task Jobs (and pods) deleted this long after they finish
    std::uint64_t seed = 7;
};

/// What the soak's run ends with, for the audit.
struct SoakExpectation {
    int tasks = 0;
    int succeeded = 0;        ///< tasks whose last attempt succeeds
    int failed_attempts = 0;  ///< attempts that fail (each retried)
    int oom_kills = 0;        ///< attempts OOM-killed (each retried)
    double duration = 0;      ///< scenario time of the completion signal
    /// Finished Jobs and pods are deleted (a Job TTL): a task that finished and was deleted while the watch was
    /// away may end "vanished" (outcome unknown) when no evidence of its end is left; it is then told once
    /// (PROGRESS task_vanished) and counted completed only through the engine's exit code 0.
    /// Failures and OOM kills of attempts deleted before any watch saw them cannot be reported: the audit then
    /// accepts fewer (never more) of those reports.
    bool objects_deleted = false;
};

/// Scenario time by which every task has finished.
inline double soak_last_finish(const SoakOptions& o) {
    // A failed attempt is replaced after 10 s (the Job controller's first backoff), and runs again.
    return 10 + o.start_spread + 2 * (3 + o.task_duration) + 10 + 1;
}

/// The faults fall between t = 12 and the start of the last task; after it the watchers have the time of the
/// longest task (at least 60 s) to recover before the run completes.
inline double soak_faults_end(const SoakOptions& o) { return 10 + o.start_spread; }

inline SoakExpectation soak_expectation(const SoakOptions& o) {
    SoakExpectation e;
    e.tasks = o.tasks;
    e.succeeded = o.tasks;
    for (int i = 1; i <= o.tasks; ++i) {
        if (o.oom_every > 0 && i % o.oom_every == 0) ++e.oom_kills;
        else if (o.fail_every > 0 && i % o.fail_every == 0) ++e.failed_attempts;
    }
    e.duration = std::max(soak_last_finish(o), soak_faults_end(o) + std::max(60.0, 2 * o.task_duration)) + 20;
    e.objects_deleted = o.ttl.has_value();
    return e;
}

/// The soak as a scenario: the engine and support objects, `tasks` tasks of the five 1000genome types, the faults
/// spread over the run with a seeded jitter, and the completion signal once every task has finished.
inline Scenario soak_scenario(const SoakOptions& o) {
    Scenario s;
    s.name = "soak";
    s.namespace_name = "wf-soak";
    s.time_scale = o.time_scale;
    s.seed = o.seed;
    s.engine_at = 0;
    s.support_objects_at = 0;
    s.ttl_seconds_after_finished = o.ttl;
    static const char* const types[] = {"individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency"};
    for (int i = 1; i <= o.tasks; ++i) {
        TaskDecl t;
        t.type = types[(i - 1) % 5];
        t.proc_id = i;
        t.name = t.effective_id();
        t.start = 10 + o.start_spread * (i - 1) / std::max(1, o.tasks);
        t.pending = 3;
        t.duration = o.task_duration;
        t.expected_duration = o.task_duration * 10; // no straggler: stragglers are not what a soak looks at
        if (o.oom_every > 0 && i % o.oom_every == 0) {
            t.outcome = TaskOutcome::oom;
            t.failed_attempts = 1;
        } else if (o.fail_every > 0 && i % o.fail_every == 0) {
            t.outcome = TaskOutcome::fail;
            t.failed_attempts = 1;
        }
        s.add_task(t);
    }
    s.expected_durations = {{"individuals", o.task_duration * 10},
                            {"individuals_merge", o.task_duration * 10},
                            {"sifting", o.task_duration * 10},
                            {"mutation_overlap", o.task_duration * 10},
                            {"frequency", o.task_duration * 10}};

    // Faults at evenly spaced times with a seeded jitter, each kind on its own grid; outages first, away from
    // the edges, so that the others fall between them too.
    const double from = 12, to = soak_faults_end(o);
    std::mt19937_64 rng(o.seed);
    auto spread = [&](int n, auto&& make) {
        const double span = (to - from) / std::max(1, n);
        std::uniform_real_distribution<double> jitter(0.1 * span, 0.9 * span);
        for (int k = 0; k < n; ++k) make(from + span * k + jitter(rng));
    };
    spread(o.outages, [&](double at) {
        s.add(step::refuse_connections(at, o.outage_wall_seconds));
        s.add(step::reset_watches(at));
    });
    spread(o.watch_resets, [&](double at) { s.add(step::reset_watches(at)); });
    spread(o.watch_closes, [&](double at) { s.add(step::close_watches(at)); });
    spread(o.compactions, [&](double at) {
        // The watches fall behind (the changes queue), the history is dropped, the connections reset: each
        // watch resumes from a resourceVersion compacted away, gets 410 Expired and lists again.
        s.add(step::stall_watches(at, true));
        s.add(step::compact(at + 2));
        s.add(step::reset_watches(at + 2));
        s.add(step::stall_watches(at + 2, false));
    });
    spread(o.bursts_500, [&](double at) { s.add(step::fail_next(at, o.burst_size, 500)); });
    spread(o.bursts_429, [&](double at) { s.add(step::fail_next(at, o.burst_size, 429, o.retry_after_seconds)); });
    s.complete_at(soak_expectation(o).duration, 0);
    return s;
}

/// What the audit found: `problems` is empty when the reports tell the run exactly once.
struct SoakAudit {
    std::vector<std::string> problems;
    int completions = 0;
    int lifecycle_completed = 0; ///< TASK_COMPLETED reports
    int lifecycle_failed = 0;    ///< TASK_FAILED reports (failed attempts seen as such: a watch that was away
                                 ///< while an attempt failed and its retry started sees only the retry)
    int failure_reports = 0;     ///< tasks with an ANOMALY_TASK_FAILED report
    int oom_reports = 0;         ///< tasks with an ANOMALY_OOMKILL error report
    int last_progress = 0;       ///< completed_tasks of the last PROGRESS report
    int connectivity_losses = 0;
    int vanished_told = 0;       ///< tasks told vanished (PROGRESS task_vanished), resolved later or not
    int vanished_unresolved = 0; ///< of them, tasks never told completed afterwards (their outcome stayed unknown)
    int stragglers = 0;          ///< ANOMALY_STRAGGLER reports (every soak task runs far below its expectation)
    /// Tasks reported started (TASK_STARTED) twice for the same attempt (`details.attempt`; a start told before
    /// any pod was known, attempt 0, is the first attempt's): the same start told twice (each is also a problem).
    std::vector<std::string> started_again;
    std::map<ReportType, int> counts;
    bool ok() const noexcept { return problems.empty(); }
};

/// The identity of a report for duplicate detection: its type, task, completed count and message. Two reports
/// with the same identity tell the same thing twice. Connectivity reports are left out: an outage like an
/// earlier one is told with the same words, and each is a new event.
inline std::tuple<int, std::string, int, std::string> soak_report_identity(const Report& r) {
    return {static_cast<int>(r.type), r.task_name, r.completed_tasks, r.message};
}

/// Audits the reports (the lifecycle stream included) and the summary of a watch of `soak_scenario(o)`.
inline SoakAudit audit_soak(const std::vector<Report>& reports, const WatchSummary& summary, const SoakExpectation& e) {
    SoakAudit a;
    auto problem = [&](std::string p) {
        if (a.problems.size() < 50) a.problems.push_back(std::move(p));
    };
    std::map<std::string, int> completed_per_task, failed_per_task, failure_reports_per_task, oom_per_task,
        vanished_per_task;
    std::set<std::pair<std::string, std::int64_t>> started; // (task, attempt) told started
    std::set<std::tuple<int, std::string, int, std::string>> seen;
    int progress = -1;
    for (const auto& r : reports) {
        ++a.counts[r.type];
        switch (r.type) {
        case ReportType::COMPLETION: ++a.completions; break;
        case ReportType::TASK_COMPLETED:
            ++a.lifecycle_completed;
            ++completed_per_task[r.task_name];
            break;
        case ReportType::TASK_FAILED:
            ++a.lifecycle_failed;
            ++failed_per_task[r.task_name];
            break;
        case ReportType::TASK_STARTED: {
            std::int64_t attempt = 1;
            if (const auto* v = r.details.if_contains("attempt"); v && v->is_int64()) attempt = std::max<std::int64_t>(1, v->get_int64());
            if (!started.emplace(r.task_name, attempt).second) {
                a.started_again.push_back(r.task_name);
                problem("task " + r.task_name + " told started twice (attempt " + std::to_string(attempt) + ")");
            }
            break;
        }
        case ReportType::ANOMALY_TASK_FAILED: ++failure_reports_per_task[r.task_name]; break;
        case ReportType::ANOMALY_OOMKILL:
            if (r.severity == Severity::error) ++oom_per_task[r.task_name];
            break;
        case ReportType::PROGRESS:
            if (r.completed_tasks < progress)
                problem("PROGRESS went back from " + std::to_string(progress) + " to " + std::to_string(r.completed_tasks) +
                        " completed tasks");
            if (r.completed_tasks > e.tasks)
                problem("PROGRESS counts " + std::to_string(r.completed_tasks) + " completed tasks of " +
                        std::to_string(e.tasks));
            progress = std::max(progress, r.completed_tasks);
            if (const auto* ev = r.details.if_contains("event"); ev && ev->is_string() && ev->get_string() == "task_vanished")
                ++vanished_per_task[r.task_name];
            break;
        case ReportType::ANOMALY_STRAGGLER:
            ++a.stragglers;
            problem("task " + r.task_name + " reported as a straggler: \"" + r.message + "\"");
            break;
        case ReportType::CONNECTIVITY_LOSS: ++a.connectivity_losses; break;
        default: break;
        }
        if (r.type == ReportType::CONNECTIVITY_LOSS || r.type == ReportType::CONNECTIVITY_RESTORED ||
            r.type == ReportType::TASK_STARTED)
            continue; // connectivity: each outage is news; a task starts again after a retry (started_again)
        if (!seen.insert(soak_report_identity(r)).second)
            problem("reported twice: " + std::string(to_string(r.type)) + " " + r.task_name + " \"" + r.message + "\"");
    }
    a.last_progress = std::max(progress, 0);
    if (a.completions != 1) problem(std::to_string(a.completions) + " COMPLETION reports (expected exactly one)");
    for (auto& [task, n] : completed_per_task)
        if (n != 1) problem("task " + task + " completed " + std::to_string(n) + " times");
    // A task told vanished ends once: completed later (evidence of its end arrived), or never (outcome unknown).
    a.vanished_told = static_cast<int>(vanished_per_task.size());
    for (auto& [task, n] : vanished_per_task) {
        if (n != 1) problem("task " + task + " told vanished " + std::to_string(n) + " times");
        if (!completed_per_task.count(task)) ++a.vanished_unresolved;
    }
    if (!e.objects_deleted && a.vanished_told > 0)
        problem(std::to_string(a.vanished_told) + " tasks told vanished although no object is deleted in this run");
    const int ended = static_cast<int>(completed_per_task.size()) + a.vanished_unresolved;
    if (ended != e.succeeded)
        problem(std::to_string(completed_per_task.size()) + " tasks reported completed (TASK_COMPLETED) and " +
                std::to_string(a.vanished_unresolved) + " ended with an unknown outcome, expected " +
                std::to_string(e.succeeded) + " in all");
    // Each failing task fails once: its failure and its OOM kill are reported once (from the failed pod, seen
    // in a relist too); the lifecycle stream tells at most that one failure.
    for (auto& [task, n] : failed_per_task)
        if (n != 1) problem("task " + task + " reported failed (TASK_FAILED) " + std::to_string(n) + " times");
    if (a.lifecycle_failed > e.failed_attempts + e.oom_kills)
        problem(std::to_string(a.lifecycle_failed) + " TASK_FAILED reports, at most " +
                std::to_string(e.failed_attempts + e.oom_kills) + " attempts failed");
    a.failure_reports = static_cast<int>(failure_reports_per_task.size());
    a.oom_reports = static_cast<int>(oom_per_task.size());
    for (auto& [task, n] : failure_reports_per_task)
        if (n != 1) problem("task " + task + ": " + std::to_string(n) + " ANOMALY_TASK_FAILED reports");
    for (auto& [task, n] : oom_per_task)
        if (n != 1) problem("task " + task + ": " + std::to_string(n) + " ANOMALY_OOMKILL errors");
    // With deleted objects, a failed attempt whose pod was deleted before any watch saw it leaves no trace to
    // report (the engine does not log a failed attempt that its Job retried): fewer, never more.
    auto reported = [&](int got, int want, const char* what) {
        if (got == want || (e.objects_deleted && got < want)) return;
        problem(std::to_string(got) + " tasks reported " + what + ", expected " + std::to_string(want));
    };
    reported(a.failure_reports, e.failed_attempts, "failed (ANOMALY_TASK_FAILED)");
    reported(a.oom_reports, e.oom_kills, "OOM-killed (ANOMALY_OOMKILL)");
    if (a.last_progress != e.succeeded - a.vanished_unresolved)
        problem("the last PROGRESS counts " + std::to_string(a.last_progress) + " completed tasks, expected " +
                std::to_string(e.succeeded - a.vanished_unresolved));
    if (summary.completed_tasks != e.succeeded)
        problem("summary: " + std::to_string(summary.completed_tasks) + " completed tasks, expected " +
                std::to_string(e.succeeded));
    // the engine's exit code 0 counts the tasks whose outcome stayed unknown, and only those
    if (summary.inferred_completed != a.vanished_unresolved)
        problem("summary: " + std::to_string(summary.inferred_completed) +
                " tasks counted as completed without being seen to finish, " + std::to_string(a.vanished_unresolved) +
                " ended with an unknown outcome");
    if (summary.vanished_tasks != 0)
        problem("summary: " + std::to_string(summary.vanished_tasks) + " tasks with an unknown outcome after exit code 0");
    if (summary.total_tasks != e.tasks)
        problem("summary: " + std::to_string(summary.total_tasks) + " tasks, expected " + std::to_string(e.tasks));
    if (const int oom = static_cast<int>(summary.oom_killed.size()); oom != e.oom_kills && !(e.objects_deleted && oom < e.oom_kills))
        problem("summary: " + std::to_string(oom) + " OOM-killed tasks, expected " + std::to_string(e.oom_kills));
    if (summary.exit_code != std::optional<int>(0)) problem("summary: no exit code 0");
    return a;
}

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_SOAK_HPP

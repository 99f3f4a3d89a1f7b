// PROGRESS: the completed count changed; a DAG phase (task type) started or completed.
#ifndef EXECUTION_SENTINEL_DETECTORS_PROGRESS_HPP
#define EXECUTION_SENTINEL_DETECTORS_PROGRESS_HPP

#include <execution_sentinel/detector.hpp>

#include <boost/json/array.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace execution_sentinel {

/// The health of a run in [0, 1], from the tasks that have started (docs/detectors.md, "Health"):
///
///     health = 1 - (failed + 0.5 * running_retries) / (succeeded + failed + running)
///
/// A failed task counts fully against it; a running task counts in the denominator, and against the score by
/// half when it runs again after a failed attempt (running_retries: running tasks with more than one attempt);
/// pending tasks (waiting to start, or not created yet) do not count at all. 1 when no task has started yet.
/// Rounded to 3 decimals so that equal states give equal numbers.
inline double health_score(int succeeded, int failed, int running, int running_retries) noexcept {
    int started = succeeded + failed + running;
    if (started <= 0) return 1.0;
    double bad = failed + 0.5 * std::min(running_retries, running);
    double h = 1.0 - bad / started;
    h = std::clamp(h, 0.0, 1.0);
    return std::round(h * 1000.0) / 1000.0;
}

/// health_score of a workflow's current state.
inline double health_score(const WorkflowState& s) {
    return health_score(s.completed(), s.failed(), s.running(), s.running_retries());
}

/// Rules (docs/detectors.md):
///  - when the number of succeeded tasks differs from the last one reported: "12 of 80 tasks have completed.";
///  - when a task's objects vanished without an end seen (TaskStatus::vanished, outcome unknown): once per task,
///    event "task_vanished", so that a task that stops counting as running is never left unexplained;
///  - when the first task of a type starts (running, or already finished when first seen): phase started;
///    if an upstream type (dag_structure; without an entry there: a type with a smaller dag_order) has not
///    completed yet, the report
///    says so (details.out_of_order = true, details.waiting_for) — real HyperFlow runs start sifting first;
///  - when every inventory task of a type has succeeded (or vanished): phase completed.
/// Each phase event is reported once (scope "phase/<type>"). Every PROGRESS report carries details.health
/// (health_score); the last value goes to WatchSummary::health.
class ProgressDetector {
public:
    static constexpr std::string_view name = "progress";

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp, ReportSink& sink) {
        const auto& task = s.tasks()[c.index];
        health_ = health_score(s);
        if (c.phase_started) phase_started(s, task.task_type, sink);
        if (c.after == TaskStatus::vanished && c.before != TaskStatus::vanished) vanished(s, task, c, sink);
        if (s.completed() != last_completed_) {
            last_completed_ = s.completed();
            Finding f;
            f.type = ReportType::PROGRESS;
            f.message = std::to_string(s.completed()) + " of " + detail::es_plural(s.total(), "task", "tasks") +
                        (s.completed() == 1 ? " has" : " have") + " completed" +
                        (s.vanished() > 0 ? " (" + std::to_string(s.vanished()) + " more ended with an unknown outcome)"
                                          : std::string()) +
                        ".";
            f.scope = "workflow";
            f.fingerprint = "completed=" + std::to_string(s.completed());
            f.details["event"] = "count";
            f.details["running"] = s.running();
            f.details["failed"] = s.failed();
            f.details["pending"] = s.pending();
            f.details["vanished"] = s.vanished();
            f.details["health"] = health_;
            sink.emit(std::move(f));
        }
        if (c.phase_completed) phase_completed(s, task.task_type, sink);
    }

    /// The completed count last reported.
    int last_completed() const noexcept { return last_completed_; }
    /// The health at the last task change (1 before any).
    double health() const noexcept { return health_; }

    void on_summary(WatchSummary& w) const { w.health = health_; }

private:
    static std::string phase_label(const std::string& type) { return type.empty() ? "unnamed" : type; }

    boost::json::object phase_details(const PhaseState& ph, std::string_view event) const {
        boost::json::object d;
        d["event"] = event;
        d["phase"] = ph.task_type;
        d["dag_order"] = ph.dag_order;
        d["phase_total"] = ph.total;
        d["phase_running"] = ph.running;
        d["phase_succeeded"] = ph.succeeded;
        d["phase_failed"] = ph.failed;
        d["phase_vanished"] = ph.vanished;
        d["health"] = health_;
        return d;
    }

    void phase_started(const WorkflowState& s, const std::string& type, ReportSink& sink) {
        const auto* ph = s.phase(type);
        if (!ph) return;
        // which earlier phases have not completed yet?
        std::vector<std::string> waiting;
        const auto& dag = s.context().dag_structure;
        auto add = [&](const std::string& t) {
            for (auto& w : waiting)
                if (w == t) return;
            auto* other = s.phase(t);
            if (t != type && other && !other->completed && other->inventory_total > 0) waiting.push_back(t);
        };
        if (auto it = dag.find(type); it != dag.end()) {
            for (auto& up : it->second) add(up);
        } else if (ph->dag_order != 99) {
            for (auto& [t, other] : s.phases())
                if (other.dag_order < ph->dag_order && other.inventory_total > 0) add(t);
        }
        Finding f;
        f.type = ReportType::PROGRESS;
        f.task_type = type;
        f.scope = "phase/" + type;
        f.fingerprint = "started";
        auto d = phase_details(*ph, "phase_started");
        d["out_of_order"] = !waiting.empty();
        boost::json::array w;
        for (auto& x : waiting) w.push_back(boost::json::string(x));
        d["waiting_for"] = std::move(w);
        f.details = std::move(d);
        f.message = "The " + phase_label(type) + " phase has started (" + detail::es_plural(ph->total, "task", "tasks") +
                    ")";
        if (!waiting.empty())
            f.message += ", earlier than the declared order, before " + detail::es_join_names(waiting) +
                         (waiting.size() == 1 ? " has" : " have") + " finished";
        f.message += ".";
        sink.emit(std::move(f));
    }

    void phase_completed(const WorkflowState& s, const std::string& type, ReportSink& sink) {
        const auto* ph = s.phase(type);
        if (!ph) return;
        Finding f;
        f.type = ReportType::PROGRESS;
        f.task_type = type;
        f.scope = "phase/" + type;
        f.fingerprint = "completed";
        f.details = phase_details(*ph, "phase_completed");
        if (ph->started_at && ph->completed_at)
            f.details["phase_seconds"] = std::chrono::duration<double>(*ph->completed_at - *ph->started_at).count();
        if (ph->inventory_vanished > 0)
            f.message = ph->inventory_total == 1
                            ? "The only " + phase_label(type) + " task has ended, with an unknown outcome."
                            : "All " + std::to_string(ph->inventory_total) + " " + phase_label(type) +
                                  " tasks have ended: " + std::to_string(ph->inventory_succeeded) + " completed and " +
                                  std::to_string(ph->inventory_vanished) + " with an unknown outcome.";
        else
            f.message = ph->inventory_total == 1
                            ? "The only " + phase_label(type) + " task has completed."
                            : "All " + std::to_string(ph->inventory_total) + " " + phase_label(type) +
                                  " tasks have completed.";
        sink.emit(std::move(f));
    }

    /// A task stopped counting as running or waiting without an end seen: say so, once per task.
    void vanished(const WorkflowState& s, const TaskRecord& t, const TaskChange& c, ReportSink& sink) const {
        Finding f;
        f.type = ReportType::PROGRESS;
        f.task_name = t.name;
        f.task_type = t.task_type;
        f.scope = t.key;
        f.fingerprint = "vanished";
        f.message = "Task " + t.name + " ended while it could not be followed and was cleaned up before its outcome "
                    "was seen, so whether it succeeded is unknown; it is counted as ended.";
        f.details["event"] = "task_vanished";
        f.details["status"] = to_string(c.after);
        f.details["previous_status"] = to_string(c.before);
        f.details["job_name"] = t.job_name;
        f.details["attempts"] = t.attempts;
        f.details["running"] = s.running();
        f.details["failed"] = s.failed();
        f.details["pending"] = s.pending();
        f.details["vanished"] = s.vanished();
        f.details["health"] = health_;
        sink.emit(std::move(f));
    }

    int last_completed_ = 0;
    double health_ = 1.0;
};

static_assert(Detector<ProgressDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_PROGRESS_HPP

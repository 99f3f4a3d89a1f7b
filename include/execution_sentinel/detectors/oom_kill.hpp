// ANOMALY_OOMKILL: a task's container was killed for exceeding its memory limit.
#ifndef EXECUTION_SENTINEL_DETECTORS_OOM_KILL_HPP
#define EXECUTION_SENTINEL_DETECTORS_OOM_KILL_HPP

#include <execution_sentinel/detector.hpp>

#include <boost/json/array.hpp>

#include <string>
#include <vector>

namespace execution_sentinel {

/// Rules (docs/detectors.md):
///  - a container of a task pod (init or main) has terminated with reason OOMKilled, in its current state or
///    its last state (exit code 137 is recorded; 137 without that reason is a plain kill, not an OOM):
///    one ANOMALY_OOMKILL (severity error) per task;
///  - the first time a task of a type is OOM-killed, one more ANOMALY_OOMKILL (severity warning, scope
///    "type/<type>") lists the other tasks of that type still pending or running: they run the same code with
///    the same limit and are likely to hit it too. Not emitted when no other task of the type is active.
class OomKillDetector {
public:
    static constexpr std::string_view name = "oom_kill";

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp, ReportSink& sink) {
        if (!c.oom_detected) return;
        const auto& task = s.tasks()[c.index];
        std::vector<std::string> running, waiting;
        int not_started = 0;
        for (auto& t : s.tasks()) {
            if (&t == &task || t.task_type != task.task_type || !t.active()) continue;
            if (!t.observed) ++not_started;
            else if (t.status == TaskStatus::running) running.push_back(t.name);
            else waiting.push_back(t.name);
        }
        std::string limit = task.memory_limit.empty() ? "" : " (limit " + task.memory_limit + ")";
        const std::string type = task.task_type.empty() ? std::string("same-type") : task.task_type;

        Finding f;
        f.type = ReportType::ANOMALY_OOMKILL;
        f.severity = Severity::error;
        f.task_name = task.name;
        f.task_type = task.task_type;
        f.scope = task.key;
        f.fingerprint = "oom";
        f.message = "Task " + task.name + " ran out of memory" + limit + " and was stopped";
        if (!running.empty())
            f.message += "; " + detail::es_plural(static_cast<int>(running.size()), "other " + type + " task is",
                                                  "other " + type + " tasks are") +
                         " still running and may hit the same limit";
        f.message += ".";
        f.details["job_name"] = task.job_name;
        f.details["pod_name"] = task.oom_pod;
        f.details["memory_limit"] = task.memory_limit;
        if (task.last_exit_code) f.details["exit_code"] = *task.last_exit_code;
        f.details["reason"] = task.last_failure_message;
        f.details["attempts"] = task.attempts;
        if (sink.emit(std::move(f))) oom_killed_.push_back(task.name);

        if (running.empty() && waiting.empty()) return;
        std::vector<std::string> at_risk = running;
        at_risk.insert(at_risk.end(), waiting.begin(), waiting.end());
        Finding w;
        w.type = ReportType::ANOMALY_OOMKILL;
        w.severity = Severity::warning;
        w.task_type = task.task_type;
        w.scope = "type/" + task.task_type;
        w.fingerprint = "siblings-at-risk";
        w.message = (at_risk.size() == 1 ? "Task " : "Tasks ") + detail::es_join_names(at_risk, 8) +
                    (at_risk.size() == 1 ? " is" : " are") + " of the same kind as " + task.name +
                    ", which ran out of memory" + limit + ", and may run out of memory too.";
        boost::json::array names;
        for (auto& n : at_risk) names.push_back(boost::json::string(n));
        w.details["at_risk"] = std::move(names);
        w.details["running"] = static_cast<int>(running.size());
        w.details["waiting"] = static_cast<int>(waiting.size());
        w.details["not_started"] = not_started;
        w.details["oom_task"] = task.name;
        w.details["memory_limit"] = task.memory_limit;
        sink.emit(std::move(w));
    }

    void on_summary(WatchSummary& s) const {
        for (auto& n : oom_killed_) s.oom_killed.push_back(n);
    }

    const std::vector<std::string>& oom_killed() const noexcept { return oom_killed_; }

private:
    std::vector<std::string> oom_killed_;
};

static_assert(Detector<OomKillDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_OOM_KILL_HPP

// TASK_STARTED, TASK_COMPLETED, TASK_FAILED, TASK_RETRIED: every task transition, for subscribers that opt in
// (a replanner that needs each one). Published only to subscriptions that ask for the lifecycle stream.
#ifndef EXECUTION_SENTINEL_DETECTORS_TASK_LIFECYCLE_HPP
#define EXECUTION_SENTINEL_DETECTORS_TASK_LIFECYCLE_HPP

#include <execution_sentinel/detector.hpp>

#include <string>

namespace execution_sentinel {

/// Rules (docs/detectors.md), on every task status change (severity info, scope the task, fingerprint per attempt
/// "<event>|<the attempt's pod uid>" — its Job's name before a pod is known —, so the same objects delivered again,
/// in whatever order a relist brings them, change nothing):
///  - TASK_RETRIED: the task had failed and a new attempt is pending or running;
///  - TASK_STARTED: it is running now (and was not);
///  - TASK_COMPLETED: it succeeded;
///  - TASK_FAILED: it failed (the Job may still retry: a TASK_RETRIED follows then).
class TaskLifecycleDetector {
public:
    static constexpr std::string_view name = "task_lifecycle";

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp now, ReportSink& sink) {
        if (!c.status_changed()) return;
        const auto& t = s.tasks()[c.index];
        if (c.before == TaskStatus::failed && t.active())
            emit(t, c, ReportType::TASK_RETRIED, "retried", "Task " + t.name + " is being tried again (attempt " +
                                                                std::to_string(t.attempts) + ").", now, sink);
        if (c.after == TaskStatus::running)
            emit(t, c, ReportType::TASK_STARTED, "started", "Task " + t.name + " started.", now, sink);
        else if (c.after == TaskStatus::succeeded)
            emit(t, c, ReportType::TASK_COMPLETED, "completed", "Task " + t.name + " completed.", now, sink);
        else if (c.after == TaskStatus::failed)
            emit(t, c, ReportType::TASK_FAILED, "failed",
                 "Task " + t.name + " failed" +
                     (t.last_failure_reason.empty() ? std::string() : " (" + t.last_failure_reason + ")") + ".",
                 now, sink);
    }

private:
    static void emit(const TaskRecord& t, const TaskChange& c, ReportType type, const char* event, std::string message,
                     Timestamp now, ReportSink& sink) {
        Finding f;
        f.type = type;
        f.severity = Severity::info;
        f.task_name = t.name;
        f.task_type = t.task_type;
        f.scope = t.key;
        const auto* attempt = t.newest_attempt();
        f.fingerprint = std::string(event) + "|" +
                        (attempt ? (attempt->uid.empty() ? attempt->name : attempt->uid) : "job:" + t.job_name);
        f.message = std::move(message);
        f.details["event"] = event;
        f.details["status"] = to_string(c.after);
        f.details["previous_status"] = to_string(c.before);
        f.details["attempt"] = t.attempts;
        f.details["job_name"] = t.job_name;
        f.details["pod_name"] = attempt ? attempt->name : std::string();
        if (auto rt = t.runtime_seconds(now); rt && type != ReportType::TASK_RETRIED) f.details["runtime_seconds"] = *rt;
        if (type == ReportType::TASK_FAILED) {
            f.details["reason"] = t.last_failure_reason;
            if (t.last_exit_code) f.details["exit_code"] = *t.last_exit_code;
        }
        sink.emit(std::move(f));
    }
};

static_assert(Detector<TaskLifecycleDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_TASK_LIFECYCLE_HPP

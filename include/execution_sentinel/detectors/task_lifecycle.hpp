// TASK_STARTED, TASK_COMPLETED, TASK_FAILED, TASK_RETRIED: every task transition, for subscribers that opt in
// (a replanner that needs each one). Published only to subscriptions that ask for the lifecycle stream.
#ifndef EXECUTION_SENTINEL_DETECTORS_TASK_LIFECYCLE_HPP
#define EXECUTION_SENTINEL_DETECTORS_TASK_LIFECYCLE_HPP

#include <execution_sentinel/detector.hpp>

#include <string>

namespace execution_sentinel {

/// Rules (docs/detectors.md), on every task status change (severity info, scope the task; the fingerprints do not
/// depend on the order in which a relist brings a task's Job and pods, so a restarted watch makes the same ones):
///  - TASK_RETRIED: the task had failed and a new attempt is pending or running ("retried|<pod uid>");
///  - TASK_STARTED: an attempt runs ("started|<pod uid>"): made when the task is running and its pod is known —
///    a Job that says active before its pod is seen waits for the pod;
///  - TASK_COMPLETED: it succeeded ("completed": once per task, success is final);
///  - TASK_FAILED: it failed ("failed|<pod uid>" of the failed attempt, "failed|job:<name>" when only the Job
///    told; the Job may still retry: a TASK_RETRIED follows then).
/// A task whose objects vanished without an end seen (TaskStatus::vanished) gets none of these: its end is unknown
/// (PROGRESS "task_vanished" tells it, detectors/progress.hpp); if evidence arrives later (the engine's log), the
/// TASK_COMPLETED or TASK_FAILED it gives follows then.
class TaskLifecycleDetector {
public:
    static constexpr std::string_view name = "task_lifecycle";

    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp now, ReportSink& sink) {
        if (!c.status_changed()) return;
        const auto& t = s.tasks()[c.index];
        if (c.before == TaskStatus::failed && t.active())
            emit(t, c, ReportType::TASK_RETRIED, "retried", "Task " + t.name + " is being tried again (attempt " +
                                                                std::to_string(t.attempts) + ").", now, sink);
        if (c.after == TaskStatus::running) {
            if (t.newest_attempt()) emit(t, c, ReportType::TASK_STARTED, "started", "Task " + t.name + " started.", now, sink);
        } else if (c.after == TaskStatus::succeeded) {
            started_unseen(t, c, now, sink);
            emit(t, c, ReportType::TASK_COMPLETED, "completed", "Task " + t.name + " completed.", now, sink);
        } else if (c.after == TaskStatus::failed) {
            started_unseen(t, c, now, sink);
            emit(t, c, ReportType::TASK_FAILED, "failed",
                 "Task " + t.name + " failed" +
                     (t.last_failure_reason.empty() ? std::string() : " (" + t.last_failure_reason + ")") + ".",
                 now, sink);
        }
    }

    /// A pod whose start the task's transitions did not report: the Job showed the task running before its pod
    /// was seen, or the task's end was learnt (from its Job, after a restart) before this attempt's finished pod.
    void on_pod(const WorkflowState& s, const kube::Pod& pod, ChangeKind kind, Timestamp now, ReportSink& sink) {
        if (kind == ChangeKind::deleted) return;
        const auto* t = s.find_task(pod.meta.name);
        if (!t) return;
        const auto* a = t->attempt(pod.meta.uid, pod.meta.name);
        if (!a) return;
        bool finished_attempt = (a->phase == kube::PodPhase::succeeded || a->phase == kube::PodPhase::failed) && a->started;
        bool running_first = t->status == TaskStatus::running && t->newest_attempt() == a && !t->cluster_failure_seen();
        if (!finished_attempt && !running_first) return;
        TaskChange c; // the attempt went from pending to running
        c.before = TaskStatus::pending;
        c.after = TaskStatus::running;
        emit(*t, c, ReportType::TASK_STARTED, "started", "Task " + t->name + " started.", now, sink, a);
    }

private:
    /// An attempt first seen finished (it ran while nobody watched, or between two observations) did start:
    /// its TASK_STARTED comes first, so that every attempt that ran has one.
    static void started_unseen(const TaskRecord& t, const TaskChange& c, Timestamp now, ReportSink& sink) {
        const AttemptRecord* ran = attempt_of(t, c.after == TaskStatus::failed ? ReportType::TASK_FAILED
                                                                                 : ReportType::TASK_COMPLETED);
        if (!ran || !ran->started) return;
        TaskChange started = c;
        started.after = TaskStatus::running;
        emit(t, started, ReportType::TASK_STARTED, "started", "Task " + t.name + " started.", now, sink, ran);
    }

    /// The attempt a report is about: the newest, or for a failure the newest that failed.
    static const AttemptRecord* attempt_of(const TaskRecord& t, ReportType type) {
        const auto* attempt = t.newest_attempt();
        if (type == ReportType::TASK_FAILED) {
            const AttemptRecord* failed = nullptr;
            for (auto& a : t.pods)
                if (a.phase == kube::PodPhase::failed &&
                    (!failed || (a.created && (!failed->created || *a.created > *failed->created))))
                    failed = &a;
            if (failed) attempt = failed;
        }
        return attempt;
    }

    /// Which attempt `a` is: the n-th pod of the task seen (1 for the first). Fixed for a pod once it is seen, and
    /// different for each pod of the task, whatever order a relist brings them in; the pods seen when no attempt
    /// is known.
    static int attempt_number(const TaskRecord& t, const AttemptRecord* a) {
        for (std::size_t i = 0; a && i < t.pods.size(); ++i)
            if (&t.pods[i] == a) return static_cast<int>(i) + 1;
        return t.attempts;
    }

    static void emit(const TaskRecord& t, const TaskChange& c, ReportType type, const char* event, std::string message,
                     Timestamp now, ReportSink& sink, const AttemptRecord* about = nullptr) {
        Finding f;
        f.type = type;
        f.severity = Severity::info;
        f.task_name = t.name;
        f.task_type = t.task_type;
        f.scope = t.key;
        const auto* attempt = about ? about : attempt_of(t, type);
        if (type == ReportType::TASK_COMPLETED) {
            f.fingerprint = event;
        } else {
            f.fingerprint = std::string(event) + "|" +
                            (attempt ? (attempt->uid.empty() ? attempt->name : attempt->uid) : "job:" + t.job_name);
        }
        f.message = std::move(message);
        f.details["event"] = event;
        f.details["status"] = to_string(c.after);
        f.details["previous_status"] = to_string(c.before);
        f.details["attempt"] = attempt_number(t, attempt);
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

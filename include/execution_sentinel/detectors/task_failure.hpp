// ANOMALY_TASK_FAILED: a task attempt failed on the cluster, with its cause, its evidence and a next step.
#ifndef EXECUTION_SENTINEL_DETECTORS_TASK_FAILURE_HPP
#define EXECUTION_SENTINEL_DETECTORS_TASK_FAILURE_HPP

#include <execution_sentinel/detector.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// Why one attempt failed, as read from its pod (or its Job). `key` separates causes of the same attempt.
struct TaskFailureCause {
    std::string key;        ///< "exit", "crash_loop", "evicted", "deadline_exceeded", "image_pull", …
    std::string reason;     ///< the cluster's word: "Error", "CrashLoopBackOff", "Evicted", "ImagePullBackOff" …
    std::string container;  ///< the container concerned, or empty
    std::optional<int> exit_code;
    int restart_count = 0;
    std::string what;       ///< the middle of the sentence: "failed: its program exited with code 1"
    std::string next_step;  ///< a suggested action
    std::string cluster_message; ///< the cluster's own message (bounded), or empty
    bool ran = true;        ///< the container ran (a log tail may exist)
};

namespace detail {

inline std::string es_bounded(std::string_view s, std::size_t n = 512) { return std::string(s.substr(0, n)); }

/// "memory", "disk space", … named in an eviction message ("The node was low on resource: memory. …").
inline std::string es_pressure_of(std::string_view message) {
    if (message.find("ephemeral-storage") != std::string_view::npos || message.find("disk") != std::string_view::npos)
        return "disk space";
    if (message.find("memory") != std::string_view::npos) return "memory";
    if (message.find("pid") != std::string_view::npos) return "process slots";
    return "resources";
}

inline TaskFailureCause es_exit_cause(const kube::ContainerStatus& c, const kube::ContainerState& st) {
    TaskFailureCause k;
    k.key = "exit";
    k.container = c.name;
    k.exit_code = st.exit_code;
    k.restart_count = c.restart_count;
    k.reason = st.reason.empty() ? "Error" : st.reason;
    k.cluster_message = es_bounded(st.message);
    if (st.exit_code == 143) {
        k.reason = "SIGTERM";
        k.what = "was stopped from outside before it finished (termination signal, exit code 143)";
        k.next_step = "Check whether the task was cancelled, preempted or its machine was drained; if nobody stopped "
                      "it, rerun it.";
    } else if (st.exit_code == 137) {
        k.reason = "SIGKILL";
        k.what = "was killed before it finished (kill signal, exit code 137; not an out-of-memory kill)";
        k.next_step = "Check whether something killed the task (a time limit, a cancellation, its machine's memory "
                      "pressure); if nothing did, rerun it.";
    } else {
        k.what = "failed: its program exited with code " + std::to_string(st.exit_code);
        k.next_step = "Read the task's log (its last lines are in the evidence) for the error; a wrong argument, "
                      "missing input file or software bug is the usual cause.";
    }
    return k;
}

/// The main-container waiting reasons that mean the task can never start as it is.
inline std::optional<TaskFailureCause> es_waiting_cause(const kube::ContainerStatus& c) {
    const auto& st = c.state;
    if (st.kind != kube::ContainerState::Kind::waiting) return std::nullopt;
    TaskFailureCause k;
    k.container = c.name;
    k.reason = st.reason;
    k.restart_count = c.restart_count;
    k.cluster_message = es_bounded(st.message);
    k.ran = false;
    if (st.reason == "ImagePullBackOff" || st.reason == "ErrImagePull") {
        k.key = "image_pull";
        k.what = "cannot start: its software image cannot be downloaded";
        k.next_step = "Check the image name and tag in the workflow's configuration and that the cluster can reach "
                      "the registry (and has its credentials); the task will not start until this is fixed.";
    } else if (st.reason == "InvalidImageName") {
        k.key = "invalid_image";
        k.what = "cannot start: the name of its software image is not valid";
        k.next_step = "Correct the image name in the workflow's configuration and rerun.";
    } else if (st.reason == "CreateContainerConfigError" || st.reason == "CreateContainerError") {
        k.key = "container_config";
        k.what = "cannot start: its container is configured with something that does not exist (a missing "
                 "configuration map, secret or volume)";
        k.next_step = "Create what the task's configuration refers to (the cluster's message names it), or remove "
                      "the reference, then rerun.";
    } else if (st.reason == "CrashLoopBackOff") {
        k.key = "crash_loop";
        k.ran = true;
        if (c.last_state.kind == kube::ContainerState::Kind::terminated) {
            k.exit_code = c.last_state.exit_code;
            if (c.last_state.reason == "OOMKilled") k.reason = "CrashLoopBackOff (OOMKilled)";
        }
        k.what = "keeps failing: it has been restarted " + detail::es_plural(c.restart_count, "time", "times") +
                 (k.exit_code ? " (last exit code " + std::to_string(*k.exit_code) + ")" : std::string()) +
                 " and is now waiting before the next try";
        k.next_step = "Read the task's log (its last lines are in the evidence) for the error; restarting will not help "
                      "until its cause is fixed.";
    } else {
        return std::nullopt;
    }
    return k;
}

} // namespace detail

/// Every cause of failure the pod shows (pure: the pod, how it was delivered, and what was known of its attempt
/// before; `was_running`: the attempt had started and not finished before this delivery). An OOM kill is left to
/// the OOM detector. Pod-wide causes (eviction, deadline, node lost, deletion) replace container exit codes. A
/// deletion counts only when the delivered object carries its deletion time (the API announced it).
inline std::vector<TaskFailureCause> classify_pod_failure(const kube::Pod& pod, ChangeKind kind, bool was_running) {
    std::vector<TaskFailureCause> out;
    const bool succeeded = pod.phase == kube::PodPhase::succeeded;
    const std::string main = pod.containers.empty() ? std::string() : pod.containers.front().name.str();
    auto pod_cause = [&](std::string key, std::string reason, std::string what, std::string next) {
        TaskFailureCause k;
        k.key = std::move(key);
        k.reason = std::move(reason);
        k.container = main;
        k.what = std::move(what);
        k.next_step = std::move(next);
        k.cluster_message = detail::es_bounded(pod.message);
        if (!pod.containers.empty()) {
            k.restart_count = pod.containers.front().restart_count;
            if (pod.containers.front().state.kind == kube::ContainerState::Kind::terminated)
                k.exit_code = pod.containers.front().state.exit_code;
        }
        out.push_back(std::move(k));
    };
    if (!succeeded) {
        if (pod.reason == "Evicted") {
            pod_cause("evicted", "Evicted",
                      "was stopped because the machine it ran on ran short of " + detail::es_pressure_of(pod.message),
                      "Rerun the task; if it happens again, give its type a memory (or disk) request closer to its real "
                      "use, or run it on machines with more room.");
        } else if (pod.reason == "DeadlineExceeded") {
            pod_cause("deadline_exceeded", "DeadlineExceeded", "was stopped because it ran past its time limit",
                      "Raise the task's time limit (activeDeadlineSeconds) if it needs longer, or find out why it "
                      "ran so long (it may be stuck).");
        } else if (pod.reason == "NodeLost" || (pod.phase == kube::PodPhase::unknown && was_running)) {
            pod_cause("node_lost", pod.reason.empty() ? std::string("NodeLost") : pod.reason.str(),
                      "was lost: the machine it ran on stopped answering",
                      "Rerun the task; if machines keep failing, tell the cluster's administrators.");
        } else if (auto* dt = pod.condition("DisruptionTarget"); dt && dt->status == "True") {
            std::string why = dt->reason == "PreemptionByScheduler"       ? "to make room for more important work"
                              : dt->reason == "DeletionByTaintManager"    ? "because its machine became unavailable"
                              : dt->reason == "EvictionByEvictionAPI"     ? "because its machine was being emptied"
                              : dt->reason == "TerminationByKubelet"      ? "because its machine is shutting down or "
                                                                            "short of resources"
                                                                          : "by the cluster";
            pod_cause("disrupted", dt->reason.empty() ? std::string("DisruptionTarget") : dt->reason.str(),
                      "is being stopped " + why,
                      "Rerun the task once it has stopped; if it keeps happening, ask the cluster's administrators.");
            if (out.back().cluster_message.empty()) out.back().cluster_message = detail::es_bounded(dt->message);
        }
    }
    if (out.empty() && !succeeded) {
        for (auto* list : {&pod.init_containers, &pod.containers}) {
            for (auto& c : *list) {
                if (auto w = detail::es_waiting_cause(c)) {
                    out.push_back(std::move(*w));
                    continue;
                }
                // the current run, else the previous one (a restarted container)
                for (auto* st : {&c.state, &c.last_state}) {
                    if (st->kind != kube::ContainerState::Kind::terminated || st->exit_code == 0 ||
                        st->reason == "OOMKilled")
                        continue;
                    auto k = detail::es_exit_cause(c, *st);
                    if (list == &pod.init_containers) {
                        k.key = "init_exit";
                        k.what = "could not start: its preparation step (" + c.name + ") failed with exit code " +
                                 std::to_string(st->exit_code);
                    }
                    out.push_back(std::move(k));
                    break;
                }
            }
        }
    }
    // a deletion the API announced (the object carries its deletion time); a pod that only vanished while the watch
    // was away (a relist no longer lists it) may have finished and been cleaned up: its outcome is unknown
    if (out.empty() && kind == ChangeKind::deleted && was_running && !succeeded && pod.phase != kube::PodPhase::failed &&
        pod.meta.deletion_timestamp) {
        bool finished_container = false;
        for (auto& c : pod.containers)
            if (c.state.kind == kube::ContainerState::Kind::terminated && c.state.exit_code == 0) finished_container = true;
        if (!finished_container)
            pod_cause("deleted", "Deleted", "was removed while it was still running, so its work was lost",
                      "Check whether a person, a cleanup job or a machine failure removed it; rerun it if the "
                      "workflow engine does not.");
    }
    return out;
}

/// Rules (docs/detectors.md): for every task pod delivered, each cause of failure it shows (classify_pod_failure)
/// gives one ANOMALY_TASK_FAILED (severity error) per attempt and cause; a task's Job that failed with
/// DeadlineExceeded, BackoffLimitExceeded or PodFailurePolicy gives one per Job and reason. Fingerprint
/// "<pod uid>|<cause>" (or "job|<reason>"), scope the task: the same objects delivered again change nothing.
/// The report asks for the container's log tail (Finding::evidence_request) when the container ran.
class TaskFailureDetector {
public:
    static constexpr std::string_view name = "task_failure";

    void on_pod(const WorkflowState& s, const kube::Pod& pod, ChangeKind kind, Timestamp, ReportSink& sink) {
        const auto* task = s.find_task(pod.meta.name);
        if (!task) return;
        const auto* attempt = task->attempt(pod.meta.uid, pod.meta.name);
        int attempt_no = 0;
        for (std::size_t i = 0; i < task->pods.size(); ++i)
            if (&task->pods[i] == attempt) attempt_no = static_cast<int>(i) + 1;
        // the attempt had started and not finished before this delivery: the state keeps the started time, and a
        // deleted running pod is marked "Deleted" by the state (a lost attempt)
        bool was_running = attempt && attempt->started &&
                           (attempt->phase == kube::PodPhase::running || attempt->phase == kube::PodPhase::unknown ||
                            attempt->failure_reason == "Deleted");
        for (auto& cause : classify_pod_failure(pod, kind, was_running)) {
            Finding f = make_finding(*task, cause, "cluster");
            f.fingerprint = (pod.meta.uid.empty() ? pod.meta.name : pod.meta.uid) + "|" + cause.key +
                            (cause.container.empty() ? std::string() : ":" + cause.container);
            f.details["attempt"] = attempt_no;
            f.details["pod_name"] = pod.meta.name;
            f.details["node"] = attempt ? attempt->node : pod.node_name.str();
            f.details["evidence"].as_object()["pod"] = pod.meta.name;
            if (cause.ran && !cause.container.empty()) f.evidence_request = EvidenceRequest{pod.meta.name, cause.container};
            if (sink.emit(std::move(f))) ++emitted_;
        }
    }

    void on_job(const WorkflowState& s, const kube::Job& job, ChangeKind kind, Timestamp, ReportSink& sink) {
        if (kind == ChangeKind::deleted || job.complete()) return;
        const auto* task = s.find_task(job.meta.name);
        if (!task) return;
        for (auto& c : job.conditions) {
            if (!c.status || (c.type != kube::JobCondition::Type::failed && c.type != kube::JobCondition::Type::failure_target))
                continue;
            TaskFailureCause k;
            k.reason = c.reason;
            k.cluster_message = detail::es_bounded(c.message);
            if (c.reason == "DeadlineExceeded") {
                k.key = "deadline_exceeded";
                k.what = "was stopped because it ran past its time limit";
                k.next_step = "Raise the task's time limit (the Job's activeDeadlineSeconds) if it needs longer, or "
                              "find out why it ran so long (it may be stuck).";
            } else if (c.reason == "BackoffLimitExceeded") {
                k.key = "backoff_limit_exceeded";
                k.what = "failed for good: every retry failed (" + detail::es_plural(job.failed, "attempt", "attempts") +
                         ")";
                k.next_step = "Read the failed attempts' causes and the log in the evidence; retrying again will "
                              "not help until the cause is fixed.";
            } else if (c.reason == "PodFailurePolicy") {
                k.key = "pod_failure_policy";
                k.what = "failed for good: its failure matched a rule that forbids retries";
                k.next_step = "Read the cluster's message (it names the container and exit code) and the log in the "
                              "evidence.";
            } else {
                continue;
            }
            const auto* newest = task->newest_attempt();
            if (newest) {
                k.container = newest->container;
                k.exit_code = newest->exit_code;
                k.restart_count = newest->restart_count;
            }
            Finding f = make_finding(*task, k, "cluster");
            f.fingerprint = "job|" + job.meta.name + "|" + k.key;
            f.details["attempt"] = task->attempts;
            f.details["job_name"] = job.meta.name;
            if (newest) {
                f.details["pod_name"] = newest->name;
                f.details["node"] = newest->node;
                f.details["evidence"].as_object()["pod"] = newest->name;
                if (newest->started && !newest->container.empty())
                    f.evidence_request = EvidenceRequest{newest->name, newest->container};
            } else {
                f.details["node"] = "";
            }
            if (sink.emit(std::move(f))) ++emitted_;
        }
    }

    /// Reports emitted so far.
    int emitted() const noexcept { return emitted_; }

    /// The common part of an ANOMALY_TASK_FAILED finding (also used for failures the engine's log shows).
    static Finding make_finding(const TaskRecord& task, const TaskFailureCause& cause, std::string_view source) {
        Finding f;
        f.type = ReportType::ANOMALY_TASK_FAILED;
        f.severity = Severity::error;
        f.task_name = task.name;
        f.task_type = task.task_type;
        f.scope = task.key;
        f.message = "Task " + task.name + " " + cause.what + ".";
        f.details["cause"] = cause.key;
        f.details["reason"] = cause.reason;
        if (cause.exit_code) f.details["exit_code"] = *cause.exit_code;
        else f.details["exit_code"] = nullptr;
        f.details["container"] = cause.container;
        f.details["restart_count"] = cause.restart_count;
        f.details["job_name"] = task.job_name;
        f.details["next_step"] = cause.next_step;
        f.details["source"] = source;
        if (!cause.cluster_message.empty()) f.details["cluster_message"] = cause.cluster_message;
        boost::json::object ev;
        ev["container"] = cause.container;
        if (cause.exit_code) ev["exit_code"] = *cause.exit_code;
        else ev["exit_code"] = nullptr;
        ev["events"] = events_of(task);
        f.details["evidence"] = std::move(ev);
        return f;
    }

    /// The task's recent Warning Events (newest last): reason, message, count, object.
    static boost::json::array events_of(const TaskRecord& task) {
        boost::json::array a;
        for (auto& e : task.recent_warnings) {
            boost::json::object o;
            o["reason"] = e.reason;
            o["message"] = e.message;
            o["count"] = e.count;
            o["object"] = e.object;
            a.push_back(std::move(o));
        }
        return a;
    }

private:
    int emitted_ = 0;
};

static_assert(Detector<TaskFailureDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_TASK_FAILURE_HPP

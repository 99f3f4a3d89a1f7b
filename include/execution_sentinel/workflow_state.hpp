// WorkflowState: the pure state of one watched workflow — every task (from the inventory and discovered on the
// cluster), its status, attempts, times, failure reason and OOM flag, per-type phase state and counts.
// Fed with pod/Job add/modify/delete and Events; returns what changed. No I/O, no clock: `now` is an argument.
//
// Robustness rules:
//  - a task's status is derived from everything known about its Job and pods, never counted per event, so the
//    same object delivered again (relist, reconnect) changes nothing;
//  - each pod's phase only moves forward (pending → running → succeeded/failed): a stale update is ignored;
//  - succeeded is final; a Job that failed is final; a failed pod followed by a retry pod of the same Job makes
//    the task active again (retried pods of one Job are one task);
//  - deletions keep what was learnt: HyperFlow deletes finished Jobs ~100 s later and they stay finished;
//    a pod deleted before it finished is a lost attempt: its outcome is unknown, so the task keeps its last
//    known status until a replacement pod, its Job or the engine's exit code says more;
//  - a task whose Job and pods are all gone without an end seen (they finished and were deleted while the watch
//    was away: a relist delivers their deletions with the last state known) is decided by what evidence is left —
//    the engine's log (its last "task finished"/"task failed" line wins), else the Job's last known succeeded
//    count — and otherwise ends "vanished": finished, outcome unknown; never left running, never failed for an
//    earlier attempt whose retry was not seen to end; a task never seen at all takes the engine's word;
//  - a task whose pods were all lost while its Job was never seen (the Job lived and was deleted while the Job
//    watch was away) is decided the same way — at once by the engine's log, else once the task feeds are current
//    without its Job for `orphan_grace` (other tasks' Jobs were seen, so its own would have been) — and is
//    revived like any other by a pod or Job of it that appears later;
//  - what is kept as evidence is bounded and idempotent: the newest few Warning Events per task (the same Event
//    delivered again updates its record), per attempt the main container's name, restart count (never lowered by a
//    stale copy) and limits (kept when an update does not carry them).
#ifndef EXECUTION_SENTINEL_WORKFLOW_STATE_HPP
#define EXECUTION_SENTINEL_WORKFLOW_STATE_HPP

#include <execution_sentinel/baselines.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/task_matching.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace execution_sentinel {

using Clock = kube::Clock;
using Timestamp = kube::Timestamp;

enum class ChangeKind : std::uint8_t { added, modified, deleted };

namespace detail {
/// Hash of a std::string key that a std::string_view finds without a copy (heterogeneous look-up).
struct EsStringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
/// Name → task index: found per input (every pod, Job, Event and metrics sample), never iterated.
using EsNameIndex = std::unordered_map<std::string, std::size_t, EsStringHash, std::equal_to<>>;
} // namespace detail

/// How current the driver's picture of the cluster is, as the driver reports it (Monitor::on_feed_health).
/// A feed is one watch ("pods", "jobs", "events", "engine"); it is healthy when its list is folded in and its
/// stream works (delivered an event, or stayed open for a short settling time).
struct FeedHealth {
    bool known = false;       ///< false until a driver reports feed health: then every state counts as fresh
    bool tasks_fresh = true;  ///< the feeds of task state (pods, Jobs) are healthy: task states are current
    bool all_healthy = true;  ///< every feed is healthy (contact with the API is fully back)
    std::optional<Timestamp> healthy_since{}; ///< since when every feed has been healthy (set when all_healthy)
    std::vector<std::string> unhealthy{};     ///< names of the feeds that are not healthy
    friend bool operator==(const FeedHealth&, const FeedHealth&) = default;
};

/// A task's status. `vanished`: its Job and pods were deleted before an end was seen and no evidence left says
/// how it ended (outcome unknown); it counts as finished (neither running, succeeded nor failed).
enum class TaskStatus : std::uint8_t { pending, running, succeeded, failed, vanished };

inline constexpr std::string_view to_string(TaskStatus s) noexcept {
    switch (s) {
    case TaskStatus::pending: return "pending";
    case TaskStatus::running: return "running";
    case TaskStatus::succeeded: return "succeeded";
    case TaskStatus::failed: return "failed";
    case TaskStatus::vanished: return "vanished";
    }
    return "pending";
}

/// The status named by to_string(TaskStatus); nullopt for any other text.
inline constexpr std::optional<TaskStatus> task_status_from_string(std::string_view s) noexcept {
    for (auto t : {TaskStatus::pending, TaskStatus::running, TaskStatus::succeeded, TaskStatus::failed, TaskStatus::vanished})
        if (to_string(t) == s) return t;
    return std::nullopt;
}

/// What the workflow engine's log last said about a task's end (HyperFlow's "task finished"/"task failed" lines).
enum class EngineOutcome : std::uint8_t { none, succeeded, failed };

/// One such line, as WorkflowState::apply_engine_outcome takes it: the task by type and procId (as in its Job's name).
struct EngineTaskOutcome {
    std::string task_type;
    int proc_id = 0;
    bool failed = false;          ///< "task failed", or "task finished" with a non-zero exit code
    std::optional<int> exit_code;
};

/// One pod (attempt) of a task.
struct AttemptRecord {
    std::string name;
    std::string uid;
    kube::PodPhase phase = kube::PodPhase::unknown;
    bool deleted = false;
    bool oom_killed = false;
    std::optional<Timestamp> created;
    std::optional<Timestamp> started;
    std::optional<Timestamp> finished;
    std::optional<int> exit_code;
    std::string failure_reason;  ///< e.g. "OOMKilled", "Evicted", "Error", "Deleted" (lost before finishing)
    std::string failure_message; ///< "<container>: <Reason> (exit code N)" or the pod's status message
    std::string waiting_reason;  ///< the main container's current Waiting reason
    std::string node;
    std::string container;       ///< the main container's name (the first one; HyperFlow's is "test")
    int restart_count = 0;       ///< the main container's restart count (highest seen)
    std::int64_t memory_limit_bytes = 0;  ///< the main container's memory limit in bytes; 0 = none
    std::int64_t cpu_limit_millicores = 0; ///< the main container's CPU limit in millicores; 0 = none

    bool terminal() const noexcept {
        return phase == kube::PodPhase::succeeded || phase == kube::PodPhase::failed || deleted;
    }
};

/// A Warning Event about a task's pod or Job, as kept for evidence (bounded, newest last).
struct EventRecord {
    std::string id;      ///< the Event's uid (or name): the same Event delivered again updates its record
    std::string object;  ///< the pod or Job it is about
    std::string reason;  ///< at most 256 characters
    std::string message; ///< at most 512 characters
    int count = 1;
    std::optional<Timestamp> last_seen;
    friend bool operator==(const EventRecord&, const EventRecord&) = default;
};

/// How many Warning Events are kept per task (the newest).
inline constexpr std::size_t max_task_events = 5;

struct TaskRecord {
    std::string key;       ///< stable identity: "inventory/<index>" or "job/<job name>"
    std::string name;      ///< display name: the inventory name when unique, else "<type>-<procId>", else the Job
    std::string task_type;
    std::optional<std::size_t> inventory_index;
    std::optional<int> proc_id;
    std::string job_name;  ///< empty until observed
    TaskStatus status = TaskStatus::pending;
    bool observed = false; ///< a Job or pod of it was seen
    std::optional<Timestamp> first_seen;
    std::optional<Timestamp> started_at;  ///< start of the latest attempt that ran
    std::optional<Timestamp> finished_at; ///< when it reached succeeded/failed (vanished: when that was learnt)
    int attempts = 0;      ///< pods seen
    bool oom_killed = false;
    std::string oom_pod;
    std::string last_failure_reason;
    std::string last_failure_message;
    std::optional<int> last_exit_code;
    std::string waiting_reason;       ///< current Waiting reason of the newest attempt (e.g. ImagePullBackOff)
    std::string last_warning_reason;  ///< latest Warning Event about it
    std::string last_warning_message;
    std::vector<EventRecord> recent_warnings; ///< the newest Warning Events about it (max_task_events)
    bool job_seen = false;
    bool job_deleted = false;
    bool job_complete = false;
    bool job_failed = false;
    int job_active = 0;
    int job_succeeded = 0; ///< the Job's last known status.succeeded (pods that succeeded)
    std::optional<Timestamp> job_start;
    std::optional<Timestamp> job_completion;
    std::optional<double> expected_duration_seconds; ///< from the inventory; nullopt or ≤ 0 = unknown
    Expectation expectation; ///< the expected duration its detectors and the ETA use, and its basis (baselines.hpp)
    std::string memory_limit;
    std::vector<AttemptRecord> pods;
    EngineOutcome engine_outcome = EngineOutcome::none; ///< the engine log's last word on its end
    std::optional<int> engine_exit_code;                ///< the exit code that line gave

    bool active() const noexcept { return status == TaskStatus::pending || status == TaskStatus::running; }
    /// The attempt of a pod (by uid, else by name), or nullptr.
    const AttemptRecord* attempt(std::string_view uid, std::string_view pod_name) const noexcept {
        for (auto& a : pods)
            if ((!uid.empty() && a.uid == uid) || (uid.empty() && a.name == pod_name)) return &a;
        return nullptr;
    }
    /// The newest attempt (latest creation time), or nullptr before any pod was seen.
    const AttemptRecord* newest_attempt() const noexcept {
        const AttemptRecord* newest = nullptr;
        for (auto& a : pods)
            if (!newest || (a.created && newest->created && *a.created > *newest->created) || (!newest->created && a.created))
                newest = &a;
        return newest;
    }
    /// Some attempt ended Failed on the cluster, or its Job failed (a lost, deleted pod does not count).
    bool cluster_failure_seen() const noexcept {
        if (job_failed) return true;
        for (auto& a : pods)
            if (a.phase == kube::PodPhase::failed) return true;
        return false;
    }
    /// Succeeded, failed or vanished (outcome unknown): nothing more is expected of it.
    bool finished() const noexcept {
        return status == TaskStatus::succeeded || status == TaskStatus::failed || status == TaskStatus::vanished;
    }
    /// Seconds of its running (latest attempt) or total run when finished; nullopt when it never started.
    std::optional<double> runtime_seconds(Timestamp now) const {
        if (!started_at) return std::nullopt;
        auto end = finished() && finished_at ? *finished_at : now;
        return std::max(0.0, std::chrono::duration<double>(end - *started_at).count());
    }
};

/// What one input changed for one task.
struct TaskChange {
    std::size_t index = 0; ///< into WorkflowState::tasks()
    TaskStatus before = TaskStatus::pending;
    TaskStatus after = TaskStatus::pending;
    bool first_observation = false;
    bool oom_detected = false;    ///< the OOM flag became true with this input
    bool phase_started = false;   ///< the first task of its type started (running or finished)
    bool phase_completed = false; ///< all inventory tasks of its type have now ended, succeeded (or vanished)
    bool status_changed() const noexcept { return before != after; }
};

/// Per task type ("DAG phase").
struct PhaseState {
    std::string task_type;
    int dag_order = 99;
    int inventory_total = 0; ///< tasks of the type in the inventory
    int total = 0;           ///< inventory + extra tasks of the type
    int pending = 0, running = 0, succeeded = 0, failed = 0;
    int vanished = 0; ///< tasks whose objects vanished without an end seen (outcome unknown)
    int inventory_succeeded = 0;
    int inventory_vanished = 0;
    bool started = false;
    bool completed = false; ///< every inventory task of the type succeeded (or vanished, outcome unknown)
    std::optional<Timestamp> started_at;
    std::optional<Timestamp> completed_at;
    /// Tasks with a known outcome (succeeded or failed; vanished ones are not counted).
    int finished() const noexcept { return succeeded + failed; }
};

class WorkflowState {
public:
    /// `rule` decides what is a task; empty = DefaultTaskRule(ctx).
    explicit WorkflowState(MonitoringContext ctx, MatchRule rule = {})
        : ctx_(std::move(ctx)), rule_(rule ? std::move(rule) : MatchRule(DefaultTaskRule(ctx_))),
          binder_(ctx_.task_inventory), engine_pod_name_(ctx_.engine_pod_name) {
        std::map<std::string, int> name_uses;
        for (auto& t : ctx_.task_inventory) ++name_uses[t.name];
        tasks_.reserve(ctx_.task_inventory.size());
        for (std::size_t i = 0; i < ctx_.task_inventory.size(); ++i) {
            const auto& spec = ctx_.task_inventory[i];
            TaskRecord r;
            r.key = "inventory/" + std::to_string(i);
            r.name = name_uses[spec.name] == 1 ? spec.name : spec.name + "#" + std::to_string(i + 1);
            r.task_type = spec.task_type;
            r.inventory_index = i;
            r.expected_duration_seconds = spec.expected_duration_seconds;
            r.memory_limit = spec.memory_limit;
            auto& ph = phase_for(spec.task_type);
            if (ph.dag_order == 99 || spec.dag_order < ph.dag_order) ph.dag_order = spec.dag_order;
            ++ph.inventory_total;
            ++ph.total;
            ++ph.pending;
            unique_names_[spec.name] = name_uses[spec.name] == 1;
            first_of_type_.emplace(spec.task_type, i);
            assign_expectation(r);
            tasks_.push_back(std::move(r));
        }
        counts_.pending = static_cast<int>(tasks_.size());
    }

    WorkflowState(const WorkflowState&) = delete; // the rule may refer to ctx_
    WorkflowState& operator=(const WorkflowState&) = delete;

    // ------------------------------------------------------------------ inputs

    std::vector<TaskChange> apply_pod(const kube::Pod& pod, ChangeKind kind, Timestamp now) {
        std::string job_storage;
        auto cand = candidate_of(pod, job_storage);
        auto d = rule_(cand);
        if (d.role != ObjectRole::task) {
            note_non_task(d.role, pod.meta.name);
            if (d.role == ObjectRole::engine) {
                if (kind == ChangeKind::deleted) {
                    if (engine_pod_name_ == pod.meta.name) engine_pod_running_ = false;
                } else if (pod.phase == kube::PodPhase::running && !pod.meta.deletion_timestamp) {
                    engine_pod_name_ = pod.meta.name;
                    engine_pod_running_ = true;
                }
            }
            return {};
        }
        bool is_new = false;
        auto idx = task_for(d, now, is_new);
        auto& t = tasks_[idx];
        auto before = snapshot(t);
        if (t.job_name.empty()) t.job_name = d.group;
        auto* a = find_attempt(t, pod.meta.uid, pod.meta.name);
        if (!a) {
            t.pods.push_back(AttemptRecord{});
            a = &t.pods.back();
            a->name = pod.meta.name;
            a->uid = pod.meta.uid;
            a->created = pod.meta.creation_timestamp;
            ++t.attempts;
            pod_index_[pod.meta.name] = idx;
        }
        update_attempt(*a, pod, kind, now);
        return finish_change(idx, before, is_new, now);
    }

    std::vector<TaskChange> apply_job(const kube::Job& job, ChangeKind kind, Timestamp now) {
        auto d = rule_(candidate_of(job));
        if (d.role != ObjectRole::task) {
            note_non_task(d.role, job.meta.name);
            return {};
        }
        jobs_visible_ = true;
        bool is_new = false;
        auto idx = task_for(d, now, is_new);
        auto& t = tasks_[idx];
        auto before = snapshot(t);
        if (t.job_name.empty()) t.job_name = d.group;
        t.job_seen = true;
        // a deletion carries the Job's last state (its final one, or the last one known when it vanished while
        // the watch was away): what it says is kept as well
        t.job_deleted = kind == ChangeKind::deleted;
        t.job_complete = t.job_complete || job.complete();
        if (job.failed_or_failing() && !t.job_complete) {
            t.job_failed = true;
            for (auto& c : job.conditions)
                if ((c.type == kube::JobCondition::Type::failed || c.type == kube::JobCondition::Type::failure_target) &&
                    c.status && t.last_failure_reason.empty()) {
                    t.last_failure_reason = c.reason;
                    t.last_failure_message = c.message;
                }
        }
        t.job_active = job.active;
        t.job_succeeded = std::max(t.job_succeeded, job.succeeded);
        if (job.start_time) t.job_start = job.start_time;
        if (job.completion_time) t.job_completion = job.completion_time;
        return finish_change(idx, before, is_new, now);
    }

    /// What the workflow engine's log says about a task's end (its type and procId as in its Job's name; a task
    /// not seen yet is the inventory entry its Job would be bound to, else the line is ignored). The last such
    /// line wins (a retry that succeeded after a failed attempt). It decides the task only when its Job and pods
    /// are gone without an end seen, or when nothing of it was ever seen (see the rules above).
    std::vector<TaskChange> apply_engine_outcome(const EngineTaskOutcome& o, Timestamp now) {
        std::size_t idx = 0;
        if (auto it = engine_index_.find({type_slug(o.task_type), o.proc_id}); it != engine_index_.end()) {
            idx = it->second;
        } else {
            // a task never seen on the cluster (its whole life passed while the watch was away): the inventory
            // entry its Job would be bound to (procId n → entry n, as TaskBinder binds), when it is of that type
            if (o.proc_id < 1 || static_cast<std::size_t>(o.proc_id) > ctx_.task_inventory.size()) return {};
            idx = static_cast<std::size_t>(o.proc_id - 1);
            if (tasks_[idx].observed || type_slug(tasks_[idx].task_type) != type_slug(o.task_type)) return {};
        }
        auto& t = tasks_[idx];
        auto before = snapshot(t);
        t.engine_outcome = o.failed ? EngineOutcome::failed : EngineOutcome::succeeded;
        t.engine_exit_code = o.exit_code;
        return finish_change(idx, before, false, now);
    }

    /// Records Warning Events about a known task's pod or Job (reason and message, and the newest few as
    /// evidence). Never changes a status; the same Event delivered again updates its record in place.
    void apply_event(const kube::Event& ev, Timestamp now) {
        if (ev.type != "Warning") return;
        std::optional<std::size_t> idx;
        if (ev.involved.kind == "Pod") {
            if (auto it = pod_index_.find(ev.involved.name); it != pod_index_.end()) idx = it->second;
        } else if (ev.involved.kind == "Job") {
            if (auto it = group_index_.find(ev.involved.name); it != group_index_.end()) idx = it->second;
        }
        if (!idx) return;
        auto& t = tasks_[*idx];
        t.last_warning_reason = ev.reason.substr(0, 256);
        t.last_warning_message = ev.message.substr(0, 1024);
        EventRecord r;
        r.id = ev.meta.uid.empty() ? ev.meta.name : ev.meta.uid;
        r.object = ev.involved.name.substr(0, 256);
        r.reason = ev.reason.substr(0, 256);
        r.message = ev.message.substr(0, 512);
        r.count = std::max(1, ev.count);
        r.last_seen = ev.last_timestamp ? ev.last_timestamp : ev.first_timestamp ? ev.first_timestamp : std::optional<Timestamp>(now);
        auto& list = t.recent_warnings;
        auto same = std::find_if(list.begin(), list.end(), [&](const EventRecord& e) {
            return (!r.id.empty() && e.id == r.id) || (e.object == r.object && e.reason == r.reason && e.message == r.message);
        });
        if (same != list.end()) {
            if (r.count < same->count) return; // a stale copy
            list.erase(same);
        }
        list.push_back(std::move(r));
        if (list.size() > max_task_events) list.erase(list.begin());
    }

    /// Takes back per-task facts saved before a restart (checkpoint.hpp), before any input. An inventory task
    /// ("inventory/<i>") takes its record's facts when this context still lists entry i (its inventory fields
    /// stay as the context says); a task found on the cluster ("job/<name>") is added again; anything else is
    /// dropped. Counts, phases and the Job/pod name indexes are rebuilt from the records.
    void restore_tasks(std::vector<TaskRecord> records) {
        for (auto& r : records) {
            std::optional<std::size_t> slot;
            if (r.key.starts_with("inventory/")) {
                std::size_t i = 0;
                auto digits = std::string_view(r.key).substr(10);
                if (digits.empty() || digits.size() > 9 ||
                    digits.find_first_not_of("0123456789") != std::string_view::npos)
                    continue;
                for (char c : digits) i = i * 10 + static_cast<std::size_t>(c - '0');
                if (i >= ctx_.task_inventory.size()) continue;
                slot = i;
                auto& t = tasks_[i];
                r.inventory_index = i;
                r.expected_duration_seconds = t.expected_duration_seconds;
                r.memory_limit = t.memory_limit;
                if (r.task_type.empty()) r.task_type = t.task_type;
                t = std::move(r);
            } else if (r.key.starts_with("job/") && !r.job_name.empty() && !group_index_.count(r.job_name)) {
                r.inventory_index.reset();
                if (auto it = first_of_type_.find(r.task_type); it != first_of_type_.end()) {
                    r.expected_duration_seconds = ctx_.task_inventory[it->second].expected_duration_seconds;
                    r.memory_limit = ctx_.task_inventory[it->second].memory_limit;
                }
                slot = tasks_.size();
                tasks_.push_back(std::move(r));
            }
            if (!slot) continue;
            auto& t = tasks_[*slot];
            if (!t.job_name.empty()) {
                group_index_[t.job_name] = *slot;
                binder_.restore(t.job_name, t.inventory_index);
            }
            for (auto& a : t.pods) pod_index_[a.name] = *slot;
            if (t.job_seen) jobs_visible_ = true;
            note_engine_key(*slot);
        }
        orphans_.clear();
        rebuild_orphans_ = true;
        // counts and phases from the records
        counts_ = {};
        observed_ = 0;
        running_retries_ = 0;
        std::map<std::string, PhaseState> fresh;
        for (auto& [type, ph] : phases_) {
            auto& f = fresh[type];
            f.task_type = type;
            f.dag_order = ph.dag_order;
        }
        phases_ = std::move(fresh);
        for (auto& t : tasks_) {
            assign_expectation(t); // chosen again with the current baselines
            counts_.add(t.status, 1);
            if (t.observed) ++observed_;
            if (running_retry(t)) ++running_retries_;
            auto& ph = phase_for(t.task_type);
            bool inv = t.inventory_index.has_value();
            if (inv) ++ph.inventory_total;
            ++ph.total;
            adjust_phase(ph, t.status, +1, inv);
            if (t.status != TaskStatus::pending) {
                ph.started = true;
                auto at = t.started_at ? t.started_at : t.first_seen;
                if (at && (!ph.started_at || *at < *ph.started_at)) ph.started_at = at;
            }
        }
        for (auto& [type, ph] : phases_)
            if (phase_done(ph)) {
                ph.completed = true;
                for (auto& t : tasks_)
                    if (t.task_type == type && t.finished_at && (!ph.completed_at || *t.finished_at > *ph.completed_at))
                        ph.completed_at = t.finished_at;
            }
    }

    /// How long a task whose pods were all lost, and whose Job was never seen, waits with the task feeds current
    /// before it is decided as if its Job had been seen deleted (the rules above).
    static constexpr std::chrono::seconds orphan_grace{5};

    /// Decides the tasks whose pods were all lost while their Job was never seen, once `orphan_grace` has passed
    /// with the task feeds current (call on every clock tick). Returns what changed.
    std::vector<TaskChange> sweep(Timestamp now) {
        std::vector<TaskChange> out;
        if (rebuild_orphans_) { // after restore_tasks(): the orphans among the restored records, from now
            rebuild_orphans_ = false;
            for (std::size_t i = 0; i < tasks_.size(); ++i) {
                const auto& t = tasks_[i];
                bool lost_only = !t.pods.empty() && !t.job_seen && !t.finished();
                for (auto& a : t.pods) lost_only = lost_only && a.deleted && phase_rank(a.phase) < 3;
                if (lost_only) orphans_.emplace(i, now);
            }
        }
        if (orphans_.empty() || !jobs_visible_ || tasks_stale()) return out;
        std::vector<std::size_t> due;
        for (auto& [idx, since] : orphans_)
            if (now - since >= orphan_grace) due.push_back(idx);
        for (auto idx : due) {
            auto before = snapshot(tasks_[idx]);
            for (auto& c : finish_change(idx, before, false, now)) out.push_back(c);
        }
        return out;
    }
    /// Tasks waiting for that decision.
    std::size_t orphans() const noexcept { return orphans_.size(); }

    // ------------------------------------------------------------------ queries

    const MonitoringContext& context() const noexcept { return ctx_; }
    const std::vector<TaskRecord>& tasks() const noexcept { return tasks_; }
    const std::map<std::string, PhaseState>& phases() const noexcept { return phases_; }
    const PhaseState* phase(std::string_view type) const {
        auto it = phases_.find(std::string(type));
        return it == phases_.end() ? nullptr : &it->second;
    }
    /// The task a Job or pod name belongs to, or nullptr.
    const TaskRecord* find_task(std::string_view job_or_pod_name) const {
        if (auto it = group_index_.find(job_or_pod_name); it != group_index_.end()) return &tasks_[it->second];
        if (auto it = pod_index_.find(job_or_pod_name); it != pod_index_.end()) return &tasks_[it->second];
        return nullptr;
    }

    int total() const noexcept { return static_cast<int>(tasks_.size()); }
    int inventory_total() const noexcept { return static_cast<int>(ctx_.task_inventory.size()); }
    int completed() const noexcept { return counts_.succeeded; }
    int failed() const noexcept { return counts_.failed; }
    int running() const noexcept { return counts_.running; }
    int pending() const noexcept { return counts_.pending; }
    /// Tasks whose objects vanished without an end seen (TaskStatus::vanished: finished, outcome unknown).
    int vanished() const noexcept { return counts_.vanished; }
    /// Tasks not finished yet (pending or running).
    int unfinished() const noexcept { return counts_.pending + counts_.running; }
    /// Tasks observed on the cluster.
    int observed() const noexcept { return observed_; }
    /// Running tasks on a later attempt (more than one pod seen), kept as tasks change (for health_score).
    int running_retries() const noexcept { return running_retries_; }

    /// What the driver last said about its feeds. Detectors must not judge task states while
    /// tasks_stale(): a watch that is down or not yet resynced leaves finished tasks looking as running.
    const FeedHealth& feed_health() const noexcept { return feed_health_; }
    bool tasks_stale() const noexcept { return feed_health_.known && !feed_health_.tasks_fresh; }
    void set_feed_health(FeedHealth h) { feed_health_ = std::move(h); }

    /// Baselines learned from past runs (baselines.hpp): every task's expectation is chosen again with them.
    void set_baselines(Baselines b, BaselineOptions o) {
        baselines_ = std::move(b);
        baseline_options_ = o;
        for (auto& t : tasks_) assign_expectation(t);
    }
    const Baselines& baselines() const noexcept { return baselines_; }

    /// The engine pod's current name: the last running engine pod seen, else the context's name.
    const std::string& engine_pod_name() const noexcept { return engine_pod_name_; }
    bool engine_pod_running() const noexcept { return engine_pod_running_; }
    /// Objects that were not tasks, per role (engine, helper, unrelated), by distinct name.
    int ignored(ObjectRole role) const {
        int n = 0;
        for (auto& [name, r] : ignored_)
            if (r == role) ++n;
        return n;
    }

private:
    struct Snapshot {
        TaskStatus status;
        bool oom;
        bool retry; ///< running_retry(t)
    };
    struct Counts {
        int pending = 0, running = 0, succeeded = 0, failed = 0, vanished = 0;
        void add(TaskStatus s, int d) {
            switch (s) {
            case TaskStatus::pending: pending += d; break;
            case TaskStatus::running: running += d; break;
            case TaskStatus::succeeded: succeeded += d; break;
            case TaskStatus::failed: failed += d; break;
            case TaskStatus::vanished: vanished += d; break;
            }
        }
    };

    static Snapshot snapshot(const TaskRecord& t) { return {t.status, t.oom_killed, running_retry(t)}; }
    static bool running_retry(const TaskRecord& t) noexcept { return t.status == TaskStatus::running && t.attempts > 1; }

    void assign_expectation(TaskRecord& t) const {
        t.expectation = choose_expectation(t.expected_duration_seconds, baselines_, t.task_type, baseline_options_);
    }

    PhaseState& phase_for(const std::string& type) {
        auto& ph = phases_[type];
        ph.task_type = type;
        return ph;
    }

    void note_non_task(ObjectRole role, const std::string& name) {
        if (ignored_.size() < 10'000) ignored_[name] = role;
    }

    std::size_t task_for(const MatchDecision& d, Timestamp now, bool& is_new) {
        if (auto it = group_index_.find(d.group); it != group_index_.end()) return it->second;
        auto b = binder_.bind(d);
        std::size_t idx;
        if (b.inventory_index) {
            idx = *b.inventory_index;
            auto& t = tasks_[idx];
            if (t.task_type.empty() && !d.task_type.empty()) {
                // an inventory entry without a type takes the type its Job name reveals
                move_between_types(t, t.task_type, d.task_type, /*inventory*/ true);
                t.task_type = d.task_type;
            }
            if (d.proc_id) t.proc_id = d.proc_id;
            if (!unique_names_[ctx_.task_inventory[idx].name] && t.proc_id)
                t.name = t.task_type + "-" + std::to_string(*t.proc_id);
        } else {
            TaskRecord r;
            r.key = "job/" + d.group;
            r.task_type = d.task_type;
            r.proc_id = d.proc_id;
            r.name = d.proc_id ? d.task_type + "-" + std::to_string(*d.proc_id) : d.group;
            // inherit the expectations of inventory tasks of the same type
            if (auto it = first_of_type_.find(d.task_type); it != first_of_type_.end()) {
                const auto& spec = ctx_.task_inventory[it->second];
                r.expected_duration_seconds = spec.expected_duration_seconds;
                r.memory_limit = spec.memory_limit;
            }
            auto& ph = phase_for(d.task_type);
            ++ph.total;
            ++ph.pending;
            counts_.add(TaskStatus::pending, 1);
            idx = tasks_.size();
            tasks_.push_back(std::move(r));
        }
        group_index_[d.group] = idx;
        note_engine_key(idx);
        auto& t = tasks_[idx];
        assign_expectation(t); // its type may be known only now
        if (!t.observed) {
            t.observed = true;
            t.first_seen = now;
            ++observed_;
            is_new = true;
        }
        return idx;
    }

    void move_between_types(const TaskRecord& t, const std::string& from, const std::string& to, bool inventory) {
        auto& a = phase_for(from);
        auto& b = phase_for(to);
        if (inventory) {
            --a.inventory_total;
            ++b.inventory_total;
        }
        --a.total;
        ++b.total;
        adjust_phase(a, t.status, -1, inventory);
        adjust_phase(b, t.status, +1, inventory);
    }

    static void adjust_phase(PhaseState& ph, TaskStatus s, int d, bool inventory) {
        switch (s) {
        case TaskStatus::pending: ph.pending += d; break;
        case TaskStatus::running: ph.running += d; break;
        case TaskStatus::succeeded:
            ph.succeeded += d;
            if (inventory) ph.inventory_succeeded += d;
            break;
        case TaskStatus::failed: ph.failed += d; break;
        case TaskStatus::vanished:
            ph.vanished += d;
            if (inventory) ph.inventory_vanished += d;
            break;
        }
    }

    /// Every inventory task of the phase has ended, succeeded or vanished.
    static bool phase_done(const PhaseState& ph) noexcept {
        return ph.inventory_total > 0 && ph.inventory_succeeded + ph.inventory_vanished >= ph.inventory_total;
    }

    /// Indexes a task by (type, procId) for the engine's lines.
    void note_engine_key(std::size_t idx) {
        const auto& t = tasks_[idx];
        if (t.proc_id) engine_index_[{type_slug(t.task_type), *t.proc_id}] = idx;
    }

    static AttemptRecord* find_attempt(TaskRecord& t, const std::string& uid, const std::string& name) {
        for (auto& a : t.pods)
            if ((!uid.empty() && a.uid == uid) || (uid.empty() && a.name == name)) return &a;
        return nullptr;
    }

    static int phase_rank(kube::PodPhase p) noexcept {
        switch (p) {
        case kube::PodPhase::unknown: return 0;
        case kube::PodPhase::pending: return 1;
        case kube::PodPhase::running: return 2;
        case kube::PodPhase::succeeded:
        case kube::PodPhase::failed: return 3;
        }
        return 0;
    }

    static void update_attempt(AttemptRecord& a, const kube::Pod& pod, ChangeKind kind, Timestamp now) {
        if (!pod.node_name.empty()) a.node = pod.node_name;
        // the main container: its name, restarts and limits
        if (!pod.containers.empty()) a.container = pod.containers.front().name;
        else if (a.container.empty() && !pod.resources.empty()) a.container = pod.resources.front().name;
        for (auto& c : pod.containers)
            if (c.name == a.container) a.restart_count = std::max(a.restart_count, c.restart_count);
        for (auto& r : pod.resources)
            if (r.name == a.container || pod.resources.size() == 1) {
                if (r.memory_limit_bytes > 0) a.memory_limit_bytes = r.memory_limit_bytes;
                if (r.cpu_limit_millicores > 0) a.cpu_limit_millicores = r.cpu_limit_millicores;
                break;
            }
        // OOM: any container (init or main), current or last state
        auto scan_oom = [&](const std::vector<kube::ContainerStatus>& list) {
            for (auto& c : list)
                for (auto* st : {&c.state, &c.last_state})
                    if (st->kind == kube::ContainerState::Kind::terminated && st->reason == "OOMKilled") {
                        a.oom_killed = true;
                        a.exit_code = st->exit_code;
                        a.failure_reason = "OOMKilled";
                        a.failure_message = c.name + ": OOMKilled (exit code " + std::to_string(st->exit_code) + ")";
                    }
        };
        scan_oom(pod.init_containers);
        scan_oom(pod.containers);
        // start / finish times from the main containers
        for (auto& c : pod.containers) {
            if (c.state.started_at && (!a.started || *c.state.started_at > *a.started || a.phase != kube::PodPhase::running))
                a.started = c.state.started_at;
            if (c.state.finished_at) a.finished = c.state.finished_at;
        }
        if (!a.started && pod.start_time && phase_rank(pod.phase) >= 2) a.started = pod.start_time;
        if (phase_rank(pod.phase) >= phase_rank(a.phase) && !(a.terminal() && !a.deleted)) a.phase = pod.phase;
        if (phase_rank(pod.phase) >= 2 && !a.started) a.started = now;
        if (phase_rank(a.phase) == 3 && !a.finished) a.finished = now;
        // waiting reason of the main container
        a.waiting_reason.clear();
        for (auto& c : pod.containers)
            if (c.state.kind == kube::ContainerState::Kind::waiting && !c.state.reason.empty() &&
                c.state.reason != "ContainerCreating" && c.state.reason != "PodInitializing") {
                a.waiting_reason = c.state.reason;
                break;
            }
        if (a.phase == kube::PodPhase::failed && !a.oom_killed && a.failure_reason.empty()) {
            if (!pod.reason.empty()) {
                a.failure_reason = pod.reason;
                a.failure_message = pod.message;
            } else {
                for (auto* list : {&pod.init_containers, &pod.containers})
                    for (auto& c : *list)
                        if (a.failure_reason.empty() && c.state.kind == kube::ContainerState::Kind::terminated &&
                            c.state.exit_code != 0) {
                            a.failure_reason = c.state.reason.empty() ? "Error" : c.state.reason;
                            a.exit_code = c.state.exit_code;
                            a.failure_message = c.name + ": " + a.failure_reason + " (exit code " +
                                                std::to_string(c.state.exit_code) + ")";
                        }
                if (a.failure_reason.empty()) a.failure_reason = "Failed";
            }
        }
        if (kind == ChangeKind::deleted && !a.deleted) {
            if (phase_rank(a.phase) < 3) {
                a.failure_reason = a.failure_reason.empty() ? "Deleted" : a.failure_reason;
                if (a.failure_message.empty()) a.failure_message = "the pod was deleted before it finished";
                if (!a.finished) a.finished = now;
            }
            a.deleted = true;
        }
    }

    std::vector<TaskChange> finish_change(std::size_t idx, Snapshot before, bool is_new, Timestamp now) {
        auto& t = tasks_[idx];
        recompute(t, now);
        TaskChange ch;
        ch.index = idx;
        ch.before = before.status;
        ch.after = t.status;
        ch.first_observation = is_new;
        ch.oom_detected = t.oom_killed && !before.oom;
        running_retries_ += static_cast<int>(running_retry(t)) - static_cast<int>(before.retry);
        auto& ph = phase_for(t.task_type);
        if (ch.before != ch.after) {
            counts_.add(ch.before, -1);
            counts_.add(ch.after, +1);
            bool inv = t.inventory_index.has_value();
            adjust_phase(ph, ch.before, -1, inv);
            adjust_phase(ph, ch.after, +1, inv);
        }
        if (!ph.started && t.status != TaskStatus::pending) {
            ph.started = true;
            ph.started_at = t.started_at ? t.started_at : std::optional<Timestamp>(now);
            ch.phase_started = true;
        }
        if (!ph.completed && phase_done(ph)) {
            ph.completed = true;
            ph.completed_at = now;
            ch.phase_completed = true;
        }
        if (!is_new && !ch.status_changed() && !ch.oom_detected && !ch.phase_started && !ch.phase_completed) return {};
        return {ch};
    }

    void recompute(TaskRecord& t, Timestamp now) {
        // derived details
        const AttemptRecord* newest = nullptr;
        bool any_succeeded = false, any_active = false, any_running = false, any_known = false, all_failed = true;
        bool all_deleted = true; // every attempt is gone from the cluster
        std::optional<Timestamp> latest_start, success_finish, failure_finish;
        for (auto& a : t.pods) {
            if (!newest || (a.created && newest->created && *a.created > *newest->created) || (!newest->created && a.created))
                newest = &a;
            if (a.oom_killed && !t.oom_killed) {
                t.oom_killed = true;
                t.oom_pod = a.name;
            }
            if (a.started && (!latest_start || *a.started > *latest_start)) latest_start = a.started;
            if (!a.deleted) all_deleted = false;
            // a pod deleted before it finished is "lost": its outcome is unknown (evicted from a lost node, or
            // finished and garbage-collected while the watch was away); it neither fails nor keeps the task active
            bool lost = a.deleted && phase_rank(a.phase) < 3;
            if (lost) {
                t.last_failure_reason = a.failure_reason;
                t.last_failure_message = a.failure_message;
                continue;
            }
            any_known = true;
            if (a.phase == kube::PodPhase::succeeded) {
                any_succeeded = true;
                success_finish = a.finished;
                all_failed = false;
            } else if (a.phase == kube::PodPhase::failed) {
                if (!a.failure_reason.empty()) {
                    t.last_failure_reason = a.failure_reason;
                    t.last_failure_message = a.failure_message;
                    if (a.exit_code) t.last_exit_code = a.exit_code;
                }
                if (!failure_finish || (a.finished && *a.finished > *failure_finish)) failure_finish = a.finished;
            } else {
                all_failed = false;
                any_active = true;
                if (a.phase == kube::PodPhase::running) any_running = true;
            }
        }
        t.waiting_reason = newest ? newest->waiting_reason : std::string();
        if (latest_start) t.started_at = latest_start;

        // Nothing of it is left on the cluster: its Job was seen deleted and so was every pod of it. (A pod lost
        // while its Job was never seen is a lost attempt: the Job, once seen, or a replacement says more; when
        // neither comes, it is an orphan, decided by the engine's log at once or by sweep() after orphan_grace.)
        const bool nothing_left = all_deleted && t.job_seen && t.job_deleted;
        const auto idx = static_cast<std::size_t>(&t - tasks_.data());
        const bool orphan = !t.pods.empty() && all_deleted && !any_known && !t.job_seen;
        bool orphan_due = false;
        if (orphan) {
            auto since = orphans_.emplace(idx, now).first->second;
            orphan_due = t.engine_outcome != EngineOutcome::none ||
                         (jobs_visible_ && !tasks_stale() && now - since >= orphan_grace);
        }

        TaskStatus s;
        if (t.status == TaskStatus::succeeded || any_succeeded || t.job_complete) s = TaskStatus::succeeded;
        else if (t.job_failed) s = TaskStatus::failed;
        else if (any_running) s = TaskStatus::running;
        else if (any_active) s = TaskStatus::pending;
        else if (nothing_left || orphan_due) s = ended_unseen(t);
        else if (!t.job_seen && t.pods.empty() && t.engine_outcome != EngineOutcome::none)
            s = ended_unseen(t); // nothing of it was ever seen: the engine's word is all there is
        else if (any_known && all_failed) s = TaskStatus::failed; // the Job may still retry: a new pod revives it
        else if (t.job_seen && !t.job_deleted && t.job_active > 0) s = TaskStatus::running;
        else s = t.status; // nothing new decides: keep what was known

        if (s == TaskStatus::running && !t.started_at) t.started_at = t.job_start ? t.job_start : std::optional<Timestamp>(now);
        if ((s == TaskStatus::succeeded || s == TaskStatus::failed) && t.status != s) {
            if (s == TaskStatus::succeeded) t.finished_at = success_finish ? success_finish : t.job_completion ? t.job_completion : now;
            else t.finished_at = failure_finish ? failure_finish : now;
            if (!t.started_at) t.started_at = t.job_start; // finished between two observations
        }
        if (s == TaskStatus::vanished && t.status != s) t.finished_at = now; // when it was learnt
        if (s == TaskStatus::running || s == TaskStatus::pending) t.finished_at.reset();
        t.status = s;
        if (!orphan || t.finished()) orphans_.erase(idx);
    }

    /// The status of a task of which nothing is left on the cluster and no end was seen: the engine's last word,
    /// else the Job's last known succeeded count, else vanished (outcome unknown: an earlier failed attempt does not
    /// decide, a retry may have succeeded unseen).
    static TaskStatus ended_unseen(const TaskRecord& t) noexcept {
        if (t.engine_outcome == EngineOutcome::succeeded) return TaskStatus::succeeded;
        if (t.engine_outcome == EngineOutcome::failed) return TaskStatus::failed;
        if (t.job_succeeded > 0) return TaskStatus::succeeded;
        return TaskStatus::vanished;
    }

    MonitoringContext ctx_;
    MatchRule rule_;
    TaskBinder binder_;
    std::vector<TaskRecord> tasks_;
    std::map<std::string, PhaseState> phases_;
    detail::EsNameIndex group_index_; // Job (group) name → task
    detail::EsNameIndex pod_index_;   // pod name → task
    std::map<std::pair<std::string, int>, std::size_t> engine_index_; // (type slug, procId) → task
    std::map<std::string, bool> unique_names_;
    std::map<std::string, std::size_t> first_of_type_; // task type → its first inventory entry
    std::map<std::string, ObjectRole> ignored_;
    Counts counts_;
    int observed_ = 0;
    int running_retries_ = 0; ///< running tasks with attempts > 1
    std::string engine_pod_name_;
    bool engine_pod_running_ = false;
    FeedHealth feed_health_{};
    bool jobs_visible_ = false;                  ///< a task's Job was seen: the Job feed delivers this run's Jobs
    std::map<std::size_t, Timestamp> orphans_;  ///< tasks whose pods were all lost, Job never seen → since when
    bool rebuild_orphans_ = false;
    Baselines baselines_;
    BaselineOptions baseline_options_;
};

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_WORKFLOW_STATE_HPP

// Scenario types and the step DSL: what a simulated HyperFlow run is made of (docs/scenarios.md).
//
// A `Scenario` is a list of steps at scenario times (seconds), plus high-level task declarations (type, procId,
// start, duration, outcome) that expand into those steps (timeline.hpp), plus what the monitor is told about the
// run (the MonitoringContext, `context()`). Scenarios are written in C++ with the `step::` factories below, or as
// JSON (json_reader.hpp). `time_scale` maps scenario seconds to wall seconds.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_TYPES_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_TYPES_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>
#include <execution_sentinel/testing/metrics.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::testing {

/// A scenario that cannot be parsed or built; the message names the place ("steps[3].path: expected a string").
class ScenarioError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What one step does. See docs/scenarios.md for the JSON form of each.
enum class StepKind : std::uint8_t {
    create_engine_pod,      ///< the engine Deployment pod, Running (`name`: empty = the scenario's engine name)
    replace_engine_pod,     ///< delete the engine pod, create a new one named `name` (a Deployment restart)
    create_support_objects, ///< redis pod, `nfs-data` and `tabix-extract` Jobs (app=hyperflow, not tasks)
    create_object,          ///< `object` into `resource` as given
    start_task,             ///< create the task's Job if absent, and a new pod (Pending, ContainerCreating)
    run_task,               ///< the task's newest pod Running
    finish_task,            ///< the newest pod terminated with `exit_code`/`reason`; Job counters and conditions follow
    container_waiting,      ///< the newest pod waiting with `reason` (ErrImagePull, ImagePullBackOff …) + events
    unschedulable,          ///< the newest pod PodScheduled=False Unschedulable + FailedScheduling event
    add_event,              ///< an Event about the task's pod/Job or about `resource`/`name`
    write_file,             ///< `content` at `path` in `pod` (empty: the engine pod)
    remove_file,            ///< remove `path` from `pod` (empty: the engine pod)
    append_log,             ///< `lines` to `pod`/`container` (empty: engine pod, container hyperflow; or the task's pod)
    delete_job,             ///< delete the task's Job and its pods
    delete_finished_jobs,   ///< delete every finished task Job and its pods (HyperFlow's ttlSecondsAfterFinished)
    close_watches,          ///< fault: end every open watch
    fail_next,              ///< fault: answer the next `count` requests with `http_status` (+ Retry-After)
    refuse_connections,     ///< fault: refuse connections for `wall_seconds`
    compact,                ///< fault: drop watch history (resumed watches get 410 Expired)
    delay_responses,        ///< fault: delay every response by `wall_milliseconds` (0 ends it)
    raw_watch_line,         ///< fault: send `content` as raw bytes on every open watch
    stall_watches,          ///< fault: stop (`stalled` true) or resume sending watch events
    set_usage,              ///< metrics API: the usage of a task's newest pod (or `pod`) container: `cpu_cores`, `memory_mib`
    metrics_api,            ///< metrics API served, absent (404), forbidden (403) or unavailable (503): `metrics_api`
    evict_task,             ///< the kubelet evicts the newest pod under node pressure (Failed, reason Evicted); Job counts it
    fail_job,               ///< the Job fails with `reason` (DeadlineExceeded, BackoffLimitExceeded): active pods terminated and deleted
    crash_container,        ///< the newest pod's container exits `exit_code` and waits in CrashLoopBackOff (restartCount + 1)
    restart_container,      ///< the crashed container runs again (its log starts afresh; the old one is `previous`)
    lose_node,              ///< the newest pod's node stops responding: Ready False, status.reason NodeLost, NodeNotReady event
    delete_pod,             ///< the newest pod is deleted while running (DisruptionTarget `reason`); the Job counts it failed
    reset_watches,          ///< fault: reset the connection of every open watch (no terminating chunk)
};

/// The JSON name of a step kind ("start_task").
inline std::string_view step_kind_name(StepKind k) noexcept {
    switch (k) {
    case StepKind::create_engine_pod: return "create_engine_pod";
    case StepKind::replace_engine_pod: return "replace_engine_pod";
    case StepKind::create_support_objects: return "create_support_objects";
    case StepKind::create_object: return "create_object";
    case StepKind::start_task: return "start_task";
    case StepKind::run_task: return "run_task";
    case StepKind::finish_task: return "finish_task";
    case StepKind::container_waiting: return "container_waiting";
    case StepKind::unschedulable: return "unschedulable";
    case StepKind::add_event: return "add_event";
    case StepKind::write_file: return "write_file";
    case StepKind::remove_file: return "remove_file";
    case StepKind::append_log: return "append_log";
    case StepKind::delete_job: return "delete_job";
    case StepKind::delete_finished_jobs: return "delete_finished_jobs";
    case StepKind::close_watches: return "close_watches";
    case StepKind::fail_next: return "fail_next";
    case StepKind::refuse_connections: return "refuse_connections";
    case StepKind::compact: return "compact";
    case StepKind::delay_responses: return "delay_responses";
    case StepKind::raw_watch_line: return "raw_watch_line";
    case StepKind::stall_watches: return "stall_watches";
    case StepKind::set_usage: return "set_usage";
    case StepKind::metrics_api: return "metrics_api";
    case StepKind::evict_task: return "evict_task";
    case StepKind::fail_job: return "fail_job";
    case StepKind::crash_container: return "crash_container";
    case StepKind::restart_container: return "restart_container";
    case StepKind::lose_node: return "lose_node";
    case StepKind::delete_pod: return "delete_pod";
    case StepKind::reset_watches: return "reset_watches";
    }
    return "unknown";
}

/// One timeline step. Only the fields its kind uses matter (see StepKind).
struct Step {
    double at = 0;  ///< scenario seconds from the start
    StepKind kind = StepKind::append_log;
    std::string origin; ///< where it came from, for messages ("steps[3]", "tasks[2]", "completion")

    // tasks
    std::string task;          ///< task id
    std::string task_type;     ///< start_task: e.g. "individuals_merge"
    int proc_id = 0;           ///< start_task
    int firing_id = 1;         ///< start_task
    int backoff_limit = 6;     ///< start_task: spec.backoffLimit
    std::string cpu_limit;     ///< start_task: container limit (HyperFlow sets none)
    std::string memory_limit;  ///< start_task
    std::optional<int> active_deadline_seconds; ///< start_task: the Job's spec.activeDeadlineSeconds (wall seconds)
    std::string restart_policy = "Never";       ///< start_task: the pod template's restartPolicy (Never, OnFailure)
    bool schedule = true;      ///< start_task: the scheduler binds the new pod (false: it stays unscheduled)
    int exit_code = 0;         ///< finish_task, crash_container
    std::string reason;        ///< finish_task (terminated.reason), container_waiting, add_event, fail_job, delete_pod
    std::string message;       ///< finish_task, container_waiting, unschedulable, add_event, evict_task, fail_job, lose_node

    // objects, files, logs, events
    std::string name;          ///< engine pod name; add_event target name
    std::string resource;      ///< create_object, add_event ("pods", "jobs")
    boost::json::object object;///< create_object
    std::string pod;           ///< write_file, remove_file, append_log (empty: engine pod)
    std::string container;     ///< append_log, set_usage
    std::string path;          ///< write_file, remove_file
    std::string content;       ///< write_file, raw_watch_line
    std::vector<std::string> lines; ///< append_log
    std::string event_type = "Normal"; ///< add_event: Normal or Warning
    int count = 1;             ///< add_event: count; fail_next: number of requests
    bool optional_target = false; ///< skip silently when the target pod does not exist (engine log lines)

    // faults
    int http_status = 500;            ///< fail_next
    std::optional<int> retry_after;   ///< fail_next: Retry-After seconds
    double wall_seconds = 0;          ///< refuse_connections; stall_watches/delay_responses: how long (0 = until changed)
    double wall_milliseconds = 0;     ///< delay_responses
    bool stalled = true;              ///< stall_watches

    // metrics API
    std::optional<double> cpu_cores;  ///< set_usage: CPU in cores (0.25 = "250m"); unset: unchanged
    std::optional<double> memory_mib; ///< set_usage: memory working set in MiB; unset: unchanged
    MetricsApi metrics_api = MetricsApi::available; ///< metrics_api
};

/// How a declared task ends.
enum class TaskOutcome : std::uint8_t {
    succeed,            ///< pod Succeeded (Completed, exit 0), Job Complete
    fail,               ///< container exits `exit_code` (reason Error), pod Failed; retries; Job Failed if exhausted
    oom,                ///< container OOMKilled (137), pod Failed; retries; Job Failed if exhausted
    script_error,       ///< the task script fails but the pod Succeeds (HyperFlow's usual shape); engine logs it
    running,            ///< starts and never ends
    image_pull_failure, ///< ErrImagePull, then ImagePullBackOff, forever
    unschedulable,      ///< Pending, PodScheduled=False Unschedulable, forever
    never_started,      ///< in the inventory only: its Job is never created
    evicted,            ///< the kubelet evicts the pod under memory pressure (Failed, Evicted); retries like `fail`
    deadline_exceeded,  ///< the Job passes spec.activeDeadlineSeconds: Job Failed DeadlineExceeded, its pod terminated
    crash_loop,         ///< restartPolicy OnFailure: the container crashes and restarts (CrashLoopBackOff, BackOff events)
    container_waiting,  ///< the container never starts: waiting `waiting_reason` (CreateContainerConfigError …), forever
    node_lost,          ///< the pod's node stops responding (NodeLost), the pod is deleted later; retries like `fail`
    completion_lost,    ///< a hang: the pod Succeeds but the engine never hears of it (no engine log line)
};

inline std::string_view task_outcome_name(TaskOutcome o) noexcept {
    switch (o) {
    case TaskOutcome::succeed: return "succeed";
    case TaskOutcome::fail: return "fail";
    case TaskOutcome::oom: return "oom";
    case TaskOutcome::script_error: return "script_error";
    case TaskOutcome::running: return "running";
    case TaskOutcome::image_pull_failure: return "image_pull_failure";
    case TaskOutcome::unschedulable: return "unschedulable";
    case TaskOutcome::never_started: return "never_started";
    case TaskOutcome::evicted: return "evicted";
    case TaskOutcome::deadline_exceeded: return "deadline_exceeded";
    case TaskOutcome::crash_loop: return "crash_loop";
    case TaskOutcome::container_waiting: return "container_waiting";
    case TaskOutcome::node_lost: return "node_lost";
    case TaskOutcome::completion_lost: return "completion_lost";
    }
    return "unknown";
}

/// A task declared at a high level; `Scenario::timeline()` expands it into steps.
struct TaskDecl {
    std::string id;            ///< empty: "<type>-<procId>" (+ "-<firingId>" when not 1)
    std::string name;          ///< inventory name; empty: the type (real workflow.json names processes by type)
    std::string type;          ///< "individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency" …
    int proc_id = 0;           ///< 1-based process position in workflow.json
    int firing_id = 1;
    double start = 0;          ///< scenario seconds: the engine submits the Job
    double pending = 5;        ///< scenario seconds from submission to the container running (Job start overhead)
    double duration = 10;      ///< scenario seconds the container runs (per attempt)
    TaskOutcome outcome = TaskOutcome::succeed;
    int exit_code = 1;         ///< fail, script_error
    int failed_attempts = 1;   ///< fail, oom: pods failing in a row; more than backoff_limit ⇒ Job Failed
    int backoff_limit = 6;
    std::string memory_limit;  ///< inventory and container limit ("" = none)
    std::string cpu_limit;
    std::optional<double> expected_duration; ///< inventory, scenario seconds; default: the type's expected duration
    bool in_inventory = true;
    std::string message;       ///< unschedulable, image_pull_failure, container_waiting, evicted: the cluster's message
    std::string waiting_reason = "CreateContainerConfigError"; ///< container_waiting
    std::optional<double> active_deadline; ///< the Job's activeDeadlineSeconds, scenario seconds from `start`
                                           ///< (deadline_exceeded: default pending + duration)
    double delete_after = 300; ///< node_lost: scenario seconds from NodeLost to the pod's deletion (toleration)
    std::vector<std::string> log_tail; ///< last lines of the task log before each failure (empty: realistic defaults)
    // Usage over time for the metrics API, sampled every Scenario::metrics_period while the container runs.
    std::optional<double> memory_start_mib; ///< working set when the container starts (default: memory_peak_mib)
    std::optional<double> memory_peak_mib;  ///< reached linearly at `memory_peak_at`, then flat
    std::optional<double> memory_peak_at;   ///< scenario seconds into the run (default: `duration`)
    std::optional<double> cpu_cores;        ///< CPU usage while running, in cores

    bool has_usage() const { return memory_peak_mib || memory_start_mib || cpu_cores; }

    std::string effective_id() const {
        if (!id.empty()) return id;
        std::string s = type + "-" + std::to_string(proc_id);
        if (firing_id != 1) s += "-" + std::to_string(firing_id);
        return s;
    }
};

/// Factory functions for steps, for scenarios written in C++.
namespace step {
inline Step make(double at, StepKind k) {
    Step s;
    s.at = at;
    s.kind = k;
    return s;
}
inline Step create_engine_pod(double at, std::string name = {}) {
    auto s = make(at, StepKind::create_engine_pod);
    s.name = std::move(name);
    return s;
}
inline Step replace_engine_pod(double at, std::string new_name = {}) {
    auto s = make(at, StepKind::replace_engine_pod);
    s.name = std::move(new_name);
    return s;
}
inline Step create_support_objects(double at) { return make(at, StepKind::create_support_objects); }
inline Step create_object(double at, std::string resource, boost::json::object object) {
    auto s = make(at, StepKind::create_object);
    s.resource = std::move(resource);
    s.object = std::move(object);
    return s;
}
inline Step start_task(double at, std::string task, std::string type, int proc_id, int firing_id = 1,
                       int backoff_limit = 6) {
    auto s = make(at, StepKind::start_task);
    s.task = std::move(task);
    s.task_type = std::move(type);
    s.proc_id = proc_id;
    s.firing_id = firing_id;
    s.backoff_limit = backoff_limit;
    return s;
}
inline Step run_task(double at, std::string task) {
    auto s = make(at, StepKind::run_task);
    s.task = std::move(task);
    return s;
}
inline Step finish_task(double at, std::string task, int exit_code, std::string reason = {}, std::string message = {}) {
    auto s = make(at, StepKind::finish_task);
    s.task = std::move(task);
    s.exit_code = exit_code;
    s.reason = std::move(reason);
    s.message = std::move(message);
    return s;
}
inline Step succeed_task(double at, std::string task) { return finish_task(at, std::move(task), 0, "Completed"); }
inline Step fail_task(double at, std::string task, int exit_code = 1) {
    return finish_task(at, std::move(task), exit_code, "Error");
}
inline Step oom_kill(double at, std::string task) { return finish_task(at, std::move(task), 137, "OOMKilled"); }
inline Step container_waiting(double at, std::string task, std::string reason, std::string message = {}) {
    auto s = make(at, StepKind::container_waiting);
    s.task = std::move(task);
    s.reason = std::move(reason);
    s.message = std::move(message);
    return s;
}
inline Step unschedulable(double at, std::string task, std::string message = {}) {
    auto s = make(at, StepKind::unschedulable);
    s.task = std::move(task);
    s.message = std::move(message);
    return s;
}
/// An event about the task's newest pod (resource "pods") or its Job (resource "jobs").
inline Step add_task_event(double at, std::string task, std::string reason, std::string message,
                           std::string type = "Normal", std::string resource = "pods") {
    auto s = make(at, StepKind::add_event);
    s.task = std::move(task);
    s.resource = std::move(resource);
    s.reason = std::move(reason);
    s.message = std::move(message);
    s.event_type = std::move(type);
    return s;
}
/// An event about the object `resource`/`name`.
inline Step add_event(double at, std::string resource, std::string name, std::string reason, std::string message,
                      std::string type = "Normal", int count = 1) {
    auto s = make(at, StepKind::add_event);
    s.resource = std::move(resource);
    s.name = std::move(name);
    s.reason = std::move(reason);
    s.message = std::move(message);
    s.event_type = std::move(type);
    s.count = count;
    return s;
}
inline Step write_file(double at, std::string path, std::string content, std::string pod = {}) {
    auto s = make(at, StepKind::write_file);
    s.path = std::move(path);
    s.content = std::move(content);
    s.pod = std::move(pod);
    return s;
}
inline Step remove_file(double at, std::string path, std::string pod = {}) {
    auto s = make(at, StepKind::remove_file);
    s.path = std::move(path);
    s.pod = std::move(pod);
    return s;
}
/// Log lines for the engine pod's `hyperflow` container (pod and container empty), or for `pod`/`container`.
inline Step append_log(double at, std::vector<std::string> lines, std::string pod = {}, std::string container = {}) {
    auto s = make(at, StepKind::append_log);
    s.lines = std::move(lines);
    s.pod = std::move(pod);
    s.container = std::move(container);
    return s;
}
/// Log lines for the task's newest pod, container `test`.
inline Step append_task_log(double at, std::string task, std::vector<std::string> lines) {
    auto s = make(at, StepKind::append_log);
    s.task = std::move(task);
    s.lines = std::move(lines);
    return s;
}
inline Step delete_job(double at, std::string task) {
    auto s = make(at, StepKind::delete_job);
    s.task = std::move(task);
    return s;
}
inline Step delete_finished_jobs(double at) { return make(at, StepKind::delete_finished_jobs); }
inline Step close_watches(double at) { return make(at, StepKind::close_watches); }
inline Step reset_watches(double at) { return make(at, StepKind::reset_watches); }
inline Step fail_next(double at, int count, int http_status, std::optional<int> retry_after = std::nullopt) {
    auto s = make(at, StepKind::fail_next);
    s.count = count;
    s.http_status = http_status;
    s.retry_after = retry_after;
    return s;
}
inline Step refuse_connections(double at, double wall_seconds) {
    auto s = make(at, StepKind::refuse_connections);
    s.wall_seconds = wall_seconds;
    return s;
}
inline Step compact(double at) { return make(at, StepKind::compact); }
inline Step delay_responses(double at, double wall_milliseconds, double for_wall_seconds = 0) {
    auto s = make(at, StepKind::delay_responses);
    s.wall_milliseconds = wall_milliseconds;
    s.wall_seconds = for_wall_seconds;
    return s;
}
inline Step raw_watch_line(double at, std::string bytes) {
    auto s = make(at, StepKind::raw_watch_line);
    s.content = std::move(bytes);
    return s;
}
inline Step stall_watches(double at, bool stalled = true, double for_wall_seconds = 0) {
    auto s = make(at, StepKind::stall_watches);
    s.stalled = stalled;
    s.wall_seconds = for_wall_seconds;
    return s;
}
/// The usage the metrics API reports for the task's newest pod, container `test` (unset values unchanged).
inline Step set_usage(double at, std::string task, std::optional<double> cpu_cores, std::optional<double> memory_mib) {
    auto s = make(at, StepKind::set_usage);
    s.task = std::move(task);
    s.cpu_cores = cpu_cores;
    s.memory_mib = memory_mib;
    return s;
}
/// The usage of `pod`'s `container` (e.g. the engine pod's `hyperflow`).
inline Step set_pod_usage(double at, std::string pod, std::string container, std::optional<double> cpu_cores,
                          std::optional<double> memory_mib) {
    auto s = make(at, StepKind::set_usage);
    s.pod = std::move(pod);
    s.container = std::move(container);
    s.cpu_cores = cpu_cores;
    s.memory_mib = memory_mib;
    return s;
}
inline Step metrics_api(double at, MetricsApi mode) {
    auto s = make(at, StepKind::metrics_api);
    s.metrics_api = mode;
    return s;
}
/// Node-pressure eviction of the task's newest pod; `message` empty: the kubelet's memory-pressure message.
inline Step evict_task(double at, std::string task, std::string message = {}) {
    auto s = make(at, StepKind::evict_task);
    s.task = std::move(task);
    s.message = std::move(message);
    return s;
}
/// The task's Job fails with `reason` (its active pods are terminated and deleted).
inline Step fail_job(double at, std::string task, std::string reason = "BackoffLimitExceeded", std::string message = {}) {
    auto s = make(at, StepKind::fail_job);
    s.task = std::move(task);
    s.reason = std::move(reason);
    s.message = std::move(message);
    return s;
}
inline Step deadline_exceeded(double at, std::string task) { return fail_job(at, std::move(task), "DeadlineExceeded"); }
inline Step crash_container(double at, std::string task, int exit_code = 1) {
    auto s = make(at, StepKind::crash_container);
    s.task = std::move(task);
    s.exit_code = exit_code;
    s.reason = "Error";
    return s;
}
inline Step restart_container(double at, std::string task) {
    auto s = make(at, StepKind::restart_container);
    s.task = std::move(task);
    return s;
}
inline Step lose_node(double at, std::string task, std::string message = {}) {
    auto s = make(at, StepKind::lose_node);
    s.task = std::move(task);
    s.message = std::move(message);
    return s;
}
/// The task's newest pod deleted while running; `reason` is its DisruptionTarget reason.
inline Step delete_pod(double at, std::string task, std::string reason = "DeletionByTaintManager", std::string message = {}) {
    auto s = make(at, StepKind::delete_pod);
    s.task = std::move(task);
    s.reason = std::move(reason);
    s.message = std::move(message);
    return s;
}
} // namespace step

/// The conductor's 1000genome order (wc:phases/monitoring.py): individuals 0 … frequency 4; other types 99.
inline int default_dag_order(std::string_view type) noexcept {
    if (type == "individuals") return 0;
    if (type == "individuals_merge") return 1;
    if (type == "sifting") return 2;
    if (type == "mutation_overlap") return 3;
    if (type == "frequency") return 4;
    return 99;
}

/// The conductor's 1000genome dag_structure (type → upstream types; linear, sifting after the merge).
inline std::map<std::string, std::vector<std::string>> default_dag_structure() {
    return {{"individuals", {}},
            {"individuals_merge", {"individuals"}},
            {"sifting", {"individuals_merge"}},
            {"mutation_overlap", {"sifting"}},
            {"frequency", {"sifting"}}};
}

/// The path of HyperFlow's completion signal, written by the conductor's engine command.
inline constexpr std::string_view completion_signal_path = "/work_dir/.workflow-exit-code";

/// A simulated HyperFlow run: what the cluster shows over time, and what the monitor is told.
class Scenario {
public:
    std::string name = "scenario";
    std::string namespace_name = "default";
    double time_scale = 1.0;        ///< wall seconds per scenario second (> 0)
    std::uint64_t seed = 1;         ///< names of pods, Jobs and uids derive from it
    std::string engine_name;        ///< engine pod name; empty: generated from the seed
    std::optional<double> engine_at;///< create the engine pod at this scenario time (nullopt: only by a step)
    std::optional<double> support_objects_at; ///< create redis, nfs-data, tabix-extract at this time
    std::string engine_pod_selector;///< context field; e.g. "component=hyperflow-engine" when the engine restarts
    int wf_id = 2;                  ///< HyperFlow workflow id in engine log task ids
    std::string hf_id;              ///< HyperFlow engine id; empty: generated from the seed
    std::map<std::string, double> expected_durations; ///< type → expected duration, scenario seconds
    std::optional<std::map<std::string, std::vector<std::string>>> dag_structure; ///< default: conductor's table
    std::map<std::string, int> dag_order; ///< overrides of default_dag_order
    int agglomeration_factor = 1;
    std::string execution_model = "JOB";
    std::optional<double> ttl_seconds_after_finished; ///< delete task Jobs this long after they finish
    std::optional<double> completion_at; ///< write the completion signal at this time
    int completion_exit_code = 0;
    double metrics_period = 15;     ///< scenario seconds between the usage samples of tasks (metrics-server resolution)
    MetricsApi metrics_api = MetricsApi::available; ///< how the cluster serves the metrics API from the start
    std::vector<TaskDecl> tasks;
    std::vector<Step> steps;

    Scenario& add(Step s) {
        steps.push_back(std::move(s));
        return *this;
    }
    Scenario& add_task(TaskDecl t) {
        tasks.push_back(std::move(t));
        return *this;
    }
    /// Write "<exit_code>\n" to the completion signal at `at` (and log the end of the workflow in the engine).
    Scenario& complete_at(double at, int exit_code = 0) {
        completion_at = at;
        completion_exit_code = exit_code;
        return *this;
    }

    /// The engine pod's name (given, or derived from the seed).
    std::string engine_pod_name() const {
        if (!engine_name.empty()) return engine_name;
        NameSource names(seed ^ 0xE9617E5Bull);
        std::string hash = names.replica_set_hash();
        return testing::engine_pod_name(hash, names.pod_suffix());
    }
    /// The HyperFlow engine id used in engine-log task ids.
    std::string engine_hf_id() const {
        if (!hf_id.empty()) return hf_id;
        NameSource names(seed ^ 0x4F1D5EEDull);
        return names.hf_id();
    }

    /// Every step, with task declarations and scenario-level settings expanded, sorted by time (stable: steps at
    /// the same time keep their order). Throws ScenarioError when the scenario is inconsistent.
    std::vector<Step> timeline() const;

    /// Scenario time of the last step (0 when empty).
    double duration() const {
        auto t = timeline();
        return t.empty() ? 0.0 : t.back().at;
    }

    /// The MonitoringContext the conductor would build for this run (field names as the conductor's models).
    boost::json::object context() const;
    std::string context_json() const { return boost::json::serialize(context()); }

    /// Throws ScenarioError if a field is out of range.
    void validate() const;

    /// Parses the JSON form (docs/scenarios.md). Throws ScenarioError naming the step index and field.
    static Scenario from_json(const boost::json::value& v);
    static Scenario parse(std::string_view text);
    static Scenario from_file(const std::filesystem::path& path);
};

namespace scenario_detail {

/// `s` with one decimal ("12.5").
inline std::string fmt_seconds(double s) {
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.1f", s);
    return buf;
}

/// A task type: 1 to 63 letters, digits, '_' or '-'.
inline bool valid_task_type(std::string_view t) {
    if (t.empty() || t.size() > 63) return false;
    for (char c : t)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

} // namespace scenario_detail

} // namespace execution_sentinel::testing

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/scenario/impl/json_reader.ipp>
#include <execution_sentinel/testing/scenario/impl/timeline.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_TYPES_HPP

// Scenarios: a HyperFlow workflow run played against a FakeCluster over scaled time (../../docs/scenarios.md).
//
// A `Scenario` is a list of steps at scenario times (seconds), plus high-level task declarations (type, procId,
// start, duration, outcome) that expand into those steps, plus what the monitor is told about the run (the
// MonitoringContext, `context()`). `time_scale` maps scenario seconds to wall seconds: with 0.05, a 900 s run plays
// in 45 s. Scenarios are written in C++ or as JSON (`Scenario::parse`); the JSON parser rejects wrong input
// with a `ScenarioError` naming the step and the field.
//
// `BasicScenarioRunner<Cluster>` executes a scenario's timeline against a cluster: on its own thread in real
// (scaled) time (`start`, `wait`, `stop`), or stepped by hand (`run_until`) so tests are deterministic.
// `ScenarioRunner` is the runner for `FakeCluster`. Object timestamps are wall-clock times:
// base + scenario time × time_scale, base being the moment `start()` was called (or the one given).
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_HPP

#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
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
    int exit_code = 0;         ///< finish_task
    std::string reason;        ///< finish_task (terminated.reason), container_waiting, add_event
    std::string message;       ///< finish_task, container_waiting, unschedulable, add_event

    // objects, files, logs, events
    std::string name;          ///< engine pod name; add_event target name
    std::string resource;      ///< create_object, add_event ("pods", "jobs")
    boost::json::object object;///< create_object
    std::string pod;           ///< write_file, remove_file, append_log (empty: engine pod)
    std::string container;     ///< append_log
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

// ================================================================================================ implementation

namespace scenario_detail {

inline std::string fmt_seconds(double s) {
    std::ostringstream o;
    o.precision(1);
    o << std::fixed << s;
    return o.str();
}

/// Reads the fields of one JSON object, tracking the path for messages and rejecting unknown keys.
class Fields {
public:
    Fields(const boost::json::value& v, std::string path) : path_(std::move(path)) {
        if (!v.is_object()) throw ScenarioError(path_ + ": expected an object");
        obj_ = &v.as_object();
    }
    const std::string& path() const { return path_; }
    std::string at(std::string_view key) const { return path_ + "." + std::string(key); }
    const boost::json::value* find(std::string_view key) {
        used_.emplace_back(key);
        return obj_->if_contains(key);
    }
    bool has(std::string_view key) const { return obj_->contains(key); }

    std::optional<std::string> opt_string(std::string_view key) {
        auto* v = find(key);
        if (!v) return std::nullopt;
        if (!v->is_string()) throw ScenarioError(at(key) + ": expected a string");
        return std::string(v->get_string());
    }
    std::string string(std::string_view key, std::string fallback = {}) {
        return opt_string(key).value_or(std::move(fallback));
    }
    std::string required_string(std::string_view key) {
        auto s = opt_string(key);
        if (!s) throw ScenarioError(at(key) + ": missing (expected a string)");
        if (s->empty()) throw ScenarioError(at(key) + ": must not be empty");
        return *s;
    }
    std::optional<double> opt_number(std::string_view key) {
        auto* v = find(key);
        if (!v) return std::nullopt;
        double d = 0;
        if (v->is_double()) d = v->get_double();
        else if (v->is_int64()) d = static_cast<double>(v->get_int64());
        else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
        else throw ScenarioError(at(key) + ": expected a number");
        if (!std::isfinite(d)) throw ScenarioError(at(key) + ": expected a finite number");
        return d;
    }
    double number(std::string_view key, double fallback) { return opt_number(key).value_or(fallback); }
    /// A number in [0, 1e9] (times and durations; larger values would overflow clock arithmetic).
    double non_negative(std::string_view key, double fallback) {
        double d = number(key, fallback);
        if (d < 0) throw ScenarioError(at(key) + ": must not be negative");
        if (d > 1e9) throw ScenarioError(at(key) + ": must not exceed 1e9");
        return d;
    }
    std::optional<std::int64_t> opt_integer(std::string_view key, std::int64_t lo, std::int64_t hi) {
        auto* v = find(key);
        if (!v) return std::nullopt;
        std::int64_t i = 0;
        if (v->is_int64()) i = v->get_int64();
        else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(hi)) i = static_cast<std::int64_t>(v->get_uint64());
        else if (v->is_double() && std::floor(v->get_double()) == v->get_double() && std::abs(v->get_double()) < 1e15)
            i = static_cast<std::int64_t>(v->get_double());
        else throw ScenarioError(at(key) + ": expected an integer");
        if (i < lo || i > hi)
            throw ScenarioError(at(key) + ": must be between " + std::to_string(lo) + " and " + std::to_string(hi));
        return i;
    }
    int integer(std::string_view key, int fallback, int lo, int hi) {
        return static_cast<int>(opt_integer(key, lo, hi).value_or(fallback));
    }
    bool boolean(std::string_view key, bool fallback) {
        auto* v = find(key);
        if (!v) return fallback;
        if (!v->is_bool()) throw ScenarioError(at(key) + ": expected true or false");
        return v->get_bool();
    }
    std::vector<std::string> strings(std::string_view key) {
        auto* v = find(key);
        if (!v) return {};
        if (v->is_string()) return {std::string(v->get_string())};
        if (!v->is_array()) throw ScenarioError(at(key) + ": expected an array of strings");
        std::vector<std::string> out;
        std::size_t i = 0;
        for (auto& e : v->as_array()) {
            if (!e.is_string()) throw ScenarioError(at(key) + "[" + std::to_string(i) + "]: expected a string");
            out.emplace_back(e.get_string());
            ++i;
        }
        return out;
    }
    /// Throws on any key that was not read.
    void reject_unknown() const {
        for (auto& kv : *obj_) {
            if (std::find(used_.begin(), used_.end(), std::string_view(kv.key())) == used_.end())
                throw ScenarioError(at(kv.key()) + ": unknown field");
        }
    }

private:
    const boost::json::object* obj_ = nullptr;
    std::string path_;
    std::vector<std::string> used_;
};

inline std::optional<StepKind> step_kind_from(std::string_view s) {
    for (int k = 0; k <= static_cast<int>(StepKind::stall_watches); ++k)
        if (step_kind_name(static_cast<StepKind>(k)) == s) return static_cast<StepKind>(k);
    return std::nullopt;
}

inline std::optional<TaskOutcome> task_outcome_from(std::string_view s) {
    for (int k = 0; k <= static_cast<int>(TaskOutcome::never_started); ++k)
        if (task_outcome_name(static_cast<TaskOutcome>(k)) == s) return static_cast<TaskOutcome>(k);
    return std::nullopt;
}

inline bool valid_task_type(std::string_view t) {
    if (t.empty() || t.size() > 63) return false;
    for (char c : t)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

inline Step parse_step(const boost::json::value& v, std::size_t index) {
    Fields f(v, "steps[" + std::to_string(index) + "]");
    Step s;
    s.origin = f.path();
    s.at = f.non_negative("at", 0);
    std::string action = f.required_string("action");
    // Convenience names that are finish_task / container_waiting with fixed fields.
    std::optional<StepKind> kind = step_kind_from(action);
    if (action == "succeed_task" || action == "fail_task" || action == "oom_kill") kind = StepKind::finish_task;
    if (action == "image_pull_failure") kind = StepKind::container_waiting;
    if (!kind) throw ScenarioError(f.at("action") + ": unknown action \"" + action + "\"");
    s.kind = *kind;
    auto need_task = [&] { s.task = f.required_string("task"); };
    switch (s.kind) {
    case StepKind::create_engine_pod:
    case StepKind::replace_engine_pod: s.name = f.string("name"); break;
    case StepKind::create_support_objects:
    case StepKind::delete_finished_jobs:
    case StepKind::close_watches:
    case StepKind::compact: break;
    case StepKind::create_object: {
        s.resource = f.required_string("resource");
        auto* o = f.find("object");
        if (!o || !o->is_object()) throw ScenarioError(f.at("object") + ": expected an object");
        s.object = o->as_object();
        break;
    }
    case StepKind::start_task:
        need_task();
        s.task_type = f.string("type");
        if (!s.task_type.empty() && !valid_task_type(s.task_type))
            throw ScenarioError(f.at("type") + ": expected letters, digits, '_' or '-'");
        s.proc_id = f.integer("proc_id", 0, 0, 1000000000);
        s.firing_id = f.integer("firing_id", 1, 0, 1000000000);
        s.backoff_limit = f.integer("backoff_limit", 6, 0, 1000);
        s.cpu_limit = f.string("cpu_limit");
        s.memory_limit = f.string("memory_limit");
        break;
    case StepKind::run_task:
    case StepKind::delete_job: need_task(); break;
    case StepKind::finish_task:
        need_task();
        if (action == "succeed_task") {
            s.exit_code = 0;
            s.reason = "Completed";
        } else if (action == "oom_kill") {
            s.exit_code = 137;
            s.reason = "OOMKilled";
        } else if (action == "fail_task") {
            s.exit_code = f.integer("exit_code", 1, 1, 255);
            s.reason = f.string("reason", "Error");
            s.message = f.string("message");
        } else {
            s.exit_code = f.integer("exit_code", 0, 0, 255);
            s.reason = f.string("reason");
            s.message = f.string("message");
        }
        break;
    case StepKind::container_waiting:
        need_task();
        if (action == "image_pull_failure") {
            s.reason = "ErrImagePull";
        } else {
            s.reason = f.required_string("reason");
        }
        s.message = f.string("message");
        break;
    case StepKind::unschedulable:
        need_task();
        s.message = f.string("message");
        break;
    case StepKind::add_event:
        s.task = f.string("task");
        s.resource = f.string("resource", "pods");
        if (s.resource != "pods" && s.resource != "jobs")
            throw ScenarioError(f.at("resource") + ": expected \"pods\" or \"jobs\"");
        s.name = f.string("name");
        if (s.task.empty() && s.name.empty()) throw ScenarioError(f.path() + ": add_event needs \"task\" or \"name\"");
        s.reason = f.required_string("reason");
        s.message = f.string("message");
        s.event_type = f.string("type", "Normal");
        if (s.event_type != "Normal" && s.event_type != "Warning")
            throw ScenarioError(f.at("type") + ": expected \"Normal\" or \"Warning\"");
        s.count = f.integer("count", 1, 1, 1000000);
        break;
    case StepKind::write_file:
        s.pod = f.string("pod");
        s.path = f.required_string("path");
        if (auto c = f.opt_string("content")) s.content = *c;
        else throw ScenarioError(f.at("content") + ": missing (expected a string)");
        break;
    case StepKind::remove_file:
        s.pod = f.string("pod");
        s.path = f.required_string("path");
        break;
    case StepKind::append_log:
        s.task = f.string("task");
        s.pod = f.string("pod");
        s.container = f.string("container");
        s.lines = f.strings("lines");
        if (s.lines.empty()) throw ScenarioError(f.at("lines") + ": expected at least one line");
        break;
    case StepKind::fail_next:
        s.count = f.integer("count", 1, 1, 1000000);
        s.http_status = f.integer("status", 500, 400, 599);
        if (auto r = f.opt_integer("retry_after", 0, 86400)) s.retry_after = static_cast<int>(*r);
        break;
    case StepKind::refuse_connections: s.wall_seconds = f.non_negative("wall_seconds", 1); break;
    case StepKind::delay_responses:
        s.wall_milliseconds = f.non_negative("wall_milliseconds", 0);
        s.wall_seconds = f.non_negative("wall_seconds", 0);
        break;
    case StepKind::raw_watch_line:
        if (auto c = f.opt_string("bytes")) s.content = *c;
        else throw ScenarioError(f.at("bytes") + ": missing (expected a string)");
        break;
    case StepKind::stall_watches:
        s.stalled = f.boolean("stalled", true);
        s.wall_seconds = f.non_negative("wall_seconds", 0);
        break;
    }
    f.reject_unknown();
    return s;
}

inline TaskDecl parse_task(const boost::json::value& v, std::size_t index, const TaskDecl& defaults) {
    Fields f(v, "tasks[" + std::to_string(index) + "]");
    TaskDecl t = defaults;
    t.id = f.string("id");
    t.name = f.string("name");
    t.type = f.required_string("type");
    if (!valid_task_type(t.type)) throw ScenarioError(f.at("type") + ": expected letters, digits, '_' or '-'");
    t.proc_id = f.integer("proc_id", 0, 0, 1000000000);
    if (!f.has("proc_id")) throw ScenarioError(f.at("proc_id") + ": missing (expected an integer)");
    t.firing_id = f.integer("firing_id", 1, 0, 1000000000);
    t.start = f.non_negative("start", 0);
    t.pending = f.non_negative("pending", defaults.pending);
    t.duration = f.non_negative("duration", defaults.duration);
    std::string outcome = f.string("outcome", "succeed");
    auto o = task_outcome_from(outcome);
    if (!o) throw ScenarioError(f.at("outcome") + ": unknown outcome \"" + outcome + "\"");
    t.outcome = *o;
    t.exit_code = f.integer("exit_code", 1, 1, 255);
    t.failed_attempts = f.integer("failed_attempts", 1, 1, 1000);
    t.backoff_limit = f.integer("backoff_limit", defaults.backoff_limit, 0, 1000);
    t.memory_limit = f.string("memory_limit", defaults.memory_limit);
    t.cpu_limit = f.string("cpu_limit", defaults.cpu_limit);
    if (auto e = f.opt_number("expected_duration")) {
        if (*e <= 0) throw ScenarioError(f.at("expected_duration") + ": must be positive");
        t.expected_duration = *e;
    }
    t.in_inventory = f.boolean("in_inventory", true);
    f.reject_unknown();
    return t;
}

/// Kubernetes Job controller pod-replacement backoff: 10 s, 20 s, 40 s … capped at 6 min.
inline double retry_delay(int failures) {
    double d = 10.0;
    for (int i = 1; i < failures && d < 360.0; ++i) d *= 2;
    return std::min(d, 360.0);
}

} // namespace scenario_detail

inline void Scenario::validate() const {
    if (!(time_scale >= 1e-6 && time_scale <= 1e6)) throw ScenarioError("time_scale: must be between 1e-6 and 1e6");
    if (namespace_name.empty()) throw ScenarioError("namespace: must not be empty");
    if (agglomeration_factor < 1) throw ScenarioError("agglomeration_factor: must be at least 1");
    std::map<std::string, std::size_t> ids;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        auto& t = tasks[i];
        std::string where = "tasks[" + std::to_string(i) + "]";
        if (!scenario_detail::valid_task_type(t.type)) throw ScenarioError(where + ".type: invalid task type");
        if (!(t.start >= 0 && t.pending >= 0 && t.duration >= 0 && t.start <= 1e9 && t.pending <= 1e9 &&
              t.duration <= 1e9))
            throw ScenarioError(where + ": start, pending and duration must be between 0 and 1e9");
        auto [it, fresh] = ids.emplace(t.effective_id(), i);
        if (!fresh)
            throw ScenarioError(where + ".id: \"" + t.effective_id() + "\" is already used by tasks[" +
                                std::to_string(it->second) + "]");
    }
    for (std::size_t i = 0; i < steps.size(); ++i)
        if (!(steps[i].at >= 0 && steps[i].at <= 1e9) || !(steps[i].wall_seconds >= 0 && steps[i].wall_seconds <= 1e9) ||
            !(steps[i].wall_milliseconds >= 0 && steps[i].wall_milliseconds <= 1e9))
            throw ScenarioError("steps[" + std::to_string(i) + "]: times must be between 0 and 1e9");
}

inline std::vector<Step> Scenario::timeline() const {
    validate();
    std::vector<Step> out;
    auto push = [&](Step s, std::string origin) {
        if (s.origin.empty()) s.origin = std::move(origin);
        out.push_back(std::move(s));
    };
    if (support_objects_at) push(step::create_support_objects(*support_objects_at), "support_objects");
    if (engine_at) push(step::create_engine_pod(*engine_at, engine_pod_name()), "engine");
    NameSource replacement_names(seed ^ 0x5EEDF00Dull);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        Step s = steps[i];
        if (s.origin.empty()) s.origin = "steps[" + std::to_string(i) + "]";
        if (s.kind == StepKind::create_engine_pod && s.name.empty()) s.name = engine_pod_name();
        if (s.kind == StepKind::replace_engine_pod && s.name.empty()) {
            // A Deployment restart: same pod-template-hash, new suffix.
            std::string base = engine_pod_name();
            s.name = base.substr(0, base.size() - 5) + replacement_names.pod_suffix();
        }
        if (s.kind == StepKind::stall_watches && s.stalled && s.wall_seconds > 0) {
            Step end = s;
            end.stalled = false;
            end.wall_seconds = 0;
            end.at = s.at + s.wall_seconds / time_scale;
            out.push_back(s);
            out.push_back(end);
            continue;
        }
        if (s.kind == StepKind::delay_responses && s.wall_milliseconds > 0 && s.wall_seconds > 0) {
            Step end = s;
            end.wall_milliseconds = 0;
            end.wall_seconds = 0;
            end.at = s.at + s.wall_seconds / time_scale;
            out.push_back(s);
            out.push_back(end);
            continue;
        }
        out.push_back(std::move(s));
    }

    const std::string hf = engine_hf_id();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        const TaskDecl& t = tasks[i];
        if (t.outcome == TaskOutcome::never_started) continue;
        const std::string origin = "tasks[" + std::to_string(i) + "]";
        const std::string id = t.effective_id();
        const std::string tid = task_id(hf, wf_id, t.proc_id, t.firing_id);
        auto engine_log = [&](double at, std::string line) {
            Step s = step::append_log(at, {std::move(line)});
            s.optional_target = true;
            push(std::move(s), origin);
        };
        auto start = [&](double at) {
            Step s = step::start_task(at, id, t.type, t.proc_id, t.firing_id, t.backoff_limit);
            s.cpu_limit = t.cpu_limit;
            s.memory_limit = t.memory_limit;
            push(std::move(s), origin);
        };
        double at = t.start;
        engine_log(at, "[hf] task started: " + t.type + " (" + tid + ")");
        std::optional<double> finished_at;
        switch (t.outcome) {
        case TaskOutcome::succeed:
        case TaskOutcome::script_error: {
            start(at);
            push(step::run_task(at + t.pending, id), origin);
            double end = at + t.pending + t.duration;
            push(step::append_task_log(at + t.pending, id, {"handler started, (ID: " + tid + ")"}), origin);
            if (t.outcome == TaskOutcome::succeed) {
                push(step::append_task_log(end, id, {"job successful", "job exit code: 0", "handler finished"}),
                     origin);
                push(step::succeed_task(end, id), origin);
                engine_log(end, "[hf] task finished: " + t.type + " (" + tid + ") exit=0 time=" +
                                    scenario_detail::fmt_seconds(t.duration) + "s");
            } else {
                // The executor reports the task's exit code through Redis and itself exits 0: the pod Succeeds.
                push(step::append_task_log(end, id, {"job exit code: " + std::to_string(t.exit_code),
                                                     "handler finished"}),
                     origin);
                push(step::succeed_task(end, id), origin);
                engine_log(end, "[hf] task failed: " + t.type + " (" + tid + ") exit=" + std::to_string(t.exit_code) +
                                    " time=" + scenario_detail::fmt_seconds(t.duration) + "s");
            }
            finished_at = end;
            break;
        }
        case TaskOutcome::fail:
        case TaskOutcome::oom: {
            int failing = std::min(t.failed_attempts, t.backoff_limit + 1);
            for (int attempt = 0; attempt < failing; ++attempt) {
                start(at);
                push(step::run_task(at + t.pending, id), origin);
                double end = at + t.pending + t.duration;
                if (t.outcome == TaskOutcome::oom) push(step::oom_kill(end, id), origin);
                else push(step::fail_task(end, id, t.exit_code), origin);
                at = end + scenario_detail::retry_delay(attempt + 1);
                finished_at = end;
            }
            if (failing <= t.backoff_limit) {
                // A replacement pod re-runs the task (Redis does not mark it completed) and succeeds.
                start(at);
                push(step::run_task(at + t.pending, id), origin);
                double end = at + t.pending + t.duration;
                push(step::succeed_task(end, id), origin);
                engine_log(end, "[hf] task finished: " + t.type + " (" + tid + ") exit=0 time=" +
                                    scenario_detail::fmt_seconds(t.duration) + "s");
                finished_at = end;
            }
            break;
        }
        case TaskOutcome::running:
            start(at);
            push(step::run_task(at + t.pending, id), origin);
            break;
        case TaskOutcome::image_pull_failure:
            start(at);
            push(step::container_waiting(at + t.pending, id, "ErrImagePull"), origin);
            push(step::container_waiting(at + t.pending + 10, id, "ImagePullBackOff"), origin);
            break;
        case TaskOutcome::unschedulable:
            start(at);
            push(step::unschedulable(at, id), origin);
            break;
        case TaskOutcome::never_started: break;
        }
        if (finished_at && ttl_seconds_after_finished) push(step::delete_job(*finished_at + *ttl_seconds_after_finished, id), origin);
    }
    if (completion_at) {
        Step log = step::append_log(*completion_at, {completion_exit_code == 0
                                                         ? "Workflow [" + std::to_string(wf_id) + "] finished."
                                                         : "Workflow [" + std::to_string(wf_id) +
                                                               "] stopped: a task failed (exit code " +
                                                               std::to_string(completion_exit_code) + ")"});
        log.optional_target = true;
        push(std::move(log), "completion");
        push(step::write_file(*completion_at, std::string(completion_signal_path),
                              std::to_string(completion_exit_code) + "\n"),
             "completion");
    }
    std::stable_sort(out.begin(), out.end(), [](const Step& a, const Step& b) { return a.at < b.at; });
    return out;
}

inline boost::json::object Scenario::context() const {
    validate();
    boost::json::array inventory;
    std::vector<std::string> types;
    for (auto& t : tasks) {
        if (!t.in_inventory) continue;
        if (std::find(types.begin(), types.end(), t.type) == types.end()) types.push_back(t.type);
        boost::json::object spec{{"name", t.name.empty() ? t.type : t.name},
                                 {"task_type", t.type},
                                 {"dag_order", dag_order.count(t.type) ? dag_order.at(t.type) : default_dag_order(t.type)},
                                 {"memory_limit", t.memory_limit},
                                 {"cpu_limit", t.cpu_limit}};
        std::optional<double> expected = t.expected_duration;
        if (!expected) {
            auto it = expected_durations.find(t.type);
            if (it != expected_durations.end()) expected = it->second;
        }
        if (expected) spec["expected_duration_seconds"] = *expected * time_scale;
        inventory.push_back(std::move(spec));
    }
    boost::json::object dag;
    if (dag_structure) {
        for (auto& [type, ups] : *dag_structure) {
            boost::json::array a;
            for (auto& u : ups) a.push_back(boost::json::string(u));
            dag[type] = std::move(a);
        }
    } else {
        auto table = default_dag_structure();
        bool known = std::any_of(types.begin(), types.end(), [&](auto& t) { return table.count(t) > 0; });
        if (known)
            for (auto& [type, ups] : table) {
                boost::json::array a;
                for (auto& u : ups) a.push_back(boost::json::string(u));
                dag[type] = std::move(a);
            }
        for (auto& t : types)
            if (!dag.contains(t)) dag[t] = boost::json::array{};
    }
    boost::json::object ctx{
        {"namespace", namespace_name},
        {"engine_pod_name", engine_pod_name()},
        {"engine_container", "hyperflow"},
        {"task_inventory", std::move(inventory)},
        {"dag_structure", std::move(dag)},
        {"agglomeration_factor", agglomeration_factor},
        {"execution_model", execution_model},
        {"completion_signal_path", completion_signal_path},
        {"task_label_selector", "app=hyperflow"},
    };
    if (!engine_pod_selector.empty()) ctx["engine_pod_selector"] = engine_pod_selector;
    return ctx;
}

inline Scenario Scenario::from_json(const boost::json::value& v) {
    using scenario_detail::Fields;
    Fields f(v, "scenario");
    Scenario s;
    s.name = f.string("name", "scenario");
    (void)f.string("description");
    s.namespace_name = f.string("namespace", "default");
    if (s.namespace_name.empty() || s.namespace_name.size() > 63)
        throw ScenarioError(f.at("namespace") + ": expected a namespace name");
    s.time_scale = f.number("time_scale", 1.0);
    if (!(s.time_scale >= 1e-6 && s.time_scale <= 1e6))
        throw ScenarioError(f.at("time_scale") + ": must be between 1e-6 and 1e6");
    s.seed = static_cast<std::uint64_t>(f.opt_integer("seed", 0, INT64_MAX).value_or(1));
    s.wf_id = f.integer("wf_id", 2, 0, 1000000000);
    s.hf_id = f.string("hf_id");
    s.engine_pod_selector = f.string("engine_pod_selector");
    s.agglomeration_factor = f.integer("agglomeration_factor", 1, 1, 1000000);
    s.execution_model = f.string("execution_model", "JOB");
    if (auto* e = f.find("engine")) {
        Fields ef(*e, f.at("engine"));
        s.engine_name = ef.string("name");
        s.engine_at = ef.non_negative("at", 0);
        ef.reject_unknown();
    }
    if (auto* so = f.find("support_objects")) {
        if (so->is_bool()) {
            if (so->get_bool()) s.support_objects_at = 0;
        } else {
            Fields sf(*so, f.at("support_objects"));
            s.support_objects_at = sf.non_negative("at", 0);
            sf.reject_unknown();
        }
    }
    if (auto t = f.opt_number("ttl_seconds_after_finished")) {
        if (!(*t >= 0 && *t <= 1e9)) throw ScenarioError(f.at("ttl_seconds_after_finished") + ": must be between 0 and 1e9");
        s.ttl_seconds_after_finished = *t;
    }
    if (auto* c = f.find("completion")) {
        Fields cf(*c, f.at("completion"));
        s.completion_at = cf.non_negative("at", 0);
        if (!cf.has("at")) throw ScenarioError(cf.at("at") + ": missing (expected a number)");
        s.completion_exit_code = cf.integer("exit_code", 0, 0, 255);
        cf.reject_unknown();
    }
    if (auto* e = f.find("expected_durations")) {
        if (!e->is_object()) throw ScenarioError(f.at("expected_durations") + ": expected an object");
        Fields ef(*e, f.at("expected_durations"));
        for (auto& kv : e->as_object()) {
            double d = ef.number(kv.key(), 0);
            if (d <= 0) throw ScenarioError(ef.at(kv.key()) + ": must be positive");
            s.expected_durations[std::string(kv.key())] = d;
        }
    }
    if (auto* d = f.find("dag_structure")) {
        if (!d->is_object()) throw ScenarioError(f.at("dag_structure") + ": expected an object");
        Fields df(*d, f.at("dag_structure"));
        std::map<std::string, std::vector<std::string>> m;
        for (auto& kv : d->as_object()) m[std::string(kv.key())] = df.strings(kv.key());
        s.dag_structure = std::move(m);
    }
    if (auto* d = f.find("dag_order")) {
        if (!d->is_object()) throw ScenarioError(f.at("dag_order") + ": expected an object");
        Fields df(*d, f.at("dag_order"));
        for (auto& kv : d->as_object()) s.dag_order[std::string(kv.key())] = df.integer(kv.key(), 99, 0, 1000000);
    }
    TaskDecl defaults;
    if (auto* d = f.find("task_defaults")) {
        Fields df(*d, f.at("task_defaults"));
        defaults.pending = df.non_negative("pending", defaults.pending);
        defaults.duration = df.non_negative("duration", defaults.duration);
        defaults.backoff_limit = df.integer("backoff_limit", defaults.backoff_limit, 0, 1000);
        defaults.memory_limit = df.string("memory_limit");
        defaults.cpu_limit = df.string("cpu_limit");
        df.reject_unknown();
    }
    if (auto* t = f.find("tasks")) {
        if (!t->is_array()) throw ScenarioError(f.at("tasks") + ": expected an array");
        std::size_t i = 0;
        for (auto& e : t->as_array()) s.tasks.push_back(scenario_detail::parse_task(e, i++, defaults));
    }
    if (auto* t = f.find("steps")) {
        if (!t->is_array()) throw ScenarioError(f.at("steps") + ": expected an array");
        std::size_t i = 0;
        for (auto& e : t->as_array()) s.steps.push_back(scenario_detail::parse_step(e, i++));
    }
    f.reject_unknown();
    s.validate();
    return s;
}

inline Scenario Scenario::parse(std::string_view text) {
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    boost::json::value v = boost::json::parse(text, ec, {}, opts);
    if (ec) throw ScenarioError("scenario: invalid JSON: " + ec.message());
    return from_json(v);
}

inline Scenario Scenario::from_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ScenarioError("cannot open scenario file " + path.string());
    std::string text;
    constexpr std::size_t limit = 64u << 20;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > limit) throw ScenarioError(path.string() + ": scenario file larger than 64 MiB");
    }
    try {
        return parse(text);
    } catch (const ScenarioError& e) {
        throw ScenarioError(path.string() + ": " + e.what());
    }
}

// ================================================================================================ runner

/// Plays a Scenario against a cluster (`FakeCluster`, or any type with the same object, file, log and fault
/// functions). Thread-safe: `start`/`wait`/`stop` may be called from any thread; do not mix `start()` with
/// `run_until()`. A step that fails (unknown task, missing pod …) is recorded in `errors()` and the play goes on.
template <class Cluster>
class BasicScenarioRunner {
public:
    /// `base`: the wall time of scenario time 0 (default: when `start()` or the first `run_until()` is called).
    /// `cluster` must outlive the runner. Throws ScenarioError when the scenario is invalid (see timeline()).
    BasicScenarioRunner(Cluster& cluster, Scenario scenario, std::optional<WallTime> base = std::nullopt)
        : cluster_(cluster), scenario_(std::move(scenario)), timeline_(scenario_.timeline()),
          names_(scenario_.seed), base_(base) {}
    BasicScenarioRunner(const BasicScenarioRunner&) = delete;
    BasicScenarioRunner& operator=(const BasicScenarioRunner&) = delete;
    ~BasicScenarioRunner() { stop(); }

    /// Plays the timeline in scaled real time on a new thread. Throws std::logic_error if already started.
    void start() {
        std::lock_guard lock(mu_);
        if (thread_.joinable() || started_) throw std::logic_error("ScenarioRunner: already started");
        started_ = true;
        if (!base_) base_ = WallClock::now();
        thread_ = std::thread([this] { play(); });
    }
    /// Blocks until every step ran or `stop()` was called.
    void wait() {
        std::unique_lock lock(mu_);
        done_cv_.wait(lock, [&] { return next_ >= timeline_.size() || stopping_; });
        lock.unlock();
        join();
    }
    /// Like wait(), at most `timeout`; true when finished.
    bool wait_for(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        return done_cv_.wait_for(lock, timeout, [&] { return next_ >= timeline_.size() || stopping_; });
    }
    /// Stops playing promptly (the step in progress completes). Idempotent.
    void stop() {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        done_cv_.notify_all();
        join();
    }

    /// Runs, on the calling thread, every step due at or before scenario time `t`. Returns how many ran.
    std::size_t run_until(double t) {
        std::lock_guard lock(mu_);
        if (!base_) base_ = WallClock::now();
        std::size_t n = 0;
        while (next_ < timeline_.size() && timeline_[next_].at <= t) {
            execute_logged(timeline_[next_]);
            ++next_;
            ++n;
        }
        if (t > now_) now_ = t;
        if (next_ >= timeline_.size()) done_cv_.notify_all();
        return n;
    }
    /// Runs every remaining step on the calling thread.
    std::size_t run_all() { return run_until(timeline_.empty() ? 0.0 : timeline_.back().at); }

    bool finished() const {
        std::lock_guard lock(mu_);
        return next_ >= timeline_.size();
    }
    /// Scenario time reached so far.
    double now() const {
        std::lock_guard lock(mu_);
        return now_;
    }
    /// Number of steps run so far.
    std::size_t steps_run() const {
        std::lock_guard lock(mu_);
        return next_;
    }
    const std::vector<Step>& timeline() const noexcept { return timeline_; }
    const Scenario& scenario() const noexcept { return scenario_; }

    /// "step 12 (steps[3], finish_task at 35.0 s): unknown task \"x\"" for every step that failed.
    std::vector<std::string> errors() const {
        std::lock_guard lock(mu_);
        return errors_;
    }
    /// Called after every step with a one-line description and whether it succeeded (for progress output). Called
    /// on the thread that runs the step, with the runner's lock held: it must not call the runner. Set it before
    /// start().
    void on_step(std::function<void(std::string_view, bool)> f) { on_step_ = std::move(f); }

    /// The engine pod currently in the cluster ("" before it is created).
    std::string engine_pod_name() const {
        std::lock_guard lock(mu_);
        return engine_;
    }
    /// The Job name of a started task (nullopt if not started).
    std::optional<std::string> job_name_of(std::string_view task) const {
        std::lock_guard lock(mu_);
        auto it = tasks_.find(std::string(task));
        if (it == tasks_.end()) return std::nullopt;
        return it->second.job;
    }
    /// The pods created for a task so far, oldest first.
    std::vector<std::string> pod_names_of(std::string_view task) const {
        std::lock_guard lock(mu_);
        auto it = tasks_.find(std::string(task));
        if (it == tasks_.end()) return {};
        return it->second.pods;
    }
    /// Wall time of scenario time `t`.
    WallTime wall_time(double t) const {
        auto b = base_.value_or(WallClock::now());
        return b + std::chrono::duration_cast<WallClock::duration>(std::chrono::duration<double>(wall_offset(t)));
    }

private:
    struct TaskState {
        std::string job;
        std::string type;
        bool deleted = false;
        int backoff_limit = 6;
        std::vector<std::string> pods;
        int failed = 0;
        int succeeded = 0;
        bool finished = false;
        WallTime job_start{};
        WallTime pod_started{};
        bool running = false;
    };

    /// Wall seconds from the start to scenario time `t`, capped at 1e9 s (~31 years) so clock arithmetic cannot
    /// overflow.
    double wall_offset(double t) const { return std::clamp(t * scenario_.time_scale, -1e9, 1e9); }

    void join() {
        std::lock_guard lock(join_mu_);
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

    void play() {
        const auto steady_base = std::chrono::steady_clock::now();
        std::unique_lock lock(mu_);
        while (next_ < timeline_.size() && !stopping_) {
            const Step& s = timeline_[next_];
            auto due = steady_base + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                         std::chrono::duration<double>(wall_offset(s.at)));
            if (cv_.wait_until(lock, due, [&] { return stopping_; })) break;
            execute_logged(s);
            now_ = s.at;
            ++next_;
        }
        done_cv_.notify_all();
    }

    void execute_logged(const Step& s) {
        std::string what = "step " + std::to_string(next_) + " (" + s.origin + ", " +
                           std::string(step_kind_name(s.kind)) + " at " + scenario_detail::fmt_seconds(s.at) + " s)";
        try {
            execute(s);
            if (on_step_) on_step_(what, true);
        } catch (const std::exception& e) {
            errors_.push_back(what + ": " + e.what());
            if (on_step_) on_step_(errors_.back(), false);
        } catch (...) {
            errors_.push_back(what + ": unknown error");
            if (on_step_) on_step_(errors_.back(), false);
        }
    }

    const std::string& ns() const { return scenario_.namespace_name; }

    TaskState& task(const Step& s) {
        auto it = tasks_.find(s.task);
        if (it == tasks_.end()) throw ScenarioError("unknown task \"" + s.task + "\" (no start_task before)");
        return it->second;
    }
    static const std::string& newest_pod(const TaskState& t, const Step& s) {
        if (t.pods.empty()) throw ScenarioError("task \"" + s.task + "\" has no pod");
        return t.pods.back();
    }

    template <class F>
    void modify(std::string_view resource, const std::string& name, F&& f) {
        cluster_.modify(resource, ns(), name, std::function<void(boost::json::object&)>(std::forward<F>(f)));
    }

    void emit_event(const boost::json::object& about, std::string_view reason, std::string_view message,
                    std::string_view type, WallTime when, std::string_view component = "kubelet") {
        cluster_.create("events", ns(), event_about(about, reason, message, type, when, names_, component));
    }
    void emit_event_for(std::string_view resource, const std::string& name, std::string_view reason,
                        std::string_view message, std::string_view type, WallTime when,
                        std::string_view component = "kubelet") {
        auto obj = cluster_.get(resource, ns(), name);
        if (!obj) throw ScenarioError(std::string(resource) + " \"" + name + "\" not found");
        emit_event(*obj, reason, message, type, when, component);
    }

    void create_engine(const std::string& name, WallTime when) {
        EnginePodOptions o;
        o.namespace_name = ns();
        o.name = name;
        // hyperflow-engine-<hash>-<suffix>
        std::string rest = name.rfind("hyperflow-engine-", 0) == 0 ? name.substr(17) : name;
        auto dash = rest.rfind('-');
        o.replica_set_hash = dash == std::string::npos ? rest : rest.substr(0, dash);
        o.uid = names_.uid();
        if (rs_uid_.empty()) rs_uid_ = names_.uid();
        o.replica_set_uid = rs_uid_;
        o.created = when;
        cluster_.create("pods", ns(), engine_pod(o));
        engine_ = name;
    }

    void execute(const Step& s) {
        const WallTime when = wall_time(s.at);
        switch (s.kind) {
        case StepKind::create_engine_pod:
            create_engine(s.name.empty() ? scenario_.engine_pod_name() : s.name, when);
            break;
        case StepKind::replace_engine_pod:
            if (!engine_.empty()) {
                if (auto old = cluster_.get("pods", ns(), engine_))
                    emit_event(*old, "Killing", "Stopping container hyperflow", "Normal", when);
                cluster_.remove("pods", ns(), engine_);
            }
            create_engine(s.name, when);
            break;
        case StepKind::create_support_objects: {
            using namespace std::chrono_literals;
            cluster_.create("pods", ns(), redis_pod(ns(), names_, when - 180s));
            for (auto job : {nfs_data_job(ns(), names_, when - 170s, when - 120s),
                             tabix_extract_job(ns(), names_, when - 110s, when - 60s)}) {
                std::string name(job.at("metadata").at("name").as_string());
                cluster_.create("jobs", ns(), std::move(job));
                modify("jobs", name, [](boost::json::object& j) { job_adopt_uid(j); });
            }
            break;
        }
        case StepKind::create_object: cluster_.create(s.resource, ns(), s.object); break;
        case StepKind::start_task: start_task(s, when); break;
        case StepKind::run_task: {
            auto& t = task(s);
            const auto& pod = newest_pod(t, s);
            modify("pods", pod, [&](boost::json::object& p) { pod_set_running(p, when); });
            t.pod_started = when;
            t.running = true;
            modify("jobs", t.job, [&](boost::json::object& j) { job_set_counts(j, 1, 1, t.succeeded, t.failed); });
            if (auto p = cluster_.get("pods", ns(), pod)) {
                std::string image = "hyperflowwms/1000genome-worker:1.1-latest";
                emit_event(*p, "Pulled", "Container image \"" + image + "\" already present on machine", "Normal", when);
                emit_event(*p, "Created", "Created container: test", "Normal", when);
                emit_event(*p, "Started", "Started container test", "Normal", when);
            }
            break;
        }
        case StepKind::finish_task: finish_task(s, when); break;
        case StepKind::container_waiting: {
            auto& t = task(s);
            const auto& pod = newest_pod(t, s);
            std::string image = "hyperflowwms/1000genome-worker:1.1-latest";
            std::string message = s.message;
            if (message.empty() && (s.reason == "ErrImagePull" || s.reason == "ImagePullBackOff"))
                message = s.reason == "ErrImagePull"
                              ? "failed to pull and unpack image \"docker.io/" + image +
                                    "\": failed to resolve reference: pull access denied, repository does not exist "
                                    "or may require authorization"
                              : "Back-off pulling image \"" + image + "\"";
            modify("pods", pod, [&](boost::json::object& p) { pod_set_waiting(p, when, s.reason, message); });
            auto p = cluster_.get("pods", ns(), pod);
            if (p && s.reason == "ErrImagePull") {
                emit_event(*p, "Pulling", "Pulling image \"" + image + "\"", "Normal", when);
                emit_event(*p, "Failed", "Failed to pull image \"" + image + "\": " + message, "Warning", when);
                emit_event(*p, "Failed", "Error: ErrImagePull", "Warning", when);
            } else if (p && s.reason == "ImagePullBackOff") {
                emit_event(*p, "BackOff", "Back-off pulling image \"" + image + "\"", "Warning", when);
                emit_event(*p, "Failed", "Error: ImagePullBackOff", "Warning", when);
            } else if (p) {
                emit_event(*p, "Failed", "Error: " + s.reason, "Warning", when);
            }
            break;
        }
        case StepKind::unschedulable: {
            auto& t = task(s);
            const auto& pod = newest_pod(t, s);
            std::string message = s.message.empty()
                                      ? "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                        "available: 1 No preemption victims found for incoming pod."
                                      : s.message;
            modify("pods", pod, [&](boost::json::object& p) {
                pod_set_unschedulable(p, when, message);
                if (auto* sp = p.if_contains("spec"); sp && sp->is_object()) sp->as_object().erase("nodeName");
            });
            emit_event_for("pods", pod, "FailedScheduling", message, "Warning", when, "default-scheduler");
            break;
        }
        case StepKind::add_event: {
            std::string name = s.name;
            if (!s.task.empty()) {
                auto& t = task(s);
                name = s.resource == "jobs" ? t.job : newest_pod(t, s);
            }
            auto obj = cluster_.get(s.resource, ns(), name);
            boost::json::object about;
            if (obj) about = *obj;
            else
                about = {{"kind", s.resource == "jobs" ? "Job" : "Pod"},
                         {"apiVersion", s.resource == "jobs" ? "batch/v1" : "v1"},
                         {"metadata", {{"name", name}, {"namespace", ns()}}}};
            auto ev = event_about(about, s.reason, s.message, s.event_type, when, names_,
                                  s.resource == "jobs" ? "job-controller" : "kubelet");
            ev["count"] = s.count;
            cluster_.create("events", ns(), std::move(ev));
            break;
        }
        case StepKind::write_file: {
            std::string pod = target_pod(s);
            if (pod.empty()) return;
            cluster_.write_file(ns(), pod, s.path, s.content);
            break;
        }
        case StepKind::remove_file: {
            std::string pod = target_pod(s);
            if (pod.empty()) return;
            cluster_.remove_file(ns(), pod, s.path);
            break;
        }
        case StepKind::append_log: {
            std::string pod, container = s.container;
            if (!s.task.empty()) {
                auto& t = task(s);
                pod = newest_pod(t, s);
                if (container.empty()) container = "test";
            } else {
                pod = target_pod(s);
                if (pod.empty()) return;
                if (container.empty()) container = "hyperflow";
            }
            for (auto& line : s.lines) cluster_.append_log(ns(), pod, container, line);
            break;
        }
        case StepKind::delete_job: delete_task_job(task(s)); break;
        case StepKind::delete_finished_jobs:
            for (auto& [id, t] : tasks_)
                if (t.finished && !t.job.empty()) delete_task_job(t);
            break;
        case StepKind::close_watches: cluster_.close_watches(); break;
        case StepKind::fail_next: cluster_.fail_next_requests(s.count, s.http_status, s.retry_after); break;
        case StepKind::refuse_connections:
            cluster_.refuse_connections(std::chrono::milliseconds(static_cast<std::int64_t>(s.wall_seconds * 1000)));
            break;
        case StepKind::compact: cluster_.compact(); break;
        case StepKind::delay_responses:
            cluster_.delay_responses(std::chrono::milliseconds(static_cast<std::int64_t>(s.wall_milliseconds)));
            break;
        case StepKind::raw_watch_line: cluster_.send_raw_watch_line(s.content); break;
        case StepKind::stall_watches: cluster_.stall_watches(s.stalled); break;
        }
    }

    /// The pod a file/log step targets: `pod`, else the engine pod; "" when optional and absent.
    std::string target_pod(const Step& s) const {
        if (!s.pod.empty()) return s.pod;
        if (engine_.empty()) {
            if (s.optional_target) return {};
            throw ScenarioError("no engine pod (create_engine_pod first, or give \"pod\")");
        }
        return engine_;
    }

    void start_task(const Step& s, WallTime when) {
        auto [it, fresh] = tasks_.try_emplace(s.task);
        TaskState& t = it->second;
        if (fresh || t.job.empty()) {
            if (s.task_type.empty()) {
                tasks_.erase(it);
                throw ScenarioError("task \"" + s.task + "\" is started for the first time without \"type\"");
            }
            TaskJobOptions o;
            o.namespace_name = ns();
            o.name = job_name(names_.job_fragment(), s.task_type, s.proc_id, s.firing_id);
            o.uid = names_.uid();
            o.created = when;
            o.task_id = task_id(scenario_.engine_hf_id(), scenario_.wf_id, s.proc_id, s.firing_id);
            o.backoff_limit = s.backoff_limit;
            o.cpu_limit = s.cpu_limit;
            o.memory_limit = s.memory_limit;
            cluster_.create("jobs", ns(), task_job(o));
            // The Job controller picks the new Job up: the selector names the assigned uid, one pod active.
            modify("jobs", o.name, [&](boost::json::object& j) {
                job_adopt_uid(j);
                job_set_counts(j, 1, 0, 0, 0, when);
            });
            t = TaskState{};
            t.job = o.name;
            t.type = s.task_type;
            t.backoff_limit = s.backoff_limit;
            t.job_start = when;
        } else {
            if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
            modify("jobs", t.job, [&](boost::json::object& j) { job_set_counts(j, 1, 0, t.succeeded, t.failed); });
        }
        auto job = cluster_.get("jobs", ns(), t.job);
        if (!job) throw ScenarioError("job \"" + t.job + "\" of task \"" + s.task + "\" no longer exists");
        TaskPodOptions po;
        po.name = t.job + "-" + names_.pod_suffix();
        po.uid = names_.uid();
        po.created = when;
        auto pod = task_pod(*job, po);
        pod_set_creating(pod, when);
        cluster_.create("pods", ns(), std::move(pod));
        t.pods.push_back(po.name);
        t.running = false;
        emit_event(*job, "SuccessfulCreate", "Created pod: " + po.name, "Normal", when, "job-controller");
        if (auto p = cluster_.get("pods", ns(), po.name))
            emit_event(*p, "Scheduled",
                       "Successfully assigned " + ns() + "/" + po.name + " to hfmaster-worker-1", "Normal", when,
                       "default-scheduler");
    }

    void finish_task(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
        WallTime started = t.running ? t.pod_started : when;
        modify("pods", pod, [&](boost::json::object& p) {
            pod_set_terminated(p, started, when, s.exit_code, s.reason, s.message);
            if (auto* m = p.if_contains("metadata"); m && m->is_object()) m->as_object().erase("finalizers");
        });
        t.running = false;
        if (s.exit_code == 0) {
            t.succeeded = 1;
            t.finished = true;
            modify("jobs", t.job, [&](boost::json::object& j) {
                job_set_counts(j, 0, 0, 1, t.failed);
                job_mark_complete(j, when);
            });
            emit_event_for("jobs", t.job, "Completed", "Job completed", "Normal", when, "job-controller");
        } else {
            ++t.failed;
            bool exhausted = t.failed > t.backoff_limit;
            modify("jobs", t.job, [&](boost::json::object& j) {
                job_set_counts(j, 0, 0, 0, t.failed);
                if (exhausted) job_mark_failed(j, when);
            });
            if (exhausted) {
                t.finished = true;
                emit_event_for("jobs", t.job, "BackoffLimitExceeded", "Job has reached the specified backoff limit",
                               "Warning", when, "job-controller");
            }
        }
    }

    void delete_task_job(TaskState& t) {
        if (t.job.empty() || t.deleted) return;
        t.deleted = true;
        cluster_.remove("jobs", ns(), t.job);
        for (auto& p : t.pods) cluster_.remove("pods", ns(), p);
    }

    Cluster& cluster_;
    Scenario scenario_;
    std::vector<Step> timeline_;
    NameSource names_;
    std::optional<WallTime> base_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable done_cv_;
    std::thread thread_;
    bool started_ = false;
    bool stopping_ = false;
    std::size_t next_ = 0;
    double now_ = 0;
    std::vector<std::string> errors_;
    std::function<void(std::string_view, bool)> on_step_;
    std::mutex join_mu_;

    std::map<std::string, TaskState> tasks_;
    std::string engine_;
    std::string rs_uid_;
};

/// The runner for the in-process simulated cluster.
using ScenarioRunner = BasicScenarioRunner<FakeCluster>;

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_HPP

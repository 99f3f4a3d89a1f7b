// The scenario runner: `BasicScenarioRunner<Cluster>` executes a scenario's timeline against a cluster, on its
// own thread in real (scaled) time (`start`, `wait`, `stop`), or stepped by hand (`run_until`) so tests are
// deterministic. `ScenarioRunner` is the runner for `FakeCluster`. Object timestamps are wall-clock times:
// base + scenario time × time_scale, base being the moment `start()` was called (or the one given).
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_RUNNER_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_RUNNER_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>
#include <execution_sentinel/testing/scenario/timeline.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace execution_sentinel::testing {

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
        int restarts = 0; ///< container restarts of the newest pod (crash loop)
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

    /// The metrics window: one metrics period in wall time.
    std::chrono::milliseconds metrics_window() const {
        return std::chrono::milliseconds(
            std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(
                                          std::min(scenario_.metrics_period * scenario_.time_scale, 1e9) * 1000))));
    }

    void set_usage(const Step& s) {
        std::string pod, container = s.container;
        if (!s.task.empty()) {
            pod = newest_pod(task(s), s);
            if (container.empty()) container = "test";
        } else {
            pod = s.pod;
        }
        if (!cluster_.get("pods", ns(), pod)) throw ScenarioError("pod \"" + pod + "\" not found");
        auto& containers = usage_[pod];
        auto it = std::find_if(containers.begin(), containers.end(), [&](auto& c) { return c.name == container; });
        if (it == containers.end()) it = containers.insert(containers.end(), baseline_usage(container));
        if (s.cpu_cores) it->cpu_nanocores = static_cast<std::int64_t>(std::llround(std::min(*s.cpu_cores, 1e9) * 1e9));
        if (s.memory_mib) it->memory_bytes = static_cast<std::int64_t>(std::llround(std::min(*s.memory_mib, 1e9) * 1024)) * 1024;
        if constexpr (requires(Cluster& c, std::string_view n, std::vector<ContainerUsage> u, std::chrono::milliseconds w) {
                          c.set_pod_usage(n, n, u, w);
                      })
            cluster_.set_pod_usage(ns(), pod, containers, metrics_window());
    }

    void set_metrics_api(MetricsApi mode) {
        if constexpr (requires(Cluster& c, MetricsApi m) { c.set_metrics_api(m); }) cluster_.set_metrics_api(mode);
    }

    void restart_log(const std::string& pod, const std::string& container) {
        if constexpr (requires(Cluster& c, std::string_view n) { c.restart_container_log(n, n, n); })
            cluster_.restart_container_log(ns(), pod, container);
    }

    /// The Job counts one more failed pod; it fails once the failures exceed its backoffLimit.
    void count_job_failure(TaskState& t, WallTime when) {
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

    void evict_task(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
        const std::string message =
            s.message.empty() ? "The node was low on resource: memory. Threshold quantity: 100Mi, available: 92160Ki. "
                                "Container test was using 1543520Ki, request is 500Mi, has larger consumption of memory. "
                              : s.message;
        WallTime started = t.running ? t.pod_started : when;
        // The eviction manager records the event, then kills the pod; its status follows.
        emit_event_for("pods", pod, "Evicted", message, "Warning", when);
        emit_event_for("pods", pod, "Killing", "Stopping container test", "Normal", when);
        modify("pods", pod, [&](boost::json::object& p) {
            pod_set_evicted(p, started, when, message);
            if (auto* m = p.if_contains("metadata"); m && m->is_object()) m->as_object().erase("finalizers");
        });
        t.running = false;
        count_job_failure(t, when);
    }

    void fail_job(const Step& s, WallTime when) {
        auto& t = task(s);
        if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
        std::string message = s.message;
        if (message.empty())
            message = s.reason == "DeadlineExceeded" ? "Job was active longer than specified deadline"
                                                     : "Job has reached the specified backoff limit";
        // Pods still active (Pending or Running) are deleted by the Job controller.
        std::vector<std::string> active;
        for (const auto& name : t.pods) {
            auto p = cluster_.get("pods", ns(), name);
            if (p && (pod_phase(*p) == "Running" || pod_phase(*p) == "Pending")) active.push_back(name);
        }
        modify("jobs", t.job, [&](boost::json::object& j) {
            job_mark_failure_target(j, when, s.reason, message, static_cast<int>(active.size()));
        });
        for (const auto& name : active) {
            modify("pods", name, [&](boost::json::object& p) { pod_mark_deleting(p, when, 30); });
            emit_event_for("pods", name, "Killing", "Stopping container test", "Normal", when);
            // SIGTERM: the container exits 143.
            WallTime started = t.running ? t.pod_started : when;
            modify("pods", name, [&](boost::json::object& p) {
                pod_set_terminated(p, started, when, 143, "Error");
                if (auto* m = p.if_contains("metadata"); m && m->is_object()) m->as_object().erase("finalizers");
            });
        }
        t.running = false;
        t.failed += static_cast<int>(active.size());
        t.finished = true;
        modify("jobs", t.job, [&](boost::json::object& j) {
            job_set_counts(j, 0, 0, t.succeeded, t.failed);
            job_mark_failed(j, when, s.reason, message);
        });
        emit_event_for("jobs", t.job, s.reason, message, "Warning", when, "job-controller");
        for (const auto& name : active) cluster_.remove("pods", ns(), name);
    }

    void crash_container(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
        ++t.restarts;
        const std::string backoff = format_go_duration(std::chrono::seconds(
            static_cast<std::int64_t>(scenario_detail::crash_loop_delay(t.restarts))));
        WallTime started = t.running ? t.pod_started : when;
        // The kubelet's sync records the back-off event; the status manager writes the status after it.
        if (auto p = cluster_.get("pods", ns(), pod)) {
            const std::string pod_ref = pod + "_" + ns() + "(" + std::string(p->at("metadata").at("uid").as_string()) + ")";
            emit_event(*p, "BackOff", "Back-off restarting failed container test in pod " + pod_ref, "Warning", when);
        }
        modify("pods", pod, [&](boost::json::object& p) {
            pod_set_crash_loop(p, started, when, s.exit_code, s.reason, t.restarts, backoff);
        });
        t.running = false;
        modify("jobs", t.job, [&](boost::json::object& j) { job_set_counts(j, 1, 0, t.succeeded, t.failed); });
    }

    void restart_container(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        if (t.finished) throw ScenarioError("task \"" + s.task + "\" already finished");
        restart_log(pod, "test");
        modify("pods", pod, [&](boost::json::object& p) { pod_set_restarted(p, when); });
        t.running = true;
        t.pod_started = when;
        modify("jobs", t.job, [&](boost::json::object& j) { job_set_counts(j, 1, 1, t.succeeded, t.failed); });
        if (auto p = cluster_.get("pods", ns(), pod)) {
            emit_event(*p, "Pulled", "Container image \"hyperflowwms/1000genome-worker:1.1-latest\" already present on machine",
                       "Normal", when);
            emit_event(*p, "Created", "Created container: test", "Normal", when);
            emit_event(*p, "Started", "Started container test", "Normal", when);
        }
    }

    void lose_node(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        const std::string message =
            s.message.empty() ? "Node hfmaster-worker-1 which was running pod " + pod + " is unresponsive" : s.message;
        modify("pods", pod, [&](boost::json::object& p) { pod_set_node_lost(p, when, message); });
        emit_event_for("pods", pod, "NodeNotReady", "Node is not ready", "Warning", when, "node-controller");
    }

    void delete_pod(const Step& s, WallTime when) {
        auto& t = task(s);
        const auto& pod = newest_pod(t, s);
        if (!cluster_.get("pods", ns(), pod)) throw ScenarioError("pod \"" + pod + "\" not found");
        std::string message = s.message;
        if (message.empty() && s.reason == "DeletionByTaintManager") message = "Taint manager: deleting due to NoExecute taint";
        if (message.empty() && s.reason == "DeletionByPodGC") message = "PodGC: node no longer exists";
        modify("pods", pod, [&](boost::json::object& p) { pod_mark_deleting(p, when, 30, s.reason, message); });
        if (s.reason == "DeletionByTaintManager")
            emit_event_for("pods", pod, "TaintManagerEviction", "Marking for deletion Pod " + ns() + "/" + pod, "Normal",
                           when, "taint-eviction-controller");
        const bool was_active = !t.finished;
        t.running = false;
        // The Job controller counts a pod deleted before it finished as failed, then releases its finalizer.
        if (was_active) count_job_failure(t, when);
        modify("pods", pod, [&](boost::json::object& p) {
            if (auto* m = p.if_contains("metadata"); m && m->is_object()) m->as_object().erase("finalizers");
        });
        cluster_.remove("pods", ns(), pod);
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
            if (message.empty() && s.reason == "CreateContainerConfigError")
                message = "configmap \"worker-config\" not found"; // HyperFlow's worker-pool ConfigMap, absent
            if (message.empty() && s.reason == "InvalidImageName") {
                // An image reference with an unexpanded variable, as a broken values file produces.
                const std::string bad = "hyperflowwms/1000genome-worker:${WORKER_TAG}";
                message = "Failed to apply default image tag \"" + bad + "\": couldn't parse image name \"" + bad +
                          "\": invalid reference format";
            }
            // The kubelet records the events of the failed attempt, then writes the waiting status.
            auto p = cluster_.get("pods", ns(), pod);
            if (p && s.reason == "CreateContainerConfigError") {
                emit_event(*p, "Failed", "Error: " + message, "Warning", when);
            } else if (p && s.reason == "InvalidImageName") {
                emit_event(*p, "InspectFailed", message, "Warning", when);
                emit_event(*p, "Failed", "Error: InvalidImageName", "Warning", when);
            } else if (p && s.reason == "ErrImagePull") {
                emit_event(*p, "Pulling", "Pulling image \"" + image + "\"", "Normal", when);
                emit_event(*p, "Failed", "Failed to pull image \"" + image + "\": " + message, "Warning", when);
                emit_event(*p, "Failed", "Error: ErrImagePull", "Warning", when);
            } else if (p && s.reason == "ImagePullBackOff") {
                emit_event(*p, "BackOff", "Back-off pulling image \"" + image + "\"", "Warning", when);
                emit_event(*p, "Failed", "Error: ImagePullBackOff", "Warning", when);
            } else if (p) {
                emit_event(*p, "Failed", "Error: " + s.reason, "Warning", when);
            }
            modify("pods", pod, [&](boost::json::object& obj) { pod_set_waiting(obj, when, s.reason, message); });
            break;
        }
        case StepKind::unschedulable: {
            auto& t = task(s);
            const auto& pod = newest_pod(t, s);
            std::string message = s.message.empty()
                                      ? "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                                        "available: 1 No preemption victims found for incoming pod."
                                      : s.message;
            // The scheduler records FailedScheduling, then sets the PodScheduled condition.
            emit_event_for("pods", pod, "FailedScheduling", message, "Warning", when, "default-scheduler");
            modify("pods", pod, [&](boost::json::object& p) {
                pod_set_unschedulable(p, when, message);
                if (auto* sp = p.if_contains("spec"); sp && sp->is_object()) sp->as_object().erase("nodeName");
            });
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
        case StepKind::reset_watches:
            if constexpr (requires(Cluster& c) { c.reset_watches(); }) cluster_.reset_watches();
            else cluster_.close_watches();
            break;
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
        case StepKind::set_usage:
            if (s.task.empty() && s.pod.empty()) {
                Step engine = s;
                engine.pod = target_pod(s);
                if (engine.container.empty()) engine.container = "hyperflow";
                set_usage(engine);
            } else {
                set_usage(s);
            }
            break;
        case StepKind::metrics_api: set_metrics_api(s.metrics_api); break;
        case StepKind::evict_task: evict_task(s, when); break;
        case StepKind::fail_job: fail_job(s, when); break;
        case StepKind::crash_container: crash_container(s, when); break;
        case StepKind::restart_container: restart_container(s, when); break;
        case StepKind::lose_node: lose_node(s, when); break;
        case StepKind::delete_pod: delete_pod(s, when); break;
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
            o.active_deadline_seconds = s.active_deadline_seconds;
            o.restart_policy = s.restart_policy;
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
        if (s.schedule) pod_set_creating(pod, when);
        cluster_.create("pods", ns(), std::move(pod));
        t.pods.push_back(po.name);
        t.running = false;
        t.restarts = 0;
        emit_event(*job, "SuccessfulCreate", "Created pod: " + po.name, "Normal", when, "job-controller");
        if (!s.schedule) return;
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
            if (t.restarts > 0)
                if (auto* cs = p["status"].as_object().if_contains("containerStatuses"); cs && cs->is_array())
                    for (auto& c : cs->as_array()) c.as_object()["restartCount"] = t.restarts;
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
            count_job_failure(t, when);
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
    std::map<std::string, std::vector<ContainerUsage>> usage_; ///< pod → the usage set so far
    std::string engine_;
    std::string rs_uid_;
};

/// The runner for the in-process simulated cluster.
using ScenarioRunner = BasicScenarioRunner<FakeCluster>;

#if EXECUTION_SENTINEL_EXTERN_TEMPLATES
// Compiled once, in <execution_sentinel/testing/src.hpp>.
extern template class BasicScenarioRunner<FakeCluster>;
#endif

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_RUNNER_HPP

// Bodies of testing/scenario/timeline.hpp and of Scenario::validate, timeline and context: included by the
// scenario headers (header-only use) or by <execution_sentinel/testing/src.hpp> under
// EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_TIMELINE_IPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_TIMELINE_IPP

#include <execution_sentinel/testing/scenario/timeline.hpp>

#include <boost/json/array.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace execution_sentinel::testing {

namespace scenario_detail {


/// Kubernetes Job controller pod-replacement backoff: 10 s, 20 s, 40 s … capped at 6 min.
EXECUTION_SENTINEL_DECL double retry_delay(int failures) {
    double d = 10.0;
    for (int i = 1; i < failures && d < 360.0; ++i) d *= 2;
    return std::min(d, 360.0);
}

/// The kubelet's crash-loop back-off before restart `n` (1-based): 10 s, 20 s, 40 s … capped at 5 min.
EXECUTION_SENTINEL_DECL double crash_loop_delay(int n) {
    double d = 10.0;
    for (int i = 1; i < n && d < 300.0; ++i) d *= 2;
    return std::min(d, 300.0);
}

/// Scenario seconds as whole wall seconds (at least 1), for spec fields in seconds (activeDeadlineSeconds).
EXECUTION_SENTINEL_DECL int wall_whole_seconds(double scenario_seconds, double time_scale) {
    return static_cast<int>(std::clamp(std::ceil(scenario_seconds * time_scale), 1.0, 1e9));
}

/// Realistic last lines of a task container's log before it fails in the way `outcome` describes.
EXECUTION_SENTINEL_DECL std::vector<std::string> default_log_tail(TaskOutcome outcome, const std::string& type,
                                                                  int exit_code) {
    const std::string script = "/opt/1000genome/bin/" + type + ".py";
    switch (outcome) {
    case TaskOutcome::fail:
        // The NFS server's EREMOTEIO under concurrent writes, the way it surfaced in 1000genome runs.
        return {"Traceback (most recent call last):",
                "  File \"" + script + "\", line 87, in <module>",
                "    write_chunk(out, rows)",
                "OSError: [Errno 121] Remote I/O error: '/work_dir/" + type + "_out.tar.gz'",
                "Command failed with exit code " + std::to_string(exit_code)};
    case TaskOutcome::script_error:
        return {"Traceback (most recent call last):",
                "  File \"" + script + "\", line 52, in <module>",
                "    region = parse_region(sys.argv[2:])",
                "ValueError: invalid region: ALL.chr19.apoe.vcf 19 0 113 113"};
    case TaskOutcome::crash_loop:
        // The executor cannot reach Redis and crashes; the shell wrapper reports it.
        return {"Error: connect ECONNREFUSED 10.96.112.40:6379",
                "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)",
                "Command failed with exit code " + std::to_string(exit_code)};
    case TaskOutcome::oom:
    case TaskOutcome::evicted:
    case TaskOutcome::deadline_exceeded:
        return {"[" + type + "] processed 6 of 12 chunks", "[" + type + "] processed 7 of 12 chunks"};
    default: return {};
    }
}

} // namespace scenario_detail


EXECUTION_SENTINEL_DECL void Scenario::validate() const {
    if (!(time_scale >= 1e-6 && time_scale <= 1e6)) throw ScenarioError("time_scale: must be between 1e-6 and 1e6");
    if (namespace_name.empty()) throw ScenarioError("namespace: must not be empty");
    if (agglomeration_factor < 1) throw ScenarioError("agglomeration_factor: must be at least 1");
    if (!(metrics_period >= 0.001 && metrics_period <= 1e9)) throw ScenarioError("metrics.period: must be between 0.001 and 1e9");
    std::map<std::string, std::size_t> ids;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        auto& t = tasks[i];
        std::string where = "tasks[" + std::to_string(i) + "]";
        if (!scenario_detail::valid_task_type(t.type)) throw ScenarioError(where + ".type: invalid task type");
        if (!(t.start >= 0 && t.pending >= 0 && t.duration >= 0 && t.start <= 1e9 && t.pending <= 1e9 &&
              t.duration <= 1e9))
            throw ScenarioError(where + ": start, pending and duration must be between 0 and 1e9");
        if (!(t.delete_after >= 0 && t.delete_after <= 1e9)) throw ScenarioError(where + ".delete_after: must be between 0 and 1e9");
        if (t.active_deadline && !(*t.active_deadline > 0 && *t.active_deadline <= 1e9))
            throw ScenarioError(where + ".active_deadline: must be between 0 (excluded) and 1e9");
        for (auto [v, field] : {std::pair{t.memory_start_mib, "memory_start_mib"}, std::pair{t.memory_peak_mib, "memory_peak_mib"},
                                std::pair{t.memory_peak_at, "memory_peak_at"}, std::pair{t.cpu_cores, "cpu_cores"}})
            if (v && !(*v >= 0 && *v <= 1e9)) throw ScenarioError(where + "." + field + ": must be between 0 and 1e9");
        if (t.outcome == TaskOutcome::container_waiting && t.waiting_reason.empty())
            throw ScenarioError(where + ".waiting_reason: must not be empty");
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

EXECUTION_SENTINEL_DECL std::vector<Step> Scenario::timeline() const {
    validate();
    std::vector<Step> out;
    auto push = [&](Step s, std::string origin) {
        if (s.origin.empty()) s.origin = std::move(origin);
        out.push_back(std::move(s));
    };
    if (support_objects_at) push(step::create_support_objects(*support_objects_at), "support_objects");
    if (metrics_api != MetricsApi::available) push(step::metrics_api(0, metrics_api), "metrics");
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
        auto task_log = [&](double at, std::vector<std::string> lines) {
            if (!lines.empty()) push(step::append_task_log(at, id, std::move(lines)), origin);
        };
        auto start = [&](double at, bool schedule = true) {
            Step s = step::start_task(at, id, t.type, t.proc_id, t.firing_id, t.backoff_limit);
            s.cpu_limit = t.cpu_limit;
            s.memory_limit = t.memory_limit;
            s.schedule = schedule;
            if (t.outcome == TaskOutcome::crash_loop) s.restart_policy = "OnFailure";
            if (t.active_deadline || t.outcome == TaskOutcome::deadline_exceeded)
                s.active_deadline_seconds = scenario_detail::wall_whole_seconds(
                    t.active_deadline.value_or(t.pending + t.duration), time_scale);
            push(std::move(s), origin);
        };
        // The container runs from `from` to `until`: usage samples every metrics period.
        auto usage = [&](double from, double until) {
            if (!t.has_usage()) return;
            const double peak = t.memory_peak_mib.value_or(t.memory_start_mib.value_or(0));
            const double first = t.memory_start_mib.value_or(peak);
            const double ramp = t.memory_peak_at.value_or(until - from);
            const bool memory = t.memory_peak_mib || t.memory_start_mib;
            // At most 10000 samples per run (a long run sampled less often).
            const double period = std::max(metrics_period, (until - from) / 10000.0);
            for (double at = from; at < until; at += period) {
                const double progress = ramp > 0 ? std::min(1.0, (at - from) / ramp) : 1.0;
                std::optional<double> mem;
                if (memory) mem = first + (peak - first) * progress;
                push(step::set_usage(at, id, t.cpu_cores, mem), origin);
            }
        };
        auto run = [&](double at) {
            push(step::run_task(at, id), origin);
            task_log(at, {"handler started, (ID: " + tid + ")"});
        };
        auto finished_line = [&](double at) {
            engine_log(at, "[hf] task finished: " + t.type + " (" + tid + ") exit=0 time=" +
                               scenario_detail::fmt_seconds(t.duration) + "s");
        };
        const std::vector<std::string> tail =
            t.log_tail.empty() ? scenario_detail::default_log_tail(t.outcome, t.type, t.exit_code) : t.log_tail;
        double at = t.start;
        engine_log(at, "[hf] task started: " + t.type + " (" + tid + ")");
        std::optional<double> finished_at;
        switch (t.outcome) {
        case TaskOutcome::succeed:
        case TaskOutcome::script_error:
        case TaskOutcome::completion_lost: {
            start(at);
            run(at + t.pending);
            double end = at + t.pending + t.duration;
            usage(at + t.pending, end);
            if (t.outcome == TaskOutcome::script_error) {
                // The executor reports the task's exit code through Redis and itself exits 0: the pod Succeeds.
                std::vector<std::string> lines = tail;
                lines.push_back("job exit code: " + std::to_string(t.exit_code));
                lines.push_back("handler finished");
                task_log(end, std::move(lines));
                push(step::succeed_task(end, id), origin);
                engine_log(end, "[hf] task failed: " + t.type + " (" + tid + ") exit=" + std::to_string(t.exit_code) +
                                    " time=" + scenario_detail::fmt_seconds(t.duration) + "s");
            } else {
                task_log(end, {"job successful", "job exit code: 0", "handler finished"});
                push(step::succeed_task(end, id), origin);
                // completion_lost: the completion never reaches the engine, which logs nothing more about it.
                if (t.outcome == TaskOutcome::succeed) finished_line(end);
            }
            finished_at = end;
            break;
        }
        case TaskOutcome::fail:
        case TaskOutcome::oom:
        case TaskOutcome::evicted:
        case TaskOutcome::node_lost: {
            int failing = std::min(t.failed_attempts, t.backoff_limit + 1);
            for (int attempt = 0; attempt < failing; ++attempt) {
                start(at);
                run(at + t.pending);
                double end = at + t.pending + t.duration;
                usage(at + t.pending, end);
                task_log(end, tail);
                if (t.outcome == TaskOutcome::oom) push(step::oom_kill(end, id), origin);
                else if (t.outcome == TaskOutcome::evicted) push(step::evict_task(end, id, t.message), origin);
                else if (t.outcome == TaskOutcome::node_lost) {
                    push(step::lose_node(end, id, t.message), origin);
                    end += t.delete_after;
                    push(step::delete_pod(end, id), origin);
                } else push(step::fail_task(end, id, t.exit_code), origin);
                at = end + scenario_detail::retry_delay(attempt + 1);
                finished_at = end;
            }
            if (failing <= t.backoff_limit) {
                // A replacement pod re-runs the task (Redis does not mark it completed) and succeeds.
                start(at);
                run(at + t.pending);
                double end = at + t.pending + t.duration;
                usage(at + t.pending, end);
                task_log(end, {"job successful", "job exit code: 0", "handler finished"});
                push(step::succeed_task(end, id), origin);
                finished_line(end);
                finished_at = end;
            }
            break;
        }
        case TaskOutcome::deadline_exceeded: {
            start(at);
            run(at + t.pending);
            const double deadline = at + t.active_deadline.value_or(t.pending + t.duration);
            usage(at + t.pending, deadline);
            task_log(deadline, tail);
            push(step::deadline_exceeded(deadline, id), origin);
            finished_at = deadline;
            break;
        }
        case TaskOutcome::crash_loop: {
            start(at);
            run(at + t.pending);
            double running_since = at + t.pending;
            const int crashes = t.failed_attempts;
            for (int crash = 1; crash <= crashes; ++crash) {
                double end = running_since + t.duration;
                usage(running_since, end);
                task_log(end, tail);
                push(step::crash_container(end, id, t.exit_code), origin);
                finished_at = end;
                if (crash > t.backoff_limit) {
                    // The Job controller counts the restarts against backoffLimit and gives up.
                    push(step::fail_job(end, id, "BackoffLimitExceeded"), origin);
                    break;
                }
                running_since = end + scenario_detail::crash_loop_delay(crash);
                push(step::restart_container(running_since, id), origin);
                task_log(running_since, {"handler started, (ID: " + tid + ")"});
            }
            if (crashes <= t.backoff_limit) {
                double end = running_since + t.duration;
                usage(running_since, end);
                task_log(end, {"job successful", "job exit code: 0", "handler finished"});
                push(step::succeed_task(end, id), origin);
                finished_line(end);
                finished_at = end;
            }
            break;
        }
        case TaskOutcome::running:
            start(at);
            run(at + t.pending);
            usage(at + t.pending, at + t.pending + t.duration);
            break;
        case TaskOutcome::image_pull_failure: {
            start(at);
            Step pull = step::container_waiting(at + t.pending, id, "ErrImagePull", t.message);
            push(std::move(pull), origin);
            push(step::container_waiting(at + t.pending + 10, id, "ImagePullBackOff"), origin);
            break;
        }
        case TaskOutcome::container_waiting:
            start(at);
            push(step::container_waiting(at + t.pending, id, t.waiting_reason, t.message), origin);
            break;
        case TaskOutcome::unschedulable:
            start(at, false);
            push(step::unschedulable(at, id, t.message), origin);
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

EXECUTION_SENTINEL_DECL boost::json::object Scenario::context() const {
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

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_TIMELINE_IPP

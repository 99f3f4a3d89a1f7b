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

} // namespace scenario_detail


EXECUTION_SENTINEL_DECL void Scenario::validate() const {
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

EXECUTION_SENTINEL_DECL std::vector<Step> Scenario::timeline() const {
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

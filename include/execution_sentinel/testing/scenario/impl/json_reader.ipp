// Bodies of testing/scenario/json_reader.hpp and of Scenario::from_json, parse and from_file: included by the
// scenario headers (header-only use) or by <execution_sentinel/testing/src.hpp> under
// EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_JSON_READER_IPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_JSON_READER_IPP

#include <execution_sentinel/testing/scenario/json_reader.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace execution_sentinel::testing {

namespace scenario_detail {

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


EXECUTION_SENTINEL_DECL std::optional<StepKind> step_kind_from(std::string_view s) {
    for (int k = 0; k <= static_cast<int>(StepKind::reset_watches); ++k)
        if (step_kind_name(static_cast<StepKind>(k)) == s) return static_cast<StepKind>(k);
    return std::nullopt;
}

EXECUTION_SENTINEL_DECL std::optional<TaskOutcome> task_outcome_from(std::string_view s) {
    for (int k = 0; k <= static_cast<int>(TaskOutcome::completion_lost); ++k)
        if (task_outcome_name(static_cast<TaskOutcome>(k)) == s) return static_cast<TaskOutcome>(k);
    return std::nullopt;
}


EXECUTION_SENTINEL_DECL Step parse_step(const boost::json::value& v, std::size_t index) {
    Fields f(v, "steps[" + std::to_string(index) + "]");
    Step s;
    s.origin = f.path();
    s.at = f.non_negative("at", 0);
    std::string action = f.required_string("action");
    // Convenience names that are finish_task / container_waiting with fixed fields.
    std::optional<StepKind> kind = step_kind_from(action);
    if (action == "succeed_task" || action == "fail_task" || action == "oom_kill") kind = StepKind::finish_task;
    if (action == "image_pull_failure") kind = StepKind::container_waiting;
    if (action == "deadline_exceeded") kind = StepKind::fail_job;
    if (!kind) throw ScenarioError(f.at("action") + ": unknown action \"" + action + "\"");
    s.kind = *kind;
    auto need_task = [&] { s.task = f.required_string("task"); };
    switch (s.kind) {
    case StepKind::create_engine_pod:
    case StepKind::replace_engine_pod: s.name = f.string("name"); break;
    case StepKind::create_support_objects:
    case StepKind::delete_finished_jobs:
    case StepKind::close_watches:
    case StepKind::reset_watches:
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
        if (auto d = f.opt_integer("active_deadline_seconds", 1, 1000000000)) s.active_deadline_seconds = static_cast<int>(*d);
        s.restart_policy = f.string("restart_policy", "Never");
        if (s.restart_policy != "Never" && s.restart_policy != "OnFailure")
            throw ScenarioError(f.at("restart_policy") + ": expected \"Never\" or \"OnFailure\"");
        s.schedule = f.boolean("schedule", true);
        break;
    case StepKind::run_task:
    case StepKind::restart_container:
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
    case StepKind::set_usage:
        s.task = f.string("task");
        s.pod = f.string("pod");
        if (!s.task.empty() && !s.pod.empty()) throw ScenarioError(f.path() + ": set_usage takes \"task\" or \"pod\", not both");
        s.container = f.string("container");
        if (!s.pod.empty() && s.container.empty()) throw ScenarioError(f.at("container") + ": missing (expected a string)");
        if (f.has("cpu_cores")) s.cpu_cores = f.non_negative("cpu_cores", 0);
        if (f.has("memory_mib")) s.memory_mib = f.non_negative("memory_mib", 0);
        if (!s.cpu_cores && !s.memory_mib) throw ScenarioError(f.path() + ": set_usage needs \"cpu_cores\" or \"memory_mib\"");
        break;
    case StepKind::metrics_api: {
        const std::string state = f.required_string("state");
        auto m = metrics_api_from(state);
        if (!m) throw ScenarioError(f.at("state") + ": expected \"available\", \"absent\", \"forbidden\" or \"unavailable\"");
        s.metrics_api = *m;
        break;
    }
    case StepKind::evict_task:
    case StepKind::lose_node:
        need_task();
        s.message = f.string("message");
        break;
    case StepKind::fail_job:
        need_task();
        s.reason = action == "deadline_exceeded" ? "DeadlineExceeded" : f.string("reason", "BackoffLimitExceeded");
        if (s.reason.empty()) throw ScenarioError(f.at("reason") + ": must not be empty");
        s.message = f.string("message");
        break;
    case StepKind::crash_container:
        need_task();
        s.exit_code = f.integer("exit_code", 1, 1, 255);
        s.reason = f.string("reason", "Error");
        break;
    case StepKind::delete_pod:
        need_task();
        s.reason = f.string("reason", "DeletionByTaintManager");
        s.message = f.string("message");
        break;
    }
    f.reject_unknown();
    return s;
}

EXECUTION_SENTINEL_DECL TaskDecl parse_task(const boost::json::value& v, std::size_t index, const TaskDecl& defaults) {
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
    t.message = f.string("message");
    t.waiting_reason = f.string("waiting_reason", t.waiting_reason);
    if (t.waiting_reason.empty()) throw ScenarioError(f.at("waiting_reason") + ": must not be empty");
    if (f.has("active_deadline")) {
        const double d = f.non_negative("active_deadline", 0);
        if (d <= 0) throw ScenarioError(f.at("active_deadline") + ": must be positive");
        t.active_deadline = d;
    }
    t.delete_after = f.non_negative("delete_after", t.delete_after);
    t.log_tail = f.strings("log_tail");
    if (f.has("memory_start_mib")) t.memory_start_mib = f.non_negative("memory_start_mib", 0);
    if (f.has("memory_peak_mib")) t.memory_peak_mib = f.non_negative("memory_peak_mib", 0);
    if (f.has("memory_peak_at")) t.memory_peak_at = f.non_negative("memory_peak_at", 0);
    if (f.has("cpu_cores")) t.cpu_cores = f.non_negative("cpu_cores", 0);
    f.reject_unknown();
    return t;
}

} // namespace scenario_detail


EXECUTION_SENTINEL_DECL Scenario Scenario::from_json(const boost::json::value& v) {
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
    if (auto* m = f.find("metrics")) {
        Fields mf(*m, f.at("metrics"));
        s.metrics_period = mf.non_negative("period", s.metrics_period);
        if (s.metrics_period < 0.001) throw ScenarioError(mf.at("period") + ": must be at least 0.001");
        const std::string api = mf.string("api", "available");
        auto mode = metrics_api_from(api);
        if (!mode) throw ScenarioError(mf.at("api") + ": expected \"available\", \"absent\", \"forbidden\" or \"unavailable\"");
        s.metrics_api = *mode;
        mf.reject_unknown();
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

EXECUTION_SENTINEL_DECL Scenario Scenario::parse(std::string_view text) {
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    boost::json::value v = boost::json::parse(text, ec, {}, opts);
    if (ec) throw ScenarioError("scenario: invalid JSON: " + ec.message());
    return from_json(v);
}

EXECUTION_SENTINEL_DECL Scenario Scenario::from_file(const std::filesystem::path& path) {
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

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_IMPL_JSON_READER_IPP

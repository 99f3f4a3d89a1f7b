// MonitoringContext: what the orchestrator tells the sentinel about the workflow it must watch — where the
// engine runs and which tasks to expect. Field names and JSON form follow the original tool (docs/context.md).
#ifndef EXECUTION_SENTINEL_CONTEXT_HPP
#define EXECUTION_SENTINEL_CONTEXT_HPP

#include <execution_sentinel/kube/objects.hpp>

#include <execution_sentinel/detail/json_reader.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace execution_sentinel {

/// One task the workflow will run.
struct TaskSpec {
    std::string name;      ///< the process name from workflow.json (need not be unique)
    std::string task_type; ///< e.g. "individuals_merge"; "" = unknown (matches any type, see docs/context.md)
    int dag_order = 99;    ///< declared position of the type in the DAG (0 = first); 99 = unknown
    std::optional<double> expected_duration_seconds; ///< nullopt or 0 = unknown
    std::string memory_limit; ///< Kubernetes quantity, "" if unknown (used in messages)
    std::string cpu_limit;    ///< Kubernetes quantity, "" if unknown
    friend bool operator==(const TaskSpec&, const TaskSpec&) = default;
};

/// The watched workflow.
struct MonitoringContext {
    std::string namespace_;        ///< "namespace" in JSON; a DNS-1123 label; required
    std::string engine_pod_name;   ///< the engine pod; either this or engine_pod_selector is required
    std::string engine_container = "hyperflow";
    std::vector<TaskSpec> task_inventory;
    std::map<std::string, std::vector<std::string>> dag_structure; ///< task type → types it depends on
    int agglomeration_factor = 1;  ///< tasks per Job (≥ 1)
    std::string execution_model = "JOB"; ///< JOB, JOB_AGGLOMERATION or WORKER_POOL
    /// Label selector finding the engine pod when its name is unknown or changes (Deployment restarts),
    /// e.g. "component=hyperflow-engine". "" = use engine_pod_name only.
    std::string engine_pod_selector;
    std::string completion_signal_path = "/work_dir/.workflow-exit-code";
    std::string task_label_selector = "app=hyperflow";

    /// The number of tasks the inventory announces.
    int total_expected_tasks() const noexcept { return static_cast<int>(task_inventory.size()); }
    friend bool operator==(const MonitoringContext&, const MonitoringContext&) = default;
};

/// A context that cannot be used; what() starts with the field path, e.g.
/// "task_inventory[3].dag_order: expected an integer".
class ContextError : public std::invalid_argument {
public:
    ContextError(std::string field, const std::string& problem)
        : std::invalid_argument(field + ": " + problem), field_(std::move(field)) {}
    const std::string& field() const noexcept { return field_; }

private:
    std::string field_;
};

// ------------------------------------------------------------------------------------------- label selectors

/// A Kubernetes label selector (equality- and set-based): "a=b,c!=d,e,!f,g in (x,y),h notin (z)".
class LabelSelector {
public:
    struct Requirement {
        enum class Op : std::uint8_t { equals, not_equals, exists, not_exists, in, not_in };
        std::string key;
        Op op = Op::exists;
        std::vector<std::string> values;
    };

    LabelSelector() = default;

    /// Parses; throws std::invalid_argument describing the problem (the selector text is not secret).
    static LabelSelector parse(std::string_view text) {
        LabelSelector sel;
        std::size_t i = 0;
        auto skip_ws = [&] {
            while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        };
        auto key_char = [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '_' || c == '.' || c == '/';
        };
        auto read_token = [&] {
            skip_ws();
            std::size_t b = i;
            while (i < text.size() && key_char(text[i])) ++i;
            return std::string(text.substr(b, i - b));
        };
        if (text.size() > 4096) throw std::invalid_argument("label selector longer than 4096 characters");
        skip_ws();
        if (i == text.size()) return sel;
        while (true) {
            Requirement r;
            skip_ws();
            bool negated = false;
            if (i < text.size() && text[i] == '!') {
                negated = true;
                ++i;
            }
            r.key = read_token();
            if (r.key.empty()) throw std::invalid_argument("label selector: expected a label key");
            skip_ws();
            if (negated) {
                r.op = Requirement::Op::not_exists;
            } else if (i < text.size() && (text[i] == '=' || text[i] == '!')) {
                bool ne = text[i] == '!';
                ++i;
                if (ne) {
                    if (i >= text.size() || text[i] != '=') throw std::invalid_argument("label selector: expected '!='");
                    ++i;
                } else if (i < text.size() && text[i] == '=') {
                    ++i;
                }
                r.op = ne ? Requirement::Op::not_equals : Requirement::Op::equals;
                r.values.push_back(read_token());
            } else if (text.substr(i, 2) == "in" || text.substr(i, 5) == "notin") {
                bool notin = text.substr(i, 5) == "notin";
                i += notin ? 5 : 2;
                r.op = notin ? Requirement::Op::not_in : Requirement::Op::in;
                skip_ws();
                if (i >= text.size() || text[i] != '(') throw std::invalid_argument("label selector: expected '('");
                ++i;
                while (true) {
                    r.values.push_back(read_token());
                    skip_ws();
                    if (i < text.size() && text[i] == ',') {
                        ++i;
                        continue;
                    }
                    if (i < text.size() && text[i] == ')') {
                        ++i;
                        break;
                    }
                    throw std::invalid_argument("label selector: expected ',' or ')'");
                }
            } else {
                r.op = Requirement::Op::exists;
            }
            sel.requirements_.push_back(std::move(r));
            skip_ws();
            if (i == text.size()) break;
            if (text[i] != ',') throw std::invalid_argument("label selector: unexpected character");
            ++i;
        }
        return sel;
    }

    bool empty() const noexcept { return requirements_.empty(); }
    const std::vector<Requirement>& requirements() const noexcept { return requirements_; }

    /// True when every requirement holds. An empty selector matches everything.
    bool matches(const kube::Labels& labels) const noexcept {
        for (auto& r : requirements_) {
            const auto* v = labels.find(r.key);
            bool in_values = false;
            if (v)
                for (auto& x : r.values) in_values = in_values || x == *v;
            switch (r.op) {
            case Requirement::Op::equals:
            case Requirement::Op::in:
                if (!in_values) return false;
                break;
            case Requirement::Op::not_equals:
            case Requirement::Op::not_in:
                if (in_values) return false;
                break;
            case Requirement::Op::exists:
                if (!v) return false;
                break;
            case Requirement::Op::not_exists:
                if (v) return false;
                break;
            }
        }
        return true;
    }

private:
    std::vector<Requirement> requirements_;
};

// ------------------------------------------------------------------------------------------- validation

namespace detail {

inline bool es_is_dns1123_label(std::string_view s) noexcept {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return s.front() != '-' && s.back() != '-';
}

inline bool es_is_dns1123_subdomain(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    std::size_t b = 0;
    while (true) {
        auto e = s.find('.', b);
        if (!es_is_dns1123_label(s.substr(b, e == std::string_view::npos ? e : e - b))) return false;
        if (e == std::string_view::npos) return true;
        b = e + 1;
    }
}

inline std::string es_upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

} // namespace detail

/// Checks a context; throws ContextError naming the first bad field. Normalises execution_model to upper case.
inline void validate(MonitoringContext& ctx) {
    if (ctx.namespace_.empty()) throw ContextError("namespace", "required");
    if (!detail::es_is_dns1123_label(ctx.namespace_))
        throw ContextError("namespace", "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63, "
                                        "starting and ending with a letter or digit)");
    if (ctx.engine_pod_name.empty() && ctx.engine_pod_selector.empty())
        throw ContextError("engine_pod_name", "required (or set engine_pod_selector)");
    if (!ctx.engine_pod_name.empty() && !detail::es_is_dns1123_subdomain(ctx.engine_pod_name))
        throw ContextError("engine_pod_name", "not a valid pod name");
    if (!detail::es_is_dns1123_label(ctx.engine_container))
        throw ContextError("engine_container", "must be a container name (DNS-1123 label)");
    try {
        (void)LabelSelector::parse(ctx.engine_pod_selector);
    } catch (const std::invalid_argument& e) {
        throw ContextError("engine_pod_selector", e.what());
    }
    try {
        (void)LabelSelector::parse(ctx.task_label_selector);
    } catch (const std::invalid_argument& e) {
        throw ContextError("task_label_selector", e.what());
    }
    if (ctx.agglomeration_factor < 1) throw ContextError("agglomeration_factor", "must be at least 1");
    auto model = detail::es_upper(ctx.execution_model);
    if (model != "JOB" && model != "JOB_AGGLOMERATION" && model != "WORKER_POOL")
        throw ContextError("execution_model", "expected JOB, JOB_AGGLOMERATION or WORKER_POOL");
    ctx.execution_model = model;
    if (ctx.completion_signal_path.empty() || ctx.completion_signal_path.front() != '/')
        throw ContextError("completion_signal_path", "must be an absolute path");
    for (std::size_t i = 0; i < ctx.task_inventory.size(); ++i) {
        auto& t = ctx.task_inventory[i];
        auto at = "task_inventory[" + std::to_string(i) + "]";
        if (t.name.empty()) throw ContextError(at + ".name", "required");
        if (t.expected_duration_seconds &&
            (!std::isfinite(*t.expected_duration_seconds) || *t.expected_duration_seconds < 0))
            throw ContextError(at + ".expected_duration_seconds", "must be a finite number of seconds, not negative");
    }
    for (auto& [type, ups] : ctx.dag_structure)
        if (type.empty()) throw ContextError("dag_structure", "task type names must not be empty");
}

// ------------------------------------------------------------------------------------------- JSON

namespace detail {

struct ContextFail {
    [[noreturn]] void operator()(std::string path, const std::string& problem) const {
        throw ContextError(std::move(path), problem);
    }
};
/// The context's fields, read by the library's one path-tracking reader (detail/json_reader.hpp).
using EsJsonReader = JsonFields<ContextFail>;

} // namespace detail

inline TaskSpec task_spec_from_json(const boost::json::value& v, const std::string& path = "") {
    const auto* o = v.if_object();
    if (!o) throw ContextError(path.empty() ? "task" : path, "expected an object");
    detail::EsJsonReader r(*o, path.empty() ? "" : path + ".", detail::ContextFail{});
    TaskSpec t;
    r.string("name", t.name, true);
    r.string("task_type", t.task_type);
    r.integer("dag_order", t.dag_order);
    r.number("expected_duration_seconds", t.expected_duration_seconds);
    r.string("memory_limit", t.memory_limit);
    r.string("cpu_limit", t.cpu_limit);
    return t;
}

inline boost::json::object to_json(const TaskSpec& t) {
    boost::json::object o;
    o["name"] = t.name;
    o["task_type"] = t.task_type;
    o["dag_order"] = t.dag_order;
    if (t.expected_duration_seconds) o["expected_duration_seconds"] = *t.expected_duration_seconds;
    else o["expected_duration_seconds"] = nullptr;
    o["memory_limit"] = t.memory_limit;
    o["cpu_limit"] = t.cpu_limit;
    return o;
}

/// Reads a context from JSON and validates it. Unknown fields are ignored; missing optional fields keep their
/// defaults. Throws ContextError naming the field path.
inline MonitoringContext context_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o) throw ContextError("(root)", "expected a JSON object");
    detail::EsJsonReader r(*o, "", detail::ContextFail{});
    MonitoringContext c;
    r.string("namespace", c.namespace_, true);
    r.string("engine_pod_name", c.engine_pod_name);
    r.string("engine_container", c.engine_container);
    r.string("engine_pod_selector", c.engine_pod_selector);
    r.string("completion_signal_path", c.completion_signal_path);
    r.string("task_label_selector", c.task_label_selector);
    r.string("execution_model", c.execution_model);
    r.integer("agglomeration_factor", c.agglomeration_factor);
    if (auto* arr = r.array("task_inventory")) {
        c.task_inventory.reserve(arr->size());
        for (std::size_t i = 0; i < arr->size(); ++i)
            c.task_inventory.push_back(task_spec_from_json((*arr)[i], "task_inventory[" + std::to_string(i) + "]"));
    }
    if (r.has("dag_structure")) {
        const auto* d = r.get("dag_structure")->if_object();
        if (!d) r.fail("dag_structure", "expected an object mapping task types to lists of types");
        auto dag = r.nested(*d, "dag_structure");
        for (auto& [k, ups] : *d) {
            std::vector<std::string> list;
            if (!ups.is_null() && !ups.is_array()) dag.fail(k, "expected an array of task types");
            list = dag.strings(k);
            c.dag_structure[std::string(k)] = std::move(list);
        }
    }
    validate(c);
    return c;
}

/// Parses JSON text, then as context_from_json. Invalid JSON is a ContextError on "(root)".
inline MonitoringContext context_from_json_text(std::string_view text) {
    boost::json::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) throw ContextError("(root)", "not valid JSON (" + ec.message() + ")");
    return context_from_json(v);
}

inline boost::json::object to_json(const MonitoringContext& c) {
    boost::json::object o;
    o["namespace"] = c.namespace_;
    o["engine_pod_name"] = c.engine_pod_name;
    o["engine_container"] = c.engine_container;
    boost::json::array inv;
    inv.reserve(c.task_inventory.size());
    for (auto& t : c.task_inventory) inv.push_back(to_json(t));
    o["task_inventory"] = std::move(inv);
    boost::json::object dag;
    for (auto& [k, ups] : c.dag_structure) {
        boost::json::array a;
        for (auto& u : ups) a.push_back(boost::json::string(u));
        dag[k] = std::move(a);
    }
    o["dag_structure"] = std::move(dag);
    o["agglomeration_factor"] = c.agglomeration_factor;
    o["execution_model"] = c.execution_model;
    o["engine_pod_selector"] = c.engine_pod_selector;
    o["completion_signal_path"] = c.completion_signal_path;
    o["task_label_selector"] = c.task_label_selector;
    return o;
}

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const TaskSpec& t) {
    jv = to_json(t);
}
inline TaskSpec tag_invoke(const boost::json::value_to_tag<TaskSpec>&, const boost::json::value& jv) {
    return task_spec_from_json(jv);
}
inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const MonitoringContext& c) {
    jv = to_json(c);
}
inline MonitoringContext tag_invoke(const boost::json::value_to_tag<MonitoringContext>&,
                                    const boost::json::value& jv) {
    return context_from_json(jv);
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_CONTEXT_HPP

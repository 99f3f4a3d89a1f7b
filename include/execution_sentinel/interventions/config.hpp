// Reading InterventionSettings from YAML (docs/interventions.md). Errors name the file, the line and the field.
//
//   enabled: true
//   dry_run: false
//   max_per_hour: 3
//   max_per_run: 10
//   policies:
//     - name: restart-stuck-pods
//       on: [ANOMALY_STALL]
//       when: {level: [task], state: [running]}
//       action: delete_pod
#ifndef EXECUTION_SENTINEL_INTERVENTIONS_CONFIG_HPP
#define EXECUTION_SENTINEL_INTERVENTIONS_CONFIG_HPP

#include <execution_sentinel/detail/bounded_yaml.hpp>
#include <execution_sentinel/interventions/policy.hpp>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace execution_sentinel {

/// A configuration that cannot be used: what() is "<file>:<line>: <field>: <problem>".
class InterventionConfigError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

struct InterventionYaml {
    std::string file;

    [[noreturn]] void fail(const YAML::Node& at, const std::string& field, const std::string& problem) const {
        std::string where = file;
        auto mark = at.Mark();
        if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1);
        throw InterventionConfigError(where + ": " + field + ": " + problem);
    }

    std::string scalar(const YAML::Node& n, const std::string& field) const {
        if (!n.IsScalar()) fail(n, field, "expected a single value");
        return n.Scalar();
    }
    bool boolean(const YAML::Node& n, const std::string& field) const {
        auto s = scalar(n, field);
        if (s == "true" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "no" || s == "off") return false;
        fail(n, field, "expected true or false");
    }
    int integer(const YAML::Node& n, const std::string& field, int lo, int hi) const {
        auto s = scalar(n, field);
        if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
            fail(n, field, "expected a whole number");
        int v = std::stoi(s);
        if (v < lo || v > hi) fail(n, field, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
        return v;
    }
    std::vector<std::string> strings(const YAML::Node& n, const std::string& field) const {
        std::vector<std::string> out;
        if (n.IsScalar()) {
            out.push_back(n.Scalar());
            return out;
        }
        if (!n.IsSequence()) fail(n, field, "expected a list");
        std::size_t i = 0;
        for (const auto& item : n) out.push_back(scalar(item, field + "[" + std::to_string(i++) + "]"));
        return out;
    }
};

} // namespace detail

/// Parses the YAML text of an interventions configuration. `file` names it in errors. Unknown keys are errors
/// (a misspelt limit must not silently fall back to its default).
inline InterventionSettings parse_intervention_settings(std::string_view text, const std::string& file = "interventions") {
    detail::InterventionYaml y{file};
    detail::YamlProblem problem;
    auto root = detail::load_bounded_yaml(text, problem, {.max_bytes = 1024 * 1024, .max_nodes = 100000, .max_depth = 20});
    if (!root) {
        std::string where = file + (problem.line ? ":" + std::to_string(problem.line) : std::string());
        throw InterventionConfigError(where + ": " + problem.message);
    }
    InterventionSettings s;
    if (root->IsNull()) return s;
    if (!root->IsMap()) y.fail(*root, "(document)", "expected a mapping of settings");
    for (const auto& kv : *root) {
        auto key = y.scalar(kv.first, "(key)");
        const auto& v = kv.second;
        if (key == "enabled") s.enabled = y.boolean(v, key);
        else if (key == "dry_run") s.dry_run = y.boolean(v, key);
        else if (key == "max_per_hour") s.max_per_hour = y.integer(v, key, 0, 10000);
        else if (key == "max_per_run") s.max_per_run = y.integer(v, key, 0, 100000);
        else if (key == "policies") {
            if (!v.IsSequence()) y.fail(v, key, "expected a list of policies");
            std::size_t i = 0;
            for (const auto& pn : v) {
                const std::string base = "policies[" + std::to_string(i++) + "]";
                if (!pn.IsMap()) y.fail(pn, base, "expected a mapping");
                InterventionPolicy p;
                bool has_action = false;
                for (const auto& pkv : pn) {
                    auto pkey = y.scalar(pkv.first, base + ".(key)");
                    const std::string field = base + "." + pkey;
                    const auto& pv = pkv.second;
                    if (pkey == "name") p.name = y.scalar(pv, field);
                    else if (pkey == "on") {
                        for (auto& t : y.strings(pv, field)) {
                            auto type = report_type_from_string(t);
                            if (!type) y.fail(pv, field, "unknown report type \"" + t.substr(0, 64) + "\"");
                            p.on.push_back(*type);
                        }
                    } else if (pkey == "min_severity") {
                        auto sev = severity_from_string(y.scalar(pv, field));
                        if (!sev) y.fail(pv, field, "expected one of info, warning, error, critical");
                        p.min_severity = *sev;
                    } else if (pkey == "when") {
                        if (!pv.IsMap()) y.fail(pv, field, "expected a mapping of detail → values");
                        for (const auto& wkv : pv) {
                            auto wkey = y.scalar(wkv.first, field + ".(key)");
                            p.when[wkey] = y.strings(wkv.second, field + "." + wkey);
                        }
                    } else if (pkey == "action") {
                        auto a = intervention_action_from_string(y.scalar(pv, field));
                        if (!a) y.fail(pv, field, "expected one of annotate, delete_pod, suspend_job");
                        p.action = *a;
                        has_action = true;
                    } else {
                        y.fail(pkv.first, field, "unknown setting");
                    }
                }
                if (p.on.empty()) y.fail(pn, base + ".on", "a policy needs at least one report type");
                if (!has_action) y.fail(pn, base + ".action", "a policy needs an action");
                if (p.name.empty()) p.name = base;
                s.policies.push_back(std::move(p));
            }
        } else {
            y.fail(kv.first, key, "unknown setting");
        }
    }
    return s;
}

/// Reads and parses a configuration file (at most 1 MiB).
inline InterventionSettings load_intervention_settings(const std::filesystem::path& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw InterventionConfigError(path.string() + ": cannot read the file (" + ec.message() + ")");
    if (size > 1024 * 1024) throw InterventionConfigError(path.string() + ": larger than 1 MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InterventionConfigError(path.string() + ": cannot open the file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_intervention_settings(ss.str(), path.string());
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_INTERVENTIONS_CONFIG_HPP

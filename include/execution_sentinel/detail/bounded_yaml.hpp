// Reading YAML from outside without letting it grow: a byte limit before parsing, then a walk that counts every
// node as a reader would see it (an alias counts again each time it is reached, so a "billion laughs" document
// is refused after `max_nodes` steps, not after it has been expanded) and bounds the nesting depth. Every YAML
// the project reads (kubeconfig, configuration files) goes through load_bounded_yaml().
#ifndef EXECUTION_SENTINEL_DETAIL_BOUNDED_YAML_HPP
#define EXECUTION_SENTINEL_DETAIL_BOUNDED_YAML_HPP

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace execution_sentinel::detail {

/// Limits of one YAML document. The defaults are far above any kubeconfig or configuration file.
struct YamlLimits {
    std::size_t max_bytes = 16 * 1024 * 1024; ///< the document's size
    std::size_t max_nodes = 1000000;          ///< nodes reached by a full walk, aliases counted each time
    std::size_t max_depth = 100;              ///< nesting of maps and sequences
};

/// What went wrong reading a YAML document: `message` is complete ("not valid YAML (...)", "... aliases expand to
/// more than ... nodes"); `line`/`column` are 1-based, 0 when unknown.
struct YamlProblem {
    std::string message;
    std::size_t line = 0;
    std::size_t column = 0;
};

namespace yaml_detail {
/// Counts nodes depth-first; false once a limit is passed (the walk stops there: its cost is bounded by the limits).
inline bool walk(const YAML::Node& n, std::size_t depth, std::size_t& count, const YamlLimits& limits,
                 YamlProblem& problem) {
    if (++count > limits.max_nodes) {
        problem.message = "its aliases and anchors expand to more than " + std::to_string(limits.max_nodes) +
                          " nodes (an alias bomb?)";
        return false;
    }
    if (depth > limits.max_depth) {
        problem.message = "it is nested more than " + std::to_string(limits.max_depth) + " levels deep";
        auto mark = n.Mark();
        if (!mark.is_null()) {
            problem.line = static_cast<std::size_t>(mark.line) + 1;
            problem.column = static_cast<std::size_t>(mark.column) + 1;
        }
        return false;
    }
    if (n.IsMap()) {
        for (const auto& kv : n)
            if (!walk(kv.first, depth + 1, count, limits, problem) || !walk(kv.second, depth + 1, count, limits, problem))
                return false;
    } else if (n.IsSequence()) {
        for (const auto& item : n)
            if (!walk(item, depth + 1, count, limits, problem)) return false;
    }
    return true;
}
} // namespace yaml_detail

/// Parses `text` as one YAML document within `limits`. On failure returns nullopt and fills `problem`; never
/// throws for bad input.
inline std::optional<YAML::Node> load_bounded_yaml(std::string_view text, YamlProblem& problem,
                                                   const YamlLimits& limits = {}) {
    problem = {};
    if (text.size() > limits.max_bytes) {
        problem.message = "it is larger than " + std::to_string(limits.max_bytes) + " bytes";
        return std::nullopt;
    }
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        problem.message = "not valid YAML (" + e.msg + ")";
        if (!e.mark.is_null()) {
            problem.line = static_cast<std::size_t>(e.mark.line) + 1;
            problem.column = static_cast<std::size_t>(e.mark.column) + 1;
        }
        return std::nullopt;
    } catch (const std::exception& e) {
        problem.message = std::string("not readable YAML (") + e.what() + ")";
        return std::nullopt;
    }
    std::size_t count = 0;
    if (!yaml_detail::walk(root, 0, count, limits, problem)) return std::nullopt;
    return root;
}

} // namespace execution_sentinel::detail

#endif // EXECUTION_SENTINEL_DETAIL_BOUNDED_YAML_HPP

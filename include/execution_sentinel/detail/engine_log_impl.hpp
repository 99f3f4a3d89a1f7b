// Implementation of engine_log.hpp: pattern compilation and matching (Boost.Regex, whose backtracking is bounded:
// an explosive match throws instead of running forever) and the patterns file (yaml-cpp through bounded_yaml).
#ifndef EXECUTION_SENTINEL_DETAIL_ENGINE_LOG_IMPL_HPP
#define EXECUTION_SENTINEL_DETAIL_ENGINE_LOG_IMPL_HPP

#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/detail/bounded_yaml.hpp>

#include <boost/regex.hpp>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

namespace execution_sentinel {

struct LogPatterns::Compiled {
    boost::regex re;
};

#if EXECUTION_SENTINEL_COMPILE_BODIES

namespace detail {
/// Placeholders of a message template: calls on_text(literal) and on_placeholder(name) in order.
template <class T, class P> void es_walk_template(std::string_view m, T&& on_text, P&& on_placeholder) {
    std::size_t i = 0;
    while (i < m.size()) {
        auto open = m.find('{', i);
        if (open == std::string_view::npos) {
            on_text(m.substr(i));
            return;
        }
        auto close = m.find('}', open + 1);
        bool placeholder = close != std::string_view::npos && close > open + 1 && close - open <= 16;
        if (placeholder)
            for (auto c : m.substr(open + 1, close - open - 1))
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                    placeholder = false;
        if (!placeholder) {
            on_text(m.substr(i, open + 1 - i));
            i = open + 1;
            continue;
        }
        on_text(m.substr(i, open - i));
        on_placeholder(m.substr(open + 1, close - open - 1));
        i = close + 1;
    }
}
} // namespace detail

EXECUTION_SENTINEL_DECL void LogPatterns::add(LogPattern p, std::string_view origin, std::size_t line) {
    auto fail = [&](const char* field, const std::string& problem) {
        throw LogPatternError(std::string(origin), line, p.name.empty() ? field : "pattern '" + p.name + "': " + field,
                              problem);
    };
    if (patterns_.size() >= max_log_patterns)
        fail("name", "more than " + std::to_string(max_log_patterns) + " patterns");
    if (p.name.empty() || p.name.size() > 64) fail("name", "a name of 1 to 64 characters is required");
    for (auto& q : patterns_)
        if (q.name == p.name) fail("name", "a pattern of this name exists already");
    if (p.regex.empty()) fail("regex", "an expression is required");
    if (p.regex.size() > max_log_pattern_regex)
        fail("regex", "longer than " + std::to_string(max_log_pattern_regex) + " characters");
    if (!log_pattern_type_allowed(p.type))
        fail("type", "patterns may produce PROGRESS, ANOMALY_OOMKILL, ANOMALY_STRAGGLER, MASS_FAILURE, ANOMALY_STALL, "
                     "ANOMALY_TASK_FAILED, ANOMALY_MEMORY_PRESSURE or STRUCTURE");
    if (p.message.empty()) fail("message", "a message is required");
    if (p.message.size() > max_log_pattern_message)
        fail("message", "longer than " + std::to_string(max_log_pattern_message) + " characters");
    auto c = std::make_shared<Compiled>();
    try {
        c->re.assign(p.regex, boost::regex::perl);
    } catch (const boost::regex_error& e) {
        fail("regex", std::string("not a valid regular expression (") + e.what() + ")");
    } catch (const std::exception& e) {
        fail("regex", std::string("cannot be compiled (") + e.what() + ")");
    }
    auto groups = c->re.mark_count();
    detail::es_walk_template(
        p.message, [](std::string_view) {},
        [&](std::string_view name) {
            if (name == "line") return;
            auto n = detail::es_parse_int(name);
            if (!n) fail("message", "unknown placeholder {" + std::string(name) + "}; use {0}, {1} … or {line}");
            if (static_cast<std::size_t>(*n) > groups)
                fail("message", "placeholder {" + std::string(name) + "} but the expression has " +
                                    std::to_string(groups) + " capture group(s)");
        });
    patterns_.push_back(std::move(p));
    compiled_.push_back(std::move(c));
}

EXECUTION_SENTINEL_DECL std::vector<LogPatternMatch> LogPatterns::match(std::string_view line) const {
    std::vector<LogPatternMatch> out;
    if (line.size() > max_engine_log_line) line = line.substr(0, max_engine_log_line);
    for (std::size_t i = 0; i < compiled_.size(); ++i) {
        boost::match_results<std::string_view::const_iterator> m;
        bool found = false;
        try {
            found = boost::regex_search(line.begin(), line.end(), m, compiled_[i]->re);
        } catch (const std::exception&) {
            found = false; // too complex for this line: the engine gave up, which is no match
        }
        if (!found) continue;
        LogPatternMatch r;
        r.index = i;
        for (std::size_t g = 0; g < m.size(); ++g) {
            std::string v = m[g].matched ? std::string(m[g].first, m[g].second) : std::string();
            if (v.size() > 256) v.resize(256);
            r.groups.push_back(std::move(v));
        }
        detail::es_walk_template(
            patterns_[i].message, [&](std::string_view text) { r.message += text; },
            [&](std::string_view name) {
                if (name == "line") r.message += line;
                else if (auto n = detail::es_parse_int(name); n && static_cast<std::size_t>(*n) < r.groups.size())
                    r.message += r.groups[static_cast<std::size_t>(*n)];
            });
        if (r.message.size() > max_log_pattern_message) r.message.resize(max_log_pattern_message);
        out.push_back(std::move(r));
    }
    return out;
}

EXECUTION_SENTINEL_DECL LogPatterns parse_log_patterns(std::string_view text, std::string_view origin) {
    const std::string where(origin);
    if (text.size() > max_log_patterns_file)
        throw LogPatternError(where, 0, "", "larger than " + std::to_string(max_log_patterns_file) + " bytes");
    detail::YamlProblem problem;
    detail::YamlLimits limits;
    limits.max_bytes = max_log_patterns_file;
    limits.max_nodes = 100'000;
    limits.max_depth = 16;
    auto root = detail::load_bounded_yaml(text, problem, limits);
    if (!root) throw LogPatternError(where, problem.line, "", problem.message);
    auto line_of = [](const YAML::Node& n) -> std::size_t {
        auto mark = n.Mark();
        return mark.is_null() ? 0 : static_cast<std::size_t>(mark.line) + 1;
    };
    LogPatterns set;
    if (root->IsNull()) return set; // an empty file: no patterns
    YAML::Node list;
    if (root->IsMap()) {
        for (const auto& kv : *root) {
            auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
            if (key != "patterns") throw LogPatternError(where, line_of(kv.first), key.empty() ? "(key)" : key.substr(0, 64), "unknown field (expected patterns)");
        }
        list = (*root)["patterns"];
        if (!list || list.IsNull()) return set;
    } else {
        list = *root;
    }
    if (!list.IsSequence()) throw LogPatternError(where, line_of(list), "patterns", "expected a list of patterns");
    std::size_t index = 0;
    for (const auto& item : list) {
        const std::string at = "patterns[" + std::to_string(index++) + "]";
        if (!item.IsMap()) throw LogPatternError(where, line_of(item), at, "expected a map with name, regex and message");
        LogPattern p;
        bool has_regex = false, has_message = false;
        for (const auto& kv : item) {
            auto key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
            auto field = at + "." + key.substr(0, 64);
            auto line = line_of(kv.second.IsNull() ? kv.first : kv.second);
            if (!kv.second.IsScalar()) throw LogPatternError(where, line, field, "expected a text value");
            const auto& v = kv.second.Scalar();
            if (key == "name") p.name = v;
            else if (key == "regex") {
                p.regex = v;
                has_regex = true;
            } else if (key == "message") {
                p.message = v;
                has_message = true;
            } else if (key == "type") {
                auto t = report_type_from_string(v);
                if (!t) throw LogPatternError(where, line, field, "unknown report type (e.g. ANOMALY_TASK_FAILED)");
                p.type = *t;
            } else if (key == "severity") {
                auto sv = severity_from_string(v);
                if (!sv) throw LogPatternError(where, line, field, "expected info, warning, error or critical");
                p.severity = *sv;
            } else {
                throw LogPatternError(where, line_of(kv.first), field,
                                      "unknown field (expected name, regex, type, severity or message)");
            }
        }
        if (!has_regex) throw LogPatternError(where, line_of(item), at + ".regex", "missing");
        if (!has_message) throw LogPatternError(where, line_of(item), at + ".message", "missing");
        try {
            set.add(std::move(p), "", 0);
        } catch (const LogPatternError& e) {
            // add() names the pattern and the field; here the file and the line are known too
            throw LogPatternError(where, line_of(item), at, e.what());
        }
    }
    return set;
}

EXECUTION_SENTINEL_DECL LogPatterns load_log_patterns(const std::filesystem::path& path) {
    const std::string where = path.string();
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw LogPatternError(where, 0, "", "cannot read the patterns file (" + ec.message() + ")");
    if (size > max_log_patterns_file)
        throw LogPatternError(where, 0, "", "larger than " + std::to_string(max_log_patterns_file) + " bytes");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw LogPatternError(where, 0, "", "cannot open the patterns file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_log_patterns(ss.str(), where);
}

#endif // EXECUTION_SENTINEL_COMPILE_BODIES

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETAIL_ENGINE_LOG_IMPL_HPP

// The workflow engine's log as a source: HyperFlow's own lines parsed into task signals, and user patterns
// (regular expression → report type, severity, message template) for errors the cluster never sees.
// docs/detectors.md ("The engine's log") describes the lines and the patterns file.
//
// The line parser is pure and bounded (a line is cut at max_engine_log_line bytes before anything reads it).
// Patterns are compiled when added (a bad expression is an error then, never while matching) and matched with a
// bounded backtracking engine: a pattern whose matching would explode gives up on that line (no match) instead of
// hanging the watch.
#ifndef EXECUTION_SENTINEL_ENGINE_LOG_HPP
#define EXECUTION_SENTINEL_ENGINE_LOG_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/report.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// The longest engine log line read; the rest of a longer line is ignored.
inline constexpr std::size_t max_engine_log_line = 4096;

// ------------------------------------------------------------------------------------------- HyperFlow lines

/// A HyperFlow task id, `<hfId>:<wfId>:<procId>:<firingId>` (e.g. "J7rLf9D0i:2:38:1").
struct EngineTaskId {
    std::string hf_id; ///< the engine process's random id
    int wf_id = 0;     ///< the workflow's number in Redis
    int proc_id = 0;   ///< the process (task) number, as in the Job's name
    int firing_id = 0;
    friend bool operator==(const EngineTaskId&, const EngineTaskId&) = default;
};

/// What one engine line says.
struct EngineSignal {
    enum class Kind : std::uint8_t { task_started, task_finished, task_failed, workflow_finished };
    Kind kind = Kind::task_started;
    std::string task_type;            ///< for task lines
    std::string task_id;              ///< the id as written
    std::optional<EngineTaskId> id;   ///< parsed, when it has HyperFlow's shape
    std::optional<int> exit_code;     ///< "exit=<code>"
    std::optional<double> seconds;    ///< "time=<s>s"
    std::string workflow_id;          ///< for "Workflow [<id>] finished."
    /// The engine says the task failed: a "task failed" line, or "task finished" with a non-zero exit code.
    bool task_failed() const noexcept {
        return kind == Kind::task_failed || (kind == Kind::task_finished && exit_code && *exit_code != 0);
    }
    friend bool operator==(const EngineSignal&, const EngineSignal&) = default;
};

namespace detail {
inline std::optional<int> es_parse_int(std::string_view s) {
    int v = 0;
    if (s.empty() || s.size() > 10) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}
inline std::optional<double> es_parse_seconds(std::string_view s) {
    if (s.empty() || s.size() > 32) return std::nullopt;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || c == '.')) return std::nullopt;
    std::string buf(s);
    char* end = nullptr;
    double d = std::strtod(buf.c_str(), &end);
    if (end != buf.c_str() + buf.size()) return std::nullopt;
    return d;
}
} // namespace detail

/// "<hfId>:<wfId>:<procId>:<firingId>" → its parts; nullopt for any other shape.
inline std::optional<EngineTaskId> parse_engine_task_id(std::string_view text) {
    std::string_view parts[4];
    std::size_t n = 0, start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ':') {
            if (n == 4) return std::nullopt;
            parts[n++] = text.substr(start, i - start);
            start = i + 1;
        }
    }
    if (n != 4 || parts[0].empty() || parts[0].size() > 64) return std::nullopt;
    auto wf = detail::es_parse_int(parts[1]);
    auto proc = detail::es_parse_int(parts[2]);
    auto firing = detail::es_parse_int(parts[3]);
    if (!wf || !proc || !firing || *wf < 0 || *proc < 0 || *firing < 0) return std::nullopt;
    return EngineTaskId{std::string(parts[0]), *wf, *proc, *firing};
}

/// Parses one HyperFlow engine line (anything before the marker, such as a timestamp, is ignored):
///   `[hf] task started: <type> (<taskId>)`
///   `[hf] task finished: <type> (<taskId>) exit=<code> time=<s>s`
///   `[hf] task failed: <type> (<taskId>) [exit=<code>] [time=<s>s] [anything]`
///   `Workflow [<wfId>] finished.`
/// nullopt for every other line. Reads at most max_engine_log_line bytes.
inline std::optional<EngineSignal> parse_engine_line(std::string_view line) {
    if (line.size() > max_engine_log_line) line = line.substr(0, max_engine_log_line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    EngineSignal sig;
    if (auto w = line.find("Workflow ["); w != std::string_view::npos) {
        auto rest = line.substr(w + 10);
        auto close = rest.find(']');
        if (close == std::string_view::npos || close == 0 || close > 64) return std::nullopt;
        if (!rest.substr(close + 1).starts_with(" finished")) return std::nullopt;
        sig.kind = EngineSignal::Kind::workflow_finished;
        sig.workflow_id = std::string(rest.substr(0, close));
        return sig;
    }
    auto hf = line.find("[hf] task ");
    if (hf == std::string_view::npos) return std::nullopt;
    auto rest = line.substr(hf + 10);
    constexpr std::pair<std::string_view, EngineSignal::Kind> kinds[] = {
        {"started:", EngineSignal::Kind::task_started},
        {"finished:", EngineSignal::Kind::task_finished},
        {"failed:", EngineSignal::Kind::task_failed},
    };
    bool known = false;
    for (auto& [word, kind] : kinds)
        if (rest.starts_with(word)) {
            sig.kind = kind;
            rest.remove_prefix(word.size());
            known = true;
            break;
        }
    if (!known) return std::nullopt;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto open = rest.find(" (");
    if (open == std::string_view::npos || open == 0 || open > 256) return std::nullopt;
    sig.task_type = std::string(rest.substr(0, open));
    rest.remove_prefix(open + 2);
    auto close = rest.find(')');
    if (close == std::string_view::npos || close == 0 || close > 256) return std::nullopt;
    sig.task_id = std::string(rest.substr(0, close));
    sig.id = parse_engine_task_id(sig.task_id);
    rest.remove_prefix(close + 1);
    // key=value words: exit=<code>, time=<s>s; anything else is kept out
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        auto sp = rest.find(' ');
        auto word = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
        if (word.starts_with("exit=")) {
            if (auto c = detail::es_parse_int(word.substr(5))) sig.exit_code = c;
        } else if (word.starts_with("time=") && word.ends_with("s") && word.size() > 6) {
            sig.seconds = detail::es_parse_seconds(word.substr(5, word.size() - 6));
        }
    }
    return sig;
}

// ------------------------------------------------------------------------------------------- user patterns

/// One user pattern: when `regex` matches a line of the engine's log (searched anywhere in the line, ECMAScript /
/// Perl syntax), a report of `type` and `severity` whose message is `message` with `{0}` (the whole match),
/// `{1}` … `{99}` (capture groups) and `{line}` (the whole line) filled in.
struct LogPattern {
    std::string name;  ///< identifies it in reports (details.pattern) and errors; unique within a set
    std::string regex;
    ReportType type = ReportType::ANOMALY_TASK_FAILED;
    Severity severity = Severity::error;
    std::string message;
    friend bool operator==(const LogPattern&, const LogPattern&) = default;
};

/// Limits of a pattern set.
inline constexpr std::size_t max_log_patterns = 100;
inline constexpr std::size_t max_log_pattern_regex = 1024;
inline constexpr std::size_t max_log_pattern_message = 1024;
inline constexpr std::size_t max_log_patterns_file = 256 * 1024;

/// The report types a pattern may produce: the findings (not the watch's own outcome, connectivity, actions or
/// the lifecycle stream).
inline constexpr bool log_pattern_type_allowed(ReportType t) noexcept {
    switch (t) {
    case ReportType::PROGRESS:
    case ReportType::ANOMALY_OOMKILL:
    case ReportType::ANOMALY_STRAGGLER:
    case ReportType::MASS_FAILURE:
    case ReportType::ANOMALY_STALL:
    case ReportType::ANOMALY_TASK_FAILED:
    case ReportType::ANOMALY_MEMORY_PRESSURE:
    case ReportType::STRUCTURE: return true;
    default: return false;
    }
}

/// A pattern that cannot be used: what() says "<origin>: line N: <field>: <problem>" (origin and line when
/// known). The value itself is never repeated beyond the pattern's name.
class LogPatternError : public std::invalid_argument {
public:
    LogPatternError(std::string origin, std::size_t line, std::string field, const std::string& problem)
        : std::invalid_argument(compose(origin, line, field, problem)), origin_(std::move(origin)), line_(line),
          field_(std::move(field)) {}
    const std::string& origin() const noexcept { return origin_; }
    std::size_t line() const noexcept { return line_; }   ///< 1-based, 0 when unknown
    const std::string& field() const noexcept { return field_; }

private:
    static std::string compose(const std::string& origin, std::size_t line, const std::string& field,
                               const std::string& problem) {
        std::string s;
        if (!origin.empty()) s += origin + ": ";
        if (line > 0) s += "line " + std::to_string(line) + ": ";
        if (!field.empty()) s += field + ": ";
        return s + problem;
    }
    std::string origin_;
    std::size_t line_;
    std::string field_;
};

/// A line matched by a pattern.
struct LogPatternMatch {
    std::size_t index = 0;      ///< into LogPatterns::patterns()
    std::string message;        ///< the template filled in (at most max_log_pattern_message bytes)
    std::vector<std::string> groups; ///< the whole match, then the capture groups (each at most 256 bytes)
};

/// An ordered set of compiled patterns. Copies share the compiled expressions (they are immutable).
class LogPatterns {
public:
    /// Compiles and appends `p`. Throws LogPatternError (field "name", "regex", "type" or "message"): empty or
    /// duplicate name, empty, too long or invalid expression, a type patterns may not produce, a message that
    /// is empty or uses a placeholder the expression has no group for. `origin`/`line` go into the error.
    EXECUTION_SENTINEL_DECL void add(LogPattern p, std::string_view origin = {}, std::size_t line = 0);
    /// Every pattern that matches `line` (cut at max_engine_log_line), in order.
    EXECUTION_SENTINEL_DECL std::vector<LogPatternMatch> match(std::string_view line) const;

    const std::vector<LogPattern>& patterns() const noexcept { return patterns_; }
    std::size_t size() const noexcept { return patterns_.size(); }
    bool empty() const noexcept { return patterns_.empty(); }

private:
    struct Compiled; // the expression (detail/engine_log_impl.hpp)
    std::vector<LogPattern> patterns_;
    std::vector<std::shared_ptr<const Compiled>> compiled_;
};

/// Reads a patterns file's text (YAML, docs/detectors.md):
///
///   patterns:
///     - name: nfs-io-error
///       regex: 'Remote I/O error|EREMOTEIO'
///       type: ANOMALY_TASK_FAILED      # optional, this default
///       severity: error                # optional, this default
///       message: "The shared file system failed: {0}"
///
/// Throws LogPatternError naming `origin`, the line and the field.
EXECUTION_SENTINEL_DECL LogPatterns parse_log_patterns(std::string_view text, std::string_view origin = "log patterns");

/// Reads the patterns file at `path` (at most max_log_patterns_file bytes). Throws LogPatternError.
EXECUTION_SENTINEL_DECL LogPatterns load_log_patterns(const std::filesystem::path& path);

} // namespace execution_sentinel

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/detail/engine_log_impl.hpp>
#endif

#endif // EXECUTION_SENTINEL_ENGINE_LOG_HPP

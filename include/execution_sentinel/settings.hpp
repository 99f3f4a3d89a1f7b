// SentinelSettings: how the sentinel watches (poll interval, time limit, detector thresholds), read from the
// environment (prefix SENTINEL_) and from a `.env` file. docs/settings.md lists every setting.
#ifndef EXECUTION_SENTINEL_SETTINGS_HPP
#define EXECUTION_SENTINEL_SETTINGS_HPP

#include <execution_sentinel/detail/text.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

enum class LogLevel : std::uint8_t { DEBUG, INFO, WARNING, ERROR, CRITICAL };

inline constexpr std::string_view to_string(LogLevel l) noexcept {
    switch (l) {
    case LogLevel::DEBUG: return "DEBUG";
    case LogLevel::INFO: return "INFO";
    case LogLevel::WARNING: return "WARNING";
    case LogLevel::ERROR: return "ERROR";
    case LogLevel::CRITICAL: return "CRITICAL";
    }
    return "INFO";
}

/// The shortest poll interval accepted from SENTINEL_POLL_INTERVAL, `.env` and the command line: each poll
/// opens a new exec connection to the engine pod (TLS and WebSocket), so a shorter interval only loads the
/// API server.
inline constexpr std::chrono::milliseconds min_poll_interval{100};

/// All settings, with their defaults. Durations are std::chrono::milliseconds.
struct SentinelSettings {
    /// How often the engine's completion file is read and periodic checks run. Default 10 s; at least
    /// min_poll_interval (100 ms) when read by load_settings.
    std::chrono::milliseconds poll_interval{10'000};
    /// The watch ends with timed_out after this long without the engine's exit code. Default 3600 s; > 0.
    std::chrono::milliseconds timeout{3'600'000};
    /// A task is a straggler when it runs longer than this many times its expected (or typical) duration. ≥ 1.
    double straggler_multiplier = 3.0;
    /// MASS_FAILURE when failed / finished tasks exceeds this ratio (0 < x ≤ 1).
    double mass_failure_threshold = 0.3;
    LogLevel log_level = LogLevel::INFO;
    /// Path of a kubeconfig file; "" = KUBECONFIG, ~/.kube/config or the in-cluster service account.
    std::string kubeconfig;
    /// kubeconfig context to use; "" = the file's current-context.
    std::string kube_context;
    /// Fraction of a type's tasks that must have succeeded before their median becomes the straggler baseline.
    double straggler_quorum = 0.75;
    /// ...and at least this many of them (a median of one or two tasks is not a baseline).
    int straggler_min_siblings = 3;
    /// A task is never called a straggler before it has run this long.
    std::chrono::milliseconds straggler_min_runtime{60'000};
    /// The workflow-wide mass-failure ratio is judged only once this many tasks have finished.
    int mass_failure_min_finished = 10;
    /// The per-type ratio is judged only once this many tasks of the type have finished.
    int mass_failure_min_finished_per_type = 5;
    /// CONNECTIVITY_LOSS after this many consecutive failed API calls.
    int connectivity_failures = 3;
    /// The run makes no progress for this long (no task changes state or starts, the engine's log is silent) while
    /// tasks remain and the engine is alive: ANOMALY_STALL. Also the task-level stall when no baseline exists.
    std::chrono::milliseconds stall_threshold{300'000};
    /// Stall tiers LOW, MEDIUM, HIGH, CRITICAL at these multiples of stall_threshold (ascending, ≥ 1).
    std::vector<double> stall_tiers{1.0, 2.0, 4.0, 8.0};
    /// A task pending (unschedulable, creating its container, pulling its image) this long: ANOMALY_STALL.
    std::chrono::milliseconds pending_timeout{600'000};
    /// Burst rule of MASS_FAILURE: this many task failures within mass_failure_burst_window, over the workflow.
    int mass_failure_burst_count = 5;
    std::chrono::milliseconds mass_failure_burst_window{60'000};
    /// ANOMALY_MEMORY_PRESSURE when a task's memory stays at or above this share of its limit (0 < x ≤ 1).
    double memory_pressure_ratio = 0.9;
    /// Period of the metrics API reading (metrics.k8s.io PodMetrics); 0 = do not read it.
    std::chrono::milliseconds metrics_interval{15'000};
    /// A file of user log patterns (regex → report type, severity, message template) for the engine's log.
    std::string log_patterns_file;
    /// Evidence: the last lines of a failed task's container log, at most this many lines and bytes.
    int evidence_log_lines = 20;
    int evidence_log_bytes = 4096;
    /// Baselines learned from past runs (docs/history.md): a task type's baseline is used only when at least this
    /// many of its attempts succeeded in past runs (1 to 1,000,000).
    int baseline_min_samples = 5;
    /// A learned baseline replaces the inventory's expected duration when they are more than this factor apart,
    /// either way (1 to 1000).
    double baseline_override_factor = 3.0;

    friend bool operator==(const SentinelSettings&, const SentinelSettings&) = default;
};

/// A setting that cannot be used. what() names the variable and the problem, never the value.
class SettingsError : public std::invalid_argument {
public:
    SettingsError(std::string variable, const std::string& problem)
        : std::invalid_argument(variable + ": " + problem), variable_(std::move(variable)) {}
    const std::string& variable() const noexcept { return variable_; }

private:
    std::string variable_;
};

/// Looks an environment variable up; nullopt when unset. Injectable so tests need no real environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv).
inline std::optional<std::string> process_environment(const std::string& name) {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

namespace detail {

inline std::string_view es_trim(std::string_view s) noexcept { return trim(s); } // detail/text.hpp

inline std::optional<double> es_parse_double(std::string_view s) {
    s = es_trim(s);
    if (s.empty() || s.size() > 64) return std::nullopt;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) return std::nullopt;
    std::string buf(s);
    char* end = nullptr;
    double d = std::strtod(buf.c_str(), &end);
    if (end != buf.c_str() + buf.size() || !std::isfinite(d)) return std::nullopt;
    return d;
}

} // namespace detail

/// Parses "10", "10s", "1.5", "500ms", "2m", "1.5h" (no unit = seconds). nullopt when malformed or negative.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    auto s = detail::es_trim(text);
    double scale = 1000.0;
    if (s.ends_with("ms")) {
        scale = 1.0;
        s.remove_suffix(2);
    } else if (s.ends_with("s")) {
        s.remove_suffix(1);
    } else if (s.ends_with("m")) {
        scale = 60'000.0;
        s.remove_suffix(1);
    } else if (s.ends_with("h")) {
        scale = 3'600'000.0;
        s.remove_suffix(1);
    }
    auto d = detail::es_parse_double(s);
    if (!d || *d < 0) return std::nullopt;
    double ms = *d * scale;
    if (ms > 365.0 * 24 * 3'600'000) return std::nullopt; // more than a year is a mistake
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::llround(ms))};
}

/// Parses `.env` text: KEY=VALUE lines, blank lines, `# comments`, an optional `export ` prefix, values in
/// single quotes (literal) or double quotes (\n \t \" \\ escapes), unquoted values ending at " #".
/// Throws SettingsError(".env line N", problem) on a malformed line (the value is never repeated).
inline std::map<std::string, std::string> parse_dotenv(std::string_view text) {
    std::map<std::string, std::string> out;
    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto eol = text.find('\n', pos);
        auto raw = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        pos = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
        ++line_no;
        auto where = ".env line " + std::to_string(line_no);
        auto line = detail::es_trim(raw);
        if (line.empty() || line.front() == '#') continue;
        if (line.starts_with("export ") || line.starts_with("export\t")) line = detail::es_trim(line.substr(7));
        auto eq = line.find('=');
        if (eq == std::string_view::npos) throw SettingsError(where, "expected KEY=VALUE");
        auto key = detail::es_trim(line.substr(0, eq));
        if (key.empty()) throw SettingsError(where, "missing variable name before '='");
        for (std::size_t i = 0; i < key.size(); ++i) {
            char c = key[i];
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
            if (!ok) throw SettingsError(where, "variable names may contain only letters, digits and '_'");
        }
        auto rest = detail::es_trim(line.substr(eq + 1));
        std::string value;
        if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
            char q = rest.front();
            std::size_t i = 1;
            bool closed = false;
            for (; i < rest.size(); ++i) {
                char c = rest[i];
                if (c == q) {
                    closed = true;
                    break;
                }
                if (q == '"' && c == '\\' && i + 1 < rest.size()) {
                    char n = rest[++i];
                    value += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
                } else {
                    value += c;
                }
            }
            if (!closed) throw SettingsError(where, "unterminated quoted value");
            auto after = detail::es_trim(rest.substr(i + 1));
            if (!after.empty() && after.front() != '#') throw SettingsError(where, "unexpected text after the closing quote");
        } else {
            auto hash = rest.find(" #");
            if (hash == std::string_view::npos) hash = rest.find("\t#");
            value = std::string(detail::es_trim(rest.substr(0, hash)));
        }
        std::string upper(key);
        for (auto& c : upper)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        out[upper] = std::move(value);
    }
    return out;
}

/// Reads a .env file. nullopt if it does not exist; SettingsError if it cannot be read or exceeds 1 MiB.
inline std::optional<std::string> read_dotenv_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return std::nullopt;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw SettingsError(path.string(), "cannot read the settings file (" + ec.message() + ")");
    if (size > 1024 * 1024) throw SettingsError(path.string(), "settings file larger than 1 MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SettingsError(path.string(), "cannot open the settings file");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// The shortest metrics period accepted (SENTINEL_METRICS_INTERVAL), apart from 0 (off).
inline constexpr std::chrono::milliseconds min_metrics_interval{1'000};

/// Parses SENTINEL_STALL_TIERS: four multiples of the stall threshold for LOW, MEDIUM, HIGH and CRITICAL, separated
/// by commas ("1,2,4,8"), each at least 1 and at most 1000, strictly ascending. Throws SettingsError.
inline std::vector<double> parse_stall_tiers(std::string_view text) {
    const std::string name = "SENTINEL_STALL_TIERS";
    std::vector<double> tiers;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto comma = text.find(',', pos);
        auto item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
        auto d = detail::es_parse_double(item);
        if (!d) throw SettingsError(name, "expected four numbers separated by commas, such as 1,2,4,8");
        if (*d < 1.0 || *d > 1000.0) throw SettingsError(name, "each tier must be between 1 and 1000");
        if (!tiers.empty() && *d <= tiers.back()) throw SettingsError(name, "tiers must be in ascending order");
        tiers.push_back(*d);
        if (tiers.size() > 4) break;
    }
    if (tiers.size() != 4) throw SettingsError(name, "expected four tiers (LOW, MEDIUM, HIGH, CRITICAL), such as 1,2,4,8");
    return tiers;
}

/// Builds settings from the environment (wins) and parsed .env entries, then validates them.
/// Variables: SENTINEL_POLL_INTERVAL, SENTINEL_TIMEOUT, SENTINEL_STRAGGLER_MULTIPLIER,
/// SENTINEL_MASS_FAILURE_THRESHOLD, SENTINEL_LOG_LEVEL, SENTINEL_KUBECONFIG, SENTINEL_KUBE_CONTEXT,
/// SENTINEL_STRAGGLER_QUORUM, SENTINEL_STRAGGLER_MIN_SIBLINGS, SENTINEL_STRAGGLER_MIN_RUNTIME,
/// SENTINEL_MASS_FAILURE_MIN_FINISHED, SENTINEL_MASS_FAILURE_MIN_FINISHED_PER_TYPE, SENTINEL_CONNECTIVITY_FAILURES,
/// SENTINEL_STALL_SECONDS, SENTINEL_STALL_TIERS, SENTINEL_PENDING_TIMEOUT, SENTINEL_MASS_FAILURE_BURST_COUNT,
/// SENTINEL_MASS_FAILURE_BURST_WINDOW, SENTINEL_MEMORY_PRESSURE_RATIO, SENTINEL_METRICS_INTERVAL,
/// SENTINEL_LOG_PATTERNS, SENTINEL_EVIDENCE_LOG_LINES, SENTINEL_EVIDENCE_LOG_BYTES.
/// Throws SettingsError naming the variable.
inline SentinelSettings load_settings(const EnvLookup& env, const std::map<std::string, std::string>& dotenv = {}) {
    SentinelSettings s;
    auto get = [&](const std::string& name) -> std::optional<std::string> {
        if (env)
            if (auto v = env(name)) return v;
        if (auto it = dotenv.find(name); it != dotenv.end()) return it->second;
        return std::nullopt;
    };
    auto duration = [&](const std::string& name, std::chrono::milliseconds& out, bool positive,
                        std::chrono::milliseconds minimum = std::chrono::milliseconds{0}) {
        if (auto v = get(name)) {
            auto d = parse_duration(*v);
            if (!d) throw SettingsError(name, "expected a duration such as 10, 10s, 1.5, 500ms, 2m or 1h");
            if (minimum.count() > 0 && *d < minimum)
                throw SettingsError(name, "must be at least " + std::to_string(minimum.count()) + "ms");
            if (positive && d->count() <= 0) throw SettingsError(name, "must be greater than zero");
            out = *d;
        }
    };
    auto number = [&](const std::string& name, double& out, double lo, double hi, const char* range) {
        if (auto v = get(name)) {
            auto d = detail::es_parse_double(*v);
            if (!d) throw SettingsError(name, "expected a number");
            if (!(*d >= lo && *d <= hi)) throw SettingsError(name, std::string("must be ") + range);
            out = *d;
        }
    };
    auto integer = [&](const std::string& name, int& out, int lo, int hi) {
        if (auto v = get(name)) {
            auto t = detail::es_trim(*v);
            auto d = detail::es_parse_double(t);
            if (!d || std::floor(*d) != *d || t.find_first_of(".eE") != std::string_view::npos)
                throw SettingsError(name, "expected a whole number");
            if (*d < lo || *d > hi)
                throw SettingsError(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            out = static_cast<int>(*d);
        }
    };
    duration("SENTINEL_POLL_INTERVAL", s.poll_interval, true, min_poll_interval);
    duration("SENTINEL_TIMEOUT", s.timeout, true);
    number("SENTINEL_STRAGGLER_MULTIPLIER", s.straggler_multiplier, 1.0, 1000.0, "between 1 and 1000");
    number("SENTINEL_MASS_FAILURE_THRESHOLD", s.mass_failure_threshold, 0.0, 1.0, "a ratio between 0 and 1");
    if (s.mass_failure_threshold <= 0.0)
        throw SettingsError("SENTINEL_MASS_FAILURE_THRESHOLD", "must be greater than 0");
    if (auto v = get("SENTINEL_LOG_LEVEL")) {
        std::string u(detail::es_trim(*v));
        for (auto& c : u)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (u == "WARN") u = "WARNING";
        bool found = false;
        for (auto l : {LogLevel::DEBUG, LogLevel::INFO, LogLevel::WARNING, LogLevel::ERROR, LogLevel::CRITICAL})
            if (to_string(l) == u) {
                s.log_level = l;
                found = true;
            }
        if (!found) throw SettingsError("SENTINEL_LOG_LEVEL", "expected DEBUG, INFO, WARNING, ERROR or CRITICAL");
    }
    if (auto v = get("SENTINEL_KUBECONFIG")) s.kubeconfig = std::string(detail::es_trim(*v));
    if (auto v = get("SENTINEL_KUBE_CONTEXT")) s.kube_context = std::string(detail::es_trim(*v));
    number("SENTINEL_STRAGGLER_QUORUM", s.straggler_quorum, 0.0, 1.0, "a ratio between 0 and 1");
    if (s.straggler_quorum <= 0.0) throw SettingsError("SENTINEL_STRAGGLER_QUORUM", "must be greater than 0");
    integer("SENTINEL_STRAGGLER_MIN_SIBLINGS", s.straggler_min_siblings, 1, 1'000'000);
    duration("SENTINEL_STRAGGLER_MIN_RUNTIME", s.straggler_min_runtime, false);
    integer("SENTINEL_MASS_FAILURE_MIN_FINISHED", s.mass_failure_min_finished, 1, 1'000'000);
    integer("SENTINEL_MASS_FAILURE_MIN_FINISHED_PER_TYPE", s.mass_failure_min_finished_per_type, 1, 1'000'000);
    integer("SENTINEL_CONNECTIVITY_FAILURES", s.connectivity_failures, 1, 1000);
    duration("SENTINEL_STALL_SECONDS", s.stall_threshold, true);
    if (auto v = get("SENTINEL_STALL_TIERS")) s.stall_tiers = parse_stall_tiers(*v);
    duration("SENTINEL_PENDING_TIMEOUT", s.pending_timeout, true);
    integer("SENTINEL_MASS_FAILURE_BURST_COUNT", s.mass_failure_burst_count, 0, 1'000'000);
    duration("SENTINEL_MASS_FAILURE_BURST_WINDOW", s.mass_failure_burst_window, true);
    number("SENTINEL_MEMORY_PRESSURE_RATIO", s.memory_pressure_ratio, 0.0, 1.0, "a ratio between 0 and 1");
    if (s.memory_pressure_ratio <= 0.0) throw SettingsError("SENTINEL_MEMORY_PRESSURE_RATIO", "must be greater than 0");
    duration("SENTINEL_METRICS_INTERVAL", s.metrics_interval, false);
    if (s.metrics_interval.count() > 0 && s.metrics_interval < min_metrics_interval)
        throw SettingsError("SENTINEL_METRICS_INTERVAL", "must be 0 (off) or at least 1s");
    if (auto v = get("SENTINEL_LOG_PATTERNS")) s.log_patterns_file = std::string(detail::es_trim(*v));
    integer("SENTINEL_EVIDENCE_LOG_LINES", s.evidence_log_lines, 0, 1000);
    integer("SENTINEL_EVIDENCE_LOG_BYTES", s.evidence_log_bytes, 0, 1024 * 1024);
    integer("SENTINEL_BASELINE_MIN_SAMPLES", s.baseline_min_samples, 1, 1'000'000);
    number("SENTINEL_BASELINE_OVERRIDE_FACTOR", s.baseline_override_factor, 1.0, 1000.0, "between 1 and 1000");
    return s;
}

/// Environment first, then the .env file at `dotenv_path` if it exists.
inline SentinelSettings load_settings_from(const EnvLookup& env = process_environment,
                                           const std::filesystem::path& dotenv_path = ".env") {
    std::map<std::string, std::string> entries;
    if (auto text = read_dotenv_file(dotenv_path)) entries = parse_dotenv(*text);
    return load_settings(env, entries);
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SETTINGS_HPP

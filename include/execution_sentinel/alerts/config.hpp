// Alert sinks as plain aggregates (what the library takes), and the YAML file the CLI reads them from
// (docs/alerts.md). Secrets — webhook URLs and HMAC keys — are read from files or environment variables named in
// the file, never written in it, and never repeated in an error message.
#ifndef EXECUTION_SENTINEL_ALERTS_CONFIG_HPP
#define EXECUTION_SENTINEL_ALERTS_CONFIG_HPP

#include <execution_sentinel/kube/backoff.hpp>
#include <execution_sentinel/report.hpp>

#include <execution_sentinel/detail/bounded_yaml.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::alerts {

/// Where a sink delivers.
enum class SinkKind : std::uint8_t {
    alertmanager, ///< POST {url}/api/v2/alerts, a JSON array of alerts
    slack,        ///< a Slack incoming webhook: Block Kit with a `text` fallback
    webhook,      ///< any HTTP(S) receiver: a JSON body signed with HMAC-SHA256, an idempotency key per alert
};

inline constexpr std::string_view to_string(SinkKind k) noexcept {
    switch (k) {
    case SinkKind::alertmanager: return "alertmanager";
    case SinkKind::slack: return "slack";
    case SinkKind::webhook: return "webhook";
    }
    return "unknown";
}

inline std::optional<SinkKind> sink_kind_from_string(std::string_view s) noexcept {
    for (auto k : {SinkKind::alertmanager, SinkKind::slack, SinkKind::webhook})
        if (to_string(k) == s) return k;
    return std::nullopt;
}

/// The report types a sink receives when its `types` list is empty: every anomaly, connectivity and completion
/// report; neither PROGRESS nor the task-lifecycle stream.
inline bool default_alert_type(ReportType t) noexcept { return t != ReportType::PROGRESS && !is_lifecycle(t); }

/// One sink. Aggregate: use designated initializers.
struct SinkConfig {
    std::string name{};                          ///< unique; names the sink in logs and in the delivery ledger
    SinkKind kind = SinkKind::webhook;
    std::string url{};                           ///< secret for Slack and webhooks; logged only as scheme://host/…
    std::string hmac_key{};                      ///< webhook only: the signing key (secret); empty = no signature
    std::string ca_pem{};                        ///< extra trust for a private receiver (PEM); empty = system store
    Severity min_severity = Severity::warning; ///< reports below this are not sent
    std::vector<ReportType> types{};             ///< empty = default_alert_type()
    /// A second alert for the same (run, task, type, severity) within this time is suppressed (0 = off).
    /// Resolutions (a resolved stall, restored connectivity) are never suppressed.
    std::chrono::milliseconds cooldown{std::chrono::minutes(15)};
    /// Alerts arriving within this window of the first are sent as one message (0 = each alone).
    std::chrono::milliseconds group_window{std::chrono::seconds(2)};
    std::size_t max_group = 20;                ///< at most this many alerts in one message
    int max_attempts = 5;                      ///< attempts per message before it is dead-lettered (≥ 1)
    std::chrono::milliseconds timeout{std::chrono::seconds(10)}; ///< connect + send + answer, per attempt
    /// The least time between two messages to this sink (Slack allows about one message per second).
    std::chrono::milliseconds min_interval{0};
    kube::BackoffOptions backoff{};            ///< delays between attempts (the client's policy by default)
    std::string generator_url{};               ///< Alertmanager `generatorURL` (optional, not secret)
    std::size_t queue_capacity = 1000;         ///< alerts waiting for this sink; beyond, they are counted lost
};

/// Every sink of a dispatcher.
struct AlertsConfig {
    std::vector<SinkConfig> sinks{};
    /// The CLI's delivery ledger (a JSON file, `ledger:` in the alerts file); empty = in memory only. The library
    /// itself takes a DeliveryLedger object and ignores this.
    std::string ledger_file{};
};

/// An invalid alerts file: what() is "FILE:LINE: FIELD: problem" (no secret value ever appears in it).
class AlertsConfigError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// Environment lookup for url_env / hmac_key_env; empty function = ::getenv.
using GetEnv = std::function<std::optional<std::string>(const std::string&)>;

/// "https://hooks.slack.com/…": scheme and host only, for logs and errors (the path of a webhook URL is its secret).
inline std::string redact_url(std::string_view url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return "(url)";
    auto host_start = scheme_end + 3;
    auto host_end = url.find_first_of("/?#", host_start);
    std::string_view authority = url.substr(host_start, host_end == std::string_view::npos ? url.npos : host_end - host_start);
    if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
    return std::string(url.substr(0, host_start)) + std::string(authority) + "/…";
}

namespace detail {

inline std::optional<std::string> default_getenv(const std::string& name) {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}

inline std::string trim_secret(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return s.substr(i);
}

/// At most `limit` + 1 bytes of a regular file (a FIFO or a device is refused: reading it could block).
inline std::optional<std::string> read_small_file(const std::string& path, std::size_t limit) {
    std::error_code ec;
    if (path.empty() || !std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string out(limit + 1, '\0');
    in.read(out.data(), static_cast<std::streamsize>(out.size()));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

/// Parses "30s", "1500ms", "15m", "2h", or a plain number of seconds; nullopt when malformed or above a day.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    std::size_t i = 0;
    std::uint64_t whole = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
        if (whole > 86'400'000) return std::nullopt;
        ++i;
    }
    if (i == 0) return std::nullopt;
    std::string_view unit = s.substr(i);
    std::uint64_t ms = 0;
    if (unit.empty() || unit == "s") ms = whole * 1000;
    else if (unit == "ms") ms = whole;
    else if (unit == "m") ms = whole * 60'000;
    else if (unit == "h") ms = whole * 3'600'000;
    else return std::nullopt;
    if (ms > 86'400'000) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

} // namespace detail

/// Reads an alerts file's text. `file` names it in errors; relative url_file / hmac_key_file / ca_file paths are
/// taken as written (relative to the working directory). Throws AlertsConfigError "FILE:LINE: FIELD: problem".
///
/// ```yaml
/// ledger: /var/lib/execution-sentinel/alerts.json  # optional: dedup and cooldowns survive restarts
/// sinks:
///   - name: team-slack
///     kind: slack                   # alertmanager | slack | webhook
///     url_file: /run/secrets/slack  # or url_env: SLACK_WEBHOOK_URL; `url:` only for alertmanager
///     min_severity: error           # info | warning | error | critical (default warning)
///     types: [ANOMALY_OOMKILL, MASS_FAILURE]
///     cooldown: 15m                 # 0 = off
///     group_window: 2s
///     retries: 4                    # attempts after the first
///     timeout: 10s
///     ca_file: /etc/ssl/private-ca.pem
///     hmac_key_env: HOOK_KEY        # webhook only (or hmac_key_file)
/// ```
inline AlertsConfig parse_alerts_config(std::string_view text, const std::string& file, const GetEnv& getenv = {});

namespace detail {
inline AlertsConfig parse_alerts_config_unchecked(std::string_view text, const std::string& file, const GetEnv& getenv) {
    auto env = getenv ? getenv : GetEnv(detail::default_getenv);
    auto fail_at = [&](std::size_t line, const std::string& field, const std::string& problem) -> void {
        throw AlertsConfigError(file + ":" + (line ? std::to_string(line) : std::string("?")) + ": " + field + ": " +
                                problem);
    };
    auto line_of = [](const YAML::Node& n) -> std::size_t {
        auto m = n.Mark();
        return m.is_null() ? 0 : static_cast<std::size_t>(m.line) + 1;
    };
    execution_sentinel::detail::YamlProblem problem;
    execution_sentinel::detail::YamlLimits limits;
    limits.max_bytes = 1024 * 1024;
    limits.max_nodes = 100000;
    limits.max_depth = 20;
    auto root = execution_sentinel::detail::load_bounded_yaml(text, problem, limits);
    if (!root) fail_at(problem.line, "(file)", problem.message);
    AlertsConfig config;
    if (!root->IsMap()) fail_at(line_of(*root), "(file)", "expected a mapping with a `sinks` list");
    for (const auto& kv : *root) {
        std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
        if (key == "ledger") {
            if (!kv.second.IsScalar() || kv.second.Scalar().empty())
                fail_at(line_of(kv.second), key, "expected the path of the delivery ledger file");
            config.ledger_file = kv.second.Scalar();
        } else if (key != "sinks") {
            fail_at(line_of(kv.first), key, "unknown field (expected `sinks` or `ledger`)");
        }
    }
    YAML::Node sinks = (*root)["sinks"];
    if (!sinks || !sinks.IsSequence() || sinks.size() == 0)
        fail_at(line_of(sinks ? sinks : *root), "sinks", "expected a non-empty list of sinks");
    std::set<std::string> names;
    std::size_t index = 0;
    for (const auto& node : sinks) {
        const std::string where = "sinks[" + std::to_string(index++) + "]";
        if (!node.IsMap()) fail_at(line_of(node), where, "expected a mapping");
        SinkConfig sink;
        std::optional<std::string> url, url_file, url_env, key_file, key_env, ca_file, kind_text;
        std::optional<int> retries;
        auto scalar = [&](const YAML::Node& v, const std::string& field) -> std::string {
            if (!v.IsScalar()) fail_at(line_of(v), field, "expected a single value");
            return v.Scalar();
        };
        auto duration = [&](const YAML::Node& v, const std::string& field) {
            auto d = detail::parse_duration(scalar(v, field));
            if (!d) fail_at(line_of(v), field, "expected a duration such as 30s, 1500ms, 15m or 2h (at most 24h)");
            return *d;
        };
        auto integer = [&](const YAML::Node& v, const std::string& field, long lo, long hi) {
            std::string s = scalar(v, field);
            long value = 0;
            bool ok = !s.empty() && s.size() <= 9;
            for (char c : s) ok = ok && c >= '0' && c <= '9';
            if (ok) value = std::stol(s);
            if (!ok || value < lo || value > hi)
                fail_at(line_of(v), field, "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
            return value;
        };
        std::size_t sink_line = line_of(node);
        for (const auto& kv : node) {
            std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
            const std::string field = where + "." + key;
            const YAML::Node& v = kv.second;
            if (key == "name") sink.name = scalar(v, field);
            else if (key == "kind") kind_text = scalar(v, field);
            else if (key == "url") url = scalar(v, field);
            else if (key == "url_file") url_file = scalar(v, field);
            else if (key == "url_env") url_env = scalar(v, field);
            else if (key == "hmac_key_file") key_file = scalar(v, field);
            else if (key == "hmac_key_env") key_env = scalar(v, field);
            else if (key == "ca_file") ca_file = scalar(v, field);
            else if (key == "generator_url") sink.generator_url = scalar(v, field);
            else if (key == "min_severity") {
                auto s = severity_from_string(scalar(v, field));
                if (!s) fail_at(line_of(v), field, "expected one of info, warning, error, critical");
                sink.min_severity = *s;
            } else if (key == "types") {
                if (!v.IsSequence()) fail_at(line_of(v), field, "expected a list of report types");
                for (const auto& t : v) {
                    auto type = report_type_from_string(scalar(t, field));
                    if (!type) fail_at(line_of(t), field, "unknown report type (see docs/reports.md)");
                    sink.types.push_back(*type);
                }
            } else if (key == "cooldown") sink.cooldown = duration(v, field);
            else if (key == "group_window") sink.group_window = duration(v, field);
            else if (key == "timeout") {
                sink.timeout = duration(v, field);
                if (sink.timeout.count() < 100) fail_at(line_of(v), field, "must be at least 100ms");
            } else if (key == "min_interval") sink.min_interval = duration(v, field);
            else if (key == "retries") retries = static_cast<int>(integer(v, field, 0, 20));
            else if (key == "max_group") sink.max_group = static_cast<std::size_t>(integer(v, field, 1, 50));
            else if (key == "queue_capacity") sink.queue_capacity = static_cast<std::size_t>(integer(v, field, 1, 100000));
            else fail_at(line_of(kv.first), field, "unknown field");
        }
        if (sink.name.empty()) fail_at(sink_line, where + ".name", "required");
        if (!names.insert(sink.name).second) fail_at(sink_line, where + ".name", "another sink has the same name");
        if (!kind_text) fail_at(sink_line, where + ".kind", "required (alertmanager, slack or webhook)");
        auto kind = sink_kind_from_string(*kind_text);
        if (!kind) fail_at(sink_line, where + ".kind", "expected alertmanager, slack or webhook");
        sink.kind = *kind;
        if (retries) sink.max_attempts = *retries + 1;
        if (sink.kind == SinkKind::slack && sink.min_interval.count() == 0) sink.min_interval = std::chrono::seconds(1);

        int sources = (url ? 1 : 0) + (url_file ? 1 : 0) + (url_env ? 1 : 0);
        if (sources != 1) fail_at(sink_line, where + ".url", "give exactly one of url, url_file, url_env");
        if (url && sink.kind != SinkKind::alertmanager)
            fail_at(sink_line, where + ".url",
                    "a " + std::string(to_string(sink.kind)) +
                        " URL is a secret: give it with url_file or url_env, not in the file");
        if (url) sink.url = *url;
        if (url_file) {
            auto text_of = detail::read_small_file(*url_file, 4096);
            if (!text_of) fail_at(sink_line, where + ".url_file", "cannot read " + *url_file);
            sink.url = detail::trim_secret(*text_of);
        }
        if (url_env) {
            auto v = env(*url_env);
            if (!v || v->empty()) fail_at(sink_line, where + ".url_env", "the variable " + *url_env + " is not set");
            sink.url = detail::trim_secret(*v);
        }
        const std::string url_field = where + (url_file ? ".url_file" : url_env ? ".url_env" : ".url");
        if (!(sink.url.starts_with("https://") || sink.url.starts_with("http://")) || sink.url.size() > 2048 ||
            sink.url.find_first_of(" \r\n\t") != std::string::npos)
            fail_at(sink_line, url_field, "expected an http:// or https:// URL");
        if (sink.kind == SinkKind::slack && !sink.url.starts_with("https://"))
            fail_at(sink_line, url_field, "a Slack webhook URL starts with https:// (its path is a secret)");
        if (key_file || key_env) {
            if (sink.kind != SinkKind::webhook)
                fail_at(sink_line, where + ".hmac_key", "only a webhook sink signs its messages");
            if (key_file && key_env) fail_at(sink_line, where + ".hmac_key", "give one of hmac_key_file, hmac_key_env");
            if (key_file) {
                auto k = detail::read_small_file(*key_file, 4096);
                if (!k) fail_at(sink_line, where + ".hmac_key_file", "cannot read " + *key_file);
                sink.hmac_key = detail::trim_secret(*k);
            } else {
                auto v = env(*key_env);
                if (!v) fail_at(sink_line, where + ".hmac_key_env", "the variable " + *key_env + " is not set");
                sink.hmac_key = detail::trim_secret(*v);
            }
            if (sink.hmac_key.empty()) fail_at(sink_line, where + ".hmac_key", "the key is empty");
        }
        if (ca_file) {
            auto pem = detail::read_small_file(*ca_file, 1024 * 1024);
            if (!pem) fail_at(sink_line, where + ".ca_file", "cannot read " + *ca_file);
            if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos)
                fail_at(sink_line, where + ".ca_file", *ca_file + " holds no PEM certificate");
            sink.ca_pem = *pem;
        }
        config.sinks.push_back(std::move(sink));
    }
    return config;
}
} // namespace detail

inline AlertsConfig parse_alerts_config(std::string_view text, const std::string& file, const GetEnv& getenv) {
    try {
        return detail::parse_alerts_config_unchecked(text, file, getenv);
    } catch (const YAML::Exception& e) {
        // A node of an unexpected shape that the checks above did not foresee: still an error naming the place.
        throw AlertsConfigError(file + ":" + (e.mark.is_null() ? std::string("?") : std::to_string(e.mark.line + 1)) +
                                ": (file): " + e.msg);
    }
}

/// Reads an alerts file (at most 1 MiB). Throws AlertsConfigError naming the file when it cannot be read.
inline AlertsConfig load_alerts_config(const std::string& path, const GetEnv& getenv = {}) {
    auto text = detail::read_small_file(path, 1024 * 1024);
    if (!text) throw AlertsConfigError(path + ": cannot read the alerts file");
    if (text->size() > 1024 * 1024) throw AlertsConfigError(path + ": larger than 1 MiB");
    return parse_alerts_config(*text, path, getenv);
}

} // namespace execution_sentinel::alerts

#endif // EXECUTION_SENTINEL_ALERTS_CONFIG_HPP

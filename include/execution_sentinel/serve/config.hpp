// The configuration of `execution-sentinel serve` (docs/serve.md): which namespaces to watch, how engine and task
// pods are found, the thresholds of every watched run (the same names as the `watch` settings, SENTINEL_* without
// the prefix, in lower case), the history store, the alert sinks file, the HTTP address and the cluster access.
// Pure: parse_serve_config() reads YAML text (bounded, detail/bounded_yaml.hpp) and either returns a complete,
// validated ServeConfig or throws ServeConfigError naming the file, the line and the field.
#ifndef EXECUTION_SENTINEL_SERVE_CONFIG_HPP
#define EXECUTION_SENTINEL_SERVE_CONFIG_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detail/bounded_yaml.hpp>
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/settings.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

/// Everything `serve` needs to start. Defaults are those of default_serve_config_yaml().
struct ServeConfig {
    /// Namespaces watched, each with one watch of engine pods; empty = every namespace (one cluster-wide watch).
    std::vector<std::string> namespaces;
    /// Label selector of engine pods: one appearing Running starts a run.
    std::string engine_selector = "component=hyperflow-engine";
    /// Label selector of task pods (MonitoringContext::task_label_selector of inferred contexts).
    std::string task_selector = "app=hyperflow";
    /// Container of the engine pod holding the completion file and the engine log.
    std::string engine_container = "hyperflow";
    /// The engine's completion file (MonitoringContext::completion_signal_path of inferred contexts).
    std::string completion_signal_path = "/work_dir/.workflow-exit-code";
    /// ConfigMaps with this label hold a run's MonitoringContext; "" = never look for one.
    std::string context_configmap_selector = "execution-sentinel/context=true";
    /// The key of such a ConfigMap's data holding the context JSON.
    std::string context_configmap_key = "context.json";
    /// The thresholds of every run (SentinelSettings), validated like the SENTINEL_* variables.
    SentinelSettings settings;
    /// The thresholds as given (lower-case names → text), for diagnostics.
    std::map<std::string, std::string> thresholds;
    /// History store address (sqlite:FILE, postgresql://…); "" = none.
    std::string history;
    /// Alert sinks file (docs/alerts.md); "" = none.
    std::string alerts;
    /// HTTP listen address and port.
    std::string http_address = "127.0.0.1";
    std::uint16_t http_port = 9464;
    /// Server TLS (http.tls): PEM certificate chain and private key files; both "" = plain HTTP.
    std::string tls_cert_file;
    std::string tls_key_file;
    /// Bearer tokens that may register runs (api.tokens_file, registration.hpp); "" = registration disabled.
    std::string api_tokens_file;
    /// Request bodies at most (api.max_body_bytes): a registered run's context; larger is answered 413.
    std::size_t api_max_body_bytes = 1024 * 1024;
    /// Kubeconfig file and context; "" = KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    std::string kubeconfig;
    std::string kube_context;
    /// Use the pod's service account only (no kubeconfig).
    bool in_cluster = false;
    /// Runs watched at once at most (more engine pods wait until one ends).
    std::size_t max_active_runs = 100;
    /// Finished runs kept for the API (oldest forgotten first).
    std::size_t keep_finished_runs = 100;
    /// Reports kept per run for GET …/reports (oldest dropped first).
    std::size_t keep_reports_per_run = 1000;
    /// Several replicas share the runs through Leases (docs/serve.md); off: this replica watches every run.
    bool ha = false;
    /// The holder identity of this replica's leases; "" = the host name (the pod's name) and the process id.
    std::string ha_identity;
    /// Lease timing (client-go's defaults: 15 s, 10 s, 2 s).
    LeaseSettings leases;
};

/// A configuration that cannot be used. what() is "FILE:LINE: FIELD: problem" (LINE "?" when unknown); values
/// are never quoted (a store address may hold a password).
class ServeConfigError : public std::invalid_argument {
public:
    ServeConfigError(const std::string& file, std::size_t line, std::string field, const std::string& problem)
        : std::invalid_argument(file + ":" + (line ? std::to_string(line) : std::string("?")) + ": " + field + ": " +
                                problem),
          line_(line), field_(std::move(field)) {}
    std::size_t line() const noexcept { return line_; }
    const std::string& field() const noexcept { return field_; }

private:
    std::size_t line_;
    std::string field_;
};

/// The thresholds a configuration may set: the `watch` settings (SENTINEL_<NAME>) that apply to one run.
inline constexpr std::array<std::string_view, 22> serve_threshold_names{
    "poll_interval",          "timeout",
    "straggler_multiplier",   "mass_failure_threshold",
    "log_level",              "straggler_quorum",
    "straggler_min_siblings", "straggler_min_runtime",
    "mass_failure_min_finished", "mass_failure_min_finished_per_type",
    "connectivity_failures",  "stall_seconds",
    "stall_tiers",            "pending_timeout",
    "mass_failure_burst_count", "mass_failure_burst_window",
    "memory_pressure_ratio",  "metrics_interval",
    "log_patterns",           "evidence_log_lines",
    "evidence_log_bytes",     "baseline_min_samples"};

/// The documented default configuration: every field with its default value and a comment.
inline std::string default_serve_config_yaml() {
    return R"(# execution-sentinel serve configuration (docs/serve.md).
# Namespaces watched; [] = every namespace (one cluster-wide watch of engine pods).
namespaces: []
# An engine pod with these labels appearing Running in a watched namespace starts a run.
engine_selector: component=hyperflow-engine
# Task pods of a run (its MonitoringContext's task_label_selector when the context is inferred).
task_selector: app=hyperflow
engine_container: hyperflow
completion_signal_path: /work_dir/.workflow-exit-code
# A ConfigMap in the run's namespace with this label holds its MonitoringContext under `key` (JSON).
context_configmap:
  selector: execution-sentinel/context=true
  key: context.json
# The thresholds of every run: the `watch` settings (SENTINEL_<NAME>) in lower case, same values.
thresholds:
  poll_interval: 10s
  timeout: 1h
  straggler_multiplier: 3
  mass_failure_threshold: 0.3
  stall_seconds: 5m
  pending_timeout: 10m
  metrics_interval: 15s
  log_level: INFO
  # Past attempts of a task type (in the history store) before its learned duration is used (docs/history.md).
  baseline_min_samples: 5
# The run history store (docs/history.md): sqlite:FILE or postgresql://...; "" = none.
store:
  history: ""
# Alert sinks file (docs/alerts.md); "" = none.
sinks:
  alerts: ""
http:
  listen: 127.0.0.1:9464
  # HTTPS only when both are set: PEM files of the certificate (chain) and its private key, read at start.
  tls:
    cert_file: ""
    key_file: ""
# POST /api/v1/runs registers a run (docs/api.md). It needs a bearer token from this file: one a line,
# NAME:TOKEN or TOKEN (16 to 4096 characters), read again when it changes; "" = registration disabled (403).
api:
  tokens_file: ""
  # Request bodies (a run's MonitoringContext) at most, in bytes; larger is answered 413.
  max_body_bytes: 1048576
kubernetes:
  # "" = KUBECONFIG, ~/.kube/config, then the pod's service account.
  kubeconfig: ""
  context: ""
  in_cluster: false
runs:
  max_active: 100
  keep_finished: 100
  keep_reports: 1000
# Several replicas sharing the runs: each run is held by one replica through a Lease in its namespace and taken
# over by another (from its checkpoint) when that replica stops renewing. Off: this replica watches every run.
ha:
  enabled: false
  # The holder identity; "" = the host name (the pod's name) and the process id.
  identity: ""
  # client-go's leader-election timing; lease_duration in whole seconds, > renew_deadline > retry_period.
  lease_duration: 15s
  renew_deadline: 10s
  retry_period: 2s
)";
}

namespace config_detail {

inline std::size_t line_of(const YAML::Node& n) {
    auto m = n.Mark();
    return m.is_null() ? 0 : static_cast<std::size_t>(m.line) + 1;
}

/// "host:port" (IPv6 in brackets); nullopt when malformed.
inline std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::string_view host = text.substr(0, colon);
    std::string_view port = text.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') return std::nullopt;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return std::nullopt;
    }
    for (char c : host)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':')) return std::nullopt;
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || value > 65535) return std::nullopt;
    return std::pair{std::string(host), static_cast<std::uint16_t>(value)};
}

/// A field name as errors show it: the key when it looks like one (letters, digits, '_', '-', at most 64), else
/// a placeholder, so that a value mistyped as a key (a store address with its password) is never repeated.
inline std::string shown_key(const std::string& key) {
    bool plain = !key.empty() && key.size() <= 64;
    for (char c : key)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) plain = false;
    return plain ? key : std::string("(a field name that is not valid)");
}

inline bool is_configmap_key(std::string_view k) {
    if (k.empty() || k.size() > 253) return false;
    for (char c : k)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

} // namespace config_detail

/// Parses and validates a configuration (`file` names it in errors). An empty document is the default
/// configuration. Throws ServeConfigError.
inline ServeConfig parse_serve_config(std::string_view text, const std::string& file) {
    using config_detail::line_of;
    ServeConfig c;
    auto fail = [&](std::size_t line, const std::string& field, const std::string& problem) {
        throw ServeConfigError(file, line, field, problem);
    };
    detail::YamlProblem problem;
    detail::YamlLimits limits;
    limits.max_bytes = 1024 * 1024;
    limits.max_nodes = 100000;
    limits.max_depth = 20;
    auto root = detail::load_bounded_yaml(text, problem, limits);
    if (!root) fail(problem.line, "(file)", problem.message);
    if (root->IsNull()) return c;
    if (!root->IsMap()) fail(line_of(*root), "(file)", "expected a mapping of settings (see --print-default-config)");

    auto scalar = [&](const YAML::Node& v, const std::string& field) -> std::string {
        if (!v.IsScalar()) fail(line_of(v), field, "expected a single value");
        return v.Scalar();
    };
    auto boolean = [&](const YAML::Node& v, const std::string& field) -> bool {
        auto s = scalar(v, field);
        if (s == "true" || s == "yes" || s == "on") return true;
        if (s == "false" || s == "no" || s == "off") return false;
        fail(line_of(v), field, "expected true or false");
        return false;
    };
    auto count = [&](const YAML::Node& v, const std::string& field, std::size_t lo, std::size_t hi) -> std::size_t {
        auto s = scalar(v, field);
        std::size_t value = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
        if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || value < lo || value > hi)
            fail(line_of(v), field, "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
        return value;
    };
    auto selector = [&](const YAML::Node& v, const std::string& field, bool allow_empty) -> std::string {
        auto s = std::string(detail::trim(scalar(v, field)));
        if (s.empty() && !allow_empty) fail(line_of(v), field, "required (a label selector such as component=x)");
        try {
            (void)LabelSelector::parse(s);
        } catch (const std::invalid_argument& e) {
            fail(line_of(v), field, std::string("not a valid label selector (") + e.what() + ")");
        }
        return s;
    };
    // Iterates a nested mapping, calling `each(key, value, field)`; `where` is the parent field.
    auto mapping = [&](const YAML::Node& v, const std::string& where, auto&& each) {
        if (v.IsNull()) return;
        if (!v.IsMap()) fail(line_of(v), where, "expected a mapping");
        std::set<std::string> seen;
        for (const auto& kv : v) {
            if (!kv.first.IsScalar()) fail(line_of(kv.first), where, "expected field names");
            auto key = kv.first.Scalar();
            auto field = where + "." + config_detail::shown_key(key);
            if (!seen.insert(key).second) fail(line_of(kv.first), field, "given twice");
            each(key, kv.second, field, line_of(kv.first));
        }
    };

    std::size_t thresholds_line = 0;
    std::map<std::string, std::size_t> threshold_lines;
    std::set<std::string> seen;
    for (const auto& kv : *root) {
        if (!kv.first.IsScalar()) fail(line_of(kv.first), "(file)", "expected field names");
        const std::string key = config_detail::shown_key(kv.first.Scalar());
        const YAML::Node& v = kv.second;
        if (!seen.insert(kv.first.Scalar()).second) fail(line_of(kv.first), key, "given twice");
        if (key == "namespaces") {
            if (v.IsNull()) continue;
            if (!v.IsSequence()) fail(line_of(v), key, "expected a list of namespaces ([] = every namespace)");
            std::set<std::string> names;
            std::size_t i = 0;
            for (const auto& item : v) {
                auto field = key + "[" + std::to_string(i++) + "]";
                auto ns = scalar(item, field);
                if (!detail::es_is_dns1123_label(ns)) fail(line_of(item), field, "not a valid namespace name");
                if (!names.insert(ns).second) fail(line_of(item), field, "listed twice");
                c.namespaces.push_back(ns);
            }
        } else if (key == "engine_selector") {
            c.engine_selector = selector(v, key, false);
        } else if (key == "task_selector") {
            c.task_selector = selector(v, key, true);
        } else if (key == "engine_container") {
            c.engine_container = scalar(v, key);
            if (!detail::es_is_dns1123_label(c.engine_container))
                fail(line_of(v), key, "must be a container name (DNS-1123 label)");
        } else if (key == "completion_signal_path") {
            c.completion_signal_path = scalar(v, key);
            if (c.completion_signal_path.empty() || c.completion_signal_path.front() != '/')
                fail(line_of(v), key, "must be an absolute path");
        } else if (key == "context_configmap") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "selector") c.context_configmap_selector = selector(val, field, true);
                else if (k == "key") {
                    c.context_configmap_key = scalar(val, field);
                    if (!config_detail::is_configmap_key(c.context_configmap_key))
                        fail(line_of(val), field, "not a valid ConfigMap key (letters, digits, '-', '_', '.')");
                } else fail(line, field, "unknown field (expected selector or key)");
            });
        } else if (key == "thresholds") {
            thresholds_line = line_of(kv.first);
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (std::find(serve_threshold_names.begin(), serve_threshold_names.end(), k) ==
                    serve_threshold_names.end())
                    fail(line, field, "unknown threshold (see docs/serve.md for the names)");
                std::string value;
                if (k == "stall_tiers" && val.IsSequence()) {
                    for (const auto& t : val) {
                        if (!value.empty()) value += ",";
                        value += scalar(t, field);
                    }
                } else {
                    value = scalar(val, field);
                }
                c.thresholds[k] = value;
                threshold_lines[k] = line_of(val);
            });
        } else if (key == "store") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "history") c.history = std::string(detail::trim(scalar(val, field)));
                else fail(line, field, "unknown field (expected history)");
            });
        } else if (key == "sinks") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "alerts") c.alerts = std::string(detail::trim(scalar(val, field)));
                else fail(line, field, "unknown field (expected alerts)");
            });
        } else if (key == "http") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "listen") {
                    auto listen = config_detail::parse_listen(detail::trim(scalar(val, field)));
                    if (!listen)
                        fail(line_of(val), field, "expected HOST:PORT such as 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464");
                    c.http_address = listen->first;
                    c.http_port = listen->second;
                } else if (k == "tls") {
                    mapping(val, field, [&](const std::string& tk, const YAML::Node& tv, const std::string& tfield,
                                            std::size_t tline) {
                        if (tk == "cert_file") c.tls_cert_file = std::string(detail::trim(scalar(tv, tfield)));
                        else if (tk == "key_file") c.tls_key_file = std::string(detail::trim(scalar(tv, tfield)));
                        else fail(tline, tfield, "unknown field (expected cert_file or key_file)");
                    });
                    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
                        fail(line_of(val), c.tls_cert_file.empty() ? "http.tls.cert_file" : "http.tls.key_file",
                             "required with " + std::string(c.tls_cert_file.empty() ? "key_file" : "cert_file") +
                                 " (give both, or neither for plain HTTP)");
                } else fail(line, field, "unknown field (expected listen or tls)");
            });
        } else if (key == "api") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "tokens_file") c.api_tokens_file = std::string(detail::trim(scalar(val, field)));
                else if (k == "max_body_bytes") c.api_max_body_bytes = count(val, field, 1024, 64 * 1024 * 1024);
                else fail(line, field, "unknown field (expected tokens_file or max_body_bytes)");
            });
        } else if (key == "kubernetes") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "kubeconfig") c.kubeconfig = std::string(detail::trim(scalar(val, field)));
                else if (k == "context") c.kube_context = std::string(detail::trim(scalar(val, field)));
                else if (k == "in_cluster") c.in_cluster = boolean(val, field);
                else fail(line, field, "unknown field (expected kubeconfig, context or in_cluster)");
            });
            if (c.in_cluster && (!c.kubeconfig.empty() || !c.kube_context.empty()))
                fail(line_of(v), "kubernetes.in_cluster", "give either in_cluster or a kubeconfig and context");
        } else if (key == "runs") {
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                if (k == "max_active") c.max_active_runs = count(val, field, 1, 10000);
                else if (k == "keep_finished") c.keep_finished_runs = count(val, field, 0, 10000);
                else if (k == "keep_reports") c.keep_reports_per_run = count(val, field, 1, 100000);
                else fail(line, field, "unknown field (expected max_active, keep_finished or keep_reports)");
            });
        } else if (key == "ha") {
            std::map<std::string, std::size_t> lines;
            mapping(v, key, [&](const std::string& k, const YAML::Node& val, const std::string& field, std::size_t line) {
                auto duration = [&]() {
                    auto d = parse_duration(scalar(val, field));
                    if (!d) fail(line_of(val), field, "expected a duration such as 15s, 500ms or 1m");
                    if (*d < std::chrono::milliseconds(100) || *d > std::chrono::hours(1))
                        fail(line_of(val), field, "must be from 100ms to 1h");
                    lines[k] = line_of(val);
                    return *d;
                };
                if (k == "enabled") c.ha = boolean(val, field);
                else if (k == "identity") {
                    c.ha_identity = std::string(detail::trim(scalar(val, field)));
                    if (c.ha_identity.size() > 253) fail(line_of(val), field, "longer than 253 characters");
                    for (char ch : c.ha_identity)
                        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
                            fail(line_of(val), field, "must not hold control characters");
                } else if (k == "lease_duration") {
                    c.leases.lease_duration = duration();
                    if (c.leases.lease_duration.count() % 1000 != 0)
                        fail(line_of(val), field, "must be whole seconds (a Lease counts in seconds)");
                } else if (k == "renew_deadline") c.leases.renew_deadline = duration();
                else if (k == "retry_period") c.leases.retry_period = duration();
                else fail(line, field, "unknown field (expected enabled, identity, lease_duration, renew_deadline or retry_period)");
            });
            auto at = [&](const char* k) {
                auto it = lines.find(k);
                return it != lines.end() ? it->second : line_of(kv.first);
            };
            if (c.leases.renew_deadline >= c.leases.lease_duration)
                fail(lines.count("renew_deadline") ? at("renew_deadline") : at("lease_duration"),
                     lines.count("renew_deadline") ? "ha.renew_deadline" : "ha.lease_duration",
                     "the renew deadline must be shorter than the lease duration");
            if (c.leases.retry_period >= c.leases.renew_deadline)
                fail(lines.count("retry_period") ? at("retry_period") : at("renew_deadline"),
                     lines.count("retry_period") ? "ha.retry_period" : "ha.renew_deadline",
                     "the retry period must be shorter than the renew deadline");
        } else {
            fail(line_of(kv.first), key,
                 "unknown field (expected namespaces, engine_selector, task_selector, engine_container, "
                 "completion_signal_path, context_configmap, thresholds, store, sinks, http, api, kubernetes, runs or ha)");
        }
    }

    // The thresholds are validated by the same code as the SENTINEL_* variables of `watch`.
    auto upper = [](std::string s) {
        for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        return s;
    };
    std::map<std::string, std::string> variables;
    for (const auto& [k, value] : c.thresholds) variables["SENTINEL_" + upper(k)] = value;
    try {
        c.settings = load_settings(
            [&variables](const std::string& name) -> std::optional<std::string> {
                if (auto it = variables.find(name); it != variables.end()) return it->second;
                return std::nullopt;
            },
            {});
    } catch (const SettingsError& e) {
        std::string name = e.variable();
        std::string lower;
        if (name.rfind("SENTINEL_", 0) == 0) {
            for (char ch : name.substr(9)) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        }
        auto it = threshold_lines.find(lower);
        std::string message = e.what();
        if (auto colon = message.find(": "); colon != std::string::npos) message = message.substr(colon + 2);
        throw ServeConfigError(file, it != threshold_lines.end() ? it->second : thresholds_line,
                               "thresholds." + (lower.empty() ? std::string("?") : lower), message);
    }
    return c;
}

/// Reads the file at `path` (at most 1 MiB) and parses it. Throws ServeConfigError ("PATH:?: (file): cannot be
/// read") when it cannot be read.
inline ServeConfig load_serve_config(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw ServeConfigError(path, 0, "(file)", "is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ServeConfigError(path, 0, "(file)", "cannot be read");
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > 1024 * 1024) throw ServeConfigError(path, 0, "(file)", "larger than 1 MiB");
    }
    return parse_serve_config(text, path);
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_CONFIG_HPP

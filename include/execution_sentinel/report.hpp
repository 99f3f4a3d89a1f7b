// Report: one structured finding of the sentinel (progress, an anomaly, completion), as delivered to
// subscribers. Reports are plain values with a JSON form; docs/reports.md describes every type.
#ifndef EXECUTION_SENTINEL_REPORT_HPP
#define EXECUTION_SENTINEL_REPORT_HPP

#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>

#include <execution_sentinel/detail/json_reader.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace execution_sentinel {

using Clock = kube::Clock;
using Timestamp = kube::Timestamp;

/// What a report is about. The first six names are the ones workflow orchestrators already know.
enum class ReportType : std::uint8_t {
    PROGRESS,                  ///< completed count changed, or a DAG phase (task type) started or completed
    ANOMALY_OOMKILL,           ///< a task ran out of memory (error), or siblings at risk of the same (warning)
    ANOMALY_STRAGGLER,         ///< a task runs far longer than expected
    MASS_FAILURE,              ///< too many tasks failed, over the workflow or within one task type
    CONNECTIVITY_LOSS,         ///< the cluster's API stopped answering (three consecutive failed calls)
    COMPLETION,                ///< the workflow engine wrote its exit code
    CONNECTIVITY_RESTORED,     ///< the API answers again after a CONNECTIVITY_LOSS
    TIMEOUT,                   ///< the watch reached its time limit without the engine's exit code
    COMPLETION_SIGNAL_INVALID, ///< the engine's completion file holds something that is not an exit code
    ANOMALY_STALL,             ///< a task or the whole run makes no progress (tiers LOW … CRITICAL, and resolution)
    ANOMALY_TASK_FAILED,       ///< a task attempt failed, with its cause, evidence and a next step
    ANOMALY_MEMORY_PRESSURE,   ///< a task's memory stays near its limit (the warning before an OOM kill)
    STRUCTURE,                 ///< observed tasks disagree with the inventory or the DAG structure
    INTERVENTION,              ///< an action taken (or, in dry run, that would have been taken) on a task
    TASK_STARTED,              ///< lifecycle stream (opt-in): a task started running
    TASK_COMPLETED,            ///< lifecycle stream (opt-in): a task succeeded
    TASK_FAILED,               ///< lifecycle stream (opt-in): a task failed
    TASK_RETRIED,              ///< lifecycle stream (opt-in): a failed task got a new attempt
};

inline constexpr std::array<ReportType, 18> all_report_types{
    ReportType::PROGRESS,          ReportType::ANOMALY_OOMKILL,       ReportType::ANOMALY_STRAGGLER,
    ReportType::MASS_FAILURE,      ReportType::CONNECTIVITY_LOSS,     ReportType::COMPLETION,
    ReportType::CONNECTIVITY_RESTORED, ReportType::TIMEOUT,           ReportType::COMPLETION_SIGNAL_INVALID,
    ReportType::ANOMALY_STALL,     ReportType::ANOMALY_TASK_FAILED,   ReportType::ANOMALY_MEMORY_PRESSURE,
    ReportType::STRUCTURE,         ReportType::INTERVENTION,          ReportType::TASK_STARTED,
    ReportType::TASK_COMPLETED,    ReportType::TASK_FAILED,           ReportType::TASK_RETRIED,
};

/// The task-lifecycle types: published only to subscriptions that ask for them (SubscriptionOptions).
inline constexpr bool is_lifecycle(ReportType t) noexcept {
    return t == ReportType::TASK_STARTED || t == ReportType::TASK_COMPLETED || t == ReportType::TASK_FAILED ||
           t == ReportType::TASK_RETRIED;
}

/// "PROGRESS", "ANOMALY_OOMKILL", … (the enumerator's name).
inline constexpr std::string_view to_string(ReportType t) noexcept {
    switch (t) {
    case ReportType::PROGRESS: return "PROGRESS";
    case ReportType::ANOMALY_OOMKILL: return "ANOMALY_OOMKILL";
    case ReportType::ANOMALY_STRAGGLER: return "ANOMALY_STRAGGLER";
    case ReportType::MASS_FAILURE: return "MASS_FAILURE";
    case ReportType::CONNECTIVITY_LOSS: return "CONNECTIVITY_LOSS";
    case ReportType::COMPLETION: return "COMPLETION";
    case ReportType::CONNECTIVITY_RESTORED: return "CONNECTIVITY_RESTORED";
    case ReportType::TIMEOUT: return "TIMEOUT";
    case ReportType::COMPLETION_SIGNAL_INVALID: return "COMPLETION_SIGNAL_INVALID";
    case ReportType::ANOMALY_STALL: return "ANOMALY_STALL";
    case ReportType::ANOMALY_TASK_FAILED: return "ANOMALY_TASK_FAILED";
    case ReportType::ANOMALY_MEMORY_PRESSURE: return "ANOMALY_MEMORY_PRESSURE";
    case ReportType::STRUCTURE: return "STRUCTURE";
    case ReportType::INTERVENTION: return "INTERVENTION";
    case ReportType::TASK_STARTED: return "TASK_STARTED";
    case ReportType::TASK_COMPLETED: return "TASK_COMPLETED";
    case ReportType::TASK_FAILED: return "TASK_FAILED";
    case ReportType::TASK_RETRIED: return "TASK_RETRIED";
    }
    return "UNKNOWN";
}

/// The inverse of to_string; nullopt for an unknown name (exact, case-sensitive).
inline std::optional<ReportType> report_type_from_string(std::string_view s) noexcept {
    for (auto t : all_report_types)
        if (to_string(t) == s) return t;
    return std::nullopt;
}

enum class Severity : std::uint8_t { info, warning, error, critical };

inline constexpr std::string_view to_string(Severity s) noexcept {
    switch (s) {
    case Severity::info: return "info";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
    case Severity::critical: return "critical";
    }
    return "unknown";
}

inline std::optional<Severity> severity_from_string(std::string_view s) noexcept {
    for (auto v : {Severity::info, Severity::warning, Severity::error, Severity::critical})
        if (to_string(v) == s) return v;
    return std::nullopt;
}

/// Evidence a report still needs from the cluster: the last lines of a container's log. The Sentinel fetches
/// it off the watch path (bounded, once), adds it to `details.evidence.log_tail` and clears the request before
/// it publishes the report; a Monitor used alone leaves the request for its driver.
struct EvidenceRequest {
    std::string pod;
    std::string container;
    friend bool operator==(const EvidenceRequest&, const EvidenceRequest&) = default;
};

/// One finding. `message` is one plain-English sentence for a scientist (no Kubernetes vocabulary);
/// `details` carries the machine-readable specifics (docs/reports.md lists them per type).
struct Report {
    ReportType type = ReportType::PROGRESS;
    Severity severity = Severity::info;
    std::uint64_t sequence = 0;   ///< 1, 2, 3 … per monitor, in emission order
    Timestamp timestamp{};        ///< the monitor's clock when the report was made
    std::string task_name;        ///< the task concerned, or empty
    std::string task_type;        ///< its type (or the type a type-wide report is about), or empty
    int completed_tasks = 0;      ///< tasks succeeded so far
    int total_tasks = 0;          ///< inventory size plus tasks found that the inventory does not list
    std::string message;
    boost::json::object details;
    /// The report's identity, "<TYPE>|<scope>|<fingerprint>": the same finding has the same key in every run of
    /// the sentinel over the same workflow run (across restarts too), so a consumer can drop a repeat by it.
    std::string key;
    /// Set while a log tail is still to be attached (see EvidenceRequest); never serialized.
    std::optional<EvidenceRequest> evidence_request;

    friend bool operator==(const Report&, const Report&) = default;
};

/// A report that cannot be read back from JSON; what() names the field.
class ReportFormatError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// RFC 3339 UTC with milliseconds: "2026-11-23T05:36:11.123Z" (kube/rfc3339.hpp, the library's one formatter).
inline std::string format_timestamp(Timestamp t) { return kube::format_rfc3339(t, kube::Rfc3339Precision::milliseconds); }

/// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"; nullopt when malformed (kube/rfc3339.hpp).
inline std::optional<Timestamp> parse_rfc3339(std::string_view s) noexcept { return kube::parse_rfc3339(s); }

/// {"type","severity","sequence","timestamp","task_name","task_type","completed_tasks","total_tasks",
///  "message","details","key"} ("key" when set); `kind` repeats `type` for consumers of the original tool's field name.
inline boost::json::object to_json(const Report& r) {
    boost::json::object o;
    o["type"] = to_string(r.type);
    o["kind"] = to_string(r.type);
    o["severity"] = to_string(r.severity);
    o["sequence"] = r.sequence;
    o["timestamp"] = format_timestamp(r.timestamp);
    o["task_name"] = r.task_name;
    o["task_type"] = r.task_type;
    o["completed_tasks"] = r.completed_tasks;
    o["total_tasks"] = r.total_tasks;
    o["message"] = r.message;
    o["details"] = r.details;
    if (!r.key.empty()) o["key"] = r.key;
    return o;
}

/// Reads what to_json wrote ("kind" accepted instead of "type"); throws ReportFormatError naming the field.
inline Report report_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o) throw ReportFormatError("report: expected an object");
    auto fail = [](std::string path, const std::string& problem) { throw ReportFormatError(path + ": " + problem); };
    detail::JsonFields<decltype(fail)> f(*o, "", fail);
    Report r;
    std::string type = f.has("type") ? *f.string("type", true) : *f.string("kind", true);
    auto t = report_type_from_string(type);
    if (!t) f.fail("type", "unknown report type");
    r.type = *t;
    auto sev = severity_from_string(*f.string("severity", true));
    if (!sev) f.fail("severity", "expected one of info, warning, error, critical");
    r.severity = *sev;
    r.sequence = static_cast<std::uint64_t>(f.integer("sequence", 0).value_or(0));
    if (auto ts = f.string("timestamp"); ts && !ts->empty()) {
        auto parsed = parse_rfc3339(*ts);
        if (!parsed) f.fail("timestamp", "expected an RFC 3339 time");
        r.timestamp = *parsed;
    }
    f.string("task_name", r.task_name);
    f.string("task_type", r.task_type);
    r.completed_tasks = static_cast<int>(f.integer("completed_tasks", 0, INT32_MAX).value_or(0));
    r.total_tasks = static_cast<int>(f.integer("total_tasks", 0, INT32_MAX).value_or(0));
    f.string("message", r.message);
    if (auto* d = f.object("details")) r.details = *d;
    f.string("key", r.key);
    return r;
}

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const Report& r) {
    jv = to_json(r);
}

inline Report tag_invoke(const boost::json::value_to_tag<Report>&, const boost::json::value& jv) {
    return report_from_json(jv);
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_REPORT_HPP

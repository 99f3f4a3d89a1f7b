// WatchSummary: the outcome of one watch — what the orchestrator reads after watch() returns.
#ifndef EXECUTION_SENTINEL_SUMMARY_HPP
#define EXECUTION_SENTINEL_SUMMARY_HPP

#include <execution_sentinel/report.hpp>

#include <execution_sentinel/detail/json_reader.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// How a watch ended, in one word: what an orchestrator (and the command's exit status) decides on.
enum class WatchOutcome : std::uint8_t {
    succeeded, ///< the engine wrote exit code 0 and there was no mass failure
    failed,    ///< a non-zero exit code, a mass failure, or no exit code at all (success cannot be proven)
    timed_out, ///< the time limit passed before the engine wrote its exit code
};

/// "succeeded", "failed", "timed_out".
inline constexpr std::string_view to_string(WatchOutcome o) noexcept {
    switch (o) {
    case WatchOutcome::succeeded: return "succeeded";
    case WatchOutcome::failed: return "failed";
    case WatchOutcome::timed_out: return "timed_out";
    }
    return "failed";
}

/// Peak usage of one task type, over the metrics samples of its tasks (one pod at a time: the largest pod).
struct ResourcePeak {
    std::int64_t memory_bytes = 0; ///< the highest working-set memory of one task pod (its containers summed)
    double cpu_cores = 0;          ///< the highest CPU usage of one task pod, in cores
    friend bool operator==(const ResourcePeak&, const ResourcePeak&) = default;
};

/// What the run's tasks used, from the metrics API (docs/detectors.md, MemoryPressureDetector): usage integrated
/// over the samples, the cost account of the run.
struct ResourceUse {
    double cpu_seconds = 0;        ///< CPU core-seconds of the task pods
    double memory_gib_seconds = 0; ///< memory GiB-seconds of the task pods (working set)
    int samples = 0;               ///< metrics samples read that were available
    std::map<std::string, ResourcePeak> peak_by_type; ///< task type → its peak
    friend bool operator==(const ResourceUse&, const ResourceUse&) = default;
};

/// The run's stalls (ANOMALY_STALL; docs/detectors.md, StallDetector).
struct StallSummary {
    int episodes = 0;               ///< workflow-level stalls reported (each from LOW on, until progress resumed)
    double longest_seconds = 0;     ///< the longest of them, as far as it was observed
    std::string highest_tier;       ///< "LOW", "MEDIUM", "HIGH" or "CRITICAL"; "" when the run never stalled
    bool stalled_at_end = false;    ///< a stall was still going on when the summary was made
    std::vector<std::string> stalled_tasks; ///< tasks reported stuck (waiting to start, or running without a baseline)
    friend bool operator==(const StallSummary&, const StallSummary&) = default;
};

struct WatchSummary {
    int total_tasks = 0;     ///< inventory size (plus tasks found that the inventory does not list)
    int completed_tasks = 0; ///< succeeded tasks (see inferred_completed)
    int failed_tasks = 0;    ///< tasks whose last attempt failed as seen on the cluster
    std::optional<int> exit_code; ///< the engine's exit code; nullopt when it never wrote one
    bool timed_out = false;
    bool mass_failure = false;
    double duration_seconds = 0; ///< from the first observation to completion, timeout or now
    std::vector<std::string> oom_killed; ///< names of tasks that ran out of memory
    std::vector<std::string> stragglers; ///< names of tasks reported as stragglers
    std::map<ReportType, int> reports;   ///< reports emitted, per type
    /// Inventory tasks not seen to finish but counted as completed because the engine exited 0 (their Jobs
    /// finished and were deleted before the watch saw them — vanished ones included —, their last update was
    /// missed, or they ran agglomerated in another task's Job). Included in completed_tasks.
    int inferred_completed = 0;
    /// Tasks whose Job and pods were deleted before their end was seen, with no evidence left of how they ended
    /// (TaskStatus::vanished: outcome unknown). Counted in neither completed_tasks nor failed_tasks; with exit
    /// code 0 the inventory ones are counted completed instead (inferred_completed).
    int vanished_tasks = 0;
    /// Health of the run in [0, 1] (health_score, detectors/progress.hpp): 1 when nothing failed; nullopt when
    /// the Monitor has no ProgressDetector.
    std::optional<double> health;
    /// Whether the metrics API could be read: nullopt when no reading was made (metrics_interval 0, or too
    /// early), false when it was absent or forbidden (metrics_problem says why), true once a reading worked.
    std::optional<bool> metrics_available;
    std::string metrics_problem; ///< why the metrics API could not be read, as first seen; "" when it could
    ResourceUse resources;       ///< usage and peaks from the metrics API (zero without it)
    StallSummary stall;          ///< workflow and task stalls
    /// The ETA (MonitorView::eta_seconds) at the last tick: seconds until every task has finished; 0 once the
    /// engine wrote its exit code; nullopt when no estimate could be made (a task without any baseline).
    std::optional<double> eta_seconds;
    std::string eta_basis; ///< what that ETA rests on (MonitorView::eta_basis); "" when none was made
    /// The run's whole duration as first estimated: the time into the run of the first ETA made while a task was
    /// running, plus that ETA. nullopt when no such estimate was made.
    std::optional<double> estimated_duration_seconds;
    double estimated_at_seconds = 0; ///< when that estimate was made, in seconds from the start of the watch
    std::string estimate_basis;      ///< what that estimate rested on (an eta_basis value)
    /// At the end (the engine wrote its exit code): the estimate's error, (estimated − actual) / actual × 100,
    /// where actual is duration_seconds. Positive: the run ended sooner than estimated. nullopt otherwise.
    std::optional<double> eta_error_pct;

    /// The outcome, in order of precedence: timed out; failed on a mass failure or a non-zero exit code;
    /// succeeded on exit code 0; failed when there is no exit code at all (the watch was cancelled or ended
    /// on an error: success cannot be proven).
    WatchOutcome outcome() const noexcept {
        if (timed_out) return WatchOutcome::timed_out;
        if (mass_failure || !exit_code) return WatchOutcome::failed;
        return *exit_code == 0 ? WatchOutcome::succeeded : WatchOutcome::failed;
    }

    friend bool operator==(const WatchSummary&, const WatchSummary&) = default;
};

class SummaryFormatError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// The estimate's error at the end (pure): (estimated − actual) / actual × 100 when the engine's exit code is known,
/// the run was not timed out and both durations are > 0; nullopt otherwise.
inline std::optional<double> eta_error_pct(const WatchSummary& s) {
    if (!s.exit_code || s.timed_out || !s.estimated_duration_seconds) return std::nullopt;
    const double estimated = *s.estimated_duration_seconds, actual = s.duration_seconds;
    if (!(estimated > 0) || !(actual > 0) || !std::isfinite(estimated) || !std::isfinite(actual)) return std::nullopt;
    return (estimated - actual) / actual * 100.0;
}

/// Sets `eta_error_pct` from the summary's estimate and duration (see eta_error_pct(const WatchSummary&)).
inline void settle_eta(WatchSummary& s) { s.eta_error_pct = eta_error_pct(s); }

inline boost::json::object to_json(const WatchSummary& s) {
    boost::json::object o;
    o["total_tasks"] = s.total_tasks;
    o["completed_tasks"] = s.completed_tasks;
    o["failed_tasks"] = s.failed_tasks;
    if (s.exit_code) o["exit_code"] = *s.exit_code;
    else o["exit_code"] = nullptr;
    o["timed_out"] = s.timed_out;
    o["mass_failure"] = s.mass_failure;
    o["duration_seconds"] = s.duration_seconds;
    boost::json::array oom, strag;
    for (auto& n : s.oom_killed) oom.push_back(boost::json::string(n));
    for (auto& n : s.stragglers) strag.push_back(boost::json::string(n));
    o["oom_killed"] = std::move(oom);
    o["stragglers"] = std::move(strag);
    boost::json::object per;
    for (auto& [t, n] : s.reports) per[to_string(t)] = n;
    o["reports"] = std::move(per);
    o["inferred_completed"] = s.inferred_completed;
    o["vanished_tasks"] = s.vanished_tasks;
    if (s.health) o["health"] = *s.health;
    else o["health"] = nullptr;
    if (s.metrics_available) o["metrics_available"] = *s.metrics_available;
    else o["metrics_available"] = nullptr;
    o["metrics_problem"] = s.metrics_problem;
    boost::json::object res;
    res["cpu_seconds"] = s.resources.cpu_seconds;
    res["memory_gib_seconds"] = s.resources.memory_gib_seconds;
    res["samples"] = s.resources.samples;
    boost::json::object peaks;
    for (auto& [type, p] : s.resources.peak_by_type) {
        boost::json::object one;
        one["memory_bytes"] = p.memory_bytes;
        one["cpu_cores"] = p.cpu_cores;
        peaks[type] = std::move(one);
    }
    res["peak_by_type"] = std::move(peaks);
    o["resources"] = std::move(res);
    boost::json::object st;
    st["episodes"] = s.stall.episodes;
    st["longest_seconds"] = s.stall.longest_seconds;
    st["highest_tier"] = s.stall.highest_tier;
    st["stalled_at_end"] = s.stall.stalled_at_end;
    boost::json::array tasks;
    for (auto& n : s.stall.stalled_tasks) tasks.push_back(boost::json::string(n));
    st["stalled_tasks"] = std::move(tasks);
    o["stall"] = std::move(st);
    auto optional_number = [&](std::string_view key, const std::optional<double>& v) {
        if (v) o[key] = *v;
        else o[key] = nullptr;
    };
    optional_number("eta_seconds", s.eta_seconds);
    o["eta_basis"] = s.eta_basis;
    optional_number("estimated_duration_seconds", s.estimated_duration_seconds);
    o["estimated_at_seconds"] = s.estimated_at_seconds;
    o["estimate_basis"] = s.estimate_basis;
    optional_number("eta_error_pct", s.eta_error_pct);
    return o;
}

/// Reads a summary; every field is optional (defaults as in WatchSummary). Throws SummaryFormatError.
inline WatchSummary summary_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o) throw SummaryFormatError("summary: expected an object");
    auto fail = [](std::string path, const std::string& problem) { throw SummaryFormatError(path + ": " + problem); };
    detail::JsonFields<decltype(fail)> f(*o, "", fail);
    WatchSummary s;
    f.integer("total_tasks", s.total_tasks);
    f.integer("completed_tasks", s.completed_tasks);
    f.integer("failed_tasks", s.failed_tasks);
    if (f.has("exit_code")) {
        int code = 0;
        f.integer("exit_code", code);
        s.exit_code = code;
    }
    f.boolean("timed_out", s.timed_out);
    f.boolean("mass_failure", s.mass_failure);
    if (auto d = f.number("duration_seconds")) s.duration_seconds = *d;
    s.oom_killed = f.strings("oom_killed");
    s.stragglers = f.strings("stragglers");
    if (auto* per = f.object("reports")) {
        auto counts = f.nested(*per, "reports");
        for (auto& [k, n] : *per) {
            (void)n;
            auto t = report_type_from_string(k);
            if (!t) counts.fail(k, "unknown report type");
            int count = 0;
            counts.integer(k, count);
            s.reports[*t] = count;
        }
    }
    f.integer("inferred_completed", s.inferred_completed);
    if (auto n = f.integer("vanished_tasks", 0, std::numeric_limits<int>::max())) s.vanished_tasks = static_cast<int>(*n);
    if (auto h = f.number("health")) {
        if (*h < 0 || *h > 1) f.fail("health", "expected a number between 0 and 1");
        s.health = *h;
    }
    s.metrics_available = f.boolean("metrics_available");
    f.string("metrics_problem", s.metrics_problem);
    auto non_negative = [](const auto& fields, std::string_view key, double& out) {
        if (auto d = fields.number(key)) {
            if (*d < 0) fields.fail(key, "expected a number of at least 0");
            out = *d;
        }
    };
    if (auto* res = f.object("resources")) {
        auto r = f.nested(*res, "resources");
        non_negative(r, "cpu_seconds", s.resources.cpu_seconds);
        non_negative(r, "memory_gib_seconds", s.resources.memory_gib_seconds);
        r.integer("samples", s.resources.samples);
        if (auto* peaks = r.object("peak_by_type")) {
            auto p = r.nested(*peaks, "peak_by_type");
            for (auto& [type, v] : *peaks) {
                (void)v;
                auto* one = p.object(type);
                if (!one) continue;
                auto q = p.nested(*one, type);
                ResourcePeak peak;
                if (auto m = q.integer("memory_bytes", 0)) peak.memory_bytes = *m;
                non_negative(q, "cpu_cores", peak.cpu_cores);
                s.resources.peak_by_type[std::string(type)] = peak;
            }
        }
    }
    if (auto* st = f.object("stall")) {
        auto r = f.nested(*st, "stall");
        r.integer("episodes", s.stall.episodes);
        non_negative(r, "longest_seconds", s.stall.longest_seconds);
        r.string("highest_tier", s.stall.highest_tier);
        r.boolean("stalled_at_end", s.stall.stalled_at_end);
        s.stall.stalled_tasks = r.strings("stalled_tasks");
    }
    auto non_negative_optional = [&](std::string_view key, std::optional<double>& out) {
        if (auto d = f.number(key)) {
            if (*d < 0) f.fail(key, "expected a number of at least 0");
            out = *d;
        }
    };
    auto basis = [&](std::string_view key, std::string& out) {
        f.string(key, out);
        if (out.size() > 64) f.fail(key, "longer than 64 characters");
    };
    non_negative_optional("eta_seconds", s.eta_seconds);
    basis("eta_basis", s.eta_basis);
    non_negative_optional("estimated_duration_seconds", s.estimated_duration_seconds);
    non_negative(f, "estimated_at_seconds", s.estimated_at_seconds);
    basis("estimate_basis", s.estimate_basis);
    if (auto e = f.number("eta_error_pct")) {
        if (*e < -100) f.fail("eta_error_pct", "expected a number of at least -100");
        s.eta_error_pct = *e;
    }
    return s;
}

inline void tag_invoke(const boost::json::value_from_tag&, boost::json::value& jv, const WatchSummary& s) {
    jv = to_json(s);
}
inline WatchSummary tag_invoke(const boost::json::value_to_tag<WatchSummary>&, const boost::json::value& jv) {
    return summary_from_json(jv);
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_SUMMARY_HPP

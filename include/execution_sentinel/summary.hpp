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

#include <cstdint>
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
    /// finished and were deleted before the watch saw them, their last update was missed, or they ran
    /// agglomerated in another task's Job). Included in completed_tasks.
    int inferred_completed = 0;

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

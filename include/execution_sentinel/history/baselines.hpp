// Learned baselines from a run history store (docs/history.md, "Baselines"): the P50 and P95 of every task type's
// succeeded attempts in past runs, for the straggler and stall rules and the ETA (baselines.hpp).
#ifndef EXECUTION_SENTINEL_HISTORY_BASELINES_HPP
#define EXECUTION_SENTINEL_HISTORY_BASELINES_HPP

#include <execution_sentinel/baselines.hpp>
#include <execution_sentinel/history/store.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::history {

/// Per task type (types with a name only), the durations of its succeeded attempts among `attempts`, as baselines
/// of `scope`; types with fewer than `min_samples` (at least 1) measured attempts are left out.
inline std::map<std::string, TypeBaseline> baselines_of(const std::vector<TaskAttempt>& attempts, std::size_t min_samples,
                                                        std::string_view scope, std::string_view exclude_run = {}) {
    std::map<std::string, std::vector<double>> durations;
    for (const auto& a : attempts) {
        if (a.task_type.empty() || a.status != "succeeded") continue;
        if (!exclude_run.empty() && a.run_id == exclude_run) continue; // the run being watched is not its own past
        if (auto d = a.duration_seconds(); d && std::isfinite(*d) && *d >= 0) durations[a.task_type].push_back(*d);
    }
    std::map<std::string, TypeBaseline> out;
    const std::size_t needed = std::max<std::size_t>(1, min_samples);
    for (auto& [type, list] : durations) {
        if (list.size() < needed) continue;
        const auto stats = duration_stats(list);
        out[type] = TypeBaseline{stats.count, stats.p50, stats.p95, std::string(scope)};
    }
    return out;
}

/// The baselines of `workflow_name` learned from `store`. With a workflow name, a type takes the attempts of that
/// workflow's runs ("workflow") when they are at least `options.min_samples`, else those of all runs in the store
/// ("all"); with "" every type takes all runs. Reads the store (I/O): call it before the watch starts, never from
/// the watch path. `exclude_run`: a run whose attempts do not count (the one being watched, when a restarted watch
/// resumes it). Throws StoreError when the store cannot be read or a row is corrupt.
inline Baselines load_baselines(RunHistoryStore& store, const std::string& workflow_name,
                                const BaselineOptions& options = {}, std::string_view exclude_run = {}) {
    Baselines out(workflow_name);
    if (!workflow_name.empty())
        for (auto& [type, b] :
             baselines_of(store.task_attempts(workflow_name, ""), options.min_samples, "workflow", exclude_run))
            out.set(type, b);
    for (auto& [type, b] : baselines_of(store.task_attempts("", ""), options.min_samples, "all", exclude_run))
        if (!out.find(type)) out.set(type, b);
    return out;
}

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_BASELINES_HPP

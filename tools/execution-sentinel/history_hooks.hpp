// `watch --history STORE`: records the watched run in the run history store (docs/history.md) through the
// watch's hooks, without blocking the watch (history/writer.hpp).
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP

#include "watch_run.hpp"

#include <execution_sentinel/context.hpp>

#include <optional>
#include <string>

namespace execution_sentinel::cli {

/// Hooks that record the run in the store `store_flag` names (else SENTINEL_HISTORY, else SENTINEL_STATE);
/// empty hooks when none is set. The workflow name baselines are grouped by is SENTINEL_WORKFLOW_NAME, else the
/// namespace. The hooks carry the baselines learned from the store's past runs (history/baselines.hpp), read
/// once here; a store whose rows cannot be read for them is said on stderr and the watch goes on without them.
/// The store also keeps the run's checkpoint (checkpoint.hpp): a run in progress that an earlier watch of the
/// same context checkpointed is resumed, under its run id, unless `fresh`.
/// Exit 2 for an invalid address, a store that cannot be opened or an invalid SENTINEL_BASELINE_MIN_SAMPLES.
/// `baseline_min_samples`, when given, is used instead of SENTINEL_BASELINE_MIN_SAMPLES (serve's configuration).
WatchHooks history_hooks(const std::string& store_flag, const MonitoringContext& context, bool fresh = false,
                         std::optional<int> baseline_min_samples = std::nullopt);

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP

// `watch --history STORE`: records the watched run in the run history store (docs/history.md) through the
// watch's hooks, without blocking the watch (history/writer.hpp).
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP

#include "watch_run.hpp"

#include <execution_sentinel/context.hpp>

#include <string>

namespace execution_sentinel::cli {

/// Hooks that record the run in the store `store_flag` names (else SENTINEL_HISTORY, else SENTINEL_STATE);
/// empty hooks when none is set. The workflow name baselines are grouped by is SENTINEL_WORKFLOW_NAME, else the
/// namespace. Exit 2 for an invalid address or a store that cannot be opened.
WatchHooks history_hooks(const std::string& store_flag, const MonitoringContext& context);

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_HOOKS_HPP

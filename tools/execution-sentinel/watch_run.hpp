// The watch as a command runs it, shared by `watch` and `demo`: loading the settings, the context and the
// cluster configuration (each failure an exit status with one line on stderr), then run_watch, which drives the
// library's Sentinel and writes its reports to the chosen output. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP

#include "arguments.hpp"

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/settings.hpp>

#include <chrono>
#include <string>

namespace execution_sentinel::cli {

/// When the program started (the first call records it; main calls it first). --timeout counts from here, so
/// that the time spent reading a large context is part of the limit.
std::chrono::steady_clock::time_point program_start();

/// Settings from SENTINEL_* and ./.env, then the command-line overrides (empty strings: not given).
SentinelSettings load_settings(const std::string& poll, const std::string& timeout, const std::string& kubeconfig,
                               const std::string& kube_context);

/// Whether a SENTINEL_* variable is set in the environment or in ./.env.
bool setting_given(const std::string& name);

/// The MonitoringContext from a file or stdin ("-"); exit 2 naming the field.
MonitoringContext load_context(const std::string& path);

/// The cluster of the kubeconfig the settings name; exit 2 for an invalid configuration, 4 otherwise.
kube::ClusterConfig load_cluster(const SentinelSettings& settings);

/// `--output`; exit 2 when invalid.
OutputMode output_mode(const std::string& text);

/// Watches until the workflow ends, the timeout passes (counted from program_start()), SIGINT/SIGTERM, or the
/// output cannot be written; prints the summary last. Returns the exit status (exit_codes.hpp).
int run_watch(const MonitoringContext& context, SentinelSettings settings, const kube::ClusterConfig& cluster,
              OutputMode mode);

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP

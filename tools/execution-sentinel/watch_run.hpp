// The watch as a command runs it, shared by `watch` and `demo`: loading the settings, the context and the
// cluster configuration (each failure an exit status with one line on stderr), then run_watch, which drives the
// library's Sentinel and writes its reports to the chosen output. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP

#include "arguments.hpp"

#include <execution_sentinel/baselines.hpp>
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/history/store.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace execution_sentinel::cli {

/// When the program started (the first call records it; main calls it first). --timeout counts from here, so
/// that the time spent reading a large context is part of the limit.
std::chrono::steady_clock::time_point program_start();

/// Settings from SENTINEL_* and ./.env, then the command-line overrides (empty strings: not given). A
/// `log_patterns` file that cannot be read is a usage error naming the flag.
SentinelSettings load_settings(const std::string& poll, const std::string& timeout, const std::string& kubeconfig,
                               const std::string& kube_context, const std::string& log_patterns = {});

/// Whether a SENTINEL_* variable is set in the environment or in ./.env.
bool setting_given(const std::string& name);

/// The MonitoringContext from a file or stdin ("-"); exit 2 naming the field.
MonitoringContext load_context(const std::string& path);

/// The cluster of the kubeconfig the settings name; exit 2 for an invalid configuration, 4 otherwise.
kube::ClusterConfig load_cluster(const SentinelSettings& settings);

/// `--output`; exit 2 when invalid.
OutputMode output_mode(const std::string& text);

/// Consumers of a watch besides its output (`watch --history`): `reports` receives, before the watch starts, a
/// subscription that includes the task-lifecycle reports and the executor to drain it on (the channel closes when
/// the watch ends); `finished` receives the final summary and whether the watch was interrupted.
struct WatchHooks {
  std::function<void(boost::asio::any_io_executor, ReportSubscription)> reports;
  std::function<void(const WatchSummary&, bool interrupted)> finished;
  /// Acts on findings (docs/interventions.md): gets its own subscription, a way to publish its INTERVENTION
  /// reports into the watch's channel (so that they are printed, recorded and alerted like every report), and
  /// the cluster to act on.
  std::function<void(boost::asio::any_io_executor, ReportSubscription, std::function<void(Report)> publish,
                     const kube::ClusterConfig&)>
      interventions;
  /// Expected durations learned from past runs (`watch --history`), handed to the Sentinel (SentinelOptions).
  Baselines baselines;
  /// Where the run's checkpoint lives, the one to resume from, and what each checkpoint carries besides the
  /// monitor's state (SentinelOptions::checkpoints, resume_from, checkpoint_extra): `watch --state/--history`.
  AnyCheckpointStore checkpoints;
  std::optional<boost::json::object> resume_from;
  boost::json::object checkpoint_extra;
  /// The history store of `--state`/`--history`, when one is given: alert deliveries are recorded there too, so
  /// that deduplication and cooldowns survive a restart (docs/alerts.md).
  std::shared_ptr<history::RunHistoryStore> history_store;
};

/// Watches until the workflow ends, the timeout passes (counted from program_start()), SIGINT/SIGTERM, or the
/// output cannot be written; prints the summary last. Returns the exit status (exit_codes.hpp).
int run_watch(const MonitoringContext& context, SentinelSettings settings, const kube::ClusterConfig& cluster,
              OutputMode mode, const WatchHooks& hooks = {});

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_WATCH_RUN_HPP

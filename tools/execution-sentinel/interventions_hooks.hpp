// `watch --interventions FILE`: acts on findings as FILE's policies say (docs/interventions.md), through the
// watch's hooks. The Intervener drains its own subscription in its own coroutine, so the watch never waits for it;
// its INTERVENTION reports go into the watch's channel and are printed, recorded and alerted like every report.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_INTERVENTIONS_HOOKS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_INTERVENTIONS_HOOKS_HPP

#include "exit_codes.hpp"
#include "program.hpp"
#include "watch_run.hpp"

#include <execution_sentinel/interventions/config.hpp>
#include <execution_sentinel/interventions/intervener.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <memory>
#include <string>
#include <utility>

namespace execution_sentinel::cli {

/// `hooks` plus interventions by the policies of `path` (nothing added when `path` is empty or the file leaves
/// them off). Exit 2 naming the file, line and field for an invalid file.
inline WatchHooks with_interventions(WatchHooks hooks, const std::string& path, const MonitoringContext& context) {
  if (path.empty()) return hooks;
  InterventionSettings settings;
  try {
    settings = load_intervention_settings(path);
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, std::string("--interventions: ") + e.what());
  }
  if (!settings.enabled) return hooks;
  if (!settings.dry_run)
    print_note("interventions are on (not a dry run): actions within " + std::to_string(settings.max_per_hour) +
               " per hour and " + std::to_string(settings.max_per_run) + " per run");
  hooks.interventions = [settings, context](boost::asio::any_io_executor ex, ReportSubscription sub,
                                            std::function<void(Report)> publish, const kube::ClusterConfig& cluster) {
    auto client = std::make_shared<kube::Client>(ex, cluster);
    IntervenerOutputs out;
    out.publish = std::move(publish);
    out.log = [](std::string_view line) { print_note(line); };
    auto intervener = std::make_shared<Intervener>(*client, context, settings, std::move(out));
    auto subscription = std::make_shared<ReportSubscription>(std::move(sub));
    boost::asio::co_spawn(
        ex,
        [client, intervener, subscription]() -> boost::asio::awaitable<void> {
          co_await intervener->run(*subscription);
        },
        boost::asio::detached);
  };
  return hooks;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_INTERVENTIONS_HOOKS_HPP

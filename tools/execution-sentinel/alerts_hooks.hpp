// `watch --alerts FILE`: delivers the watch's reports to the alert sinks FILE configures (docs/alerts.md), through
// the watch's hooks. The AlertDispatcher drains its own subscription in its own coroutine, so a slow receiver never
// holds up the watch; when other hooks also want the reports, they get them from a local channel fed by the same
// loop. When the watch ends, the sinks get a short grace period to deliver what they hold.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ALERTS_HOOKS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ALERTS_HOOKS_HPP

#include "exit_codes.hpp"
#include "program.hpp"
#include "watch_run.hpp"

#include <execution_sentinel/alerts/dispatcher.hpp>
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/history/delivery_ledger.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <string>
#include <utility>

namespace execution_sentinel::cli {

/// The run the alerts are about: "namespace/engine pod" (or "namespace/engine pod selector"), stable across
/// restarts of the sentinel.
inline std::string alert_run_id(const MonitoringContext& context) {
  return context.namespace_ + "/" +
         (context.engine_pod_name.empty() ? context.engine_pod_selector : context.engine_pod_name);
}

/// `hooks` plus alert delivery to the sinks of the alerts file `path` (nothing added when `path` is empty).
/// Exit 2 naming the file, line and field for an invalid file, or the ledger file when it cannot be read.
inline WatchHooks with_alerts(WatchHooks hooks, const std::string& path, const MonitoringContext& context) {
  if (path.empty()) return hooks;
  alerts::AlertsConfig config;
  std::shared_ptr<alerts::DeliveryLedger> ledger;
  try {
    config = alerts::load_alerts_config(path);
    if (config.ledger_file.empty() && hooks.history_store) // `--state`/`--history`: deliveries in the store
      ledger = std::make_shared<history::StoreDeliveryLedger>(hooks.history_store);
    else if (config.ledger_file.empty())
      ledger = std::make_shared<alerts::MemoryDeliveryLedger>();
    else
      ledger = std::make_shared<alerts::JsonFileDeliveryLedger>(config.ledger_file);
    boost::asio::io_context check; // the sinks' URLs and CAs, checked before the watch starts
    alerts::AlertDispatcher validate(check.get_executor(), config, ledger);
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, std::string("--alerts: ") + e.what());
  }
  alerts::DispatcherOptions options;
  options.context = {alert_run_id(context), context.namespace_};
  options.log = [](std::string_view line) { print_note(line); };
  auto previous = std::move(hooks.reports);
  hooks.reports = [config, ledger, options, previous](boost::asio::any_io_executor ex, ReportSubscription sub) {
    auto dispatcher = std::make_shared<alerts::AlertDispatcher>(ex, config, ledger, options);
    std::shared_ptr<ReportChannel> tee;
    if (previous) {
      tee = std::make_shared<ReportChannel>(ex);
      SubscriptionOptions all;
      all.capacity = 4096;
      all.lifecycle = true;
      previous(ex, tee->subscribe(all));
    }
    boost::asio::co_spawn(
        ex,
        [dispatcher, tee, sub = std::move(sub)]() mutable -> boost::asio::awaitable<void> {
          for (;;) {
            auto [ec, report] = co_await sub.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec == channel_error::reports_lost) continue;
            if (ec) break;
            if (tee) tee->publish(report);
            dispatcher->offer(report);
          }
          if (tee) tee->close();
          co_await dispatcher->drain();
        },
        boost::asio::detached);
  };
  return hooks;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ALERTS_HOOKS_HPP

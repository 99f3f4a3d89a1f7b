// The watch driver shared by `watch` and `demo` (watch_run.hpp). The decisions live in the pure headers next to
// this file (exit codes, output formats, the view); this file wires them to the Sentinel, stdout and signals.
#include "watch_run.hpp"

#include "exit_codes.hpp"
#include "program.hpp"
#include "terminal.hpp"
#include "view.hpp"

#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/asio.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

namespace execution_sentinel::cli {

namespace asio = boost::asio;

std::chrono::steady_clock::time_point program_start() {
  static auto const started = std::chrono::steady_clock::now();
  return started;
}

SentinelSettings load_settings(const std::string& poll, const std::string& timeout, const std::string& kubeconfig,
                               const std::string& kube_context, const std::string& log_patterns) {
  SentinelSettings settings;
  try {
    settings = load_settings_from();
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, std::string("settings: ") + e.what());
  }
  auto milliseconds = [](double s) {
    return std::chrono::milliseconds(std::max<std::int64_t>(1, static_cast<std::int64_t>(s * 1000.0 + 0.5)));
  };
  if (!poll.empty()) {
    auto p = parse_poll(poll);
    if (!p.ok()) fail(ExitCode::usage_error, p.error());
    settings.poll_interval = milliseconds(p.value());
  }
  if (!timeout.empty()) {
    auto t = parse_seconds("--timeout", timeout);
    if (!t.ok()) fail(ExitCode::usage_error, t.error());
    settings.timeout = milliseconds(t.value());
  }
  if (!kubeconfig.empty()) settings.kubeconfig = kubeconfig;
  if (!kube_context.empty()) settings.kube_context = kube_context;
  if (!log_patterns.empty()) {
    std::ifstream in(log_patterns);
    if (!in) fail(ExitCode::usage_error, "--log-patterns " + log_patterns + ": cannot be read");
    settings.log_patterns_file = log_patterns;
  }
  // A patterns file (the flag or SENTINEL_LOG_PATTERNS) is read once here so that a bad one is a usage error
  // naming its line and field, before anything is contacted.
  if (!settings.log_patterns_file.empty()) {
    try {
      (void)load_log_patterns(settings.log_patterns_file);
    } catch (const LogPatternError& e) {
      fail(ExitCode::usage_error, std::string("log patterns: ") + e.what());
    }
  }
  return settings;
}

bool setting_given(const std::string& name) {
  if (std::getenv(name.c_str())) return true;
  try {
    if (auto text = read_dotenv_file(".env")) return parse_dotenv(*text).count(name) != 0;
  } catch (const std::exception&) {
    // load_settings already reported a broken .env
  }
  return false;
}

MonitoringContext load_context(const std::string& path) {
  std::string const text = read_input(path, "--context");
  try {
    return context_from_json_text(text);
  } catch (const ContextError& e) {
    fail(ExitCode::usage_error, "context " + display_name(path) + ": " + e.what());
  }
}

kube::ClusterConfig load_cluster(const SentinelSettings& settings) {
  try {
    kube::KubeconfigOptions options;
    options.path = settings.kubeconfig;
    options.context = settings.kube_context;
    return kube::load_default(options);
  } catch (const kube::Error& e) {
    std::string message = e.what();
    if (message.rfind("kubeconfig", 0) != 0) message = "kubeconfig: " + message;
    fail(exit_code_for_error(e.code()), message);
  }
}

OutputMode output_mode(const std::string& text) {
  auto m = parse_output_mode(text);
  if (!m.ok()) fail(ExitCode::usage_error, m.error());
  return m.value();
}

int run_watch(const MonitoringContext& context, SentinelSettings settings, const kube::ClusterConfig& cluster,
              OutputMode mode, const WatchHooks& hooks) {
  using std::chrono::steady_clock;
  asio::io_context io;
  auto const terminal = probe_terminal(STDOUT_FILENO);
  std::unique_ptr<OutputSink> sink;
  if (use_text_output(mode, terminal.is_terminal))
    sink = std::make_unique<TextSink>(STDOUT_FILENO, initial_view(context), terminal);
  else
    sink = std::make_unique<NdjsonSink>(STDOUT_FILENO);

  // The limit counts from the program's start: what remains of it is the sentinel's own timeout, and a
  // backstop one second later ends the run as timed out even if the watch has not started by then.
  auto const deadline = program_start() + settings.timeout;
  settings.timeout = remaining_time(settings.timeout, program_start(), steady_clock::now());

  auto const started = steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(steady_clock::now() - started).count(); };

  // Fail fast at start: an unreachable cluster, refused credentials, a rejected TLS handshake or garbage
  // answers before the first successful list end the run at once (exit status 4, 2 for an invalid
  // configuration) instead of being retried until the timeout. The client's and the watchers' log lines
  // (warnings) go to stderr unless SENTINEL_LOG_LEVEL is ERROR or CRITICAL.
  SentinelOptions options;
  options.fail_fast = true;
  options.baselines = hooks.baselines;
  options.checkpoints = hooks.checkpoints;
  options.resume_from = hooks.resume_from;
  options.checkpoint_extra = hooks.checkpoint_extra;
  options.client.connect_timeout = std::chrono::seconds(10);
  if (settings.log_level <= LogLevel::WARNING)
    options.client.log = [&sink](std::string_view line) { sink->note(program_name() + ": " + sanitize(line) + "\n"); };
  DefaultSentinel sentinel(io.get_executor(), context, settings, cluster, std::move(options));
  auto subscription = sentinel.subscribe();
  if (hooks.reports) {
    SubscriptionOptions all;
    all.capacity = 4096;
    all.lifecycle = true;
    hooks.reports(io.get_executor(), sentinel.subscribe(all));
  }
  if (hooks.interventions) {
    SubscriptionOptions findings;
    findings.capacity = 4096;
    hooks.interventions(io.get_executor(), sentinel.subscribe(findings),
                        [&sentinel](Report r) { sentinel.reports().publish(std::move(r)); }, cluster);
  }
  // The live view is drawn from the sentinel's snapshot (Sentinel::view(), safe from any thread).
  auto refresh_phases = [&] {
    if (sink->wants_view()) sink->monitor_view(sentinel.view());
  };

  bool interrupted = false;
  bool deadline_passed = false;
  bool watch_done = false;
  bool drain_done = false;
  std::optional<WatchSummary> summary;
  std::optional<ExitCode> error_code;
  std::string error_message;

  asio::cancellation_signal cancel_watch;
  asio::cancellation_signal cancel_drain;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer ticker(io);
  asio::steady_timer grace(io);
  asio::steady_timer backstop(io);

  auto finish_if_done = [&] {
    if (!watch_done || !drain_done) return;
    signals.cancel();
    ticker.cancel();
    grace.cancel();
    backstop.cancel();
  };

  // The output failed (reader gone, disk full): say so at once and stop everything; nothing more is written.
  auto stop_for_output = [&] {
    cancel_watch.emit(asio::cancellation_type::terminal);
    cancel_drain.emit(asio::cancellation_type::terminal);
  };
  sink->on_failure([&](int error) {
    print_error(output_error_message(error) + "; stopping");
    stop_for_output();
  });

  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (interrupted) {
        // A second signal while stopping: leave at once.
        sink->abandon();
        std::_Exit(to_int(ExitCode::interrupted));
      }
      interrupted = true;
      sink->note(program_name() + ": stopping (press Ctrl+C again to quit at once)\n");
      cancel_watch.emit(asio::cancellation_type::terminal);
      wait_signal();
    });
  };
  wait_signal();

  backstop.expires_at(deadline + std::chrono::seconds(1));
  backstop.async_wait([&](const boost::system::error_code& ec) {
    if (ec || watch_done) return;
    deadline_passed = true;
    cancel_watch.emit(asio::cancellation_type::terminal);
  });

  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::seconds(1));
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec || watch_done) return;
      if (output_gone(STDOUT_FILENO)) sink->fail(EPIPE);
      if (sink->failure() != 0) {
        stop_for_output(); // also when the output failed before the watch had started
        return;
      }
      refresh_phases();
      sink->tick(elapsed());
      tick();
    });
  };
  sink->tick(0);
  tick();

  // Reports → output, in order, until the channel is closed (or the grace period after the watch ends).
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (true) {
          auto [ec, report] = co_await subscription.async_receive(asio::as_tuple(asio::use_awaitable));
          if (ec == channel_error::reports_lost) {
            sink->note(program_name() + ": some reports were lost because the output could not keep up\n");
            continue;
          }
          if (ec) break;
          sink->report(report);
          if (sink->failure() != 0) break;
        }
      },
      asio::bind_cancellation_slot(cancel_drain.slot(), [&](std::exception_ptr) {
        drain_done = true;
        finish_if_done();
      }));

  asio::co_spawn(io, sentinel.watch(),
                 asio::bind_cancellation_slot(cancel_watch.slot(), [&](std::exception_ptr e, WatchSummary s) {
                   watch_done = true;
                   bool const stopped = interrupted || deadline_passed || sink->failure() != 0;
                   if (!e) {
                     summary = s;
                   } else {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::system_error& se) { // kube::Error: a fatal API failure
                       if (!stopped) {
                         error_code = exit_code_for_error(se.code());
                         error_message = se.what();
                       }
                     } catch (const boost::system::system_error& se) {
                       if (!stopped || se.code() != asio::error::operation_aborted) {
                         error_code = ExitCode::cluster_unreachable;
                         error_message = se.what();
                       }
                     } catch (const std::exception& ex) {
                       error_code = ExitCode::cluster_unreachable;
                       error_message = ex.what();
                     }
                     // The state reached, also after a cancelled or failed watch.
                     summary = sentinel.summary();
                   }
                   refresh_phases();
                   if (sink->failure() != 0) {
                     cancel_drain.emit(asio::cancellation_type::terminal);
                   } else {
                     // Let queued reports reach the output, but do not wait for ever.
                     grace.expires_after(std::chrono::milliseconds(250));
                     grace.async_wait([&](const boost::system::error_code& ec) {
                       if (!ec) cancel_drain.emit(asio::cancellation_type::terminal);
                     });
                   }
                   finish_if_done();
                 }));

  io.run();

  WatchSummary final_summary = summary ? *summary : sentinel.summary();
  if (deadline_passed && !final_summary.exit_code) final_summary.timed_out = true;
  if (hooks.finished) hooks.finished(final_summary, interrupted);
  if (sink->failure() != 0) return to_int(ExitCode::output_failed);
  ExitCode code;
  if (error_code && !interrupted && !deadline_passed) code = *error_code;
  else code = exit_code_for(final_summary.outcome(), interrupted);
  sink->finish(final_summary, code, error_code ? error_message : std::string());
  if (sink->failure() != 0) return to_int(ExitCode::output_failed);
  if (error_code && code == *error_code) print_error(error_message);
  return to_int(code);
}

} // namespace execution_sentinel::cli

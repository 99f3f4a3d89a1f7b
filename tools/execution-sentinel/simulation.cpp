// The simulated cluster for other clients (simulation.hpp).
#include "simulation.hpp"

#include "arguments.hpp"
#include "exit_codes.hpp"
#include "program.hpp"
#include "terminal.hpp"

#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include <unistd.h>

namespace execution_sentinel::cli {

namespace asio = boost::asio;

void add_simulation_flags(CLI::App& app, SimulationFlags& flags) {
  app.add_option("--scenario", flags.scenario, "Scenario JSON file, or - for stdin (default: an empty cluster)");
  app.add_option("--port", flags.port, "Port on 127.0.0.1 (0: any free port)")->capture_default_str();
  app.add_option("--speed", flags.speed, "Play the scenario this many times faster (0 < X <= 1000)")->capture_default_str();
  app.add_option("--kubeconfig-out", flags.kubeconfig_out, "Write the kubeconfig here (mode 0600)");
  app.add_option("--context-out", flags.context_out, "Write the scenario's MonitoringContext JSON here");
  app.add_option("--linger", flags.linger,
                 "Exit this many seconds after the scenario's last step (default: serve until interrupted)");
  app.add_option("--bookmark-interval", flags.bookmark_interval, "Seconds between BOOKMARK events on watches (default 60)");
  app.add_flag("-v,--verbose", flags.verbose, "Print every scenario step on stderr (failed steps always)");
}

int run_simulation(const SimulationFlags& flags, Announce announce) {
  auto port = parse_port(flags.port);
  if (!port.ok()) fail(ExitCode::usage_error, port.error());
  auto speed = parse_speed(flags.speed);
  if (!speed.ok()) fail(ExitCode::usage_error, speed.error());
  std::optional<double> linger;
  if (!flags.linger.empty()) {
    auto l = parse_seconds("--linger", flags.linger);
    if (!l.ok()) fail(ExitCode::usage_error, l.error());
    linger = l.value();
  }
  double bookmark_seconds = 60;
  if (!flags.bookmark_interval.empty()) {
    auto b = parse_seconds("--bookmark-interval", flags.bookmark_interval);
    if (!b.ok()) fail(ExitCode::usage_error, b.error());
    if (b.value() < 0.001 || b.value() > 86400)
      fail(ExitCode::usage_error, "--bookmark-interval: must be between 0.001 and 86400 seconds");
    bookmark_seconds = b.value();
  }
  std::optional<testing::Scenario> scenario;
  if (!flags.scenario.empty()) scenario = load_scenario(flags.scenario, speed.value());

  testing::FakeClusterOptions options;
  options.port = port.value();
  options.bookmark_interval =
      std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(bookmark_seconds * 1000.0)));
  if (scenario) options.default_namespace = scenario->namespace_name;
  std::optional<testing::FakeCluster> fake_storage;
  try {
    fake_storage.emplace(options);
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, "--port " + std::to_string(port.value()) + ": cannot listen: " + e.what());
  }
  auto& fake = *fake_storage;
  std::string const kubeconfig = fake.kubeconfig();
  if (!flags.context_out.empty()) {
    std::string const context = scenario ? scenario->context_json() : testing::Scenario{}.context_json();
    write_private_file(flags.context_out, context + "\n", "--context-out");
  }
  if (!flags.kubeconfig_out.empty()) write_private_file(flags.kubeconfig_out, kubeconfig, "--kubeconfig-out");
  std::string announcement;
  if (announce == Announce::ready_line) announcement = "ready " + fake.server_url() + "\n";
  else if (flags.kubeconfig_out.empty()) announcement = kubeconfig;
  if (int const error = write_fully(STDOUT_FILENO, announcement); error != 0)
    fail(ExitCode::output_failed, output_error_message(error));

  std::optional<testing::ScenarioRunner> runner;
  if (scenario) {
    print_note("serving scenario " + scenario->name + " in namespace " + scenario->namespace_name + " at " +
               fake.server_url() + " (about " +
               std::to_string(static_cast<long long>(std::llround(scenario->duration() * scenario->time_scale))) +
               " s)" + (flags.kubeconfig_out.empty() ? "" : "; kubeconfig in " + flags.kubeconfig_out) +
               (flags.context_out.empty() ? "" : "; context in " + flags.context_out) + "; stop with Ctrl+C");
    runner.emplace(fake, std::move(*scenario));
    runner->on_step([verbose = flags.verbose](std::string_view line, bool ok) {
      if (verbose || !ok) print_note(std::string(ok ? "" : "scenario step failed: ") + std::string(line));
    });
    runner->start();
  } else {
    print_note("serving an empty cluster at " + fake.server_url() + "; stop with Ctrl+C");
  }

  asio::io_context io;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) io.stop();
  });
  // The end of the scenario is announced once; with --linger the program stops that long after it.
  asio::steady_timer check(io);
  std::optional<std::chrono::steady_clock::time_point> finished_at;
  std::function<void()> watch_end = [&] {
    check.expires_after(std::chrono::milliseconds(100));
    check.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (!finished_at && !runner) finished_at = std::chrono::steady_clock::now();
      if (!finished_at && runner->finished()) {
        finished_at = std::chrono::steady_clock::now();
        auto const errors = runner->errors().size();
        print_note("scenario finished" +
                   (errors == 0 ? std::string() : " with " + std::to_string(errors) + " failed steps") +
                   (linger ? "" : "; still serving until interrupted"));
      }
      if (finished_at && linger &&
          std::chrono::steady_clock::now() - *finished_at >= std::chrono::duration<double>(*linger)) {
        io.stop();
        return;
      }
      watch_end();
    });
  };
  watch_end();
  io.run();
  if (runner) runner->stop();
  runner.reset();
  fake.stop();
  // Interrupted is the normal way to stop a server: success.
  return to_int(ExitCode::succeeded);
}

} // namespace execution_sentinel::cli

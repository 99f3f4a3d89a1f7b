// execution-sentinel: watches a HyperFlow workflow on Kubernetes from the shell (docs/cli.md).
//
//   execution-sentinel watch --context context.json      the real thing, against the cluster of your kubeconfig
//   execution-sentinel demo                               a simulated 1000genome run on an embedded cluster
//   execution-sentinel simulate --scenario FILE           serves a simulated run for other clients
//   execution-sentinel version
//
// The decisions (exit codes, output formats, the terminal view, argument checks) live in the headers next to
// this file and are unit-tested; this file wires them to the library, the terminal and the signals.
#include "arguments.hpp"
#include "exit_codes.hpp"
#include "ndjson.hpp"
#include "phase_counts.hpp"
#include "terminal.hpp"
#include "view.hpp"

#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>
#include <execution_sentinel/version.hpp>

#include <CLI/CLI.hpp>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace es = execution_sentinel;
namespace cli = execution_sentinel::cli;
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr const char* program = "execution-sentinel";

/// An error that ends the program with `code` after printing `message` on stderr (one line).
struct Failure {
  cli::ExitCode code;
  std::string message;
};

[[noreturn]] void fail(cli::ExitCode code, std::string message) { throw Failure{code, std::move(message)}; }

void print_error(std::string_view message) {
  std::string line = std::string(program) + ": " + cli::sanitize(message) + "\n";
  cli::write_all(STDERR_FILENO, line);
}

void print_note(std::string_view message) {
  std::string line = std::string(program) + ": " + std::string(message) + "\n";
  cli::write_all(STDERR_FILENO, line);
}

/// Reads a whole file (or stdin for "-"), at most `limit` bytes. `what` names the flag in errors.
std::string read_input(const std::string& path, std::string_view what, std::size_t limit = 64u << 20) {
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": is a directory");
    }
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t const n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int const err = errno;
      if (fd != STDIN_FILENO) ::close(fd);
      fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      if (fd != STDIN_FILENO) ::close(fd);
      fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": larger than " + std::to_string(limit >> 20) + " MiB");
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return text;
}

std::string display_name(const std::string& path) { return path == "-" ? std::string("(stdin)") : path; }

es::MonitoringContext load_context(const std::string& path) {
  std::string const text = read_input(path, "--context");
  try {
    return es::context_from_json_text(text);
  } catch (const es::ContextError& e) {
    fail(cli::ExitCode::usage_error, "context " + display_name(path) + ": " + e.what());
  }
}

/// Settings from SENTINEL_* and ./.env, then the command-line overrides.
es::SentinelSettings load_settings(const std::string& poll, const std::string& timeout, const std::string& kubeconfig,
                                   const std::string& kube_context) {
  es::SentinelSettings settings;
  try {
    settings = es::load_settings_from();
  } catch (const es::SettingsError& e) {
    fail(cli::ExitCode::usage_error, std::string("settings: ") + e.what());
  } catch (const std::exception& e) {
    fail(cli::ExitCode::usage_error, std::string("settings: ") + e.what());
  }
  auto seconds = [](double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0 + 0.5) < 1 ? 1 : static_cast<std::int64_t>(s * 1000.0 + 0.5));
  };
  if (!poll.empty()) {
    auto p = cli::parse_seconds("--poll", poll);
    if (!p.ok()) fail(cli::ExitCode::usage_error, p.error());
    settings.poll_interval = seconds(p.value());
  }
  if (!timeout.empty()) {
    auto t = cli::parse_seconds("--timeout", timeout);
    if (!t.ok()) fail(cli::ExitCode::usage_error, t.error());
    settings.timeout = seconds(t.value());
  }
  if (!kubeconfig.empty()) settings.kubeconfig = kubeconfig;
  if (!kube_context.empty()) settings.kube_context = kube_context;
  return settings;
}

es::kube::ClusterConfig load_cluster(const es::SentinelSettings& settings) {
  try {
    es::kube::KubeconfigOptions options;
    options.path = settings.kubeconfig;
    options.context = settings.kube_context;
    return es::kube::load_default(options);
  } catch (const es::kube::Error& e) {
    std::string message = e.what();
    if (message.rfind("kubeconfig", 0) != 0) message = "kubeconfig: " + message;
    fail(cli::exit_code_for_error(e.code()), message);
  }
}

/// Whether a SENTINEL_* variable is set in the environment or in ./.env.
bool setting_given(const std::string& name) {
  if (std::getenv(name.c_str())) return true;
  try {
    if (auto text = es::read_dotenv_file(".env")) return es::parse_dotenv(*text).count(name) != 0;
  } catch (const std::exception&) {
    // load_settings already reported a broken .env
  }
  return false;
}

cli::OutputMode output_mode(const std::string& text) {
  auto m = cli::parse_output_mode(text);
  if (!m.ok()) fail(cli::ExitCode::usage_error, m.error());
  return m.value();
}

// ------------------------------------------------------------------------------------------ the watch

/// Runs one watch: subscribes, starts watch(), feeds the reports to the output, stops on SIGINT/SIGTERM, and
/// prints the summary last. Returns the exit status.
int run_watch(asio::io_context& io, const es::MonitoringContext& context, const es::SentinelSettings& settings,
              const es::kube::ClusterConfig& cluster, cli::OutputMode mode) {
  auto terminal = cli::probe_terminal(STDOUT_FILENO);
  json::object const context_json = es::to_json(context);
  std::unique_ptr<cli::OutputSink> sink;
  if (cli::use_text_output(mode, terminal.is_terminal))
    sink = std::make_unique<cli::TextSink>(STDOUT_FILENO, cli::initial_view(context_json), terminal);
  else
    sink = std::make_unique<cli::NdjsonSink>(STDOUT_FILENO);

  auto const started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };

  es::DefaultSentinel sentinel(io.get_executor(), context, settings, cluster);
  auto subscription = sentinel.subscribe();
  // Single-threaded io_context: reading the sentinel's state from its executor is allowed while it watches.
  auto refresh_phases = [&] { sink->phase_counts(cli::phase_counts_json(sentinel.monitor().state())); };

  bool interrupted = false;
  bool watch_done = false;
  bool drain_done = false;
  std::optional<json::object> summary;
  std::optional<cli::ExitCode> error_code;
  std::string error_message;

  asio::cancellation_signal cancel_watch;
  asio::cancellation_signal cancel_drain;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer ticker(io);
  asio::steady_timer grace(io);

  auto finish_if_done = [&] {
    if (!watch_done || !drain_done) return;
    signals.cancel();
    ticker.cancel();
    grace.cancel();
  };

  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (interrupted) {
        // A second signal while stopping: leave at once.
        sink->abandon();
        std::_Exit(cli::to_int(cli::ExitCode::interrupted));
      }
      interrupted = true;
      sink->note(std::string(program) + ": stopping (press Ctrl+C again to quit at once)\n");
      cancel_watch.emit(asio::cancellation_type::terminal);
      wait_signal();
    });
  };
  wait_signal();

  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::seconds(1));
    ticker.async_wait([&](const boost::system::error_code& ec) {
      if (ec || watch_done) return;
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
          if (ec == es::channel_error::reports_lost) {
            sink->note(std::string(program) + ": some reports were lost because the output could not keep up\n");
            continue;
          }
          if (ec) break;
          refresh_phases();
          sink->report(es::to_json(report));
        }
      },
      asio::bind_cancellation_slot(cancel_drain.slot(), [&](std::exception_ptr) {
        drain_done = true;
        finish_if_done();
      }));

  // First one request of our own with short limits: an unreachable cluster or refused credentials end the run
  // at once (exit status 4) instead of being retried until the timeout. Then the watch itself.
  auto checked_watch = [&]() -> asio::awaitable<es::WatchSummary> {
    es::kube::ClientOptions options;
    options.connect_timeout = std::chrono::seconds(10);
    options.handshake_timeout = std::chrono::seconds(10);
    options.request_timeout = std::chrono::seconds(20);
    options.max_retries = 0;
    options.log = [](std::string_view) {}; // the sentinel's own client prints the warnings
    es::kube::Client client(co_await asio::this_coro::executor, cluster, options);
    try {
      (void)co_await client.get_json_once("/api/v1/namespaces/" + context.namespace_ + "/pods?limit=1");
    } catch (const es::kube::Error& e) {
      if (cli::stops_at_start(e.code())) throw;
    }
    co_return co_await sentinel.watch();
  };

  asio::co_spawn(io, checked_watch(),
                 asio::bind_cancellation_slot(cancel_watch.slot(), [&](std::exception_ptr e, es::WatchSummary s) {
                   watch_done = true;
                   if (!e) {
                     summary = es::to_json(s);
                   } else {
                     try {
                       std::rethrow_exception(e);
                     } catch (const boost::system::system_error& se) {
                       if (!(interrupted && se.code() == asio::error::operation_aborted)) {
                         error_code = cli::ExitCode::cluster_unreachable;
                         error_message = se.what();
                       }
                     } catch (const std::system_error& se) { // kube::Error: fatal API failure
                       error_code = cli::exit_code_for_error(se.code());
                       error_message = se.what();
                     } catch (const std::exception& ex) {
                       error_code = cli::ExitCode::cluster_unreachable;
                       error_message = ex.what();
                     }
                     // The state reached, also after a cancelled or failed watch.
                     summary = es::to_json(sentinel.summary());
                   }
                   refresh_phases();
                   // Let queued reports reach the output, but do not wait for ever.
                   grace.expires_after(std::chrono::milliseconds(250));
                   grace.async_wait([&](const boost::system::error_code& ec) {
                     if (!ec) cancel_drain.emit(asio::cancellation_type::terminal);
                   });
                   finish_if_done();
                 }));

  io.run();

  json::object final_summary = summary ? *summary : es::to_json(sentinel.summary());
  cli::ExitCode code;
  if (error_code && !interrupted) code = *error_code;
  else code = cli::exit_code_for(cli::outcome_from_summary(final_summary, interrupted));
  sink->finish(final_summary, code, error_code ? error_message : std::string());
  if (error_code && !interrupted) print_error(error_message);
  return cli::to_int(code);
}

// ------------------------------------------------------------------------------------------ scenarios

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p.parent_path();
}

/// The default demo scenario: next to an installed program, in the install prefix, or in the source tree.
std::string default_scenario() {
  std::vector<std::filesystem::path> candidates;
  if (auto dir = executable_dir(); !dir.empty())
    candidates.push_back(dir / EXECUTION_SENTINEL_SCENARIO_RELATIVE_DIR / "1000genome.json");
  candidates.emplace_back(std::filesystem::path(EXECUTION_SENTINEL_SCENARIO_INSTALL_DIR) / "1000genome.json");
  candidates.emplace_back(std::filesystem::path(EXECUTION_SENTINEL_SCENARIO_SOURCE_DIR) / "1000genome.json");
  for (auto const& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c.lexically_normal().string();
  }
  std::string tried;
  for (auto const& c : candidates) tried += (tried.empty() ? "" : ", ") + c.lexically_normal().string();
  fail(cli::ExitCode::usage_error, "the default demo scenario 1000genome.json was not found (tried " + tried +
                                       "); pass --scenario FILE");
}

es::testing::Scenario load_scenario(const std::string& path, double speed) {
  std::string const text = read_input(path, "--scenario");
  try {
    boost::system::error_code ec;
    json::parse_options options;
    options.max_depth = 64;
    json::value const value = json::parse(text, ec, {}, options);
    if (ec) fail(cli::ExitCode::usage_error, "scenario " + display_name(path) + ": not valid JSON (" + ec.message() + ")");
    auto scenario = es::testing::Scenario::from_json(value);
    scenario.time_scale /= speed;
    return scenario;
  } catch (const es::testing::ScenarioError& e) {
    fail(cli::ExitCode::usage_error, "scenario " + display_name(path) + ": " + e.what());
  } catch (const std::exception& e) {
    fail(cli::ExitCode::usage_error, "scenario " + display_name(path) + ": " + e.what());
  }
}

/// Writes `text` to `path` (mode 0600: kubeconfigs hold credentials), replacing it.
void write_private_file(const std::string& path, std::string_view text, std::string_view what) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": cannot write: " + std::strerror(errno));
  bool const ok = cli::write_all(fd, text);
  ::close(fd);
  if (!ok) fail(cli::ExitCode::usage_error, std::string(what) + " " + path + ": cannot write");
}

// ------------------------------------------------------------------------------------------ commands

struct WatchOptions {
  std::string context;
  std::string poll;
  std::string timeout;
  std::string kubeconfig;
  std::string kube_context;
  std::string output = "auto";
};

int command_watch(const WatchOptions& o) {
  auto const mode = output_mode(o.output);
  auto settings = load_settings(o.poll, o.timeout, o.kubeconfig, o.kube_context);
  auto context = load_context(o.context);
  auto cluster = load_cluster(settings);
  asio::io_context io;
  return run_watch(io, context, settings, cluster, mode);
}

struct DemoOptions {
  std::string scenario;
  std::string speed = "1";
  std::string poll;
  std::string timeout;
  std::string output = "auto";
};

int command_demo(const DemoOptions& o) {
  auto const mode = output_mode(o.output);
  auto speed = cli::parse_speed(o.speed);
  if (!speed.ok()) fail(cli::ExitCode::usage_error, speed.error());
  std::string const path = o.scenario.empty() ? default_scenario() : o.scenario;
  auto scenario = load_scenario(path, speed.value());
  double const wall_seconds = scenario.duration() * scenario.time_scale;

  // The demo's own defaults: a quick poll, and a time limit well past the scenario's end.
  std::string poll = o.poll.empty() ? std::string("1") : o.poll;
  std::string timeout = o.timeout;
  if (timeout.empty()) timeout = std::to_string(static_cast<long long>(wall_seconds * 2 + 30));
  auto settings = load_settings(poll, timeout, {}, {});
  // Time runs faster in a scenario: the straggler detector's minimum runtime is scaled with it, unless set.
  if (!setting_given("SENTINEL_STRAGGLER_MIN_RUNTIME")) {
    auto const scaled = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(settings.straggler_min_runtime.count()) * scenario.time_scale));
    settings.straggler_min_runtime = std::max(scaled, std::chrono::milliseconds(1000));
  }

  es::MonitoringContext context;
  try {
    context = es::context_from_json(scenario.context());
  } catch (const es::ContextError& e) {
    fail(cli::ExitCode::usage_error, "scenario " + display_name(path) + ": its context is not usable: " + e.what());
  }

  es::testing::FakeCluster fake;
  es::kube::ClusterConfig cluster;
  try {
    cluster = es::kube::load_kubeconfig_from_string(fake.kubeconfig(), "the demo cluster");
  } catch (const es::kube::Error& e) {
    fail(cli::ExitCode::cluster_unreachable, std::string("demo cluster: ") + e.what());
  }
  print_note("demo: scenario " + scenario.name + " (" + std::to_string(static_cast<long long>(wall_seconds + 0.5)) +
             " s) on a simulated cluster at " + fake.server_url() + "; nothing is written to your kubeconfig");
  es::testing::ScenarioRunner runner(fake, std::move(scenario));
  runner.start();
  asio::io_context io;
  int const status = run_watch(io, context, settings, cluster, mode);
  runner.stop();
  return status;
}

struct SimulateOptions {
  std::string scenario;
  std::string port = "0";
  std::string speed = "1";
  std::string kubeconfig_out;
  std::string context_out;
  std::string linger;
};

int command_simulate(const SimulateOptions& o) {
  auto port = cli::parse_port(o.port);
  if (!port.ok()) fail(cli::ExitCode::usage_error, port.error());
  auto speed = cli::parse_speed(o.speed);
  if (!speed.ok()) fail(cli::ExitCode::usage_error, speed.error());
  std::optional<double> linger;
  if (!o.linger.empty()) {
    auto l = cli::parse_seconds("--linger", o.linger);
    if (!l.ok()) fail(cli::ExitCode::usage_error, l.error());
    linger = l.value();
  }
  auto scenario = load_scenario(o.scenario, speed.value());

  es::testing::FakeClusterOptions options;
  options.port = port.value();
  options.default_namespace = scenario.namespace_name;
  std::optional<es::testing::FakeCluster> fake_storage;
  try {
    fake_storage.emplace(options);
  } catch (const std::system_error& e) {
    fail(cli::ExitCode::usage_error, "--port " + std::to_string(port.value()) + ": cannot listen: " + e.what());
  }
  auto& fake = *fake_storage;
  asio::io_context io;
  std::string const kubeconfig = fake.kubeconfig();
  std::string const context = json::serialize(scenario.context()) + "\n";
  if (!o.context_out.empty()) write_private_file(o.context_out, context, "--context-out");
  if (!o.kubeconfig_out.empty()) write_private_file(o.kubeconfig_out, kubeconfig, "--kubeconfig-out");
  else cli::write_all(STDOUT_FILENO, kubeconfig);
  print_note("serving scenario " + scenario.name + " at " + fake.server_url() +
             (o.kubeconfig_out.empty() ? "" : "; kubeconfig in " + o.kubeconfig_out) +
             (o.context_out.empty() ? "" : "; context in " + o.context_out) + "; stop with Ctrl+C");

  es::testing::ScenarioRunner runner(fake, std::move(scenario));
  runner.start();
  int status = 0;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    status = cli::to_int(cli::ExitCode::interrupted);
    io.stop();
  });
  // With --linger: stop that long after the last step ran.
  asio::steady_timer check(io);
  std::optional<std::chrono::steady_clock::time_point> finished_at;
  std::function<void()> watch_end = [&] {
    check.expires_after(std::chrono::milliseconds(100));
    check.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (runner.finished() && !finished_at) finished_at = std::chrono::steady_clock::now();
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
  runner.stop();
  for (auto const& e : runner.errors()) print_note("scenario step failed: " + e);
  // Interrupted is the normal way to stop a server: report it as success.
  (void)status;
  return 0;
}

const char* const root_footer = R"(Examples:
  execution-sentinel demo
      A simulated 1000genome run on an embedded cluster, watched live (about a minute).
  execution-sentinel watch --context context.json
      Watch a real workflow with the cluster and credentials of your kubeconfig.
  execution-sentinel watch --context - --output json < context.json | jq -c .
      Read the context from stdin and print one JSON report per line.

Exit status: 0 succeeded, 1 workflow failed, 2 usage or input error, 3 timed out,
4 cluster unreachable or credentials refused, 130 interrupted. See docs/cli.md.)";

const char* const watch_footer = R"(Examples:
  execution-sentinel watch --context context.json
  execution-sentinel watch --context - --poll 5 --timeout 7200 < context.json
  execution-sentinel watch -c context.json --kubeconfig ~/.kube/prod --kube-context prod --output json

Settings also come from SENTINEL_* variables and ./.env (SENTINEL_POLL_INTERVAL, SENTINEL_TIMEOUT,
SENTINEL_KUBECONFIG, ...); flags win. Exit status: 0 succeeded, 1 workflow failed, 2 usage or input
error, 3 timed out, 4 cluster unreachable or credentials refused, 130 interrupted.)";

const char* const demo_footer = R"(Examples:
  execution-sentinel demo
  execution-sentinel demo --speed 4
  execution-sentinel demo --scenario my-run.json --output json

The simulated cluster lives inside this process, listens on 127.0.0.1 only and is gone when the
demo ends; your kubeconfig is neither read nor written. Exit status as for `watch`.)";

const char* const simulate_footer = R"(Examples:
  execution-sentinel simulate --scenario examples/scenarios/1000genome.json \
      --kubeconfig-out /tmp/sim.kubeconfig --context-out /tmp/sim-context.json &
  execution-sentinel watch --kubeconfig /tmp/sim.kubeconfig --context /tmp/sim-context.json
  kubectl --kubeconfig /tmp/sim.kubeconfig get pods -A

Serves until interrupted (exit status 0), or with --linger S until S seconds after the scenario's
last step.)";

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"execution-sentinel: watches a HyperFlow workflow running on Kubernetes and reports its progress, "
               "anomalies (OOM kills, stragglers, mass failures, lost connectivity) and completion.",
               program};
  app.require_subcommand(1);
  app.footer(root_footer);

  WatchOptions watch_options;
  auto* watch = app.add_subcommand("watch", "Watch a workflow on the cluster of your kubeconfig until it finishes");
  watch->add_option("-c,--context", watch_options.context,
                    "MonitoringContext JSON file, or - for stdin (see docs/cli.md)")
      ->required();
  watch->add_option("--poll", watch_options.poll, "Seconds between completion checks (overrides SENTINEL_POLL_INTERVAL; default 10)");
  watch->add_option("--timeout", watch_options.timeout, "Seconds before giving up (overrides SENTINEL_TIMEOUT; default 3600)");
  watch->add_option("--kubeconfig", watch_options.kubeconfig, "Kubeconfig file (default: SENTINEL_KUBECONFIG, KUBECONFIG, ~/.kube/config, in-cluster)");
  watch->add_option("--kube-context", watch_options.kube_context, "Kubeconfig context (default: its current-context)");
  watch->add_option("-o,--output", watch_options.output, "auto (live view on a terminal, NDJSON otherwise), json or text")
      ->capture_default_str();
  watch->footer(watch_footer);

  DemoOptions demo_options;
  auto* demo = app.add_subcommand("demo", "Watch a simulated 1000genome run on an embedded cluster (no cluster needed)");
  demo->add_option("--scenario", demo_options.scenario, "Scenario JSON file (default: the installed 1000genome.json)");
  demo->add_option("--speed", demo_options.speed, "Play the scenario this many times faster (0 < X <= 1000)")->capture_default_str();
  demo->add_option("--poll", demo_options.poll, "Seconds between completion checks (default 1)");
  demo->add_option("--timeout", demo_options.timeout, "Seconds before giving up (default: twice the scenario's length + 30)");
  demo->add_option("-o,--output", demo_options.output, "auto, json or text")->capture_default_str();
  demo->footer(demo_footer);

  SimulateOptions simulate_options;
  auto* simulate = app.add_subcommand("simulate", "Serve a simulated workflow run over HTTPS for other clients");
  simulate->add_option("--scenario", simulate_options.scenario, "Scenario JSON file")->required();
  simulate->add_option("--port", simulate_options.port, "Port on 127.0.0.1 (0: any free port)")->capture_default_str();
  simulate->add_option("--speed", simulate_options.speed, "Play the scenario this many times faster")->capture_default_str();
  simulate->add_option("--kubeconfig-out", simulate_options.kubeconfig_out, "Write the kubeconfig here (mode 0600; default: stdout)");
  simulate->add_option("--context-out", simulate_options.context_out, "Write the scenario's MonitoringContext JSON here");
  simulate->add_option("--linger", simulate_options.linger, "Exit this many seconds after the scenario's last step (default: serve until interrupted)");
  simulate->footer(simulate_footer);

  auto* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e); // --help
    print_error(std::string(e.what()) + " (see --help)");
    return cli::to_int(cli::ExitCode::usage_error);
  }

  try {
    if (version->parsed()) {
      std::string const line = std::string(program) + " " + es::version_string + "\n";
      cli::write_all(STDOUT_FILENO, line);
      return 0;
    }
    if (watch->parsed()) return command_watch(watch_options);
    if (demo->parsed()) return command_demo(demo_options);
    if (simulate->parsed()) return command_simulate(simulate_options);
  } catch (const Failure& f) {
    print_error(f.message);
    return cli::to_int(f.code);
  } catch (const std::invalid_argument& e) { // ContextError, SettingsError, ScenarioError-like input problems
    print_error(e.what());
    return cli::to_int(cli::ExitCode::usage_error);
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return cli::to_int(cli::ExitCode::cluster_unreachable);
  } catch (const std::exception& e) {
    print_error(e.what());
    return cli::to_int(cli::ExitCode::cluster_unreachable);
  }
  return cli::to_int(cli::ExitCode::usage_error);
}

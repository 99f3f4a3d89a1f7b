// `execution-sentinel demo`: a simulated 1000genome run on a cluster inside the process, watched live with the
// real sentinel over HTTPS.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "program.hpp"
#include "watch_run.hpp"

#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace execution_sentinel::cli {

namespace {

struct DemoFlags {
  std::string scenario;
  std::string speed = "1";
  std::string poll;
  std::string timeout;
  std::string log_patterns;
  std::string output = "auto";
};

const char* const footer = R"(Examples:
  execution-sentinel demo
  execution-sentinel demo --scenario memory-pressure-oom   # a warning before an OOM kill, a failure's log lines
  execution-sentinel demo --speed 4
  execution-sentinel demo --scenario my-run.json --output json

The simulated cluster lives inside this process, listens on 127.0.0.1 only and is gone when the
demo ends; your kubeconfig is neither read nor written. Exit status as for `watch`.)";

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p.parent_path();
}

/// A scenario shipped with the program, by name ("1000genome", "memory-pressure-oom"): next to an installed
/// program, in the install prefix, or in the source tree. Empty when not found; `tried` lists where it looked.
std::string shipped_scenario(const std::string& file, std::string& tried) {
  std::vector<std::filesystem::path> candidates;
  if (auto dir = executable_dir(); !dir.empty())
    candidates.push_back(dir / EXECUTION_SENTINEL_SCENARIO_RELATIVE_DIR / file);
  candidates.emplace_back(std::filesystem::path(EXECUTION_SENTINEL_SCENARIO_INSTALL_DIR) / file);
  candidates.emplace_back(std::filesystem::path(EXECUTION_SENTINEL_SCENARIO_SOURCE_DIR) / file);
  for (auto const& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c.lexically_normal().string();
  }
  for (auto const& c : candidates) tried += (tried.empty() ? "" : ", ") + c.lexically_normal().string();
  return {};
}

/// The scenario to play: the default 1000genome.json; a file; or the name of a shipped scenario without its
/// ".json" (`--scenario memory-pressure-oom`) when no such file exists.
std::string scenario_path(const std::string& given) {
  std::string tried;
  if (given.empty()) {
    if (auto p = shipped_scenario("1000genome.json", tried); !p.empty()) return p;
    fail(ExitCode::usage_error,
         "the default demo scenario 1000genome.json was not found (tried " + tried + "); pass --scenario FILE");
  }
  std::error_code ec;
  bool const plain_name = given != "-" && given.find('/') == std::string::npos &&
                          !std::filesystem::exists(given, ec) && given.find('.') == std::string::npos;
  if (plain_name)
    if (auto p = shipped_scenario(given + ".json", tried); !p.empty()) return p;
  return given; // load_scenario says what is wrong with it
}

int run_demo(const DemoFlags& flags) {
  auto const mode = output_mode(flags.output);
  auto speed = parse_speed(flags.speed);
  if (!speed.ok()) fail(ExitCode::usage_error, speed.error());
  std::string const path = scenario_path(flags.scenario);
  auto scenario = load_scenario(path, speed.value());
  double const wall_seconds = scenario.duration() * scenario.time_scale;

  // The demo's own defaults: a quick poll, and a time limit well past the scenario's end.
  std::string const poll = flags.poll.empty() ? std::string("1") : flags.poll;
  std::string timeout = flags.timeout;
  if (timeout.empty()) timeout = std::to_string(static_cast<long long>(wall_seconds * 2 + 30));
  auto settings = load_settings(poll, timeout, {}, {}, flags.log_patterns);
  // Time runs faster in a scenario: the durations the detectors judge by (minimum straggler runtime, stall and
  // pending thresholds, the burst window of mass failure, the metrics period) are scaled with it, unless set.
  auto scale = [&](const char* variable, std::chrono::milliseconds& value, std::chrono::milliseconds floor) {
    if (setting_given(variable) || value.count() <= 0) return;
    auto const scaled = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(value.count()) * scenario.time_scale));
    value = std::max(scaled, floor);
  };
  scale("SENTINEL_STRAGGLER_MIN_RUNTIME", settings.straggler_min_runtime, std::chrono::milliseconds(1000));
  scale("SENTINEL_STALL_SECONDS", settings.stall_threshold, std::chrono::milliseconds(2000));
  scale("SENTINEL_PENDING_TIMEOUT", settings.pending_timeout, std::chrono::milliseconds(2000));
  scale("SENTINEL_MASS_FAILURE_BURST_WINDOW", settings.mass_failure_burst_window, std::chrono::milliseconds(1000));
  scale("SENTINEL_METRICS_INTERVAL", settings.metrics_interval, std::chrono::milliseconds(500));

  MonitoringContext context;
  try {
    context = context_from_json(scenario.context());
  } catch (const ContextError& e) {
    fail(ExitCode::usage_error, "scenario " + display_name(path) + ": its context is not usable: " + e.what());
  }

  testing::FakeCluster fake;
  kube::ClusterConfig cluster;
  try {
    cluster = kube::load_kubeconfig_from_string(fake.kubeconfig(), "the demo cluster");
  } catch (const kube::Error& e) {
    fail(ExitCode::cluster_unreachable, std::string("demo cluster: ") + e.what());
  }
  print_note("demo: scenario " + scenario.name + " (" + std::to_string(static_cast<long long>(wall_seconds + 0.5)) +
             " s) on a simulated cluster at " + fake.server_url() + "; nothing is written to your kubeconfig");
  testing::ScenarioRunner runner(fake, std::move(scenario));
  runner.start();
  int const status = run_watch(context, settings, cluster, mode);
  runner.stop();
  return status;
}

} // namespace

Command add_demo_command(CLI::App& app) {
  auto flags = std::make_shared<DemoFlags>();
  auto* cmd = app.add_subcommand("demo", "Watch a simulated 1000genome run on an embedded cluster (no cluster needed)");
  cmd->add_option("--scenario", flags->scenario,
                  "Scenario JSON file, or the name of a shipped one such as memory-pressure-oom "
                  "(default: 1000genome)");
  cmd->add_option("--speed", flags->speed, "Play the scenario this many times faster (0 < X <= 1000)")->capture_default_str();
  cmd->add_option("--poll", flags->poll, "Seconds between completion checks, at least 0.1 (default 1)");
  cmd->add_option("--timeout", flags->timeout, "Seconds before giving up (default: twice the scenario's length + 30)");
  cmd->add_option("--log-patterns", flags->log_patterns,
                  "File of your own engine log patterns (regex -> report; overrides SENTINEL_LOG_PATTERNS)");
  cmd->add_option("-o,--output", flags->output, "auto, json or text")->capture_default_str();
  cmd->footer(footer);
  return {cmd, [flags] { return run_demo(*flags); }};
}

} // namespace execution_sentinel::cli

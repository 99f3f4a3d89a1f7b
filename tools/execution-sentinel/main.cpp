// execution-sentinel: watches a HyperFlow workflow on Kubernetes from the shell (docs/cli.md).
//
//   execution-sentinel watch --context context.json      the real thing, against the cluster of your kubeconfig
//   execution-sentinel demo                               a simulated 1000genome run on an embedded cluster
//   execution-sentinel simulate --scenario FILE           serves a simulated run for other clients
//   execution-sentinel version
//   execution-sentinel serve --config sentinel.yaml      every run of a cluster: metrics, API and a live page
//
// One source file per command (command_*.cpp, commands.hpp); the watch driver shared by watch and demo is
// watch_run.cpp, the simulated cluster shared with execution-sentinel-cluster is simulation.cpp. The decisions
// (exit codes, output formats, the terminal view, argument checks) live in the pure headers next to them and
// are unit-tested.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "program.hpp"
#include "watch_run.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli = execution_sentinel::cli;

namespace {

const char* const root_footer = R"(Examples:
  execution-sentinel demo
      A simulated 1000genome run on an embedded cluster, watched live (about a minute).
  execution-sentinel watch --context context.json
      Watch a real workflow with the cluster and credentials of your kubeconfig.
  execution-sentinel watch --context - --output json < context.json | jq -c .
      Read the context from stdin and print one JSON report per line.

Exit status: 0 succeeded, 1 workflow failed, 2 usage or input error, 3 timed out,
4 cluster unreachable or credentials refused, 5 output could not be written, 130 interrupted.
See docs/cli.md.)";

} // namespace

int main(int argc, char** argv) {
  (void)cli::program_start();
  std::signal(SIGPIPE, SIG_IGN); // a closed stdout is an error of write(), reported with its own exit status

  CLI::App app{"execution-sentinel: watches a HyperFlow workflow running on Kubernetes and reports its progress, "
               "anomalies (OOM kills, stragglers, mass failures, lost connectivity) and completion.",
               "execution-sentinel"};
  app.require_subcommand(1);
  app.footer(root_footer);
  std::vector<cli::Command> const commands{cli::add_watch_command(app), cli::add_demo_command(app),
                                           cli::add_simulate_command(app), cli::add_version_command(app),
                                           cli::add_history_command(app), cli::add_serve_command(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e); // --help
    cli::print_error(std::string(e.what()) + " (see --help)");
    return cli::to_int(cli::ExitCode::usage_error);
  }

  try {
    for (auto const& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const cli::Failure& f) {
    cli::print_error(f.message);
    return cli::to_int(f.code);
  } catch (const std::invalid_argument& e) { // ContextError, SettingsError, ScenarioError-like input problems
    cli::print_error(e.what());
    return cli::to_int(cli::ExitCode::usage_error);
  } catch (const std::bad_alloc&) {
    cli::print_error("out of memory");
    return cli::to_int(cli::ExitCode::cluster_unreachable);
  } catch (const std::exception& e) {
    cli::print_error(e.what());
    return cli::to_int(cli::ExitCode::cluster_unreachable);
  }
  return cli::to_int(cli::ExitCode::usage_error);
}

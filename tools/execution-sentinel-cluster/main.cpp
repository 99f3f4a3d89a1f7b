// execution-sentinel-cluster: serves a simulated Kubernetes API server over HTTPS on 127.0.0.1 and plays a HyperFlow
// scenario on it, so that any Kubernetes client (kubectl, client libraries, the monitor) can be pointed at it.
//
//   execution-sentinel-cluster [--scenario FILE] [--port N] [--speed X] [--kubeconfig-out FILE]
//                              [--context-out FILE] [--linger S] [--bookmark-interval S] [--verbose]
//
// Prints `ready <server-url>` on stdout once serving, plays the scenario, and keeps serving after it ends until
// SIGINT or SIGTERM; then exits 0. Bad arguments, a bad scenario or a port that cannot be bound: a message on
// stderr and exit status 2. The same implementation as `execution-sentinel simulate` (simulation.cpp).
#include "exit_codes.hpp"
#include "program.hpp"
#include "simulation.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <exception>
#include <string>

namespace cli = execution_sentinel::cli;

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  cli::set_program_name("execution-sentinel-cluster");
  CLI::App app{"Serves a simulated Kubernetes API server and plays a HyperFlow workflow scenario on it.",
               "execution-sentinel-cluster"};
  cli::SimulationFlags flags;
  cli::add_simulation_flags(app, flags);
  app.footer("Prints `ready <server-url>` on stdout once serving. The same as `execution-sentinel simulate`,\n"
             "which prints the kubeconfig instead. See docs/scenarios.md.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e); // --help
    cli::print_error(std::string(e.what()) + " (see --help)");
    return cli::to_int(cli::ExitCode::usage_error);
  }
  try {
    return cli::run_simulation(flags, cli::Announce::ready_line);
  } catch (const cli::Failure& f) {
    cli::print_error(f.message);
    return cli::to_int(f.code);
  } catch (const std::exception& e) {
    cli::print_error(e.what());
    return cli::to_int(cli::ExitCode::usage_error);
  }
}

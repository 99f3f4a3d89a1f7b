// The simulated cluster served to other clients: one implementation behind `execution-sentinel simulate` and
// the standalone program `execution-sentinel-cluster` (docs/cli.md, docs/scenarios.md). Both take the same
// flags; they differ only in what they print on standard output once serving: the kubeconfig (simulate, unless
// --kubeconfig-out is given) or the line `ready <server-url>` (execution-sentinel-cluster).
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SIMULATION_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SIMULATION_HPP

#include <CLI/CLI.hpp>

#include <string>

namespace execution_sentinel::cli {

/// The flags, as given on the command line (validated by run_simulation).
struct SimulationFlags {
  std::string scenario;          ///< scenario JSON file, "-" for stdin; "" = an empty cluster
  std::string port = "0";        ///< 127.0.0.1 port; 0 = any free port
  std::string speed = "1";       ///< play the scenario this many times faster
  std::string kubeconfig_out;    ///< write the kubeconfig here (mode 0600)
  std::string context_out;       ///< write the scenario's MonitoringContext JSON here
  std::string linger;            ///< exit this many seconds after the last step ("" = serve until a signal)
  std::string bookmark_interval; ///< seconds between BOOKMARK events on watches ("" = 60)
  bool verbose = false;          ///< print every scenario step on stderr (failed steps always)
};

/// What goes to standard output once the cluster serves.
enum class Announce {
  kubeconfig, ///< the kubeconfig, unless --kubeconfig-out is given (`execution-sentinel simulate`)
  ready_line, ///< `ready <server-url>` (`execution-sentinel-cluster`)
};

/// Adds the flags to `app`.
void add_simulation_flags(CLI::App& app, SimulationFlags& flags);

/// Starts the cluster, writes the files, plays the scenario and serves until SIGINT/SIGTERM (exit status 0) or,
/// with --linger, until that long after the last step. Bad flags, an unreadable scenario, a port that cannot be
/// bound or a file that cannot be written: Failure with exit status 2.
int run_simulation(const SimulationFlags& flags, Announce announce);

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_SIMULATION_HPP

// `execution-sentinel simulate`: serve a simulated workflow run to other clients (the same implementation as
// the standalone program execution-sentinel-cluster, simulation.cpp).
#include "commands.hpp"
#include "simulation.hpp"

#include <memory>

namespace execution_sentinel::cli {

namespace {

const char* const footer = R"(Examples:
  execution-sentinel simulate --scenario examples/scenarios/1000genome.json \
      --kubeconfig-out /tmp/sim.kubeconfig --context-out /tmp/sim-context.json &
  execution-sentinel watch --kubeconfig /tmp/sim.kubeconfig --context /tmp/sim-context.json
  kubectl --kubeconfig /tmp/sim.kubeconfig get pods -A

Prints the kubeconfig on stdout unless --kubeconfig-out is given. Serves until interrupted (exit
status 0), or with --linger S until S seconds after the scenario's last step.)";

} // namespace

Command add_simulate_command(CLI::App& app) {
  auto flags = std::make_shared<SimulationFlags>();
  auto* cmd = app.add_subcommand("simulate", "Serve a simulated workflow run over HTTPS for other clients");
  add_simulation_flags(*cmd, *flags);
  cmd->footer(footer);
  return {cmd, [flags] { return run_simulation(*flags, Announce::kubeconfig); }};
}

} // namespace execution_sentinel::cli

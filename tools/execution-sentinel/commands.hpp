// The commands of execution-sentinel, one source file each (command_<name>.cpp). Each adds its subcommand,
// with its flags, help and examples, to the application and returns how to run it once parsed.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_COMMANDS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_COMMANDS_HPP

#include <CLI/CLI.hpp>

#include <functional>

namespace execution_sentinel::cli {

/// A subcommand and what runs it (returns the exit status, or throws Failure).
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_watch_command(CLI::App& app);    ///< watch a real workflow
Command add_demo_command(CLI::App& app);     ///< a simulated run, watched live
Command add_simulate_command(CLI::App& app); ///< serve a simulated run to other clients
Command add_version_command(CLI::App& app);  ///< print the version
Command add_history_command(CLI::App& app);  ///< what the run history store remembers
Command add_serve_command(CLI::App& app);    ///< watch every run of a cluster, serve metrics, API and page

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_COMMANDS_HPP

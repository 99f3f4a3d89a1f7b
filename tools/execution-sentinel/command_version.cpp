// `execution-sentinel version`.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "program.hpp"
#include "terminal.hpp"

#include <execution_sentinel/version.hpp>

#include <string>

namespace execution_sentinel::cli {

Command add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the version");
  return {cmd, [] {
            std::string const line = program_name() + " " + std::string(version_string) + "\n";
            if (int const error = write_fully(STDOUT_FILENO, line); error != 0)
              fail(ExitCode::output_failed, output_error_message(error));
            return to_int(ExitCode::succeeded);
          }};
}

} // namespace execution_sentinel::cli

// What every command of execution-sentinel and execution-sentinel-cluster shares: the program's name in
// messages, the error that ends a command with an exit status, reading inputs (files or stdin, bounded),
// writing private files, and loading a scenario. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PROGRAM_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PROGRAM_HPP

#include "exit_codes.hpp"

#include <execution_sentinel/testing/scenario.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace execution_sentinel::cli {

/// An error that ends the command with `code` after printing `message` on stderr (one line).
struct Failure {
  ExitCode code;
  std::string message;
};

/// Throws Failure{code, message}.
[[noreturn]] void fail(ExitCode code, std::string message);

/// The name messages start with ("execution-sentinel" unless set).
const std::string& program_name();
void set_program_name(std::string name);

/// `<program>: <message>` on stderr, control characters replaced.
void print_error(std::string_view message);
/// `<program>: <message>` on stderr, as is (the program's own text).
void print_note(std::string_view message);

/// Reads a whole file (or stdin for "-"), at most `limit` bytes. `what` names the flag in errors (exit 2).
std::string read_input(const std::string& path, std::string_view what, std::size_t limit = 64u << 20);

/// "(stdin)" for "-", else the path.
std::string display_name(const std::string& path);

/// Writes `text` to `path` (mode 0600: kubeconfigs hold credentials), replacing it. Exit 2 when it cannot.
void write_private_file(const std::string& path, std::string_view text, std::string_view what);

/// Reads a scenario file (or stdin) and plays it `speed` times faster. Exit 2 naming the problem.
testing::Scenario load_scenario(const std::string& path, double speed);

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_PROGRAM_HPP

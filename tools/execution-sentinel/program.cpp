// Shared pieces of the command-line programs (program.hpp).
#include "program.hpp"

#include "terminal.hpp"
#include "view.hpp"

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace execution_sentinel::cli {

namespace {
std::string& name_storage() {
  static std::string name = "execution-sentinel";
  return name;
}
} // namespace

void fail(ExitCode code, std::string message) { throw Failure{code, std::move(message)}; }

const std::string& program_name() { return name_storage(); }
void set_program_name(std::string name) { name_storage() = std::move(name); }

void print_error(std::string_view message) {
  write_all(STDERR_FILENO, program_name() + ": " + sanitize(message) + "\n");
}

void print_note(std::string_view message) {
  write_all(STDERR_FILENO, program_name() + ": " + std::string(message) + "\n");
}

std::string read_input(const std::string& path, std::string_view what, std::size_t limit) {
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ExitCode::usage_error, std::string(what) + " " + path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      fail(ExitCode::usage_error, std::string(what) + " " + path + ": is a directory");
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
      fail(ExitCode::usage_error, std::string(what) + " " + path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      if (fd != STDIN_FILENO) ::close(fd);
      fail(ExitCode::usage_error,
           std::string(what) + " " + path + ": larger than " + std::to_string(limit >> 20) + " MiB");
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return text;
}

std::string display_name(const std::string& path) { return path == "-" ? std::string("(stdin)") : path; }

void write_private_file(const std::string& path, std::string_view text, std::string_view what) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail(ExitCode::usage_error, std::string(what) + " " + path + ": cannot write: " + std::strerror(errno));
  int const error = write_fully(fd, text);
  ::close(fd);
  if (error != 0) fail(ExitCode::usage_error, std::string(what) + " " + path + ": cannot write: " + std::strerror(error));
}

testing::Scenario load_scenario(const std::string& path, double speed) {
  std::string const text = read_input(path, "--scenario");
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 64;
  boost::json::value const value = boost::json::parse(text, ec, {}, options);
  if (ec) fail(ExitCode::usage_error, "scenario " + display_name(path) + ": not valid JSON (" + ec.message() + ")");
  try {
    auto scenario = testing::Scenario::from_json(value);
    scenario.time_scale /= speed;
    return scenario;
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, "scenario " + display_name(path) + ": " + e.what());
  }
}

} // namespace execution_sentinel::cli

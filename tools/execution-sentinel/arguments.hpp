// Validation of execution-sentinel's command-line values. Pure: every function returns either the value or
// one line naming the flag and the problem (printed on stderr, exit status 2). Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ARGUMENTS_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ARGUMENTS_HPP

#include <execution_sentinel/detail/text.hpp>
#include <execution_sentinel/settings.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace execution_sentinel::cli {

/// A validated value or the message explaining why the input was rejected.
template <class T>
struct Parsed {
  std::variant<T, std::string> result;

  bool ok() const noexcept { return result.index() == 0; }
  const T& value() const { return std::get<0>(result); }
  const std::string& error() const { return std::get<1>(result); }
};

/// How results are written: a live view for people or NDJSON for programs.
enum class OutputMode { automatic, json, text };

namespace detail {
inline std::string quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 64)) {
    auto const u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (text.size() > 64) out += "...";
  out += "'";
  return out;
}

using ::execution_sentinel::detail::trim; // the library's one trim

/// Parses a finite decimal number (strtod on a bounded copy, so "1e3", "0.5" and "10" are accepted).
inline bool parse_finite(std::string_view text, double& out) {
  text = trim(text);
  if (text.empty() || text.size() > 64) return false;
  std::string copy(text);
  char* end = nullptr;
  errno = 0;
  double const value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || errno == ERANGE || !std::isfinite(value)) return false;
  out = value;
  return true;
}
} // namespace detail

/// The largest number of seconds accepted for --poll and --timeout (30 days).
inline constexpr double max_seconds = 30.0 * 24 * 3600;

/// `--poll S` / `--timeout S`: a positive number of seconds, fractions allowed, at most 30 days.
inline Parsed<double> parse_seconds(std::string_view flag, std::string_view text) {
  double value = 0;
  if (!detail::parse_finite(text, value))
    return {std::string(flag) + ": expected a number of seconds, got " + detail::quoted(text)};
  if (value <= 0)
    return {std::string(flag) + ": must be greater than 0 seconds, got " + detail::quoted(text)};
  if (value > max_seconds)
    return {std::string(flag) + ": must be at most 2592000 seconds (30 days), got " + detail::quoted(text)};
  return {value};
}

/// The smallest `--poll S` accepted: the library's minimum poll interval (settings.hpp), in seconds.
inline constexpr double min_poll_seconds =
    static_cast<double>(execution_sentinel::min_poll_interval.count()) / 1000.0;

/// `--poll S`: as parse_seconds, and at least min_poll_seconds (0.1 s): every poll opens a new exec connection
/// to the engine pod, so a shorter interval only floods the API server. The same bound applies to
/// SENTINEL_POLL_INTERVAL (load_settings).
inline Parsed<double> parse_poll(std::string_view text) {
  auto parsed = parse_seconds("--poll", text);
  if (!parsed.ok()) return parsed;
  if (parsed.value() < min_poll_seconds)
    return {std::string("--poll: must be at least 0.1 seconds, got ") + detail::quoted(text)};
  return parsed;
}

/// What is left of a time `limit` counted from `started` at `now`; at least 1 ms, so that a limit already spent
/// (reading a huge context took longer) ends the watch at once as timed out rather than never.
inline std::chrono::milliseconds remaining_time(std::chrono::milliseconds limit, std::chrono::steady_clock::time_point started,
                                                std::chrono::steady_clock::time_point now) noexcept {
  auto const left = limit - std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
  return left < std::chrono::milliseconds(1) ? std::chrono::milliseconds(1) : left;
}

/// `--speed X` of demo: the simulated time runs X times faster than scripted; 0 < X <= 1000.
inline Parsed<double> parse_speed(std::string_view text) {
  double value = 0;
  if (!detail::parse_finite(text, value))
    return {std::string("--speed: expected a number, got ") + detail::quoted(text)};
  if (value <= 0 || value > 1000)
    return {std::string("--speed: must be greater than 0 and at most 1000, got ") + detail::quoted(text)};
  return {value};
}

/// `--port N` of simulate: 0 (any free port) to 65535.
inline Parsed<std::uint16_t> parse_port(std::string_view text) {
  text = detail::trim(text);
  unsigned value = 0;
  auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size())
    return {std::string("--port: expected a port number from 0 to 65535, got ") + detail::quoted(text)};
  if (value > 65535)
    return {std::string("--port: must be at most 65535, got ") + detail::quoted(text)};
  return {static_cast<std::uint16_t>(value)};
}

/// `--output auto|json|text`.
inline Parsed<OutputMode> parse_output_mode(std::string_view text) {
  if (text == "auto") return {OutputMode::automatic};
  if (text == "json") return {OutputMode::json};
  if (text == "text") return {OutputMode::text};
  return {std::string("--output: expected auto, json or text, got ") + detail::quoted(text)};
}

/// Whether the live terminal view is used: `text` always, `json` never, `auto` when stdout is a terminal.
inline bool use_text_output(OutputMode mode, bool stdout_is_terminal) noexcept {
  switch (mode) {
  case OutputMode::text: return true;
  case OutputMode::json: return false;
  case OutputMode::automatic: return stdout_is_terminal;
  }
  return false;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_ARGUMENTS_HPP

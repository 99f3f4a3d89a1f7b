// The output side of execution-sentinel: what the terminal can do (pure decisions from the environment, plus
// a thin probe of the real file descriptor), and the two writers of typed reports: the live view (redrawn in
// place with ANSI cursor movement) and NDJSON. A write that fails (reader gone, disk full) is reported once so
// that the watch stops at once. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP

#include "exit_codes.hpp"
#include "ndjson.hpp"
#include "view.hpp"

#include <boost/json.hpp>

#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace execution_sentinel::cli {

// ------------------------------------------------------------------------------------------ pure decisions

/// Colours are used unless NO_COLOR is set to a non-empty value (no-color.org) or TERM is "dumb".
inline bool color_enabled(std::optional<std::string_view> no_color, std::optional<std::string_view> term) noexcept {
  if (no_color && !no_color->empty()) return false;
  if (term && *term == "dumb") return false;
  return true;
}

/// In-place redrawing needs cursor movement: not on TERM=dumb (nor when TERM is unset).
inline bool redraw_enabled(std::optional<std::string_view> term) noexcept {
  return term && !term->empty() && *term != "dumb";
}

/// Block characters are drawn when the locale's character set is UTF-8 (the first set of LC_ALL, LC_CTYPE, LANG).
inline bool unicode_enabled(std::optional<std::string_view> lc_all, std::optional<std::string_view> lc_ctype,
                            std::optional<std::string_view> lang) noexcept {
  std::string_view chosen;
  for (auto const& v : {lc_all, lc_ctype, lang})
    if (v && !v->empty()) {
      chosen = *v;
      break;
    }
  auto contains = [&](std::string_view needle) {
    if (chosen.size() < needle.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= chosen.size(); ++i) {
      bool same = true;
      for (std::size_t k = 0; k < needle.size() && same; ++k) {
        char c = chosen[i + k];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        same = c == needle[k];
      }
      if (same) return true;
    }
    return false;
  };
  return contains("utf-8") || contains("utf8");
}

/// The width to draw for: the terminal's when known (> 0), else $COLUMNS when it is a sane number, else 80.
/// Clamped to [20, 1000].
inline std::size_t choose_width(unsigned short terminal_columns, std::optional<std::string_view> columns_env) noexcept {
  std::size_t width = terminal_columns;
  if (width == 0 && columns_env) {
    std::size_t n = 0;
    bool ok = !columns_env->empty() && columns_env->size() < 6;
    for (char c : *columns_env) {
      if (c < '0' || c > '9') ok = false;
      else n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (ok) width = n;
  }
  if (width == 0) width = 80;
  return std::clamp<std::size_t>(width, 20, 1000);
}

// ------------------------------------------------------------------------------------------ the real terminal

namespace detail {
inline std::optional<std::string_view> env(const char* name) {
  if (const char* v = std::getenv(name)) return std::string_view(v);
  return std::nullopt;
}
} // namespace detail

/// What stdout is.
struct TerminalInfo {
  bool is_terminal = false;
  bool redraw = false;
  RenderOptions options;
};

/// Probes `fd` (isatty, TIOCGWINSZ) and the environment (NO_COLOR, TERM, COLUMNS, LC_ALL/LC_CTYPE/LANG).
inline TerminalInfo probe_terminal(int fd) {
  TerminalInfo info;
  info.is_terminal = ::isatty(fd) == 1;
  unsigned short cols = 0, rows = 0;
  if (info.is_terminal) {
    winsize ws{};
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0) {
      cols = ws.ws_col;
      rows = ws.ws_row;
    }
  }
  info.options.width = choose_width(cols, detail::env("COLUMNS"));
  info.options.height = rows >= 5 ? rows : 24;
  info.options.color = info.is_terminal && color_enabled(detail::env("NO_COLOR"), detail::env("TERM"));
  info.options.unicode = unicode_enabled(detail::env("LC_ALL"), detail::env("LC_CTYPE"), detail::env("LANG"));
  info.redraw = info.is_terminal && redraw_enabled(detail::env("TERM"));
  return info;
}

/// Writes all of `text` to `fd`, retrying on EINTR and short writes. Returns 0, or the errno of the write that
/// failed (EPIPE when the reader is gone, ENOSPC when the disk is full, ...).
inline int write_fully(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t const n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

/// As write_fully; true when everything was written.
inline bool write_all(int fd, std::string_view text) { return write_fully(fd, text) == 0; }

/// Whether the reader of `fd` is gone without a write having failed yet: a pipe or socket whose other end
/// was closed reports POLLERR or POLLHUP. Regular files and terminals in use report neither.
inline bool output_gone(int fd) {
  pollfd p{};
  p.fd = fd;
  p.events = 0;
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

/// The one-line message for an output that cannot be written: "cannot write to standard output: Broken pipe".
inline std::string output_error_message(int error) {
  return std::string("cannot write to standard output: ") + std::strerror(error);
}

// ------------------------------------------------------------------------------------------ writers

/// Where reports and the summary go; one implementation per output format. The first failed write to the
/// output is recorded and reported once to the failure handler (the driver stops the watch: exit status 5);
/// nothing is written after it.
class OutputSink {
public:
  using FailureHandler = std::function<void(int error)>;

  virtual ~OutputSink() = default;
  /// A report as the library emits it.
  virtual void report(const Report& report) = 0;
  /// Called about once a second with the time since the watch started (the live view's clock).
  virtual void tick(double elapsed_seconds) = 0;
  /// Whether monitor_view() is used (the live view): the driver skips taking the snapshot otherwise.
  virtual bool wants_view() const { return false; }
  /// The sentinel's latest snapshot (Sentinel::view()), shown at the next redraw.
  virtual void monitor_view(const MonitorView&) {}
  /// The program is about to quit without a summary (a second Ctrl+C): restore the terminal.
  virtual void abandon() {}
  /// A diagnostic line for stderr (ends with '\n'); the live view moves itself out of the way first.
  virtual void note(std::string_view line) { write_all(STDERR_FILENO, line); }
  /// The last output of a run: the summary, the exit status, an optional error.
  virtual void finish(const WatchSummary& summary, ExitCode code, std::string_view error) = 0;

  /// Called once, with the errno, when a write to the output fails (at once when one already failed).
  void on_failure(FailureHandler handler) {
    on_failure_ = std::move(handler);
    if (failure_ != 0 && on_failure_) on_failure_(failure_);
  }
  /// The errno of the first failed write, 0 while the output works.
  int failure() const noexcept { return failure_; }
  /// Records that the output is unusable without a write having failed (see output_gone).
  void fail(int error) {
    if (failure_ != 0) return;
    failure_ = error;
    if (on_failure_) on_failure_(error);
  }

protected:
  /// Writes `text` to `fd` unless the output already failed; the first failure is recorded (fail()).
  void write_to(int fd, std::string_view text) {
    if (failure_ != 0 || text.empty()) return;
    if (int const e = write_fully(fd, text); e != 0) fail(e);
  }

private:
  FailureHandler on_failure_;
  int failure_ = 0;
};

/// NDJSON: one line per report, the SUMMARY record last; flushed line by line.
class NdjsonSink final : public OutputSink {
public:
  explicit NdjsonSink(int fd) : fd_(fd) {}
  void report(const Report& report) override { write_to(fd_, report_line(report)); }
  void tick(double) override {}
  void finish(const WatchSummary& summary, ExitCode code, std::string_view error) override {
    write_to(fd_, ndjson_line(summary_record(summary, code, error)));
  }

private:
  int fd_;
};

/// The view for people. With `redraw`, notable reports scroll above a live block that is redrawn in place
/// (cursor up + clear to end of screen); without it (not a terminal, TERM=dumb) notable reports and progress
/// changes are printed as plain lines and the summary at the end.
class TextSink final : public OutputSink {
public:
  TextSink(int fd, ViewState state, TerminalInfo terminal)
      : fd_(fd), state_(std::move(state)), terminal_(terminal) {
    if (terminal_.redraw) {
      write("\x1b[?25l"); // hide the cursor while drawing
      redraw({});
    }
  }
  ~TextSink() override {
    if (terminal_.redraw && !finished_) write("\x1b[?25h");
  }

  void report(const Report& report) override {
    std::size_t const completed_before = state_.completed_tasks;
    apply_report(state_, report);
    refresh_size();
    std::string above;
    if (is_notable(report)) above = render_report_line(report, terminal_.options);
    if (terminal_.redraw) {
      redraw(above);
    } else {
      if (above.empty() && state_.completed_tasks != completed_before)
        above = render_report_line(report, terminal_.options);
      write(above);
    }
  }

  bool wants_view() const override { return true; }
  void monitor_view(const MonitorView& view) override { apply_monitor_view(state_, view); }

  void abandon() override {
    if (terminal_.redraw && !finished_) write("\n\x1b[?25h");
    finished_ = true;
  }

  void note(std::string_view line) override {
    if (!terminal_.redraw || finished_) {
      write_all(STDERR_FILENO, line);
      return;
    }
    write(erase_live());
    live_lines_ = 0;
    write_all(STDERR_FILENO, line);
    redraw({});
  }

  void tick(double elapsed_seconds) override {
    state_.elapsed_seconds = elapsed_seconds;
    if (!terminal_.redraw) return;
    refresh_size();
    redraw({});
  }

  void finish(const WatchSummary& summary, ExitCode code, std::string_view error) override {
    refresh_size();
    std::string out;
    if (terminal_.redraw) {
      out += erase_live();
      state_.finished = true;
      out += render_live(state_, terminal_.options);
    }
    out += render_summary(summary, code, terminal_.options, error);
    if (terminal_.redraw) out += "\x1b[?25h";
    write(out);
    live_lines_ = 0;
    finished_ = true;
  }

  const ViewState& view() const noexcept { return state_; }

private:
  void refresh_size() {
    if (!terminal_.is_terminal) return;
    winsize ws{};
    if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      terminal_.options.width = choose_width(ws.ws_col, std::nullopt);
      if (ws.ws_row >= 5) terminal_.options.height = ws.ws_row;
    }
  }

  std::string erase_live() const {
    if (live_lines_ == 0) return "\r\x1b[J";
    return "\x1b[" + std::to_string(live_lines_) + "A\r\x1b[J";
  }

  void redraw(const std::string& above) {
    std::string const live = render_live(state_, terminal_.options);
    std::string out = erase_live();
    out += above;
    out += live;
    live_lines_ = 0;
    for (char c : live) live_lines_ += c == '\n';
    write(out);
  }

  void write(std::string_view text) { write_to(fd_, text); }

  int fd_;
  ViewState state_;
  TerminalInfo terminal_;
  std::size_t live_lines_ = 0;
  bool finished_ = false;
};

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP

// The output side of execution-sentinel: what the terminal can do (pure decisions from the environment, plus
// a thin probe of the real file descriptor), and the two writers: the live view (redrawn in place with ANSI
// cursor movement) and NDJSON. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP

#include "exit_codes.hpp"
#include "ndjson.hpp"
#include "view.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

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

/// Writes all of `text` to `fd`, retrying on EINTR and short writes. Returns false when the reader is gone
/// (EPIPE) or another error occurred; callers then stop writing.
inline bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t const n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// ------------------------------------------------------------------------------------------ writers

/// Where reports and the summary go; one implementation per output format.
class OutputSink {
public:
  virtual ~OutputSink() = default;
  /// A report in its JSON form.
  virtual void report(const boost::json::object& report) = 0;
  /// Called about once a second with the time since the watch started (the live view's clock).
  virtual void tick(double elapsed_seconds) = 0;
  /// The current per-phase counts (phase_counts.hpp), shown at the next redraw.
  virtual void phase_counts(const boost::json::object&) {}
  /// The program is about to quit without a summary (a second Ctrl+C): restore the terminal.
  virtual void abandon() {}
  /// A diagnostic line for stderr (ends with '\n'); the live view moves itself out of the way first.
  virtual void note(std::string_view line) { write_all(STDERR_FILENO, line); }
  /// The last output of a run: the summary (JSON form of WatchSummary), the exit status, an optional error.
  virtual void finish(const boost::json::object& summary, ExitCode code, std::string_view error) = 0;
};

/// NDJSON: one line per report, the SUMMARY record last; flushed line by line.
class NdjsonSink final : public OutputSink {
public:
  explicit NdjsonSink(int fd) : fd_(fd) {}
  void report(const boost::json::object& report) override { write(ndjson_line(report)); }
  void tick(double) override {}
  void finish(const boost::json::object& summary, ExitCode code, std::string_view error) override {
    write(ndjson_line(summary_record(summary, code, error)));
  }

private:
  void write(const std::string& line) {
    if (ok_) ok_ = write_all(fd_, line);
  }
  int fd_;
  bool ok_ = true;
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

  void report(const boost::json::object& report) override {
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

  void phase_counts(const boost::json::object& phases) override { apply_phase_counts(state_, phases); }

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

  void finish(const boost::json::object& summary, ExitCode code, std::string_view error) override {
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

  void write(std::string_view text) {
    if (ok_ && !text.empty()) ok_ = write_all(fd_, text);
  }

  int fd_;
  ViewState state_;
  TerminalInfo terminal_;
  std::size_t live_lines_ = 0;
  bool ok_ = true;
  bool finished_ = false;
};

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_TERMINAL_HPP

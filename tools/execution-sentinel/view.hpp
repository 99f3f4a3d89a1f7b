// The terminal view of execution-sentinel, as pure functions: a ViewState built from the MonitoringContext,
// updated by the library's typed Reports and by the Sentinel's MonitorView snapshot (Sentinel::view(): per phase
// counts, the longest-running task, ETA, health), rendered to strings for a given width. The driver that owns the terminal (cursor movement, redraw timing) is in terminal.hpp;
// nothing here does I/O.
//
// Layout: reports that matter to a person (anomalies, connectivity, phase starts and ends, completion) are
// printed once as permanent lines (render_report_line) that scroll up; below them a live block
// (render_live) is redrawn in place: a header with the overall count, one progress bar per DAG phase in
// dag_order, and a status line. At the end render_summary prints the final summary.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_VIEW_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_VIEW_HPP

#include "exit_codes.hpp"

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::cli {

/// How a string is rendered. width/height are the terminal's; color adds SGR sequences (never when NO_COLOR
/// is set); unicode draws the bars with block characters instead of '#' and '-'.
struct RenderOptions {
  std::size_t width = 80;
  std::size_t height = 24;
  bool color = false;
  bool unicode = false;
};

enum class PhaseStatus { waiting, running, done };

/// One DAG phase: the tasks of one task_type.
struct PhaseView {
  std::string task_type;
  std::int64_t dag_order = 99;
  std::size_t total = 0;     ///< Tasks of this type in the inventory.
  std::size_t completed = 0; ///< Known succeeded (from reports).
  std::size_t failed = 0;
  std::size_t running = 0;
  PhaseStatus status = PhaseStatus::waiting;
};

/// Everything the live block shows.
struct ViewState {
  std::string namespace_name;
  std::string engine;
  std::vector<PhaseView> phases; ///< Sorted by dag_order, then name.
  std::map<std::string, std::int64_t, std::less<>> phase_order; ///< task_type → its dag_order: finds a phase in O(log n).
  std::size_t total_tasks = 0;
  std::size_t completed_tasks = 0;
  std::size_t failed_tasks = 0;
  std::size_t vanished_tasks = 0; ///< ended with an unknown outcome (their objects vanished before an end was seen)
  std::size_t anomalies = 0;
  std::map<std::string, std::size_t> reports_by_type;
  bool connection_lost = false;
  bool finished = false;
  double elapsed_seconds = 0;
  std::string last_message; ///< The latest report's message (sanitised).
  // From the MonitorView (apply_monitor_view); absent until one was applied.
  std::optional<double> health;      ///< [0, 1]
  std::optional<double> eta_seconds; ///< until every task has finished
  std::string longest_running;       ///< the longest-running task (sanitised), "" when none
  double longest_running_seconds = 0;
  std::optional<double> longest_expected_seconds;
};

// ------------------------------------------------------------------------------------------ text helpers

/// Replaces every control character (C0, DEL, and the C1 range encoded in UTF-8) and invalid UTF-8 by '?', so
/// text from the cluster can never move the cursor or change colours. Tabs and newlines become spaces.
inline std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto const c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\t' || c == '\n' || c == '\r') out.push_back(' ');
      else if (c < 0x20 || c == 0x7f) out.push_back('?');
      else out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5) len = 0;
    bool valid = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F: one '?' for the whole character.
    if (valid && len == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      out.push_back('?');
      i += 2;
      continue;
    }
    if (!valid) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

/// The number of terminal columns `text` occupies: code points, not counting SGR/CSI escape sequences.
/// (Every glyph this view draws is one column wide.)
inline std::size_t visible_width(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto const c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b && i + 1 < text.size() && text[i + 1] == '[') {
      i += 2;
      while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      continue;
    }
    if ((c & 0xc0) != 0x80) ++width;
  }
  return width;
}

/// Cuts `text` to at most `width` columns; keeps escape sequences whole and, when anything was cut, ends
/// with "…" (unicode) or "~" so the cut is visible. Appends a colour reset if the text contained colours.
inline std::string fit(std::string_view text, std::size_t width, bool unicode = false) {
  if (visible_width(text) <= width) return std::string(text);
  if (width == 0) return {};
  std::string out;
  bool had_escape = false;
  std::size_t used = 0;
  std::size_t const budget = width - 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto const c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b && i + 1 < text.size() && text[i + 1] == '[') {
      std::size_t j = i + 2;
      while (j < text.size() && !(text[j] >= 0x40 && text[j] <= 0x7e)) ++j;
      out.append(text.substr(i, j - i + 1));
      had_escape = true;
      i = j;
      continue;
    }
    if ((c & 0xc0) != 0x80) {
      if (used == budget) break;
      ++used;
    }
    out.push_back(static_cast<char>(c));
  }
  out += unicode ? "\u2026" : "~";
  if (had_escape) out += "\x1b[0m";
  return out;
}

/// Pads `text` with spaces to `width` columns (or cuts it).
inline std::string pad(std::string_view text, std::size_t width, bool unicode = false) {
  std::string out = fit(text, width, unicode);
  std::size_t const w = visible_width(out);
  if (w < width) out.append(width - w, ' ');
  return out;
}

namespace detail {
inline constexpr std::string_view sgr_reset = "\x1b[0m";
inline constexpr std::string_view sgr_bold = "\x1b[1m";
inline constexpr std::string_view sgr_dim = "\x1b[2m";
inline constexpr std::string_view sgr_red = "\x1b[31m";
inline constexpr std::string_view sgr_green = "\x1b[32m";
inline constexpr std::string_view sgr_yellow = "\x1b[33m";
inline constexpr std::string_view sgr_cyan = "\x1b[36m";

inline std::string paint(std::string_view text, std::string_view sgr, bool color) {
  if (!color || text.empty()) return std::string(text);
  std::string out(sgr);
  out += text;
  out += sgr_reset;
  return out;
}

inline std::string string_field(const boost::json::object& o, std::string_view key) {
  if (auto const* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}

inline bool count_field(const boost::json::object& o, std::string_view key, std::size_t& out) {
  auto const* v = o.if_contains(key);
  if (!v) return false;
  if (v->is_int64() && v->get_int64() >= 0) out = static_cast<std::size_t>(v->get_int64());
  else if (v->is_uint64()) out = static_cast<std::size_t>(v->get_uint64());
  else if (v->is_double() && v->get_double() >= 0 && v->get_double() < 1e15) out = static_cast<std::size_t>(v->get_double());
  else return false;
  return true;
}

inline std::string format_duration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  auto const total = static_cast<long long>(seconds);
  char buf[32];
  if (total >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld", total / 60, total % 60);
  return buf;
}

inline bool is_anomaly(ReportType type) noexcept {
  switch (type) {
  case ReportType::ANOMALY_OOMKILL:
  case ReportType::ANOMALY_STRAGGLER:
  case ReportType::ANOMALY_STALL:
  case ReportType::ANOMALY_TASK_FAILED:
  case ReportType::ANOMALY_MEMORY_PRESSURE:
  case ReportType::MASS_FAILURE: return true;
  default: return false;
  }
}

inline bool phase_less(const PhaseView& a, std::int64_t order, std::string_view name) {
  return a.dag_order != order ? a.dag_order < order : a.task_type < name;
}

/// The phase of `task_type` (already sanitised), or nullptr: O(log n).
inline PhaseView* find_phase(ViewState& state, std::string_view task_type) {
  auto const it = state.phase_order.find(task_type);
  if (it == state.phase_order.end()) return nullptr;
  auto const pos = std::lower_bound(state.phases.begin(), state.phases.end(), 0,
                                    [&](const PhaseView& p, int) { return phase_less(p, it->second, task_type); });
  return pos != state.phases.end() && pos->task_type == task_type ? &*pos : nullptr;
}

/// The phase of `task_type`, added at its place in the order (`dag_order` for a new one) when missing.
inline PhaseView& phase_for(ViewState& state, std::string_view task_type, std::int64_t dag_order = 99) {
  if (auto* p = find_phase(state, task_type)) return *p;
  auto const pos = std::lower_bound(state.phases.begin(), state.phases.end(), 0,
                                    [&](const PhaseView& p, int) { return phase_less(p, dag_order, task_type); });
  PhaseView phase;
  phase.task_type = std::string(task_type);
  phase.dag_order = dag_order;
  state.phase_order.emplace(phase.task_type, dag_order);
  return *state.phases.insert(pos, std::move(phase));
}
} // namespace detail


// ------------------------------------------------------------------------------------------ state

/// The initial view from a MonitoringContext: one phase per task_type of the inventory (with its task count and
/// the smallest dag_order of its tasks), plus the types named only as keys of dag_structure (after all of
/// them, in name order). O(n log n) in the number of tasks and types.
inline ViewState initial_view(const MonitoringContext& context) {
  ViewState state;
  state.namespace_name = sanitize(context.namespace_);
  state.engine = sanitize(context.engine_pod_name);
  if (state.engine.empty()) state.engine = sanitize(context.engine_pod_selector);
  std::map<std::string, PhaseView> phases;
  for (auto const& task : context.task_inventory) {
    std::string const type = sanitize(task.task_type);
    auto [it, inserted] = phases.try_emplace(type);
    PhaseView& phase = it->second;
    if (inserted) {
      phase.task_type = type;
      phase.dag_order = task.dag_order;
    }
    phase.dag_order = std::min<std::int64_t>(phase.dag_order, task.dag_order);
    ++phase.total;
    ++state.total_tasks;
  }
  std::int64_t next = 100;
  for (auto const& [type, phase] : phases) next = std::max(next, phase.dag_order + 1);
  for (auto const& [type, deps] : context.dag_structure) {
    std::string const name = sanitize(type);
    if (phases.count(name)) continue;
    PhaseView phase;
    phase.task_type = name;
    phase.dag_order = next++;
    phases.emplace(name, phase);
  }
  state.phases.reserve(phases.size());
  for (auto& [type, phase] : phases) {
    state.phase_order.emplace(type, phase.dag_order);
    state.phases.push_back(std::move(phase));
  }
  std::sort(state.phases.begin(), state.phases.end(), [](const PhaseView& a, const PhaseView& b) {
    return detail::phase_less(a, b.dag_order, b.task_type);
  });
  return state;
}

/// Updates the view with one report as the library emits it (docs/reports.md): every report carries the
/// completed and total counts; PROGRESS phase events (details.event "phase_started" / "phase_completed", with
/// phase_total, phase_running, phase_succeeded, phase_failed) move their phase; the count event
/// (details.event "count") and COMPLETION (details.failed_tasks) give the failed count, the count and
/// "task_vanished" events (details.vanished) the tasks ended with an unknown outcome; CONNECTIVITY_LOSS and
/// CONNECTIVITY_RESTORED toggle the connection flag; COMPLETION and TIMEOUT end the run.
inline void apply_report(ViewState& state, const Report& report) {
  ++state.reports_by_type[std::string(to_string(report.type))];
  state.completed_tasks = static_cast<std::size_t>(std::max(report.completed_tasks, 0));
  if (report.total_tasks > 0) state.total_tasks = static_cast<std::size_t>(report.total_tasks);
  if (!report.message.empty()) state.last_message = sanitize(report.message);
  if (detail::is_anomaly(report.type)) ++state.anomalies;
  if (report.type == ReportType::CONNECTIVITY_LOSS) state.connection_lost = true;
  if (report.type == ReportType::CONNECTIVITY_RESTORED) state.connection_lost = false;
  if (report.type == ReportType::COMPLETION || report.type == ReportType::TIMEOUT) state.finished = true;

  auto const& details = report.details;
  std::string const event = detail::string_field(details, "event");
  std::size_t count = 0;
  if (report.type == ReportType::COMPLETION && detail::count_field(details, "failed_tasks", count))
    state.failed_tasks = count;
  if (report.type == ReportType::PROGRESS && event == "count" && detail::count_field(details, "failed", count))
    state.failed_tasks = count;
  if (report.type == ReportType::PROGRESS && (event == "count" || event == "task_vanished") &&
      detail::count_field(details, "vanished", count))
    state.vanished_tasks = count;
  if (report.type != ReportType::PROGRESS || (event != "phase_started" && event != "phase_completed")) return;

  std::string phase_name = detail::string_field(details, "phase");
  if (phase_name.empty()) phase_name = report.task_type;
  std::int64_t order = 99;
  if (auto const* o = details.if_contains("dag_order"); o && o->is_int64()) order = o->get_int64();
  PhaseView& phase = detail::phase_for(state, sanitize(phase_name), order);
  std::size_t n = 0;
  if (detail::count_field(details, "phase_succeeded", n)) phase.completed = n;
  if (detail::count_field(details, "phase_running", n)) phase.running = n;
  if (detail::count_field(details, "phase_failed", n)) phase.failed = n;
  if (detail::count_field(details, "phase_total", n) && n > 0) phase.total = n;
  if (event == "phase_started" && phase.status == PhaseStatus::waiting) phase.status = PhaseStatus::running;
  if (event == "phase_completed") {
    phase.status = PhaseStatus::done;
    phase.completed = std::max(phase.completed, phase.total);
    phase.running = 0;
  }
}

/// Copies the per-phase counts of the sentinel's workflow state into the view (phases not yet shown are
/// added), so that each bar moves between its phase's start and end reports: completed = succeeded tasks;
/// status done when the phase completed, running once it started. O(p log n) for p phases in the state.
inline void apply_phase_counts(ViewState& view, const WorkflowState& state) {
  for (auto const& [type, ph] : state.phases()) {
    PhaseView& phase = detail::phase_for(view, sanitize(type), ph.dag_order);
    phase.completed = static_cast<std::size_t>(std::max(ph.succeeded, 0));
    phase.failed = static_cast<std::size_t>(std::max(ph.failed, 0));
    phase.running = static_cast<std::size_t>(std::max(ph.running, 0));
    if (ph.total > 0) phase.total = static_cast<std::size_t>(ph.total);
    phase.status = ph.completed ? PhaseStatus::done : ph.started ? PhaseStatus::running : PhaseStatus::waiting;
  }
}

/// Copies the Sentinel's snapshot (Sentinel::view(), safe from any thread) into the view: per-phase counts
/// (phases not yet shown are added; done when completed, running once started), the overall counts, the
/// anomalies so far, the health score, the ETA and the longest-running task. O(p log n) for p phases.
inline void apply_monitor_view(ViewState& view, const MonitorView& mv) {
  for (auto const& ph : mv.phases) {
    PhaseView& phase = detail::phase_for(view, sanitize(ph.task_type), ph.dag_order);
    phase.completed = static_cast<std::size_t>(std::max(ph.succeeded, 0));
    phase.failed = static_cast<std::size_t>(std::max(ph.failed, 0));
    phase.running = static_cast<std::size_t>(std::max(ph.running, 0));
    if (ph.total > 0) phase.total = static_cast<std::size_t>(ph.total);
    phase.status = ph.completed ? PhaseStatus::done : ph.started ? PhaseStatus::running : PhaseStatus::waiting;
  }
  view.completed_tasks = static_cast<std::size_t>(std::max(mv.completed, 0));
  view.failed_tasks = static_cast<std::size_t>(std::max(mv.failed, 0));
  view.vanished_tasks = static_cast<std::size_t>(std::max(mv.vanished, 0));
  if (mv.total > 0) view.total_tasks = static_cast<std::size_t>(mv.total);
  std::size_t anomalies = 0;
  for (auto const& [type, n] : mv.anomaly_counts)
    if (detail::is_anomaly(type)) anomalies += static_cast<std::size_t>(std::max(n, 0));
  view.anomalies = std::max(view.anomalies, anomalies);
  view.health = mv.health;
  view.eta_seconds = mv.finished ? std::nullopt : mv.eta_seconds;
  if (mv.finished) view.finished = true;
  if (!mv.running_tasks.empty()) {
    view.longest_running = sanitize(mv.running_tasks.front().name);
    view.longest_running_seconds = mv.running_tasks.front().elapsed_seconds;
    view.longest_expected_seconds = mv.running_tasks.front().expected_seconds;
  } else {
    view.longest_running.clear();
    view.longest_running_seconds = 0;
    view.longest_expected_seconds.reset();
  }
}

/// Whether a report gets its own permanent line above the live block: every type but PROGRESS, and the
/// PROGRESS phase events. Plain count updates (details.event "count") only change the live block.
inline bool is_notable(const Report& report) {
  if (report.type != ReportType::PROGRESS) return true;
  if (!report.task_type.empty()) return true;
  std::string const event = detail::string_field(report.details, "event");
  return event == "phase_started" || event == "phase_completed";
}

// ------------------------------------------------------------------------------------------ rendering

namespace detail {
inline std::string bar(std::size_t done, std::size_t failed, std::size_t total, std::size_t width,
                       const RenderOptions& options, PhaseStatus status) {
  if (width == 0) return {};
  std::size_t filled = total == 0 ? (status == PhaseStatus::done ? width : 0)
                                  : std::min(width, done * width / total);
  std::size_t red = total == 0 ? 0 : std::min(width - filled, (failed * width + total - 1) / total);
  std::string const full = options.unicode ? "\u2588" : "#";
  std::string const bad = options.unicode ? "\u2588" : "x";
  std::string const empty = options.unicode ? "\u2591" : "-";
  std::string f, r, e;
  for (std::size_t i = 0; i < filled; ++i) f += full;
  for (std::size_t i = 0; i < red; ++i) r += bad;
  for (std::size_t i = filled + red; i < width; ++i) e += empty;
  std::string_view const done_color = status == PhaseStatus::done ? sgr_green : sgr_cyan;
  return paint(f, done_color, options.color) + paint(r, sgr_red, options.color) + paint(e, sgr_dim, options.color);
}

inline std::string phase_status_text(const PhaseView& p) {
  std::string text;
  switch (p.status) {
  case PhaseStatus::waiting: text = "waiting"; break;
  case PhaseStatus::running: text = p.running > 0 ? std::to_string(p.running) + " running" : "running"; break;
  case PhaseStatus::done: text = "done"; break;
  }
  if (p.failed > 0) text += ", " + std::to_string(p.failed) + " failed";
  return text;
}

inline std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}
} // namespace detail

/// The live block: header, one line per phase, status line. Each line is at most options.width columns, there
/// are at most options.height - 1 lines (extra phases are folded into one line), and lines are separated and
/// terminated by '\n'. Without options.color the text contains no escape byte at all.
inline std::string render_live(const ViewState& state, const RenderOptions& options) {
  std::size_t const width = std::max<std::size_t>(options.width, 10);
  bool const color = options.color;
  std::vector<std::string> lines;

  // Header.
  std::string header = detail::paint("execution-sentinel", detail::sgr_bold, color);
  if (!state.namespace_name.empty()) header += "  ns " + state.namespace_name;
  if (!state.engine.empty()) header += "  engine " + state.engine;
  std::string const clock = detail::format_duration(state.elapsed_seconds);
  std::size_t const header_room = width > clock.size() + 1 ? width - clock.size() - 1 : 0;
  header = pad(header, header_room, options.unicode) + " " + clock;
  lines.push_back(fit(header, width, options.unicode));

  // Phases.
  std::size_t const extra = !state.longest_running.empty() && !state.finished ? 1 : 0; // the longest-running line
  std::size_t const max_rows = options.height > 3 + extra ? options.height - 3 - extra : 1;
  std::size_t const shown =
      state.phases.size() <= max_rows ? state.phases.size() : (max_rows > 1 ? max_rows - 1 : 0);
  // Column widths from the rows drawn only: a redraw costs the same with 10 phases or 100,000.
  std::size_t name_width = 5;
  std::size_t total_digits = 1;
  for (std::size_t i = 0; i < shown; ++i) {
    auto const& p = state.phases[i];
    name_width = std::max(name_width, visible_width(p.task_type));
    total_digits = std::max(total_digits, std::to_string(std::max(p.total, p.completed)).size());
  }
  name_width = std::min(name_width, std::max<std::size_t>(8, width / 4));
  std::size_t const count_width = 2 * total_digits + 1;
  std::size_t const status_width = 20;
  std::size_t const fixed = name_width + 1 + 1 + count_width + 1 + status_width;
  std::size_t bar_width = width > fixed + 4 ? std::min<std::size_t>(width - fixed - 1, 50) : 0;
  for (std::size_t i = 0; i < shown; ++i) {
    auto const& p = state.phases[i];
    std::string line = pad(p.task_type.empty() ? std::string("(no type)") : p.task_type, name_width, options.unicode) + " ";
    if (bar_width > 0) line += detail::bar(p.completed, p.failed, p.total, bar_width, options, p.status) + " ";
    char counts[64];
    std::snprintf(counts, sizeof counts, "%*zu/%-*zu", static_cast<int>(total_digits), p.completed,
                  static_cast<int>(total_digits), p.total);
    line += counts;
    line += " ";
    std::string status = detail::phase_status_text(p);
    std::string_view const sgr = p.failed > 0 ? detail::sgr_red
                               : p.status == PhaseStatus::done ? detail::sgr_green
                               : p.status == PhaseStatus::running ? detail::sgr_cyan : detail::sgr_dim;
    line += detail::paint(status, sgr, color);
    lines.push_back(fit(line, width, options.unicode));
  }
  if (shown < state.phases.size())
    lines.push_back(fit("... " + detail::plural(state.phases.size() - shown, "more phase", "more phases"), width, options.unicode));

  // Status line.
  std::string status = std::to_string(state.completed_tasks) + "/" + std::to_string(state.total_tasks) + " tasks completed";
  if (state.failed_tasks > 0) status += ", " + detail::paint(std::to_string(state.failed_tasks) + " failed", detail::sgr_red, color);
  if (state.vanished_tasks > 0)
    status += ", " + detail::paint(std::to_string(state.vanished_tasks) + " outcome unknown", detail::sgr_yellow, color);
  if (state.anomalies > 0) status += ", " + detail::paint(detail::plural(state.anomalies, "anomaly", "anomalies"), detail::sgr_yellow, color);
  if (state.health) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "health %.0f%%", std::clamp(*state.health, 0.0, 1.0) * 100);
    std::string_view const sgr = *state.health >= 0.9 ? detail::sgr_green : *state.health >= 0.6 ? detail::sgr_yellow : detail::sgr_red;
    status += ", " + detail::paint(buf, sgr, color);
  }
  if (state.eta_seconds && !state.finished) status += ", ETA " + detail::format_duration(*state.eta_seconds);
  if (state.connection_lost) status += "  " + detail::paint("[connection lost, retrying]", detail::sgr_red, color);
  else if (state.finished) status += "  " + detail::paint("[finished]", detail::sgr_green, color);
  if (!state.longest_running.empty() && !state.finished) {
    std::string longest = "longest running: " + state.longest_running + " " +
                          detail::format_duration(state.longest_running_seconds);
    if (state.longest_expected_seconds)
      longest += " (typically " + detail::format_duration(*state.longest_expected_seconds) + ")";
    lines.push_back(fit(detail::paint(longest, detail::sgr_dim, color), width, options.unicode));
  }
  lines.push_back(fit(status, width, options.unicode));

  std::string out;
  for (auto const& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

/// A short label for a report type, for the permanent lines (at most 12 columns).
inline std::string_view report_label(ReportType type) noexcept {
  switch (type) {
  case ReportType::PROGRESS: return "progress";
  case ReportType::ANOMALY_OOMKILL: return "OOM kill";
  case ReportType::ANOMALY_STRAGGLER: return "straggler";
  case ReportType::MASS_FAILURE: return "mass failure";
  case ReportType::CONNECTIVITY_LOSS:
  case ReportType::CONNECTIVITY_RESTORED: return "connection";
  case ReportType::COMPLETION: return "completion";
  case ReportType::TIMEOUT: return "timeout";
  case ReportType::COMPLETION_SIGNAL_INVALID: return "bad signal";
  case ReportType::ANOMALY_STALL: return "stall";
  case ReportType::ANOMALY_TASK_FAILED: return "task failed";
  case ReportType::ANOMALY_MEMORY_PRESSURE: return "memory";
  case ReportType::STRUCTURE: return "structure";
  case ReportType::INTERVENTION: return "intervention";
  case ReportType::TASK_STARTED: return "started";
  case ReportType::TASK_COMPLETED: return "completed";
  case ReportType::TASK_FAILED: return "failed";
  case ReportType::TASK_RETRIED: return "retried";
  }
  return "report";
}

namespace detail {
/// Word-wraps plain text to `width` columns, indenting continuation lines by `indent` spaces.
inline std::vector<std::string> wrap(std::string_view text, std::size_t width, std::size_t indent) {
  std::vector<std::string> lines;
  std::size_t pos = text.find_first_not_of(' ');
  if (pos == std::string_view::npos) return lines;
  std::string line(pos, ' ');
  bool has_word = false;
  if (indent + 8 > width) indent = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string word(text.substr(pos, end - pos));
    pos = end + 1;
    if (word.empty()) continue;
    if (has_word && visible_width(line) + 1 + visible_width(word) > width) {
      lines.push_back(line);
      line = std::string(indent, ' ');
      has_word = false;
    }
    if (has_word) line += ' ';
    line += word;
    has_word = true;
  }
  if (has_word) lines.push_back(line);
  for (auto& l : lines) l = fit(l, width);
  return lines;
}
} // namespace detail

/// The log tail a report carries as evidence (details.evidence.log_tail, docs/reports.md), as lines under its
/// message: at most `max_lines` of the last lines, each behind a bar ("| " or "│ "), sanitised and cut to the
/// width (a log line is never wrapped), with one line saying how many earlier ones are not shown; or the
/// reason there is none (details.evidence.log_tail_unavailable). Empty for a report without evidence.
inline std::string render_evidence(const Report& report, std::size_t indent, const RenderOptions& options,
                                   std::size_t max_lines = 8) {
  auto const* evidence = report.details.if_contains("evidence");
  if (!evidence || !evidence->is_object()) return {};
  std::size_t const width = std::max<std::size_t>(options.width, 10);
  if (indent + 20 > width) indent = 0;
  std::string const pad_left(indent, ' ');
  std::string const bar = options.unicode ? "\u2502 " : "| ";
  std::string out;
  auto const& e = evidence->get_object();
  if (auto const* tail = e.if_contains("log_tail"); tail && tail->is_array()) {
    auto const& lines = tail->get_array();
    std::size_t const shown = std::min(lines.size(), max_lines);
    if (lines.size() > shown)
      out += fit(pad_left + detail::paint(bar + "... " + detail::plural(lines.size() - shown, "earlier log line",
                                                                        "earlier log lines"),
                                          detail::sgr_dim, options.color),
                 width, options.unicode) +
             "\n";
    for (std::size_t i = lines.size() - shown; i < lines.size(); ++i) {
      if (!lines[i].is_string()) continue;
      std::string const text = sanitize(lines[i].get_string());
      out += fit(pad_left + detail::paint(bar, detail::sgr_dim, options.color) + text, width, options.unicode) + "\n";
    }
  } else if (auto const* why = e.if_contains("log_tail_unavailable"); why && why->is_string()) {
    out += fit(pad_left + detail::paint(bar + "no log: " + sanitize(why->get_string()), detail::sgr_dim, options.color),
               width, options.unicode) +
           "\n";
  }
  return out;
}

/// The permanent lines for a report: `HH:MM:SS  label        message` (UTC time of the report), coloured by
/// severity (errors and critical red, warnings yellow, other anomalies yellow, completion and restored contact
/// green, the rest cyan). The message is word-wrapped under itself so that nothing of it is lost and no line is
/// wider than the width (on very narrow terminals it is cut instead). Each line ends with '\n'.
inline std::string render_report_line(const Report& report, const RenderOptions& options) {
  std::size_t const width = std::max<std::size_t>(options.width, 10);
  std::string_view sgr = detail::sgr_cyan;
  if (report.severity == Severity::error || report.severity == Severity::critical) sgr = detail::sgr_red;
  else if (report.severity == Severity::warning) sgr = detail::sgr_yellow;
  else if (detail::is_anomaly(report.type)) sgr = detail::sgr_yellow;
  else if (report.type == ReportType::COMPLETION || report.type == ReportType::CONNECTIVITY_RESTORED)
    sgr = detail::sgr_green;

  std::string const stamp = format_timestamp(report.timestamp); // 2026-11-23T05:36:11.123Z
  std::string const time = stamp.size() >= 19 ? stamp.substr(11, 8) : std::string();

  std::string message = sanitize(report.message);
  if (message.empty()) message = sanitize(report.task_name);
  if (message.empty()) message = sanitize(report.task_type);
  std::string prefix;
  if (!time.empty()) prefix += detail::paint(time, detail::sgr_dim, options.color) + "  ";
  prefix += detail::paint(pad(report_label(report.type), 12), sgr, options.color);
  prefix += " ";
  std::size_t const indent = visible_width(prefix);
  if (width < indent + 20) return fit(prefix + message, width, options.unicode) + "\n";
  std::string out;
  auto const lines = detail::wrap(message, width - indent, 0);
  for (std::size_t i = 0; i < lines.size(); ++i)
    out += fit((i == 0 ? prefix : std::string(indent, ' ')) + lines[i], width, options.unicode) + "\n";
  if (out.empty()) out = fit(prefix, width, options.unicode) + "\n";
  out += render_evidence(report, indent, options);
  return out;
}

namespace detail {
inline std::string joined_names(const std::vector<std::string>& names) {
  std::string out;
  for (auto const& n : names) {
    std::string const name = sanitize(n);
    if (name.empty()) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}
} // namespace detail

/// The final summary for people, from the WatchSummary and the exit status: a headline with the outcome,
/// counts and duration, then the error (if any), OOM-killed tasks, stragglers and reports per type when there
/// are any. Lines are wrapped to the width; each ends with '\n'.
inline std::string render_summary(const WatchSummary& summary, ExitCode code, const RenderOptions& options,
                                  std::string_view error = {}) {
  std::size_t const width = std::max<std::size_t>(options.width, 20);
  std::string headline;
  std::string_view sgr = detail::sgr_red;
  switch (code) {
  case ExitCode::succeeded: headline = "Workflow succeeded"; sgr = detail::sgr_green; break;
  case ExitCode::workflow_failed: headline = "Workflow failed"; break;
  case ExitCode::timed_out: headline = "Timed out before the workflow finished"; sgr = detail::sgr_yellow; break;
  case ExitCode::interrupted: headline = "Interrupted"; sgr = detail::sgr_yellow; break;
  case ExitCode::cluster_unreachable: headline = "Cluster unreachable"; break;
  case ExitCode::usage_error: headline = "Usage error"; break;
  case ExitCode::output_failed: headline = "Output failed"; break;
  }
  std::string body = ": " + std::to_string(summary.completed_tasks) + "/" + std::to_string(summary.total_tasks) +
                     " tasks completed, " + std::to_string(summary.failed_tasks) + " failed";
  if (summary.vanished_tasks > 0) body += ", " + std::to_string(summary.vanished_tasks) + " with an unknown outcome";
  if (summary.exit_code) body += ", workflow exit code " + std::to_string(*summary.exit_code);
  if (summary.mass_failure) body += ", mass failure";
  body += ", " + detail::format_duration(summary.duration_seconds) + " elapsed.";

  std::vector<std::string> lines;
  auto first = detail::wrap(headline + body, width, 2);
  if (!first.empty() && first.front().rfind(headline, 0) == 0)
    first.front() = detail::paint(headline, sgr, options.color) + first.front().substr(headline.size());
  for (auto& l : first) lines.push_back(l);
  if (!error.empty())
    for (auto& l : detail::wrap("  Error: " + sanitize(error), width, 4)) lines.push_back(l);
  if (auto names = detail::joined_names(summary.oom_killed); !names.empty())
    for (auto& l : detail::wrap("  Out of memory: " + names, width, 4)) lines.push_back(l);
  if (auto names = detail::joined_names(summary.stragglers); !names.empty())
    for (auto& l : detail::wrap("  Stragglers: " + names, width, 4)) lines.push_back(l);
  if (!summary.reports.empty()) {
    std::string text = "  Reports:";
    bool first_item = true;
    for (auto const& [type, n] : summary.reports) {
      text += (first_item ? " " : ", ") + std::to_string(n) + " " + std::string(to_string(type));
      first_item = false;
    }
    for (auto& l : detail::wrap(text, width, 4)) lines.push_back(l);
  }
  std::string out;
  for (auto const& l : lines) out += l + "\n";
  return out;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_VIEW_HPP

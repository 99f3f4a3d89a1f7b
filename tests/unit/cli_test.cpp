// The pure logic of the execution-sentinel command: exit-code policy, NDJSON lines, argument validation, the
// terminal view (fed with typed reports, also ones produced by the real detectors), and the output writers'
// handling of a closed or full output.
#include "../../tools/execution-sentinel/arguments.hpp"
#include "../../tools/execution-sentinel/exit_codes.hpp"
#include "../../tools/execution-sentinel/ndjson.hpp"
#include "../../tools/execution-sentinel/terminal.hpp"
#include "../../tools/execution-sentinel/view.hpp"

#include "catch.hpp"

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace cli = execution_sentinel::cli;
namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
namespace json = boost::json;

namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_escape(const std::string& text) { return text.find('\x1b') != std::string::npos; }

/// Every escape sequence in `text` is a complete SGR sequence ESC [ digits/; m.
bool only_sgr_sequences(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\x1b') continue;
    if (i + 1 >= text.size() || text[i + 1] != '[') return false;
    std::size_t j = i + 2;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == ';')) ++j;
    if (j >= text.size() || text[j] != 'm') return false;
    i = j;
  }
  return true;
}

bool has_control_bytes(const std::string& text) {
  for (char c : text) {
    auto const u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\x1b') || u == 0x7f) return true;
  }
  return false;
}

json::object context_1000genome() {
  return json::parse(R"({
    "namespace": "wf-1000g-20260223-101500", "engine_pod_name": "hyperflow-engine-6c4b46d86-jdl7w",
    "engine_container": "hyperflow", "agglomeration_factor": 1, "execution_model": "JOB",
    "task_inventory": [
      {"name": "individuals", "task_type": "individuals", "dag_order": 0},
      {"name": "individuals", "task_type": "individuals", "dag_order": 0},
      {"name": "individuals", "task_type": "individuals", "dag_order": 0},
      {"name": "individuals_merge", "task_type": "individuals_merge", "dag_order": 1},
      {"name": "sifting", "task_type": "sifting", "dag_order": 2},
      {"name": "mutation_overlap", "task_type": "mutation_overlap", "dag_order": 3},
      {"name": "frequency", "task_type": "frequency", "dag_order": 4},
      {"name": "frequency", "task_type": "frequency", "dag_order": 4}],
    "dag_structure": {"individuals": [], "individuals_merge": ["individuals"], "sifting": ["individuals_merge"],
                      "mutation_overlap": ["sifting"], "frequency": ["sifting"]}})")
      .as_object();
}

es::MonitoringContext context_1000genome_typed() { return es::context_from_json(context_1000genome()); }

/// A report in the library's JSON form, read back into the typed Report the view consumes.
es::Report report(std::string_view text) { return es::report_from_json(json::parse(text)); }

es::WatchSummary summary(std::string_view text) { return es::summary_from_json(json::parse(text)); }

} // namespace

TEST_CASE("a summary's outcome, and the exit code policy built on it", "[cli][summary]") {
  using cli::ExitCode;
  es::WatchSummary s;
  s.exit_code = 0;
  CHECK(s.outcome() == es::WatchOutcome::succeeded);
  CHECK(cli::exit_code_for(s.outcome(), false) == ExitCode::succeeded);
  s.exit_code = 1;
  CHECK(s.outcome() == es::WatchOutcome::failed);
  CHECK(cli::exit_code_for(s.outcome(), false) == ExitCode::workflow_failed);
  s.exit_code = 137;
  CHECK(cli::exit_code_for(s.outcome(), false) == ExitCode::workflow_failed);

  SECTION("mass failure fails the run even when the engine wrote 0") {
    s.exit_code = 0;
    s.mass_failure = true;
    CHECK(s.outcome() == es::WatchOutcome::failed);
  }
  SECTION("no exit code and no timeout cannot be called a success") {
    s.exit_code.reset();
    CHECK(s.outcome() == es::WatchOutcome::failed);
    CHECK(cli::exit_code_for(s.outcome(), false) == ExitCode::workflow_failed);
  }
  SECTION("timeout wins over failure, interruption over everything") {
    s.exit_code.reset();
    s.mass_failure = true;
    s.timed_out = true;
    CHECK(s.outcome() == es::WatchOutcome::timed_out);
    CHECK(cli::exit_code_for(s.outcome(), false) == ExitCode::timed_out);
    CHECK(cli::exit_code_for(s.outcome(), true) == ExitCode::interrupted);
    s.exit_code = 0;
    s.mass_failure = false;
    CHECK(s.outcome() == es::WatchOutcome::timed_out);
  }
  SECTION("the codes are distinct and documented values") {
    std::set<int> codes;
    for (auto c : {ExitCode::succeeded, ExitCode::workflow_failed, ExitCode::usage_error, ExitCode::timed_out,
                   ExitCode::cluster_unreachable, ExitCode::output_failed, ExitCode::interrupted})
      codes.insert(cli::to_int(c));
    CHECK(codes == std::set<int>{0, 1, 2, 3, 4, 5, 130});
  }
  SECTION("the NDJSON outcome word is the summary's outcome word") {
    for (auto o : {es::WatchOutcome::succeeded, es::WatchOutcome::failed, es::WatchOutcome::timed_out})
      CHECK(cli::outcome_name(cli::exit_code_for(o, false)) == es::to_string(o));
    CHECK(cli::outcome_name(ExitCode::output_failed) == "output_failed");
  }
}

TEST_CASE("errors map to exit codes", "[cli]") {
  namespace kube = execution_sentinel::kube;
  CHECK(cli::exit_code_for_error(kube::error::config_invalid) == cli::ExitCode::usage_error);
  for (auto e : {kube::error::connect_failed, kube::error::tls_verification_failed, kube::error::unauthorized,
                 kube::error::forbidden, kube::error::credentials_unavailable, kube::error::timeout}) {
    CAPTURE(static_cast<int>(e));
    CHECK(cli::exit_code_for_error(e) == cli::ExitCode::cluster_unreachable);
  }
}

TEST_CASE("NDJSON lines", "[cli]") {
  auto r = json::parse(R"({"type":"ANOMALY_OOMKILL","message":"line one\nline two \u001b[31m","details":{"exit_code":137}})");
  std::string const line = cli::ndjson_line(r);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  CHECK_FALSE(has_escape(line));
  CHECK(json::parse(line) == r);

  auto const typed = report(R"({"type":"ANOMALY_OOMKILL","severity":"error","sequence":4,"timestamp":"2026-11-23T05:36:11.123Z",
    "message":"line one\nline two","details":{"exit_code":137}})");
  std::string const report_line = cli::report_line(typed);
  CHECK(json::parse(report_line) == es::to_json(typed)); // exactly the library's form
  CHECK(report_line.find('\n') == report_line.size() - 1);

  auto const s = summary(R"({"total_tasks":3,"completed_tasks":2,"failed_tasks":1,"exit_code":1,"timed_out":false})");
  auto const record = cli::summary_record(s, cli::ExitCode::workflow_failed);
  CHECK(record.at("type") == "SUMMARY");
  CHECK(record.at("outcome") == "failed");
  CHECK(record.at("exit_status") == 1);
  CHECK(record.at("summary") == es::to_json(s));
  CHECK_FALSE(record.contains("error"));
  auto const with_error = cli::summary_record(s, cli::ExitCode::cluster_unreachable, "cannot connect");
  CHECK(with_error.at("outcome") == "cluster_unreachable");
  CHECK(with_error.at("exit_status") == 4);
  CHECK(with_error.at("error") == "cannot connect");
}

TEST_CASE("argument validation names the flag and the problem", "[cli]") {
  auto poll = cli::parse_seconds("--poll", "2.5");
  REQUIRE(poll.ok());
  CHECK(poll.value() == 2.5);
  CHECK(cli::parse_seconds("--timeout", " 60 ").ok());

  auto bad = GENERATE(as<std::string>{}, "", "abc", "0", "-1", "nan", "inf", "1e400", "5s", "99999999");
  auto const r = cli::parse_seconds("--poll", bad);
  CAPTURE(bad);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().rfind("--poll: ", 0) == 0);
  CHECK(r.error().find('\n') == std::string::npos);
  CHECK_FALSE(cli::parse_poll(bad).ok());
}

TEST_CASE("--poll has the library's lower bound", "[cli]") {
  CHECK(cli::min_poll_seconds == 0.1);
  CHECK(cli::parse_poll("0.1").ok());
  CHECK(cli::parse_poll("2.5").value() == 2.5);
  for (auto const* bad : {"1e-9", "0.05", "0.099"}) {
    CAPTURE(bad);
    auto const r = cli::parse_poll(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == std::string("--poll: must be at least 0.1 seconds, got '") + bad + "'");
  }
}

TEST_CASE("--timeout counts from the program's start", "[cli]") {
  using namespace std::chrono_literals;
  auto const started = std::chrono::steady_clock::time_point{} + 100s;
  CHECK(cli::remaining_time(10'000ms, started, started) == 10'000ms);
  CHECK(cli::remaining_time(10'000ms, started, started + 2'500ms) == 7'500ms);
  // Start-up took longer than the limit: the watch still ends at once, as timed out.
  CHECK(cli::remaining_time(2'000ms, started, started + 18s) == 1ms);
  CHECK(cli::remaining_time(2'000ms, started, started + 2'000ms) == 1ms);
}

TEST_CASE("other flags", "[cli]") {
  CHECK(cli::parse_output_mode("json").ok());
  CHECK(cli::parse_output_mode("json").value() == cli::OutputMode::json);
  CHECK(cli::parse_output_mode("auto").value() == cli::OutputMode::automatic);
  auto const bad_output = cli::parse_output_mode("yaml");
  REQUIRE_FALSE(bad_output.ok());
  CHECK(bad_output.error() == "--output: expected auto, json or text, got 'yaml'");

  CHECK(cli::parse_port("0").value() == 0);
  CHECK(cli::parse_port("6443").value() == 6443);
  CHECK_FALSE(cli::parse_port("65536").ok());
  CHECK_FALSE(cli::parse_port("-1").ok());
  CHECK_FALSE(cli::parse_port("80x").ok());

  CHECK(cli::parse_speed("2").value() == 2.0);
  CHECK_FALSE(cli::parse_speed("0").ok());
  CHECK_FALSE(cli::parse_speed("fast").ok());

  auto const hostile = cli::parse_seconds("--poll", std::string("\x1b[2J") + std::string(200, 'x'));
  REQUIRE_FALSE(hostile.ok());
  CHECK_FALSE(has_escape(hostile.error()));
  CHECK(hostile.error().size() < 150);

  CHECK(cli::use_text_output(cli::OutputMode::automatic, true));
  CHECK_FALSE(cli::use_text_output(cli::OutputMode::automatic, false));
  CHECK_FALSE(cli::use_text_output(cli::OutputMode::json, true));
  CHECK(cli::use_text_output(cli::OutputMode::text, false));
}

TEST_CASE("text helpers", "[cli]") {
  CHECK(cli::sanitize("ok\x1b[31mred\x07") == "ok?[31mred?");
  CHECK(cli::sanitize("tab\there") == "tab here");
  CHECK(cli::sanitize("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(cli::sanitize("\xc2\x9b" "2J") == "?2J");   // C1 CSI
  CHECK(cli::sanitize("bad\xff\xfe") == "bad??");
  CHECK(cli::sanitize("cut\xe2\x96") == "cut??");

  CHECK(cli::visible_width("\x1b[31mabc\x1b[0m") == 3);
  CHECK(cli::visible_width("\xe2\x96\x88\xe2\x96\x88") == 2);
  CHECK(cli::fit("abcdef", 4) == "abc~");
  CHECK(cli::fit("abc", 4) == "abc");
  std::string const colored = cli::fit("\x1b[31mabcdef\x1b[0m", 4);
  CHECK(cli::visible_width(colored) == 4);
  CHECK(only_sgr_sequences(colored));
  CHECK(colored.substr(colored.size() - 4) == "\x1b[0m");
  CHECK(cli::visible_width(cli::pad("ab", 6)) == 6);
}

TEST_CASE("the view starts from the context, phases in dag_order", "[cli]") {
  auto const state = cli::initial_view(context_1000genome_typed());
  CHECK(state.namespace_name == "wf-1000g-20260223-101500");
  CHECK(state.total_tasks == 8);
  REQUIRE(state.phases.size() == 5);
  std::vector<std::string> names;
  for (auto const& p : state.phases) names.push_back(p.task_type);
  CHECK(names == std::vector<std::string>{"individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency"});
  CHECK(state.phases[0].total == 3);
  CHECK(state.phases[4].total == 2);
  for (auto const& p : state.phases) CHECK(p.status == cli::PhaseStatus::waiting);
}

TEST_CASE("the view of a 100k-type chain is built and updated without scanning every phase", "[cli][large]") {
  es::MonitoringContext ctx;
  ctx.namespace_ = "wf-chain";
  ctx.engine_pod_name = "engine";
  constexpr int n = 100'000;
  for (int i = 0; i < n; ++i) {
    std::string const type = "step_" + std::to_string(i);
    ctx.task_inventory.push_back({type, type, i, {}, "", ""});
    ctx.dag_structure[type] = i == 0 ? std::vector<std::string>{} : std::vector<std::string>{"step_" + std::to_string(i - 1)};
  }
  ctx.dag_structure["only_in_the_dag"] = {};
  auto state = cli::initial_view(ctx);
  REQUIRE(state.phases.size() == static_cast<std::size_t>(n) + 1);
  CHECK(state.phases.front().task_type == "step_0");
  CHECK(state.phases[static_cast<std::size_t>(n) - 1].task_type == "step_99999");
  CHECK(state.phases.back().task_type == "only_in_the_dag");
  CHECK(state.phase_order.size() == state.phases.size());

  es::WorkflowState workflow(ctx);
  cli::apply_phase_counts(state, workflow); // every phase of the state, each found through the index
  CHECK(state.phases.size() == static_cast<std::size_t>(n) + 1);
  es::Report r;
  r.type = es::ReportType::PROGRESS;
  r.task_type = "step_99998";
  r.details = json::object{{"event", "phase_started"}, {"phase", "step_99998"}, {"dag_order", 99998}, {"phase_running", 1}};
  cli::apply_report(state, r);
  CHECK(state.phases[99998].status == cli::PhaseStatus::running);
  CHECK(state.phases[99998].running == 1);
  r.details = json::object{{"event", "phase_started"}, {"phase", "brand_new"}, {"dag_order", 5}};
  cli::apply_report(state, r);
  REQUIRE(state.phases.size() == static_cast<std::size_t>(n) + 2);
  CHECK(state.phases[5].task_type == "brand_new"); // with step_5 in dag_order, before it by name
  CHECK(state.phases[5].status == cli::PhaseStatus::running);
  CHECK(state.phases[6].task_type == "step_5");
  auto const lines = split_lines(cli::render_live(state, {80, 24, false, false}));
  CHECK(lines.size() <= 23);
}

TEST_CASE("reports update the view", "[cli]") {
  auto state = cli::initial_view(context_1000genome_typed());
  cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","task_type":"individuals","completed_tasks":0,
    "total_tasks":8,"message":"The individuals phase started.","details":{"event":"phase_started","phase":"individuals"}})"));
  CHECK(state.phases[0].status == cli::PhaseStatus::running);
  cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","task_type":"","completed_tasks":2,
    "total_tasks":8,"message":"2 of 8 tasks completed.","details":{"event":"count","running":3,"failed":1,"pending":2}})"));
  CHECK(state.completed_tasks == 2);
  CHECK(state.failed_tasks == 1);
  cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","task_type":"sifting","completed_tasks":3,
    "total_tasks":8,"message":"The sifting phase completed.","details":{"event":"phase_completed","phase":"sifting"}})"));
  CHECK(state.phases[2].status == cli::PhaseStatus::done);
  CHECK(state.phases[2].completed == state.phases[2].total);
  cli::apply_report(state, report(R"({"type":"ANOMALY_OOMKILL","severity":"error","task_name":"individuals","task_type":"individuals",
    "completed_tasks":3,"total_tasks":8,"message":"A task ran out of memory.","details":{}})"));
  CHECK(state.anomalies == 1);
  cli::apply_report(state, report(R"({"type":"CONNECTIVITY_LOSS","severity":"warning","completed_tasks":3,"message":"Lost contact."})"));
  CHECK(state.connection_lost);
  cli::apply_report(state, report(R"({"type":"CONNECTIVITY_RESTORED","severity":"info","completed_tasks":3,"message":"Contact restored."})"));
  CHECK_FALSE(state.connection_lost);
  cli::apply_report(state, report(R"({"type":"COMPLETION","severity":"info","completed_tasks":8,"total_tasks":8,"message":"Done.",
    "details":{"exit_code":0,"failed_tasks":0}})"));
  CHECK(state.finished);
  CHECK(state.completed_tasks == 8);
  CHECK(state.failed_tasks == 0);
  CHECK(state.reports_by_type.at("PROGRESS") == 3);
  CHECK(state.reports_by_type.at("COMPLETION") == 1);

  SECTION("a phase the context does not list appears") {
    cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","task_type":"custom","details":{"event":"phase_started","phase":"custom","phase_total":2,"phase_running":1}})"));
    bool found = false;
    for (auto const& p : state.phases)
      if (p.task_type == "custom") {
        found = true;
        CHECK(p.total == 2);
        CHECK(p.running == 1);
        CHECK(p.status == cli::PhaseStatus::running);
      }
    CHECK(found);
  }
  SECTION("mistyped details are ignored, not fatal") {
    auto before = state.failed_tasks;
    cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","completed_tasks":8,
      "details":{"event":"count","failed":"many","phase":42}})"));
    CHECK(state.failed_tasks == before);
  }
}

TEST_CASE("the live block fits the width and contains no stray escapes", "[cli]") {
  auto state = cli::initial_view(context_1000genome_typed());
  state.engine = "hyperflow-engine-with-a-very-long-name-that-does-not-fit-anywhere-0123456789";
  cli::apply_report(state, report(R"({"type":"PROGRESS","severity":"info","task_type":"individuals","completed_tasks":1,"total_tasks":8,
    "message":"m\u001b[2J","details":{"event":"phase_started","phase":"individuals","phase_total":3,"phase_running":2,
    "phase_succeeded":1,"phase_failed":0}})"));
  state.elapsed_seconds = 3725;
  auto const width = GENERATE(as<std::size_t>{}, 10, 20, 40, 80, 200);
  auto const color = GENERATE(false, true);
  auto const unicode = GENERATE(false, true);
  CAPTURE(width, color, unicode);
  cli::RenderOptions const options{width, 24, color, unicode};
  std::string const out = cli::render_live(state, options);
  REQUIRE(!out.empty());
  CHECK(out.back() == '\n');
  auto const lines = split_lines(out);
  CHECK(lines.size() == state.phases.size() + 2);
  for (auto const& l : lines) {
    CAPTURE(l);
    CHECK(cli::visible_width(l) <= std::max<std::size_t>(width, 10));
  }
  CHECK_FALSE(has_control_bytes(out));
  if (color) CHECK(only_sgr_sequences(out));
  else CHECK_FALSE(has_escape(out));
  if (width >= 80) {
    CHECK(out.find("individuals") != std::string::npos);
    CHECK(out.find("1/3") != std::string::npos);
    CHECK(out.find("2 running") != std::string::npos);
    CHECK(out.find("1/8 tasks completed") != std::string::npos);
    CHECK(out.find("1:02:05") != std::string::npos);
  }
}

TEST_CASE("the live block respects the height", "[cli]") {
  es::MonitoringContext ctx;
  ctx.namespace_ = "ns";
  for (int i = 0; i < 30; ++i) ctx.task_inventory.push_back({"t", "type" + std::to_string(i), i, {}, "", ""});
  auto const state = cli::initial_view(ctx);
  auto const lines = split_lines(cli::render_live(state, {80, 10, false, false}));
  CHECK(lines.size() <= 9);
  CHECK(lines[lines.size() - 2].find("more phases") != std::string::npos);
}

TEST_CASE("progress bars show the fraction done", "[cli]") {
  auto state = cli::initial_view(context_1000genome_typed());
  state.phases[4].completed = 1; // frequency: 1 of 2
  state.phases[4].status = cli::PhaseStatus::running;
  state.phases[0].completed = 3; // individuals: 3 of 3
  state.phases[0].status = cli::PhaseStatus::done;
  auto const lines = split_lines(cli::render_live(state, {80, 24, false, false}));
  auto count = [](const std::string& s, char c) { return std::count(s.begin(), s.end(), c); };
  std::string const individuals = lines[1];
  std::string const frequency = lines[5];
  CHECK(individuals.find("done") != std::string::npos);
  CHECK(count(individuals, '-') == 0);
  CHECK(count(frequency, '#') > 0);
  CHECK(count(frequency, '#') == count(frequency, '-'));
}

TEST_CASE("report lines", "[cli]") {
  auto const r = report(R"({"type":"ANOMALY_OOMKILL","severity":"error","timestamp":"2026-11-23T05:36:11.123Z",
    "task_name":"individuals","task_type":"individuals","message":"Task individuals ran out of memory\u001b]0;pwned\u0007.",
    "details":{}})");
  CHECK(cli::is_notable(r));
  for (std::size_t width : {12u, 40u, 120u}) {
    for (bool color : {false, true}) {
      std::string const line = cli::render_report_line(r, {width, 24, color, false});
      CAPTURE(width, color, line);
      CHECK(line.back() == '\n');
      for (auto const& l : split_lines(line)) CHECK(cli::visible_width(l) <= width);
      if (width == 12) CHECK(split_lines(line).size() == 1); // too narrow to wrap: cut
      CHECK_FALSE(has_control_bytes(line));
      if (color) CHECK(only_sgr_sequences(line));
      else CHECK_FALSE(has_escape(line));
      if (width == 120) {
        CHECK(line.find("05:36:11") != std::string::npos);
        CHECK(line.find("OOM kill") != std::string::npos);
        CHECK(line.find("ran out of memory") != std::string::npos);
      }
    }
  }
  CHECK(cli::render_report_line(r, {120, 24, true, false}).find("\x1b[31m") != std::string::npos);
  SECTION("long messages wrap under themselves, nothing lost") {
    auto const long_report = report(R"({"type":"ANOMALY_OOMKILL","severity":"warning","timestamp":"2026-11-23T05:36:11Z",
      "message":"Tasks frequency-12, frequency-14, frequency-16, frequency-18 and frequency-20 are still running and may hit the same memory limit."})");
    std::string const text = cli::render_report_line(long_report, {50, 24, false, false});
    auto const lines = split_lines(text);
    CHECK(lines.size() > 1);
    for (auto const& l : lines) CHECK(cli::visible_width(l) <= 50);
    for (auto const* word : {"frequency-12,", "frequency-20", "memory", "limit."}) {
      CAPTURE(word);
      CHECK(text.find(word) != std::string::npos);
    }
    for (std::size_t i = 1; i < lines.size(); ++i) CHECK(lines[i].rfind(std::string(23, ' '), 0) == 0);
  }
  CHECK_FALSE(cli::is_notable(report(R"({"type":"PROGRESS","severity":"info","task_type":"","completed_tasks":3,"details":{}})")));
  CHECK_FALSE(cli::is_notable(report(R"({"type":"PROGRESS","severity":"info","task_type":"","details":{"event":"count","running":2}})")));
  CHECK(cli::is_notable(report(R"({"type":"PROGRESS","severity":"info","task_type":"sifting","details":{}})")));
  CHECK(cli::is_notable(report(R"({"type":"PROGRESS","severity":"info","task_type":"","details":{"event":"phase_completed","phase":""}})")));
  CHECK(cli::is_notable(report(R"({"type":"CONNECTIVITY_RESTORED","severity":"info","details":{}})")));
  for (auto type : es::all_report_types) {
    CAPTURE(es::to_string(type));
    CHECK(cli::report_label(type).size() <= 12); // fits the label column
    CHECK(cli::report_label(type) != "report");  // every type has its own label
  }
  auto const restored = report(R"({"type":"CONNECTIVITY_RESTORED","severity":"info","message":"Back."})");
  CHECK(cli::render_report_line(restored, {80, 24, true, false}).find("\x1b[32m") != std::string::npos);
  auto const loss = report(R"({"type":"CONNECTIVITY_LOSS","severity":"warning","message":"Lost."})");
  CHECK(cli::render_report_line(loss, {80, 24, true, false}).find("\x1b[33m") != std::string::npos);
}

TEST_CASE("a failure's evidence: the last log lines under its message, sanitised and cut", "[cli][evidence]") {
  std::string tail;
  for (int i = 1; i <= 12; ++i) tail += std::string(i == 1 ? "" : ",") + "\"line " + std::to_string(i) + "\"";
  auto const r = report(R"({"type":"ANOMALY_TASK_FAILED","severity":"error","timestamp":"2026-11-23T05:36:11Z",
    "task_name":"frequency-3","message":"Task frequency-3 failed with exit code 1.",
    "details":{"evidence":{"exit_code":1,"log_tail":[)" + tail + R"(,"Traceback \u001b[2J: a very long line that goes on and on past the width of a narrow terminal"]}}})");
  for (bool color : {false, true}) {
    std::string const text = cli::render_report_line(r, {80, 24, color, false});
    CAPTURE(color, text);
    auto const lines = split_lines(text);
    REQUIRE(lines.size() == 1 + 1 + 8); // message, "... 5 earlier log lines", the last 8 lines
    CHECK(lines[1].find("5 earlier log lines") != std::string::npos);
    CHECK(lines[2].find("| ") != std::string::npos);
    CHECK(lines[2].find("line 6") != std::string::npos);
    CHECK(lines[8].find("line 12") != std::string::npos);
    CHECK(lines[9].find("Traceback ?[2J") != std::string::npos);
    for (auto const& l : lines) {
      CHECK(cli::visible_width(l) <= 80);
      CHECK(l.rfind(std::string(23, ' '), 0) == (l == lines[0] ? std::string::npos : 0)); // under the message
    }
    CHECK_FALSE(has_control_bytes(text));
    if (color) CHECK(only_sgr_sequences(text));
    else CHECK_FALSE(has_escape(text));
  }
  auto const gone = report(R"({"type":"ANOMALY_TASK_FAILED","severity":"error","message":"Task x failed.",
    "details":{"evidence":{"log_tail_unavailable":"the pod or its log is gone"}}})");
  auto const gone_lines = split_lines(cli::render_report_line(gone, {80, 24, false, true}));
  REQUIRE(gone_lines.size() == 2);
  CHECK(gone_lines[1].find("\u2502 no log: the pod or its log is gone") != std::string::npos);
  auto const plain = report(R"({"type":"ANOMALY_OOMKILL","severity":"error","message":"Out of memory.","details":{}})");
  CHECK(split_lines(cli::render_report_line(plain, {80, 24, false, false})).size() == 1);
}

TEST_CASE("final summary", "[cli]") {
  auto const s = summary(R"({"total_tasks":80,"completed_tasks":79,"failed_tasks":1,"exit_code":1,
    "timed_out":false,"mass_failure":false,"duration_seconds":61.7,"oom_killed":["individuals-7"],
    "stragglers":["frequency-3","frequency-9"],"reports":{"PROGRESS":12,"ANOMALY_OOMKILL":1,"COMPLETION":1}})");
  for (std::size_t width : {20u, 50u, 100u}) {
    std::string const out = cli::render_summary(s, cli::ExitCode::workflow_failed, {width, 24, false, false});
    CAPTURE(width, out);
    CHECK_FALSE(has_escape(out));
    for (auto const& l : split_lines(out)) CHECK(cli::visible_width(l) <= width);
  }
  std::string const wide = cli::render_summary(s, cli::ExitCode::workflow_failed, {200, 24, false, false});
  CHECK(wide.find("Workflow failed") != std::string::npos);
  CHECK(wide.find("79/80 tasks completed") != std::string::npos);
  CHECK(wide.find("workflow exit code 1") != std::string::npos);
  CHECK(wide.find("individuals-7") != std::string::npos);
  CHECK(wide.find("frequency-3, frequency-9") != std::string::npos);
  CHECK(wide.find("1 ANOMALY_OOMKILL") != std::string::npos);
  CHECK(wide.find("01:01") != std::string::npos);

  auto const timeout = summary(R"({"total_tasks":2,"completed_tasks":0,"timed_out":true,"exit_code":null})");
  std::string const t = cli::render_summary(timeout, cli::ExitCode::timed_out, {80, 24, true, false});
  CHECK(t.find("Timed out") != std::string::npos);
  CHECK(t.find("exit code") == std::string::npos);
  CHECK(only_sgr_sequences(t));
  std::string const e = cli::render_summary(timeout, cli::ExitCode::cluster_unreachable, {80, 24, false, false},
                                            "cannot connect\x1b[2J");
  CHECK(e.find("Cluster unreachable") != std::string::npos);
  CHECK(e.find("cannot connect") != std::string::npos);
  CHECK_FALSE(has_escape(e));
  es::WatchSummary hostile;
  hostile.oom_killed = {"evil\x1b]0;title\x07"};
  CHECK_FALSE(has_escape(cli::render_summary(hostile, cli::ExitCode::workflow_failed, {80, 24, false, false})));
}

TEST_CASE("terminal capabilities from the environment", "[cli]") {
  using std::nullopt;
  CHECK(cli::color_enabled(nullopt, "xterm-256color"));
  CHECK_FALSE(cli::color_enabled("1", "xterm-256color"));
  CHECK(cli::color_enabled("", "xterm"));  // NO_COLOR set but empty does not disable colours
  CHECK_FALSE(cli::color_enabled(nullopt, "dumb"));
  CHECK(cli::redraw_enabled("screen"));
  CHECK_FALSE(cli::redraw_enabled("dumb"));
  CHECK_FALSE(cli::redraw_enabled(nullopt));
  CHECK(cli::unicode_enabled(nullopt, nullopt, "en_US.UTF-8"));
  CHECK(cli::unicode_enabled(nullopt, "C.utf8", "C"));
  CHECK_FALSE(cli::unicode_enabled("C", nullopt, "en_US.UTF-8"));  // LC_ALL wins
  CHECK_FALSE(cli::unicode_enabled(nullopt, nullopt, nullopt));
  CHECK(cli::choose_width(132, "40") == 132);
  CHECK(cli::choose_width(0, "40") == 40);
  CHECK(cli::choose_width(0, "abc") == 80);
  CHECK(cli::choose_width(0, nullopt) == 80);
  CHECK(cli::choose_width(3, nullopt) == 20);
  CHECK(cli::choose_width(0, "99999999") == 80);
}

TEST_CASE("per-phase counts from the workflow state feed the bars", "[cli]") {
  es::WorkflowState state(context_1000genome_typed());
  auto view = cli::initial_view(context_1000genome_typed());
  cli::apply_phase_counts(view, state);
  CHECK(view.phases[0].task_type == "individuals");
  CHECK(view.phases[0].total == 3);
  CHECK(view.phases[0].completed == 0);
  CHECK(view.phases[0].status == cli::PhaseStatus::waiting);

  auto const pod = kube::parse_pod(json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "jobczr2t-individuals-1-1-2wzwh", "namespace": "wf-1000g-20260223-101500", "uid": "u1",
                 "resourceVersion": "10", "labels": {"app": "hyperflow", "job-name": "jobczr2t-individuals-1-1"}},
    "status": {"phase": "Succeeded", "startTime": "2026-02-23T10:15:00Z",
               "containerStatuses": [{"name": "test", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                   "startedAt": "2026-02-23T10:15:01Z", "finishedAt": "2026-02-23T10:15:31Z"}}}]}})").as_object());
  (void)state.apply_pod(pod, es::ChangeKind::added, es::Clock::now());
  cli::apply_phase_counts(view, state);
  CHECK(view.phases[0].completed == 1);
  CHECK(view.phases[0].total == 3);
  CHECK(view.phases[0].status == cli::PhaseStatus::running);
  CHECK(cli::render_live(view, {80, 24, false, false}).find("1/3") != std::string::npos);
}

TEST_CASE("the live block from the sentinel's snapshot: bars, counts, health, ETA, longest-running task",
          "[cli][view]") {
  auto view = cli::initial_view(context_1000genome_typed());
  es::MonitorView mv;
  mv.total = 8;
  mv.completed = 3;
  mv.failed = 1;
  mv.running = 2;
  mv.phases.push_back({"individuals", 0, 3, 0, 0, 3, 0, true, true});
  mv.phases.push_back({"frequency", 4, 2, 0, 1, 0, 1, true, false});
  mv.phases.push_back({"late_type", 7, 1, 1, 0, 0, 0, false, false}); // not in the context: added in order
  mv.running_tasks.push_back({"frequency-3\x1b[2J", "frequency", 125, 1, 60.0, "sibling_median"});
  mv.eta_seconds = 100;
  mv.eta_basis = "sibling_median";
  mv.health = 0.75;
  mv.anomaly_counts[es::ReportType::ANOMALY_TASK_FAILED] = 1;
  mv.anomaly_counts[es::ReportType::ANOMALY_MEMORY_PRESSURE] = 1;
  cli::apply_monitor_view(view, mv);
  CHECK(view.completed_tasks == 3);
  CHECK(view.failed_tasks == 1);
  CHECK(view.anomalies == 2);
  auto const* individuals = &view.phases[0];
  CHECK(individuals->task_type == "individuals");
  CHECK(individuals->status == cli::PhaseStatus::done);
  CHECK(individuals->completed == 3);
  bool found_late = false, found_frequency = false;
  for (auto const& p : view.phases) {
    if (p.task_type == "late_type") found_late = p.status == cli::PhaseStatus::waiting && p.total == 1;
    if (p.task_type == "frequency") found_frequency = p.status == cli::PhaseStatus::running && p.failed == 1 && p.running == 1;
  }
  CHECK(found_late);
  CHECK(found_frequency);

  std::string const live = cli::render_live(view, {100, 24, false, false});
  CAPTURE(live);
  CHECK(live.find("3/8 tasks completed, 1 failed, 2 anomalies, health 75%, ETA 01:40") != std::string::npos);
  CHECK(live.find("longest running: frequency-3?[2J 02:05 (typically 01:00)") != std::string::npos);
  CHECK_FALSE(has_escape(live));
  for (std::size_t height : {5u, 8u, 24u}) {
    auto const lines = split_lines(cli::render_live(view, {100, height, false, false}));
    CAPTURE(height);
    CHECK(lines.size() <= height - 1);
  }

  mv.finished = true;
  mv.running_tasks.clear();
  cli::apply_monitor_view(view, mv);
  std::string const done = cli::render_live(view, {100, 24, false, false});
  CHECK(done.find("ETA") == std::string::npos);
  CHECK(done.find("longest running") == std::string::npos);
  CHECK(done.find("[finished]") != std::string::npos);
}

// ------------------------------------------------------------------------------------------ with the real detectors
// The view fed with the reports the library's own detectors produce for a run (not hand-written JSON), so that
// the view and the library cannot drift apart.
namespace {

es::Timestamp at(double seconds) {
  return es::Timestamp{} + std::chrono::hours(490'000) +
         std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

struct TaskObjects {
  kube::Job job;
  kube::Pod pod;
};

TaskObjects task(const std::string& type, int proc) {
  TaskObjects t;
  std::string const rand = "q" + std::to_string(proc) + "x";
  t.job.meta.name = "job" + rand + "-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
  t.job.meta.uid = "uid-" + t.job.meta.name;
  t.job.meta.labels.items = {{"app", "hyperflow"}};
  t.pod.meta.name = t.job.meta.name + "-ab" + std::to_string(proc % 10) + "cd";
  t.pod.meta.uid = "uid-" + t.pod.meta.name;
  t.pod.meta.labels.items = {{"app", "hyperflow"}, {"job-name", t.job.meta.name}};
  t.pod.meta.owner = kube::OwnerRef{"Job", t.job.meta.name, t.job.meta.uid};
  kube::ContainerStatus c;
  c.name = "test";
  t.pod.containers.push_back(c);
  return t;
}

void run_task(es::DefaultMonitor& m, TaskObjects& t, double when) {
  t.job.active = 1;
  t.job.start_time = at(when);
  t.pod.phase = kube::PodPhase::running;
  t.pod.start_time = at(when);
  t.pod.containers[0].state = {kube::ContainerState::Kind::running, "", "", 0, 0, at(when), {}};
  m.on_job(t.job, es::ChangeKind::added, at(when));
  m.on_pod(t.pod, es::ChangeKind::added, at(when));
}

void end_task(es::DefaultMonitor& m, TaskObjects& t, double when, bool oom = false) {
  auto const started = t.pod.containers[0].state.started_at;
  t.job.active = 0;
  if (oom) {
    t.pod.phase = kube::PodPhase::failed;
    t.pod.containers[0].state = {kube::ContainerState::Kind::terminated, "OOMKilled", "", 137, 0, started, at(when)};
  } else {
    t.job.succeeded = 1;
    t.job.completion_time = at(when);
    t.job.conditions = {{kube::JobCondition::Type::complete, true, "", ""}};
    t.pod.phase = kube::PodPhase::succeeded;
    t.pod.containers[0].state = {kube::ContainerState::Kind::terminated, "Completed", "", 0, 0, started, at(when)};
  }
  m.on_pod(t.pod, es::ChangeKind::modified, at(when));
  m.on_job(t.job, es::ChangeKind::modified, at(when));
}

} // namespace

TEST_CASE("the view follows the reports of the real detectors through a whole run", "[cli][detectors]") {
  auto const ctx = context_1000genome_typed();
  es::DefaultMonitor monitor(ctx, es::SentinelSettings{});
  auto view = cli::initial_view(ctx);
  std::vector<es::Report> all;
  std::string lines;
  auto feed = [&] {
    for (auto& r : monitor.take_reports()) {
      cli::apply_report(view, r);
      cli::apply_monitor_view(view, monitor.view(r.timestamp)); // as the command does with Sentinel::view()
      if (cli::is_notable(r)) lines += cli::render_report_line(r, {120, 24, false, false});
      // The NDJSON line is the library's own form of the same report.
      CHECK(json::parse(cli::report_line(r)) == es::to_json(r));
      all.push_back(std::move(r));
    }
  };
  monitor.on_api_call(true, "list pods", at(0));
  std::vector<TaskObjects> individuals{task("individuals", 1), task("individuals", 2), task("individuals", 3)};
  for (auto& t : individuals) run_task(monitor, t, 1);
  feed();
  CHECK(view.phases[0].task_type == "individuals");
  CHECK(view.phases[0].status == cli::PhaseStatus::running);
  CHECK(view.phases[0].running == 3);
  CHECK(lines.find("The individuals phase has started") != std::string::npos);

  for (auto& t : individuals) end_task(monitor, t, 20);
  feed();
  CHECK(view.phases[0].status == cli::PhaseStatus::done);
  CHECK(view.phases[0].completed == 3);
  CHECK(view.completed_tasks == 3);
  CHECK(view.total_tasks == 8);

  auto frequency = task("frequency", 7);
  run_task(monitor, frequency, 25);
  end_task(monitor, frequency, 30, /*oom*/ true);
  feed();
  CHECK(view.anomalies >= 1);
  CHECK(view.reports_by_type.count("ANOMALY_OOMKILL") == 1);
  CHECK(lines.find("OOM kill") != std::string::npos);

  for (int i = 0; i < 3; ++i) monitor.on_api_call(false, "watch pods", at(40 + i));
  feed();
  CHECK(view.connection_lost);
  monitor.on_api_call(true, "watch pods", at(50));
  feed();
  CHECK_FALSE(view.connection_lost);

  monitor.on_completion_probe({true, "1\n", ""}, at(60));
  feed();
  CHECK(view.finished);
  REQUIRE_FALSE(all.empty());
  CHECK(all.back().type == es::ReportType::COMPLETION);

  // The view counted exactly the reports the summary counts, type by type.
  auto const summary = monitor.summary(at(61));
  std::map<std::string, std::size_t> expected;
  for (auto const& [type, n] : summary.reports) expected[std::string(es::to_string(type))] = static_cast<std::size_t>(n);
  CHECK(view.reports_by_type == expected);
  CHECK(view.completed_tasks == static_cast<std::size_t>(all.back().completed_tasks));
  CHECK(summary.outcome() == es::WatchOutcome::failed);
  auto const code = cli::exit_code_for(summary.outcome(), false);
  CHECK(code == cli::ExitCode::workflow_failed);
  std::string const text = cli::render_summary(summary, code, {120, 24, false, false});
  CHECK(text.find("Workflow failed") != std::string::npos);
  CHECK(text.find("workflow exit code 1") != std::string::npos);
  CHECK(text.find("Out of memory: frequency") != std::string::npos);
  std::string const live = cli::render_live(view, {120, 24, false, false});
  CHECK(live.find("[finished]") != std::string::npos);
  CHECK_FALSE(has_escape(lines + text + live));
}

// ------------------------------------------------------------------------------------------ a closed or full output
TEST_CASE("a closed or full output is reported once, and nothing more is written", "[cli][output]") {
  auto const previous = std::signal(SIGPIPE, SIG_IGN); // as the program does: EPIPE instead of a signal
  es::Report r;
  r.type = es::ReportType::PROGRESS;
  r.message = "1 of 8 tasks has completed.";

  SECTION("the reader is gone (| head -c 10)") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    CHECK_FALSE(cli::output_gone(fds[1]));
    cli::NdjsonSink sink(fds[1]);
    std::vector<int> failures;
    sink.on_failure([&](int e) { failures.push_back(e); });
    sink.report(r);
    CHECK(sink.failure() == 0);
    ::close(fds[0]);
    CHECK(cli::output_gone(fds[1])); // noticed before any write fails
    sink.report(r);
    sink.report(r);
    sink.finish(es::WatchSummary{}, cli::ExitCode::succeeded, {});
    CHECK(failures == std::vector<int>{EPIPE});
    CHECK(sink.failure() == EPIPE);
    int late = 0; // a handler set after the failure hears of it at once
    sink.on_failure([&](int e) { late = e; });
    CHECK(late == EPIPE);
    ::close(fds[1]);
  }
  SECTION("the disk is full (> /dev/full)") {
    int const fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK_FALSE(cli::output_gone(fd));
    auto view = cli::initial_view(context_1000genome_typed());
    cli::TextSink sink(fd, view, cli::TerminalInfo{});
    int calls = 0;
    sink.on_failure([&](int) { ++calls; });
    sink.report(r);
    sink.tick(1);
    sink.finish(es::WatchSummary{}, cli::ExitCode::succeeded, {});
    CHECK(calls == 1);
    CHECK(sink.failure() == ENOSPC);
    CHECK(cli::output_error_message(ENOSPC) == "cannot write to standard output: No space left on device");
    ::close(fd);
  }
  SECTION("a regular file is never 'gone'") {
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    CHECK_FALSE(cli::output_gone(::fileno(f)));
    std::fclose(f);
  }
  std::signal(SIGPIPE, previous);
}

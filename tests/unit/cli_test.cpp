// The pure logic of the execution-sentinel command: exit-code policy, NDJSON lines, argument validation and
// the terminal view renderer.
#include "../../tools/execution-sentinel/arguments.hpp"
#include "../../tools/execution-sentinel/exit_codes.hpp"
#include "../../tools/execution-sentinel/ndjson.hpp"
#include "../../tools/execution-sentinel/phase_counts.hpp"
#include "../../tools/execution-sentinel/terminal.hpp"
#include "../../tools/execution-sentinel/view.hpp"

#include "catch.hpp"

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json.hpp>

#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace cli = execution_sentinel::cli;
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

json::object report(std::string_view text) { return json::parse(text).as_object(); }

} // namespace

TEST_CASE("exit code policy", "[cli]") {
  using cli::ExitCode;
  cli::WatchOutcome o;
  o.exit_code = 0;
  CHECK(cli::exit_code_for(o) == ExitCode::succeeded);
  o.exit_code = 1;
  CHECK(cli::exit_code_for(o) == ExitCode::workflow_failed);
  o.exit_code = 137;
  CHECK(cli::exit_code_for(o) == ExitCode::workflow_failed);

  SECTION("mass failure fails the run even when the engine wrote 0") {
    o.exit_code = 0;
    o.mass_failure = true;
    CHECK(cli::exit_code_for(o) == ExitCode::workflow_failed);
  }
  SECTION("no exit code and no timeout cannot be called a success") {
    o.exit_code.reset();
    CHECK(cli::exit_code_for(o) == ExitCode::workflow_failed);
  }
  SECTION("timeout wins over failure, interruption over everything") {
    o.exit_code.reset();
    o.mass_failure = true;
    o.timed_out = true;
    CHECK(cli::exit_code_for(o) == ExitCode::timed_out);
    o.interrupted = true;
    CHECK(cli::exit_code_for(o) == ExitCode::interrupted);
  }
  SECTION("the codes are distinct and documented values") {
    std::set<int> codes;
    for (auto c : {ExitCode::succeeded, ExitCode::workflow_failed, ExitCode::usage_error, ExitCode::timed_out,
                   ExitCode::cluster_unreachable, ExitCode::interrupted})
      codes.insert(cli::to_int(c));
    CHECK(codes == std::set<int>{0, 1, 2, 3, 4, 130});
  }
}

TEST_CASE("outcome from a summary in JSON form", "[cli]") {
  auto ok = json::parse(R"({"total_tasks":8,"completed_tasks":8,"exit_code":0,"timed_out":false,"mass_failure":false})");
  CHECK(cli::exit_code_for(cli::outcome_from_summary(ok.as_object(), false)) == cli::ExitCode::succeeded);
  CHECK(cli::exit_code_for(cli::outcome_from_summary(ok.as_object(), true)) == cli::ExitCode::interrupted);
  auto timeout = json::parse(R"({"exit_code":null,"timed_out":true,"mass_failure":false})");
  auto const o = cli::outcome_from_summary(timeout.as_object(), false);
  CHECK_FALSE(o.exit_code.has_value());
  CHECK(cli::exit_code_for(o) == cli::ExitCode::timed_out);
  auto failed = json::parse(R"({"exit_code":2})");
  CHECK(cli::exit_code_for(cli::outcome_from_summary(failed.as_object(), false)) == cli::ExitCode::workflow_failed);
  auto mistyped = json::parse(R"({"exit_code":"0","timed_out":"yes"})");
  auto const m = cli::outcome_from_summary(mistyped.as_object(), false);
  CHECK_FALSE(m.exit_code.has_value());
  CHECK_FALSE(m.timed_out);
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

TEST_CASE("which first-request failures end the run at once", "[cli]") {
  namespace kube = execution_sentinel::kube;
  for (auto e : {kube::error::connect_failed, kube::error::timeout, kube::error::tls_verification_failed,
                 kube::error::tls_handshake_failed, kube::error::unauthorized, kube::error::forbidden,
                 kube::error::credentials_unavailable}) {
    CAPTURE(static_cast<int>(e));
    CHECK(cli::stops_at_start(e));
    CHECK(cli::exit_code_for_error(e) == cli::ExitCode::cluster_unreachable);
  }
  for (auto e : {kube::error::too_many_requests, kube::error::server_error, kube::error::connection_lost,
                 kube::error::malformed_response, kube::error::not_found}) {
    CAPTURE(static_cast<int>(e));
    CHECK_FALSE(cli::stops_at_start(e));
  }
  CHECK_FALSE(cli::stops_at_start(std::make_error_code(std::errc::operation_canceled)));
}

TEST_CASE("NDJSON lines", "[cli]") {
  auto r = json::parse(R"({"type":"ANOMALY_OOMKILL","message":"line one\nline two \u001b[31m","details":{"exit_code":137}})");
  std::string const line = cli::ndjson_line(r);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  CHECK_FALSE(has_escape(line));
  CHECK(json::parse(line) == r);

  auto summary = json::parse(R"({"total_tasks":3,"completed_tasks":2,"failed_tasks":1,"exit_code":1,"timed_out":false})");
  auto const record = cli::summary_record(summary, cli::ExitCode::workflow_failed);
  CHECK(record.at("type") == "SUMMARY");
  CHECK(record.at("outcome") == "failed");
  CHECK(record.at("exit_status") == 1);
  CHECK(record.at("summary") == summary);
  CHECK_FALSE(record.contains("error"));
  auto const with_error = cli::summary_record(summary, cli::ExitCode::cluster_unreachable, "cannot connect");
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
  auto const state = cli::initial_view(context_1000genome());
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

TEST_CASE("reports update the view", "[cli]") {
  auto state = cli::initial_view(context_1000genome());
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
  cli::apply_report(state, report(R"({"type":"CONNECTIVITY_LOSS","severity":"error","message":"Lost contact."})"));
  CHECK(state.connection_lost);
  cli::apply_report(state, report(R"({"type":"CONNECTIVITY_RESTORED","severity":"info","message":"Contact restored."})"));
  CHECK_FALSE(state.connection_lost);
  cli::apply_phase_counts(state, json::parse(R"({"frequency":{"completed":1,"total":2,"running":1}})").as_object());
  CHECK(state.phases[4].completed == 1);
  CHECK(state.phases[4].running == 1);
  CHECK(state.phases[4].status == cli::PhaseStatus::running);
  cli::apply_report(state, report(R"({"type":"COMPLETION","severity":"info","completed_tasks":8,"total_tasks":8,"message":"Done."})"));
  CHECK(state.finished);
  CHECK(state.completed_tasks == 8);
  CHECK(state.reports_by_type.at("PROGRESS") == 3);
  CHECK(state.reports_by_type.at("COMPLETION") == 1);

  SECTION("a phase the context does not list appears") {
    cli::apply_report(state, report(R"({"type":"PROGRESS","task_type":"custom","details":{"event":"phase_started","phase":"custom","phase_total":2,"phase_running":1}})"));
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
  SECTION("garbage fields are ignored, not fatal") {
    auto before = state.completed_tasks;
    cli::apply_report(state, report(R"({"type":42,"completed_tasks":"many","total_tasks":-3,"details":[1,2]})"));
    CHECK(state.completed_tasks == before);
  }
}

TEST_CASE("the live block fits the width and contains no stray escapes", "[cli]") {
  auto state = cli::initial_view(context_1000genome());
  state.engine = "hyperflow-engine-with-a-very-long-name-that-does-not-fit-anywhere-0123456789";
  cli::apply_report(state, report(R"({"type":"PROGRESS","task_type":"individuals","completed_tasks":1,"total_tasks":8,
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
  json::object ctx;
  ctx["namespace"] = "ns";
  json::array inv;
  for (int i = 0; i < 30; ++i) inv.push_back(json::object{{"name", "t"}, {"task_type", "type" + std::to_string(i)}, {"dag_order", i}});
  ctx["task_inventory"] = inv;
  auto const state = cli::initial_view(ctx);
  auto const lines = split_lines(cli::render_live(state, {80, 10, false, false}));
  CHECK(lines.size() <= 9);
  CHECK(lines[lines.size() - 2].find("more phases") != std::string::npos);
}

TEST_CASE("progress bars show the fraction done", "[cli]") {
  auto state = cli::initial_view(context_1000genome());
  cli::apply_phase_counts(state, json::parse(R"({"frequency":{"completed":1,"total":2},
    "individuals":{"completed":3,"total":3}})").as_object());
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
  CHECK_FALSE(cli::is_notable(report(R"({"type":"PROGRESS","task_type":"","completed_tasks":3,"details":{}})")));
  CHECK_FALSE(cli::is_notable(report(R"({"type":"PROGRESS","task_type":"","details":{"event":"count","running":2}})")));
  CHECK(cli::is_notable(report(R"({"type":"PROGRESS","task_type":"sifting","details":{}})")));
  CHECK(cli::is_notable(report(R"({"type":"PROGRESS","task_type":"","details":{"event":"phase_completed","phase":""}})")));
  CHECK(cli::is_notable(report(R"({"type":"CONNECTIVITY_RESTORED","details":{}})")));
  CHECK(cli::report_label("SOMETHING_NEW") == "something new");
  for (auto const* type : {"PROGRESS", "ANOMALY_OOMKILL", "ANOMALY_STRAGGLER", "MASS_FAILURE", "CONNECTIVITY_LOSS",
                           "COMPLETION", "CONNECTIVITY_RESTORED", "TIMEOUT", "COMPLETION_SIGNAL_INVALID", "ANOMALY_STALL"}) {
    CAPTURE(type);
    CHECK(cli::report_label(type).size() <= 12); // fits the label column
  }
  auto const restored = report(R"({"type":"CONNECTIVITY_RESTORED","severity":"info","message":"Back."})");
  CHECK(cli::render_report_line(restored, {80, 24, true, false}).find("\x1b[32m") != std::string::npos);
}

TEST_CASE("final summary", "[cli]") {
  auto const summary = json::parse(R"({"total_tasks":80,"completed_tasks":79,"failed_tasks":1,"exit_code":1,
    "timed_out":false,"mass_failure":false,"duration_seconds":61.7,"oom_killed":["individuals-7"],
    "stragglers":["frequency-3","frequency-9"],"reports":{"PROGRESS":12,"ANOMALY_OOMKILL":1,"COMPLETION":1}})").as_object();
  for (std::size_t width : {20u, 50u, 100u}) {
    std::string const out = cli::render_summary(summary, cli::ExitCode::workflow_failed, {width, 24, false, false});
    CAPTURE(width, out);
    CHECK_FALSE(has_escape(out));
    for (auto const& l : split_lines(out)) CHECK(cli::visible_width(l) <= width);
  }
  std::string const wide = cli::render_summary(summary, cli::ExitCode::workflow_failed, {200, 24, false, false});
  CHECK(wide.find("Workflow failed") != std::string::npos);
  CHECK(wide.find("79/80 tasks completed") != std::string::npos);
  CHECK(wide.find("workflow exit code 1") != std::string::npos);
  CHECK(wide.find("individuals-7") != std::string::npos);
  CHECK(wide.find("frequency-3, frequency-9") != std::string::npos);
  CHECK(wide.find("1 ANOMALY_OOMKILL") != std::string::npos);
  CHECK(wide.find("01:01") != std::string::npos);

  auto const timeout = json::parse(R"({"total_tasks":2,"completed_tasks":0,"timed_out":true,"exit_code":null})").as_object();
  std::string const t = cli::render_summary(timeout, cli::ExitCode::timed_out, {80, 24, true, false});
  CHECK(t.find("Timed out") != std::string::npos);
  CHECK(t.find("exit code") == std::string::npos);
  CHECK(only_sgr_sequences(t));
  std::string const e = cli::render_summary(timeout, cli::ExitCode::cluster_unreachable, {80, 24, false, false},
                                            "cannot connect\x1b[2J");
  CHECK(e.find("Cluster unreachable") != std::string::npos);
  CHECK(e.find("cannot connect") != std::string::npos);
  CHECK_FALSE(has_escape(e));
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
  namespace es = execution_sentinel;
  es::WorkflowState state(es::context_from_json(context_1000genome()));
  auto counts = cli::phase_counts_json(state);
  REQUIRE(counts.contains("individuals"));
  CHECK(counts.at("individuals").at("total") == 3);
  CHECK(counts.at("individuals").at("completed") == 0);
  CHECK(counts.at("individuals").at("status") == "waiting");

  auto const pod = es::kube::parse_pod(json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "jobczr2t-individuals-1-1-2wzwh", "namespace": "wf-1000g-20260223-101500", "uid": "u1",
                 "resourceVersion": "10", "labels": {"app": "hyperflow", "job-name": "jobczr2t-individuals-1-1"}},
    "status": {"phase": "Succeeded", "startTime": "2026-02-23T10:15:00Z",
               "containerStatuses": [{"name": "test", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                   "startedAt": "2026-02-23T10:15:01Z", "finishedAt": "2026-02-23T10:15:31Z"}}}]}})").as_object());
  (void)state.apply_pod(pod, es::ChangeKind::added, es::Clock::now());
  counts = cli::phase_counts_json(state);
  CHECK(counts.at("individuals").at("completed") == 1);
  CHECK(counts.at("individuals").at("status") == "running");

  auto view = cli::initial_view(context_1000genome());
  cli::apply_phase_counts(view, counts);
  CHECK(view.phases[0].task_type == "individuals");
  CHECK(view.phases[0].completed == 1);
  CHECK(view.phases[0].total == 3);
  CHECK(view.phases[0].status == cli::PhaseStatus::running);
  CHECK(cli::render_live(view, {80, 24, false, false}).find("1/3") != std::string::npos);
}

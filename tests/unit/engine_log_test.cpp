// The engine's log as a source: HyperFlow's lines parsed into task signals, a failure only the engine reports
// (ANOMALY_TASK_FAILED, source "engine log"), user patterns from the library API and from a file, with their errors.
#include <execution_sentinel/detectors/engine_log.hpp>
#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/monitor.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

kube::LogLine line(double t, std::string text) { return kube::LogLine{at(t), std::move(text)}; }

es::MonitoringContext context_of(const std::string& type, int n) {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    for (int i = 0; i < n; ++i) c.task_inventory.push_back({type, type, 0, std::nullopt, "", ""});
    return c;
}

kube::Pod task_pod(const std::string& type, int proc, kube::PodPhase phase) {
    std::string job = "jobk" + std::to_string(proc) + "w-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
    kube::Pod p;
    p.meta.name = job + "-x7k2p";
    p.meta.uid = "uid-" + p.meta.name;
    p.meta.creation_timestamp = at(0);
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "test";
    c.state.kind = phase == kube::PodPhase::running ? kube::ContainerState::Kind::running : kube::ContainerState::Kind::terminated;
    c.state.started_at = at(1);
    if (phase != kube::PodPhase::running) {
        c.state.finished_at = at(20);
        c.state.exit_code = phase == kube::PodPhase::failed ? 1 : 0;
        c.state.reason = phase == kube::PodPhase::failed ? "Error" : "Completed";
    }
    p.containers.push_back(c);
    return p;
}

struct TempFile {
    std::filesystem::path path;
    explicit TempFile(const std::string& text) {
        static int n = 0;
        path = std::filesystem::temp_directory_path() /
               ("es-patterns-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ".yaml");
        std::ofstream(path, std::ios::binary) << text;
    }
    ~TempFile() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

std::string pattern_error(const std::string& yaml) {
    try {
        es::parse_log_patterns(yaml, "patterns.yaml");
    } catch (const es::LogPatternError& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("engine log: HyperFlow's lines become task signals", "[engine_log][parse]") {
    auto started = es::parse_engine_line("[hf] task started: frequency (J7rLf9D0i:2:38:1)");
    REQUIRE(started);
    CHECK(started->kind == es::EngineSignal::Kind::task_started);
    CHECK(started->task_type == "frequency");
    CHECK(started->task_id == "J7rLf9D0i:2:38:1");
    REQUIRE(started->id);
    CHECK(*started->id == es::EngineTaskId{"J7rLf9D0i", 2, 38, 1});
    CHECK_FALSE(started->task_failed());

    auto finished = es::parse_engine_line("2026-08-06T15:17:59Z [hf] task finished: individuals_merge (a:1:7:1) exit=0 time=236.5s");
    REQUIRE(finished);
    CHECK(finished->kind == es::EngineSignal::Kind::task_finished);
    CHECK(finished->task_type == "individuals_merge");
    CHECK(finished->exit_code == 0);
    REQUIRE(finished->seconds);
    CHECK(*finished->seconds == Approx(236.5));
    CHECK_FALSE(finished->task_failed());
    CHECK(es::parse_engine_line("[hf] task finished: sifting (a:1:9:1) exit=2 time=3s")->task_failed());

    auto failed = es::parse_engine_line("[hf] task failed: individuals (h:1:3:1) exit=1 time=14.5s\r");
    REQUIRE(failed);
    CHECK(failed->kind == es::EngineSignal::Kind::task_failed);
    CHECK(failed->exit_code == 1);
    CHECK(failed->task_failed());
    auto bare = es::parse_engine_line("[hf] task failed: individuals (h:1:3:1) no such file");
    REQUIRE(bare);
    CHECK_FALSE(bare->exit_code);
    CHECK(bare->task_failed());

    auto wf = es::parse_engine_line("Workflow [2] finished. Exit code 0");
    REQUIRE(wf);
    CHECK(wf->kind == es::EngineSignal::Kind::workflow_finished);
    CHECK(wf->workflow_id == "2");

    // not HyperFlow's lines, or broken ones
    for (std::string bad : {"", "hello", "[hf] task started:", "[hf] task started: x", "[hf] task started: (a:1:2:3)",
                            "[hf] task paused: x (a:1:2:3)", "[hf] task started: x (", "Workflow [] finished.",
                            "Workflow [2] started."})
        CHECK_FALSE(es::parse_engine_line(bad));
    // an id of another shape is kept as written, without parts
    auto odd = es::parse_engine_line("[hf] task started: x (not-an-id)");
    REQUIRE(odd);
    CHECK(odd->task_id == "not-an-id");
    CHECK_FALSE(odd->id);
    for (std::string bad_id : {"a:1:2", "a:1:2:3:4", ":1:2:3", "a:x:2:3", "a:1:-2:3", "a:1:99999999999:3"})
        CHECK_FALSE(es::parse_engine_task_id(bad_id));
    // a line longer than the bound is read only up to it
    std::string long_line = "[hf] task started: t (a:1:2:3)" + std::string(100'000, ' ') + "x";
    CHECK(es::parse_engine_line(long_line));
    std::string cut = std::string(es::max_engine_log_line, 'x') + "[hf] task started: t (a:1:2:3)";
    CHECK_FALSE(es::parse_engine_line(cut));
}

TEST_CASE("engine log: a failure only the engine reports is ANOMALY_TASK_FAILED from the engine log",
          "[engine_log][failure]") {
    es::Monitor<es::EngineLogDetector> m(context_of("frequency", 3), es::SentinelSettings{});
    // frequency-1's script fails: its pod Succeeded (HyperFlow's executor exits 0)
    m.on_pod(task_pod("frequency", 1, kube::PodPhase::succeeded), es::ChangeKind::added, at(20));
    m.on_engine_log(line(20, "[hf] task failed: frequency (J7rLf9D0i:2:1:1) exit=1 time=19s"), at(21));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    const auto& r = rs[0];
    CHECK(r.type == es::ReportType::ANOMALY_TASK_FAILED);
    CHECK(r.severity == es::Severity::error);
    CHECK(r.task_name == "frequency-1");
    CHECK(r.message == "Task frequency-1 failed: its program exited with code 1 after 19 seconds, as the workflow "
                       "engine reports (its container itself ended normally).");
    CHECK(r.details.at("source").as_string() == "engine log");
    CHECK(r.details.at("exit_code").as_int64() == 1);
    CHECK(r.details.at("task_id").as_string() == "J7rLf9D0i:2:1:1");
    CHECK(r.details.at("container").as_string() == "test");
    CHECK(r.details.at("attempt").as_int64() == 1);
    REQUIRE(r.evidence_request);
    CHECK(r.evidence_request->container == "test");
    CHECK(r.evidence_request->pod == r.details.at("pod_name").as_string());
    // the same line again (a reconnect that replays it): nothing
    m.on_engine_log(line(20, "[hf] task failed: frequency (J7rLf9D0i:2:1:1) exit=1 time=19s"), at(30));
    CHECK(m.take_reports().empty());

    // frequency-2 failed on the cluster too: the cluster's report covers it
    m.on_pod(task_pod("frequency", 2, kube::PodPhase::failed), es::ChangeKind::added, at(40));
    m.on_engine_log(line(40, "[hf] task finished: frequency (J7rLf9D0i:2:2:1) exit=1 time=19s"), at(41));
    // successes and starts are no findings
    m.on_engine_log(line(41, "[hf] task started: frequency (J7rLf9D0i:2:3:1)"), at(41));
    m.on_engine_log(line(42, "[hf] task finished: frequency (J7rLf9D0i:2:3:1) exit=0 time=1s"), at(42));
    CHECK(m.take_reports().empty());

    // a task the cluster has not shown yet: named from the engine's line
    m.on_engine_log(line(50, "[hf] task failed: mutation_overlap (J7rLf9D0i:2:77:1) exit=3 time=2s"), at(50));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_name == "mutation_overlap-77");
    CHECK_FALSE(rs[0].evidence_request);
    CHECK(m.detector<es::EngineLogDetector>().signals() == 6);
}

TEST_CASE("engine log: user patterns through the library API", "[engine_log][patterns]") {
    es::LogPatterns patterns;
    patterns.add({"nfs", R"(errno (\d+) \((\w+)\))", es::ReportType::ANOMALY_TASK_FAILED, es::Severity::critical,
                  "The shared file system failed with {2} (errno {1})."});
    patterns.add({"debug", "HF_VAR_DEBUG=1", es::ReportType::ANOMALY_STALL, es::Severity::warning,
                  "The engine runs in debug mode and waits: {line}"});
    es::Monitor<es::EngineLogDetector> m(context_of("individuals", 1), es::SentinelSettings{},
                                         es::EngineLogDetector(es::EngineLogDetector::Options{patterns, false}));
    m.on_engine_log(line(1, "tar: write error: errno 121 (EREMOTEIO)"), at(1));
    m.on_engine_log(line(2, "tar: write error: errno 121 (EREMOTEIO)"), at(2)); // the same message: once
    m.on_engine_log(line(3, "tar: write error: errno 5 (EIO)"), at(3));
    m.on_engine_log(line(4, "env HF_VAR_DEBUG=1"), at(4));
    m.on_engine_log(line(5, "nothing to see"), at(5));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 3);
    CHECK(rs[0].type == es::ReportType::ANOMALY_TASK_FAILED);
    CHECK(rs[0].severity == es::Severity::critical);
    CHECK(rs[0].message == "The shared file system failed with EREMOTEIO (errno 121).");
    CHECK(rs[0].details.at("pattern").as_string() == "nfs");
    CHECK(rs[0].details.at("source").as_string() == "engine log");
    CHECK(rs[0].details.at("groups").as_array().size() == 3);
    CHECK(rs[1].message == "The shared file system failed with EIO (errno 5).");
    CHECK(rs[2].type == es::ReportType::ANOMALY_STALL);
    CHECK(rs[2].message == "The engine runs in debug mode and waits: env HF_VAR_DEBUG=1");
    // added after construction too
    m.detector<es::EngineLogDetector>().patterns().add(
        {"late", "late (one)", es::ReportType::STRUCTURE, es::Severity::info, "seen {1} {0} {not one} {"});
    m.on_engine_log(line(6, "a late one"), at(6));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].message == "seen one late one {not one} {"); // only {digits} and {line} are placeholders
    // a message made only of an empty group still says something
    m.detector<es::EngineLogDetector>().patterns().add(
        {"empty", "zz(q*)", es::ReportType::STRUCTURE, es::Severity::info, "{1}"});
    m.on_engine_log(line(7, "zz"), at(7));
    rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].message == "The workflow engine's log matched the pattern empty.");
}

TEST_CASE("engine log: bad patterns are refused when added", "[engine_log][patterns]") {
    es::LogPatterns p;
    auto refuse = [&](es::LogPattern pattern) -> std::string {
        try {
            p.add(std::move(pattern));
        } catch (const es::LogPatternError& e) {
            return e.what();
        }
        return "";
    };
    using RT = es::ReportType;
    using S = es::Severity;
    CHECK(refuse({"x", "(unclosed", RT::ANOMALY_TASK_FAILED, S::error, "m"}).starts_with("pattern 'x': regex: not a valid regular expression"));
    CHECK(refuse({"", "a", RT::ANOMALY_TASK_FAILED, S::error, "m"}) == "name: a name of 1 to 64 characters is required");
    CHECK(refuse({"x", "", RT::ANOMALY_TASK_FAILED, S::error, "m"}) == "pattern 'x': regex: an expression is required");
    CHECK(refuse({"x", "a", RT::COMPLETION, S::error, "m"}).starts_with("pattern 'x': type: patterns may produce"));
    CHECK(refuse({"x", "a", RT::TASK_STARTED, S::error, "m"}).starts_with("pattern 'x': type:"));
    CHECK(refuse({"x", "a", RT::ANOMALY_TASK_FAILED, S::error, ""}) == "pattern 'x': message: a message is required");
    CHECK(refuse({"x", "(a)", RT::ANOMALY_TASK_FAILED, S::error, "{2}"}) ==
          "pattern 'x': message: placeholder {2} but the expression has 1 capture group(s)");
    CHECK(refuse({"x", "a", RT::ANOMALY_TASK_FAILED, S::error, "{name}"}) ==
          "pattern 'x': message: unknown placeholder {name}; use {0}, {1} … or {line}");
    CHECK(refuse({"x", std::string(2000, 'a'), RT::ANOMALY_TASK_FAILED, S::error, "m"}) ==
          "pattern 'x': regex: longer than 1024 characters");
    CHECK(p.empty());
    p.add({"x", "a", RT::ANOMALY_TASK_FAILED, S::error, "m"});
    CHECK(refuse({"x", "b", RT::ANOMALY_TASK_FAILED, S::error, "m"}) == "pattern 'x': name: a pattern of this name exists already");
    CHECK(p.size() == 1);
}

TEST_CASE("engine log: a pattern that would backtrack without end gives up on the line", "[engine_log][patterns]") {
    es::LogPatterns p;
    p.add({"evil", "(a+)+$", es::ReportType::ANOMALY_TASK_FAILED, es::Severity::error, "m"});
    p.add({"fine", "b$", es::ReportType::ANOMALY_TASK_FAILED, es::Severity::error, "tail {0}"});
    // a long line of 'a' ending in 'b': the first pattern's matching explodes and is cut off; the second still runs
    auto matches = p.match(std::string(60, 'a') + "b");
    REQUIRE(matches.size() == 1);
    CHECK(matches[0].index == 1);
    CHECK(matches[0].message == "tail b");
    for (auto& m : p.match(std::string(es::max_engine_log_line + 10, 'a') + "b"))
        CHECK(m.index != 1); // the 'b' is beyond the bound: not seen
}

TEST_CASE("engine log: the patterns file, its errors naming the file, the line and the field", "[engine_log][file]") {
    auto set = es::parse_log_patterns(R"(# patterns for the engine's log
patterns:
  - name: nfs-io-error
    regex: 'Remote I/O error|EREMOTEIO'
    message: "The shared file system failed: {0}"
  - name: quota
    regex: 'exceeded quota: (\S+)'
    type: ANOMALY_STALL
    severity: warning
    message: "Tasks cannot start: quota {1} is full."
)",
                                      "patterns.yaml");
    REQUIRE(set.size() == 2);
    CHECK(set.patterns()[0].type == es::ReportType::ANOMALY_TASK_FAILED);
    CHECK(set.patterns()[0].severity == es::Severity::error);
    CHECK(set.patterns()[1].type == es::ReportType::ANOMALY_STALL);
    CHECK(set.patterns()[1].severity == es::Severity::warning);
    CHECK(es::parse_log_patterns("", "empty.yaml").empty());
    CHECK(es::parse_log_patterns("patterns: []", "p.yaml").empty());
    // a list at the top is accepted too
    CHECK(es::parse_log_patterns("- {name: a, regex: x, message: m}", "p.yaml").size() == 1);

    CHECK(pattern_error("patterns:\n  - name: a\n    regex: '(x'\n    message: m\n")
              .starts_with("patterns.yaml: line 2: patterns[0]: pattern 'a': regex: not a valid regular expression"));
    CHECK(pattern_error("patterns:\n  - name: a\n    regex: x\n    type: NOPE\n    message: m\n") ==
          "patterns.yaml: line 4: patterns[0].type: unknown report type (e.g. ANOMALY_TASK_FAILED)");
    CHECK(pattern_error("patterns:\n  - name: a\n    regex: x\n    severity: loud\n    message: m\n") ==
          "patterns.yaml: line 4: patterns[0].severity: expected info, warning, error or critical");
    CHECK(pattern_error("patterns:\n  - name: a\n    regex: x\n") == "patterns.yaml: line 2: patterns[0].message: missing");
    CHECK(pattern_error("patterns:\n  - name: a\n    message: m\n    colour: red\n") ==
          "patterns.yaml: line 4: patterns[0].colour: unknown field (expected name, regex, type, severity or message)");
    CHECK(pattern_error("patterns:\n  - name: a\n    regex: [x]\n    message: m\n") ==
          "patterns.yaml: line 3: patterns[0].regex: expected a text value");
    CHECK(pattern_error("rules: []\n") == "patterns.yaml: line 1: rules: unknown field (expected patterns)");
    CHECK(pattern_error("patterns: 3\n") == "patterns.yaml: line 1: patterns: expected a list of patterns");
    CHECK(pattern_error("patterns:\n  - just text\n") ==
          "patterns.yaml: line 2: patterns[0]: expected a map with name, regex and message");
    CHECK(pattern_error("patterns: [\n").starts_with("patterns.yaml: line "));
}

TEST_CASE("engine log: SENTINEL_LOG_PATTERNS is read when the monitor is built", "[engine_log][file]") {
    TempFile file("patterns:\n  - name: oops\n    regex: 'Traceback'\n    message: 'A task script crashed: {line}'\n");
    es::SentinelSettings settings;
    settings.log_patterns_file = file.path.string();
    es::DefaultMonitor m(context_of("sifting", 1), settings);
    CHECK(m.detector<es::EngineLogDetector>().patterns().size() == 1);
    m.on_engine_log(line(1, "Traceback (most recent call last):"), at(1));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].message == "A task script crashed: Traceback (most recent call last):");

    TempFile bad("patterns:\n  - name: oops\n    regex: '(('\n    message: m\n");
    settings.log_patterns_file = bad.path.string();
    try {
        es::DefaultMonitor n(context_of("sifting", 1), settings);
        FAIL("a bad patterns file must be refused");
    } catch (const es::LogPatternError& e) {
        CHECK(std::string(e.what()).starts_with(bad.path.string() + ": line 2: patterns[0]: pattern 'oops': regex:"));
        CHECK(e.origin() == bad.path.string());
        CHECK(e.line() == 2);
    }
    settings.log_patterns_file = (std::filesystem::temp_directory_path() / "es-no-such-patterns.yaml").string();
    CHECK_THROWS_AS(es::DefaultMonitor(context_of("sifting", 1), settings), es::LogPatternError);
}

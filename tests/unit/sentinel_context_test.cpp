// MonitoringContext, SentinelSettings, Report and WatchSummary: JSON forms, validation, environment and .env.
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

// The shape of real HyperFlow runs, extended with the 1000genome CFTR inventory.
const char* const example_context = R"({
  "namespace": "wf-1000g-20260223-101500",
  "engine_pod_name": "hyperflow-engine-6c4b46d86-jdl7w",
  "engine_container": "hyperflow",
  "agglomeration_factor": 1,
  "execution_model": "JOB",
  "task_inventory": [
    {"name": "individuals", "task_type": "individuals", "memory_limit": "", "cpu_limit": "", "dag_order": 0,
     "expected_duration_seconds": 30.0},
    {"name": "individuals_merge", "task_type": "individuals_merge", "memory_limit": "1Gi", "cpu_limit": "1",
     "dag_order": 1, "expected_duration_seconds": 10},
    {"name": "sifting", "task_type": "sifting", "dag_order": 2, "expected_duration_seconds": null},
    {"name": "mutation_overlap", "task_type": "mutation_overlap", "dag_order": 3},
    {"name": "frequency", "task_type": "frequency", "dag_order": 4, "nl_note": "ignored"}
  ],
  "dag_structure": {"individuals": [], "individuals_merge": ["individuals"], "sifting": ["individuals_merge"],
                    "mutation_overlap": ["sifting"], "frequency": ["sifting"]}
})";

std::string error_of(const std::string& text) {
    try {
        (void)es::context_from_json_text(text);
    } catch (const es::ContextError& e) {
        return e.what();
    }
    return "no error";
}

es::EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        if (auto it = vars.find(name); it != vars.end()) return it->second;
        return std::nullopt;
    };
}

std::string settings_error(std::map<std::string, std::string> vars, std::string* variable = nullptr) {
    try {
        (void)es::load_settings(env_of(std::move(vars)));
    } catch (const es::SettingsError& e) {
        if (variable) *variable = e.variable();
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("a real context parses with the original field names", "[context]") {
    auto c = es::context_from_json_text(example_context);
    CHECK(c.namespace_ == "wf-1000g-20260223-101500");
    CHECK(c.engine_pod_name == "hyperflow-engine-6c4b46d86-jdl7w");
    CHECK(c.engine_container == "hyperflow");
    REQUIRE(c.task_inventory.size() == 5);
    CHECK(c.total_expected_tasks() == 5);
    CHECK(c.task_inventory[0].expected_duration_seconds == std::optional<double>(30.0));
    CHECK(c.task_inventory[1].expected_duration_seconds == std::optional<double>(10.0));
    CHECK_FALSE(c.task_inventory[2].expected_duration_seconds.has_value());
    CHECK(c.task_inventory[1].memory_limit == "1Gi");
    CHECK(c.task_inventory[4].dag_order == 4);
    CHECK(c.dag_structure.at("frequency") == std::vector<std::string>{"sifting"});
    CHECK(c.dag_structure.at("individuals").empty());
    // fields the original lacked keep their defaults
    CHECK(c.completion_signal_path == "/work_dir/.workflow-exit-code");
    CHECK(c.task_label_selector == "app=hyperflow");
    CHECK(c.engine_pod_selector.empty());
}

TEST_CASE("context JSON round-trips", "[context]") {
    auto c = es::context_from_json_text(example_context);
    c.engine_pod_selector = "component=hyperflow-engine";
    auto back = boost::json::value_to<es::MonitoringContext>(boost::json::value_from(c));
    CHECK(back == c);
    auto j = boost::json::value_from(c).as_object();
    CHECK(j.at("namespace").as_string() == "wf-1000g-20260223-101500");
    CHECK(j.at("task_inventory").as_array()[2].as_object().at("expected_duration_seconds").is_null());
}

TEST_CASE("a broken context names the field", "[context]") {
    auto inv = [](const std::string& task3) {
        return std::string(R"({"namespace":"ns","engine_pod_name":"e","task_inventory":[)") +
               R"({"name":"a"},{"name":"b"},{"name":"c"},)" + task3 + "]}";
    };
    CHECK(error_of(inv(R"({"name":"d","dag_order":"2"})")) == "task_inventory[3].dag_order: expected an integer");
    CHECK(error_of(inv(R"({"name":"d","dag_order":1.5})")) == "task_inventory[3].dag_order: expected an integer");
    CHECK(error_of(inv(R"({"dag_order":1})")) == "task_inventory[3].name: required");
    CHECK(error_of(inv(R"({"name":"d","expected_duration_seconds":"30"})")) ==
          "task_inventory[3].expected_duration_seconds: expected a number");
    CHECK(error_of(inv(R"({"name":"d","expected_duration_seconds":-1})")).starts_with(
        "task_inventory[3].expected_duration_seconds:"));
    CHECK(error_of(inv(R"("d")")) == "task_inventory[3]: expected an object");
    CHECK(error_of(R"({"engine_pod_name":"e"})") == "namespace: required");
    CHECK(error_of(R"({"namespace":"Wf_1","engine_pod_name":"e"})").starts_with("namespace: must be a DNS-1123 label"));
    CHECK(error_of(R"({"namespace":"ns"})").starts_with("engine_pod_name: required"));
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","agglomeration_factor":0})").starts_with(
        "agglomeration_factor:"));
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","execution_model":"SERVERLESS"})").starts_with(
        "execution_model:"));
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","dag_structure":{"a":"b"}})") ==
          "dag_structure.a: expected an array of task types");
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","dag_structure":{"a":[1]}})") ==
          "dag_structure.a[0]: expected a string");
    CHECK(error_of(R"({"namespace":"ns","engine_pod_selector":"a in (b"})").starts_with("engine_pod_selector:"));
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","task_inventory":{}})") ==
          "task_inventory: expected an array");
    CHECK(error_of("[1,2]") == "(root): expected a JSON object");
    CHECK(error_of("{\"namespace\": ").starts_with("(root): not valid JSON"));
    CHECK(error_of(R"({"namespace":"ns","engine_pod_name":"e","completion_signal_path":"rel/path"})").starts_with(
        "completion_signal_path:"));
}

TEST_CASE("context validation accepts what real runs need", "[context]") {
    auto c = es::context_from_json_text(R"({"namespace":"ns","engine_pod_selector":"component=hyperflow-engine",
        "execution_model":"job_agglomeration","agglomeration_factor":5})");
    CHECK(c.engine_pod_name.empty());
    CHECK(c.execution_model == "JOB_AGGLOMERATION");
    CHECK(c.agglomeration_factor == 5);
    CHECK(c.total_expected_tasks() == 0);
    es::MonitoringContext direct;
    direct.namespace_ = "ns";
    direct.engine_pod_name = "hyperflow-engine-1";
    CHECK_NOTHROW(es::validate(direct));
    direct.namespace_.assign(64, 'a');
    CHECK_THROWS_AS(es::validate(direct), es::ContextError);
}

TEST_CASE("label selectors parse and match", "[context]") {
    kube::Labels engine{{{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"name", "hyperflow-engine"}}};
    kube::Labels task{{{"app", "hyperflow"}, {"job-name", "jobx-sifting-1-1"}}};
    auto sel = es::LabelSelector::parse("app=hyperflow, component=hyperflow-engine");
    CHECK(sel.matches(engine));
    CHECK_FALSE(sel.matches(task));
    CHECK(es::LabelSelector::parse("app==hyperflow,!component").matches(task));
    CHECK_FALSE(es::LabelSelector::parse("app==hyperflow,!component").matches(engine));
    CHECK(es::LabelSelector::parse("component in (hyperflow-engine, other)").matches(engine));
    CHECK(es::LabelSelector::parse("component notin (hyperflow-engine)").matches(task));
    CHECK(es::LabelSelector::parse("app!=redis,job-name").matches(task));
    CHECK(es::LabelSelector::parse("").matches(task));
    CHECK_THROWS_AS(es::LabelSelector::parse("app=hyperflow,"), std::invalid_argument);
    CHECK_THROWS_AS(es::LabelSelector::parse("a in (b"), std::invalid_argument);
    CHECK_THROWS_AS(es::LabelSelector::parse("=x"), std::invalid_argument);
}

TEST_CASE("settings have the documented defaults", "[settings]") {
    auto s = es::load_settings(env_of({}));
    CHECK(s == es::SentinelSettings{});
    CHECK(s.poll_interval == 10s);
    CHECK(s.timeout == 3600s);
    CHECK(s.straggler_multiplier == 3.0);
    CHECK(s.mass_failure_threshold == 0.3);
    CHECK(s.log_level == es::LogLevel::INFO);
    CHECK(s.kubeconfig.empty());
    CHECK(s.connectivity_failures == 3);
}

TEST_CASE("settings come from SENTINEL_ variables", "[settings]") {
    auto s = es::load_settings(env_of({{"SENTINEL_POLL_INTERVAL", "5"},
                                       {"SENTINEL_TIMEOUT", "90s"},
                                       {"SENTINEL_STRAGGLER_MULTIPLIER", "1.5"},
                                       {"SENTINEL_MASS_FAILURE_THRESHOLD", "0.5"},
                                       {"SENTINEL_LOG_LEVEL", "debug"},
                                       {"SENTINEL_KUBECONFIG", "/home/me/.kube/config"},
                                       {"SENTINEL_KUBE_CONTEXT", "kind-kind"},
                                       {"SENTINEL_STRAGGLER_MIN_RUNTIME", "2m"},
                                       {"SENTINEL_CONNECTIVITY_FAILURES", "5"}}));
    CHECK(s.poll_interval == 5s);
    CHECK(s.timeout == 90s);
    CHECK(s.straggler_multiplier == 1.5);
    CHECK(s.mass_failure_threshold == 0.5);
    CHECK(s.log_level == es::LogLevel::DEBUG);
    CHECK(s.kubeconfig == "/home/me/.kube/config");
    CHECK(s.kube_context == "kind-kind");
    CHECK(s.straggler_min_runtime == 120s);
    CHECK(s.connectivity_failures == 5);
    CHECK(es::parse_duration("1.5") == std::optional<std::chrono::milliseconds>(1500ms));
    CHECK(es::parse_duration("500ms") == std::optional<std::chrono::milliseconds>(500ms));
    CHECK(es::parse_duration(" 1h ") == std::optional<std::chrono::milliseconds>(3600s));
    CHECK_FALSE(es::parse_duration("ten").has_value());
    CHECK_FALSE(es::parse_duration("-1").has_value());
    CHECK_FALSE(es::parse_duration("").has_value());
    CHECK_FALSE(es::parse_duration("1e30").has_value());
}

TEST_CASE("invalid settings name the variable, not the value", "[settings]") {
    std::string var;
    auto msg = settings_error({{"SENTINEL_POLL_INTERVAL", "tenXYZ"}}, &var);
    CHECK(var == "SENTINEL_POLL_INTERVAL");
    CHECK(msg.starts_with("SENTINEL_POLL_INTERVAL: expected a duration"));
    CHECK(msg.find("tenXYZ") == std::string::npos);
    CHECK(settings_error({{"SENTINEL_TIMEOUT", "0"}}).starts_with("SENTINEL_TIMEOUT: must be greater than zero"));
    CHECK(settings_error({{"SENTINEL_MASS_FAILURE_THRESHOLD", "1.5"}}).starts_with("SENTINEL_MASS_FAILURE_THRESHOLD:"));
    CHECK(settings_error({{"SENTINEL_MASS_FAILURE_THRESHOLD", "0"}}).starts_with("SENTINEL_MASS_FAILURE_THRESHOLD:"));
    CHECK(settings_error({{"SENTINEL_STRAGGLER_MULTIPLIER", "0.5"}}).starts_with("SENTINEL_STRAGGLER_MULTIPLIER:"));
    CHECK(settings_error({{"SENTINEL_STRAGGLER_MULTIPLIER", "nan"}}).starts_with("SENTINEL_STRAGGLER_MULTIPLIER:"));
    CHECK(settings_error({{"SENTINEL_LOG_LEVEL", "LOUD"}}).starts_with("SENTINEL_LOG_LEVEL:"));
    CHECK(settings_error({{"SENTINEL_STRAGGLER_MIN_SIBLINGS", "2.5"}}).starts_with("SENTINEL_STRAGGLER_MIN_SIBLINGS:"));
    CHECK(settings_error({{"SENTINEL_CONNECTIVITY_FAILURES", "0"}}).starts_with("SENTINEL_CONNECTIVITY_FAILURES:"));
}

TEST_CASE("the poll interval has a lower bound, from the environment and from .env", "[settings]") {
    CHECK(es::min_poll_interval == 100ms);
    for (const char* bad : {"1e-9", "0", "0.05", "99ms", "0s"}) {
        CAPTURE(bad);
        std::string var;
        auto msg = settings_error({{"SENTINEL_POLL_INTERVAL", bad}}, &var);
        CHECK(var == "SENTINEL_POLL_INTERVAL");
        CHECK(msg == "SENTINEL_POLL_INTERVAL: must be at least 100ms");
        CHECK_THROWS_AS(es::load_settings(env_of({}), {{"SENTINEL_POLL_INTERVAL", bad}}), es::SettingsError);
    }
    CHECK(es::load_settings(env_of({{"SENTINEL_POLL_INTERVAL", "100ms"}})).poll_interval == 100ms);
    CHECK(es::load_settings(env_of({{"SENTINEL_POLL_INTERVAL", "0.1"}})).poll_interval == 100ms);
    CHECK(es::load_settings(env_of({}), {{"SENTINEL_POLL_INTERVAL", "0.25"}}).poll_interval == 250ms);
}

TEST_CASE(".env files: comments, quotes, export; the environment wins", "[settings]") {
    auto entries = es::parse_dotenv("# sentinel settings\n"
                                    "\n"
                                    "export SENTINEL_POLL_INTERVAL=2\n"
                                    "SENTINEL_TIMEOUT = \"8s\"  # short for tests\n"
                                    "SENTINEL_KUBECONFIG='/tmp/my config'\n"
                                    "sentinel_log_level=warning # lower case key\r\n"
                                    "OTHER=\"a \\\"quoted\\\" word\"\n"
                                    "EMPTY=\n");
    CHECK(entries.at("SENTINEL_POLL_INTERVAL") == "2");
    CHECK(entries.at("SENTINEL_TIMEOUT") == "8s");
    CHECK(entries.at("SENTINEL_KUBECONFIG") == "/tmp/my config");
    CHECK(entries.at("SENTINEL_LOG_LEVEL") == "warning");
    CHECK(entries.at("OTHER") == "a \"quoted\" word");
    CHECK(entries.at("EMPTY").empty());
    auto s = es::load_settings(env_of({{"SENTINEL_TIMEOUT", "60"}}), entries);
    CHECK(s.poll_interval == 2s);
    CHECK(s.timeout == 60s); // environment wins
    CHECK(s.kubeconfig == "/tmp/my config");
    CHECK(s.log_level == es::LogLevel::WARNING);

    auto bad = [](const char* text) {
        try {
            (void)es::parse_dotenv(text);
        } catch (const es::SettingsError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(bad("A=1\nnot a setting\n") == ".env line 2: expected KEY=VALUE");
    CHECK(bad("A=\"secret-ish\n").starts_with(".env line 1: unterminated quoted value"));
    CHECK(bad("A=\"secret-ish\n").find("secret-ish") == std::string::npos);
    CHECK(bad("1A=2").starts_with(".env line 1:"));
    CHECK(bad("=2").starts_with(".env line 1: missing variable name"));
}

TEST_CASE("settings load from a .env file on disk", "[settings]") {
    auto dir = std::filesystem::temp_directory_path() / "es_settings_test";
    std::filesystem::create_directories(dir);
    auto file = dir / ".env";
    {
        std::ofstream out(file);
        out << "SENTINEL_POLL_INTERVAL=3\nSENTINEL_MASS_FAILURE_THRESHOLD=0.25\n";
    }
    auto s = es::load_settings_from(env_of({}), file);
    CHECK(s.poll_interval == 3s);
    CHECK(s.mass_failure_threshold == 0.25);
    auto missing = es::load_settings_from(env_of({}), dir / "absent.env");
    CHECK(missing == es::SentinelSettings{});
    std::filesystem::remove_all(dir);
}

TEST_CASE("reports have a JSON form and names", "[report]") {
    CHECK(es::to_string(es::ReportType::PROGRESS) == "PROGRESS");
    CHECK(es::to_string(es::ReportType::ANOMALY_OOMKILL) == "ANOMALY_OOMKILL");
    CHECK(es::to_string(es::ReportType::ANOMALY_STRAGGLER) == "ANOMALY_STRAGGLER");
    CHECK(es::to_string(es::ReportType::MASS_FAILURE) == "MASS_FAILURE");
    CHECK(es::to_string(es::ReportType::CONNECTIVITY_LOSS) == "CONNECTIVITY_LOSS");
    CHECK(es::to_string(es::ReportType::COMPLETION) == "COMPLETION");
    for (auto t : es::all_report_types) CHECK(es::report_type_from_string(es::to_string(t)) == t);
    CHECK_FALSE(es::report_type_from_string("progress").has_value());

    es::Report r;
    r.type = es::ReportType::ANOMALY_OOMKILL;
    r.severity = es::Severity::error;
    r.sequence = 7;
    r.timestamp = *es::parse_rfc3339("2026-08-06T15:17:59.250Z");
    r.task_name = "frequency-38";
    r.task_type = "frequency";
    r.completed_tasks = 12;
    r.total_tasks = 40;
    r.message = "Task frequency-38 ran out of memory (limit 1Gi) and was stopped.";
    r.details["memory_limit"] = "1Gi";
    auto j = boost::json::value_from(r);
    CHECK(j.at("type").as_string() == "ANOMALY_OOMKILL");
    CHECK(j.at("kind").as_string() == "ANOMALY_OOMKILL");
    CHECK(j.at("severity").as_string() == "error");
    CHECK(j.at("timestamp").as_string() == "2026-08-06T15:17:59.250Z");
    CHECK(boost::json::value_to<es::Report>(j) == r);
    CHECK(es::parse_rfc3339("2026-08-06T17:17:59.250+02:00") == r.timestamp);
    CHECK_FALSE(es::parse_rfc3339("2026-08-06 nonsense").has_value());
    CHECK_FALSE(es::parse_rfc3339("2026-13-06T00:00:00Z").has_value());

    auto bad = boost::json::parse(R"({"type":"NOPE","severity":"info"})");
    CHECK_THROWS_AS(es::report_from_json(bad), es::ReportFormatError);
    auto bad_sev = boost::json::parse(R"({"type":"PROGRESS","severity":"loud"})");
    CHECK_THROWS_AS(es::report_from_json(bad_sev), es::ReportFormatError);
}

TEST_CASE("summaries have a JSON form; all fields are optional when read", "[summary]") {
    es::WatchSummary s;
    s.total_tasks = 16;
    s.completed_tasks = 16;
    s.exit_code = 0;
    s.duration_seconds = 211.0;
    s.oom_killed = {"frequency-38"};
    s.reports[es::ReportType::PROGRESS] = 20;
    s.reports[es::ReportType::COMPLETION] = 1;
    auto j = boost::json::value_from(s);
    CHECK(j.at("exit_code").as_int64() == 0);
    CHECK(j.at("reports").at("PROGRESS").as_int64() == 20);
    CHECK(boost::json::value_to<es::WatchSummary>(j) == s);

    auto timed_out = es::summary_from_json(boost::json::parse(R"({"timed_out": true})"));
    CHECK(timed_out.timed_out);
    CHECK_FALSE(timed_out.exit_code.has_value());
    CHECK(boost::json::value_from(timed_out).at("exit_code").is_null());
    CHECK_THROWS_AS(es::summary_from_json(boost::json::parse(R"({"exit_code": "0"})")), es::SummaryFormatError);
}

TEST_CASE("the example context in docs/context.md is valid", "[context]") {
    std::ifstream in(std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/docs/context.md");
    REQUIRE(in);
    std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto b = doc.find("```json");
    REQUIRE(b != std::string::npos);
    b += 7;
    auto e = doc.find("```", b);
    REQUIRE(e != std::string::npos);
    auto c = es::context_from_json_text(doc.substr(b, e - b));
    CHECK(c.total_expected_tasks() == 15);
    CHECK(c.engine_pod_selector == "component=hyperflow-engine");
    CHECK(c.dag_structure.at("sifting") == std::vector<std::string>{"individuals_merge"});
}

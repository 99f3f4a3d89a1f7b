// Alert delivery decisions without sockets: keys, filters, cooldown and deduplication against the ledger,
// grouping, the Alertmanager, Slack and webhook bodies, HMAC, answers, the JSON-file ledger and the YAML config.
#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/alerts/ledger.hpp>
#include <execution_sentinel/alerts/payload.hpp>

#include "catch.hpp"

#include <boost/json/parse.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <unistd.h>

namespace es = execution_sentinel;
namespace al = execution_sentinel::alerts;
using namespace std::chrono_literals;

namespace {

es::Report oom_report(std::uint64_t sequence = 7, std::string task = "frequency-38") {
    es::Report r;
    r.type = es::ReportType::ANOMALY_OOMKILL;
    r.severity = es::Severity::error;
    r.sequence = sequence;
    r.timestamp = es::Timestamp{} + 1'800'000'000s;
    r.task_name = std::move(task);
    r.task_type = "frequency";
    r.completed_tasks = 12;
    r.total_tasks = 40;
    r.message = "Task frequency-38 ran out of memory (limit 1Gi) and was stopped.";
    r.details = {{"job_name", "job-frequency-38"}, {"pod_name", "job-frequency-38-abc"}, {"memory_limit", "1Gi"},
                 {"exit_code", 137}, {"attempts", 1}};
    return r;
}

es::Report stall_report(bool resolved, es::Severity sev = es::Severity::warning) {
    es::Report r;
    r.type = es::ReportType::ANOMALY_STALL;
    r.severity = resolved ? es::Severity::info : sev;
    r.timestamp = es::Timestamp{} + 1'800'000'100s;
    r.task_name = "mAdd-1";
    r.task_type = "mAdd";
    r.message = resolved ? "Task mAdd-1 makes progress again." : "Task mAdd-1 has made no progress for 10 minutes.";
    r.details = {{"tier", resolved ? "RESOLVED" : "LOW"}, {"resolved", resolved},
                 {"since", "2027-01-15T08:00:00.000Z"}};
    return r;
}

const al::AlertContext ctx{"wf/engine-1", "wf"};

std::filesystem::path temp_path(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("es-alerts-" + std::to_string(::getpid()) + "-" + name);
}

} // namespace

TEST_CASE("alerts: the key is stable across sequence numbers and counts, and tells findings apart", "[alerts][key]") {
    auto a = oom_report(7);
    auto b = oom_report(99);
    b.completed_tasks = 30;
    b.message = "different wording after a restart";
    b.timestamp += 3600s;
    CHECK(al::alert_key(a, "run") == al::alert_key(b, "run"));
    CHECK(al::alert_key(a, "run").starts_with("run/ANOMALY_OOMKILL/frequency-38/"));
    CHECK(al::alert_key(a, "run") != al::alert_key(a, "other-run"));
    CHECK(al::alert_key(a, "run") != al::alert_key(oom_report(7, "frequency-39"), "run"));
    auto retry = oom_report();
    retry.details["attempts"] = 2;
    CHECK(al::alert_key(a, "run") != al::alert_key(retry, "run"));
    auto sibling = oom_report();
    sibling.severity = es::Severity::warning;
    CHECK(al::alert_key(a, "run") != al::alert_key(sibling, "run"));
    CHECK(al::alert_key(stall_report(false), "r") != al::alert_key(stall_report(true), "r"));
    es::Report workflow;
    workflow.type = es::ReportType::MASS_FAILURE;
    CHECK(al::alert_key(workflow, "r").starts_with("r/MASS_FAILURE/workflow/"));
}

TEST_CASE("alerts: sink filter by type and minimum severity; resolutions follow the type they resolve",
          "[alerts][filter]") {
    al::SinkConfig sink{.name = "s", .min_severity = es::Severity::error};
    CHECK(al::sink_accepts(sink, oom_report()));
    auto warn = oom_report();
    warn.severity = es::Severity::warning;
    CHECK_FALSE(al::sink_accepts(sink, warn));
    es::Report progress;
    progress.severity = es::Severity::critical;
    CHECK_FALSE(al::sink_accepts(sink, progress)); // PROGRESS is not an alert type by default
    es::Report started;
    started.type = es::ReportType::TASK_STARTED;
    started.severity = es::Severity::critical;
    CHECK_FALSE(al::sink_accepts(sink, started));
    CHECK(al::sink_accepts(sink, stall_report(true))); // info, but closes a stall
    es::Report restored;
    restored.type = es::ReportType::CONNECTIVITY_RESTORED;
    CHECK(al::sink_accepts(sink, restored));
    sink.types = {es::ReportType::ANOMALY_OOMKILL};
    CHECK(al::sink_accepts(sink, oom_report()));
    CHECK_FALSE(al::sink_accepts(sink, restored));
    CHECK_FALSE(al::sink_accepts(sink, stall_report(true)));
    sink.types = {es::ReportType::CONNECTIVITY_LOSS};
    CHECK(al::sink_accepts(sink, restored));
}

TEST_CASE("alerts: duplicates and cooldowns against the ledger, with a fixed clock", "[alerts][cooldown]") {
    auto alert = al::make_alert(oom_report(), ctx);
    const es::Timestamp now = es::Timestamp{} + 1'900'000'000s;
    using R = al::DeliveryRecord;
    CHECK_FALSE(al::suppression(alert, std::nullopt, std::nullopt, 15min, now));
    CHECK(al::suppression(alert, R{"r", "s", alert.key, "sent", 1, "", now - 48h}, std::nullopt, 15min, now) ==
          al::Suppression::duplicate);
    CHECK(al::suppression(alert, R{"r", "s", alert.key, "dead", 5, "x", now}, std::nullopt, 15min, now) ==
          al::Suppression::duplicate);
    // A failed key is retried.
    CHECK_FALSE(al::suppression(alert, R{"r", "s", alert.key, "failed", 2, "x", now}, std::nullopt, 15min, now));
    const R cool{"r", "s", alert.cooldown_key, "sent", 1, "", now - 10min};
    CHECK(al::suppression(alert, std::nullopt, cool, 15min, now) == al::Suppression::cooldown);
    CHECK_FALSE(al::suppression(alert, std::nullopt, cool, 5min, now)); // the cooldown has passed
    CHECK_FALSE(al::suppression(alert, std::nullopt, cool, 0ms, now));  // cooldown off
    auto resolution = al::make_alert(stall_report(true), ctx);
    CHECK_FALSE(al::suppression(resolution, std::nullopt, cool, 15min, now));
    // Per (run, task, type, severity): an escalation has its own cooldown.
    auto critical = stall_report(false, es::Severity::critical);
    CHECK(al::cooldown_key(critical, "r") != al::cooldown_key(stall_report(false), "r"));
    CHECK(al::cooldown_key(oom_report(1), "r") == al::cooldown_key(oom_report(2), "r"));
}

TEST_CASE("alerts: a burst within the window becomes one group; capacity bounds the queue", "[alerts][grouping]") {
    using tp = al::Batcher::time_point;
    const tp t0 = tp{} + 1h;
    al::Batcher b(2s, 3, 5);
    CHECK(b.empty());
    REQUIRE(b.add(al::make_alert(oom_report(1, "a"), ctx), t0));
    CHECK_FALSE(b.ready(t0 + 1s));
    REQUIRE(b.add(al::make_alert(oom_report(2, "b"), ctx), t0 + 1500ms));
    CHECK_FALSE(b.ready(t0 + 1999ms));
    CHECK(b.ready(t0 + 2s));
    CHECK(b.deadline() == t0 + 2s);
    auto g = b.take();
    REQUIRE(g.size() == 2);
    CHECK(g[0].report.task_name == "a");
    CHECK(g[1].report.task_name == "b");
    CHECK(b.empty());
    // max_group reached: ready at once; the rest is ready right after.
    for (int i = 0; i < 5; ++i) REQUIRE(b.add(al::make_alert(oom_report(10 + i, "t" + std::to_string(i)), ctx), t0 + 10s));
    CHECK_FALSE(b.add(al::make_alert(oom_report(20, "over"), ctx), t0 + 10s)); // capacity 5
    CHECK(b.ready(t0 + 10s));
    CHECK(b.take().size() == 3);
    CHECK(b.ready(t0 + 10s));
    CHECK(b.take().size() == 2);
}

TEST_CASE("alerts: HMAC-SHA256 known answers (RFC 4231) and SHA-256", "[alerts][hmac]") {
    CHECK(al::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(al::hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CHECK(al::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("alerts: Alertmanager alerts carry labels, annotations, startsAt, and endsAt for resolutions",
          "[alerts][payload]") {
    al::SinkConfig sink{.name = "am", .kind = al::SinkKind::alertmanager, .generator_url = "http://sentinel/run"};
    boost::json::array arr;
    al::append_alertmanager_alerts(arr, al::make_alert(oom_report(), ctx), ctx, sink, {});
    REQUIRE(arr.size() == 1);
    auto& a = arr[0].as_object();
    auto& labels = a.at("labels").as_object();
    CHECK(labels.at("alertname") == "Sentinel_ANOMALY_OOMKILL");
    CHECK(labels.at("type") == "ANOMALY_OOMKILL");
    CHECK(labels.at("severity") == "error");
    CHECK(labels.at("run") == "wf/engine-1");
    CHECK(labels.at("namespace") == "wf");
    CHECK(labels.at("task") == "frequency-38");
    CHECK(std::string(a.at("annotations").at("summary").as_string()) == oom_report().message);
    CHECK(std::string(a.at("annotations").at("description").as_string()).find("memory_limit: 1Gi") != std::string::npos);
    CHECK(a.at("startsAt") == "2027-01-15T08:00:00.000Z");
    CHECK_FALSE(a.contains("endsAt"));
    CHECK(a.at("generatorURL") == "http://sentinel/run");

    boost::json::array res;
    al::append_alertmanager_alerts(res, al::make_alert(stall_report(true), ctx), ctx, sink,
                                   {es::Severity::warning, es::Severity::critical});
    REQUIRE(res.size() == 2);
    CHECK(res[0].at("labels").at("alertname") == "Sentinel_ANOMALY_STALL");
    CHECK(res[0].at("labels").at("severity") == "warning");
    CHECK(res[1].at("labels").at("severity") == "critical");
    CHECK(res[0].at("endsAt") == "2027-01-15T08:01:40.000Z");
    CHECK(res[0].at("startsAt") == "2027-01-15T08:00:00.000Z"); // details.since

    es::Report restored;
    restored.type = es::ReportType::CONNECTIVITY_RESTORED;
    restored.timestamp = es::Timestamp{} + 1'800'000'000s;
    boost::json::array conn;
    al::append_alertmanager_alerts(conn, al::make_alert(restored, ctx), ctx, sink, {es::Severity::error});
    REQUIRE(conn.size() == 1);
    CHECK(conn[0].at("labels").at("alertname") == "Sentinel_CONNECTIVITY_LOSS");
    CHECK(conn[0].as_object().contains("endsAt"));
}

TEST_CASE("alerts: Slack Block Kit with a text fallback, escaped, sections at most 3,000 characters",
          "[alerts][payload]") {
    auto big = oom_report();
    big.message = std::string(5000, 'x') + " <b>&";
    std::string long_utf8;
    for (int i = 0; i < 2000; ++i) long_utf8 += "\xC3\xA9"; // é, two bytes
    big.details["reason"] = long_utf8;
    std::vector<al::Alert> group{al::make_alert(oom_report(), ctx), al::make_alert(big, ctx)};
    auto msg = al::slack_message(group, ctx);
    auto text = std::string(msg.at("text").as_string());
    CHECK(text.starts_with("2 alerts: ANOMALY_OOMKILL (error): Task frequency-38"));
    CHECK(text.size() <= 3000);
    auto& blocks = msg.at("blocks").as_array();
    REQUIRE(blocks.size() == 4); // header, two sections, context
    CHECK(blocks[0].at("type") == "header");
    CHECK(blocks[1].at("text").at("text").as_string().find("task `frequency-38`") != boost::json::string::npos);
    auto section = std::string(blocks[2].at("text").at("text").as_string());
    CHECK(section.size() <= al::slack_section_limit);
    CHECK(section.ends_with("\xE2\x80\xA6"));
    CHECK(std::string(blocks[3].at("elements").at(0).at("text").as_string()) == "run wf/engine-1 · namespace wf");
    auto small = oom_report();
    small.message = "a <b> & c";
    auto one = al::slack_message({al::make_alert(small, ctx)}, ctx);
    CHECK(one.at("blocks").at(1).at("text").at("text").as_string().find("a &lt;b&gt; &amp; c") !=
          boost::json::string::npos);
    CHECK(al::truncate_utf8("\xC3\xA9\xC3\xA9", 3) == "\xE2\x80\xA6"); // never half a character
}

TEST_CASE("alerts: webhook body has a stable idempotency key per alert and per message", "[alerts][payload]") {
    std::vector<al::Alert> group{al::make_alert(oom_report(1), ctx), al::make_alert(stall_report(true), ctx)};
    auto body = al::webhook_message(group, ctx);
    CHECK(body.at("idempotency_key").as_string() == al::group_key(group));
    CHECK(body.at("alerts").at(0).at("idempotency_key").as_string() == group[0].key);
    CHECK(body.at("alerts").at(0).at("status") == "firing");
    CHECK(body.at("alerts").at(1).at("status") == "resolved");
    CHECK(body.at("alerts").at(0).at("report").at("type") == "ANOMALY_OOMKILL");
    // The same alerts reported again (new sequence numbers) give the same bytes.
    std::vector<al::Alert> again{al::make_alert(oom_report(50), ctx), al::make_alert(stall_report(true), ctx)};
    again[0].report.sequence = group[0].report.sequence;
    CHECK(boost::json::serialize(al::webhook_message(again, ctx)) == boost::json::serialize(body));
    CHECK(al::group_key(again) == al::group_key(group));
    CHECK(al::group_key({group[0]}) != al::group_key(group));
}

TEST_CASE("alerts: answers: 2xx delivered, 5xx/429/408/none retried, other 4xx given up; Retry-After",
          "[alerts][retry]") {
    CHECK(al::verdict_for_status(200) == al::AttemptVerdict::delivered);
    CHECK(al::verdict_for_status(204) == al::AttemptVerdict::delivered);
    CHECK(al::verdict_for_status(0) == al::AttemptVerdict::retry);
    CHECK(al::verdict_for_status(500) == al::AttemptVerdict::retry);
    CHECK(al::verdict_for_status(503) == al::AttemptVerdict::retry);
    CHECK(al::verdict_for_status(429) == al::AttemptVerdict::retry);
    CHECK(al::verdict_for_status(408) == al::AttemptVerdict::retry);
    CHECK(al::verdict_for_status(400) == al::AttemptVerdict::give_up);
    CHECK(al::verdict_for_status(404) == al::AttemptVerdict::give_up);
    CHECK(al::verdict_for_status(301) == al::AttemptVerdict::give_up);
    CHECK(al::parse_retry_after(" 7 ") == 7);
    CHECK(al::parse_retry_after("99999") == 3600);
    CHECK_FALSE(al::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
    CHECK_FALSE(al::parse_retry_after(""));
    CHECK_FALSE(al::parse_retry_after("-1"));
}

TEST_CASE("alerts: URLs are redacted to scheme://host/…", "[alerts][secrets]") {
    CHECK(al::redact_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET") == "https://hooks.slack.com/…");
    CHECK(al::redact_url("https://user:pw@example.org:8443/hook?token=s") == "https://example.org:8443/…");
    CHECK(al::redact_url("not a url") == "(url)");
}

TEST_CASE("alerts: the JSON-file ledger survives a reopen and is replaced atomically", "[alerts][ledger]") {
    auto path = temp_path("ledger.json");
    std::filesystem::remove(path);
    const auto t = es::Clock::now();
    {
        al::JsonFileDeliveryLedger ledger(path);
        CHECK_FALSE(ledger.find("s", "k"));
        ledger.record({"run", "s", "k", "failed", 1, "https://hooks.slack.com/… answered 500", t});
        ledger.record({"run", "s", "k", "sent", 2, "", t});
        ledger.record({"run", "other", "k", "dead", 5, "boom", t});
    }
    CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
    al::JsonFileDeliveryLedger reopened(path);
    auto r = reopened.find("s", "k");
    REQUIRE(r);
    CHECK(r->state == "sent");
    CHECK(r->attempts == 2);
    CHECK(r->run_id == "run");
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(r->time - t).count() == 0);
    REQUIRE(reopened.find("other", "k"));
    CHECK(reopened.find("other", "k")->state == "dead");
    // Records past the retention are dropped on the next write.
    al::JsonFileDeliveryLedger short_lived(path, std::chrono::hours(1));
    short_lived.record({"run", "s", "old", "sent", 1, "", t - std::chrono::hours(2)});
    CHECK_FALSE(al::JsonFileDeliveryLedger(path).find("s", "old"));
    // A broken file is an error naming it, not an empty ledger.
    { std::ofstream(path) << "{not json"; }
    CHECK_THROWS_WITH(al::JsonFileDeliveryLedger(path), Catch::Contains(path.string()));
    std::filesystem::remove(path);
}

TEST_CASE("alerts config: sinks from YAML, secrets from files and variables", "[alerts][config]") {
    auto url_file = temp_path("slack-url");
    { std::ofstream(url_file) << "https://hooks.slack.com/services/T/B/SECRET\n"; }
    std::map<std::string, std::string> env{{"HOOK_URL", "https://hooks.example.org/in/abc"}, {"HOOK_KEY", "k3y"}};
    auto getenv = [&](const std::string& n) -> std::optional<std::string> {
        auto it = env.find(n);
        if (it == env.end()) return std::nullopt;
        return it->second;
    };
    std::string yaml = "ledger: /var/lib/es/alerts.json\nsinks:\n"
                       "  - name: am\n    kind: alertmanager\n    url: http://127.0.0.1:9093\n"
                       "  - name: team\n    kind: slack\n    url_file: " + url_file.string() + "\n"
                       "    min_severity: error\n    types: [ANOMALY_OOMKILL, MASS_FAILURE]\n    cooldown: 0\n"
                       "  - name: hook\n    kind: webhook\n    url_env: HOOK_URL\n    hmac_key_env: HOOK_KEY\n"
                       "    group_window: 500ms\n    retries: 2\n    timeout: 3s\n";
    auto c = al::parse_alerts_config(yaml, "alerts.yaml", getenv);
    REQUIRE(c.sinks.size() == 3);
    CHECK(c.ledger_file == "/var/lib/es/alerts.json");
    CHECK(c.sinks[0].kind == al::SinkKind::alertmanager);
    CHECK(c.sinks[0].url == "http://127.0.0.1:9093");
    CHECK(c.sinks[1].url == "https://hooks.slack.com/services/T/B/SECRET");
    CHECK(c.sinks[1].min_severity == es::Severity::error);
    CHECK(c.sinks[1].types == std::vector{es::ReportType::ANOMALY_OOMKILL, es::ReportType::MASS_FAILURE});
    CHECK(c.sinks[1].cooldown == 0ms);
    CHECK(c.sinks[1].min_interval == 1s); // Slack: one message per second
    CHECK(c.sinks[2].hmac_key == "k3y");
    CHECK(c.sinks[2].group_window == 500ms);
    CHECK(c.sinks[2].max_attempts == 3);
    CHECK(c.sinks[2].timeout == 3s);
    CHECK(c.sinks[2].cooldown == 15min);
    std::filesystem::remove(url_file);
}

TEST_CASE("alerts config: errors name the file, the line and the field, never a secret", "[alerts][config]") {
    auto getenv = [](const std::string& n) -> std::optional<std::string> {
        if (n == "SECRET_URL") return "https://hooks.slack.com/services/T/B/TOPSECRET";
        if (n == "PLAIN") return "http://hooks.slack.com/services/T/B/TOPSECRET";
        return std::nullopt;
    };
    auto error_of = [&](const std::string& yaml) {
        try {
            al::parse_alerts_config(yaml, "a.yaml", getenv);
        } catch (const al::AlertsConfigError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url_env: SECRET_URL\n    min_severity: loud\n") ==
          "a.yaml:5: sinks[0].min_severity: expected one of info, warning, error, critical");
    CHECK(error_of("sinks:\n  - name: x\n    kind: pager\n    url: http://a\n") ==
          "a.yaml:2: sinks[0].kind: expected alertmanager, slack or webhook");
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url: https://hooks.slack.com/services/T/B/C\n")
              .find("is a secret") != std::string::npos);
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url: https://hooks.slack.com/services/T/B/C\n")
              .find("services") == std::string::npos);
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: NOPE\n") ==
          "a.yaml:2: sinks[0].url_env: the variable NOPE is not set");
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: SECRET_URL\n    cooldown: soon\n") ==
          "a.yaml:5: sinks[0].cooldown: expected a duration such as 30s, 1500ms, 15m or 2h (at most 24h)");
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: SECRET_URL\n    types: [OOPS]\n") ==
          "a.yaml:5: sinks[0].types: unknown report type (see docs/reports.md)");
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: SECRET_URL\n    colour: red\n") ==
          "a.yaml:5: sinks[0].colour: unknown field");
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: SECRET_URL\n    retries: 99\n") ==
          "a.yaml:5: sinks[0].retries: expected a whole number from 0 to 20");
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url_env: SECRET_URL\n  - name: x\n    kind: slack\n"
                   "    url_env: SECRET_URL\n") == "a.yaml:5: sinks[1].name: another sink has the same name");
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url_env: PLAIN\n") ==
          "a.yaml:2: sinks[0].url_env: a Slack webhook URL starts with https:// (its path is a secret)");
    CHECK(error_of("sinks: []\n") == "a.yaml:1: sinks: expected a non-empty list of sinks");
    CHECK(error_of("sink: []\n") == "a.yaml:1: sink: unknown field (expected `sinks` or `ledger`)");
    CHECK(error_of("sinks:\n  - name: x\n    kind: slack\n    url_env: SECRET_URL\n    hmac_key_env: SECRET_URL\n") ==
          "a.yaml:2: sinks[0].hmac_key: only a webhook sink signs its messages");
    CHECK(error_of("sinks: [\n").starts_with("a.yaml:"));
    CHECK(error_of("sinks:\n  - name: x\n    kind: alertmanager\n    url: ftp://x\n") ==
          "a.yaml:2: sinks[0].url: expected an http:// or https:// URL");
    CHECK(error_of("sinks:\n  - name: x\n    kind: webhook\n    url_env: SECRET_URL\n    ca_file: /nonexistent/ca.pem\n") ==
          "a.yaml:2: sinks[0].ca_file: cannot read /nonexistent/ca.pem");
    // Through the file: the path names it.
    CHECK_THROWS_WITH(al::load_alerts_config("/nonexistent/alerts.yaml"),
                      "/nonexistent/alerts.yaml: cannot read the alerts file");
}

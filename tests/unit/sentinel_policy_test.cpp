// The pure decisions of Sentinel::watch() (sentinel_policy.hpp), with a fixed clock: feed health and staleness,
// fail-fast at start, log lines of failing watchers, following the engine pod, completion probes.
#include <execution_sentinel/sentinel_policy.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

es::FeedSample streaming(std::uint64_t id, std::uint64_t events = 0) { return {true, true, id, events}; }
es::FeedSample down() { return {true, false, 0, 0}; }

kube::WatchAttempt failure(std::error_code ec, kube::WatchAttempt::Kind kind = kube::WatchAttempt::Kind::list) {
    kube::WatchAttempt a;
    a.kind = kind;
    a.error = ec;
    a.retry_in = 1600ms;
    a.diagnostics.resource = "list pods in namespace wf";
    return a;
}
kube::WatchAttempt success(kube::WatchAttempt::Kind kind = kube::WatchAttempt::Kind::list) {
    kube::WatchAttempt a;
    a.kind = kind;
    a.ok = true;
    return a;
}

kube::Pod pod(std::string name, kube::PodPhase phase, double created, kube::Labels labels = {}) {
    kube::Pod p;
    p.meta.name = std::move(name);
    p.meta.creation_timestamp = at(created);
    p.meta.labels = std::move(labels);
    p.phase = phase;
    return p;
}

} // namespace

TEST_CASE("feed health: fresh only when pods and jobs stream, healthy after an event or the settling time",
          "[sentinel][policy][feeds]") {
    es::FeedTracker t(2s);
    auto h = t.health(at(0));
    CHECK(h.known);
    CHECK_FALSE(h.tasks_fresh); // nothing registered yet: no task state to trust
    CHECK_FALSE(h.all_healthy);

    t.sample("pods", streaming(1, 3), at(0)); // delivered events: healthy at once
    t.sample("jobs", streaming(1), at(0));    // quiet: healthy after 2 s
    t.sample("events", streaming(1), at(0));
    h = t.health(at(1));
    CHECK_FALSE(h.tasks_fresh);
    CHECK(h.unhealthy == std::vector<std::string>{"events", "jobs"});
    t.sample("jobs", streaming(1), at(2));
    t.sample("events", streaming(1), at(2));
    h = t.health(at(2));
    CHECK(h.tasks_fresh);
    CHECK(h.all_healthy);
    REQUIRE(h.healthy_since);
    CHECK(*h.healthy_since == at(2));
    auto later = t.health(at(5), h);
    CHECK(later.healthy_since == h.healthy_since); // carried over while it stays healthy

    // The pod watch goes down: stale; a new stream (another id) must prove itself again.
    t.sample("pods", down(), at(6));
    h = t.health(at(6), later);
    CHECK_FALSE(h.tasks_fresh);
    CHECK_FALSE(h.all_healthy);
    CHECK_FALSE(h.healthy_since);
    t.sample("pods", streaming(2), at(7));
    CHECK_FALSE(t.health(at(8)).tasks_fresh);
    t.sample("pods", streaming(2), at(9));
    CHECK(t.health(at(9)).tasks_fresh);
    // Reopened between two samples (another stream id) without events: settles again.
    t.sample("pods", streaming(3), at(10));
    CHECK_FALSE(t.health(at(10)).tasks_fresh);
    t.sample("pods", streaming(3, 1), at(10));
    CHECK(t.health(at(10)).tasks_fresh);

    // A watcher that is streaming but not synced (never listed) is not healthy; a removed feed no longer counts.
    t.sample("engine", {false, true, 1, 5}, at(11));
    CHECK_FALSE(t.health(at(11)).all_healthy);
    t.remove("engine");
    CHECK(t.health(at(11)).all_healthy);
}

TEST_CASE("fail fast: fatal, TLS and garbage at once; transient after N attempts; nothing once a list worked",
          "[sentinel][policy][failfast]") {
    SECTION("disabled: never") {
        es::StartupGate g(false);
        CHECK_FALSE(g.should_end("pods", failure(kube::error::malformed_response)));
        for (int i = 0; i < 10; ++i) CHECK_FALSE(g.should_end("pods", failure(kube::error::connect_failed)));
    }
    SECTION("at once") {
        for (auto e : {kube::error::unauthorized, kube::error::forbidden, kube::error::tls_verification_failed,
                       kube::error::tls_handshake_failed, kube::error::malformed_response,
                       kube::error::credentials_unavailable, kube::error::config_invalid}) {
            es::StartupGate g(true);
            CAPTURE(make_error_code(e).message());
            CHECK(g.should_end("pods", failure(e)));
        }
    }
    SECTION("transient: after 3 attempts of one watcher") {
        es::StartupGate g(true, 3);
        CHECK_FALSE(g.should_end("pods", failure(kube::error::connect_failed)));
        CHECK_FALSE(g.should_end("jobs", failure(kube::error::connect_failed)));
        CHECK_FALSE(g.should_end("pods", failure(kube::error::too_many_requests)));
        CHECK(g.should_end("pods", failure(kube::error::server_error)));
        auto e = g.error_for(failure(kube::error::server_error));
        CHECK(e.code() == kube::error::server_error);
        CHECK(std::string(e.what()).find("3 attempts in a row failed before any list succeeded") != std::string::npos);
        CHECK(std::string(e.what()).find("list pods in namespace wf") != std::string::npos);
    }
    SECTION("a list that always answers 410 is transient") {
        es::StartupGate g(true, 2);
        CHECK_FALSE(g.should_end("pods", failure(kube::error::expired)));
        CHECK(g.should_end("pods", failure(kube::error::expired)));
    }
    SECTION("once a list page arrived, nothing fails fast") {
        es::StartupGate g(true);
        CHECK_FALSE(g.should_end("jobs", success()));
        CHECK(g.started());
        CHECK_FALSE(g.should_end("pods", failure(kube::error::malformed_response)));
        for (int i = 0; i < 10; ++i) CHECK_FALSE(g.should_end("pods", failure(kube::error::connect_failed)));
    }
    SECTION("a watcher that synced before is past the start") {
        es::StartupGate g(true);
        auto f = failure(kube::error::malformed_response, kube::WatchAttempt::Kind::watch);
        f.synced = true;
        CHECK_FALSE(g.should_end("pods", f));
    }
}

TEST_CASE("attempt log: first failure, change of cause, every 10th, recovery; nothing in between",
          "[sentinel][policy][log]") {
    es::AttemptLog log(10);
    CHECK_FALSE(log.on_attempt("pods", success()));
    auto first = log.on_attempt("pods", failure(kube::error::malformed_response));
    REQUIRE(first);
    CHECK(*first == "sentinel: pods list failed: malformed response from the API server: [list pods in namespace wf]; "
                    "retrying in 1.6 s");
    for (int i = 2; i < 10; ++i) CHECK_FALSE(log.on_attempt("pods", failure(kube::error::malformed_response)));
    auto tenth = log.on_attempt("pods", failure(kube::error::malformed_response));
    REQUIRE(tenth);
    CHECK(tenth->find("(10 attempts in a row)") != std::string::npos);
    auto changed = log.on_attempt("pods", failure(kube::error::connect_failed));
    REQUIRE(changed);
    CHECK(changed->find("cannot connect") != std::string::npos);
    CHECK(log.on_attempt("jobs", failure(kube::error::connect_failed))); // feeds are separate
    auto back = log.on_attempt("pods", success(kube::WatchAttempt::Kind::watch));
    REQUIRE(back);
    CHECK(*back == "sentinel: pods watch works again after 11 failed attempts");
    CHECK_FALSE(log.on_attempt("pods", success()));
    CHECK(es::AttemptLog::format_delay(30000ms) == "30.0 s");
    CHECK(es::AttemptLog::format_delay(800ms) == "0.8 s");
}

TEST_CASE("engine following: by selector, else by name; a deleted named pod is followed by its labels",
          "[sentinel][policy][engine]") {
    CHECK(es::detail::engine_watch_target("hf-engine-1", "") ==
          es::detail::EngineWatchTarget{"", "metadata.name=hf-engine-1"});
    CHECK(es::detail::engine_watch_target("hf-engine-1", "component=hyperflow-engine") ==
          es::detail::EngineWatchTarget{"component=hyperflow-engine", ""});

    kube::Labels deployment;
    deployment.items = {{"component", "hyperflow-engine"}, {"pod-template-hash", "6c4b46d86"}};
    auto gone = pod("hf-engine-1", kube::PodPhase::running, 0, deployment);
    using T = kube::WatchEventType;
    CHECK(es::detail::engine_follow_after(T::deleted, gone, "", "") == std::optional<std::string>("component=hyperflow-engine"));
    CHECK_FALSE(es::detail::engine_follow_after(T::modified, gone, "", ""));           // not deleted
    CHECK_FALSE(es::detail::engine_follow_after(T::deleted, gone, "hf-engine-2", "")); // another engine is live
    CHECK_FALSE(es::detail::engine_follow_after(T::deleted, gone, "", "component=x")); // already by selector
    CHECK_FALSE(es::detail::engine_follow_after(T::deleted, pod("bare", kube::PodPhase::running, 0), "", ""));

    kube::Labels app;
    app.items = {{"app", "hyperflow"}, {"name", "engine"}};
    CHECK(es::detail::engine_follow_selector(app) == "app=hyperflow,name=engine");
    kube::Labels only_app;
    only_app.items = {{"app", "hyperflow"}};
    CHECK(es::detail::engine_follow_selector(only_app).empty());

    // Running before Pending, then the preferred name, then the newest; finished and terminating pods never.
    auto old_running = pod("e-old", kube::PodPhase::running, 1);
    auto new_pending = pod("e-new", kube::PodPhase::pending, 5);
    auto newer_running = pod("e-newer", kube::PodPhase::running, 3);
    auto finished = pod("e-done", kube::PodPhase::succeeded, 9);
    auto terminating = pod("e-term", kube::PodPhase::running, 10);
    terminating.meta.deletion_timestamp = at(11);
    std::vector<const kube::Pod*> pods{&old_running, &new_pending, &newer_running, &finished, &terminating};
    CHECK(es::detail::choose_engine_pod(pods, "") == "e-newer");
    CHECK(es::detail::choose_engine_pod(pods, "e-old") == "e-old");
    CHECK(es::detail::choose_engine_pod({&new_pending, &finished}, "") == "e-new");
    CHECK(es::detail::choose_engine_pod({&finished, &terminating}, "").empty());

    CHECK(es::detail::es_change_kind(T::added) == es::ChangeKind::added);
    CHECK(es::detail::es_change_kind(T::modified) == es::ChangeKind::modified);
    CHECK(es::detail::es_change_kind(T::deleted) == es::ChangeKind::deleted);
}

TEST_CASE("completion probe: which errors end the watch, which are lost contact", "[sentinel][policy][probe]") {
    auto read = es::detail::completion_probe_from(0, "0\n", "");
    CHECK(read.file_found);
    CHECK(read.content == "0\n");
    auto missing = es::detail::completion_probe_from(1, "", "cat: /work_dir/.workflow-exit-code: No such file");
    CHECK_FALSE(missing.file_found);
    CHECK(missing.error == "cat exited with status 1: cat: /work_dir/.workflow-exit-code: No such file");
    CHECK(es::detail::completion_probe_from(2, "", std::string(1000, 'x')).error.size() < 350);

    using E = kube::error;
    CHECK(es::detail::probe_error_ends_watch(E::forbidden));
    CHECK(es::detail::probe_error_ends_watch(E::unauthorized));
    for (auto e : {E::not_found, E::exec_failed, E::connect_failed, E::server_error, E::malformed_response})
        CHECK_FALSE(es::detail::probe_error_ends_watch(e));
    for (auto e : {E::connect_failed, E::timeout, E::too_many_requests, E::server_error, E::malformed_response})
        CHECK(es::detail::probe_error_is_connectivity(e));
    for (auto e : {E::not_found, E::exec_failed, E::bad_request}) CHECK_FALSE(es::detail::probe_error_is_connectivity(e));
}

// ------------------------------------------------------------------------------------------- evidence

TEST_CASE("evidence: obvious secrets are redacted, ordinary words are not", "[sentinel][policy][evidence]") {
    CHECK(es::redact_secrets("curl -H 'Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.abc.def' https://x") ==
          "curl -H 'Authorization: Bearer [redacted]' https://x");
    CHECK(es::redact_secrets("connecting with password=hunter22 to db") == "connecting with password=[redacted] to db");
    CHECK(es::redact_secrets("DB_PASSWORD=s3cr3t&user=bob") == "DB_PASSWORD=[redacted]&user=bob");
    CHECK(es::redact_secrets(R"({"token": "abc123", "n": 1})") == R"({"token": "[redacted]", "n": 1})");
    CHECK(es::redact_secrets("api_key: AKIA0123456789") == "api_key: [redacted]");
    CHECK(es::redact_secrets("fetch https://alice:pa55@example.org/data") == "fetch https://alice:[redacted]@example.org/data");
    CHECK(es::redact_secrets("Authorization: Basic YWxpY2U6cGFzc3dvcmQ=") == "Authorization: Basic [redacted]");
    // Not secrets: a key that merely starts with a secret word, words without a value, short "basic" phrases.
    CHECK(es::redact_secrets("tokenizer=bpe secrets_dir=/etc") == "tokenizer=bpe secrets_dir=/etc");
    CHECK(es::redact_secrets("the password is wrong") == "the password is wrong");
    CHECK(es::redact_secrets("basic setup done") == "basic setup done");
    CHECK(es::redact_secrets("Error: exit code 1 in frequency.py line 12") == "Error: exit code 1 in frequency.py line 12");
    CHECK(es::redact_secrets("https://example.org:8443/path@v2") == "https://example.org:8443/path@v2");
}

TEST_CASE("evidence: the tail keeps the last lines within the line and byte limits, cleaned and cut",
          "[sentinel][policy][evidence]") {
    std::vector<std::string> lines;
    for (int i = 1; i <= 30; ++i) lines.push_back("line " + std::to_string(i));
    es::EvidenceLimits limits{.max_lines = 20, .max_bytes = 4096, .max_line_bytes = 512};
    auto tail = es::evidence_log_tail(lines, limits);
    REQUIRE(tail.size() == 20);
    CHECK(tail.front() == "line 11");
    CHECK(tail.back() == "line 30");

    // The byte limit keeps the latest lines that fit together.
    limits.max_bytes = 24; // "line 28" "line 29" "line 30" = 21 bytes, a fourth does not fit
    tail = es::evidence_log_tail(lines, limits);
    CHECK(tail == std::vector<std::string>{"line 28", "line 29", "line 30"});

    // One long line is cut at a character boundary with an ellipsis; control bytes and invalid UTF-8 become '?'.
    limits = {.max_lines = 5, .max_bytes = 4096, .max_line_bytes = 10};
    tail = es::evidence_log_tail({std::string("\x1b[31mred\x1b[0m"), std::string("ééééééé"), std::string("ok\xff")},
                                 limits);
    REQUIRE(tail.size() == 3);
    CHECK(tail[0] == "?[31mre\xe2\x80\xa6");
    CHECK(tail[0].size() <= 10);
    CHECK(tail[1] == "ééé\xe2\x80\xa6");
    CHECK(tail[2] == "ok?");

    // Secrets are redacted before anything is cut.
    limits = {.max_lines = 5, .max_bytes = 4096, .max_line_bytes = 512};
    tail = es::evidence_log_tail({"login password=topsecret ok"}, limits);
    CHECK(tail == std::vector<std::string>{"login password=[redacted] ok"});

    CHECK(es::evidence_log_tail(lines, {.max_lines = 0}).empty());
    auto from_settings = es::evidence_limits_from(20, 100);
    CHECK(from_settings.max_line_bytes == 100);
    CHECK(from_settings.max_bytes == 100);
}

TEST_CASE("evidence: attached to details.evidence, the request cleared; the reason when there is no tail",
          "[sentinel][policy][evidence]") {
    es::Report r;
    r.type = es::ReportType::ANOMALY_TASK_FAILED;
    r.details["evidence"] = boost::json::object{{"exit_code", 1}};
    r.evidence_request = es::EvidenceRequest{"pod-1", "main"};
    es::EvidenceOutcome ok;
    ok.lines = std::vector<std::string>{"a", "b"};
    es::attach_evidence(r, ok, {});
    CHECK_FALSE(r.evidence_request);
    const auto& ev = r.details.at("evidence").as_object();
    CHECK(ev.at("exit_code").as_int64() == 1);
    CHECK(ev.at("log_tail") == boost::json::array{"a", "b"});
    CHECK_FALSE(ev.contains("log_tail_unavailable"));

    es::Report gone;
    gone.evidence_request = es::EvidenceRequest{"pod-2", "main"};
    es::EvidenceOutcome missing;
    missing.unavailable = es::evidence_unavailable_reason(kube::make_error_code(kube::error::not_found));
    es::attach_evidence(gone, missing, {});
    CHECK(gone.details.at("evidence").at("log_tail_unavailable") == "the pod or its log is gone");
    CHECK_FALSE(gone.details.at("evidence").as_object().contains("log_tail"));

    es::Report empty;
    es::EvidenceOutcome none;
    none.lines = std::vector<std::string>{};
    es::attach_evidence(empty, none, {});
    CHECK(empty.details.at("evidence").at("log_tail_unavailable") == "the container wrote no log lines");

    CHECK(es::evidence_unavailable_reason(kube::make_error_code(kube::error::forbidden)).find("pods/log") !=
          std::string::npos);
    CHECK(es::evidence_unavailable_reason(kube::make_error_code(kube::error::bad_request), "container x is waiting")
              .find("container x is waiting") != std::string::npos);
}

TEST_CASE("evidence queue: bounded concurrency, each report leaves once, abandoned ones say why",
          "[sentinel][policy][evidence]") {
    es::EvidenceQueue q({}, 2);
    auto make = [](std::string pod) {
        es::Report r;
        r.type = es::ReportType::ANOMALY_TASK_FAILED;
        r.task_name = pod;
        r.evidence_request = es::EvidenceRequest{pod, "main"};
        return r;
    };
    auto a = q.add(make("a"));
    auto b = q.add(make("b"));
    auto c = q.add(make("c"));
    auto f1 = q.next_fetch();
    auto f2 = q.next_fetch();
    REQUIRE(f1);
    REQUIRE(f2);
    CHECK(f1->id == a);
    CHECK(f1->request.pod == "a");
    CHECK(f2->id == b);
    CHECK_FALSE(q.next_fetch()); // two running: the limit
    CHECK(q.running() == 2);
    CHECK(q.waiting() == 1);

    es::EvidenceOutcome o;
    o.lines = std::vector<std::string>{"boom"};
    auto done = q.complete(b, o);
    REQUIRE(done);
    CHECK(done->task_name == "b");
    CHECK_FALSE(done->evidence_request);
    CHECK_FALSE(q.complete(b, o)); // never twice
    auto f3 = q.next_fetch();
    REQUIRE(f3);
    CHECK(f3->id == c);

    auto left = q.abandon("the watch ended before the log was read");
    REQUIRE(left.size() == 2);
    CHECK(left[0].task_name == "a");
    CHECK(left[1].task_name == "c");
    CHECK(left[0].details.at("evidence").at("log_tail_unavailable") == "the watch ended before the log was read");
    CHECK_FALSE(left[1].evidence_request);
    CHECK(q.empty());
    CHECK_FALSE(q.complete(a, o)); // a fetch that ends after the abandon finds its report gone
    CHECK(q.running() == 0);
}

// ------------------------------------------------------------------------------------------- metrics, engine log

TEST_CASE("metrics policy: absent or forbidden API said once and read less often; recovery logged",
          "[sentinel][policy][metrics]") {
    es::MetricsPolicy p(15s);
    auto first = p.on_failure(kube::make_error_code(kube::error::not_found), 404, "404 Not Found");
    CHECK_FALSE(first.sample.available);
    CHECK(first.sample.problem.find("not installed") != std::string::npos);
    CHECK(first.next_in == 60s);
    REQUIRE(first.log_line);
    CHECK(first.log_line->find("not installed") != std::string::npos);
    auto again = p.on_failure(kube::make_error_code(kube::error::not_found), 404, "404 Not Found");
    CHECK_FALSE(again.log_line); // once
    CHECK(again.next_in == 60s);
    kube::PodMetrics pm;
    pm.name = "p";
    auto ok = p.on_answer({pm});
    CHECK(ok.sample.available);
    CHECK(ok.sample.pods.size() == 1);
    CHECK(ok.next_in == 15s);
    REQUIRE(ok.log_line);
    CHECK(*ok.log_line == "sentinel: the metrics API answers again");
    CHECK_FALSE(p.on_answer({}).log_line);

    auto forbidden = p.on_failure(kube::make_error_code(kube::error::forbidden), 403, "403");
    CHECK(forbidden.sample.problem.find("not allowed") != std::string::npos);
    CHECK(forbidden.log_line);
    auto unavailable = p.on_failure(kube::make_error_code(kube::error::server_error), 503, "503");
    CHECK(unavailable.sample.problem.find("503") != std::string::npos);
    CHECK(unavailable.log_line); // another cause: said again
    CHECK(unavailable.next_in == 60s);
    auto refused = p.on_failure(kube::make_error_code(kube::error::connect_failed), 0, "connection refused");
    CHECK(refused.next_in == 15s);
    auto garbage = p.on_malformed("PodMetricsList: items: expected an array");
    CHECK(garbage.sample.problem.find("items: expected an array") != std::string::npos);
    CHECK(es::MetricsPolicy(10min).slow_interval() == 5min);
}

TEST_CASE("engine log: which failures wait for another engine pod", "[sentinel][policy][engine-log]") {
    CHECK_FALSE(es::engine_log_retry_after(kube::make_error_code(kube::error::forbidden)));
    CHECK_FALSE(es::engine_log_retry_after(kube::make_error_code(kube::error::not_found)));
    CHECK_FALSE(es::engine_log_retry_after(kube::make_error_code(kube::error::bad_request)));
    CHECK(es::engine_log_retry_after(kube::make_error_code(kube::error::tls_verification_failed)) == 30s);
}

TEST_CASE("view throttle: at most once per interval unless forced", "[sentinel][policy][view]") {
    es::ViewThrottle t(100ms);
    CHECK(t.due(at(0)));
    CHECK_FALSE(t.due(at(0.05)));
    CHECK(t.due(at(0.06), true));
    CHECK_FALSE(t.due(at(0.1)));
    CHECK(t.due(at(0.2)));
}

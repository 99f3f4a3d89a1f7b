// The run history store against real databases: SQLite files in a temporary directory and a PostgreSQL server
// started here from Debian's postgresql package; one contract suite runs against all three stores. Also the
// HistoryWriter through store outages, and `execution-sentinel history` end to end on a SQLite file.
#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/history/delivery_ledger.hpp>
#include <execution_sentinel/history/memory_store.hpp>
#include <execution_sentinel/history/postgres_store.hpp>
#include <execution_sentinel/history/recorder.hpp>
#include <execution_sentinel/history/sqlite_store.hpp>
#include <execution_sentinel/history/writer.hpp>

#include "../../tools/execution-sentinel/history_view.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <sqlite3.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catch.hpp"
#include "pg_server.hpp"

namespace {

namespace es = execution_sentinel;
namespace h = execution_sentinel::history;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ------------------------------------------------------------------------------------------------ helpers

constexpr std::int64_t t0 = 1'764'900'000'000; // ms since the epoch

es::Timestamp at(std::int64_t seconds) { return h::from_millis(t0 + seconds * 1000); }

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "es-history-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

h::RunRecord make_run(const std::string& id, const std::string& workflow, std::int64_t started_s) {
    h::RunRecord r;
    r.id = id;
    r.namespace_ = "hyperflow";
    r.workflow_name = workflow;
    r.context = {{"namespace", "hyperflow"}, {"engine_pod_name", "engine-" + id}};
    r.started = at(started_s);
    return r;
}

es::Report make_report(std::uint64_t seq, es::ReportType type = es::ReportType::PROGRESS, std::string task = "") {
    es::Report r;
    r.type = type;
    r.severity = type == es::ReportType::PROGRESS ? es::Severity::info : es::Severity::error;
    r.sequence = seq;
    r.timestamp = at(static_cast<std::int64_t>(seq));
    r.task_name = std::move(task);
    r.task_type = r.task_name.empty() ? "" : "frequency";
    r.completed_tasks = static_cast<int>(seq);
    r.total_tasks = 100;
    r.message = "report " + std::to_string(seq);
    r.details = {{"n", static_cast<std::int64_t>(seq)}, {"nested", {{"list", {1, 2, 3}}}}};
    return r;
}

h::TaskAttempt make_task(const std::string& run, const std::string& name, const std::string& type, int attempt,
                         std::int64_t start_s, std::optional<std::int64_t> duration_s, const std::string& status) {
    h::TaskAttempt t;
    t.run_id = run;
    t.task_name = name;
    t.task_type = type;
    t.attempt = attempt;
    t.node = "node-1";
    t.started = at(start_s);
    if (duration_s) t.ended = at(start_s + *duration_s);
    t.status = status;
    t.exit_reason = status == "failed" ? "OOMKilled" : status == "succeeded" ? "Completed" : "";
    return t;
}

template <class F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <class P> bool eventually(P&& p, std::chrono::milliseconds limit = 10s) {
    auto const until = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// Raw SQL on a SQLite file, to build old schemas, corrupt rows and locks the store did not make.
struct RawSqlite {
    sqlite3* db = nullptr;
    explicit RawSqlite(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
    ~RawSqlite() { sqlite3_close(db); }
    void exec(const std::string& sql) {
        char* err = nullptr;
        int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
        INFO(sql << ": " << (err ? err : ""));
        sqlite3_free(err);
        REQUIRE(rc == SQLITE_OK);
    }
};

// ------------------------------------------------------------------------------------------------ PostgreSQL

using execution_sentinel::test_support::PgServer;

// ------------------------------------------------------------------------------------------------ contract

/// What every store promises (store.hpp). Run against the memory, SQLite and PostgreSQL stores.
void check_store_contract(h::RunHistoryStore& s) {
    CHECK(s.schema_version() == h::latest_schema_version());
    CHECK(s.list_runs({}).empty());
    CHECK_FALSE(s.find_run("r1"));

    // Runs: first start kept, end recorded.
    s.begin_run(make_run("r1", "1000genome", 0));
    auto again = make_run("r1", "other", 99);
    s.begin_run(again);
    auto r1 = s.find_run("r1");
    REQUIRE(r1);
    CHECK(r1->workflow_name == "1000genome");
    CHECK(r1->started == at(0));
    CHECK(r1->context == make_run("r1", "1000genome", 0).context);
    CHECK(r1->outcome.empty());
    CHECK_FALSE(r1->ended);

    // Reports: idempotent per (run, sequence), read back equal and in order.
    auto rep2 = make_report(2, es::ReportType::ANOMALY_OOMKILL, "frequency_00001");
    rep2.evidence_request = es::EvidenceRequest{"pod", "main"}; // never stored
    s.record_report("r1", rep2);
    s.record_report("r1", make_report(1));
    auto changed = make_report(2);
    changed.message = "a second write of sequence 2";
    s.record_report("r1", changed);
    auto reports = s.reports("r1");
    REQUIRE(reports.size() == 2);
    CHECK(reports[0] == make_report(1));
    auto expected2 = rep2;
    expected2.evidence_request.reset();
    CHECK(reports[1] == expected2);
    CHECK(s.reports("nope").empty());

    s.end_run({"r1", at(500), "succeeded", {{"completed_tasks", 3}}});
    r1 = s.find_run("r1");
    REQUIRE(r1);
    CHECK(r1->outcome == "succeeded");
    REQUIRE(r1->ended);
    CHECK(*r1->ended == at(500));
    CHECK(r1->summary.at("completed_tasks") == 3);

    // Task attempts: upserted per (run, task, attempt); a peak is kept when a later write does not know it.
    auto running = make_task("r1", "frequency_00001", "frequency", 1, 10, std::nullopt, "running");
    running.peak_memory_bytes = 512 << 20;
    s.record_task(running);
    s.record_task(make_task("r1", "frequency_00001", "frequency", 1, 10, 30, "succeeded"));
    s.record_task(make_task("r1", "individuals_00001", "individuals", 1, 5, 10, "failed"));
    s.record_task(make_task("r1", "individuals_00001", "individuals", 2, 20, 40, "succeeded"));
    auto tasks = s.tasks("r1");
    REQUIRE(tasks.size() == 3);
    CHECK(tasks[0].task_name == "frequency_00001");
    CHECK(tasks[0].status == "succeeded");
    CHECK(tasks[0].duration_seconds() == 30.0);
    CHECK(tasks[0].peak_memory_bytes == std::optional<std::int64_t>(512 << 20));
    CHECK_FALSE(tasks[0].peak_cpu_millicores);
    CHECK(tasks[1].attempt == 1);
    CHECK(tasks[1].exit_reason == "OOMKilled");
    CHECK(tasks[2].attempt == 2);

    // A second run of the same workflow and one of another: baselines, failure rates, flaky types.
    s.begin_run(make_run("r2", "1000genome", 1000));
    s.begin_run(make_run("r3", "montage", 2000));
    const std::int64_t durations[] = {10, 20, 40, 100};
    int i = 0;
    for (auto d : durations)
        s.record_task(make_task("r2", "frequency_0000" + std::to_string(++i), "frequency", 1, 1000, d, "succeeded"));
    s.record_task(make_task("r2", "individuals_00001", "individuals", 1, 1000, 50, "succeeded"));
    s.record_task(make_task("r3", "frequency_00001", "frequency", 1, 2000, 1000, "succeeded"));

    // frequency in 1000genome: 30, 10, 20, 40, 100 → P50 30, P95 40 + 0.8 × 60 = 88.
    auto base = s.type_durations("1000genome", "frequency");
    CHECK(base.count == 5);
    CHECK(base.p50 == Approx(30));
    CHECK(base.p95 == Approx(88));
    CHECK(s.type_durations("", "frequency").count == 6);
    CHECK(s.type_durations("montage", "frequency").p50 == Approx(1000));
    CHECK(s.type_durations("1000genome", "no_such_type") == h::DurationStats{});

    auto stats = h::type_statistics(s.task_attempts("1000genome", ""));
    REQUIRE(stats.size() == 2);
    CHECK(stats[0].task_type == "frequency");
    CHECK(stats[0].failure_rate == 0);
    CHECK(stats[1].task_type == "individuals");
    CHECK(stats[1].attempts == 3);
    CHECK(stats[1].failed == 1);
    CHECK(stats[1].runs == 2);
    CHECK(stats[1].failure_rate == Approx(1.0 / 3));
    auto flaky = h::flaky_types(s.task_attempts("", ""));
    REQUIRE(flaky.size() == 1);
    CHECK(flaky[0].task_type == "individuals");
    CHECK(flaky[0].failed_runs == std::vector<std::string>{"r1"});
    CHECK(flaky[0].passed_runs == std::vector<std::string>{"r2"});

    // Listing: newest first, filtered, limited.
    auto runs = s.list_runs({});
    REQUIRE(runs.size() == 3);
    CHECK(runs[0].id == "r3");
    CHECK(runs[2].id == "r1");
    CHECK(s.list_runs({"1000genome", 1}).size() == 1);
    CHECK(s.list_runs({"1000genome", 1})[0].id == "r2");

    // Alert deliveries: upserted per (sink, key).
    CHECK_FALSE(s.find_delivery("slack", "r1|task/x|ANOMALY_OOMKILL"));
    h::AlertDelivery d{"r1", "slack", "r1|task/x|ANOMALY_OOMKILL", "failed", 1, "HTTP 500", at(600)};
    s.record_delivery(d);
    d.state = "sent";
    d.attempts = 2;
    d.last_error.clear();
    d.time = at(601);
    s.record_delivery(d);
    auto found = s.find_delivery("slack", "r1|task/x|ANOMALY_OOMKILL");
    REQUIRE(found);
    CHECK(*found == d);
    CHECK_FALSE(s.find_delivery("webhook", "r1|task/x|ANOMALY_OOMKILL"));

    // Checkpoints: one per run, replaced.
    CHECK_FALSE(s.load_checkpoint("r1"));
    s.save_checkpoint("r1", {{"ledger", {"PROGRESS|workflow|1"}}, {"last_sequence", 1}});
    s.save_checkpoint("r1", {{"ledger", {"PROGRESS|workflow|1", "COMPLETION|workflow|"}}, {"last_sequence", 7}});
    auto cp = s.load_checkpoint("r1");
    REQUIRE(cp);
    CHECK(cp->at("last_sequence") == 7);
    CHECK(cp->at("ledger").as_array().size() == 2);

    // A batch is all or nothing: an invalid record refuses the whole batch.
    std::vector<h::HistoryRecord> batch{h::ReportRecord{"r2", make_report(1)}, h::ReportRecord{"r2", make_report(0)}};
    CHECK_THROWS_AS(s.write(batch), std::invalid_argument);
    CHECK(s.reports("r2").empty());
    batch.pop_back();
    batch.push_back(h::ReportRecord{"r2", make_report(2)});
    s.write(batch);
    CHECK(s.reports("r2").size() == 2);

    // Retention: finished runs beyond the newest one, or older than the age limit, go with everything of theirs;
    // runs in progress stay.
    s.end_run({"r2", at(1500), "failed", {}});
    CHECK(s.prune({std::nullopt, 1}, at(3000)) == 1); // r1 (older finished) goes, r2 stays, r3 runs
    CHECK_FALSE(s.find_run("r1"));
    CHECK(s.reports("r1").empty());
    CHECK(s.tasks("r1").empty());
    CHECK_FALSE(s.load_checkpoint("r1"));
    CHECK_FALSE(s.find_delivery("slack", "r1|task/x|ANOMALY_OOMKILL"));
    CHECK(s.find_run("r2"));
    CHECK(s.prune({std::chrono::seconds(3600), 0}, at(1500 + 3599)) == 0);
    CHECK(s.prune({std::chrono::seconds(3600), 0}, at(1500 + 3601)) == 1);
    CHECK_FALSE(s.find_run("r2"));
    CHECK(s.find_run("r3")); // never finished: kept
}

// ------------------------------------------------------------------------------------------------ tests

TEST_CASE("history store contract: memory", "[history]") {
    h::MemoryHistoryStore store;
    check_store_contract(store);
}

TEST_CASE("history store contract: SQLite file", "[history][sqlite]") {
    TempDir dir;
    {
        h::SqliteHistoryStore store(dir.file("history.db"));
        check_store_contract(store);
    }
    // What was written is in the file: a second store on it reads it back (r3 survived the pruning).
    h::SqliteHistoryStore reopened(dir.file("history.db"));
    REQUIRE(reopened.find_run("r3"));
    CHECK(reopened.task_attempts("montage", "").size() == 1);
    RawSqlite raw(dir.file("history.db"));
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(raw.db, "PRAGMA journal_mode", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "wal");
    sqlite3_finalize(st);
}

TEST_CASE("history store contract: PostgreSQL server", "[history][postgresql]") {
    auto& server = PgServer::instance();
    if (!server.skip().empty()) {
        WARN("SKIP: PostgreSQL history store tests: " << server.skip());
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    h::PostgresHistoryStore store(server.create_database());
    check_store_contract(store);
}

TEST_CASE("history: PostgreSQL migrates once with two sentinels and reconnects after a restart",
          "[history][postgresql]") {
    auto& server = PgServer::instance();
    if (!server.skip().empty()) {
        WARN("SKIP: PostgreSQL history store tests: " << server.skip());
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    const auto uri = server.create_database();
    // Two sentinels open the same new database at once: the advisory lock serializes the migration.
    std::string e1, e2;
    std::thread a([&] { e1 = error_of([&] { h::PostgresHistoryStore s(uri); }); });
    std::thread b([&] { e2 = error_of([&] { h::PostgresHistoryStore s(uri); }); });
    a.join();
    b.join();
    CHECK(e1.empty());
    CHECK(e2.empty());
    auto store = std::make_shared<h::PostgresHistoryStore>(uri);
    CHECK(store->schema_version() == h::latest_schema_version());

    // The writer keeps what it accepted while the server is down and writes it once the server is back.
    std::mutex m;
    std::vector<std::string> lines;
    h::HistoryWriterOptions opts;
    opts.retry_initial = 20ms;
    opts.retry_max = 200ms;
    opts.on_status = [&](std::string_view l) {
        std::lock_guard lock(m);
        lines.emplace_back(l);
    };
    h::HistoryWriter writer(store, opts);
    writer.push(make_run("pg1", "1000genome", 0));
    REQUIRE(writer.flush(10s));
    REQUIRE(server.stop());
    for (std::uint64_t i = 1; i <= 50; ++i) CHECK(writer.push_report("pg1", make_report(i)));
    CHECK(eventually([&] { return writer.stats().degraded; }));
    REQUIRE(server.start());
    CHECK(writer.flush(30s));
    CHECK(store->reports("pg1").size() == 50);
    std::lock_guard lock(m);
    CHECK(std::count_if(lines.begin(), lines.end(), [](auto& l) { return contains(l, "unavailable"); }) == 1);
    CHECK(std::count_if(lines.begin(), lines.end(), [](auto& l) { return contains(l, "available again"); }) == 1);
}

TEST_CASE("history: a PostgreSQL error never quotes the password", "[history][postgresql]") {
    auto const message = error_of([] { h::PostgresHistoryStore s("postgresql://sentinel:hunter2secret@127.0.0.1:1/x"); });
    CHECK(contains(message, "cannot connect"));
    CHECK(contains(message, "sentinel:***@127.0.0.1:1"));
    CHECK_FALSE(contains(message, "hunter2secret"));
    auto const query = error_of(
        [] { h::PostgresHistoryStore s("postgresql://127.0.0.1:1/x?user=a&password=hunter2secret&connect_timeout=2"); });
    CHECK(contains(query, "password=***"));
    CHECK_FALSE(contains(query, "hunter2secret"));
}

TEST_CASE("history: the alert delivery ledger kept in a SQLite store survives reopening", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("ledger.db");
    es::alerts::DeliveryRecord sent{"r1", "slack", "r1|task/x|ANOMALY_OOMKILL", "sent", 2, "", at(5)};
    {
        h::StoreDeliveryLedger ledger(std::make_shared<h::SqliteHistoryStore>(path));
        CHECK_FALSE(ledger.find("slack", sent.key));
        ledger.record({"r1", "slack", sent.key, "failed", 1, "HTTP 500 from https://hooks.slack.com/…", at(4)});
        ledger.record(sent);
    }
    h::StoreDeliveryLedger reopened(std::make_shared<h::SqliteHistoryStore>(path));
    auto found = reopened.find("slack", sent.key);
    REQUIRE(found);
    CHECK(*found == sent);
    CHECK_FALSE(reopened.find("webhook", sent.key));
    // A record the store refuses is an exception, as the ledger interface says.
    CHECK_THROWS_AS(reopened.record({"r1", "slack", "k", "unknown-state", 1, "", at(6)}), std::exception);
}

TEST_CASE("history: SQLite schema migrates from version 1 and keeps its rows", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("old.db");
    {
        RawSqlite raw(path);
        raw.exec(std::string(h::schema_migrations()[0]));
        raw.exec("CREATE TABLE sentinel_schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);"
                 "INSERT INTO sentinel_schema_migrations VALUES (1, 0);");
        raw.exec("INSERT INTO sentinel_runs VALUES ('old', 'ns', 'wf', '{}', " + std::to_string(t0) + ", NULL, NULL, NULL);"
                 "INSERT INTO sentinel_task_attempts VALUES ('old', 'a', 1, 'frequency', 'n1', " + std::to_string(t0) +
                 ", " + std::to_string(t0 + 5000) + ", 'succeeded', 'Completed');");
    }
    h::SqliteHistoryStore store(path);
    CHECK(store.schema_version() == 2);
    auto tasks = store.tasks("old");
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].duration_seconds() == 5.0);
    CHECK_FALSE(tasks[0].peak_memory_bytes);
    auto t = tasks[0];
    t.peak_memory_bytes = 1 << 30;
    store.record_task(t);
    CHECK(store.tasks("old")[0].peak_memory_bytes == std::optional<std::int64_t>(1 << 30));
    store.record_delivery({"old", "webhook", "k", "sent", 1, "", at(1)});
    CHECK(store.find_delivery("webhook", "k"));

    // A schema newer than this program is refused, not misread.
    RawSqlite(path).exec("INSERT INTO sentinel_schema_migrations VALUES (99, 0)");
    CHECK(contains(error_of([&] { h::SqliteHistoryStore s(path); }), "schema version 99 is newer"));
}

TEST_CASE("history: corrupt SQLite rows are errors naming the row and column", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("corrupt.db");
    h::SqliteHistoryStore store(path);
    RawSqlite raw(path);
    const auto ts = std::to_string(t0);
    raw.exec("INSERT INTO sentinel_reports VALUES ('a', 1, 'PROGRESS', 'info', '', '', 0, '{not json');");
    CHECK(contains(error_of([&] { store.reports("a"); }), "sentinel_reports row (run a, sequence 1): body: not valid JSON"));

    auto body = boost::json::serialize(es::to_json(make_report(7)));
    raw.exec("INSERT INTO sentinel_reports VALUES ('b', 2, 'PROGRESS', 'info', '', '', 0, '" + body + "');");
    CHECK(contains(error_of([&] { store.reports("b"); }), "its sequence differs"));

    raw.exec("INSERT INTO sentinel_reports VALUES ('c', 1, 'PROGRESS', 'info', '', '', 0, '{\"type\":\"NOPE\"}');");
    CHECK(contains(error_of([&] { store.reports("c"); }), "body: type: unknown report type"));

    raw.exec("INSERT INTO sentinel_runs VALUES ('d', 'ns', 'wf', '[1]', " + ts + ", NULL, NULL, NULL);");
    CHECK(contains(error_of([&] { store.find_run("d"); }), "sentinel_runs row (id d): context: expected a JSON object"));
    CHECK(contains(error_of([&] { store.list_runs({}); }), "sentinel_runs row (id d)"));

    raw.exec("INSERT INTO sentinel_runs VALUES ('e', 'ns', 'wf', '{}', 'yesterday', NULL, NULL, NULL);");
    CHECK(contains(error_of([&] { store.find_run("e"); }), "started_at: expected an integer"));

    raw.exec("INSERT INTO sentinel_runs VALUES ('f', 'ns', 'wf', '{}', " + ts + ", NULL, 'Not An Outcome!', NULL);");
    CHECK(contains(error_of([&] { store.find_run("f"); }), "outcome: not an outcome word"));

    raw.exec("INSERT INTO sentinel_task_attempts VALUES ('g', 't', 1, 'x', '', NULL, NULL, 'weird', '', NULL, NULL);");
    CHECK(contains(error_of([&] { store.tasks("g"); }), "sentinel_task_attempts row (run g, task t): status"));
    raw.exec("INSERT INTO sentinel_task_attempts VALUES ('h', 't', 0, 'x', '', NULL, NULL, 'running', '', NULL, NULL);");
    CHECK(contains(error_of([&] { store.tasks("h"); }), "attempt: out of range"));
    raw.exec("INSERT INTO sentinel_task_attempts VALUES ('i', 't', 1, 'x', '', NULL, NULL, 'running', '', -5, NULL);");
    CHECK(contains(error_of([&] { store.tasks("i"); }), "peak_memory_bytes: negative"));
    raw.exec("INSERT INTO sentinel_task_attempts VALUES ('j', 't', 1, 'x', '', 1.5, NULL, 'running', '', NULL, NULL);");
    CHECK(contains(error_of([&] { store.tasks("j"); }), "started_at: expected an integer"));

    raw.exec("INSERT INTO sentinel_alert_deliveries VALUES ('s', 'k', 'r', 'bogus', 1, '', 0);");
    CHECK(contains(error_of([&] { store.find_delivery("s", "k"); }), "state: expected sent, failed or dead"));
    raw.exec("INSERT INTO sentinel_checkpoints VALUES ('k', '42', 0);");
    CHECK(contains(error_of([&] { store.load_checkpoint("k"); }), "sentinel_checkpoints row (run k): body: expected a JSON object"));

    // The store keeps working for the rows that are fine.
    store.begin_run(make_run("ok", "wf", 0));
    CHECK(store.find_run("ok"));
}

TEST_CASE("history: missing SQLite file without create is an error, with create it is made", "[history][sqlite]") {
    TempDir dir;
    h::SqliteOptions no_create;
    no_create.create = false;
    CHECK(contains(error_of([&] { h::SqliteHistoryStore s(dir.file("none.db"), no_create); }), "cannot open"));
    CHECK_FALSE(fs::exists(dir.file("none.db")));
    CHECK(contains(error_of([&] { h::SqliteHistoryStore s(dir.file("no/such/dir.db")); }), "cannot open"));
    h::SqliteHistoryStore made(dir.file("new.db"));
    CHECK(fs::exists(dir.file("new.db")));
}

TEST_CASE("history: sentinels opening one new SQLite file at once all open it", "[history][sqlite]") {
    // Two replicas of serve started together on a shared file: the first switches it to WAL and migrates it while
    // the others open it too; none may fail with "database is locked".
    for (int round = 0; round < 10; ++round) {
        TempDir dir;
        const auto path = dir.file("shared.db");
        std::atomic<int> ready{0};
        std::vector<std::string> errors(6);
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < errors.size(); ++i)
            threads.emplace_back([&, i] {
                ++ready;
                while (ready < static_cast<int>(errors.size())) std::this_thread::yield();
                try {
                    h::SqliteHistoryStore s(path);
                    (void)s.list_runs({});
                } catch (const std::exception& e) {
                    errors[i] = e.what();
                }
            });
        for (auto& t : threads) t.join();
        for (const auto& e : errors) {
            INFO("round " << round << ": " << e);
            CHECK(e.empty());
        }
        h::SqliteHistoryStore check(path);
        CHECK(check.schema_version() == h::latest_schema_version());
    }
}

TEST_CASE("history: SQLite retention setting prunes old runs when the store is opened", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("retention.db");
    {
        h::SqliteHistoryStore s(path);
        for (int i = 0; i < 5; ++i) {
            const auto id = "run" + std::to_string(i);
            s.begin_run(make_run(id, "wf", i * 100));
            s.record_report(id, make_report(1));
            s.end_run({id, at(i * 100 + 50), "succeeded", {}});
        }
        s.begin_run(make_run("live", "wf", 0)); // in progress: never pruned
    }
    h::SqliteOptions opts;
    opts.retention = h::RetentionPolicy{std::nullopt, 2};
    h::SqliteHistoryStore s(path, opts);
    auto runs = s.list_runs({});
    REQUIRE(runs.size() == 3);
    CHECK(runs[0].id == "run4");
    CHECK(runs[1].id == "run3");
    CHECK(runs[2].id == "live");
    CHECK(s.reports("run0").empty());
    CHECK(s.reports("run4").size() == 1);
}

TEST_CASE("history: a SQLite reader sees whole batches while the writer thread writes", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("concurrent.db");
    auto store = std::make_shared<h::SqliteHistoryStore>(path);
    h::HistoryWriterOptions opts;
    opts.batch = 64;
    h::HistoryWriter writer(store, opts);
    h::SqliteHistoryStore reader(path);
    constexpr std::uint64_t n = 3000;
    std::thread producer([&] {
        writer.push(make_run("c", "wf", 0));
        for (std::uint64_t i = 1; i <= n; ++i) writer.push_report("c", make_report(i));
    });
    std::size_t last = 0, reads = 0;
    bool prefix = true, monotonic = true;
    auto const until = std::chrono::steady_clock::now() + 60s;
    while (last < n && std::chrono::steady_clock::now() < until) {
        auto reports = reader.reports("c"); // a separate connection, as a second process would have
        ++reads;
        for (std::size_t i = 0; i < reports.size(); ++i)
            if (reports[i].sequence != i + 1) prefix = false;
        if (reports.size() < last) monotonic = false;
        last = reports.size();
    }
    CHECK(monotonic);
    producer.join();
    CHECK(writer.flush(20s));
    CHECK(prefix);
    CHECK(reader.reports("c").size() == n);
    CHECK(writer.stats().written == n + 1);
    CHECK(writer.stats().dropped == 0);
    CHECK(reads > 1);
}

TEST_CASE("history: the writer survives a locked SQLite file and catches up", "[history][sqlite]") {
    TempDir dir;
    const auto path = dir.file("locked.db");
    h::SqliteOptions so;
    so.busy_timeout = 20ms;
    auto store = std::make_shared<h::SqliteHistoryStore>(path, so);
    std::mutex m;
    std::vector<std::string> lines;
    h::HistoryWriterOptions opts;
    opts.retry_initial = 10ms;
    opts.retry_max = 100ms;
    opts.on_status = [&](std::string_view l) {
        std::lock_guard lock(m);
        lines.emplace_back(l);
    };
    h::HistoryWriter writer(store, opts);

    RawSqlite locker(path);
    locker.exec("BEGIN EXCLUSIVE"); // another process holds the write lock
    const auto started = std::chrono::steady_clock::now();
    writer.push(make_run("L", "wf", 0));
    for (std::uint64_t i = 1; i <= 200; ++i) REQUIRE(writer.push_report("L", make_report(i)));
    // push() never waited for the store.
    CHECK(std::chrono::steady_clock::now() - started < 1s);
    REQUIRE(eventually([&] { return writer.stats().failures >= 3; }));
    CHECK(writer.stats().degraded);
    CHECK(writer.stats().written == 0);
    CHECK(writer.stats().queued == 201);
    CHECK_FALSE(writer.flush(50ms));
    locker.exec("COMMIT");

    REQUIRE(writer.flush(10s));
    CHECK(store->reports("L").size() == 200);
    auto s = writer.stats();
    CHECK(s.written == 201);
    CHECK(s.dropped == 0);
    CHECK_FALSE(s.degraded);
    std::lock_guard lock(m);
    REQUIRE(lines.size() == 2); // said once each, however many retries failed
    CHECK(contains(lines[0], "history store unavailable"));
    CHECK(contains(lines[0], "locked"));
    CHECK(contains(lines[1], "available again"));
}

TEST_CASE("history: a full writer queue drops, counts and says so once; never blocks", "[history]") {
    auto store = std::make_shared<h::MemoryHistoryStore>();
    store->set_available(false);
    std::vector<std::string> lines;
    std::mutex m;
    h::HistoryWriterOptions opts;
    opts.capacity = 10;
    opts.retry_initial = 5ms;
    opts.retry_max = 20ms;
    opts.on_status = [&](std::string_view l) {
        std::lock_guard lock(m);
        lines.emplace_back(l);
    };
    h::HistoryWriter writer(store, opts);
    writer.push(make_run("q", "wf", 0));
    int accepted = 1;
    for (std::uint64_t i = 1; i <= 14; ++i) accepted += writer.push_report("q", make_report(i)) ? 1 : 0;
    CHECK(accepted == 10);
    CHECK(writer.stats().dropped == 5);
    store->set_available(true);
    REQUIRE(writer.flush(10s));
    CHECK(store->reports("q").size() == 9);
    std::lock_guard lock(m);
    CHECK(std::count_if(lines.begin(), lines.end(), [](auto& l) { return contains(l, "queue is full"); }) == 1);
}

TEST_CASE("history: closing the writer while the store is down says what was not written", "[history]") {
    auto store = std::make_shared<h::MemoryHistoryStore>();
    store->set_available(false);
    std::vector<std::string> lines;
    h::HistoryWriterOptions opts;
    opts.retry_initial = 5ms;
    opts.on_status = [&](std::string_view l) { lines.emplace_back(l); };
    auto writer = std::make_unique<h::HistoryWriter>(store, opts);
    writer->push(make_run("x", "wf", 0));
    writer->push_report("x", make_report(1));
    const auto started = std::chrono::steady_clock::now();
    CHECK(writer->close(200ms) == 2);
    CHECK(std::chrono::steady_clock::now() - started < 3s);
    REQUIRE_FALSE(lines.empty());
    CHECK(contains(lines.back(), "2 records were not written"));
    CHECK_FALSE(writer->push_report("x", make_report(2)));
    CHECK(writer->stats().dropped == 1);
}

TEST_CASE("history: an invalid record does not hold back the rest of its batch", "[history]") {
    auto store = std::make_shared<h::MemoryHistoryStore>();
    std::vector<std::string> lines;
    h::HistoryWriterOptions opts;
    opts.on_status = [&](std::string_view l) { lines.emplace_back(l); };
    {
        h::HistoryWriter writer(store, opts);
        // Queued together so that they share one batch.
        store->set_available(false);
        writer.push(make_run("v", "wf", 0));
        writer.push_report("v", make_report(0)); // invalid: sequence 0
        writer.push_report("v", make_report(1));
        REQUIRE(eventually([&] { return writer.stats().failures > 0; }));
        store->set_available(true);
        REQUIRE(writer.flush(10s));
    }
    CHECK(store->find_run("v"));
    CHECK(store->reports("v").size() == 1);
    REQUIRE_FALSE(lines.empty());
    CHECK(std::count_if(lines.begin(), lines.end(), [](auto& l) { return contains(l, "invalid"); }) == 1);
}

TEST_CASE("history: the writer records a report channel's reports", "[history]") {
    boost::asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto subscription = channel.subscribe();
    auto store = std::make_shared<h::MemoryHistoryStore>();
    h::HistoryWriter writer(store);
    writer.push(make_run("ch", "wf", 0));
    boost::asio::co_spawn(io, writer.record(subscription, "ch"), boost::asio::detached);
    for (std::uint64_t i = 1; i <= 40; ++i)
        channel.publish(make_report(i, i % 2 ? es::ReportType::PROGRESS : es::ReportType::ANOMALY_STALL, "t"));
    channel.close();
    io.run();
    REQUIRE(writer.flush(10s));
    auto reports = store->reports("ch");
    REQUIRE(reports.size() == 40);
    CHECK(reports.back().type == es::ReportType::ANOMALY_STALL);
}

TEST_CASE("history: store addresses", "[history]") {
    CHECK(h::parse_store_location("sqlite:state.db") == h::StoreLocation{h::StoreKind::sqlite, "state.db"});
    CHECK(h::parse_store_location("sqlite:///var/lib/s.db") == h::StoreLocation{h::StoreKind::sqlite, "/var/lib/s.db"});
    CHECK(h::parse_store_location("/var/lib/s.db") == h::StoreLocation{h::StoreKind::sqlite, "/var/lib/s.db"});
    CHECK(h::parse_store_location("memory:").kind == h::StoreKind::memory);
    auto pg = h::parse_store_location("postgresql://sentinel:pw1234@db:5432/history?sslmode=require");
    CHECK(pg.kind == h::StoreKind::postgresql);
    CHECK(pg.display() == "postgresql://sentinel:***@db:5432/history?sslmode=require");
    CHECK(h::parse_store_location("postgres://db/x?password=abc&user=u").display() ==
          "postgres://db/x?password=***&user=u");
    for (const char* bad : {"", "sqlite:", "mysql://db/x", "sqlite:a\nb"})
        CHECK_THROWS_AS(h::parse_store_location(bad), h::StoreAddressError);

    namespace hv = execution_sentinel::cli::history_view;
    std::map<std::string, std::string> env;
    auto lookup = [&](const char* n) -> std::optional<std::string> {
        auto it = env.find(n);
        return it == env.end() ? std::nullopt : std::optional(it->second);
    };
    CHECK_FALSE(hv::store_address("", lookup));
    env["SENTINEL_STATE"] = "/var/lib/sentinel.db";
    CHECK(hv::store_address("", lookup) == "sqlite:/var/lib/sentinel.db");
    env["SENTINEL_HISTORY"] = "postgresql://db/h";
    CHECK(hv::store_address("", lookup) == "postgresql://db/h");
    CHECK(hv::store_address("sqlite:x.db", lookup) == "sqlite:x.db");
}

TEST_CASE("history: percentiles interpolate between ranks", "[history]") {
    CHECK(h::percentile({}, 50) == 0);
    CHECK(h::percentile({7}, 95) == 7);
    CHECK(h::percentile({4, 1, 3, 2}, 50) == Approx(2.5));
    CHECK(h::percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 95) == Approx(9.55));
    CHECK(h::percentile({1, 2}, 0) == 1);
    CHECK(h::percentile({1, 2}, 100) == 2);
}

es::Report lifecycle(std::uint64_t seq, es::ReportType type, const std::string& task, int attempt,
                     std::optional<double> runtime = std::nullopt, const std::string& reason = "") {
    es::Report r;
    r.type = type;
    r.sequence = seq;
    r.timestamp = at(static_cast<std::int64_t>(seq) * 10);
    r.task_name = task;
    r.task_type = "individuals";
    r.details = {{"attempt", attempt}};
    if (runtime) r.details["runtime_seconds"] = *runtime;
    if (!reason.empty()) r.details["reason"] = reason;
    return r;
}

TEST_CASE("history: task attempts from the lifecycle reports", "[history]") {
    h::TaskAttemptTracker tracker;
    CHECK_FALSE(tracker.update("r", make_report(1))); // not a lifecycle report
    auto started = tracker.update("r", lifecycle(1, es::ReportType::TASK_STARTED, "ind_1", 1));
    REQUIRE(started);
    CHECK(started->status == "running");
    CHECK(started->started == at(10));
    CHECK_FALSE(started->ended);
    auto failed = tracker.update("r", lifecycle(3, es::ReportType::TASK_FAILED, "ind_1", 1, 15.0, "OOMKilled"));
    REQUIRE(failed);
    CHECK(failed->status == "failed");
    CHECK(failed->exit_reason == "OOMKilled");
    CHECK(failed->ended == at(30));
    CHECK(failed->started == at(15)); // the runtime the report gives wins over the start seen
    CHECK_FALSE(tracker.update("r", lifecycle(4, es::ReportType::TASK_RETRIED, "ind_1", 2)));
    tracker.update("r", lifecycle(5, es::ReportType::TASK_STARTED, "ind_1", 2));
    auto done = tracker.update("r", lifecycle(7, es::ReportType::TASK_COMPLETED, "ind_1", 2));
    REQUIRE(done);
    CHECK(done->attempt == 2);
    CHECK(done->status == "succeeded");
    CHECK(done->duration_seconds() == 20.0);
    CHECK(done->exit_reason == "Completed");
    // A failure the engine's log shows after the cluster said "completed" marks the newest attempt failed.
    es::Report engine_failure = make_report(9, es::ReportType::ANOMALY_TASK_FAILED, "ind_1");
    engine_failure.details = {{"reason", "exit code 1 (engine log)"}};
    auto overruled = tracker.update("r", engine_failure);
    REQUIRE(overruled);
    CHECK(overruled->attempt == 2);
    CHECK(overruled->status == "failed");
    CHECK(overruled->exit_reason == "exit code 1 (engine log)");
    CHECK(overruled->ended == at(70)); // the attempt's own end is kept
    es::Report oom = make_report(10, es::ReportType::ANOMALY_OOMKILL, "never_seen");
    auto unseen = tracker.update("r", oom);
    REQUIRE(unseen);
    CHECK(unseen->attempt == 1);
    CHECK(unseen->exit_reason == "OOMKilled");
    CHECK(unseen->status == "failed");
    // A malformed attempt or runtime is ignored, not trusted.
    auto odd = tracker.update("r", lifecycle(8, es::ReportType::TASK_COMPLETED, "ind_2", -3, -1.0));
    REQUIRE(odd);
    CHECK(odd->attempt == 1);
    CHECK_FALSE(odd->started);
}

TEST_CASE("history: RunRecorder records a run from a report channel into SQLite", "[history][sqlite]") {
    TempDir dir;
    auto store = std::make_shared<h::SqliteHistoryStore>(dir.file("rec.db"));
    es::MonitoringContext ctx;
    ctx.namespace_ = "wf-1000g";
    ctx.engine_pod_name = "hyperflow-engine-abc";
    std::string run_id;
    {
        h::HistoryWriter writer(store);
        h::RunRecorder recorder(writer, h::make_run_record(ctx, "1000genome", at(0)));
        run_id = recorder.run_id();
        boost::asio::io_context io;
        es::ReportChannel channel(io.get_executor());
        auto subscription = channel.subscribe(h::RunRecorder::subscription_options());
        boost::asio::co_spawn(io, recorder.record(subscription), boost::asio::detached);
        channel.publish(lifecycle(1, es::ReportType::TASK_STARTED, "ind_1", 1));
        channel.publish(make_report(2));
        channel.publish(lifecycle(3, es::ReportType::TASK_COMPLETED, "ind_1", 1, 20.0));
        channel.close();
        io.run();
        es::WatchSummary summary;
        summary.exit_code = 0;
        summary.completed_tasks = 1;
        recorder.finish(at(60), std::string(es::to_string(summary.outcome())), summary);
        REQUIRE(writer.flush(10s));
    }
    CHECK(run_id == "wf-1000g/hyperflow-engine-abc/" + es::format_timestamp(at(0)));
    auto run = store->find_run(run_id);
    REQUIRE(run);
    CHECK(run->workflow_name == "1000genome");
    CHECK(run->outcome == "succeeded");
    CHECK(run->summary.at("completed_tasks") == 1);
    CHECK(es::context_from_json(run->context) == ctx);
    CHECK(store->reports(run_id).size() == 3);
    auto tasks = store->tasks(run_id);
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].status == "succeeded");
    CHECK(tasks[0].duration_seconds() == 20.0);
    CHECK(store->type_durations("1000genome", "individuals").p50 == Approx(20));
}

// ------------------------------------------------------------------------------------------------ the command

struct CommandResult {
    int status = -1;
    std::string out, err;
};

CommandResult run_cli(const std::string& args, const std::string& env = "") {
    TempDir io;
    const std::string bin = EXECUTION_SENTINEL_BINARY_DIR "/tools/execution-sentinel/execution-sentinel";
    const std::string line = "cd " + io.path.string() + " && " + env + " " + bin + " " + args + " >" + io.file("out") +
                             " 2>" + io.file("err") + " </dev/null";
    CommandResult r;
    const int raw = std::system(line.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    std::ifstream o(io.file("out")), e(io.file("err"));
    std::stringstream so, se;
    so << o.rdbuf();
    se << e.rdbuf();
    r.out = so.str();
    r.err = se.str();
    return r;
}

TEST_CASE("execution-sentinel history answers from a real SQLite file", "[history][cli]") {
    if (!fs::exists(EXECUTION_SENTINEL_BINARY_DIR "/tools/execution-sentinel/execution-sentinel")) {
        WARN("SKIP: the execution-sentinel program is not built");
        SUCCEED("skipped (the warning above says why)");
        return;
    }
    TempDir dir;
    const auto db = dir.file("h.db");
    {
        h::SqliteHistoryStore s(db);
        s.begin_run(make_run("run-a", "1000genome", 0));
        s.begin_run(make_run("run-b", "1000genome", 100));
        s.record_report("run-a", make_report(1));
        s.record_report("run-a", make_report(2, es::ReportType::ANOMALY_OOMKILL, "individuals_1"));
        s.record_task(make_task("run-a", "individuals_1", "individuals", 1, 0, 20, "failed"));
        s.record_task(make_task("run-a", "individuals_1", "individuals", 2, 30, 40, "succeeded"));
        s.record_task(make_task("run-b", "individuals_1", "individuals", 1, 100, 60, "succeeded"));
        s.end_run({"run-a", at(90), "failed", {}});
    }
    const std::string store = "--store sqlite:" + db;

    auto runs = run_cli("history " + store + " runs");
    REQUIRE(runs.status == 0);
    auto rj = boost::json::parse(runs.out).as_object();
    REQUIRE(rj.at("runs").as_array().size() == 2);
    CHECK(rj.at("runs").as_array()[0].at("id") == "run-b");
    CHECK(rj.at("runs").as_array()[0].at("outcome") == "running");
    CHECK(rj.at("runs").as_array()[1].at("outcome") == "failed");
    CHECK(rj.at("runs").as_array()[1].at("duration_seconds").as_double() == Approx(90));

    auto show = run_cli("history show run-a " + store);
    REQUIRE(show.status == 0);
    auto sj = boost::json::parse(show.out).as_object();
    CHECK(sj.at("reports").as_array().size() == 2);
    CHECK(sj.at("tasks").as_array().size() == 2);
    CHECK(sj.at("reports").as_array()[1].at("type") == "ANOMALY_OOMKILL");

    auto types = run_cli("history types " + store);
    REQUIRE(types.status == 0);
    auto tj = boost::json::parse(types.out).as_object().at("types").as_array();
    REQUIRE(tj.size() == 1);
    CHECK(tj[0].at("task_type") == "individuals");
    CHECK(tj[0].at("failure_rate").as_double() == Approx(1.0 / 3));
    CHECK(tj[0].at("p50_seconds").as_double() == Approx(50)); // 40 and 60
    CHECK(tj[0].at("p95_seconds").as_double() == Approx(59));

    auto flaky = run_cli("history flaky " + store);
    REQUIRE(flaky.status == 0);
    auto fj = boost::json::parse(flaky.out).as_object().at("flaky").as_array();
    REQUIRE(fj.size() == 1);
    CHECK(fj[0].at("failed_runs").as_array()[0] == "run-a");

    auto text = run_cli("history runs -o text", "SENTINEL_STATE=" + db);
    REQUIRE(text.status == 0);
    CHECK(contains(text.out, "RUN"));
    CHECK(contains(text.out, "run-a"));
    CHECK(contains(text.out, "1 min 30 s"));

    // Bad input: exit 2 and one line saying what.
    auto missing = run_cli("history show nope " + store);
    CHECK(missing.status == 2);
    CHECK(contains(missing.err, "no run nope"));
    auto scheme = run_cli("history --store mysql://db/x runs");
    CHECK(scheme.status == 2);
    CHECK(contains(scheme.err, "unknown scheme"));
    auto nofile = run_cli("history --store sqlite:" + dir.file("absent.db") + " runs");
    CHECK(nofile.status == 2);
    CHECK(contains(nofile.err, "cannot open"));
    CHECK_FALSE(fs::exists(dir.file("absent.db")));
    auto nostore = run_cli("history runs", "env -u SENTINEL_HISTORY -u SENTINEL_STATE");
    CHECK(nostore.status == 2);
    CHECK(contains(nostore.err, "no history store"));
    auto badout = run_cli("history runs -o yaml " + store);
    CHECK(badout.status == 2);

    // A corrupt row is reported, not a crash.
    RawSqlite(db).exec("UPDATE sentinel_runs SET context = 'garbage' WHERE id = 'run-b'");
    auto corrupt = run_cli("history runs " + store);
    CHECK(corrupt.status == 2);
    CHECK(contains(corrupt.err, "sentinel_runs row (id run-b): context: not valid JSON"));
}

} // namespace

// The SQL side of the history store, shared by SQLite and PostgreSQL: one schema, its migrations, one set of
// queries with bound parameters, and the validation of every row read back. A backend supplies only an
// SqlConnection (history/sqlite_store.hpp, history/postgres_store.hpp).
#ifndef EXECUTION_SENTINEL_HISTORY_SQL_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_SQL_STORE_HPP

#include <execution_sentinel/history/store.hpp>

#include <boost/json/serialize.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace execution_sentinel::history {

/// A bound parameter or a column value: NULL, an integer or text.
using SqlValue = std::variant<std::monostate, std::int64_t, std::string>;
using SqlRow = std::vector<SqlValue>;

/// The little a backend provides. Statements use $1, $2, … placeholders; values are always bound.
class SqlConnection {
public:
    virtual ~SqlConnection() = default;
    /// Runs fixed SQL text (no parameters; may hold several statements). Throws StoreError.
    virtual void exec(std::string_view sql) = 0;
    /// Runs one statement with bound parameters; returns its rows. Throws StoreError.
    virtual std::vector<SqlRow> query(std::string_view sql, std::span<const SqlValue> params) = 0;
    /// Starts the transaction that migrates the schema (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN and an
    /// advisory lock, so that two sentinels do not migrate at once).
    virtual void begin_migration() = 0;
    /// Starts a write transaction.
    virtual void begin_write() = 0;
};

/// The schema, one migration per version; sentinel_schema_migrations records the versions applied.
inline const std::vector<std::string_view>& schema_migrations() {
    static const std::vector<std::string_view> migrations{
        // 1: runs, reports, task attempts
        "CREATE TABLE sentinel_runs (id TEXT PRIMARY KEY, namespace TEXT NOT NULL, workflow_name TEXT NOT NULL,"
        " context TEXT NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT, outcome TEXT, summary TEXT);"
        "CREATE TABLE sentinel_reports (run_id TEXT NOT NULL, sequence BIGINT NOT NULL, type TEXT NOT NULL,"
        " severity TEXT NOT NULL, task_name TEXT NOT NULL, task_type TEXT NOT NULL, at BIGINT NOT NULL,"
        " body TEXT NOT NULL, PRIMARY KEY (run_id, sequence));"
        "CREATE TABLE sentinel_task_attempts (run_id TEXT NOT NULL, task_name TEXT NOT NULL, attempt BIGINT NOT NULL,"
        " task_type TEXT NOT NULL, node TEXT NOT NULL, started_at BIGINT, ended_at BIGINT, status TEXT NOT NULL,"
        " exit_reason TEXT NOT NULL, PRIMARY KEY (run_id, task_name, attempt));",
        // 2: resource peaks, alert deliveries, checkpoints, indexes
        "ALTER TABLE sentinel_task_attempts ADD COLUMN peak_memory_bytes BIGINT;"
        "ALTER TABLE sentinel_task_attempts ADD COLUMN peak_cpu_millicores BIGINT;"
        "CREATE TABLE sentinel_alert_deliveries (sink TEXT NOT NULL, alert_key TEXT NOT NULL, run_id TEXT NOT NULL,"
        " state TEXT NOT NULL, attempts BIGINT NOT NULL, last_error TEXT NOT NULL, at BIGINT NOT NULL,"
        " PRIMARY KEY (sink, alert_key));"
        "CREATE TABLE sentinel_checkpoints (run_id TEXT PRIMARY KEY, body TEXT NOT NULL, saved_at BIGINT NOT NULL);"
        "CREATE INDEX sentinel_runs_started ON sentinel_runs (started_at);"
        "CREATE INDEX sentinel_task_attempts_type ON sentinel_task_attempts (task_type);",
    };
    return migrations;
}

inline int latest_schema_version() { return static_cast<int>(schema_migrations().size()); }

/// Reads one row with the key it is known by, so a corrupt value is reported as "table row (key): column: …".
class RowReader {
public:
    RowReader(const SqlRow& row, std::string where) : row_(row), where_(std::move(where)) {}

    [[noreturn]] void fail(const char* column, const std::string& problem) const {
        throw StoreError(where_ + ": " + column + ": " + problem);
    }
    const SqlValue& at(std::size_t i, const char* column) const {
        if (i >= row_.size()) fail(column, "missing column");
        return row_[i];
    }
    std::string text(std::size_t i, const char* column) const {
        const auto& v = at(i, column);
        if (const auto* s = std::get_if<std::string>(&v)) {
            if (s->size() > max_json_column) fail(column, "value too large");
            return *s;
        }
        fail(column, std::holds_alternative<std::monostate>(v) ? "unexpected NULL" : "expected text");
    }
    std::optional<std::string> opt_text(std::size_t i, const char* column) const {
        if (std::holds_alternative<std::monostate>(at(i, column))) return std::nullopt;
        return text(i, column);
    }
    std::int64_t integer(std::size_t i, const char* column) const {
        const auto& v = at(i, column);
        if (const auto* n = std::get_if<std::int64_t>(&v)) return *n;
        fail(column, std::holds_alternative<std::monostate>(v) ? "unexpected NULL" : "expected an integer");
    }
    std::optional<std::int64_t> opt_integer(std::size_t i, const char* column) const {
        if (std::holds_alternative<std::monostate>(at(i, column))) return std::nullopt;
        return integer(i, column);
    }
    const std::string& where() const { return where_; }

private:
    const SqlRow& row_;
    std::string where_;
};

/// Decoders of stored rows (public so that the fuzz target can feed them anything).
inline RunRecord decode_run_row(const SqlRow& row) {
    std::string key = row.size() > 0 && std::holds_alternative<std::string>(row[0])
                          ? std::get<std::string>(row[0]).substr(0, 200)
                          : std::string("?");
    RowReader r(row, "sentinel_runs row (id " + key + ")");
    RunRecord run;
    run.id = r.text(0, "id");
    if (run.id.empty()) r.fail("id", "empty");
    run.namespace_ = r.text(1, "namespace");
    run.workflow_name = r.text(2, "workflow_name");
    run.context = parse_stored_object(r.text(3, "context"), r.where() + ": context");
    run.started = from_millis(r.integer(4, "started_at"));
    if (auto e = r.opt_integer(5, "ended_at")) run.ended = from_millis(*e);
    run.outcome = r.opt_text(6, "outcome").value_or("");
    if (!valid_outcome(run.outcome)) r.fail("outcome", "not an outcome word");
    if (auto s = r.opt_text(7, "summary")) run.summary = parse_stored_object(*s, r.where() + ": summary");
    return run;
}

inline Report decode_report_row(const SqlRow& row) {
    std::string run = row.size() > 0 && std::holds_alternative<std::string>(row[0])
                          ? std::get<std::string>(row[0]).substr(0, 200)
                          : std::string("?");
    std::string seq = row.size() > 1 && std::holds_alternative<std::int64_t>(row[1])
                          ? std::to_string(std::get<std::int64_t>(row[1]))
                          : std::string("?");
    RowReader r(row, "sentinel_reports row (run " + run + ", sequence " + seq + ")");
    const auto sequence = r.integer(1, "sequence");
    auto report = parse_stored_report(r.text(2, "body"), r.where() + ": body");
    if (sequence <= 0 || report.sequence != static_cast<std::uint64_t>(sequence))
        r.fail("body", "its sequence differs from the row's");
    return report;
}

inline TaskAttempt decode_task_row(const SqlRow& row) {
    std::string run = row.size() > 1 && std::holds_alternative<std::string>(row[0]) &&
                              std::holds_alternative<std::string>(row[1])
                          ? std::get<std::string>(row[0]).substr(0, 200) + ", task " +
                                std::get<std::string>(row[1]).substr(0, 200)
                          : std::string("?");
    RowReader r(row, "sentinel_task_attempts row (run " + run + ")");
    TaskAttempt t;
    t.run_id = r.text(0, "run_id");
    t.task_name = r.text(1, "task_name");
    const auto attempt = r.integer(2, "attempt");
    if (attempt < 1 || attempt > INT32_MAX) r.fail("attempt", "out of range");
    t.attempt = static_cast<int>(attempt);
    t.task_type = r.text(3, "task_type");
    t.node = r.text(4, "node");
    if (auto s = r.opt_integer(5, "started_at")) t.started = from_millis(*s);
    if (auto e = r.opt_integer(6, "ended_at")) t.ended = from_millis(*e);
    t.status = r.text(7, "status");
    if (!valid_status(t.status)) r.fail("status", "expected running, succeeded or failed");
    t.exit_reason = r.text(8, "exit_reason");
    t.peak_memory_bytes = r.opt_integer(9, "peak_memory_bytes");
    t.peak_cpu_millicores = r.opt_integer(10, "peak_cpu_millicores");
    if (t.peak_memory_bytes && *t.peak_memory_bytes < 0) r.fail("peak_memory_bytes", "negative");
    if (t.peak_cpu_millicores && *t.peak_cpu_millicores < 0) r.fail("peak_cpu_millicores", "negative");
    return t;
}

inline AlertDelivery decode_delivery_row(const SqlRow& row) {
    RowReader r(row, "sentinel_alert_deliveries row");
    AlertDelivery d;
    d.sink = r.text(0, "sink");
    d.key = r.text(1, "alert_key");
    d.run_id = r.text(2, "run_id");
    d.state = r.text(3, "state");
    if (!valid_delivery_state(d.state)) r.fail("state", "expected sent, failed or dead");
    const auto attempts = r.integer(4, "attempts");
    if (attempts < 0 || attempts > INT32_MAX) r.fail("attempts", "out of range");
    d.attempts = static_cast<int>(attempts);
    d.last_error = r.text(5, "last_error");
    d.time = from_millis(r.integer(6, "at"));
    return d;
}

/// RunHistoryStore over any SqlConnection: migrates the schema when opened. Thread-safe (one statement at a time).
class SqlHistoryStore : public RunHistoryStore {
public:
    /// Migrates the schema; then, with a retention policy, prunes what it says.
    explicit SqlHistoryStore(std::unique_ptr<SqlConnection> connection,
                             const std::optional<RetentionPolicy>& retention = std::nullopt)
        : db_(std::move(connection)) {
        migrate();
        if (retention) prune(*retention, Clock::now());
    }

    void write(std::span<const HistoryRecord> records) override {
        for (const auto& r : records) validate_record(r);
        std::lock_guard lock(mutex_);
        db_->begin_write();
        try {
            for (const auto& r : records) std::visit([&](const auto& rec) { write_record(rec); }, r);
            db_->exec("COMMIT");
        } catch (...) {
            rollback();
            throw;
        }
    }

    std::vector<RunRecord> list_runs(const RunQuery& q) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {q.workflow_name, static_cast<std::int64_t>(std::min<std::size_t>(q.limit, INT32_MAX))};
        auto rows = db_->query(std::string(run_columns) +
                                   " FROM sentinel_runs WHERE (CAST($1 AS TEXT) = '' OR workflow_name = $1)"
                                   " ORDER BY started_at DESC, id DESC LIMIT $2",
                               params);
        std::vector<RunRecord> out;
        for (auto& row : rows) out.push_back(decode_run_row(row));
        return out;
    }

    std::optional<RunRecord> find_run(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(run_id)};
        auto rows = db_->query(std::string(run_columns) + " FROM sentinel_runs WHERE id = $1", params);
        if (rows.empty()) return std::nullopt;
        return decode_run_row(rows.front());
    }

    std::vector<Report> reports(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(run_id)};
        auto rows = db_->query(
            "SELECT run_id, sequence, body FROM sentinel_reports WHERE run_id = $1 ORDER BY sequence", params);
        std::vector<Report> out;
        for (auto& row : rows) out.push_back(decode_report_row(row));
        return out;
    }

    std::vector<TaskAttempt> tasks(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(run_id)};
        auto rows = db_->query(std::string(task_columns) +
                                   " FROM sentinel_task_attempts t WHERE t.run_id = $1 ORDER BY t.task_name, t.attempt",
                               params);
        std::vector<TaskAttempt> out;
        for (auto& row : rows) out.push_back(decode_task_row(row));
        return out;
    }

    std::vector<TaskAttempt> task_attempts(std::string_view workflow_name, std::string_view task_type) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(workflow_name), std::string(task_type)};
        auto rows = db_->query(std::string(task_columns) +
                                   " FROM sentinel_task_attempts t JOIN sentinel_runs r ON r.id = t.run_id"
                                   " WHERE (CAST($1 AS TEXT) = '' OR r.workflow_name = $1)"
                                   " AND (CAST($2 AS TEXT) = '' OR t.task_type = $2)"
                                   " ORDER BY t.run_id, t.task_name, t.attempt",
                               params);
        std::vector<TaskAttempt> out;
        for (auto& row : rows) out.push_back(decode_task_row(row));
        return out;
    }

    std::optional<AlertDelivery> find_delivery(std::string_view sink, std::string_view key) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(sink), std::string(key)};
        auto rows = db_->query("SELECT sink, alert_key, run_id, state, attempts, last_error, at"
                               " FROM sentinel_alert_deliveries WHERE sink = $1 AND alert_key = $2",
                               params);
        if (rows.empty()) return std::nullopt;
        return decode_delivery_row(rows.front());
    }

    std::optional<boost::json::object> load_checkpoint(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        const SqlValue params[] = {std::string(run_id)};
        auto rows = db_->query("SELECT body FROM sentinel_checkpoints WHERE run_id = $1", params);
        if (rows.empty()) return std::nullopt;
        RowReader r(rows.front(), "sentinel_checkpoints row (run " + std::string(run_id.substr(0, 200)) + ")");
        return parse_stored_object(r.text(0, "body"), r.where() + ": body");
    }

    std::size_t prune(const RetentionPolicy& policy, Timestamp now) override {
        std::lock_guard lock(mutex_);
        return prune_locked(policy, now);
    }

    int schema_version() override {
        std::lock_guard lock(mutex_);
        auto rows = db_->query("SELECT COALESCE(MAX(version), 0) FROM sentinel_schema_migrations", {});
        if (rows.empty()) return 0;
        return static_cast<int>(RowReader(rows.front(), "sentinel_schema_migrations").integer(0, "version"));
    }

private:
    std::size_t prune_locked(const RetentionPolicy& policy, Timestamp now) {
        auto rows = db_->query("SELECT id, ended_at FROM sentinel_runs WHERE ended_at IS NOT NULL"
                               " ORDER BY started_at DESC, id DESC",
                               {});
        std::vector<std::string> doomed;
        std::size_t kept = 0;
        const bool by_age = policy.max_age.has_value();
        const std::int64_t cutoff = by_age ? to_millis(now - *policy.max_age) : 0;
        for (auto& row : rows) {
            RowReader r(row, "sentinel_runs row");
            auto id = r.text(0, "id");
            const auto ended = r.integer(1, "ended_at");
            if ((by_age && ended < cutoff) || (policy.max_runs && kept >= policy.max_runs)) doomed.push_back(id);
            else ++kept;
        }
        if (doomed.empty()) return 0;
        db_->begin_write();
        try {
            for (auto& id : doomed) {
                const SqlValue params[] = {id};
                for (auto* sql : {"DELETE FROM sentinel_reports WHERE run_id = $1",
                                  "DELETE FROM sentinel_task_attempts WHERE run_id = $1",
                                  "DELETE FROM sentinel_alert_deliveries WHERE run_id = $1",
                                  "DELETE FROM sentinel_checkpoints WHERE run_id = $1",
                                  "DELETE FROM sentinel_runs WHERE id = $1"})
                    db_->query(sql, params);
            }
            db_->exec("COMMIT");
        } catch (...) {
            rollback();
            throw;
        }
        return doomed.size();
    }

    static constexpr const char* run_columns =
        "SELECT id, namespace, workflow_name, context, started_at, ended_at, outcome, summary";
    static constexpr const char* task_columns =
        "SELECT t.run_id, t.task_name, t.attempt, t.task_type, t.node, t.started_at, t.ended_at, t.status,"
        " t.exit_reason, t.peak_memory_bytes, t.peak_cpu_millicores";

    void rollback() noexcept {
        try {
            db_->exec("ROLLBACK");
        } catch (...) {
        }
    }

    void migrate() {
        db_->begin_migration();
        try {
            db_->exec("CREATE TABLE IF NOT EXISTS sentinel_schema_migrations (version BIGINT PRIMARY KEY,"
                      " applied_at BIGINT NOT NULL)");
            auto rows = db_->query("SELECT COALESCE(MAX(version), 0) FROM sentinel_schema_migrations", {});
            const auto current =
                rows.empty() ? 0 : RowReader(rows.front(), "sentinel_schema_migrations").integer(0, "version");
            const auto latest = latest_schema_version();
            if (current > latest)
                throw StoreError("history store schema version " + std::to_string(current) +
                                 " is newer than this program's (" + std::to_string(latest) + ")");
            for (auto v = current + 1; v <= latest; ++v) {
                db_->exec(schema_migrations()[static_cast<std::size_t>(v - 1)]);
                const SqlValue params[] = {static_cast<std::int64_t>(v), to_millis(Clock::now())};
                db_->query("INSERT INTO sentinel_schema_migrations (version, applied_at) VALUES ($1, $2)", params);
            }
            db_->exec("COMMIT");
        } catch (...) {
            rollback();
            throw;
        }
    }

    static SqlValue opt(const std::optional<Timestamp>& t) {
        return t ? SqlValue(to_millis(*t)) : SqlValue(std::monostate{});
    }
    static SqlValue opt(const std::optional<std::int64_t>& n) { return n ? SqlValue(*n) : SqlValue(std::monostate{}); }
    static std::string json(const boost::json::object& o) { return boost::json::serialize(o); }

    void write_record(const RunRecord& r) {
        const SqlValue params[] = {r.id, r.namespace_, r.workflow_name, json(r.context), to_millis(r.started),
                                   opt(r.ended),
                                   r.outcome.empty() ? SqlValue(std::monostate{}) : SqlValue(r.outcome),
                                   r.outcome.empty() ? SqlValue(std::monostate{}) : SqlValue(json(r.summary))};
        db_->query("INSERT INTO sentinel_runs (id, namespace, workflow_name, context, started_at, ended_at, outcome,"
                   " summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                   params);
    }
    void write_record(const RunEnd& e) {
        const SqlValue params[] = {e.run_id, to_millis(e.ended), e.outcome, json(e.summary)};
        db_->query("UPDATE sentinel_runs SET ended_at = $2, outcome = $3, summary = $4 WHERE id = $1", params);
    }
    void write_record(const ReportRecord& r) {
        const auto& rep = r.report;
        const SqlValue params[] = {r.run_id,
                                   static_cast<std::int64_t>(rep.sequence),
                                   std::string(to_string(rep.type)),
                                   std::string(to_string(rep.severity)),
                                   rep.task_name,
                                   rep.task_type,
                                   to_millis(rep.timestamp),
                                   json(to_json(rep))};
        db_->query("INSERT INTO sentinel_reports (run_id, sequence, type, severity, task_name, task_type, at, body)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run_id, sequence) DO NOTHING",
                   params);
    }
    void write_record(const TaskAttempt& t) {
        const SqlValue params[] = {t.run_id,      t.task_name,   static_cast<std::int64_t>(t.attempt),
                                   t.task_type,   t.node,        opt(t.started),
                                   opt(t.ended),  t.status,      t.exit_reason,
                                   opt(t.peak_memory_bytes),     opt(t.peak_cpu_millicores)};
        db_->query("INSERT INTO sentinel_task_attempts (run_id, task_name, attempt, task_type, node, started_at,"
                   " ended_at, status, exit_reason, peak_memory_bytes, peak_cpu_millicores)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                   " ON CONFLICT (run_id, task_name, attempt) DO UPDATE SET task_type = excluded.task_type,"
                   " node = excluded.node, started_at = excluded.started_at, ended_at = excluded.ended_at,"
                   " status = excluded.status, exit_reason = excluded.exit_reason,"
                   " peak_memory_bytes = COALESCE(excluded.peak_memory_bytes, sentinel_task_attempts.peak_memory_bytes),"
                   " peak_cpu_millicores = COALESCE(excluded.peak_cpu_millicores,"
                   " sentinel_task_attempts.peak_cpu_millicores)",
                   params);
    }
    void write_record(const AlertDelivery& d) {
        const SqlValue params[] = {d.sink,       d.key,        d.run_id, d.state, static_cast<std::int64_t>(d.attempts),
                                   d.last_error, to_millis(d.time)};
        db_->query("INSERT INTO sentinel_alert_deliveries (sink, alert_key, run_id, state, attempts, last_error, at)"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sink, alert_key) DO UPDATE SET"
                   " run_id = excluded.run_id, state = excluded.state, attempts = excluded.attempts,"
                   " last_error = excluded.last_error, at = excluded.at",
                   params);
    }
    void write_record(const Checkpoint& c) {
        const SqlValue params[] = {c.run_id, json(c.body), to_millis(Clock::now())};
        db_->query("INSERT INTO sentinel_checkpoints (run_id, body, saved_at) VALUES ($1, $2, $3)"
                   " ON CONFLICT (run_id) DO UPDATE SET body = excluded.body, saved_at = excluded.saved_at",
                   params);
    }

    std::unique_ptr<SqlConnection> db_;
    std::mutex mutex_; // one statement at a time on the connection (and its prepared statements)
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_SQL_STORE_HPP

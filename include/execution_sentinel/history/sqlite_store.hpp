// SqliteHistoryStore: the history store in a local SQLite file (WAL journal). Needs SQLite 3 (Debian's
// libsqlite3-dev): link SQLite::SQLite3, or execution_sentinel::history which does when CMake finds it.
#ifndef EXECUTION_SENTINEL_HISTORY_SQLITE_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_SQLITE_STORE_HPP

#include <execution_sentinel/history/sql_store.hpp>

#include <sqlite3.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace execution_sentinel::history {

struct SqliteOptions {
    bool create = true; ///< create the file when missing (false: a missing file is a StoreError)
    /// How long a write waits for another connection's lock before failing (the writer then retries later).
    std::chrono::milliseconds busy_timeout{2000};
    /// Finished runs to prune when the store is opened (RetentionPolicy); none by default.
    std::optional<RetentionPolicy> retention;
};

namespace detail {

struct SqliteCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct SqliteFinalizer {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

/// "$12" → "?12": the shared queries' placeholders in SQLite's numbered form.
inline std::string sqlite_placeholders(std::string_view sql) {
    std::string out(sql);
    for (std::size_t i = 0; i + 1 < out.size(); ++i)
        if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
    return out;
}

class SqliteConnection final : public SqlConnection {
public:
    SqliteConnection(const std::string& path, const SqliteOptions& options) : path_(path) {
        const int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0);
        sqlite3* raw = nullptr;
        const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
        db_.reset(raw);
        if (rc != SQLITE_OK)
            throw StoreError("history store sqlite:" + path + ": cannot open: " +
                             (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
        sqlite3_extended_result_codes(raw, 1);
        sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));
        // WAL: readers do not block the writer; NORMAL sync is durable across a crash of this process. The switch
        // takes an exclusive lock, and SQLite answers BUSY at once, without its busy handler, while another
        // connection is switching or migrating a new file (sentinels started together on one file): it is tried
        // again until the busy timeout.
        for (const auto until = std::chrono::steady_clock::now() + options.busy_timeout;;) {
            const int mode = sqlite3_exec(raw, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
            if (mode == SQLITE_OK) break;
            const int primary = mode & 0xff;
            if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || std::chrono::steady_clock::now() >= until)
                throw StoreError("history store sqlite:" + path + ": cannot switch to WAL: " + sqlite3_errmsg(raw));
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        exec("PRAGMA synchronous=NORMAL");
        exec("PRAGMA foreign_keys=OFF");
    }

    void exec(std::string_view sql) override {
        char* error = nullptr;
        const std::string text(sql);
        if (sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            std::string message = error ? error : sqlite3_errmsg(db_.get());
            sqlite3_free(error);
            throw StoreError("history store sqlite:" + path_ + ": " + message);
        }
    }

    std::vector<SqlRow> query(std::string_view sql, std::span<const SqlValue> params) override {
        sqlite3_stmt* stmt = prepared(sql);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        struct Reset {
            sqlite3_stmt* s;
            ~Reset() {
                sqlite3_reset(s);
                sqlite3_clear_bindings(s);
            }
        } reset{stmt};
        for (std::size_t i = 0; i < params.size(); ++i) {
            const int index = static_cast<int>(i + 1);
            int rc = SQLITE_OK;
            if (const auto* n = std::get_if<std::int64_t>(&params[i])) rc = sqlite3_bind_int64(stmt, index, *n);
            else if (const auto* s = std::get_if<std::string>(&params[i]))
                rc = sqlite3_bind_text64(stmt, index, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
            else rc = sqlite3_bind_null(stmt, index);
            if (rc != SQLITE_OK) fail("bind");
        }
        std::vector<SqlRow> rows;
        while (true) {
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) fail("step");
            const int n = sqlite3_column_count(stmt);
            SqlRow row;
            row.reserve(static_cast<std::size_t>(n));
            for (int c = 0; c < n; ++c) {
                switch (sqlite3_column_type(stmt, c)) {
                case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
                case SQLITE_INTEGER: row.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(stmt, c))); break;
                case SQLITE_FLOAT: {
                    // A REAL where an integer belongs is corrupt: keep it as text, the reader reports it.
                    row.emplace_back(std::to_string(sqlite3_column_double(stmt, c)));
                    break;
                }
                default: {
                    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                    const int len = sqlite3_column_bytes(stmt, c);
                    row.emplace_back(p ? std::string(p, static_cast<std::size_t>(len)) : std::string());
                }
                }
            }
            rows.push_back(std::move(row));
        }
        return rows;
    }

    void begin_migration() override { exec("BEGIN IMMEDIATE"); }
    void begin_write() override { exec("BEGIN IMMEDIATE"); }

    sqlite3* handle() const noexcept { return db_.get(); }

private:
    [[noreturn]] void fail(const char* step) const {
        throw StoreError("history store sqlite:" + path_ + ": " + step + ": " + sqlite3_errmsg(db_.get()));
    }

    sqlite3_stmt* prepared(std::string_view sql) {
        auto it = statements_.find(std::string(sql));
        if (it != statements_.end()) return it->second.get();
        const auto text = sqlite_placeholders(sql);
        sqlite3_stmt* raw = nullptr;
        if (sqlite3_prepare_v3(db_.get(), text.c_str(), static_cast<int>(text.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                               nullptr) != SQLITE_OK)
            fail("prepare");
        auto& slot = statements_[std::string(sql)];
        slot.reset(raw);
        return raw;
    }

    std::string path_;
    // Destroyed in reverse order: the statements are finalized before the connection closes.
    std::unique_ptr<sqlite3, SqliteCloser> db_;
    std::map<std::string, std::unique_ptr<sqlite3_stmt, SqliteFinalizer>, std::less<>> statements_;
};

} // namespace detail

/// The history store in a SQLite file; see SqliteOptions. Opening migrates the schema to the latest version.
class SqliteHistoryStore final : public SqlHistoryStore {
public:
    explicit SqliteHistoryStore(const std::string& path, const SqliteOptions& options = {})
        : SqlHistoryStore(std::make_unique<detail::SqliteConnection>(path, options), options.retention) {}
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_SQLITE_STORE_HPP

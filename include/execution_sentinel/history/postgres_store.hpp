// PostgresHistoryStore: the history store in a PostgreSQL database, shared by several sentinels (same schema
// and queries as SQLite). Needs libpq (Debian's libpq-dev): link PostgreSQL::PostgreSQL, or
// execution_sentinel::history which does when CMake finds it.
#ifndef EXECUTION_SENTINEL_HISTORY_POSTGRES_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_POSTGRES_STORE_HPP

#include <execution_sentinel/history/sql_store.hpp>

#include <libpq-fe.h>

#include <cerrno>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace execution_sentinel::history {

namespace detail {

struct PgConnCloser {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct PgResultClearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

inline bool pg_integer_type(Oid type) { return type == 20 || type == 21 || type == 23; } // int8, int2, int4

class PostgresConnection final : public SqlConnection {
public:
    explicit PostgresConnection(std::string uri) : uri_(std::move(uri)), display_(redact_store_uri(uri_)) {
        conn_.reset(PQconnectdb(uri_.c_str()));
        if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
            throw StoreError("history store " + display_ + ": cannot connect: " + last_error());
        silence_notices();
    }

    void exec(std::string_view sql) override {
        ensure_connected();
        const std::string text(sql);
        PgResult res(PQexec(conn_.get(), text.c_str()));
        check(res.get(), "exec");
    }

    std::vector<SqlRow> query(std::string_view sql, std::span<const SqlValue> params) override {
        ensure_connected();
        const std::string& name = prepared(sql, static_cast<int>(params.size()));
        std::vector<std::string> texts(params.size());
        std::vector<const char*> values(params.size(), nullptr);
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (const auto* n = std::get_if<std::int64_t>(&params[i])) texts[i] = std::to_string(*n);
            else if (const auto* s = std::get_if<std::string>(&params[i])) texts[i] = *s;
            else continue; // NULL
            values[i] = texts[i].c_str();
        }
        PgResult res(PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(params.size()), values.data(), nullptr,
                                    nullptr, 0));
        check(res.get(), "query");
        std::vector<SqlRow> rows;
        const int nrows = PQntuples(res.get());
        const int ncols = PQnfields(res.get());
        rows.reserve(static_cast<std::size_t>(nrows));
        for (int r = 0; r < nrows; ++r) {
            SqlRow row;
            row.reserve(static_cast<std::size_t>(ncols));
            for (int c = 0; c < ncols; ++c) {
                if (PQgetisnull(res.get(), r, c)) {
                    row.emplace_back(std::monostate{});
                    continue;
                }
                const char* v = PQgetvalue(res.get(), r, c);
                const auto len = static_cast<std::size_t>(PQgetlength(res.get(), r, c));
                if (pg_integer_type(PQftype(res.get(), c))) {
                    std::int64_t n = 0;
                    auto [p, ec] = std::from_chars(v, v + len, n);
                    if (ec == std::errc() && p == v + len) {
                        row.emplace_back(n);
                        continue;
                    }
                }
                row.emplace_back(std::string(v, len));
            }
            rows.push_back(std::move(row));
        }
        return rows;
    }

    void begin_migration() override {
        exec("BEGIN");
        exec("SELECT pg_advisory_xact_lock(7305814992)"); // one migrating sentinel at a time
    }
    void begin_write() override { exec("BEGIN"); }

private:
    std::string last_error() const {
        std::string e = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
        while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
        return redact_store_uri(e);
    }

    void silence_notices() {
        PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
    }

    /// A broken connection (server restarted, network) is re-established before the next statement; the
    /// prepared statements are prepared again on the new session.
    void ensure_connected() {
        if (PQstatus(conn_.get()) == CONNECTION_OK) return;
        PQreset(conn_.get());
        statements_.clear();
        if (PQstatus(conn_.get()) != CONNECTION_OK)
            throw StoreError("history store " + display_ + ": cannot connect: " + last_error());
        silence_notices();
    }

    void check(PGresult* res, const char* step) {
        const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
        std::string message = res ? PQresultErrorMessage(res) : "";
        if (message.empty()) message = last_error();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        throw StoreError("history store " + display_ + ": " + step + ": " + redact_store_uri(message));
    }

    const std::string& prepared(std::string_view sql, int nparams) {
        auto it = statements_.find(std::string(sql));
        if (it != statements_.end()) return it->second;
        std::string name = "sentinel_q" + std::to_string(++counter_);
        const std::string text(sql);
        PgResult res(PQprepare(conn_.get(), name.c_str(), text.c_str(), nparams, nullptr));
        check(res.get(), "prepare");
        return statements_.emplace(text, std::move(name)).first->second;
    }

    std::string uri_;
    std::string display_;
    std::unique_ptr<PGconn, PgConnCloser> conn_;
    std::map<std::string, std::string, std::less<>> statements_;
    std::uint64_t counter_ = 0;
};

} // namespace detail

/// The history store in PostgreSQL at `uri` (postgresql://user:password@host:port/db?…, libpq syntax).
/// Opening migrates the schema under an advisory lock; messages never quote the password.
class PostgresHistoryStore final : public SqlHistoryStore {
public:
    explicit PostgresHistoryStore(const std::string& uri, const std::optional<RetentionPolicy>& retention = std::nullopt)
        : SqlHistoryStore(std::make_unique<detail::PostgresConnection>(uri), retention) {}
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_POSTGRES_STORE_HPP

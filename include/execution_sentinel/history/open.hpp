// Opening a history store from its address (store.hpp: parse_store_location). The SQLite and PostgreSQL stores
// are available when the program links execution_sentinel::history with their libraries found, which defines
// EXECUTION_SENTINEL_HISTORY_SQLITE / EXECUTION_SENTINEL_HISTORY_POSTGRESQL.
#ifndef EXECUTION_SENTINEL_HISTORY_OPEN_HPP
#define EXECUTION_SENTINEL_HISTORY_OPEN_HPP

#include <execution_sentinel/history/memory_store.hpp>
#include <execution_sentinel/history/store.hpp>

#if defined(EXECUTION_SENTINEL_HISTORY_SQLITE)
#include <execution_sentinel/history/sqlite_store.hpp>
#endif
#if defined(EXECUTION_SENTINEL_HISTORY_POSTGRESQL)
#include <execution_sentinel/history/postgres_store.hpp>
#endif

#include <memory>
#include <optional>

namespace execution_sentinel::history {

struct OpenOptions {
    bool create = true; ///< create a missing SQLite file (false: a missing file is a StoreError)
    std::optional<RetentionPolicy> retention; ///< finished runs to prune when opened
};

/// Opens (and migrates) the store at `location`. Throws StoreError when it cannot be opened, or when this
/// program was built without the store's library.
inline std::shared_ptr<RunHistoryStore> open_store(const StoreLocation& location, const OpenOptions& options = {}) {
    switch (location.kind) {
    case StoreKind::memory: return std::make_shared<MemoryHistoryStore>();
    case StoreKind::sqlite:
#if defined(EXECUTION_SENTINEL_HISTORY_SQLITE)
    {
        SqliteOptions o;
        o.create = options.create;
        o.retention = options.retention;
        return std::make_shared<SqliteHistoryStore>(location.target, o);
    }
#else
        throw StoreError("history store " + location.display() + ": this program was built without SQLite");
#endif
    case StoreKind::postgresql:
#if defined(EXECUTION_SENTINEL_HISTORY_POSTGRESQL)
        return std::make_shared<PostgresHistoryStore>(location.target, options.retention);
#else
        throw StoreError("history store " + location.display() + ": this program was built without PostgreSQL");
#endif
    }
    throw StoreError("history store: unknown kind");
}

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_OPEN_HPP

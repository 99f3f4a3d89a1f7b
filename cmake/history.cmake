# execution_sentinel::history: the run history store (include/execution_sentinel/history/, docs/history.md).
# Header-only like the library; SQLite 3 and libpq are optional: each store whose library CMake finds is
# enabled (EXECUTION_SENTINEL_HISTORY_SQLITE / EXECUTION_SENTINEL_HISTORY_POSTGRESQL, used by history/open.hpp)
# and linked. Without them the in-memory store still works, and sqlite_store.hpp / postgres_store.hpp are simply
# not included.
find_package(SQLite3 QUIET)
find_package(PostgreSQL QUIET)

add_library(execution_sentinel_history INTERFACE)
add_library(execution_sentinel::history ALIAS execution_sentinel_history)
set_target_properties(execution_sentinel_history PROPERTIES EXPORT_NAME history)
target_link_libraries(execution_sentinel_history INTERFACE execution_sentinel)

# Public headers that need a library CMake did not find are left out of the header checks.
set(EXECUTION_SENTINEL_HISTORY_HEADER_EXCLUDES "")
if(SQLite3_FOUND)
  target_link_libraries(execution_sentinel_history INTERFACE SQLite::SQLite3)
  target_compile_definitions(execution_sentinel_history INTERFACE EXECUTION_SENTINEL_HISTORY_SQLITE=1)
  set(EXECUTION_SENTINEL_HISTORY_SQLITE ON)
else()
  list(APPEND EXECUTION_SENTINEL_HISTORY_HEADER_EXCLUDES "history/sqlite_store\\.hpp$")
  message(STATUS "SQLite 3 not found: the SQLite history store is not built (apt-get install libsqlite3-dev)")
endif()
if(PostgreSQL_FOUND)
  target_link_libraries(execution_sentinel_history INTERFACE PostgreSQL::PostgreSQL)
  target_compile_definitions(execution_sentinel_history INTERFACE EXECUTION_SENTINEL_HISTORY_POSTGRESQL=1)
  set(EXECUTION_SENTINEL_HISTORY_POSTGRESQL ON)
else()
  list(APPEND EXECUTION_SENTINEL_HISTORY_HEADER_EXCLUDES "history/postgres_store\\.hpp$")
  message(STATUS "libpq not found: the PostgreSQL history store is not built (apt-get install libpq-dev)")
endif()

// The run history store: what a sentinel remembers across runs and restarts (docs/history.md).
//
// `RunHistoryStore` is the interface; three implementations share its behaviour and its tests:
//   * history/sqlite_store.hpp    SqliteHistoryStore    a local file (WAL), the default (needs SQLite 3)
//   * history/postgres_store.hpp  PostgresHistoryStore  shared by several sentinels (needs libpq)
//   * history/memory_store.hpp    MemoryHistoryStore    tests and embedding without a disk
// history/writer.hpp takes writes off the watch path (a bounded queue and a writer thread).
//
// This header holds the records, the interface, the store address parser and the pure statistics (duration
// percentiles, failure rates, flaky task types) computed from stored task attempts.
#ifndef EXECUTION_SENTINEL_HISTORY_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_STORE_HPP

#include <execution_sentinel/report.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace execution_sentinel::history {

/// A store that cannot be opened, written or read, or a row read back that is not valid; what() says which
/// (the table, the row's key, the column) and never quotes a password.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A store address that cannot be used (an input error: exit status 2 in the CLI).
class StoreAddressError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// ------------------------------------------------------------------------------------------------ records

/// One watched run. `outcome` is empty while the run is in progress.
struct RunRecord {
    std::string id;
    std::string namespace_;
    std::string workflow_name;
    boost::json::object context; ///< the MonitoringContext as JSON (to_json(MonitoringContext))
    Timestamp started{};
    std::optional<Timestamp> ended;
    std::string outcome;         ///< "succeeded", "failed", "timed_out", "interrupted", … or "" (running)
    boost::json::object summary; ///< to_json(WatchSummary) once ended
    friend bool operator==(const RunRecord&, const RunRecord&) = default;
};

/// The end of a run.
struct RunEnd {
    std::string run_id;
    Timestamp ended{};
    std::string outcome;
    boost::json::object summary;
    friend bool operator==(const RunEnd&, const RunEnd&) = default;
};

/// One report of a run; (run_id, report.sequence) is unique and a second insert of it changes nothing.
struct ReportRecord {
    std::string run_id;
    Report report;
    friend bool operator==(const ReportRecord&, const ReportRecord&) = default;
};

/// One attempt of a task; (run_id, task_name, attempt) is unique and a later write updates it.
struct TaskAttempt {
    std::string run_id;
    std::string task_name;
    int attempt = 1;          ///< 1, 2, … (retries)
    std::string task_type;
    std::string node;         ///< "" when unknown
    std::optional<Timestamp> started;
    std::optional<Timestamp> ended;
    std::string status = "running"; ///< "running", "succeeded" or "failed"
    std::string exit_reason;        ///< "Completed", "OOMKilled", "Error", … ("" when unknown)
    std::optional<std::int64_t> peak_memory_bytes;
    std::optional<std::int64_t> peak_cpu_millicores;

    /// Seconds from start to end, when both are known.
    std::optional<double> duration_seconds() const {
        if (!started || !ended) return std::nullopt;
        return std::chrono::duration<double>(*ended - *started).count();
    }
    friend bool operator==(const TaskAttempt&, const TaskAttempt&) = default;
};

/// One alert delivery to one sink; (sink, key) is unique and a later write updates it.
struct AlertDelivery {
    std::string run_id;
    std::string sink;
    std::string key;
    std::string state = "sent"; ///< "sent", "failed" (will be retried) or "dead" (gave up)
    int attempts = 0;
    std::string last_error;     ///< never a secret: the caller redacts URLs and keys
    Timestamp time{};
    friend bool operator==(const AlertDelivery&, const AlertDelivery&) = default;
};

/// A run's checkpoint (the monitor's report ledger and last sequence, …); one per run, replaced on save.
struct Checkpoint {
    std::string run_id;
    boost::json::object body;
    friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

/// Anything a store records; RunHistoryStore::write takes a batch of them.
using HistoryRecord = std::variant<RunRecord, RunEnd, ReportRecord, TaskAttempt, AlertDelivery, Checkpoint>;

/// Which runs to list: newest first, at most `limit`, of one workflow name when not empty.
struct RunQuery {
    std::string workflow_name;
    std::size_t limit = 50;
};

/// What prune() removes: finished runs older than `max_age`, and finished runs beyond the newest `max_runs`
/// (0 = no limit), with their reports, tasks, deliveries and checkpoint. Runs in progress are kept.
struct RetentionPolicy {
    std::optional<std::chrono::seconds> max_age;
    std::size_t max_runs = 0;
};

/// Durations of succeeded attempts: count, median and 95th percentile in seconds (0 when count is 0).
struct DurationStats {
    std::size_t count = 0;
    double p50 = 0;
    double p95 = 0;
    friend bool operator==(const DurationStats&, const DurationStats&) = default;
};

// ------------------------------------------------------------------------------------------------ validation

inline constexpr std::size_t max_text_column = 1 << 16;    ///< names, keys, errors
inline constexpr std::size_t max_json_column = 16u << 20;  ///< context, report, summary, checkpoint bodies

inline bool valid_status(std::string_view s) { return s == "running" || s == "succeeded" || s == "failed"; }
inline bool valid_delivery_state(std::string_view s) { return s == "sent" || s == "failed" || s == "dead"; }
/// An outcome word: "" or 1–32 characters of a–z and '_'.
inline bool valid_outcome(std::string_view s) {
    if (s.size() > 32) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

inline std::int64_t to_millis(Timestamp t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline Timestamp from_millis(std::int64_t ms) { return Timestamp(std::chrono::milliseconds(ms)); }

/// Parses a JSON object read back from a store; StoreError naming `where` when it is not one.
inline boost::json::object parse_stored_object(std::string_view text, const std::string& where) {
    if (text.size() > max_json_column) throw StoreError(where + ": larger than 16 MiB");
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    auto v = boost::json::parse(text, ec, {}, opts);
    if (ec) throw StoreError(where + ": not valid JSON (" + ec.message() + ")");
    auto* o = v.if_object();
    if (!o) throw StoreError(where + ": expected a JSON object");
    return std::move(*o);
}

/// A report read back from its JSON column; StoreError naming `where` when invalid.
inline Report parse_stored_report(std::string_view text, const std::string& where) {
    auto o = parse_stored_object(text, where);
    try {
        return report_from_json(o);
    } catch (const ReportFormatError& e) {
        throw StoreError(where + ": " + e.what());
    }
}

/// Checks a record before it is written: StoreAddressError-free, plain std::invalid_argument on bad fields.
inline void validate_record(const HistoryRecord& rec) {
    auto need = [](bool ok, const char* what) {
        if (!ok) throw std::invalid_argument(std::string("history record: ") + what);
    };
    std::visit(
        [&](const auto& r) {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, RunRecord>) {
                need(!r.id.empty() && r.id.size() <= 1024, "run id must have 1 to 1024 characters");
                need(valid_outcome(r.outcome), "run outcome must be a lower-case word");
            } else if constexpr (std::is_same_v<T, RunEnd>) {
                need(!r.run_id.empty(), "run id must not be empty");
                need(!r.outcome.empty() && valid_outcome(r.outcome), "run outcome must be a lower-case word");
            } else if constexpr (std::is_same_v<T, ReportRecord>) {
                need(!r.run_id.empty(), "run id must not be empty");
                need(r.report.sequence > 0 && r.report.sequence <= static_cast<std::uint64_t>(INT64_MAX),
                     "report sequence must be positive");
            } else if constexpr (std::is_same_v<T, TaskAttempt>) {
                need(!r.run_id.empty() && !r.task_name.empty(), "task attempt needs a run id and a task name");
                need(r.attempt >= 1, "task attempt numbers start at 1");
                need(valid_status(r.status), "task status must be running, succeeded or failed");
            } else if constexpr (std::is_same_v<T, AlertDelivery>) {
                need(!r.sink.empty() && !r.key.empty(), "alert delivery needs a sink and a key");
                need(valid_delivery_state(r.state), "alert delivery state must be sent, failed or dead");
                need(r.attempts >= 0, "alert delivery attempts must not be negative");
            } else if constexpr (std::is_same_v<T, Checkpoint>) {
                need(!r.run_id.empty(), "checkpoint needs a run id");
            }
        },
        rec);
}

// ------------------------------------------------------------------------------------------------ interface

/// The store. The implementations here are thread-safe (one statement at a time per instance), but every call
/// does I/O: from the watch path, write through a HistoryWriter. Reads validate every row and throw StoreError
/// naming a corrupt one.
class RunHistoryStore {
public:
    virtual ~RunHistoryStore() = default;

    /// Writes a batch atomically (all or nothing). Each record is an idempotent upsert: reports keep the first
    /// write of (run, sequence); runs keep their first start; the rest are replaced. Throws StoreError when
    /// the store is unavailable (nothing of the batch is then written) and std::invalid_argument for an
    /// invalid record.
    virtual void write(std::span<const HistoryRecord> records) = 0;

    virtual std::vector<RunRecord> list_runs(const RunQuery& query) = 0;
    virtual std::optional<RunRecord> find_run(std::string_view run_id) = 0;
    /// A run's reports in sequence order.
    virtual std::vector<Report> reports(std::string_view run_id) = 0;
    /// A run's task attempts, by task name then attempt.
    virtual std::vector<TaskAttempt> tasks(std::string_view run_id) = 0;
    /// Task attempts across runs, of one workflow name and one task type when not empty.
    virtual std::vector<TaskAttempt> task_attempts(std::string_view workflow_name, std::string_view task_type) = 0;
    virtual std::optional<AlertDelivery> find_delivery(std::string_view sink, std::string_view key) = 0;
    virtual std::optional<boost::json::object> load_checkpoint(std::string_view run_id) = 0;
    /// Removes what `policy` says (see RetentionPolicy); returns the number of runs removed.
    virtual std::size_t prune(const RetentionPolicy& policy, Timestamp now) = 0;
    /// The schema version of the store (the latest this program knows, once opened).
    virtual int schema_version() = 0;

    // -- one-record conveniences
    void write_one(HistoryRecord r) { write(std::span<const HistoryRecord>(&r, 1)); }
    void begin_run(RunRecord r) { write_one(std::move(r)); }
    void end_run(RunEnd e) { write_one(std::move(e)); }
    void record_report(std::string run_id, Report r) { write_one(ReportRecord{std::move(run_id), std::move(r)}); }
    void record_task(TaskAttempt t) { write_one(std::move(t)); }
    void record_delivery(const AlertDelivery& d) { write_one(d); }
    void save_checkpoint(std::string run_id, boost::json::object body) {
        write_one(Checkpoint{std::move(run_id), std::move(body)});
    }

    /// The learned baseline of a task type: durations of its succeeded attempts (of one workflow name when not
    /// empty) as count, P50 and P95.
    DurationStats type_durations(std::string_view workflow_name, std::string_view task_type);
};

// ------------------------------------------------------------------------------------------------ statistics

/// The p-th percentile (0 ≤ p ≤ 100) by linear interpolation between closest ranks (numpy's default);
/// 0 for an empty set.
inline double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    p = std::clamp(p, 0.0, 100.0);
    const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(rank));
    const auto hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

inline DurationStats duration_stats(const std::vector<double>& durations) {
    return {durations.size(), percentile(durations, 50), percentile(durations, 95)};
}

/// Durations of the succeeded attempts among `attempts` (with both start and end known, not negative).
inline std::vector<double> succeeded_durations(const std::vector<TaskAttempt>& attempts) {
    std::vector<double> out;
    for (const auto& a : attempts)
        if (a.status == "succeeded")
            if (auto d = a.duration_seconds(); d && *d >= 0) out.push_back(*d);
    return out;
}

inline DurationStats RunHistoryStore::type_durations(std::string_view workflow_name, std::string_view task_type) {
    return duration_stats(succeeded_durations(task_attempts(workflow_name, task_type)));
}

/// Per task type across runs: finished attempts, failed ones, the failure rate and the durations.
struct TypeStats {
    std::string task_type;
    std::size_t runs = 0;     ///< runs with at least one attempt of the type
    std::size_t attempts = 0; ///< finished attempts (succeeded or failed)
    std::size_t failed = 0;
    double failure_rate = 0;  ///< failed / attempts (0 when no attempt finished)
    DurationStats duration;   ///< of the succeeded attempts
};

inline std::vector<TypeStats> type_statistics(const std::vector<TaskAttempt>& attempts) {
    std::map<std::string, std::vector<const TaskAttempt*>> by_type;
    for (const auto& a : attempts) by_type[a.task_type].push_back(&a);
    std::vector<TypeStats> out;
    for (auto& [type, list] : by_type) {
        TypeStats s;
        s.task_type = type;
        std::set<std::string> runs;
        std::vector<double> durations;
        for (const auto* a : list) {
            runs.insert(a->run_id);
            if (a->status == "running") continue;
            ++s.attempts;
            if (a->status == "failed") ++s.failed;
            else if (auto d = a->duration_seconds(); d && *d >= 0) durations.push_back(*d);
        }
        s.runs = runs.size();
        s.failure_rate = s.attempts ? static_cast<double>(s.failed) / static_cast<double>(s.attempts) : 0;
        s.duration = duration_stats(durations);
        out.push_back(std::move(s));
    }
    return out;
}

/// A task type that failed in some runs and passed in others. A run "failed" the type when any attempt of
/// the type failed in it, and "passed" it when attempts of the type finished in it and none failed.
struct FlakyType {
    std::string task_type;
    std::vector<std::string> failed_runs;
    std::vector<std::string> passed_runs;
};

inline std::vector<FlakyType> flaky_types(const std::vector<TaskAttempt>& attempts) {
    // type → run → (any failed, any succeeded)
    std::map<std::string, std::map<std::string, std::pair<bool, bool>>> seen;
    for (const auto& a : attempts) {
        auto& flags = seen[a.task_type][a.run_id];
        if (a.status == "failed") flags.first = true;
        if (a.status == "succeeded") flags.second = true;
    }
    std::vector<FlakyType> out;
    for (auto& [type, runs] : seen) {
        FlakyType f;
        f.task_type = type;
        for (auto& [run, flags] : runs) {
            if (flags.first) f.failed_runs.push_back(run);
            else if (flags.second) f.passed_runs.push_back(run);
        }
        if (!f.failed_runs.empty() && !f.passed_runs.empty()) out.push_back(std::move(f));
    }
    return out;
}

// ------------------------------------------------------------------------------------------------ addresses

enum class StoreKind : std::uint8_t { sqlite, postgresql, memory };

/// Where a store is: a SQLite file, a PostgreSQL connection URI, or memory.
struct StoreLocation {
    StoreKind kind = StoreKind::sqlite;
    std::string target; ///< the file path, or the whole postgresql:// URI (handed to libpq)

    /// The address for messages: a PostgreSQL password (in the user part or a password= parameter) is
    /// replaced by "***".
    std::string display() const;
    friend bool operator==(const StoreLocation&, const StoreLocation&) = default;
};

/// Replaces the password of a postgresql:// URI (user:PASSWORD@ and password=VALUE) with "***".
inline std::string redact_store_uri(std::string_view uri) {
    std::string out(uri);
    const auto scheme = out.find("://");
    if (scheme != std::string::npos) {
        const auto start = scheme + 3;
        auto end = out.find_first_of("/?#", start);
        if (end == std::string::npos) end = out.size();
        const auto at = out.rfind('@', end == 0 ? 0 : end - 1);
        if (at != std::string::npos && at >= start) {
            const auto colon = out.find(':', start);
            if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
        }
    }
    // password=… in the query string (or a key=value connection string)
    std::size_t pos = 0;
    while ((pos = out.find("password=", pos)) != std::string::npos) {
        const auto value = pos + 9;
        auto end = out.find_first_of("& #", value);
        if (end == std::string::npos) end = out.size();
        out.replace(value, end - value, "***");
        pos = value + 3;
    }
    return out;
}

inline std::string StoreLocation::display() const {
    switch (kind) {
    case StoreKind::sqlite: return "sqlite:" + target;
    case StoreKind::postgresql: return redact_store_uri(target);
    case StoreKind::memory: return "memory:";
    }
    return target;
}

/// Parses a store address:
///   sqlite:PATH, sqlite://PATH (sqlite:///abs/path)  a SQLite file
///   postgresql://… or postgres://…                    a PostgreSQL connection URI (libpq syntax)
///   memory:                                           an in-memory store
///   PATH (no scheme)                                  a SQLite file
/// Throws StoreAddressError for an empty address, control characters, more than 4096 characters, an unknown
/// scheme or an empty path.
inline StoreLocation parse_store_location(std::string_view text) {
    if (text.empty()) throw StoreAddressError("store address is empty");
    if (text.size() > 4096) throw StoreAddressError("store address is longer than 4096 characters");
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f) throw StoreAddressError("store address contains a control character");
    auto starts = [&](std::string_view p) { return text.substr(0, p.size()) == p; };
    if (starts("postgresql://") || starts("postgres://")) {
        StoreLocation loc{StoreKind::postgresql, std::string(text)};
        return loc;
    }
    if (text == "memory:" || text == "memory://") return {StoreKind::memory, ""};
    if (starts("sqlite:")) {
        auto path = text.substr(7);
        if (path.substr(0, 2) == "//") path.remove_prefix(2);
        if (path.empty()) throw StoreAddressError("store address sqlite: needs a file path (sqlite:PATH)");
        return {StoreKind::sqlite, std::string(path)};
    }
    // A scheme ("name:" before any '/') that is none of the above.
    const auto colon = text.find(':');
    const auto slash = text.find('/');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash) && colon > 1) {
        const auto scheme = text.substr(0, colon);
        if (std::all_of(scheme.begin(), scheme.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
                       c == '-' || c == '.';
            }))
            throw StoreAddressError("store address: unknown scheme \"" + std::string(scheme) +
                                    "\" (use sqlite:PATH, postgresql://… or memory:)");
    }
    return {StoreKind::sqlite, std::string(text)};
}

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_STORE_HPP

// `execution-sentinel history`: where the store is (flag, SENTINEL_HISTORY, SENTINEL_STATE) and how its answers
// are printed (a table on a terminal, JSON otherwise). Pure: no I/O. Documented in docs/cli.md and
// docs/history.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_VIEW_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_VIEW_HPP

#include <execution_sentinel/history/store.hpp>
#include <execution_sentinel/report.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::cli::history_view {

namespace h = execution_sentinel::history;

/// The store address: `--store` when given, else SENTINEL_HISTORY, else SENTINEL_STATE (a SQLite file);
/// nullopt when none is set. `lookup` reads a variable (environment, then ./.env).
inline std::optional<std::string> store_address(const std::string& flag,
                                                const std::function<std::optional<std::string>(const char*)>& lookup) {
    if (!flag.empty()) return flag;
    if (auto v = lookup("SENTINEL_HISTORY"); v && !v->empty()) return *v;
    if (auto v = lookup("SENTINEL_STATE"); v && !v->empty()) {
        // SENTINEL_STATE names a file; an explicit scheme is accepted too.
        return v->find("://") != std::string::npos || v->rfind("sqlite:", 0) == 0 || *v == "memory:" ? *v
                                                                                                      : "sqlite:" + *v;
    }
    return std::nullopt;
}

/// Control characters (terminal escapes from stored text) shown as '?'.
inline std::string clean(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    return out;
}

/// "12.3 s", "4 min 05 s", "1 h 02 min"; "-" when unknown.
inline std::string format_duration(std::optional<double> seconds) {
    if (!seconds) return "-";
    char buf[64];
    const double s = std::max(0.0, *seconds);
    if (s < 60) std::snprintf(buf, sizeof buf, "%.1f s", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%d min %02d s", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
    else std::snprintf(buf, sizeof buf, "%d h %02d min", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
    return buf;
}

inline std::optional<double> run_seconds(const h::RunRecord& r) {
    if (!r.ended) return std::nullopt;
    return std::chrono::duration<double>(*r.ended - r.started).count();
}

/// Columns padded to their widest cell, two spaces apart; the first row is the header.
inline std::string table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], row[i].size());
        }
    std::string out;
    for (auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

inline boost::json::object run_json(const h::RunRecord& r) {
    boost::json::object o;
    o["id"] = r.id;
    o["namespace"] = r.namespace_;
    o["workflow_name"] = r.workflow_name;
    o["started"] = format_timestamp(r.started);
    if (r.ended) o["ended"] = format_timestamp(*r.ended);
    else o["ended"] = nullptr;
    if (auto s = run_seconds(r)) o["duration_seconds"] = *s;
    else o["duration_seconds"] = nullptr;
    o["outcome"] = r.outcome.empty() ? std::string("running") : r.outcome;
    o["summary"] = r.summary;
    return o;
}

inline std::string runs_json(const std::vector<h::RunRecord>& runs) {
    boost::json::array a;
    for (auto& r : runs) a.push_back(run_json(r));
    boost::json::object o;
    o["runs"] = std::move(a);
    return boost::json::serialize(o) + "\n";
}

inline std::string runs_table(const std::vector<h::RunRecord>& runs) {
    if (runs.empty()) return "no runs recorded\n";
    std::vector<std::vector<std::string>> rows{{"RUN", "WORKFLOW", "NAMESPACE", "STARTED", "DURATION", "OUTCOME"}};
    for (auto& r : runs)
        rows.push_back({clean(r.id), clean(r.workflow_name), clean(r.namespace_), format_timestamp(r.started),
                        format_duration(run_seconds(r)), r.outcome.empty() ? "running" : r.outcome});
    return table(rows);
}

inline boost::json::object task_json(const h::TaskAttempt& t) {
    boost::json::object o;
    o["task_name"] = t.task_name;
    o["task_type"] = t.task_type;
    o["attempt"] = t.attempt;
    o["node"] = t.node;
    o["status"] = t.status;
    o["exit_reason"] = t.exit_reason;
    if (t.started) o["started"] = format_timestamp(*t.started);
    else o["started"] = nullptr;
    if (t.ended) o["ended"] = format_timestamp(*t.ended);
    else o["ended"] = nullptr;
    if (auto d = t.duration_seconds()) o["duration_seconds"] = *d;
    else o["duration_seconds"] = nullptr;
    if (t.peak_memory_bytes) o["peak_memory_bytes"] = *t.peak_memory_bytes;
    else o["peak_memory_bytes"] = nullptr;
    if (t.peak_cpu_millicores) o["peak_cpu_millicores"] = *t.peak_cpu_millicores;
    else o["peak_cpu_millicores"] = nullptr;
    return o;
}

inline std::string run_detail_json(const h::RunRecord& run, const std::vector<Report>& reports,
                                   const std::vector<h::TaskAttempt>& tasks) {
    auto o = run_json(run);
    o["context"] = run.context;
    boost::json::array rs, ts;
    for (auto& r : reports) rs.push_back(to_json(r));
    for (auto& t : tasks) ts.push_back(task_json(t));
    o["reports"] = std::move(rs);
    o["tasks"] = std::move(ts);
    return boost::json::serialize(o) + "\n";
}

inline std::string run_detail_table(const h::RunRecord& run, const std::vector<Report>& reports,
                                    const std::vector<h::TaskAttempt>& tasks) {
    std::string out = "run " + clean(run.id) + ": workflow " + clean(run.workflow_name) + " in namespace " +
                      clean(run.namespace_) + ", started " + format_timestamp(run.started) + ", " +
                      (run.outcome.empty() ? std::string("running") : run.outcome + " after " +
                                                                           format_duration(run_seconds(run))) +
                      "\n\n";
    if (reports.empty()) out += "no reports\n";
    else {
        std::vector<std::vector<std::string>> rows{{"SEQ", "TIME", "TYPE", "SEVERITY", "TASK", "MESSAGE"}};
        for (auto& r : reports)
            rows.push_back({std::to_string(r.sequence), format_timestamp(r.timestamp), std::string(to_string(r.type)),
                            std::string(to_string(r.severity)), clean(r.task_name), clean(r.message)});
        out += table(rows);
    }
    out += "\n";
    if (tasks.empty()) out += "no task attempts\n";
    else {
        std::vector<std::vector<std::string>> rows{
            {"TASK", "TYPE", "ATTEMPT", "NODE", "STATUS", "DURATION", "EXIT", "PEAK MEMORY"}};
        for (auto& t : tasks)
            rows.push_back({clean(t.task_name), clean(t.task_type), std::to_string(t.attempt),
                            t.node.empty() ? "-" : clean(t.node), t.status, format_duration(t.duration_seconds()),
                            t.exit_reason.empty() ? "-" : clean(t.exit_reason),
                            t.peak_memory_bytes ? std::to_string(*t.peak_memory_bytes >> 20) + " MiB" : "-"});
        out += table(rows);
    }
    return out;
}

inline std::string types_json(const std::vector<h::TypeStats>& stats) {
    boost::json::array a;
    for (auto& s : stats) {
        boost::json::object o;
        o["task_type"] = s.task_type;
        o["runs"] = s.runs;
        o["attempts"] = s.attempts;
        o["failed"] = s.failed;
        o["failure_rate"] = s.failure_rate;
        o["succeeded_count"] = s.duration.count;
        o["p50_seconds"] = s.duration.p50;
        o["p95_seconds"] = s.duration.p95;
        a.push_back(std::move(o));
    }
    boost::json::object o;
    o["types"] = std::move(a);
    return boost::json::serialize(o) + "\n";
}

inline std::string types_table(const std::vector<h::TypeStats>& stats) {
    if (stats.empty()) return "no task attempts recorded\n";
    std::vector<std::vector<std::string>> rows{{"TYPE", "RUNS", "ATTEMPTS", "FAILED", "FAILURE RATE", "P50", "P95"}};
    for (auto& s : stats) {
        char rate[32];
        std::snprintf(rate, sizeof rate, "%.1f %%", s.failure_rate * 100);
        const bool known = s.duration.count > 0;
        rows.push_back({s.task_type.empty() ? "(unknown)" : clean(s.task_type), std::to_string(s.runs),
                        std::to_string(s.attempts), std::to_string(s.failed), rate,
                        known ? format_duration(s.duration.p50) : "-", known ? format_duration(s.duration.p95) : "-"});
    }
    return table(rows);
}

inline std::string flaky_json(const std::vector<h::FlakyType>& flaky) {
    boost::json::array a;
    for (auto& f : flaky) {
        boost::json::object o;
        o["task_type"] = f.task_type;
        boost::json::array failed, passed;
        for (auto& r : f.failed_runs) failed.push_back(boost::json::string(r));
        for (auto& r : f.passed_runs) passed.push_back(boost::json::string(r));
        o["failed_runs"] = std::move(failed);
        o["passed_runs"] = std::move(passed);
        a.push_back(std::move(o));
    }
    boost::json::object o;
    o["flaky"] = std::move(a);
    return boost::json::serialize(o) + "\n";
}

inline std::string flaky_table(const std::vector<h::FlakyType>& flaky) {
    if (flaky.empty()) return "no flaky task types: every type either always passed or always failed\n";
    std::vector<std::vector<std::string>> rows{{"TYPE", "FAILED IN", "PASSED IN", "FAILED RUNS"}};
    for (auto& f : flaky) {
        std::string runs;
        for (std::size_t i = 0; i < f.failed_runs.size() && i < 5; ++i) runs += (i ? ", " : "") + clean(f.failed_runs[i]);
        if (f.failed_runs.size() > 5) runs += ", …";
        rows.push_back({clean(f.task_type), std::to_string(f.failed_runs.size()) + " runs",
                        std::to_string(f.passed_runs.size()) + " runs", runs});
    }
    return table(rows);
}

} // namespace execution_sentinel::cli::history_view

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_HISTORY_VIEW_HPP

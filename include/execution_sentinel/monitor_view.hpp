// MonitorView: a plain snapshot of a watched run — per phase counts, running tasks with their elapsed time, an ETA,
// the health score and the anomalies so far — for orchestrators and the live terminal view.
//
// Usage:
//   es::MonitorView v = monitor.view(now);          // Monitor<Ds...>::view(Timestamp) const, pure
//   es::MonitorView v = es::make_view(state, counts, recent, now);  // the same from the parts
// A MonitorView owns all its data (no reference into the Monitor), so it can be copied to another thread. It is
// made on the Monitor's strand: Monitor::view is const but not synchronised; a driver that runs the Monitor on a
// strand builds the view there and hands the copy out. `to_json(view)` gives its JSON form.
#ifndef EXECUTION_SENTINEL_MONITOR_VIEW_HPP
#define EXECUTION_SENTINEL_MONITOR_VIEW_HPP

#include <execution_sentinel/detectors/progress.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// One snapshot. Times are seconds.
struct MonitorView {
    /// One DAG phase (task type), in dag_order then name.
    struct Phase {
        std::string task_type;
        int dag_order = 99;
        int total = 0; ///< inventory + extra tasks of the type
        int pending = 0, running = 0, succeeded = 0, failed = 0;
        bool started = false;
        bool completed = false;
        friend bool operator==(const Phase&, const Phase&) = default;
    };
    /// One running task, longest-running first.
    struct RunningTask {
        std::string name;
        std::string task_type;
        double elapsed_seconds = 0;
        int attempts = 0;
        std::optional<double> expected_seconds; ///< its baseline (see basis), when known
        std::string basis; ///< "sibling_median", "expected_duration" or "" when unknown
        friend bool operator==(const RunningTask&, const RunningTask&) = default;
    };

    Timestamp at{};
    int total = 0, completed = 0, failed = 0, running = 0, pending = 0;
    std::vector<Phase> phases;
    std::vector<RunningTask> running_tasks; ///< at most ViewOptions::max_running_tasks
    int running_tasks_omitted = 0;          ///< running tasks left out of running_tasks
    /// Estimated seconds until every task has finished; nullopt when some unfinished task has no baseline.
    std::optional<double> eta_seconds;
    /// What the ETA rests on: "sibling_median" (durations of finished tasks of the same type), "expected_duration"
    /// (the inventory's expectations), "mixed" (both), "none" (no estimate), "done" (nothing left).
    std::string eta_basis = "none";
    int eta_unknown_tasks = 0; ///< unfinished tasks without a baseline
    double health = 1.0;       ///< health_score (detectors/progress.hpp)
    std::map<ReportType, int> anomaly_counts; ///< anomaly reports so far, per type (see counts_as_anomaly)
    std::vector<Report> recent_anomalies;     ///< the last ones, oldest first (at most RecentReports::capacity)
    bool finished = false;  ///< the exit code is known or the watch timed out
    bool timed_out = false;

    /// The report types counted as anomalies: the ANOMALY_* types, MASS_FAILURE, STRUCTURE, CONNECTIVITY_LOSS,
    /// TIMEOUT and COMPLETION_SIGNAL_INVALID.
    static constexpr bool counts_as_anomaly(ReportType t) noexcept {
        switch (t) {
        case ReportType::ANOMALY_OOMKILL:
        case ReportType::ANOMALY_STRAGGLER:
        case ReportType::ANOMALY_STALL:
        case ReportType::ANOMALY_TASK_FAILED:
        case ReportType::ANOMALY_MEMORY_PRESSURE:
        case ReportType::MASS_FAILURE:
        case ReportType::STRUCTURE:
        case ReportType::CONNECTIVITY_LOSS:
        case ReportType::TIMEOUT:
        case ReportType::COMPLETION_SIGNAL_INVALID: return true;
        default: return false;
        }
    }

    friend bool operator==(const MonitorView&, const MonitorView&) = default;
};

/// The last anomaly reports a Monitor made (a bounded ring, oldest first).
class RecentReports {
public:
    static constexpr std::size_t capacity = 20;

    void note(const std::vector<Report>& reports) {
        for (auto& r : reports) {
            if (!MonitorView::counts_as_anomaly(r.type)) continue;
            if (items_.size() == capacity) items_.pop_front();
            items_.push_back(r);
        }
    }
    std::vector<Report> items() const { return {items_.begin(), items_.end()}; }

private:
    std::deque<Report> items_;
};

struct ViewOptions {
    std::size_t max_running_tasks = 50;
};

namespace detail {

inline std::optional<double> es_median(std::vector<double> v) {
    if (v.empty()) return std::nullopt;
    std::sort(v.begin(), v.end());
    auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace detail

/// Builds a view of `state` at `now`. `report_counts` are the reports emitted per type (ReportSink::counts()),
/// `recent` the last anomaly reports (RecentReports::items()).
///
/// ETA: each unfinished task gets a baseline — the median run time of the succeeded tasks of its type (one is
/// enough here: a measured duration beats a declared one), else its expected_duration_seconds. A running task needs
/// max(0, baseline − elapsed), a task not started its whole baseline. With P = max(1, running tasks) working in
/// parallel, ETA = max(longest remaining time of a running task, total remaining work / P). When some unfinished
/// task has no baseline, eta_seconds is nullopt and eta_unknown_tasks counts them.
inline MonitorView make_view(const WorkflowState& state, const std::map<ReportType, int>& report_counts,
                             std::vector<Report> recent, Timestamp now, bool finished = false, bool timed_out = false,
                             const ViewOptions& options = {}) {
    MonitorView v;
    v.at = now;
    v.total = state.total();
    v.completed = state.completed();
    v.failed = state.failed();
    v.running = state.running();
    v.pending = state.pending();
    v.finished = finished;
    v.timed_out = timed_out;
    v.health = health_score(state);
    for (auto& [type, ph] : state.phases()) {
        if (ph.total <= 0) continue;
        v.phases.push_back({ph.task_type, ph.dag_order, ph.total, ph.pending, ph.running, ph.succeeded, ph.failed,
                            ph.started, ph.completed});
    }
    std::sort(v.phases.begin(), v.phases.end(), [](const auto& a, const auto& b) {
        return a.dag_order != b.dag_order ? a.dag_order < b.dag_order : a.task_type < b.task_type;
    });

    std::map<std::string, std::vector<double>> runs;
    for (auto& t : state.tasks())
        if (t.status == TaskStatus::succeeded)
            if (auto r = t.runtime_seconds(now)) runs[t.task_type].push_back(*r);
    std::map<std::string, std::optional<double>> medians;
    auto baseline = [&](const TaskRecord& t) -> std::pair<std::optional<double>, std::string> {
        auto it = medians.find(t.task_type);
        if (it == medians.end()) {
            auto r = runs.find(t.task_type);
            it = medians.emplace(t.task_type, r == runs.end() ? std::nullopt : detail::es_median(r->second)).first;
        }
        if (it->second && *it->second > 0) return {it->second, "sibling_median"};
        if (t.expected_duration_seconds && *t.expected_duration_seconds > 0)
            return {t.expected_duration_seconds, "expected_duration"};
        return {std::nullopt, ""};
    };

    double work = 0, longest = 0;
    bool used_median = false, used_expected = false;
    int unfinished = 0;
    for (auto& t : state.tasks()) {
        if (t.finished()) continue;
        ++unfinished;
        auto [base, basis] = baseline(t);
        double elapsed = 0;
        if (t.status == TaskStatus::running) {
            elapsed = t.runtime_seconds(now).value_or(0);
            v.running_tasks.push_back({t.name, t.task_type, elapsed, t.attempts, base, basis});
        }
        if (!base) {
            ++v.eta_unknown_tasks;
            continue;
        }
        (basis == "sibling_median" ? used_median : used_expected) = true;
        double left = std::max(0.0, *base - elapsed);
        work += left;
        if (t.status == TaskStatus::running) longest = std::max(longest, left);
    }
    std::sort(v.running_tasks.begin(), v.running_tasks.end(), [](const auto& a, const auto& b) {
        return a.elapsed_seconds != b.elapsed_seconds ? a.elapsed_seconds > b.elapsed_seconds : a.name < b.name;
    });
    if (v.running_tasks.size() > options.max_running_tasks) {
        v.running_tasks_omitted = static_cast<int>(v.running_tasks.size() - options.max_running_tasks);
        v.running_tasks.resize(options.max_running_tasks);
    }
    if (unfinished == 0) {
        v.eta_seconds = 0.0;
        v.eta_basis = "done";
    } else if (v.eta_unknown_tasks == 0) {
        double parallel = std::max(1, state.running());
        v.eta_seconds = std::max(longest, work / parallel);
        v.eta_basis = used_median && used_expected ? "mixed" : used_median ? "sibling_median" : "expected_duration";
    }
    for (auto& [type, n] : report_counts)
        if (MonitorView::counts_as_anomaly(type) && n > 0) v.anomaly_counts[type] = n;
    v.recent_anomalies = std::move(recent);
    return v;
}

/// The JSON form: the fields above, `at` in RFC 3339, reports as to_json(Report).
inline boost::json::object to_json(const MonitorView& v) {
    boost::json::object o;
    o["at"] = format_timestamp(v.at);
    o["total"] = v.total;
    o["completed"] = v.completed;
    o["failed"] = v.failed;
    o["running"] = v.running;
    o["pending"] = v.pending;
    boost::json::array phases;
    for (auto& p : v.phases) {
        boost::json::object x;
        x["task_type"] = p.task_type;
        x["dag_order"] = p.dag_order;
        x["total"] = p.total;
        x["pending"] = p.pending;
        x["running"] = p.running;
        x["succeeded"] = p.succeeded;
        x["failed"] = p.failed;
        x["started"] = p.started;
        x["completed"] = p.completed;
        phases.push_back(std::move(x));
    }
    o["phases"] = std::move(phases);
    boost::json::array running;
    for (auto& r : v.running_tasks) {
        boost::json::object x;
        x["name"] = r.name;
        x["task_type"] = r.task_type;
        x["elapsed_seconds"] = r.elapsed_seconds;
        x["attempts"] = r.attempts;
        if (r.expected_seconds) x["expected_seconds"] = *r.expected_seconds;
        else x["expected_seconds"] = nullptr;
        x["basis"] = r.basis;
        running.push_back(std::move(x));
    }
    o["running_tasks"] = std::move(running);
    o["running_tasks_omitted"] = v.running_tasks_omitted;
    if (v.eta_seconds) o["eta_seconds"] = *v.eta_seconds;
    else o["eta_seconds"] = nullptr;
    o["eta_basis"] = v.eta_basis;
    o["eta_unknown_tasks"] = v.eta_unknown_tasks;
    o["health"] = v.health;
    boost::json::object counts;
    for (auto& [t, n] : v.anomaly_counts) counts[to_string(t)] = n;
    o["anomaly_counts"] = std::move(counts);
    boost::json::array recent;
    for (auto& r : v.recent_anomalies) recent.push_back(to_json(r));
    o["recent_anomalies"] = std::move(recent);
    o["finished"] = v.finished;
    o["timed_out"] = v.timed_out;
    return o;
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_MONITOR_VIEW_HPP

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
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
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
        int vanished = 0; ///< ended with an unknown outcome (TaskStatus::vanished)
        friend bool operator==(const Phase&, const Phase&) = default;
    };
    /// One running task, longest-running first (equal times in the order of WorkflowState::tasks()).
    struct RunningTask {
        std::string name;
        std::string task_type;
        double elapsed_seconds = 0;
        int attempts = 0;
        std::optional<double> expected_seconds; ///< its baseline (see basis), when known
        std::string basis; ///< "sibling_median", "inventory", "history" or "" when unknown
        friend bool operator==(const RunningTask&, const RunningTask&) = default;
    };

    Timestamp at{};
    int total = 0, completed = 0, failed = 0, running = 0, pending = 0;
    int vanished = 0; ///< tasks whose objects vanished without an end seen (finished, outcome unknown)
    std::vector<Phase> phases;
    std::vector<RunningTask> running_tasks; ///< at most ViewOptions::max_running_tasks
    int running_tasks_omitted = 0;          ///< running tasks left out of running_tasks
    /// Estimated seconds until every task has finished; nullopt when some unfinished task has no baseline.
    std::optional<double> eta_seconds;
    /// What the ETA rests on: "sibling_median" (durations of finished tasks of the same type), "inventory" (the
    /// inventory's expected durations), "history" (durations learned from past runs, baselines.hpp), "mixed" (several
    /// of these), "none" (no estimate), "done" (nothing left).
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

/// What the ETA and the view need of the tasks, gathered in one pass over them (10,000 tasks are megabytes of
/// records: each pass over them costs its cache misses, about 0.3 ms): the run times of the succeeded tasks per
/// type, and each unfinished task's type, elapsed time and expectation in a compact entry.
///
/// The baseline of an unfinished task: the median run time of the succeeded tasks of its type (one is enough here:
/// a duration measured in this run beats any other), else the task's expectation (TaskRecord::expectation: the
/// inventory's estimate or the one learned from past runs, baselines.hpp).
class TaskDigest {
public:
    struct Entry {
        const TaskRecord* task;
        double elapsed;                  ///< a running task's run time, else 0
        std::optional<double> expected;  ///< TaskRecord::expectation.seconds
        ExpectationBasis basis;          ///< TaskRecord::expectation.basis
        std::uint32_t type;              ///< index into the types
        bool running;
    };

    TaskDigest(const TaskDigest&) = delete;
    TaskDigest& operator=(const TaskDigest&) = delete;
    TaskDigest(const WorkflowState& state, Timestamp now) {
        std::map<std::string_view, std::uint32_t> index; // type → its index in runs and medians_
        std::vector<std::vector<double>> runs;            // per type
        std::string_view last;
        std::uint32_t last_type = 0;
        auto type_of = [&](const std::string& type) {
            // tasks come by type in runs: a look-up only when the type changes
            if (!index.empty() && type == last) return last_type;
            auto [it, added] = index.try_emplace(type, static_cast<std::uint32_t>(runs.size()));
            if (added) runs.emplace_back();
            last = type;
            return last_type = it->second;
        };
        unfinished_.reserve(static_cast<std::size_t>(std::max(0, state.running() + state.pending())));
        for (auto& t : state.tasks()) {
            if (t.status == TaskStatus::succeeded) {
                if (auto r = t.runtime_seconds(now)) runs[type_of(t.task_type)].push_back(*r);
                continue;
            }
            if (t.finished()) continue;
            const bool running = t.status == TaskStatus::running;
            unfinished_.push_back(Entry{&t, running ? t.runtime_seconds(now).value_or(0) : 0.0, t.expectation.seconds,
                                        t.expectation.basis, type_of(t.task_type), running});
        }
        medians_.reserve(runs.size());
        for (auto& r : runs) medians_.push_back(es_median(std::move(r)));
    }

    /// The unfinished tasks, in the order of WorkflowState::tasks().
    const std::vector<Entry>& unfinished() const noexcept { return unfinished_; }

    /// The baseline and its basis ("sibling_median", "inventory", "history"), or {nullopt, ""}.
    std::pair<std::optional<double>, std::string_view> baseline(const Entry& e) const {
        const auto& median = medians_[e.type];
        if (median && *median > 0) return {median, "sibling_median"};
        if (e.expected && *e.expected > 0) return {e.expected, to_string(e.basis)};
        return {std::nullopt, ""};
    }

private:
    std::vector<std::optional<double>> medians_; ///< per type index
    std::vector<Entry> unfinished_;
};

} // namespace detail

/// An ETA and what it rests on (MonitorView::eta_seconds, eta_basis, eta_unknown_tasks).
struct EtaEstimate {
    std::optional<double> seconds;
    std::string basis = "none";
    int unknown_tasks = 0;
    friend bool operator==(const EtaEstimate&, const EtaEstimate&) = default;
};

namespace detail {
/// estimate_eta from a digest made already (make_view shares it).
inline EtaEstimate es_estimate_eta(const WorkflowState& state, const TaskDigest& digest) {
    EtaEstimate e;
    double work = 0, longest = 0;
    std::set<std::string_view> bases;
    std::string_view last_basis;
    for (const auto& t : digest.unfinished()) {
        auto [base, basis] = digest.baseline(t);
        if (!base) {
            ++e.unknown_tasks;
            continue;
        }
        if (bases.empty() || basis != last_basis) { // a look-up in `bases` only when the basis changes
            last_basis = basis;
            bases.insert(basis);
        }
        const double left = std::max(0.0, *base - t.elapsed);
        work += left;
        if (t.running) longest = std::max(longest, left);
    }
    if (digest.unfinished().empty()) {
        e.seconds = 0.0;
        e.basis = "done";
    } else if (e.unknown_tasks == 0) {
        const double parallel = std::max(1, state.running());
        e.seconds = std::max(longest, work / parallel);
        e.basis = bases.size() == 1 ? std::string(*bases.begin()) : "mixed";
    }
    return e;
}
} // namespace detail

/// The ETA of `state` at `now` (pure). Each unfinished task gets a baseline (detail::EtaBaselines). A running task
/// needs max(0, baseline − elapsed), a task not started its whole baseline. With P = max(1, running tasks) working in
/// parallel, ETA = max(longest remaining time of a running task, total remaining work / P). When some unfinished task
/// has no baseline, seconds is nullopt and unknown_tasks counts them. basis: "sibling_median", "inventory" or
/// "history" when all baselines have that basis, "mixed" when they have several, "done" when nothing is left,
/// "none" without an estimate.
inline EtaEstimate estimate_eta(const WorkflowState& state, Timestamp now) {
    const detail::TaskDigest digest(state, now);
    return detail::es_estimate_eta(state, digest);
}

/// Builds a view of `state` at `now`. `report_counts` are the reports emitted per type (ReportSink::counts()),
/// `recent` the last anomaly reports (RecentReports::items()). The ETA is estimate_eta(state, now); each running
/// task shows the baseline it has there.
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
    v.vanished = state.vanished();
    v.finished = finished;
    v.timed_out = timed_out;
    v.health = health_score(state);
    for (auto& [type, ph] : state.phases()) {
        if (ph.total <= 0) continue;
        v.phases.push_back({ph.task_type, ph.dag_order, ph.total, ph.pending, ph.running, ph.succeeded, ph.failed,
                            ph.started, ph.completed, ph.vanished});
    }
    std::sort(v.phases.begin(), v.phases.end(), [](const auto& a, const auto& b) {
        return a.dag_order != b.dag_order ? a.dag_order < b.dag_order : a.task_type < b.task_type;
    });

    // One pass over the tasks gathers what the rest needs (detail::TaskDigest). The longest-running tasks are
    // chosen among its entries, ties in elapsed time in the order of WorkflowState::tasks() (the inventory's order,
    // then tasks found later; no look at the records, as 10,000 tasks started in the same second are common), and
    // only the ones shown are copied out (a run of 10,000 running tasks shows 50).
    const detail::TaskDigest digest(state, now);
    std::vector<const detail::TaskDigest::Entry*> running;
    running.reserve(static_cast<std::size_t>(std::max(0, state.running())));
    for (const auto& e : digest.unfinished())
        if (e.running) running.push_back(&e);
    const auto shown = std::min(running.size(), options.max_running_tasks);
    std::partial_sort(running.begin(), running.begin() + static_cast<std::ptrdiff_t>(shown), running.end(),
                      [](const auto* a, const auto* b) { return a->elapsed != b->elapsed ? a->elapsed > b->elapsed : a < b; });
    v.running_tasks_omitted = static_cast<int>(running.size() - shown);
    running.resize(shown);
    v.running_tasks.reserve(shown);
    for (const auto* e : running) {
        const auto& t = *e->task;
        auto [base, basis] = digest.baseline(*e);
        v.running_tasks.push_back({t.name, t.task_type, e->elapsed, t.attempts, base, std::string(basis)});
    }
    auto eta = detail::es_estimate_eta(state, digest);
    v.eta_seconds = eta.seconds;
    v.eta_basis = std::move(eta.basis);
    v.eta_unknown_tasks = eta.unknown_tasks;
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
    o["vanished"] = v.vanished;
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
        x["vanished"] = p.vanished;
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

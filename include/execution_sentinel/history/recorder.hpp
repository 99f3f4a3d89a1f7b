// RunRecorder: records one watched run through a HistoryWriter (never blocking the watch): the run at its start,
// every report, the task attempts the task-lifecycle reports describe, and the run's end with its summary.
//
//   auto store = std::make_shared<history::SqliteHistoryStore>("sentinel.db");
//   history::HistoryWriter writer(store);
//   history::RunRecorder recorder(writer, history::make_run_record(context, "1000genome", Clock::now()));
//   auto subscription = sentinel.subscribe(history::RunRecorder::subscription_options());
//   co_spawn(ex, recorder.record(subscription), detached);
//   auto summary = co_await sentinel.watch();
//   recorder.finish(Clock::now(), to_string(summary.outcome()), summary);
#ifndef EXECUTION_SENTINEL_HISTORY_RECORDER_HPP
#define EXECUTION_SENTINEL_HISTORY_RECORDER_HPP

#include <execution_sentinel/channel.hpp>
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/history/store.hpp>
#include <execution_sentinel/history/writer.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace execution_sentinel::history {

/// "namespace/engine/2026-12-05T01:23:45.678Z": the engine pod name (or its selector) and the start time make
/// a run's id unique within a namespace.
inline std::string make_run_id(const MonitoringContext& context, Timestamp started) {
    const auto& engine = context.engine_pod_name.empty() ? context.engine_pod_selector : context.engine_pod_name;
    return context.namespace_ + "/" + engine + "/" + format_timestamp(started);
}

/// A run record for `context`, started now; `workflow_name` is what baselines are grouped by ("" = unknown).
inline RunRecord make_run_record(const MonitoringContext& context, std::string workflow_name, Timestamp started) {
    RunRecord r;
    r.id = make_run_id(context, started);
    r.namespace_ = context.namespace_;
    r.workflow_name = std::move(workflow_name);
    r.context = to_json(context);
    r.started = started;
    return r;
}

/// Task attempts from the task-lifecycle reports (TASK_STARTED, TASK_COMPLETED, TASK_FAILED, TASK_RETRIED), as
/// a pure state machine: each call returns the attempt a report changed, or nullopt. A task failure the cluster
/// did not show as one (ANOMALY_TASK_FAILED, from the engine's log for instance; an ANOMALY_OOMKILL error) marks
/// the task's newest attempt failed, with its reason.
class TaskAttemptTracker {
public:
    std::optional<TaskAttempt> update(const std::string& run_id, const Report& r) {
        if (r.task_name.empty()) return std::nullopt;
        if (r.type == ReportType::ANOMALY_TASK_FAILED ||
            (r.type == ReportType::ANOMALY_OOMKILL && r.severity >= Severity::error)) {
            auto newest = newest_.find(r.task_name);
            auto& t = attempts_[{r.task_name, newest == newest_.end() ? 1 : newest->second}];
            if (t.task_name.empty()) {
                t.run_id = run_id;
                t.task_name = r.task_name;
                t.task_type = r.task_type;
                newest_[r.task_name] = t.attempt;
            }
            t.status = "failed";
            if (!t.ended) t.ended = r.timestamp;
            if (r.type == ReportType::ANOMALY_OOMKILL) t.exit_reason = "OOMKilled";
            else if (auto* reason = r.details.if_contains("reason"); reason && reason->is_string() &&
                                                                    !reason->as_string().empty())
                t.exit_reason = std::string(reason->as_string()).substr(0, 256);
            return t;
        }
        if (!is_lifecycle(r.type)) return std::nullopt;
        int attempt = 1;
        if (auto* a = r.details.if_contains("attempt"); a && a->is_int64() && a->as_int64() >= 1 &&
                                                         a->as_int64() <= INT32_MAX)
            attempt = static_cast<int>(a->as_int64());
        if (r.type == ReportType::TASK_RETRIED) return std::nullopt; // the new attempt starts with TASK_STARTED
        auto& t = attempts_[{r.task_name, attempt}];
        if (auto& n = newest_[r.task_name]; attempt > n) n = attempt;
        t.run_id = run_id;
        t.task_name = r.task_name;
        t.task_type = r.task_type;
        t.attempt = attempt;
        std::optional<double> runtime;
        if (auto* rt = r.details.if_contains("runtime_seconds"); rt && rt->is_number()) {
            boost::system::error_code ec;
            const double v = rt->to_number<double>(ec);
            if (!ec && std::isfinite(v) && v >= 0 && v < 1e9) runtime = v;
        }
        switch (r.type) {
        case ReportType::TASK_STARTED:
            t.status = "running";
            if (!t.started) t.started = r.timestamp;
            break;
        case ReportType::TASK_COMPLETED:
        case ReportType::TASK_FAILED:
            t.status = r.type == ReportType::TASK_COMPLETED ? "succeeded" : "failed";
            t.ended = r.timestamp;
            if (runtime)
                t.started = r.timestamp - std::chrono::duration_cast<Timestamp::duration>(std::chrono::duration<double>(*runtime));
            if (r.type == ReportType::TASK_FAILED) {
                if (auto* reason = r.details.if_contains("reason"); reason && reason->is_string())
                    t.exit_reason = std::string(reason->as_string()).substr(0, 256);
            } else {
                t.exit_reason = "Completed";
            }
            break;
        default: break;
        }
        return t;
    }

private:
    std::map<std::pair<std::string, int>, TaskAttempt> attempts_;
    std::map<std::string, int> newest_; ///< task name → its newest attempt seen
};

class RunRecorder {
public:
    /// Queues the run's start.
    RunRecorder(HistoryWriter& writer, RunRecord run) : writer_(writer), run_id_(run.id) {
        writer_.push(std::move(run));
    }

    const std::string& run_id() const noexcept { return run_id_; }

    /// What a recording subscription asks for: every report, the task-lifecycle stream included.
    static SubscriptionOptions subscription_options() {
        SubscriptionOptions o;
        o.lifecycle = true;
        o.capacity = 4096;
        return o;
    }

    /// Queues a report and the task attempt it changes.
    void on_report(const Report& r) {
        writer_.push_report(run_id_, r);
        if (auto t = tracker_.update(run_id_, r)) writer_.push(std::move(*t));
    }

    /// Receives every report of `subscription` until the channel is closed or the receive is cancelled.
    boost::asio::awaitable<void> record(ReportSubscription& subscription) {
        while (true) {
            auto [ec, report] =
                co_await subscription.async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec == channel_error::reports_lost) continue; // counted by the subscription
            if (ec) co_return;
            on_report(report);
        }
    }

    /// Queues the run's end.
    void finish(Timestamp ended, std::string outcome, const WatchSummary& summary) {
        writer_.push(RunEnd{run_id_, ended, std::move(outcome), to_json(summary)});
    }

private:
    HistoryWriter& writer_;
    std::string run_id_;
    TaskAttemptTracker tracker_;
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_RECORDER_HPP

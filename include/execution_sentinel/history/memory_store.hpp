// MemoryHistoryStore: the history store in memory, for tests and for embedding without a disk. Behaves like the
// SQL stores (same upsert and ordering rules); `set_available(false)` simulates an outage for tests of writers.
#ifndef EXECUTION_SENTINEL_HISTORY_MEMORY_STORE_HPP
#define EXECUTION_SENTINEL_HISTORY_MEMORY_STORE_HPP

#include <execution_sentinel/history/store.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace execution_sentinel::history {

class MemoryHistoryStore final : public RunHistoryStore {
public:
    void write(std::span<const HistoryRecord> records) override {
        for (const auto& r : records) validate_record(r);
        std::lock_guard lock(mutex_);
        if (!available_) throw StoreError("history store memory: unavailable");
        auto copy = data_; // all or nothing
        for (const auto& r : records) std::visit([&](const auto& rec) { apply(copy, rec); }, r);
        data_ = std::move(copy);
        ++writes_;
    }

    std::vector<RunRecord> list_runs(const RunQuery& q) override {
        std::lock_guard lock(mutex_);
        std::vector<RunRecord> out;
        for (auto& [id, run] : data_.runs)
            if (q.workflow_name.empty() || run.workflow_name == q.workflow_name) out.push_back(run);
        std::sort(out.begin(), out.end(), [](const RunRecord& a, const RunRecord& b) {
            return std::tie(b.started, b.id) < std::tie(a.started, a.id);
        });
        if (out.size() > q.limit) out.resize(q.limit);
        return out;
    }

    std::optional<RunRecord> find_run(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        auto it = data_.runs.find(std::string(run_id));
        if (it == data_.runs.end()) return std::nullopt;
        return it->second;
    }

    std::vector<Report> reports(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        std::vector<Report> out;
        for (auto& [key, r] : data_.reports)
            if (key.first == run_id) out.push_back(r);
        return out;
    }

    std::vector<TaskAttempt> tasks(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        std::vector<TaskAttempt> out;
        for (auto& [key, t] : data_.tasks)
            if (std::get<0>(key) == run_id) out.push_back(t);
        return out;
    }

    std::vector<TaskAttempt> task_attempts(std::string_view workflow_name, std::string_view task_type) override {
        std::lock_guard lock(mutex_);
        std::vector<TaskAttempt> out;
        for (auto& [key, t] : data_.tasks) {
            auto run = data_.runs.find(t.run_id);
            if (run == data_.runs.end()) continue;
            if (!workflow_name.empty() && run->second.workflow_name != workflow_name) continue;
            if (!task_type.empty() && t.task_type != task_type) continue;
            out.push_back(t);
        }
        return out;
    }

    std::optional<AlertDelivery> find_delivery(std::string_view sink, std::string_view key) override {
        std::lock_guard lock(mutex_);
        auto it = data_.deliveries.find({std::string(sink), std::string(key)});
        if (it == data_.deliveries.end()) return std::nullopt;
        return it->second;
    }

    std::optional<boost::json::object> load_checkpoint(std::string_view run_id) override {
        std::lock_guard lock(mutex_);
        auto it = data_.checkpoints.find(std::string(run_id));
        if (it == data_.checkpoints.end()) return std::nullopt;
        return it->second;
    }

    std::size_t prune(const RetentionPolicy& policy, Timestamp now) override {
        std::lock_guard lock(mutex_);
        std::vector<const RunRecord*> finished;
        for (auto& [id, run] : data_.runs)
            if (run.ended) finished.push_back(&run);
        std::sort(finished.begin(), finished.end(), [](const RunRecord* a, const RunRecord* b) {
            return std::tie(b->started, b->id) < std::tie(a->started, a->id);
        });
        std::vector<std::string> doomed;
        std::size_t kept = 0;
        for (const auto* run : finished) {
            if ((policy.max_age && *run->ended < now - *policy.max_age) || (policy.max_runs && kept >= policy.max_runs))
                doomed.push_back(run->id);
            else ++kept;
        }
        for (auto& id : doomed) {
            data_.runs.erase(id);
            std::erase_if(data_.reports, [&](auto& e) { return e.first.first == id; });
            std::erase_if(data_.tasks, [&](auto& e) { return std::get<0>(e.first) == id; });
            std::erase_if(data_.deliveries, [&](auto& e) { return e.second.run_id == id; });
            data_.checkpoints.erase(id);
        }
        return doomed.size();
    }

    int schema_version() override { return 2; }

    /// false: every write fails with StoreError until set back to true (an outage, for tests).
    void set_available(bool available) {
        std::lock_guard lock(mutex_);
        available_ = available;
    }
    /// Successful write() calls so far.
    std::size_t write_count() const {
        std::lock_guard lock(mutex_);
        return writes_;
    }

private:
    struct Data {
        std::map<std::string, RunRecord> runs;
        std::map<std::pair<std::string, std::uint64_t>, Report> reports;
        std::map<std::tuple<std::string, std::string, int>, TaskAttempt> tasks;
        std::map<std::pair<std::string, std::string>, AlertDelivery> deliveries;
        std::map<std::string, boost::json::object> checkpoints;
    };

    static void apply(Data& d, const RunRecord& r) { d.runs.emplace(r.id, r); }
    static void apply(Data& d, const RunEnd& e) {
        auto it = d.runs.find(e.run_id);
        if (it == d.runs.end()) return;
        it->second.ended = e.ended;
        it->second.outcome = e.outcome;
        it->second.summary = e.summary;
    }
    static void apply(Data& d, const ReportRecord& r) {
        Report copy = r.report;
        copy.evidence_request.reset(); // never stored, as in the SQL stores
        d.reports.emplace(std::pair{r.run_id, r.report.sequence}, std::move(copy));
    }
    static void apply(Data& d, const TaskAttempt& t) {
        auto key = std::tuple{t.run_id, t.task_name, t.attempt};
        auto it = d.tasks.find(key);
        TaskAttempt next = t;
        if (it != d.tasks.end()) {
            if (!next.peak_memory_bytes) next.peak_memory_bytes = it->second.peak_memory_bytes;
            if (!next.peak_cpu_millicores) next.peak_cpu_millicores = it->second.peak_cpu_millicores;
        }
        d.tasks[key] = std::move(next);
    }
    static void apply(Data& d, const AlertDelivery& a) { d.deliveries[{a.sink, a.key}] = a; }
    static void apply(Data& d, const Checkpoint& c) { d.checkpoints[c.run_id] = c.body; }

    mutable std::mutex mutex_;
    Data data_;
    bool available_ = true;
    std::size_t writes_ = 0;
};

} // namespace execution_sentinel::history

#endif // EXECUTION_SENTINEL_HISTORY_MEMORY_STORE_HPP

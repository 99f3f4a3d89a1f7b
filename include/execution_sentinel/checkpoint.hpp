// Checkpoints: what a Monitor must remember across a restart of the process that watches a run — the report
// ledger (what was reported), the report counts and sequence, per-task facts (status, attempts, start and end
// times, failure reasons), and the detectors' own state (stall tiers, connectivity outages) — as one JSON object,
// and where such objects live (the CheckpointStore concept).
//
//   Monitor::checkpoint(now) → boost::json::object       (monitor.hpp)
//   Monitor::restore(checkpoint, now)                    before any input; throws CheckpointError
//
// A checkpoint is outside input when read back (a file, a database row, a ConfigMap anyone with RBAC can edit):
// every field is checked and bounded, and a bad one is a CheckpointError naming it.
#ifndef EXECUTION_SENTINEL_CHECKPOINT_HPP
#define EXECUTION_SENTINEL_CHECKPOINT_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detail/json_reader.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// A checkpoint that cannot be used; what() names the field ("tasks[3].status: …").
class CheckpointError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

/// The version of the checkpoint format this library writes and reads.
inline constexpr std::int64_t checkpoint_version = 1;

/// Limits on what a checkpoint may hold when read back.
inline constexpr std::size_t max_checkpoint_tasks = 1'000'000;
inline constexpr std::size_t max_checkpoint_ledger = 4'000'000;
inline constexpr std::size_t max_checkpoint_attempts = 1000; ///< pods per task

/// The key a run's checkpoint is stored under: "<namespace>/<engine pod name or selector>".
inline std::string checkpoint_key(const MonitoringContext& c) {
    return c.namespace_ + "/" + (c.engine_pod_name.empty() ? c.engine_pod_selector : c.engine_pod_name);
}

namespace detail {
/// FNV-1a (64 bit) of `text` as 16 hex digits, most significant first: short stable names and digests.
inline std::string es_fnv1a_hex(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : text) {
        h ^= ch;
        h *= 1099511628211ull;
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = hex[h & 0xf];
    return out;
}
} // namespace detail

/// A digest of the context (FNV-1a over its JSON): a checkpoint made for another context is not resumed.
inline std::string context_digest(const MonitoringContext& c) { return detail::es_fnv1a_hex(boost::json::serialize(to_json(c))); }

namespace detail {

inline std::int64_t es_ns(Timestamp t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline Timestamp es_from_ns(std::int64_t ns) {
    return Timestamp(std::chrono::duration_cast<Timestamp::duration>(std::chrono::nanoseconds(ns)));
}
inline void es_put_time(boost::json::object& o, std::string_view key, const std::optional<Timestamp>& t) {
    if (t) o[key] = es_ns(*t);
}

inline std::string_view es_phase_name(kube::PodPhase p) {
    switch (p) {
    case kube::PodPhase::unknown: return "unknown";
    case kube::PodPhase::pending: return "pending";
    case kube::PodPhase::running: return "running";
    case kube::PodPhase::succeeded: return "succeeded";
    case kube::PodPhase::failed: return "failed";
    }
    return "unknown";
}

[[noreturn]] inline void es_checkpoint_fail(std::string path, const std::string& problem) {
    throw CheckpointError("checkpoint: " + (path.empty() ? std::string("(root)") : path) + ": " + problem);
}

struct CheckpointFail {
    [[noreturn]] void operator()(std::string path, const std::string& problem) const {
        es_checkpoint_fail(std::move(path), problem);
    }
};
using CheckpointFields = JsonFields<CheckpointFail>;

inline std::optional<Timestamp> es_get_time(const CheckpointFields& f, std::string_view key) {
    if (auto n = f.integer(key)) return es_from_ns(*n);
    return std::nullopt;
}

inline std::string es_bounded(const CheckpointFields& f, std::string_view key, std::size_t max = 4096) {
    std::string s;
    f.string(key, s);
    if (s.size() > max) f.fail(key, "longer than " + std::to_string(max) + " characters");
    return s;
}

} // namespace detail

/// Per-task facts as JSON (what WorkflowState::restore_tasks takes back). Warning Events are kept (they are
/// evidence for reports still to come); a bounded copy.
inline boost::json::array tasks_to_json(const std::vector<TaskRecord>& tasks) {
    using detail::es_put_time;
    boost::json::array out;
    out.reserve(tasks.size());
    for (auto& t : tasks) {
        if (!t.observed && t.status == TaskStatus::pending) continue; // nothing learnt: rebuilt from the context
        boost::json::object o;
        o["key"] = t.key;
        o["name"] = t.name;
        o["type"] = t.task_type;
        if (t.proc_id) o["proc_id"] = *t.proc_id;
        o["job"] = t.job_name;
        o["status"] = to_string(t.status);
        o["observed"] = t.observed;
        es_put_time(o, "first_seen", t.first_seen);
        es_put_time(o, "started_at", t.started_at);
        es_put_time(o, "finished_at", t.finished_at);
        o["attempts"] = t.attempts;
        if (t.oom_killed) o["oom_pod"] = t.oom_pod;
        if (!t.last_failure_reason.empty()) o["failure_reason"] = t.last_failure_reason;
        if (!t.last_failure_message.empty()) o["failure_message"] = t.last_failure_message;
        if (t.last_exit_code) o["exit_code"] = *t.last_exit_code;
        if (!t.last_warning_reason.empty()) o["warning_reason"] = t.last_warning_reason;
        if (!t.last_warning_message.empty()) o["warning_message"] = t.last_warning_message;
        if (!t.recent_warnings.empty()) {
            boost::json::array ws;
            for (auto& e : t.recent_warnings) {
                boost::json::object w{{"id", e.id}, {"object", e.object}, {"reason", e.reason}, {"message", e.message},
                                      {"count", e.count}};
                es_put_time(w, "last_seen", e.last_seen);
                ws.push_back(std::move(w));
            }
            o["warnings"] = std::move(ws);
        }
        boost::json::object job{{"seen", t.job_seen}, {"deleted", t.job_deleted}, {"complete", t.job_complete},
                                {"failed", t.job_failed}, {"active", t.job_active}};
        if (t.job_succeeded) job["succeeded"] = t.job_succeeded;
        es_put_time(job, "start", t.job_start);
        es_put_time(job, "completion", t.job_completion);
        o["job_state"] = std::move(job);
        boost::json::array pods;
        for (auto& a : t.pods) {
            boost::json::object p{{"name", a.name}, {"uid", a.uid}, {"phase", detail::es_phase_name(a.phase)},
                                  {"deleted", a.deleted}, {"oom", a.oom_killed}};
            es_put_time(p, "created", a.created);
            es_put_time(p, "started", a.started);
            es_put_time(p, "finished", a.finished);
            if (a.exit_code) p["exit_code"] = *a.exit_code;
            if (!a.failure_reason.empty()) p["failure_reason"] = a.failure_reason;
            if (!a.failure_message.empty()) p["failure_message"] = a.failure_message;
            if (!a.node.empty()) p["node"] = a.node;
            if (!a.container.empty()) p["container"] = a.container;
            if (a.restart_count) p["restarts"] = a.restart_count;
            if (a.memory_limit_bytes) p["memory_limit"] = a.memory_limit_bytes;
            if (a.cpu_limit_millicores) p["cpu_limit"] = a.cpu_limit_millicores;
            pods.push_back(std::move(p));
        }
        o["pods"] = std::move(pods);
        if (t.engine_outcome != EngineOutcome::none) {
            boost::json::object engine{{"failed", t.engine_outcome == EngineOutcome::failed}};
            if (t.engine_exit_code) engine["exit_code"] = *t.engine_exit_code;
            o["engine"] = std::move(engine);
        }
        out.push_back(std::move(o));
    }
    return out;
}

/// Reads what tasks_to_json wrote; throws CheckpointError naming the field.
inline std::vector<TaskRecord> tasks_from_json(const boost::json::array& arr, std::string_view path = "tasks") {
    using detail::CheckpointFields;
    using detail::es_bounded;
    using detail::es_get_time;
    if (arr.size() > max_checkpoint_tasks) detail::es_checkpoint_fail(std::string(path), "too many tasks");
    std::vector<TaskRecord> out;
    out.reserve(arr.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string here = std::string(path) + "[" + std::to_string(i) + "]";
        const auto* o = arr[i].if_object();
        if (!o) detail::es_checkpoint_fail(here, "expected an object");
        CheckpointFields f(*o, here + ".", detail::CheckpointFail{});
        TaskRecord t;
        t.key = es_bounded(f, "key", 1024);
        if (t.key.empty()) f.fail("key", "must not be empty");
        t.name = es_bounded(f, "name", 1024);
        t.task_type = es_bounded(f, "type", 1024);
        if (auto p = f.integer("proc_id", INT32_MIN, INT32_MAX)) t.proc_id = static_cast<int>(*p);
        t.job_name = es_bounded(f, "job", 1024);
        if (auto status = task_status_from_string(es_bounded(f, "status", 32))) t.status = *status;
        else f.fail("status", "expected pending, running, succeeded, failed or vanished");
        f.boolean("observed", t.observed);
        t.first_seen = es_get_time(f, "first_seen");
        t.started_at = es_get_time(f, "started_at");
        t.finished_at = es_get_time(f, "finished_at");
        if (auto n = f.integer("attempts", 0, 1'000'000)) t.attempts = static_cast<int>(*n);
        if (f.has("oom_pod")) {
            t.oom_killed = true;
            t.oom_pod = es_bounded(f, "oom_pod", 1024);
        }
        t.last_failure_reason = es_bounded(f, "failure_reason", 1024);
        t.last_failure_message = es_bounded(f, "failure_message");
        if (auto n = f.integer("exit_code", INT32_MIN, INT32_MAX)) t.last_exit_code = static_cast<int>(*n);
        t.last_warning_reason = es_bounded(f, "warning_reason", 1024);
        t.last_warning_message = es_bounded(f, "warning_message");
        if (const auto* ws = f.array("warnings")) {
            if (ws->size() > max_task_events) f.fail("warnings", "more than " + std::to_string(max_task_events) + " entries");
            for (std::size_t j = 0; j < ws->size(); ++j) {
                const auto* w = (*ws)[j].if_object();
                std::string wp = here + ".warnings[" + std::to_string(j) + "]";
                if (!w) detail::es_checkpoint_fail(wp, "expected an object");
                CheckpointFields g(*w, wp + ".", detail::CheckpointFail{});
                EventRecord e;
                e.id = es_bounded(g, "id", 512);
                e.object = es_bounded(g, "object", 512);
                e.reason = es_bounded(g, "reason", 512);
                e.message = es_bounded(g, "message", 1024);
                if (auto n = g.integer("count", 1, INT32_MAX)) e.count = static_cast<int>(*n);
                e.last_seen = es_get_time(g, "last_seen");
                t.recent_warnings.push_back(std::move(e));
            }
        }
        if (const auto* job = f.object("job_state")) {
            auto g = f.nested(*job, "job_state");
            g.boolean("seen", t.job_seen);
            g.boolean("deleted", t.job_deleted);
            g.boolean("complete", t.job_complete);
            g.boolean("failed", t.job_failed);
            if (auto n = g.integer("active", 0, INT32_MAX)) t.job_active = static_cast<int>(*n);
            if (auto n = g.integer("succeeded", 0, INT32_MAX)) t.job_succeeded = static_cast<int>(*n);
            t.job_start = es_get_time(g, "start");
            t.job_completion = es_get_time(g, "completion");
        }
        if (const auto* pods = f.array("pods")) {
            if (pods->size() > max_checkpoint_attempts) f.fail("pods", "too many attempts");
            for (std::size_t j = 0; j < pods->size(); ++j) {
                const auto* p = (*pods)[j].if_object();
                std::string pp = here + ".pods[" + std::to_string(j) + "]";
                if (!p) detail::es_checkpoint_fail(pp, "expected an object");
                CheckpointFields g(*p, pp + ".", detail::CheckpointFail{});
                AttemptRecord a;
                a.name = es_bounded(g, "name", 1024);
                a.uid = es_bounded(g, "uid", 256);
                auto phase = es_bounded(g, "phase", 32);
                if (phase == "unknown" || phase.empty()) a.phase = kube::PodPhase::unknown;
                else if (phase == "pending") a.phase = kube::PodPhase::pending;
                else if (phase == "running") a.phase = kube::PodPhase::running;
                else if (phase == "succeeded") a.phase = kube::PodPhase::succeeded;
                else if (phase == "failed") a.phase = kube::PodPhase::failed;
                else g.fail("phase", "expected unknown, pending, running, succeeded or failed");
                g.boolean("deleted", a.deleted);
                g.boolean("oom", a.oom_killed);
                a.created = es_get_time(g, "created");
                a.started = es_get_time(g, "started");
                a.finished = es_get_time(g, "finished");
                if (auto n = g.integer("exit_code", INT32_MIN, INT32_MAX)) a.exit_code = static_cast<int>(*n);
                a.failure_reason = es_bounded(g, "failure_reason", 1024);
                a.failure_message = es_bounded(g, "failure_message");
                a.node = es_bounded(g, "node", 512);
                a.container = es_bounded(g, "container", 512);
                if (auto n = g.integer("restarts", 0, INT32_MAX)) a.restart_count = static_cast<int>(*n);
                if (auto n = g.integer("memory_limit", 0)) a.memory_limit_bytes = *n;
                if (auto n = g.integer("cpu_limit", 0)) a.cpu_limit_millicores = *n;
                t.pods.push_back(std::move(a));
            }
        }
        if (const auto* engine = f.object("engine")) { // absent in checkpoints written before it existed
            auto g = f.nested(*engine, "engine");
            bool failed = false;
            g.boolean("failed", failed);
            t.engine_outcome = failed ? EngineOutcome::failed : EngineOutcome::succeeded;
            if (auto n = g.integer("exit_code", INT32_MIN, INT32_MAX)) t.engine_exit_code = static_cast<int>(*n);
        }
        out.push_back(std::move(t));
    }
    return out;
}

/// Keeps a serialized checkpoint under `max_bytes` (a ConfigMap holds at most 1 MiB): drops, in this order, the
/// tasks' Warning Events and failure messages, the attempts of finished tasks but their newest, and then the
/// ledger entries of the task lifecycle reports (TASK_*: at worst such a report is made again after a restart;
/// no anomaly is ever dropped). Returns the serialized size reached; `pruned` tells what went.
struct PruneResult {
    std::size_t bytes = 0;
    std::vector<std::string> pruned; ///< "warnings", "attempts", "lifecycle_ledger"
    bool fits = true;
};

inline PruneResult prune_checkpoint(boost::json::object& cp, std::size_t max_bytes) {
    PruneResult r;
    auto size = [&] { return boost::json::serialize(cp).size(); };
    r.bytes = size();
    if (r.bytes <= max_bytes) return r;
    auto* tasks = cp.if_contains("tasks") ? cp["tasks"].if_array() : nullptr;
    if (tasks) {
        for (auto& v : *tasks)
            if (auto* o = v.if_object()) {
                o->erase("warnings");
                o->erase("warning_message");
                o->erase("failure_message");
                if (auto* pods = o->if_contains("pods") ? (*o)["pods"].if_array() : nullptr)
                    for (auto& p : *pods)
                        if (auto* po = p.if_object()) po->erase("failure_message");
            }
        r.pruned.push_back("warnings");
        r.bytes = size();
        if (r.bytes <= max_bytes) return r;
        for (auto& v : *tasks)
            if (auto* o = v.if_object()) {
                auto* status = o->if_contains("status");
                bool finished = status && status->is_string() &&
                                (status->as_string() == "succeeded" || status->as_string() == "failed" ||
                                 status->as_string() == "vanished");
                auto* pods = o->if_contains("pods") ? (*o)["pods"].if_array() : nullptr;
                if (finished && pods && pods->size() > 1) pods->erase(pods->begin(), pods->end() - 1);
            }
        r.pruned.push_back("attempts");
        r.bytes = size();
        if (r.bytes <= max_bytes) return r;
    }
    if (auto* ledger = cp.if_contains("ledger") ? cp["ledger"].if_array() : nullptr) {
        boost::json::array kept;
        for (auto& k : *ledger)
            if (!(k.is_string() && k.as_string().starts_with("TASK_"))) kept.push_back(k);
        *ledger = std::move(kept);
        r.pruned.push_back("lifecycle_ledger");
        r.bytes = size();
    }
    r.fits = r.bytes <= max_bytes;
    return r;
}

// ------------------------------------------------------------------------------------------- stores

/// Where checkpoints live. `async_load` reads a run's newest checkpoint (nullopt: none); `save` hands over a
/// newer one and never blocks (the store writes it in the background; a later save may replace an unwritten
/// earlier one). Models: MemoryCheckpointStore (below), history::HistoryCheckpointStore (the history store,
/// SQLite or PostgreSQL), kube::ConfigMapCheckpointStore (a ConfigMap in the run's namespace).
template <class S>
concept CheckpointStore = requires(S& s, std::string key, boost::json::object body) {
    { s.async_load(key) } -> std::same_as<boost::asio::awaitable<std::optional<boost::json::object>>>;
    { s.save(key, std::move(body)) } -> std::same_as<void>;
};

/// A CheckpointStore of any type, shared (copies refer to the same store). Empty = no checkpoints.
class AnyCheckpointStore {
public:
    AnyCheckpointStore() = default;
    template <CheckpointStore S>
        requires(!std::same_as<std::remove_cvref_t<S>, AnyCheckpointStore>)
    AnyCheckpointStore(std::shared_ptr<S> store) : impl_(std::make_shared<Model<S>>(std::move(store))) {}

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) {
        return impl_->async_load(std::move(key));
    }
    void save(std::string key, boost::json::object body) { impl_->save(std::move(key), std::move(body)); }

private:
    struct Concept {
        virtual ~Concept() = default;
        virtual boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) = 0;
        virtual void save(std::string key, boost::json::object body) = 0;
    };
    template <class S> struct Model final : Concept {
        explicit Model(std::shared_ptr<S> s) : store(std::move(s)) {}
        boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) override {
            return store->async_load(std::move(key));
        }
        void save(std::string key, boost::json::object body) override { store->save(std::move(key), std::move(body)); }
        std::shared_ptr<S> store;
    };
    std::shared_ptr<Concept> impl_;
};

/// Checkpoints in memory (tests, and an embedding that restarts its Sentinel within one process). Thread-safe.
class MemoryCheckpointStore {
public:
    boost::asio::awaitable<std::optional<boost::json::object>> async_load(std::string key) {
        co_return load(key);
    }
    std::optional<boost::json::object> load(const std::string& key) const {
        std::lock_guard lock(mutex_);
        auto it = bodies_.find(key);
        if (it == bodies_.end()) return std::nullopt;
        return it->second;
    }
    void save(std::string key, boost::json::object body) {
        std::lock_guard lock(mutex_);
        bodies_[std::move(key)] = std::move(body);
        ++saves_;
    }
    std::size_t saves() const {
        std::lock_guard lock(mutex_);
        return saves_;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, boost::json::object> bodies_;
    std::size_t saves_ = 0;
};

static_assert(CheckpointStore<MemoryCheckpointStore>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_CHECKPOINT_HPP

// The runs `execution-sentinel serve` watches (docs/serve.md): the decisions of run discovery (which engine pod
// event starts or ends a run, where its MonitoringContext comes from) as pure functions, and RunRegistry, the
// thread-safe record of every run (live view, reports kept for paging, outcome) with its JSON forms for the HTTP
// API (docs/api.md).
#ifndef EXECUTION_SENTINEL_SERVE_RUNS_HPP
#define EXECUTION_SENTINEL_SERVE_RUNS_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/monitor_view.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/serve/config.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

// ------------------------------------------------------------------------------------------------ discovery

/// What an engine pod event means for discovery.
enum class DiscoveryAction : std::uint8_t {
    none,  ///< nothing to do
    start, ///< a new run: the engine pod is Running and was not seen before
    end,   ///< the run of this engine pod ends (the pod was deleted)
};

/// The decision for one event of the engine pod watch (pure). `known` is whether this pod (by uid) already
/// started a run, running or finished: a run starts once per pod, when it is first seen Running and not being
/// deleted; it ends when the pod is deleted.
inline DiscoveryAction discovery_action(kube::WatchEventType type, const kube::Pod& pod, bool known) noexcept {
    switch (type) {
    case kube::WatchEventType::added:
    case kube::WatchEventType::modified:
        if (known || pod.meta.deletion_timestamp || pod.phase != kube::PodPhase::running) return DiscoveryAction::none;
        return DiscoveryAction::start;
    case kube::WatchEventType::deleted: return known ? DiscoveryAction::end : DiscoveryAction::none;
    default: return DiscoveryAction::none;
    }
}

/// The context of a run when no ConfigMap describes it: what the cluster shows (namespace, engine pod, the
/// configured task selector, container and completion file), no inventory.
inline MonitoringContext infer_context(const ServeConfig& config, std::string_view ns, std::string_view engine_pod) {
    MonitoringContext c;
    c.namespace_ = std::string(ns);
    c.engine_pod_name = std::string(engine_pod);
    c.engine_container = config.engine_container;
    c.task_label_selector = config.task_selector;
    c.completion_signal_path = config.completion_signal_path;
    validate(c);
    return c;
}

/// Where a run's context came from, and what went wrong with the ConfigMaps that did not fit.
struct ContextChoice {
    MonitoringContext context;
    std::string source;                ///< "configmap/<name>" or "inferred"
    std::vector<std::string> problems; ///< "configmap/<name>: <why it was not used>"
};

/// Chooses the context of the run of `engine_pod` in `ns` from a ConfigMap list answer (`configmaps`, the JSON of
/// a list of ConfigMaps, usually those with the context label): the first ConfigMap (by name) whose `key` holds a
/// valid context of this namespace naming this engine pod, else the first whose context names no engine pod (it
/// is then given this one), else infer_context(). Pure; never throws for bad ConfigMaps (they are listed in
/// `problems`).
inline ContextChoice choose_context(const ServeConfig& config, std::string_view ns, std::string_view engine_pod,
                                    const boost::json::value& configmaps) {
    ContextChoice out;
    std::vector<std::pair<std::string, const boost::json::value*>> items;
    if (const auto* o = configmaps.if_object())
        if (const auto* list = o->if_contains("items"); list && list->is_array())
            for (const auto& item : list->get_array()) {
                const auto* obj = item.if_object();
                if (!obj) continue;
                std::string name;
                if (const auto* meta = obj->if_contains("metadata"); meta && meta->is_object())
                    if (const auto* n = meta->get_object().if_contains("name"); n && n->is_string())
                        name = std::string(n->get_string());
                items.emplace_back(std::move(name), &item);
            }
    std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::optional<std::pair<std::string, MonitoringContext>> general;
    for (const auto& [name, item] : items) {
        const auto where = "configmap/" + name;
        const boost::json::value* text = nullptr;
        if (const auto* data = item->get_object().if_contains("data"); data && data->is_object())
            text = data->get_object().if_contains(config.context_configmap_key);
        if (!text || !text->is_string()) {
            out.problems.push_back(where + ": no " + config.context_configmap_key + " in its data");
            continue;
        }
        MonitoringContext c;
        try {
            c = context_from_json_text(std::string_view(text->get_string()));
        } catch (const ContextError& e) {
            out.problems.push_back(where + ": " + config.context_configmap_key + ": " + e.what());
            continue;
        }
        if (c.namespace_ != ns) {
            out.problems.push_back(where + ": its context is for another namespace");
            continue;
        }
        if (c.engine_pod_name == engine_pod) {
            out.context = std::move(c);
            out.source = where;
            return out;
        }
        if (c.engine_pod_name.empty() && !general) general.emplace(where, std::move(c));
    }
    if (general) {
        out.context = std::move(general->second);
        out.context.engine_pod_name = std::string(engine_pod);
        out.source = general->first;
        return out;
    }
    out.context = infer_context(config, ns, engine_pod);
    out.source = "inferred";
    return out;
}

// ------------------------------------------------------------------------------------------------ the registry

/// How a run's watch ended.
enum class RunState : std::uint8_t { watching, succeeded, failed, timed_out, engine_deleted, stopped, error };

inline constexpr std::string_view to_string(RunState s) noexcept {
    switch (s) {
    case RunState::watching: return "watching";
    case RunState::succeeded: return "succeeded";
    case RunState::failed: return "failed";
    case RunState::timed_out: return "timed_out";
    case RunState::engine_deleted: return "engine_deleted";
    case RunState::stopped: return "stopped";
    case RunState::error: return "error";
    }
    return "unknown";
}

/// A page of a run's reports: those with sequence > `after`, at most `limit`, oldest first.
struct ReportPage {
    std::vector<Report> reports;
    std::optional<std::uint64_t> next_after; ///< the cursor of the next page, when more are kept
    std::uint64_t dropped = 0;              ///< reports no longer kept (the oldest beyond keep_reports)
};

/// Every run serve knows: the active ones (with a live view) and the last finished ones. Thread-safe.
class RunRegistry {
public:
    struct Options {
        std::size_t keep_finished = 100;
        std::size_t keep_reports = 1000;
    };
    /// One run as the API shows it.
    struct Entry {
        std::string ns;
        std::string name;   ///< the engine pod
        std::string source; ///< where its context came from
        MonitoringContext context;
        RunState state = RunState::watching;
        Timestamp started{};
        std::optional<Timestamp> ended;
        std::string message; ///< why it ended, for engine_deleted, stopped and error
        std::function<MonitorView()> live_view; ///< while watching
        std::optional<MonitorView> last_view;   ///< once ended
        std::optional<WatchSummary> summary;    ///< once ended
        std::deque<Report> reports;
        std::uint64_t dropped_reports = 0;
    };

    explicit RunRegistry(Options options) : options_(options) {}

    static std::string key(std::string_view ns, std::string_view name) { return std::string(ns) + "/" + std::string(name); }

    /// Records a new active run (replacing a finished one of the same key).
    void start(std::string ns, std::string name, MonitoringContext context, std::string source,
               std::function<MonitorView()> live_view, Timestamp now) {
        std::lock_guard lock(mutex_);
        auto k = key(ns, name);
        std::erase(finished_order_, k);
        auto e = std::make_shared<Entry>();
        e->ns = std::move(ns);
        e->name = std::move(name);
        e->context = std::move(context);
        e->source = std::move(source);
        e->started = now;
        e->live_view = std::move(live_view);
        runs_[k] = std::move(e);
        ++started_;
    }

    /// Keeps a report of an active run (the oldest is dropped beyond keep_reports).
    void add_report(std::string_view ns, std::string_view name, const Report& r) {
        std::lock_guard lock(mutex_);
        auto it = runs_.find(key(ns, name));
        if (it == runs_.end()) return;
        auto& e = *it->second;
        e.reports.push_back(r);
        ++reports_;
        while (e.reports.size() > options_.keep_reports) {
            e.reports.pop_front();
            ++e.dropped_reports;
        }
    }

    /// The run ended: its last view and summary are kept, the oldest finished runs beyond keep_finished are
    /// forgotten.
    void finish(std::string_view ns, std::string_view name, RunState state, std::string message,
                std::optional<WatchSummary> summary, std::optional<MonitorView> last_view, Timestamp now) {
        std::lock_guard lock(mutex_);
        auto k = key(ns, name);
        auto it = runs_.find(k);
        if (it == runs_.end() || it->second->state != RunState::watching) return;
        auto& e = *it->second;
        e.state = state;
        e.message = std::move(message);
        e.summary = std::move(summary);
        if (!last_view && e.live_view) last_view = e.live_view();
        e.last_view = std::move(last_view);
        e.live_view = nullptr;
        e.ended = now;
        ++finished_;
        ++outcomes_[std::string(to_string(state))];
        finished_order_.push_back(k);
        while (finished_order_.size() > options_.keep_finished) {
            runs_.erase(finished_order_.front());
            finished_order_.erase(finished_order_.begin());
        }
    }

    /// Runs watched now.
    std::size_t active() const {
        std::lock_guard lock(mutex_);
        return runs_.size() - finished_order_.size();
    }
    bool contains(std::string_view ns, std::string_view name) const {
        std::lock_guard lock(mutex_);
        return runs_.count(key(ns, name)) != 0;
    }

    /// The context of a run (active or kept finished); nullopt when the run is unknown.
    std::optional<MonitoringContext> context_of(std::string_view ns, std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto it = runs_.find(key(ns, name));
        if (it == runs_.end()) return std::nullopt;
        return it->second->context;
    }

    /// The view of a run: live while watching, the last one after.
    static std::optional<MonitorView> view_of(const Entry& e) {
        if (e.live_view) return e.live_view();
        return e.last_view;
    }

    /// A short JSON description of a run (the list's items).
    static boost::json::object brief_json(const Entry& e, const std::optional<MonitorView>& view) {
        boost::json::object o;
        o["namespace"] = e.ns;
        o["run"] = e.name;
        o["state"] = std::string(to_string(e.state));
        o["context_source"] = e.source;
        o["started"] = kube::format_rfc3339(e.started);
        if (e.ended) o["ended"] = kube::format_rfc3339(*e.ended);
        if (!e.message.empty()) o["message"] = e.message;
        if (view) {
            o["total"] = view->total;
            o["completed"] = view->completed;
            o["failed"] = view->failed;
            o["running"] = view->running;
            o["pending"] = view->pending;
            o["health"] = view->health;
            int anomalies = 0;
            for (const auto& [type, n] : view->anomaly_counts) anomalies += n;
            o["anomalies"] = anomalies;
            boost::json::array phases;
            for (const auto& p : view->phases) {
                boost::json::object ph;
                ph["task_type"] = p.task_type;
                ph["total"] = p.total;
                ph["pending"] = p.pending;
                ph["running"] = p.running;
                ph["succeeded"] = p.succeeded;
                ph["failed"] = p.failed;
                phases.push_back(std::move(ph));
            }
            o["phases"] = std::move(phases);
            if (view->eta_seconds) o["eta_seconds"] = *view->eta_seconds;
        }
        if (e.summary) o["outcome"] = std::string(to_string(e.summary->outcome()));
        return o;
    }

    /// GET /api/v1/runs: {"runs": [...]} ordered by namespace and run (active and kept finished runs).
    boost::json::object runs_json() const {
        auto entries = snapshot();
        boost::json::array list;
        for (const auto& e : entries) list.push_back(brief_json(*e, view_of(*e)));
        return {{"runs", std::move(list)}};
    }

    /// GET /api/v1/runs/{ns}/{run}: the brief form plus `view` (the MonitorView's JSON), `context` and `summary`
    /// once ended. nullopt when the run is unknown.
    std::optional<boost::json::object> run_json(std::string_view ns, std::string_view name) const {
        auto e = find(ns, name);
        if (!e) return std::nullopt;
        auto view = view_of(*e);
        auto o = brief_json(*e, view);
        if (view) o["view"] = to_json(*view);
        o["context"] = to_json(e->context);
        if (e->summary) o["summary"] = to_json(*e->summary);
        return o;
    }

    /// A page of a run's reports; nullopt when the run is unknown.
    std::optional<ReportPage> reports(std::string_view ns, std::string_view name, std::uint64_t after,
                                      std::size_t limit) const {
        std::lock_guard lock(mutex_);
        auto it = runs_.find(key(ns, name));
        if (it == runs_.end()) return std::nullopt;
        const auto& e = *it->second;
        ReportPage page;
        page.dropped = e.dropped_reports;
        for (const auto& r : e.reports) {
            if (r.sequence <= after) continue;
            if (page.reports.size() == limit) {
                page.next_after = page.reports.back().sequence;
                break;
            }
            page.reports.push_back(r);
        }
        return page;
    }

    /// GET /api/v1/stats.
    boost::json::object stats_json() const {
        std::lock_guard lock(mutex_);
        boost::json::object o;
        o["runs_active"] = runs_.size() - finished_order_.size();
        o["runs_kept_finished"] = finished_order_.size();
        o["runs_started"] = started_;
        o["runs_finished"] = finished_;
        boost::json::object outcomes;
        for (const auto& [k, n] : outcomes_) outcomes[k] = n;
        o["outcomes"] = std::move(outcomes);
        o["reports"] = reports_;
        return o;
    }

private:
    std::vector<std::shared_ptr<const Entry>> snapshot() const {
        std::lock_guard lock(mutex_);
        std::vector<std::shared_ptr<const Entry>> out;
        for (const auto& [k, e] : runs_) out.push_back(copy_of(*e));
        return out;
    }
    std::shared_ptr<const Entry> find(std::string_view ns, std::string_view name) const {
        std::lock_guard lock(mutex_);
        auto it = runs_.find(key(ns, name));
        if (it == runs_.end()) return nullptr;
        return copy_of(*it->second);
    }
    /// A copy without the reports (they are paged separately).
    static std::shared_ptr<const Entry> copy_of(const Entry& e) {
        auto c = std::make_shared<Entry>();
        c->ns = e.ns;
        c->name = e.name;
        c->source = e.source;
        c->context = e.context;
        c->state = e.state;
        c->started = e.started;
        c->ended = e.ended;
        c->message = e.message;
        c->live_view = e.live_view;
        c->last_view = e.last_view;
        c->summary = e.summary;
        c->dropped_reports = e.dropped_reports;
        return c;
    }

    Options options_;
    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Entry>> runs_;
    std::vector<std::string> finished_order_;
    std::map<std::string, std::uint64_t> outcomes_;
    std::uint64_t started_ = 0, finished_ = 0, reports_ = 0;
};

/// The JSON of a report page: {"reports": [...], "next_after": N (when more), "dropped": N}.
inline boost::json::object to_json(const ReportPage& page) {
    boost::json::object o;
    boost::json::array list;
    for (const auto& r : page.reports) list.push_back(to_json(r));
    o["reports"] = std::move(list);
    if (page.next_after) o["next_after"] = *page.next_after;
    o["dropped"] = page.dropped;
    return o;
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_RUNS_HPP

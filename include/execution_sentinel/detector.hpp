// Detectors: pure, synchronous policies that turn workflow changes into reports (docs/detectors.md).
//
// A detector is any movable class with a static `name` and at least one of the optional hooks below; a hook
// is used when the expression compiles (as Boost.MQTT5 detects its logger's hooks), so a detector implements
// only what it cares about:
//
//   void configure(const MonitoringContext&, const SentinelSettings&);       // once, before any input
//   void on_task_changed(const WorkflowState&, const TaskChange&, Timestamp now, ReportSink&);
//   void on_pod(const WorkflowState&, const kube::Pod&, ChangeKind, Timestamp now, ReportSink&);
//   void on_job(const WorkflowState&, const kube::Job&, ChangeKind, Timestamp now, ReportSink&);
//   void on_event(const WorkflowState&, const kube::Event&, Timestamp now, ReportSink&);
//   void on_tick(const WorkflowState&, Timestamp now, ReportSink&);
//   void on_api_call(const WorkflowState&, const ApiCall&, Timestamp now, ReportSink&);
//   void on_completion_probe(const WorkflowState&, const CompletionProbe&, Timestamp now, ReportSink&);
//   void on_timeout(const WorkflowState&, Timestamp now, ReportSink&);
//   void on_engine_log(const WorkflowState&, const kube::LogLine&, Timestamp now, ReportSink&); // engine container
//   void on_metrics(const WorkflowState&, const MetricsSample&, Timestamp now, ReportSink&);    // metrics API
//   void on_summary(WatchSummary&) const;                                   // contribute to the summary
//
// Detectors never perform I/O and never read a clock: `now` is an argument. Findings go to the ReportSink,
// which numbers them and drops duplicates. AnyDetector erases the type for sets chosen at run time; that is the
// only place with virtual dispatch.
#ifndef EXECUTION_SENTINEL_DETECTOR_HPP
#define EXECUTION_SENTINEL_DETECTOR_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <concepts>
#include <cstdio>
#include <optional>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// The outcome of one API call or stream attempt, as the driver saw it.
struct ApiCall {
    bool ok = false;
    std::string_view what;    ///< e.g. "watch pods", "list jobs", "exec completion probe"
    std::string_view cause{}; ///< why it failed, in words (error and the server's answer); empty when ok
};

/// The result of reading the engine's completion file.
struct CompletionProbe {
    bool file_found = false; ///< the file exists and was read
    std::string content;     ///< its content (the engine writes "<exit code>\n")
    std::string error;       ///< why it could not be read, when !file_found (informational)
};

/// One reading of the metrics API for the run's namespace (one list per period).
struct MetricsSample {
    bool available = true;              ///< false: the API is absent, forbidden or failed (see `problem`)
    std::string problem{};              ///< why it is not available, in words
    std::vector<kube::PodMetrics> pods{};
    /// A reading of more than 500 pods reaches the detectors in parts of 500 (the Sentinel lets the watch events
    /// in between): true for every part but the first. A detector that counts readings counts the parts with
    /// continued == false; one that needs the whole list keeps the parts until the next reading begins.
    bool continued = false;
};

/// A detector's finding, before the sink numbers it.
struct Finding {
    ReportType type = ReportType::PROGRESS;
    Severity severity = Severity::info;
    std::string message;   ///< one plain-English sentence
    std::string task_name;
    std::string task_type;
    boost::json::object details;
    /// Deduplication scope: the task key ("inventory/3", "job/<name>"), "type/<type>" or "workflow".
    /// Empty: the task name if any, else "workflow".
    std::string scope;
    /// Distinguishes findings of the same type and scope ("oom", "completed=12", "outage-2" …).
    std::string fingerprint;
    /// Overrides the completed_tasks count stamped on the report (e.g. COMPLETION with exit code 0).
    std::optional<int> completed_tasks;
    /// A container log tail the driver should attach as evidence before publishing (report.hpp).
    std::optional<EvidenceRequest> evidence_request;
};

/// Collects findings: stamps time, sequence and counts, and drops any finding whose (type, scope,
/// fingerprint) was already emitted. The sink lives as long as the Monitor, so deduplication holds across
/// watch reconnects and relists; ledger()/restore_ledger() carry it across process restarts.
class ReportSink {
public:
    /// Emits unless it is a duplicate; returns whether it was emitted.
    bool emit(Finding f) {
        if (f.scope.empty()) f.scope = f.task_name.empty() ? "workflow" : "task/" + f.task_name;
        auto key = ledger_key(f.type, f.scope, f.fingerprint);
        if (!ledger_.insert(key).second) return false;
        Report r;
        r.key = std::move(key);
        r.type = f.type;
        r.severity = f.severity;
        r.sequence = ++sequence_;
        r.timestamp = now_;
        r.task_name = std::move(f.task_name);
        r.task_type = std::move(f.task_type);
        r.completed_tasks = f.completed_tasks ? *f.completed_tasks : completed_;
        r.total_tasks = total_;
        r.message = std::move(f.message);
        r.details = std::move(f.details);
        if (late_) r.details["late"] = true;
        r.evidence_request = std::move(f.evidence_request);
        ++counts_[r.type];
        pending_.push_back(std::move(r));
        return true;
    }

    /// Whether (type, scope, fingerprint) was emitted already.
    bool seen(ReportType type, std::string_view scope, std::string_view fingerprint) const {
        return ledger_.count(ledger_key(type, scope, fingerprint)) != 0;
    }

    // -- used by the Monitor
    void begin(Timestamp now, int completed, int total) noexcept {
        now_ = now;
        completed_ = completed;
        total_ = total;
    }
    void update_counts(int completed, int total) noexcept {
        completed_ = completed;
        total_ = total;
    }
    Timestamp now() const noexcept { return now_; }
    std::vector<Report> take() { return std::exchange(pending_, {}); }
    const std::map<ReportType, int>& counts() const noexcept { return counts_; }
    std::uint64_t last_sequence() const noexcept { return sequence_; }

    /// The deduplication keys emitted so far (to persist), and their restoration (before any input).
    std::vector<std::string> ledger() const { return {ledger_.begin(), ledger_.end()}; }
    void restore_ledger(const std::vector<std::string>& keys, std::uint64_t last_sequence = 0) {
        ledger_.insert(keys.begin(), keys.end());
        if (last_sequence > sequence_) sequence_ = last_sequence;
    }
    /// The report counts of a restored run (added to what this sink counted).
    void restore_counts(const std::map<ReportType, int>& counts) {
        for (auto& [t, n] : counts) counts_[t] += n;
    }
    /// While set, every report is marked `details.late = true`: it became due while nobody watched (a restart).
    void set_late(bool late) noexcept { late_ = late; }
    bool late() const noexcept { return late_; }

private:
    static std::string ledger_key(ReportType t, std::string_view scope, std::string_view fp) {
        std::string k(to_string(t));
        k += '|';
        k += scope;
        k += '|';
        k += fp;
        return k;
    }

    std::set<std::string> ledger_;
    std::vector<Report> pending_;
    std::map<ReportType, int> counts_;
    std::uint64_t sequence_ = 0;
    Timestamp now_{};
    int completed_ = 0;
    int total_ = 0;
    bool late_ = false;
};

// ------------------------------------------------------------------------------------------- hooks

template <class D>
concept HasConfigure = requires(D& d, const MonitoringContext& c, const SentinelSettings& s) { d.configure(c, s); };
template <class D>
concept HasTaskChangedHook = requires(D& d, const WorkflowState& s, const TaskChange& c, Timestamp t, ReportSink& k) {
    d.on_task_changed(s, c, t, k);
};
template <class D>
concept HasPodHook = requires(D& d, const WorkflowState& s, const kube::Pod& p, ChangeKind ck, Timestamp t, ReportSink& k) {
    d.on_pod(s, p, ck, t, k);
};
template <class D>
concept HasJobHook = requires(D& d, const WorkflowState& s, const kube::Job& j, ChangeKind ck, Timestamp t, ReportSink& k) {
    d.on_job(s, j, ck, t, k);
};
template <class D>
concept HasEventHook = requires(D& d, const WorkflowState& s, const kube::Event& e, Timestamp t, ReportSink& k) {
    d.on_event(s, e, t, k);
};
template <class D>
concept HasTickHook = requires(D& d, const WorkflowState& s, Timestamp t, ReportSink& k) { d.on_tick(s, t, k); };
template <class D>
concept HasApiCallHook = requires(D& d, const WorkflowState& s, const ApiCall& a, Timestamp t, ReportSink& k) {
    d.on_api_call(s, a, t, k);
};
template <class D>
concept HasCompletionProbeHook =
    requires(D& d, const WorkflowState& s, const CompletionProbe& p, Timestamp t, ReportSink& k) {
        d.on_completion_probe(s, p, t, k);
    };
template <class D>
concept HasTimeoutHook = requires(D& d, const WorkflowState& s, Timestamp t, ReportSink& k) { d.on_timeout(s, t, k); };
template <class D>
concept HasEngineLogHook = requires(D& d, const WorkflowState& s, const kube::LogLine& l, Timestamp t, ReportSink& k) {
    d.on_engine_log(s, l, t, k);
};
template <class D>
concept HasMetricsHook = requires(D& d, const WorkflowState& s, const MetricsSample& m, Timestamp t, ReportSink& k) {
    d.on_metrics(s, m, t, k);
};
template <class D>
concept HasSummaryHook = requires(const D& d, WatchSummary& w) { d.on_summary(w); };
/// Optional: state that must survive a restart (checkpoint.hpp) — what the detector cannot learn again from the
/// cluster, such as the number of outages so far or the stall tiers already reported. `restore_checkpoint`
/// gets what `save_checkpoint` wrote (read it as outside input: it throws CheckpointError when it is wrong).
template <class D>
concept HasCheckpointHooks = requires(const D& cd, D& d, boost::json::object& out, const boost::json::object& in) {
    cd.save_checkpoint(out);
    d.restore_checkpoint(in);
};

/// The required part: a movable object type with a static name, implementing at least one hook.
template <class D>
concept Detector = std::is_object_v<D> && std::move_constructible<D> &&
                   requires { { D::name } -> std::convertible_to<std::string_view>; } &&
                   (HasTaskChangedHook<D> || HasPodHook<D> || HasJobHook<D> || HasEventHook<D> || HasTickHook<D> ||
                    HasApiCallHook<D> || HasCompletionProbeHook<D> || HasTimeoutHook<D> || HasEngineLogHook<D> ||
                    HasMetricsHook<D> || HasSummaryHook<D>);

// ------------------------------------------------------------------------------------------- AnyDetector

/// A type-erased detector, for detector sets chosen at run time (e.g. from a configuration file).
class AnyDetector {
public:
    static constexpr std::string_view name = "any";

    template <class D>
        requires(!std::same_as<std::remove_cvref_t<D>, AnyDetector> && Detector<D>)
    AnyDetector(D d) : impl_(std::make_unique<Model<D>>(std::move(d))) {}

    AnyDetector(AnyDetector&&) noexcept = default;
    AnyDetector& operator=(AnyDetector&&) noexcept = default;

    std::string_view detector_name() const { return impl_->detector_name(); }

    void configure(const MonitoringContext& c, const SentinelSettings& s) { impl_->configure(c, s); }
    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp t, ReportSink& k) {
        impl_->on_task_changed(s, c, t, k);
    }
    void on_pod(const WorkflowState& s, const kube::Pod& p, ChangeKind ck, Timestamp t, ReportSink& k) {
        impl_->on_pod(s, p, ck, t, k);
    }
    void on_job(const WorkflowState& s, const kube::Job& j, ChangeKind ck, Timestamp t, ReportSink& k) {
        impl_->on_job(s, j, ck, t, k);
    }
    void on_event(const WorkflowState& s, const kube::Event& e, Timestamp t, ReportSink& k) { impl_->on_event(s, e, t, k); }
    void on_tick(const WorkflowState& s, Timestamp t, ReportSink& k) { impl_->on_tick(s, t, k); }
    void on_api_call(const WorkflowState& s, const ApiCall& a, Timestamp t, ReportSink& k) { impl_->on_api_call(s, a, t, k); }
    void on_completion_probe(const WorkflowState& s, const CompletionProbe& p, Timestamp t, ReportSink& k) {
        impl_->on_completion_probe(s, p, t, k);
    }
    void on_timeout(const WorkflowState& s, Timestamp t, ReportSink& k) { impl_->on_timeout(s, t, k); }
    void on_engine_log(const WorkflowState& s, const kube::LogLine& l, Timestamp t, ReportSink& k) {
        impl_->on_engine_log(s, l, t, k);
    }
    void on_metrics(const WorkflowState& s, const MetricsSample& m, Timestamp t, ReportSink& k) {
        impl_->on_metrics(s, m, t, k);
    }
    void on_summary(WatchSummary& w) const { impl_->on_summary(w); }

    /// The wrapped detector, or nullptr when it is not a D.
    template <class D> D* target() noexcept {
        auto* m = dynamic_cast<Model<D>*>(impl_.get());
        return m ? &m->d : nullptr;
    }

private:
    struct Base {
        virtual ~Base() = default;
        virtual std::string_view detector_name() const = 0;
        virtual void configure(const MonitoringContext&, const SentinelSettings&) = 0;
        virtual void on_task_changed(const WorkflowState&, const TaskChange&, Timestamp, ReportSink&) = 0;
        virtual void on_pod(const WorkflowState&, const kube::Pod&, ChangeKind, Timestamp, ReportSink&) = 0;
        virtual void on_job(const WorkflowState&, const kube::Job&, ChangeKind, Timestamp, ReportSink&) = 0;
        virtual void on_event(const WorkflowState&, const kube::Event&, Timestamp, ReportSink&) = 0;
        virtual void on_tick(const WorkflowState&, Timestamp, ReportSink&) = 0;
        virtual void on_api_call(const WorkflowState&, const ApiCall&, Timestamp, ReportSink&) = 0;
        virtual void on_completion_probe(const WorkflowState&, const CompletionProbe&, Timestamp, ReportSink&) = 0;
        virtual void on_timeout(const WorkflowState&, Timestamp, ReportSink&) = 0;
        virtual void on_engine_log(const WorkflowState&, const kube::LogLine&, Timestamp, ReportSink&) = 0;
        virtual void on_metrics(const WorkflowState&, const MetricsSample&, Timestamp, ReportSink&) = 0;
        virtual void on_summary(WatchSummary&) const = 0;
    };
    template <class D> struct Model final : Base {
        D d;
        explicit Model(D x) : d(std::move(x)) {}
        std::string_view detector_name() const override { return D::name; }
        void configure(const MonitoringContext& c, const SentinelSettings& s) override {
            if constexpr (HasConfigure<D>) d.configure(c, s);
        }
        void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp t, ReportSink& k) override {
            if constexpr (HasTaskChangedHook<D>) d.on_task_changed(s, c, t, k);
        }
        void on_pod(const WorkflowState& s, const kube::Pod& p, ChangeKind ck, Timestamp t, ReportSink& k) override {
            if constexpr (HasPodHook<D>) d.on_pod(s, p, ck, t, k);
        }
        void on_job(const WorkflowState& s, const kube::Job& j, ChangeKind ck, Timestamp t, ReportSink& k) override {
            if constexpr (HasJobHook<D>) d.on_job(s, j, ck, t, k);
        }
        void on_event(const WorkflowState& s, const kube::Event& e, Timestamp t, ReportSink& k) override {
            if constexpr (HasEventHook<D>) d.on_event(s, e, t, k);
        }
        void on_tick(const WorkflowState& s, Timestamp t, ReportSink& k) override {
            if constexpr (HasTickHook<D>) d.on_tick(s, t, k);
        }
        void on_api_call(const WorkflowState& s, const ApiCall& a, Timestamp t, ReportSink& k) override {
            if constexpr (HasApiCallHook<D>) d.on_api_call(s, a, t, k);
        }
        void on_completion_probe(const WorkflowState& s, const CompletionProbe& p, Timestamp t, ReportSink& k) override {
            if constexpr (HasCompletionProbeHook<D>) d.on_completion_probe(s, p, t, k);
        }
        void on_timeout(const WorkflowState& s, Timestamp t, ReportSink& k) override {
            if constexpr (HasTimeoutHook<D>) d.on_timeout(s, t, k);
        }
        void on_engine_log(const WorkflowState& s, const kube::LogLine& l, Timestamp t, ReportSink& k) override {
            if constexpr (HasEngineLogHook<D>) d.on_engine_log(s, l, t, k);
        }
        void on_metrics(const WorkflowState& s, const MetricsSample& m, Timestamp t, ReportSink& k) override {
            if constexpr (HasMetricsHook<D>) d.on_metrics(s, m, t, k);
        }
        void on_summary(WatchSummary& w) const override {
            if constexpr (HasSummaryHook<D>) d.on_summary(w);
        }
    };
    std::unique_ptr<Base> impl_;
};

static_assert(Detector<AnyDetector>);

/// A run-time list of detectors, itself a Detector: `Monitor<DetectorList>`.
class DetectorList {
public:
    static constexpr std::string_view name = "list";

    DetectorList() = default;
    template <Detector D> DetectorList& add(D d) {
        items_.emplace_back(std::move(d));
        return *this;
    }
    std::size_t size() const noexcept { return items_.size(); }
    std::vector<AnyDetector>& items() noexcept { return items_; }

    void configure(const MonitoringContext& c, const SentinelSettings& s) {
        for (auto& d : items_) d.configure(c, s);
    }
    void on_task_changed(const WorkflowState& s, const TaskChange& c, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_task_changed(s, c, t, k);
    }
    void on_pod(const WorkflowState& s, const kube::Pod& p, ChangeKind ck, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_pod(s, p, ck, t, k);
    }
    void on_job(const WorkflowState& s, const kube::Job& j, ChangeKind ck, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_job(s, j, ck, t, k);
    }
    void on_event(const WorkflowState& s, const kube::Event& e, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_event(s, e, t, k);
    }
    void on_tick(const WorkflowState& s, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_tick(s, t, k);
    }
    void on_api_call(const WorkflowState& s, const ApiCall& a, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_api_call(s, a, t, k);
    }
    void on_completion_probe(const WorkflowState& s, const CompletionProbe& p, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_completion_probe(s, p, t, k);
    }
    void on_timeout(const WorkflowState& s, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_timeout(s, t, k);
    }
    void on_engine_log(const WorkflowState& s, const kube::LogLine& l, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_engine_log(s, l, t, k);
    }
    void on_metrics(const WorkflowState& s, const MetricsSample& m, Timestamp t, ReportSink& k) {
        for (auto& d : items_) d.on_metrics(s, m, t, k);
    }
    void on_summary(WatchSummary& w) const {
        for (auto& d : items_) d.on_summary(w);
    }

private:
    std::vector<AnyDetector> items_;
};

static_assert(Detector<DetectorList>);

// ------------------------------------------------------------------------------------------- message helpers

namespace detail {

/// "42 seconds" (under 2 minutes), "3 minutes" (under 2 hours), "2.5 hours" — durations as a scientist would say them.
inline std::string es_human_duration(double seconds) {
    char buf[64];
    if (seconds < 120) std::snprintf(buf, sizeof buf, "%.0f seconds", seconds);
    else if (seconds < 120 * 60) std::snprintf(buf, sizeof buf, "%.0f minutes", seconds / 60);
    else std::snprintf(buf, sizeof buf, "%.1f hours", seconds / 3600);
    return buf;
}

/// "a, b and c"; lists longer than `max` end with "and N more".
inline std::string es_join_names(const std::vector<std::string>& names, std::size_t max = 5) {
    std::string out;
    std::size_t shown = std::min(names.size(), max);
    for (std::size_t i = 0; i < shown; ++i) {
        if (i > 0) out += (i + 1 == shown && shown == names.size()) ? " and " : ", ";
        out += names[i];
    }
    if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
    return out;
}

inline std::string es_plural(int n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

} // namespace detail

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTOR_HPP

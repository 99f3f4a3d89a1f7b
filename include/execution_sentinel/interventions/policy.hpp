// Interventions, the pure part: which finding leads to which action on which object, within which limits
// (docs/interventions.md). Off by default; dry run by default when on. No I/O and no clock: `now` is an argument.
// The Intervener (interventions/intervener.hpp) carries the decisions out against the cluster.
#ifndef EXECUTION_SENTINEL_INTERVENTIONS_POLICY_HPP
#define EXECUTION_SENTINEL_INTERVENTIONS_POLICY_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/task_matching.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel {

/// What an intervention does to a task's object.
enum class InterventionAction : std::uint8_t {
    annotate,    ///< annotate the object with the finding and emit a Kubernetes Event on it (changes nothing else)
    delete_pod,  ///< delete the task's current pod so that its Job makes a new attempt
    suspend_job, ///< suspend the task's Job (spec.suspend=true): no new attempts until someone resumes it
};

inline constexpr std::string_view to_string(InterventionAction a) noexcept {
    switch (a) {
    case InterventionAction::annotate: return "annotate";
    case InterventionAction::delete_pod: return "delete_pod";
    case InterventionAction::suspend_job: return "suspend_job";
    }
    return "annotate";
}

inline std::optional<InterventionAction> intervention_action_from_string(std::string_view s) noexcept {
    for (auto a : {InterventionAction::annotate, InterventionAction::delete_pod, InterventionAction::suspend_job})
        if (to_string(a) == s) return a;
    return std::nullopt;
}

/// One rule: a finding that matches gets the action.
struct InterventionPolicy {
    std::string name;                      ///< shown in reports and records
    std::vector<ReportType> on;            ///< report types that trigger it (required, non-empty)
    Severity min_severity = Severity::warning;
    /// Every key must be present in the report's details as a string equal to one of the values, e.g.
    /// {"tier": {"HIGH", "CRITICAL"}} or {"reason": {"ImagePullBackOff"}}. Empty: no condition.
    std::map<std::string, std::vector<std::string>> when;
    InterventionAction action = InterventionAction::annotate;
};

/// Aggregate: `InterventionSettings{.enabled = true, .policies = {...}}`.
struct InterventionSettings {
    bool enabled = false; ///< off by default
    bool dry_run = true;  ///< when enabled, only report what would have been done, until this is false
    int max_per_hour = 3; ///< actions (and dry runs) in any sliding hour, over the run
    int max_per_run = 10; ///< actions (and dry runs) in the whole run
    std::vector<InterventionPolicy> policies;
};

/// The object an action is aimed at, as read from the cluster.
struct InterventionTarget {
    std::string kind; ///< "Pod" or "Job"
    std::string name;
    std::string uid;
    friend bool operator==(const InterventionTarget&, const InterventionTarget&) = default;
};

/// What the planner decided for one report.
struct InterventionPlan {
    enum class Verdict : std::uint8_t {
        none,          ///< no policy matches (or interventions are off): nothing to say
        act,           ///< carry `action` out (or, in dry run, report that it would be)
        limit_reached, ///< a policy matches but the hourly or per-run limit is used up
        no_target,     ///< a policy matches but the report names no object to act on
        duplicate,     ///< this finding was acted on already
    };
    Verdict verdict = Verdict::none;
    const InterventionPolicy* policy = nullptr;
    InterventionAction action = InterventionAction::annotate;
    bool dry_run = true;
    std::string key;        ///< identity of the finding acted on (deduplication)
    std::string pod;        ///< the pod named by the report (details.pod_name, else details.evidence.pod)
    std::string job;        ///< the Job named by the report (details.job_name)
    std::string why;        ///< for limit_reached / no_target
};

namespace detail {

/// A Kubernetes object name we are willing to put in a request path: a DNS-1123 subdomain (lower-case
/// alphanumerics, '-' and '.', 1–253 characters, alphanumeric at both ends).
inline bool es_valid_object_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 253) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(s.front()) || !alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

inline std::string es_detail_string(const boost::json::object& details, std::string_view key) {
    if (auto* v = details.if_contains(key))
        if (auto* s = v->if_string()) return std::string(s->data(), s->size());
    return {};
}

} // namespace detail

/// Decides, per report, whether and how to intervene, and keeps the limits and what was acted on. Copyable
/// state, restorable: acted_keys() / restore().
class InterventionPlanner {
public:
    explicit InterventionPlanner(InterventionSettings settings) : settings_(std::move(settings)) {}

    const InterventionSettings& settings() const noexcept { return settings_; }

    /// The plan for `report`. Pure apart from its own bookkeeping: an `act` verdict counts against the limits
    /// and marks the finding as acted on (call it once per report).
    InterventionPlan plan(const Report& report, Timestamp now) {
        InterventionPlan p;
        if (!settings_.enabled || report.type == ReportType::INTERVENTION) return p;
        const InterventionPolicy* policy = nullptr;
        for (auto& candidate : settings_.policies)
            if (matches(candidate, report)) {
                policy = &candidate;
                break;
            }
        if (!policy) return p;
        p.policy = policy;
        p.action = policy->action;
        p.dry_run = settings_.dry_run;
        p.pod = detail::es_detail_string(report.details, "pod_name");
        if (p.pod.empty())
            if (auto* ev = report.details.if_contains("evidence"))
                if (auto* o = ev->if_object()) p.pod = detail::es_detail_string(*o, "pod");
        p.job = detail::es_detail_string(report.details, "job_name");
        if (!p.pod.empty() && !detail::es_valid_object_name(p.pod)) p.pod.clear();
        if (!p.job.empty() && !detail::es_valid_object_name(p.job)) p.job.clear();
        p.key = finding_key(report, p);
        if (acted_.count(p.key)) {
            p.verdict = InterventionPlan::Verdict::duplicate;
            return p;
        }
        const bool needs_pod = policy->action == InterventionAction::delete_pod;
        const bool needs_job = policy->action == InterventionAction::suspend_job;
        if ((needs_pod && p.pod.empty()) || (needs_job && p.job.empty()) || (p.pod.empty() && p.job.empty())) {
            p.verdict = InterventionPlan::Verdict::no_target;
            p.why = needs_job ? "the report names no Job" : "the report names no pod";
            return p;
        }
        while (!recent_.empty() && now - recent_.front() >= std::chrono::hours(1)) recent_.pop_front();
        if (total_ >= settings_.max_per_run) {
            p.verdict = InterventionPlan::Verdict::limit_reached;
            p.why = "the limit of " + std::to_string(settings_.max_per_run) + " interventions per run is used up";
            return p;
        }
        if (static_cast<int>(recent_.size()) >= settings_.max_per_hour) {
            p.verdict = InterventionPlan::Verdict::limit_reached;
            p.why = "the limit of " + std::to_string(settings_.max_per_hour) + " interventions per hour is used up";
            return p;
        }
        p.verdict = InterventionPlan::Verdict::act;
        recent_.push_back(now);
        ++total_;
        acted_.insert(p.key);
        return p;
    }

    /// Gives an action back to the limits when it could not be carried out (the object was gone, or was no
    /// task of the run): a refused action does not use up the budget, and the finding may be acted on again.
    void release(const InterventionPlan& p) {
        if (p.verdict != InterventionPlan::Verdict::act) return;
        if (!recent_.empty()) recent_.pop_back();
        if (total_ > 0) --total_;
        acted_.erase(p.key);
    }

    /// The findings acted on, and the action times (to persist); restore() takes them back.
    std::vector<std::string> acted_keys() const { return {acted_.begin(), acted_.end()}; }
    std::vector<Timestamp> action_times() const { return {recent_.begin(), recent_.end()}; }
    int actions_in_run() const noexcept { return total_; }
    void restore(const std::vector<std::string>& keys, const std::vector<Timestamp>& times, int in_run) {
        acted_.insert(keys.begin(), keys.end());
        recent_.assign(times.begin(), times.end());
        std::sort(recent_.begin(), recent_.end());
        total_ = std::max(total_, in_run);
    }

private:
    static bool matches(const InterventionPolicy& p, const Report& r) {
        if (std::find(p.on.begin(), p.on.end(), r.type) == p.on.end()) return false;
        if (r.severity < p.min_severity) return false;
        for (auto& [key, values] : p.when) {
            auto v = detail::es_detail_string(r.details, key);
            if (v.empty() || std::find(values.begin(), values.end(), v) == values.end()) return false;
        }
        return true;
    }

    static std::string finding_key(const Report& r, const InterventionPlan& p) {
        std::string k(to_string(r.type));
        k += '|';
        k += r.task_name;
        k += '|';
        k += p.pod.empty() ? p.job : p.pod;
        k += '|';
        k += to_string(p.action);
        return k;
    }

    InterventionSettings settings_;
    std::set<std::string> acted_;
    std::deque<Timestamp> recent_;
    int total_ = 0;
};

/// Whether an object read from the cluster may be acted on: it lives in the run's namespace, is not being
/// deleted already (pods), and the run's task rule calls it a task (never the engine, a helper or an
/// unrelated object). `why` says why not.
inline bool intervention_allowed(const MonitoringContext& ctx, const kube::ObjectMeta& meta, bool is_pod,
                                 std::span<const std::string_view> containers, const std::string& job_name,
                                 std::string& why) {
    if (meta.namespace_ != ctx.namespace_) {
        why = "it is not in the run's namespace";
        return false;
    }
    MatchCandidate c;
    c.kind = is_pod ? MatchCandidate::Kind::pod : MatchCandidate::Kind::job;
    c.meta = &meta;
    c.group_name = is_pod ? std::string_view(job_name) : std::string_view(meta.name);
    c.containers.assign(containers.begin(), containers.end());
    auto d = DefaultTaskRule(ctx)(c);
    if (d.role != ObjectRole::task) {
        why = "it is not a task of the watched run (" + d.why + ")";
        return false;
    }
    return true;
}

/// What was done (or would have been), for the INTERVENTION report and the audit record.
struct InterventionRecord {
    Timestamp time{};
    std::string policy;
    InterventionAction action = InterventionAction::annotate;
    bool dry_run = true;
    std::string outcome; ///< "done", "dry_run", "refused", "failed", "limit_reached", "no_target"
    InterventionTarget target{};
    std::string task_name;
    std::string error;   ///< why refused or failed
    Report trigger{};    ///< the finding, with its evidence
};

/// The INTERVENTION report of a record: severity warning for a real action, info otherwise; `sequence` is the
/// triggering report's (the monitor numbers findings; interventions answer them).
inline Report intervention_report(const InterventionRecord& rec) {
    Report r;
    r.type = ReportType::INTERVENTION;
    r.severity = rec.outcome == "done" ? Severity::warning : rec.outcome == "failed" ? Severity::error : Severity::info;
    r.sequence = rec.trigger.sequence;
    r.timestamp = rec.time;
    r.task_name = rec.task_name;
    r.task_type = rec.trigger.task_type;
    r.completed_tasks = rec.trigger.completed_tasks;
    r.total_tasks = rec.trigger.total_tasks;
    std::string object = rec.target.name.empty() ? std::string("its object")
                                                 : (rec.target.kind == "Job" ? "Job " : "pod ") + rec.target.name;
    std::string what;
    switch (rec.action) {
    case InterventionAction::delete_pod: what = "delete " + object + " so that its Job tries the task again"; break;
    case InterventionAction::suspend_job: what = "suspend " + object + " so that it makes no further attempts"; break;
    case InterventionAction::annotate: what = "mark " + object + " with the finding and an Event"; break;
    }
    const std::string task = rec.task_name.empty() ? std::string("a task") : "task " + rec.task_name;
    if (rec.outcome == "done") r.message = "Acted on " + task + ": did " + what + ".";
    else if (rec.outcome == "dry_run") r.message = "Would " + what + " for " + task + " (dry run: nothing was changed).";
    else r.message = "Did not " + what + " for " + task + ": " + rec.error + ".";
    r.details["action"] = to_string(rec.action);
    r.details["policy"] = rec.policy;
    r.details["dry_run"] = rec.dry_run;
    r.details["outcome"] = rec.outcome;
    if (!rec.target.name.empty()) {
        boost::json::object t;
        t["kind"] = rec.target.kind;
        t["name"] = rec.target.name;
        t["uid"] = rec.target.uid;
        r.details["target"] = std::move(t);
    }
    if (!rec.error.empty()) r.details["error"] = rec.error;
    boost::json::object trigger;
    trigger["type"] = to_string(rec.trigger.type);
    trigger["sequence"] = rec.trigger.sequence;
    trigger["message"] = rec.trigger.message;
    r.details["trigger"] = std::move(trigger);
    return r;
}

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_INTERVENTIONS_POLICY_HPP

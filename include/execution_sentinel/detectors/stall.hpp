// ANOMALY_STALL: a task that cannot start or runs on with nothing to compare it with, and a whole run that makes
// no progress (tiers LOW → MEDIUM → HIGH → CRITICAL, then a resolution when it moves again).
#ifndef EXECUTION_SENTINEL_DETECTORS_STALL_HPP
#define EXECUTION_SENTINEL_DETECTORS_STALL_HPP

#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/detectors/straggler.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel {

/// The exact rules (docs/detectors.md), judged at every tick and never while the task states are stale
/// (WorkflowState::tasks_stale()):
///
/// Task level, once per attempt (scope: the task; fingerprint "pending:<pod>" or "running:<pod>"), warning:
///  - **waiting to start**: the task's newest pod (or, before any pod exists, its Job) has been pending longer than
///    `pending_timeout`. The reason is the scheduler's (pod condition PodScheduled=False/Unschedulable, or a
///    FailedScheduling Event), the container's waiting reason (ContainerCreating, ImagePullBackOff …), or the
///    latest Warning Event about the task (e.g. a quota refusal);
///  - **running without a baseline**: the task has run longer than `stall_threshold` while no straggler judgement
///    is possible (no expected duration and no sibling median: StragglerDetector::sibling_median).
///
/// Workflow level (scope "workflow", fingerprint "stall-<episode>-<tier>"): no activity — no task changed state,
/// no task appeared, no line from the engine's log — for `stall_threshold × stall_tiers[i]` while tasks remain
/// (some task is not finished) and the engine pod is running. Tiers LOW (warning), MEDIUM (warning), HIGH (error),
/// CRITICAL (critical), each once per episode; when several tiers are passed between two ticks only the highest is
/// reported. The next activity after a reported tier ends the episode with a resolution (severity info,
/// details.resolved = true, fingerprint "stall-<episode>-resolved"); a later stall is a new episode.
/// The clock restarts when the engine pod starts running (a restarted engine is activity) and when the task
/// states become current again after being stale (time the sentinel could not see is not counted as a stall).
/// Nothing is judged once the engine's exit code is known or the watch timed out.
class StallDetector {
public:
    static constexpr std::string_view name = "stall";

    struct Options {
        std::chrono::milliseconds stall_threshold{300'000};
        std::vector<double> stall_tiers{1.0, 2.0, 4.0, 8.0};
        std::chrono::milliseconds pending_timeout{600'000};
        StragglerDetector::Options straggler{}; ///< decides whether a baseline exists
    };

    static constexpr std::array<std::string_view, 4> tier_names{"LOW", "MEDIUM", "HIGH", "CRITICAL"};

    StallDetector() = default;
    explicit StallDetector(Options o) : options_(std::move(o)), configured_(true) { normalise(); }

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (configured_) return;
        options_.stall_threshold = s.stall_threshold;
        options_.stall_tiers = s.stall_tiers;
        options_.pending_timeout = s.pending_timeout;
        options_.straggler.multiplier = s.straggler_multiplier;
        options_.straggler.quorum = s.straggler_quorum;
        options_.straggler.min_siblings = s.straggler_min_siblings;
        options_.straggler.min_runtime = s.straggler_min_runtime;
        configured_ = true;
        normalise();
    }

    // ------------------------------------------------------------------ inputs

    void on_pod(const WorkflowState& s, const kube::Pod& pod, ChangeKind kind, Timestamp now, ReportSink&) {
        note_time(now);
        note_engine(s, now);
        if (!s.find_task(pod.meta.name)) return; // the engine and helpers are not tasks
        if (kind == ChangeKind::deleted) {
            pods_.erase(pod.meta.name);
            return;
        }
        auto& p = pods_[pod.meta.name];
        p.unschedulable.clear();
        for (auto& c : pod.conditions)
            if (c.type == "PodScheduled" && c.status == "False")
                p.unschedulable = (c.message.empty() ? (c.reason.empty() ? "not scheduled" : c.reason) : c.message)
                                      .substr(0, 512);
        p.waiting.clear();
        for (auto& c : pod.containers)
            if (c.state.kind == kube::ContainerState::Kind::waiting && !c.state.reason.empty()) {
                p.waiting = c.state.reason;
                p.waiting_message = c.state.message.substr(0, 512);
                break;
            }
        if (p.waiting.empty())
            for (auto& c : pod.init_containers)
                if (c.state.kind == kube::ContainerState::Kind::waiting && !c.state.reason.empty()) {
                    p.waiting = c.state.reason;
                    p.waiting_message = c.state.message.substr(0, 512);
                    break;
                }
    }

    void on_event(const WorkflowState& s, const kube::Event& ev, Timestamp now, ReportSink&) {
        note_time(now);
        if (ev.involved.kind != "Pod" || ev.reason != "FailedScheduling") return;
        if (!s.find_task(ev.involved.name)) return;
        pods_[ev.involved.name].scheduler_event = ev.message.substr(0, 512);
    }

    void on_task_changed(const WorkflowState&, const TaskChange&, Timestamp now, ReportSink& sink) {
        activity(now, sink);
    }

    /// A line is activity at its own time (a line written while nobody watched counts from then); a line read
    /// again (the log replayed after a restart) is none.
    void on_engine_log(const WorkflowState&, const kube::LogLine& line, Timestamp now, ReportSink& sink) {
        auto at = line.time == Timestamp{} || line.time > now ? now : line.time;
        if (last_activity_ && at <= *last_activity_) return;
        activity(at, sink);
    }

    void on_completion_probe(const WorkflowState&, const CompletionProbe& p, Timestamp, ReportSink&) {
        if (p.file_found && parse_exit_code(p.content)) ended_ = true;
    }

    void on_timeout(const WorkflowState&, Timestamp, ReportSink&) { ended_ = true; }

    void on_tick(const WorkflowState& s, Timestamp now, ReportSink& sink) {
        note_time(now);
        if (ended_) return;
        if (s.tasks_stale()) {
            was_stale_ = true;
            return;
        }
        if (was_stale_) { // what happened while the feeds were down is unknown: count from now
            was_stale_ = false;
            // ... except the first resync after a restart: the relist and the engine's log show what changed
            // while nobody watched (changes are activity), so quiet time before it counts
            if (resumed_) resumed_ = false;
            else restart_clock(now);
        }
        judge_tasks(s, now, sink);
        judge_workflow(s, now, sink);
    }

    void on_summary(WatchSummary& w) const {
        w.stall.episodes = episodes_reported_;
        w.stall.longest_seconds = std::max(w.stall.longest_seconds, longest_seconds_);
        if (highest_tier_ >= 0) w.stall.highest_tier = std::string(tier_names[static_cast<std::size_t>(highest_tier_)]);
        w.stall.stalled_at_end = w.stall.stalled_at_end || reported_tier_ >= 0;
        for (auto& n : stalled_tasks_) w.stall.stalled_tasks.push_back(n);
    }

    // ------------------------------------------------------------------ checkpoint

    void save_checkpoint(boost::json::object& o) const {
        detail::es_put_time(o, "last_activity", last_activity_);
        detail::es_put_time(o, "stall_since", stall_since_);
        o["episode"] = episode_;
        o["reported_tier"] = reported_tier_;
        o["highest_tier"] = highest_tier_;
        o["episodes_reported"] = episodes_reported_;
        o["longest_seconds"] = longest_seconds_;
        o["engine_running"] = engine_was_running_;
        boost::json::array names;
        for (auto& n : stalled_tasks_) names.push_back(boost::json::string(n));
        o["stalled_tasks"] = std::move(names);
    }

    void restore_checkpoint(const boost::json::object& o) {
        detail::CheckpointFields f(o, "detectors.stall.", detail::CheckpointFail{});
        last_activity_ = detail::es_get_time(f, "last_activity");
        stall_since_ = detail::es_get_time(f, "stall_since");
        const auto tiers = static_cast<std::int64_t>(tier_names.size()) - 1;
        if (auto n = f.integer("episode", 1, INT32_MAX)) episode_ = static_cast<int>(*n);
        if (auto n = f.integer("reported_tier", -1, tiers)) reported_tier_ = static_cast<int>(*n);
        if (auto n = f.integer("highest_tier", -1, tiers)) highest_tier_ = static_cast<int>(*n);
        if (auto n = f.integer("episodes_reported", 0, INT32_MAX)) episodes_reported_ = static_cast<int>(*n);
        if (auto x = f.number("longest_seconds")) longest_seconds_ = std::max(0.0, *x);
        f.boolean("engine_running", engine_was_running_);
        auto names = f.strings("stalled_tasks");
        if (names.size() > 1000) f.fail("stalled_tasks", "more than 1000 entries");
        stalled_tasks_ = std::move(names);
        resumed_ = true;
    }

    // ------------------------------------------------------------------ queries

    const Options& options() const noexcept { return options_; }
    /// The current episode's highest reported tier index (0 = LOW), or -1 when the run is not reported stalled.
    int current_tier() const noexcept { return reported_tier_; }
    /// Seconds since the last activity (0 before any input).
    double quiet_seconds(Timestamp now) const {
        return last_activity_ ? std::max(0.0, std::chrono::duration<double>(now - *last_activity_).count()) : 0.0;
    }

private:
    struct PodNote {
        std::string unschedulable;   ///< the scheduler's message from PodScheduled=False
        std::string scheduler_event; ///< the latest FailedScheduling Event's message
        std::string waiting;         ///< the main (else init) container's waiting reason
        std::string waiting_message;
    };

    void normalise() {
        auto& t = options_.stall_tiers;
        t.erase(std::remove_if(t.begin(), t.end(), [](double x) { return !(x > 0); }), t.end());
        std::sort(t.begin(), t.end());
        if (t.size() > tier_names.size()) t.resize(tier_names.size());
        if (t.empty()) t.push_back(1.0);
    }

    static Severity tier_severity(int tier) noexcept {
        switch (tier) {
        case 0:
        case 1: return Severity::warning;
        case 2: return Severity::error;
        default: return Severity::critical;
        }
    }

    void note_time(Timestamp now) {
        if (!last_activity_) last_activity_ = now;
    }

    void restart_clock(Timestamp now) {
        if (!last_activity_ || *last_activity_ < now) last_activity_ = now;
    }

    void activity(Timestamp now, ReportSink& sink) {
        if (reported_tier_ >= 0 && stall_since_) {
            double lasted = std::max(0.0, std::chrono::duration<double>(now - *stall_since_).count());
            longest_seconds_ = std::max(longest_seconds_, lasted);
            Finding f;
            f.type = ReportType::ANOMALY_STALL;
            f.severity = Severity::info;
            f.scope = "workflow";
            f.fingerprint = "stall-" + std::to_string(episode_) + "-resolved";
            f.message = "The workflow is making progress again after " + detail::es_human_duration(lasted) +
                        " without any.";
            f.details["level"] = "workflow";
            f.details["resolved"] = true;
            f.details["stalled_seconds"] = lasted;
            f.details["tier"] = tier_names[static_cast<std::size_t>(reported_tier_)];
            f.details["episode"] = episode_;
            sink.emit(std::move(f));
            ++episode_;
            reported_tier_ = -1;
            stall_since_.reset();
        }
        last_activity_ = now;
    }

    void note_engine(const WorkflowState& s, Timestamp now) {
        bool engine = s.engine_pod_running();
        if (engine && !engine_was_running_) restart_clock(now); // the engine (re)started: that is activity
        engine_was_running_ = engine;
    }

    void judge_workflow(const WorkflowState& s, Timestamp now, ReportSink& sink) {
        note_engine(s, now);
        if (!s.engine_pod_running() || !last_activity_) return;
        int remaining = s.unfinished(); // pending or running: a vanished task (outcome unknown) has ended
        if (remaining <= 0) return;
        double quiet = quiet_seconds(now);
        double base = std::chrono::duration<double>(options_.stall_threshold).count();
        if (base <= 0) return;
        int reached = -1;
        for (std::size_t i = 0; i < options_.stall_tiers.size(); ++i)
            if (quiet >= base * options_.stall_tiers[i]) reached = static_cast<int>(i);
        if (reported_tier_ >= 0 && stall_since_)
            longest_seconds_ = std::max(longest_seconds_, std::chrono::duration<double>(now - *stall_since_).count());
        if (reached < 0 || reached <= reported_tier_) return;
        if (reported_tier_ < 0) {
            ++episodes_reported_;
            stall_since_ = last_activity_;
        }
        reported_tier_ = reached;
        highest_tier_ = std::max(highest_tier_, reached);
        longest_seconds_ = std::max(longest_seconds_, quiet);
        auto tier = tier_names[static_cast<std::size_t>(reached)];
        Finding f;
        f.type = ReportType::ANOMALY_STALL;
        f.severity = tier_severity(reached);
        f.scope = "workflow";
        f.fingerprint = "stall-" + std::to_string(episode_) + "-" + std::string(tier);
        f.message = "The workflow has made no progress for " + detail::es_human_duration(quiet) + ": no task started, " +
                    "finished or failed and the workflow engine wrote nothing, although " +
                    detail::es_plural(remaining, "task has", "tasks have") + " not finished" +
                    (s.running() > 0 ? " (" + std::to_string(s.running()) + " running)" : std::string()) + ".";
        f.details["level"] = "workflow";
        f.details["tier"] = tier;
        f.details["resolved"] = false;
        f.details["stalled_seconds"] = quiet;
        f.details["threshold_seconds"] = base * options_.stall_tiers[static_cast<std::size_t>(reached)];
        f.details["since"] = format_timestamp(*last_activity_);
        f.details["remaining"] = remaining;
        f.details["running"] = s.running();
        f.details["pending"] = s.pending();
        f.details["episode"] = episode_;
        sink.emit(std::move(f));
    }

    void judge_tasks(const WorkflowState& s, Timestamp now, ReportSink& sink) {
        double pending_limit = std::chrono::duration<double>(options_.pending_timeout).count();
        double running_limit = std::chrono::duration<double>(options_.stall_threshold).count();
        StragglerDetector baseline(options_.straggler);
        std::map<std::string, bool> has_median; // per type, computed lazily
        for (auto& t : s.tasks()) {
            if (!t.observed) continue;
            if (t.status == TaskStatus::pending && pending_limit > 0) judge_pending(t, now, pending_limit, sink);
            if (t.status != TaskStatus::running || running_limit <= 0) continue;
            if (t.expectation.seconds && *t.expectation.seconds > 0) continue; // inventory or history baseline
            auto runtime = t.runtime_seconds(now);
            if (!runtime || *runtime <= running_limit) continue;
            auto it = has_median.find(t.task_type);
            if (it == has_median.end()) {
                auto m = baseline.sibling_median(s, t.task_type, now);
                it = has_median.emplace(t.task_type, m && *m > 0).first;
            }
            if (it->second) continue; // the straggler rule judges it
            const auto* pod = newest_pod(t);
            Finding f;
            f.type = ReportType::ANOMALY_STALL;
            f.severity = Severity::warning;
            f.task_name = t.name;
            f.task_type = t.task_type;
            f.scope = t.key;
            f.fingerprint = "running:" + (pod ? pod->name : t.job_name);
            f.message = "Task " + t.name + " has been running for " + detail::es_human_duration(*runtime) +
                        " and there is nothing to compare it with (no expected duration and no finished " +
                        (t.task_type.empty() ? std::string("similar") : t.task_type) +
                        " tasks yet), so it may be stuck; check its progress.";
            f.details["level"] = "task";
            f.details["state"] = "running";
            f.details["running_seconds"] = *runtime;
            f.details["threshold_seconds"] = running_limit;
            f.details["job_name"] = t.job_name;
            f.details["pod_name"] = pod ? pod->name : std::string();
            f.details["attempts"] = t.attempts;
            if (sink.emit(std::move(f))) note_stalled(t.name);
        }
    }

    void judge_pending(const TaskRecord& t, Timestamp now, double limit, ReportSink& sink) {
        const auto* pod = newest_pod(t);
        if (pod && pod->terminal()) return; // between attempts: the Job has not made the next pod yet
        std::optional<Timestamp> since = pod && pod->created && *pod->created != Timestamp{} ? pod->created : t.first_seen;
        if (!since) return;
        double waited = std::chrono::duration<double>(now - *since).count();
        if (waited <= limit) return;
        std::string reason, cause, words;
        if (pod) {
            auto it = pods_.find(pod->name);
            const PodNote* note = it == pods_.end() ? nullptr : &it->second;
            if (note && (!note->unschedulable.empty() || !note->scheduler_event.empty())) {
                reason = "Unschedulable";
                cause = !note->unschedulable.empty() ? note->unschedulable : note->scheduler_event;
                words = "no computer in the cluster can take it (the scheduler says: " + cause + ")";
            } else {
                std::string waiting = note && !note->waiting.empty() ? note->waiting : pod->waiting_reason;
                if (!waiting.empty()) {
                    reason = waiting;
                    cause = note ? note->waiting_message : std::string();
                    if (waiting == "ContainerCreating" || waiting == "PodInitializing")
                        words = "its software environment is still being prepared";
                    else if (waiting == "ErrImagePull" || waiting == "ImagePullBackOff")
                        words = "its software image cannot be downloaded";
                    else
                        words = "it is waiting (" + waiting + ")";
                }
            }
        }
        if (reason.empty() && !t.last_warning_reason.empty()) {
            reason = t.last_warning_reason;
            cause = t.last_warning_message;
            words = "the cluster refuses or delays it (" + t.last_warning_reason + ")";
        }
        if (words.empty()) words = "it has not been given a place to run yet";
        Finding f;
        f.type = ReportType::ANOMALY_STALL;
        f.severity = Severity::warning;
        f.task_name = t.name;
        f.task_type = t.task_type;
        f.scope = t.key;
        f.fingerprint = "pending:" + (pod ? pod->name : t.job_name);
        f.message = "Task " + t.name + " has been waiting to start for " + detail::es_human_duration(waited) + ": " +
                    words + ".";
        f.details["level"] = "task";
        f.details["state"] = "pending";
        f.details["waited_seconds"] = waited;
        f.details["threshold_seconds"] = limit;
        f.details["reason"] = reason;
        f.details["cause"] = cause.substr(0, 1024);
        f.details["job_name"] = t.job_name;
        f.details["pod_name"] = pod ? pod->name : std::string();
        f.details["attempts"] = t.attempts;
        if (sink.emit(std::move(f))) note_stalled(t.name);
    }

    static const AttemptRecord* newest_pod(const TaskRecord& t) {
        const AttemptRecord* newest = nullptr;
        for (auto& a : t.pods)
            if (!newest || (a.created && (!newest->created || *a.created > *newest->created))) newest = &a;
        return newest;
    }

    void note_stalled(const std::string& name) {
        if (std::find(stalled_tasks_.begin(), stalled_tasks_.end(), name) == stalled_tasks_.end() &&
            stalled_tasks_.size() < 1000)
            stalled_tasks_.push_back(name);
    }

    Options options_;
    bool configured_ = false;
    std::map<std::string, PodNote> pods_;
    std::optional<Timestamp> last_activity_;
    std::optional<Timestamp> stall_since_; ///< the last activity before the current reported episode
    bool ended_ = false;
    bool was_stale_ = false;
    bool engine_was_running_ = false;
    bool resumed_ = false; ///< restored from a checkpoint, before the first resync
    int episode_ = 1;
    int reported_tier_ = -1;
    int highest_tier_ = -1;
    int episodes_reported_ = 0;
    double longest_seconds_ = 0;
    std::vector<std::string> stalled_tasks_;
};

static_assert(Detector<StallDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_STALL_HPP

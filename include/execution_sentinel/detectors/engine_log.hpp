// The workflow engine's log as a source: task failures only the engine knows (ANOMALY_TASK_FAILED with source
// "engine log") and the user's own patterns (engine_log.hpp).
#ifndef EXECUTION_SENTINEL_DETECTORS_ENGINE_LOG_HPP
#define EXECUTION_SENTINEL_DETECTORS_ENGINE_LOG_HPP

#include <execution_sentinel/detector.hpp>
#include <execution_sentinel/detectors/task_failure.hpp>
#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/task_matching.hpp>

#include <boost/json/array.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel {

/// Rules (docs/detectors.md), for every line of the engine container's log:
///  - a HyperFlow line saying a task failed (`[hf] task failed: …`, or `task finished` with a non-zero exit code)
///    for a task the cluster never showed failing (its pod Succeeded, as when the task's script fails, or its
///    state is not known yet): one ANOMALY_TASK_FAILED (error, source "engine log") per task id;
///  - each user pattern that matches the line: a report of the pattern's type and severity with its message,
///    once per pattern and distinct message (scope "pattern/<name>").
/// Patterns come from the Options (library API) and, unless `use_settings_file` is false, from the file named by
/// SentinelSettings::log_patterns_file, read once when the Monitor is built (LogPatternError when it is bad).
class EngineLogDetector {
public:
    static constexpr std::string_view name = "engine_log";

    struct Options {
        LogPatterns patterns{};
        bool use_settings_file = true; ///< also load SentinelSettings::log_patterns_file in configure()
    };

    EngineLogDetector() = default;
    explicit EngineLogDetector(Options o) : options_(std::move(o)) {}

    void configure(const MonitoringContext&, const SentinelSettings& s) {
        if (!options_.use_settings_file || s.log_patterns_file.empty() || loaded_file_) return;
        auto file = load_log_patterns(s.log_patterns_file);
        for (auto& p : file.patterns()) options_.patterns.add(p, s.log_patterns_file);
        loaded_file_ = true;
    }

    /// The patterns in use; add more with patterns().add(…) (LogPatternError when one is bad).
    LogPatterns& patterns() noexcept { return options_.patterns; }
    const LogPatterns& patterns() const noexcept { return options_.patterns; }

    void on_engine_log(const WorkflowState& s, const kube::LogLine& line, Timestamp, ReportSink& sink) {
        std::string_view text = line.text;
        if (text.size() > max_engine_log_line) text = text.substr(0, max_engine_log_line);
        if (auto sig = parse_engine_line(text)) {
            ++signals_;
            if (sig->task_failed()) on_engine_failure(s, *sig, text, sink);
        }
        if (options_.patterns.empty()) return;
        for (auto& m : options_.patterns.match(text)) {
            const auto& p = options_.patterns.patterns()[m.index];
            Finding f;
            f.type = p.type;
            f.severity = p.severity;
            f.scope = "pattern/" + p.name;
            f.fingerprint = m.message.substr(0, 256);
            // a template made only of empty groups gives no sentence: say which pattern matched instead
            f.message = m.message.find_first_not_of(" \t") == std::string::npos
                            ? "The workflow engine's log matched the pattern " + p.name + "."
                            : m.message;
            f.details["pattern"] = p.name;
            f.details["source"] = "engine log";
            f.details["line"] = std::string(text.substr(0, 1024));
            boost::json::array groups;
            for (auto& g : m.groups) groups.push_back(boost::json::string(g));
            f.details["groups"] = std::move(groups);
            if (sink.emit(std::move(f))) ++pattern_reports_;
        }
    }

    /// HyperFlow lines recognised so far, and reports made from patterns.
    int signals() const noexcept { return signals_; }
    int pattern_reports() const noexcept { return pattern_reports_; }

    /// The task an engine line is about: same type (compared as in Job names) and procId; nullptr when unknown.
    static const TaskRecord* task_of(const WorkflowState& s, const EngineSignal& sig) {
        if (!sig.id) return nullptr;
        auto slug = type_slug(sig.task_type);
        for (auto& t : s.tasks())
            if (t.proc_id && *t.proc_id == sig.id->proc_id && type_slug(t.task_type) == slug) return &t;
        return nullptr;
    }

private:
    void on_engine_failure(const WorkflowState& s, const EngineSignal& sig, std::string_view text, ReportSink& sink) {
        const TaskRecord* task = task_of(s, sig);
        if (task && task->cluster_failure_seen()) return; // the cluster's own report covers it
        TaskRecord synthetic;
        if (!task) {
            synthetic.task_type = sig.task_type;
            synthetic.name = sig.id ? sig.task_type + "-" + std::to_string(sig.id->proc_id) : sig.task_type;
            synthetic.key = "engine/" + synthetic.name;
        }
        const TaskRecord& t = task ? *task : synthetic;
        const AttemptRecord* newest = task ? task->newest_attempt() : nullptr;
        TaskFailureCause k;
        k.key = "engine_failed";
        k.reason = "TaskFailed";
        k.exit_code = sig.exit_code;
        if (newest) {
            k.container = newest->container;
            k.restart_count = newest->restart_count;
        }
        k.what = "failed" + (sig.exit_code ? ": its program exited with code " + std::to_string(*sig.exit_code)
                                           : std::string()) +
                 (sig.seconds ? " after " + detail::es_human_duration(*sig.seconds) : std::string()) +
                 ", as the workflow engine reports (its container itself ended normally)";
        k.next_step = "Read the task's output (the log lines in the evidence, or its stderr file under "
                      "/work_dir/logs-hf/) for the error; a script error usually means bad input data or arguments.";
        Finding f = TaskFailureDetector::make_finding(t, k, "engine log");
        f.fingerprint = "engine|" + sig.task_id;
        f.details["attempt"] = task ? task->attempts : 0;
        f.details["task_id"] = sig.task_id;
        f.details["engine_line"] = std::string(text.substr(0, 1024));
        if (sig.seconds) f.details["seconds"] = *sig.seconds;
        if (newest) {
            f.details["pod_name"] = newest->name;
            f.details["node"] = newest->node;
            f.details["evidence"].as_object()["pod"] = newest->name;
            if (!newest->container.empty()) f.evidence_request = EvidenceRequest{newest->name, newest->container};
        } else {
            f.details["node"] = "";
        }
        sink.emit(std::move(f));
    }

    Options options_;
    bool loaded_file_ = false;
    int signals_ = 0;
    int pattern_reports_ = 0;
};

static_assert(Detector<EngineLogDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_ENGINE_LOG_HPP

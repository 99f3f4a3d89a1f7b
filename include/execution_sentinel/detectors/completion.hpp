// COMPLETION: the engine wrote its exit code to the completion file. Also TIMEOUT and
// COMPLETION_SIGNAL_INVALID.
#ifndef EXECUTION_SENTINEL_DETECTORS_COMPLETION_HPP
#define EXECUTION_SENTINEL_DETECTORS_COMPLETION_HPP

#include <execution_sentinel/detector.hpp>

#include <boost/json/array.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace execution_sentinel {

/// Parses the completion file's content: surrounding whitespace ignored, then an optional sign and 1–10
/// digits fitting an int. nullopt otherwise (including empty content).
inline std::optional<int> parse_exit_code(std::string_view content) noexcept {
    auto s = detail::es_trim(content);
    if (s.empty() || s.size() > 11) return std::nullopt;
    bool neg = false;
    if (s.front() == '+' || s.front() == '-') {
        neg = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s.empty() || s.size() > 10) return std::nullopt;
    long long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (neg) v = -v;
    if (v < INT32_MIN || v > INT32_MAX) return std::nullopt;
    return static_cast<int>(v);
}

/// Rules (docs/detectors.md):
///  - probe with the file found and an exit code in it → COMPLETION once (info for 0, error otherwise);
///    sets WatchSummary::exit_code; later probes are ignored;
///  - file found but empty (being written) or missing → nothing, the watch goes on;
///  - file found with other content → COMPLETION_SIGNAL_INVALID (warning), once per distinct content; the
///    watch goes on (it ends at the timeout if the file is never fixed);
///  - timeout before an exit code → TIMEOUT (error), once.
class CompletionDetector {
public:
    static constexpr std::string_view name = "completion";

    void configure(const MonitoringContext& ctx, const SentinelSettings& s) {
        path_ = ctx.completion_signal_path;
        timeout_ = s.timeout;
    }

    void on_completion_probe(const WorkflowState& s, const CompletionProbe& p, Timestamp, ReportSink& sink) {
        if (exit_code_ || !p.file_found) return;
        if (detail::es_trim(p.content).empty()) return;
        auto code = parse_exit_code(p.content);
        if (!code) {
            auto shown = printable(p.content);
            Finding f;
            f.type = ReportType::COMPLETION_SIGNAL_INVALID;
            f.severity = Severity::warning;
            f.scope = "workflow";
            f.fingerprint = "content:" + shown;
            f.message = "The workflow engine's completion file holds something other than an exit code, so the "
                        "outcome is not known yet; monitoring continues.";
            f.details["content"] = shown;
            f.details["path"] = path_;
            sink.emit(std::move(f));
            return;
        }
        exit_code_ = code;
        Finding f;
        f.type = ReportType::COMPLETION;
        f.scope = "workflow";
        f.fingerprint = "completion";
        f.details["exit_code"] = *code;
        f.details["failed_tasks"] = s.failed();
        f.details["observed_completed"] = s.completed();
        f.details["vanished_tasks"] = s.vanished();
        if (*code == 0) {
            f.severity = Severity::info;
            f.completed_tasks = std::max(s.completed(), s.inventory_total());
            f.message = "The workflow finished successfully; all " + detail::es_plural(s.total(), "task", "tasks") +
                        " are done.";
        } else {
            f.severity = Severity::error;
            boost::json::array failed;
            for (auto& t : s.tasks())
                if (t.status == TaskStatus::failed && failed.size() < 50) failed.push_back(boost::json::string(t.name));
            f.details["failed_task_names"] = std::move(failed);
            f.message = "The workflow stopped with exit code " + std::to_string(*code) + " after " +
                        std::to_string(s.completed()) + " of " + detail::es_plural(s.total(), "task", "tasks") +
                        " had completed, most likely because a task failed.";
        }
        sink.emit(std::move(f));
    }

    void on_timeout(const WorkflowState& s, Timestamp, ReportSink& sink) {
        if (exit_code_) return;
        Finding f;
        f.type = ReportType::TIMEOUT;
        f.severity = Severity::error;
        f.scope = "workflow";
        f.fingerprint = "timeout";
        double secs = std::chrono::duration<double>(timeout_).count();
        f.message = "The workflow did not finish within the " + detail::es_human_duration(secs) + " allowed; " +
                    std::to_string(s.completed()) + " of " + detail::es_plural(s.total(), "task", "tasks") +
                    " had completed and " + std::to_string(s.running()) + " were still running.";
        f.details["timeout_seconds"] = secs;
        f.details["running"] = s.running();
        f.details["pending"] = s.pending();
        f.details["failed"] = s.failed();
        f.details["vanished"] = s.vanished();
        sink.emit(std::move(f));
    }

    void on_summary(WatchSummary& w) const {
        if (exit_code_) w.exit_code = exit_code_;
    }

    std::optional<int> exit_code() const noexcept { return exit_code_; }

private:
    static std::string printable(std::string_view s) {
        std::string out;
        for (char c : s) {
            if (out.size() >= 64) {
                out += "...";
                break;
            }
            unsigned char u = static_cast<unsigned char>(c);
            if (u >= 0x20 && u < 0x7f) out += c;
            else if (c == '\n') out += "\\n";
            else out += '?';
        }
        return out;
    }

    std::string path_ = "/work_dir/.workflow-exit-code";
    std::chrono::milliseconds timeout_{3'600'000};
    std::optional<int> exit_code_;
};

static_assert(Detector<CompletionDetector>);

} // namespace execution_sentinel

#endif // EXECUTION_SENTINEL_DETECTORS_COMPLETION_HPP

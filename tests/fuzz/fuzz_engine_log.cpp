// Lines of the workflow engine's log: parse_engine_line on each line of the input (and on the whole input as one
// line), user patterns matched against them, and the engine-log detector fed with them. Never an exception, never
// a crash; what is parsed stays within the documented bounds.
#include <execution_sentinel/detectors/engine_log.hpp>
#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/monitor.hpp>

#include "fuzz_target.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace {
namespace es = execution_sentinel;

es::LogPatterns fixed_patterns() {
    es::LogPatterns p;
    p.add({"errno", R"(errno (\d+) \((\w+)\))", es::ReportType::ANOMALY_TASK_FAILED, es::Severity::error,
           "errno {1} {2} in {line}"});
    p.add({"any", "task (\\w*)", es::ReportType::STRUCTURE, es::Severity::info, "{1}"});
    return p;
}

/// A pattern whose matching explodes: cut off by the regex engine (matched on short prefixes only, to keep the
/// smoke run short in sanitizer builds).
es::LogPatterns nested_pattern() {
    es::LogPatterns p;
    p.add({"nested", "(a+)+$", es::ReportType::ANOMALY_STALL, es::Severity::warning, "{0}"});
    return p;
}

void check(std::string_view line) {
    using execution_sentinel::fuzz::expect;
    auto sig = es::parse_engine_line(line);
    if (!sig) return;
    if (sig->kind == es::EngineSignal::Kind::workflow_finished) {
        expect(!sig->workflow_id.empty() && sig->workflow_id.size() <= 64, "a workflow id of 1 to 64 bytes");
        return;
    }
    expect(!sig->task_type.empty() && sig->task_type.size() <= 256, "a task type of 1 to 256 bytes");
    expect(!sig->task_id.empty() && sig->task_id.size() <= 256, "a task id of 1 to 256 bytes");
    if (sig->id) expect(sig->id->proc_id >= 0 && sig->id->wf_id >= 0 && sig->id->firing_id >= 0, "id parts not negative");
    if (sig->seconds) expect(*sig->seconds >= 0, "a duration not negative");
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    static const es::LogPatterns patterns = fixed_patterns();
    static const es::LogPatterns nested = nested_pattern();
    es::MonitoringContext ctx;
    ctx.namespace_ = "wf";
    ctx.engine_pod_name = "engine";
    ctx.task_inventory = {{"frequency", "frequency", 0, std::nullopt, "", ""}};
    try {
        es::Monitor<es::EngineLogDetector> m(ctx, es::SentinelSettings{},
                                             es::EngineLogDetector(es::EngineLogDetector::Options{patterns, false}));
        check(data);
        std::size_t pos = 0;
        auto now = es::Timestamp{} + std::chrono::hours(490'000);
        while (pos <= data.size()) {
            auto eol = data.find('\n', pos);
            auto line = data.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
            pos = eol == std::string_view::npos ? data.size() + 1 : eol + 1;
            check(line);
            for (auto& match : patterns.match(line))
                expect(match.message.size() <= es::max_log_pattern_message && match.index < patterns.size(),
                       "a bounded message from a known pattern");
            for (auto& match : nested.match(line.substr(0, 64))) expect(!match.groups.empty(), "a match has its text");
            m.on_engine_log(kube::LogLine{now, std::string(line)}, now);
        }
        for (auto& r : m.take_reports()) expect(!r.message.empty(), "every report has a message");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

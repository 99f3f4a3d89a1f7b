// The configuration of `execution-sentinel serve`: parse_serve_config over arbitrary YAML. Every failure is a
// ServeConfigError naming the file and never quoting a store address; every success is a usable configuration
// (valid namespaces and selectors, bounded run limits, thresholds as `watch` validates them).
#include <execution_sentinel/serve/config.hpp>

#include "fuzz_target.hpp"

#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace sv = execution_sentinel::serve;
    try {
        auto c = sv::parse_serve_config(data, "fuzz.yaml");
        expect(!c.engine_selector.empty(), "an engine selector is always set");
        for (const auto& ns : c.namespaces)
            expect(execution_sentinel::detail::es_is_dns1123_label(ns), "namespaces are valid names");
        expect(c.max_active_runs >= 1 && c.max_active_runs <= 10000, "active runs within 1..10000");
        expect(c.keep_reports_per_run >= 1, "at least one report is kept");
        expect(c.settings.poll_interval >= execution_sentinel::min_poll_interval, "poll interval at least the minimum");
        expect(c.settings.timeout.count() > 0, "timeout positive");
        expect(!c.completion_signal_path.empty() && c.completion_signal_path.front() == '/', "absolute completion path");
        expect(!(c.in_cluster && !c.kubeconfig.empty()), "in_cluster excludes a kubeconfig");
    } catch (const sv::ServeConfigError& e) {
        std::string what = e.what();
        expect(what.starts_with("fuzz.yaml:"), "an error names the file");
        expect(what.find("postgresql://") == std::string::npos, "an error never quotes a store address");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

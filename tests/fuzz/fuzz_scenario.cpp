// Scenario files for the simulated cluster: every failure is a ScenarioError naming the step and field, and a
// scenario that parses expands into a time-ordered timeline (bounded here, so the run stays fast).
#include <execution_sentinel/testing/scenario.hpp>

#include "fuzz_target.hpp"

#include <algorithm>

namespace {

/// An upper bound of the steps a scenario expands into; large expansions are skipped to keep the fuzzer fast.
double expansion_estimate(const execution_sentinel::testing::Scenario& s) {
    double steps = static_cast<double>(s.steps.size());
    for (const auto& t : s.tasks) {
        const double runs = std::min(t.failed_attempts, t.backoff_limit + 1) + 2.0;
        double per_run = 20;
        if (t.has_usage()) per_run += std::min(10000.0, t.duration / s.metrics_period + 2);
        steps += runs * per_run;
    }
    return steps;
}

} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace testing = execution_sentinel::testing;
    try {
        const auto scenario = testing::Scenario::parse(data);
        if (expansion_estimate(scenario) > 20000) return;
        const auto timeline = scenario.timeline();
        expect(std::is_sorted(timeline.begin(), timeline.end(),
                              [](const testing::Step& a, const testing::Step& b) { return a.at < b.at; }),
               "the timeline is sorted by time");
        for (const auto& step : timeline) expect(!step.origin.empty(), "every step names its origin");
    } catch (const testing::ScenarioError&) {
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

// The timeline of a scenario: `Scenario::timeline()` expands task declarations and scenario-level settings
// (engine, support objects, TTL deletion, completion) into one time-ordered list of steps, `Scenario::validate()`
// checks the ranges, and `Scenario::context()` builds the MonitoringContext the conductor would send for the run.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

namespace execution_sentinel::testing::scenario_detail {

/// Kubernetes Job controller pod-replacement backoff before attempt `failures` + 1: 10 s, 20 s, 40 s … capped
/// at 6 min.
EXECUTION_SENTINEL_DECL double retry_delay(int failures);

} // namespace execution_sentinel::testing::scenario_detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/scenario/impl/timeline.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP

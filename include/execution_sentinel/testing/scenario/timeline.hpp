// The timeline of a scenario: `Scenario::timeline()` expands task declarations and scenario-level settings
// (engine, support objects, TTL deletion, completion) into one time-ordered list of steps, `Scenario::validate()`
// checks the ranges, and `Scenario::context()` builds the MonitoringContext the conductor would send for the run.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

#include <string>
#include <vector>

namespace execution_sentinel::testing::scenario_detail {

/// Kubernetes Job controller pod-replacement backoff before attempt `failures` + 1: 10 s, 20 s, 40 s … capped
/// at 6 min.
EXECUTION_SENTINEL_DECL double retry_delay(int failures);

/// The kubelet's crash-loop back-off before restart `n` (1-based): 10 s, 20 s, 40 s … capped at 5 min.
EXECUTION_SENTINEL_DECL double crash_loop_delay(int n);

/// Scenario seconds as whole wall seconds (at least 1), for spec fields in seconds (activeDeadlineSeconds).
EXECUTION_SENTINEL_DECL int wall_whole_seconds(double scenario_seconds, double time_scale);

/// Realistic last lines of a task container's log before it fails the way `outcome` describes (empty for
/// outcomes that leave no last words).
EXECUTION_SENTINEL_DECL std::vector<std::string> default_log_tail(TaskOutcome outcome, const std::string& type,
                                                                  int exit_code);

} // namespace execution_sentinel::testing::scenario_detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/scenario/impl/timeline.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_TIMELINE_HPP

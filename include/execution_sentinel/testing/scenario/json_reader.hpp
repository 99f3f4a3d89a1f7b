// The JSON form of a scenario (docs/scenarios.md): `Scenario::from_json`, `Scenario::parse` and
// `Scenario::from_file` read it, rejecting unknown keys and wrong types with a ScenarioError that names the
// place ("steps[3].path: expected a string"). The readers of one step and one task are declared here.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_JSON_READER_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_JSON_READER_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

#include <boost/json/value.hpp>

#include <cstddef>
#include <optional>
#include <string_view>

namespace execution_sentinel::testing::scenario_detail {

/// The StepKind of a JSON step name ("start_task"); nullopt when unknown.
EXECUTION_SENTINEL_DECL std::optional<StepKind> step_kind_from(std::string_view s);
/// The TaskOutcome of a JSON outcome name ("oom"); nullopt when unknown.
EXECUTION_SENTINEL_DECL std::optional<TaskOutcome> task_outcome_from(std::string_view s);
/// Reads `steps[index]`. Throws ScenarioError naming the field.
EXECUTION_SENTINEL_DECL Step parse_step(const boost::json::value& v, std::size_t index);
/// Reads `tasks[index]`, missing fields from `defaults` (task_defaults). Throws ScenarioError naming the field.
EXECUTION_SENTINEL_DECL TaskDecl parse_task(const boost::json::value& v, std::size_t index, const TaskDecl& defaults);

} // namespace execution_sentinel::testing::scenario_detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/scenario/impl/json_reader.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_JSON_READER_HPP

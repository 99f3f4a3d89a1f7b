// Scenarios: a HyperFlow workflow run played against a FakeCluster over scaled time (../../docs/scenarios.md).
//
// A `Scenario` is a list of steps at scenario times (seconds), plus high-level task declarations (type, procId,
// start, duration, outcome) that expand into those steps, plus what the monitor is told about the run (the
// MonitoringContext, `context()`). `time_scale` maps scenario seconds to wall seconds: with 0.05, a 900 s run plays
// in 45 s. Scenarios are written in C++ or as JSON (`Scenario::parse`); the JSON parser rejects wrong input
// with a `ScenarioError` naming the step and the field.
//
// `BasicScenarioRunner<Cluster>` executes a scenario's timeline against a cluster: on its own thread in real
// (scaled) time (`start`, `wait`, `stop`), or stepped by hand (`run_until`) so tests are deterministic.
// `ScenarioRunner` is the runner for `FakeCluster`. Object timestamps are wall-clock times:
// base + scenario time × time_scale, base being the moment `start()` was called (or the one given).
//
// This header pulls in the four parts: scenario/types.hpp (the types and the step DSL), scenario/json_reader.hpp
// (the JSON form), scenario/timeline.hpp (expansion into steps, the monitoring context) and scenario/runner.hpp.
#ifndef EXECUTION_SENTINEL_TESTING_SCENARIO_HPP
#define EXECUTION_SENTINEL_TESTING_SCENARIO_HPP

#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>
#include <execution_sentinel/testing/scenario/json_reader.hpp>
#include <execution_sentinel/testing/scenario/runner.hpp>
#include <execution_sentinel/testing/scenario/timeline.hpp>
#include <execution_sentinel/testing/scenario/types.hpp>

#endif // EXECUTION_SENTINEL_TESTING_SCENARIO_HPP

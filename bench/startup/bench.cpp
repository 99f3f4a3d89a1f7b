// Start-up on a large context (docs/performance.md, "Start-up on a large context").
//
//   context_from_json   parse + validate a context whose dag_structure is a chain of N types (one task each)
//   task_rule           DefaultTaskRule: the known task types, indexed by their name form
//   monitor             DefaultMonitor: rule, workflow state and detectors, what a watch builds before its
//                       first request
//
// Each runs for N = 25k, 50k, 100k and 200k; Google Benchmark fits the complexity (expect N or N log N, never N²).
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/task_matching.hpp>

#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <string>

namespace es = execution_sentinel;

namespace {

boost::json::object chain_json(std::int64_t n) {
    boost::json::object ctx;
    ctx["namespace"] = "wf-chain";
    ctx["engine_pod_name"] = "hyperflow-engine-0";
    boost::json::array inventory;
    boost::json::object dag;
    for (std::int64_t i = 0; i < n; ++i) {
        std::string type = "step_" + std::to_string(i);
        inventory.push_back(boost::json::object{{"name", type}, {"task_type", type}, {"dag_order", i}});
        boost::json::array ups;
        if (i > 0) ups.push_back(boost::json::string("step_" + std::to_string(i - 1)));
        dag[type] = std::move(ups);
    }
    ctx["task_inventory"] = std::move(inventory);
    ctx["dag_structure"] = std::move(dag);
    return ctx;
}

void context_from_json(benchmark::State& state) {
    auto const json = chain_json(state.range(0));
    for (auto _ : state) benchmark::DoNotOptimize(es::context_from_json(json));
    state.SetComplexityN(state.range(0));
}

void task_rule(benchmark::State& state) {
    auto const ctx = es::context_from_json(chain_json(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(es::DefaultTaskRule(ctx).known_types().size());
    state.SetComplexityN(state.range(0));
}

void monitor(benchmark::State& state) {
    auto const ctx = es::context_from_json(chain_json(state.range(0)));
    for (auto _ : state) {
        es::DefaultMonitor m(ctx, es::SentinelSettings{});
        benchmark::DoNotOptimize(m.state().total());
    }
    state.SetComplexityN(state.range(0));
}

} // namespace

BENCHMARK(context_from_json)->Arg(25'000)->Arg(50'000)->Arg(100'000)->Arg(200'000)->Unit(benchmark::kMillisecond)->Complexity();
BENCHMARK(task_rule)->Arg(25'000)->Arg(50'000)->Arg(100'000)->Arg(200'000)->Unit(benchmark::kMillisecond)->Complexity();
BENCHMARK(monitor)->Arg(25'000)->Arg(50'000)->Arg(100'000)->Arg(200'000)->Unit(benchmark::kMillisecond)->Complexity();

BENCHMARK_MAIN();

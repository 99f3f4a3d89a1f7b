// The history writer on a SQLite file (docs/history.md, "Measured"):
//
//   writer_sqlite/B   reports pushed through HistoryWriter (batch B per transaction) and flushed to a new WAL
//                     file: items_per_second is reports written per second, end to end
//   push_only         the cost of HistoryWriter::push() alone (what the watch path pays), the store held
//                     unavailable so that nothing is written meanwhile
#include <execution_sentinel/history/memory_store.hpp>
#include <execution_sentinel/history/sqlite_store.hpp>
#include <execution_sentinel/history/writer.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace es = execution_sentinel;
namespace h = execution_sentinel::history;

namespace {

es::Report report(std::uint64_t seq) {
    es::Report r;
    r.type = seq % 10 ? es::ReportType::TASK_COMPLETED : es::ReportType::PROGRESS;
    r.sequence = seq;
    r.timestamp = es::Clock::now();
    r.task_name = "frequency_" + std::to_string(seq);
    r.task_type = "frequency";
    r.completed_tasks = static_cast<int>(seq);
    r.total_tasks = 100000;
    r.message = "Task " + r.task_name + " completed.";
    r.details = {{"event", "completed"}, {"attempt", 1}, {"runtime_seconds", 41.5}, {"pod_name", r.task_name + "-x7"}};
    return r;
}

void writer_sqlite(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    constexpr std::uint64_t n = 20000;
    std::size_t run = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto path = std::filesystem::temp_directory_path() / ("es-bench-history-" + std::to_string(::getpid()) + ".db");
        std::filesystem::remove(path);
        std::filesystem::remove(path.string() + "-wal");
        std::filesystem::remove(path.string() + "-shm");
        auto store = std::make_shared<h::SqliteHistoryStore>(path.string());
        h::HistoryWriterOptions opts;
        opts.batch = batch;
        h::HistoryWriter writer(store, opts);
        const std::string id = "run" + std::to_string(++run);
        h::RunRecord r;
        r.id = id;
        r.started = es::Clock::now();
        writer.push(r);
        std::vector<es::Report> reports;
        for (std::uint64_t i = 1; i <= n; ++i) reports.push_back(report(i));
        state.ResumeTiming();
        for (auto& rep : reports) writer.push_report(id, std::move(rep));
        if (!writer.flush(std::chrono::minutes(5))) state.SkipWithError("flush timed out");
        state.PauseTiming();
        writer.close(std::chrono::seconds(5));
        std::filesystem::remove(path);
        std::filesystem::remove(path.string() + "-wal");
        std::filesystem::remove(path.string() + "-shm");
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(writer_sqlite)->Arg(1)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

void push_only(benchmark::State& state) {
    auto store = std::make_shared<h::MemoryHistoryStore>();
    store->set_available(false);
    h::HistoryWriterOptions opts;
    opts.capacity = 1u << 30;
    opts.retry_initial = std::chrono::seconds(60);
    h::HistoryWriter writer(store, opts);
    auto r = report(1);
    std::uint64_t seq = 0;
    for (auto _ : state) {
        r.sequence = ++seq;
        benchmark::DoNotOptimize(writer.push_report("run", r));
    }
    state.SetItemsProcessed(state.iterations());
    writer.close(std::chrono::milliseconds(0));
}
BENCHMARK(push_only)->Iterations(200000);

} // namespace

BENCHMARK_MAIN();

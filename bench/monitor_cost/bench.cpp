// What the detectors cost on the watch read path (docs/performance.md, "Detector cost per event").
//
// One HyperFlow run of `tasks` tasks (default 300) as the watch delivers it: each task's Job and pod are added
// pending, start running, and finish (one in 25 OOM-killed, one in 20 failed with exit 1), with a tick every 50
// changes. The sans-io Monitor consumes the whole sequence, with
//   original6   the six original detectors (progress, OOM kill, straggler, mass failure, connectivity, completion)
//   builtin     the built-in set (DefaultMonitor: + task failure, engine log, lifecycle, stall, memory pressure,
//               structure)
// Reports are taken after every change, as the Sentinel does. items_per_second counts changes; the time per change
// of `builtin` minus that of `original6` is what the diagnosis detectors add to each watch event.
#include <execution_sentinel/monitor.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

struct Change {
    enum class Kind { pod, job, tick } kind;
    kube::Pod pod;
    kube::Job job;
    es::ChangeKind change = es::ChangeKind::modified;
    double when = 0;
};

const char* const types[] = {"individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency"};

es::MonitoringContext context(int tasks) {
    es::MonitoringContext c;
    c.namespace_ = "wf-bench";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    c.engine_pod_selector = "component=hyperflow-engine";
    for (int i = 0; i < tasks; ++i) {
        std::string type = types[i % 5];
        c.task_inventory.push_back({type, type, i % 5, 30.0, "", ""});
    }
    return c;
}

std::vector<Change> run(int tasks) {
    std::vector<Change> out;
    kube::Pod engine;
    engine.meta.name = "hyperflow-engine-6c4b46d86-jdl7w";
    engine.meta.uid = "uid-engine";
    engine.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"name", "hyperflow-engine"}};
    engine.meta.owner = kube::OwnerRef{"ReplicaSet", "hyperflow-engine-6c4b46d86", "rs"};
    engine.phase = kube::PodPhase::running;
    kube::ContainerStatus a;
    a.name = "hyperflow";
    engine.containers = {a};
    out.push_back({Change::Kind::pod, engine, {}, es::ChangeKind::added, 0});
    double t = 1;
    for (int i = 0; i < tasks; ++i) {
        kube::Job job;
        kube::Pod pod;
        std::string type = types[i % 5];
        job.meta.name = "job8f3k2-" + es::type_slug(type) + "-" + std::to_string(i + 1) + "-1";
        job.meta.uid = "uid-" + job.meta.name;
        job.meta.labels.items = {{"app", "hyperflow"}};
        pod.meta.name = job.meta.name + "-x7q2p";
        pod.meta.uid = "uid-" + pod.meta.name;
        pod.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job.meta.name}};
        pod.meta.owner = kube::OwnerRef{"Job", job.meta.name, job.meta.uid};
        kube::ContainerStatus c;
        c.name = "test";
        pod.containers.push_back(c);
        pod.phase = kube::PodPhase::pending;
        out.push_back({Change::Kind::job, {}, job, es::ChangeKind::added, t});
        out.push_back({Change::Kind::pod, pod, {}, es::ChangeKind::added, t});
        t += 0.1;
        job.active = 1;
        job.start_time = at(t);
        pod.phase = kube::PodPhase::running;
        pod.start_time = at(t);
        pod.containers[0].state = {kube::ContainerState::Kind::running, "", "", 0, 0, at(t), {}};
        out.push_back({Change::Kind::pod, pod, {}, es::ChangeKind::modified, t});
        out.push_back({Change::Kind::job, {}, job, es::ChangeKind::modified, t});
        t += 0.1;
        auto started = pod.containers[0].state.started_at;
        bool oom = i % 25 == 7, failed = i % 20 == 3;
        job.active = 0;
        if (oom || failed) {
            job.failed = 1;
            job.conditions = {{kube::JobCondition::Type::failed, true, "BackoffLimitExceeded", "Job has reached the specified backoff limit"}};
            pod.phase = kube::PodPhase::failed;
            pod.containers[0].state = {kube::ContainerState::Kind::terminated, oom ? "OOMKilled" : "Error", "",
                                       oom ? 137 : 1, 0, started, at(t)};
        } else {
            job.succeeded = 1;
            job.completion_time = at(t);
            job.conditions = {{kube::JobCondition::Type::complete, true, "", ""}};
            pod.phase = kube::PodPhase::succeeded;
            pod.containers[0].state = {kube::ContainerState::Kind::terminated, "Completed", "", 0, 0, started, at(t)};
        }
        out.push_back({Change::Kind::pod, pod, {}, es::ChangeKind::modified, t});
        out.push_back({Change::Kind::job, {}, job, es::ChangeKind::modified, t});
        if (out.size() % 50 < 6) out.push_back({Change::Kind::tick, {}, {}, es::ChangeKind::modified, t});
    }
    return out;
}

using Original6 = es::Monitor<es::ProgressDetector, es::OomKillDetector, es::StragglerDetector,
                              es::MassFailureDetector, es::ConnectivityDetector, es::CompletionDetector>;

template <class M> void consume(benchmark::State& state) {
    const int tasks = static_cast<int>(state.range(0));
    const auto ctx = context(tasks);
    const auto changes = run(tasks);
    std::size_t reports = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto m = std::make_unique<M>(ctx, es::SentinelSettings{});
        m->on_api_call(true, "list pods", at(0));
        state.ResumeTiming();
        for (auto& c : changes) {
            switch (c.kind) {
            case Change::Kind::pod: m->on_pod(c.pod, c.change, at(c.when)); break;
            case Change::Kind::job: m->on_job(c.job, c.change, at(c.when)); break;
            case Change::Kind::tick: m->on_tick(at(c.when)); break;
            }
            reports += m->take_reports().size();
        }
        state.PauseTiming();
        m.reset();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * changes.size()));
    state.counters["reports_per_run"] = static_cast<double>(reports) / static_cast<double>(state.iterations());
    state.counters["ns_per_change"] = benchmark::Counter(static_cast<double>(state.iterations() * changes.size()),
                                                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void original6(benchmark::State& state) { consume<Original6>(state); }
void builtin(benchmark::State& state) { consume<es::DefaultMonitor>(state); }

} // namespace

// Interleaved so that both see the same machine conditions; run with --benchmark_repetitions for medians.
BENCHMARK(original6)->Arg(300)->Arg(2000)->Unit(benchmark::kMillisecond);
BENCHMARK(builtin)->Arg(300)->Arg(2000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();

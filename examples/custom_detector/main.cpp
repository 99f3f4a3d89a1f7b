// A user-written detector, plugged into a Monitor beside the built-ins and driven by a few synthetic pods.
//
// StallDetector reports a task that has been waiting to start for longer than a limit (no node has room for
// it, its image cannot be pulled, …): HyperFlow's engine would wait for it forever. It also reports at once a
// task whose software image cannot be downloaded. Both are ANOMALY_STALL reports, once per task.
#include <execution_sentinel/monitor.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

class StallDetector {
public:
    static constexpr std::string_view name = "stall"; // the required part: a name ...

    explicit StallDetector(std::chrono::minutes limit) : limit_(limit) {}

    // ... and any of the optional hooks. This one runs at every tick of the Sentinel.
    void on_tick(const es::WorkflowState& state, es::Timestamp now, es::ReportSink& sink) {
        for (const auto& task : state.tasks()) {
            if (task.status != es::TaskStatus::pending || !task.first_seen) continue;
            auto waited = now - *task.first_seen;
            if (waited <= limit_) continue;
            es::Finding f;
            f.type = es::ReportType::ANOMALY_STALL;
            f.severity = es::Severity::warning;
            f.task_name = task.name;
            f.task_type = task.task_type;
            f.scope = task.key;        // deduplicated per task ...
            f.fingerprint = "pending"; // ... and per kind of finding
            f.message = "Task " + task.name + " has been waiting to start for " +
                        std::to_string(std::chrono::duration_cast<std::chrono::minutes>(waited).count()) +
                        " minutes, possibly because the cluster has no room for it.";
            f.details["waited_seconds"] = std::chrono::duration<double>(waited).count();
            f.details["last_warning"] = task.last_warning_reason;
            sink.emit(std::move(f));
        }
    }

    // This one sees every pod the Sentinel receives, after the workflow state was updated.
    void on_pod(const es::WorkflowState& state, const kube::Pod& pod, es::ChangeKind, es::Timestamp,
                es::ReportSink& sink) {
        const auto* task = state.find_task(pod.meta.name);
        if (!task) return; // the engine, redis, … are not tasks
        for (const auto& c : pod.containers) {
            if (c.state.reason != "ErrImagePull" && c.state.reason != "ImagePullBackOff") continue;
            es::Finding f;
            f.type = es::ReportType::ANOMALY_STALL;
            f.severity = es::Severity::error;
            f.task_name = task->name;
            f.task_type = task->task_type;
            f.scope = task->key;
            f.fingerprint = "image";
            f.message = "Task " + task->name + " cannot start because its software image cannot be downloaded.";
            f.details["reason"] = c.state.reason.str();
            sink.emit(std::move(f));
        }
    }

private:
    std::chrono::minutes limit_;
};
static_assert(es::Detector<StallDetector>);

namespace {

kube::Pod task_pod(const std::string& job, const std::string& suffix, kube::PodPhase phase) {
    kube::Pod p;
    p.meta.name = job + "-" + suffix;
    p.meta.uid = "uid-" + p.meta.name;
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "test";
    p.containers.push_back(c);
    return p;
}

} // namespace

int main() {
    es::MonitoringContext ctx;
    ctx.namespace_ = "wf-1000g-20260806-151759";
    ctx.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    ctx.task_inventory = {{"sifting", "sifting", 2, 45.0, "", ""},
                          {"frequency", "frequency", 4, 480.0, "1Gi", ""},
                          {"frequency", "frequency", 4, 480.0, "1Gi", ""}};

    // The built-in progress and completion detectors, plus ours with a 10-minute limit.
    es::Monitor<es::ProgressDetector, es::CompletionDetector, StallDetector> monitor(
        ctx, es::SentinelSettings{}, es::ProgressDetector{}, es::CompletionDetector{}, StallDetector(10min));

    const auto t0 = es::Clock::now();
    // sifting (procId 1) runs and finishes
    auto sifting = task_pod("jobczr2t-sifting-1-1", "2wzwh", kube::PodPhase::running);
    monitor.on_pod(sifting, es::ChangeKind::added, t0);
    sifting.phase = kube::PodPhase::succeeded;
    monitor.on_pod(sifting, es::ChangeKind::modified, t0 + 5s);
    // frequency-2 cannot pull its image; frequency-3 waits for a node
    auto frequency2 = task_pod("jobulwsfh-frequency-2-1", "hjj6m", kube::PodPhase::pending);
    frequency2.containers[0].state.kind = kube::ContainerState::Kind::waiting;
    frequency2.containers[0].state.reason = "ImagePullBackOff";
    monitor.on_pod(frequency2, es::ChangeKind::added, t0 + 10s);
    monitor.on_pod(task_pod("jobk3x9a-frequency-3-1", "x7p2q", kube::PodPhase::pending), es::ChangeKind::added,
                   t0 + 10s);
    for (auto t = t0; t <= t0 + 15min; t += 1min) monitor.on_tick(t);
    monitor.on_completion_probe({true, "1\n", ""}, t0 + 16min);

    for (const auto& r : monitor.take_reports())
        std::cout << "#" << r.sequence << " " << es::to_string(r.type) << " [" << es::to_string(r.severity) << "] "
                  << r.message << "\n";
    std::cout << boost::json::serialize(es::to_json(monitor.summary(t0 + 16min))) << "\n";
    return 0;
}

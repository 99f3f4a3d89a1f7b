// Interventions against FakeCluster over real HTTPS: a real action (delete a stuck pod, suspend a Job,
// annotate with an Event), its dry run, the limits, and the guard that refuses objects that are not tasks of
// the watched run — each recorded and reported as INTERVENTION.
#include <execution_sentinel/interventions/intervener.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* ns = "wf-interventions";

struct Fixture {
    est::FakeCluster cluster{[] {
        est::FakeClusterOptions o;
        o.default_namespace = ns;
        return o;
    }()};
    est::NameSource names{7};
    std::string engine = "hyperflow-engine-7d9c5b-abcde";

    es::MonitoringContext context() const {
        es::MonitoringContext c;
        c.namespace_ = ns;
        c.engine_pod_name = engine;
        es::TaskSpec spec;
        spec.name = "frequency";
        spec.task_type = "frequency";
        c.task_inventory.push_back(spec);
        return c;
    }

    Fixture() {
        est::EnginePodOptions e;
        e.namespace_name = ns;
        e.name = engine;
        e.replica_set_hash = "7d9c5b";
        e.uid = names.uid();
        e.replica_set_uid = names.uid();
        e.created = est::WallClock::now();
        cluster.create("pods", ns, est::engine_pod(e));
    }

    /// A running task: its Job and one pod. Returns {job, pod}.
    std::pair<std::string, std::string> running_task(int proc_id) {
        est::TaskJobOptions j;
        j.namespace_name = ns;
        j.name = est::job_name("czr2t", "frequency", proc_id);
        j.uid = names.uid();
        j.created = est::WallClock::now();
        auto job = cluster.create("jobs", ns, est::task_job(j));
        est::TaskPodOptions p;
        p.name = j.name + "-" + names.pod_suffix();
        p.uid = names.uid();
        p.created = est::WallClock::now();
        auto pod = est::task_pod(job, p);
        est::pod_set_running(pod, est::WallClock::now());
        cluster.create("pods", ns, pod);
        return {j.name, p.name};
    }
};

es::Report stall(const std::string& task, const std::string& pod, const std::string& job, std::uint64_t sequence) {
    es::Report r;
    r.type = es::ReportType::ANOMALY_STALL;
    r.severity = es::Severity::error;
    r.sequence = sequence;
    r.task_name = task;
    r.message = "Task " + task + " has made no progress for 20 minutes.";
    r.details["tier"] = "HIGH";
    if (!pod.empty()) r.details["pod_name"] = pod;
    if (!job.empty()) r.details["job_name"] = job;
    return r;
}

es::InterventionSettings settings(es::InterventionAction action, bool dry_run) {
    es::InterventionSettings s;
    s.enabled = true;
    s.dry_run = dry_run;
    s.policies.push_back({.name = "stuck",
                          .on = {es::ReportType::ANOMALY_STALL},
                          .min_severity = es::Severity::warning,
                          .when = {{"tier", {"HIGH", "CRITICAL"}}},
                          .action = action});
    return s;
}

struct Outputs {
    std::vector<es::Report> reports;
    std::vector<es::InterventionRecord> records;
    es::IntervenerOutputs outputs() {
        return {.publish = [this](es::Report r) { reports.push_back(std::move(r)); },
                .record = [this](const es::InterventionRecord& r) { records.push_back(r); },
                .log = {}};
    }
};

/// Runs the intervener on each report in turn, on a fresh io_context.
void handle_all(Fixture& f, es::InterventionSettings s, Outputs& out, const std::vector<es::Report>& reports) {
    asio::io_context io;
    auto config = es::kube::load_kubeconfig_from_string(f.cluster.kubeconfig(), "fake");
    es::kube::Client client(io.get_executor(), config);
    es::Intervener intervener(client, f.context(), std::move(s), out.outputs());
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (auto& r : reports) co_await intervener.handle(r, es::Clock::now());
        },
        asio::use_future);
    io.run();
    done.get();
}

} // namespace

TEST_CASE("interventions: a stuck pod is deleted for real, once, and reported", "[integration][interventions]") {
    Fixture f;
    auto [job, pod] = f.running_task(3);
    Outputs out;
    auto report = stall("frequency-3", pod, job, 12);
    handle_all(f, settings(es::InterventionAction::delete_pod, false), out, {report, report});
    CHECK_FALSE(f.cluster.get("pods", ns, pod).has_value());
    CHECK(f.cluster.get("jobs", ns, job).has_value()); // the Job stays, to make its next attempt
    REQUIRE(out.records.size() == 1);                  // the repeated finding was not acted on again
    CHECK(out.records[0].outcome == "done");
    CHECK(out.records[0].target.name == pod);
    CHECK(out.records[0].trigger.sequence == 12);
    REQUIRE(out.reports.size() == 1);
    CHECK(out.reports[0].type == es::ReportType::INTERVENTION);
    CHECK(out.reports[0].details.at("outcome").as_string() == "done");
    CHECK(out.reports[0].details.at("dry_run").as_bool() == false);
}

TEST_CASE("interventions: a dry run changes nothing and says what it would have done", "[integration][interventions]") {
    Fixture f;
    auto [job, pod] = f.running_task(4);
    Outputs out;
    handle_all(f, settings(es::InterventionAction::delete_pod, true), out, {stall("frequency-4", pod, job, 3)});
    auto still = f.cluster.get("pods", ns, pod);
    REQUIRE(still.has_value());
    CHECK_FALSE(still->at("metadata").as_object().contains("deletionTimestamp"));
    REQUIRE(out.reports.size() == 1);
    CHECK(out.reports[0].details.at("outcome").as_string() == "dry_run");
    CHECK(out.reports[0].message.find("Would delete pod " + pod) != std::string::npos);
}

TEST_CASE("interventions: the engine and objects of other runs are never touched", "[integration][interventions]") {
    Fixture f;
    auto [job, pod] = f.running_task(5);
    Outputs out;
    handle_all(f, settings(es::InterventionAction::delete_pod, false), out,
               {stall("engine", f.engine, "", 1), stall("ghost", "jobczr2t-frequency-99-1-zzzzz", "", 2)});
    CHECK(f.cluster.get("pods", ns, f.engine).has_value());
    CHECK(f.cluster.get("pods", ns, pod).has_value());
    REQUIRE(out.records.size() == 2);
    CHECK(out.records[0].outcome == "refused");
    CHECK(out.records[0].error.find("not a task") != std::string::npos);
    CHECK(out.records[1].outcome == "refused");
    CHECK(out.records[1].error.find("no longer exists") != std::string::npos);
}

TEST_CASE("interventions: the hourly limit stops further actions, and says so once", "[integration][interventions]") {
    Fixture f;
    auto a = f.running_task(6);
    auto b = f.running_task(7);
    auto c = f.running_task(8);
    auto s = settings(es::InterventionAction::delete_pod, false);
    s.max_per_hour = 1;
    Outputs out;
    handle_all(f, s, out,
               {stall("frequency-6", a.second, a.first, 1), stall("frequency-7", b.second, b.first, 2),
                stall("frequency-7", b.second, b.first, 3), stall("frequency-8", c.second, c.first, 4)});
    CHECK_FALSE(f.cluster.get("pods", ns, a.second).has_value());
    CHECK(f.cluster.get("pods", ns, b.second).has_value());
    CHECK(f.cluster.get("pods", ns, c.second).has_value());
    REQUIRE(out.records.size() == 3); // done, limit for frequency-7 (once), limit for frequency-8
    CHECK(out.records[0].outcome == "done");
    CHECK(out.records[1].outcome == "limit_reached");
    CHECK(out.records[2].outcome == "limit_reached");
}

TEST_CASE("interventions: a Job is suspended, and an object is annotated with an Event", "[integration][interventions]") {
    Fixture f;
    auto [job, pod] = f.running_task(9);
    Outputs out;
    handle_all(f, settings(es::InterventionAction::suspend_job, false), out, {stall("frequency-9", pod, job, 5)});
    auto j = f.cluster.get("jobs", ns, job);
    REQUIRE(j.has_value());
    REQUIRE(j->at("spec").as_object().contains("suspend"));
    CHECK(j->at("spec").at("suspend").as_bool());
    REQUIRE(out.records.size() == 1);
    CHECK(out.records[0].outcome == "done");
    CHECK(out.records[0].target.kind == "Job");

    Outputs notes;
    handle_all(f, settings(es::InterventionAction::annotate, false), notes, {stall("frequency-9", pod, job, 6)});
    auto p = f.cluster.get("pods", ns, pod);
    REQUIRE(p.has_value());
    auto& annotations = p->at("metadata").at("annotations").as_object();
    CHECK(std::string(annotations.at("execution-sentinel/finding").as_string()).find("ANOMALY_STALL") == 0);
    bool event = false;
    for (auto& e : f.cluster.list("events", ns))
        if (e.at("reason").as_string() == "SentinelFinding" && e.at("involvedObject").at("name").as_string() == pod)
            event = true;
    CHECK(event);
}

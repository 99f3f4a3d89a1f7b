// Checkpoints (checkpoint.hpp): a Monitor stopped at any point of a run and resumed from its checkpoint in a new
// Monitor — after the relist a restarted watch does — makes exactly the reports of one uninterrupted Monitor, no
// report twice and none lost; what became due while nobody watched is marked late; bad checkpoints are rejected
// with the field named; pruning keeps a checkpoint under a ConfigMap's limit.
#include <execution_sentinel/checkpoint.hpp>
#include <execution_sentinel/monitor.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

es::MonitoringContext context() {
    es::MonitoringContext c;
    c.namespace_ = "wf-1000g";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    c.engine_pod_selector = "component=hyperflow-engine";
    for (int i = 0; i < 8; ++i) c.task_inventory.push_back({"individuals", "individuals", 0, 30.0, "", ""});
    c.task_inventory.push_back({"individuals_merge", "individuals_merge", 1, 10.0, "", ""});
    for (int i = 0; i < 4; ++i) c.task_inventory.push_back({"frequency", "frequency", 2, 15.0, "", ""});
    c.dag_structure = {{"individuals", {}}, {"individuals_merge", {"individuals"}}, {"frequency", {"individuals_merge"}}};
    return c;
}

struct Input {
    enum class Kind { pod, job, tick, probe } kind;
    kube::Pod pod{};
    kube::Job job{};
    es::ChangeKind change = es::ChangeKind::modified;
    double when = 0;
    std::string probe{};
};

/// One run as the watch delivers it: 8 individuals (one OOM-killed and retried, one running far too long), the
/// merge, then 4 frequency tasks of which 3 fail with exit 1 (a mass failure of the phase); the engine exits 1.
std::vector<Input> script() {
    std::vector<Input> in;
    kube::Pod engine;
    engine.meta.name = "hyperflow-engine-6c4b46d86-jdl7w";
    engine.meta.uid = "uid-engine";
    engine.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"name", "hyperflow-engine"}};
    engine.meta.owner = kube::OwnerRef{"ReplicaSet", "hyperflow-engine-6c4b46d86", "rs"};
    engine.phase = kube::PodPhase::running;
    kube::ContainerStatus hf;
    hf.name = "hyperflow";
    engine.containers = {hf};
    in.push_back({Input::Kind::pod, engine, {}, es::ChangeKind::added, 0});
    double t = 1;
    auto task = [&](const std::string& type, int proc, double duration, int exit_code, bool oom, int attempt) {
        kube::Job job;
        job.meta.name = "job8f3k2-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
        job.meta.uid = "uid-" + job.meta.name;
        job.meta.labels.items = {{"app", "hyperflow"}};
        kube::Pod pod;
        pod.meta.name = job.meta.name + "-p" + std::to_string(attempt);
        pod.meta.uid = "uid-" + pod.meta.name;
        pod.meta.creation_timestamp = at(t);
        pod.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job.meta.name}};
        pod.meta.owner = kube::OwnerRef{"Job", job.meta.name, job.meta.uid};
        kube::ContainerStatus c;
        c.name = "test";
        pod.containers.push_back(c);
        pod.phase = kube::PodPhase::pending;
        if (attempt == 1) in.push_back({Input::Kind::job, {}, job, es::ChangeKind::added, t});
        in.push_back({Input::Kind::pod, pod, {}, es::ChangeKind::added, t});
        t += 1;
        job.active = 1;
        job.start_time = at(t);
        pod.phase = kube::PodPhase::running;
        pod.start_time = at(t);
        pod.containers[0].state = {kube::ContainerState::Kind::running, "", "", 0, 0, at(t), {}};
        in.push_back({Input::Kind::pod, pod, {}, es::ChangeKind::modified, t});
        if (attempt == 1) in.push_back({Input::Kind::job, {}, job, es::ChangeKind::modified, t});
        auto started = at(t);
        t += duration;
        in.push_back({Input::Kind::tick, {}, {}, es::ChangeKind::modified, t - 1});
        pod.phase = exit_code == 0 ? kube::PodPhase::succeeded : kube::PodPhase::failed;
        pod.containers[0].state = {kube::ContainerState::Kind::terminated,
                                   oom ? "OOMKilled" : exit_code == 0 ? "Completed" : "Error", "", exit_code, 0, started,
                                   at(t)};
        in.push_back({Input::Kind::pod, pod, {}, es::ChangeKind::modified, t});
        if (exit_code == 0) {
            job.active = 0;
            job.succeeded = 1;
            job.completion_time = at(t);
            job.conditions = {{kube::JobCondition::Type::complete, true, "", ""}};
            in.push_back({Input::Kind::job, {}, job, es::ChangeKind::modified, t});
        } else if (!oom) {
            job.active = 0;
            job.failed = 1;
            job.conditions = {{kube::JobCondition::Type::failed, true, "BackoffLimitExceeded",
                               "Job has reached the specified backoff limit"}};
            in.push_back({Input::Kind::job, {}, job, es::ChangeKind::modified, t});
        }
        in.push_back({Input::Kind::tick, {}, {}, es::ChangeKind::modified, t});
    };
    for (int i = 1; i <= 8; ++i) {
        if (i == 3) {
            task("individuals", i, 20, 137, true, 1); // OOM-killed, then retried and succeeds
            task("individuals", i, 25, 0, false, 2);
        } else {
            task("individuals", i, i == 6 ? 400 : 28, 0, false, 1); // individuals-6 runs far too long
        }
    }
    task("individuals_merge", 9, 9, 0, false, 1);
    for (int i = 10; i <= 13; ++i) task("frequency", i, 5, i == 13 ? 0 : 1, false, 1);
    for (int k = 0; k < 5; ++k) in.push_back({Input::Kind::tick, {}, {}, es::ChangeKind::modified, t + k * 30.0});
    Input probe{Input::Kind::probe};
    probe.when = t + 200;
    probe.probe = "1\n";
    in.push_back(probe);
    return in;
}

void apply(es::DefaultMonitor& m, const Input& i) {
    switch (i.kind) {
    case Input::Kind::pod: m.on_pod(i.pod, i.change, at(i.when)); break;
    case Input::Kind::job: m.on_job(i.job, i.change, at(i.when)); break;
    case Input::Kind::tick: m.on_tick(at(i.when)); break;
    case Input::Kind::probe: m.on_completion_probe({true, i.probe, ""}, at(i.when)); break;
    }
}

es::FeedHealth healthy(double when) {
    es::FeedHealth h;
    h.known = true;
    h.healthy_since = at(when);
    return h;
}

es::FeedHealth resyncing() {
    es::FeedHealth h;
    h.known = true;
    h.tasks_fresh = false;
    h.all_healthy = false;
    h.unhealthy = {"pods", "jobs"};
    return h;
}

/// What a restarted watch lists at input index `k`: the newest version of every object not deleted.
std::vector<Input> relist(const std::vector<Input>& in, std::size_t k, double when) {
    std::map<std::string, Input> alive;
    for (std::size_t i = 0; i < k; ++i) {
        if (in[i].kind == Input::Kind::pod) alive["pod/" + in[i].pod.meta.name] = in[i];
        if (in[i].kind == Input::Kind::job) alive["job/" + in[i].job.meta.name] = in[i];
    }
    std::vector<Input> out;
    for (auto& [name, i] : alive) {
        if (i.change == es::ChangeKind::deleted) continue;
        Input copy = i;
        copy.change = es::ChangeKind::added;
        copy.when = when;
        out.push_back(copy);
    }
    return out;
}

std::vector<es::Report> uninterrupted(const std::vector<Input>& in) {
    es::DefaultMonitor m(context(), es::SentinelSettings{});
    m.on_feed_health(healthy(0), at(0));
    std::vector<es::Report> out;
    for (auto& i : in) {
        apply(m, i);
        for (auto& r : m.take_reports()) out.push_back(std::move(r));
    }
    return out;
}

/// Stopped after input `k` (its checkpoint through text, as a store keeps it), resumed in a new monitor that
/// relists and goes on: the reports of both.
std::vector<es::Report> restarted_at(const std::vector<Input>& in, std::size_t k, std::vector<es::Report>* second = nullptr) {
    std::vector<es::Report> out;
    std::string saved;
    {
        es::DefaultMonitor a(context(), es::SentinelSettings{});
        a.on_feed_health(healthy(0), at(0));
        for (std::size_t i = 0; i < k; ++i) {
            apply(a, in[i]);
            for (auto& r : a.take_reports()) out.push_back(std::move(r));
        }
        saved = boost::json::serialize(a.checkpoint(at(k ? in[k - 1].when : 0)));
    }
    es::DefaultMonitor b(context(), es::SentinelSettings{});
    const double when = k ? in[k - 1].when : 0;
    b.restore(boost::json::parse(saved).as_object(), at(when));
    b.on_feed_health(resyncing(), at(when));
    auto take = [&] {
        for (auto& r : b.take_reports()) {
            if (second) second->push_back(r);
            out.push_back(std::move(r));
        }
    };
    for (auto& i : relist(in, k, when)) {
        apply(b, i);
        take();
    }
    b.on_feed_health(healthy(when), at(when));
    b.on_tick(at(when));
    take();
    for (std::size_t i = k; i < in.size(); ++i) {
        apply(b, in[i]);
        take();
    }
    return out;
}

std::multiset<std::string> keys(const std::vector<es::Report>& rs) {
    std::multiset<std::string> out;
    for (auto& r : rs) out.insert(r.key);
    return out;
}

} // namespace

TEST_CASE("checkpoint: a monitor resumed at any point makes exactly the reports of an uninterrupted one", "[checkpoint]") {
    const auto in = script();
    const auto whole = uninterrupted(in);
    const auto expected = keys(whole);
    // the run shows what a restart must not lose or repeat
    auto has = [&](es::ReportType t) {
        for (auto& r : whole)
            if (r.type == t) return true;
        return false;
    };
    REQUIRE(has(es::ReportType::ANOMALY_OOMKILL));
    REQUIRE(has(es::ReportType::ANOMALY_STRAGGLER));
    REQUIRE(has(es::ReportType::MASS_FAILURE));
    REQUIRE(has(es::ReportType::ANOMALY_TASK_FAILED));
    REQUIRE(has(es::ReportType::COMPLETION));
    REQUIRE(std::set<std::string>(expected.begin(), expected.end()).size() == expected.size());

    for (std::size_t k = 0; k <= in.size(); ++k) {
        INFO("stopped after input " << k << " of " << in.size());
        auto got = keys(restarted_at(in, k));
        CHECK(got == expected);
    }
}

TEST_CASE("checkpoint: the summary of a resumed monitor counts what was reported before the restart", "[checkpoint]") {
    const auto in = script();
    es::DefaultMonitor whole(context(), es::SentinelSettings{});
    for (auto& i : in) apply(whole, i);
    const auto k = in.size() / 2;
    std::string saved;
    {
        es::DefaultMonitor a(context(), es::SentinelSettings{});
        for (std::size_t i = 0; i < k; ++i) apply(a, in[i]);
        a.take_reports();
        saved = boost::json::serialize(a.checkpoint(at(in[k - 1].when)));
    }
    es::DefaultMonitor b(context(), es::SentinelSettings{});
    b.restore(boost::json::parse(saved).as_object(), at(500));
    CHECK(b.resumed());
    for (auto& i : relist(in, k, in[k - 1].when)) apply(b, i);
    for (std::size_t i = k; i < in.size(); ++i) apply(b, in[i]);
    auto s1 = whole.summary(at(10'000));
    auto s2 = b.summary(at(10'000));
    CHECK(s2.reports == s1.reports);
    CHECK(s2.completed_tasks == s1.completed_tasks);
    CHECK(s2.failed_tasks == s1.failed_tasks);
    CHECK(s2.duration_seconds == s1.duration_seconds); // counted from the first start, not the restart
    CHECK(s2.exit_code == s1.exit_code);
    CHECK(s2.mass_failure == s1.mass_failure);
}

TEST_CASE("checkpoint: what happened while nobody watched is reported once, marked late", "[checkpoint]") {
    const auto in = script();
    // stop before the OOM kill of individuals-3, come back after its retry started
    std::size_t stop = 0, back = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i].kind == Input::Kind::pod && in[i].pod.meta.name.find("-3-1-p1") != std::string::npos &&
            in[i].pod.phase == kube::PodPhase::running)
            stop = i + 1;
        if (in[i].kind == Input::Kind::pod && in[i].pod.meta.name.find("-3-1-p2") != std::string::npos &&
            in[i].pod.phase == kube::PodPhase::running) {
            back = i + 1;
            break;
        }
    }
    REQUIRE(stop > 0);
    REQUIRE(back > stop);
    std::string saved;
    std::vector<es::Report> before;
    {
        es::DefaultMonitor a(context(), es::SentinelSettings{});
        for (std::size_t i = 0; i < stop; ++i) {
            apply(a, in[i]);
            for (auto& r : a.take_reports()) before.push_back(r);
        }
        saved = boost::json::serialize(a.checkpoint(at(in[stop - 1].when)));
    }
    es::DefaultMonitor b(context(), es::SentinelSettings{});
    const double when = in[back - 1].when + 5;
    b.restore(boost::json::parse(saved).as_object(), at(when));
    b.on_feed_health(resyncing(), at(when));
    for (auto& i : relist(in, back, when)) apply(b, i);
    auto late = b.take_reports();
    b.on_feed_health(healthy(when), at(when));
    b.on_tick(at(when));
    b.take_reports();
    CHECK_FALSE(b.catching_up());
    int ooms = 0;
    for (auto& r : late) {
        CHECK(r.details.contains("late"));
        CHECK(r.sequence > before.back().sequence); // numbering goes on
        if (r.type == es::ReportType::ANOMALY_OOMKILL) ++ooms;
    }
    CHECK(ooms >= 1);
    for (auto& r : before) CHECK_FALSE(r.details.contains("late"));
    // later reports are on time again
    for (std::size_t i = back; i < in.size(); ++i) {
        apply(b, in[i]);
        for (auto& r : b.take_reports()) CHECK_FALSE(r.details.contains("late"));
    }
}

TEST_CASE("checkpoint: a bad checkpoint is rejected with the field named, and changes nothing", "[checkpoint]") {
    const auto in = script();
    es::DefaultMonitor a(context(), es::SentinelSettings{});
    for (std::size_t i = 0; i < in.size() / 2; ++i) apply(a, in[i]);
    const auto good = a.checkpoint(at(100));

    auto rejects = [&](boost::json::object cp, const std::string& field) {
        es::DefaultMonitor b(context(), es::SentinelSettings{});
        try {
            b.restore(cp, at(200));
            FAIL("accepted a checkpoint with a bad " << field);
        } catch (const es::CheckpointError& e) {
            CHECK(std::string(e.what()).find(field) != std::string::npos);
        }
        CHECK_FALSE(b.resumed());
        CHECK(b.sink().last_sequence() == 0);
    };
    auto cp = good;
    cp["version"] = 99;
    rejects(cp, "version");
    cp = good;
    cp["context_digest"] = "0000000000000000";
    rejects(cp, "context_digest");
    cp = good;
    cp["ledger"] = boost::json::array{1, 2};
    rejects(cp, "ledger");
    cp = good;
    cp["tasks"].as_array()[0].as_object()["status"] = "exploded";
    rejects(cp, "tasks[0].status");
    cp = good;
    cp["tasks"].as_array()[0].as_object()["pods"] = "not a list";
    rejects(cp, "tasks[0].pods");
    cp = good;
    cp["detectors"].as_object()["stall"].as_object()["reported_tier"] = 17;
    rejects(cp, "detectors.stall.reported_tier");
    cp = good;
    cp["counts"] = boost::json::object{{"NO_SUCH_TYPE", 1}};
    rejects(cp, "counts");

    // another context: another digest
    auto other = context();
    other.task_inventory.pop_back();
    es::DefaultMonitor c(other, es::SentinelSettings{});
    CHECK_THROWS_AS(c.restore(good, at(200)), es::CheckpointError);
}

TEST_CASE("checkpoint: detector state survives — an open outage and a reported stall tier", "[checkpoint]") {
    es::SentinelSettings settings;
    settings.stall_threshold = 60s;
    es::DefaultMonitor a(context(), settings);
    const auto in = script();
    for (std::size_t i = 0; i < 12; ++i) apply(a, in[i]);
    for (int i = 0; i < 3; ++i) a.on_api_call(false, "watch pods", "connection refused", at(40 + i));
    a.on_tick(at(200)); // no progress for far more than 60 s: LOW, then MEDIUM
    auto first = a.take_reports();
    int losses = 0, stalls = 0;
    for (auto& r : first) {
        losses += r.type == es::ReportType::CONNECTIVITY_LOSS;
        stalls += r.type == es::ReportType::ANOMALY_STALL;
    }
    REQUIRE(losses == 1);
    REQUIRE(stalls >= 1);
    auto saved = boost::json::serialize(a.checkpoint(at(200)));

    es::DefaultMonitor b(context(), settings);
    b.restore(boost::json::parse(saved).as_object(), at(210));
    CHECK(b.detector<es::ConnectivityDetector>().lost());
    CHECK(b.detector<es::ConnectivityDetector>().outages() == 1);
    CHECK(b.detector<es::StallDetector>().current_tier() == a.detector<es::StallDetector>().current_tier());
    b.on_tick(at(210));
    for (auto& r : b.take_reports()) CHECK(r.type != es::ReportType::ANOMALY_STALL); // no tier said twice
    // contact is back: the outage open at the restart is reported restored, once, as the same outage
    b.on_feed_health(healthy(220), at(220));
    b.on_api_call(true, "watch pods", at(221));
    b.on_tick(at(222));
    int restored = 0;
    for (auto& r : b.take_reports())
        if (r.type == es::ReportType::CONNECTIVITY_RESTORED) {
            ++restored;
            CHECK(r.details.at("outage").as_int64() == 1);
        }
    CHECK(restored == 1);
}

TEST_CASE("checkpoint: pruning keeps a checkpoint under the limit, anomalies first", "[checkpoint]") {
    es::MonitoringContext c = context();
    es::DefaultMonitor a(c, es::SentinelSettings{});
    for (auto& i : script()) apply(a, i);
    auto cp = a.checkpoint(at(1000));
    const auto full = boost::json::serialize(cp).size();

    auto generous = cp;
    auto r0 = es::prune_checkpoint(generous, full + 1);
    CHECK(r0.pruned.empty());
    CHECK(r0.fits);
    CHECK(generous == cp);

    auto tight = cp;
    auto r1 = es::prune_checkpoint(tight, full / 2);
    CHECK_FALSE(r1.pruned.empty());
    CHECK(r1.bytes == boost::json::serialize(tight).size());
    std::size_t anomalies = 0, anomalies_after = 0; // anomalies are never pruned
    for (auto& k : cp["ledger"].as_array()) anomalies += !k.as_string().starts_with("TASK_");
    for (auto& k : tight["ledger"].as_array()) anomalies_after += !k.as_string().starts_with("TASK_");
    CHECK(anomalies_after == anomalies);
    // a pruned checkpoint is still a valid one
    es::DefaultMonitor b(c, es::SentinelSettings{});
    CHECK_NOTHROW(b.restore(tight, at(1001)));

    auto impossible = cp;
    auto r2 = es::prune_checkpoint(impossible, 10);
    CHECK_FALSE(r2.fits);
}

TEST_CASE("checkpoint: the memory store and the type-erased store", "[checkpoint]") {
    auto mem = std::make_shared<es::MemoryCheckpointStore>();
    es::AnyCheckpointStore any(mem);
    CHECK(static_cast<bool>(any));
    CHECK_FALSE(static_cast<bool>(es::AnyCheckpointStore{}));
    any.save("ns/engine", boost::json::object{{"a", 1}});
    any.save("ns/engine", boost::json::object{{"a", 2}});
    CHECK(mem->saves() == 2);
    REQUIRE(mem->load("ns/engine"));
    CHECK(mem->load("ns/engine")->at("a").as_int64() == 2);
    CHECK_FALSE(mem->load("other"));
    CHECK(es::checkpoint_key(context()) == "wf-1000g/hyperflow-engine-6c4b46d86-jdl7w");
}

TEST_CASE("checkpoint: an attempt that ran while nobody watched still gets its TASK_STARTED", "[checkpoint]") {
    const auto in = script();
    // the first attempt of the first task, pending, then seen only once it has finished
    std::vector<Input> pending, finished;
    for (auto& i : in)
        if (i.kind == Input::Kind::pod && i.pod.meta.name.find("-1-1-p1") != std::string::npos) {
            if (i.pod.phase == kube::PodPhase::pending) pending.push_back(i);
            if (i.pod.phase == kube::PodPhase::succeeded) finished.push_back(i);
        }
    REQUIRE(pending.size() == 1);
    REQUIRE(finished.size() == 1);
    es::DefaultMonitor m(context(), es::SentinelSettings{});
    apply(m, pending[0]);
    m.take_reports();
    apply(m, finished[0]);
    std::vector<std::string> lifecycle;
    for (auto& r : m.take_reports())
        if (es::is_lifecycle(r.type)) lifecycle.push_back(std::string(es::to_string(r.type)));
    CHECK(lifecycle == std::vector<std::string>{"TASK_STARTED", "TASK_COMPLETED"});
}

// HyperFlow object builders, the scenario model, its JSON parser and timeline, and the runner against an
// in-memory cluster double (no sockets).
#include <execution_sentinel/testing/scenario.hpp>

#include "catch.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace es = execution_sentinel::testing;
namespace json = boost::json;

namespace {

std::string str(const json::value& v, std::initializer_list<std::string_view> path) {
    const json::value* cur = &v;
    for (auto k : path) {
        if (!cur->is_object()) return "<not an object>";
        cur = cur->as_object().if_contains(k);
        if (!cur) return "<missing>";
    }
    return cur->is_string() ? std::string(cur->get_string()) : json::serialize(*cur);
}

const json::object& first_container_status(const json::object& pod) {
    return pod.at("status").at("containerStatuses").as_array().at(0).as_object();
}

bool has_condition(const json::object& obj, std::string_view type, std::string_view status) {
    auto* st = obj.if_contains("status");
    if (!st) return false;
    auto* cs = st->as_object().if_contains("conditions");
    if (!cs) return false;
    for (auto& c : cs->as_array())
        if (c.at("type").as_string() == type && c.at("status").as_string() == status) return true;
    return false;
}

/// An in-memory cluster with FakeCluster's object, file, log and fault functions.
struct ClusterDouble {
    std::map<std::string, json::object> objects; // "resource/name"
    std::map<std::string, std::string> files;    // "pod:path"
    std::map<std::string, std::vector<std::string>> logs; // "pod/container"
    std::vector<std::string> faults;
    int uid_counter = 0;

    static std::string key(std::string_view r, std::string_view n) { return std::string(r) + "/" + std::string(n); }
    json::object create(std::string_view r, std::string_view ns, json::object obj) {
        std::string name(obj.at("metadata").at("name").as_string());
        if (objects.count(key(r, name))) throw std::runtime_error("already exists: " + name);
        // Like the apiserver: assign the uid.
        obj["metadata"].as_object()["uid"] = "uid-" + std::to_string(++uid_counter);
        obj["metadata"].as_object()["namespace"] = ns;
        objects[key(r, name)] = obj;
        return obj;
    }
    json::object modify(std::string_view r, std::string_view, std::string_view name,
                        const std::function<void(json::object&)>& f) {
        auto it = objects.find(key(r, name));
        if (it == objects.end()) throw std::runtime_error("not found: " + std::string(name));
        f(it->second);
        return it->second;
    }
    bool remove(std::string_view r, std::string_view, std::string_view name) { return objects.erase(key(r, name)) > 0; }
    std::optional<json::object> get(std::string_view r, std::string_view, std::string_view name) const {
        auto it = objects.find(key(r, name));
        if (it == objects.end()) return std::nullopt;
        return it->second;
    }
    std::vector<json::object> list(std::string_view r) const {
        std::vector<json::object> out;
        for (auto& [k, v] : objects)
            if (k.rfind(std::string(r) + "/", 0) == 0) out.push_back(v);
        return out;
    }
    void write_file(std::string_view, std::string_view pod, std::string path, std::string content) {
        if (!objects.count(key("pods", pod))) throw std::runtime_error("no pod " + std::string(pod));
        files[std::string(pod) + ":" + path] = std::move(content);
    }
    void remove_file(std::string_view, std::string_view pod, std::string_view path) {
        files.erase(std::string(pod) + ":" + std::string(path));
    }
    void append_log(std::string_view, std::string_view pod, std::string_view container, std::string line) {
        logs[std::string(pod) + "/" + std::string(container)].push_back(std::move(line));
    }
    void close_watches() { faults.push_back("close_watches"); }
    void fail_next_requests(int n, int status, std::optional<int> ra) {
        faults.push_back("fail_next " + std::to_string(n) + " " + std::to_string(status) + " " +
                         (ra ? std::to_string(*ra) : "-"));
    }
    void refuse_connections(std::chrono::milliseconds d) { faults.push_back("refuse " + std::to_string(d.count())); }
    void compact() { faults.push_back("compact"); }
    void delay_responses(std::chrono::milliseconds d) { faults.push_back("delay " + std::to_string(d.count())); }
    void send_raw_watch_line(std::string b) { faults.push_back("raw " + b); }
    void stall_watches(bool s) { faults.push_back(s ? "stall" : "unstall"); }

    std::vector<json::object> events_about(std::string_view name) const {
        std::vector<json::object> out;
        for (auto& e : list("events"))
            if (e.at("involvedObject").at("name").as_string() == name) out.push_back(e);
        return out;
    }
};

using Runner = es::BasicScenarioRunner<ClusterDouble>;

es::WallTime fixed_base() { return es::WallTime{} + std::chrono::hours(24 * 365 * 56); } // ~2026

std::string source_path(std::string_view rel) { return std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/" + std::string(rel); }

} // namespace

// ------------------------------------------------------------------------------------------------ names

TEST_CASE("HyperFlow job names follow k8sJobSubmit and parse back", "[testing][hyperflow]") {
    CHECK(es::job_name("czr2t", "sifting", 10) == "jobczr2t-sifting-10-1");
    CHECK(es::job_name("ulwsfh", "frequency", 38, 1) == "jobulwsfh-frequency-38-1");
    CHECK(es::job_name("ab12", "individuals_merge", 3) == "jobab12-individuals-merge-3-1");
    CHECK(es::job_name("AB.12", "Mutation_Overlap!", 7, 2) == "jobab12-mutation-overlap-7-2");

    auto p = es::parse_job_name("jobab12-individuals-merge-3-1");
    REQUIRE(p);
    CHECK(p->fragment == "ab12");
    CHECK(p->task_type == "individuals_merge");
    CHECK(p->proc_id == 3);
    CHECK(p->firing_id == 1);

    es::NameSource names(7);
    for (std::string type : {"individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency"}) {
        int proc = static_cast<int>(names.below(500)) + 1;
        auto name = es::job_name(names.job_fragment(), type, proc);
        CAPTURE(name);
        auto parsed = es::parse_job_name(name);
        REQUIRE(parsed);
        CHECK(parsed->task_type == type);
        CHECK(parsed->proc_id == proc);
        CHECK(parsed->firing_id == 1);
    }
    CHECK_FALSE(es::parse_job_name("hyperflow-engine-6c4b46d86-jdl7w"));
    CHECK_FALSE(es::parse_job_name("nfs-data"));
    CHECK_FALSE(es::parse_job_name("tabix-extract"));
    CHECK_FALSE(es::parse_job_name("jobczr2t-sifting-10-"));
    CHECK_FALSE(es::parse_job_name("jobczr2t-10-1"));
}

TEST_CASE("NameSource is deterministic and uses Kubernetes alphabets", "[testing][hyperflow]") {
    es::NameSource a(42), b(42), c(43);
    std::string sa, sb, sc;
    for (int i = 0; i < 20; ++i) {
        sa += a.pod_suffix() + a.job_fragment() + a.uid();
        sb += b.pod_suffix() + b.job_fragment() + b.uid();
        sc += c.pod_suffix() + c.job_fragment() + c.uid();
    }
    CHECK(sa == sb);
    CHECK(sa != sc);
    es::NameSource n(1);
    for (int i = 0; i < 200; ++i) {
        auto suffix = n.pod_suffix();
        REQUIRE(suffix.size() == 5);
        CHECK(suffix.find_first_not_of("bcdfghjklmnpqrstvwxz2456789") == std::string::npos);
        auto frag = n.job_fragment();
        CHECK(frag.size() >= 4);
        CHECK(frag.size() <= 6);
        auto uid = n.uid();
        REQUIRE(uid.size() == 36);
        CHECK(uid[14] == '4');
        CHECK(uid[8] == '-');
        auto hash = n.replica_set_hash();
        CHECK((hash.size() == 9 || hash.size() == 10));
    }
}

TEST_CASE("timestamps are RFC 3339 UTC", "[testing][hyperflow]") {
    es::WallTime t = es::WallTime{} + std::chrono::seconds(1771841700) + std::chrono::microseconds(123456);
    CHECK(es::rfc3339(t) == "2026-02-23T10:15:00Z");
    CHECK(es::rfc3339_micro(t) == "2026-02-23T10:15:00.123456Z");
}

// ------------------------------------------------------------------------------------------------ objects

TEST_CASE("task Job and Pod have HyperFlow's labels, owner and spec", "[testing][hyperflow]") {
    es::TaskJobOptions o;
    o.namespace_name = "wf-1000g-20260806-151759";
    o.name = "jobczr2t-sifting-10-1";
    o.uid = "11111111-2222-4333-8444-555555555555";
    o.created = fixed_base();
    o.task_id = "J7rLf9D0i:2:10:1";
    auto job = es::task_job(o);
    CHECK(str(job, {"apiVersion"}) == "batch/v1");
    CHECK(str(job, {"kind"}) == "Job");
    CHECK(job.at("metadata").at("labels").as_object().size() == 1);
    CHECK(str(job, {"metadata", "labels", "app"}) == "hyperflow");
    CHECK(job.at("spec").at("backoffLimit").as_int64() == 6);
    auto& container = job.at("spec").at("template").at("spec").at("containers").as_array().at(0).as_object();
    CHECK(container.at("name").as_string() == "test");
    CHECK_FALSE(container.at("resources").as_object().contains("limits"));
    CHECK(str(job, {"spec", "template", "spec", "restartPolicy"}) == "Never");
    CHECK(json::serialize(container.at("command")).find("J7rLf9D0i:2:10:1") != std::string::npos);

    es::TaskPodOptions po;
    po.name = o.name + "-2wzwh";
    po.uid = "pod-uid";
    po.created = fixed_base();
    auto pod = es::task_pod(job, po);
    CHECK(str(pod, {"metadata", "labels", "app"}) == "hyperflow");
    CHECK(str(pod, {"metadata", "labels", "job-name"}) == o.name);
    CHECK(str(pod, {"metadata", "labels", "batch.kubernetes.io/job-name"}) == o.name);
    CHECK(str(pod, {"metadata", "labels", "controller-uid"}) == o.uid);
    CHECK(str(pod, {"metadata", "labels", "batch.kubernetes.io/controller-uid"}) == o.uid);
    auto& owner = pod.at("metadata").at("ownerReferences").as_array().at(0).as_object();
    CHECK(owner.at("kind").as_string() == "Job");
    CHECK(owner.at("name").as_string() == o.name);
    CHECK(owner.at("uid").as_string() == o.uid);
    CHECK(owner.at("controller").as_bool());
    CHECK(str(pod, {"status", "phase"}) == "Pending");
    CHECK(str(pod, {"spec", "containers"}).find("\"test\"") != std::string::npos);

    SECTION("lifecycle: creating, running, succeeded") {
        es::pod_set_creating(pod, fixed_base());
        CHECK(str(first_container_status(pod), {"state", "waiting", "reason"}) == "ContainerCreating");
        CHECK(has_condition(pod, "PodScheduled", "True"));
        es::pod_set_running(pod, fixed_base() + std::chrono::seconds(5));
        CHECK(es::pod_phase(pod) == "Running");
        CHECK(str(first_container_status(pod), {"state", "running", "startedAt"}) ==
              es::rfc3339(fixed_base() + std::chrono::seconds(5)));
        CHECK(first_container_status(pod).at("ready").as_bool());
        CHECK(has_condition(pod, "Ready", "True"));
        es::pod_set_terminated(pod, fixed_base() + std::chrono::seconds(5), fixed_base() + std::chrono::seconds(9), 0);
        CHECK(es::pod_phase(pod) == "Succeeded");
        auto& term = first_container_status(pod).at("state").at("terminated").as_object();
        CHECK(term.at("reason").as_string() == "Completed");
        CHECK(term.at("exitCode").as_int64() == 0);
        CHECK(term.at("finishedAt").as_string() == es::rfc3339(fixed_base() + std::chrono::seconds(9)));
        CHECK(has_condition(pod, "Ready", "False"));
    }
    SECTION("OOM kill") {
        es::pod_set_running(pod, fixed_base());
        es::pod_set_terminated(pod, fixed_base(), fixed_base() + std::chrono::seconds(3), 137, "OOMKilled");
        CHECK(es::pod_phase(pod) == "Failed");
        CHECK(str(first_container_status(pod), {"state", "terminated", "reason"}) == "OOMKilled");
        CHECK(first_container_status(pod).at("state").at("terminated").at("exitCode").as_int64() == 137);
    }
    SECTION("image pull and scheduling failures") {
        es::pod_set_waiting(pod, fixed_base(), "ImagePullBackOff", "Back-off pulling image");
        CHECK(es::pod_phase(pod) == "Pending");
        CHECK(str(first_container_status(pod), {"state", "waiting", "reason"}) == "ImagePullBackOff");
        es::pod_set_unschedulable(pod, fixed_base(), "0/1 nodes are available");
        CHECK(has_condition(pod, "PodScheduled", "False"));
        CHECK(str(pod.at("status").at("conditions").as_array().at(0), {"reason"}) == "Unschedulable");
        CHECK_FALSE(pod.at("status").as_object().contains("containerStatuses"));
    }
    SECTION("Job counters and terminal conditions") {
        es::job_set_counts(job, 1, 1, 0, 0, fixed_base());
        CHECK(job.at("status").at("active").as_int64() == 1);
        CHECK(str(job, {"status", "startTime"}) == es::rfc3339(fixed_base()));
        es::job_set_counts(job, 0, 0, 1, 0);
        es::job_mark_complete(job, fixed_base() + std::chrono::seconds(60));
        CHECK(has_condition(job, "Complete", "True"));
        CHECK_FALSE(has_condition(job, "Failed", "True"));
        CHECK_FALSE(job.at("status").as_object().contains("active"));
        CHECK(str(job, {"status", "completionTime"}) == es::rfc3339(fixed_base() + std::chrono::seconds(60)));
        es::job_set_counts(job, 0, 0, 0, 7);
        es::job_mark_failed(job, fixed_base());
        CHECK(has_condition(job, "Failed", "True"));
        CHECK(has_condition(job, "FailureTarget", "True"));
        CHECK_FALSE(has_condition(job, "Complete", "True"));
        CHECK(job.at("status").at("failed").as_int64() == 7);
    }
}

TEST_CASE("engine, support objects and events look like the HyperFlow deployment", "[testing][hyperflow]") {
    es::NameSource names(3);
    es::EnginePodOptions e;
    e.namespace_name = "wf";
    e.replica_set_hash = "6c4b46d86";
    e.name = es::engine_pod_name(e.replica_set_hash, "jdl7w");
    e.created = fixed_base();
    auto engine = es::engine_pod(e);
    CHECK(str(engine, {"metadata", "name"}) == "hyperflow-engine-6c4b46d86-jdl7w");
    CHECK(str(engine, {"metadata", "labels", "app"}) == "hyperflow");
    CHECK(str(engine, {"metadata", "labels", "component"}) == "hyperflow-engine");
    CHECK(str(engine, {"metadata", "labels", "name"}) == "hyperflow-engine");
    CHECK(str(engine.at("metadata").at("ownerReferences").as_array().at(0), {"kind"}) == "ReplicaSet");
    CHECK(str(engine.at("metadata").at("ownerReferences").as_array().at(0), {"name"}) == "hyperflow-engine-6c4b46d86");
    auto& containers = engine.at("spec").at("containers").as_array();
    REQUIRE(containers.size() == 2);
    CHECK(containers[0].at("name").as_string() == "hyperflow");
    CHECK(containers[1].at("name").as_string() == "hflow-tools");
    CHECK(es::pod_phase(engine) == "Running");
    CHECK(engine.at("status").at("containerStatuses").as_array().size() == 2);

    auto redis = es::redis_pod("wf", names, fixed_base());
    CHECK(str(redis, {"metadata", "labels", "name"}) == "redis");
    CHECK(str(redis, {"metadata", "labels", "app"}) == "hyperflow");
    auto nfs = es::nfs_data_job("wf", names, fixed_base(), fixed_base());
    CHECK(str(nfs, {"metadata", "labels", "role"}) == "nfs-data");
    CHECK(has_condition(nfs, "Complete", "True"));
    auto tabix = es::tabix_extract_job("wf", names, fixed_base(), fixed_base());
    CHECK(str(tabix, {"metadata", "labels", "role"}) == "tabix-extract");
    CHECK(tabix.at("spec").at("backoffLimit").as_int64() == 0);
    CHECK(str(tabix.at("spec").at("template").at("spec").at("containers").as_array().at(0), {"name"}) == "tabix");
    CHECK_FALSE(es::parse_job_name(str(nfs, {"metadata", "name"})));

    auto ev = es::event_about(engine, "Killing", "Stopping container hyperflow", "Normal", fixed_base(), names);
    CHECK(str(ev, {"involvedObject", "kind"}) == "Pod");
    CHECK(str(ev, {"involvedObject", "name"}) == e.name);
    CHECK(str(ev, {"reason"}) == "Killing");
    CHECK(str(ev, {"type"}) == "Normal");
    CHECK(ev.at("count").as_int64() == 1);
    CHECK(str(ev, {"firstTimestamp"}) == es::rfc3339(fixed_base()));
    CHECK(str(ev, {"metadata", "name"}).rfind(e.name + ".", 0) == 0);
}

// ------------------------------------------------------------------------------------------------ JSON parsing

TEST_CASE("scenario JSON parses every field", "[testing][scenario]") {
    auto s = es::Scenario::parse(R"({
        "name": "t", "namespace": "wf-1", "time_scale": 0.5, "seed": 9,
        "engine": {"name": "hyperflow-engine-7d9c8b6f5-x2x9k", "at": 0},
        "support_objects": true,
        "expected_durations": {"sifting": 4},
        "task_defaults": {"pending": 2, "duration": 3},
        "tasks": [{"type": "sifting", "proc_id": 10, "start": 1},
                  {"id": "m", "type": "mutation_overlap", "proc_id": 12, "start": 2, "duration": 50,
                   "outcome": "oom", "failed_attempts": 2, "memory_limit": "1Gi"}],
        "completion": {"at": 100, "exit_code": 0},
        "steps": [{"at": 5, "action": "fail_next", "count": 3, "status": 429, "retry_after": 1},
                  {"at": 6, "action": "write_file", "path": "/work_dir/x", "content": "y"}]
    })");
    CHECK(s.namespace_name == "wf-1");
    CHECK(s.time_scale == 0.5);
    CHECK(s.engine_pod_name() == "hyperflow-engine-7d9c8b6f5-x2x9k");
    REQUIRE(s.tasks.size() == 2);
    CHECK(s.tasks[0].effective_id() == "sifting-10");
    CHECK(s.tasks[0].pending == 2);
    CHECK(s.tasks[0].duration == 3);
    CHECK(s.tasks[1].outcome == es::TaskOutcome::oom);
    CHECK(s.tasks[1].failed_attempts == 2);
    REQUIRE(s.steps.size() == 2);
    CHECK(s.steps[0].kind == es::StepKind::fail_next);
    CHECK(s.steps[0].http_status == 429);
    CHECK(s.steps[0].retry_after == 1);
    CHECK(s.steps[1].content == "y");
    CHECK(s.completion_at == 100);
}

TEST_CASE("scenario JSON errors name the step index and the field", "[testing][scenario]") {
    auto message_of = [](std::string_view text) -> std::string {
        try {
            es::Scenario::parse(text);
        } catch (const es::ScenarioError& e) {
            return e.what();
        }
        return "<no error>";
    };
    auto contains = [](const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; };
    std::string m;
    m = message_of(R"({"steps": [{"at": 1, "action": "close_watches"}, {"at": 2, "action": "explode"}]})");
    CHECK(contains(m, "steps[1].action"));
    CHECK(contains(m, "explode"));
    m = message_of(R"({"steps": [{"at": 1, "action": "write_file", "path": 3, "content": ""}]})");
    CHECK(contains(m, "steps[0].path"));
    m = message_of(R"({"steps": [{"action": "write_file", "path": "/a"}]})");
    CHECK(contains(m, "steps[0].content"));
    m = message_of(R"({"steps": [{"at": -1, "action": "compact"}]})");
    CHECK(contains(m, "steps[0].at"));
    m = message_of(R"({"steps": [{"at": 1, "action": "compact", "colour": "red"}]})");
    CHECK(contains(m, "steps[0].colour"));
    m = message_of(R"({"steps": [{"at": 1, "action": "fail_next", "status": 200}]})");
    CHECK(contains(m, "steps[0].status"));
    m = message_of(R"({"steps": [{"at": 1, "action": "run_task"}]})");
    CHECK(contains(m, "steps[0].task"));
    m = message_of(R"({"tasks": [{"type": "sifting"}]})");
    CHECK(contains(m, "tasks[0].proc_id"));
    m = message_of(R"({"tasks": [{"type": "sifting", "proc_id": 1, "outcome": "explode"}]})");
    CHECK(contains(m, "tasks[0].outcome"));
    m = message_of(R"({"tasks": [{"type": "sifting", "proc_id": 1}, {"type": "sifting", "proc_id": 1}]})");
    CHECK(contains(m, "tasks[1].id"));
    m = message_of(R"({"time_scale": 0})");
    CHECK(contains(m, "time_scale"));
    m = message_of(R"({"time_scale": 1e-300})");
    CHECK(contains(m, "time_scale"));
    m = message_of(R"({"steps": [{"at": 1e300, "action": "compact"}]})");
    CHECK(contains(m, "steps[0].at"));
    m = message_of(R"({"steps": [{"at": 1, "action": "refuse_connections", "wall_seconds": 1e30}]})");
    CHECK(contains(m, "steps[0].wall_seconds"));
    m = message_of(R"({"time_scale": "fast"})");
    CHECK(contains(m, "time_scale"));
    m = message_of(R"({"tiem_scale": 1})");
    CHECK(contains(m, "tiem_scale"));
    m = message_of(R"({"steps": {}})");
    CHECK(contains(m, "steps"));
    m = message_of(R"({"steps": [{"at": 1, "action": "write_file")");
    CHECK(contains(m, "invalid JSON"));
    m = message_of(R"([1, 2])");
    CHECK(contains(m, "expected an object"));
    CHECK_THROWS_AS(es::Scenario::from_file("/nonexistent/scenario.json"), es::ScenarioError);
}

// ------------------------------------------------------------------------------------------------ timeline

TEST_CASE("task declarations expand into timed steps", "[testing][scenario]") {
    es::Scenario s;
    s.time_scale = 0.1;
    s.engine_at = 0;
    es::TaskDecl ok;
    ok.type = "sifting";
    ok.proc_id = 10;
    ok.start = 1;
    ok.pending = 2;
    ok.duration = 4;
    s.add_task(ok);
    es::TaskDecl oom;
    oom.type = "frequency";
    oom.proc_id = 40;
    oom.start = 0;
    oom.pending = 1;
    oom.duration = 5;
    oom.outcome = es::TaskOutcome::oom;
    s.add_task(oom);
    s.complete_at(100, 0);
    s.add(es::step::stall_watches(20, true, 2.0)); // 2 wall seconds = 20 scenario seconds at 0.1

    auto tl = s.timeline();
    REQUIRE_FALSE(tl.empty());
    for (std::size_t i = 1; i < tl.size(); ++i) CHECK(tl[i - 1].at <= tl[i].at);

    auto find = [&](std::string_view task, es::StepKind kind, int nth = 0) -> const es::Step* {
        for (auto& st : tl)
            if (st.task == task && st.kind == kind && nth-- == 0) return &st;
        return nullptr;
    };
    auto* start = find("sifting-10", es::StepKind::start_task);
    REQUIRE(start);
    CHECK(start->at == 1);
    CHECK(start->task_type == "sifting");
    CHECK(start->proc_id == 10);
    auto* run = find("sifting-10", es::StepKind::run_task);
    REQUIRE(run);
    CHECK(run->at == 3);
    auto* fin = find("sifting-10", es::StepKind::finish_task);
    REQUIRE(fin);
    CHECK(fin->at == 7);
    CHECK(fin->exit_code == 0);

    // OOM: killed after 1 + 5 s, a replacement pod 10 s later (Job backoff) that succeeds.
    auto* kill = find("frequency-40", es::StepKind::finish_task, 0);
    REQUIRE(kill);
    CHECK(kill->at == 6);
    CHECK(kill->exit_code == 137);
    CHECK(kill->reason == "OOMKilled");
    auto* retry = find("frequency-40", es::StepKind::start_task, 1);
    REQUIRE(retry);
    CHECK(retry->at == 16);
    auto* final_finish = find("frequency-40", es::StepKind::finish_task, 1);
    REQUIRE(final_finish);
    CHECK(final_finish->exit_code == 0);

    // The stall ends after 2 wall seconds.
    auto* stall_end = [&]() -> const es::Step* {
        for (auto& st : tl)
            if (st.kind == es::StepKind::stall_watches && !st.stalled) return &st;
        return nullptr;
    }();
    REQUIRE(stall_end);
    CHECK(stall_end->at == 40);

    // The completion signal is the last file write.
    auto& last_write = *std::find_if(tl.rbegin(), tl.rend(), [](auto& st) { return st.kind == es::StepKind::write_file; });
    CHECK(last_write.path == "/work_dir/.workflow-exit-code");
    CHECK(last_write.content == "0\n");
    CHECK(last_write.at == 100);
    CHECK(s.duration() == 100);
}

TEST_CASE("a failing container exhausts backoffLimit with one pod per attempt", "[testing][scenario]") {
    es::Scenario s;
    es::TaskDecl t;
    t.type = "individuals";
    t.proc_id = 2;
    t.outcome = es::TaskOutcome::fail;
    t.exit_code = 2;
    t.backoff_limit = 2;
    t.failed_attempts = 10; // clamped to backoffLimit + 1
    t.pending = 1;
    t.duration = 1;
    s.add_task(t);
    auto tl = s.timeline();
    auto count = [&](es::StepKind k) {
        return std::count_if(tl.begin(), tl.end(), [&](auto& st) { return st.kind == k && st.task == "individuals-2"; });
    };
    CHECK(count(es::StepKind::start_task) == 3);
    CHECK(count(es::StepKind::finish_task) == 3);
    std::vector<double> starts;
    for (auto& st : tl)
        if (st.kind == es::StepKind::start_task) starts.push_back(st.at);
    REQUIRE(starts.size() == 3);
    CHECK(starts[1] - starts[0] == 2 + 10); // runs 2 s, then 10 s backoff
    CHECK(starts[2] - starts[1] == 2 + 20); // then 20 s
}

TEST_CASE("the context names the engine, inventory and DAG as the conductor does", "[testing][scenario]") {
    es::Scenario s;
    s.namespace_name = "wf-1000g-20260223-101500";
    s.engine_name = "hyperflow-engine-6c4b46d86-jdl7w";
    s.time_scale = 0.05;
    s.expected_durations["frequency"] = 480;
    for (int i = 0; i < 3; ++i) {
        es::TaskDecl t;
        t.type = i == 0 ? "sifting" : "frequency";
        t.proc_id = 10 + i;
        if (i == 2) t.expected_duration = 600;
        s.add_task(t);
    }
    auto ctx = s.context();
    CHECK(str(ctx, {"namespace"}) == "wf-1000g-20260223-101500");
    CHECK(str(ctx, {"engine_pod_name"}) == "hyperflow-engine-6c4b46d86-jdl7w");
    CHECK(str(ctx, {"engine_container"}) == "hyperflow");
    CHECK(str(ctx, {"completion_signal_path"}) == "/work_dir/.workflow-exit-code");
    CHECK(str(ctx, {"task_label_selector"}) == "app=hyperflow");
    CHECK(str(ctx, {"execution_model"}) == "JOB");
    CHECK(ctx.at("agglomeration_factor").as_int64() == 1);
    auto& inv = ctx.at("task_inventory").as_array();
    REQUIRE(inv.size() == 3);
    CHECK(str(inv[0], {"task_type"}) == "sifting");
    CHECK(inv[0].at("dag_order").as_int64() == 2);
    CHECK_FALSE(inv[0].as_object().contains("expected_duration_seconds"));
    CHECK(inv[1].at("dag_order").as_int64() == 4);
    CHECK(inv[1].at("expected_duration_seconds").as_double() == 480 * 0.05);
    CHECK(inv[2].at("expected_duration_seconds").as_double() == 600 * 0.05);
    for (auto& spec : inv)
        for (auto key : {"name", "task_type", "dag_order", "memory_limit", "cpu_limit"})
            CHECK(spec.as_object().contains(key));
    auto& dag = ctx.at("dag_structure").as_object();
    CHECK(json::serialize(dag.at("sifting")) == R"(["individuals_merge"])");
    CHECK(json::serialize(dag.at("individuals")) == "[]");
    CHECK_FALSE(ctx.contains("engine_pod_selector"));
    // The serialised form parses back.
    CHECK(json::parse(s.context_json()).as_object() == ctx);
}

// ------------------------------------------------------------------------------------------------ runner

TEST_CASE("the runner drives task objects through their lifecycle", "[testing][scenario]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.05;
    s.engine_at = 0;
    es::TaskDecl ok;
    ok.type = "sifting";
    ok.proc_id = 10;
    ok.start = 10;
    ok.pending = 5;
    ok.duration = 4;
    s.add_task(ok);
    es::TaskDecl oom;
    oom.type = "mutation_overlap";
    oom.proc_id = 12;
    oom.start = 10;
    oom.pending = 5;
    oom.duration = 20;
    oom.outcome = es::TaskOutcome::oom;
    oom.backoff_limit = 0;
    s.add_task(oom);
    s.complete_at(60, 0);

    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(0);
    const std::string engine = runner.engine_pod_name();
    CHECK(engine == s.engine_pod_name());
    REQUIRE(cluster.get("pods", "wf", engine));
    CHECK_FALSE(runner.job_name_of("sifting-10"));

    runner.run_until(10);
    auto job_name = runner.job_name_of("sifting-10");
    REQUIRE(job_name);
    auto parsed = es::parse_job_name(*job_name);
    REQUIRE(parsed);
    CHECK(parsed->task_type == "sifting");
    CHECK(parsed->proc_id == 10);
    auto pods = runner.pod_names_of("sifting-10");
    REQUIRE(pods.size() == 1);
    CHECK(pods[0].rfind(*job_name + "-", 0) == 0);
    auto pod = cluster.get("pods", "wf", pods[0]);
    REQUIRE(pod);
    CHECK(es::pod_phase(*pod) == "Pending");
    auto job = cluster.get("jobs", "wf", *job_name);
    REQUIRE(job);
    CHECK(job->at("status").at("active").as_int64() == 1);
    // Controller uid labels name the uid the cluster assigned.
    CHECK(str(*pod, {"metadata", "labels", "controller-uid"}) == str(*job, {"metadata", "uid"}));
    CHECK(str(*job, {"spec", "selector", "matchLabels", "batch.kubernetes.io/controller-uid"}) ==
          str(*job, {"metadata", "uid"}));
    CHECK(str(*job, {"status", "startTime"}) == es::rfc3339(fixed_base() + std::chrono::milliseconds(500)));

    runner.run_until(15);
    CHECK(es::pod_phase(*cluster.get("pods", "wf", pods[0])) == "Running");
    CHECK(str(*cluster.get("pods", "wf", pods[0]), {"status", "containerStatuses"}).find("running") != std::string::npos);

    runner.run_until(19);
    pod = cluster.get("pods", "wf", pods[0]);
    CHECK(es::pod_phase(*pod) == "Succeeded");
    CHECK(str(first_container_status(*pod), {"state", "terminated", "reason"}) == "Completed");
    job = cluster.get("jobs", "wf", *job_name);
    CHECK(has_condition(*job, "Complete", "True"));
    CHECK(job->at("status").at("succeeded").as_int64() == 1);
    CHECK_FALSE(cluster.events_about(*job_name).empty());
    auto engine_log = cluster.logs[engine + "/hyperflow"];
    REQUIRE(engine_log.size() >= 3);
    CHECK(engine_log[0].find("[hf] task started: ") == 0);
    CHECK(std::any_of(engine_log.begin(), engine_log.end(),
                      [](auto& l) { return l.find("task finished: sifting") != std::string::npos; }));

    runner.run_until(35);
    auto oom_pods = runner.pod_names_of("mutation_overlap-12");
    REQUIRE(oom_pods.size() == 1);
    auto killed = cluster.get("pods", "wf", oom_pods[0]);
    CHECK(es::pod_phase(*killed) == "Failed");
    CHECK(first_container_status(*killed).at("state").at("terminated").at("exitCode").as_int64() == 137);
    auto oom_job = cluster.get("jobs", "wf", *runner.job_name_of("mutation_overlap-12"));
    CHECK(has_condition(*oom_job, "Failed", "True"));
    CHECK(str(oom_job->at("status").at("conditions").as_array().at(1), {"reason"}) == "BackoffLimitExceeded");

    CHECK(cluster.files.count(engine + ":/work_dir/.workflow-exit-code") == 0);
    runner.run_until(60);
    CHECK(cluster.files[engine + ":/work_dir/.workflow-exit-code"] == "0\n");
    CHECK(runner.finished());
    CHECK(runner.errors().empty());
}

TEST_CASE("the runner applies faults, engine replacement and TTL deletion", "[testing][scenario]") {
    auto s = es::Scenario::parse(R"({
        "namespace": "ns", "time_scale": 0.01, "engine": {"at": 0},
        "ttl_seconds_after_finished": 100,
        "tasks": [{"type": "individuals", "proc_id": 2, "start": 0, "pending": 1, "duration": 9}],
        "steps": [
          {"at": 1, "action": "close_watches"},
          {"at": 2, "action": "fail_next", "count": 2, "status": 429, "retry_after": 1},
          {"at": 3, "action": "refuse_connections", "wall_seconds": 1.5},
          {"at": 4, "action": "compact"},
          {"at": 5, "action": "delay_responses", "wall_milliseconds": 200, "wall_seconds": 0.5},
          {"at": 6, "action": "raw_watch_line", "bytes": "{\"type\":\"ADDED\",\"obj"},
          {"at": 7, "action": "stall_watches", "wall_seconds": 0.1},
          {"at": 30, "action": "replace_engine_pod"},
          {"at": 31, "action": "write_file", "path": "/work_dir/.workflow-exit-code", "content": "0\n"}
        ]})");
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(8);
    CHECK(cluster.faults == std::vector<std::string>{"close_watches", "fail_next 2 429 1", "refuse 1500", "compact",
                                                     "delay 200", "raw {\"type\":\"ADDED\",\"obj", "stall"});
    runner.run_until(17);
    CHECK(cluster.faults.back() == "unstall"); // 0.1 wall s = 10 scenario s after 7
    CHECK(std::find(cluster.faults.begin(), cluster.faults.end(), "delay 0") == cluster.faults.end());

    const std::string old_engine = runner.engine_pod_name();
    runner.run_until(31);
    const std::string new_engine = runner.engine_pod_name();
    CHECK(new_engine != old_engine);
    CHECK(new_engine.substr(0, new_engine.size() - 5) == old_engine.substr(0, old_engine.size() - 5));
    CHECK_FALSE(cluster.get("pods", "ns", old_engine));
    CHECK(cluster.get("pods", "ns", new_engine));
    CHECK(cluster.files[new_engine + ":/work_dir/.workflow-exit-code"] == "0\n");

    auto job = *runner.job_name_of("individuals-2");
    CHECK(cluster.get("jobs", "ns", job));
    runner.run_all(); // the Job finished at 10, deleted at 110
    CHECK(std::find(cluster.faults.begin(), cluster.faults.end(), "delay 0") != cluster.faults.end()); // 5 + 50
    CHECK_FALSE(cluster.get("jobs", "ns", job));
    CHECK_FALSE(cluster.get("pods", "ns", runner.pod_names_of("individuals-2").at(0)));
    CHECK(runner.errors().empty());
}

TEST_CASE("bad steps are reported, not thrown, and the play goes on", "[testing][scenario]") {
    es::Scenario s;
    s.add(es::step::run_task(1, "nobody"));
    s.add(es::step::write_file(2, "/work_dir/x", "1")); // no engine pod yet
    s.add(es::step::create_engine_pod(3));
    s.add(es::step::write_file(4, "/work_dir/.workflow-exit-code", "1\n"));
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    CHECK(runner.run_all() == 4);
    auto errors = runner.errors();
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].find("unknown task \"nobody\"") != std::string::npos);
    CHECK(errors[0].find("steps[0]") != std::string::npos);
    CHECK(errors[1].find("no engine pod") != std::string::npos);
    CHECK(cluster.files[s.engine_pod_name() + ":/work_dir/.workflow-exit-code"] == "1\n");
}

TEST_CASE("the runner thread plays in scaled time and stops promptly", "[testing][scenario]") {
    es::Scenario s;
    s.time_scale = 1.0;
    s.add(es::step::create_engine_pod(0));
    s.add(es::step::write_file(0.01, "/work_dir/a", "x"));
    s.add(es::step::write_file(3600, "/work_dir/b", "never")); // an hour away
    ClusterDouble cluster;
    Runner runner(cluster, s);
    runner.start();
    CHECK_THROWS_AS(runner.start(), std::logic_error);
    CHECK_FALSE(runner.wait_for(std::chrono::milliseconds(300)));
    runner.stop();
    CHECK(runner.steps_run() == 2);
    CHECK_FALSE(runner.finished());
    runner.wait(); // returns at once after stop
}

// ------------------------------------------------------------------------------------------------ shipped scenarios

TEST_CASE("the shipped scenarios parse and play without errors", "[testing][scenario]") {
    auto file = GENERATE(as<std::string>{}, "examples/scenarios/1000genome.json", "examples/scenarios/happy-small.json",
                         "examples/scenarios/oom.json", "examples/scenarios/mass-failure.json",
                         "examples/scenarios/timeout.json", "examples/scenarios/engine-restart.json",
                         "examples/scenarios/flaky-api.json", "tests/fidelity/fidelity_scenario.json");
    CAPTURE(file);
    auto s = es::Scenario::from_file(source_path(file));
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_all();
    CHECK(runner.errors().empty());
    for (auto& e : runner.errors()) INFO(e);
    auto ctx = s.context();
    CHECK(ctx.at("task_inventory").as_array().size() >= s.tasks.size() - static_cast<std::size_t>(std::count_if(
                                                           s.tasks.begin(), s.tasks.end(), [](auto& t) { return !t.in_inventory; })));
    // Every task Job name parses back to its type.
    for (auto& t : s.tasks) {
        if (t.outcome == es::TaskOutcome::never_started) continue;
        auto job = runner.job_name_of(t.effective_id());
        REQUIRE(job);
        auto parsed = es::parse_job_name(*job);
        REQUIRE(parsed);
        CHECK(parsed->task_type == t.type);
    }
    const double wall = s.duration() * s.time_scale;
    CHECK(wall < 120);
    std::string signal;
    for (auto& [k, v] : cluster.files)
        if (k.ends_with(":/work_dir/.workflow-exit-code")) signal = v;
    if (file.find("1000genome") != std::string::npos) {
        CHECK(signal == "0\n");
        CHECK(s.tasks.size() >= 30);
        CHECK(std::any_of(s.tasks.begin(), s.tasks.end(), [](auto& t) { return t.outcome == es::TaskOutcome::oom; }));
        CHECK(wall > 40);
        CHECK(wall < 80);
        std::set<std::string> types;
        for (auto& t : s.tasks) types.insert(t.type);
        CHECK(types == std::set<std::string>{"individuals", "individuals_merge", "sifting", "mutation_overlap", "frequency"});
    }
    if (file.find("timeout") != std::string::npos) CHECK(signal.empty());
    if (file.find("mass-failure") != std::string::npos) CHECK(signal == "1\n");
    if (file.find("fidelity") != std::string::npos) {
        CHECK(s.engine_pod_name() == "hyperflow-engine-7d9c8b6f5-x2x9k");
        CHECK(signal == "0\n");
    }
}

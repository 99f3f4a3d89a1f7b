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
    // metrics API and container restarts (optional for a runner's cluster)
    std::map<std::string, std::vector<es::ContainerUsage>> usage; // pod
    std::map<std::string, std::chrono::milliseconds> usage_window;
    std::vector<std::string> usage_history; // "pod container cpu_nanocores memory_bytes"
    es::MetricsApi metrics_api = es::MetricsApi::available;
    std::map<std::string, std::vector<std::string>> previous_logs; // "pod/container"
    void set_pod_usage(std::string_view, std::string_view pod, std::vector<es::ContainerUsage> c,
                       std::optional<std::chrono::milliseconds> window) {
        for (auto& u : c)
            usage_history.push_back(std::string(pod) + " " + u.name + " " + std::to_string(u.cpu_nanocores) + " " +
                                    std::to_string(u.memory_bytes));
        usage[std::string(pod)] = std::move(c);
        if (window) usage_window[std::string(pod)] = *window;
    }
    void set_metrics_api(es::MetricsApi m) { metrics_api = m; }
    void restart_container_log(std::string_view, std::string_view pod, std::string_view container) {
        const std::string key = std::string(pod) + "/" + std::string(container);
        previous_logs[key] = std::move(logs[key]);
        logs[key].clear();
    }

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
                         "examples/scenarios/flaky-api.json", "tests/fidelity/fidelity_scenario.json",
                         "examples/scenarios/failure-evicted.json", "examples/scenarios/failure-deadline.json",
                         "examples/scenarios/failure-crashloop.json", "examples/scenarios/failure-image-pull.json",
                         "examples/scenarios/failure-unschedulable.json", "examples/scenarios/failure-script-error.json",
                         "examples/scenarios/hang.json", "examples/scenarios/memory-pressure-oom.json");
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
    auto has_outcome = [&](es::TaskOutcome o) {
        return std::any_of(s.tasks.begin(), s.tasks.end(), [&](auto& t) { return t.outcome == o; });
    };
    if (file.find("failure-evicted") != std::string::npos) CHECK(has_outcome(es::TaskOutcome::evicted));
    if (file.find("failure-deadline") != std::string::npos) CHECK(has_outcome(es::TaskOutcome::deadline_exceeded));
    if (file.find("failure-crashloop") != std::string::npos) CHECK(has_outcome(es::TaskOutcome::crash_loop));
    if (file.find("failure-image-pull") != std::string::npos) CHECK(has_outcome(es::TaskOutcome::image_pull_failure));
    if (file.find("failure-unschedulable") != std::string::npos) CHECK(has_outcome(es::TaskOutcome::unschedulable));
    if (file.find("failure-script-error") != std::string::npos) {
        CHECK(has_outcome(es::TaskOutcome::script_error));
        CHECK(signal == "1\n");
    }
    if (file.find("hang") != std::string::npos) {
        CHECK(has_outcome(es::TaskOutcome::completion_lost));
        CHECK(signal.empty());
    }
    if (file.find("memory-pressure-oom") != std::string::npos) {
        // The frequency task stays at or above 90 % of its 1Gi limit for several metrics periods before its OOM kill.
        const auto& oom = *std::find_if(s.tasks.begin(), s.tasks.end(), [](auto& t) { return t.outcome == es::TaskOutcome::oom; });
        const std::string pod = runner.pod_names_of(oom.effective_id()).at(0);
        int pressured = 0;
        for (auto& line : cluster.usage_history)
            if (line.rfind(pod + " test ", 0) == 0 && std::stoll(line.substr(line.rfind(' ') + 1)) >= 0.9 * 1024 * 1024 * 1024)
                ++pressured;
        CHECK(pressured >= 4);
        CHECK(has_outcome(es::TaskOutcome::fail));
        CHECK(signal == "1\n");
    }
    if (file.find("fidelity") != std::string::npos) {
        CHECK(s.engine_pod_name() == "hyperflow-engine-7d9c8b6f5-x2x9k");
        CHECK(signal == "0\n");
    }
}

// ------------------------------------------------------------------------------------------------ failure shapes

namespace {

std::vector<std::string> reasons_of(const std::vector<json::object>& events) {
    std::vector<std::string> out;
    for (auto& e : events) out.emplace_back(e.at("reason").as_string());
    return out;
}

bool contains_reason(const std::vector<json::object>& events, std::string_view reason) {
    auto r = reasons_of(events);
    return std::find(r.begin(), r.end(), reason) != r.end();
}

const json::object* condition_of(const json::object& obj, std::string_view type) {
    auto* st = obj.if_contains("status");
    if (!st) return nullptr;
    auto* cs = st->as_object().if_contains("conditions");
    if (!cs) return nullptr;
    for (auto& c : cs->as_array())
        if (c.at("type").as_string() == type) return &c.as_object();
    return nullptr;
}

} // namespace

TEST_CASE("scenario JSON parses the failure shapes and the metrics fields", "[testing][scenario][failures]") {
    auto s = es::Scenario::parse(R"({
        "metrics": {"period": 10, "api": "forbidden"},
        "tasks": [
          {"type": "frequency", "proc_id": 1, "outcome": "evicted", "message": "node pressure", "memory_limit": "1Gi",
           "memory_start_mib": 100, "memory_peak_mib": 1000, "memory_peak_at": 30, "cpu_cores": 0.5,
           "log_tail": ["a", "b"]},
          {"type": "sifting", "proc_id": 2, "outcome": "deadline_exceeded", "active_deadline": 60},
          {"type": "individuals", "proc_id": 3, "outcome": "crash_loop", "failed_attempts": 3},
          {"type": "individuals", "proc_id": 4, "outcome": "container_waiting", "waiting_reason": "InvalidImageName"},
          {"type": "individuals", "proc_id": 5, "outcome": "node_lost", "delete_after": 40},
          {"type": "individuals", "proc_id": 6, "outcome": "completion_lost"}
        ],
        "steps": [
          {"at": 1, "action": "set_usage", "task": "frequency-1", "memory_mib": 900},
          {"at": 1, "action": "set_usage", "pod": "redis-x", "container": "redis", "cpu_cores": 0.1},
          {"at": 2, "action": "metrics_api", "state": "absent"},
          {"at": 3, "action": "evict_task", "task": "frequency-1", "message": "m"},
          {"at": 4, "action": "deadline_exceeded", "task": "sifting-2"},
          {"at": 4, "action": "fail_job", "task": "sifting-2"},
          {"at": 5, "action": "crash_container", "task": "individuals-3", "exit_code": 2},
          {"at": 6, "action": "restart_container", "task": "individuals-3"},
          {"at": 7, "action": "lose_node", "task": "individuals-5"},
          {"at": 8, "action": "delete_pod", "task": "individuals-5", "reason": "DeletionByPodGC"},
          {"at": 0, "action": "start_task", "task": "x", "type": "sifting", "proc_id": 9, "schedule": false,
           "restart_policy": "OnFailure", "active_deadline_seconds": 5}
        ]
    })");
    CHECK(s.metrics_period == 10);
    CHECK(s.metrics_api == es::MetricsApi::forbidden);
    REQUIRE(s.tasks.size() == 6);
    CHECK(s.tasks[0].outcome == es::TaskOutcome::evicted);
    CHECK(s.tasks[0].message == "node pressure");
    CHECK(s.tasks[0].memory_start_mib == 100);
    CHECK(s.tasks[0].memory_peak_mib == 1000);
    CHECK(s.tasks[0].memory_peak_at == 30);
    CHECK(s.tasks[0].cpu_cores == 0.5);
    CHECK(s.tasks[0].log_tail == std::vector<std::string>{"a", "b"});
    CHECK(s.tasks[1].outcome == es::TaskOutcome::deadline_exceeded);
    CHECK(s.tasks[1].active_deadline == 60);
    CHECK(s.tasks[2].outcome == es::TaskOutcome::crash_loop);
    CHECK(s.tasks[3].waiting_reason == "InvalidImageName");
    CHECK(s.tasks[4].delete_after == 40);
    CHECK(s.tasks[5].outcome == es::TaskOutcome::completion_lost);
    REQUIRE(s.steps.size() == 11);
    CHECK(s.steps[0].kind == es::StepKind::set_usage);
    CHECK(s.steps[0].memory_mib == 900);
    CHECK_FALSE(s.steps[0].cpu_cores);
    CHECK(s.steps[1].pod == "redis-x");
    CHECK(s.steps[1].container == "redis");
    CHECK(s.steps[2].metrics_api == es::MetricsApi::absent);
    CHECK(s.steps[3].kind == es::StepKind::evict_task);
    CHECK(s.steps[4].kind == es::StepKind::fail_job);
    CHECK(s.steps[4].reason == "DeadlineExceeded");
    CHECK(s.steps[5].reason == "BackoffLimitExceeded");
    CHECK(s.steps[6].exit_code == 2);
    CHECK(s.steps[7].kind == es::StepKind::restart_container);
    CHECK(s.steps[8].kind == es::StepKind::lose_node);
    CHECK(s.steps[9].reason == "DeletionByPodGC");
    CHECK_FALSE(s.steps[10].schedule);
    CHECK(s.steps[10].restart_policy == "OnFailure");
    CHECK(s.steps[10].active_deadline_seconds == 5);

    auto message_of = [](std::string_view text) -> std::string {
        try {
            es::Scenario::parse(text);
        } catch (const es::ScenarioError& e) {
            return e.what();
        }
        return "<no error>";
    };
    auto contains = [](const std::string& m, std::string_view part) { return m.find(part) != std::string::npos; };
    CHECK(contains(message_of(R"({"metrics": {"api": "maybe"}})"), "scenario.metrics.api"));
    CHECK(contains(message_of(R"({"metrics": {"period": 0}})"), "scenario.metrics.period"));
    CHECK(contains(message_of(R"({"metrics": {"periods": 1}})"), "scenario.metrics.periods: unknown field"));
    CHECK(contains(message_of(R"({"steps": [{"action": "set_usage", "task": "t"}]})"), "steps[0]: set_usage needs"));
    CHECK(contains(message_of(R"({"steps": [{"action": "set_usage", "task": "t", "pod": "p", "container": "c", "memory_mib": 1}]})"),
                   "steps[0]: set_usage takes"));
    CHECK(contains(message_of(R"({"steps": [{"action": "set_usage", "pod": "p", "memory_mib": 1}]})"), "steps[0].container"));
    CHECK(contains(message_of(R"({"steps": [{"action": "set_usage", "task": "t", "memory_mib": -1}]})"), "steps[0].memory_mib"));
    CHECK(contains(message_of(R"({"steps": [{"action": "metrics_api", "state": "gone"}]})"), "steps[0].state"));
    CHECK(contains(message_of(R"({"steps": [{"action": "evict_task"}]})"), "steps[0].task"));
    CHECK(contains(message_of(R"({"steps": [{"action": "crash_container", "task": "t", "exit_code": 0}]})"), "steps[0].exit_code"));
    CHECK(contains(message_of(R"({"steps": [{"action": "start_task", "task": "t", "restart_policy": "Always"}]})"),
                   "steps[0].restart_policy"));
    CHECK(contains(message_of(R"({"tasks": [{"type": "a", "proc_id": 1, "active_deadline": 0}]})"), "tasks[0].active_deadline"));
    CHECK(contains(message_of(R"({"tasks": [{"type": "a", "proc_id": 1, "memory_peak_mib": "1Gi"}]})"), "tasks[0].memory_peak_mib"));
    CHECK(contains(message_of(R"({"tasks": [{"type": "a", "proc_id": 1, "waiting_reason": ""}]})"), "tasks[0].waiting_reason"));
    CHECK(contains(message_of(R"({"tasks": [{"type": "a", "proc_id": 1, "log_tail": [1]}]})"), "tasks[0].log_tail[0]"));
    CHECK(contains(message_of(R"({"tasks": [{"type": "a", "proc_id": 1, "delete_after": -5}]})"), "tasks[0].delete_after"));
}

TEST_CASE("a memory ramp expands into usage samples every metrics period", "[testing][scenario][metrics]") {
    es::Scenario s;
    s.metrics_period = 15;
    es::TaskDecl t;
    t.type = "frequency";
    t.proc_id = 7;
    t.start = 0;
    t.pending = 5;
    t.duration = 100;
    t.outcome = es::TaskOutcome::oom;
    t.backoff_limit = 0;
    t.memory_limit = "1Gi";
    t.memory_start_mib = 200;
    t.memory_peak_mib = 1000;
    t.memory_peak_at = 40;
    t.cpu_cores = 0.75;
    s.add_task(t);
    std::vector<const es::Step*> samples;
    auto tl = s.timeline();
    for (auto& st : tl)
        if (st.kind == es::StepKind::set_usage) samples.push_back(&st);
    // The container runs from 5 to 105: samples at 5, 20, …, 95 (none at the kill itself).
    REQUIRE(samples.size() == 7);
    CHECK(samples[0]->at == 5);
    CHECK(samples[0]->memory_mib == 200);
    CHECK(samples[1]->at == 20);
    CHECK(samples[1]->memory_mib == Approx(200 + 800 * 15.0 / 40));
    CHECK(samples[3]->at == 50);
    CHECK(samples[3]->memory_mib == 1000); // the peak is reached at 40 s into the run, then flat
    CHECK(samples.back()->at == 95);
    for (auto* st : samples) CHECK(st->cpu_cores == 0.75);
    // A sample never precedes the container running.
    auto run = std::find_if(tl.begin(), tl.end(), [](auto& st) { return st.kind == es::StepKind::run_task; });
    CHECK(std::distance(tl.begin(), run) <
          std::distance(tl.begin(), std::find_if(tl.begin(), tl.end(), [](auto& st) { return st.kind == es::StepKind::set_usage; })));
    // A task without usage fields has no samples; a very long run is sampled at most 10000 times.
    es::Scenario quiet;
    es::TaskDecl plain = t;
    plain.memory_start_mib.reset();
    plain.memory_peak_mib.reset();
    plain.cpu_cores.reset();
    quiet.add_task(plain);
    auto qtl = quiet.timeline();
    CHECK(std::none_of(qtl.begin(), qtl.end(), [](auto& st) { return st.kind == es::StepKind::set_usage; }));
    es::Scenario huge;
    huge.metrics_period = 0.001;
    es::TaskDecl long_run = t;
    long_run.duration = 1e9;
    huge.add_task(long_run);
    auto htl = huge.timeline();
    CHECK(std::count_if(htl.begin(), htl.end(), [](auto& st) { return st.kind == es::StepKind::set_usage; }) <= 10001);
}

TEST_CASE("the runner reports usage and switches the metrics API", "[testing][scenario][metrics]") {
    auto s = es::Scenario::parse(R"({
        "namespace": "wf", "time_scale": 0.1, "engine": {"at": 0},
        "metrics": {"period": 10, "api": "absent"},
        "tasks": [{"type": "frequency", "proc_id": 7, "start": 0, "pending": 1, "duration": 30,
                   "memory_limit": "1Gi", "memory_start_mib": 100, "memory_peak_mib": 1000, "cpu_cores": 1}],
        "steps": [{"at": 5, "action": "metrics_api", "state": "available"},
                  {"at": 6, "action": "set_usage", "memory_mib": 300, "cpu_cores": 0.05}]
    })");
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(0);
    CHECK(cluster.metrics_api == es::MetricsApi::absent);
    runner.run_until(1);
    const std::string pod = runner.pod_names_of("frequency-7").at(0);
    REQUIRE(cluster.usage.count(pod) == 1);
    CHECK(cluster.usage[pod].at(0).name == "test");
    CHECK(cluster.usage[pod].at(0).memory_bytes == 100LL * 1024 * 1024);
    CHECK(cluster.usage[pod].at(0).cpu_nanocores == 1'000'000'000);
    CHECK(cluster.usage_window[pod] == std::chrono::milliseconds(1000)); // one period in wall time
    runner.run_until(5);
    CHECK(cluster.metrics_api == es::MetricsApi::available);
    runner.run_until(6);
    // A set_usage step without task or pod addresses the engine's hyperflow container.
    REQUIRE(cluster.usage.count(runner.engine_pod_name()) == 1);
    CHECK(cluster.usage[runner.engine_pod_name()].at(0).name == "hyperflow");
    CHECK(cluster.usage[runner.engine_pod_name()].at(0).memory_bytes == 300LL * 1024 * 1024);
    CHECK(cluster.usage[runner.engine_pod_name()].at(0).cpu_nanocores == 50'000'000);
    runner.run_until(21);
    CHECK(cluster.usage[pod].at(0).memory_bytes == static_cast<std::int64_t>(100 + 900 * 20.0 / 30) * 1024 * 1024);
    runner.run_all();
    CHECK(runner.errors().empty());
    for (auto& e : runner.errors()) INFO(e);
}

TEST_CASE("an evicted pod fails with reason Evicted, a DisruptionTarget and an Evicted event", "[testing][scenario][failures]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.1;
    s.engine_at = 0;
    es::TaskDecl t;
    t.type = "frequency";
    t.proc_id = 3;
    t.pending = 2;
    t.duration = 10;
    t.outcome = es::TaskOutcome::evicted;
    t.backoff_limit = 0;
    s.add_task(t);
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(11);
    const std::string pod_name = runner.pod_names_of("frequency-3").at(0);
    CHECK(es::pod_phase(*cluster.get("pods", "wf", pod_name)) == "Running");
    runner.run_until(12);
    auto pod = *cluster.get("pods", "wf", pod_name);
    CHECK(es::pod_phase(pod) == "Failed");
    CHECK(str(pod, {"status", "reason"}) == "Evicted");
    CHECK(str(pod, {"status", "message"}).rfind("The node was low on resource: memory.", 0) == 0);
    auto* disruption = condition_of(pod, "DisruptionTarget");
    REQUIRE(disruption);
    CHECK(disruption->at("status") == "True");
    CHECK(disruption->at("reason") == "TerminationByKubelet");
    CHECK(first_container_status(pod).at("state").at("terminated").at("exitCode") == 137);
    auto events = cluster.events_about(pod_name);
    CHECK(contains_reason(events, "Evicted"));
    CHECK(contains_reason(events, "Killing"));
    for (auto& e : events)
        if (e.at("reason") == "Evicted") CHECK(e.at("type") == "Warning");
    auto job = *cluster.get("jobs", "wf", *runner.job_name_of("frequency-3"));
    CHECK(has_condition(job, "Failed", "True"));
    CHECK(job.at("status").at("failed") == 1);
    // The log tail before the eviction is there as evidence; the engine never hears of the task again.
    auto& log = cluster.logs[pod_name + "/test"];
    REQUIRE_FALSE(log.empty());
    CHECK(log.back().find("processed 7 of 12 chunks") != std::string::npos);
    auto& engine_log = cluster.logs[runner.engine_pod_name() + "/hyperflow"];
    CHECK(engine_log.size() == 1);
    CHECK(runner.errors().empty());
}

TEST_CASE("a Job past its activeDeadlineSeconds fails with DeadlineExceeded and its pod is terminated", "[testing][scenario][failures]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.1;
    es::TaskDecl t;
    t.type = "individuals";
    t.proc_id = 1;
    t.pending = 2;
    t.duration = 100;
    t.outcome = es::TaskOutcome::deadline_exceeded;
    t.active_deadline = 30;
    s.add_task(t);
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(0);
    const std::string job_name = *runner.job_name_of("individuals-1");
    CHECK(cluster.get("jobs", "wf", job_name)->at("spec").at("activeDeadlineSeconds") == 3); // 30 scenario s at 0.1
    const std::string pod_name = runner.pod_names_of("individuals-1").at(0);
    runner.run_until(29);
    CHECK(cluster.get("pods", "wf", pod_name));
    runner.run_until(30);
    auto job = *cluster.get("jobs", "wf", job_name);
    auto* failed = condition_of(job, "Failed");
    REQUIRE(failed);
    CHECK(failed->at("reason") == "DeadlineExceeded");
    CHECK(failed->at("message") == "Job was active longer than specified deadline");
    auto* target = condition_of(job, "FailureTarget");
    REQUIRE(target);
    CHECK(target->at("reason") == "DeadlineExceeded");
    CHECK_FALSE(job.at("status").as_object().contains("active"));
    CHECK(job.at("status").at("failed") == 1);
    CHECK(contains_reason(cluster.events_about(job_name), "DeadlineExceeded"));
    CHECK(contains_reason(cluster.events_about(pod_name), "Killing"));
    CHECK_FALSE(cluster.get("pods", "wf", pod_name)); // the Job controller deleted it
    CHECK(runner.errors().empty());
}

TEST_CASE("a crash loop restarts the container with CrashLoopBackOff and BackOff events", "[testing][scenario][failures]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.1;
    es::TaskDecl t;
    t.type = "individuals";
    t.proc_id = 2;
    t.pending = 2;
    t.duration = 5;
    t.outcome = es::TaskOutcome::crash_loop;
    t.failed_attempts = 3;
    t.backoff_limit = 2;
    s.add_task(t);
    auto tl = s.timeline();
    std::vector<double> crashes, restarts;
    for (auto& st : tl) {
        if (st.kind == es::StepKind::crash_container) crashes.push_back(st.at);
        if (st.kind == es::StepKind::restart_container) restarts.push_back(st.at);
    }
    // Runs 2–7, crash; back-off 10 s; runs 17–22, crash; 20 s; runs 42–47, crash: over backoffLimit 2.
    CHECK(crashes == std::vector<double>{7, 22, 47});
    CHECK(restarts == std::vector<double>{17, 42});

    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(0);
    const std::string job_name = *runner.job_name_of("individuals-2");
    CHECK(cluster.get("jobs", "wf", job_name)->at("spec").at("template").at("spec").at("restartPolicy") == "OnFailure");
    const std::string pod_name = runner.pod_names_of("individuals-2").at(0);
    runner.run_until(7);
    auto pod = *cluster.get("pods", "wf", pod_name);
    CHECK(es::pod_phase(pod) == "Running");
    auto cs = first_container_status(pod);
    CHECK(cs.at("restartCount") == 1);
    CHECK(str(cs, {"state", "waiting", "reason"}) == "CrashLoopBackOff");
    CHECK(str(cs, {"state", "waiting", "message"}).rfind("back-off 10s restarting failed container=test pod=" + pod_name + "_wf(", 0) == 0);
    CHECK(cs.at("lastState").at("terminated").at("exitCode") == 1);
    CHECK(cs.at("lastState").at("terminated").at("reason") == "Error");
    CHECK(contains_reason(cluster.events_about(pod_name), "BackOff"));
    CHECK(cluster.logs[pod_name + "/test"].back() == "Command failed with exit code 1");
    runner.run_until(17);
    cs = first_container_status(*cluster.get("pods", "wf", pod_name));
    CHECK(cs.at("state").as_object().contains("running"));
    CHECK(cs.at("restartCount") == 1);
    CHECK(cluster.previous_logs[pod_name + "/test"].back() == "Command failed with exit code 1");
    runner.run_until(22);
    cs = first_container_status(*cluster.get("pods", "wf", pod_name));
    CHECK(cs.at("restartCount") == 2);
    CHECK(str(cs, {"state", "waiting", "message"}).rfind("back-off 20s", 0) == 0);
    runner.run_until(47);
    auto job = *cluster.get("jobs", "wf", job_name);
    auto* failed = condition_of(job, "Failed");
    REQUIRE(failed);
    CHECK(failed->at("reason") == "BackoffLimitExceeded");
    CHECK_FALSE(cluster.get("pods", "wf", pod_name));
    CHECK(runner.errors().empty());
    for (auto& e : runner.errors()) INFO(e);

    // Within the limit the container finally succeeds.
    s.tasks[0].failed_attempts = 1;
    ClusterDouble ok_cluster;
    Runner ok(ok_cluster, s, fixed_base());
    ok.run_all();
    auto ok_pod = *ok_cluster.get("pods", "wf", ok.pod_names_of("individuals-2").at(0));
    CHECK(es::pod_phase(ok_pod) == "Succeeded");
    CHECK(first_container_status(ok_pod).at("restartCount") == 1);
    CHECK(has_condition(*ok_cluster.get("jobs", "wf", *ok.job_name_of("individuals-2")), "Complete", "True"));
    CHECK(ok.errors().empty());
}

TEST_CASE("containers that can never start wait with the kubelet's reason and events", "[testing][scenario][failures]") {
    auto s = es::Scenario::parse(R"({
        "namespace": "wf", "time_scale": 0.1,
        "tasks": [
          {"type": "individuals", "proc_id": 1, "pending": 2, "outcome": "container_waiting"},
          {"type": "individuals", "proc_id": 2, "pending": 2, "outcome": "container_waiting", "waiting_reason": "InvalidImageName"},
          {"type": "individuals", "proc_id": 3, "pending": 2, "outcome": "image_pull_failure"},
          {"type": "individuals_merge", "proc_id": 4, "outcome": "unschedulable"}
        ]
    })");
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_all();
    auto pod_of = [&](const char* id) { return *cluster.get("pods", "wf", runner.pod_names_of(id).at(0)); };
    auto config = pod_of("individuals-1");
    CHECK(es::pod_phase(config) == "Pending");
    CHECK(str(first_container_status(config), {"state", "waiting", "reason"}) == "CreateContainerConfigError");
    CHECK(str(first_container_status(config), {"state", "waiting", "message"}) == "configmap \"worker-config\" not found");
    auto config_events = cluster.events_about(runner.pod_names_of("individuals-1").at(0));
    CHECK(std::any_of(config_events.begin(), config_events.end(), [](auto& e) {
        return e.at("reason") == "Failed" && e.at("message") == "Error: configmap \"worker-config\" not found";
    }));
    auto invalid = pod_of("individuals-2");
    CHECK(str(first_container_status(invalid), {"state", "waiting", "reason"}) == "InvalidImageName");
    CHECK(contains_reason(cluster.events_about(runner.pod_names_of("individuals-2").at(0)), "InspectFailed"));
    auto pull = pod_of("individuals-3");
    CHECK(str(first_container_status(pull), {"state", "waiting", "reason"}) == "ImagePullBackOff");
    CHECK(contains_reason(cluster.events_about(runner.pod_names_of("individuals-3").at(0)), "BackOff"));
    // Unschedulable: never bound, never "Scheduled", no container statuses; the scheduler's event.
    const std::string unsched_name = runner.pod_names_of("individuals_merge-4").at(0);
    auto unsched = *cluster.get("pods", "wf", unsched_name);
    CHECK_FALSE(unsched.at("spec").as_object().contains("nodeName"));
    CHECK_FALSE(unsched.at("status").as_object().contains("containerStatuses"));
    auto* scheduled = condition_of(unsched, "PodScheduled");
    REQUIRE(scheduled);
    CHECK(scheduled->at("reason") == "Unschedulable");
    auto events = cluster.events_about(unsched_name);
    CHECK(contains_reason(events, "FailedScheduling"));
    CHECK_FALSE(contains_reason(events, "Scheduled"));
    for (auto& e : events)
        if (e.at("reason") == "FailedScheduling") CHECK(e.at("source").at("component") == "default-scheduler");
    CHECK(runner.errors().empty());
}

TEST_CASE("a lost node marks the pod NodeLost, then it is deleted and the Job counts a failure", "[testing][scenario][failures]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.1;
    es::TaskDecl t;
    t.type = "sifting";
    t.proc_id = 5;
    t.pending = 2;
    t.duration = 10;
    t.outcome = es::TaskOutcome::node_lost;
    t.delete_after = 30;
    t.backoff_limit = 1;
    s.add_task(t);
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_until(12);
    const std::string pod_name = runner.pod_names_of("sifting-5").at(0);
    auto pod = *cluster.get("pods", "wf", pod_name);
    CHECK(es::pod_phase(pod) == "Running");
    CHECK(str(pod, {"status", "reason"}) == "NodeLost");
    CHECK(str(pod, {"status", "message"}) == "Node hfmaster-worker-1 which was running pod " + pod_name + " is unresponsive");
    CHECK(has_condition(pod, "Ready", "False"));
    CHECK(contains_reason(cluster.events_about(pod_name), "NodeNotReady"));
    runner.run_until(42);
    CHECK_FALSE(cluster.get("pods", "wf", pod_name));
    CHECK(contains_reason(cluster.events_about(pod_name), "TaintManagerEviction"));
    auto job = *cluster.get("jobs", "wf", *runner.job_name_of("sifting-5"));
    CHECK(job.at("status").at("failed") == 1);
    // backoffLimit 1: a replacement pod 10 s later, which succeeds.
    runner.run_all();
    REQUIRE(runner.pod_names_of("sifting-5").size() == 2);
    CHECK(has_condition(*cluster.get("jobs", "wf", *runner.job_name_of("sifting-5")), "Complete", "True"));
    CHECK(runner.errors().empty());
}

TEST_CASE("a lost completion leaves the pod Succeeded and the engine log silent", "[testing][scenario][failures]") {
    es::Scenario s;
    s.namespace_name = "wf";
    s.time_scale = 0.1;
    s.engine_at = 0;
    es::TaskDecl t;
    t.type = "frequency";
    t.proc_id = 8;
    t.outcome = es::TaskOutcome::completion_lost;
    s.add_task(t);
    es::TaskDecl script = t;
    script.proc_id = 9;
    script.outcome = es::TaskOutcome::script_error;
    s.add_task(script);
    ClusterDouble cluster;
    Runner runner(cluster, s, fixed_base());
    runner.run_all();
    CHECK(es::pod_phase(*cluster.get("pods", "wf", runner.pod_names_of("frequency-8").at(0))) == "Succeeded");
    auto& engine_log = cluster.logs[runner.engine_pod_name() + "/hyperflow"];
    CHECK(std::count_if(engine_log.begin(), engine_log.end(), [](auto& l) { return l.find("frequency-8") != std::string::npos || l.find(":8:1)") != std::string::npos; }) == 1);
    CHECK(std::none_of(engine_log.begin(), engine_log.end(), [](auto& l) { return l.find("task finished") != std::string::npos; }));
    // The script error's evidence: the pod Succeeded, its log ends with the traceback and the exit code.
    auto& script_log = cluster.logs[runner.pod_names_of("frequency-9").at(0) + "/test"];
    REQUIRE(script_log.size() >= 3);
    CHECK(script_log[script_log.size() - 3].rfind("ValueError: ", 0) == 0);
    CHECK(script_log[script_log.size() - 2] == "job exit code: 1");
    CHECK(std::any_of(engine_log.begin(), engine_log.end(), [](auto& l) { return l.find("[hf] task failed: frequency") == 0; }));
}

TEST_CASE("task pods carry limits within requests, deadlines and restart policies", "[testing][hyperflow]") {
    es::TaskJobOptions o;
    o.name = "jobabcde-frequency-7-1";
    o.uid = "uid-1";
    o.memory_limit = "256Mi";
    o.cpu_limit = "2";
    o.active_deadline_seconds = 120;
    o.restart_policy = "OnFailure";
    auto job = es::task_job(o);
    auto& container = job.at("spec").at("template").at("spec").at("containers").at(0).as_object();
    CHECK(container.at("resources").at("limits").at("memory") == "256Mi");
    CHECK(container.at("resources").at("limits").at("cpu") == "2");
    // A request above the limit would be rejected by the apiserver: it is lowered to the limit.
    CHECK(container.at("resources").at("requests").at("memory") == "256Mi");
    CHECK(container.at("resources").at("requests").at("cpu") == "0.7");
    CHECK(job.at("spec").at("activeDeadlineSeconds") == 120);
    CHECK(job.at("spec").at("template").at("spec").at("restartPolicy") == "OnFailure");
    es::TaskJobOptions plain;
    plain.name = "jobabcde-frequency-8-1";
    auto plain_job = es::task_job(plain);
    CHECK_FALSE(plain_job.at("spec").as_object().contains("activeDeadlineSeconds"));
    CHECK_FALSE(plain_job.at("spec").at("template").at("spec").at("containers").at(0).at("resources").as_object().contains("limits"));
    CHECK(es::request_within("500Mi", "1Gi") == "500Mi");
    CHECK(es::request_within("500Mi", "") == "500Mi");
}

// Matching Kubernetes objects to workflow tasks, with real HyperFlow names (HyperFlow on Kubernetes).
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/task_matching.hpp>
#include <execution_sentinel/workflow_state.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;

namespace {

const std::vector<std::string> genome_types{"individuals", "individuals_merge", "sifting", "mutation_overlap",
                                            "frequency"};

es::Timestamp at(int seconds) { return es::Timestamp{} + std::chrono::hours(490'000) + std::chrono::seconds(seconds); }

kube::ContainerStatus named_container(const std::string& name) {
    kube::ContainerStatus c;
    c.name = name;
    return c;
}

kube::Job task_job(const std::string& name) {
    kube::Job j;
    j.meta.name = name;
    j.meta.namespace_ = "wf-1000g-20260806-151759";
    j.meta.uid = "uid-" + name;
    j.meta.labels.items = {{"app", "hyperflow"}};
    j.active = 1;
    return j;
}

kube::Pod task_pod(const std::string& pod_name, const std::string& job, kube::PodPhase phase) {
    kube::Pod p;
    p.meta.name = pod_name;
    p.meta.uid = "uid-" + pod_name;
    p.meta.labels.items = {{"app", "hyperflow"}, {"batch.kubernetes.io/job-name", job}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "test";
    if (phase == kube::PodPhase::running) {
        c.state.kind = kube::ContainerState::Kind::running;
        c.state.started_at = at(0);
    }
    p.containers.push_back(c);
    return p;
}

es::MonitoringContext genome_context() {
    // CFTR-like region: 2 individuals, merge, sifting, 1 population pair (procIds 1..6 in this order)
    es::MonitoringContext c;
    c.namespace_ = "wf-1000g-20260806-151759";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    c.engine_pod_selector = "component=hyperflow-engine";
    c.task_inventory = {{"individuals", "individuals", 0, 30.0, "", ""},
                        {"individuals", "individuals", 0, 30.0, "", ""},
                        {"individuals_merge", "individuals_merge", 1, 10.0, "", ""},
                        {"sifting", "sifting", 2, 45.0, "", ""},
                        {"mutation_overlap", "mutation_overlap", 3, 20.0, "", ""},
                        {"frequency", "frequency", 4, 15.0, "1Gi", ""}};
    return c;
}

es::MatchDecision decide(const es::MonitoringContext& ctx, const kube::Pod& pod) {
    std::string storage;
    return es::DefaultTaskRule(ctx)(es::candidate_of(pod, storage));
}

} // namespace

TEST_CASE("real HyperFlow Job and pod names parse", "[matching]") {
    auto j = es::parse_job_name("jobczr2t-sifting-10-1", genome_types);
    REQUIRE(j);
    CHECK(j->task_type == "sifting");
    CHECK(j->proc_id == 10);
    CHECK(j->firing_id == std::optional<int>(1));
    CHECK_FALSE(j->legacy);
    CHECK(j->known_type);

    auto p = es::parse_pod_name("jobczr2t-sifting-10-1-2wzwh", genome_types);
    REQUIRE(p);
    CHECK(p->job_name == "jobczr2t-sifting-10-1");
    CHECK(p->task_type == "sifting");
    CHECK(p->proc_id == 10);

    auto f = es::parse_pod_name("jobulwsfh-frequency-38-1-hjj6m", genome_types);
    REQUIRE(f);
    CHECK(f->job_name == "jobulwsfh-frequency-38-1");
    CHECK(f->task_type == "frequency");
    CHECK(f->proc_id == 38);
}

TEST_CASE("individuals-merge is never read as individuals", "[matching]") {
    auto merge = es::parse_job_name("jobk3x9a-individuals-merge-5-1", genome_types);
    REQUIRE(merge);
    CHECK(merge->task_type == "individuals_merge");
    CHECK(merge->type_slug == "individuals-merge");
    CHECK(merge->proc_id == 5);
    auto indiv = es::parse_job_name("jobk3x9a-individuals-3-1", genome_types);
    REQUIRE(indiv);
    CHECK(indiv->task_type == "individuals");
    // also without known types: dashes map back to underscores
    auto unknown = es::parse_job_name("jobq1w2e-mutation-overlap-22-1");
    REQUIRE(unknown);
    CHECK(unknown->task_type == "mutation_overlap");
    CHECK_FALSE(unknown->known_type);
    // a pod of the merge Job
    auto pod = es::parse_pod_name("jobk3x9a-individuals-merge-5-1-x7p2q", genome_types);
    REQUIRE(pod);
    CHECK(pod->task_type == "individuals_merge");
    CHECK(pod->job_name == "jobk3x9a-individuals-merge-5-1");
}

TEST_CASE("legacy names without job prefix or firing id parse", "[matching]") {
    auto l = es::parse_job_name("x1y2z-frequency-38", genome_types);
    REQUIRE(l);
    CHECK(l->legacy);
    CHECK(l->task_type == "frequency");
    CHECK(l->proc_id == 38);
    CHECK_FALSE(l->firing_id.has_value());
    auto lp = es::parse_pod_name("x1y2z-individuals-merge-7-abcde", genome_types);
    REQUIRE(lp);
    CHECK(lp->legacy);
    CHECK(lp->task_type == "individuals_merge");
    CHECK(lp->proc_id == 7);
    // a 5-digit firing id is not mistaken for a pod suffix
    auto big = es::parse_pod_name("jobabc-foo-1-12345", genome_types);
    REQUIRE(big);
    CHECK(big->firing_id == std::optional<int>(12345));
    CHECK(big->proc_id == 1);
}

TEST_CASE("names that are not task names do not parse", "[matching]") {
    for (const char* n : {"redis-5f7d8c9b4-xk2lp", "hyperflow-engine-6c4b46d86-jdl7w", "nfs-data", "tabix-extract",
                          "job-1-1", "jobx--1-1", "JOBABC-SIFTING-1-1", "", "jobabc-sifting-1-99999999999"}) {
        INFO(n);
        CHECK_FALSE(es::parse_job_name(n, genome_types).has_value());
    }
    CHECK(es::type_slug("Individuals_Merge") == "individuals-merge");
}

TEST_CASE("the engine and helpers are never tasks", "[matching]") {
    auto ctx = genome_context();
    auto engine = task_pod("hyperflow-engine-6c4b46d86-jdl7w", "", kube::PodPhase::running);
    engine.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"name", "hyperflow-engine"}};
    engine.meta.owner = kube::OwnerRef{"ReplicaSet", "hyperflow-engine-6c4b46d86", "rs"};
    CHECK(decide(ctx, engine).role == es::ObjectRole::engine);

    // restarted engine: a new name, found by the selector
    auto restarted = engine;
    restarted.meta.name = "hyperflow-engine-6c4b46d86-plhmv";
    CHECK(decide(ctx, restarted).role == es::ObjectRole::engine);

    // engine found by its containers even without labels
    auto bare = task_pod("something-else", "", kube::PodPhase::running);
    bare.meta.labels.items = {{"app", "hyperflow"}};
    bare.meta.owner.reset();
    bare.containers = {named_container("hyperflow"), named_container("hflow-tools")};
    CHECK(decide(ctx, bare).role == es::ObjectRole::engine);

    auto redis = task_pod("redis-5f7d8c9b4-xk2lp", "", kube::PodPhase::running);
    redis.meta.labels.items = {{"app", "hyperflow"}, {"name", "redis"}};
    redis.meta.owner = kube::OwnerRef{"ReplicaSet", "redis-5f7d8c9b4", "rs2"};
    CHECK(decide(ctx, redis).role == es::ObjectRole::helper);

    auto nfs = task_job("nfs-data");
    nfs.meta.labels.items = {{"app", "hyperflow"}, {"role", "nfs-data"}};
    CHECK(es::DefaultTaskRule(ctx)(es::candidate_of(nfs)).role == es::ObjectRole::helper);
    auto nfs_pod = task_pod("nfs-data-8kq2m", "nfs-data", kube::PodPhase::running);
    CHECK(decide(ctx, nfs_pod).role == es::ObjectRole::helper);

    auto tabix = task_job("tabix-extract");
    CHECK(es::DefaultTaskRule(ctx)(es::candidate_of(tabix)).role == es::ObjectRole::helper);

    auto task = task_pod("jobczr2t-sifting-4-1-2wzwh", "jobczr2t-sifting-4-1", kube::PodPhase::running);
    auto d = decide(ctx, task);
    CHECK(d.role == es::ObjectRole::task);
    CHECK(d.group == "jobczr2t-sifting-4-1");
    CHECK(d.task_type == "sifting");

    // a pod without job-name labels falls back to parsing its own name
    task.meta.labels.items = {{"app", "hyperflow"}};
    task.meta.owner.reset();
    auto d2 = decide(ctx, task);
    CHECK(d2.role == es::ObjectRole::task);
    CHECK(d2.group == "jobczr2t-sifting-4-1");
}

TEST_CASE("groups bind to inventory entries by name, then position, then type", "[matching]") {
    std::vector<es::TaskSpec> inv{{"task-a", "samtools", 0, {}, "", ""},
                                  {"individuals", "individuals", 0, {}, "", ""},
                                  {"individuals", "individuals", 0, {}, "", ""},
                                  {"sifting", "sifting", 2, {}, "", ""},
                                  {"mystery", "", 99, {}, "", ""}};
    es::TaskBinder b(inv);
    auto group = [](std::string g, std::string type, std::optional<int> proc) {
        es::MatchDecision d;
        d.role = es::ObjectRole::task;
        d.group = std::move(g);
        d.task_type = std::move(type);
        d.proc_id = proc;
        return d;
    };
    CHECK(b.bind(group("task-a", "samtools", {})).inventory_index == std::optional<std::size_t>(0));
    // procId 3 = third process = inventory[2], an individuals entry
    CHECK(b.bind(group("jobaa-individuals-3-1", "individuals", 3)).inventory_index == std::optional<std::size_t>(2));
    // procId 9 is beyond the inventory: first free individuals entry
    CHECK(b.bind(group("jobbb-individuals-9-1", "individuals", 9)).inventory_index == std::optional<std::size_t>(1));
    // the same group binds the same way again
    CHECK(b.bind(group("jobaa-individuals-3-1", "individuals", 3)).inventory_index == std::optional<std::size_t>(2));
    // a third individuals Job has no free entry: an extra task
    CHECK_FALSE(b.bind(group("jobcc-individuals-11-1", "individuals", 11)).inventory_index.has_value());
    // a type the inventory does not know takes the entry without a type
    CHECK(b.bind(group("jobdd-frequency-30-1", "frequency", 30)).inventory_index == std::optional<std::size_t>(4));
    CHECK(b.bind(group("jobee-sifting-4-1", "sifting", 4)).inventory_index == std::optional<std::size_t>(3));
}

TEST_CASE("state: retried pods are one task; unmatched tasks count under their type; engine ignored", "[matching]") {
    es::WorkflowState s(genome_context());
    CHECK(s.total() == 6);
    auto engine = task_pod("hyperflow-engine-6c4b46d86-jdl7w", "", kube::PodPhase::running);
    engine.meta.labels.items = {{"app", "hyperflow"}, {"component", "hyperflow-engine"}};
    engine.meta.owner = kube::OwnerRef{"ReplicaSet", "hyperflow-engine-6c4b46d86", "rs"};
    engine.containers = {named_container("hyperflow"), named_container("hflow-tools")};
    CHECK(s.apply_pod(engine, es::ChangeKind::added, at(0)).empty());
    CHECK(s.ignored(es::ObjectRole::engine) == 1);

    auto first = task_pod("jobulwsfh-frequency-6-1-hjj6m", "jobulwsfh-frequency-6-1", kube::PodPhase::running);
    s.apply_pod(first, es::ChangeKind::added, at(1));
    first.phase = kube::PodPhase::failed;
    first.containers[0].state = {kube::ContainerState::Kind::terminated, "Error", "", 1, 0, at(0), at(5)};
    s.apply_pod(first, es::ChangeKind::modified, at(5));
    auto retry = task_pod("jobulwsfh-frequency-6-1-q8w7e", "jobulwsfh-frequency-6-1", kube::PodPhase::running);
    retry.meta.creation_timestamp = at(15);
    auto ch = s.apply_pod(retry, es::ChangeKind::added, at(15));
    REQUIRE(ch.size() == 1);
    CHECK(ch[0].before == es::TaskStatus::failed);
    CHECK(ch[0].after == es::TaskStatus::running);
    const auto* t = s.find_task("jobulwsfh-frequency-6-1");
    REQUIRE(t);
    CHECK(t->inventory_index == std::optional<std::size_t>(5));
    CHECK(t->attempts == 2);
    CHECK(t->last_failure_message == "test: Error (exit code 1)");
    CHECK(s.find_task("jobulwsfh-frequency-6-1-q8w7e") == t);
    CHECK(s.total() == 6);
    CHECK(s.running() == 1);

    // a Job the inventory does not list is counted under its parsed type
    s.apply_job(task_job("jobzzz-frequency-77-1"), es::ChangeKind::added, at(20));
    CHECK(s.total() == 7);
    REQUIRE(s.phase("frequency"));
    CHECK(s.phase("frequency")->total == 2);
    CHECK(s.phase("frequency")->inventory_total == 1);
}

TEST_CASE("the matching rule can be replaced", "[matching]") {
    es::MonitoringContext ctx;
    ctx.namespace_ = "ns";
    ctx.engine_pod_name = "engine";
    ctx.task_inventory = {{"align-1", "align", 0, {}, "", ""}, {"align-2", "align", 0, {}, "", ""}};
    // this workflow system names Jobs "wf-<type>-<n>" and labels them task-type=<type>
    es::MatchRule rule = [](const es::MatchCandidate& c) {
        es::MatchDecision d;
        if (auto* type = c.meta->labels.find("task-type")) {
            d.role = es::ObjectRole::task;
            d.group = std::string(c.group_name);
            d.task_type = *type;
        }
        return d;
    };
    es::WorkflowState s(ctx, rule);
    auto job = task_job("wf-align-0001");
    job.meta.labels.items.push_back({"task-type", "align"});
    auto ch = s.apply_job(job, es::ChangeKind::added, at(0));
    REQUIRE(ch.size() == 1);
    CHECK(s.tasks()[ch[0].index].inventory_index == std::optional<std::size_t>(0));
    auto other = task_job("jobabc-sifting-1-1"); // no task-type label: not a task under this rule
    CHECK(s.apply_job(other, es::ChangeKind::added, at(0)).empty());
    CHECK(s.total() == 2);
}

TEST_CASE("an inventory without task types (real workflow.json through the conductor) still binds", "[matching]") {
    // real HyperFlow runs: the conductor reads "fun", absent in real workflow.json: every task_type is "".
    es::MonitoringContext ctx;
    ctx.namespace_ = "ns";
    ctx.engine_pod_name = "engine";
    ctx.task_inventory = {{"individuals", "", 99, {}, "", ""},
                          {"individuals_merge", "", 99, {}, "", ""},
                          {"sifting", "", 99, {}, "", ""}};
    es::WorkflowState s(ctx);
    auto pod = task_pod("jobk3x9a-individuals-merge-2-1-x7p2q", "jobk3x9a-individuals-merge-2-1", kube::PodPhase::running);
    auto ch = s.apply_pod(pod, es::ChangeKind::added, at(0));
    REQUIRE(ch.size() == 1);
    const auto& t = s.tasks()[ch[0].index];
    CHECK(t.inventory_index == std::optional<std::size_t>(1));
    CHECK(t.task_type == "individuals_merge");
    CHECK(ch[0].phase_started);
    s.apply_job(task_job("jobczr2t-sifting-3-1"), es::ChangeKind::added, at(1));
    s.apply_job(task_job("jobaaaa-individuals-1-1"), es::ChangeKind::added, at(1));
    CHECK(s.total() == 3); // nothing counted twice
    REQUIRE(s.phase("individuals_merge"));
    CHECK(s.phase("individuals_merge")->inventory_total == 1);
    CHECK(s.phase("individuals_merge")->running == 1);
    CHECK(s.phase("")->inventory_total == 0);
}

TEST_CASE("parsers of outside input survive arbitrary text", "[matching][robustness]") {
    std::mt19937 rng(20260806);
    const std::string alphabet = "job-abcxyz0123456789_=!(),# \n\"'\\.in";
    std::uniform_int_distribution<std::size_t> len(0, 40), pick(0, alphabet.size() - 1);
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        for (auto n = len(rng); n > 0; --n) s += alphabet[pick(rng)];
        if (auto p = es::parse_job_name(s, genome_types)) {
            CHECK(p->proc_id >= 0);
            CHECK_FALSE(p->task_type.empty());
        }
        (void)es::parse_pod_name(s, genome_types);
        try {
            (void)es::LabelSelector::parse(s);
        } catch (const std::invalid_argument&) {
        }
        try {
            (void)es::parse_dotenv(s);
        } catch (const es::SettingsError&) {
        }
        try {
            (void)es::context_from_json_text(s);
        } catch (const es::ContextError&) {
        }
        (void)es::parse_duration(s);
        // a valid name glued to the noise either parses as a task name or is rejected, never misread
        if (auto p = es::parse_job_name("jobczr2t-sifting-10-1" + s, genome_types); p && p->known_type)
            CHECK(p->task_type == "sifting");
    }
    CHECK(es::parse_job_name("jobczr2t-sifting-10-1", genome_types)->proc_id == 10);
}

namespace {

/// A context whose dag_structure is a chain of `n` types, step_0 ← step_1 ← … ← step_<n-1>, and whose inventory
/// holds one task of each type.
es::MonitoringContext chain_context(int n) {
    es::MonitoringContext c;
    c.namespace_ = "wf-chain";
    c.engine_pod_name = "hyperflow-engine-0";
    c.task_inventory.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        std::string type = "step_" + std::to_string(i);
        c.task_inventory.push_back({type, type, i, {}, "", ""});
        c.dag_structure[type] = i == 0 ? std::vector<std::string>{} : std::vector<std::string>{"step_" + std::to_string(i - 1)};
    }
    return c;
}

} // namespace

TEST_CASE("known task types: each once, in order, the first of equal slugs wins", "[matching]") {
    es::MonitoringContext c = genome_context();
    c.task_inventory.push_back({"extra", "individuals-merge", 9, {}, "", ""}); // same slug as individuals_merge
    c.dag_structure = {{"zeta", {"frequency", "alpha"}}, {"frequency", {"sifting"}}};
    CHECK(es::known_task_types(c) == std::vector<std::string>{"individuals", "individuals_merge", "sifting",
                                                               "mutation_overlap", "frequency", "individuals-merge",
                                                               "zeta", "alpha"});
    auto const index = es::task_type_index(c);
    REQUIRE(index.by_slug("individuals-merge"));
    CHECK(*index.by_slug("individuals-merge") == "individuals_merge");
    CHECK(index.by_slug("nothing") == nullptr);
    auto const p = es::parse_job_name("jobabc-individuals-merge-3-1", index);
    REQUIRE(p);
    CHECK(p->task_type == "individuals_merge");
    CHECK(p->known_type);
    // The list overloads agree with the index.
    CHECK(es::parse_job_name("jobabc-individuals-merge-3-1", es::known_task_types(c)) == p);
    CHECK(es::parse_pod_name("jobabc-alpha-7-1-x2b4q", index)->task_type == "alpha");
    CHECK(es::TaskTypeIndex({"", "a", "a", "b"}).types() == std::vector<std::string>{"a", "b"});
}

// A 100,000-type chain used to take 18 s of start-up (the known types were collected with a linear search per
// name). The index is built once; names resolve through it.
TEST_CASE("a 100k-type dag_structure chain: the rule and the state are built and resolve every type", "[matching][large]") {
    constexpr int n = 100'000;
    auto const ctx = chain_context(n);
    es::DefaultTaskRule rule(ctx);
    REQUIRE(rule.known_types().size() == static_cast<std::size_t>(n));
    CHECK(rule.known_types().front() == "step_0");
    CHECK(rule.known_types().back() == "step_99999");

    kube::Job job = task_job("jobq7x-step-99999-100000-1");
    auto const d = rule(es::candidate_of(job));
    CHECK(d.role == es::ObjectRole::task);
    CHECK(d.task_type == "step_99999");
    CHECK(d.proc_id == std::optional<int>(100'000));

    es::WorkflowState state(ctx);
    CHECK(state.total() == n);
    CHECK(state.phases().size() == static_cast<std::size_t>(n));
    auto const changes = state.apply_job(job, es::ChangeKind::added, at(1));
    REQUIRE(changes.size() == 1);
    CHECK(state.tasks()[changes[0].index].inventory_index == std::optional<std::size_t>(n - 1));
    CHECK(state.running() == 1);
}

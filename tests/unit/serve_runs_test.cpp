// Run discovery decisions and the run registry of `execution-sentinel serve` (serve/runs.hpp): which engine pod
// events start and end runs, where a run's context comes from, and the JSON the API answers with.
#include <execution_sentinel/serve/runs.hpp>

#include "catch.hpp"

#include <boost/json.hpp>

#include <string>

namespace es = execution_sentinel;
namespace sv = execution_sentinel::serve;
namespace kube = execution_sentinel::kube;

namespace {

kube::Pod engine_pod(kube::PodPhase phase, bool deleting = false) {
    kube::Pod p;
    p.meta.name = "hyperflow-engine-abc";
    p.meta.namespace_ = "wf";
    p.meta.uid = "u-1";
    p.phase = phase;
    if (deleting) p.meta.deletion_timestamp = es::Timestamp{};
    return p;
}

boost::json::value configmaps(std::initializer_list<std::pair<std::string, std::string>> items) {
    boost::json::array list;
    for (const auto& [name, context] : items) {
        boost::json::object cm;
        cm["metadata"] = {{"name", name}, {"namespace", "wf"}};
        cm["data"] = {{"context.json", context}};
        list.push_back(std::move(cm));
    }
    return boost::json::object{{"kind", "ConfigMapList"}, {"items", std::move(list)}};
}

es::Report report(std::uint64_t sequence) {
    es::Report r;
    r.type = es::ReportType::PROGRESS;
    r.sequence = sequence;
    r.message = "r" + std::to_string(sequence);
    return r;
}

} // namespace

TEST_CASE("serve discovery: a run starts once per Running engine pod and ends when it is deleted", "[serve][runs]") {
    using T = kube::WatchEventType;
    using A = sv::DiscoveryAction;
    CHECK(sv::discovery_action(T::added, engine_pod(kube::PodPhase::pending), false) == A::none);
    CHECK(sv::discovery_action(T::modified, engine_pod(kube::PodPhase::running), false) == A::start);
    CHECK(sv::discovery_action(T::added, engine_pod(kube::PodPhase::running), false) == A::start);
    CHECK(sv::discovery_action(T::modified, engine_pod(kube::PodPhase::running), true) == A::none);
    CHECK(sv::discovery_action(T::added, engine_pod(kube::PodPhase::running, true), false) == A::none);
    CHECK(sv::discovery_action(T::modified, engine_pod(kube::PodPhase::succeeded), false) == A::none);
    CHECK(sv::discovery_action(T::deleted, engine_pod(kube::PodPhase::running), true) == A::end);
    CHECK(sv::discovery_action(T::deleted, engine_pod(kube::PodPhase::running), false) == A::none);
}

TEST_CASE("serve discovery: the context comes from a labelled ConfigMap, else it is inferred", "[serve][runs]") {
    sv::ServeConfig config;
    config.task_selector = "app=tasks";
    const std::string named = R"({"namespace":"wf","engine_pod_name":"hyperflow-engine-abc",
        "task_inventory":[{"name":"t1","task_type":"a"}]})";
    const std::string general = R"({"namespace":"wf","engine_pod_selector":"component=hyperflow-engine",
        "task_inventory":[{"name":"t1"},{"name":"t2"}]})";
    const std::string other_pod = R"({"namespace":"wf","engine_pod_name":"another-engine"})";
    const std::string other_ns = R"({"namespace":"elsewhere","engine_pod_selector":"x=y"})";

    SECTION("a ConfigMap naming the engine pod wins over a general one") {
        auto c = sv::choose_context(config, "wf", "hyperflow-engine-abc",
                                    configmaps({{"a-general", general}, {"b-named", named}, {"c-other", other_pod}}));
        CHECK(c.source == "configmap/b-named");
        CHECK(c.context.total_expected_tasks() == 1);
        CHECK(c.problems.empty());
    }
    SECTION("a general ConfigMap is given the engine pod") {
        auto c = sv::choose_context(config, "wf", "hyperflow-engine-abc", configmaps({{"g", general}, {"o", other_pod}}));
        CHECK(c.source == "configmap/g");
        CHECK(c.context.engine_pod_name == "hyperflow-engine-abc");
        CHECK(c.context.total_expected_tasks() == 2);
    }
    SECTION("broken and foreign ConfigMaps are listed and skipped; then the context is inferred") {
        auto c = sv::choose_context(config, "wf", "hyperflow-engine-abc",
                                    configmaps({{"bad", "{not json"}, {"ns", other_ns}, {"pod", other_pod}}));
        CHECK(c.source == "inferred");
        REQUIRE(c.problems.size() == 2);
        CHECK(c.problems[0].starts_with("configmap/bad: context.json: "));
        CHECK(c.problems[1] == "configmap/ns: its context is for another namespace");
        CHECK(c.context.namespace_ == "wf");
        CHECK(c.context.engine_pod_name == "hyperflow-engine-abc");
        CHECK(c.context.task_label_selector == "app=tasks");
        CHECK(c.context.task_inventory.empty());
    }
    SECTION("no ConfigMaps, or an answer that is not a list") {
        CHECK(sv::choose_context(config, "wf", "e", configmaps({})).source == "inferred");
        CHECK(sv::choose_context(config, "wf", "e", boost::json::value(42)).source == "inferred");
    }
}

TEST_CASE("serve registry: runs, their reports in pages, and finished runs kept up to a limit", "[serve][runs]") {
    sv::RunRegistry registry({.keep_finished = 1, .keep_reports = 3});
    sv::ServeConfig config;
    es::MonitorView view;
    view.total = 4;
    view.completed = 1;
    view.phases.push_back({.task_type = "a", .total = 4, .succeeded = 1});
    registry.start("wf", "e1", sv::infer_context(config, "wf", "e1"), "inferred", [view] { return view; }, {});
    registry.start("wf", "e2", sv::infer_context(config, "wf", "e2"), "configmap/x", [view] { return view; }, {});
    CHECK(registry.active() == 2);
    for (std::uint64_t i = 1; i <= 5; ++i) registry.add_report("wf", "e1", report(i));

    auto runs = registry.runs_json().at("runs").as_array();
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].at("run") == "e1");
    CHECK(runs[0].at("state") == "watching");
    CHECK(runs[0].at("total") == 4);
    CHECK(runs[0].at("phases").as_array()[0].at("succeeded") == 1);
    CHECK(runs[1].at("context_source") == "configmap/x");

    auto page = registry.reports("wf", "e1", 0, 2);
    REQUIRE(page);
    CHECK(page->dropped == 2); // 5 reports, 3 kept
    REQUIRE(page->reports.size() == 2);
    CHECK(page->reports[0].sequence == 3);
    REQUIRE(page->next_after);
    CHECK(*page->next_after == 4);
    auto rest = registry.reports("wf", "e1", *page->next_after, 2);
    REQUIRE(rest->reports.size() == 1);
    CHECK(rest->reports[0].sequence == 5);
    CHECK_FALSE(rest->next_after);
    CHECK_FALSE(registry.reports("wf", "nope", 0, 10));

    es::WatchSummary summary;
    summary.exit_code = 0;
    registry.finish("wf", "e1", sv::RunState::succeeded, "", summary, std::nullopt, {});
    auto detail = registry.run_json("wf", "e1");
    REQUIRE(detail);
    CHECK(detail->at("state") == "succeeded");
    CHECK(detail->at("outcome") == "succeeded");
    CHECK(detail->at("view").at("total") == 4); // the last view, kept
    CHECK(detail->at("context").at("namespace") == "wf");
    CHECK(registry.active() == 1);

    registry.finish("wf", "e2", sv::RunState::engine_deleted, "the engine pod was deleted", std::nullopt, std::nullopt, {});
    CHECK_FALSE(registry.run_json("wf", "e1")); // only one finished run is kept
    CHECK(registry.run_json("wf", "e2")->at("message") == "the engine pod was deleted");
    auto stats = registry.stats_json();
    CHECK(stats.at("runs_started") == 2);
    CHECK(stats.at("runs_finished") == 2);
    CHECK(stats.at("runs_active") == 0);
    CHECK(stats.at("outcomes").at("succeeded") == 1);
    CHECK(stats.at("outcomes").at("engine_deleted") == 1);
    CHECK(stats.at("reports") == 5);
}

// Baselines learned from past runs: the choice of basis (inventory, history, history overriding the inventory),
// loading them from a history store, and their use by the straggler and stall rules, the ETA and the summary, with a
// fixed clock.
#include <execution_sentinel/baselines.hpp>
#include <execution_sentinel/detectors/completion.hpp>
#include <execution_sentinel/detectors/eta.hpp>
#include <execution_sentinel/detectors/stall.hpp>
#include <execution_sentinel/detectors/straggler.hpp>
#include <execution_sentinel/history/baselines.hpp>
#include <execution_sentinel/history/memory_store.hpp>
#include <execution_sentinel/monitor.hpp>
#include <execution_sentinel/settings.hpp>
#include <execution_sentinel/summary.hpp>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace h = execution_sentinel::history;
namespace kube = execution_sentinel::kube;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::hours(490'000) +
           std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string job_name(const std::string& type, int proc) {
    return "jobr" + std::to_string(proc) + "x-" + es::type_slug(type) + "-" + std::to_string(proc) + "-1";
}

kube::Pod pod_of(const std::string& type, int proc, kube::PodPhase phase, double started = 0, double finished = 0) {
    auto job = job_name(type, proc);
    kube::Pod p;
    p.meta.name = job + "-abcde";
    p.meta.uid = "uid-" + p.meta.name;
    p.meta.creation_timestamp = at(started);
    p.meta.labels.items = {{"app", "hyperflow"}, {"job-name", job}};
    p.meta.owner = kube::OwnerRef{"Job", job, "uid-" + job};
    p.phase = phase;
    kube::ContainerStatus c;
    c.name = "test";
    if (phase == kube::PodPhase::running) {
        c.state.kind = kube::ContainerState::Kind::running;
        c.state.started_at = at(started);
        p.start_time = at(started);
    } else {
        c.state.kind = kube::ContainerState::Kind::terminated;
        c.state.reason = phase == kube::PodPhase::succeeded ? "Completed" : "Error";
        c.state.exit_code = phase == kube::PodPhase::succeeded ? 0 : 1;
        c.state.started_at = at(started);
        c.state.finished_at = at(finished);
        p.start_time = at(started);
    }
    p.containers.push_back(c);
    return p;
}

es::MonitoringContext context_of(std::vector<std::pair<std::string, int>> counts, std::optional<double> expected = {}) {
    es::MonitoringContext c;
    c.namespace_ = "wf-test";
    c.engine_pod_name = "hyperflow-engine-6c4b46d86-jdl7w";
    int order = 0;
    for (auto& [type, n] : counts) {
        for (int i = 0; i < n; ++i) c.task_inventory.push_back({type, type, order, expected, "", ""});
        ++order;
    }
    return c;
}

es::TypeBaseline learned(double p50, std::size_t samples = 10, double p95 = 0) {
    return {samples, p50, p95 > 0 ? p95 : p50 * 1.5, "workflow"};
}

es::Baselines baselines_of(std::map<std::string, es::TypeBaseline> types) {
    es::Baselines b("1000genome");
    for (auto& [type, x] : types) b.set(type, x);
    return b;
}

h::TaskAttempt attempt(std::string run, std::string name, std::string type, double seconds,
                       std::string status = "succeeded") {
    h::TaskAttempt a;
    a.run_id = std::move(run);
    a.task_name = std::move(name);
    a.task_type = std::move(type);
    a.started = at(0);
    a.ended = at(seconds);
    a.status = std::move(status);
    return a;
}

} // namespace

// ------------------------------------------------------------------------------------------------ the choice

TEST_CASE("baselines: which expected duration a task uses", "[baselines]") {
    const es::BaselineOptions o; // 5 samples, factor 3
    const auto hist = learned(100);

    SECTION("nothing known: no expectation") {
        auto e = es::choose_expectation(std::nullopt, nullptr, o);
        CHECK(e.basis == es::ExpectationBasis::none);
        CHECK_FALSE(e.seconds.has_value());
        CHECK(es::to_string(e.basis).empty());
    }
    SECTION("only the inventory") {
        auto e = es::choose_expectation(30.0, nullptr, o);
        CHECK(e.basis == es::ExpectationBasis::inventory);
        CHECK(e.seconds == std::optional<double>(30.0));
        CHECK(es::to_string(e.basis) == "inventory");
    }
    SECTION("only history") {
        auto e = es::choose_expectation(std::nullopt, &hist, o);
        CHECK(e.basis == es::ExpectationBasis::history);
        CHECK(e.seconds == std::optional<double>(100.0));
        CHECK_FALSE(e.overrides_inventory);
        REQUIRE(e.history.has_value());
        CHECK(e.history->samples == 10);
        CHECK(es::to_string(e.basis) == "history");
    }
    SECTION("both, within the factor: the inventory's estimate stands") {
        for (double inv : {34.0, 100.0, 300.0}) {
            auto e = es::choose_expectation(inv, &hist, o);
            CHECK(e.basis == es::ExpectationBasis::inventory);
            CHECK(e.seconds == std::optional<double>(inv));
            CHECK_FALSE(e.overrides_inventory);
            CHECK(e.history.has_value()); // kept for the report
        }
        // exactly 3× apart is not "more than 3×"
        CHECK(es::choose_expectation(300.0, &hist, o).basis == es::ExpectationBasis::inventory);
        CHECK(es::choose_expectation(100.0 / 3.0, &hist, o).basis == es::ExpectationBasis::inventory);
    }
    SECTION("both, more than the factor apart either way: history overrides") {
        for (double inv : {10.0, 33.0, 301.0, 3000.0}) {
            auto e = es::choose_expectation(inv, &hist, o);
            CHECK(e.basis == es::ExpectationBasis::history);
            CHECK(e.seconds == std::optional<double>(100.0));
            CHECK(e.overrides_inventory);
            CHECK(e.inventory_seconds == std::optional<double>(inv));
        }
    }
    SECTION("the factor is a setting; below 1 or not a number means never") {
        es::BaselineOptions wide;
        wide.override_factor = 20;
        CHECK(es::choose_expectation(10.0, &hist, wide).basis == es::ExpectationBasis::inventory);
        CHECK(es::choose_expectation(4.0, &hist, wide).basis == es::ExpectationBasis::history);
        es::BaselineOptions never;
        never.override_factor = 0.5;
        CHECK(es::choose_expectation(1.0, &hist, never).basis == es::ExpectationBasis::inventory);
        never.override_factor = std::numeric_limits<double>::quiet_NaN();
        CHECK(es::choose_expectation(1.0, &hist, never).basis == es::ExpectationBasis::inventory);
    }
    SECTION("too few samples: history is not used") {
        auto few = learned(100, 4);
        CHECK(es::choose_expectation(std::nullopt, &few, o).basis == es::ExpectationBasis::none);
        CHECK(es::choose_expectation(5.0, &few, o).basis == es::ExpectationBasis::inventory);
        es::BaselineOptions four;
        four.min_samples = 4;
        CHECK(es::choose_expectation(std::nullopt, &few, four).basis == es::ExpectationBasis::history);
        es::BaselineOptions zero; // read as 1
        zero.min_samples = 0;
        auto none = learned(100, 0);
        CHECK(es::choose_expectation(std::nullopt, &none, zero).basis == es::ExpectationBasis::none);
    }
    SECTION("unusable values are ignored") {
        auto zero = learned(0);
        CHECK(es::choose_expectation(std::nullopt, &zero, o).basis == es::ExpectationBasis::none);
        auto inf = learned(std::numeric_limits<double>::infinity());
        CHECK(es::choose_expectation(20.0, &inf, o).basis == es::ExpectationBasis::inventory);
        CHECK(es::choose_expectation(0.0, &hist, o).basis == es::ExpectationBasis::history);
        CHECK(es::choose_expectation(-5.0, &hist, o).basis == es::ExpectationBasis::history);
        CHECK(es::choose_expectation(std::numeric_limits<double>::quiet_NaN(), nullptr, o).basis ==
              es::ExpectationBasis::none);
    }
    SECTION("looked up by type") {
        auto b = baselines_of({{"frequency", hist}});
        CHECK(es::choose_expectation(std::nullopt, b, "frequency", o).basis == es::ExpectationBasis::history);
        CHECK(es::choose_expectation(std::nullopt, b, "sifting", o).basis == es::ExpectationBasis::none);
        CHECK(es::choose_expectation(std::nullopt, b, "", o).basis == es::ExpectationBasis::none);
    }
}

// ------------------------------------------------------------------------------------------------ loading

TEST_CASE("baselines: learned from a history store, per workflow name, else across runs", "[baselines][history]") {
    auto store = std::make_shared<h::MemoryHistoryStore>();
    auto run = [&](std::string id, std::string workflow) {
        h::RunRecord r;
        r.id = id;
        r.namespace_ = "wf";
        r.workflow_name = std::move(workflow);
        r.started = at(0);
        store->begin_run(r);
    };
    run("g1", "1000genome");
    run("g2", "1000genome");
    run("m1", "montage");
    // 1000genome: frequency 6 succeeded (10..60 s) + 1 failed + 1 running; sifting only 2
    for (int i = 1; i <= 6; ++i)
        store->record_task(attempt(i <= 3 ? "g1" : "g2", "frequency-" + std::to_string(i), "frequency", 10.0 * i));
    store->record_task(attempt("g2", "frequency-9", "frequency", 5000, "failed"));
    auto running = attempt("g2", "frequency-10", "frequency", 0, "running");
    running.ended.reset();
    store->record_task(running);
    store->record_task(attempt("g1", "sifting-1", "sifting", 4));
    store->record_task(attempt("g1", "sifting-2", "sifting", 6));
    // montage: 5 sifting (named the same), 5 mProject
    for (int i = 1; i <= 5; ++i) {
        store->record_task(attempt("m1", "sifting-" + std::to_string(i), "sifting", 100.0 * i));
        store->record_task(attempt("m1", "mProject-" + std::to_string(i), "mProject", 1.0 * i));
    }
    store->record_task(attempt("m1", "untyped-1", "", 7));

    auto b = h::load_baselines(*store, "1000genome");
    CHECK(b.workflow_name() == "1000genome");
    const auto* f = b.find("frequency");
    REQUIRE(f);
    CHECK(f->samples == 6); // the failed and the running attempts are not durations of the type
    CHECK(f->p50_seconds == Approx(35));
    CHECK(f->p95_seconds == Approx(57.5));
    CHECK(f->scope == "workflow");
    // too few sifting attempts in 1000genome runs: the type's attempts across all runs (7 of them)
    const auto* s = b.find("sifting");
    REQUIRE(s);
    CHECK(s->scope == "all");
    CHECK(s->samples == 7);
    CHECK(s->p50_seconds == Approx(200));
    REQUIRE(b.find("mProject"));
    CHECK(b.find("mProject")->scope == "all");
    CHECK_FALSE(b.find("")); // no baseline for tasks without a type

    // without a workflow name: every type across runs
    auto all = h::load_baselines(*store, "");
    REQUIRE(all.find("frequency"));
    CHECK(all.find("frequency")->scope == "all");
    CHECK(all.find("sifting")->samples == 7);

    // the minimum sample count leaves types out
    es::BaselineOptions many;
    many.min_samples = 7;
    auto strict = h::load_baselines(*store, "1000genome", many);
    CHECK_FALSE(strict.find("frequency"));
    REQUIRE(strict.find("sifting"));
    CHECK(strict.size() == 1);

    // a resumed watch of run g2 does not learn from g2 itself
    es::BaselineOptions three;
    three.min_samples = 3;
    REQUIRE(h::load_baselines(*store, "1000genome", three).find("frequency"));
    CHECK(h::load_baselines(*store, "1000genome", three).find("frequency")->samples == 6);
    auto without_g2 = h::load_baselines(*store, "1000genome", three, "g2");
    REQUIRE(without_g2.find("frequency"));
    CHECK(without_g2.find("frequency")->samples == 3); // g1's only
}

// ------------------------------------------------------------------------------------------------ the rules

TEST_CASE("straggler: history is the baseline when the inventory has no estimate", "[baselines][straggler]") {
    es::SentinelSettings settings; // multiplier 3, min runtime 60 s
    es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 4}}), settings);
    m.set_baselines(baselines_of({{"frequency", learned(100, 12, 180)}}));
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    REQUIRE(m.state().tasks()[0].expectation.basis == es::ExpectationBasis::history);
    m.on_tick(at(300));
    CHECK(m.take_reports().empty());
    m.on_tick(at(301));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].type == es::ReportType::ANOMALY_STRAGGLER);
    CHECK(rs[0].task_name == "frequency-1");
    CHECK(rs[0].details.at("basis") == "history");
    CHECK(rs[0].details.at("baseline_seconds").as_double() == Approx(100));
    CHECK(rs[0].details.at("threshold_seconds").as_double() == Approx(300));
    CHECK(rs[0].details.at("history_samples").to_number<double>() == 12);
    CHECK(rs[0].details.at("history_p95_seconds").as_double() == Approx(180));
    CHECK(rs[0].details.at("history_scope") == "workflow");
    CHECK_FALSE(rs[0].details.contains("inventory_seconds"));
    CHECK(rs[0].message == "Task frequency-1 has been running for 5 minutes, more than 3 times the 100 seconds that "
                           "frequency tasks typically took in past runs (median of 12).");

    // the same run without baselines: nothing to compare with, no straggler
    es::Monitor<es::StragglerDetector> n(context_of({{"frequency", 4}}), settings);
    n.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    n.on_tick(at(5000));
    CHECK(n.take_reports().empty());
}

TEST_CASE("straggler: history overrides an inventory estimate far from it, not one close to it",
          "[baselines][straggler]") {
    es::SentinelSettings settings;
    SECTION("the inventory says 10 s, past runs 100 s: judged against 100 s") {
        es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 1}}, 10.0), settings);
        m.set_baselines(baselines_of({{"frequency", learned(100)}}));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
        m.on_tick(at(120)); // past 3 × 10 s and the 60 s floor: a straggler on the inventory's estimate alone
        CHECK(m.take_reports().empty());
        m.on_tick(at(301));
        auto rs = m.take_reports();
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].details.at("basis") == "history");
        CHECK(rs[0].details.at("inventory_seconds").as_double() == Approx(10));
        CHECK(rs[0].message == "Task frequency has been running for 5 minutes, more than 3 times the 100 seconds that "
                               "frequency tasks typically took in past runs (median of 10), rather than the workflow's "
                               "estimate of 10 seconds.");
    }
    SECTION("with the override factor raised, the inventory's estimate stands") {
        settings.baseline_override_factor = 20;
        es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 1}}, 10.0), settings);
        m.set_baselines(baselines_of({{"frequency", learned(100)}}));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
        m.on_tick(at(61));
        auto rs = m.take_reports();
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].details.at("basis") == "inventory");
    }
    SECTION("the inventory says 150 s, past runs 100 s: the inventory's estimate stands") {
        es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 1}}, 150.0), settings);
        m.set_baselines(baselines_of({{"frequency", learned(100)}}));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
        m.on_tick(at(450));
        CHECK(m.take_reports().empty());
        m.on_tick(at(451));
        auto rs = m.take_reports();
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].details.at("basis") == "inventory");
        CHECK(rs[0].details.at("baseline_seconds").as_double() == Approx(150));
    }
    SECTION("too few past attempts (settings: at least 5): not a baseline") {
        es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 1}}), settings);
        m.set_baselines(baselines_of({{"frequency", learned(100, 4)}}));
        m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
        m.on_tick(at(1000));
        CHECK(m.take_reports().empty());
        settings.baseline_min_samples = 4;
        es::Monitor<es::StragglerDetector> four(context_of({{"frequency", 1}}), settings);
        four.set_baselines(baselines_of({{"frequency", learned(100, 4)}}));
        four.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
        four.on_tick(at(1000));
        CHECK(four.take_reports().size() == 1);
    }
}

TEST_CASE("straggler: the median of this run's siblings still comes first", "[baselines][straggler]") {
    es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 4}}), es::SentinelSettings{});
    m.set_baselines(baselines_of({{"frequency", learned(1000)}}));
    for (int i = 1; i <= 3; ++i)
        m.on_pod(pod_of("frequency", i, kube::PodPhase::succeeded, 0, 100), es::ChangeKind::added, at(100));
    m.on_pod(pod_of("frequency", 4, kube::PodPhase::running, 100), es::ChangeKind::added, at(100));
    m.on_tick(at(401));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].details.at("basis") == "sibling_median");
}

TEST_CASE("baselines: tasks found on the cluster and types revealed by a Job name get them too", "[baselines]") {
    auto ctx = context_of({{"frequency", 1}});
    ctx.task_inventory.push_back({"individuals", "", 0, std::nullopt, "", ""}); // no type (a real workflow.json)
    es::Monitor<es::StragglerDetector> m(ctx, es::SentinelSettings{});
    m.set_baselines(baselines_of({{"frequency", learned(100)}, {"individuals", learned(50)}}));
    CHECK(m.state().tasks()[1].expectation.basis == es::ExpectationBasis::none);
    m.on_pod(pod_of("individuals", 2, kube::PodPhase::running, 0), es::ChangeKind::added, at(1));
    m.on_pod(pod_of("frequency", 7, kube::PodPhase::running, 0), es::ChangeKind::added, at(1)); // the frequency entry
    m.on_pod(pod_of("frequency", 8, kube::PodPhase::running, 0), es::ChangeKind::added, at(1)); // not in the inventory
    REQUIRE(m.state().tasks().size() == 3);
    for (auto& t : m.state().tasks()) {
        INFO(t.name);
        CHECK(t.expectation.basis == es::ExpectationBasis::history);
    }
    m.on_tick(at(151));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].task_type == "individuals");
    CHECK(rs[0].details.at("basis") == "history");
}

TEST_CASE("stall: a task with a history baseline is the straggler rule's business", "[baselines][stall]") {
    es::SentinelSettings settings; // stall_threshold 300 s
    es::Monitor<es::StallDetector> m(context_of({{"frequency", 2}, {"sifting", 1}}), settings);
    m.set_baselines(baselines_of({{"frequency", learned(1000)}}));
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
    m.on_pod(pod_of("sifting", 3, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
    m.on_tick(at(301));
    auto rs = m.take_reports();
    REQUIRE(rs.size() == 1); // sifting has nothing to compare with; frequency has its history
    CHECK(rs[0].task_name == "sifting");
    CHECK(rs[0].details.at("level") == "task");

    es::Monitor<es::StallDetector> n(context_of({{"frequency", 2}}), settings); // no baselines: judged
    n.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(0));
    n.on_tick(at(301));
    auto ns = n.take_reports();
    REQUIRE(ns.size() == 1);
    CHECK(ns[0].task_name == "frequency-1");
}

// ------------------------------------------------------------------------------------------------ ETA

TEST_CASE("eta: history is a basis of the ETA and the view", "[baselines][eta]") {
    es::Monitor<es::StragglerDetector> m(context_of({{"frequency", 2}, {"sifting", 1}}, std::nullopt),
                                         es::SentinelSettings{});
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 0), es::ChangeKind::added, at(10));
    auto before = m.view(at(10));
    CHECK_FALSE(before.eta_seconds.has_value());
    CHECK(before.eta_unknown_tasks == 3);
    m.set_baselines(baselines_of({{"frequency", learned(100)}, {"sifting", learned(40)}}));
    auto v = m.view(at(10));
    // frequency-1: 90 s left; frequency-2: 100 s; sifting: 40 s; one running: max(90, 230 / 1) = 230 s
    REQUIRE(v.eta_seconds.has_value());
    CHECK(*v.eta_seconds == Approx(230));
    CHECK(v.eta_basis == "history");
    REQUIRE(v.running_tasks.size() == 1);
    CHECK(v.running_tasks[0].basis == "history");
    CHECK(v.running_tasks[0].expected_seconds == std::optional<double>(100.0));
    CHECK(es::estimate_eta(m.state(), at(10)) == es::EtaEstimate{230.0, "history", 0});

    es::Monitor<es::StragglerDetector> mixed(context_of({{"frequency", 1}, {"sifting", 1}}, 20.0), es::SentinelSettings{});
    mixed.set_baselines(baselines_of({{"frequency", learned(100)}}));
    CHECK(mixed.view(at(0)).eta_basis == "mixed"); // frequency from history (5× the inventory), sifting from it
}

TEST_CASE("eta: the summary has the ETA during the run and the first estimate's error at the end",
          "[baselines][eta][summary]") {
    using M = es::Monitor<es::StragglerDetector, es::EtaDetector, es::CompletionDetector>;
    M m(context_of({{"frequency", 2}}), es::SentinelSettings{});
    m.set_baselines(baselines_of({{"frequency", learned(100)}}));
    m.on_tick(at(0)); // the watch starts: nothing runs yet, no estimate
    auto s0 = m.summary(at(0));
    CHECK(s0.eta_seconds == std::optional<double>(200.0)); // 2 × 100 s, one at a time
    CHECK_FALSE(s0.estimated_duration_seconds.has_value());
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 20), es::ChangeKind::added, at(20));
    m.on_pod(pod_of("frequency", 2, kube::PodPhase::running, 20), es::ChangeKind::added, at(20));
    m.on_tick(at(20)); // two running: ETA = max(100, 200 / 2) = 100 s; estimated duration 20 + 100 = 120 s
    m.on_tick(at(70));
    auto during = m.summary(at(70));
    CHECK(during.eta_seconds == std::optional<double>(50.0));
    CHECK(during.eta_basis == "history");
    CHECK(during.estimated_duration_seconds == std::optional<double>(120.0));
    CHECK(during.estimated_at_seconds == Approx(20));
    CHECK(during.estimate_basis == "history");
    CHECK_FALSE(during.eta_error_pct.has_value()); // not over yet
    m.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 20, 140), es::ChangeKind::modified, at(140));
    m.on_pod(pod_of("frequency", 2, kube::PodPhase::succeeded, 20, 150), es::ChangeKind::modified, at(150));
    m.on_completion_probe({true, "0\n", ""}, at(150));
    auto end = m.summary(at(160));
    REQUIRE(end.exit_code == std::optional<int>(0));
    CHECK(end.duration_seconds == Approx(150));
    CHECK(end.eta_seconds == std::optional<double>(0.0));
    CHECK(end.eta_basis == "done");
    REQUIRE(end.eta_error_pct.has_value());
    CHECK(*end.eta_error_pct == Approx((120.0 - 150.0) / 150.0 * 100.0)); // −20 %: it took longer
    auto j = es::to_json(end);
    CHECK(j.at("eta_error_pct").as_double() == Approx(-20));
    CHECK(j.at("estimated_duration_seconds").as_double() == Approx(120));
    CHECK(es::summary_from_json(j) == end);
}

TEST_CASE("eta: the run's estimate survives a restart from a checkpoint", "[baselines][eta][checkpoint]") {
    using M = es::Monitor<es::EtaDetector, es::CompletionDetector>;
    const auto ctx = context_of({{"frequency", 2}});
    M first(ctx, es::SentinelSettings{});
    first.set_baselines(baselines_of({{"frequency", learned(100)}}));
    first.on_tick(at(0));
    first.on_pod(pod_of("frequency", 1, kube::PodPhase::running, 10), es::ChangeKind::added, at(10));
    first.on_tick(at(10)); // one running: max(100, 200 / 1) = 200 s; estimated 10 + 200 = 210 s
    REQUIRE(first.summary(at(10)).estimated_duration_seconds == std::optional<double>(210.0));
    auto cp = first.checkpoint(at(30));

    M second(ctx, es::SentinelSettings{});
    second.set_baselines(baselines_of({{"frequency", learned(100)}}));
    second.restore(cp, at(500));
    second.on_tick(at(500)); // a later ETA is no new estimate
    second.on_pod(pod_of("frequency", 1, kube::PodPhase::succeeded, 10, 200), es::ChangeKind::modified, at(500));
    second.on_pod(pod_of("frequency", 2, kube::PodPhase::succeeded, 200, 400), es::ChangeKind::added, at(500));
    second.on_completion_probe({true, "0\n", ""}, at(500));
    auto end = second.summary(at(500));
    CHECK(end.estimated_duration_seconds == std::optional<double>(210.0));
    CHECK(end.estimated_at_seconds == Approx(10));
    CHECK(end.estimate_basis == "history");
    CHECK(end.duration_seconds == Approx(500)); // from the first start, not the restart
    REQUIRE(end.eta_error_pct.has_value());
    CHECK(*end.eta_error_pct == Approx(-58));

    auto bad = cp;
    bad["detectors"].as_object()["eta"].as_object()["first_seconds"] = -1;
    M third(ctx, es::SentinelSettings{});
    CHECK_THROWS_AS(third.restore(bad, at(500)), es::CheckpointError);
}

TEST_CASE("eta: no error without an exit code, when timed out, or without an estimate", "[baselines][eta][summary]") {
    es::WatchSummary s;
    s.duration_seconds = 100;
    s.estimated_duration_seconds = 80.0;
    CHECK_FALSE(es::eta_error_pct(s).has_value()); // no exit code
    s.exit_code = 1;
    CHECK(es::eta_error_pct(s) == Approx(-20));
    s.timed_out = true;
    CHECK_FALSE(es::eta_error_pct(s).has_value());
    s.timed_out = false;
    s.duration_seconds = 0;
    CHECK_FALSE(es::eta_error_pct(s).has_value());
    s.duration_seconds = 40;
    CHECK(es::eta_error_pct(s) == Approx(100));
    s.estimated_duration_seconds.reset();
    CHECK_FALSE(es::eta_error_pct(s).has_value());
    es::settle_eta(s);
    CHECK_FALSE(s.eta_error_pct.has_value());
}

// ------------------------------------------------------------------------------------------------ formats

TEST_CASE("summary JSON: the ETA fields both ways, absent and null tolerated, bad values refused", "[baselines][summary]") {
    es::WatchSummary s;
    s.exit_code = 0;
    s.eta_seconds = 12.5;
    s.eta_basis = "mixed";
    s.estimated_duration_seconds = 300.0;
    s.estimated_at_seconds = 30;
    s.estimate_basis = "history";
    s.eta_error_pct = 7.5;
    CHECK(es::summary_from_json(es::to_json(s)) == s);

    es::WatchSummary empty;
    auto je = es::to_json(empty);
    CHECK(je.at("eta_seconds").is_null());
    CHECK(je.at("eta_error_pct").is_null());
    CHECK(es::summary_from_json(je) == empty);
    CHECK(es::summary_from_json(boost::json::parse(R"({"completed_tasks": 3})")) .eta_error_pct == std::nullopt);

    auto refuse = [](const char* text, const char* field) {
        INFO(text);
        try {
            (void)es::summary_from_json(boost::json::parse(text));
            FAIL("accepted");
        } catch (const es::SummaryFormatError& e) {
            CHECK(std::string(e.what()).find(field) == 0);
        }
    };
    refuse(R"({"eta_seconds": -1})", "eta_seconds");
    refuse(R"({"eta_seconds": "soon"})", "eta_seconds");
    refuse(R"({"estimated_duration_seconds": -3})", "estimated_duration_seconds");
    refuse(R"({"estimated_at_seconds": -3})", "estimated_at_seconds");
    refuse(R"({"eta_error_pct": -101})", "eta_error_pct");
    refuse(R"({"eta_basis": 4})", "eta_basis");
    refuse((std::string(R"({"estimate_basis": ")") + std::string(65, 'x') + "\"}").c_str(), "estimate_basis");
}

TEST_CASE("settings: SENTINEL_BASELINE_MIN_SAMPLES and SENTINEL_BASELINE_OVERRIDE_FACTOR", "[baselines][settings]") {
    auto load = [](std::map<std::string, std::string> vars) {
        return es::load_settings([vars](const std::string& name) -> std::optional<std::string> {
            auto it = vars.find(name);
            if (it == vars.end()) return std::nullopt;
            return it->second;
        });
    };
    auto d = load({});
    CHECK(d.baseline_min_samples == 5);
    CHECK(d.baseline_override_factor == 3.0);
    auto s = load({{"SENTINEL_BASELINE_MIN_SAMPLES", "12"}, {"SENTINEL_BASELINE_OVERRIDE_FACTOR", "2.5"}});
    CHECK(s.baseline_min_samples == 12);
    CHECK(s.baseline_override_factor == 2.5);
    auto refused = [&](std::string name, std::string value) {
        INFO(name << "=" << value);
        try {
            (void)load({{name, value}});
            FAIL("accepted");
        } catch (const es::SettingsError& e) {
            CHECK(e.variable() == name);
        }
    };
    refused("SENTINEL_BASELINE_MIN_SAMPLES", "0");
    refused("SENTINEL_BASELINE_MIN_SAMPLES", "2.5");
    refused("SENTINEL_BASELINE_MIN_SAMPLES", "many");
    refused("SENTINEL_BASELINE_OVERRIDE_FACTOR", "0.5");
    refused("SENTINEL_BASELINE_OVERRIDE_FACTOR", "1001");
    refused("SENTINEL_BASELINE_OVERRIDE_FACTOR", "nan");
}

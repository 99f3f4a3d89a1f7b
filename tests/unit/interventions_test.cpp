// The intervention planner (interventions/policy.hpp): policy matching, dry run, limits per hour and per run,
// deduplication, and the guard that keeps actions to the run's own tasks. Fixed clock.
#include <execution_sentinel/interventions/config.hpp>
#include <execution_sentinel/interventions/policy.hpp>

#include "catch.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace es = execution_sentinel;
using namespace std::chrono_literals;

namespace {

es::Timestamp at(double seconds) {
    return es::Timestamp{} + std::chrono::duration_cast<es::Clock::duration>(std::chrono::duration<double>(seconds)) +
           std::chrono::hours(24 * 365 * 50);
}

es::Report stall(std::string task, std::string pod, std::string tier = "HIGH") {
    es::Report r;
    r.type = es::ReportType::ANOMALY_STALL;
    r.severity = es::Severity::error;
    r.sequence = 7;
    r.task_name = std::move(task);
    r.message = "stuck";
    r.details["tier"] = tier;
    r.details["pod_name"] = pod;
    return r;
}

es::InterventionSettings delete_stuck(bool dry_run = true) {
    es::InterventionSettings s;
    s.enabled = true;
    s.dry_run = dry_run;
    s.policies.push_back({.name = "restart-stuck",
                          .on = {es::ReportType::ANOMALY_STALL},
                          .min_severity = es::Severity::warning,
                          .when = {{"tier", {"HIGH", "CRITICAL"}}},
                          .action = es::InterventionAction::delete_pod});
    return s;
}

es::MonitoringContext context() {
    es::MonitoringContext c;
    c.namespace_ = "wf-1";
    c.engine_pod_name = "hyperflow-engine-7d9c-abcde";
    es::TaskSpec spec;
    spec.name = "frequency";
    spec.task_type = "frequency";
    c.task_inventory.push_back(spec);
    return c;
}

} // namespace

TEST_CASE("interventions are off by default and dry runs when switched on", "[interventions]") {
    es::InterventionPlanner off(es::InterventionSettings{});
    CHECK(off.plan(stall("t1", "p1"), at(0)).verdict == es::InterventionPlan::Verdict::none);

    es::InterventionSettings on;
    on.enabled = true;
    on.policies = delete_stuck().policies;
    es::InterventionPlanner planner(on);
    auto p = planner.plan(stall("t1", "p1"), at(0));
    CHECK(p.verdict == es::InterventionPlan::Verdict::act);
    CHECK(p.dry_run);
    CHECK(p.action == es::InterventionAction::delete_pod);
    CHECK(p.pod == "p1");
    REQUIRE(p.policy);
    CHECK(p.policy->name == "restart-stuck");
}

TEST_CASE("a policy matches on type, severity and details", "[interventions]") {
    es::InterventionPlanner planner(delete_stuck());
    CHECK(planner.plan(stall("t1", "p1", "LOW"), at(0)).verdict == es::InterventionPlan::Verdict::none);
    auto weak = stall("t2", "p2");
    weak.severity = es::Severity::info;
    CHECK(planner.plan(weak, at(0)).verdict == es::InterventionPlan::Verdict::none);
    auto other = stall("t3", "p3");
    other.type = es::ReportType::ANOMALY_STRAGGLER;
    CHECK(planner.plan(other, at(0)).verdict == es::InterventionPlan::Verdict::none);
    auto intervention = stall("t4", "p4");
    intervention.type = es::ReportType::INTERVENTION; // never a reaction to its own reports
    CHECK(planner.plan(intervention, at(0)).verdict == es::InterventionPlan::Verdict::none);
    CHECK(planner.plan(stall("t5", "p5", "CRITICAL"), at(0)).verdict == es::InterventionPlan::Verdict::act);
}

TEST_CASE("the same finding is acted on once", "[interventions]") {
    es::InterventionPlanner planner(delete_stuck());
    CHECK(planner.plan(stall("t1", "p1"), at(0)).verdict == es::InterventionPlan::Verdict::act);
    CHECK(planner.plan(stall("t1", "p1", "CRITICAL"), at(10)).verdict == es::InterventionPlan::Verdict::duplicate);
    CHECK(planner.actions_in_run() == 1);
    // a new attempt (another pod) of the same task is another finding
    CHECK(planner.plan(stall("t1", "p1-retry"), at(20)).verdict == es::InterventionPlan::Verdict::act);
}

TEST_CASE("limits per hour and per run hold, and an hour later the hourly budget is back", "[interventions]") {
    auto s = delete_stuck(false);
    s.max_per_hour = 2;
    s.max_per_run = 3;
    es::InterventionPlanner planner(s);
    CHECK(planner.plan(stall("a", "pa"), at(0)).verdict == es::InterventionPlan::Verdict::act);
    CHECK(planner.plan(stall("b", "pb"), at(60)).verdict == es::InterventionPlan::Verdict::act);
    auto third = planner.plan(stall("c", "pc"), at(120));
    CHECK(third.verdict == es::InterventionPlan::Verdict::limit_reached);
    CHECK(third.why.find("per hour") != std::string::npos);
    CHECK(planner.plan(stall("c", "pc"), at(3600)).verdict == es::InterventionPlan::Verdict::act); // a left the window
    auto fourth = planner.plan(stall("d", "pd"), at(7300));
    CHECK(fourth.verdict == es::InterventionPlan::Verdict::limit_reached);
    CHECK(fourth.why.find("per run") != std::string::npos);
}

TEST_CASE("a refused action gives its budget back", "[interventions]") {
    auto s = delete_stuck(false);
    s.max_per_run = 1;
    es::InterventionPlanner planner(s);
    auto p = planner.plan(stall("a", "pa"), at(0));
    REQUIRE(p.verdict == es::InterventionPlan::Verdict::act);
    planner.release(p);
    CHECK(planner.actions_in_run() == 0);
    CHECK(planner.plan(stall("a", "pa"), at(1)).verdict == es::InterventionPlan::Verdict::act);
}

TEST_CASE("a report without a usable object name has no target", "[interventions]") {
    es::InterventionPlanner planner(delete_stuck());
    auto none = stall("a", "");
    CHECK(planner.plan(none, at(0)).verdict == es::InterventionPlan::Verdict::no_target);
    const std::vector<std::string> bad_names{"../secrets", "A-Upper", "pod name", "-leading", std::string(254, 'a')};
    for (const auto& bad : bad_names)
        CHECK(planner.plan(stall("b", bad), at(0)).verdict == es::InterventionPlan::Verdict::no_target);
    auto suspend = delete_stuck();
    suspend.policies[0].action = es::InterventionAction::suspend_job;
    es::InterventionPlanner jobs(suspend);
    CHECK(jobs.plan(stall("c", "pc"), at(0)).verdict == es::InterventionPlan::Verdict::no_target); // no details.job_name
    auto with_job = stall("c", "pc");
    with_job.details["job_name"] = "jobczr2t-frequency-4-1";
    CHECK(jobs.plan(with_job, at(0)).verdict == es::InterventionPlan::Verdict::act);
}

TEST_CASE("the planner's state survives a restart", "[interventions]") {
    auto s = delete_stuck(false);
    s.max_per_run = 2;
    es::InterventionPlanner first(s);
    REQUIRE(first.plan(stall("a", "pa"), at(0)).verdict == es::InterventionPlan::Verdict::act);
    es::InterventionPlanner second(s);
    second.restore(first.acted_keys(), first.action_times(), first.actions_in_run());
    CHECK(second.plan(stall("a", "pa"), at(5)).verdict == es::InterventionPlan::Verdict::duplicate);
    CHECK(second.plan(stall("b", "pb"), at(6)).verdict == es::InterventionPlan::Verdict::act);
    CHECK(second.plan(stall("c", "pc"), at(7)).verdict == es::InterventionPlan::Verdict::limit_reached);
}

TEST_CASE("only tasks of the watched run may be acted on", "[interventions]") {
    auto ctx = context();
    std::string why;
    es::kube::ObjectMeta task;
    task.name = "jobczr2t-frequency-3-1-4xk2p";
    task.namespace_ = "wf-1";
    task.labels.items = {{"app", "hyperflow"}, {"job-name", "jobczr2t-frequency-3-1"}};
    std::vector<std::string_view> containers{"test"};
    CHECK(es::intervention_allowed(ctx, task, true, containers, "jobczr2t-frequency-3-1", why));

    auto elsewhere = task;
    elsewhere.namespace_ = "other";
    CHECK_FALSE(es::intervention_allowed(ctx, elsewhere, true, containers, "jobczr2t-frequency-3-1", why));
    CHECK(why.find("namespace") != std::string::npos);

    es::kube::ObjectMeta engine;
    engine.name = ctx.engine_pod_name;
    engine.namespace_ = "wf-1";
    std::vector<std::string_view> engine_containers{"hyperflow"};
    CHECK_FALSE(es::intervention_allowed(ctx, engine, true, engine_containers, "", why));
    CHECK(why.find("not a task") != std::string::npos);

    es::kube::ObjectMeta redis;
    redis.name = "redis-6b5f9-x2x2x";
    redis.namespace_ = "wf-1";
    redis.labels.items = {{"app", "hyperflow"}, {"component", "redis"}};
    CHECK_FALSE(es::intervention_allowed(ctx, redis, true, containers, "", why));
}

TEST_CASE("the INTERVENTION report says what was done and why", "[interventions]") {
    es::InterventionRecord rec;
    rec.time = at(10);
    rec.policy = "restart-stuck";
    rec.action = es::InterventionAction::delete_pod;
    rec.dry_run = true;
    rec.outcome = "dry_run";
    rec.target = {"Pod", "jobczr2t-frequency-3-1-4xk2p", "uid-1"};
    rec.task_name = "frequency-3";
    rec.trigger = stall("frequency-3", "jobczr2t-frequency-3-1-4xk2p");
    auto r = es::intervention_report(rec);
    CHECK(r.type == es::ReportType::INTERVENTION);
    CHECK(r.severity == es::Severity::info);
    CHECK(r.sequence == 7);
    CHECK(r.message.find("Would delete pod jobczr2t-frequency-3-1-4xk2p") != std::string::npos);
    CHECK(r.message.find("dry run") != std::string::npos);
    CHECK(r.details.at("outcome").as_string() == "dry_run");
    CHECK(r.details.at("target").at("uid").as_string() == "uid-1");
    CHECK(r.details.at("trigger").at("type").as_string() == "ANOMALY_STALL");

    rec.outcome = "done";
    rec.dry_run = false;
    CHECK(es::intervention_report(rec).severity == es::Severity::warning);
    rec.outcome = "refused";
    rec.error = "the pod has already finished";
    auto refused = es::intervention_report(rec);
    CHECK(refused.message.find("Did not delete") != std::string::npos);
    CHECK(refused.message.find("already finished") != std::string::npos);
}

TEST_CASE("an interventions configuration is read from YAML", "[interventions][config]") {
    auto s = es::parse_intervention_settings(R"(
enabled: true
dry_run: false
max_per_hour: 2
policies:
  - name: restart-stuck-pods
    on: [ANOMALY_STALL]
    min_severity: error
    when: {tier: [HIGH, CRITICAL]}
    action: delete_pod
  - on: ANOMALY_TASK_FAILED
    action: annotate
)");
    CHECK(s.enabled);
    CHECK_FALSE(s.dry_run);
    CHECK(s.max_per_hour == 2);
    CHECK(s.max_per_run == 10);
    REQUIRE(s.policies.size() == 2);
    CHECK(s.policies[0].name == "restart-stuck-pods");
    CHECK(s.policies[0].min_severity == es::Severity::error);
    CHECK(s.policies[0].when.at("tier") == std::vector<std::string>{"HIGH", "CRITICAL"});
    CHECK(s.policies[0].action == es::InterventionAction::delete_pod);
    CHECK(s.policies[1].name == "policies[1]");
    CHECK(s.policies[1].on == std::vector<es::ReportType>{es::ReportType::ANOMALY_TASK_FAILED});
    auto defaults = es::parse_intervention_settings("");
    CHECK_FALSE(defaults.enabled);
    CHECK(defaults.dry_run);
}

TEST_CASE("a bad interventions configuration names the file, the line and the field", "[interventions][config]") {
    auto error_of = [](std::string_view text) {
        try {
            es::parse_intervention_settings(text, "conf.yaml");
        } catch (const es::InterventionConfigError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(error_of("enabled: maybe") == "conf.yaml:1: enabled: expected true or false");
    CHECK(error_of("enabled: true\nmax_per_hour: -1") == "conf.yaml:2: max_per_hour: expected a whole number");
    CHECK(error_of("max_per_run: 10\nmax_per_hour: 99999") == "conf.yaml:2: max_per_hour: must be between 0 and 10000");
    CHECK(error_of("dryrun: false") == "conf.yaml:1: dryrun: unknown setting");
    CHECK(error_of("policies:\n  - on: [NOPE]\n    action: annotate").find("conf.yaml:2: policies[0].on: unknown report type") == 0);
    CHECK(error_of("policies:\n  - on: [ANOMALY_STALL]\n    action: reboot").find("policies[0].action: expected one of") != std::string::npos);
    CHECK(error_of("policies:\n  - action: annotate").find("policies[0].on: a policy needs") != std::string::npos);
    CHECK(error_of("policies: [").find("conf.yaml") == 0);
    CHECK(error_of("- a\n- b").find("expected a mapping") != std::string::npos);
}

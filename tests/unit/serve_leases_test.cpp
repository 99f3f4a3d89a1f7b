// The lease decisions of `serve` (serve/leases.hpp) with a fixed clock: the Lease's JSON both ways, expiry as a
// replica observes it, who may acquire, renew and when a holder has lost its run.
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/serve/sentinel_metrics.hpp>

#include "catch.hpp"

#include <boost/json.hpp>

#include <set>

namespace sv = execution_sentinel::serve;
using execution_sentinel::Timestamp;
using namespace std::chrono_literals;

namespace {

const Timestamp t0 = Timestamp{} + std::chrono::hours(24 * 365 * 56); // 2026, a fixed clock

const sv::LeaseSettings test_timing{.lease_duration = 3s, .renew_deadline = 2s, .retry_period = 500ms};

sv::LeaseRecord held_by(std::string holder, std::int64_t seconds = 3) {
    sv::LeaseRecord r;
    r.name = sv::lease_name("wf/engine");
    r.namespace_ = "wf";
    r.resource_version = "10";
    r.holder = std::move(holder);
    r.duration_seconds = seconds;
    r.acquire_time = t0;
    r.renew_time = t0;
    r.run = "wf/engine";
    r.engine_uid = "uid-1";
    return r;
}

} // namespace

TEST_CASE("leases: the Lease object round-trips, with MicroTime and the run's annotations", "[serve][leases]") {
    auto r = held_by("sentinel-0_42");
    r.transitions = 2;
    r.acquire_time = t0 + 1234567us;
    r.renew_time = t0 + 2500ms;
    auto json = sv::lease_to_json(r);
    CHECK(json.at("apiVersion") == "coordination.k8s.io/v1");
    CHECK(json.at("kind") == "Lease");
    const auto& spec = json.at("spec").as_object();
    CHECK(spec.at("holderIdentity") == "sentinel-0_42");
    CHECK(spec.at("leaseDurationSeconds") == 3);
    CHECK(spec.at("leaseTransitions") == 2);
    const std::string acquire(spec.at("acquireTime").as_string());
    CHECK(acquire.ends_with(".234567Z")); // microseconds, as metav1.MicroTime
    CHECK(json.at("metadata").at("resourceVersion") == "10");
    CHECK(json.at("metadata").at("labels").at("app.kubernetes.io/managed-by") == "execution-sentinel");
    CHECK(sv::lease_from_json(json) == r);

    // The name is valid for Kubernetes and stable per run.
    auto name = sv::lease_name("wf/engine");
    CHECK(name == sv::lease_name("wf/engine"));
    CHECK(name != sv::lease_name("wf/engine-2"));
    CHECK(name.size() <= 63);
    for (char c : name) CHECK(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'));

    // A Lease without resourceVersion (a create) carries none; the finished state is an annotation.
    auto fresh = r;
    fresh.resource_version.clear();
    fresh.finished = "succeeded";
    auto created = sv::lease_to_json(fresh);
    CHECK_FALSE(created.at("metadata").as_object().contains("resourceVersion"));
    CHECK(created.at("metadata").at("annotations").at("execution-sentinel/finished") == "succeeded");
}

TEST_CASE("leases: a registered run's lease names its run, checked against the Lease's own place",
          "[serve][leases][registration]") {
    auto r = held_by("sentinel-0_42");
    r.registered = true;
    auto json = sv::lease_to_json(r);
    CHECK(json.at("metadata").at("annotations").at("execution-sentinel/registered") == "true");
    CHECK(sv::lease_from_json(json) == r);
    CHECK_FALSE(sv::lease_from_json(sv::lease_to_json(held_by("x"))).registered);
    CHECK(sv::lease_run(r) == std::pair<std::string, std::string>{"wf", "engine"});

    // Annotations edited to point elsewhere: no run is started from them.
    auto elsewhere = r;
    elsewhere.run = "other-ns/engine"; // another namespace than the Lease's
    CHECK_FALSE(sv::lease_run(elsewhere));
    auto renamed = r;
    renamed.run = "wf/engine-2"; // not the run this Lease's name is for
    CHECK_FALSE(sv::lease_run(renamed));
    for (const char* run : {"", "wf", "wf/", "/engine", "wf/Engine_1", "wf/a/b"}) {
        auto bad = r;
        bad.run = run;
        bad.name = sv::lease_name(run);
        INFO(run);
        CHECK_FALSE(sv::lease_run(bad));
    }
    auto member = r;
    member.name = sv::member_lease_name("sentinel-0_42");
    CHECK_FALSE(sv::lease_run(member));
}

TEST_CASE("leases: a Lease edited into nonsense reads as empty fields, never throws", "[serve][leases]") {
    auto v = boost::json::parse(R"({"metadata": {"name": 7, "annotations": "x"},
                                    "spec": {"holderIdentity": ["a"], "leaseDurationSeconds": -5,
                                             "renewTime": "yesterday", "leaseTransitions": 1e99}})");
    auto r = sv::lease_from_json(v.as_object());
    CHECK(r.name.empty());
    CHECK(r.holder.empty());
    CHECK(r.duration_seconds == 0);
    CHECK_FALSE(r.renew_time);
    CHECK(r.transitions == 0);
    CHECK(sv::lease_from_json(boost::json::object{}) == sv::LeaseRecord{});
    // A free lease may be taken at once.
    CHECK(sv::lease_expired({r, t0}, t0));
}

TEST_CASE("leases: expiry is judged by how long the record stayed the same here, not by the holder's clock",
          "[serve][leases]") {
    auto r = held_by("a");
    r.renew_time = t0 - 1h; // the holder's clock is far behind: does not matter
    auto seen = sv::observe_lease(std::nullopt, r, t0);
    CHECK(seen.observed_at == t0);
    CHECK_FALSE(sv::lease_expired(seen, t0 + 2999ms));
    CHECK(sv::lease_expired(seen, t0 + 3s));

    // Read again unchanged: the observation time stays; renewed (a new record): it moves.
    CHECK(sv::observe_lease(seen, r, t0 + 2s).observed_at == t0);
    auto renewed = sv::renewed_lease(r, t0 + 2s);
    renewed.resource_version = "11";
    auto again = sv::observe_lease(seen, renewed, t0 + 2s);
    CHECK(again.observed_at == t0 + 2s);
    CHECK_FALSE(sv::lease_expired(again, t0 + 4s));
    CHECK(sv::lease_expired(again, t0 + 5s));

    // A duration of 0 counts as 1 s.
    auto zero = held_by("a", 0);
    CHECK_FALSE(sv::lease_expired({zero, t0}, t0 + 999ms));
    CHECK(sv::lease_expired({zero, t0}, t0 + 1s));
}

TEST_CASE("leases: the decision about a run's lease", "[serve][leases]") {
    CHECK(sv::decide_lease(std::nullopt, "uid-1", t0) == sv::LeaseDecision::create);
    sv::ObservedLease other{held_by("b"), t0};
    CHECK(sv::decide_lease(other, "uid-1", t0 + 1s) == sv::LeaseDecision::wait);
    CHECK(sv::decide_lease(other, "uid-1", t0 + 3s) == sv::LeaseDecision::acquire); // b stopped renewing
    auto released = other;
    released.record = sv::released_lease(other.record, t0 + 1s);
    CHECK(sv::decide_lease(released, "uid-1", t0 + 1s) == sv::LeaseDecision::acquire); // graceful: at once
    auto finished = other;
    finished.record = sv::finished_lease(other.record, "succeeded", t0 + 1s);
    CHECK(finished.record.holder.empty());
    CHECK(sv::decide_lease(finished, "uid-1", t0 + 100s) == sv::LeaseDecision::finished);
    // A Lease left by an earlier engine pod of the same name is not this run's.
    CHECK(sv::decide_lease(finished, "uid-2", t0 + 1s) == sv::LeaseDecision::stale);
    CHECK(sv::decide_lease(other, "uid-2", t0 + 1s) == sv::LeaseDecision::stale);
}

TEST_CASE("leases: acquiring, renewing, releasing and finishing", "[serve][leases]") {
    auto created = sv::acquired_lease(std::nullopt, sv::lease_name("wf/engine"), "wf", "wf/engine", "uid-1", "a",
                                      t0, test_timing);
    CHECK(created.holder == "a");
    CHECK(created.duration_seconds == 3);
    CHECK(created.transitions == 0);
    CHECK(created.acquire_time == t0);
    CHECK(created.renew_time == t0);
    CHECK(created.resource_version.empty());
    CHECK(created.run == "wf/engine");
    CHECK(created.engine_uid == "uid-1");

    auto from_b = sv::acquired_lease(held_by("b"), sv::lease_name("wf/engine"), "wf", "wf/engine", "uid-1", "a",
                                     t0 + 5s, test_timing);
    CHECK(from_b.holder == "a");
    CHECK(from_b.transitions == 1); // a change of holder
    CHECK(from_b.resource_version == "10"); // the update is guarded by what was read
    CHECK(from_b.acquire_time == t0 + 5s);

    auto released = sv::released_lease(held_by("b"), t0 + 1s);
    auto after_release = sv::acquired_lease(released, released.name, "wf", "wf/engine", "uid-1", "a", t0 + 1s,
                                            test_timing);
    CHECK(after_release.transitions == 0); // nobody held it

    auto stale = held_by("b");
    stale.finished = "succeeded";
    stale.transitions = 4;
    auto renewed_run = sv::acquired_lease(stale, stale.name, "wf", "wf/engine", "uid-2", "a", t0, test_timing);
    CHECK(renewed_run.finished.empty());
    CHECK(renewed_run.transitions == 0);
    CHECK(renewed_run.engine_uid == "uid-2");

    auto renewed = sv::renewed_lease(created, t0 + 500ms);
    CHECK(renewed.renew_time == t0 + 500ms);
    CHECK(renewed.acquire_time == t0);
    CHECK(renewed.holder == "a");
}

TEST_CASE("leases: the holder renews every retry period and gives up at the renew deadline", "[serve][leases]") {
    CHECK_FALSE(sv::renewal_due(t0, t0 + 499ms, test_timing));
    CHECK(sv::renewal_due(t0, t0 + 500ms, test_timing));
    CHECK_FALSE(sv::renewal_deadline_passed(t0, t0 + 1999ms, test_timing));
    CHECK(sv::renewal_deadline_passed(t0, t0 + 2s, test_timing));
    // The defaults are client-go's: a holder gives up (10 s) before the others may take over (15 s).
    sv::LeaseSettings defaults;
    CHECK(defaults.lease_duration == 15s);
    CHECK(defaults.renew_deadline == 10s);
    CHECK(defaults.retry_period == 2s);
    CHECK(sv::renewal_deadline_passed(t0, t0 + 10s, defaults));
    CHECK_FALSE(sv::lease_expired({held_by("a", 15), t0}, t0 + 10s));
}

TEST_CASE("leases: a replica above its fair share leaves a free lease to the others for a while", "[serve][leases]") {
    // Alone: everything is its share.
    CHECK(sv::fair_share(0, 20, 1) == 20);
    CHECK(sv::fair_share(0, 20, 0) == 20); // itself, at least
    // Three live replicas, 20 runs appearing at once: 7 each at most at first.
    CHECK(sv::fair_share(0, 20, 3) == 7);
    CHECK(sv::fair_share(7, 13, 3) == 7);
    // One of three replicas died: its 7 runs wait; the two others share 20.
    CHECK(sv::fair_share(13, 7, 2) == 10);
    CHECK(sv::should_try_acquire(6, 7, t0, t0, test_timing));
    CHECK_FALSE(sv::should_try_acquire(7, 7, t0, t0, test_timing));
    // After two retry periods anyone takes it: no run waits for long.
    CHECK_FALSE(sv::should_try_acquire(7, 7, t0, t0 + 999ms, test_timing));
    CHECK(sv::should_try_acquire(7, 7, t0, t0 + 1s, test_timing));
    // A replica's membership lease is told apart from the runs' leases.
    CHECK(sv::is_member_lease(sv::member_lease_name("sentinel-0_42")));
    CHECK_FALSE(sv::is_member_lease(sv::lease_name("wf/engine")));
    CHECK(sv::member_lease_name("a") != sv::member_lease_name("b"));
}

TEST_CASE("leases: the metrics of the leases held, taken over and lost", "[serve][leases][metrics]") {
    sv::SentinelMetrics m;
    auto text = m.registry().expose();
    CHECK(text.find("# TYPE execution_sentinel_leases_held gauge\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_leases_held 0\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_lease_takeovers_total 0\n") != std::string::npos);
    m.set_leases_held(7);
    m.lease_taken_over();
    m.lease_taken_over();
    m.lease_lost();
    text = m.registry().expose();
    CHECK(text.find("execution_sentinel_leases_held 7\n") != std::string::npos);
    CHECK(text.find("# TYPE execution_sentinel_lease_takeovers_total counter\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_lease_takeovers_total 2\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_leases_lost_total 1\n") != std::string::npos);
}

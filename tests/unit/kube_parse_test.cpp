#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/json.hpp>

#include "catch.hpp"

#include <chrono>
#include <string>

namespace kube = execution_sentinel::kube;
namespace hf = execution_sentinel::testing;
using namespace std::chrono;

namespace {
boost::json::object obj(std::string_view text) { return boost::json::parse(text).as_object(); }
} // namespace

TEST_CASE("parse_timestamp reads RFC 3339 as Kubernetes writes it", "[kube][parse]") {
    auto base = sys_days{year{2024} / 5 / 1} + hours{10};
    CHECK(kube::parse_timestamp("2024-05-01T10:00:00Z") == base);
    CHECK(kube::parse_timestamp("2024-05-01T10:00:00.123456Z") == base + microseconds{123456});
    CHECK(kube::parse_timestamp("2024-05-01T10:00:00.5Z") == base + milliseconds{500});
    CHECK(kube::parse_timestamp("2024-05-01T12:30:00+02:30") == base);
    CHECK(kube::parse_timestamp("2024-05-01T08:00:00-02:00") == base);
    CHECK(kube::parse_timestamp("1970-01-01T00:00:00Z") == kube::Timestamp{});
    CHECK(kube::parse_timestamp("2024-02-29T00:00:00Z").has_value());
    for (std::string_view bad : {"", "2024-05-01", "2024-05-01T10:00:00", "2024-13-01T10:00:00Z",
                                 "2023-02-29T00:00:00Z", "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00Zjunk",
                                 "2024-05-01T25:00:00Z", "2024-05-01T10:00:00+0200", "abcd-05-01T10:00:00Z"}) {
        INFO(bad);
        CHECK_FALSE(kube::parse_timestamp(bad).has_value());
    }
}

TEST_CASE("a realistic HyperFlow task pod parses into the compact view", "[kube][parse]") {
    hf::NameSource names(7);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    hf::TaskJobOptions jo;
    jo.namespace_name = "wf-1";
    jo.name = hf::job_name(names.job_fragment(), "individuals", 3, 1);
    jo.uid = names.uid();
    jo.created = t0;
    auto job = hf::task_job(jo);
    hf::TaskPodOptions po;
    po.name = jo.name + "-" + names.pod_suffix();
    po.uid = names.uid();
    po.created = t0;
    auto pod_json = hf::task_pod(job, po);
    pod_json["metadata"].as_object()["resourceVersion"] = "4242";

    SECTION("pending") {
        auto pod = kube::parse_pod(pod_json);
        CHECK(pod.meta.name == po.name);
        CHECK(pod.meta.namespace_ == "wf-1");
        CHECK(pod.meta.uid == po.uid);
        CHECK(pod.meta.resource_version == "4242");
        CHECK(pod.meta.creation_timestamp == t0);
        CHECK(pod.meta.labels.matches("app", "hyperflow"));
        CHECK(pod.job_name() == jo.name);
        REQUIRE(pod.meta.owner.has_value());
        CHECK(pod.meta.owner->kind == "Job");
        CHECK(pod.meta.owner->uid == jo.uid);
        CHECK(pod.phase == kube::PodPhase::pending);
        // labels come out sorted
        CHECK(std::is_sorted(pod.meta.labels.items.begin(), pod.meta.labels.items.end()));
    }
    SECTION("running: ordinary True conditions become bits") {
        hf::pod_set_running(pod_json, t0 + seconds{5}, "node-a");
        auto pod = kube::parse_pod(pod_json);
        CHECK(pod.phase == kube::PodPhase::running);
        CHECK(pod.node_name == "node-a");
        CHECK(pod.start_time.has_value());
        CHECK(pod.has_condition("Ready"));
        CHECK(pod.has_condition("PodScheduled"));
        CHECK_FALSE(pod.has_condition("Ready", "False"));
        CHECK_FALSE(pod.has_condition("DisruptionTarget"));
        REQUIRE(pod.containers.size() == 1);
        CHECK(pod.containers[0].name == "test");
        CHECK(pod.containers[0].state.kind == kube::ContainerState::Kind::running);
        CHECK(pod.containers[0].state.started_at == t0 + seconds{5});
    }
    SECTION("OOMKilled") {
        hf::pod_set_terminated(pod_json, t0 + seconds{5}, t0 + seconds{65}, 137, "OOMKilled");
        auto pod = kube::parse_pod(pod_json);
        CHECK(pod.phase == kube::PodPhase::failed);
        REQUIRE(pod.containers.size() == 1);
        auto& st = pod.containers[0].state;
        CHECK(st.kind == kube::ContainerState::Kind::terminated);
        CHECK(st.reason == "OOMKilled");
        CHECK(st.exit_code == 137);
        CHECK(st.finished_at == t0 + seconds{65});
        CHECK_FALSE(pod.has_condition("Ready"));
        CHECK(pod.has_condition("Ready", "False"));
    }
    SECTION("unschedulable") {
        hf::pod_set_unschedulable(pod_json, t0, "0/3 nodes are available: 3 Insufficient memory.");
        auto pod = kube::parse_pod(pod_json);
        auto* c = pod.condition("PodScheduled");
        REQUIRE(c != nullptr);
        CHECK(c->status == "False");
        CHECK(c->reason == "Unschedulable");
        CHECK(c->message.find("Insufficient memory") != std::string::npos);
    }
}

TEST_CASE("waiting and last state, init containers, eviction", "[kube][parse]") {
    auto pod = kube::parse_pod(obj(R"({
      "metadata":{"name":"p","namespace":"n","deletionTimestamp":"2024-05-01T10:00:00Z",
                  "ownerReferences":[{"kind":"ReplicaSet","name":"rs","uid":"1"},
                                     {"kind":"Job","name":"j","uid":"2","controller":true}]},
      "status":{"phase":"Failed","reason":"Evicted","message":"The node was low on resource: memory. ",
        "conditions":[{"type":"DisruptionTarget","status":"True","reason":"TerminationByKubelet"}],
        "initContainerStatuses":[{"name":"init","ready":false,"restartCount":0,
            "state":{"terminated":{"exitCode":0,"reason":"Completed"}}}],
        "containerStatuses":[{"name":"test","ready":false,"restartCount":4,
            "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 40s"}},
            "lastState":{"terminated":{"exitCode":1,"reason":"Error","signal":9}}}]}})"));
    CHECK(pod.reason == "Evicted");
    CHECK(pod.meta.deletion_timestamp.has_value());
    REQUIRE(pod.meta.owner.has_value());
    CHECK(pod.meta.owner->name == "j"); // the controller wins over the first entry
    CHECK(pod.job_name() == "j");
    CHECK(pod.has_condition("DisruptionTarget"));
    REQUIRE(pod.init_containers.size() == 1);
    CHECK(pod.init_containers[0].state.reason == "Completed");
    auto* c = pod.container("test");
    REQUIRE(c != nullptr);
    CHECK(c->restart_count == 4);
    CHECK(c->state.kind == kube::ContainerState::Kind::waiting);
    CHECK(c->state.reason == "CrashLoopBackOff");
    CHECK(c->state.message == "back-off 40s");
    CHECK(c->last_state.kind == kube::ContainerState::Kind::terminated);
    CHECK(c->last_state.exit_code == 1);
    CHECK(c->last_state.signal == 9);
}

TEST_CASE("wrong types and missing fields read as absent, never throw", "[kube][parse]") {
    for (std::string_view text : {R"({})", R"({"metadata":5,"status":"x","spec":[]})",
                                  R"({"metadata":{"name":7,"labels":{"a":1,"b":"ok"},"ownerReferences":"x"},
                                      "status":{"phase":3,"conditions":[1,{"type":2}],"containerStatuses":[5,
                                      {"name":"c","restartCount":"many","state":{"terminated":[]}}]}})",
                                  R"({"status":{"containerStatuses":[{"restartCount":1e300}]}})"}) {
        INFO(text);
        kube::Pod pod;
        REQUIRE_NOTHROW(pod = kube::parse_pod(obj(text)));
        REQUIRE_NOTHROW(kube::parse_job(obj(text)));
        REQUIRE_NOTHROW(kube::parse_event(obj(text)));
        CHECK(pod.meta.name.empty());
        CHECK(pod.phase == kube::PodPhase::unknown);
    }
    auto pod = kube::parse_pod(obj(R"({"metadata":{"labels":{"a":1,"b":"ok"}}})"));
    REQUIRE(pod.meta.labels.items.size() == 1);
    CHECK(pod.meta.labels.matches("b", "ok"));
}

TEST_CASE("jobs: counters, conditions, backoff limit", "[kube][parse]") {
    hf::NameSource names(3);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    hf::TaskJobOptions jo;
    jo.name = "job-x";
    jo.uid = names.uid();
    jo.created = t0;
    auto j = hf::task_job(jo);
    auto job = kube::parse_job(j);
    CHECK(job.meta.name == "job-x");
    CHECK(job.backoff_limit == 6);
    CHECK_FALSE(job.complete());
    hf::job_mark_failed(j, t0 + seconds{30});
    job = kube::parse_job(j);
    CHECK(job.failed_or_failing());
    CHECK_FALSE(job.complete());
    hf::TaskJobOptions jo2 = jo;
    auto j2 = hf::task_job(jo2);
    hf::job_mark_complete(j2, t0 + seconds{40});
    job = kube::parse_job(j2);
    CHECK(job.complete());
    CHECK(job.completion_time.has_value());

    auto ft = kube::parse_job(obj(R"({"status":{"active":2,"failed":1,"conditions":[
        {"type":"FailureTarget","status":"True","reason":"BackoffLimitExceeded"},
        {"type":"Custom","status":"True"}]}})"));
    CHECK(ft.active == 2);
    CHECK(ft.failed == 1);
    CHECK(ft.failed_or_failing());
    REQUIRE(ft.conditions.size() == 2);
    CHECK(ft.conditions[0].reason == "BackoffLimitExceeded");
    CHECK(ft.conditions[1].type == kube::JobCondition::Type::other);
}

TEST_CASE("events: core/v1 and events.k8s.io/v1 shapes", "[kube][parse]") {
    auto core = kube::parse_event(obj(R"({"metadata":{"name":"e1","namespace":"n"},
        "involvedObject":{"kind":"Pod","name":"p","uid":"u"},"reason":"FailedScheduling","message":"m",
        "type":"Warning","count":3,"firstTimestamp":"2024-05-01T10:00:00Z","lastTimestamp":"2024-05-01T10:05:00Z"})"));
    CHECK(core.involved.kind == "Pod");
    CHECK(core.involved.name == "p");
    CHECK(core.reason == "FailedScheduling");
    CHECK(core.type == "Warning");
    CHECK(core.count == 3);
    CHECK(*core.last_timestamp - *core.first_timestamp == minutes{5});
    auto ev = kube::parse_event(obj(R"({"metadata":{"name":"e2"},"regarding":{"kind":"Pod","name":"q"},
        "note":"pulled","reason":"Pulled","type":"Normal","eventTime":"2024-05-01T10:00:00.000001Z",
        "series":{"count":7}})"));
    CHECK(ev.involved.name == "q");
    CHECK(ev.message == "pulled");
    CHECK(ev.count == 7);
    CHECK(ev.last_timestamp.has_value());
    CHECK(ev.first_timestamp == ev.last_timestamp);
    CHECK(kube::parse_event(obj(R"({"reason":"x"})")).count == 1);
}

TEST_CASE("Status parsing and classification", "[kube][parse]") {
    using kube::error;
    auto st = kube::parse_status(boost::json::parse(R"J({"kind":"Status","status":"Failure",
        "message":"too old resource version: 1 (5)","reason":"Expired","code":410})J"));
    CHECK(st.code == 410);
    CHECK(st.reason == "Expired");
    CHECK(st.message == "too old resource version: 1 (5)");
    CHECK(kube::error_for_status(0, st) == error::expired);
    CHECK(kube::error_for_status(410, st) == kube::condition::resync_required);

    CHECK(kube::error_for_status(410, {}) == error::expired);
    kube::ApiStatus gone;
    gone.reason = "Gone";
    CHECK(kube::error_for_status(500, gone) == error::expired);
    gone.reason = "ResourceExpired";
    CHECK(kube::error_for_status(410, gone) == error::expired);

    auto big = kube::parse_status(boost::json::parse(R"({"status":"Failure","reason":"Timeout","code":504,
        "message":"Too large resource version","details":{"causes":[{"reason":"ResourceVersionTooLarge",
        "message":"Too large resource version"}],"retryAfterSeconds":1}})"));
    CHECK(kube::error_for_status(504, big) == error::resource_version_too_large);
    CHECK(big.retry_after_seconds == 1);
    CHECK(kube::error_for_status(504, {}) == error::server_error);
    CHECK(kube::error_for_status(503, {}) == error::server_error);
    CHECK(kube::error_for_status(429, {}) == error::too_many_requests);
    CHECK(kube::error_for_status(401, {}) == error::unauthorized);
    CHECK(kube::error_for_status(403, {}) == error::forbidden);
    CHECK(kube::error_for_status(404, {}) == error::not_found);
    CHECK(kube::error_for_status(409, {}) == error::conflict);
    CHECK(kube::error_for_status(400, {}) == error::bad_request);
    CHECK(kube::error_for_status(422, {}) == error::bad_request);
    CHECK(kube::error_for_status(302, {}) == error::unexpected_status);
    CHECK_FALSE(kube::error_for_status(200, {}));
    kube::ApiStatus failure;
    failure.status = "Failure";
    CHECK(kube::error_for_status(0, failure) == error::server_error);
    CHECK(kube::is_fatal(kube::error_for_status(403, {})));
    CHECK(kube::is_retryable(kube::error_for_status(429, {})));

    kube::ApiStatus forbidden;
    forbidden.code = 403;
    forbidden.reason = "Forbidden";
    forbidden.message = "pods is forbidden: User \"x\"";
    auto d = kube::diagnostics_for(403, forbidden, "GET pods in namespace n", 7);
    CHECK(d.http_status == 403);
    CHECK(d.reason == "Forbidden");
    CHECK(d.server_message == "pods is forbidden: User \"x\"");
    CHECK(d.retry_after_seconds == 7);
    CHECK(d.to_string().find("check RBAC") != std::string::npos);
    CHECK(kube::diagnostics_for(429, kube::ApiStatus{}).reason == "Too Many Requests");
    CHECK(kube::parse_status(boost::json::value("x")) == kube::ApiStatus{});
}

TEST_CASE("resource paths and queries", "[kube][parse]") {
    using P = kube::ResourceTraits<kube::Pod>;
    using J = kube::ResourceTraits<kube::Job>;
    using E = kube::ResourceTraits<kube::Event>;
    static_assert(kube::Resource<kube::Pod> && kube::Resource<kube::Job> && kube::Resource<kube::Event>);
    CHECK(P::path("wf") == "/api/v1/namespaces/wf/pods");
    CHECK(P::path("wf", "p-1") == "/api/v1/namespaces/wf/pods/p-1");
    CHECK(P::path("") == "/api/v1/pods");
    CHECK(J::path("wf") == "/apis/batch/v1/namespaces/wf/jobs");
    CHECK(E::path("wf") == "/api/v1/namespaces/wf/events");
    CHECK(P::kind == "Pod");
    CHECK(J::kind == "Job");

    kube::ListQuery q;
    CHECK(kube::to_query_string(q).empty());
    q.label_selector = "app=hyperflow,tier in (a,b)";
    q.limit = 500;
    CHECK(P::target("wf", q) == "/api/v1/namespaces/wf/pods?labelSelector=app%3Dhyperflow%2Ctier%20in%20%28a%2Cb%29&limit=500");
    kube::ListQuery w;
    w.field_selector = "status.phase!=Running";
    w.resource_version = "123";
    w.watch = true;
    w.allow_watch_bookmarks = true;
    w.timeout_seconds = 333;
    CHECK(kube::to_query_string(w) ==
          "?watch=true&fieldSelector=status.phase%21%3DRunning&resourceVersion=123&allowWatchBookmarks=true&timeoutSeconds=333");
    kube::ListQuery c;
    c.resource_version_match = "NotOlderThan";
    c.continue_token = "abc/=+";
    CHECK(kube::to_query_string(c) == "?continue=abc%2F%3D%2B"); // no match without a resourceVersion
    CHECK(P::parse(obj(R"({"metadata":{"name":"x"}})")).meta.name == "x");
}

TEST_CASE("RFC 3339: the library's one parser and formatter, with every edge case", "[kube][parse][rfc3339]") {
    namespace k = execution_sentinel::kube;
    using P = k::Rfc3339Precision;
    auto ns = [](const char* s) { return k::format_rfc3339(*k::parse_rfc3339(s), P::nanoseconds); };
    CHECK(ns("2026-11-23T06:00:00Z") == "2026-11-23T06:00:00.000000000Z");
    CHECK(ns("2026-11-23t06:00:00z") == "2026-11-23T06:00:00.000000000Z"); // lower case
    CHECK(ns("2026-11-23 06:00:00Z") == "2026-11-23T06:00:00.000000000Z"); // space separator
    CHECK(ns("2026-11-23T06:00:00.5Z") == "2026-11-23T06:00:00.500000000Z");
    CHECK(ns("2026-11-23T06:00:00.123456789123Z") == "2026-11-23T06:00:00.123456789Z"); // beyond ns: dropped
    CHECK(ns("2026-11-23T08:30:00+02:30") == "2026-11-23T06:00:00.000000000Z");
    CHECK(ns("2026-11-23T00:00:00-01:00") == "2026-11-23T01:00:00.000000000Z");
    CHECK(ns("2016-12-31T23:59:60Z") == "2017-01-01T00:00:00.000000000Z"); // leap second
    CHECK(ns("2024-02-29T00:00:00Z") == "2024-02-29T00:00:00.000000000Z");
    for (const char* bad : {"", "2026-11-23", "2026-11-23T06:00:00", "2026-11-23T06:00:00ZZ", "2026-11-23T06:00Z",
                            "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                            "2026-00-01T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T06:60:00Z",
                            "2026-11-23T06:00:61Z", "2026-11-23T06:00:00.Z", "2026-11-23T06:00:00+24:00",
                            "2026-11-23T06:00:00+02:60", "2026-11-23T06:00:00+0200", "1677-12-31T23:59:59Z",
                            "2262-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-23T06:00:00Z ",
                            "2026/11/23T06:00:00Z", "２０２６-11-23T06:00:00Z"}) {
        INFO(bad);
        CHECK_FALSE(k::parse_rfc3339(bad).has_value());
        CHECK_FALSE(k::parse_timestamp(bad).has_value()); // the object parser's name for the same function
    }
    auto t = *k::parse_rfc3339("2026-11-23T05:36:11.123987Z");
    CHECK(k::format_rfc3339(t) == "2026-11-23T05:36:11Z");
    CHECK(k::format_rfc3339(t, P::milliseconds) == "2026-11-23T05:36:11.123Z");
    CHECK(execution_sentinel::format_timestamp(t) == "2026-11-23T05:36:11.123Z");
    CHECK(execution_sentinel::parse_rfc3339("2026-11-23T05:36:11.123Z") == k::parse_rfc3339("2026-11-23T05:36:11.123Z"));
    CHECK(k::format_rfc3339(*k::parse_rfc3339("1678-01-01T00:00:00Z")) == "1678-01-01T00:00:00Z");
    CHECK(k::format_rfc3339(*k::parse_rfc3339("2261-12-31T23:59:59Z")) == "2261-12-31T23:59:59Z");
}

TEST_CASE("percent-encoding: one path for query components and path segments", "[kube][parse][url]") {
    namespace k = execution_sentinel::kube;
    CHECK(k::escape_query_component("app=hyperflow,tier in (a,b)") == "app%3Dhyperflow%2Ctier%20in%20%28a%2Cb%29");
    CHECK(k::escape_query_component("a+b&c~d._-") == "a%2Bb%26c~d._-");
    CHECK(k::escape_query_component("\xc3\xa9") == "%C3%A9");
    CHECK(k::escape_path_segment("..") == "%2E%2E");
    CHECK(k::escape_path_segment("a/b?c#d%") == "a%2Fb%3Fc%23d%25");
    k::ListQuery q;
    q.label_selector = "a=b";
    CHECK(k::to_query_string(q).find("labelSelector=a%3Db") != std::string::npos);
}

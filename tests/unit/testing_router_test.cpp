// The simulated apiserver's router without sockets: request values in, responses and stream starts out.
#include <execution_sentinel/testing/detail/router.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "catch.hpp"

namespace d = execution_sentinel::testing::detail;
namespace json = boost::json;
namespace http = boost::beast::http;

namespace {

const std::string token = "secret-token-0123456789";

/// Records what the router tells the streams.
struct RecordingListener final : d::ChangeListener {
    std::vector<std::string> events;       ///< "TYPE name"
    std::vector<std::string> removed_pods; ///< "ns/name"
    void stored(const d::StoreEvent& e) override {
        events.push_back(e.type + " " + d::metadata_string(e.object, "name"));
    }
    void pod_removed(std::string_view ns, std::string_view pod) override {
        removed_pods.push_back(std::string(ns) + "/" + std::string(pod));
    }
};

struct Fixture {
    d::ClusterState state{100};
    RecordingListener listener;
    d::Router router{d::RouterConfig{token, "127.0.0.1:6443", std::chrono::seconds(1800)}, state, listener};
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();

    json::object add_pod(const std::string& name, json::object labels = {}, json::array containers = {}) {
        json::object pod{{"metadata", json::object{{"name", name}, {"labels", std::move(labels)}}},
                         {"status", json::object{{"phase", "Running"}}}};
        if (!containers.empty()) pod["spec"] = json::object{{"containers", std::move(containers)}};
        return router.create(*d::find_resource("pods"), "ns", std::move(pod));
    }

    d::Decision route(d::Request req) { return router.route(req, now); }

    /// A deferred answer gathered and built as the server does; `gathered` counts the batches.
    d::Response build(const d::DeferredResponse& deferred, const d::Request& req) {
        for (bool done = false; !done;) {
            done = deferred.gather();
            ++gathered;
        }
        return deferred.build(req);
    }
    int gathered = 0;

    /// The answer, a deferred one built at once.
    d::Response respond(d::Request req) {
        d::Decision decision = route(req);
        if (auto* deferred = std::get_if<d::DeferredResponse>(&decision)) return build(*deferred, req);
        REQUIRE(std::holds_alternative<d::Response>(decision));
        return std::get<d::Response>(std::move(decision));
    }
};

d::Request request(http::verb method, std::string target, std::string body = {}) {
    d::Request req{method, target, 11};
    req.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
    }
    return req;
}

d::Request get(std::string target) { return request(http::verb::get, std::move(target)); }

json::object body_of(const d::Response& res) { return json::parse(res.body()).as_object(); }

int status_code(const d::Response& res) { return static_cast<int>(res.result_int()); }

std::string reason_of(const d::Response& res) { return std::string(body_of(res).at("reason").as_string()); }

/// The parsed lines of a watch start.
std::vector<json::object> lines_of(const d::WatchStart& w) {
    std::vector<json::object> out;
    for (const auto& line : w.initial) out.push_back(json::parse(line).as_object());
    return out;
}

d::Request exec_request(std::string target) {
    d::Request req = get(std::move(target));
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    return req;
}

} // namespace

TEST_CASE("route_path maps apiserver paths", "[testing][router]") {
    using K = d::Route::Kind;
    CHECK(d::route_path({"version"}).kind == K::version);
    CHECK(d::route_path({"healthz"}).kind == K::health);
    CHECK(d::route_path({"api"}).kind == K::api);
    CHECK(d::route_path({"api", "v1"}).kind == K::api_v1);
    CHECK(d::route_path({"api", "v2"}).kind == K::not_found);
    CHECK(d::route_path({"apis", "batch"}).kind == K::group);
    CHECK(d::route_path({"apis", "apps"}).kind == K::not_found);
    CHECK(d::route_path({"apis", "batch", "v1"}).kind == K::group_version);
    auto all_pods = d::route_path({"api", "v1", "pods"});
    CHECK(all_pods.kind == K::collection);
    CHECK(all_pods.namespace_.empty());
    auto jobs = d::route_path({"apis", "batch", "v1", "namespaces", "ns", "jobs"});
    CHECK(jobs.kind == K::collection);
    CHECK(jobs.resource->plural == "jobs");
    CHECK(jobs.namespace_ == "ns");
    auto pod = d::route_path({"api", "v1", "namespaces", "ns", "pods", "p"});
    CHECK(pod.kind == K::object);
    CHECK(pod.name == "p");
    CHECK(d::route_path({"api", "v1", "namespaces", "ns", "pods", "p", "log"}).kind == K::log);
    CHECK(d::route_path({"api", "v1", "namespaces", "ns", "pods", "p", "exec"}).kind == K::exec);
    CHECK(d::route_path({"api", "v1", "namespaces", "ns", "pods", "p", "status"}).kind == K::status_subresource);
    // log and exec exist for pods only
    CHECK(d::route_path({"apis", "batch", "v1", "namespaces", "ns", "jobs", "j", "log"}).kind == K::not_found);
    CHECK(d::route_path({"api", "v1", "namespaces", "ns", "secrets"}).kind == K::not_found);
    CHECK(d::route_path({"api", "v1", "namespaces", "", "pods"}).kind == K::not_found);
}

TEST_CASE("Router admits a verified client certificate or the bearer token, else 401", "[testing][router][auth]") {
    Fixture f;
    d::Request anonymous{http::verb::get, "/version", 11};
    auto a = f.router.admit(anonymous, false);
    REQUIRE(a.early);
    CHECK(status_code(*a.early) == 401);
    CHECK(reason_of(*a.early) == "Unauthorized");

    d::Request wrong = get("/version");
    wrong.set(http::field::authorization, "Bearer not-the-token");
    CHECK(f.router.admit(wrong, false).early);
    d::Request basic = get("/version");
    basic.set(http::field::authorization, "Basic " + token);
    CHECK(f.router.admit(basic, false).early);
    d::Request empty = get("/version");
    empty.set(http::field::authorization, "Bearer ");
    CHECK(f.router.admit(empty, false).early);

    d::Request lower = get("/version");
    lower.set(http::field::authorization, "bearer  " + token + " ");
    CHECK_FALSE(f.router.admit(lower, false).early);
    CHECK_FALSE(f.router.admit(get("/version"), false).early);
    CHECK_FALSE(f.router.admit(anonymous, true).early);
    CHECK(f.state.stats.requests == 7);
    CHECK(f.state.stats.unauthorized == 4);
}

TEST_CASE("Router answers injected failures first, with Retry-After, then recovers", "[testing][router][faults]") {
    Fixture f;
    f.state.fail_count = 2;
    f.state.fail_status = 503;
    f.state.fail_retry_after = 7;
    f.state.delay = std::chrono::milliseconds(250);
    for (int i = 0; i < 2; ++i) {
        auto a = f.router.admit(get("/api/v1/namespaces/ns/pods"), false);
        REQUIRE(a.early);
        CHECK(status_code(*a.early) == 503);
        CHECK(reason_of(*a.early) == "ServiceUnavailable");
        CHECK((*a.early)[http::field::retry_after] == "7");
        CHECK(a.delay == std::chrono::milliseconds(250));
    }
    CHECK_FALSE(f.router.admit(get("/api/v1/namespaces/ns/pods"), false).early);
    CHECK(f.state.stats.injected_failures == 2);

    // An unauthenticated request does not use up an injected failure.
    f.state.fail_count = 1;
    f.state.fail_status = 429;
    f.state.fail_retry_after.reset();
    auto unauth = f.router.admit(d::Request{http::verb::get, "/version", 11}, false);
    REQUIRE(unauth.early);
    CHECK(status_code(*unauth.early) == 401);
    auto throttled = f.router.admit(get("/version"), false);
    REQUIRE(throttled.early);
    CHECK(status_code(*throttled.early) == 429);
    CHECK(reason_of(*throttled.early) == "TooManyRequests");
    CHECK((*throttled.early)[http::field::retry_after].empty());
    CHECK(d::injected_status(418).at("reason").as_string() == "BadRequest");
    CHECK(d::injected_status(502).at("reason").as_string() == "InternalError");
}

TEST_CASE("Router GETs objects and answers 404 NotFound for missing ones", "[testing][router][get]") {
    Fixture f;
    f.add_pod("a", {{"app", "hyperflow"}});
    auto res = f.respond(get("/api/v1/namespaces/ns/pods/a"));
    CHECK(status_code(res) == 200);
    CHECK(res[http::field::content_type] == "application/json");
    CHECK_FALSE(res["Audit-Id"].empty());
    auto obj = body_of(res);
    CHECK(obj.at("kind").as_string() == "Pod");
    CHECK(obj.at("metadata").at("name").as_string() == "a");

    auto status = f.respond(get("/api/v1/namespaces/ns/pods/a/status"));
    CHECK(status_code(status) == 200);

    auto missing = f.respond(get("/api/v1/namespaces/ns/pods/zz"));
    CHECK(status_code(missing) == 404);
    auto st = body_of(missing);
    CHECK(st.at("kind").as_string() == "Status");
    CHECK(st.at("reason").as_string() == "NotFound");
    CHECK(std::string(st.at("message").as_string()).find("\"zz\"") != std::string::npos);
    CHECK(st.at("details").at("name").as_string() == "zz");

    CHECK(status_code(f.respond(get("/apis/batch/v1/namespaces/ns/jobs/none"))) == 404);
    CHECK(status_code(f.respond(get("/apis/apps/v1/deployments"))) == 404);
    CHECK(status_code(f.respond(get("/openapi/v2"))) == 404);
    CHECK(status_code(f.respond(request(http::verb::post, "/api/v1/namespaces/ns/pods/a/log"))) == 405);
    CHECK(status_code(f.respond(request(http::verb::post, "/api/v1/pods", "{}"))) == 405);
    CHECK(f.state.stats.gets == 4);

    auto health = f.respond(get("/readyz"));
    CHECK(health.body() == "ok");
    auto api = body_of(f.respond(get("/api")));
    CHECK(api.at("serverAddressByClientCIDRs").at(0).at("serverAddress").as_string() == "127.0.0.1:6443");
}

TEST_CASE("Router LISTs with selectors, pages and resourceVersions", "[testing][router][list]") {
    Fixture f;
    f.add_pod("a", {{"app", "hyperflow"}});
    f.add_pod("b", {{"app", "other"}});
    f.add_pod("c", {{"app", "hyperflow"}});
    const auto rv = f.state.store.resource_version();

    auto all = body_of(f.respond(get("/api/v1/namespaces/ns/pods")));
    CHECK(all.at("kind").as_string() == "PodList");
    CHECK(all.at("metadata").at("resourceVersion").as_string() == std::to_string(rv));
    REQUIRE(all.at("items").as_array().size() == 3);
    CHECK_FALSE(all.at("items").at(0).as_object().contains("kind"));

    auto selected = body_of(f.respond(get("/api/v1/namespaces/ns/pods?labelSelector=app%3Dhyperflow")));
    REQUIRE(selected.at("items").as_array().size() == 2);
    CHECK(selected.at("items").at(1).at("metadata").at("name").as_string() == "c");
    auto by_field = body_of(f.respond(get("/api/v1/pods?fieldSelector=metadata.name%3Db")));
    REQUIRE(by_field.at("items").as_array().size() == 1);
    CHECK(by_field.at("items").at(0).at("metadata").at("name").as_string() == "b");

    auto bad_selector = f.respond(get("/api/v1/namespaces/ns/pods?labelSelector=app%3D%3D%3D"));
    CHECK(status_code(bad_selector) == 400);
    CHECK(reason_of(bad_selector) == "BadRequest");
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?fieldSelector=spec.nothing%3Dx"))) == 400);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?limit=x"))) == 400);

    // limit + continue
    auto page1 = body_of(f.respond(get("/api/v1/namespaces/ns/pods?limit=2")));
    REQUIRE(page1.at("items").as_array().size() == 2);
    const std::string cont(page1.at("metadata").at("continue").as_string());
    CHECK(page1.at("metadata").at("remainingItemCount").as_int64() == 1);
    auto page2 = body_of(f.respond(get("/api/v1/namespaces/ns/pods?limit=2&continue=" + cont)));
    REQUIRE(page2.at("items").as_array().size() == 1);
    CHECK(page2.at("items").at(0).at("metadata").at("name").as_string() == "c");
    CHECK_FALSE(page2.at("metadata").as_object().contains("continue"));
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?continue=%21%21"))) == 400);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?resourceVersion=5&continue=" + cont))) == 400);

    // a resourceVersion from the future: 504 with a ResourceVersionTooLarge cause, as the watch cache answers
    auto future = f.respond(get("/api/v1/namespaces/ns/pods?resourceVersion=" + std::to_string(rv + 100)));
    CHECK(status_code(future) == 504);
    CHECK(body_of(future).at("details").at("causes").at(0).at("reason").as_string() == "ResourceVersionTooLarge");

    // after compaction: the continue token is too old (410), an Exact paged list of an old version too
    f.add_pod("d");
    f.state.store.compact();
    auto expired = f.respond(get("/api/v1/namespaces/ns/pods?limit=2&continue=" + cont));
    CHECK(status_code(expired) == 410);
    CHECK(reason_of(expired) == "Expired");
    auto exact = f.respond(get("/api/v1/namespaces/ns/pods?limit=1&resourceVersionMatch=Exact&resourceVersion=" + std::to_string(rv)));
    CHECK(status_code(exact) == 410);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?resourceVersion=" + std::to_string(rv)))) == 200);
    CHECK(f.state.stats.lists >= 10);
}

TEST_CASE("Router starts watches: current state, resumed history, 410 after compaction", "[testing][router][watch]") {
    Fixture f;
    f.add_pod("a", {{"app", "hyperflow"}});
    f.add_pod("b", {{"app", "other"}});
    const auto rv_after_b = f.state.store.resource_version();
    f.add_pod("c", {{"app", "hyperflow"}});

    SECTION("without a resourceVersion: ADDED for every matching object") {
        auto decision = f.route(get("/api/v1/namespaces/ns/pods?watch=true&labelSelector=app%3Dhyperflow&allowWatchBookmarks=true"));
        REQUIRE(std::holds_alternative<d::WatchStart>(decision));
        const auto& w = std::get<d::WatchStart>(decision);
        auto lines = lines_of(w);
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].at("type").as_string() == "ADDED");
        CHECK(lines[0].at("object").at("metadata").at("name").as_string() == "a");
        CHECK(lines[1].at("object").at("metadata").at("name").as_string() == "c");
        CHECK_FALSE(w.end_after_initial);
        CHECK(w.bookmarks);
        CHECK(w.timeout == std::chrono::seconds(1800));
        CHECK(w.resource->plural == "pods");
        CHECK(w.filter.namespace_ == "ns");
        CHECK_FALSE(w.format.as_table);
        CHECK(f.state.stats.watches == 1);
    }
    SECTION("resourceVersion 0 is the current state too") {
        auto decision = f.route(get("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=0&timeoutSeconds=30"));
        REQUIRE(std::holds_alternative<d::WatchStart>(decision));
        CHECK(std::get<d::WatchStart>(decision).initial.size() == 3);
        CHECK(std::get<d::WatchStart>(decision).timeout == std::chrono::seconds(30));
        CHECK_FALSE(std::get<d::WatchStart>(decision).bookmarks);
    }
    SECTION("from a resourceVersion: the retained events after it") {
        auto decision = f.route(get("/api/v1/namespaces/ns/pods?watch=true&resourceVersion=" + std::to_string(rv_after_b)));
        REQUIRE(std::holds_alternative<d::WatchStart>(decision));
        auto lines = lines_of(std::get<d::WatchStart>(decision));
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].at("object").at("metadata").at("name").as_string() == "c");
    }
    SECTION("from a compacted resourceVersion: one ERROR event with a 410 Expired Status, then the end") {
        f.state.store.compact();
        auto decision = f.route(get("/api/v1/namespaces/ns/pods?watch=true&resourceVersion=" + std::to_string(rv_after_b)));
        REQUIRE(std::holds_alternative<d::WatchStart>(decision));
        const auto& w = std::get<d::WatchStart>(decision);
        CHECK(w.end_after_initial);
        auto lines = lines_of(w);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].at("type").as_string() == "ERROR");
        CHECK(lines[0].at("object").at("code").as_int64() == 410);
        CHECK(lines[0].at("object").at("reason").as_string() == "Expired");
    }
    SECTION("invalid parameters are 400 responses, not streams") {
        CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?watch=true&resourceVersion=abc"))) == 400);
        CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?watch=true&timeoutSeconds=-1"))) == 400);
        CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods?watch=true&labelSelector=%3D%3D"))) == 400);
        CHECK(f.state.stats.watches == 0);
    }
    SECTION("kubectl get --watch asks for Tables") {
        d::Request req = get("/api/v1/namespaces/ns/pods?watch=true&includeObject=None");
        req.set(http::field::accept, "application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
        auto decision = f.route(std::move(req));
        REQUIRE(std::holds_alternative<d::WatchStart>(decision));
        const auto& w = std::get<d::WatchStart>(decision);
        CHECK(w.format.as_table);
        auto lines = lines_of(w);
        REQUIRE(lines.size() == 3);
        CHECK(lines[0].at("object").at("kind").as_string() == "Table");
    }
}

TEST_CASE("Router writes: create, merge patch, conflicts, delete, delete collection", "[testing][router][write]") {
    Fixture f;
    auto created = f.respond(request(http::verb::post, "/api/v1/namespaces/ns/configmaps",
                                     R"({"metadata":{"name":"cm","labels":{"k":"v"}},"data":{"x":"1"}})"));
    CHECK(status_code(created) == 201);
    CHECK(body_of(created).at("metadata").at("namespace").as_string() == "ns");
    auto exists = f.respond(request(http::verb::post, "/api/v1/namespaces/ns/configmaps", R"({"metadata":{"name":"cm"}})"));
    CHECK(status_code(exists) == 409);
    CHECK(reason_of(exists) == "AlreadyExists");
    CHECK(status_code(f.respond(request(http::verb::post, "/api/v1/namespaces/ns/configmaps", "{not json"))) == 400);
    CHECK(status_code(f.respond(request(http::verb::post, "/api/v1/namespaces/ns/configmaps", "[1]"))) == 400);

    auto patch = request(http::verb::patch, "/api/v1/namespaces/ns/configmaps/cm", R"({"data":{"x":null,"y":"2"}})");
    patch.set(http::field::content_type, "application/merge-patch+json");
    auto patched = body_of(f.respond(patch));
    CHECK_FALSE(patched.at("data").as_object().contains("x"));
    CHECK(patched.at("data").at("y").as_string() == "2");

    auto json_patch = request(http::verb::patch, "/api/v1/namespaces/ns/configmaps/cm", R"([{"op":"remove","path":"/data"}])");
    json_patch.set(http::field::content_type, "application/json-patch+json");
    CHECK(status_code(f.respond(json_patch)) == 415);
    auto stale = request(http::verb::patch, "/api/v1/namespaces/ns/configmaps/cm", R"({"metadata":{"resourceVersion":"1"}})");
    stale.set(http::field::content_type, "application/merge-patch+json");
    CHECK(status_code(f.respond(stale)) == 409);
    auto absent = request(http::verb::patch, "/api/v1/namespaces/ns/configmaps/none", R"({"data":{}})");
    absent.set(http::field::content_type, "application/merge-patch+json");
    CHECK(status_code(f.respond(absent)) == 404);

    // DeleteOptions' preconditions: another uid or resourceVersion is a 409 Conflict and the object stays.
    const auto cm_uid = std::string(patched.at("metadata").at("uid").as_string());
    const auto cm_rv = std::string(patched.at("metadata").at("resourceVersion").as_string());
    auto wrong_uid = f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm",
                                       R"({"kind":"DeleteOptions","preconditions":{"uid":"not-this-one"}})"));
    CHECK(status_code(wrong_uid) == 409);
    CHECK(reason_of(wrong_uid) == "Conflict");
    CHECK(body_of(wrong_uid).at("message").as_string() ==
          "Precondition failed: UID in precondition: not-this-one, UID in object meta: " + cm_uid);
    auto stale_rv = f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm",
                                      R"({"preconditions":{"resourceVersion":"1"}})"));
    CHECK(status_code(stale_rv) == 409);
    CHECK(status_code(f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm", "[1]"))) == 400);
    CHECK(f.state.store.get(*d::find_resource("configmaps"), "ns", "cm") != nullptr);
    auto matching = f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm",
                                      R"({"preconditions":{"uid":")" + cm_uid + R"(","resourceVersion":")" + cm_rv + R"("}})"));
    CHECK(status_code(matching) == 200);
    CHECK(f.state.store.get(*d::find_resource("configmaps"), "ns", "cm") == nullptr);
    f.listener.events.pop_back(); // (its DELETED event)
    REQUIRE(status_code(f.respond(request(http::verb::post, "/api/v1/namespaces/ns/configmaps",
                                          R"({"metadata":{"name":"cm","labels":{"k":"v"}},"data":{"y":"2"}})"))) == 201);
    f.listener.events.pop_back(); // (its ADDED event)

    auto deleted = body_of(f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm")));
    CHECK(deleted.at("kind").as_string() == "Status");
    CHECK(deleted.at("status").as_string() == "Success");
    CHECK(status_code(f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/configmaps/cm"))) == 404);
    CHECK(f.listener.events == std::vector<std::string>{"ADDED cm", "MODIFIED cm", "DELETED cm"});

    // Deleting pods returns the object, forgets their files and logs, and ends their log streams.
    f.add_pod("p1", {{"app", "x"}});
    f.add_pod("p2", {{"app", "x"}});
    f.add_pod("p3", {{"app", "y"}});
    f.state.files[{"ns", "p1"}]["/f"] = "content";
    f.state.logs[{"ns", "p1", "main"}].current.push_back({f.now, "line"});
    auto pod = body_of(f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/pods/p1")));
    CHECK(pod.at("kind").as_string() == "Pod");
    CHECK(f.state.files.empty());
    CHECK(f.state.logs.empty());
    auto collection = body_of(f.respond(request(http::verb::delete_, "/api/v1/namespaces/ns/pods?labelSelector=app%3Dx")));
    CHECK(collection.at("kind").as_string() == "PodList");
    REQUIRE(collection.at("items").as_array().size() == 1);
    CHECK(collection.at("items").at(0).at("metadata").at("name").as_string() == "p2");
    CHECK(f.listener.removed_pods == std::vector<std::string>{"ns/p1", "ns/p2"});
    CHECK(f.state.store.get(*d::find_resource("pods"), "ns", "p3") != nullptr);
}

TEST_CASE("Router serves logs: whole, followed, previous, waiting containers", "[testing][router][logs]") {
    Fixture f;
    f.add_pod("p", {}, json::array{json::object{{"name", "main"}}});
    auto& log = f.state.logs[{"ns", "p", "main"}];
    log.current.push_back({f.now - std::chrono::seconds(20), "one"});
    log.current.push_back({f.now - std::chrono::seconds(5), "two"});

    auto whole = f.respond(get("/api/v1/namespaces/ns/pods/p/log"));
    CHECK(whole.body() == "one\ntwo\n");
    CHECK(whole[http::field::content_type] == "text/plain");
    CHECK(f.respond(get("/api/v1/namespaces/ns/pods/p/log?tailLines=1")).body() == "two\n");
    CHECK(f.respond(get("/api/v1/namespaces/ns/pods/p/log?sinceSeconds=10")).body() == "two\n");
    CHECK(f.respond(get("/api/v1/namespaces/ns/pods/p/log?limitBytes=2")).body() == "on");
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods/p/log?sinceTime=yesterday"))) == 400);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods/p/log?limitBytes=0"))) == 400);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods/p/log?container=other"))) == 400);
    CHECK(status_code(f.respond(get("/api/v1/namespaces/ns/pods/none/log"))) == 404);
    auto no_previous = f.respond(get("/api/v1/namespaces/ns/pods/p/log?previous=true"));
    CHECK(status_code(no_previous) == 400);
    CHECK(std::string(body_of(no_previous).at("message").as_string()).find("previous terminated container") != std::string::npos);

    auto decision = f.route(get("/api/v1/namespaces/ns/pods/p/log?follow=true&timestamps=true"));
    REQUIRE(std::holds_alternative<d::LogFollow>(decision));
    const auto& follow = std::get<d::LogFollow>(decision);
    CHECK(follow.ns == "ns");
    CHECK(follow.pod == "p");
    CHECK(follow.container == "main");
    CHECK(follow.timestamps);
    CHECK(follow.initial.find(" one\n") != std::string::npos);

    log.previous = std::vector<d::LogLine>{{f.now, "before restart"}};
    // previous=true never follows
    CHECK(f.respond(get("/api/v1/namespaces/ns/pods/p/log?previous=true&follow=true")).body() == "before restart\n");

    // A container that never started has no log yet, as the kubelet answers.
    json::object waiting{{"metadata", json::object{{"name", "w"}}},
                         {"spec", json::object{{"containers", json::array{json::object{{"name", "main"}}}}}},
                         {"status", json::object{{"containerStatuses", json::array{json::object{
                                        {"name", "main"}, {"state", json::object{{"waiting", json::object{{"reason", "ImagePullBackOff"}}}}}}}}}}};
    f.router.create(*d::find_resource("pods"), "ns", waiting);
    auto not_started = f.respond(get("/api/v1/namespaces/ns/pods/w/log"));
    CHECK(status_code(not_started) == 400);
    CHECK(std::string(body_of(not_started).at("message").as_string()).find("is waiting to start: ImagePullBackOff") != std::string::npos);
    CHECK(f.state.stats.logs == 10); // the two requests with invalid parameters are not counted
}

TEST_CASE("Router starts exec sessions with the frames decided up front", "[testing][router][exec]") {
    Fixture f;
    f.add_pod("p", {}, json::array{json::object{{"name", "main"}}});
    f.state.files[{"ns", "p"}]["/work_dir/.workflow-exit-code"] = "0\n";
    const std::string cat = "/api/v1/namespaces/ns/pods/p/exec?command=cat&command=%2Fwork_dir%2F.workflow-exit-code&stdout=true&stderr=true";

    auto not_upgrade = f.respond(get(cat));
    CHECK(status_code(not_upgrade) == 400);
    CHECK(body_of(not_upgrade).at("message").as_string() == "Upgrade request required");

    auto no_protocol = f.respond(exec_request(cat));
    CHECK(status_code(no_protocol) == 400);
    auto req = exec_request(cat);
    req.set(http::field::sec_websocket_protocol, "v3.channel.k8s.io, v4.channel.k8s.io");
    auto decision = f.route(req);
    REQUIRE(std::holds_alternative<d::ExecStart>(decision));
    const auto& exec = std::get<d::ExecStart>(decision);
    CHECK(exec.protocol == "v4.channel.k8s.io");
    REQUIRE(exec.frames.size() == 3);
    CHECK(exec.frames[0] == std::string(1, '\1'));
    CHECK(exec.frames[1] == std::string(1, '\1') + "0\n");
    CHECK(exec.frames[2].front() == '\3');
    CHECK(json::parse(exec.frames[2].substr(1)).at("status").as_string() == "Success");

    auto missing = exec_request("/api/v1/namespaces/ns/pods/p/exec?command=cat&command=%2Fnone&stdout=true&stderr=true");
    missing.set(http::field::sec_websocket_protocol, "v5.channel.k8s.io");
    auto failed = f.route(missing);
    REQUIRE(std::holds_alternative<d::ExecStart>(failed));
    const auto& frames = std::get<d::ExecStart>(failed).frames;
    CHECK(frames.back().front() == '\3');
    auto status = json::parse(frames.back().substr(1)).as_object();
    CHECK(status.at("status").as_string() == "Failure");
    CHECK(status.at("reason").as_string() == "NonZeroExitCode");
    CHECK(status.at("message").as_string() == "command terminated with non-zero exit code: error executing command [cat /none], exit code 1");

    CHECK(status_code(f.respond(exec_request("/api/v1/namespaces/ns/pods/none/exec?command=true&stdout=true"))) == 404);
    CHECK(status_code(f.respond(exec_request("/api/v1/namespaces/ns/pods/p/exec?command=true"))) == 400);
    CHECK(status_code(f.respond(exec_request("/api/v1/namespaces/ns/pods/p/exec?stdout=true"))) == 400);
    CHECK(status_code(f.respond(request(http::verb::put, "/api/v1/namespaces/ns/pods/p/exec"))) == 405);
    CHECK(f.state.stats.execs == 7); // the 405 is not an exec
}

TEST_CASE("exec_frames splits large output and merges stderr with a TTY", "[testing][router][exec]") {
    d::ExecResult result;
    result.stdout_data = std::string(40 * 1024, 'o');
    result.stderr_data = "err";
    auto frames = d::exec_frames(result, {"cat", "big"}, true, true, false);
    REQUIRE(frames.size() == 5);
    CHECK(frames[1].size() == 32 * 1024 + 1);
    CHECK(frames[2].size() == 8 * 1024 + 1);
    CHECK(frames[3] == std::string(1, '\2') + "err");
    auto tty = d::exec_frames(result, {"cat", "big"}, true, true, true);
    REQUIRE(tty.size() == 4);
    CHECK(tty[2].substr(tty[2].size() - 3) == "err");
    auto stderr_only = d::exec_frames(result, {"x"}, false, true, false);
    CHECK(stderr_only[0] == std::string(1, '\2'));
    CHECK(stderr_only.size() == 3);
}

TEST_CASE("Router answers malformed targets and requests with 400", "[testing][router]") {
    Fixture f;
    auto res = f.respond(get("no-slash"));
    CHECK(status_code(res) == 400);
    CHECK(body_of(res).at("message").as_string() == "malformed request target");
    auto malformed = d::malformed_request_response("bad method");
    CHECK(status_code(malformed) == 400);
    CHECK_FALSE(malformed.keep_alive());
    CHECK(body_of(malformed).at("message").as_string() == "malformed HTTP request: bad method");
    CHECK(d::parse_bool("T") == true);
    CHECK(d::parse_bool("False") == false);
    CHECK_FALSE(d::parse_bool("yes"));
}

// ------------------------------------------------------------------------------------------------ metrics API

TEST_CASE("metrics quantities and windows are written as apimachinery and Go write them", "[testing][metrics]") {
    namespace es = execution_sentinel::testing;
    CHECK(es::format_cpu_quantity(250'000'000) == "250m");
    CHECK(es::format_cpu_quantity(1'234'567) == "1234567n");
    CHECK(es::format_cpu_quantity(2'000'000'000) == "2");
    CHECK(es::format_cpu_quantity(1'500'000'000) == "1500m");
    CHECK(es::format_cpu_quantity(1'234'000) == "1234u");
    CHECK(es::format_cpu_quantity(0) == "0");
    CHECK(es::format_memory_quantity(126'418'944) == "123456Ki");
    CHECK(es::format_memory_quantity(900LL * 1024 * 1024) == "900Mi");
    CHECK(es::format_memory_quantity(1024LL * 1024 * 1024) == "1Gi");
    CHECK(es::format_memory_quantity(1000) == "1000");
    CHECK(es::format_memory_quantity(1500) == "1500");
    CHECK(es::format_go_duration(std::chrono::seconds(15)) == "15s");
    CHECK(es::format_go_duration(std::chrono::milliseconds(20048)) == "20.048s");
    CHECK(es::format_go_duration(std::chrono::milliseconds(300)) == "300ms");
    CHECK(es::format_go_duration(std::chrono::seconds(60)) == "1m0s");
    CHECK(es::format_go_duration(std::chrono::seconds(3725)) == "1h2m5s");
    CHECK(es::metrics_api_from("forbidden") == es::MetricsApi::forbidden);
    CHECK_FALSE(es::metrics_api_from("maybe"));
}

TEST_CASE("route_path maps metrics.k8s.io paths", "[testing][router][metrics]") {
    using K = d::Route::Kind;
    CHECK(d::route_path({"apis", "metrics.k8s.io"}).kind == K::metrics_group);
    CHECK(d::route_path({"apis", "metrics.k8s.io", "v1beta1"}).kind == K::metrics_group_version);
    CHECK(d::route_path({"apis", "metrics.k8s.io", "v1"}).kind == K::not_found);
    auto all = d::route_path({"apis", "metrics.k8s.io", "v1beta1", "pods"});
    CHECK(all.kind == K::metrics_pods);
    CHECK(all.namespace_.empty());
    auto list = d::route_path({"apis", "metrics.k8s.io", "v1beta1", "namespaces", "wf", "pods"});
    CHECK(list.kind == K::metrics_pods);
    CHECK(list.namespace_ == "wf");
    auto one = d::route_path({"apis", "metrics.k8s.io", "v1beta1", "namespaces", "wf", "pods", "p"});
    CHECK(one.kind == K::metrics_pod);
    CHECK(one.name == "p");
    CHECK(d::route_path({"apis", "metrics.k8s.io", "v1beta1", "nodes"}).kind == K::metrics_nodes);
    CHECK(d::route_path({"apis", "metrics.k8s.io", "v1beta1", "namespaces", "wf", "jobs"}).kind == K::not_found);
    CHECK(d::route_path({"apis", "metrics.k8s.io", "v1beta1", "namespaces", "wf", "pods", "p", "x"}).kind == K::not_found);
}

TEST_CASE("Router serves PodMetrics as metrics-server does", "[testing][router][metrics]") {
    Fixture f;
    const auto containers = json::array{json::object{{"name", "test"}}};
    f.add_pod("task-a", {{"app", "hyperflow"}}, containers);
    f.add_pod("task-b", {{"app", "other"}}, containers);
    json::object pending{{"metadata", json::object{{"name", "task-p"}, {"labels", json::object{{"app", "hyperflow"}}}}},
                         {"spec", json::object{{"containers", containers}}},
                         {"status", json::object{{"phase", "Pending"}}}};
    f.router.create(*d::find_resource("pods"), "ns", pending);
    d::PodUsage u;
    u.timestamp = f.now - std::chrono::seconds(3);
    u.window = std::chrono::milliseconds(15000);
    u.containers = {{"test", 250'000'000, 900LL * 1024 * 1024}};
    f.state.usage[{"ns", "task-a"}] = u;

    auto list = f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app%3Dhyperflow"));
    REQUIRE(status_code(list) == 200);
    auto body = body_of(list);
    CHECK(body.at("kind") == "PodMetricsList");
    CHECK(body.at("apiVersion") == "metrics.k8s.io/v1beta1");
    CHECK(body.at("metadata").as_object().empty());
    // Only the running pod matching the selector; the Pending one has no metrics.
    auto& items = body.at("items").as_array();
    REQUIRE(items.size() == 1);
    auto& item = items[0].as_object();
    CHECK_FALSE(item.contains("kind"));
    CHECK(item.at("metadata").at("name") == "task-a");
    CHECK(item.at("metadata").at("namespace") == "ns");
    CHECK(item.at("metadata").at("labels").at("app") == "hyperflow");
    CHECK(item.at("timestamp") == json::value(d::format_rfc3339(u.timestamp)));
    CHECK(item.at("window") == "15s");
    auto& c = item.at("containers").as_array().at(0).as_object();
    CHECK(c.at("name") == "test");
    CHECK(c.at("usage").at("cpu") == "250m");
    CHECK(c.at("usage").at("memory") == "900Mi");

    // Without a selector: both running pods; the one nobody set reports the baseline.
    auto all = body_of(f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods")));
    REQUIRE(all.at("items").as_array().size() == 2);
    auto& baseline = all.at("items").as_array().at(1).as_object();
    CHECK(baseline.at("metadata").at("name") == "task-b");
    CHECK(baseline.at("containers").as_array().at(0).at("usage").at("cpu") == "2m");
    CHECK(baseline.at("containers").as_array().at(0).at("usage").at("memory") == "24Mi");
    CHECK(body_of(f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/other/pods"))).at("items").as_array().empty());
    CHECK(body_of(f.respond(get("/apis/metrics.k8s.io/v1beta1/pods"))).at("items").as_array().size() == 2);
    CHECK(status_code(f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app+in+(x)"))) == 400);

    auto one = f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/task-a"));
    REQUIRE(status_code(one) == 200);
    CHECK(body_of(one).at("kind") == "PodMetrics");
    CHECK(body_of(one).at("apiVersion") == "metrics.k8s.io/v1beta1");
    CHECK(body_of(one).at("containers").as_array().at(0).at("usage").at("memory") == "900Mi");
    auto not_running = f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/task-p"));
    CHECK(status_code(not_running) == 404);
    CHECK(body_of(not_running).at("message") == "pods.metrics.k8s.io \"ns/task-p\" not found");
    auto missing = f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/nope"));
    CHECK(status_code(missing) == 404);
    CHECK(body_of(missing).at("message") == "pod \"nope\" not found");
    CHECK(f.state.stats.metrics == 7);

    // get and list only
    CHECK(status_code(f.respond(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?watch=1"))) == 405);
    CHECK(status_code(f.respond(request(http::verb::delete_, "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/task-a"))) == 405);

    // Discovery lists the group; its resources are pods and nodes.
    auto groups = body_of(f.respond(get("/apis"))).at("groups").as_array();
    CHECK(std::any_of(groups.begin(), groups.end(), [](auto& g) { return g.at("name") == "metrics.k8s.io"; }));
    auto resources = body_of(f.respond(get("/apis/metrics.k8s.io/v1beta1")));
    CHECK(resources.at("groupVersion") == "metrics.k8s.io/v1beta1");
    CHECK(resources.at("resources").as_array().size() == 2);

    // A list is gathered after the routing, a batch of pods at a time, and built after that: what changes in
    // between is in it, as metrics-server's own cache follows the pods.
    auto decided = f.route(get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods?labelSelector=app%3Dhyperflow"));
    REQUIRE(std::holds_alternative<d::DeferredResponse>(decided));
    f.router.remove(*d::find_resource("pods"), "ns", "task-a");
    CHECK(f.state.usage.count({"ns", "task-a"}) == 0); // a deleted pod takes its usage with it
    for (int i = 0; i < 300; ++i) f.add_pod("task-" + std::to_string(1000 + i), {{"app", "hyperflow"}}, containers);
    f.gathered = 0;
    auto built = body_of(f.build(std::get<d::DeferredResponse>(decided), get("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods")));
    CHECK(f.gathered == (302 + d::Router::metrics_batch - 1) / d::Router::metrics_batch); // 302 pods, batches of 64
    REQUIRE(built.at("items").as_array().size() == 300);
    CHECK(built.at("items").as_array().at(0).at("metadata").at("name") == "task-1000");
    CHECK(built.at("items").as_array().at(299).at("metadata").at("name") == "task-1299");
}

TEST_CASE("Router answers 404, 403 or 503 when the metrics API is absent, forbidden or down", "[testing][router][metrics]") {
    Fixture f;
    f.add_pod("p", {}, json::array{json::object{{"name", "test"}}});
    const std::string list = "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods";

    f.state.metrics_api = execution_sentinel::testing::MetricsApi::absent;
    auto absent = f.respond(get(list));
    CHECK(status_code(absent) == 404);
    CHECK(reason_of(absent) == "NotFound");
    CHECK(body_of(absent).at("message") == "the server could not find the requested resource");
    CHECK(status_code(f.respond(get("/apis/metrics.k8s.io/v1beta1"))) == 404);
    CHECK(status_code(f.respond(get("/apis/metrics.k8s.io"))) == 404);
    auto groups = body_of(f.respond(get("/apis"))).at("groups").as_array();
    CHECK(std::none_of(groups.begin(), groups.end(), [](auto& g) { return g.at("name") == "metrics.k8s.io"; }));

    f.state.metrics_api = execution_sentinel::testing::MetricsApi::forbidden;
    auto forbidden = f.respond(get(list));
    CHECK(status_code(forbidden) == 403);
    CHECK(reason_of(forbidden) == "Forbidden");
    CHECK(body_of(forbidden).at("message") ==
          "pods.metrics.k8s.io is forbidden: User \"fake-client\" cannot list resource \"pods\" in API group "
          "\"metrics.k8s.io\" in the namespace \"ns\"");
    CHECK(status_code(f.respond(get(list + "/p"))) == 403);
    CHECK(status_code(f.respond(get("/apis/metrics.k8s.io/v1beta1"))) == 200); // discovery stays allowed

    f.state.metrics_api = execution_sentinel::testing::MetricsApi::unavailable;
    auto down = f.respond(get(list));
    CHECK(status_code(down) == 503);
    CHECK(reason_of(down) == "ServiceUnavailable");
    CHECK(f.state.stats.metrics == 0);

    f.state.metrics_api = execution_sentinel::testing::MetricsApi::available;
    CHECK(status_code(f.respond(get(list))) == 200);
}

// The HTTP server's decisions without sockets: request targets, routing, the answers to hostile requests (read byte by
// byte as a socket may deliver them), response messages, readiness, and the event hub's queues.
#include <execution_sentinel/serve/event_stream.hpp>
#include <execution_sentinel/serve/http_server.hpp>
#include <execution_sentinel/serve/router.hpp>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/json/parse.hpp>

#include <string>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace sv = execution_sentinel::serve;
namespace http = boost::beast::http;

namespace {

sv::Router test_router() {
    sv::Router r;
    r.get("/healthz", [](const sv::RouteRequest&) { return sv::HttpResponse::json(200, {{"status", "ok"}}); });
    r.get("/api/v1/runs/{namespace}/{run}", [](const sv::RouteRequest& q) {
        boost::json::object o;
        o["namespace"] = q.param("namespace");
        o["run"] = q.param("run");
        if (auto limit = q.query("limit")) o["limit"] = *limit;
        return sv::HttpResponse::json(200, o);
    });
    r.post("/api/v1/runs", [](const sv::RouteRequest& q) {
        auto v = q.json_body();
        return sv::HttpResponse::json(201, v);
    });
    r.get("/boom", [](const sv::RouteRequest&) -> sv::HttpResponse { throw std::runtime_error("secret detail"); });
    r.get("/bad", [](const sv::RouteRequest&) -> sv::HttpResponse { throw sv::HttpError(400, "limit must be a number"); });
    return r;
}

unsigned status_of(const sv::Router& r, const std::string& bytes, sv::HttpLimits limits = {}) {
    auto e = sv::exchange(r, bytes, limits);
    return e.result ? e.result->response.status : 0;
}

std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"; }

} // namespace

TEST_CASE("http: request targets are split and percent-decoded", "[serve][http]") {
    auto t = sv::parse_target("/api/v1/runs/wf/run%2D1?limit=10&q=a+b%21&flag");
    REQUIRE(t);
    CHECK(t->path == "/api/v1/runs/wf/run%2D1");
    CHECK(t->segments == std::vector<std::string>{"api", "v1", "runs", "wf", "run-1"});
    REQUIRE(t->query.size() == 3);
    CHECK(t->query[0] == std::pair<std::string, std::string>{"limit", "10"});
    CHECK(t->query[1] == std::pair<std::string, std::string>{"q", "a b!"});
    CHECK(t->query[2] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(sv::parse_target("/")->segments.empty());
    CHECK(sv::parse_target("/a/")->segments == std::vector<std::string>{"a", ""});

    CHECK_FALSE(sv::parse_target(""));
    CHECK_FALSE(sv::parse_target("*"));
    CHECK_FALSE(sv::parse_target("http://example.org/metrics"));
    CHECK_FALSE(sv::parse_target("/a%"));
    CHECK_FALSE(sv::parse_target("/a%4"));
    CHECK_FALSE(sv::parse_target("/a%zz"));
    CHECK_FALSE(sv::parse_target("/a%00b"));
    CHECK_FALSE(sv::parse_target("/a?x=%0a"));
    CHECK_FALSE(sv::parse_target("/a#frag"));
    std::string many = "/a?";
    for (int i = 0; i < 65; ++i) many += "k=v&";
    CHECK_FALSE(sv::parse_target(many));
}

TEST_CASE("http: the router answers by path and method", "[serve][http]") {
    const auto r = test_router();
    auto ok = sv::exchange(r, get("/api/v1/runs/wf/run%2D1?limit=5"), {});
    REQUIRE(ok.complete);
    CHECK(ok.result->handler == "/api/v1/runs/{namespace}/{run}");
    CHECK(boost::json::parse(ok.result->response.body) ==
          boost::json::parse(R"({"namespace":"wf","run":"run-1","limit":"5"})"));

    auto missing = sv::exchange(r, get("/nope"), {});
    CHECK(missing.result->response.status == 404);
    CHECK(missing.result->handler == "unmatched");
    CHECK(boost::json::parse(missing.result->response.body).at("error").at("code") == 404);
    CHECK(status_of(r, get("/healthz/")) == 404);
    CHECK(status_of(r, get("/api/v1/runs/wf/")) == 404); // an empty parameter matches nothing

    auto wrong = sv::exchange(r, "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", {});
    CHECK(wrong.result->response.status == 405);
    REQUIRE(wrong.result->response.headers.size() == 1);
    CHECK(wrong.result->response.headers[0] == std::pair<std::string, std::string>{"Allow", "GET, HEAD"});
    CHECK(status_of(r, "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 405); // a method nobody knows
    CHECK(status_of(r, "BREW /teapot HTTP/1.1\r\nHost: x\r\n\r\n") == 404);
    CHECK(status_of(r, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200);
    CHECK(status_of(r, "GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 400);

    auto boom = sv::exchange(r, get("/boom"), {});
    CHECK(boom.result->response.status == 500);
    CHECK(boom.result->response.body.find("secret") == std::string::npos);
    auto bad = sv::exchange(r, get("/bad"), {});
    CHECK(bad.result->response.status == 400);
    CHECK(bad.result->response.body.find("limit must be a number") != std::string::npos);

    const std::string json = R"({"run":"x"})";
    CHECK(status_of(r, "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(json.size()) + "\r\n\r\n" + json) == 201);
    CHECK(status_of(r, "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3"
                       "\r\n\r\n{x}") == 400);
    CHECK(status_of(r, "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2"
                       "\r\n\r\n{}") == 415);

    CHECK_THROWS_AS(sv::Router().get("metrics", {}), std::invalid_argument);
    CHECK_THROWS_AS(sv::Router().get("/a/{x}/{x}", {}), std::invalid_argument);
}

TEST_CASE("http: an error quoting a path that is not UTF-8 is still valid JSON", "[serve][http]") {
    const auto r = test_router();
    auto e = sv::exchange(r, get("/metric\xAD/\xFF"), {});
    REQUIRE(e.result);
    CHECK(e.result->response.status == 404);
    boost::system::error_code ec;
    auto v = boost::json::parse(e.result->response.body, ec);
    REQUIRE_FALSE(ec);
    CHECK(v.at("error").at("message") == "no resource at /metric\xEF\xBF\xBD/\xEF\xBF\xBD");
}

TEST_CASE("http: hostile requests get a 4xx", "[serve][http]") {
    const auto r = test_router();
    CHECK(status_of(r, "GARBAGE\r\n\r\n") == 400);
    CHECK(status_of(r, "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n") == 400);
    CHECK(status_of(r, "GET /healthz HTTP/1.1\r\n\r\n") == 400); // no Host
    CHECK(status_of(r, "GET /healthz HTTP/1.0\r\n\r\n") == 200);
    CHECK(status_of(r, "GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n") == 400);
    CHECK(status_of(r, "GET  /healthz HTTP/1.1\r\n\r\n") == 400);
    CHECK(status_of(r, "GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab") == 400);
    CHECK(status_of(r, "POST /api/v1/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 400);
    // Headers over 8 KiB.
    CHECK(status_of(r, "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n") == 431);
    CHECK(status_of(r, "GET /healthz HTTP/1.1\r\n" + std::string(8200, 'a') + "\r\n\r\n") == 431);
    // A body over 1 MiB, declared or chunked.
    CHECK(status_of(r, "POST /api/v1/runs HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n") == 413);
    std::string chunked = "POST /api/v1/runs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 20; ++i) chunked += "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
    chunked += "0\r\n\r\n";
    CHECK(status_of(r, chunked) == 413);
    // Smaller limits apply.
    CHECK(status_of(r, get("/healthz"), {.header_limit = 20}) == 431);
    // Incomplete: no answer yet (the server waits, up to its read timeout).
    auto partial = sv::exchange(r, "GET /healthz HTTP/1.1\r\nHost:", {});
    CHECK_FALSE(partial.complete);
    CHECK_FALSE(partial.result);
}

TEST_CASE("http: a request split at every byte gets the same answer", "[serve][http]") {
    const auto r = test_router();
    const std::string json = R"({"run":"x","n":[1,2,3]})";
    for (const std::string& req :
         {get("/api/v1/runs/wf/r1?limit=2"),
          "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(json.size()) + "\r\n\r\n" + json,
          std::string("POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
                      "\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"),
          std::string("GET /healthz HTTP/1.1\r\nX: ") + std::string(9000, 'a') + "\r\n\r\n"}) {
        const auto whole = sv::exchange(r, req, {}, req.size());
        REQUIRE(whole.result);
        for (std::size_t piece = 1; piece < 64; ++piece) {
            auto split = sv::exchange(r, req, {}, piece);
            INFO("piece " << piece);
            REQUIRE(split.result);
            CHECK(split.result->response.status == whole.result->response.status);
            CHECK(split.result->response.body == whole.result->response.body);
        }
    }
}

TEST_CASE("http: response messages", "[serve][http]") {
    auto r = sv::HttpResponse::json(200, {{"a", 1}});
    r.headers.emplace_back("X-Extra", "1");
    auto m = sv::to_message(r, 11, true, false);
    CHECK(m.result_int() == 200);
    CHECK(m[http::field::content_type] == "application/json");
    CHECK(m[http::field::content_length] == "7");
    CHECK(m["X-Extra"] == "1");
    CHECK(m.keep_alive());
    auto head = sv::to_message(r, 11, false, true);
    CHECK(head.body().empty());
    CHECK(head[http::field::content_length] == "7");
    CHECK_FALSE(head.keep_alive());
    auto old = sv::to_message(r, 10, false, false);
    CHECK(old.version() == 10);
}

TEST_CASE("http: readiness names what is not ready", "[serve][http]") {
    auto ready = sv::readiness_response({{"caches", true, ""}, {"store", true, "sqlite"}});
    CHECK(ready.status == 200);
    CHECK(boost::json::parse(ready.body) ==
          boost::json::parse(R"({"status":"ready","checks":[{"name":"caches","ready":true},
                                  {"name":"store","ready":true,"message":"sqlite"}]})"));
    auto not_ready = sv::readiness_response({{"caches", false, "pods not synced"}, {"store", true, ""}});
    CHECK(not_ready.status == 503);
    auto v = boost::json::parse(not_ready.body);
    CHECK(v.at("status") == "not_ready");
    CHECK(v.at("not_ready") == boost::json::parse(R"(["caches"])"));

    sv::Registry reg;
    sv::Router router;
    bool store_ok = true;
    sv::add_health_routes(router, reg, [&] { return std::vector<sv::ReadinessCheck>{{"store", store_ok, ""}}; });
    CHECK(status_of(router, get("/readyz")) == 200);
    store_ok = false;
    CHECK(status_of(router, get("/readyz")) == 503);
    CHECK(status_of(router, get("/healthz")) == 200);
    auto metrics = sv::exchange(router, get("/metrics"), {});
    CHECK(metrics.result->response.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(metrics.result->response.body.find("# TYPE execution_sentinel_metric_series_dropped_total counter") !=
          std::string::npos);
    sv::Router throwing;
    sv::add_health_routes(throwing, reg, []() -> std::vector<sv::ReadinessCheck> { throw std::runtime_error("x"); });
    CHECK(status_of(throwing, get("/readyz")) == 503);
}

TEST_CASE("event stream: the text/event-stream format", "[serve][events]") {
    CHECK(sv::format_event(7, "report", R"({"a":1})") == "id: 7\nevent: report\ndata: {\"a\":1}\n\n");
    CHECK(sv::format_event(1, "x", "one\ntwo\r\nthree\rfour") ==
          "id: 1\nevent: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
    CHECK(sv::format_event(2, "a\nb", "") == "id: 2\nevent: ab\ndata: \n\n");
    es::Report rep;
    rep.type = es::ReportType::ANOMALY_OOMKILL;
    rep.sequence = 3;
    auto v = boost::json::parse(sv::report_event_data(rep, "wf/run-1"));
    CHECK(v.at("type") == "ANOMALY_OOMKILL");
    CHECK(v.at("sequence") == 3);
    CHECK(v.at("run") == "wf/run-1");
}

TEST_CASE("event stream: publishing wakes waiting clients, filters topics and drops a client that falls behind",
          "[serve][events]") {
    sv::Registry reg;
    sv::EventHub hub({.max_clients = 2, .max_queued_events = 3}, &reg);
    std::vector<std::pair<int, bool>> wakes;
    auto all = hub.attach("", [&](bool drop) { wakes.emplace_back(1, drop); });
    auto one = hub.attach("wf/a", [&](bool drop) { wakes.emplace_back(2, drop); });
    CHECK_FALSE(hub.attach("", {})); // max_clients

    std::vector<std::shared_ptr<const std::string>> got;
    CHECK(hub.take(*all, got) == sv::EventHub::Take::empty); // now waiting
    CHECK(hub.publish("wf/b", "report", "1") == 1);
    CHECK(wakes == std::vector<std::pair<int, bool>>{{1, false}}); // only the waiting client, once
    CHECK(hub.publish("wf/a", "report", "2") == 2);
    CHECK(wakes.size() == 1); // not waiting any more: no second wake
    CHECK(hub.take(*all, got) == sv::EventHub::Take::events);
    REQUIRE(got.size() == 2);
    CHECK(*got[0] == "id: 1\nevent: report\ndata: 1\n\n");
    CHECK(*got[1] == "id: 2\nevent: report\ndata: 2\n\n");

    got.clear();
    CHECK(hub.take(*one, got) == sv::EventHub::Take::events);
    REQUIRE(got.size() == 1); // its topic only
    CHECK(*got[0] == "id: 2\nevent: report\ndata: 2\n\n");

    // `one` stops reading: the 4th queued event drops it; `all` keeps up and is not affected.
    wakes.clear();
    for (int i = 0; i < 4; ++i) {
        hub.publish("wf/a", "report", std::to_string(10 + i));
        got.clear();
        CHECK(hub.take(*all, got) == sv::EventHub::Take::events);
    }
    CHECK(wakes == std::vector<std::pair<int, bool>>{{2, true}});
    CHECK(hub.take(*one, got) == sv::EventHub::Take::dropped);
    CHECK(hub.stats().dropped == 1);
    CHECK(hub.stats().published == 6);
    hub.detach(one);
    hub.detach(one); // idempotent
    CHECK(hub.stats().clients == 1);
    const auto text = reg.expose();
    CHECK(text.find("execution_sentinel_event_stream_clients 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_event_stream_clients_dropped_total 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_event_stream_events_total 6\n") != std::string::npos);
}

TEST_CASE("event stream: a byte limit drops a client too", "[serve][events]") {
    sv::EventHub hub({.max_queued_bytes = 100});
    bool dropped = false;
    auto c = hub.attach("", [&](bool drop) { dropped = drop; });
    hub.publish("", "e", std::string(40, 'x'));
    CHECK_FALSE(dropped);
    hub.publish("", "e", std::string(40, 'x'));
    CHECK(dropped);
}

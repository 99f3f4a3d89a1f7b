// FakeCluster over real HTTPS, checked with a raw Beast client written here (not the project's kube client),
// so the server cannot pass by agreeing with the client under test.
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/detail/object_store.hpp> // the simulated cluster's own RFC 3339 helpers

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"

namespace {

namespace es = execution_sentinel;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

using Response = http::response<http::string_body>;

enum class Auth { none, token, wrong_token, certificate };

/// One HTTPS connection to the cluster. Every operation runs the private io_context until it completes; Beast's
/// tcp_stream timeouts bound each one, so a broken server fails the test instead of hanging it.
class Client {
public:
    explicit Client(const es::testing::FakeCluster& cluster, Auth auth = Auth::token)
        : cluster_(cluster), auth_(auth), ctx_(ssl::context::tls_client) {
        ctx_.add_certificate_authority(asio::buffer(cluster.ca_pem()));
        ctx_.set_verify_mode(ssl::verify_peer);
        ctx_.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
        if (auth == Auth::certificate) {
            const std::string cert = cluster.client_certificate_pem(), key = cluster.client_key_pem();
            ctx_.use_certificate_chain(asio::buffer(cert));
            ctx_.use_private_key(asio::buffer(key), ssl::context::pem);
        }
    }

    /// Connects and handshakes; returns the error instead of throwing (refuse_connections tests need it).
    boost::system::error_code connect() {
        stream_.emplace(ioc_, ctx_);
        boost::system::error_code result;
        beast::get_lowest_layer(*stream_).expires_after(5s);
        beast::get_lowest_layer(*stream_).async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), cluster_.port()), [&](boost::system::error_code ec) {
                if (ec) {
                    result = ec;
                    return;
                }
                stream_->async_handshake(ssl::stream_base::client, [&](boost::system::error_code hec) { result = hec; });
            });
        run();
        return result;
    }

    Response request(http::verb method, const std::string& target, const std::string& body = {},
                     const std::string& content_type = "application/json") {
        if (!stream_) REQUIRE_FALSE(connect());
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::accept, "application/json");
        authorize(req);
        if (!body.empty()) {
            req.set(http::field::content_type, content_type);
            req.body() = body;
        }
        req.prepare_payload();
        Response res;
        boost::system::error_code result;
        beast::get_lowest_layer(*stream_).expires_after(10s);
        http::async_write(*stream_, req, [&](boost::system::error_code ec, std::size_t) {
            if (ec) {
                result = ec;
                return;
            }
            http::async_read(*stream_, buffer_, res, [&](boost::system::error_code rec, std::size_t) { result = rec; });
        });
        run();
        INFO("request " << target.substr(0, 120) << ": " << result.message());
        REQUIRE_FALSE(result);
        if (!res.keep_alive()) stream_.reset();
        return res;
    }

    Response get(const std::string& target) { return request(http::verb::get, target); }

    /// Sends a GET and reads only the response header of a streaming answer.
    http::status open_stream(const std::string& target) {
        if (!stream_) REQUIRE_FALSE(connect());
        http::request<http::string_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        authorize(req);
        req.prepare_payload();
        parser_.emplace();
        parser_->body_limit(boost::none);
        consumed_ = 0;
        boost::system::error_code result;
        beast::get_lowest_layer(*stream_).expires_after(10s);
        http::async_write(*stream_, req, [&](boost::system::error_code ec, std::size_t) {
            if (ec) {
                result = ec;
                return;
            }
            http::async_read_header(*stream_, buffer_, *parser_, [&](boost::system::error_code rec, std::size_t) { result = rec; });
        });
        run();
        REQUIRE_FALSE(result);
        return parser_->get().result();
    }

    const http::response<http::string_body>& stream_response() const { return parser_->get(); }
    bool stream_done() const { return parser_->is_done(); }

    /// Reads until `count` complete lines arrived, the stream ended or `timeout` passed.
    std::vector<std::string> read_lines(std::size_t count, std::chrono::milliseconds timeout = 5s) {
        std::vector<std::string> lines;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto& body = parser_->get().body();
            std::size_t nl;
            while (lines.size() < count && (nl = body.find('\n', consumed_)) != std::string::npos) {
                lines.push_back(body.substr(consumed_, nl - consumed_));
                consumed_ = nl + 1;
            }
            if (lines.size() >= count || parser_->is_done()) return lines;
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= 0s) return lines;
            boost::system::error_code result;
            beast::get_lowest_layer(*stream_).expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
            http::async_read_some(*stream_, buffer_, *parser_, [&](boost::system::error_code ec, std::size_t) { result = ec; });
            run();
            if (result == beast::error::timeout) {
                stream_.reset();
                return lines;
            }
            if (result) return lines;
        }
    }

    /// Reads the rest of the stream until it ends (or `timeout`); returns whether it ended.
    bool read_to_end(std::chrono::milliseconds timeout = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!parser_->is_done()) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= 0s) return false;
            boost::system::error_code result;
            beast::get_lowest_layer(*stream_).expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
            http::async_read_some(*stream_, buffer_, *parser_, [&](boost::system::error_code ec, std::size_t) { result = ec; });
            run();
            if (result) return parser_->is_done();
        }
        return true;
    }

    std::string stream_body() const { return parser_->get().body(); }

private:
    template <class Message>
    void authorize(Message& req) const {
        if (auth_ == Auth::token) req.set(http::field::authorization, "Bearer " + cluster_.bearer_token());
        if (auth_ == Auth::wrong_token) req.set(http::field::authorization, "Bearer not-the-token");
    }

    void run() {
        ioc_.restart();
        ioc_.run();
    }

    const es::testing::FakeCluster& cluster_;
    Auth auth_;
    asio::io_context ioc_;
    ssl::context ctx_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    std::size_t consumed_ = 0;
};

json::object parse_object(const std::string& text) {
    json::value v = json::parse(text);
    REQUIRE(v.is_object());
    return v.as_object();
}

std::string str(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : std::string(); }

std::string rv_of(const json::object& o) { return str(o.at("metadata").as_object().at("resourceVersion")); }
std::string name_of(const json::object& o) { return str(o.at("metadata").as_object().at("name")); }

json::object pod(const std::string& name, const std::string& app = "hyperflow", const std::string& phase = "Running",
                 std::vector<std::string> containers = {"main"}) {
    json::array cs;
    for (const auto& c : containers) cs.push_back(json::object{{"name", c}, {"image", "busybox"}});
    return json::object{{"apiVersion", "v1"},
                        {"kind", "Pod"},
                        {"metadata", json::object{{"name", name}, {"labels", json::object{{"app", app}}}}},
                        {"spec", json::object{{"containers", cs}}},
                        {"status", json::object{{"phase", phase}}}};
}

/// Result of one exec session.
struct ExecOutcome {
    std::string protocol;
    std::vector<std::pair<int, std::string>> frames;
    std::string out(int channel) const {
        std::string s;
        for (const auto& [c, p] : frames)
            if (c == channel) s += p;
        return s;
    }
};

ExecOutcome run_exec(const es::testing::FakeCluster& cluster, const std::string& target, const std::string& protocols) {
    asio::io_context ioc;
    ssl::context ctx(ssl::context::tls_client);
    ctx.add_certificate_authority(asio::buffer(cluster.ca_pem()));
    ctx.set_verify_mode(ssl::verify_peer);
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
    beast::get_lowest_layer(ws).expires_after(10s);
    beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), cluster.port()));
    ws.next_layer().handshake(ssl::stream_base::client);
    beast::get_lowest_layer(ws).expires_never();
    ws.set_option(websocket::stream_base::timeout{5s, 5s, false});
    const std::string token = cluster.bearer_token();
    ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + token);
        req.set(http::field::sec_websocket_protocol, protocols);
    }));
    websocket::response_type res;
    ExecOutcome outcome;
    boost::system::error_code result;
    std::function<void()> read_next;
    beast::flat_buffer buffer;
    ws.async_handshake(res, "127.0.0.1", target, [&](boost::system::error_code ec) {
        if (ec) {
            result = ec;
            return;
        }
        outcome.protocol = std::string(res[http::field::sec_websocket_protocol]);
        read_next = [&] {
            ws.async_read(buffer, [&](boost::system::error_code rec, std::size_t) {
                if (rec) {
                    result = rec;
                    return;
                }
                const std::string data = beast::buffers_to_string(buffer.data());
                buffer.consume(buffer.size());
                if (!data.empty()) outcome.frames.emplace_back(static_cast<unsigned char>(data[0]), data.substr(1));
                read_next();
            });
        };
        read_next();
    });
    ioc.run();
    CHECK(result == websocket::error::closed);
    return outcome;
}

} // namespace

TEST_CASE("FakeCluster authenticates by bearer token or client certificate", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    CHECK(cluster.server_url() == "https://127.0.0.1:" + std::to_string(cluster.port()));
    CHECK(cluster.bearer_token().size() == 32);
    {
        Client c(cluster, Auth::none);
        auto res = c.get("/api/v1/namespaces/default/pods");
        CHECK(res.result_int() == 401);
        auto body = parse_object(res.body());
        CHECK(str(body["kind"]) == "Status");
        CHECK(str(body["status"]) == "Failure");
        CHECK(str(body["reason"]) == "Unauthorized");
        CHECK(body["code"].as_int64() == 401);
    }
    {
        Client c(cluster, Auth::wrong_token);
        CHECK(c.get("/version").result_int() == 401);
    }
    {
        Client c(cluster, Auth::token);
        CHECK(c.get("/api/v1/namespaces/default/pods").result_int() == 200);
    }
    {
        Client c(cluster, Auth::certificate);
        CHECK(c.get("/api/v1/namespaces/default/pods").result_int() == 200);
    }
    const auto stats = cluster.stats();
    CHECK(stats.unauthorized == 2);
    CHECK(stats.requests == 4);
    const std::string kubeconfig = cluster.kubeconfig();
    CHECK(kubeconfig.find("current-context: fake-token") != std::string::npos);
    CHECK(kubeconfig.find("client-certificate-data: ") != std::string::npos);
    CHECK(kubeconfig.find(cluster.server_url()) != std::string::npos);
}

TEST_CASE("FakeCluster serves discovery", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    Client c(cluster);
    auto version = parse_object(c.get("/version").body());
    CHECK(str(version["major"]) == "1");
    CHECK(str(version["gitVersion"]).starts_with("v1."));
    auto api = parse_object(c.get("/api").body());
    CHECK(str(api["kind"]) == "APIVersions");
    auto core = parse_object(c.get("/api/v1").body());
    CHECK(str(core["groupVersion"]) == "v1");
    std::vector<std::string> names;
    for (const auto& r : core["resources"].as_array()) names.push_back(str(r.as_object().at("name")));
    for (const char* expected : {"pods", "pods/log", "pods/exec", "events", "configmaps"})
        CHECK(std::find(names.begin(), names.end(), expected) != names.end());
    for (const auto& r : core["resources"].as_array())
        if (str(r.as_object().at("name")) == "pods") {
            CHECK(str(r.as_object().at("kind")) == "Pod");
            CHECK(str(r.as_object().at("shortNames").as_array().at(0)) == "po");
            CHECK(r.as_object().at("namespaced").as_bool());
        }
    auto groups = parse_object(c.get("/apis").body());
    CHECK(str(groups["kind"]) == "APIGroupList");
    CHECK(groups["groups"].as_array().size() == 3); // batch, coordination.k8s.io, metrics.k8s.io
    auto batch = parse_object(c.get("/apis/batch/v1").body());
    CHECK(str(batch["resources"].as_array().at(0).as_object().at("kind")) == "Job");
    auto coordination = parse_object(c.get("/apis/coordination.k8s.io/v1").body());
    CHECK(str(coordination["resources"].as_array().at(0).as_object().at("name")) == "leases");
    CHECK(c.get("/openapi/v2").result_int() == 404);
    auto unknown = c.get("/apis/apps/v1/namespaces/default/deployments");
    CHECK(unknown.result_int() == 404);
    CHECK(str(parse_object(unknown.body())["reason"]) == "NotFound");
}

TEST_CASE("FakeCluster creates, reads, replaces and deletes objects with conflicts", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    Client c(cluster);
    const std::string base = "/api/v1/namespaces/ns1/pods";
    auto created = c.request(http::verb::post, base, json::serialize(pod("p1")));
    REQUIRE(created.result_int() == 201);
    auto obj = parse_object(created.body());
    CHECK(str(obj["kind"]) == "Pod");
    CHECK(str(obj["apiVersion"]) == "v1");
    const auto& meta = obj["metadata"].as_object();
    CHECK(str(meta.at("namespace")) == "ns1");
    CHECK(str(meta.at("uid")).size() == 36);
    CHECK(!str(meta.at("creationTimestamp")).empty());
    CHECK(rv_of(obj) == std::to_string(cluster.resource_version()));

    auto dup = c.request(http::verb::post, base, json::serialize(pod("p1")));
    CHECK(dup.result_int() == 409);
    CHECK(str(parse_object(dup.body())["reason"]) == "AlreadyExists");
    CHECK_THROWS_AS(cluster.create("pods", "ns1", pod("p1")), std::runtime_error);

    auto got = c.get(base + "/p1");
    CHECK(got.result_int() == 200);
    CHECK(parse_object(got.body()) == obj);

    json::object stale = obj;
    stale["metadata"].as_object()["resourceVersion"] = "1";
    auto conflict = c.request(http::verb::put, base + "/p1", json::serialize(stale));
    CHECK(conflict.result_int() == 409);
    CHECK(str(parse_object(conflict.body())["reason"]) == "Conflict");

    json::object updated = obj;
    updated["status"].as_object()["phase"] = "Succeeded";
    auto put = c.request(http::verb::put, base + "/p1", json::serialize(updated));
    REQUIRE(put.result_int() == 200);
    auto after = parse_object(put.body());
    CHECK(std::stoull(rv_of(after)) > std::stoull(rv_of(obj)));
    CHECK(str(after["metadata"].as_object()["uid"]) == str(meta.at("uid")));
    CHECK(str(cluster.get("pods", "ns1", "p1")->at("status").as_object().at("phase")) == "Succeeded");

    auto modified = cluster.modify("pods", "ns1", "p1", [](json::object& o) { o["status"].as_object()["phase"] = "Failed"; });
    CHECK(str(modified["status"].as_object()["phase"]) == "Failed");
    CHECK_THROWS_AS(cluster.modify("pods", "ns1", "nope", [](json::object&) {}), std::runtime_error);

    auto patched = c.request(http::verb::patch, base + "/p1", R"({"metadata":{"labels":{"extra":"yes"}}})",
                             "application/merge-patch+json");
    REQUIRE(patched.result_int() == 200);
    CHECK(str(parse_object(patched.body())["metadata"].as_object()["labels"].as_object()["extra"]) == "yes");

    auto deleted = c.request(http::verb::delete_, base + "/p1");
    CHECK(deleted.result_int() == 200);
    CHECK(name_of(parse_object(deleted.body())) == "p1");
    auto missing = c.get(base + "/p1");
    CHECK(missing.result_int() == 404);
    CHECK(str(parse_object(missing.body())["message"]) == "pods \"p1\" not found");
    CHECK_FALSE(cluster.remove("pods", "ns1", "p1"));

    // Jobs live in batch/v1; deleting a non-pod answers a Success Status.
    json::object job{{"metadata", json::object{{"name", "j1"}}}, {"spec", json::object{}}};
    auto jc = c.request(http::verb::post, "/apis/batch/v1/namespaces/ns1/jobs", json::serialize(job));
    REQUIRE(jc.result_int() == 201);
    CHECK(str(parse_object(jc.body())["apiVersion"]) == "batch/v1");
    auto jd = parse_object(c.request(http::verb::delete_, "/apis/batch/v1/namespaces/ns1/jobs/j1").body());
    CHECK(str(jd["status"]) == "Success");
    auto bad = c.request(http::verb::post, base, "{not json");
    CHECK(bad.result_int() == 400);
    CHECK(str(parse_object(bad.body())["reason"]) == "BadRequest");
    CHECK(cluster.stats().writes >= 6);
}

TEST_CASE("FakeCluster lists with selectors and pages", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("a", "hyperflow", "Running"));
    cluster.create("pods", "ns", pod("b", "hyperflow", "Succeeded"));
    cluster.create("pods", "ns", pod("c", "other", "Running"));
    cluster.create("pods", "ns", pod("d", "hyperflow", "Failed"));
    cluster.create("pods", "ns", pod("e", "hyperflow", "Running"));
    cluster.create("pods", "elsewhere", pod("x"));
    Client c(cluster);
    auto names = [&](const std::string& query) {
        auto res = c.get("/api/v1/namespaces/ns/pods" + query);
        REQUIRE(res.result_int() == 200);
        auto list = parse_object(res.body());
        CHECK(str(list["kind"]) == "PodList");
        std::string out;
        for (const auto& item : list["items"].as_array()) out += name_of(item.as_object());
        return out;
    };
    CHECK(names("") == "abcde");
    CHECK(names("?labelSelector=app%3Dhyperflow") == "abde");
    CHECK(names("?labelSelector=app%3D%3Dother") == "c");
    CHECK(names("?labelSelector=app!%3Dhyperflow") == "c");
    CHECK(names("?labelSelector=app") == "abcde");
    CHECK(names("?labelSelector=!app") == "");
    CHECK(names("?fieldSelector=metadata.name%3Dd") == "d");
    CHECK(names("?fieldSelector=status.phase%3DRunning") == "ace");
    CHECK(names("?fieldSelector=status.phase!%3DRunning,metadata.name!%3Db") == "d");
    CHECK(names("?labelSelector=app%3Dhyperflow&fieldSelector=status.phase%3DRunning") == "ae");
    CHECK(c.get("/api/v1/namespaces/ns/pods?fieldSelector=spec.bogus%3Dx").result_int() == 400);
    CHECK(c.get("/api/v1/namespaces/ns/pods?labelSelector=a%3D(b").result_int() == 400);
    CHECK(parse_object(c.get("/api/v1/pods").body())["items"].as_array().size() == 6);

    // Pages: the list resourceVersion stays that of the first page.
    auto first = parse_object(c.get("/api/v1/namespaces/ns/pods?limit=2").body());
    const std::string list_rv = str(first["metadata"].as_object()["resourceVersion"]);
    CHECK(first["items"].as_array().size() == 2);
    CHECK(first["metadata"].as_object()["remainingItemCount"].as_int64() == 3);
    std::string token = str(first["metadata"].as_object()["continue"]);
    REQUIRE_FALSE(token.empty());
    cluster.create("pods", "ns", pod("f"));
    std::string seen = name_of(first["items"].as_array()[0].as_object()) + name_of(first["items"].as_array()[1].as_object());
    while (!token.empty()) {
        auto page = parse_object(c.get("/api/v1/namespaces/ns/pods?limit=2&continue=" + token).body());
        CHECK(str(page["metadata"].as_object()["resourceVersion"]) == list_rv);
        for (const auto& item : page["items"].as_array()) seen += name_of(item.as_object());
        const auto* next = page["metadata"].as_object().if_contains("continue");
        token = next != nullptr ? str(*next) : std::string();
    }
    CHECK(seen.starts_with("abcde"));
    CHECK(c.get("/api/v1/namespaces/ns/pods?limit=2&continue=garbage").result_int() == 400);

    // Events by involvedObject.
    cluster.create("events", "ns", json::object{{"metadata", json::object{{"name", "ev1"}}},
                                                {"involvedObject", json::object{{"kind", "Pod"}, {"name", "a"}}},
                                                {"reason", "OOMKilling"}});
    cluster.create("events", "ns", json::object{{"metadata", json::object{{"name", "ev2"}}},
                                                {"involvedObject", json::object{{"kind", "Job"}, {"name", "j"}}}});
    auto evs = parse_object(c.get("/api/v1/namespaces/ns/events?fieldSelector=involvedObject.name%3Da").body());
    REQUIRE(evs["items"].as_array().size() == 1);
    CHECK(name_of(evs["items"].as_array()[0].as_object()) == "ev1");
    CHECK(str(evs["kind"]) == "EventList");
    auto jobs = parse_object(c.get("/api/v1/namespaces/ns/events?fieldSelector=involvedObject.kind%3DJob").body());
    CHECK(jobs["items"].as_array().size() == 1);
    CHECK(cluster.stats().lists >= 14);
}

TEST_CASE("FakeCluster watches from a resourceVersion", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("before"));
    const std::string start = std::to_string(cluster.resource_version());
    cluster.create("pods", "ns", pod("p"));
    cluster.modify("pods", "ns", "p", [](json::object& o) { o["status"].as_object()["phase"] = "Succeeded"; });
    cluster.remove("pods", "ns", "p");

    Client c(cluster);
    REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=" + start) == http::status::ok);
    CHECK(c.stream_response()[http::field::content_type] == "application/json");
    CHECK(c.stream_response().chunked());
    auto lines = c.read_lines(3);
    REQUIRE(lines.size() == 3);
    std::vector<std::string> types;
    std::uint64_t last_rv = std::stoull(start);
    for (const auto& line : lines) {
        auto ev = parse_object(line);
        types.push_back(str(ev["type"]));
        CHECK(name_of(ev["object"].as_object()) == "p");
        CHECK(str(ev["object"].as_object()["kind"]) == "Pod");
        const auto rv = std::stoull(rv_of(ev["object"].as_object()));
        CHECK(rv > last_rv);
        last_rv = rv;
    }
    CHECK(types == std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"});

    // Live events on the open stream, selectors applied: leaving the selector is a DELETED.
    Client s(cluster);
    REQUIRE(s.open_stream("/api/v1/namespaces/ns/pods?watch=true&labelSelector=app%3Dhyperflow") == http::status::ok);
    auto initial = s.read_lines(1);
    REQUIRE(initial.size() == 1);
    CHECK(str(parse_object(initial[0])["type"]) == "ADDED");
    CHECK(name_of(parse_object(initial[0])["object"].as_object()) == "before");
    cluster.create("pods", "ns", pod("other", "nothyperflow"));
    cluster.modify("pods", "ns", "before", [](json::object& o) {
        o["metadata"].as_object()["labels"].as_object()["app"] = "moved";
    });
    auto live = s.read_lines(1);
    REQUIRE(live.size() == 1);
    auto ev = parse_object(live[0]);
    CHECK(str(ev["type"]) == "DELETED");
    CHECK(name_of(ev["object"].as_object()) == "before");
    CHECK(rv_of(ev["object"].as_object()) == std::to_string(cluster.resource_version()));
    CHECK(cluster.stats().open_watches == 2);
    CHECK(cluster.stats().watches == 2);
}

TEST_CASE("FakeCluster sends bookmarks and honours timeoutSeconds", "[fake_cluster]") {
    es::testing::FakeClusterOptions options;
    options.bookmark_interval = 100ms;
    es::testing::FakeCluster cluster(options);
    cluster.create("pods", "ns", pod("p"));
    Client c(cluster);
    REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=" +
                          std::to_string(cluster.resource_version())) == http::status::ok);
    auto lines = c.read_lines(1, 3s);
    REQUIRE(lines.size() == 1);
    auto bookmark = parse_object(lines[0]);
    CHECK(str(bookmark["type"]) == "BOOKMARK");
    CHECK(str(bookmark["object"].as_object()["kind"]) == "Pod");
    CHECK(str(bookmark["object"].as_object()["apiVersion"]) == "v1");
    CHECK(rv_of(bookmark["object"].as_object()) == std::to_string(cluster.resource_version()));
    // timeoutSeconds=1 ends the stream cleanly.
    CHECK(c.read_to_end(4s));
    CHECK(c.stream_done());
}

TEST_CASE("FakeCluster answers a watch from a compacted resourceVersion with ERROR 410", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("a"));
    const std::string old_rv = std::to_string(cluster.resource_version());
    cluster.create("pods", "ns", pod("b"));
    cluster.compact();
    Client c(cluster);
    REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=" + old_rv) == http::status::ok);
    auto lines = c.read_lines(2);
    REQUIRE(lines.size() == 1);
    auto ev = parse_object(lines[0]);
    CHECK(str(ev["type"]) == "ERROR");
    auto& status = ev["object"].as_object();
    CHECK(str(status["kind"]) == "Status");
    CHECK(status["code"].as_int64() == 410);
    CHECK(str(status["reason"]) == "Expired");
    CHECK(str(status["message"]).starts_with("too old resource version: " + old_rv + " ("));
    CHECK(c.stream_done());

    // From the current RV the watch works; the history limit expires old RVs too.
    Client ok(cluster);
    REQUIRE(ok.open_stream("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=" + std::to_string(cluster.resource_version())) ==
            http::status::ok);
    cluster.create("pods", "ns", pod("c"));
    auto live = ok.read_lines(1);
    REQUIRE(live.size() == 1);
    CHECK(str(parse_object(live[0])["type"]) == "ADDED");

    es::testing::FakeClusterOptions small;
    small.history_limit = 2;
    es::testing::FakeCluster limited(small);
    const std::string first = std::to_string(limited.resource_version());
    for (const char* n : {"a", "b", "c", "d"}) limited.create("pods", "ns", pod(n));
    Client lc(limited);
    REQUIRE(lc.open_stream("/api/v1/namespaces/ns/pods?watch=1&resourceVersion=" + first) == http::status::ok);
    auto expired = lc.read_lines(1);
    REQUIRE(expired.size() == 1);
    CHECK(parse_object(expired[0])["object"].as_object()["code"].as_int64() == 410);
}

TEST_CASE("FakeCluster fault switches", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("p"));

    SECTION("close_watches ends open streams cleanly") {
        Client c(cluster);
        REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        REQUIRE(c.read_lines(1).size() == 1);
        CHECK(cluster.stats().open_watches == 1);
        cluster.close_watches();
        CHECK(c.read_to_end());
        for (int i = 0; i < 100 && cluster.stats().open_watches != 0; ++i) std::this_thread::sleep_for(10ms);
        CHECK(cluster.stats().open_watches == 0);
    }
    SECTION("reset_watches ends open streams abruptly, without the terminating chunk") {
        Client c(cluster);
        REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        REQUIRE(c.read_lines(1).size() == 1);
        cluster.reset_watches();
        CHECK_FALSE(c.read_to_end());
        CHECK_FALSE(c.stream_done());
        for (int i = 0; i < 100 && cluster.stats().open_watches != 0; ++i) std::this_thread::sleep_for(10ms);
        CHECK(cluster.stats().open_watches == 0);
    }
    SECTION("fail_next_requests answers Status bodies, 429 with Retry-After") {
        Client c(cluster);
        cluster.fail_next_requests(1, 500);
        auto res = c.get("/api/v1/namespaces/ns/pods");
        CHECK(res.result_int() == 500);
        CHECK(str(parse_object(res.body())["reason"]) == "InternalError");
        CHECK(c.get("/api/v1/namespaces/ns/pods").result_int() == 200);
        cluster.fail_next_requests(2, 429, 3);
        for (int i = 0; i < 2; ++i) {
            auto tooMany = c.get("/api/v1/namespaces/ns/pods/p");
            CHECK(tooMany.result_int() == 429);
            CHECK(tooMany[http::field::retry_after] == "3");
            CHECK(str(parse_object(tooMany.body())["reason"]) == "TooManyRequests");
        }
        CHECK(c.get("/api/v1/namespaces/ns/pods/p").result_int() == 200);
        CHECK(cluster.stats().injected_failures == 3);
    }
    SECTION("refuse_connections refuses new connections for a while") {
        Client open(cluster);
        CHECK(open.get("/version").result_int() == 200);
        cluster.refuse_connections(300ms);
        Client refused(cluster);
        CHECK(refused.connect() == asio::error::connection_refused);
        CHECK(open.get("/version").result_int() == 200);
        std::this_thread::sleep_for(500ms);
        Client later(cluster);
        CHECK_FALSE(later.connect());
        CHECK(later.get("/version").result_int() == 200);
    }
    SECTION("send_raw_watch_line reaches watches verbatim") {
        Client c(cluster);
        REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        REQUIRE(c.read_lines(1).size() == 1);
        cluster.send_raw_watch_line("{\"type\":\"ADDED\",\"object\":{\"kind\n");
        auto lines = c.read_lines(1);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0] == "{\"type\":\"ADDED\",\"object\":{\"kind");
    }
    SECTION("stall_watches holds events until released") {
        Client c(cluster);
        REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        REQUIRE(c.read_lines(1).size() == 1);
        cluster.stall_watches(true);
        cluster.create("pods", "ns", pod("q"));
        CHECK(c.read_lines(1, 300ms).empty());
        cluster.stall_watches(false);
        Client again(cluster); // the stalled client connection timed out on our side; a new watch sees q
        REQUIRE(again.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        CHECK(again.read_lines(2).size() == 2);
    }
    SECTION("a watcher that falls behind its queue limit is disconnected") {
        es::testing::FakeClusterOptions options;
        options.watch_queue_limit = 3;
        es::testing::FakeCluster small(options);
        Client c(small);
        REQUIRE(c.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
        small.stall_watches(true); // the server-side writer stops draining, as with a client that stops reading
        for (int i = 0; i < 5; ++i) small.create("pods", "ns", pod("p" + std::to_string(i)));
        c.read_to_end(2s);
        for (int i = 0; i < 200 && small.stats().open_watches != 0; ++i) std::this_thread::sleep_for(10ms);
        CHECK(small.stats().open_watches == 0);
        Client fresh(small);
        CHECK(fresh.get("/api/v1/namespaces/ns/pods").result_int() == 200); // the server is unaffected
    }
    SECTION("delay_responses delays answers") {
        Client c(cluster);
        cluster.delay_responses(200ms);
        const auto t0 = std::chrono::steady_clock::now();
        CHECK(c.get("/version").result_int() == 200);
        CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);
        cluster.delay_responses(0ms);
    }
    SECTION("malformed requests get 400") {
        Client c(cluster);
        auto res = c.request(http::verb::get, "/api/v1/namespaces/ns/pods?limit=abc");
        CHECK(res.result_int() == 400);
        auto huge = c.request(http::verb::get, "/api/v1/namespaces/ns/pods?labelSelector=" + std::string(100 * 1024, 'x'));
        CHECK(huge.result_int() == 400);
        CHECK(str(parse_object(huge.body())["reason"]) == "BadRequest");
        CHECK_FALSE(huge.keep_alive());
    }
}

TEST_CASE("FakeCluster serves container logs", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("single"));
    cluster.create("pods", "ns", pod("multi", "hyperflow", "Running", {"hyperflow", "hflow-tools"}));
    const auto before = std::chrono::system_clock::now();
    cluster.append_log("ns", "single", "main", "one");
    cluster.append_log("ns", "single", "main", "two\n");
    std::this_thread::sleep_for(20ms);
    const std::string since = es::testing::detail::format_rfc3339(std::chrono::system_clock::now(), true);
    std::this_thread::sleep_for(20ms);
    cluster.append_log("ns", "single", "main", "three");
    Client c(cluster);
    const std::string base = "/api/v1/namespaces/ns/pods/";

    auto all = c.get(base + "single/log");
    CHECK(all.result_int() == 200);
    CHECK(all[http::field::content_type] == "text/plain");
    CHECK(all.body() == "one\ntwo\nthree\n");
    CHECK(c.get(base + "single/log?tailLines=2").body() == "two\nthree\n");
    CHECK(c.get(base + "single/log?sinceTime=" + since).body() == "three\n");
    auto stamped = c.get(base + "single/log?timestamps=true&tailLines=1").body();
    REQUIRE(stamped.size() > 31);
    CHECK(stamped.substr(stamped.size() - 6) == "three\n");
    auto stamp = es::testing::detail::parse_rfc3339(stamped.substr(0, stamped.find(' ')));
    REQUIRE(stamp);
    CHECK(*stamp >= before);
    CHECK(stamped[29] == 'Z'); // RFC3339Nano: 2026-01-02T03:04:05.123456789Z
    CHECK(stamped[30] == ' ');

    auto need_container = c.get(base + "multi/log");
    CHECK(need_container.result_int() == 400);
    CHECK(str(parse_object(need_container.body())["message"]).find("a container name must be specified") != std::string::npos);
    CHECK(c.get(base + "multi/log?container=hflow-tools").result_int() == 200);
    CHECK(c.get(base + "multi/log?container=nope").result_int() == 400);
    CHECK(c.get(base + "missing/log").result_int() == 404);
    json::object waiting = pod("waiting");
    waiting["status"].as_object()["containerStatuses"] = json::parse(
        R"([{"name":"main","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ContainerCreating"}}}])");
    cluster.create("pods", "ns", waiting);
    auto not_started = c.get(base + "waiting/log");
    CHECK(not_started.result_int() == 400);
    CHECK(str(parse_object(not_started.body())["message"]) ==
          "container \"main\" in pod \"waiting\" is waiting to start: ContainerCreating");

    // follow streams new lines until the container restarts.
    Client f(cluster);
    REQUIRE(f.open_stream(base + "single/log?follow=true&tailLines=1") == http::status::ok);
    auto first = f.read_lines(1);
    REQUIRE(first.size() == 1);
    CHECK(first[0] == "three");
    cluster.append_log("ns", "single", "main", "four");
    auto next = f.read_lines(1);
    REQUIRE(next.size() == 1);
    CHECK(next[0] == "four");
    cluster.restart_container_log("ns", "single", "main");
    CHECK(f.read_to_end());
    CHECK(c.get(base + "single/log?previous=true").body() == "one\ntwo\nthree\nfour\n");
    CHECK(c.get(base + "single/log").body().empty());
    CHECK(c.get(base + "multi/log?container=hyperflow&previous=true").result_int() == 400);
    CHECK(cluster.stats().logs >= 10);
}

TEST_CASE("FakeCluster serves the metrics API over HTTPS, or answers as a cluster without it", "[fake_cluster][metrics]") {
    es::testing::FakeClusterOptions options;
    options.metrics_window = 10s;
    es::testing::FakeCluster cluster(options);
    cluster.create("pods", "ns", pod("engine", "hyperflow", "Running", {"hyperflow", "hflow-tools"}));
    cluster.create("pods", "ns", pod("task", "hyperflow", "Running", {"test"}));
    cluster.create("pods", "ns", pod("redis", "redis", "Running", {"redis"}));
    cluster.create("pods", "ns", pod("done", "hyperflow", "Succeeded", {"test"}));
    cluster.set_pod_usage("ns", "task", {{"test", 1'234'567, 126'418'944}});
    Client c(cluster);
    const std::string base = "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods";

    auto list = c.get(base + "?labelSelector=app%3Dhyperflow");
    REQUIRE(list.result_int() == 200);
    CHECK(list[http::field::content_type] == "application/json");
    auto body = json::parse(list.body()).as_object();
    CHECK(body.at("kind") == "PodMetricsList");
    auto& items = body.at("items").as_array();
    REQUIRE(items.size() == 2); // engine and task: redis does not match, the finished pod has no metrics
    CHECK(items[0].at("metadata").at("name") == "engine");
    CHECK(items[0].at("containers").as_array().size() == 2);
    CHECK(items[0].at("window") == "10s");
    auto& task = items[1].as_object();
    CHECK(task.at("metadata").at("name") == "task");
    CHECK(task.at("containers").at(0).at("usage").at("cpu") == "1234567n");
    CHECK(task.at("containers").at(0).at("usage").at("memory") == "123456Ki");
    const auto stamp = es::testing::detail::parse_rfc3339(std::string(task.at("timestamp").as_string()));
    REQUIRE(stamp);
    CHECK(std::chrono::abs(*stamp - std::chrono::system_clock::now()) < 5s);

    cluster.set_pod_usage("ns", "task", {{"test", 500'000'000, 900LL << 20}}, 15s);
    auto one = json::parse(c.get(base + "/task").body()).as_object();
    CHECK(one.at("kind") == "PodMetrics");
    CHECK(one.at("window") == "15s");
    CHECK(one.at("containers").at(0).at("usage").at("cpu") == "500m");
    CHECK(one.at("containers").at(0).at("usage").at("memory") == "900Mi");
    CHECK(c.get(base + "/done").result_int() == 404);
    CHECK(cluster.stats().metrics == 3);

    cluster.set_metrics_api(es::testing::MetricsApi::absent);
    CHECK(c.get(base).result_int() == 404);
    CHECK(c.get("/apis").body().find("metrics.k8s.io") == std::string::npos);
    cluster.set_metrics_api(es::testing::MetricsApi::forbidden);
    auto forbidden = c.get(base);
    CHECK(forbidden.result_int() == 403);
    CHECK(json::parse(forbidden.body()).at("reason") == "Forbidden");
    cluster.set_metrics_api(es::testing::MetricsApi::unavailable);
    CHECK(c.get(base).result_int() == 503);
    cluster.set_metrics_api(es::testing::MetricsApi::available);
    CHECK(c.get(base).result_int() == 200);

    // Deleting the pod removes its metrics.
    cluster.remove("pods", "ns", "task");
    CHECK(c.get(base + "/task").result_int() == 404);
}

TEST_CASE("FakeCluster runs exec commands over WebSocket", "[fake_cluster]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("engine", "hyperflow", "Running", {"hyperflow", "hflow-tools"}));
    cluster.write_file("ns", "engine", "/work_dir/.workflow-exit-code", "0\n");
    const std::string base = "/api/v1/namespaces/ns/pods/engine/exec?container=hyperflow&stdout=true&stderr=true";

    for (const std::string protocol : {"v5.channel.k8s.io", "v4.channel.k8s.io"}) {
        INFO(protocol);
        auto ok = run_exec(cluster, base + "&command=cat&command=%2Fwork_dir%2F.workflow-exit-code",
                           protocol + ", v4.channel.k8s.io");
        CHECK(ok.protocol == protocol);
        REQUIRE(!ok.frames.empty());
        CHECK(ok.frames.front() == std::pair<int, std::string>{1, ""});
        CHECK(ok.out(1) == "0\n");
        CHECK(parse_object(ok.out(3)) == parse_object(R"({"metadata":{},"status":"Success"})"));

        auto missing = run_exec(cluster, base + "&command=cat&command=%2Fnope", protocol);
        CHECK(missing.out(2) == "cat: can't open '/nope': No such file or directory\n");
        auto status = parse_object(missing.out(3));
        CHECK(str(status["status"]) == "Failure");
        CHECK(str(status["reason"]) == "NonZeroExitCode");
        CHECK(str(status["details"].as_object()["causes"].as_array()[0].as_object()["reason"]) == "ExitCode");
        CHECK(str(status["details"].as_object()["causes"].as_array()[0].as_object()["message"]) == "1");

        auto test_f = run_exec(cluster, base + "&command=test&command=-f&command=%2Fwork_dir%2F.workflow-exit-code", protocol);
        CHECK(str(parse_object(test_f.out(3))["status"]) == "Success");
        auto ls = run_exec(cluster, base + "&command=ls&command=%2Fwork_dir", protocol);
        CHECK(ls.out(1) == ".workflow-exit-code\n");

        auto unknown = run_exec(cluster, base + "&command=frobnicate", protocol);
        CHECK(unknown.out(2).find("command not found") != std::string::npos);
        CHECK(str(parse_object(unknown.out(3))["details"].as_object()["causes"].as_array()[0].as_object()["message"]) == "127");
    }

    Client c(cluster);
    auto no_upgrade = c.get(base + "&command=ls");
    CHECK(no_upgrade.result_int() == 400);
    CHECK(str(parse_object(no_upgrade.body())["message"]) == "Upgrade request required");
    CHECK(c.get("/api/v1/namespaces/ns/pods/ghost/exec?command=ls&stdout=true").result_int() == 404);
    CHECK(c.get("/api/v1/namespaces/ns/pods/engine/exec?command=ls&stdout=true").result_int() == 400); // 2 containers
    CHECK(cluster.stats().execs >= 13);
}

TEST_CASE("FakeCluster stops promptly with open streams", "[fake_cluster]") {
    auto cluster = std::make_unique<es::testing::FakeCluster>();
    cluster->create("pods", "ns", pod("p"));
    Client watch(*cluster);
    REQUIRE(watch.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
    Client log(*cluster);
    REQUIRE(log.open_stream("/api/v1/namespaces/ns/pods/p/log?follow=true") == http::status::ok);
    const auto t0 = std::chrono::steady_clock::now();
    cluster->stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    watch.read_lines(5, 1s); // the stream ends (connection closed) instead of hanging
    cluster->create("pods", "ns", pod("after-stop"));
    CHECK(cluster->list("pods", "ns").size() == 2);
    cluster.reset();
}

TEST_CASE("FakeCluster counts the bytes of every connection and request", "[fake_cluster][traffic]") {
    es::testing::FakeCluster cluster;
    cluster.create("pods", "ns", pod("p"));
    auto find = [](const es::testing::Traffic& t, const std::string& target) {
        const es::testing::RequestTraffic* found = nullptr;
        for (auto& r : t.requests)
            if (r.target == target) found = &r;
        return found ? std::optional<es::testing::RequestTraffic>(*found) : std::nullopt;
    };
    Client c(cluster);
    auto res = c.get("/api/v1/namespaces/ns/pods/p");
    REQUIRE(res.result_int() == 200);
    // The server counts its write once the write completes on its own thread, which may be just after the
    // client has read the answer.
    auto t = cluster.traffic();
    for (int i = 0; i < 100 && (t.requests.empty() || t.requests.back().open); ++i) {
        std::this_thread::sleep_for(10ms);
        t = cluster.traffic();
    }
    auto get = find(t, "/api/v1/namespaces/ns/pods/p");
    REQUIRE(get);
    CHECK(get->method == "GET");
    CHECK_FALSE(get->open);
    // The answer's body and header, inside TLS records (a few dozen bytes each of overhead).
    CHECK(get->bytes_sent > res.body().size() + 100);
    CHECK(get->bytes_sent < res.body().size() + 2000);
    CHECK(get->bytes_received > 100); // the request line, the headers and the token
    REQUIRE(t.connections.size() == 1);
    CHECK(t.connections[0].requests == 1);
    CHECK(t.connections[0].open);
    CHECK(t.connections[0].bytes_sent > get->bytes_sent); // and the TLS handshake
    CHECK(t.bytes_sent == t.connections[0].bytes_sent);
    CHECK(t.connections_total == 1);
    CHECK(t.requests_total == 1);

    // A watch counts while it streams: each event adds its bytes.
    Client w(cluster);
    REQUIRE(w.open_stream("/api/v1/namespaces/ns/pods?watch=1") == http::status::ok);
    REQUIRE(w.read_lines(1).size() == 1);
    auto before = find(cluster.traffic(), "/api/v1/namespaces/ns/pods?watch=1");
    REQUIRE(before);
    CHECK(before->open);
    const std::string big(5000, 'x');
    cluster.modify("pods", "ns", "p", [&](json::object& o) { o["metadata"].as_object()["annotations"] = {{"big", big}}; });
    REQUIRE(w.read_lines(1).size() == 1);
    auto after = find(cluster.traffic(), "/api/v1/namespaces/ns/pods?watch=1");
    for (int i = 0; i < 100 && after && after->bytes_sent < before->bytes_sent + big.size(); ++i) {
        std::this_thread::sleep_for(10ms);
        after = find(cluster.traffic(), "/api/v1/namespaces/ns/pods?watch=1");
    }
    REQUIRE(after);
    CHECK(after->bytes_sent >= before->bytes_sent + big.size());
    const auto stats = cluster.stats();
    CHECK(stats.connections == 2);
    CHECK(stats.bytes_sent >= t.bytes_sent + after->bytes_sent);
    CHECK(stats.bytes_received > t.bytes_received);
}

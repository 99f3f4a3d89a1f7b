// ScenarioRunner against a real FakeCluster: objects, files and faults as a client sees them over HTTPS.
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include "catch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

namespace es = execution_sentinel::testing;
namespace json = boost::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

struct HttpResult {
    int status = 0;
    std::string retry_after;
    std::string body;
};

asio::ssl::context client_tls(const es::FakeCluster& cluster) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    std::string ca = cluster.ca_pem();
    ctx.add_certificate_authority(asio::buffer(ca));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

/// One HTTPS GET with the cluster's bearer token (throws on connection errors).
HttpResult https_get(const es::FakeCluster& cluster, const std::string& target) {
    asio::io_context io;
    auto ctx = client_tls(cluster);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(20));
    beast::get_lowest_layer(stream).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), cluster.port()));
    stream.handshake(asio::ssl::stream_base::client);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + cluster.bearer_token());
    req.set(http::field::accept, "application/json");
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buf, parser);
    HttpResult r;
    r.status = static_cast<int>(parser.get().result_int());
    r.retry_after = std::string(parser.get()[http::field::retry_after]);
    r.body = parser.get().body();
    beast::error_code ec;
    stream.shutdown(ec);
    return r;
}

/// `cat PATH` in `pod`/`container` over the exec WebSocket (v5.channel.k8s.io); returns stdout, or nullopt when the
/// command failed (the Status on channel 3 is not Success).
std::optional<std::string> exec_cat(const es::FakeCluster& cluster, const std::string& ns, const std::string& pod,
                                    const std::string& container, const std::string& path) {
    asio::io_context io;
    auto ctx = client_tls(cluster);
    beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(20));
    beast::get_lowest_layer(ws).connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), cluster.port()));
    ws.next_layer().handshake(asio::ssl::stream_base::client);
    std::string token = cluster.bearer_token();
    ws.set_option(beast::websocket::stream_base::decorator([token](beast::websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + token);
        req.set(http::field::sec_websocket_protocol, "v5.channel.k8s.io");
    }));
    ws.handshake("127.0.0.1", "/api/v1/namespaces/" + ns + "/pods/" + pod + "/exec?container=" + container +
                                  "&command=cat&command=" + path + "&stdout=true&stderr=true");
    std::string out, status;
    for (;;) {
        beast::flat_buffer buf;
        beast::error_code ec;
        ws.read(buf, ec);
        if (ec) break;
        std::string frame = beast::buffers_to_string(buf.data());
        if (frame.empty()) continue;
        if (frame[0] == 1) out += frame.substr(1);
        if (frame[0] == 3) status += frame.substr(1);
    }
    if (status.empty()) return std::nullopt;
    auto st = json::parse(status);
    if (st.at("status").as_string() != "Success") return std::nullopt;
    return out;
}

std::string phase_of(const es::FakeCluster& cluster, const std::string& ns, const std::string& pod) {
    auto p = cluster.get("pods", ns, pod);
    return p ? es::pod_phase(*p) : "<absent>";
}

bool job_has(const es::FakeCluster& cluster, const std::string& ns, const std::string& job, std::string_view type) {
    auto j = cluster.get("jobs", ns, job);
    if (!j) return false;
    auto* conds = j->at("status").as_object().if_contains("conditions");
    if (!conds) return false;
    for (auto& c : conds->as_array())
        if (c.at("type").as_string() == type && c.at("status").as_string() == "True") return true;
    return false;
}

} // namespace

TEST_CASE("a scenario stepped by hand shows every transition over HTTPS", "[integration][scenario]") {
    es::FakeClusterOptions options;
    options.default_namespace = "wf-test";
    es::FakeCluster cluster(options);
    auto scenario = es::Scenario::parse(R"({
        "namespace": "wf-test", "time_scale": 0.05, "seed": 3,
        "engine": {"name": "hyperflow-engine-7d9c8b6f5-x2x9k", "at": 0},
        "support_objects": true,
        "tasks": [
          {"type": "sifting", "proc_id": 3, "start": 1, "pending": 2, "duration": 4},
          {"type": "frequency", "proc_id": 7, "start": 1, "pending": 2, "duration": 10, "outcome": "oom",
           "backoff_limit": 0, "memory_limit": "1Gi"}
        ],
        "completion": {"at": 30, "exit_code": 0}
    })");
    es::ScenarioRunner runner(cluster, scenario);
    const std::string ns = "wf-test";
    const std::string engine = "hyperflow-engine-7d9c8b6f5-x2x9k";

    runner.run_until(0);
    REQUIRE(cluster.get("pods", ns, engine));
    CHECK(phase_of(cluster, ns, engine) == "Running");
    // Engine, redis and the two support Jobs all carry app=hyperflow.
    auto listed = https_get(cluster, "/api/v1/namespaces/wf-test/pods?labelSelector=app%3Dhyperflow");
    REQUIRE(listed.status == 200);
    CHECK(json::parse(listed.body).at("items").as_array().size() == 2);
    auto jobs = https_get(cluster, "/apis/batch/v1/namespaces/wf-test/jobs?labelSelector=app%3Dhyperflow");
    REQUIRE(jobs.status == 200);
    CHECK(json::parse(jobs.body).at("items").as_array().size() == 2);
    CHECK_FALSE(exec_cat(cluster, ns, engine, "hyperflow", "/work_dir/.workflow-exit-code"));

    runner.run_until(1);
    auto sifting_job = runner.job_name_of("sifting-3");
    REQUIRE(sifting_job);
    auto sifting_pods = runner.pod_names_of("sifting-3");
    REQUIRE(sifting_pods.size() == 1);
    CHECK(phase_of(cluster, ns, sifting_pods[0]) == "Pending");
    // The pod is found by the Job's label, as the Job controller and kubectl find it.
    auto by_job = https_get(cluster, "/api/v1/namespaces/wf-test/pods?labelSelector=job-name%3D" + *sifting_job);
    REQUIRE(by_job.status == 200);
    auto items = json::parse(by_job.body).at("items").as_array();
    REQUIRE(items.size() == 1);
    CHECK(items[0].at("metadata").at("name").as_string() == sifting_pods[0]);

    runner.run_until(3);
    CHECK(phase_of(cluster, ns, sifting_pods[0]) == "Running");
    CHECK(cluster.get("jobs", ns, *sifting_job)->at("status").at("active").as_int64() == 1);

    runner.run_until(7);
    CHECK(phase_of(cluster, ns, sifting_pods[0]) == "Succeeded");
    CHECK(job_has(cluster, ns, *sifting_job, "Complete"));
    auto job_over_http = https_get(cluster, "/apis/batch/v1/namespaces/wf-test/jobs/" + *sifting_job);
    REQUIRE(job_over_http.status == 200);
    CHECK(json::parse(job_over_http.body).at("status").at("succeeded").as_int64() == 1);

    runner.run_until(13);
    auto oom_pods = runner.pod_names_of("frequency-7");
    REQUIRE(oom_pods.size() == 1);
    auto killed = cluster.get("pods", ns, oom_pods[0]);
    REQUIRE(killed);
    CHECK(es::pod_phase(*killed) == "Failed");
    auto& term = killed->at("status").at("containerStatuses").as_array().at(0).at("state").at("terminated");
    CHECK(term.at("reason").as_string() == "OOMKilled");
    CHECK(term.at("exitCode").as_int64() == 137);
    CHECK(job_has(cluster, ns, *runner.job_name_of("frequency-7"), "Failed"));
    auto events = https_get(cluster, "/api/v1/namespaces/wf-test/events?fieldSelector=involvedObject.name%3D" +
                                         *runner.job_name_of("frequency-7"));
    REQUIRE(events.status == 200);
    CHECK(events.body.find("BackoffLimitExceeded") != std::string::npos);

    auto log = https_get(cluster, "/api/v1/namespaces/wf-test/pods/" + engine + "/log?container=hyperflow");
    REQUIRE(log.status == 200);
    CHECK(log.body.find("task finished: sifting") != std::string::npos);

    runner.run_until(30);
    CHECK(exec_cat(cluster, ns, engine, "hyperflow", "/work_dir/.workflow-exit-code") == std::optional<std::string>("0\n"));
    CHECK(runner.finished());
    CHECK(runner.errors().empty());
}

TEST_CASE("the runner thread plays in scaled wall-clock time", "[integration][scenario]") {
    es::FakeCluster cluster;
    es::Scenario s;
    s.time_scale = 0.01; // 100 scenario seconds = 1 wall second
    s.engine_at = 0;
    es::TaskDecl t;
    t.type = "individuals";
    t.proc_id = 1;
    t.start = 5;
    t.pending = 5;
    t.duration = 50;
    s.add_task(t);
    s.complete_at(70);
    const auto before = std::chrono::system_clock::now();
    es::ScenarioRunner runner(cluster, s);
    runner.start();
    REQUIRE(runner.wait_for(std::chrono::seconds(30)));
    runner.wait();
    CHECK(runner.errors().empty());
    auto pod = cluster.get("pods", "default", runner.pod_names_of("individuals-1").at(0));
    REQUIRE(pod);
    CHECK(es::pod_phase(*pod) == "Succeeded");
    // Timestamps are real wall-clock times, within the run.
    auto started = pod->at("status").at("containerStatuses").as_array().at(0).at("state").at("terminated").at("startedAt");
    CHECK(std::string(started.as_string()) >= es::rfc3339(before - std::chrono::seconds(1)));
    CHECK(std::string(started.as_string()) <= es::rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(1)));
    CHECK(exec_cat(cluster, "default", s.engine_pod_name(), "hyperflow", "/work_dir/.workflow-exit-code") ==
          std::optional<std::string>("0\n"));
}

TEST_CASE("scenario faults reach the client", "[integration][scenario]") {
    es::FakeCluster cluster;
    auto scenario = es::Scenario::parse(R"({
        "time_scale": 0.01, "engine": {"at": 0},
        "steps": [
          {"at": 1, "action": "fail_next", "count": 2, "status": 429, "retry_after": 1},
          {"at": 2, "action": "refuse_connections", "wall_seconds": 0.5},
          {"at": 3, "action": "compact"}
        ]})");
    es::ScenarioRunner runner(cluster, scenario);
    runner.run_until(0);
    auto rv_before = std::to_string(cluster.resource_version());
    CHECK(https_get(cluster, "/api/v1/namespaces/default/pods").status == 200);

    runner.run_until(1);
    auto first = https_get(cluster, "/api/v1/namespaces/default/pods");
    CHECK(first.status == 429);
    CHECK(first.retry_after == "1");
    CHECK(https_get(cluster, "/api/v1/namespaces/default/pods").status == 429);
    CHECK(https_get(cluster, "/api/v1/namespaces/default/pods").status == 200);

    runner.run_until(2);
    CHECK_THROWS(https_get(cluster, "/api/v1/namespaces/default/pods"));
    std::this_thread::sleep_for(std::chrono::milliseconds(900));
    CHECK(https_get(cluster, "/api/v1/namespaces/default/pods").status == 200);

    // Something changes, then history is compacted: a watch from the old resourceVersion is told 410 Expired.
    cluster.create("configmaps", "default", json::object{{"metadata", {{"name", "after"}}}, {"data", json::object{}}});
    runner.run_until(3);
    auto watch = https_get(cluster, "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1&resourceVersion=" + rv_before);
    CHECK(watch.status == 200);
    CHECK(watch.body.find("\"ERROR\"") != std::string::npos);
    CHECK(watch.body.find("410") != std::string::npos);
    CHECK(runner.errors().empty());
}

TEST_CASE("a memory ramp is served by the metrics API until the OOM kill, then the pod has none", "[integration][scenario][metrics]") {
    auto s = es::Scenario::from_file(std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/examples/scenarios/memory-pressure-oom.json");
    es::FakeClusterOptions options;
    options.default_namespace = s.namespace_name;
    es::FakeCluster cluster(options);
    es::ScenarioRunner runner(cluster, s);
    const std::string ns = s.namespace_name;
    const std::string base = "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods";
    auto memory_of = [&](const std::string& pod) -> std::string {
        auto r = https_get(cluster, base + "/" + pod);
        if (r.status != 200) return "<" + std::to_string(r.status) + ">";
        auto m = json::parse(r.body).as_object();
        return std::string(m.at("containers").at(0).at("usage").at("memory").as_string());
    };
    runner.run_until(8);
    const std::string oom_pod = runner.pod_names_of("frequency-4").at(0);
    CHECK(memory_of(oom_pod) == "400Mi");
    auto list = json::parse(https_get(cluster, base + "?labelSelector=app%3Dhyperflow").body).as_object();
    CHECK(list.at("kind") == "PodMetricsList");
    CHECK(list.at("items").as_array().size() >= 4); // the engine and the running tasks
    for (auto& item : list.at("items").as_array())
        if (item.at("metadata").at("name").as_string() == oom_pod)
            CHECK(item.at("window") == "500ms"); // the 10 s metrics period at time scale 0.05
    runner.run_until(88);
    CHECK(memory_of(oom_pod) == "1000Mi");
    auto one = json::parse(https_get(cluster, base + "/" + oom_pod).body).as_object();
    CHECK(one.at("containers").at(0).at("usage").at("cpu") == "1");
    // The pod spec carries the limit the usage is compared with.
    auto pod = *cluster.get("pods", ns, oom_pod);
    CHECK(pod.at("spec").at("containers").at(0).at("resources").at("limits").at("memory") == "1Gi");
    runner.run_until(218);
    CHECK(phase_of(cluster, ns, oom_pod) == "Failed");
    CHECK(memory_of(oom_pod) == "<404>");
    // The exit-1 failure left its last log lines.
    const std::string failed_pod = runner.pod_names_of("individuals-3").at(0);
    auto tail = https_get(cluster, "/api/v1/namespaces/" + ns + "/pods/" + failed_pod + "/log?tailLines=2");
    CHECK(tail.status == 200);
    CHECK(tail.body.find("OSError: [Errno 121] Remote I/O error") != std::string::npos);
    CHECK(tail.body.find("Command failed with exit code 1") != std::string::npos);
    runner.run_all();
    CHECK(runner.errors().empty());
    for (auto& e : runner.errors()) INFO(e);
}

TEST_CASE("failure shapes look over HTTPS as the cluster shows them", "[integration][scenario][failures]") {
    auto s = es::Scenario::parse(R"({
        "namespace": "wf-shapes", "time_scale": 0.01, "engine": {"at": 0},
        "metrics": {"api": "absent"},
        "task_defaults": {"backoff_limit": 0, "pending": 2},
        "tasks": [
          {"type": "frequency", "proc_id": 1, "duration": 10, "outcome": "evicted"},
          {"type": "mutation_overlap", "proc_id": 2, "duration": 100, "outcome": "deadline_exceeded", "active_deadline": 20},
          {"type": "individuals", "proc_id": 3, "duration": 5, "outcome": "crash_loop", "failed_attempts": 2, "backoff_limit": 3}
        ]
    })");
    es::FakeClusterOptions options;
    options.default_namespace = s.namespace_name;
    es::FakeCluster cluster(options);
    es::ScenarioRunner runner(cluster, s);
    const std::string ns = s.namespace_name;
    runner.run_until(12);
    CHECK(https_get(cluster, "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods").status == 404);
    const std::string evicted = runner.pod_names_of("frequency-1").at(0);
    auto pod = json::parse(https_get(cluster, "/api/v1/namespaces/" + ns + "/pods/" + evicted).body).as_object();
    CHECK(pod.at("status").at("phase") == "Failed");
    CHECK(pod.at("status").at("reason") == "Evicted");
    auto events = https_get(cluster, "/api/v1/namespaces/" + ns + "/events?fieldSelector=involvedObject.name%3D" + evicted +
                                         ",reason%3DEvicted");
    CHECK(json::parse(events.body).at("items").as_array().size() == 1);
    const std::string crashing = runner.pod_names_of("individuals-3").at(0);
    runner.run_until(7);
    auto crash = json::parse(https_get(cluster, "/api/v1/namespaces/" + ns + "/pods/" + crashing).body).as_object();
    auto& cs = crash.at("status").at("containerStatuses").at(0).as_object();
    CHECK(cs.at("state").at("waiting").at("reason") == "CrashLoopBackOff");
    CHECK(cs.at("restartCount") == 1);
    runner.run_until(17); // restarted: the crashed instance's log is `previous`
    auto previous = https_get(cluster, "/api/v1/namespaces/" + ns + "/pods/" + crashing + "/log?previous=true");
    CHECK(previous.status == 200);
    CHECK(previous.body.find("ECONNREFUSED") != std::string::npos);
    runner.run_until(22);
    const std::string job = *runner.job_name_of("mutation_overlap-2");
    CHECK(job_has(cluster, ns, job, "Failed"));
    auto job_json = json::parse(https_get(cluster, "/apis/batch/v1/namespaces/" + ns + "/jobs/" + job).body).as_object();
    CHECK(job_json.at("status").at("conditions").at(1).at("reason") == "DeadlineExceeded");
    CHECK(phase_of(cluster, ns, runner.pod_names_of("mutation_overlap-2").at(0)) == "<absent>");
    runner.run_all();
    CHECK(runner.errors().empty());
    for (auto& e : runner.errors()) INFO(e);
}

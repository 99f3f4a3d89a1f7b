// The metrics API's PodMetricsList parser (kube/metrics.hpp): quantities and windows in base units, errors that
// name the field, limits.
#include <execution_sentinel/kube/metrics.hpp>

#include <string>
#include <variant>
#include <vector>

#include "catch.hpp"

namespace kube = execution_sentinel::kube;

namespace {
const char* const sample_list = R"({
  "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
  "items": [
    {"metadata": {"name": "frequency-1-abc", "namespace": "wf", "labels": {"app": "hyperflow"}},
     "timestamp": "2026-11-23T06:31:04Z", "window": "15.003s",
     "containers": [{"name": "main", "usage": {"cpu": "250m", "memory": "921Mi"}},
                    {"name": "sidecar", "usage": {"cpu": "1234567n", "memory": "10Ki"}}]},
    {"metadata": {"name": "idle", "namespace": "wf"}, "timestamp": "2026-11-23T06:31:04Z", "window": "1m0s",
     "containers": []}
  ]})";
} // namespace

TEST_CASE("metrics: a PodMetricsList is read into base units", "[kube][metrics]") {
    auto pods = kube::parse_pod_metrics_list(std::string_view(sample_list));
    REQUIRE(pods.size() == 2);
    CHECK(pods[0].name == "frequency-1-abc");
    CHECK(pods[0].namespace_ == "wf");
    CHECK(pods[0].timestamp == *kube::parse_rfc3339("2026-11-23T06:31:04Z"));
    CHECK(pods[0].window_seconds == Approx(15.003));
    REQUIRE(pods[0].containers.size() == 2);
    CHECK(pods[0].containers[0].name == "main");
    CHECK(pods[0].containers[0].cpu_cores == Approx(0.25));
    CHECK(pods[0].containers[0].memory_bytes == 921LL * 1024 * 1024);
    CHECK(pods[0].containers[1].cpu_cores == Approx(0.001234567));
    CHECK(pods[0].containers[1].memory_bytes == 10240);
    CHECK(pods[1].window_seconds == Approx(60));
    CHECK(pods[1].containers.empty());
    CHECK(kube::parse_pod_metrics_list(std::string_view(R"({"kind":"PodMetricsList","items":[]})")).empty());
}

TEST_CASE("metrics: malformed answers throw an error naming the field", "[kube][metrics]") {
    auto error_of = [](std::string_view text) -> std::string {
        try {
            kube::parse_pod_metrics_list(text);
        } catch (const kube::MetricsParseError& e) {
            return e.what();
        }
        return "no error";
    };
    CHECK(error_of("<html>503</html>") == "PodMetricsList: (root): not valid JSON (syntax error)");
    CHECK(error_of("[]") == "PodMetricsList: (root): expected an object");
    CHECK(error_of(R"({"kind":"Status"})") == "PodMetricsList: kind: expected PodMetricsList, got \"Status\"");
    CHECK(error_of(R"({"items":{}})") == "PodMetricsList: items: expected an array");
    CHECK(error_of(R"({})") == "PodMetricsList: items: required");
    CHECK(error_of(R"({"items":[{"metadata":{}}]})") == "PodMetricsList: items[0].metadata.name: required");
    CHECK(error_of(R"({"items":[{"metadata":{"name":"p"},"containers":[{"name":"c","usage":{"memory":"12Zi"}}]}]})") ==
          "PodMetricsList: items[0].containers[0].usage.memory: not a memory quantity: \"12Zi\"");
    CHECK(error_of(R"({"items":[{"metadata":{"name":"p"},"containers":[{"usage":{"cpu":5}}]}]})") ==
          "PodMetricsList: items[0].containers[0].usage.cpu: expected a quantity string");
    CHECK(error_of(R"({"items":[{"metadata":{"name":"p"},"window":"soon"}]})") ==
          "PodMetricsList: items[0].window: not a duration: \"soon\"");
    CHECK(error_of(R"({"items":[{"metadata":{"name":"p"},"timestamp":"yesterday"}]})") ==
          "PodMetricsList: items[0].timestamp: not an RFC 3339 time: \"yesterday\"");
    std::string deep(100, '[');
    CHECK(error_of(deep).find("not valid JSON") != std::string::npos);
}

TEST_CASE("metrics: limits on the body, the items, the containers and the names", "[kube][metrics]") {
    kube::MetricsLimits limits{.max_body_bytes = 4096, .max_items = 1, .max_containers = 1, .max_name_bytes = 8};
    CHECK_THROWS_WITH(kube::parse_pod_metrics_list(std::string_view(sample_list), limits),
                      Catch::Contains("items: 2 pods, more than the limit of 1"));
    CHECK_THROWS_WITH(
        kube::parse_pod_metrics_list(std::string_view(R"({"items":[{"metadata":{"name":"p"},"containers":[{},{}]}]})"), limits),
        Catch::Contains("items[0].containers: 2 containers"));
    CHECK_THROWS_WITH(kube::parse_pod_metrics_list(std::string_view(R"({"items":[{"metadata":{"name":"very-long-name"}}]})"), limits),
                      Catch::Contains("items[0].metadata.name: longer than 8 bytes"));
    limits.max_body_bytes = 10;
    CHECK_THROWS_WITH(kube::parse_pod_metrics_list(std::string_view(sample_list), limits),
                      Catch::Contains("more than the limit of 10"));
}

TEST_CASE("metrics: Go durations and the request target", "[kube][metrics]") {
    CHECK(kube::parse_go_duration("30s") == 30.0);
    CHECK(*kube::parse_go_duration("1h2m3.5s") == Approx(3723.5));
    CHECK(*kube::parse_go_duration("500ms") == Approx(0.5));
    CHECK(*kube::parse_go_duration("10\xc2\xb5s") == Approx(1e-5));
    CHECK(kube::parse_go_duration("0") == 0.0);
    CHECK_FALSE(kube::parse_go_duration(""));
    CHECK_FALSE(kube::parse_go_duration("-1s"));
    CHECK_FALSE(kube::parse_go_duration("5"));
    CHECK_FALSE(kube::parse_go_duration("5x"));
    CHECK(kube::pod_metrics_target("wf-1", "app=hyperflow") ==
          "/apis/metrics.k8s.io/v1beta1/namespaces/wf-1/pods?labelSelector=app%3Dhyperflow");
    CHECK(kube::pod_metrics_target("wf-1", "") == "/apis/metrics.k8s.io/v1beta1/namespaces/wf-1/pods");
}

namespace {
/// The reader's answer for `text` fed `piece` bytes and read `batch` pods at a time: the pods, or the error.
std::variant<std::vector<kube::PodMetrics>, std::string> read_in_steps(std::string_view text, std::size_t piece,
                                                                       std::size_t batch, const kube::MetricsLimits& limits = {}) {
    try {
        kube::PodMetricsListReader r(limits);
        for (std::size_t at = 0; at < text.size(); at += piece) r.feed(text.substr(at, piece));
        r.finish();
        while (!r.done()) r.read(batch);
        return r.take();
    } catch (const kube::MetricsParseError& e) {
        return std::string(e.what());
    }
}

std::variant<std::vector<kube::PodMetrics>, std::string> read_at_once(std::string_view text, const kube::MetricsLimits& limits = {}) {
    try {
        return kube::parse_pod_metrics_list(text, limits);
    } catch (const kube::MetricsParseError& e) {
        return std::string(e.what());
    }
}
} // namespace

TEST_CASE("metrics: the answer read in steps is the answer read at once, errors included", "[kube][metrics]") {
    std::string many = R"({"kind":"PodMetricsList","items":[)";
    for (int i = 0; i < 40; ++i)
        many += std::string(i ? "," : "") + R"({"metadata":{"name":"p-)" + std::to_string(i) +
                R"("},"window":"15s","containers":[{"name":"c","usage":{"cpu":")" + std::to_string(i) + R"(m","memory":")" +
                std::to_string(i + 1) + R"(Mi"}}]})";
    many += "]}";
    const std::vector<std::string> texts = {
        sample_list, many, R"({"kind":"PodMetricsList","items":[]})", R"({"items":null})", "<html>503</html>", "[]",
        R"({"kind":"Status"})", R"({"items":{}})", "{}", R"({"items":[{"metadata":{}}]})",
        R"({"items":[{"metadata":{"name":"p"},"window":"soon"}]})", R"({"items":[{"metadata":{"name":"p"}},)",
        R"({"items":[]} trailing)", "", std::string(100, '['),
        // a bad pod after good ones: nothing is kept
        R"({"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}},{"metadata":{"name":"c"},"containers":[{"usage":{"cpu":5}}]}]})"};
    for (const auto& text : texts) {
        const auto whole = read_at_once(text);
        for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{64}, text.size() + 1})
            for (std::size_t batch : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
                INFO("text " << text.substr(0, 60) << ", pieces of " << piece << ", batches of " << batch);
                CHECK(read_in_steps(text, piece, batch) == whole);
            }
    }
    CHECK(std::get<std::vector<kube::PodMetrics>>(read_at_once(many)).size() == 40);

    kube::MetricsLimits limits{.max_body_bytes = 100, .max_items = 3, .max_containers = 1, .max_name_bytes = 8};
    CHECK(read_in_steps(many, 16, 2, limits) == std::variant<std::vector<kube::PodMetrics>, std::string>(
                                                    "PodMetricsList: the answer has more than 100 bytes, the limit"));
    limits.max_body_bytes = 1 << 20;
    CHECK(read_in_steps(many, 16, 2, limits) == read_at_once(many, limits)); // items: 40 pods, more than 3
    CHECK(std::get<std::string>(read_at_once(many, limits)).find("40 pods, more than the limit of 3") != std::string::npos);
}

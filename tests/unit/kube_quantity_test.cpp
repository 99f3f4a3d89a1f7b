// Kubernetes resource quantities (kube/quantity.hpp) and the container resources a pod's spec carries.
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/quantity.hpp>

#include <boost/json/parse.hpp>

#include "catch.hpp"

namespace kube = execution_sentinel::kube;

TEST_CASE("quantities are read in base units", "[kube][quantity]") {
    CHECK(kube::parse_quantity("2") == 2.0);
    CHECK(kube::parse_quantity("250m").value() == Approx(0.25));
    CHECK(kube::parse_quantity("1.5") == 1.5);
    CHECK(kube::parse_quantity("1e3") == 1000.0);
    CHECK(kube::parse_quantity("100k") == 100e3);
    CHECK(kube::parse_quantity("1234567n").value() == Approx(0.001234567));
    CHECK(kube::parse_memory_bytes("512Mi") == 512LL * 1024 * 1024);
    CHECK(kube::parse_memory_bytes("1.5Gi") == 1536LL * 1024 * 1024);
    CHECK(kube::parse_memory_bytes("123456Ki") == 123456LL * 1024);
    CHECK(kube::parse_memory_bytes("1G") == 1'000'000'000LL);
    CHECK(kube::parse_millicores("250m") == 250);
    CHECK(kube::parse_millicores("2") == 2000);
    CHECK(kube::parse_millicores("0.1") == 100);
}

TEST_CASE("malformed quantities are refused", "[kube][quantity]") {
    for (auto bad : {"", "-1", "Mi", "1Xi", "1.2.3", "1e", "1e1234", "abc", "1 Mi", "1mi", ".", "+"})
        CHECK_FALSE(kube::parse_quantity(bad).has_value());
    CHECK_FALSE(kube::parse_memory_bytes("100Ei").has_value()); // beyond int64
    CHECK_FALSE(kube::parse_millicores("10000000").has_value()); // beyond int32 millicores
    CHECK_FALSE(kube::parse_quantity(std::string(65, '1')).has_value());
}

TEST_CASE("a pod keeps the limits and requests of its main containers", "[kube][quantity]") {
    auto v = boost::json::parse(R"({"metadata":{"name":"p"},"spec":{"containers":[
        {"name":"main","resources":{"limits":{"memory":"1Gi","cpu":"2"},"requests":{"memory":"512Mi","cpu":"500m"}}},
        {"name":"sidecar"},
        {"name":"bad","resources":{"limits":{"memory":"lots"}}}]}})");
    auto pod = kube::parse_pod(v.as_object());
    REQUIRE(pod.resources.size() == 1);
    CHECK(pod.resources[0].name == "main");
    CHECK(pod.resources[0].memory_limit_bytes == 1024LL * 1024 * 1024);
    CHECK(pod.resources[0].cpu_limit_millicores == 2000);
    CHECK(pod.resources[0].memory_request_bytes == 512LL * 1024 * 1024);
    CHECK(pod.resources[0].cpu_request_millicores == 500);
}

// The manifests of deploy/ (docs/serve.md, "In a cluster"): the configuration they mount is valid for `serve`, the
// probes point at /healthz and /readyz on the served port, and the RBAC is read-only apart from the completion
// probe's pods/exec and, for several replicas, the Leases and checkpoint ConfigMaps they write. (tests/integration/serve_command_test.cpp also hands them to kubectl when it is installed.)
#include <execution_sentinel/serve/config.hpp>

#include "catch.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace sv = execution_sentinel::serve;

namespace {

/// Every document of every manifest, by "Kind/name".
std::map<std::string, YAML::Node> manifests() {
    std::map<std::string, YAML::Node> out;
    const fs::path dir = fs::path(EXECUTION_SENTINEL_SOURCE_DIR) / "deploy";
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".yaml") continue;
        for (const auto& doc : YAML::LoadAllFromFile(entry.path().string())) {
            if (!doc || doc.IsNull()) continue;
            out[doc["kind"].as<std::string>() + "/" + doc["metadata"]["name"].as<std::string>()] = doc;
        }
    }
    return out;
}

} // namespace

TEST_CASE("deploy: the mounted configuration is valid and listens where the probes and the Service look",
          "[serve][deploy]") {
    auto m = manifests();
    REQUIRE(m.count("ConfigMap/execution-sentinel-config"));
    REQUIRE(m.count("Deployment/execution-sentinel"));
    REQUIRE(m.count("Service/execution-sentinel"));
    REQUIRE(m.count("ServiceAccount/execution-sentinel"));

    auto text = m["ConfigMap/execution-sentinel-config"]["data"]["sentinel.yaml"].as<std::string>();
    auto config = sv::parse_serve_config(text, "deploy/configmap.yaml");
    CHECK(config.http_address == "0.0.0.0");
    CHECK(config.in_cluster);
    // Several replicas share the runs through Leases, with a store they share or none (ConfigMap checkpoints):
    // never a SQLite file of one pod's own.
    CHECK(config.ha);
    CHECK(m["Deployment/execution-sentinel"]["spec"]["replicas"].as<int>() >= 2);
    CHECK(config.history.rfind("sqlite:", 0) == std::string::npos);

    auto spec = m["Deployment/execution-sentinel"]["spec"]["template"]["spec"];
    CHECK(spec["serviceAccountName"].as<std::string>() == "execution-sentinel");
    auto container = spec["containers"][0];
    auto args = container["args"].as<std::vector<std::string>>();
    REQUIRE(args.size() == 3);
    CHECK(args[0] == "serve");
    CHECK(args[2] == "/etc/execution-sentinel/sentinel.yaml");
    CHECK(container["ports"][0]["containerPort"].as<int>() == config.http_port);
    CHECK(container["livenessProbe"]["httpGet"]["path"].as<std::string>() == "/healthz");
    CHECK(container["readinessProbe"]["httpGet"]["path"].as<std::string>() == "/readyz");
    CHECK(container["volumeMounts"][0]["mountPath"].as<std::string>() == "/etc/execution-sentinel");
    CHECK(spec["volumes"][0]["configMap"]["name"].as<std::string>() == "execution-sentinel-config");
    CHECK(m["Service/execution-sentinel"]["spec"]["ports"][0]["port"].as<int>() == config.http_port);
}

TEST_CASE("deploy: the ClusterRole only reads, apart from the completion probe's exec", "[serve][deploy]") {
    auto m = manifests();
    REQUIRE(m.count("ClusterRole/execution-sentinel"));
    REQUIRE(m.count("ClusterRoleBinding/execution-sentinel"));
    std::set<std::string> granted;
    for (const auto& rule : m["ClusterRole/execution-sentinel"]["rules"]) {
        for (const auto& group : rule["apiGroups"])
            for (const auto& resource : rule["resources"])
                for (const auto& verb : rule["verbs"]) {
                    auto v = verb.as<std::string>();
                    auto r = resource.as<std::string>();
                    granted.insert(group.as<std::string>() + "/" + r + ":" + v);
                    INFO(r << ":" << v);
                    if (r == "pods/exec") CHECK((v == "create" || v == "get"));
                    else CHECK((v == "get" || v == "list" || v == "watch"));
                }
    }
    for (const auto* needed : {"/pods:watch", "/pods:list", "/events:watch", "/configmaps:list", "/pods/log:get",
                               "batch/jobs:watch", "metrics.k8s.io/pods:list", "/pods/exec:create"})
        CHECK(granted.count(needed) == 1);
    auto subject = m["ClusterRoleBinding/execution-sentinel"]["subjects"][0];
    CHECK(subject["name"].as<std::string>() == "execution-sentinel");
    CHECK(subject["namespace"].as<std::string>() ==
          m["ServiceAccount/execution-sentinel"]["metadata"]["namespace"].as<std::string>());
}

TEST_CASE("deploy: the ha ClusterRole grants the Leases and checkpoint ConfigMaps the replicas write, nothing more",
          "[serve][deploy][ha]") {
    auto m = manifests();
    REQUIRE(m.count("ClusterRole/execution-sentinel-ha"));
    REQUIRE(m.count("ClusterRoleBinding/execution-sentinel-ha"));
    std::set<std::string> granted;
    for (const auto& rule : m["ClusterRole/execution-sentinel-ha"]["rules"])
        for (const auto& group : rule["apiGroups"])
            for (const auto& resource : rule["resources"])
                for (const auto& verb : rule["verbs"])
                    granted.insert(group.as<std::string>() + "/" + resource.as<std::string>() + ":" + verb.as<std::string>());
    const std::set<std::string> expected{
        "coordination.k8s.io/leases:get",    "coordination.k8s.io/leases:list", "coordination.k8s.io/leases:create",
        "coordination.k8s.io/leases:update", "coordination.k8s.io/leases:delete", "/configmaps:get",
        "/configmaps:create",                "/configmaps:update",               "/configmaps:delete"};
    CHECK(granted == expected);
    auto binding = m["ClusterRoleBinding/execution-sentinel-ha"];
    CHECK(binding["roleRef"]["name"].as<std::string>() == "execution-sentinel-ha");
    CHECK(binding["subjects"][0]["name"].as<std::string>() == "execution-sentinel");
}

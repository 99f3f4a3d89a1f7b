// The configuration of `execution-sentinel serve` (serve/config.hpp): defaults, every section, and errors that name
// the file, the line and the field.
#include <execution_sentinel/serve/config.hpp>

#include "catch.hpp"

#include <string>

namespace sv = execution_sentinel::serve;
using namespace std::chrono_literals;

namespace {

/// The error of parsing `text`, or "" when it parses.
std::string error_of(const std::string& text) {
    try {
        (void)sv::parse_serve_config(text, "sentinel.yaml");
    } catch (const sv::ServeConfigError& e) {
        return e.what();
    }
    return {};
}

} // namespace

TEST_CASE("serve config: an empty file and the printed default are the defaults", "[serve][config]") {
    auto empty = sv::parse_serve_config("", "sentinel.yaml");
    auto printed = sv::parse_serve_config(sv::default_serve_config_yaml(), "default.yaml");
    for (const auto* c : {&empty, &printed}) {
        CHECK(c->namespaces.empty());
        CHECK(c->engine_selector == "component=hyperflow-engine");
        CHECK(c->task_selector == "app=hyperflow");
        CHECK(c->context_configmap_selector == "execution-sentinel/context=true");
        CHECK(c->context_configmap_key == "context.json");
        CHECK(c->http_address == "127.0.0.1");
        CHECK(c->http_port == 9464);
        CHECK(c->history.empty());
        CHECK(c->alerts.empty());
        CHECK_FALSE(c->in_cluster);
        CHECK(c->max_active_runs == 100);
        CHECK(c->settings == execution_sentinel::SentinelSettings{});
        // One replica needs no configuration: no leases unless asked, with client-go's timing when asked.
        CHECK_FALSE(c->ha);
        CHECK(c->ha_identity.empty());
        CHECK(c->leases.lease_duration == 15s);
        CHECK(c->leases.renew_deadline == 10s);
        CHECK(c->leases.retry_period == 2s);
    }
}

TEST_CASE("serve config: the ha section", "[serve][config][ha]") {
    auto c = sv::parse_serve_config("ha:\n  enabled: true\n  identity: sentinel-0\n  lease_duration: 3s\n"
                                    "  renew_deadline: 2s\n  retry_period: 500ms\n",
                                    "s.yaml");
    CHECK(c.ha);
    CHECK(c.ha_identity == "sentinel-0");
    CHECK(c.leases.lease_duration == 3s);
    CHECK(c.leases.renew_deadline == 2s);
    CHECK(c.leases.retry_period == 500ms);
    CHECK(sv::parse_serve_config("ha:\n  enabled: true\n", "s.yaml").leases.renew_deadline == 10s);

    CHECK(error_of("ha:\n  enabled: maybe\n") == "sentinel.yaml:2: ha.enabled: expected true or false");
    CHECK(error_of("ha:\n  lease_duration: 2.5s\n") ==
          "sentinel.yaml:2: ha.lease_duration: must be whole seconds (a Lease counts in seconds)");
    CHECK(error_of("ha:\n  retry_period: soon\n") ==
          "sentinel.yaml:2: ha.retry_period: expected a duration such as 15s, 500ms or 1m");
    CHECK(error_of("ha:\n  retry_period: 10ms\n") == "sentinel.yaml:2: ha.retry_period: must be from 100ms to 1h");
    CHECK(error_of("ha:\n  enabled: true\n  lease_duration: 10s\n") ==
          "sentinel.yaml:3: ha.lease_duration: the renew deadline must be shorter than the lease duration");
    CHECK(error_of("ha:\n  lease_duration: 20s\n  renew_deadline: 25s\n") ==
          "sentinel.yaml:3: ha.renew_deadline: the renew deadline must be shorter than the lease duration");
    CHECK(error_of("ha:\n  retry_period: 10s\n") ==
          "sentinel.yaml:2: ha.retry_period: the retry period must be shorter than the renew deadline");
    CHECK(error_of("ha:\n  leader: x\n").starts_with("sentinel.yaml:2: ha.leader: unknown field (expected enabled"));
    CHECK(error_of("ha: on\n") == "sentinel.yaml:1: ha: expected a mapping");
}

TEST_CASE("serve config: every section is read", "[serve][config]") {
    auto c = sv::parse_serve_config(R"(
namespaces: [wf-a, wf-b]
engine_selector: component=engine,tier in (a,b)
task_selector: app=tasks
engine_container: engine
completion_signal_path: /data/exit
context_configmap:
  selector: sentinel=yes
  key: ctx.json
thresholds:
  poll_interval: 500ms
  timeout: 2h
  straggler_multiplier: 4.5
  stall_seconds: 90
  stall_tiers: [1, 3, 6, 12]
  log_level: warning
  evidence_log_lines: 7
store:
  history: sqlite:/var/lib/sentinel/history.db
sinks:
  alerts: /etc/sentinel/alerts.yaml
http:
  listen: 0.0.0.0:8080
kubernetes:
  kubeconfig: /etc/kube/config
  context: prod
runs:
  max_active: 7
  keep_finished: 3
  keep_reports: 50
)",
                                    "s.yaml");
    CHECK(c.namespaces == std::vector<std::string>{"wf-a", "wf-b"});
    CHECK(c.engine_selector == "component=engine,tier in (a,b)");
    CHECK(c.task_selector == "app=tasks");
    CHECK(c.engine_container == "engine");
    CHECK(c.completion_signal_path == "/data/exit");
    CHECK(c.context_configmap_selector == "sentinel=yes");
    CHECK(c.context_configmap_key == "ctx.json");
    CHECK(c.settings.poll_interval == 500ms);
    CHECK(c.settings.timeout == 7200s);
    CHECK(c.settings.straggler_multiplier == 4.5);
    CHECK(c.settings.stall_threshold == 90s);
    CHECK(c.settings.stall_tiers == std::vector<double>{1, 3, 6, 12});
    CHECK(c.settings.log_level == execution_sentinel::LogLevel::WARNING);
    CHECK(c.settings.evidence_log_lines == 7);
    CHECK(c.history == "sqlite:/var/lib/sentinel/history.db");
    CHECK(c.alerts == "/etc/sentinel/alerts.yaml");
    CHECK(c.http_address == "0.0.0.0");
    CHECK(c.http_port == 8080);
    CHECK(c.kubeconfig == "/etc/kube/config");
    CHECK(c.kube_context == "prod");
    CHECK(c.max_active_runs == 7);
    CHECK(c.keep_finished_runs == 3);
    CHECK(c.keep_reports_per_run == 50);

    auto v6 = sv::parse_serve_config("http:\n  listen: '[::]:0'\nkubernetes:\n  in_cluster: true\n", "s.yaml");
    CHECK(v6.http_address == "::");
    CHECK(v6.http_port == 0);
    CHECK(v6.in_cluster);
}

TEST_CASE("serve config: errors name the file, the line and the field", "[serve][config]") {
    CHECK(error_of("namespaces: [ok, Not_Valid]\n") == "sentinel.yaml:1: namespaces[1]: not a valid namespace name");
    CHECK(error_of("namespaces: [a, a]\n") == "sentinel.yaml:1: namespaces[1]: listed twice");
    CHECK(error_of("\n\nengine_selector: 'a in (b'\n").starts_with("sentinel.yaml:3: engine_selector: not a valid label selector"));
    CHECK(error_of("engine_selector: ''\n").starts_with("sentinel.yaml:1: engine_selector: required"));
    CHECK(error_of("thresholds:\n  poll_interval: 10s\n  timeout: -3\n") ==
          "sentinel.yaml:3: thresholds.timeout: expected a duration such as 10, 10s, 1.5, 500ms, 2m or 1h");
    CHECK(error_of("thresholds:\n  poll_interval: 10ms\n").starts_with("sentinel.yaml:2: thresholds.poll_interval: "));
    CHECK(error_of("thresholds:\n  straggler_multiplier: 0.5\n").starts_with("sentinel.yaml:2: thresholds.straggler_multiplier: "));
    CHECK(error_of("thresholds:\n  stall_tiers: [4, 2, 1, 8]\n") ==
          "sentinel.yaml:2: thresholds.stall_tiers: tiers must be in ascending order");
    CHECK(error_of("thresholds:\n  kubeconfig: x\n") ==
          "sentinel.yaml:2: thresholds.kubeconfig: unknown threshold (see docs/serve.md for the names)");
    CHECK(error_of("http:\n  listen: localhost\n").starts_with("sentinel.yaml:2: http.listen: expected HOST:PORT"));
    CHECK(error_of("http:\n  listen: 1.2.3.4:70000\n").starts_with("sentinel.yaml:2: http.listen: expected HOST:PORT"));
    CHECK(error_of("http:\n  port: 1\n") == "sentinel.yaml:2: http.port: unknown field (expected listen or tls)");
    CHECK(error_of("runs:\n  max_active: 0\n") == "sentinel.yaml:2: runs.max_active: expected a whole number from 1 to 10000");
    CHECK(error_of("kubernetes:\n  in_cluster: maybe\n") == "sentinel.yaml:2: kubernetes.in_cluster: expected true or false");
    CHECK(error_of("kubernetes:\n  in_cluster: true\n  kubeconfig: /x\n").starts_with("sentinel.yaml:2: kubernetes.in_cluster: give either"));
    CHECK(error_of("completion_signal_path: relative\n") == "sentinel.yaml:1: completion_signal_path: must be an absolute path");
    CHECK(error_of("context_configmap:\n  key: 'a/b'\n").starts_with("sentinel.yaml:2: context_configmap.key: not a valid ConfigMap key"));
    CHECK(error_of("bogus: 1\n").starts_with("sentinel.yaml:1: bogus: unknown field"));
    CHECK(error_of("store: sqlite:x\n").starts_with("sentinel.yaml:1: store: expected a mapping"));
    CHECK(error_of("- a\n- b\n").starts_with("sentinel.yaml:1: (file): expected a mapping"));
    CHECK(error_of("a: [\n").starts_with("sentinel.yaml:"));
    CHECK(error_of("a: [\n").find("(file): not valid YAML") != std::string::npos);
    CHECK(error_of("namespaces: []\nnamespaces: []\n") == "sentinel.yaml:2: namespaces: given twice");
}

TEST_CASE("serve config: a store address with a password is never quoted in an error", "[serve][config]") {
    auto e = error_of("store:\n  history: postgresql://u:SECRETPW@db/x\nhttp:\n  listen: nope\n");
    CHECK(e.starts_with("sentinel.yaml:4: http.listen"));
    CHECK(e.find("SECRETPW") == std::string::npos);
    auto v = error_of("thresholds:\n  timeout: SECRETPW\n");
    CHECK(v.find("SECRETPW") == std::string::npos);
    // A value typed where a field name belongs (a missing space after the colon) is not repeated either.
    auto k = error_of("store:\n  history \"postgresql://u:SECRETPW@db/x\": 1\n");
    CHECK(k == "sentinel.yaml:2: store.(a field name that is not valid): unknown field (expected history)");
    auto top = error_of("postgresql://u:SECRETPW@db/x: 1\n");
    CHECK(top.starts_with("sentinel.yaml:1: (a field name that is not valid): unknown field"));
}

TEST_CASE("serve config: an alias bomb and deep nesting are refused, not expanded", "[serve][config]") {
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'h'; ++c) {
        bomb += std::string(1, c) + ": &" + c + " [";
        for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
        bomb += "]\n";
        prev = c;
    }
    CHECK(error_of(bomb).find("(file): its aliases and anchors expand") != std::string::npos);
    CHECK(error_of(std::string(200, '[') + std::string(200, ']')).find("(file)") != std::string::npos);
}

TEST_CASE("serve config: the api and http.tls sections", "[serve][config][registration]") {
    auto defaults = sv::parse_serve_config(sv::default_serve_config_yaml(), "default.yaml");
    CHECK(defaults.api_tokens_file.empty()); // registration disabled unless tokens are configured
    CHECK(defaults.api_max_body_bytes == 1024 * 1024);
    CHECK(defaults.tls_cert_file.empty());
    CHECK(defaults.tls_key_file.empty());

    auto c = sv::parse_serve_config("http:\n  listen: 0.0.0.0:8443\n  tls:\n    cert_file: /tls/tls.crt\n"
                                    "    key_file: /tls/tls.key\napi:\n  tokens_file: /secrets/tokens\n"
                                    "  max_body_bytes: 4096\n",
                                    "sentinel.yaml");
    CHECK(c.http_port == 8443);
    CHECK(c.tls_cert_file == "/tls/tls.crt");
    CHECK(c.tls_key_file == "/tls/tls.key");
    CHECK(c.api_tokens_file == "/secrets/tokens");
    CHECK(c.api_max_body_bytes == 4096);

    CHECK(error_of("http:\n  tls:\n    cert_file: /tls/tls.crt\n") ==
          "sentinel.yaml:3: http.tls.key_file: required with cert_file (give both, or neither for plain HTTP)");
    CHECK(error_of("http:\n  tls:\n    key_file: /tls/tls.key\n") ==
          "sentinel.yaml:3: http.tls.cert_file: required with key_file (give both, or neither for plain HTTP)");
    CHECK(error_of("http:\n  tls:\n    cert: x\n") == "sentinel.yaml:3: http.tls.cert: unknown field (expected cert_file or key_file)");
    CHECK(error_of("api:\n  tokens: x\n") ==
          "sentinel.yaml:2: api.tokens: unknown field (expected tokens_file or max_body_bytes)");
    CHECK(error_of("api:\n  max_body_bytes: 10\n") ==
          "sentinel.yaml:2: api.max_body_bytes: expected a whole number from 1024 to 67108864");
    CHECK(error_of("api:\n  tokens_file: [a, b]\n") == "sentinel.yaml:2: api.tokens_file: expected a single value");
}

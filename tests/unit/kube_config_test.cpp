#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/detail/config_impl.hpp> // detail:: helpers under test (split_kubeconfig_list, base64)

#include "catch.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace kube = execution_sentinel::kube;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string data_dir = std::string(EXECUTION_SENTINEL_SOURCE_DIR) + "/tests/unit/data/kubeconfig";

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "es-config-XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return path + "/" + name; }
    std::string write(const std::string& name, const std::string& content) const {
        fs::create_directories(fs::path(file(name)).parent_path());
        std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
        out << content;
        return file(name);
    }
    std::string script(const std::string& name, const std::string& body) const {
        auto p = write(name, "#!/bin/sh\n" + body + "\n");
        ::chmod(p.c_str(), 0755);
        return p;
    }
};

std::string b64(const std::string& s) { return kube::detail::base64_encode(s); }

const std::string ca_pem = slurp(data_dir + "/ca.crt");
const std::string cert_pem = slurp(data_dir + "/client.crt");
const std::string key_pem = slurp(data_dir + "/client.key");
const std::string other_key_pem = slurp(data_dir + "/other.key");

/// A kubeconfig with one cluster "c", one user "u" and one context "ctx" (current).
std::string kubeconfig(const std::string& cluster_fields, const std::string& user_fields,
                       const std::string& context_extra = "") {
    return "apiVersion: v1\nkind: Config\n"
           "clusters:\n- name: c\n  cluster:\n" + cluster_fields +
           "users:\n- name: u\n  user:\n" + user_fields +
           "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n" + context_extra +
           "current-context: ctx\n";
}

const std::string plain_cluster = "    server: https://10.0.0.1:6443\n";

kube::KubeconfigOptions isolated(std::map<std::string, std::string> env = {}) {
    kube::KubeconfigOptions o;
    o.environment = kube::ConfigEnvironment::from_map(env);
    o.environment.service_account_dir = "/nonexistent/serviceaccount";
    return o;
}

/// Runs f, which must throw kube::Error; returns what() and sets the code.
std::string error_of(const std::function<void()>& f, std::error_code& ec) {
    try {
        f();
    } catch (const kube::Error& e) {
        ec = e.code();
        CHECK(std::string(e.what()).rfind(e.diagnostics().client_message, 0) == 0);
        return e.what();
    }
    FAIL("expected kube::Error");
    return {};
}

std::string config_error(const std::string& yaml, const std::string& origin = "/cfg/config",
                         const kube::KubeconfigOptions& o = isolated()) {
    std::error_code ec;
    auto msg = error_of([&] { kube::load_kubeconfig_from_string(yaml, origin, o); }, ec);
    CHECK(ec == kube::error::config_invalid);
    CHECK(kube::is_fatal(ec));
    return msg;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("kubeconfig: cluster fields", "[kube][config]") {
    auto yaml = kubeconfig("    server: https://10.0.0.1:6443/prefix/\n"
                           "    certificate-authority-data: " + b64(ca_pem) + "\n"
                           "    tls-server-name: kubernetes.default\n"
                           "    disable-compression: true\n",
                           "    token: abc\n", "    namespace: wf-1\n");
    auto c = kube::load_kubeconfig_from_string(yaml, "/home/u/.kube/config", isolated());
    CHECK(c.server == "https://10.0.0.1:6443/prefix/");
    CHECK(c.host == "10.0.0.1");
    CHECK(c.port == "6443");
    CHECK(c.base_path == "/prefix");
    CHECK(c.ca_pem == ca_pem);
    CHECK_FALSE(c.insecure_skip_tls_verify);
    CHECK(c.tls_server_name == "kubernetes.default");
    CHECK(c.verify_name() == "kubernetes.default");
    CHECK(c.namespace_ == "wf-1");
    CHECK(c.source == "kubeconfig /home/u/.kube/config, context \"ctx\"");
    REQUIRE(c.credentials);
    CHECK(c.credentials->current().bearer_token == "abc");
    CHECK_FALSE(contains(c.credentials->describe(), "abc"));
}

TEST_CASE("kubeconfig: server URLs", "[kube][config]") {
    struct Case {
        std::string server, host, port, base_path;
    };
    auto [server, host, port, base_path] = GENERATE(values<Case>({
        {"https://10.0.0.1:6443", "10.0.0.1", "6443", ""},
        {"https://example.com", "example.com", "443", ""},
        {"https://example.com/", "example.com", "443", ""},
        {"HTTPS://example.com:8443/a/b//", "example.com", "8443", "/a/b"},
        {"https://[fd00::1]:6443", "fd00::1", "6443", ""},
        {"https://[::1]/k8s", "::1", "443", "/k8s"},
    }));
    CAPTURE(server);
    auto c = kube::load_kubeconfig_from_string(kubeconfig("    server: \"" + server + "\"\n", "    token: t\n"), "cfg",
                                               isolated());
    CHECK(c.host == host);
    CHECK(c.port == port);
    CHECK(c.base_path == base_path);
    CHECK(c.verify_name() == host);
    CHECK(c.namespace_.empty());
}

TEST_CASE("kubeconfig: bad server URLs", "[kube][config]") {
    auto [server, hint] = GENERATE(values<std::pair<std::string, std::string>>({
        {"http://10.0.0.1:8080", "plain http"},
        {"10.0.0.1:6443", "https://"},
        {"https://", "no host"},
        {"https://host:99999", "port"},
        {"https://host:abc", "port"},
        {"https://host:", "empty port"},
        {"https://[fd00::1:6443", "IPv6"},
        {"https://user@host", "user"},
        {"https://host/?x=1", "query"},
    }));
    CAPTURE(server);
    auto msg = config_error(kubeconfig("    server: \"" + server + "\"\n", "    token: t\n"));
    CHECK(contains(msg, hint));
    CHECK(contains(msg, "cluster \"c\""));
    CHECK(contains(msg, "/cfg/config"));
    std::string missing = config_error(kubeconfig("    insecure-skip-tls-verify: false\n", "    token: t\n"));
    CHECK(contains(missing, "has no server"));
}

TEST_CASE("kubeconfig: certificate authority", "[kube][config]") {
    TempDir dir;
    dir.write("certs/ca.crt", ca_pem);
    SECTION("file path relative to the kubeconfig's directory") {
        auto file = dir.write("config", kubeconfig(plain_cluster + "    certificate-authority: certs/ca.crt\n", ""));
        auto o = isolated();
        o.path = file;
        CHECK(kube::load_kubeconfig(o).ca_pem == ca_pem);
    }
    SECTION("data wins over the file") {
        auto file = dir.write("config", kubeconfig(plain_cluster + "    certificate-authority: does-not-exist.crt\n"
                                                   "    certificate-authority-data: " + b64(ca_pem) + "\n", ""));
        auto o = isolated();
        o.path = file;
        CHECK(kube::load_kubeconfig(o).ca_pem == ca_pem);
    }
    SECTION("missing file") {
        auto msg = config_error(kubeconfig(plain_cluster + "    certificate-authority: nope/ca.crt\n", ""),
                                dir.file("config"));
        CHECK(contains(msg, "certificate-authority"));
        CHECK(contains(msg, dir.file("nope/ca.crt")));
        CHECK(contains(msg, "No such file"));
    }
    SECTION("bad base64") {
        auto msg = config_error(kubeconfig(plain_cluster + "    certificate-authority-data: '!!not base64!!'\n", ""));
        CHECK(contains(msg, "certificate-authority-data"));
        CHECK(contains(msg, "base64"));
    }
    SECTION("not a certificate") {
        auto msg = config_error(kubeconfig(plain_cluster + "    certificate-authority-data: " + b64("hello") + "\n", ""));
        CHECK(contains(msg, "not a PEM certificate"));
    }
    SECTION("no CA means the system trust store") {
        auto c = kube::load_kubeconfig_from_string(kubeconfig(plain_cluster, ""), "cfg", isolated());
        CHECK(c.ca_pem.empty());
        CHECK_FALSE(c.insecure_skip_tls_verify);
    }
}

TEST_CASE("kubeconfig: insecure-skip-tls-verify only when explicitly true", "[kube][config]") {
    auto value = GENERATE(as<std::string>{}, "true", "false", "");
    auto fields = plain_cluster + (value.empty() ? "" : "    insecure-skip-tls-verify: " + value + "\n");
    auto c = kube::load_kubeconfig_from_string(kubeconfig(fields, ""), "cfg", isolated());
    CHECK(c.insecure_skip_tls_verify == (value == "true"));

    auto msg = config_error(kubeconfig(plain_cluster + "    insecure-skip-tls-verify: maybe\n", ""));
    CHECK(contains(msg, "insecure-skip-tls-verify"));
    msg = config_error(kubeconfig(plain_cluster + "    insecure-skip-tls-verify: true\n"
                                  "    certificate-authority-data: " + b64(ca_pem) + "\n", ""));
    CHECK(contains(msg, "insecure-skip-tls-verify"));
}

TEST_CASE("kubeconfig: proxy-url is refused", "[kube][config]") {
    auto msg = config_error(kubeconfig(plain_cluster + "    proxy-url: http://proxy:3128\n", ""));
    CHECK(contains(msg, "proxy-url"));
    CHECK(contains(msg, "not supported"));
}

TEST_CASE("kubeconfig: token and tokenFile", "[kube][config]") {
    TempDir dir;
    dir.write("secrets/token", "file-token\n");
    auto o = isolated();
    SECTION("tokenFile (relative) wins over token") {
        o.path = dir.write("config", kubeconfig(plain_cluster, "    token: inline-token\n    tokenFile: secrets/token\n"));
        auto c = kube::load_kubeconfig(o);
        CHECK(c.credentials->current().bearer_token == "file-token");
        CHECK(c.credentials->describe() == "token file " + dir.file("secrets/token") + " from kubeconfig " +
                                               dir.file("config") + ", user \"u\"");
    }
    SECTION("tokenFile is re-read") {
        auto now = std::make_shared<kube::Timestamp>(kube::Clock::now());
        o.environment.credentials.now = [now] { return *now; };
        o.path = dir.write("config", kubeconfig(plain_cluster, "    tokenFile: " + dir.file("secrets/token") + "\n"));
        auto c = kube::load_kubeconfig(o);
        CHECK(c.credentials->current().bearer_token == "file-token");
        dir.write("secrets/token", "rotated");
        *now += 61s;
        CHECK(c.credentials->current().bearer_token == "rotated");
    }
    SECTION("unreadable tokenFile without token") {
        o.path = dir.write("config", kubeconfig(plain_cluster, "    tokenFile: missing-token\n"));
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(ec == kube::error::credentials_unavailable);
        CHECK(contains(msg, dir.file("missing-token")));
        CHECK(contains(msg, "user \"u\""));
    }
    SECTION("no user fields: anonymous") {
        auto c = kube::load_kubeconfig_from_string(kubeconfig(plain_cluster, ""), "cfg", isolated());
        CHECK(c.credentials->current().empty());
        CHECK_FALSE(c.credentials->has_credentials());
    }
}

TEST_CASE("kubeconfig: client certificates", "[kube][config]") {
    TempDir dir;
    dir.write("pki/client.crt", cert_pem);
    dir.write("pki/client.key", key_pem);
    dir.write("pki/other.key", other_key_pem);
    dir.write("pki/garbage.key", "-----BEGIN PRIVATE KEY-----\nnot really a key\n-----END PRIVATE KEY-----\n");
    auto o = isolated();
    SECTION("relative files") {
        o.path = dir.write("config", kubeconfig(plain_cluster, "    client-certificate: pki/client.crt\n    client-key: pki/client.key\n"));
        auto c = kube::load_kubeconfig(o).credentials->current();
        CHECK(c.client_certificate_pem == cert_pem);
        CHECK(c.client_key_pem == key_pem);
    }
    SECTION("data fields win over files") {
        o.path = dir.write("config", kubeconfig(plain_cluster,
                                                "    client-certificate: missing.crt\n    client-key: missing.key\n"
                                                "    client-certificate-data: " + b64(cert_pem) + "\n"
                                                "    client-key-data: " + b64(key_pem) + "\n"));
        auto c = kube::load_kubeconfig(o).credentials->current();
        CHECK(c.client_certificate_pem == cert_pem);
        CHECK(c.client_key_pem == key_pem);
    }
    SECTION("garbage key file is named") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate: pki/client.crt\n    client-key: pki/garbage.key\n"),
                                dir.file("config"));
        CHECK(contains(msg, "client-key"));
        CHECK(contains(msg, dir.file("pki/garbage.key")));
        CHECK_FALSE(contains(msg, "not really a key"));
    }
    SECTION("key of another certificate") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate: pki/client.crt\n    client-key: pki/other.key\n"),
                                dir.file("config"));
        CHECK(contains(msg, "does not belong"));
    }
    SECTION("unreadable key file") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate: pki/client.crt\n    client-key: pki/none.key\n"),
                                dir.file("config"));
        CHECK(contains(msg, "client-key"));
        CHECK(contains(msg, dir.file("pki/none.key")));
    }
    SECTION("bad base64 names the field") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate-data: " + b64(cert_pem) + "\n"
                                                          "    client-key-data: 'SECRET-KEY-DATA%%%'\n"));
        CHECK(contains(msg, "client-key-data"));
        CHECK(contains(msg, "base64"));
        CHECK_FALSE(contains(msg, "SECRET-KEY-DATA"));
    }
    SECTION("certificate without key") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate-data: " + b64(cert_pem) + "\n"));
        CHECK(contains(msg, "no client-key"));
    }
    SECTION("certificate data that is not a certificate") {
        auto msg = config_error(kubeconfig(plain_cluster, "    client-certificate-data: " + b64("junk") + "\n"
                                                          "    client-key-data: " + b64(key_pem) + "\n"));
        CHECK(contains(msg, "client-certificate-data"));
    }
}

TEST_CASE("kubeconfig: unsupported authentication is a clear error", "[kube][config]") {
    auto [fields, hint] = GENERATE(values<std::pair<std::string, std::string>>({
        {"    username: admin\n    password: hunter2-secret\n", "username/password"},
        {"    auth-provider:\n      name: gcp\n      config:\n        access-token: ya29-secret\n", "exec credential plugin"},
        {"    token: t\n    as: someone\n", "impersonation"},
    }));
    auto msg = config_error(kubeconfig(plain_cluster, fields));
    CHECK(contains(msg, hint));
    CHECK(contains(msg, "user \"u\""));
    CHECK_FALSE(contains(msg, "hunter2"));
    CHECK_FALSE(contains(msg, "ya29"));
}

TEST_CASE("kubeconfig: exec plugin fields", "[kube][config][exec]") {
    TempDir dir;
    auto script = dir.script("bin/get-token",
                             "printf '%s|%s|%s' \"$1\" \"$2\" \"$AWS_PROFILE\" > '" + dir.file("seen") + "'\n"
                             "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + dir.file("info") + "'\n"
                             "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-token\"}}'");
    auto o = isolated({{"PATH", "/usr/bin:/bin"}});
    o.path = dir.write("config",
                       kubeconfig(plain_cluster + "    certificate-authority-data: " + b64(ca_pem) + "\n"
                                                  "    extensions:\n"
                                                  "    - name: other\n      extension: {ignored: true}\n"
                                                  "    - name: client.authentication.k8s.io/exec\n"
                                                  "      extension: {audience: api, port: 8080, quoted: \"8080\", on: true, list: [1.5, ~]}\n",
                                  "    exec:\n"
                                  "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                  "      command: ./bin/get-token\n"
                                  "      args: [\"eks\", \"get token\"]\n"
                                  "      env:\n      - name: AWS_PROFILE\n        value: prod\n"
                                  "      installHint: install get-token\n"
                                  "      provideClusterInfo: true\n"));
    auto c = kube::load_kubeconfig(o);
    REQUIRE(c.credentials->uses_exec_plugin());
    auto& e = *c.credentials->source().exec;
    CHECK(e.command == dir.file("./bin/get-token"));
    CHECK(e.args == std::vector<std::string>{"eks", "get token"});
    CHECK(e.env == std::vector<std::pair<std::string, std::string>>{{"AWS_PROFILE", "prod"}});
    CHECK(e.install_hint == "install get-token");
    CHECK(e.interactive_mode == kube::ExecPluginConfig::InteractiveMode::if_available); // v1beta1 default
    CHECK(c.credentials->current().bearer_token == "exec-token");
    CHECK(slurp(dir.file("seen")) == "eks|get token|prod");
    auto info = slurp(dir.file("info"));
    CHECK(contains(info, "\"server\":\"https://10.0.0.1:6443\""));
    CHECK(contains(info, "\"certificate-authority-data\":\"" + b64(ca_pem) + "\""));
    CHECK(contains(info, "\"config\":{\"audience\":\"api\",\"port\":8080,\"quoted\":\"8080\",\"on\":true,\"list\":[1.5E0,null]}"));
    CHECK_FALSE(contains(info, "ignored"));
    CHECK(contains(c.credentials->describe(), "exec plugin"));

    SECTION("command without '/' is looked up in PATH, not resolved") {
        auto c2 = kube::load_kubeconfig_from_string(
            kubeconfig(plain_cluster, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n"
                                      "      interactiveMode: Never\n"),
            dir.file("config"), isolated());
        CHECK(c2.credentials->source().exec->command == "aws");
        CHECK(c2.credentials->source().exec->interactive_mode == kube::ExecPluginConfig::InteractiveMode::never);
    }
}

TEST_CASE("kubeconfig: broken exec blocks", "[kube][config][exec]") {
    auto [exec, hint] = GENERATE(values<std::pair<std::string, std::string>>({
        {"      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n", "interactiveMode is required"},
        {"      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      interactiveMode: Always\n", "without a terminal"},
        {"      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      interactiveMode: Sometimes\n", "Sometimes"},
        {"      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: aws\n", "v1alpha1"},
        {"      command: aws\n", "apiVersion"},
        {"      apiVersion: client.authentication.k8s.io/v1beta1\n", "no command"},
        {"      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: notalist\n", "exec.args"},
        {"      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      env:\n      - value: x\n", "exec.env"},
    }));
    auto msg = config_error(kubeconfig(plain_cluster, "    exec:\n" + exec));
    CHECK(contains(msg, hint));
    CHECK(contains(msg, "user \"u\""));
}

TEST_CASE("kubeconfig: exec plugin that fails at the first request", "[kube][config][exec]") {
    TempDir dir;
    dir.script("plugin", "echo 'token expired, run login' >&2\nexit 2");
    auto o = isolated();
    o.path = dir.write("config", kubeconfig(plain_cluster, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                                           "      command: ./plugin\n      interactiveMode: Never\n"));
    auto c = kube::load_kubeconfig(o); // loading does not run the plugin
    std::error_code ec;
    auto msg = error_of([&] { c.credentials->current(); }, ec);
    CHECK(ec == kube::error::credentials_unavailable);
    CHECK(contains(msg, "exited with code 2"));
    CHECK(contains(msg, "run login"));
    CHECK(contains(msg, dir.file("config")));
}

TEST_CASE("kubeconfig: contexts", "[kube][config]") {
    std::string yaml = "clusters:\n"
                       "- name: a\n  cluster:\n    server: https://a.example:6443\n"
                       "- name: b\n  cluster:\n    server: https://b.example:6443\n"
                       "users:\n- name: ua\n  user:\n    token: ta\n- name: ub\n  user:\n    token: tb\n"
                       "contexts:\n"
                       "- name: ctx-a\n  context:\n    cluster: a\n    user: ua\n    namespace: na\n"
                       "- name: ctx-b\n  context:\n    cluster: b\n    user: ub\n"
                       "- name: no-cluster\n  context:\n    cluster: gone\n    user: ua\n"
                       "- name: no-user\n  context:\n    cluster: a\n    user: gone\n"
                       "- name: anonymous\n  context:\n    cluster: b\n"
                       "current-context: ctx-a\n";
    auto o = isolated();
    SECTION("current-context") {
        auto c = kube::load_kubeconfig_from_string(yaml, "/k/config", o);
        CHECK(c.host == "a.example");
        CHECK(c.namespace_ == "na");
        CHECK(c.credentials->current().bearer_token == "ta");
    }
    SECTION("named context") {
        o.context = "ctx-b";
        auto c = kube::load_kubeconfig_from_string(yaml, "/k/config", o);
        CHECK(c.host == "b.example");
        CHECK(c.namespace_.empty());
        CHECK(c.credentials->current().bearer_token == "tb");
        CHECK(c.source == "kubeconfig /k/config, context \"ctx-b\"");
    }
    SECTION("context without a user") {
        o.context = "anonymous";
        auto c = kube::load_kubeconfig_from_string(yaml, "/k/config", o);
        CHECK(c.credentials->current().empty());
    }
    SECTION("unknown context lists the known ones") {
        o.context = "prod";
        auto msg = config_error(yaml, "/k/config", o);
        CHECK(contains(msg, "context \"prod\" is not defined"));
        CHECK(contains(msg, "\"ctx-a\""));
        CHECK(contains(msg, "/k/config"));
    }
    SECTION("missing cluster") {
        o.context = "no-cluster";
        auto msg = config_error(yaml, "/k/config", o);
        CHECK(contains(msg, "cluster \"gone\""));
        CHECK(contains(msg, "context \"no-cluster\""));
    }
    SECTION("missing user") {
        o.context = "no-user";
        auto msg = config_error(yaml, "/k/config", o);
        CHECK(contains(msg, "user \"gone\""));
    }
    SECTION("no current-context") {
        auto msg = config_error("clusters: []\n", "/k/config", o);
        CHECK(contains(msg, "no current-context"));
        msg = config_error("", "/k/empty", o);
        CHECK(contains(msg, "no current-context"));
    }
    SECTION("current-context naming a missing context") {
        auto msg = config_error("current-context: vanished\n", "/k/config", o);
        CHECK(contains(msg, "\"vanished\""));
        CHECK(contains(msg, "current-context of /k/config"));
    }
}

TEST_CASE("kubeconfig: broken files", "[kube][config]") {
    TempDir dir;
    auto o = isolated();
    SECTION("explicit file missing") {
        o.path = dir.file("missing");
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(ec == kube::error::config_invalid);
        CHECK(contains(msg, dir.file("missing")));
        CHECK(contains(msg, "No such file"));
    }
    SECTION("bad YAML reports the line") {
        auto msg = config_error("clusters:\n- name: a\n  cluster: {server: [\n", "/k/bad");
        CHECK(contains(msg, "/k/bad line "));
        CHECK(contains(msg, "not valid YAML"));
    }
    SECTION("not a kubeconfig") {
        CHECK(contains(config_error("- a\n- b\n", "/k/list"), "not a map"));
        CHECK(contains(config_error("just a string\n", "/k/str"), "not a map"));
    }
    SECTION("wrong shapes name the field and line") {
        auto msg = config_error("clusters: {a: b}\ncurrent-context: x\n", "/k/shape");
        CHECK(contains(msg, "clusters must be a list"));
        CHECK(contains(msg, "/k/shape line 1"));
        msg = config_error("clusters:\n- cluster: {server: https://x}\n", "/k/shape");
        CHECK(contains(msg, "has no name"));
        CHECK(contains(msg, "line 2"));
        msg = config_error(kubeconfig("    server: [a, b]\n", ""), "/k/shape");
        CHECK(contains(msg, "server must be a string"));
        msg = config_error("clusters:\n- name: a\n  cluster: [1]\n", "/k/shape");
        CHECK(contains(msg, "must be a map"));
    }
    SECTION("directory instead of file") {
        o.path = dir.path;
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(contains(msg, "directory"));
    }
}

TEST_CASE("kubeconfig: KUBECONFIG merge, the first file to set a value wins", "[kube][config]") {
    TempDir dir;
    // First: cluster shared + user shared + context one; no current-context.
    dir.write("one/config", "clusters:\n- name: shared\n  cluster:\n    server: https://one.example\n"
                            "    certificate-authority: ca.crt\n"
                            "users:\n- name: shared\n  user:\n    tokenFile: token\n"
                            "contexts:\n- name: one\n  context:\n    cluster: shared\n    user: shared\n");
    dir.write("one/ca.crt", ca_pem);
    dir.write("one/token", "token-from-one");
    // Second: redefines cluster/user "shared" (ignored), adds context two, sets current-context two.
    dir.write("two/config", "clusters:\n- name: shared\n  cluster:\n    server: https://two.example\n"
                            "- name: only-two\n  cluster:\n    server: https://only-two.example\n"
                            "users:\n- name: shared\n  user:\n    token: token-from-two\n"
                            "contexts:\n- name: two\n  context:\n    cluster: only-two\n    user: shared\n    namespace: ns-two\n"
                            "current-context: two\n");
    // Third: sets another current-context (ignored) and redefines context two (ignored).
    dir.write("three/config", "contexts:\n- name: two\n  context:\n    cluster: shared\n    user: shared\n"
                              "- name: three\n  context:\n    cluster: only-two\n"
                              "current-context: three\n");
    std::string list = dir.file("one/config") + "::" + dir.file("two/config") + ":" + dir.file("missing/config") + ":" +
                       dir.file("three/config") + ":" + dir.file("one/config") + ":";
    auto o = isolated({{"KUBECONFIG", list}, {"HOME", dir.file("home")}});
    auto c = kube::load_kubeconfig(o);
    CHECK(c.source == "kubeconfig " + dir.file("two/config") + ", context \"two\"");
    CHECK(c.host == "only-two.example");
    CHECK(c.namespace_ == "ns-two");
    CHECK(c.credentials->current().bearer_token == "token-from-one"); // user "shared" from the first file
    CHECK(c.credentials->describe() == "token file " + dir.file("one/token") + " from kubeconfig " +
                                           dir.file("one/config") + ", user \"shared\"");

    o.context = "one";
    auto one = kube::load_kubeconfig(o);
    CHECK(one.host == "one.example");  // cluster "shared" from the first file
    CHECK(one.ca_pem == ca_pem);       // relative to one/, not to the file that uses it
    o.context = "three";
    auto three = kube::load_kubeconfig(o);
    CHECK(three.host == "only-two.example");
    CHECK(three.credentials->current().empty());

    SECTION("explicit path wins over KUBECONFIG") {
        o.context.clear();
        o.path = dir.file("three/config");
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(contains(msg, "cluster \"only-two\"")); // three alone does not define it
    }
    SECTION("a KUBECONFIG of only missing files") {
        auto none = isolated({{"KUBECONFIG", dir.file("a") + ":" + dir.file("b")}});
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(none); }, ec);
        CHECK(contains(msg, dir.file("a")));
        CHECK(contains(msg, "KUBECONFIG"));
    }
    SECTION("a broken file in the list is an error naming it") {
        dir.write("two/config", "clusters: [\n");
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(contains(msg, dir.file("two/config")));
    }
}

TEST_CASE("kubeconfig: list splitting", "[kube][config]") {
    using kube::detail::split_kubeconfig_list;
    CHECK(split_kubeconfig_list("a:b::a:c:") == std::vector<std::string>{"a", "b", "c"});
    CHECK(split_kubeconfig_list(":::").empty());
    CHECK(split_kubeconfig_list("").empty());
}

TEST_CASE("kubeconfig: ~/.kube/config by default", "[kube][config]") {
    TempDir dir;
    dir.write("home/.kube/config", kubeconfig("    server: https://home.example\n", "    token: t\n"));
    auto o = isolated({{"HOME", dir.file("home")}});
    CHECK(kube::load_kubeconfig(o).host == "home.example");
    auto empty_list = isolated({{"HOME", dir.file("home")}, {"KUBECONFIG", ""}});
    CHECK(kube::load_kubeconfig(empty_list).host == "home.example");
    std::error_code ec;
    auto msg = error_of([&] { kube::load_kubeconfig(isolated({{"HOME", dir.file("nohome")}})); }, ec);
    CHECK(contains(msg, dir.file("nohome/.kube/config")));
    msg = error_of([&] { kube::load_kubeconfig(isolated()); }, ec);
    CHECK(contains(msg, "HOME"));
}

namespace {

struct InCluster {
    TempDir dir;
    kube::ConfigEnvironment env;
    std::shared_ptr<kube::Timestamp> now = std::make_shared<kube::Timestamp>(kube::Clock::now());
    explicit InCluster(std::map<std::string, std::string> vars = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                                                  {"KUBERNETES_SERVICE_PORT", "443"}}) {
        dir.write("sa/token", "sa-token-1\n");
        dir.write("sa/ca.crt", ca_pem);
        env = kube::ConfigEnvironment::from_map(vars);
        env.service_account_dir = dir.file("sa");
        auto n = now;
        env.credentials.now = [n] { return *n; };
    }
};

} // namespace

TEST_CASE("in-cluster configuration", "[kube][config][in-cluster]") {
    SECTION("IPv4, token, CA, namespace file") {
        InCluster ic;
        ic.dir.write("sa/namespace", "workflows\n");
        auto c = kube::load_in_cluster(ic.env);
        CHECK(c.server == "https://10.96.0.1:443");
        CHECK(c.host == "10.96.0.1");
        CHECK(c.port == "443");
        CHECK(c.base_path.empty());
        CHECK(c.ca_pem == ca_pem);
        CHECK(c.namespace_ == "workflows");
        CHECK(c.source == "in-cluster");
        CHECK_FALSE(c.insecure_skip_tls_verify);
        CHECK(c.credentials->current().bearer_token == "sa-token-1");
        CHECK(c.credentials->describe() == "token file " + ic.dir.file("sa/token") + " from in-cluster service account");

        // Rotation: the kubelet replaces the token; it is picked up within a minute, or at once after a 401.
        ic.dir.write("sa/token", "sa-token-2\n");
        CHECK(c.credentials->current().bearer_token == "sa-token-1");
        *ic.now += 60s;
        auto second = c.credentials->current();
        CHECK(second.bearer_token == "sa-token-2");
        ic.dir.write("sa/token", "sa-token-3\n");
        c.credentials->invalidate(second.generation);
        CHECK(c.credentials->current().bearer_token == "sa-token-3");
    }
    SECTION("IPv6 host gets brackets") {
        InCluster ic({{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}});
        auto c = kube::load_in_cluster(ic.env);
        CHECK(c.server == "https://[fd00:10:96::1]:6443");
        CHECK(c.host == "fd00:10:96::1");
        CHECK(c.port == "6443");
        CHECK(c.namespace_ == "default"); // no POD_NAMESPACE, no namespace file
    }
    SECTION("POD_NAMESPACE wins over the namespace file") {
        InCluster ic({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}, {"POD_NAMESPACE", "from-env"}});
        ic.dir.write("sa/namespace", "from-file");
        CHECK(kube::load_in_cluster(ic.env).namespace_ == "from-env");
    }
    SECTION("not in a pod") {
        InCluster ic(std::map<std::string, std::string>{{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}});
        std::error_code ec;
        auto msg = error_of([&] { kube::load_in_cluster(ic.env); }, ec);
        CHECK(ec == kube::error::config_invalid);
        CHECK(contains(msg, "KUBERNETES_SERVICE_PORT"));
    }
    SECTION("bad port") {
        InCluster ic({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "https"}});
        std::error_code ec;
        error_of([&] { kube::load_in_cluster(ic.env); }, ec);
        CHECK(ec == kube::error::config_invalid);
    }
    SECTION("token missing") {
        InCluster ic;
        fs::remove(ic.dir.file("sa/token"));
        std::error_code ec;
        auto msg = error_of([&] { kube::load_in_cluster(ic.env); }, ec);
        CHECK(ec == kube::error::credentials_unavailable);
        CHECK(contains(msg, ic.dir.file("sa/token")));
    }
    SECTION("CA missing or garbage") {
        InCluster ic;
        fs::remove(ic.dir.file("sa/ca.crt"));
        std::error_code ec;
        auto msg = error_of([&] { kube::load_in_cluster(ic.env); }, ec);
        CHECK(ec == kube::error::config_invalid);
        CHECK(contains(msg, ic.dir.file("sa/ca.crt")));
        ic.dir.write("sa/ca.crt", "garbage");
        msg = error_of([&] { kube::load_in_cluster(ic.env); }, ec);
        CHECK(contains(msg, "not a PEM certificate"));
    }
}

TEST_CASE("load_default: explicit path > KUBECONFIG > ~/.kube/config > in-cluster", "[kube][config]") {
    InCluster ic({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
    auto explicit_file = ic.dir.write("explicit", kubeconfig("    server: https://explicit.example\n", ""));
    auto list_file = ic.dir.write("list", kubeconfig("    server: https://list.example\n", ""));
    ic.dir.write("home/.kube/config", kubeconfig("    server: https://home.example\n", ""));
    auto options = [&](std::map<std::string, std::string> vars) {
        vars["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
        vars["KUBERNETES_SERVICE_PORT"] = "443";
        kube::KubeconfigOptions o;
        o.environment = kube::ConfigEnvironment::from_map(vars);
        o.environment.service_account_dir = ic.dir.file("sa");
        return o;
    };
    auto o = options({{"KUBECONFIG", list_file}, {"HOME", ic.dir.file("home")}});
    o.path = explicit_file;
    CHECK(kube::load_default(o).host == "explicit.example");
    o.path.clear();
    CHECK(kube::load_default(o).host == "list.example");
    o = options({{"HOME", ic.dir.file("home")}});
    CHECK(kube::load_default(o).host == "home.example");
    o = options({{"HOME", ic.dir.file("nohome")}});
    CHECK(kube::load_default(o).source == "in-cluster");
    o = options({{"KUBECONFIG", ic.dir.file("missing")}});
    CHECK(kube::load_default(o).source == "in-cluster");

    kube::KubeconfigOptions nothing = isolated({{"HOME", ic.dir.file("nohome")}});
    std::error_code ec;
    auto msg = error_of([&] { kube::load_default(nothing); }, ec);
    CHECK(ec == kube::error::config_invalid);
    CHECK(contains(msg, "KUBECONFIG (unset)"));
    CHECK(contains(msg, ic.dir.file("nohome/.kube/config")));
    CHECK(contains(msg, "in-cluster"));
}

TEST_CASE("no secret appears in any configuration error", "[kube][config][secrets]") {
    TempDir dir;
    const std::string token = "SECRET-TOKEN-7f3a9c";
    const std::string key_marker = "SECRET-KEY-MATERIAL";
    dir.write("token", token);
    dir.write("garbage.key", "-----BEGIN PRIVATE KEY-----\n" + key_marker + "\n-----END PRIVATE KEY-----\n");
    dir.write("client.crt", cert_pem);
    auto secret_plugin = dir.script("secret-plugin", "printf '" + token + " is not json'\nexit 0");
    auto secret_fail = dir.script("secret-fail", "printf '{\"status\":{\"token\":\"" + token + "\"}}'\nexit 1");
    auto secret_api = dir.script("secret-api", "printf '{\"apiVersion\":\"v0\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + token + "\"}}'");
    const std::string user_token = "    token: " + token + "\n";
    std::vector<std::string> configs = {
        kubeconfig("    server: http://insecure\n", user_token),
        kubeconfig(plain_cluster + "    proxy-url: http://" + token + "@proxy\n", user_token),
        kubeconfig(plain_cluster + "    certificate-authority-data: " + b64(token) + "\n", user_token),
        kubeconfig(plain_cluster + "    certificate-authority-data: '" + token + "!'\n", user_token),
        kubeconfig(plain_cluster, user_token + "    client-certificate-data: " + b64(cert_pem) + "\n"),
        kubeconfig(plain_cluster, "    client-certificate: client.crt\n    client-key: garbage.key\n"),
        kubeconfig(plain_cluster, "    client-certificate-data: " + b64(cert_pem) + "\n    client-key-data: " + b64(key_marker) + "\n"),
        kubeconfig(plain_cluster, "    client-certificate-data: " + b64(cert_pem) + "\n    client-key-data: '" + key_marker + "'\n"),
        kubeconfig(plain_cluster, user_token + "    username: u\n    password: " + token + "\n"),
        kubeconfig(plain_cluster, "    auth-provider:\n      config:\n        id-token: " + token + "\n"),
        kubeconfig(plain_cluster, user_token + "    exec:\n      command: x\n"),
        kubeconfig("    server: https://admin:" + token + "@host:6443\n", user_token),
        kubeconfig(plain_cluster, user_token, "    namespace: [\n"),
        "current-context: x\nclusters: " + token + "\n",
        "current-context: x\nusers:\n- name: u\n  user:\n    token: " + token + "\n",
    };
    int errors = 0;
    for (auto& yaml : configs) {
        try {
            kube::load_kubeconfig_from_string(yaml, dir.file("config"), isolated());
        } catch (const kube::Error& e) {
            ++errors;
            INFO(e.what());
            CHECK_FALSE(contains(e.what(), token));
            CHECK_FALSE(contains(e.what(), key_marker));
            CHECK_FALSE(contains(e.what(), "BEGIN"));
        }
    }
    CHECK(errors == static_cast<int>(configs.size()));

    for (auto plugin : {secret_plugin, secret_fail, secret_api}) {
        auto c = kube::load_kubeconfig_from_string(
            kubeconfig(plain_cluster, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: " +
                                          plugin + "\n      interactiveMode: Never\n"),
            dir.file("config"), isolated());
        try {
            c.credentials->current();
            FAIL("expected an error from " + plugin);
        } catch (const kube::Error& e) {
            INFO(e.what());
            CHECK_FALSE(contains(e.what(), token));
        }
    }
}

TEST_CASE("kubeconfig: every truncation and byte flip is loaded or rejected cleanly", "[kube][config][grind]") {
    const std::string full = kubeconfig("    server: https://[fd00::1]:6443/p\n"
                                        "    certificate-authority-data: " + b64(ca_pem) + "\n"
                                        "    tls-server-name: api\n",
                                        "    token: t0k3n\n"
                                        "    client-certificate-data: " + b64(cert_pem) + "\n"
                                        "    client-key-data: " + b64(key_pem) + "\n",
                                        "    namespace: ns\n");
    REQUIRE(kube::load_kubeconfig_from_string(full, "/k/config", isolated()).host == "fd00::1");
    auto o = isolated();
    int loaded = 0, rejected = 0;
    auto attempt = [&](const std::string& yaml) {
        try {
            auto c = kube::load_kubeconfig_from_string(yaml, "/k/config", o);
            CHECK(c.credentials != nullptr);
            CHECK_FALSE(c.host.empty());
            ++loaded;
        } catch (const kube::Error& e) {
            CHECK((e.code() == kube::error::config_invalid || e.code() == kube::error::credentials_unavailable));
            CHECK_FALSE(contains(e.what(), "t0k3n"));
            ++rejected;
        }
    };
    for (std::size_t n = 0; n < full.size(); ++n) attempt(full.substr(0, n));
    for (std::size_t i = 0; i < full.size(); i += 7) {
        for (char c : {':', '[', '\n', '"'}) {
            std::string mutated = full;
            mutated[i] = c;
            attempt(mutated);
        }
    }
    CHECK(loaded > 0);
    CHECK(rejected > 0);
}

TEST_CASE("kubeconfig: a token that would inject a header, or is too large, is refused naming its source",
          "[kube][config][hardening]") {
    TempDir dir;
    SECTION("token with CR/LF") {
        auto msg = config_error(kubeconfig(plain_cluster, "    token: \"abc\\r\\nX-Injected: y\"\n"));
        CHECK(contains(msg, "bearer token"));
        CHECK(contains(msg, "user \"u\""));
        CHECK(contains(msg, "control character (0x0d at byte 3)"));
        CHECK_FALSE(contains(msg, "abc")); // never the secret itself
    }
    SECTION("token with another control character") {
        auto msg = config_error(kubeconfig(plain_cluster, "    token: \"abc\\tdef\"\n"));
        CHECK(contains(msg, "control character (0x09"));
    }
    SECTION("tokenFile holding CR/LF inside the token") {
        dir.write("token", "abc\r\nX-Injected: y\n");
        auto o = isolated();
        o.path = dir.write("config", kubeconfig(plain_cluster, "    tokenFile: token\n"));
        std::error_code ec;
        auto msg = error_of([&] { kube::load_kubeconfig(o); }, ec);
        CHECK(ec == kube::error::config_invalid);
        CHECK(contains(msg, dir.file("token")));
        CHECK(contains(msg, "control character"));
    }
    SECTION("a trailing newline in a token file is not part of the token") {
        dir.write("token", "abc\n");
        auto o = isolated();
        o.path = dir.write("config", kubeconfig(plain_cluster, "    tokenFile: token\n"));
        CHECK(kube::load_kubeconfig(o).credentials->current().bearer_token == "abc");
    }
    SECTION("a 1 MiB token says which field is too large, and is an input error") {
        auto msg = config_error(kubeconfig(plain_cluster, "    token: " + std::string(1 << 20, 'a') + "\n"));
        CHECK(contains(msg, "bearer token"));
        CHECK(contains(msg, "user \"u\""));
        CHECK(contains(msg, "too large (1048576 bytes"));
    }
    SECTION("an exec plugin returning a token with CR/LF") {
        dir.script("plugin", "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
                             "\"status\":{\"token\":\"abc\\\\r\\\\nX-Injected: y\"}}'");
        auto o = isolated();
        o.path = dir.write("config", kubeconfig(plain_cluster, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                                               "      command: ./plugin\n      interactiveMode: Never\n"));
        auto c = kube::load_kubeconfig(o);
        std::error_code ec;
        auto msg = error_of([&] { c.credentials->current(); }, ec);
        CHECK(ec == kube::error::credentials_unavailable);
        INFO(msg);
        CHECK(contains(msg, "exec plugin \"" + dir.file("./plugin") + "\""));
        CHECK(contains(msg, "control character"));
        CHECK_FALSE(contains(msg, "X-Injected"));
    }
}

TEST_CASE("kubeconfig: YAML that expands without bound is refused before it grows", "[kube][config][hardening]") {
    // A "billion laughs": nine levels of nine aliases each expand to 9^9 (387 million) strings, here inside the
    // exec extension that provideClusterInfo hands to the plugin (where the expansion used to happen).
    std::string bomb = "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension:\n"
                       "        a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    for (int i = 1; i <= 9; ++i) {
        std::string prev = "*a" + std::to_string(i - 1);
        bomb += "        a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
        for (int k = 0; k < 8; ++k) bomb += "," + prev;
        bomb += "]\n";
    }
    auto yaml = kubeconfig(plain_cluster + bomb,
                           "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: plugin\n"
                           "      provideClusterInfo: true\n      interactiveMode: Never\n");
    auto msg = config_error(yaml);
    CHECK(contains(msg, "/cfg/config"));
    CHECK(contains(msg, "expand to more than"));

    SECTION("deep nesting is refused too") {
        std::string deep = "    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: " +
                           std::string(500, '[') + std::string(500, ']') + "\n";
        auto m = config_error(kubeconfig(plain_cluster + deep, "    token: t\n"));
        CHECK(contains(m, "/cfg/config"));
    }
    SECTION("anchors and aliases of ordinary size still work") {
        auto ok = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: &c\n    server: https://10.0.0.1:6443\n"
                  "- name: c2\n  cluster: *c\nusers:\n- name: u\n  user:\n    token: t\n"
                  "contexts:\n- name: ctx\n  context:\n    cluster: c2\n    user: u\ncurrent-context: ctx\n";
        auto c = kube::load_kubeconfig_from_string(ok, "/cfg/config", isolated());
        CHECK(c.server == "https://10.0.0.1:6443");
    }
}

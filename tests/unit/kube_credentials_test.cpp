#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/detail/credentials_util.hpp> // detail:: helpers under test (RFC 3339, base64)
#include <execution_sentinel/kube/detail/exec_plugin.hpp>      // detail::parse_exec_credential

#include "catch.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
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
        std::string tmpl = (fs::temp_directory_path() / "es-cred-XXXXXX").string();
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
        std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
        out << content;
        return file(name);
    }
    /// A `#!/bin/sh` fake exec plugin.
    std::string script(const std::string& name, const std::string& body) const {
        auto p = write(name, "#!/bin/sh\n" + body + "\n");
        ::chmod(p.c_str(), 0755);
        return p;
    }
};

/// A clock the test moves by hand.
struct ManualClock {
    std::shared_ptr<kube::Timestamp> now = std::make_shared<kube::Timestamp>(*execution_sentinel::kube::detail::parse_rfc3339("2029-12-31T23:00:00Z"));
    std::function<kube::Timestamp()> fn() const {
        auto p = now;
        return [p] { return *p; };
    }
    void advance(std::chrono::seconds d) { *now += d; }
};

kube::CredentialProviderOptions options_with(const ManualClock& clock) {
    kube::CredentialProviderOptions o;
    o.now = clock.fn();
    o.host_environment = std::vector<std::string>{"PATH=/usr/bin:/bin", "HOST_VAR=from-host"};
    o.exec_timeout = 5s;
    return o;
}

kube::ExecPluginConfig plugin(const std::string& command, std::string api = "client.authentication.k8s.io/v1") {
    kube::ExecPluginConfig e;
    e.command = command;
    e.api_version = std::move(api);
    e.interactive_mode = kube::ExecPluginConfig::InteractiveMode::never;
    return e;
}

std::shared_ptr<kube::CredentialProvider> exec_provider(kube::ExecPluginConfig e, kube::CredentialProviderOptions o) {
    kube::CredentialSource s;
    s.exec = std::move(e);
    s.origin = "kubeconfig /test/config, user \"u\"";
    return kube::CredentialProvider::create(std::move(s), std::move(o));
}

/// A plugin that counts its runs in DIR/runs and prints token tok-<run> expiring at `expiry`.
std::string counting_plugin(const TempDir& dir, const std::string& expiry,
                            const std::string& api = "client.authentication.k8s.io/v1") {
    return dir.script("plugin.sh",
                      "n=$(cat '" + dir.file("runs") + "' 2>/dev/null || echo 0)\n"
                      "n=$((n+1))\n"
                      "echo $n > '" + dir.file("runs") + "'\n"
                      "printf '{\"apiVersion\":\"" + api + "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\",\"expirationTimestamp\":\"" +
                          expiry + "\"}}' \"$n\"");
}

int runs(const TempDir& dir) {
    auto s = slurp(dir.file("runs"));
    return s.empty() ? 0 : std::atoi(s.c_str());
}

std::string error_text(const std::function<void()>& f, std::error_code& ec) {
    try {
        f();
    } catch (const kube::Error& e) {
        ec = e.code();
        return e.what();
    }
    FAIL("expected kube::Error");
    return {};
}

} // namespace

TEST_CASE("static token and client certificate", "[kube][credentials]") {
    SECTION("token") {
        auto p = kube::CredentialProvider::from_token("static-secret-token");
        auto c = p->current();
        CHECK(c.bearer_token == "static-secret-token");
        CHECK(c.generation == 1);
        CHECK_FALSE(c.expiry);
        p->invalidate(c.generation);
        CHECK(p->current().generation == 1);
        CHECK(p->describe().find("static-secret-token") == std::string::npos);
        CHECK(p->has_credentials());
    }
    SECTION("no credentials") {
        auto p = kube::CredentialProvider::none();
        CHECK(p->current().empty());
        CHECK(p->current().generation == 0);
        CHECK_FALSE(p->has_credentials());
        CHECK(p->describe() == "no credentials");
    }
    SECTION("client certificate pair") {
        kube::CredentialSource s;
        s.client_certificate_pem = slurp(data_dir + "/client.crt");
        s.client_key_pem = slurp(data_dir + "/client.key");
        auto p = kube::CredentialProvider::create(s);
        auto c = p->current();
        CHECK(c.client_certificate_pem == s.client_certificate_pem);
        CHECK(c.client_key_pem == s.client_key_pem);
        CHECK(c.bearer_token.empty());
        CHECK(c.generation == 1);
    }
    SECTION("certificate without key, and a key that does not match") {
        kube::CredentialSource s;
        s.client_certificate_pem = slurp(data_dir + "/client.crt");
        std::error_code ec;
        auto msg = error_text([&] { kube::CredentialProvider p(s); }, ec);
        CHECK(ec == kube::error::config_invalid);
        s.client_key_pem = slurp(data_dir + "/other.key");
        msg = error_text([&] { kube::CredentialProvider p(s); }, ec);
        CHECK(ec == kube::error::config_invalid);
        CHECK(msg.find("does not belong") != std::string::npos);
        CHECK(msg.find("PRIVATE KEY") == std::string::npos);
    }
}

TEST_CASE("token file is re-read at most every interval and the last good value is kept", "[kube][credentials]") {
    TempDir dir;
    ManualClock clock;
    auto path = dir.write("token", "token-a\n");
    auto p = kube::CredentialProvider::from_token_file(path, options_with(clock));
    CHECK(p->describe() == "token file " + path);

    auto c1 = p->current();
    CHECK(c1.bearer_token == "token-a"); // trimmed
    CHECK(c1.generation == 1);

    dir.write("token", "token-b");
    clock.advance(30s);
    CHECK(p->current().bearer_token == "token-a"); // not yet due

    clock.advance(31s);
    auto c2 = p->current();
    CHECK(c2.bearer_token == "token-b");
    CHECK(c2.generation == 2);

    fs::remove(path); // a rotation in progress: keep the last good token
    clock.advance(61s);
    CHECK(p->current().bearer_token == "token-b");
    dir.write("token", "   \n"); // empty file: keep the last good token
    clock.advance(61s);
    CHECK(p->current().bearer_token == "token-b");
    CHECK(p->current().generation == 2);

    SECTION("invalidate re-reads immediately, once per generation") {
        dir.write("token", "token-c");
        p->invalidate(2);
        auto c3 = p->current();
        CHECK(c3.bearer_token == "token-c");
        CHECK(c3.generation == 3);

        dir.write("token", "token-d");
        p->invalidate(2); // stale generation: ignored
        CHECK(p->current().bearer_token == "token-c");
        p->invalidate(3);
        CHECK(p->current().bearer_token == "token-d");
        dir.write("token", "token-e");
        p->invalidate(4);
        CHECK(p->current().bearer_token == "token-e");
        dir.write("token", "token-f");
        p->invalidate(4); // generation 4 was already invalidated... and is no longer current
        p->invalidate(5);
        p->invalidate(5);
        CHECK(p->current().bearer_token == "token-f");
        dir.write("token", "token-g");
        p->invalidate(6);
        CHECK(p->current().generation == 7);
        dir.write("token", "token-h");
        CHECK(p->current().bearer_token == "token-g"); // no new invalidation, interval not over
    }
}

TEST_CASE("an unchanged token file after invalidate keeps the generation and is not re-read again", "[kube][credentials]") {
    TempDir dir;
    ManualClock clock;
    auto path = dir.write("token", "same");
    auto p = kube::CredentialProvider::from_token_file(path, options_with(clock));
    CHECK(p->current().generation == 1);
    p->invalidate(1);
    CHECK(p->current().generation == 1);
    dir.write("token", "changed");
    p->invalidate(1); // already invalidated once for this generation
    CHECK(p->current().bearer_token == "same");
    clock.advance(60s);
    CHECK(p->current().bearer_token == "changed");
}

TEST_CASE("token file wins over token; token is the fallback while the file was never readable", "[kube][credentials]") {
    TempDir dir;
    ManualClock clock;
    kube::CredentialSource s;
    s.token = "static-fallback";
    s.token_file = dir.file("token");
    SECTION("file readable") {
        dir.write("token", "from-file");
        auto p = kube::CredentialProvider::create(s, options_with(clock));
        CHECK(p->current().bearer_token == "from-file");
    }
    SECTION("file missing at start, appears later") {
        auto p = kube::CredentialProvider::create(s, options_with(clock));
        CHECK(p->current().bearer_token == "static-fallback");
        dir.write("token", "from-file");
        clock.advance(60s);
        CHECK(p->current().bearer_token == "from-file");
    }
    SECTION("file missing and no token") {
        s.token.clear();
        std::error_code ec;
        auto msg = error_text([&] { kube::CredentialProvider p(s, options_with(clock)); }, ec);
        CHECK(ec == kube::error::credentials_unavailable);
        CHECK(msg.find(s.token_file) != std::string::npos);
    }
}

TEST_CASE("exec plugin credential is cached until shortly before expiry", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock; // 2029-12-31T23:00:00Z
    auto p = exec_provider(plugin(counting_plugin(dir, "2030-01-01T00:00:00Z")), options_with(clock));
    CHECK(runs(dir) == 0); // not run before it is needed

    auto c1 = p->current();
    CHECK(c1.bearer_token == "tok-1");
    CHECK(c1.generation == 1);
    REQUIRE(c1.expiry);
    CHECK(*c1.expiry == *kube::detail::parse_rfc3339("2030-01-01T00:00:00Z"));
    CHECK(p->current().bearer_token == "tok-1");
    clock.advance(59min);
    clock.advance(49s); // 11 s before expiry: still cached
    CHECK(p->current().bearer_token == "tok-1");
    CHECK(runs(dir) == 1);
    clock.advance(2s); // 9 s before expiry: refreshed
    auto c2 = p->current();
    CHECK(c2.bearer_token == "tok-2");
    CHECK(c2.generation == 2);
    CHECK(runs(dir) == 2);
}

TEST_CASE("exec plugin is re-run once per generation after invalidate", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    SECTION("with an expiry") {
        auto p = exec_provider(plugin(counting_plugin(dir, "2030-01-01T00:00:00Z")), options_with(clock));
        auto c = p->current();
        p->invalidate(c.generation);
        p->invalidate(c.generation);
        auto d = p->current();
        CHECK(d.bearer_token == "tok-2");
        CHECK(d.generation == c.generation + 1);
        CHECK(p->current().bearer_token == "tok-2");
        p->invalidate(c.generation); // stale: the 401 was for the old token
        CHECK(p->current().bearer_token == "tok-2");
        CHECK(runs(dir) == 2);
    }
    SECTION("without an expiry, cached forever until invalidated") {
        auto cmd = dir.script("plugin.sh", "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"forever\"}}'");
        auto p = exec_provider(plugin(cmd, "client.authentication.k8s.io/v1beta1"), options_with(clock));
        auto c = p->current();
        CHECK(c.bearer_token == "forever");
        CHECK_FALSE(c.expiry);
        clock.advance(std::chrono::hours(24 * 365));
        CHECK(p->current().generation == c.generation);
    }
}

TEST_CASE("exec plugin gets args without a shell, env and KUBERNETES_EXEC_INFO", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    auto cmd = dir.script("plugin.sh",
                          "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '" + dir.file("args") + "'\n"
                          "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + dir.file("info") + "'\n"
                          "printf '%s|%s|%s' \"$PLUGIN_VAR\" \"$HOST_VAR\" \"$OVERRIDDEN\" > '" + dir.file("env") + "'\n"
                          "if [ -t 0 ]; then echo tty; else cat; fi > '" + dir.file("stdin") + "'\n"
                          "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'");
    auto e = plugin(cmd);
    e.args = {"--region", "eu west 1", "$HOME", "a;b"};
    e.env = {{"PLUGIN_VAR", "plugin value"}, {"OVERRIDDEN", "by-plugin"}};
    auto opts = options_with(clock);
    opts.host_environment->push_back("OVERRIDDEN=by-host");
    SECTION("without cluster info") {
        exec_provider(e, opts)->current();
        CHECK(slurp(dir.file("args")) == "--region\neu west 1\n$HOME\na;b\n");
        CHECK(slurp(dir.file("env")) == "plugin value|from-host|by-plugin");
        CHECK(slurp(dir.file("stdin")).empty());
        auto info = boost::json::parse(slurp(dir.file("info"))).as_object();
        CHECK(info.at("apiVersion").as_string() == "client.authentication.k8s.io/v1");
        CHECK(info.at("kind").as_string() == "ExecCredential");
        CHECK(info.at("spec").at("interactive").as_bool() == false);
        CHECK_FALSE(info.at("spec").as_object().contains("cluster"));
    }
    SECTION("with cluster info") {
        e.provide_cluster_info = true;
        e.cluster_info_json = R"({"server":"https://10.0.0.1:6443","tls-server-name":"api"})";
        exec_provider(e, opts)->current();
        auto info = boost::json::parse(slurp(dir.file("info"))).as_object();
        CHECK(info.at("spec").at("cluster").at("server").as_string() == "https://10.0.0.1:6443");
        CHECK(info.at("spec").at("cluster").at("tls-server-name").as_string() == "api");
    }
}

TEST_CASE("exec plugin returning a client certificate", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    auto json_string = [](const std::string& s) { return boost::json::serialize(boost::json::value(s)); };
    auto cert = slurp(data_dir + "/client.crt");
    auto key = slurp(data_dir + "/client.key");
    SECTION("both") {
        dir.write("out.json", "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":" +
                                  json_string(cert) + ",\"clientKeyData\":" + json_string(key) + "}}");
        auto p = exec_provider(plugin(dir.script("plugin.sh", "cat '" + dir.file("out.json") + "'")), options_with(clock));
        auto c = p->current();
        CHECK(c.client_certificate_pem == cert);
        CHECK(c.client_key_pem == key);
        CHECK(c.bearer_token.empty());
    }
    SECTION("certificate only") {
        dir.write("out.json", "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":" +
                                  json_string(cert) + "}}");
        auto p = exec_provider(plugin(dir.script("plugin.sh", "cat '" + dir.file("out.json") + "'")), options_with(clock));
        std::error_code ec;
        auto msg = error_text([&] { p->current(); }, ec);
        CHECK(ec == kube::error::credentials_unavailable);
        CHECK(msg.find("both or neither") != std::string::npos);
        CHECK(msg.find("BEGIN CERTIFICATE") == std::string::npos);
    }
}

TEST_CASE("exec plugin failures are clear errors without secrets", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    const std::string secret = "SECRET-abc123-never-print";
    std::string body;
    std::vector<std::string> expected;
    std::string install_hint;
    kube::ExecPluginConfig e = plugin("");
    auto opts = options_with(clock);

    auto verify = [&] {
        if (e.command.empty()) e.command = dir.script("plugin.sh", body);
        e.install_hint = install_hint;
        auto p = exec_provider(e, opts);
        std::error_code ec;
        auto msg = error_text([&] { p->current(); }, ec);
        INFO(msg);
        CHECK(ec == kube::error::credentials_unavailable);
        CHECK(kube::is_fatal(ec));
        CHECK(msg.find("exec plugin \"" + e.command + "\"") != std::string::npos);
        for (auto& part : expected) CHECK(msg.find(part) != std::string::npos);
        CHECK(msg.find(secret) == std::string::npos);
        CHECK(p->describe().find(secret) == std::string::npos);
    };
    SECTION("non-zero exit") {
        body = "printf '%s' '" + secret + "'\necho 'error: you must be logged in' >&2\necho 'run: cloud login' >&2\nexit 3";
        expected = {"exited with code 3", "you must be logged in", "run: cloud login", "user \"u\""};
        verify();
    }
    SECTION("garbage on stdout") {
        body = "echo 'token: " + secret + " is not json'";
        expected = {"not JSON"};
        verify();
    }
    SECTION("empty stdout") {
        body = "true";
        expected = {"printed nothing"};
        verify();
    }
    SECTION("wrong apiVersion") {
        body = "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + secret + "\"}}'";
        expected = {"client.authentication.k8s.io/v1beta1", "was asked for"};
        verify();
    }
    SECTION("wrong kind") {
        body = "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Secret\",\"status\":{\"token\":\"" + secret + "\"}}'";
        expected = {"kind"};
        verify();
    }
    SECTION("no token nor certificate") {
        body = "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{}}'";
        expected = {"neither status.token"};
        verify();
    }
    SECTION("bad expirationTimestamp") {
        body = "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + secret + "\",\"expirationTimestamp\":\"tomorrow\"}}'";
        expected = {"expirationTimestamp", "RFC 3339"};
        verify();
    }
    SECTION("expired credential") {
        body = "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + secret + "\",\"expirationTimestamp\":\"2029-12-31T22:00:00Z\"}}'";
        expected = {"expired at 2029-12-31T22:00:00Z"};
        verify();
    }
    SECTION("hangs past the timeout") {
        body = "printf '{\"apiVersion\":' \nsleep 30";
        opts.exec_timeout = 300ms;
        expected = {"did not finish within 300 ms"};
        verify();
    }
    SECTION("prints too much") {
        body = "i=0; while [ $i -lt 200 ]; do printf '%0100d' 0; i=$((i+1)); done";
        opts.exec_max_output = 1000;
        expected = {"more than 1000 bytes"};
        verify();
    }
    SECTION("command not found") {
        e.command = dir.file("no-such-plugin");
        install_hint = "Install the cloud CLI: https://example.com/install";
        expected = {"not found", "https://example.com/install"};
        verify();
    }
}

TEST_CASE("a timed-out plugin's process group is killed", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    // The child sleeps in the background holding the pipe; both must be gone after the timeout.
    auto cmd = dir.script("plugin.sh", "sleep 30 &\necho $! > '" + dir.file("pid") + "'\nwait");
    auto opts = options_with(clock);
    opts.exec_timeout = 300ms;
    auto p = exec_provider(plugin(cmd), opts);
    CHECK_THROWS_AS(p->current(), kube::Error);
    auto pid = std::atoi(slurp(dir.file("pid")).c_str());
    REQUIRE(pid > 0);
    // The background sleep was in the plugin's process group; after SIGKILL it is gone or a zombie awaiting init.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
        gone = stat.empty() || stat.find(") Z") != std::string::npos;
        if (!gone) std::this_thread::sleep_for(10ms);
    }
    CHECK(gone);
}

TEST_CASE("a plugin that exits but leaves a child holding stdout still succeeds", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    auto cmd = dir.script("plugin.sh",
                          "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n"
                          "sleep 30 &\nexit 0");
    auto p = exec_provider(plugin(cmd), options_with(clock));
    CHECK(p->current().bearer_token == "t");
}

TEST_CASE("a failing refresh keeps an unexpired credential, but not one the server rejected", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    auto cmd = dir.script("plugin.sh",
                          "if [ -e '" + dir.file("broken") + "' ]; then echo 'plugin broke' >&2; exit 1; fi\n"
                          "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"good\",\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}'");
    auto p = exec_provider(plugin(cmd), options_with(clock));
    auto c = p->current();
    CHECK(c.bearer_token == "good");
    dir.write("broken", "");
    clock.advance(59min + 55s); // inside the refresh window, not yet expired
    CHECK(p->current().bearer_token == "good");
    p->invalidate(c.generation);
    CHECK_THROWS_AS(p->current(), kube::Error);
    fs::remove(dir.file("broken"));
    CHECK(p->current().bearer_token == "good");
}

TEST_CASE("exec configuration is validated up front", "[kube][credentials][exec]") {
    std::error_code ec;
    auto e = plugin("/bin/true");
    e.interactive_mode = kube::ExecPluginConfig::InteractiveMode::always;
    auto msg = error_text([&] { exec_provider(e, {}); }, ec);
    CHECK(ec == kube::error::config_invalid);
    CHECK(msg.find("interactive") != std::string::npos);
    e = plugin("/bin/true", "client.authentication.k8s.io/v1alpha1");
    msg = error_text([&] { exec_provider(e, {}); }, ec);
    CHECK(ec == kube::error::config_invalid);
    CHECK(msg.find("v1alpha1") != std::string::npos);
}

TEST_CASE("concurrent callers share one plugin run", "[kube][credentials][exec]") {
    TempDir dir;
    ManualClock clock;
    auto p = exec_provider(plugin(counting_plugin(dir, "2030-01-01T00:00:00Z")), options_with(clock));
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            for (int k = 0; k < 20; ++k)
                if (p->current().bearer_token == "tok-1") ++ok;
        });
    for (auto& t : threads) t.join();
    CHECK(ok.load() == 80);
    CHECK(runs(dir) == 1);
}

TEST_CASE("RFC 3339 timestamps and base64", "[kube][credentials]") {
    using kube::detail::parse_rfc3339;
    auto z = parse_rfc3339("2026-11-23T06:00:00Z");
    REQUIRE(z);
    CHECK(kube::detail::format_rfc3339(*z) == "2026-11-23T06:00:00Z");
    CHECK(parse_rfc3339("2026-11-23T07:30:00+01:30") == z);
    CHECK(parse_rfc3339("2026-11-23T05:00:00-01:00") == z);
    auto frac = parse_rfc3339("2026-11-23T06:00:00.5Z");
    REQUIRE(frac);
    CHECK(*frac - *z == std::chrono::milliseconds(500));
    for (auto bad : {"", "2026-11-23", "2026-11-23T06:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                     "2026-11-23T06:00:00Zjunk", "2026-11-23T06:00:00.Z", "x026-11-23T06:00:00Z"}) {
        INFO(bad);
        CHECK_FALSE(parse_rfc3339(bad));
    }
    using kube::detail::base64_decode;
    CHECK(base64_decode("aGVsbG8=") == std::optional<std::string>("hello"));
    CHECK(base64_decode("aGVs\nbG8=") == std::optional<std::string>("hello"));
    CHECK(base64_decode("aGVsbG8") == std::optional<std::string>("hello"));
    CHECK(base64_decode("") == std::optional<std::string>(""));
    CHECK_FALSE(base64_decode("aGVsbG8=x"));
    CHECK_FALSE(base64_decode("aGV*bG8="));
    CHECK_FALSE(base64_decode("a"));
    for (std::string s : {"", "a", "ab", "abc", "abcd", "\x01\xff\x80 binary"})
        CHECK(base64_decode(kube::detail::base64_encode(s)) == std::optional<std::string>(s));
}

TEST_CASE("ExecCredential parsing survives every truncation", "[kube][credentials][grind]") {
    const std::string full = R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)"
                             R"("status":{"token":"s3cr3t","expirationTimestamp":"2030-01-01T00:00:00Z"}})";
    std::string why;
    auto ok = kube::detail::parse_exec_credential(full, "client.authentication.k8s.io/v1", why);
    REQUIRE(ok);
    CHECK(ok->token == "s3cr3t");
    for (std::size_t n = 0; n < full.size(); ++n) {
        why.clear();
        auto r = kube::detail::parse_exec_credential(full.substr(0, n), "client.authentication.k8s.io/v1", why);
        CHECK_FALSE(r);
        CHECK_FALSE(why.empty());
        CHECK(why.find("s3cr3t") == std::string::npos);
    }
}

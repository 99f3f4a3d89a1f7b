// Registering a run with `serve` (serve/registration.hpp): the tokens file, the decision on a request's bearer
// token, the checks of a registration request (content type, size, context), what a second registration does;
// and the server's TLS context from PEM files (serve/http_server.hpp), with errors naming the file.
#include <execution_sentinel/serve/http_server.hpp>
#include <execution_sentinel/serve/registration.hpp>
#include <execution_sentinel/testing/certificates.hpp>

#include <boost/json/parse.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace sv = execution_sentinel::serve;
namespace http = boost::beast::http;

namespace {

const std::string token_a = "a1b2c3d4e5f6g7h8i9j0";
const std::string token_b = "Zm9vYmFyYmF6cXV4cXV1eA==";

/// The error of parsing a tokens file, or "" when it parses.
std::string tokens_error(const std::string& text) {
    try {
        (void)sv::parse_tokens_file(text, "tokens");
    } catch (const sv::TokenFileError& e) {
        return e.what();
    }
    return {};
}

sv::HttpRequest post(std::string body, std::string content_type = "application/json") {
    sv::HttpRequest req{http::verb::post, "/api/v1/runs", 11};
    req.set(http::field::host, "127.0.0.1");
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
}

std::string error_message(const sv::HttpResponse& r) {
    return std::string(boost::json::parse(r.body).at("error").at("message").as_string());
}

std::string header_of(const sv::HttpResponse& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
        if (n == name) return v;
    return {};
}

const std::string context = R"({"namespace": "wf", "engine_pod_name": "engine-1",
    "task_inventory": [{"name": "t1", "task_type": "a"}]})";

} // namespace

TEST_CASE("tokens file: named and bare tokens, comments and blank lines", "[serve][registration]") {
    auto tokens = sv::parse_tokens_file("# who may register runs\n\nci: " + token_a + "\r\n  " + token_b + "  \n",
                                        "tokens");
    REQUIRE(tokens.size() == 2);
    CHECK(tokens[0].name == "ci");
    CHECK(tokens[0].secret == token_a);
    CHECK(tokens[1].name == "line-4");
    CHECK(tokens[1].secret == token_b);
    // A file without a final newline, one token.
    CHECK(sv::parse_tokens_file(token_a, "tokens").size() == 1);
}

TEST_CASE("tokens file: errors name the file and the line, never the token", "[serve][registration]") {
    CHECK(tokens_error("") == "tokens:?: holds no token (one a line: NAME:TOKEN or TOKEN)");
    CHECK(tokens_error("# only a comment\n\n") == "tokens:?: holds no token (one a line: NAME:TOKEN or TOKEN)");
    CHECK(tokens_error(token_a + "\nshort-secret\n") == "tokens:2: a token must be 16 to 4096 characters");
    CHECK(tokens_error("x: " + token_a + "\ny: " + token_a + "\n") == "tokens:2: the same token is given twice");
    CHECK(tokens_error("x: " + token_a + "\nx: " + token_b + "\n") == "tokens:2: the name x is given twice");
    CHECK(tokens_error("bad name: " + token_a) ==
          "tokens:1: the name before ':' must be 1 to 64 letters, digits, '-', '_' or '.'");
    const auto spaced = tokens_error("n: secret with spaces inside");
    CHECK(spaced == "tokens:1: a token may hold only letters, digits, '-', '.', '_', '~', '+', '/' and a trailing '='");
    CHECK(spaced.find("secret") == std::string::npos);
    CHECK(tokens_error("n: abcdefgh=ijklmnopq") != ""); // '=' only at the end
    CHECK(tokens_error(std::string(sv::max_tokens_file_bytes + 1, 'a')) == "tokens:?: larger than 64 KiB");
}

TEST_CASE("tokens file: loaded from a file, errors for a missing one", "[serve][registration]") {
    const auto path = std::filesystem::temp_directory_path() / ("es-tokens-" + std::to_string(::getpid()));
    std::ofstream(path) << "ci:" << token_a << "\n";
    auto tokens = sv::load_tokens_file(path.string());
    std::filesystem::remove(path);
    REQUIRE(tokens.size() == 1);
    CHECK(tokens[0].secret == token_a);
    try {
        (void)sv::load_tokens_file(path.string());
        FAIL("a missing file was read");
    } catch (const sv::TokenFileError& e) {
        CHECK(std::string(e.what()) == path.string() + ":?: cannot be read");
    }
}

TEST_CASE("bearer tokens: compared whole, in constant time", "[serve][registration]") {
    CHECK(sv::constant_time_equal(token_a, token_a));
    CHECK_FALSE(sv::constant_time_equal(token_a.substr(0, 10), token_a)); // a prefix
    CHECK_FALSE(sv::constant_time_equal(token_a + "x", token_a));          // longer
    CHECK_FALSE(sv::constant_time_equal("", token_a));
    std::string last = token_a;
    last.back() = 'X';
    CHECK_FALSE(sv::constant_time_equal(last, token_a));
}

TEST_CASE("bearer tokens: the decision on the Authorization header", "[serve][registration]") {
    const std::vector<sv::ApiToken> tokens{{"ci", token_a}, {"ops", token_b}};
    CHECK(sv::authorize({}, "Bearer " + token_a).decision == sv::AuthDecision::disabled);
    CHECK(sv::authorize(tokens, std::nullopt).decision == sv::AuthDecision::missing);
    CHECK(sv::authorize(tokens, "Basic dXNlcjpwYXNz").decision == sv::AuthDecision::missing);
    CHECK(sv::authorize(tokens, "Bearer").decision == sv::AuthDecision::missing);
    CHECK(sv::authorize(tokens, "Bearer " + token_a + "x").decision == sv::AuthDecision::invalid);
    CHECK(sv::authorize(tokens, "Bearer " + token_a + " " + token_b).decision == sv::AuthDecision::invalid);
    CHECK(sv::authorize(tokens, "Bearer ").decision == sv::AuthDecision::missing);
    auto ok = sv::authorize(tokens, "bearer   " + token_b);
    CHECK(ok.decision == sv::AuthDecision::allowed);
    CHECK(ok.token_name == "ops");
    CHECK(sv::authorize(tokens, "Bearer " + token_a).token_name == "ci");

    // The same, from a request.
    auto req = post(context);
    CHECK(sv::authorize(tokens, req).decision == sv::AuthDecision::missing);
    req.set(http::field::authorization, "Bearer " + token_a);
    CHECK(sv::authorize(tokens, req).decision == sv::AuthDecision::allowed);
}

TEST_CASE("bearer tokens: the refusals, without what was presented", "[serve][registration]") {
    auto disabled = sv::auth_refusal({sv::AuthDecision::disabled, {}});
    CHECK(disabled.status == 403);
    CHECK(error_message(disabled) == "run registration is disabled: no api.tokens_file is configured");
    CHECK(header_of(disabled, "WWW-Authenticate").empty());
    auto missing = sv::auth_refusal({sv::AuthDecision::missing, {}});
    CHECK(missing.status == 401);
    CHECK(header_of(missing, "WWW-Authenticate") == R"(Bearer realm="execution-sentinel")");
    auto invalid = sv::auth_refusal({sv::AuthDecision::invalid, {}});
    CHECK(invalid.status == 401);
    CHECK(header_of(invalid, "WWW-Authenticate") == R"(Bearer realm="execution-sentinel", error="invalid_token")");
    CHECK(invalid.body.find(token_a) == std::string::npos);
}

TEST_CASE("registration request: content type, size and the context's fields", "[serve][registration]") {
    const std::vector<std::string> all;
    auto ok = sv::check_registration(post(context), all, 4096);
    REQUIRE(ok.context);
    CHECK_FALSE(ok.refusal);
    CHECK(ok.context->namespace_ == "wf");
    CHECK(ok.context->engine_pod_name == "engine-1");
    CHECK(ok.context->task_inventory.size() == 1);
    CHECK(sv::check_registration(post(context, "Application/JSON; charset=utf-8"), all, 4096).context);

    auto refusal = [&](sv::HttpRequest req, const std::vector<std::string>& namespaces = {}, std::size_t max = 4096) {
        auto c = sv::check_registration(req, namespaces, max);
        REQUIRE(c.refusal);
        CHECK_FALSE(c.context);
        return *c.refusal;
    };
    CHECK(refusal(post(context, "text/plain")).status == 415);
    CHECK(refusal(post(context, "")).status == 415);
    CHECK(refusal(post(context, "application/jsonx")).status == 415);
    CHECK(refusal(post(context), {}, 16).status == 413);

    auto bad_json = refusal(post("{\"namespace\": "));
    CHECK(bad_json.status == 400);
    CHECK(boost::json::parse(bad_json.body).at("error").at("field") == "(root)");
    auto bad_field = refusal(post(R"({"namespace": "wf", "engine_pod_name": "e",
        "task_inventory": [{"name": "t1", "dag_order": "2"}]})"));
    CHECK(bad_field.status == 400);
    CHECK(error_message(bad_field) == "task_inventory[0].dag_order: expected an integer");
    CHECK(boost::json::parse(bad_field.body).at("error").at("field") == "task_inventory[0].dag_order");
    auto no_namespace = refusal(post(R"({"engine_pod_name": "e"})"));
    CHECK(boost::json::parse(no_namespace.body).at("error").at("field") == "namespace");
    auto selector_only = refusal(post(R"({"namespace": "wf", "engine_pod_selector": "app=engine"})"));
    CHECK(boost::json::parse(selector_only.body).at("error").at("field") == "engine_pod_name");
    auto elsewhere = refusal(post(context), {"wf-a", "wf-b"});
    CHECK(elsewhere.status == 400);
    CHECK(error_message(elsewhere) ==
          "namespace: not a namespace this server watches (see `namespaces` of its configuration)");
    CHECK(sv::check_registration(post(context), {"wf-a", "wf"}, 4096).context);
}

TEST_CASE("registration request: a run already known", "[serve][registration]") {
    auto c = es::context_from_json_text(context);
    auto other = c;
    other.task_label_selector = "app=other";
    CHECK(sv::registration_action(false, nullptr, c) == sv::RegistrationAction::start);
    CHECK(sv::registration_action(true, &c, c) == sv::RegistrationAction::existing);
    CHECK(sv::registration_action(true, &other, c) == sv::RegistrationAction::conflict);
    // Known, context not decided yet (discovery is choosing it): a conflict, never a second watch.
    CHECK(sv::registration_action(true, nullptr, c) == sv::RegistrationAction::conflict);
    CHECK(sv::run_url("wf", "engine-1") == "/api/v1/runs/wf/engine-1");
}

TEST_CASE("registration with ha: the context's ConfigMap both ways, and one edited by someone else",
          "[serve][registration][ha]") {
    auto c = es::context_from_json_text(context);
    auto cm = sv::registration_configmap(c);
    const auto& meta = cm.at("metadata").as_object();
    CHECK(meta.at("name").as_string() == sv::registration_configmap_name("wf/engine-1"));
    CHECK(std::string(meta.at("name").as_string()).size() <= 63);
    CHECK(meta.at("namespace") == "wf");
    CHECK(meta.at("labels").at("execution-sentinel/registered-run") == "true");
    CHECK(meta.at("annotations").at("execution-sentinel/run") == "wf/engine-1");
    CHECK(sv::registration_configmap_name("wf/engine-1") != sv::registration_configmap_name("wf/engine-2"));
    boost::json::value read_back = cm;
    CHECK(sv::context_from_registration_configmap(read_back, "wf", "engine-1") == c);

    auto refused = [&](const boost::json::value& v, const std::string& field) {
        try {
            (void)sv::context_from_registration_configmap(v, "wf", "engine-1");
        } catch (const es::ContextError& e) {
            CHECK(e.field() == field);
            return true;
        }
        return false;
    };
    CHECK(refused(boost::json::value(nullptr), "data.context.json"));
    CHECK(refused(boost::json::parse(R"({"data": {"context.json": 7}})"), "data.context.json"));
    CHECK(refused(boost::json::parse(R"({"data": {"context.json": "{not json"}})"), "data.context.json"));
    CHECK(refused(boost::json::parse(R"({"data": {"context.json": "{\"engine_pod_name\": \"engine-1\"}"}})"),
                  "data.context.json.namespace"));
    // Another run's context in this run's ConfigMap (renamed, or copied): refused.
    auto copied = cm;
    auto other = c;
    other.engine_pod_name = "engine-2";
    copied["data"].as_object()["context.json"] = boost::json::serialize(es::to_json(other));
    CHECK(refused(copied, "data.context.json"));
    // Longer than a ConfigMap may be.
    auto huge = cm;
    huge["data"].as_object()["context.json"] = std::string(sv::max_registration_context_bytes + 1, ' ');
    CHECK(refused(huge, "data.context.json"));
}

TEST_CASE("server TLS context: PEM files, errors naming the file", "[serve][tls]") {
    const auto dir = std::filesystem::temp_directory_path() / ("es-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream((dir / name).string()) << text;
        return (dir / name).string();
    };
    const auto bundle = es::testing::generate_certificates();
    const auto other = es::testing::generate_certificates();
    const auto cert = write("cert.pem", bundle.server_certificate_pem);
    const auto key = write("key.pem", bundle.server_key_pem);
    const auto other_key = write("other-key.pem", other.server_key_pem);
    const auto garbage = write("garbage.pem", "not a certificate\n");

    CHECK(sv::make_server_tls_context(cert, key) != nullptr);
    auto error_of = [](const std::string& c, const std::string& k) -> std::pair<std::string, std::string> {
        try {
            (void)sv::make_server_tls_context(c, k);
        } catch (const sv::TlsFileError& e) {
            return {e.field(), e.what()};
        }
        return {};
    };
    const auto missing = (dir / "missing.pem").string();
    CHECK(error_of(missing, key) == std::pair<std::string, std::string>{"cert_file", missing + ": cannot be read"});
    CHECK(error_of(cert, missing) == std::pair<std::string, std::string>{"key_file", missing + ": cannot be read"});
    CHECK(error_of(garbage, key) ==
          std::pair<std::string, std::string>{"cert_file", garbage + ": not a PEM certificate (chain)"});
    CHECK(error_of(cert, garbage) ==
          std::pair<std::string, std::string>{"key_file",
                                              garbage + ": not a PEM private key (an unencrypted key is expected)"});
    CHECK(error_of(cert, other_key) ==
          std::pair<std::string, std::string>{"key_file", other_key + ": is not the key of the certificate in " + cert});
    std::filesystem::remove_all(dir);
}

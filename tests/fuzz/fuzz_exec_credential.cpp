// The ExecCredential JSON an exec credential plugin prints on stdout: every failure is a reason in `why` that
// never repeats the token; every success holds a token or a complete client certificate pair, and its token is
// refused for an HTTP header exactly when it holds a control character or is too large. The same bytes as the
// plugin's stderr give a bounded excerpt without control characters.
#include <execution_sentinel/kube/detail/exec_plugin.hpp>

#include "fuzz_target.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>
#include <string>

namespace {
/// status.token of the input when it is a JSON object holding one, else "".
std::string token_in(std::string_view data) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(data, ec);
    if (ec || !doc.is_object()) return {};
    auto* status = doc.get_object().if_contains("status");
    if (!status || !status->is_object()) return {};
    auto* token = status->get_object().if_contains("token");
    if (!token || !token->is_string()) return {};
    return std::string(token->get_string());
}
} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace detail = execution_sentinel::kube::detail;
    try {
        const std::string token = token_in(data);
        for (auto api : {detail::exec_api_v1, detail::exec_api_v1beta1}) {
            std::string why;
            auto result = detail::parse_exec_credential(data, api, why);
            if (result) {
                expect(!result->token.empty() || !result->client_certificate_pem.empty(),
                       "an accepted ExecCredential holds a token or a client certificate");
                expect(result->client_certificate_pem.empty() == result->client_key_pem.empty(),
                       "an accepted ExecCredential holds both the certificate and the key, or neither");
                expect(result->token == token, "the accepted token is status.token");
                // What the provider checks next, before the token goes into an Authorization header.
                auto problem = detail::header_value_problem(result->token, "the token it returned",
                                                            detail::max_bearer_token_bytes);
                const bool sendable = result->token.size() <= detail::max_bearer_token_bytes &&
                                      std::none_of(result->token.begin(), result->token.end(), [](char c) {
                                          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                                      });
                expect(problem.has_value() != sendable, "a token is refused exactly when it has a control character or is too large");
                if (problem && token.size() >= 16)
                    expect(problem->find(token) == std::string::npos, "the refusal never quotes the token");
                continue;
            }
            expect(!why.empty(), "a refused ExecCredential comes with a reason");
            // The reason may quote apiVersion or expirationTimestamp, never the token (a secret). Tokens shorter
            // than 16 bytes could match our own words by chance.
            if (token.size() >= 16 && why.find(token) != std::string::npos) {
                boost::system::error_code ec;
                auto doc = boost::json::parse(data, ec);
                auto& o = doc.get_object();
                auto quoted = [&](const boost::json::object& in, std::string_view key) {
                    auto* v = in.if_contains(key);
                    return v && v->is_string() && std::string_view(v->get_string()).find(token) != std::string_view::npos;
                };
                expect(quoted(o, "apiVersion") || quoted(o.at("status").get_object(), "expirationTimestamp"),
                       "the reason for refusing an ExecCredential never quotes the token");
            }
        }
        // The same bytes as the plugin's stderr, quoted in errors: at most 5 lines, no control characters.
        auto excerpt = detail::stderr_excerpt(data);
        expect(std::none_of(excerpt.begin(), excerpt.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
               "the stderr excerpt holds no control characters");
        expect(excerpt.size() <= 5 * (200 + 3) + 4 * 3, "the stderr excerpt is at most 5 cut lines and 4 separators");
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

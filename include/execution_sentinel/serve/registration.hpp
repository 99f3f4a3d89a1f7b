// Runs registered by a client (POST /api/v1/runs, docs/api.md "Registering a run"): the bearer tokens that may
// register (the tokens file of `api.tokens_file`), the decision on a request's credentials, the checks of its
// content type and body (a MonitoringContext, the JSON `watch --context` reads), and what to do when the run is
// already known. Pure: no I/O but load_tokens_file(); the `serve` command drives them.
//
// Tokens are secrets: they are compared in constant time, and no error, log line or answer repeats one (a token
// file's errors name the file and the line only).
#ifndef EXECUTION_SENTINEL_SERVE_REGISTRATION_HPP
#define EXECUTION_SENTINEL_SERVE_REGISTRATION_HPP

#include <execution_sentinel/context.hpp>
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/serve/router.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

/// One token that may register runs: a name (shown in logs, never the secret) and the secret itself.
struct ApiToken {
    std::string name;
    std::string secret;
};

/// Bounds of a tokens file and of a token.
inline constexpr std::size_t max_tokens_file_bytes = 64 * 1024;
inline constexpr std::size_t max_tokens = 1000;
inline constexpr std::size_t min_token_length = 16;
inline constexpr std::size_t max_token_length = 4096;

/// A tokens file that cannot be used. what() is "FILE:LINE: problem" (LINE "?" for the whole file); a token is
/// never quoted.
class TokenFileError : public std::invalid_argument {
public:
    TokenFileError(const std::string& file, std::size_t line, const std::string& problem)
        : std::invalid_argument(file + ":" + (line ? std::to_string(line) : std::string("?")) + ": " + problem),
          line_(line) {}
    std::size_t line() const noexcept { return line_; }

private:
    std::size_t line_;
};

namespace registration_detail {

/// A character of a bearer token (RFC 6750 b64token: letters, digits, "-._~+/" and trailing "=").
inline bool is_token_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
           c == '/' || c == '=';
}

inline bool is_token(std::string_view t) noexcept {
    if (t.empty()) return false;
    std::size_t end = t.size();
    while (end > 0 && t[end - 1] == '=') --end; // '=' only as padding at the end
    if (end == 0) return false;
    for (std::size_t i = 0; i < end; ++i)
        if (t[i] == '=' || !is_token_char(t[i])) return false;
    return true;
}

inline bool is_token_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > 64) return false;
    for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

} // namespace registration_detail

/// Parses a tokens file (`file` names it in errors). One token a line, either `NAME:TOKEN` or a bare `TOKEN`
/// (named `line-N`); blank lines and lines starting with '#' are ignored, spaces around are trimmed. A token is
/// 16 to 4096 characters of RFC 6750's b64token (letters, digits, `-._~+/`, trailing `=`); a name is 1 to 64
/// letters, digits, `-`, `_` or `.`. Two lines with the same name or the same token are an error, and so is a
/// file without any token. Throws TokenFileError.
inline std::vector<ApiToken> parse_tokens_file(std::string_view text, const std::string& file) {
    using namespace registration_detail;
    if (text.size() > max_tokens_file_bytes)
        throw TokenFileError(file, 0, "larger than " + std::to_string(max_tokens_file_bytes / 1024) + " KiB");
    std::vector<ApiToken> tokens;
    std::set<std::string> names, secrets;
    std::size_t line_no = 0;
    while (!text.empty() || line_no == 0) {
        ++line_no;
        const auto nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.empty() || line.front() == '#') {
            if (text.empty()) break;
            continue;
        }
        ApiToken t;
        std::string_view secret = line;
        if (const auto colon = line.find(':'); colon != std::string_view::npos) {
            const auto name = trim(line.substr(0, colon));
            if (!is_token_name(name))
                throw TokenFileError(file, line_no, "the name before ':' must be 1 to 64 letters, digits, '-', '_' or '.'");
            t.name = std::string(name);
            secret = trim(line.substr(colon + 1));
        } else {
            t.name = "line-" + std::to_string(line_no);
        }
        if (secret.size() < min_token_length || secret.size() > max_token_length)
            throw TokenFileError(file, line_no, "a token must be " + std::to_string(min_token_length) + " to " +
                                                    std::to_string(max_token_length) + " characters");
        if (!is_token(secret))
            throw TokenFileError(file, line_no,
                                 "a token may hold only letters, digits, '-', '.', '_', '~', '+', '/' and a trailing '='");
        if (!names.insert(t.name).second) throw TokenFileError(file, line_no, "the name " + t.name + " is given twice");
        if (!secrets.insert(std::string(secret)).second)
            throw TokenFileError(file, line_no, "the same token is given twice");
        t.secret = std::string(secret);
        tokens.push_back(std::move(t));
        if (tokens.size() > max_tokens)
            throw TokenFileError(file, line_no, "more than " + std::to_string(max_tokens) + " tokens");
        if (text.empty()) break;
    }
    if (tokens.empty()) throw TokenFileError(file, 0, "holds no token (one a line: NAME:TOKEN or TOKEN)");
    return tokens;
}

/// The text of the tokens file at `path` (at most max_tokens_file_bytes). Throws TokenFileError ("PATH:?: cannot
/// be read") when it cannot be read.
inline std::string read_tokens_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw TokenFileError(path, 0, "is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TokenFileError(path, 0, "cannot be read");
    std::string text;
    char buf[16384];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_tokens_file_bytes)
            throw TokenFileError(path, 0, "larger than " + std::to_string(max_tokens_file_bytes / 1024) + " KiB");
    }
    return text;
}

/// Reads the file at `path` and parses it. Throws TokenFileError.
inline std::vector<ApiToken> load_tokens_file(const std::string& path) {
    return parse_tokens_file(read_tokens_file(path), path);
}

/// Whether `presented` equals `secret`, in a time that depends on the length of `secret` only (not on where
/// they differ, nor on `presented`'s length).
inline bool constant_time_equal(std::string_view presented, std::string_view secret) noexcept {
    volatile unsigned char diff = presented.size() == secret.size() ? 0 : 1;
    for (std::size_t i = 0; i < secret.size(); ++i) {
        const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
        diff = static_cast<unsigned char>(diff | (p ^ static_cast<unsigned char>(secret[i])));
    }
    return diff == 0;
}

// ------------------------------------------------------------------------------------------------ credentials

/// The decision on a request's credentials.
enum class AuthDecision : std::uint8_t {
    allowed,  ///< a configured token was presented
    disabled, ///< no tokens are configured: registration is refused (403)
    missing,  ///< no Authorization header, or not the Bearer scheme (401)
    invalid,  ///< a Bearer token that is not one of the configured tokens, or malformed (401)
};

struct AuthResult {
    AuthDecision decision = AuthDecision::missing;
    std::string token_name; ///< the name of the token presented, when allowed
};

/// Decides on the Authorization header's value (`header`, nullopt when absent): "Bearer TOKEN" (the scheme in
/// any case, one or more spaces), compared with every token in constant time (every token is compared, whichever
/// matches). Pure.
inline AuthResult authorize(const std::vector<ApiToken>& tokens, std::optional<std::string_view> header) {
    using namespace registration_detail;
    AuthResult r;
    if (tokens.empty()) {
        r.decision = AuthDecision::disabled;
        return r;
    }
    if (!header) return r;
    std::string_view h = trim(*header);
    const auto space = h.find_first_of(" \t");
    if (space == std::string_view::npos || !iequals(h.substr(0, space), "Bearer")) return r;
    const std::string_view presented = trim(h.substr(space + 1));
    r.decision = AuthDecision::invalid;
    if (presented.size() > max_token_length || !is_token(presented)) return r;
    bool found = false;
    for (const auto& t : tokens) {
        const bool same = constant_time_equal(presented, t.secret);
        if (same && !found) r.token_name = t.name;
        found = found || same;
    }
    if (found) r.decision = AuthDecision::allowed;
    return r;
}

/// The same, for a request (its Authorization header).
inline AuthResult authorize(const std::vector<ApiToken>& tokens, const HttpRequest& req) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return authorize(tokens, std::nullopt);
    return authorize(tokens, std::string_view(it->value().data(), it->value().size()));
}

/// The answer refusing a request whose credentials are not `allowed`: 403 when registration is disabled, 401
/// with `WWW-Authenticate: Bearer realm="execution-sentinel"` (and `error="invalid_token"` for a wrong token)
/// otherwise. Never repeats what was presented. Pure.
inline HttpResponse auth_refusal(const AuthResult& r) {
    switch (r.decision) {
    case AuthDecision::disabled:
        return HttpResponse::error(403, "run registration is disabled: no api.tokens_file is configured");
    case AuthDecision::invalid: {
        auto res = HttpResponse::error(401, "the bearer token is not valid");
        res.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="execution-sentinel", error="invalid_token")");
        return res;
    }
    default: {
        auto res = HttpResponse::error(401, "a bearer token is required (Authorization: Bearer TOKEN)");
        res.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="execution-sentinel")");
        return res;
    }
    }
}

// ------------------------------------------------------------------------------------------------ the request

/// What a registration request asks, or why it is refused.
struct RegistrationCheck {
    std::optional<MonitoringContext> context; ///< valid: the run to watch
    std::optional<HttpResponse> refusal;      ///< not valid: the answer (400, 413, 415)
};

/// A 400 naming the field: {"error": {"code": 400, "message": "FIELD: problem", "field": "FIELD"}}.
inline HttpResponse field_error(const std::string& field, const std::string& problem) {
    boost::json::object inner;
    inner["code"] = 400;
    inner["message"] = detail::to_valid_utf8(field + ": " + problem);
    inner["field"] = detail::to_valid_utf8(field);
    boost::json::object o;
    o["error"] = std::move(inner);
    return HttpResponse::json(400, o);
}

/// Whether a Content-Type is JSON: `application/json`, in any case, with parameters (`; charset=utf-8`) or not.
inline bool is_json_content_type(std::string_view type) noexcept {
    using namespace registration_detail;
    const auto semicolon = type.find(';');
    return iequals(trim(type.substr(0, semicolon)), "application/json");
}

/// Checks the body of POST /api/v1/runs: a JSON Content-Type (else 415), at most `max_body` bytes (else 413;
/// the server refuses longer bodies before they are read), a valid MonitoringContext (else 400 naming the field,
/// with the context parser's message) that names its engine pod (`engine_pod_name`: the run's name) and is in a
/// namespace this server watches (`namespaces`; empty: every namespace). Pure.
inline RegistrationCheck check_registration(const HttpRequest& req, const std::vector<std::string>& namespaces,
                                            std::size_t max_body) {
    RegistrationCheck out;
    const auto type = req.find(http::field::content_type);
    if (type == req.end() || !is_json_content_type(std::string_view(type->value().data(), type->value().size()))) {
        out.refusal = HttpResponse::error(415, "expected a body of type application/json (a MonitoringContext)");
        return out;
    }
    if (req.body().size() > max_body) {
        out.refusal = HttpResponse::error(413, "the request body is too large");
        return out;
    }
    MonitoringContext c;
    try {
        c = context_from_json_text(req.body());
    } catch (const ContextError& e) {
        std::string message = e.what();
        const std::string prefix = e.field() + ": ";
        if (message.starts_with(prefix)) message = message.substr(prefix.size());
        out.refusal = field_error(e.field(), message);
        return out;
    }
    if (c.engine_pod_name.empty()) {
        out.refusal = field_error("engine_pod_name", "required to register a run (the run is named by its engine pod)");
        return out;
    }
    if (!execution_sentinel::detail::es_is_dns1123_subdomain(c.engine_pod_name)) {
        out.refusal = field_error("engine_pod_name", "not a valid pod name");
        return out;
    }
    if (!namespaces.empty() && std::find(namespaces.begin(), namespaces.end(), c.namespace_) == namespaces.end()) {
        out.refusal = field_error("namespace", "not a namespace this server watches (see `namespaces` of its configuration)");
        return out;
    }
    out.context = std::move(c);
    return out;
}

/// What a registration of a run serve may know already does.
enum class RegistrationAction : std::uint8_t {
    start,    ///< unknown: watch it (201)
    existing, ///< known with the same context: nothing more is started (200 with the run)
    conflict, ///< known with another context, or found by discovery (409)
};

/// `known`: whether serve knows a run of this namespace and engine pod (watching, waiting or finished and kept);
/// `known_context`: its context when that is decided. Pure.
inline RegistrationAction registration_action(bool known, const MonitoringContext* known_context,
                                              const MonitoringContext& requested) {
    if (!known) return RegistrationAction::start;
    if (known_context && *known_context == requested) return RegistrationAction::existing;
    return RegistrationAction::conflict;
}

// ------------------------------------------------------------------------------------------------ with ha

/// With ha, the context of a registered run is kept in a ConfigMap of the run's namespace, so that the replica
/// that takes the run over (its lease, annotated lease_registered_annotation) watches it with the same context:
/// named "execution-sentinel-registered-" and the hash of lease_name(), labelled lease_label and
/// registration_label, the context as JSON under the key "context.json".
inline constexpr std::string_view registration_label = "execution-sentinel/registered-run";
inline constexpr std::string_view registration_context_key = "context.json";
/// A ConfigMap holds at most 1 MiB; a context read back that is longer is refused.
inline constexpr std::size_t max_registration_context_bytes = 1024 * 1024;

inline std::string registration_configmap_name(std::string_view run_key) {
    return "execution-sentinel-registered-" + execution_sentinel::detail::es_fnv1a_hex(run_key);
}

/// The ConfigMap of a registered run (for a create).
inline boost::json::object registration_configmap(const MonitoringContext& c) {
    const std::string key = c.namespace_ + "/" + c.engine_pod_name;
    boost::json::object meta{{"name", registration_configmap_name(key)},
                             {"namespace", c.namespace_},
                             {"labels", {{lease_label, lease_label_value}, {registration_label, "true"}}},
                             {"annotations", {{lease_run_annotation, key}}}};
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", std::move(meta)},
            {"data", {{registration_context_key, boost::json::serialize(to_json(c))}}}};
}

/// The context of the registered run `ns`/`engine_pod` from its ConfigMap as read back (outside input: anyone
/// allowed to may have edited it). Throws ContextError naming the field ("data.context.json" and the context's
/// own field path) when it is not the context of that run.
inline MonitoringContext context_from_registration_configmap(const boost::json::value& v, std::string_view ns,
                                                             std::string_view engine_pod) {
    const auto* o = v.if_object();
    const auto* data = o ? o->if_contains("data") : nullptr;
    const auto* text = data && data->is_object() ? data->as_object().if_contains(registration_context_key) : nullptr;
    const std::string field = "data." + std::string(registration_context_key);
    if (!text || !text->is_string()) throw ContextError(field, "missing (not a registered run's ConfigMap)");
    if (text->as_string().size() > max_registration_context_bytes)
        throw ContextError(field, "longer than " + std::to_string(max_registration_context_bytes) + " bytes");
    MonitoringContext c;
    try {
        c = context_from_json_text(text->as_string());
    } catch (const ContextError& e) {
        throw ContextError(e.field() == "(root)" ? field : field + "." + e.field(),
                           std::string(e.what()).substr(e.field().size() + 2));
    }
    if (c.namespace_ != ns || c.engine_pod_name != engine_pod)
        throw ContextError(field, "the context is of another run (" + c.namespace_ + "/" + c.engine_pod_name + ")");
    return c;
}

/// The URL of a run in the API: /api/v1/runs/{namespace}/{run}.
inline std::string run_url(std::string_view ns, std::string_view name) {
    return "/api/v1/runs/" + std::string(ns) + "/" + std::string(name);
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_REGISTRATION_HPP

// The sentinel's HTTP server input: request bytes read with the server's limits (in pieces, as a socket delivers
// them) and routed as the server routes them; and outside text (a task type from the cluster) as a metric label
// value and HELP text in the Prometheus exposition; a run's registration (POST /api/v1/runs: the bearer token, the
// content type, the context) as serve decides it; the same bytes as a tokens file. Properties: every request gets a
// well-formed answer with a status the rules allow; a complete request gets the same answer whatever the pieces; an
// unreadable request is a 4xx; a registration is only accepted with the token, and its refusals never repeat what
// was presented; the exposition keeps one sample per line in valid UTF-8; a tokens file parses to valid, distinct
// tokens, each of which is accepted, or is refused with TokenFileError.
#include <execution_sentinel/serve/http_server.hpp>
#include <execution_sentinel/serve/metrics.hpp>
#include <execution_sentinel/serve/registration.hpp>
#include <execution_sentinel/serve/router.hpp>

#include "fuzz_target.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>

#include <memory>
#include <sstream>
#include <string>

namespace sv = execution_sentinel::serve;
namespace http = boost::beast::http;
using execution_sentinel::fuzz::expect;

namespace {

const std::string fuzz_token = "fuzz-token-0123456789";

const sv::Registry& registry() {
    static sv::Registry r;
    return r;
}

const sv::Router& router() {
    static const sv::Router r = [] {
        sv::Router x;
        sv::add_health_routes(x, registry(), [] { return std::vector<sv::ReadinessCheck>{{"store", false, "down"}}; });
        static auto hub = std::make_shared<sv::EventHub>();
        x.get("/api/v1/events", [](const sv::RouteRequest&) { return sv::HttpResponse::event_stream(hub); });
        x.get("/api/v1/runs/{namespace}/{run}", [](const sv::RouteRequest& q) {
            boost::json::object o;
            o["namespace"] = q.param("namespace");
            o["run"] = q.param("run");
            if (auto limit = q.query("limit")) o["limit"] = *limit;
            return sv::HttpResponse::json(200, o);
        });
        // serve's registration: credentials first, then the request's content type, size and context.
        x.post("/api/v1/runs", [](const sv::RouteRequest& q) {
            static const std::vector<sv::ApiToken> tokens{{"ci", fuzz_token}};
            const auto auth = sv::authorize(tokens, q.raw);
            if (auth.decision != sv::AuthDecision::allowed) return sv::auth_refusal(auth);
            auto check = sv::check_registration(q.raw, {"wf", "wf-b"}, 2048);
            expect(check.context.has_value() != check.refusal.has_value(), "a registration is accepted or refused");
            if (check.refusal) return *check.refusal;
            expect(!check.context->engine_pod_name.empty(), "a registered run names its engine pod");
            return sv::HttpResponse::json(201, execution_sentinel::to_json(*check.context));
        });
        return x;
    }();
    return r;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto n = sv::detail::utf8_sequence_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

void check_request(std::string_view data) {
    const sv::HttpLimits limits{.header_limit = 2048, .body_limit = 4096};
    const std::size_t piece = data.empty() ? 1 : 1 + static_cast<unsigned char>(data.front()) % 97;
    const auto split = sv::exchange(router(), data, limits, piece);
    const auto whole = sv::exchange(router(), data, limits, data.size() + 1);
    // A valid request is read the same whatever the pieces. Garbage may be refused at once when seen whole and
    // still look incomplete in pieces (the parser validates a line once it sees its end); the server then refuses
    // it when more bytes arrive, or answers 408 at its read timeout.
    expect(split.complete == whole.complete, "the pieces do not change whether a request is complete");
    // Which fault is seen first may differ (a header over the limit, or a bad character beyond the limit).
    if (split.result && !split.complete)
        expect(whole.result && !whole.complete, "a request refused in pieces is refused whole");
    if (!split.result) {
        expect(!split.complete, "a complete request is answered");
        return;
    }
    const auto& res = split.result->response;
    if (split.complete) {
        expect(res.status == whole.result->response.status, "the pieces do not change the status");
        expect(res.body == whole.result->response.body, "the pieces do not change the answer");
    }
    expect(res.status >= 200 && res.status <= 599, "a status is 2xx to 5xx");
    expect(res.status < 500 || res.status == 503, "nothing a client sends makes a 5xx other than /readyz's 503");
    if (split.result->handler == "invalid")
        expect(res.status == 400 || res.status == 413 || res.status == 431, "an unreadable request is 400, 413 or 431");
    if (split.result->handler == "unmatched") expect(res.status == 404 || res.status == 405, "no route: 404 or 405");
    if (res.event_hub) expect(split.result->handler == "/api/v1/events", "only the event route streams");
    expect(split.consumed <= data.size(), "a request uses at most the bytes given");
    if (res.event_hub) return;
    if (split.complete && split.result->handler == "/api/v1/runs") {
        expect(res.status == 201 || res.status == 400 || res.status == 401 || res.status == 413 || res.status == 415,
               "a registration is 201, 400, 401, 413 or 415");
        if (res.status == 201)
            expect(data.find(fuzz_token) != std::string_view::npos, "a run is registered only with the token");
        if (res.status == 401) {
            bool challenge = false;
            for (const auto& [name, value] : res.headers) challenge = challenge || name == "WWW-Authenticate";
            expect(challenge, "a 401 carries WWW-Authenticate");
        }
    }

    // The message written for the answer reads back as the same answer.
    const bool head = split.complete && data.starts_with("HEAD ");
    auto message = sv::to_message(res, 11, true, head);
    std::ostringstream os;
    os << message;
    const std::string wire = os.str();
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(1u << 20);
    if (head) p.skip(true);
    boost::beast::error_code ec;
    p.put(boost::asio::buffer(wire), ec);
    expect(!ec && p.is_done(), "the answer is a valid HTTP/1.1 message");
    expect(p.get().result_int() == res.status, "the answer keeps its status");
    if (!head) expect(p.get().body() == res.body, "the answer keeps its body");
    if (res.status >= 400 && !head && split.result->handler != "/readyz") {
        boost::system::error_code jec;
        auto v = boost::json::parse(res.body, jec);
        expect(!jec && v.is_object() && v.as_object().contains("error"), "an error body is JSON with \"error\"");
    }
}

void check_tokens_file(std::string_view data) {
    std::vector<sv::ApiToken> tokens;
    try {
        tokens = sv::parse_tokens_file(data, "tokens");
    } catch (const sv::TokenFileError&) {
        return;
    }
    expect(!tokens.empty(), "a tokens file that parses has a token");
    for (const auto& t : tokens) {
        expect(t.secret.size() >= sv::min_token_length && t.secret.size() <= sv::max_token_length,
               "a token's length is within the bounds");
        const auto auth = sv::authorize(tokens, "Bearer " + t.secret);
        expect(auth.decision == sv::AuthDecision::allowed && auth.token_name == t.name, "each token is accepted as itself");
    }
    const auto other = sv::authorize(tokens, "Bearer " + tokens.front().secret + "x");
    expect(other.decision == sv::AuthDecision::invalid || other.decision == sv::AuthDecision::allowed,
           "a longer token is refused unless it is itself configured");
}

void check_exposition(std::string_view data) {
    sv::Registry r;
    const std::string text(data.substr(0, std::min<std::size_t>(data.size(), 600)));
    auto& g = r.gauge("fuzz_value", text, {"v"});
    g.with({text}).set(1);
    const std::string out = r.expose();
    expect(valid_utf8(out), "the exposition is valid UTF-8");
    std::size_t lines = 0;
    for (char c : out) lines += c == '\n';
    // fuzz_value: HELP, TYPE, one sample; the dropped-series family: HELP, TYPE, one series per family.
    expect(lines == 3 + 2 + 1, "one line per HELP, TYPE and sample");
    expect(out.find("\nfuzz_value{v=\"") != std::string::npos, "the sample is written");
    expect(out.find("\"} 1\n") != std::string::npos, "the label value is closed and the value follows");
}

} // namespace

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    try {
        check_request(data);
        check_exposition(data);
        check_tokens_file(data);
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

// The HTTP server's decisions, without I/O: request limits and the status for a request that cannot be read, the
// request target (path segments, query parameters, percent-decoding), a small router (method + path pattern with
// `{name}` parameters → handler), and the response message. The server (http_server.hpp) and the fuzz target
// tests/fuzz/fuzz_http_request.cpp run the same code.
//
// Every request from outside may be hostile. The rules:
//   * a request that cannot be parsed, an HTTP version other than 1.0 and 1.1, or an HTTP/1.1 request without
//     Host: 400; headers over HttpLimits::header_limit: 431; a body over body_limit:
//     413; a request not complete within the read timeout: 408 — and the connection is closed;
//   * a target that is not an absolute path ("http://…", "*"), an invalid percent-encoding, a control character
//     after decoding, or more than 64 query parameters: 400;
//   * no route for the path: 404; a route for the path but not for the method: 405 with `Allow` (HEAD is served by
//     every GET route, without the body);
//   * a handler that throws HttpError: its status and message; any other exception: 500 without details.
// Error bodies are JSON: {"error": {"code": 404, "message": "no resource at /x"}} (the path cut to 200 bytes).
#ifndef EXECUTION_SENTINEL_SERVE_ROUTER_HPP
#define EXECUTION_SENTINEL_SERVE_ROUTER_HPP

#include <execution_sentinel/serve/event_stream.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::serve {

namespace http = boost::beast::http;

/// The requests the server reads.
using HttpRequest = http::request<http::string_body>;

/// Size limits of one request. Aggregate: use designated initializers.
struct HttpLimits {
    /// Bytes of the request line and headers at most; more is answered 431. Default 8 KiB.
    std::size_t header_limit = 8 * 1024;
    /// Bytes of the body at most (after chunked decoding); more is answered 413. Default 1 MiB.
    std::size_t body_limit = 1024 * 1024;
};

/// Query parameters of a request at most; more is answered 400.
inline constexpr std::size_t max_query_parameters = 64;

/// Sets the limits on a request parser (before any byte is put into it).
inline void configure_parser(http::request_parser<http::string_body>& parser, const HttpLimits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.header_limit, UINT32_MAX)));
    parser.body_limit(limits.body_limit);
}

/// The status to answer a request that could not be read with, or nullopt when nothing should be answered (the
/// peer closed the connection, or the operation was cancelled). Pure.
inline std::optional<unsigned> status_for_read_error(const boost::beast::error_code& ec) {
    if (!ec) return std::nullopt;
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
        ec == boost::asio::error::operation_aborted || ec == boost::asio::error::connection_reset ||
        ec == boost::asio::error::broken_pipe || ec == boost::asio::error::bad_descriptor)
        return std::nullopt;
    if (ec == http::error::partial_message) return std::nullopt; // the peer closed mid-request: nobody to answer
    if (ec == boost::beast::error::timeout) return 408;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) return 431;
    if (ec == http::error::body_limit) return 413;
    return 400; // a malformed request line, header or chunk
}

/// The reason phrase of a status (the ones this server sends; others get "Unknown").
inline std::string_view reason_phrase(unsigned status) {
    return http::obsolete_reason(static_cast<http::status>(status));
}

// ------------------------------------------------------------------------------------------------ responses

/// A handler's answer.
struct HttpResponse {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    /// Further headers (name, value); Content-Type, Content-Length and Connection are set by the server.
    std::vector<std::pair<std::string, std::string>> headers;
    /// When set, the answer is a server-sent event stream from this hub (status, content_type and body are not
    /// used); `event_topic` selects the events (empty: every event).
    std::shared_ptr<EventHub> event_hub;
    std::string event_topic;
    /// When set, the answer is what this coroutine returns (the other fields are not used): for a handler that must
    /// ask something else first (a registration stored in the cluster). It runs on the connection's executor; an
    /// HttpError it throws answers with that status, any other exception with 500. It must finish in bounded time
    /// (the request waits for it).
    std::function<boost::asio::awaitable<HttpResponse>()> deferred;

    /// `value` serialized, with this status.
    static HttpResponse json(unsigned status, const boost::json::value& value) {
        HttpResponse r;
        r.status = status;
        r.body = boost::json::serialize(value);
        return r;
    }
    static HttpResponse text(unsigned status, std::string body,
                             std::string content_type = "text/plain; charset=utf-8") {
        HttpResponse r;
        r.status = status;
        r.content_type = std::move(content_type);
        r.body = std::move(body);
        return r;
    }
    /// {"error": {"code": status, "message": message}}; bytes of `message` that are not valid UTF-8 (a path
    /// quoted from the request) become U+FFFD, so the body is always valid JSON.
    static HttpResponse error(unsigned status, std::string_view message) {
        boost::json::object inner;
        inner["code"] = status;
        inner["message"] = detail::to_valid_utf8(message);
        boost::json::object o;
        o["error"] = std::move(inner);
        return json(status, o);
    }
    /// An event stream of `hub`'s events of `topic` (empty: all).
    static HttpResponse event_stream(std::shared_ptr<EventHub> hub, std::string topic = {}) {
        HttpResponse r;
        r.content_type = "text/event-stream";
        r.event_hub = std::move(hub);
        r.event_topic = std::move(topic);
        return r;
    }
};

/// Thrown by a handler to answer with this status and message (e.g. 400 for a bad query parameter).
class HttpError : public std::runtime_error {
public:
    HttpError(unsigned status, const std::string& message) : std::runtime_error(message), status_(status) {}
    unsigned status() const noexcept { return status_; }

private:
    unsigned status_;
};

/// The answer for an exception a handler threw: an HttpError's status (4xx or 5xx, else 500) and message, 500
/// "internal error" for anything else (whose message may say more than a client should see).
inline HttpResponse error_response(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const HttpError& h) {
        const unsigned status = h.status() >= 400 && h.status() <= 599 ? h.status() : 500;
        return HttpResponse::error(status, h.what());
    } catch (...) {
        return HttpResponse::error(500, "internal error");
    }
}

/// The message written for `r`: its status, headers, body (none for HEAD, with the GET body's Content-Length),
/// `Connection: close` unless `keep_alive`, and `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`
/// (answers are live data). Pure.
inline http::response<http::string_body> to_message(const HttpResponse& r, unsigned version, bool keep_alive,
                                                    bool head) {
    http::response<http::string_body> m{static_cast<http::status>(r.status), version < 10 ? 11u : version};
    m.set(http::field::server, "execution-sentinel");
    m.set(http::field::content_type, r.content_type);
    m.set(http::field::cache_control, "no-store");
    m.set("X-Content-Type-Options", "nosniff");
    for (auto& [name, value] : r.headers) m.set(name, value);
    m.body() = r.body;
    m.prepare_payload();
    if (head) {
        m.body().clear(); // Content-Length stays that of the GET answer
    }
    m.keep_alive(keep_alive);
    return m;
}

// ------------------------------------------------------------------------------------------------ targets

/// A request target split and decoded.
struct RequestTarget {
    std::string path;                  ///< as sent (not decoded), without the query
    std::vector<std::string> segments; ///< the path's segments, percent-decoded ("/a/b" → {"a", "b"}; "/" → {})
    std::vector<std::pair<std::string, std::string>> query; ///< decoded, in order ('+' is a space)
};

namespace detail {

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// Percent-decodes `s` ('+' as a space when `plus_is_space`); nullopt for an invalid escape or a decoded control
/// character (below 0x20, or 0x7F).
inline std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) return std::nullopt;
        out += c;
    }
    return out;
}

} // namespace detail

/// Splits and decodes an origin-form target ("/path?query"); nullopt when it is not one (see the rules above).
inline std::optional<RequestTarget> parse_target(std::string_view target) {
    if (target.empty() || target.front() != '/') return std::nullopt;
    if (target.find('#') != std::string_view::npos) return std::nullopt;
    RequestTarget t;
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    t.path = std::string(path);
    std::string_view rest = path.substr(1);
    if (!rest.empty()) {
        for (;;) {
            const auto slash = rest.find('/');
            auto seg = detail::percent_decode(rest.substr(0, slash), false);
            if (!seg) return std::nullopt;
            t.segments.push_back(std::move(*seg));
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
        }
    }
    if (q != std::string_view::npos) {
        std::string_view query = target.substr(q + 1);
        while (!query.empty()) {
            const auto amp = query.find('&');
            const std::string_view pair = query.substr(0, amp);
            if (!pair.empty()) {
                if (t.query.size() >= max_query_parameters) return std::nullopt;
                const auto eq = pair.find('=');
                auto key = detail::percent_decode(pair.substr(0, eq), true);
                auto value = eq == std::string_view::npos ? std::optional<std::string>(std::string())
                                                          : detail::percent_decode(pair.substr(eq + 1), true);
                if (!key || !value) return std::nullopt;
                t.query.emplace_back(std::move(*key), std::move(*value));
            }
            if (amp == std::string_view::npos) break;
            query.remove_prefix(amp + 1);
        }
    }
    return t;
}

// ------------------------------------------------------------------------------------------------ router

/// What a handler receives.
struct RouteRequest {
    const HttpRequest& raw;
    const RequestTarget& target;
    std::map<std::string, std::string, std::less<>> params; ///< the pattern's `{name}` segments, decoded

    /// The path parameter `name` ("" when the pattern has none of that name).
    std::string_view param(std::string_view name) const {
        auto it = params.find(name);
        return it == params.end() ? std::string_view{} : std::string_view(it->second);
    }
    /// The first query parameter `name`, or nullopt.
    std::optional<std::string_view> query(std::string_view name) const {
        for (auto& [k, v] : target.query)
            if (k == name) return std::string_view(v);
        return std::nullopt;
    }
    /// The body as JSON; throws HttpError 415 when the Content-Type is not application/json, 400 when the body is
    /// not valid JSON.
    boost::json::value json_body() const {
        const auto type = raw[http::field::content_type];
        if (!type.starts_with("application/json")) throw HttpError(415, "expected a body of type application/json");
        boost::system::error_code ec;
        auto v = boost::json::parse(raw.body(), ec);
        if (ec) throw HttpError(400, "the body is not valid JSON: " + ec.message());
        return v;
    }
};

using RouteHandler = std::function<HttpResponse(const RouteRequest&)>;

/// The answer to one request, and the route that made it (for metrics).
struct RouteResult {
    HttpResponse response;
    /// The matched route's pattern; "unmatched" when no route has the path, "invalid" for a target that is not
    /// valid.
    std::string handler;
};

/// Maps (method, path pattern) to handlers. Patterns are absolute paths whose segments are literals or `{name}`
/// (one non-empty segment). Fill it before the server starts; handle() is const and thread-safe then.
class Router {
public:
    /// Adds a route; throws std::invalid_argument for a pattern that is not an absolute path or names a parameter
    /// twice.
    Router& add(http::verb method, std::string pattern, RouteHandler handler) {
        if (pattern.empty() || pattern.front() != '/') throw std::invalid_argument("route pattern must start with /: " + pattern);
        Route r;
        r.method = method;
        r.pattern = pattern;
        r.handler = std::move(handler);
        std::string_view rest = std::string_view(pattern).substr(1);
        if (!rest.empty()) {
            for (;;) {
                const auto slash = rest.find('/');
                std::string seg(rest.substr(0, slash));
                const bool param = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
                if (param) {
                    seg = seg.substr(1, seg.size() - 2);
                    for (auto& s : r.segments)
                        if (s.param && s.text == seg)
                            throw std::invalid_argument("route pattern names {" + seg + "} twice: " + pattern);
                }
                r.segments.push_back({std::move(seg), param});
                if (slash == std::string_view::npos) break;
                rest.remove_prefix(slash + 1);
            }
        }
        routes_.push_back(std::move(r));
        return *this;
    }
    Router& get(std::string pattern, RouteHandler handler) {
        return add(http::verb::get, std::move(pattern), std::move(handler));
    }
    Router& post(std::string pattern, RouteHandler handler) {
        return add(http::verb::post, std::move(pattern), std::move(handler));
    }

    /// Answers `req` (see the rules at the top of this file). Never throws.
    RouteResult handle(const HttpRequest& req) const {
        RouteResult out;
        try {
            if (req.version() != 10 && req.version() != 11) {
                out.handler = "invalid";
                out.response = HttpResponse::error(400, "only HTTP/1.0 and HTTP/1.1 are served");
                return out;
            }
            if (req.version() == 11 && req.find(http::field::host) == req.end()) {
                out.handler = "invalid";
                out.response = HttpResponse::error(400, "an HTTP/1.1 request needs a Host header");
                return out;
            }
            auto target = parse_target(req.target());
            if (!target) {
                out.handler = "invalid";
                out.response = HttpResponse::error(400, "the request target is not a valid absolute path");
                return out;
            }
            const http::verb method = req.method() == http::verb::head ? http::verb::get : req.method();
            std::string allow;
            for (const auto& r : routes_) {
                std::map<std::string, std::string, std::less<>> params;
                if (!matches(r, *target, params)) continue;
                if (r.method != method) {
                    const auto name = http::to_string(r.method);
                    if (allow.find(name) == std::string::npos) {
                        if (!allow.empty()) allow += ", ";
                        allow.append(name.data(), name.size());
                        if (r.method == http::verb::get) allow += ", HEAD";
                    }
                    continue;
                }
                out.handler = r.pattern;
                try {
                    out.response = r.handler(RouteRequest{req, *target, std::move(params)});
                } catch (...) {
                    out.response = error_response(std::current_exception());
                }
                if (out.response.status < 100 || out.response.status > 599) out.response.status = 500;
                return out;
            }
            if (!allow.empty()) {
                out.handler = "unmatched";
                out.response = HttpResponse::error(405, "method not allowed; allowed: " + allow);
                out.response.headers.emplace_back("Allow", allow);
                return out;
            }
            out.handler = "unmatched";
            std::string shown = target->path.substr(0, std::min<std::size_t>(target->path.size(), 200));
            out.response = HttpResponse::error(404, "no resource at " + shown);
            return out;
        } catch (...) {
            out.handler = "invalid";
            out.response = HttpResponse::error(500, "internal error");
            return out;
        }
    }

    std::size_t size() const noexcept { return routes_.size(); }

private:
    struct Segment {
        std::string text; ///< the literal, or the parameter's name
        bool param = false;
    };
    struct Route {
        http::verb method = http::verb::get;
        std::string pattern;
        std::vector<Segment> segments;
        RouteHandler handler;
    };

    static bool matches(const Route& r, const RequestTarget& t, std::map<std::string, std::string, std::less<>>& params) {
        if (r.segments.size() != t.segments.size()) return false;
        for (std::size_t i = 0; i < r.segments.size(); ++i) {
            const auto& s = r.segments[i];
            if (s.param) {
                if (t.segments[i].empty()) return false;
                params[s.text] = t.segments[i];
            } else if (s.text != t.segments[i]) {
                return false;
            }
        }
        return true;
    }

    std::vector<Route> routes_;
};

// ------------------------------------------------------------------------------------------------ one exchange

/// The outcome of reading one request from bytes and answering it.
struct Exchange {
    /// True when `bytes` held a complete request (then `result` answers it).
    bool complete = false;
    /// The answer to an unreadable request (400, 413, 431) or to a complete one.
    std::optional<RouteResult> result;
    /// Bytes of `bytes` the request used.
    std::size_t consumed = 0;
};

/// Reads one request from `bytes`, fed to the parser in pieces of at most `piece` bytes (as they arrive from a
/// socket), with the server's limits, and answers it as the server does. Incomplete input: complete == false and
/// no result (the server would wait for more, up to its read timeout). Pure: the server's parsing and routing
/// without the socket.
inline Exchange exchange(const Router& router, std::string_view bytes, const HttpLimits& limits,
                         std::size_t piece = 4096) {
    Exchange out;
    http::request_parser<http::string_body> parser;
    configure_parser(parser, limits);
    parser.eager(true);
    if (piece == 0) piece = 1;
    std::size_t offered = 0;
    while (!parser.is_done()) {
        // Offer everything not yet consumed plus the next piece, as a growing read buffer does.
        const std::size_t available = std::min(bytes.size(), offered + piece);
        if (available == out.consumed) break;
        boost::beast::error_code ec;
        const std::string_view pending = bytes.substr(out.consumed, available - out.consumed);
        const std::size_t used = parser.put(boost::asio::buffer(pending.data(), pending.size()), ec);
        out.consumed += used;
        if (ec == http::error::need_more) {
            if (available == bytes.size()) break;
            offered = available;
            continue;
        }
        if (ec) {
            RouteResult r;
            r.handler = "invalid";
            const auto status = status_for_read_error(ec).value_or(400);
            r.response = HttpResponse::error(status, status == 431   ? "the request headers are too large"
                                                     : status == 413 ? "the request body is too large"
                                                                     : "the request is not valid HTTP/1.1");
            out.result = std::move(r);
            return out;
        }
        offered = std::max(offered, out.consumed);
    }
    if (!parser.is_done()) return out;
    out.complete = true;
    out.result = router.handle(parser.get());
    return out;
}

} // namespace execution_sentinel::serve

#endif // EXECUTION_SENTINEL_SERVE_ROUTER_HPP

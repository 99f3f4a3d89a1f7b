// One HTTP(S) POST to an alert receiver, with Beast: plain http (a local Alertmanager on 127.0.0.1) or https with
// the certificate verified (system trust store, or the sink's CA) through the same TLS connection code as the
// Kubernetes client. Never throws for a failed delivery: the outcome is a value the dispatcher judges with
// verdict_for_status(). Error texts name the receiver only as scheme://host/… (the path of a webhook URL is its
// secret).
#ifndef EXECUTION_SENTINEL_ALERTS_HTTP_POST_HPP
#define EXECUTION_SENTINEL_ALERTS_HTTP_POST_HPP

#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/alerts/payload.hpp>
#include <execution_sentinel/kube/detail/tls_connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace execution_sentinel::alerts {

/// A receiver's address, parsed once.
struct Endpoint {
    bool tls = true;
    std::string host; ///< without brackets
    std::string port;
    std::string target; ///< path and query, at least "/"
    std::string redacted; ///< scheme://host/… for messages
};

/// Parses an http(s) URL; nullopt when it is not one (no secret in any message: the caller says which sink).
inline std::optional<Endpoint> parse_endpoint(const std::string& url) {
    auto u = boost::urls::parse_uri(url);
    if (!u) return std::nullopt;
    Endpoint e;
    if (u->scheme() == "https") e.tls = true;
    else if (u->scheme() == "http") e.tls = false;
    else return std::nullopt;
    e.host = std::string(u->host_address());
    if (e.host.empty()) return std::nullopt;
    e.port = u->has_port() ? std::string(u->port()) : (e.tls ? "443" : "80");
    e.target = std::string(u->encoded_path());
    if (e.target.empty()) e.target = "/";
    if (u->has_query()) e.target += "?" + std::string(u->encoded_query());
    e.redacted = redact_url(url);
    return e;
}

/// What one attempt gave: the HTTP status (0 when there was no answer) and a short error text.
struct PostResult {
    int status = 0;
    std::optional<int> retry_after; ///< seconds, from a 429 or 503 answer
    std::string error;              ///< empty on 2xx; never holds the URL's path or the request body
};

/// The OpenSSL context for a sink: the system trust store, plus `ca_pem` when given. Throws AlertsConfigError when
/// `ca_pem` is not a certificate.
inline std::shared_ptr<boost::asio::ssl::context> make_alert_tls_context(const std::string& sink_name,
                                                                        const std::string& ca_pem) {
    namespace asio = boost::asio;
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (!ca_pem.empty()) {
        ctx->add_certificate_authority(asio::buffer(ca_pem), ec);
        if (ec) throw AlertsConfigError("sink " + sink_name + ": the CA is not a valid PEM certificate: " + ec.message());
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

/// POSTs `body` with `headers` to `endpoint` within `timeout` (connect, TLS handshake, send and answer together).
/// Completes with the answer's status, or status 0 and the reason (refused, timed out, certificate not verified,
/// connection closed). Cancellation propagates as boost::system::system_error(operation_aborted).
inline boost::asio::awaitable<PostResult>
post_alert(Endpoint endpoint, std::vector<std::pair<std::string, std::string>> headers, std::string body,
           std::shared_ptr<boost::asio::ssl::context> tls, std::chrono::milliseconds timeout, std::string sink_name) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    auto ex = co_await asio::this_coro::executor;
    PostResult result;
    const std::string where = endpoint.redacted;

    http::request<http::string_body> req{http::verb::post, endpoint.target, 11};
    std::string host_header = endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
    if (endpoint.port != (endpoint.tls ? "443" : "80")) host_header += ":" + endpoint.port;
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, "execution-sentinel-alerts");
    req.set(http::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.keep_alive(false);
    req.prepare_payload();

    auto started = std::chrono::steady_clock::now();
    auto remaining = [&] {
        auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        return std::max(left, std::chrono::milliseconds(1));
    };
    auto exchange = [&](auto& stream, auto& lowest) -> asio::awaitable<void> {
        lowest.expires_after(remaining());
        auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
        (void)wn;
        if (wec) {
            if (wec == asio::error::operation_aborted) throw boost::system::system_error(wec);
            result.error = wec == beast::error::timeout ? "sending to " + where + " timed out after " +
                                                              std::to_string(timeout.count()) + " ms"
                                                        : "sending to " + where + " failed: " + wec.message();
            co_return;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        lowest.expires_after(remaining());
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        if (rec && !(rec == http::error::body_limit && parser.is_header_done())) {
            if (rec == asio::error::operation_aborted) throw boost::system::system_error(rec);
            result.error = rec == beast::error::timeout ? "no answer from " + where + " within " +
                                                              std::to_string(timeout.count()) + " ms"
                                                        : "reading the answer of " + where + " failed: " + rec.message();
            co_return;
        }
        const auto& res = parser.get();
        result.status = static_cast<int>(res.result_int());
        if (auto it = res.find(http::field::retry_after); it != res.end())
            result.retry_after = parse_retry_after(std::string_view(it->value().data(), it->value().size()));
        if (result.status < 200 || result.status >= 300) {
            std::string excerpt = truncate_utf8(res.body(), 200);
            for (auto& c : excerpt)
                if (c == '\n' || c == '\r') c = ' ';
            result.error = where + " answered " + std::to_string(result.status) +
                           (excerpt.empty() ? std::string() : ": " + excerpt);
        }
    };

    try {
        if (endpoint.tls) {
            kube::ClusterConfig cfg;
            cfg.host = endpoint.host;
            cfg.port = endpoint.port;
            cfg.source = "alert sink " + sink_name;
            kube::detail::TlsStream stream(ex, *tls);
            auto verify_failure = std::make_shared<std::string>();
            kube::detail::ConnectSettings settings;
            settings.connect_timeout = remaining();
            settings.handshake_timeout = remaining();
            settings.keepalive.enabled = false;
            try {
                co_await kube::detail::connect_tls(stream, verify_failure, cfg, settings);
            } catch (const kube::Error& e) {
                const auto code = e.code();
                if (code == kube::make_error_code(kube::error::tls_verification_failed))
                    result.error = "the certificate of " + where + " does not verify: " +
                                   (verify_failure->empty() ? std::string("rejected") : *verify_failure) +
                                   "; give the receiver's CA with ca_file";
                else if (code == kube::make_error_code(kube::error::timeout))
                    result.error = "connecting to " + where + " timed out after " + std::to_string(timeout.count()) + " ms";
                else
                    result.error = "cannot connect to " + where + " (" + code.message() + ")";
                co_return result;
            }
            co_await exchange(stream, beast::get_lowest_layer(stream));
            beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(500));
            (void)co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
        } else {
            beast::tcp_stream stream(ex);
            asio::ip::tcp::resolver::results_type endpoints;
            try {
                endpoints = co_await kube::detail::resolve(ex, endpoint.host, endpoint.port, remaining());
            } catch (const kube::Error& e) {
                result.error = "cannot resolve " + where + " (" + e.code().message() + ")";
                co_return result;
            }
            stream.expires_after(remaining());
            auto [cec, ep] = co_await stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
            (void)ep;
            if (cec) {
                if (cec == asio::error::operation_aborted) throw boost::system::system_error(cec);
                result.error = cec == beast::error::timeout ? "connecting to " + where + " timed out after " +
                                                                  std::to_string(timeout.count()) + " ms"
                                                            : "cannot connect to " + where + ": " + cec.message();
                co_return result;
            }
            co_await exchange(stream, stream);
            boost::system::error_code ignored;
            stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        }
    } catch (const kube::Error& e) {
        result.status = 0;
        result.error = "delivery to " + where + " failed (" + e.code().message() + ")";
    }
    co_return result;
}

} // namespace execution_sentinel::alerts

#endif // EXECUTION_SENTINEL_ALERTS_HTTP_POST_HPP

// Running a command in a container over WebSocket (the `pods/exec` subresource), the way kubectl does since
// Kubernetes 1.30: subprotocol v5.channel.k8s.io (else v4), binary frames [channel][payload], stdout and stderr
// collected, the exit code read from the Status on channel 3. See docs/client.md.
#ifndef EXECUTION_SENTINEL_KUBE_EXEC_HPP
#define EXECUTION_SENTINEL_KUBE_EXEC_HPP

#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/detail/tls_connection.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::kube {

/// What to run. The command is run directly (no shell): one argv element per entry.
struct ExecRequest {
    std::string namespace_{};
    std::string pod{};
    std::string container{};             ///< empty = the pod's only container
    std::vector<std::string> command{};  ///< argv; must not be empty
    /// Whole-call limit (connect, upgrade, run, output); 0 = none. Default 60 s.
    std::chrono::milliseconds timeout{60000};
    /// Largest stdout and stderr kept, bytes each; more is read and dropped (ExecResult::truncated). 16 MiB.
    std::size_t max_output_bytes = std::size_t{16} << 20;
};

struct ExecResult {
    int exit_code = 0;        ///< 0 on Success; the ExitCode cause of a NonZeroExitCode failure otherwise
    std::string stdout_data{};
    std::string stderr_data{};
    std::string protocol{};     ///< the subprotocol the server chose: "v5.channel.k8s.io" or "v4.channel.k8s.io"
    bool truncated = false;   ///< output past max_output_bytes was dropped
};

/// Runs `request.command` in the container and completes when it exits. Throws kube::Error:
/// forbidden (RBAC: `create` and `get` on `pods/exec`), not_found (no such pod), exec_failed (the container is
/// missing or not running, the command cannot be started, no channel protocol agreed), unauthorized, timeout
/// (request.timeout passed), connection_lost, and the connect/TLS errors of Client. A command that runs and
/// exits non-zero is not an error: its code is in ExecResult::exit_code. Cancellation (per-operation, terminal)
/// closes the connection and throws boost::system::system_error(operation_aborted). Completes on the client's
/// executor; `client` is copied (its state is shared) and need not outlive the call.
boost::asio::awaitable<ExecResult> exec(Client& client, ExecRequest request);

// ------------------------------------------------------------------------------------------- pure pieces

/// The subprotocols offered, best first.
inline constexpr std::string_view exec_protocol_v5 = "v5.channel.k8s.io";
inline constexpr std::string_view exec_protocol_v4 = "v4.channel.k8s.io";

/// "/api/v1/namespaces/{ns}/pods/{pod}/exec?command=..&command=..&container=..&stdout=true&stderr=true".
inline std::string exec_target(const ExecRequest& r) {
    QueryString q;
    for (const auto& arg : r.command) q.add("command", arg);
    q.add_if("container", r.container);
    q.add("stdout", true).add("stderr", true);
    return "/api/v1/namespaces/" + escape_path_segment(r.namespace_) + "/pods/" + escape_path_segment(r.pod) +
           "/exec" + q.str();
}

/// How the command ended, from the channel-3 Status.
struct ExecStatus {
    bool started = true;      ///< false: the exec itself failed (message says why)
    int exit_code = 0;
    std::string reason{};       ///< Status.reason
    std::string message{};      ///< Status.message (or the raw text of a pre-v4 error)
};

/// Decodes the channel-3 payload: `status: Success` → exit 0; `Failure` with a cause whose reason is
/// "ExitCode" (every cause is scanned, not only the first) → that number; any other failure, or text that is not
/// a Status (pre-v4 servers send plain text), → started=false with the message.
inline ExecStatus decode_exec_status(std::string_view payload) {
    ExecStatus out;
    boost::system::error_code ec;
    auto v = boost::json::parse(payload, ec);
    if (ec || !v.is_object()) {
        out.started = false;
        out.message = std::string(payload.substr(0, 1000));
        return out;
    }
    auto st = parse_status(v);
    out.reason = st.reason;
    out.message = st.message;
    if (st.status == "Success") return out;
    for (const auto& cause : st.causes) {
        if (cause.reason != "ExitCode") continue;
        int code = 0;
        const char* b = cause.message.data();
        const char* e = b + cause.message.size();
        auto [p, err] = std::from_chars(b, e, code);
        if (err == std::errc() && p == e) {
            out.exit_code = code;
            return out;
        }
    }
    out.started = false;
    if (out.message.empty()) out.message = "the exec failed without a message (reason \"" + st.reason + "\")";
    return out;
}

/// Collects the binary messages of an exec stream: [channel byte][payload]. Channel 1 stdout, 2 stderr, 3 the
/// Status; 255 (v5 CLOSE) and empty readiness messages are ignored; unknown channels are ignored.
class ExecOutputCollector {
public:
    explicit ExecOutputCollector(std::size_t max_output_bytes = std::size_t{16} << 20) : max_(max_output_bytes) {}

    void on_message(std::string_view message) {
        if (message.empty()) return;
        auto channel = static_cast<unsigned char>(message.front());
        auto payload = message.substr(1);
        switch (channel) {
        case 1: append(stdout_, payload); break;
        case 2: append(stderr_, payload); break;
        case 3: status_.append(payload.data(), payload.size()); has_status_ = true; break;
        default: break; // 0 stdin (never sent to us), 4 resize, 255 close
        }
    }

    bool has_status() const noexcept { return has_status_; }
    const std::string& status_payload() const noexcept { return status_; }
    std::string& stdout_data() noexcept { return stdout_; }
    std::string& stderr_data() noexcept { return stderr_; }
    bool truncated() const noexcept { return truncated_; }

private:
    void append(std::string& out, std::string_view payload) {
        std::size_t room = out.size() < max_ ? max_ - out.size() : 0;
        if (payload.size() > room) truncated_ = true;
        out.append(payload.data(), std::min(room, payload.size()));
    }
    std::size_t max_{};
    std::string stdout_, stderr_, status_{};
    bool has_status_ = false;
    bool truncated_ = false;
};

/// The Diagnostics of a refused exec upgrade (403/404/400...) with advice specific to exec.
inline std::pair<error, Diagnostics> exec_error_from_response(int http_status, std::string_view body,
                                                             const ExecRequest& r, std::string_view credentials_source) {
    auto [e, d] = error_from_response(http_status, body, {}, describe_request("GET", exec_target(r)), credentials_source);
    std::string where = "pod " + r.namespace_ + "/" + r.pod + (r.container.empty() ? "" : " container " + r.container);
    switch (e) {
    case error::forbidden:
        d.client_message = "RBAC denies exec in " + where +
                           ": grant `create pods/exec` and `get pods/exec` in namespace " + r.namespace_;
        break;
    case error::not_found: d.client_message = "cannot exec: " + where + " does not exist"; break;
    case error::bad_request:
        e = error::exec_failed;
        d.client_message = "the API server refused to start the command in " + where +
                           " (missing container, container not running, or invalid command)";
        break;
    default: break;
    }
    return {e, std::move(d)};
}

// ------------------------------------------------------------------------------------------------ driver

inline boost::asio::awaitable<ExecResult> exec(Client& client, ExecRequest request) {
    namespace asio = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    namespace websocket = beast::websocket;
    auto st = client.state();
    const std::string target = exec_target(request);
    const std::string resource = describe_request("GET", target);
    if (request.command.empty()) {
        Diagnostics d;
        d.resource = resource;
        d.client_message = "exec needs a command (ExecRequest::command is empty)";
        throw Error(make_error_code(error::exec_failed), std::move(d));
    }
    const auto start = std::chrono::steady_clock::now();
    const bool bounded = request.timeout.count() > 0;
    const auto deadline = start + request.timeout;
    auto limit = [&](std::chrono::milliseconds d) {
        if (!bounded) return d;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        return std::max(std::chrono::milliseconds(1), std::min(d, left));
    };
    auto timed_out = [&]() -> Error {
        Diagnostics d;
        d.resource = resource;
        d.client_message = "exec did not finish within " + std::to_string(request.timeout.count()) + " ms";
        return Error(make_error_code(error::timeout), std::move(d));
    };

    bool refreshed_credentials = false;
    for (int attempt = 1;; ++attempt) {
        RequestOutcome outcome{resource, 0, {}, attempt, true, {}};
        Credentials creds = st->credentials();
        auto ctx = st->tls_context(creds);
        websocket::stream<detail::TlsStream> ws(st->executor, *ctx);
        auto verify_failure = std::make_shared<std::string>();
        auto settings = st->connect_settings();
        settings.connect_timeout = limit(settings.connect_timeout);
        settings.handshake_timeout = limit(settings.handshake_timeout);
        try {
            co_await detail::connect_tls(ws.next_layer(), verify_failure, st->config, settings);
        } catch (const Error& e) {
            outcome.ec = e.code();
            outcome.elapsed = detail::elapsed_since(start);
            st->report(outcome);
            if (e.code() == error::timeout && bounded && std::chrono::steady_clock::now() >= deadline) throw timed_out();
            throw;
        }
        auto& tcp = beast::get_lowest_layer(ws);
        ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
            req.set(http::field::user_agent, st->options.user_agent);
            if (!creds.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + creds.bearer_token);
            req.set(http::field::sec_websocket_protocol,
                    std::string(exec_protocol_v5) + ", " + std::string(exec_protocol_v4));
        }));
        ws.read_message_max(request.max_output_bytes + (std::size_t{1} << 20));
        tcp.expires_after(limit(st->options.request_timeout));
        websocket::response_type res;
        auto [hec] = co_await ws.async_handshake(res, detail::host_header(st->config),
                                                 join_target(st->config.base_path, target),
                                                 asio::as_tuple(asio::use_awaitable));
        outcome.elapsed = detail::elapsed_since(start);
        if (!hec || hec == websocket::error::upgrade_declined) outcome.http_status = static_cast<int>(res.result_int());
        if (hec && hec != websocket::error::upgrade_declined) {
            if (detail::is_cancellation(hec)) detail::throw_cancelled();
            try {
                detail::throw_transport_error(hec, resource, "the exec upgrade", st->options.request_timeout);
            } catch (const Error& e) {
                outcome.ec = e.code();
                st->report(outcome);
                if (e.code() == error::timeout && bounded && std::chrono::steady_clock::now() >= deadline) throw timed_out();
                throw;
            }
        }
        if (hec == websocket::error::upgrade_declined || outcome.http_status != 101) {
            auto [code, diag] = exec_error_from_response(outcome.http_status, res.body(), request, st->credentials_source());
            outcome.ec = make_error_code(code);
            st->report(outcome);
            if (code == error::unauthorized && !refreshed_credentials) {
                refreshed_credentials = true;
                st->invalidate(creds);
                continue;
            }
            throw Error(make_error_code(code), std::move(diag));
        }
        st->report(outcome);

        ExecResult result;
        result.protocol = std::string(res[http::field::sec_websocket_protocol]);
        if (result.protocol != exec_protocol_v5 && result.protocol != exec_protocol_v4) {
            Diagnostics d;
            d.resource = resource;
            d.http_status = 101;
            d.client_message = "the API server chose no supported exec protocol (offered " + std::string(exec_protocol_v5) +
                               " and " + std::string(exec_protocol_v4) + ", got \"" + result.protocol + "\")";
            throw Error(make_error_code(error::exec_failed), std::move(d));
        }

        // The websocket keeps its own idle watch (pings after 30 s of silence, fails after 60 s without an
        // answer); the TCP deadline bounds the whole call.
        websocket::stream_base::timeout wst{};
        wst.handshake_timeout = std::chrono::seconds(10);
        wst.idle_timeout = std::chrono::seconds(60);
        wst.keep_alive_pings = true;
        ws.set_option(wst);
        if (bounded) tcp.expires_at(deadline);
        else tcp.expires_never();

        ExecOutputCollector collector(request.max_output_bytes);
        beast::flat_buffer buffer;
        for (;;) {
            auto [rec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (rec) {
                if (detail::is_cancellation(rec)) detail::throw_cancelled();
                if (rec == websocket::error::closed || collector.has_status()) break;
                if (rec == beast::error::timeout && bounded && std::chrono::steady_clock::now() >= deadline - std::chrono::milliseconds(5))
                    throw timed_out();
                detail::throw_transport_error(rec, resource, "the exec stream", std::chrono::seconds(60), error::stream_idle);
            }
            auto data = buffer.cdata();
            collector.on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
            buffer.consume(buffer.size());
            if (collector.has_status()) {
                // The Status is the last message: close our side (the server closes too), briefly.
                tcp.expires_after(limit(std::chrono::seconds(2)));
                auto [cec] = co_await ws.async_close(websocket::close_code::normal, asio::as_tuple(asio::use_awaitable));
                (void)cec;
                break;
            }
        }
        if (collector.has_status()) {
            auto status = decode_exec_status(collector.status_payload());
            if (!status.started) {
                Diagnostics d;
                d.resource = resource;
                d.reason = status.reason;
                d.server_message = status.message;
                d.client_message = "the command could not be run in pod " + request.namespace_ + "/" + request.pod +
                                   (request.container.empty() ? "" : " container " + request.container);
                throw Error(make_error_code(error::exec_failed), std::move(d));
            }
            result.exit_code = status.exit_code;
        }
        result.stdout_data = std::move(collector.stdout_data());
        result.stderr_data = std::move(collector.stderr_data());
        result.truncated = collector.truncated();
        co_return result;
    }
}

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_EXEC_HPP

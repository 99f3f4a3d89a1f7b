// Bodies of kube/exec.hpp: included by that header when header-only, compiled once by
// <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_KUBE_IMPL_EXEC_IPP
#define EXECUTION_SENTINEL_KUBE_IMPL_EXEC_IPP

#include <execution_sentinel/kube/exec.hpp>
#include <execution_sentinel/kube/detail/tls_connection.hpp>
#include <execution_sentinel/kube/request_machine.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <algorithm>

namespace execution_sentinel::kube {

EXECUTION_SENTINEL_DECL boost::asio::awaitable<ExecResult> exec(Client& client, ExecRequest request) {
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

    RequestPolicy policy;
    policy.kind = RequestKind::exec; // never repeated: the command may have run
    RequestMachine machine(policy, st->backoff_options());
    for (int attempt = 1;; ++attempt) {
        RequestOutcome outcome{resource, 0, {}, attempt, true, {}};
        Credentials creds = co_await st->async_credentials();
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
            auto decision = machine.on_transport_failure(static_cast<error>(e.code().value()), false, false,
                                                         RequestMachine::clock::now());
            if (decision.action == RequestDecision::Action::refresh_credentials) {
                st->invalidate(creds);
                continue;
            }
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
            auto decision = machine.on_answer(code, diag.retry_after_seconds, RequestMachine::clock::now());
            if (decision.action == RequestDecision::Action::refresh_credentials) {
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

#endif // EXECUTION_SENTINEL_KUBE_IMPL_EXEC_IPP

// Bodies of testing/detail/exec_session.hpp: included by that header (header-only use) or by
// <execution_sentinel/testing/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_EXEC_SESSION_IPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_EXEC_SESSION_IPP

#include <execution_sentinel/testing/detail/exec_session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace execution_sentinel::testing::detail {

EXECUTION_SENTINEL_DECL boost::asio::awaitable<bool> serve_exec_session(SslStream& stream, Request& req, const ExecStart& exec) {
    namespace asio = boost::asio;
    namespace websocket = boost::beast::websocket;
    websocket::stream<SslStream&> ws(stream);
    ws.set_option(websocket::stream_base::decorator([protocol = exec.protocol](websocket::response_type& res) {
        res.set(http::field::sec_websocket_protocol, protocol);
    }));
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(5);
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws.set_option(timeouts);
    ws.binary(true);
    auto [aec] = co_await ws.async_accept(req, asio::as_tuple(asio::use_awaitable));
    if (aec) co_return false;
    for (const auto& f : exec.frames) {
        auto [ec, n] = co_await ws.async_write(asio::buffer(f), asio::as_tuple(asio::use_awaitable));
        if (ec) co_return false;
    }
    ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(5), std::chrono::seconds(5), false});
    co_await ws.async_close(websocket::close_code::normal, asio::as_tuple(asio::use_awaitable));
    co_return false;
}

} // namespace execution_sentinel::testing::detail

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_IMPL_EXEC_SESSION_IPP

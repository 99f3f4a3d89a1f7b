// The simulated apiserver's exec sessions: upgrades the connection to a WebSocket with the subprotocol the
// router chose and sends the frames it decided (exec_frames() in router.hpp), then closes.
#ifndef EXECUTION_SENTINEL_TESTING_DETAIL_EXEC_SESSION_HPP
#define EXECUTION_SENTINEL_TESTING_DETAIL_EXEC_SESSION_HPP

#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/testing/detail/router.hpp>
#include <execution_sentinel/testing/detail/streaming.hpp>

#include <boost/asio/awaitable.hpp>

namespace execution_sentinel::testing::detail {

/// Accepts the WebSocket upgrade in `req` on `stream`, writes `exec.frames` as binary messages and closes the
/// WebSocket. Completes with false (the connection is not reused).
EXECUTION_SENTINEL_DECL boost::asio::awaitable<bool> serve_exec_session(SslStream& stream, Request& req, const ExecStart& exec);

} // namespace execution_sentinel::testing::detail

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/testing/detail/impl/exec_session.ipp>
#endif

#endif // EXECUTION_SENTINEL_TESTING_DETAIL_EXEC_SESSION_HPP

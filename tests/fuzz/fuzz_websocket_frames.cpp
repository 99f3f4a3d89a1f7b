// Raw bytes of an exec stream from the API server after the WebSocket upgrade: frames (fragmented or not,
// control frames in between, any length encoding) reassembled into messages by the same Beast client stream
// exec() reads with, with a message limit as exec() sets it, then the messages through ExecOutputCollector and
// the channel-3 Status through decode_exec_status(). The first input byte picks the message limit.
#include <execution_sentinel/kube/exec.hpp>

#include "fuzz_target.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <functional>
#include <string>

void execution_sentinel::fuzz::fuzz_one(std::string_view data) {
    namespace kube = execution_sentinel::kube;
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    if (data.empty()) return;
    const std::size_t max_message = 16 + static_cast<std::size_t>(static_cast<unsigned char>(data[0])) * 16;
    data.remove_prefix(1);
    try {
        boost::asio::io_context io;
        websocket::stream<beast::test::stream> client(io);
        websocket::stream<beast::test::stream> server(io);
        client.next_layer().connect(server.next_layer());
        beast::error_code handshake_ec, accept_ec;
        client.async_handshake("apiserver", "/api/v1/namespaces/wf/pods/engine/exec",
                               [&](beast::error_code ec) { handshake_ec = ec; });
        server.async_accept([&](beast::error_code ec) { accept_ec = ec; });
        io.run();
        expect(!handshake_ec && !accept_ec, "the WebSocket handshake over the test stream succeeds");

        // From here on the server's bytes are the input, then the end of the stream. What the client sends
        // (pongs, its close frame) still reaches the server's side, which reads nothing.
        client.read_message_max(max_message);
        client.next_layer().append(data);
        client.next_layer().close_remote();

        kube::ExecOutputCollector collector(1024);
        beast::flat_buffer buffer;
        std::size_t messages = 0;
        std::function<void()> read_next = [&] {
            client.async_read(buffer, [&](beast::error_code ec, std::size_t n) {
                if (ec) return;
                expect(n <= max_message && buffer.size() <= max_message, "a message is at most read_message_max");
                ++messages;
                auto bytes = buffer.cdata();
                collector.on_message(std::string_view(static_cast<const char*>(bytes.data()), bytes.size()));
                buffer.consume(buffer.size());
                read_next();
            });
        };
        read_next();
        io.restart();
        io.run();
        expect(messages <= data.size() / 2, "every message takes at least a two-byte frame header");
        if (collector.has_status()) (void)kube::decode_exec_status(collector.status_payload());
    } catch (const std::exception& e) {
        unexpected(e.what());
    }
}

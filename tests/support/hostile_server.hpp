// A small hostile HTTPS server for tests: it answers every request with what the test decides (an HTML page with
// status 200, invalid JSON, a Status 410 forever …), and can reject client certificates during the handshake.
// Certificates come from testing/certificates.hpp. It runs on its own thread; requests are counted.
#ifndef EXECUTION_SENTINEL_TESTS_HOSTILE_SERVER_HPP
#define EXECUTION_SENTINEL_TESTS_HOSTILE_SERVER_HPP

#include <execution_sentinel/testing/certificates.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace execution_sentinel::tests {

/// One answer of the hostile server.
struct HostileResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    /// When not empty: these bytes are sent as they are instead of an answer built from the fields above (status
    /// line, headers, framing and all), each piece in a TLS write (a record) of its own; then the connection ends,
    /// with a TLS close_notify or, with `abrupt_end`, by closing the TCP connection without one.
    std::vector<std::string> raw{};
    bool abrupt_end = false;
};

/// Options of HostileServer.
struct HostileServerOptions {
    /// The answer to a request target ("/api/v1/namespaces/x/pods?limit=500"). Called on the server's thread.
    std::function<HostileResponse(const std::string& target)> respond;
    /// Require a client certificate signed by a CA the client's certificate is not from: every handshake
    /// with a client certificate fails with a TLS alert.
    bool reject_client_certificates = false;
};

/// Serves HTTPS on 127.0.0.1 (any free port) until destroyed.
class HostileServer {
public:
    explicit HostileServer(HostileServerOptions options)
        : options_(std::move(options)), certificates_(testing::generate_certificates()),
          ssl_(boost::asio::ssl::context::tls_server), acceptor_(io_) {
        namespace asio = boost::asio;
        ssl_.use_certificate_chain(asio::buffer(certificates_.server_certificate_pem));
        ssl_.use_private_key(asio::buffer(certificates_.server_key_pem), asio::ssl::context::pem);
        if (options_.reject_client_certificates) {
            other_ca_ = testing::generate_certificates();
            ssl_.add_certificate_authority(asio::buffer(other_ca_.ca_certificate_pem));
            ssl_.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
        }
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        asio::co_spawn(io_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~HostileServer() {
        boost::asio::post(io_, [this] {
            boost::system::error_code ec;
            acceptor_.close(ec);
            io_.stop();
        });
        thread_.join();
    }
    HostileServer(const HostileServer&) = delete;
    HostileServer& operator=(const HostileServer&) = delete;

    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
    std::size_t requests() const { return requests_.load(); }
    std::size_t handshakes_failed() const { return handshakes_failed_.load(); }
    std::vector<std::string> targets() const {
        std::lock_guard lock(mutex_);
        return targets_;
    }

    /// A kubeconfig for this server, with a bearer token (or the client certificate of the server's own CA).
    std::string kubeconfig(bool client_certificate = false) const {
        std::string y = "apiVersion: v1\nkind: Config\nclusters:\n- name: hostile\n  cluster:\n    server: " + url() +
                        "\n    certificate-authority-data: " + base64(certificates_.ca_certificate_pem) + "\n";
        y += "users:\n- name: u\n  user:\n";
        if (client_certificate)
            y += "    client-certificate-data: " + base64(certificates_.client_certificate_pem) +
                 "\n    client-key-data: " + base64(certificates_.client_key_pem) + "\n";
        else
            y += "    token: hostile-test-token\n";
        y += "contexts:\n- name: c\n  context:\n    cluster: hostile\n    user: u\n    namespace: wf\ncurrent-context: c\n";
        return y;
    }

    static std::string base64(const std::string& in) {
        static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        std::size_t i = 0;
        for (; i + 2 < in.size(); i += 3) {
            unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
            out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
        }
        if (i + 1 == in.size()) {
            unsigned v = (unsigned char)in[i] << 16;
            out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
        } else if (i + 2 == in.size()) {
            unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
            out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
        }
        return out;
    }

private:
    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return;
            boost::asio::co_spawn(io_, session(std::move(socket)), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket) {
        namespace asio = boost::asio;
        namespace http = boost::beast::http;
        asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), ssl_);
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
        if (hec) {
            ++handshakes_failed_;
            co_return;
        }
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [rec, rn] = co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
            (void)rn;
            if (rec) co_return;
            ++requests_;
            std::string target(req.target());
            {
                std::lock_guard lock(mutex_);
                targets_.push_back(target);
            }
            HostileResponse r = options_.respond ? options_.respond(target) : HostileResponse{};
            if (!r.raw.empty()) {
                for (const auto& piece : r.raw) {
                    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(piece),
                                                                asio::as_tuple(asio::use_awaitable));
                    (void)wn;
                    if (wec) co_return;
                }
                if (!r.abrupt_end) co_await stream.async_shutdown(asio::as_tuple(asio::use_awaitable));
                boost::system::error_code ignored;
                stream.lowest_layer().close(ignored);
                co_return;
            }
            http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
            res.set(http::field::content_type, r.content_type);
            res.body() = std::move(r.body);
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec || !req.keep_alive()) co_return;
        }
    }

    HostileServerOptions options_;
    testing::CertificateBundle certificates_;
    testing::CertificateBundle other_ca_;
    boost::asio::io_context io_;
    boost::asio::ssl::context ssl_;
    boost::asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::thread thread_;
    std::atomic<std::size_t> requests_{0};
    std::atomic<std::size_t> handshakes_failed_{0};
    mutable std::mutex mutex_;
    std::vector<std::string> targets_;
};

} // namespace execution_sentinel::tests

#endif // EXECUTION_SENTINEL_TESTS_HOSTILE_SERVER_HPP

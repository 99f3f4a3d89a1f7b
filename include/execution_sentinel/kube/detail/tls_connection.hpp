// TLS connections to the API server: the OpenSSL context built from the cluster CA and the client certificate,
// DNS + TCP connect + TLS handshake with their own timeouts, SNI, host-name (and IP SAN) verification, TCP
// keepalive, and the mapping of transport failures to kube::error. Used by client.hpp and exec.hpp.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP

#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#if defined(__linux__) || defined(__APPLE__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace execution_sentinel::kube::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

using TlsStream = asio::ssl::stream<beast::tcp_stream>;

/// TCP keepalive probing of every connection, so a half-open connection is noticed by the kernel too.
struct KeepaliveSettings {
    bool enabled = true;
    std::chrono::seconds idle{30};     ///< TCP_KEEPIDLE
    std::chrono::seconds interval{10}; ///< TCP_KEEPINTVL
    int count = 3;                     ///< TCP_KEEPCNT
};

struct ConnectSettings {
    std::chrono::milliseconds connect_timeout{30000};
    std::chrono::milliseconds handshake_timeout{10000};
    KeepaliveSettings keepalive;
};

inline bool is_ip_literal(std::string_view host) {
    boost::system::error_code ec;
    (void)asio::ip::make_address(std::string(host), ec);
    return !ec;
}

inline std::string strip_brackets(std::string host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return host;
}

/// The Host header value: host[:port], IPv6 in brackets, port omitted when 443.
inline std::string host_header(const ClusterConfig& config) {
    std::string host = strip_brackets(config.host);
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    if (!config.port.empty() && config.port != "443") host += ":" + config.port;
    return host;
}

inline std::string openssl_error_text() {
    unsigned long e = ERR_get_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

/// Builds the OpenSSL client context for one set of (CA, client certificate) inputs. Throws kube::Error:
/// config_invalid when the CA or the client certificate/key cannot be loaded (the message names the field and
/// the configuration source, never the PEM contents).
inline std::shared_ptr<asio::ssl::context> make_tls_context(const ClusterConfig& config, const Credentials& creds) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    auto fail = [&](std::string what) {
        Diagnostics d;
        d.client_message = std::move(what) + " (" + config.source + ")";
        throw Error(make_error_code(error::config_invalid), std::move(d));
    };
    boost::system::error_code ec;
    if (config.insecure_skip_tls_verify) {
        ctx->set_verify_mode(asio::ssl::verify_none);
    } else {
        if (config.ca_pem.empty()) {
            ctx->set_default_verify_paths(ec);
            if (ec) fail("cannot load the system trust store: " + ec.message() + "; set certificate-authority");
        } else {
            ctx->add_certificate_authority(asio::buffer(config.ca_pem), ec);
            if (ec)
                fail("certificate-authority(-data) is not a valid PEM certificate bundle: " + ec.message() +
                     "; fix the cluster's certificate-authority");
        }
        ctx->set_verify_mode(asio::ssl::verify_peer);
    }
    if (!creds.client_certificate_pem.empty() || !creds.client_key_pem.empty()) {
        if (creds.client_certificate_pem.empty() || creds.client_key_pem.empty())
            fail("client certificate and client key must be set together; set both client-certificate(-data) and "
                 "client-key(-data)");
        ctx->use_certificate_chain(asio::buffer(creds.client_certificate_pem), ec);
        if (ec) fail("client-certificate(-data) cannot be loaded: " + ec.message());
        ctx->use_private_key(asio::buffer(creds.client_key_pem), asio::ssl::context::pem, ec);
        if (ec) fail("client-key(-data) cannot be loaded: " + ec.message());
        if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
            ERR_clear_error();
            fail("client-key(-data) does not match client-certificate(-data)");
        }
    }
    return ctx;
}

/// The resolved, connected, handshaken TLS stream plus what verification said.
struct TlsSession {
    std::shared_ptr<asio::ssl::context> context; // outlives the stream
    std::unique_ptr<TlsStream> stream;
    std::shared_ptr<std::string> verify_failure = std::make_shared<std::string>();
};

inline bool is_cancellation(const boost::system::error_code& ec) {
    return ec == asio::error::operation_aborted;
}

[[noreturn]] inline void throw_cancelled() {
    throw boost::system::system_error(asio::error::operation_aborted);
}

/// Sets SO_KEEPALIVE and the Linux probing parameters. Failures are ignored (best effort).
inline void apply_keepalive(asio::ip::tcp::socket& socket, const KeepaliveSettings& k) {
    boost::system::error_code ec;
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!k.enabled) return;
    socket.set_option(asio::socket_base::keep_alive(true), ec);
#if defined(__linux__)
    int idle = static_cast<int>(std::max<std::int64_t>(1, k.idle.count()));
    int interval = static_cast<int>(std::max<std::int64_t>(1, k.interval.count()));
    int count = std::max(1, k.count);
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
#endif
}

/// Resolves host:port within `timeout`. IP literals are not looked up.
inline asio::awaitable<asio::ip::tcp::resolver::results_type> resolve(asio::any_io_executor ex, std::string host,
                                                                      std::string port,
                                                                      std::chrono::milliseconds timeout) {
    using asio::ip::tcp;
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (!ec) {
        unsigned long p = 0;
        try {
            p = std::stoul(port);
        } catch (...) {
            p = 70000;
        }
        if (p == 0 || p > 65535) {
            Diagnostics d;
            d.client_message = "invalid port \"" + port + "\" in the server URL; fix the cluster's server";
            throw Error(make_error_code(error::config_invalid), std::move(d));
        }
        co_return tcp::resolver::results_type::create(tcp::endpoint(address, static_cast<unsigned short>(p)), host,
                                                      port);
    }
    auto resolver = std::make_shared<tcp::resolver>(ex);
    auto timer = std::make_shared<asio::steady_timer>(ex, timeout);
    auto timed_out = std::make_shared<bool>(false);
    timer->async_wait([resolver, timed_out](boost::system::error_code wait_ec) {
        if (!wait_ec) {
            *timed_out = true;
            resolver->cancel();
        }
    });
    auto [rec, results] = co_await resolver->async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    timer->cancel();
    if (rec) {
        Diagnostics d;
        d.resource = "connect " + host + ":" + port;
        if (*timed_out) {
            d.client_message = "DNS lookup of " + host + " timed out after " + std::to_string(timeout.count()) + " ms";
            throw Error(make_error_code(error::timeout), std::move(d));
        }
        if (is_cancellation(rec)) throw_cancelled();
        d.client_message = "cannot resolve " + host + ": " + rec.message() + "; check the server URL and DNS";
        throw Error(make_error_code(error::connect_failed), std::move(d));
    }
    co_return results;
}

/// Connects, sets keepalive, sends SNI, verifies the certificate against `verify_name` (host name or IP SAN)
/// unless insecure, and completes the handshake. Throws kube::Error: connect_failed, timeout,
/// tls_verification_failed (fatal), tls_handshake_failed; cancellation as asio::error::operation_aborted.
inline asio::awaitable<void> connect_tls(TlsStream& stream, std::shared_ptr<std::string> verify_failure,
                                         const ClusterConfig& config, ConnectSettings settings) {
    auto ex = stream.get_executor();
    std::string host = strip_brackets(config.host);
    std::string where = host + ":" + config.port;
    auto results = co_await resolve(ex, host, config.port, settings.connect_timeout);

    auto& tcp = beast::get_lowest_layer(stream);
    tcp.expires_after(settings.connect_timeout);
    auto [cec, endpoint] = co_await tcp.async_connect(results, asio::as_tuple(asio::use_awaitable));
    (void)endpoint;
    if (cec) {
        if (is_cancellation(cec)) throw_cancelled();
        Diagnostics d;
        d.resource = "connect " + where;
        if (cec == beast::error::timeout) {
            d.client_message = "connecting to " + where + " timed out after " +
                               std::to_string(settings.connect_timeout.count()) + " ms; check that the API server is reachable";
            throw Error(make_error_code(error::timeout), std::move(d));
        }
        d.client_message = "cannot connect to " + where + ": " + cec.message() + "; check that the API server is reachable";
        throw Error(make_error_code(error::connect_failed), std::move(d));
    }
    apply_keepalive(tcp.socket(), settings.keepalive);

    std::string name = strip_brackets(config.verify_name());
    if (!is_ip_literal(name)) {
        if (!SSL_set_tlsext_host_name(stream.native_handle(), name.c_str())) ERR_clear_error();
    }
    if (!config.insecure_skip_tls_verify) {
        stream.set_verify_mode(asio::ssl::verify_peer);
        stream.set_verify_callback([name, verify_failure](bool preverified, asio::ssl::verify_context& vc) {
            if (!preverified) {
                if (verify_failure->empty()) {
                    int err = X509_STORE_CTX_get_error(vc.native_handle());
                    *verify_failure = X509_verify_cert_error_string(err);
                }
                return false;
            }
            bool ok = asio::ssl::host_name_verification(name)(preverified, vc);
            if (!ok && verify_failure->empty())
                *verify_failure = "the certificate is not valid for \"" + name + "\" (no matching DNS or IP SAN)";
            return ok;
        });
    } else {
        stream.set_verify_mode(asio::ssl::verify_none);
    }

    tcp.expires_after(settings.handshake_timeout);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec) {
        if (is_cancellation(hec)) throw_cancelled();
        Diagnostics d;
        d.resource = "TLS handshake with " + where;
        bool verify_error = !verify_failure->empty() ||
                            (hec.category() == asio::error::get_ssl_category() &&
                             ERR_GET_REASON(static_cast<unsigned long>(hec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED);
        if (verify_error) {
            d.client_message = "the API server's certificate for \"" + name + "\" does not verify against " +
                               (config.ca_pem.empty() ? std::string("the system trust store")
                                                      : std::string("the cluster's certificate-authority")) +
                               ": " + (verify_failure->empty() ? hec.message() : *verify_failure) +
                               "; fix certificate-authority(-data) or tls-server-name in " + config.source;
            throw Error(make_error_code(error::tls_verification_failed), std::move(d));
        }
        if (hec == beast::error::timeout) {
            d.client_message = "TLS handshake with " + where + " timed out after " +
                               std::to_string(settings.handshake_timeout.count()) + " ms";
            throw Error(make_error_code(error::timeout), std::move(d));
        }
        d.client_message = "TLS handshake with " + where + " failed: " + hec.message();
        throw Error(make_error_code(error::tls_handshake_failed), std::move(d));
    }
    tcp.expires_never();
}

/// Maps a read/write failure on an established connection to a kube::Error (cancellation is rethrown as is).
[[noreturn]] inline void throw_transport_error(const boost::system::error_code& ec, std::string resource,
                                               std::string_view what, std::chrono::milliseconds timeout,
                                               error on_timeout = error::timeout) {
    if (is_cancellation(ec)) throw_cancelled();
    Diagnostics d;
    d.resource = std::move(resource);
    if (ec == beast::error::timeout) {
        d.client_message = std::string(what) + " got no answer within " + std::to_string(timeout.count()) + " ms";
        throw Error(make_error_code(on_timeout), std::move(d));
    }
    d.client_message = std::string(what) + " failed: " + ec.message() + "; the connection will be re-established";
    throw Error(make_error_code(error::connection_lost), std::move(d));
}

} // namespace execution_sentinel::kube::detail

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP

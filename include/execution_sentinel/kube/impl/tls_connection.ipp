// Bodies of kube/detail/tls_connection.hpp: included by that header when header-only, compiled once by
// <execution_sentinel/src.hpp> under EXECUTION_SENTINEL_SEPARATE_COMPILATION.
#ifndef EXECUTION_SENTINEL_KUBE_IMPL_TLS_CONNECTION_IPP
#define EXECUTION_SENTINEL_KUBE_IMPL_TLS_CONNECTION_IPP

#include <execution_sentinel/kube/detail/tls_connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/x509.h>

#if defined(__linux__) || defined(__APPLE__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#include <algorithm>

namespace execution_sentinel::kube::detail {

EXECUTION_SENTINEL_DECL std::shared_ptr<asio::ssl::context> make_tls_context(const ClusterConfig& config, const Credentials& creds) {
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

EXECUTION_SENTINEL_DECL void apply_keepalive(asio::ip::tcp::socket& socket, const KeepaliveSettings& k) {
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

EXECUTION_SENTINEL_DECL asio::awaitable<asio::ip::tcp::resolver::results_type> resolve(asio::any_io_executor ex, std::string host,
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

EXECUTION_SENTINEL_DECL asio::awaitable<void> connect_tls(TlsStream& stream, std::shared_ptr<std::string> verify_failure,
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
        if (auto alert = client_certificate_alert(hec))
            throw_client_certificate_rejected("TLS handshake with " + where, *alert, config.source);
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

} // namespace execution_sentinel::kube::detail

#endif // EXECUTION_SENTINEL_KUBE_IMPL_TLS_CONNECTION_IPP

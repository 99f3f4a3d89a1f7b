// TLS connections to the API server: the OpenSSL context built from the cluster CA and the client certificate,
// DNS + TCP connect + TLS handshake with their own timeouts, SNI, host-name (and IP SAN) verification, TCP
// keepalive, and the mapping of transport failures to kube::error. Used by client.hpp and exec.hpp.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP

#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/detail/build_mode.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>


#include <chrono>
#include <optional>
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
EXECUTION_SENTINEL_DECL std::shared_ptr<asio::ssl::context> make_tls_context(const ClusterConfig& config,
                                                                         const Credentials& creds);

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
EXECUTION_SENTINEL_DECL void apply_keepalive(asio::ip::tcp::socket& socket, const KeepaliveSettings& k);

/// Resolves host:port within `timeout`. IP literals are not looked up.
EXECUTION_SENTINEL_DECL asio::awaitable<asio::ip::tcp::resolver::results_type>
resolve(asio::any_io_executor ex, std::string host, std::string port, std::chrono::milliseconds timeout);

/// Connects, sets keepalive, sends SNI, verifies the certificate against `verify_name` (host name or IP SAN)
/// unless insecure, and completes the handshake. Throws kube::Error: connect_failed, timeout,
/// tls_verification_failed (fatal), tls_handshake_failed; cancellation as asio::error::operation_aborted.
EXECUTION_SENTINEL_DECL asio::awaitable<void> connect_tls(TlsStream& stream, std::shared_ptr<std::string> verify_failure,
                                                          const ClusterConfig& config, ConnectSettings settings);

/// The TLS alert, when `ec` is one the server sends about the client's certificate (bad, expired or not yet
/// valid, revoked, unknown CA, required but missing, access denied): only the client presents a certificate for
/// the server to judge, so such an alert means the server refused ours. With TLS 1.3 it arrives after the
/// client's side of the handshake, on the first read. nullopt for every other error.
inline std::optional<std::string> client_certificate_alert(const boost::system::error_code& ec) {
    if (ec.category() != asio::error::get_ssl_category()) return std::nullopt;
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return ec.message();
    default:
        return std::nullopt;
    }
}

/// The error for a server that refused the client certificate, naming the alert and what to do.
[[noreturn]] inline void throw_client_certificate_rejected(std::string resource, const std::string& alert,
                                                           std::string_view source) {
    Diagnostics d;
    d.resource = std::move(resource);
    d.client_message = "the API server rejected the client certificate in the TLS handshake (alert: " + alert +
                       "): it is expired, not yet valid, revoked, or not signed by a CA the server trusts; renew "
                       "client-certificate(-data) and client-key(-data)" +
                       (source.empty() ? std::string() : " in " + std::string(source));
    throw Error(make_error_code(error::client_certificate_rejected), std::move(d));
}

/// Maps a read/write failure on an established connection to a kube::Error (cancellation is rethrown as is).
/// The inactivity limit of a long-lived body (watch, log follow): one timer armed for the whole stream and moved
/// at most once per `idle` period, instead of a timer armed around every read (a system call per read). Reads
/// call touch(); when `idle` passes without one, the socket's pending operations are cancelled and fired()
/// becomes true, which the reader turns into error::stream_idle. The socket must outlive the watchdog.
class IdleWatchdog : public std::enable_shared_from_this<IdleWatchdog> {
public:
    using clock = std::chrono::steady_clock;
    IdleWatchdog(const asio::any_io_executor& ex, asio::ip::tcp::socket& socket, std::chrono::milliseconds idle)
        : timer_(ex), socket_(socket), idle_(idle), last_(clock::now()) {}
    IdleWatchdog(const IdleWatchdog&) = delete;
    IdleWatchdog& operator=(const IdleWatchdog&) = delete;

    /// Arms the timer (once; later calls do nothing).
    void start() {
        if (started_) return;
        started_ = true;
        arm(last_ + idle_);
    }
    /// Data arrived (or a read starts): the silence is measured from now.
    void touch() noexcept { last_ = clock::now(); }
    bool fired() const noexcept { return fired_; }
    std::chrono::milliseconds idle() const noexcept { return idle_; }

private:
    void arm(clock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) self->check();
        });
    }
    void check() {
        auto now = clock::now();
        if (now - last_ >= idle_) {
            fired_ = true;
            boost::system::error_code ignored;
            socket_.cancel(ignored);
            return;
        }
        arm(last_ + idle_);
    }

    asio::steady_timer timer_;
    asio::ip::tcp::socket& socket_;
    std::chrono::milliseconds idle_;
    clock::time_point last_;
    bool started_ = false;
    bool fired_ = false;
};

[[noreturn]] inline void throw_transport_error(const boost::system::error_code& ec, std::string resource,
                                               std::string_view what, std::chrono::milliseconds timeout,
                                               error on_timeout = error::timeout) {
    if (is_cancellation(ec)) throw_cancelled();
    if (auto alert = client_certificate_alert(ec)) throw_client_certificate_rejected(std::move(resource), *alert, {});
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

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/impl/tls_connection.ipp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_TLS_CONNECTION_HPP

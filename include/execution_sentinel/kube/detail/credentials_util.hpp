// Small pure helpers shared by the kubeconfig loader and the credential provider: base64, PEM validation
// (OpenSSL), bounded file reading, RFC 3339 timestamps, path handling. None of them ever puts the content of
// what it inspects into a message.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>
#include <execution_sentinel/kube/rfc3339.hpp>
#include <execution_sentinel/detail/text.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace execution_sentinel::kube::detail {

/// Throws kube::Error with `e` and a client message.
[[noreturn]] inline void throw_config_error(error e, std::string message) {
    Diagnostics diag;
    diag.client_message = std::move(message);
    throw Error(make_error_code(e), std::move(diag));
}

/// Largest bearer token accepted (64 KiB is the HTTP field limit of the transport; real tokens are 1-8 KiB).
inline constexpr std::size_t max_bearer_token_bytes = 32 * 1024;

/// Why `value` cannot be sent as (part of) an HTTP header value, or nullopt when it can: a control character
/// (CR and LF would start a header of the sender's choosing), or more than `max_bytes` bytes. `what` names
/// the value in the message ("the token of ...").
inline std::optional<std::string> header_value_problem(std::string_view value, std::string_view what,
                                                       std::size_t max_bytes) {
    if (value.size() > max_bytes)
        return std::string(what) + " is too large (" + std::to_string(value.size()) + " bytes; at most " +
               std::to_string(max_bytes) + " are accepted)";
    for (std::size_t i = 0; i < value.size(); ++i) {
        auto c = static_cast<unsigned char>(value[i]);
        if (c < 0x20 || c == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            std::string code = "0x";
            code += hex[c >> 4];
            code += hex[c & 15];
            return std::string(what) + " holds a control character (" + code + " at byte " + std::to_string(i) +
                   "), which cannot be sent in an HTTP header";
        }
    }
    return std::nullopt;
}

using ::execution_sentinel::detail::trim; // the library's one trim (detail/text.hpp)

/// Decodes standard base64 (RFC 4648, padding optional, line breaks and spaces ignored). nullopt when invalid.
inline std::optional<std::string> base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t symbols = 0, padding = 0;
    for (char c : in) {
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
        if (c == '=') {
            ++padding;
            continue;
        }
        if (padding != 0) return std::nullopt; // data after padding
        int v = value(c);
        if (v < 0) return std::nullopt;
        ++symbols;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
        }
    }
    if (symbols % 4 == 1) return std::nullopt;
    if (padding != 0 && (symbols + padding) % 4 != 0) return std::nullopt;
    if (padding > 2) return std::nullopt;
    if (bits > 0 && (acc & ((1u << bits) - 1u)) != 0) return std::nullopt; // non-canonical trailing bits
    return out;
}

inline std::string base64_encode(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        std::uint32_t n = (std::uint32_t(std::uint8_t(in[i])) << 16) | (std::uint32_t(std::uint8_t(in[i + 1])) << 8) |
                          std::uint32_t(std::uint8_t(in[i + 2]));
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i < in.size()) {
        std::uint32_t n = std::uint32_t(std::uint8_t(in[i])) << 16;
        if (i + 1 < in.size()) n |= std::uint32_t(std::uint8_t(in[i + 1])) << 8;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += i + 1 < in.size() ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

struct BioDeleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Deleter {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

inline std::unique_ptr<BIO, BioDeleter> memory_bio(std::string_view data) {
    return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

/// Never prompts for a passphrase (OpenSSL would read the terminal otherwise).
inline int no_passphrase(char*, int, int, void*) { return -1; }

/// Number of X.509 certificates in a PEM bundle; 0 when there is none or one does not parse.
inline std::size_t count_pem_certificates(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(INT32_MAX)) return 0;
    auto bio = memory_bio(pem);
    if (!bio) return 0;
    std::size_t count = 0;
    for (;;) {
        std::unique_ptr<X509, X509Deleter> cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
        if (!cert) break;
        ++count;
    }
    unsigned long err = ERR_peek_last_error();
    // Reading past the last certificate ends with "no start line": that is the normal end of the bundle.
    bool clean_end = err == 0 || ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return clean_end ? count : 0;
}

/// Parses a PEM private key; nullptr when it does not parse (garbage, truncated, or encrypted).
inline std::unique_ptr<EVP_PKEY, PkeyDeleter> parse_private_key(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(INT32_MAX)) return nullptr;
    auto bio = memory_bio(pem);
    if (!bio) return nullptr;
    std::unique_ptr<EVP_PKEY, PkeyDeleter> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    ERR_clear_error();
    return key;
}

/// Checks a client certificate and key pair. Returns an explanation (never the content) or nullopt when valid.
inline std::optional<std::string> check_client_certificate(std::string_view cert_pem, std::string_view key_pem) {
    if (count_pem_certificates(cert_pem) == 0) return "the client certificate is not a valid PEM certificate";
    auto key = parse_private_key(key_pem);
    if (!key) return "the client key is not a valid unencrypted PEM private key";
    auto bio = memory_bio(cert_pem);
    std::unique_ptr<X509, X509Deleter> cert(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
    bool matches = cert && X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    if (!matches) return "the client key does not belong to the client certificate";
    return std::nullopt;
}

/// Reads a whole file of at most `limit` bytes. On failure returns nullopt and sets `why` (no content).
inline std::optional<std::string> read_file(const std::string& path, std::size_t limit, std::string& why) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        why = std::strerror(errno);
        return std::nullopt;
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd);
        why = "it is a directory";
        return std::nullopt;
    }
    std::string out;
    char buffer[8192];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            why = std::strerror(errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        if (out.size() + static_cast<std::size_t>(n) > limit) {
            ::close(fd);
            why = "it is larger than " + std::to_string(limit) + " bytes";
            return std::nullopt;
        }
        out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

inline bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

/// The directory part of a path ("" when it has none).
inline std::string directory_of(std::string_view path) {
    auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return {};
    if (slash == 0) return "/";
    return std::string(path.substr(0, slash));
}

/// `path` resolved against `base_dir` unless it is absolute (or base_dir is empty).
inline std::string resolve_path(std::string_view base_dir, std::string_view path) {
    if (path.empty() || path.front() == '/' || base_dir.empty()) return std::string(path);
    std::string out(base_dir);
    if (out.back() != '/') out += '/';
    out += path;
    return out;
}

// RFC 3339: the library's one parser and formatter (kube/rfc3339.hpp).
using ::execution_sentinel::kube::format_rfc3339;
using ::execution_sentinel::kube::parse_rfc3339;

} // namespace execution_sentinel::kube::detail

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP

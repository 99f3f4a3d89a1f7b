// Small pure helpers shared by the kubeconfig loader and the credential provider: base64, PEM validation
// (OpenSSL), bounded file reading, RFC 3339 timestamps, path handling. None of them ever puts the content of
// what it inspects into a message.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>

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

inline std::string_view trim(std::string_view s) noexcept {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

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

/// Parses an RFC 3339 timestamp ("2026-11-23T06:00:00Z", fractions and numeric offsets allowed).
inline std::optional<Timestamp> parse_rfc3339(std::string_view s) {
    std::size_t i = 0;
    auto digits = [&](std::size_t n, int& out) {
        if (i + n > s.size()) return false;
        int v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            char c = s[i + k];
            if (c < '0' || c > '9') return false;
            v = v * 10 + (c - '0');
        }
        out = v;
        i += n;
        return true;
    };
    auto expect = [&](auto pred) {
        if (i >= s.size() || !pred(s[i])) return false;
        ++i;
        return true;
    };
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(4, year) || !expect([](char c) { return c == '-'; }) || !digits(2, month) ||
        !expect([](char c) { return c == '-'; }) || !digits(2, day) ||
        !expect([](char c) { return c == 'T' || c == 't' || c == ' '; }) || !digits(2, hour) ||
        !expect([](char c) { return c == ':'; }) || !digits(2, minute) || !expect([](char c) { return c == ':'; }) ||
        !digits(2, second))
        return std::nullopt;
    std::chrono::nanoseconds fraction{0};
    if (i < s.size() && s[i] == '.') {
        ++i;
        std::int64_t scale = 100000000, ns = 0;
        std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            ns += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == start) return std::nullopt;
        fraction = std::chrono::nanoseconds(ns);
    }
    int offset_minutes = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        ++i;
        int oh = 0, om = 0;
        if (!digits(2, oh) || !expect([](char c) { return c == ':'; }) || !digits(2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    using namespace std::chrono;
    year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                       std::chrono::day(static_cast<unsigned>(day))};
    if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (year < 1678 || year > 2261) return std::nullopt; // outside what a nanosecond time point holds
    auto tp = sys_days(ymd) + hours(hour) + minutes(minute) + seconds(second) - minutes(offset_minutes);
    return time_point_cast<Clock::duration>(tp + duration_cast<Clock::duration>(fraction));
}

/// "2026-11-23T06:00:00Z" (whole seconds, UTC).
inline std::string format_rfc3339(Timestamp t) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    auto days = floor<std::chrono::days>(secs);
    year_month_day ymd{days};
    hh_mm_ss hms{secs - days};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

} // namespace execution_sentinel::kube::detail

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_UTIL_HPP

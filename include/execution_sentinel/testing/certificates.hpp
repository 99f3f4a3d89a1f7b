// Test certificates for the simulated cluster: a self-signed CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate for the user "fake-client", all generated in memory with OpenSSL 3
// and returned as PEM text.
#ifndef EXECUTION_SENTINEL_TESTING_CERTIFICATES_HPP
#define EXECUTION_SENTINEL_TESTING_CERTIFICATES_HPP

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace execution_sentinel::testing {

/// PEM texts of one generated certificate set. Keys are unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
struct CertificateBundle {
    std::string ca_certificate_pem;     ///< self-signed CA "execution-sentinel fake cluster CA"
    std::string ca_key_pem;
    std::string server_certificate_pem; ///< CN "fake-apiserver", SAN IP:127.0.0.1, IP:::1, DNS:localhost
    std::string server_key_pem;
    std::string client_certificate_pem; ///< CN "fake-client", O "system:masters", extendedKeyUsage clientAuth
    std::string client_key_pem;
};

/// Options of `generate_certificates`.
struct CertificateOptions {
    std::string client_common_name = "fake-client"; ///< the user name the client certificate authenticates
    long validity_days = 365;                        ///< certificates are valid from one hour ago for this many days
};

/// Generates a fresh CA (ECDSA P-256) and signs a server and a client certificate with it.
/// Throws std::runtime_error with OpenSSL's reason when a step fails.
inline CertificateBundle generate_certificates(const CertificateOptions& options = {});

// ------------------------------------------------------------------------------------------------ details

namespace detail {

struct EvpKeyDeleter { void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); } };
struct X509Deleter { void operator()(X509* p) const noexcept { X509_free(p); } };
struct BioDeleter { void operator()(BIO* p) const noexcept { BIO_free(p); } };
struct X509ExtDeleter { void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); } };
using EvpKeyPtr = std::unique_ptr<EVP_PKEY, EvpKeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

[[noreturn]] inline void throw_openssl(const char* what) {
    throw std::runtime_error(std::string("certificate generation failed: ") + what);
}

inline EvpKeyPtr generate_ec_key() {
    EvpKeyPtr key(EVP_EC_gen("P-256"));
    if (!key) throw_openssl("EVP_EC_gen");
    return key;
}

inline std::string bio_to_string(BIO* bio) {
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    if (length <= 0 || data == nullptr) return {};
    return std::string(data, static_cast<std::size_t>(length));
}

inline std::string key_to_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw_openssl("PEM_write_bio_PrivateKey");
    return bio_to_string(bio.get());
}

inline std::string certificate_to_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw_openssl("PEM_write_bio_X509");
    return bio_to_string(bio.get());
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, X509ExtDeleter> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) throw_openssl("X509_add_ext");
}

inline void set_name(X509_NAME* name, const std::vector<std::pair<const char*, std::string>>& entries) {
    for (const auto& [field, value] : entries) {
        if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1)
            throw_openssl("X509_NAME_add_entry_by_txt");
    }
}

/// Builds a certificate for `key`, signed by `issuer_key` (self-signed when `issuer` is null).
inline X509Ptr make_certificate(EVP_PKEY* key, const std::vector<std::pair<const char*, std::string>>& subject,
                                X509* issuer, EVP_PKEY* issuer_key, long validity_days,
                                const std::vector<std::pair<int, const char*>>& extensions) {
    X509Ptr cert(X509_new());
    if (!cert) throw_openssl("X509_new");
    if (X509_set_version(cert.get(), 2) != 1) throw_openssl("X509_set_version");
    unsigned char serial_bytes[16];
    if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) throw_openssl("RAND_bytes");
    serial_bytes[0] &= 0x7f;
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr), &BN_free);
    if (!serial || BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr)
        throw_openssl("serial number");
    if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * validity_days) == nullptr)
        throw_openssl("validity");
    if (X509_set_pubkey(cert.get(), key) != 1) throw_openssl("X509_set_pubkey");
    set_name(X509_get_subject_name(cert.get()), subject);
    X509* const signer = issuer != nullptr ? issuer : cert.get();
    if (X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) != 1) throw_openssl("X509_set_issuer_name");
    for (const auto& [nid, value] : extensions) add_extension(cert.get(), signer, nid, value);
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) throw_openssl("X509_sign");
    return cert;
}

} // namespace detail

inline CertificateBundle generate_certificates(const CertificateOptions& options) {
    using namespace detail;
    CertificateBundle out;
    const EvpKeyPtr ca_key = generate_ec_key();
    const X509Ptr ca = make_certificate(ca_key.get(), {{"O", "execution-sentinel"}, {"CN", "execution-sentinel fake cluster CA"}},
                                        nullptr, ca_key.get(), options.validity_days,
                                        {{NID_basic_constraints, "critical,CA:TRUE"},
                                         {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                                         {NID_subject_key_identifier, "hash"}});
    const EvpKeyPtr server_key = generate_ec_key();
    const X509Ptr server = make_certificate(server_key.get(), {{"CN", "fake-apiserver"}}, ca.get(), ca_key.get(),
                                            options.validity_days,
                                            {{NID_basic_constraints, "critical,CA:FALSE"},
                                             {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                                             {NID_ext_key_usage, "serverAuth"},
                                             {NID_subject_key_identifier, "hash"},
                                             {NID_authority_key_identifier, "keyid:always"},
                                             {NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost"}});
    const EvpKeyPtr client_key = generate_ec_key();
    const X509Ptr client = make_certificate(client_key.get(), {{"O", "system:masters"}, {"CN", options.client_common_name}},
                                            ca.get(), ca_key.get(), options.validity_days,
                                            {{NID_basic_constraints, "critical,CA:FALSE"},
                                             {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                                             {NID_ext_key_usage, "clientAuth"},
                                             {NID_subject_key_identifier, "hash"},
                                             {NID_authority_key_identifier, "keyid:always"}});
    out.ca_certificate_pem = certificate_to_pem(ca.get());
    out.ca_key_pem = key_to_pem(ca_key.get());
    out.server_certificate_pem = certificate_to_pem(server.get());
    out.server_key_pem = key_to_pem(server_key.get());
    out.client_certificate_pem = certificate_to_pem(client.get());
    out.client_key_pem = key_to_pem(client_key.get());
    return out;
}

} // namespace execution_sentinel::testing

#endif // EXECUTION_SENTINEL_TESTING_CERTIFICATES_HPP

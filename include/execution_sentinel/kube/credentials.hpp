// Credentials for the Kubernetes API server and the provider that keeps them fresh: a static token or client
// certificate, a token file re-read periodically (service-account token rotation), or an exec credential plugin
// (client.authentication.k8s.io/v1 and v1beta1 ExecCredential, how EKS, GKE and AKS users log in).
// See docs/authentication.md. Secrets held here never appear in an error message, a log line or describe().
#ifndef EXECUTION_SENTINEL_KUBE_CREDENTIALS_HPP
#define EXECUTION_SENTINEL_KUBE_CREDENTIALS_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/detail/build_mode.hpp>
#include <execution_sentinel/kube/objects.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

/// What the client presents to the API server. Copies are cheap enough to take per request.
struct Credentials {
    std::string bearer_token{};           ///< "Authorization: Bearer …"; empty = none
    std::string client_certificate_pem{}; ///< TLS client certificate chain (PEM); set together with the key or not at all
    std::string client_key_pem{};         ///< TLS client private key (PEM)
    std::optional<Timestamp> expiry{};    ///< when an exec plugin said the credential expires; nullopt = unknown/never
    std::uint64_t generation = 0;       ///< increases whenever the credentials change; 0 = never obtained

    bool empty() const noexcept { return bearer_token.empty() && client_certificate_pem.empty(); }
};

/// How an exec credential plugin is run: the kubeconfig `user.exec` block, with relative paths already resolved.
struct ExecPluginConfig {
    enum class InteractiveMode { never, if_available, always };

    std::string command{};            ///< program; searched in PATH unless it contains '/'
    std::vector<std::string> args{};  ///< arguments (no shell is involved)
    std::vector<std::pair<std::string, std::string>> env{}; ///< added to the host environment, overriding same names
    std::string api_version{};        ///< "client.authentication.k8s.io/v1" or "client.authentication.k8s.io/v1beta1"
    std::string install_hint{};       ///< shown when the command cannot be found
    bool provide_cluster_info = false;
    std::string cluster_info_json{};  ///< the `spec.cluster` JSON object passed when provide_cluster_info
    InteractiveMode interactive_mode = InteractiveMode::if_available; ///< stdin is never a terminal here: always is refused
};

/// Tuning and test seams of a CredentialProvider.
struct CredentialProviderOptions {
    /// A token file is re-read at most this often (and after invalidate()). Default 60 s (client-go, kube-rs).
    std::chrono::milliseconds token_file_refresh_interval{std::chrono::seconds(60)};
    /// An exec credential is refreshed this long before its expirationTimestamp. Default 10 s.
    std::chrono::milliseconds exec_refresh_before_expiry{std::chrono::seconds(10)};
    /// An exec plugin running longer than this is killed (with its process group). Default 60 s.
    std::chrono::milliseconds exec_timeout{std::chrono::seconds(60)};
    /// Largest stdout an exec plugin may print, in bytes. Default 1 MiB.
    std::size_t exec_max_output = std::size_t{1} << 20;
    /// The clock used for token-file refresh and credential expiry; empty = std::chrono::system_clock::now.
    std::function<Timestamp()> now{};
    /// "NAME=value" entries an exec plugin inherits; nullopt = this process's environment.
    std::optional<std::vector<std::string>> host_environment{};
};

/// Where credentials come from. Any combination may be set; the rules (docs/authentication.md):
/// `token_file` wins over `token` (the last good value read from the file is kept when a re-read fails; the
/// static token is used only while the file has never been read successfully); an exec plugin's token replaces
/// both, and its client certificate replaces the static one; a static client certificate is kept when the plugin
/// returns only a token.
struct CredentialSource {
    std::string token{};                  ///< static bearer token
    std::string token_file{};             ///< path of a file holding the bearer token (trimmed)
    std::string client_certificate_pem{}; ///< static client certificate (PEM); set together with the key
    std::string client_key_pem{};         ///< static client key (PEM)
    std::optional<ExecPluginConfig> exec{};
    /// Where this came from, for describe() and error messages, e.g. `kubeconfig /home/u/.kube/config, user "admin"`.
    std::string origin{};
};

/// Supplies credentials to the client. Thread-safe; shared by every connection of a client.
///
/// current() returns the cached credentials and refreshes them when needed: a token file is re-read at most once
/// per `token_file_refresh_interval`; an exec plugin is re-run `exec_refresh_before_expiry` before its credential's
/// expirationTimestamp. After the API server answers 401, the client calls invalidate() with the generation it
/// used: the next current() refreshes once for that generation (re-runs the plugin, re-reads the token file).
class CredentialProvider {
public:
    /// Validates the source and reads the token file once. Throws kube::Error: config_invalid (certificate without
    /// key, bad PEM, interactive-only exec plugin), credentials_unavailable (token file unreadable and no token).
    /// An exec plugin is not run here but by the first current().
    explicit CredentialProvider(CredentialSource source, CredentialProviderOptions options = {});

    static std::shared_ptr<CredentialProvider> create(CredentialSource source, CredentialProviderOptions options = {}) {
        return std::make_shared<CredentialProvider>(std::move(source), std::move(options));
    }
    /// No credentials at all (anonymous requests).
    static std::shared_ptr<CredentialProvider> none() {
        CredentialSource source;
        source.origin = "no credentials";
        return create(std::move(source));
    }
    static std::shared_ptr<CredentialProvider> from_token(std::string token, std::string origin = "static token") {
        CredentialSource source;
        source.token = std::move(token);
        source.origin = std::move(origin);
        return create(std::move(source));
    }
    static std::shared_ptr<CredentialProvider> from_token_file(std::string path, CredentialProviderOptions options = {}) {
        CredentialSource source;
        source.token_file = std::move(path);
        return create(std::move(source), std::move(options));
    }

    CredentialProvider(const CredentialProvider&) = delete;
    CredentialProvider& operator=(const CredentialProvider&) = delete;

    /// The credentials to use now. May block while an exec plugin runs (bounded by exec_timeout). Throws
    /// kube::Error(credentials_unavailable) when an exec plugin fails and no unexpired credential is cached;
    /// a failing token-file re-read keeps the last good token and does not throw.
    Credentials current();

    /// The API server rejected credentials of `generation` (401): the next current() refreshes. Has no effect for
    /// a generation that is not the current one, or when it was already invalidated once.
    void invalidate(std::uint64_t generation);

    /// What the credentials are, never the secret: "token file /var/run/…/token", "exec plugin aws (…)".
    std::string describe() const { return description_; }

    /// True when some credential is configured (false for anonymous access).
    bool has_credentials() const noexcept {
        return !source_.token.empty() || !source_.token_file.empty() || !source_.client_certificate_pem.empty() ||
               source_.exec.has_value();
    }
    bool uses_exec_plugin() const noexcept { return source_.exec.has_value(); }

    /// True when the next current() would run the exec plugin (none cached, a refresh asked for, or the cached
    /// credential near its expiry): a call that may block for up to `exec_timeout`. The client then calls
    /// current() on a thread of its own, never on the caller's executor.
    bool refresh_would_block() const;
    const CredentialSource& source() const noexcept { return source_; }

private:
    Timestamp now() const { return options_.now ? options_.now() : Clock::now(); }
    bool read_token_file(Timestamp now); // true when the token changed
    void run_exec_plugin(Timestamp now);
    void publish(Credentials next);

    CredentialSource source_;
    CredentialProviderOptions options_;
    std::string description_;

    mutable std::mutex mutex_;
    Credentials current_;
    std::string file_token_;                    // last good token read from token_file
    std::optional<Timestamp> token_file_read_at_;
    std::optional<Credentials> exec_result_;    // last credential returned by the plugin
    bool refresh_requested_ = false;
    std::uint64_t invalidated_generation_ = 0;
};

} // namespace execution_sentinel::kube

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/detail/credentials_impl.hpp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_CREDENTIALS_HPP

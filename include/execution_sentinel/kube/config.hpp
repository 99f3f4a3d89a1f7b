// Where the API server is and how to authenticate to it: kubeconfig files (merged the way kubectl merges
// KUBECONFIG), the in-cluster service account, or whichever of them is present. See docs/configuration.md.
#ifndef EXECUTION_SENTINEL_KUBE_CONFIG_HPP
#define EXECUTION_SENTINEL_KUBE_CONFIG_HPP

#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/detail/build_mode.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace execution_sentinel::kube {

/// Everything the transport needs to reach and authenticate to one API server.
struct ClusterConfig {
    std::string server{};    ///< as written, e.g. "https://10.0.0.1:6443/prefix"
    std::string host{};      ///< "10.0.0.1", a DNS name, or an IPv6 address without brackets
    std::string port{};      ///< "6443"; "443" when the URL has none
    std::string base_path{}; ///< "" or "/prefix" (no trailing slash), prepended to every API path
    std::string ca_pem{};    ///< cluster CA bundle (PEM); empty => the system trust store
    /// Set only when the configuration says `insecure-skip-tls-verify: true` explicitly. The client must log one
    /// loud warning when it is set; nothing here logs.
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name{}; ///< SNI and certificate verification name; empty => host
    std::string namespace_{};      ///< the context's namespace or the pod's namespace; empty if unset
    std::shared_ptr<CredentialProvider> credentials{}; ///< never null after loading (may hold no credentials)
    std::string source{}; ///< `kubeconfig /home/u/.kube/config, context "prod"` or "in-cluster"

    /// The name the server certificate is verified against and sent as SNI.
    const std::string& verify_name() const noexcept { return tls_server_name.empty() ? host : tls_server_name; }
};

/// Where the loaders look, overridable so that tests never depend on the machine they run on.
struct ConfigEnvironment {
    /// Environment lookup (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT, POD_NAMESPACE); empty = ::getenv.
    std::function<std::optional<std::string>(const std::string&)> getenv{};
    /// Directory holding the service account's token, ca.crt and namespace.
    std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    /// Options of the CredentialProvider the loaders create (refresh intervals, exec timeout, clock).
    CredentialProviderOptions credentials{};

    /// An environment made of exactly these variables. Exec plugins inherit the same variables.
    static ConfigEnvironment from_map(const std::map<std::string, std::string>& vars);

    std::optional<std::string> get(const std::string& name) const;
};

struct KubeconfigOptions {
    std::string path{};    ///< explicit file (wins over KUBECONFIG); empty = KUBECONFIG or ~/.kube/config
    std::string context{}; ///< empty = the merged current-context
    ConfigEnvironment environment{}; ///< process environment by default
};

/// Loads kubeconfig files: `path`, else every file of KUBECONFIG (':'-separated, duplicates and empty entries
/// ignored, missing files skipped; the first file to set a value or map key wins), else ~/.kube/config.
/// Throws kube::Error with error::config_invalid (missing/unparsable file, unknown context, bad field) or
/// error::credentials_unavailable (token file unreadable); the diagnostics' client_message names the file,
/// the field and what to do.
EXECUTION_SENTINEL_DECL ClusterConfig load_kubeconfig(const KubeconfigOptions& options = {});

/// Loads kubeconfig YAML held in memory. `origin` names it in errors and `source`; relative paths resolve
/// against the directory part of `origin` (the current directory when it has none).
EXECUTION_SENTINEL_DECL ClusterConfig load_kubeconfig_from_string(std::string_view yaml, std::string_view origin,
                                          const KubeconfigOptions& options = {});

/// The pod's service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, CA from ca.crt, token
/// from the token file (re-read, so rotation works), namespace from POD_NAMESPACE, the namespace file, or
/// "default". Throws kube::Error(config_invalid or credentials_unavailable).
EXECUTION_SENTINEL_DECL ClusterConfig load_in_cluster(const ConfigEnvironment& environment = {});

/// The first configuration present: explicit path > KUBECONFIG > ~/.kube/config > in-cluster. When none is
/// present, the error lists what was tried.
EXECUTION_SENTINEL_DECL ClusterConfig load_default(const KubeconfigOptions& options = {});

} // namespace execution_sentinel::kube

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/detail/config_impl.hpp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_CONFIG_HPP

// Implementation of kube/config.hpp: kubeconfig parsing and merging (yaml-cpp), in-cluster loading.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_CONFIG_IMPL_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_CONFIG_IMPL_HPP

#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/detail/credentials_util.hpp>
#include <execution_sentinel/kube/detail/exec_plugin.hpp>

#include <boost/json.hpp>
#include <execution_sentinel/detail/bounded_yaml.hpp>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace execution_sentinel::kube {

#if EXECUTION_SENTINEL_COMPILE_BODIES
EXECUTION_SENTINEL_DECL ConfigEnvironment ConfigEnvironment::from_map(const std::map<std::string, std::string>& vars) {
    ConfigEnvironment env;
    env.getenv = [vars](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
    std::vector<std::string> host;
    for (auto& [k, v] : vars) host.push_back(k + "=" + v);
    env.credentials.host_environment = std::move(host);
    return env;
}

EXECUTION_SENTINEL_DECL std::optional<std::string> ConfigEnvironment::get(const std::string& name) const {
    if (getenv) return getenv(name);
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
}
#endif

namespace detail {

inline constexpr std::size_t max_kubeconfig_size = 16 * 1024 * 1024;
inline constexpr std::size_t max_pem_file_size = 4 * 1024 * 1024;

inline std::string config_quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

/// One named cluster/user/context with the file it came from.
struct KubeconfigEntry {
    std::string name;
    YAML::Node body; ///< the `cluster`/`user`/`context` map (may be null)
    std::string file;
    std::string dir; ///< relative paths resolve against this
};

/// Several kubeconfig files merged: the first file to set a value or a map key wins.
struct MergedKubeconfig {
    std::vector<std::string> files;
    std::map<std::string, KubeconfigEntry> clusters, users, contexts;
    std::string current_context;
    std::string current_context_file;
};

inline std::string at_line(const std::string& file, const YAML::Node& node) {
    auto mark = node.Mark();
    if (mark.line < 0) return file;
    return file + " line " + std::to_string(mark.line + 1);
}

/// Reads the string field `key` of map `node`; nullopt when absent or null. Throws when it is not a scalar.
inline std::optional<std::string> yaml_string(const YAML::Node& node, const char* key, const std::string& file,
                                              const std::string& what) {
    if (!node || !node.IsMap()) return std::nullopt;
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return std::nullopt;
    if (!v.IsScalar())
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, v) + ": " + what + " field " + key +
                                                      " must be a string; fix the file");
    return v.Scalar();
}

inline std::optional<bool> yaml_bool(const YAML::Node& node, const char* key, const std::string& file,
                                     const std::string& what) {
    if (!node || !node.IsMap()) return std::nullopt;
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return std::nullopt;
    bool out = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out))
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, v) + ": " + what + " field " + key +
                                                      " must be true or false; fix the file");
    return out;
}

/// Adds the named entries of one list (clusters, users, contexts) of one file; later duplicates in the same file
/// replace earlier ones (as kubectl reads a single file), entries of earlier files are never replaced.
inline void merge_named_list(const YAML::Node& root, const char* list, const char* body_key, const std::string& file,
                             std::map<std::string, KubeconfigEntry>& into) {
    YAML::Node seq = root[list];
    if (!seq || seq.IsNull()) return;
    if (!seq.IsSequence())
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, seq) + ": " + list +
                                                      " must be a list of {name, " + body_key + "} entries; fix the file");
    std::map<std::string, KubeconfigEntry> local;
    for (const auto& item : seq) {
        if (!item.IsMap())
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, item) + ": an entry of " + list +
                                                          " is not a map with name and " + body_key + "; fix the file");
        auto name = yaml_string(item, "name", file, std::string("an entry of ") + list + ":");
        if (!name || name->empty())
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, item) + ": an entry of " + list +
                                                          " has no name; fix the file");
        YAML::Node body = item[body_key];
        if (body && !body.IsNull() && !body.IsMap())
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, body) + ": " + body_key + " of " +
                                                          config_quoted(*name) + " must be a map; fix the file");
        local[*name] = KubeconfigEntry{*name, body, file, directory_of(file)};
    }
    for (auto& [name, entry] : local) into.emplace(name, std::move(entry));
}

/// Parses one kubeconfig document and merges it into `merged` (entries already present win).
inline void merge_kubeconfig(MergedKubeconfig& merged, std::string_view yaml, const std::string& file) {
    YAML::Node root;
    {
        ::execution_sentinel::detail::YamlProblem problem;
        auto loaded = ::execution_sentinel::detail::load_bounded_yaml(yaml, problem);
        if (!loaded) {
            std::string where = problem.line == 0 ? file
                                                  : file + " line " + std::to_string(problem.line) + " column " +
                                                        std::to_string(problem.column);
            throw_config_error(error::config_invalid, "kubeconfig " + where + ": " + problem.message + "; fix the file");
        }
        root = std::move(*loaded);
    }
    merged.files.push_back(file);
    if (!root || root.IsNull()) return; // an empty file is an empty configuration
    if (!root.IsMap())
        throw_config_error(error::config_invalid,
                           "kubeconfig " + file + ": the document is not a map with clusters, users and contexts; "
                                                  "check that the file is a kubeconfig");
    try {
        merge_named_list(root, "clusters", "cluster", file, merged.clusters);
        merge_named_list(root, "users", "user", file, merged.users);
        merge_named_list(root, "contexts", "context", file, merged.contexts);
        auto current = yaml_string(root, "current-context", file, "the");
        if (merged.current_context.empty() && current && !current->empty()) {
            merged.current_context = *current;
            merged.current_context_file = file;
        }
    } catch (const YAML::Exception& e) {
        throw_config_error(error::config_invalid, "kubeconfig " + file + " line " + std::to_string(e.mark.line + 1) +
                                                      ": unexpected structure (" + e.msg + "); fix the file");
    }
}

/// The parts of a server URL.
struct ServerUrl {
    std::string host, port, base_path;
};

/// The URL with any user information (user:password@) replaced by "***@", for messages.
inline std::string redact_url(std::string_view url) {
    auto scheme = url.find("://");
    auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
    auto end = url.find_first_of("/?#", start);
    auto at = url.substr(0, end).rfind('@');
    if (at == std::string_view::npos || at < start) return std::string(url);
    return std::string(url.substr(0, start)) + "***" + std::string(url.substr(at));
}

inline ServerUrl parse_server_url(std::string_view server, const std::string& where) {
    auto bad = [&](const std::string& why) -> ServerUrl {
        throw_config_error(error::config_invalid, where + ": server " + config_quoted(redact_url(server)) + " " + why);
    };
    auto lower_prefix = [&](std::string_view prefix) {
        if (server.size() < prefix.size()) return false;
        for (std::size_t i = 0; i < prefix.size(); ++i)
            if (std::tolower(static_cast<unsigned char>(server[i])) != prefix[i]) return false;
        return true;
    };
    if (lower_prefix("http://")) return bad("uses plain http; only https is supported, use an https:// URL");
    if (!lower_prefix("https://")) return bad("is not an https:// URL; write it as https://host:port");
    std::string_view rest = server.substr(8);
    auto end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view path = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    if (path.find_first_of("?#") != std::string_view::npos)
        return bad("has a query or fragment; remove it");
    if (authority.find('@') != std::string_view::npos)
        return bad("contains user information (user@host); remove it and use the users section");
    ServerUrl url;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return bad("has an unterminated IPv6 address");
        url.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return bad("has garbage after the IPv6 address");
            port = after.substr(1);
            if (port.empty()) return bad("has an empty port");
        }
    } else {
        auto colon = authority.find(':');
        url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) return bad("has an empty port");
        }
    }
    if (url.host.empty()) return bad("has no host");
    for (char c : url.host)
        if (static_cast<unsigned char>(c) <= 0x20 || c == '%' || c == '\\') return bad("has an invalid host");
    if (!port.empty()) {
        if (port.size() > 5) return bad("has an invalid port");
        int value = 0;
        for (char c : port) {
            if (c < '0' || c > '9') return bad("has an invalid port");
            value = value * 10 + (c - '0');
        }
        if (value < 1 || value > 65535) return bad("has a port outside 1-65535");
        url.port = std::string(port);
    } else {
        url.port = "443";
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    url.base_path = std::string(path);
    return url;
}

/// Bytes of a `X-data` field (base64) or of the file named by `X` (relative to the entry's file).
/// `data_key` wins over `path_key`. Returns "" when neither is set.
inline std::string data_or_file(const KubeconfigEntry& entry, const char* data_key, const char* path_key,
                                const std::string& what) {
    const std::string& file = entry.file;
    if (auto data = yaml_string(entry.body, data_key, file, what); data && !data->empty()) {
        auto decoded = base64_decode(*data);
        if (!decoded)
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, entry.body[data_key]) + ": " +
                                                          what + " field " + data_key +
                                                          " is not valid base64; paste the base64-encoded PEM again");
        return *decoded;
    }
    if (auto path = yaml_string(entry.body, path_key, file, what); path && !path->empty()) {
        std::string resolved = resolve_path(entry.dir, *path);
        std::string why;
        auto content = read_file(resolved, max_pem_file_size, why);
        if (!content)
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, entry.body[path_key]) + ": " +
                                                          what + " field " + path_key + ": cannot read " + resolved +
                                                          " (" + why + "); check the path and its permissions");
        return *content;
    }
    return {};
}

inline ExecPluginConfig parse_exec(const KubeconfigEntry& user, const YAML::Node& exec, const std::string& what) {
    const std::string& file = user.file;
    const std::string ewhat = what + " exec";
    if (!exec.IsMap())
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, exec) + ": " + what +
                                                      " field exec must be a map; fix the file");
    ExecPluginConfig out;
    auto command = yaml_string(exec, "command", file, ewhat);
    if (!command || command->empty())
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, exec) + ": " + what +
                                                      " exec has no command; set exec.command");
    out.command = command->find('/') != std::string::npos ? resolve_path(user.dir, *command) : *command;
    out.api_version = yaml_string(exec, "apiVersion", file, ewhat).value_or("");
    if (out.api_version != exec_api_v1 && out.api_version != exec_api_v1beta1)
        throw_config_error(error::config_invalid,
                           "kubeconfig " + at_line(file, exec) + ": " + what + " exec.apiVersion " +
                               config_quoted(out.api_version) +
                               " is not supported; use client.authentication.k8s.io/v1 or "
                               "client.authentication.k8s.io/v1beta1");
    if (YAML::Node args = exec["args"]; args && !args.IsNull()) {
        if (!args.IsSequence())
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, args) + ": " + what +
                                                          " exec.args must be a list of strings; fix the file");
        for (const auto& a : args) {
            if (!a.IsScalar())
                throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, a) + ": " + what +
                                                              " exec.args entries must be strings; fix the file");
            out.args.push_back(a.Scalar());
        }
    }
    if (YAML::Node env = exec["env"]; env && !env.IsNull()) {
        if (!env.IsSequence())
            throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, env) + ": " + what +
                                                          " exec.env must be a list of {name, value}; fix the file");
        for (const auto& e : env) {
            auto name = e.IsMap() ? yaml_string(e, "name", file, ewhat + ".env") : std::nullopt;
            if (!name || name->empty() || name->find('=') != std::string::npos)
                throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, e) + ": " + what +
                                                              " exec.env entry needs a name (without '='); fix the file");
            out.env.emplace_back(*name, yaml_string(e, "value", file, ewhat + ".env").value_or(""));
        }
    }
    out.install_hint = yaml_string(exec, "installHint", file, ewhat).value_or("");
    out.provide_cluster_info = yaml_bool(exec, "provideClusterInfo", file, ewhat).value_or(false);
    auto mode = yaml_string(exec, "interactiveMode", file, ewhat);
    if (!mode || mode->empty()) {
        if (out.api_version == exec_api_v1)
            throw_config_error(error::config_invalid,
                               "kubeconfig " + at_line(file, exec) + ": " + what +
                                   " exec.interactiveMode is required with client.authentication.k8s.io/v1; set it "
                                   "to Never or IfAvailable");
        out.interactive_mode = ExecPluginConfig::InteractiveMode::if_available;
    } else if (*mode == "Never") {
        out.interactive_mode = ExecPluginConfig::InteractiveMode::never;
    } else if (*mode == "IfAvailable") {
        out.interactive_mode = ExecPluginConfig::InteractiveMode::if_available;
    } else if (*mode == "Always") {
        throw_config_error(error::config_invalid,
                           "kubeconfig " + at_line(file, exec["interactiveMode"]) + ": " + what +
                               " exec.interactiveMode is Always, but this program runs plugins without a terminal; "
                               "log in beforehand and use Never or IfAvailable");
    } else {
        throw_config_error(error::config_invalid, "kubeconfig " + at_line(file, exec["interactiveMode"]) + ": " +
                                                      what + " exec.interactiveMode " + config_quoted(*mode) +
                                                      " is not one of Never, IfAvailable, Always");
    }
    return out;
}

/// A YAML value as JSON, typed the way Kubernetes' YAML reader types plain scalars (null, bool, number, string).
inline boost::json::value yaml_to_json(const YAML::Node& n, int depth = 0) {
    if (depth > 64) throw_config_error(error::config_invalid, "kubeconfig: an exec extension is nested too deeply");
    switch (n.Type()) {
    case YAML::NodeType::Map: {
        boost::json::object out;
        for (const auto& kv : n)
            if (kv.first.IsScalar()) out[kv.first.Scalar()] = yaml_to_json(kv.second, depth + 1);
        return out;
    }
    case YAML::NodeType::Sequence: {
        boost::json::array out;
        for (const auto& item : n) out.push_back(yaml_to_json(item, depth + 1));
        return out;
    }
    case YAML::NodeType::Scalar: {
        const std::string& v = n.Scalar();
        if (n.Tag() == "!") return boost::json::value(v); // quoted: always a string
        if (v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
        if (v == "true" || v == "True" || v == "TRUE") return true;
        if (v == "false" || v == "False" || v == "FALSE") return false;
        std::int64_t i = 0;
        auto [ip, iec] = std::from_chars(v.data(), v.data() + v.size(), i);
        if (iec == std::errc() && ip == v.data() + v.size() && !v.empty()) return i;
        double d = 0;
        auto [dp, dec] = std::from_chars(v.data(), v.data() + v.size(), d);
        if (dec == std::errc() && dp == v.data() + v.size() && !v.empty()) return d;
        return boost::json::value(v);
    }
    default:
        return nullptr;
    }
}

/// The `extension` of the cluster's `extensions` entry named client.authentication.k8s.io/exec, as JSON.
inline std::optional<boost::json::value> exec_extension(const KubeconfigEntry& cluster) {
    if (!cluster.body || !cluster.body.IsMap()) return std::nullopt;
    YAML::Node list = cluster.body["extensions"];
    if (!list || !list.IsSequence()) return std::nullopt;
    for (const auto& item : list) {
        if (!item.IsMap()) continue;
        YAML::Node name = item["name"];
        if (name && name.IsScalar() && name.Scalar() == "client.authentication.k8s.io/exec") {
            YAML::Node ext = item["extension"];
            if (ext && !ext.IsNull()) return yaml_to_json(ext);
        }
    }
    return std::nullopt;
}

inline std::string exec_cluster_json(const ClusterConfig& c, const std::optional<boost::json::value>& config = {}) {
    boost::json::object cluster;
    cluster["server"] = c.server;
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.ca_pem.empty()) cluster["certificate-authority-data"] = base64_encode(c.ca_pem);
    if (config) cluster["config"] = *config;
    return boost::json::serialize(cluster);
}

inline void fill_cluster(ClusterConfig& out, const KubeconfigEntry& entry) {
    const std::string what = "cluster " + config_quoted(entry.name);
    const std::string& file = entry.file;
    auto server = yaml_string(entry.body, "server", file, what);
    if (!server || server->empty())
        throw_config_error(error::config_invalid, "kubeconfig " + file + ": " + what +
                                                      " has no server; set clusters[].cluster.server to https://host:port");
    out.server = *server;
    auto url = parse_server_url(*server, "kubeconfig " + file + ": " + what);
    out.host = std::move(url.host);
    out.port = std::move(url.port);
    out.base_path = std::move(url.base_path);
    if (auto proxy = yaml_string(entry.body, "proxy-url", file, what); proxy && !proxy->empty())
        throw_config_error(error::config_invalid, "kubeconfig " + file + ": " + what +
                                                      " sets proxy-url, which is not supported; remove proxy-url "
                                                      "and make the API server reachable directly");
    out.insecure_skip_tls_verify = yaml_bool(entry.body, "insecure-skip-tls-verify", file, what).value_or(false);
    out.tls_server_name = yaml_string(entry.body, "tls-server-name", file, what).value_or("");
    out.ca_pem = data_or_file(entry, "certificate-authority-data", "certificate-authority", what);
    if (!out.ca_pem.empty() && count_pem_certificates(out.ca_pem) == 0)
        throw_config_error(error::config_invalid, "kubeconfig " + file + ": " + what +
                                                      " certificate authority is not a PEM certificate bundle; check "
                                                      "certificate-authority(-data)");
    if (out.insecure_skip_tls_verify && !out.ca_pem.empty())
        throw_config_error(error::config_invalid, "kubeconfig " + file + ": " + what +
                                                      " sets both a certificate authority and "
                                                      "insecure-skip-tls-verify: true; remove one of them");
}

inline CredentialSource user_credentials(const KubeconfigEntry& entry, const ClusterConfig& cluster,
                                         const KubeconfigEntry& cluster_entry) {
    const std::string what = "user " + config_quoted(entry.name);
    const std::string& file = entry.file;
    auto where = [&](const char* key) { return "kubeconfig " + at_line(file, entry.body[key]) + ": " + what; };
    CredentialSource source;
    source.origin = "kubeconfig " + file + ", user " + config_quoted(entry.name);
    if (!entry.body || entry.body.IsNull()) return source;
    if (entry.body["username"] || entry.body["password"])
        throw_config_error(error::config_invalid,
                           where(entry.body["username"] ? "username" : "password") +
                               " uses username/password (basic authentication), which is not supported; use a "
                               "token, a client certificate or an exec plugin");
    if (entry.body["auth-provider"])
        throw_config_error(error::config_invalid,
                           where("auth-provider") +
                               " uses the legacy auth-provider mechanism, which is not supported; switch to an exec "
                               "credential plugin (e.g. kubelogin, gke-gcloud-auth-plugin, aws eks get-token)");
    for (const char* key : {"as", "as-uid", "as-groups", "as-user-extra"})
        if (entry.body[key])
            throw_config_error(error::config_invalid, where(key) + " sets " + key +
                                                          " (impersonation), which is not supported; remove it");
    source.token = yaml_string(entry.body, "token", file, what).value_or("");
    if (auto token_file = yaml_string(entry.body, "tokenFile", file, what); token_file && !token_file->empty())
        source.token_file = resolve_path(entry.dir, *token_file);
    source.client_certificate_pem = data_or_file(entry, "client-certificate-data", "client-certificate", what);
    source.client_key_pem = data_or_file(entry, "client-key-data", "client-key", what);
    if (source.client_certificate_pem.empty() != source.client_key_pem.empty())
        throw_config_error(error::config_invalid,
                           "kubeconfig " + file + ": " + what +
                               (source.client_key_pem.empty() ? " has a client certificate but no client-key(-data)"
                                                              : " has a client key but no client-certificate(-data)") +
                               "; set both or neither");
    if (!source.client_certificate_pem.empty()) {
        if (auto problem = check_client_certificate(source.client_certificate_pem, source.client_key_pem)) {
            const char* field = problem->find("certificate is not") != std::string::npos
                                    ? (entry.body["client-certificate-data"] ? "client-certificate-data"
                                                                             : "client-certificate")
                                    : (entry.body["client-key-data"] ? "client-key-data" : "client-key");
            std::string named = field;
            if (named == "client-certificate" || named == "client-key")
                named += " (" + resolve_path(entry.dir, yaml_string(entry.body, field, file, what).value_or("")) + ")";
            throw_config_error(error::config_invalid, "kubeconfig " + file + ": " + what + " " + named + ": " +
                                                          *problem + "; check the file or data");
        }
    }
    if (YAML::Node exec = entry.body["exec"]; exec && !exec.IsNull()) {
        source.exec = parse_exec(entry, exec, what);
        if (source.exec->provide_cluster_info)
            source.exec->cluster_info_json = exec_cluster_json(cluster, exec_extension(cluster_entry));
    }
    return source;
}

inline ClusterConfig select_context_unchecked(const MergedKubeconfig& merged, const KubeconfigOptions& options);

/// Turns the merged files into the configuration of one context.
inline ClusterConfig select_context(const MergedKubeconfig& merged, const KubeconfigOptions& options) {
    try {
        return select_context_unchecked(merged, options);
    } catch (const YAML::Exception& e) { // a shape the checks above did not anticipate
        std::string files;
        for (auto& f : merged.files) files += (files.empty() ? "" : ", ") + f;
        throw_config_error(error::config_invalid,
                           "kubeconfig " + files + (e.mark.is_null() ? "" : " line " + std::to_string(e.mark.line + 1)) +
                               ": unexpected structure (" + e.msg + "); fix the file");
    }
}

inline ClusterConfig select_context_unchecked(const MergedKubeconfig& merged, const KubeconfigOptions& options) {
    std::string files;
    for (auto& f : merged.files) files += (files.empty() ? "" : ", ") + f;
    std::string name = options.context.empty() ? merged.current_context : options.context;
    if (name.empty())
        throw_config_error(error::config_invalid, "kubeconfig " + files +
                                                      ": no current-context is set and no context was requested; run "
                                                      "`kubectl config use-context NAME` or pass a context");
    auto ctx = merged.contexts.find(name);
    if (ctx == merged.contexts.end()) {
        std::string known;
        for (auto& [n, e] : merged.contexts) known += (known.empty() ? "" : ", ") + config_quoted(n);
        throw_config_error(error::config_invalid,
                           "kubeconfig " + files + ": context " + config_quoted(name) + " is not defined" +
                               (options.context.empty() ? " (it is the current-context of " +
                                                              merged.current_context_file + ")"
                                                        : std::string()) +
                               "; known contexts: " + (known.empty() ? "none" : known));
    }
    const KubeconfigEntry& context = ctx->second;
    const std::string what = "context " + config_quoted(name);
    auto cluster_name = yaml_string(context.body, "cluster", context.file, what).value_or("");
    auto user_name = yaml_string(context.body, "user", context.file, what).value_or("");
    if (cluster_name.empty())
        throw_config_error(error::config_invalid, "kubeconfig " + context.file + ": " + what +
                                                      " names no cluster; set contexts[].context.cluster");
    auto cluster = merged.clusters.find(cluster_name);
    if (cluster == merged.clusters.end())
        throw_config_error(error::config_invalid, "kubeconfig " + context.file + ": " + what +
                                                      " refers to cluster " + config_quoted(cluster_name) +
                                                      ", which no file in " + files + " defines; add it or fix the context");
    ClusterConfig out;
    fill_cluster(out, cluster->second);
    out.namespace_ = yaml_string(context.body, "namespace", context.file, what).value_or("");
    out.source = "kubeconfig " + context.file + ", context " + config_quoted(name);
    if (user_name.empty()) {
        out.credentials = CredentialProvider::none();
        return out;
    }
    auto user = merged.users.find(user_name);
    if (user == merged.users.end())
        throw_config_error(error::config_invalid, "kubeconfig " + context.file + ": " + what + " refers to user " +
                                                      config_quoted(user_name) + ", which no file in " + files +
                                                      " defines; add it or fix the context");
    out.credentials = CredentialProvider::create(user_credentials(user->second, out, cluster->second), options.environment.credentials);
    return out;
}

inline std::vector<std::string> split_kubeconfig_list(std::string_view list) {
    std::vector<std::string> out;
    while (true) {
        auto colon = list.find(':');
        std::string item(list.substr(0, colon));
        if (!item.empty() && std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
        if (colon == std::string_view::npos) break;
        list.remove_prefix(colon + 1);
    }
    return out;
}

inline std::string home_kubeconfig(const ConfigEnvironment& env) {
    auto home = env.get("HOME");
    if (!home || home->empty()) return {};
    std::string path = *home;
    if (path.back() != '/') path += '/';
    return path + ".kube/config";
}

inline bool is_ipv6_literal(std::string_view host) { return host.find(':') != std::string_view::npos; }

} // namespace detail

#if EXECUTION_SENTINEL_COMPILE_BODIES
EXECUTION_SENTINEL_DECL ClusterConfig load_kubeconfig_from_string(std::string_view yaml, std::string_view origin,
                                                 const KubeconfigOptions& options) {
    detail::MergedKubeconfig merged;
    detail::merge_kubeconfig(merged, yaml, std::string(origin));
    return detail::select_context(merged, options);
}

EXECUTION_SENTINEL_DECL ClusterConfig load_kubeconfig(const KubeconfigOptions& options) {
    std::vector<std::string> files;
    bool from_list = false;
    std::string how;
    if (!options.path.empty()) {
        files.push_back(options.path);
        how = "the kubeconfig path given";
    } else if (auto list = options.environment.get("KUBECONFIG"); list && !detail::split_kubeconfig_list(*list).empty()) {
        files = detail::split_kubeconfig_list(*list);
        from_list = true;
        how = "KUBECONFIG";
    } else {
        std::string home = detail::home_kubeconfig(options.environment);
        if (home.empty())
            detail::throw_config_error(error::config_invalid,
                                       "no kubeconfig: KUBECONFIG is unset and HOME is unset, so ~/.kube/config "
                                       "cannot be found; set KUBECONFIG or pass a kubeconfig path");
        files.push_back(home);
        how = "the default location";
    }
    detail::MergedKubeconfig merged;
    std::vector<std::string> missing;
    for (auto& file : files) {
        std::string why;
        auto content = detail::read_file(file, detail::max_kubeconfig_size, why);
        if (!content) {
            if (from_list && !detail::file_exists(file)) {
                missing.push_back(file); // kubectl skips missing KUBECONFIG entries
                continue;
            }
            detail::throw_config_error(error::config_invalid, "kubeconfig " + file + " (" + how + ") cannot be read: " +
                                                                  why + "; check the path and its permissions");
        }
        detail::merge_kubeconfig(merged, *content, file);
    }
    if (merged.files.empty()) {
        std::string list;
        for (auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        detail::throw_config_error(error::config_invalid, "no kubeconfig: none of the files in KUBECONFIG exists (" +
                                                              list + "); fix KUBECONFIG");
    }
    return detail::select_context(merged, options);
}

EXECUTION_SENTINEL_DECL ClusterConfig load_in_cluster(const ConfigEnvironment& env) {
    auto host = env.get("KUBERNETES_SERVICE_HOST").value_or("");
    auto port = env.get("KUBERNETES_SERVICE_PORT").value_or("");
    if (host.empty() || port.empty())
        detail::throw_config_error(error::config_invalid,
                                   "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and "
                                   "KUBERNETES_SERVICE_PORT must both be set; use a kubeconfig outside a cluster");
    std::string dir = env.service_account_dir;
    if (!dir.empty() && dir.back() == '/') dir.pop_back();
    ClusterConfig out;
    bool v6 = detail::is_ipv6_literal(host) && host.front() != '[';
    out.server = "https://" + (v6 ? "[" + host + "]" : host) + ":" + port;
    auto url = detail::parse_server_url(out.server, "in-cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT)");
    out.host = url.host;
    out.port = url.port;
    std::string why;
    auto ca = detail::read_file(dir + "/ca.crt", detail::max_pem_file_size, why);
    if (!ca)
        detail::throw_config_error(error::config_invalid, "in-cluster: cannot read the cluster CA " + dir +
                                                              "/ca.crt (" + why +
                                                              "); check that the service account token is mounted");
    if (detail::count_pem_certificates(*ca) == 0)
        detail::throw_config_error(error::config_invalid, "in-cluster: the cluster CA " + dir +
                                                              "/ca.crt is not a PEM certificate bundle");
    out.ca_pem = std::move(*ca);
    if (auto ns = env.get("POD_NAMESPACE"); ns && !detail::trim(*ns).empty()) {
        out.namespace_ = std::string(detail::trim(*ns));
    } else if (auto file = detail::read_file(dir + "/namespace", 4096, why); file && !detail::trim(*file).empty()) {
        out.namespace_ = std::string(detail::trim(*file));
    } else {
        out.namespace_ = "default";
    }
    CredentialSource source;
    source.token_file = dir + "/token";
    source.origin = "in-cluster service account";
    out.credentials = CredentialProvider::create(std::move(source), env.credentials);
    out.source = "in-cluster";
    return out;
}

EXECUTION_SENTINEL_DECL ClusterConfig load_default(const KubeconfigOptions& options) {
    if (!options.path.empty()) return load_kubeconfig(options);
    std::vector<std::string> tried;
    if (auto list = options.environment.get("KUBECONFIG"); list && !detail::split_kubeconfig_list(*list).empty()) {
        for (auto& f : detail::split_kubeconfig_list(*list))
            if (detail::file_exists(f)) return load_kubeconfig(options);
        tried.push_back("KUBECONFIG=" + *list + " (no such files)");
    } else {
        tried.push_back("KUBECONFIG (unset)");
        std::string home = detail::home_kubeconfig(options.environment);
        if (!home.empty() && detail::file_exists(home)) return load_kubeconfig(options);
        tried.push_back(home.empty() ? std::string("~/.kube/config (HOME unset)") : home + " (does not exist)");
    }
    if (!options.environment.get("KUBERNETES_SERVICE_HOST").value_or("").empty())
        return load_in_cluster(options.environment);
    tried.push_back("in-cluster (KUBERNETES_SERVICE_HOST unset)");
    std::string list;
    for (auto& t : tried) list += (list.empty() ? "" : ", ") + t;
    detail::throw_config_error(error::config_invalid, "no Kubernetes configuration found; tried " + list +
                                                          "; set KUBECONFIG, create ~/.kube/config or run in a pod");
}
#endif

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_CONFIG_IMPL_HPP

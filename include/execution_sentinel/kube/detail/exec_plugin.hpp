// Exec credential plugins: building KUBERNETES_EXEC_INFO, running the command without a shell (posix_spawnp,
// own process group, stdin /dev/null, bounded stdout/stderr, timeout), and parsing the ExecCredential it prints.
// The parsing and message-building functions are pure; run_exec_process() is the only one doing I/O.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_EXEC_PLUGIN_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_EXEC_PLUGIN_HPP

#include <execution_sentinel/kube/detail/credentials_util.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/objects.hpp>

#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace execution_sentinel::kube::detail {

inline constexpr std::string_view exec_api_v1 = "client.authentication.k8s.io/v1";
inline constexpr std::string_view exec_api_v1beta1 = "client.authentication.k8s.io/v1beta1";

/// The KUBERNETES_EXEC_INFO value: {"apiVersion", "kind":"ExecCredential", "spec":{"interactive":false, "cluster"?}}.
/// `cluster_json` is a JSON object text or empty (no cluster).
inline std::string exec_info_json(std::string_view api_version, std::string_view cluster_json) {
    boost::json::object spec;
    spec["interactive"] = false;
    if (!cluster_json.empty()) {
        boost::system::error_code ec;
        auto cluster = boost::json::parse(cluster_json, ec);
        if (!ec && cluster.is_object()) spec["cluster"] = std::move(cluster);
    }
    boost::json::object info;
    info["apiVersion"] = api_version;
    info["kind"] = "ExecCredential";
    info["spec"] = std::move(spec);
    return boost::json::serialize(info);
}

/// What the plugin printed, once parsed.
struct ExecCredentialResult {
    std::string token;
    std::string client_certificate_pem;
    std::string client_key_pem;
    std::optional<Timestamp> expiry;
};

/// Parses an ExecCredential. On failure returns nullopt and sets `why` to an explanation that never quotes the
/// output (which may hold a secret).
inline std::optional<ExecCredentialResult> parse_exec_credential(std::string_view output,
                                                                 std::string_view expected_api_version,
                                                                 std::string& why) {
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(output, ec);
    if (ec) {
        why = trim(output).empty() ? "printed nothing on stdout, expected an ExecCredential JSON object"
                                   : "printed something that is not JSON (" + ec.message() + "), expected an ExecCredential object";
        return std::nullopt;
    }
    auto* obj = doc.if_object();
    if (!obj) {
        why = "printed a JSON value that is not an object, expected an ExecCredential object";
        return std::nullopt;
    }
    auto string_field = [](const boost::json::object& o, std::string_view key) -> std::optional<std::string> {
        auto* v = o.if_contains(key);
        if (!v || v->is_null()) return std::string();
        if (auto* s = v->if_string()) return std::string(s->data(), s->size());
        return std::nullopt;
    };
    auto kind = string_field(*obj, "kind");
    if (!kind || *kind != "ExecCredential") {
        why = "printed an object whose kind is not \"ExecCredential\"";
        return std::nullopt;
    }
    auto api = string_field(*obj, "apiVersion");
    if (!api || *api != expected_api_version) {
        why = "answered with apiVersion \"" + (api ? *api : std::string("?")) + "\" but was asked for \"" +
              std::string(expected_api_version) + "\" (set exec.apiVersion in the kubeconfig to what the plugin speaks)";
        return std::nullopt;
    }
    auto* status_value = obj->if_contains("status");
    auto* status = status_value ? status_value->if_object() : nullptr;
    if (!status) {
        why = "printed an ExecCredential without a status object";
        return std::nullopt;
    }
    ExecCredentialResult result;
    auto token = string_field(*status, "token");
    auto cert = string_field(*status, "clientCertificateData");
    auto key = string_field(*status, "clientKeyData");
    auto expiry = string_field(*status, "expirationTimestamp");
    if (!token || !cert || !key || !expiry) {
        why = "printed an ExecCredential whose status fields are not strings";
        return std::nullopt;
    }
    if (cert->empty() != key->empty()) {
        why = "returned only one of status.clientCertificateData and status.clientKeyData (both or neither)";
        return std::nullopt;
    }
    if (token->empty() && cert->empty()) {
        why = "returned neither status.token nor status.clientCertificateData/clientKeyData";
        return std::nullopt;
    }
    if (!cert->empty()) {
        if (auto problem = check_client_certificate(*cert, *key)) {
            why = "returned an unusable client certificate: " + *problem;
            return std::nullopt;
        }
    }
    if (!expiry->empty()) {
        auto t = parse_rfc3339(*expiry);
        if (!t) {
            why = "returned status.expirationTimestamp \"" + *expiry + "\" which is not an RFC 3339 time";
            return std::nullopt;
        }
        result.expiry = *t;
    }
    result.token = std::move(*token);
    result.client_certificate_pem = std::move(*cert);
    result.client_key_pem = std::move(*key);
    return result;
}

/// The first `max_lines` non-empty lines of a plugin's stderr, each cut at 200 characters.
inline std::string stderr_excerpt(std::string_view err, std::size_t max_lines = 5) {
    std::string out;
    std::size_t lines = 0;
    while (!err.empty() && lines < max_lines) {
        auto nl = err.find('\n');
        auto line = trim(err.substr(0, nl));
        err = nl == std::string_view::npos ? std::string_view{} : err.substr(nl + 1);
        if (line.empty()) continue;
        if (!out.empty()) out += " | ";
        std::string cut(line.substr(0, 200));
        for (auto& c : cut)
            if (static_cast<unsigned char>(c) < 0x20) c = ' ';
        out += cut;
        if (line.size() > 200) out += "...";
        ++lines;
    }
    return out;
}

/// How a plugin run ended.
struct ExecProcessResult {
    int spawn_errno = 0;     ///< non-zero when the command could not be started
    bool timed_out = false;  ///< killed after the timeout
    bool output_too_large = false; ///< killed because stdout exceeded the limit
    int exit_code = -1;      ///< exit status when it exited
    int signal = 0;          ///< terminating signal when it was killed by one
    std::string out;         ///< stdout (bounded)
    std::string err;         ///< stderr (bounded)
};

/// Runs `command args…` with exactly `env` ("NAME=value") as its environment, stdin from /dev/null, in its own
/// process group. Returns when it exits and its pipes close, or after `timeout` (the whole group is killed).
inline ExecProcessResult run_exec_process(const std::string& command, const std::vector<std::string>& args,
                                          const std::vector<std::string>& env, std::chrono::milliseconds timeout,
                                          std::size_t max_output) {
    ExecProcessResult result;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        result.spawn_errno = errno;
        return result;
    }
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        result.spawn_errno = errno;
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        return result;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t default_signals;
    sigemptyset(&default_signals);
    sigaddset(&default_signals, SIGPIPE);
    sigset_t no_signals;
    sigemptyset(&no_signals);
    posix_spawnattr_setsigdefault(&attr, &default_signals);
    posix_spawnattr_setsigmask(&attr, &no_signals);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(command.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, command.c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (rc != 0) {
        result.spawn_errno = rc;
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        return result;
    }

    constexpr std::size_t max_stderr = 64 * 1024;
    using steady = std::chrono::steady_clock;
    const auto deadline = steady::now() + timeout;
    std::optional<steady::time_point> exited_at; // when the plugin itself exited (not yet reaped)
    bool out_open = true, err_open = true;
    char buffer[8192];
    while (out_open || err_open) {
        auto now = steady::now();
        if (now >= deadline) {
            result.timed_out = true;
            break;
        }
        // A background child that inherited the pipes must not keep us waiting once the plugin has exited.
        if (exited_at && now - *exited_at >= std::chrono::seconds(1)) break;
        pollfd fds[2];
        nfds_t n = 0;
        if (out_open) fds[n++] = pollfd{out_pipe[0], POLLIN, 0};
        if (err_open) fds[n++] = pollfd{err_pipe[0], POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        int ready = ::poll(fds, n, static_cast<int>(std::clamp<std::int64_t>(left, 1, 50)));
        if (ready < 0 && errno != EINTR) break;
        for (nfds_t k = 0; ready > 0 && k < n; ++k) {
            if (fds[k].revents == 0) continue;
            bool is_out = fds[k].fd == out_pipe[0];
            ssize_t got = ::read(fds[k].fd, buffer, sizeof buffer);
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (got <= 0) {
                (is_out ? out_open : err_open) = false;
                continue;
            }
            auto& sink = is_out ? result.out : result.err;
            std::size_t cap = is_out ? max_output : max_stderr;
            std::size_t room = cap > sink.size() ? cap - sink.size() : 0;
            sink.append(buffer, std::min(room, static_cast<std::size_t>(got)));
            if (is_out && static_cast<std::size_t>(got) > room) {
                result.output_too_large = true;
                out_open = err_open = false;
            }
        }
        if (!exited_at) {
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
                exited_at = steady::now();
        }
    }
    // The plugin is not reaped yet, so its process-group id cannot have been reused by now.
    bool killed = false;
    if (result.timed_out || result.output_too_large || (exited_at && (out_open || err_open))) {
        ::kill(-pid, SIGKILL);
        killed = true;
    }
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    int status = 0;
    for (;;) {
        // Reap the plugin; one that closed its pipes but keeps running is killed at the deadline.
        pid_t w = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            status = 0;
            break;
        }
        if (steady::now() >= deadline) {
            result.timed_out = true;
            ::kill(-pid, SIGKILL);
            killed = true;
        } else {
            ::usleep(2000);
        }
    }
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

/// The environment a plugin runs with: `host` with `extra` added (replacing same names) and KUBERNETES_EXEC_INFO.
inline std::vector<std::string> exec_environment(const std::vector<std::string>& host,
                                                 const std::vector<std::pair<std::string, std::string>>& extra,
                                                 const std::string& exec_info) {
    std::vector<std::pair<std::string, std::string>> vars = extra;
    vars.emplace_back("KUBERNETES_EXEC_INFO", exec_info);
    std::vector<std::string> out;
    for (auto& entry : host) {
        auto eq = entry.find('=');
        std::string_view name = std::string_view(entry).substr(0, eq);
        bool replaced = false;
        for (auto& [k, v] : vars)
            if (k == name) replaced = true;
        if (!replaced) out.push_back(entry);
    }
    for (auto& [k, v] : vars) out.push_back(k + "=" + v);
    return out;
}

inline std::vector<std::string> process_environment() {
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
    return out;
}

} // namespace execution_sentinel::kube::detail

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_EXEC_PLUGIN_HPP

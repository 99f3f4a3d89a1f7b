// Running a command in a container over WebSocket (the `pods/exec` subresource), the way kubectl does since
// Kubernetes 1.30: subprotocol v5.channel.k8s.io (else v4), binary frames [channel][payload], stdout and stderr
// collected, the exit code read from the Status on channel 3. See docs/client.md.
#ifndef EXECUTION_SENTINEL_KUBE_EXEC_HPP
#define EXECUTION_SENTINEL_KUBE_EXEC_HPP

#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/detail/http_util.hpp>
#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/kube/parse.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/parse.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace execution_sentinel::kube {

/// What to run. The command is run directly (no shell): one argv element per entry.
struct ExecRequest {
    std::string namespace_{};
    std::string pod{};
    std::string container{};             ///< empty = the pod's only container
    std::vector<std::string> command{};  ///< argv; must not be empty
    /// Whole-call limit (connect, upgrade, run, output); 0 = none. Default 60 s.
    std::chrono::milliseconds timeout{60000};
    /// Largest stdout and stderr kept, bytes each; more is read and dropped (ExecResult::truncated). 16 MiB.
    std::size_t max_output_bytes = std::size_t{16} << 20;
};

struct ExecResult {
    int exit_code = 0;        ///< 0 on Success; the ExitCode cause of a NonZeroExitCode failure otherwise
    std::string stdout_data{};
    std::string stderr_data{};
    std::string protocol{};     ///< the subprotocol the server chose: "v5.channel.k8s.io" or "v4.channel.k8s.io"
    bool truncated = false;   ///< output past max_output_bytes was dropped
};

/// Runs `request.command` in the container and completes when it exits. Throws kube::Error:
/// forbidden (RBAC: `create` and `get` on `pods/exec`), not_found (no such pod), exec_failed (the container is
/// missing or not running, the command cannot be started, no channel protocol agreed), unauthorized, timeout
/// (request.timeout passed), connection_lost, and the connect/TLS errors of Client. A command that runs and
/// exits non-zero is not an error: its code is in ExecResult::exit_code. Cancellation (per-operation, terminal)
/// closes the connection and throws boost::system::system_error(operation_aborted). Completes on the client's
/// executor; `client` is copied (its state is shared) and need not outlive the call.
EXECUTION_SENTINEL_DECL boost::asio::awaitable<ExecResult> exec(Client& client, ExecRequest request);

// ------------------------------------------------------------------------------------------- pure pieces

/// The subprotocols offered, best first.
inline constexpr std::string_view exec_protocol_v5 = "v5.channel.k8s.io";
inline constexpr std::string_view exec_protocol_v4 = "v4.channel.k8s.io";

/// "/api/v1/namespaces/{ns}/pods/{pod}/exec?command=..&command=..&container=..&stdout=true&stderr=true".
inline std::string exec_target(const ExecRequest& r) {
    QueryString q;
    for (const auto& arg : r.command) q.add("command", arg);
    q.add_if("container", r.container);
    q.add("stdout", true).add("stderr", true);
    return "/api/v1/namespaces/" + escape_path_segment(r.namespace_) + "/pods/" + escape_path_segment(r.pod) +
           "/exec" + q.str();
}

/// How the command ended, from the channel-3 Status.
struct ExecStatus {
    bool started = true;      ///< false: the exec itself failed (message says why)
    int exit_code = 0;
    std::string reason{};       ///< Status.reason
    std::string message{};      ///< Status.message (or the raw text of a pre-v4 error)
};

/// Decodes the channel-3 payload: `status: Success` → exit 0; `Failure` with a cause whose reason is
/// "ExitCode" (every cause is scanned, not only the first) → that number; any other failure, or text that is not
/// a Status (pre-v4 servers send plain text), → started=false with the message.
inline ExecStatus decode_exec_status(std::string_view payload) {
    ExecStatus out;
    boost::system::error_code ec;
    auto v = boost::json::parse(payload, ec);
    if (ec || !v.is_object()) {
        out.started = false;
        out.message = std::string(payload.substr(0, 1000));
        return out;
    }
    auto st = parse_status(v);
    out.reason = st.reason;
    out.message = st.message;
    if (st.status == "Success") return out;
    for (const auto& cause : st.causes) {
        if (cause.reason != "ExitCode") continue;
        int code = 0;
        const char* b = cause.message.data();
        const char* e = b + cause.message.size();
        auto [p, err] = std::from_chars(b, e, code);
        if (err == std::errc() && p == e) {
            out.exit_code = code;
            return out;
        }
    }
    out.started = false;
    if (out.message.empty()) out.message = "the exec failed without a message (reason \"" + st.reason + "\")";
    return out;
}

/// Collects the binary messages of an exec stream: [channel byte][payload]. Channel 1 stdout, 2 stderr, 3 the
/// Status; 255 (v5 CLOSE) and empty readiness messages are ignored; unknown channels are ignored.
class ExecOutputCollector {
public:
    explicit ExecOutputCollector(std::size_t max_output_bytes = std::size_t{16} << 20) : max_(max_output_bytes) {}

    void on_message(std::string_view message) {
        if (message.empty()) return;
        auto channel = static_cast<unsigned char>(message.front());
        auto payload = message.substr(1);
        switch (channel) {
        case 1: append(stdout_, payload); break;
        case 2: append(stderr_, payload); break;
        case 3: status_.append(payload.data(), payload.size()); has_status_ = true; break;
        default: break; // 0 stdin (never sent to us), 4 resize, 255 close
        }
    }

    bool has_status() const noexcept { return has_status_; }
    const std::string& status_payload() const noexcept { return status_; }
    std::string& stdout_data() noexcept { return stdout_; }
    std::string& stderr_data() noexcept { return stderr_; }
    bool truncated() const noexcept { return truncated_; }

private:
    void append(std::string& out, std::string_view payload) {
        std::size_t room = out.size() < max_ ? max_ - out.size() : 0;
        if (payload.size() > room) truncated_ = true;
        out.append(payload.data(), std::min(room, payload.size()));
    }
    std::size_t max_{};
    std::string stdout_, stderr_, status_{};
    bool has_status_ = false;
    bool truncated_ = false;
};

/// The Diagnostics of a refused exec upgrade (403/404/400...) with advice specific to exec.
inline std::pair<error, Diagnostics> exec_error_from_response(int http_status, std::string_view body,
                                                             const ExecRequest& r, std::string_view credentials_source) {
    auto [e, d] = error_from_response(http_status, body, {}, describe_request("GET", exec_target(r)), credentials_source);
    std::string where = "pod " + r.namespace_ + "/" + r.pod + (r.container.empty() ? "" : " container " + r.container);
    switch (e) {
    case error::forbidden:
        d.client_message = "RBAC denies exec in " + where +
                           ": grant `create pods/exec` and `get pods/exec` in namespace " + r.namespace_;
        break;
    case error::not_found: d.client_message = "cannot exec: " + where + " does not exist"; break;
    case error::bad_request:
        e = error::exec_failed;
        d.client_message = "the API server refused to start the command in " + where +
                           " (missing container, container not running, or invalid command)";
        break;
    default: break;
    }
    return {e, std::move(d)};
}

} // namespace execution_sentinel::kube

#if !defined(EXECUTION_SENTINEL_SEPARATE_COMPILATION)
#include <execution_sentinel/kube/impl/exec.ipp>
#endif

#endif // EXECUTION_SENTINEL_KUBE_EXEC_HPP

// Implementation of kube/credentials.hpp: the CredentialProvider.
#ifndef EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_IMPL_HPP
#define EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_IMPL_HPP

#include <execution_sentinel/kube/credentials.hpp>
#include <execution_sentinel/kube/detail/credentials_util.hpp>
#include <execution_sentinel/kube/detail/exec_plugin.hpp>

#include <string>
#include <utility>

namespace execution_sentinel::kube {

namespace detail {

/// Largest token file accepted (service-account tokens are a few KiB).
inline constexpr std::size_t max_token_file_size = 1024 * 1024;

inline std::string describe_credential_source(const CredentialSource& s) {
    std::string out;
    auto add = [&](const std::string& part) {
        if (!out.empty()) out += " + ";
        out += part;
    };
    if (s.exec) add("exec plugin \"" + s.exec->command + "\" (" + s.exec->api_version + ")");
    if (!s.token_file.empty()) add("token file " + s.token_file);
    else if (!s.token.empty()) add("static token");
    if (!s.client_certificate_pem.empty()) add("client certificate");
    if (out.empty()) out = "no credentials";
    if (!s.origin.empty() && s.origin != "no credentials" && s.origin != out) out += " from " + s.origin;
    return out;
}

inline std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

} // namespace detail

#if EXECUTION_SENTINEL_COMPILE_BODIES
EXECUTION_SENTINEL_DECL CredentialProvider::CredentialProvider(CredentialSource source, CredentialProviderOptions options)
    : source_(std::move(source)), options_(std::move(options)) {
    description_ = detail::describe_credential_source(source_);
    const std::string where = source_.origin.empty() ? std::string() : " (" + source_.origin + ")";
    if (source_.client_certificate_pem.empty() != source_.client_key_pem.empty())
        detail::throw_config_error(error::config_invalid,
                                   "a client certificate needs both the certificate and the key" + where +
                                       ": set client-certificate and client-key together, or neither");
    if (!source_.client_certificate_pem.empty()) {
        if (auto problem = detail::check_client_certificate(source_.client_certificate_pem, source_.client_key_pem))
            detail::throw_config_error(error::config_invalid, *problem + where);
    }
    if (source_.exec) {
        auto& e = *source_.exec;
        if (e.command.empty())
            detail::throw_config_error(error::config_invalid, "exec plugin without a command" + where +
                                                                  ": set exec.command");
        if (e.api_version != detail::exec_api_v1 && e.api_version != detail::exec_api_v1beta1)
            detail::throw_config_error(
                error::config_invalid,
                "exec plugin \"" + e.command + "\"" + where + " asks for apiVersion \"" + e.api_version +
                    "\": use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1");
        if (e.interactive_mode == ExecPluginConfig::InteractiveMode::always)
            detail::throw_config_error(
                error::config_invalid,
                "exec plugin \"" + e.command + "\"" + where +
                    " has interactiveMode Always but this program cannot run it interactively (stdin is not a "
                    "terminal): use a plugin configuration that works without input, or log in beforehand");
    }
    if (auto problem = detail::header_value_problem(source_.token, "the bearer token" + where,
                                                    detail::max_bearer_token_bytes))
        detail::throw_config_error(error::config_invalid, *problem + "; fix the token field");
    std::lock_guard lock(mutex_);
    if (!source_.token_file.empty()) {
        // Read once here: an unusable token is refused at start; later re-reads keep the last good one.
        std::string why;
        auto content = detail::read_file(source_.token_file, detail::max_token_file_size, why);
        token_file_read_at_ = now();
        const std::string_view token = content ? detail::trim(*content) : std::string_view{};
        if (!token.empty()) {
            if (auto problem = detail::header_value_problem(token, "the token in the file " + source_.token_file + where,
                                                            detail::max_bearer_token_bytes))
                detail::throw_config_error(error::config_invalid, *problem + "; fix the token file");
            file_token_.assign(token);
        } else if (source_.token.empty()) {
            if (content) why = "it is empty";
            detail::throw_config_error(error::credentials_unavailable,
                                       "cannot read the token file " + source_.token_file + where + ": " + why +
                                           "; check the path and its permissions");
        }
    }
    if (!source_.exec) {
        Credentials initial;
        initial.bearer_token = file_token_.empty() ? source_.token : file_token_;
        initial.client_certificate_pem = source_.client_certificate_pem;
        initial.client_key_pem = source_.client_key_pem;
        publish(std::move(initial));
    }
}

EXECUTION_SENTINEL_DECL bool CredentialProvider::read_token_file(Timestamp now) {
    token_file_read_at_ = now;
    std::string why;
    auto content = detail::read_file(source_.token_file, detail::max_token_file_size, why);
    if (!content) return false; // keep the last good token
    auto token = detail::trim(*content);
    if (token.empty() || token == file_token_) return false;
    // A rewritten file with an unusable token keeps the last good one (the constructor refused it at start).
    if (detail::header_value_problem(token, "", detail::max_bearer_token_bytes)) return false;
    file_token_.assign(token);
    return true;
}

EXECUTION_SENTINEL_DECL void CredentialProvider::publish(Credentials next) {
    bool changed = next.bearer_token != current_.bearer_token ||
                   next.client_certificate_pem != current_.client_certificate_pem ||
                   next.client_key_pem != current_.client_key_pem;
    next.generation = current_.generation;
    if (changed || (current_.generation == 0 && !next.empty())) ++next.generation;
    current_ = std::move(next);
}

EXECUTION_SENTINEL_DECL void CredentialProvider::run_exec_plugin(Timestamp now) {
    auto& e = *source_.exec;
    const std::string who = "exec plugin \"" + e.command + "\"" +
                            (source_.origin.empty() ? std::string() : " (" + source_.origin + ")");
    auto fail = [&](const std::string& what) { detail::throw_config_error(error::credentials_unavailable, who + " " + what); };

    auto info = detail::exec_info_json(e.api_version, e.provide_cluster_info ? e.cluster_info_json : std::string());
    auto env = detail::exec_environment(options_.host_environment ? *options_.host_environment
                                                                  : detail::process_environment(),
                                        e.env, info);
    auto run = detail::run_exec_process(e.command, e.args, env, options_.exec_timeout, options_.exec_max_output);
    std::string stderr_part = detail::stderr_excerpt(run.err);
    if (!stderr_part.empty()) stderr_part = "; its stderr said: " + stderr_part;

    if (run.spawn_errno == ENOENT)
        fail("could not be started: command not found" +
             (e.install_hint.empty() ? std::string("; install it or fix exec.command in the kubeconfig")
                                     : "; " + e.install_hint));
    if (run.spawn_errno != 0)
        fail("could not be started: " + std::string(std::strerror(run.spawn_errno)) +
             "; check exec.command in the kubeconfig");
    if (run.timed_out)
        fail("did not finish within " + detail::seconds_text(options_.exec_timeout) +
             " and was killed; it runs without a terminal, so it must not wait for input" + stderr_part);
    if (run.output_too_large)
        fail("printed more than " + std::to_string(options_.exec_max_output) + " bytes and was stopped");
    if (run.signal != 0) fail("was killed by signal " + std::to_string(run.signal) + stderr_part);
    if (run.exit_code != 0)
        fail("exited with code " + std::to_string(run.exit_code) + stderr_part +
             (run.exit_code == 127 && !e.install_hint.empty() ? "; " + e.install_hint : std::string()));

    std::string why;
    auto parsed = detail::parse_exec_credential(run.out, e.api_version, why);
    if (!parsed) fail(why + stderr_part);
    if (parsed->expiry && *parsed->expiry <= now)
        fail("returned a credential that expired at " + detail::format_rfc3339(*parsed->expiry) + " (now " +
             detail::format_rfc3339(now) + "); check the plugin's login state and the system clock");

    if (auto problem = detail::header_value_problem(parsed->token, "the token it returned",
                                                    detail::max_bearer_token_bytes))
        fail("returned an unusable credential: " + *problem);

    Credentials c;
    c.bearer_token = std::move(parsed->token);
    c.client_certificate_pem = std::move(parsed->client_certificate_pem);
    c.client_key_pem = std::move(parsed->client_key_pem);
    c.expiry = parsed->expiry;
    exec_result_ = std::move(c);
}

EXECUTION_SENTINEL_DECL Credentials CredentialProvider::current() {
    std::lock_guard lock(mutex_);
    const Timestamp t = now();
    const bool forced = refresh_requested_;
    refresh_requested_ = false;
    bool dirty = false;
    if (!source_.token_file.empty()) {
        bool due = !token_file_read_at_ || t < *token_file_read_at_ ||
                   t - *token_file_read_at_ >= options_.token_file_refresh_interval;
        if (due || forced) dirty |= read_token_file(t);
    }
    if (source_.exec) {
        bool due = !exec_result_ || forced ||
                   (exec_result_->expiry && t + options_.exec_refresh_before_expiry >= *exec_result_->expiry);
        if (due) {
            try {
                run_exec_plugin(t);
                dirty = true;
            } catch (const Error&) {
                // An unexpired credential that the server has not rejected is still worth using.
                bool still_valid = exec_result_ && !forced && (!exec_result_->expiry || *exec_result_->expiry > t);
                if (!still_valid) {
                    exec_result_.reset();
                    throw;
                }
            }
        }
    }
    if (dirty) {
        Credentials next;
        next.bearer_token = file_token_.empty() ? source_.token : file_token_;
        next.client_certificate_pem = source_.client_certificate_pem;
        next.client_key_pem = source_.client_key_pem;
        if (exec_result_) {
            if (!exec_result_->bearer_token.empty()) next.bearer_token = exec_result_->bearer_token;
            if (!exec_result_->client_certificate_pem.empty()) {
                next.client_certificate_pem = exec_result_->client_certificate_pem;
                next.client_key_pem = exec_result_->client_key_pem;
            }
            next.expiry = exec_result_->expiry;
        }
        publish(std::move(next));
    }
    return current_;
}

EXECUTION_SENTINEL_DECL bool CredentialProvider::refresh_would_block() const {
    if (!source_.exec) return false;
    std::lock_guard lock(mutex_);
    if (!exec_result_ || refresh_requested_) return true;
    return exec_result_->expiry && now() + options_.exec_refresh_before_expiry >= *exec_result_->expiry;
}

EXECUTION_SENTINEL_DECL void CredentialProvider::invalidate(std::uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (generation == 0 || generation != current_.generation || generation == invalidated_generation_) return;
    invalidated_generation_ = generation;
    refresh_requested_ = true;
}
#endif

} // namespace execution_sentinel::kube

#endif // EXECUTION_SENTINEL_KUBE_DETAIL_CREDENTIALS_IMPL_HPP

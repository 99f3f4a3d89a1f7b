// The exit-code policy of the execution-sentinel command: how a finished watch becomes a process exit status.
// Pure: no I/O. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP

#include <execution_sentinel/kube/error.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace execution_sentinel::cli {

/// Process exit statuses. Distinct, stable, documented in docs/cli.md.
enum class ExitCode : int {
  succeeded = 0,           ///< The workflow finished and its engine wrote exit code 0.
  workflow_failed = 1,     ///< Non-zero workflow exit code, mass failure, or ended without a readable exit code.
  usage_error = 2,         ///< Bad command line, context, settings or kubeconfig: nothing was watched.
  timed_out = 3,           ///< The timeout passed before the completion signal appeared.
  cluster_unreachable = 4, ///< The cluster could not be reached or refused our credentials.
  interrupted = 130,       ///< SIGINT or SIGTERM: the watch was stopped and a summary printed.
};

constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

/// What a watch ended with, reduced to what decides the exit status.
struct WatchOutcome {
  bool interrupted = false;          ///< Stopped by SIGINT/SIGTERM.
  bool timed_out = false;            ///< WatchSummary::timed_out.
  bool mass_failure = false;         ///< WatchSummary::mass_failure.
  std::optional<std::int64_t> exit_code; ///< WatchSummary::exit_code (the engine's completion signal).
};

/// The policy, in order of precedence: interrupted → 130; timed out → 3; mass failure or a non-zero workflow
/// exit code → 1; exit code 0 → 0; no exit code at all (neither timed out nor interrupted) → 1, because
/// success cannot be proven.
inline ExitCode exit_code_for(const WatchOutcome& outcome) noexcept {
  if (outcome.interrupted) return ExitCode::interrupted;
  if (outcome.timed_out) return ExitCode::timed_out;
  if (outcome.mass_failure) return ExitCode::workflow_failed;
  if (!outcome.exit_code) return ExitCode::workflow_failed;
  return *outcome.exit_code == 0 ? ExitCode::succeeded : ExitCode::workflow_failed;
}

/// One word for the outcome, used in the NDJSON summary line ("outcome") and in the terminal summary.
inline std::string_view outcome_name(ExitCode code) noexcept {
  switch (code) {
  case ExitCode::succeeded: return "succeeded";
  case ExitCode::workflow_failed: return "failed";
  case ExitCode::usage_error: return "usage_error";
  case ExitCode::timed_out: return "timed_out";
  case ExitCode::cluster_unreachable: return "cluster_unreachable";
  case ExitCode::interrupted: return "interrupted";
  }
  return "unknown";
}

/// Reads the outcome from a WatchSummary in its JSON form (fields timed_out, mass_failure, exit_code; missing or
/// mistyped fields count as false/absent).
inline WatchOutcome outcome_from_summary(const boost::json::object& summary, bool interrupted) noexcept {
  WatchOutcome outcome;
  outcome.interrupted = interrupted;
  if (auto const* v = summary.if_contains("timed_out"); v && v->is_bool()) outcome.timed_out = v->get_bool();
  if (auto const* v = summary.if_contains("mass_failure"); v && v->is_bool()) outcome.mass_failure = v->get_bool();
  if (auto const* v = summary.if_contains("exit_code")) {
    if (v->is_int64()) outcome.exit_code = v->get_int64();
    else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
      outcome.exit_code = static_cast<std::int64_t>(v->get_uint64());
  }
  return outcome;
}

/// The exit status for a failure that stopped the program before or during the watch:
/// a configuration the user must fix (kubeconfig unreadable or invalid) → 2; anything else from the Kubernetes
/// client (unreachable, TLS verification, 401/403, credentials plugin failing) → 4.
inline ExitCode exit_code_for_error(const std::error_code& ec) noexcept {
  if (ec == kube::error::config_invalid) return ExitCode::usage_error;
  return ExitCode::cluster_unreachable;
}

/// Whether a failure of the first request to the cluster (before watching) ends the run at once with
/// exit status 4 (or 2 for an invalid configuration): the server is unreachable (refused, timed out, TLS
/// handshake failed), its certificate does not verify, or it refuses the credentials (401, 403, no credentials
/// obtainable). Anything else (429, 5xx, a lost connection, an odd answer) is left to the watch, which retries
/// it with backoff and reports CONNECTIVITY_LOSS.
inline bool stops_at_start(const std::error_code& ec) noexcept {
  using kube::error;
  for (auto e : {error::connect_failed, error::timeout, error::tls_handshake_failed, error::tls_verification_failed,
                 error::unauthorized, error::forbidden, error::credentials_unavailable, error::config_invalid})
    if (ec == e) return true;
  return false;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP

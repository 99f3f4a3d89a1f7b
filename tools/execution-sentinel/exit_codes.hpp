// The exit-code policy of the execution-sentinel command: how a finished watch becomes a process exit status.
// Pure: no I/O. Documented in docs/cli.md.
#ifndef EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP
#define EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP

#include <execution_sentinel/kube/error.hpp>
#include <execution_sentinel/summary.hpp>

#include <string_view>
#include <system_error>

namespace execution_sentinel::cli {

/// Process exit statuses. Distinct, stable, documented in docs/cli.md.
enum class ExitCode : int {
  succeeded = 0,           ///< The workflow finished and its engine wrote exit code 0.
  workflow_failed = 1,     ///< Non-zero workflow exit code, mass failure, or ended without a readable exit code.
  usage_error = 2,         ///< Bad command line, context, settings or kubeconfig: nothing was watched.
  timed_out = 3,           ///< The timeout passed before the completion signal appeared.
  cluster_unreachable = 4, ///< The cluster could not be reached or refused our credentials.
  output_failed = 5,       ///< Standard output could not be written (reader gone, disk full): the watch stopped.
  interrupted = 130,       ///< SIGINT or SIGTERM: the watch was stopped and a summary printed.
};

constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

/// The policy for a watch that ran to its end: interrupted → 130; otherwise the summary's outcome
/// (WatchSummary::outcome): succeeded → 0, failed → 1, timed out → 3.
inline ExitCode exit_code_for(WatchOutcome outcome, bool interrupted) noexcept {
  if (interrupted) return ExitCode::interrupted;
  switch (outcome) {
  case WatchOutcome::succeeded: return ExitCode::succeeded;
  case WatchOutcome::failed: return ExitCode::workflow_failed;
  case WatchOutcome::timed_out: return ExitCode::timed_out;
  }
  return ExitCode::workflow_failed;
}

/// One word for the outcome, used in the NDJSON summary line ("outcome") and in the terminal summary. For the
/// statuses that come from WatchSummary::outcome() it is the same word (to_string(WatchOutcome)).
inline std::string_view outcome_name(ExitCode code) noexcept {
  switch (code) {
  case ExitCode::succeeded: return to_string(WatchOutcome::succeeded);
  case ExitCode::workflow_failed: return to_string(WatchOutcome::failed);
  case ExitCode::usage_error: return "usage_error";
  case ExitCode::timed_out: return to_string(WatchOutcome::timed_out);
  case ExitCode::cluster_unreachable: return "cluster_unreachable";
  case ExitCode::output_failed: return "output_failed";
  case ExitCode::interrupted: return "interrupted";
  }
  return "unknown";
}

/// The exit status for a failure that stopped the program before or during the watch:
/// a configuration or input the user must fix (kube::error::config_invalid: a kubeconfig that is unreadable or
/// invalid, a field in it that is too large or holds control characters) → 2; anything else from the
/// Kubernetes client (unreachable, TLS verification, 401/403, credentials plugin failing) → 4.
inline ExitCode exit_code_for_error(const std::error_code& ec) noexcept {
  if (ec == kube::error::config_invalid) return ExitCode::usage_error;
  return ExitCode::cluster_unreachable;
}

} // namespace execution_sentinel::cli

#endif // EXECUTION_SENTINEL_TOOLS_EXECUTION_SENTINEL_EXIT_CODES_HPP

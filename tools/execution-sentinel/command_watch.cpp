// `execution-sentinel watch`: watch a real workflow with the cluster and credentials of a kubeconfig.
#include "alerts_hooks.hpp"
#include "commands.hpp"
#include "history_hooks.hpp"
#include "interventions_hooks.hpp"
#include "watch_run.hpp"

#include <memory>
#include <string>

namespace execution_sentinel::cli {

namespace {

struct WatchFlags {
  std::string context;
  std::string poll;
  std::string timeout;
  std::string kubeconfig;
  std::string kube_context;
  std::string log_patterns;
  std::string output = "auto";
  std::string history;
  std::string state;
  bool fresh = false;
  std::string alerts;
  std::string interventions;
};

const char* const footer = R"(Examples:
  execution-sentinel watch --context context.json
  execution-sentinel watch --context - --poll 5 --timeout 7200 < context.json
  execution-sentinel watch -c context.json --kubeconfig ~/.kube/prod --kube-context prod --output json

Settings also come from SENTINEL_* variables and ./.env (SENTINEL_POLL_INTERVAL, SENTINEL_TIMEOUT,
SENTINEL_KUBECONFIG, ...); flags win. Exit status: 0 succeeded, 1 workflow failed, 2 usage or input
error, 3 timed out, 4 cluster unreachable or credentials refused, 5 output could not be written,
130 interrupted.)";

/// `--state FILE`: a SQLite file; an explicit store address is taken as it is.
std::string state_address(const std::string& flag) {
  return flag.find("://") != std::string::npos || flag.rfind("sqlite:", 0) == 0 || flag == "memory:" ? flag
                                                                                                     : "sqlite:" + flag;
}

} // namespace

Command add_watch_command(CLI::App& app) {
  auto flags = std::make_shared<WatchFlags>();
  auto* cmd = app.add_subcommand("watch", "Watch a workflow on the cluster of your kubeconfig until it finishes");
  cmd->add_option("-c,--context", flags->context, "MonitoringContext JSON file, or - for stdin (see docs/cli.md)")
      ->required();
  cmd->add_option("--poll", flags->poll,
                  "Seconds between completion checks, at least 0.1 (overrides SENTINEL_POLL_INTERVAL; default 10)");
  cmd->add_option("--timeout", flags->timeout, "Seconds before giving up (overrides SENTINEL_TIMEOUT; default 3600)");
  cmd->add_option("--kubeconfig", flags->kubeconfig,
                  "Kubeconfig file (default: SENTINEL_KUBECONFIG, KUBECONFIG, ~/.kube/config, in-cluster)");
  cmd->add_option("--kube-context", flags->kube_context, "Kubeconfig context (default: its current-context)");
  cmd->add_option("--log-patterns", flags->log_patterns,
                  "File of your own engine log patterns (regex -> report; overrides SENTINEL_LOG_PATTERNS)");
  cmd->add_option("-o,--output", flags->output, "auto (live view on a terminal, NDJSON otherwise), json or text")
      ->capture_default_str();
  cmd->add_option("--history", flags->history,
                  "Record the run in a history store: sqlite:FILE or postgresql://... (default: SENTINEL_HISTORY, "
                  "then SENTINEL_STATE; see docs/history.md)");
  cmd->add_option("--state", flags->state,
                  "SQLite file that keeps the run's checkpoint (and its history) so that a restarted watch resumes "
                  "without repeating a report (default: SENTINEL_STATE; --history wins; see docs/history.md)");
  cmd->add_flag("--fresh", flags->fresh, "Ignore a saved checkpoint of this run and start afresh");
  cmd->add_option("--alerts", flags->alerts,
                  "Alert sinks file (YAML): Alertmanager, Slack, webhooks; see docs/alerts.md");
  cmd->add_option("--interventions", flags->interventions,
                  "Intervention policies file (YAML): act on findings, dry run first; see docs/interventions.md");
  cmd->footer(footer);
  return {cmd, [flags] {
            auto const mode = output_mode(flags->output);
            auto settings = load_settings(flags->poll, flags->timeout, flags->kubeconfig, flags->kube_context,
                                          flags->log_patterns);
            auto context = load_context(flags->context);
            auto cluster = load_cluster(settings);
            auto const history = with_interventions(
                with_alerts(history_hooks(!flags->history.empty() ? flags->history
                                          : !flags->state.empty() ? state_address(flags->state)
                                                                  : std::string(),
                                          context, flags->fresh),
                            flags->alerts, context),
                flags->interventions,
                context);
            return run_watch(context, settings, cluster, mode, history);
          }};
}

} // namespace execution_sentinel::cli

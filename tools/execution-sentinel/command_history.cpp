// `execution-sentinel history`: what the run history store remembers (docs/history.md): the runs, one run's
// reports and task attempts, per-type durations and failure rates, flaky task types.
#include "arguments.hpp"
#include "commands.hpp"
#include "exit_codes.hpp"
#include "history_hooks.hpp"
#include "history_view.hpp"
#include "program.hpp"
#include "terminal.hpp"
#include "watch_run.hpp"

#include <execution_sentinel/history/baselines.hpp>
#include <execution_sentinel/history/checkpoint_store.hpp>
#include <execution_sentinel/history/open.hpp>
#include <execution_sentinel/history/recorder.hpp>
#include <execution_sentinel/history/writer.hpp>
#include <execution_sentinel/settings.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

namespace execution_sentinel::cli {

namespace {

namespace hv = history_view;
namespace h = execution_sentinel::history;

struct HistoryFlags {
  std::string store;
  std::string output = "auto";
  std::string workflow;
  std::size_t limit = 50;
  std::string run_id;
};

const char* const footer = R"(Examples:
  execution-sentinel history --store sqlite:sentinel.db runs
  execution-sentinel history show 'hyperflow/1000genome/2026-12-05T01:23:45.678Z'
  execution-sentinel history --store postgresql://sentinel@db.example/sentinel types --workflow 1000genome
  execution-sentinel history flaky --output json

The store is --store, else SENTINEL_HISTORY, else SENTINEL_STATE (a SQLite file). Output: a table on a
terminal, JSON otherwise. Exit status: 0 answered, 2 bad input (address, run id, missing or unreadable
store), 4 the PostgreSQL server cannot be reached.)";

std::optional<std::string> lookup_setting(const char* name) {
  if (const char* v = std::getenv(name)) return std::string(v);
  try {
    if (auto text = read_dotenv_file(".env")) {
      auto entries = parse_dotenv(*text);
      if (auto it = entries.find(name); it != entries.end()) return it->second;
    }
  } catch (const std::exception& e) {
    fail(ExitCode::usage_error, std::string("settings: ") + e.what());
  }
  return std::nullopt;
}

void print(const std::string& text) {
  if (int const error = write_fully(STDOUT_FILENO, text); error != 0)
    fail(ExitCode::output_failed, output_error_message(error));
}

/// Opens the store for reading (an existing SQLite file only) and runs `body` on it; store errors become exit
/// statuses with one line.
template <class Body> int with_store(const HistoryFlags& flags, Body body) {
  auto address = hv::store_address(flags.store, lookup_setting);
  if (!address)
    fail(ExitCode::usage_error, "no history store: give --store sqlite:FILE or postgresql://…, or set "
                                "SENTINEL_HISTORY or SENTINEL_STATE");
  h::StoreLocation location;
  try {
    location = h::parse_store_location(*address);
  } catch (const h::StoreAddressError& e) {
    fail(ExitCode::usage_error, std::string("--store: ") + e.what());
  }
  auto const text = use_text_output(output_mode(flags.output), probe_terminal(STDOUT_FILENO).is_terminal);
  std::shared_ptr<h::RunHistoryStore> store;
  try {
    h::OpenOptions options;
    options.create = false; // reading: a missing file is an error, not a new empty store
    store = h::open_store(location, options);
  } catch (const h::StoreError& e) {
    fail(location.kind == h::StoreKind::postgresql ? ExitCode::cluster_unreachable : ExitCode::usage_error,
         e.what());
  }
  try {
    print(body(*store, text));
  } catch (const h::StoreError& e) {
    fail(ExitCode::usage_error, e.what());
  }
  return to_int(ExitCode::succeeded);
}

/// What `watch --history` keeps alive for the length of the watch.
struct HistoryRecording {
  std::shared_ptr<h::RunHistoryStore> store;
  std::unique_ptr<h::HistoryWriter> writer;
  std::shared_ptr<h::HistoryCheckpointStore> checkpoints;
  std::unique_ptr<h::RunRecorder> recorder;
  ReportSubscription subscription;
  bool finished = false;
};

} // namespace

namespace {

/// The baselines learned from the store for `workflow` (docs/history.md, "Baselines"), read once before the watch
/// starts. A store that cannot be read for them is said once; the watch goes on without them.
Baselines load_watch_baselines(h::RunHistoryStore& store, const std::string& workflow, const std::string& run_id,
                                std::optional<int> min_samples) {
  BaselineOptions options;
  if (min_samples) {
    options.min_samples = static_cast<std::size_t>(std::max(1, *min_samples));
  } else {
    try {
      auto settings = execution_sentinel::load_settings(
          [](const std::string& name) { return lookup_setting(name.c_str()); });
      options.min_samples = static_cast<std::size_t>(std::max(1, settings.baseline_min_samples));
    } catch (const SettingsError& e) {
      fail(ExitCode::usage_error, std::string("settings: ") + e.what());
    }
  }
  try {
    auto baselines = h::load_baselines(store, workflow, options, run_id);
    if (!baselines.empty())
      print_note("history: learned durations of " + std::to_string(baselines.size()) + " task type" +
                 (baselines.size() == 1 ? "" : "s") + " from past runs");
    return baselines;
  } catch (const h::StoreError& e) {
    print_error(std::string("history: past durations could not be read, watching without them: ") + e.what());
  }
  return Baselines(workflow);
}

} // namespace

/// The checkpoint to resume from: this context's, of a run that did not finish; else nullopt (said why).
std::optional<boost::json::object> resumable_checkpoint(h::HistoryCheckpointStore& store, const MonitoringContext& context) {
  std::optional<boost::json::object> cp;
  try {
    cp = store.load(checkpoint_key(context));
  } catch (const h::StoreError& e) {
    print_error(std::string("state: the checkpoint could not be read, starting afresh: ") + e.what());
    return std::nullopt;
  }
  if (!cp) return std::nullopt;
  auto* digest = cp->if_contains("context_digest");
  if (cp->contains("finished_at")) return std::nullopt; // that run ended: this is a new one
  if (!digest || !digest->is_string() || digest->as_string() != context_digest(context)) {
    print_note("state: the saved checkpoint was made for another context; starting afresh");
    return std::nullopt;
  }
  return cp;
}

WatchHooks history_hooks(const std::string& store_flag, const MonitoringContext& context, bool fresh,
                         std::optional<int> baseline_min_samples) {
  auto address = hv::store_address(store_flag, lookup_setting);
  if (!address) return {};
  h::StoreLocation location;
  try {
    location = h::parse_store_location(*address);
  } catch (const h::StoreAddressError& e) {
    fail(ExitCode::usage_error, std::string("--history: ") + e.what());
  }
  auto rec = std::make_shared<HistoryRecording>();
  try {
    rec->store = h::open_store(location);
  } catch (const h::StoreError& e) {
    fail(ExitCode::usage_error, e.what());
  }
  h::HistoryWriterOptions options;
  options.on_status = [](std::string_view line) { print_error(std::string("history: ") + std::string(line)); };
  rec->writer = std::make_unique<h::HistoryWriter>(rec->store, std::move(options));
  std::string workflow = lookup_setting("SENTINEL_WORKFLOW_NAME").value_or("");
  if (workflow.empty()) workflow = context.namespace_;
  // A run in progress that an earlier watch checkpointed is resumed under its run id (docs/history.md).
  rec->checkpoints = std::make_shared<h::HistoryCheckpointStore>(rec->store, *rec->writer);
  auto resume = fresh ? std::nullopt : resumable_checkpoint(*rec->checkpoints, context);
  auto record = h::make_run_record(context, workflow, Clock::now());
  if (resume)
    if (auto* extra = resume->if_contains("extra"); extra && extra->is_object())
      if (auto* id = extra->as_object().if_contains("run_id"); id && id->is_string() && !id->as_string().empty() &&
                                                               id->as_string().size() <= 1024)
        record.id = std::string(id->as_string());
  if (resume) {
    try { // reports recorded after the checkpoint was saved were made: not again
      h::merge_recorded_reports(*resume, rec->store->reports(record.id));
    } catch (const h::StoreError& e) {
      print_error(std::string("state: the run's recorded reports could not be read: ") + e.what());
    }
    print_note("state: resuming run " + record.id + " from its checkpoint");
  }
  rec->recorder = std::make_unique<h::RunRecorder>(*rec->writer, record);

  WatchHooks hooks;
  hooks.checkpoints = rec->checkpoints;
  hooks.history_store = rec->store;
  hooks.resume_from = std::move(resume);
  hooks.checkpoint_extra = {{"run_id", record.id}};
  hooks.baselines = load_watch_baselines(*rec->store, workflow, record.id, baseline_min_samples);
  hooks.reports = [rec](boost::asio::any_io_executor ex, ReportSubscription subscription) {
    rec->subscription = std::move(subscription);
    boost::asio::co_spawn(ex, rec->recorder->record(rec->subscription), boost::asio::detached);
  };
  hooks.finished = [rec](const WatchSummary& summary, bool interrupted) {
    if (rec->finished) return;
    rec->finished = true;
    rec->recorder->finish(Clock::now(), interrupted ? std::string("interrupted") : std::string(to_string(summary.outcome())),
                          summary);
    (void)rec->writer->close(std::chrono::seconds(10)); // announces what could not be written
  };
  return hooks;
}

Command add_history_command(CLI::App& app) {
  auto flags = std::make_shared<HistoryFlags>();
  auto* cmd = app.add_subcommand("history", "What the run history store remembers: runs, reports, task statistics");
  cmd->add_option("--store", flags->store,
                  "sqlite:FILE, postgresql://… or a file path (default: SENTINEL_HISTORY, then SENTINEL_STATE)");
  cmd->add_option("-o,--output", flags->output, "auto (a table on a terminal, JSON otherwise), json or text")
      ->capture_default_str();
  cmd->require_subcommand(1);
  cmd->footer(footer);

  auto* runs = cmd->add_subcommand("runs", "List the runs, newest first")->fallthrough();
  runs->add_option("--workflow", flags->workflow, "Only runs of this workflow name");
  runs->add_option("--limit", flags->limit, "At most this many runs")->capture_default_str()->check(CLI::Range(1, 100000));

  auto* show = cmd->add_subcommand("show", "One run: its reports and task attempts")->fallthrough();
  show->add_option("run", flags->run_id, "The run id (see `history runs`)")->required();

  auto* types = cmd->add_subcommand("types", "Per task type: duration P50/P95 and failure rate across runs")
                    ->fallthrough();
  types->add_option("--workflow", flags->workflow, "Only runs of this workflow name");

  auto* flaky = cmd->add_subcommand("flaky", "Task types that failed in some runs and passed in others")->fallthrough();
  flaky->add_option("--workflow", flags->workflow, "Only runs of this workflow name");

  return {cmd, [flags, runs, show, types, flaky] {
            (void)output_mode(flags->output); // a bad --output is an input error before anything is opened
            if (runs->parsed())
              return with_store(*flags, [&](h::RunHistoryStore& s, bool text) {
                auto list = s.list_runs({flags->workflow, flags->limit});
                return text ? hv::runs_table(list) : hv::runs_json(list);
              });
            if (show->parsed())
              return with_store(*flags, [&](h::RunHistoryStore& s, bool text) {
                auto run = s.find_run(flags->run_id);
                if (!run) fail(ExitCode::usage_error, "no run " + hv::clean(flags->run_id) + " in the history store");
                auto reports = s.reports(run->id);
                auto tasks = s.tasks(run->id);
                return text ? hv::run_detail_table(*run, reports, tasks) : hv::run_detail_json(*run, reports, tasks);
              });
            if (types->parsed())
              return with_store(*flags, [&](h::RunHistoryStore& s, bool text) {
                auto stats = h::type_statistics(s.task_attempts(flags->workflow, ""));
                return text ? hv::types_table(stats) : hv::types_json(stats);
              });
            return with_store(*flags, [&](h::RunHistoryStore& s, bool text) {
              auto list = h::flaky_types(s.task_attempts(flags->workflow, ""));
              return text ? hv::flaky_table(list) : hv::flaky_json(list);
            });
          }};
}

} // namespace execution_sentinel::cli

// `execution-sentinel serve --config sentinel.yaml`: one sentinel for every workflow run of a cluster. It watches
// engine pods (one list+watch per configured namespace, or one cluster-wide), starts a DefaultSentinel for each
// engine pod that appears Running (its context from a labelled ConfigMap, else inferred) and for each run a client
// registers (POST /api/v1/runs with a bearer token and the run's context), ends it on completion,
// timeout or the engine pod's deletion, records it in the history store and alert sinks when configured, and
// serves metrics, health, the runs API and a live page over HTTP or HTTPS. Documented in docs/serve.md and docs/api.md.
//
// The decisions (configuration, discovery, context choice, the registry's JSON) are the pure functions of
// <execution_sentinel/serve/config.hpp> and <execution_sentinel/serve/runs.hpp>; this file drives them on one
// io_context.
#include "alerts_hooks.hpp"
#include "commands.hpp"
#include "exit_codes.hpp"
#include "history_hooks.hpp"
#include "program.hpp"
#include "serve_page.hpp"
#include "view.hpp"
#include "watch_run.hpp"

#include <execution_sentinel/alerts/config.hpp>
#include <execution_sentinel/engine_log.hpp>
#include <execution_sentinel/history/open.hpp>
#include <execution_sentinel/history/store.hpp>
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/configmap_checkpoint_store.hpp>
#include <execution_sentinel/kube/shared_informer.hpp>
#include <execution_sentinel/kube/watcher.hpp>
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/serve/config.hpp>
#include <execution_sentinel/serve/event_stream.hpp>
#include <execution_sentinel/serve/http_server.hpp>
#include <execution_sentinel/serve/leases.hpp>
#include <execution_sentinel/serve/registration.hpp>
#include <execution_sentinel/serve/router.hpp>
#include <execution_sentinel/serve/runs.hpp>
#include <execution_sentinel/serve/sentinel_metrics.hpp>

#include <boost/asio.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

namespace execution_sentinel::cli {

namespace {

namespace asio = boost::asio;
namespace sv = execution_sentinel::serve;

struct ServeFlags {
  std::string config;
  bool print_default = false;
  bool check = false;
};

const char* const footer = R"(Examples:
  execution-sentinel serve --print-default-config > sentinel.yaml
  execution-sentinel serve --config sentinel.yaml
  execution-sentinel serve --config sentinel.yaml --check-config

Watches every HyperFlow run of the configured namespaces (an engine pod appearing starts one) and serves
/metrics, /healthz, /readyz, the runs API under /api/v1 and a live page at / (docs/serve.md, docs/api.md).
Exit status: 0 stopped by SIGINT/SIGTERM (or --check-config passed), 2 invalid configuration (or a file it
names: TLS certificate or key, tokens file) or address in use, 4 cluster configuration unusable.)";

/// What serve reads from the files its configuration names at start: the tokens that may register runs, and the
/// server's TLS context.
struct ServeFiles {
  std::vector<sv::ApiToken> tokens;
  std::string tokens_text; ///< the tokens file as read (a change is read again)
  std::shared_ptr<asio::ssl::context> tls;
};

/// Checks the files the configuration names (log patterns, alert sinks, history store, TLS certificate and key,
/// tokens file) and returns what serve keeps of them; exit 2 naming them.
ServeFiles check_referenced_files(const sv::ServeConfig& config, const std::string& path) {
  ServeFiles files;
  if (!config.tls_cert_file.empty()) {
    try {
      files.tls = sv::make_server_tls_context(config.tls_cert_file, config.tls_key_file);
    } catch (const sv::TlsFileError& e) {
      fail(ExitCode::usage_error, path + ": http.tls." + e.field() + ": " + e.what());
    }
  }
  if (!config.api_tokens_file.empty()) {
    try {
      files.tokens_text = sv::read_tokens_file(config.api_tokens_file);
      files.tokens = sv::parse_tokens_file(files.tokens_text, config.api_tokens_file);
    } catch (const sv::TokenFileError& e) {
      fail(ExitCode::usage_error, path + ": api.tokens_file: " + e.what());
    }
  }
  if (!config.settings.log_patterns_file.empty()) {
    try {
      (void)load_log_patterns(config.settings.log_patterns_file);
    } catch (const std::exception& e) {
      fail(ExitCode::usage_error, path + ": thresholds.log_patterns: " + e.what());
    }
  }
  if (!config.alerts.empty()) {
    try {
      auto alerts = alerts::load_alerts_config(config.alerts);
      asio::io_context check;
      alerts::AlertDispatcher validate(check.get_executor(), alerts, std::make_shared<alerts::MemoryDeliveryLedger>());
    } catch (const std::exception& e) {
      fail(ExitCode::usage_error, path + ": sinks.alerts: " + e.what());
    }
  }
  if (!config.history.empty()) {
    try {
      auto location = history::parse_store_location(config.history);
      (void)history::open_store(location);
    } catch (const std::exception& e) {
      fail(ExitCode::usage_error, path + ": store.history: " + e.what());
    }
  }
  return files;
}

kube::ClusterConfig load_serve_cluster(const sv::ServeConfig& config) {
  try {
    if (config.in_cluster) return kube::load_in_cluster();
    kube::KubeconfigOptions options;
    options.path = config.kubeconfig;
    options.context = config.kube_context;
    return kube::load_default(options);
  } catch (const kube::Error& e) {
    std::string message = e.what();
    if (message.rfind("kubeconfig", 0) != 0) message = "kubeconfig: " + message;
    fail(exit_code_for_error(e.code()), message);
  }
}

/// Parses a non-negative integer query parameter; 400 when malformed or beyond `max`.
std::uint64_t query_number(const sv::RouteRequest& q, std::string_view name, std::uint64_t fallback,
                           std::uint64_t max) {
  auto v = q.query(name);
  if (!v) return fallback;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), value);
  if (v->empty() || ec != std::errc{} || ptr != v->data() + v->size() || value > max)
    throw sv::HttpError(400, "query parameter " + std::string(name) + ": expected a whole number from 0 to " +
                                 std::to_string(max));
  return value;
}

/// The run named by the path, checked: 400 for names Kubernetes would not accept, 404 when unknown.
void check_run_names(const sv::RouteRequest& q) {
  if (!execution_sentinel::detail::es_is_dns1123_label(q.param("namespace"))) throw sv::HttpError(400, "not a valid namespace name");
  if (!execution_sentinel::detail::es_is_dns1123_subdomain(q.param("run"))) throw sv::HttpError(400, "not a valid run (engine pod) name");
}

/// Everything `serve` runs, on one io_context (single-threaded: every member is used from its thread, except the
/// registry, the metrics and the event hub, which are thread-safe).
class Server {
public:
  Server(sv::ServeConfig config, kube::ClusterConfig cluster, ServeFiles files)
      : config_(std::move(config)), cluster_(std::move(cluster)), files_(std::move(files)),
        registry_({.keep_finished = config_.keep_finished_runs, .keep_reports = config_.keep_reports_per_run}),
        hub_(std::make_shared<sv::EventHub>(sv::EventStreamOptions{}, &metrics_.registry())),
        client_(io_.get_executor(), cluster_, counted_client_options({})), signals_(io_, SIGINT, SIGTERM), ticker_(io_), tokens_timer_(io_) {
    for (const auto& ns : config_.namespaces) scopes_[ns] = Scope{};
    if (config_.namespaces.empty()) scopes_[""] = Scope{};
    if (config_.ha) {
      identity_ = config_.ha_identity.empty() ? default_identity() : config_.ha_identity;
      member_ns_ = !config_.namespaces.empty() ? config_.namespaces.front()
                   : !cluster_.namespace_.empty() ? cluster_.namespace_
                                                  : std::string("default");
      // The lease calls answer within the renew deadline or fail (the next round tries again).
      kube::ClientOptions o;
      const auto limit = std::max(config_.leases.renew_deadline / 2, std::chrono::milliseconds(500));
      o.connect_timeout = o.handshake_timeout = o.request_timeout = limit;
      o.max_retries = 0;
      lease_client_ = std::make_unique<kube::Client>(io_.get_executor(), cluster_, counted_client_options(std::move(o)));
      if (!config_.history.empty()) {
        try { // to see whether a run taken over had ended already (its checkpoint says so)
          ha_store_ = history::open_store(history::parse_store_location(config_.history));
        } catch (const std::exception& e) {
          log(std::string("the history store cannot be opened for the leases: ") + e.what());
        }
      }
    }
  }

  int run() {
    start_http();
    wait_signal();
    for (auto& [ns, scope] : scopes_) {
      scope.cancel = std::make_shared<asio::cancellation_signal>();
      asio::co_spawn(io_, discover(ns), asio::bind_cancellation_slot(scope.cancel->slot(), asio::detached));
    }
    if (config_.ha) {
      log("sharing the runs through leases as " + identity_ + " (lease " +
          std::to_string(config_.leases.lease_duration.count()) + " ms, renew deadline " +
          std::to_string(config_.leases.renew_deadline.count()) + " ms, retry " +
          std::to_string(config_.leases.retry_period.count()) + " ms)");
      asio::co_spawn(io_, lease_loop(), asio::detached);
    }
    tick();
    io_.run();
    finishing_.join();
    print_note("serve: stopped");
    return to_int(ExitCode::succeeded);
  }

private:
  struct Scope {
    std::shared_ptr<asio::cancellation_signal> cancel;
    bool synced = false;
    std::string problem;
  };
  struct ActiveRun {
    std::string ns, name, uid;
    std::shared_ptr<DefaultSentinel> sentinel;
    asio::cancellation_signal cancel;
    std::optional<sv::RunState> end_state; ///< set when serve ends the run itself (engine deleted, stopping)
    std::string end_message;
    WatchHooks hooks;
    bool lease_lost = false; ///< another replica holds its lease now: this one writes it no more
    std::shared_ptr<kube::ConfigMapCheckpointStore> configmap_checkpoints; ///< ha without a history store
    std::optional<MonitoringContext> registered; ///< the context a client registered it with
    std::optional<MonitoringContext> context;    ///< once chosen
  };
  struct PendingRun {
    std::string ns, name, uid;
    std::optional<MonitoringContext> registered; ///< a run a client registered (POST /api/v1/runs)
  };

  static std::string run_key(std::string_view ns, std::string_view name) { return sv::RunRegistry::key(ns, name); }

  void log(const std::string& line) { print_note("serve: " + sanitize(line)); }

  // ------------------------------------------------------------------------------------------------ HTTP

  void start_http() {
    sv::Router router;
    sv::add_health_routes(router, metrics_.registry(), [this] { return readiness(); });
    router.get("/", [](const sv::RouteRequest&) {
      sv::HttpResponse r;
      r.status = 200;
      r.content_type = "text/html; charset=utf-8";
      r.body = std::string(serve_page_html);
      r.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
      return r;
    });
    router.get("/api/v1/runs", [this](const sv::RouteRequest&) { return sv::HttpResponse::json(200, registry_.runs_json()); });
    router.get("/api/v1/stats", [this](const sv::RouteRequest&) { return sv::HttpResponse::json(200, stats_json()); });
    router.get("/api/v1/events", [this](const sv::RouteRequest&) { return sv::HttpResponse::event_stream(hub_); });
    router.get("/api/v1/runs/{namespace}/{run}", [this](const sv::RouteRequest& q) {
      check_run_names(q);
      auto run = registry_.run_json(q.param("namespace"), q.param("run"));
      if (!run) throw sv::HttpError(404, "no run " + run_key(q.param("namespace"), q.param("run")));
      return sv::HttpResponse::json(200, *run);
    });
    auto events = [this](const sv::RouteRequest& q) {
      check_run_names(q);
      if (!registry_.contains(q.param("namespace"), q.param("run")))
        throw sv::HttpError(404, "no run " + run_key(q.param("namespace"), q.param("run")));
      return sv::HttpResponse::event_stream(hub_, run_key(q.param("namespace"), q.param("run")));
    };
    router.get("/api/v1/runs/{namespace}/{run}/events", events);
    router.get("/api/v1/runs/{namespace}/{run}/reports", [this, events](const sv::RouteRequest& q) {
      check_run_names(q);
      if (q.raw[boost::beast::http::field::accept].find("text/event-stream") != boost::beast::string_view::npos)
        return events(q);
      auto after = query_number(q, "after", 0, UINT64_MAX);
      auto limit = query_number(q, "limit", 100, 1000);
      if (limit == 0) throw sv::HttpError(400, "query parameter limit: must be at least 1");
      auto page = registry_.reports(q.param("namespace"), q.param("run"), after, static_cast<std::size_t>(limit));
      if (!page) throw sv::HttpError(404, "no run " + run_key(q.param("namespace"), q.param("run")));
      return sv::HttpResponse::json(200, sv::to_json(*page));
    });

    router.post("/api/v1/runs", [this](const sv::RouteRequest& q) { return register_run(q); });

    http_ = std::make_unique<sv::HttpServer>(
        io_.get_executor(), std::move(router),
        sv::HttpServerOptions{.address = config_.http_address,
                              .port = config_.http_port,
                              .limits = {.body_limit = config_.api_max_body_bytes},
                              .tls = files_.tls,
                              .metrics = &metrics_.registry()});
    boost::asio::ip::tcp::endpoint endpoint;
    try {
      endpoint = http_->start();
    } catch (const std::exception& e) {
      fail(ExitCode::usage_error, std::string("http.listen: ") + e.what());
    }
    std::string host = endpoint.address().to_string();
    if (endpoint.address().is_v6()) host = "[" + host + "]";
    print_note(std::string("serve: listening on ") + (files_.tls ? "https://" : "http://") + host + ":" +
               std::to_string(endpoint.port()));
    if (files_.tokens.empty()) log("run registration (POST /api/v1/runs) is disabled: no api.tokens_file");
    else log("run registration (POST /api/v1/runs) accepts " + std::to_string(files_.tokens.size()) + " token(s)");
    watch_tokens_file();
  }

  /// The tokens file is read again every 2 s; a changed file that is valid replaces the tokens (a Kubernetes
  /// Secret updated in place), one that is not is logged and the tokens in use are kept.
  void watch_tokens_file() {
    if (config_.api_tokens_file.empty() || stopping_) return;
    tokens_timer_.expires_after(std::chrono::seconds(2));
    tokens_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      reread_tokens_file();
      watch_tokens_file();
    });
  }

  void reread_tokens_file() {
    const auto& path = config_.api_tokens_file;
    std::string problem;
    try {
      auto text = sv::read_tokens_file(path);
      if (text == files_.tokens_text) return;
      files_.tokens_text = std::move(text);
      files_.tokens = sv::parse_tokens_file(files_.tokens_text, path);
      tokens_problem_.clear();
      log("api.tokens_file read again: run registration accepts " + std::to_string(files_.tokens.size()) + " token(s)");
      return;
    } catch (const sv::TokenFileError& e) {
      problem = e.what();
    }
    if (problem != tokens_problem_) log("api.tokens_file: " + problem + "; the tokens read before are kept");
    tokens_problem_ = problem;
  }

  /// POST /api/v1/runs: a client registers a run with its context (docs/api.md, "Registering a run"). Answered on
  /// the io_context's thread, as every member here is used.
  sv::HttpResponse register_run(const sv::RouteRequest& q) {
    const auto auth = sv::authorize(files_.tokens, q.raw);
    if (auth.decision != sv::AuthDecision::allowed) return sv::auth_refusal(auth);
    if (stopping_) throw sv::HttpError(503, "serve is stopping");
    auto check = sv::check_registration(q.raw, config_.namespaces, config_.api_max_body_bytes);
    if (check.refusal) return std::move(*check.refusal);
    const MonitoringContext& context = *check.context;
    const auto key = run_key(context.namespace_, context.engine_pod_name);

    // What serve knows of this run already, and with which context.
    bool known = false;
    std::optional<MonitoringContext> known_context;
    std::string known_as;
    if (auto it = active_.find(key); it != active_.end()) {
      known = true;
      known_context = it->second->context ? it->second->context : it->second->registered;
      if (!known_context) known_as = "it is being started from discovery";
    } else if (auto p = std::find_if(pending_.begin(), pending_.end(),
                                     [&](const PendingRun& r) { return run_key(r.ns, r.name) == key; });
               p != pending_.end()) {
      known = true;
      known_context = p->registered;
      if (!known_context) known_as = "it was discovered and waits for a slot";
    } else if (auto c = registry_.context_of(context.namespace_, context.engine_pod_name)) {
      known = true;
      known_context = std::move(c);
    } else if (auto e = leases_.find(key); config_.ha && e != leases_.end() && !e->second.registered) {
      known = true;
      known_as = "it was discovered and is watched by the replica holding its lease";
    } // (a registered run another replica holds: its context is compared with the one stored, below)
    const auto action = sv::registration_action(known, known_context ? &*known_context : nullptr, context);
    switch (action) {
    case sv::RegistrationAction::conflict:
      throw sv::HttpError(409, "run " + key + " is known with another context" +
                                   (known_as.empty() ? std::string() : " (" + known_as + ")"));
    case sv::RegistrationAction::existing: return registration_answer(context, 200, "waiting");
    case sv::RegistrationAction::start: break;
    }
    if (config_.ha) { // the context goes to a ConfigMap and the run gets its Lease before the answer
      sv::HttpResponse later;
      later.deferred = [this, context, token = auth.token_name] { return register_shared(context, token); };
      return later;
    }
    log("run " + key + " registered (token " + auth.token_name + ")");
    PendingRun p{context.namespace_, context.engine_pod_name, "", context};
    if (active_.size() >= config_.max_active_runs) {
      log("run " + key + " waits: " + std::to_string(config_.max_active_runs) + " runs are watched already");
      pending_.push_back(std::move(p));
      return registration_answer(context, 201, "waiting");
    }
    start_run(std::move(p));
    return registration_answer(context, 201, "watching");
  }

  /// The answer to a registration: the run as the API shows it (or, not started yet, its context and `state`),
  /// with its URL in the body and in Location.
  sv::HttpResponse registration_answer(const MonitoringContext& context, unsigned status, const std::string& state) {
    const auto url = sv::run_url(context.namespace_, context.engine_pod_name);
    boost::json::object o;
    if (auto run = registry_.run_json(context.namespace_, context.engine_pod_name)) o = std::move(*run);
    else o = {{"namespace", context.namespace_}, {"run", context.engine_pod_name}, {"state", state},
              {"context_source", "registered"}, {"context", to_json(context)}};
    o["url"] = url;
    auto r = sv::HttpResponse::json(status, o);
    r.headers.emplace_back("Location", url);
    return r;
  }

  /// A registration with ha (docs/serve.md, "Registered runs and ha"): the context is stored in the run's
  /// registration ConfigMap, then the run's Lease is created, held by this replica, annotated as registered, so that
  /// the replica that takes the run over reads the same context. 201 once both are written; 200 when the run is
  /// registered already with the same context (on any replica); 409 for another context or a run discovered
  /// and held elsewhere; 503 when the cluster refuses the writes (nothing is watched then: the client retries).
  asio::awaitable<sv::HttpResponse> register_shared(MonitoringContext context, std::string token_name) {
    const auto key = run_key(context.namespace_, context.engine_pod_name);
    const std::string ns = context.namespace_, name = context.engine_pod_name;
    // 1. The context, in its ConfigMap. One left by a registration that failed before its Lease was written is
    // replaced, whatever context it holds; one whose run has a Lease is that run's: the same context is a repeat.
    bool created_configmap = false;
    auto stored_write = co_await write_registration(context, "");
    if (stored_write.status == 413 || stored_write.status == 422)
      throw sv::HttpError(413, "the run's context is too large to be kept in a ConfigMap: " + stored_write.problem);
    if (!stored_write.ok && stored_write.status != 409)
      throw sv::HttpError(503, "the run's context cannot be stored in the cluster (ConfigMap " +
                                   sv::registration_configmap_name(key) + " in " + ns + "): " + stored_write.problem);
    created_configmap = stored_write.ok;
    if (!created_configmap) {
      auto stored = co_await read_registration(ns, name);
      if (!stored.context && !stored.invalid)
        throw sv::HttpError(503, "run " + key + ": its registration ConfigMap cannot be read: " + stored.problem);
      if (!stored.context || !(*stored.context == context)) {
        const auto lease = co_await registration_lease(ns, key);
        if (lease) throw sv::HttpError(409, "run " + key + " is registered with another context");
        auto replaced = co_await write_registration(context, stored.resource_version);
        if (!replaced.ok)
          throw sv::HttpError(replaced.status == 409 ? 409 : 503,
                              "run " + key + ": its registration ConfigMap cannot be replaced: " + replaced.problem);
        created_configmap = true;
      }
    }
    // From here, a refusal deletes the ConfigMap this request wrote, so that a new registration starts afresh.
    auto refuse = [&](unsigned status, const std::string& message) {
      if (created_configmap) asio::co_spawn(io_, delete_registration(ns, key), asio::detached);
      return sv::HttpError(status, message);
    };
    if (stopping_) throw refuse(503, "serve is stopping");
    // 2. Its Lease, held here.
    if (auto it = leases_.find(key); it != leases_.end() && (it->second.held || it->second.ending))
      co_return registration_answer(context, 200, "waiting");
    // At runs.max_active, the Lease is created free: the first replica with room takes the run (this one included).
    const bool room = active_.size() < config_.max_active_runs;
    sv::LeaseRecord record = sv::acquired_lease(std::nullopt, sv::lease_name(key), ns, key, "", identity_, Clock::now(),
                                                config_.leases);
    if (!room) record = sv::released_lease(std::move(record), Clock::now());
    record.registered = true;
    const auto at = Clock::now();
    auto w = co_await write_lease(std::move(record));
    if (!w.written && w.status != 409) { // no answer, or an error: it may have been written all the same
      std::optional<sv::LeaseRecord> lease;
      try {
        lease = co_await read_lease(ns, sv::lease_name(key));
      } catch (const std::exception&) {
        throw sv::HttpError(503, "the run's lease cannot be created (" + w.problem + "); register it again");
      }
      if (!lease) throw refuse(503, "the run's lease cannot be created (" + w.problem + "); register it again");
      if (lease->registered && lease->holder == (room ? identity_ : std::string()) && lease->finished.empty())
        w.written = *lease; // written before the answer was lost
      else
        w.status = 409;
    }
    if (w.written && (!room || active_.size() >= config_.max_active_runs || stopping_)) {
      auto& e = leases_[key];
      e.ns = ns;
      e.name = name;
      e.registered = true;
      if (!e.held) e.observed = sv::ObservedLease{*w.written, Clock::now()};
      if (!w.written->holder.empty()) { // (the last slot was taken, or serve stops, meanwhile) given up at once
        e.held = true;
        e.last_renewed = at;
        end_lease(key, LeaseEnd::release, "", nullptr);
      }
      log("run " + key + " registered (token " + token_name + "); it waits for a replica with room");
      if (lease_wake_) lease_wake_->cancel();
      co_return registration_answer(context, 201, "waiting");
    }
    if (w.written) {
      auto& e = leases_[key];
      e.ns = ns;
      e.name = name;
      e.registered = true;
      e.held = true;
      e.taken_over = false;
      e.available_since.reset();
      e.last_renewed = at;
      e.observed = sv::ObservedLease{*w.written, Clock::now()};
      metrics_.set_leases_held(leases_held());
      log("run " + key + " registered (token " + token_name + "); lease acquired");
      start_run({ns, name, e.uid, context}); // (the engine pod's uid, when discovery saw it meanwhile)
      co_return registration_answer(context, 201, "watching");
    }
    // The Lease exists: the run is registered already (held elsewhere), or it was discovered and is held elsewhere.
    const auto lease = co_await registration_lease(ns, key);
    if (!lease) throw refuse(503, "the run's lease went away meanwhile; register it again");
    if (lease->registered) {
      if (created_configmap) // the registration before this one had lost its ConfigMap: stored again
        log("run " + key + ": its registration ConfigMap was stored again (token " + token_name + ")");
      co_return registration_answer(context, 200, lease->finished.empty() ? "waiting" : lease->finished);
    }
    throw refuse(409, "run " + key + " was discovered" +
                          (!lease->holder.empty() ? " and is watched by " + lease->holder : std::string()) +
                          (!lease->finished.empty() ? " and has ended (" + lease->finished + ")" : std::string()));
  }

  /// The run's Lease for a registration, as read_lease(); a failure to read it is answered 503.
  asio::awaitable<std::optional<sv::LeaseRecord>> registration_lease(std::string ns, std::string key) {
    std::string unreadable;
    try {
      co_return co_await read_lease(ns, sv::lease_name(key));
    } catch (const std::exception& e) {
      unreadable = e.what();
    }
    throw sv::HttpError(503, "the run's lease cannot be read: " + unreadable);
  }

  struct RegistrationWrite {
    bool ok = false;
    int status = 0; ///< of a failure (0: no answer)
    std::string problem;
  };

  /// Creates the registration ConfigMap of `context`'s run, or replaces the one at `resource_version`.
  asio::awaitable<RegistrationWrite> write_registration(MonitoringContext context, std::string resource_version) {
    RegistrationWrite out;
    auto object = sv::registration_configmap(context);
    std::string target = "/api/v1/namespaces/" + context.namespace_ + "/configmaps";
    const bool create = resource_version.empty();
    if (!create) {
      object["metadata"].as_object()["resourceVersion"] = resource_version;
      target += "/" + std::string(object["metadata"].as_object()["name"].as_string());
    }
    std::string body = boost::json::serialize(object);
    kube::RequestOptions ro;
    ro.idempotent = false;
    const auto method = create ? boost::beast::http::verb::post : boost::beast::http::verb::put;
    try {
      (void)co_await lease_client_->request(method, std::move(target), std::move(body), std::move(ro));
      out.ok = true;
    } catch (const kube::Error& e) {
      out.status = e.diagnostics().http_status;
      out.problem = e.what();
    } catch (const boost::system::system_error& e) {
      out.problem = e.what();
    }
    co_return out;
  }

  struct StoredRegistration {
    std::optional<MonitoringContext> context;
    bool invalid = false; ///< read, but not a context of the run (edited, or another run's)
    int status = 0;       ///< of a failed read (404: no ConfigMap)
    std::string problem;
    std::string resource_version; ///< of the ConfigMap read
  };

  /// The context of a registered run from its ConfigMap (outside input: checked as a registration is).
  asio::awaitable<StoredRegistration> read_registration(std::string ns, std::string engine_pod) {
    StoredRegistration out;
    const auto key = run_key(ns, engine_pod);
    try {
      auto v = co_await lease_client_->get_json_once("/api/v1/namespaces/" + ns + "/configmaps/" +
                                                         sv::registration_configmap_name(key),
                                                     sv::max_registration_context_bytes + 64 * 1024);
      if (const auto* meta = v.is_object() ? v.as_object().if_contains("metadata") : nullptr; meta && meta->is_object())
        if (const auto* rv = meta->as_object().if_contains("resourceVersion"); rv && rv->is_string() && rv->as_string().size() <= 64)
          out.resource_version = rv->as_string();
      out.context = sv::context_from_registration_configmap(v, ns, engine_pod);
    } catch (const kube::Error& e) {
      out.status = e.diagnostics().http_status;
      out.problem = e.what();
    } catch (const ContextError& e) {
      out.invalid = true;
      out.problem = e.what();
    } catch (const boost::system::system_error& e) {
      out.problem = e.what();
    }
    co_return out;
  }

  asio::awaitable<void> delete_registration(std::string ns, std::string key) {
    try {
      (void)co_await lease_client_->request(boost::beast::http::verb::delete_, "/api/v1/namespaces/" + ns +
                                                                                 "/configmaps/" +
                                                                                 sv::registration_configmap_name(key));
    } catch (const kube::Error& e) {
      if (e.diagnostics().http_status != 404)
        lease_problem("a registration ConfigMap cannot be deleted: " + std::string(e.what()));
    } catch (const boost::system::system_error&) {
    }
  }

  /// `o` with every failed Kubernetes API call counted by its HTTP status (execution_sentinel_kube_api_errors_total).
  kube::ClientOptions counted_client_options(kube::ClientOptions o) {
    o.on_request = [this](const kube::RequestOutcome& r) {
      if (r.ec) metrics_.api_error(r.http_status);
    };
    return o;
  }

  /// The shared watches of every namespace scope: ready once each has listed; the message tells, per scope and
  /// kind, whether it streams, its objects and the runs it feeds.
  sv::ReadinessCheck watches_readiness() const {
    if (shared_.empty()) return {"watches", true, "no run yet: no shared watch"};
    bool ready = true;
    std::string message, waiting;
    auto add = [&](const std::string& scope, const char* kind, const auto& informer) {
      if (!informer) return;
      const auto st = informer->status();
      const std::string where = (scope.empty() ? std::string("all namespaces") : scope) + " " + kind;
      if (!st.synced) {
        ready = false;
        waiting += (waiting.empty() ? "" : ", ") + where;
      }
      message += (message.empty() ? "" : "; ") + where + ": " + (st.synced ? "listed" : "not listed yet") +
                 (st.streaming ? ", streaming" : ", not streaming") + ", " + std::to_string(st.objects) +
                 " objects, " + std::to_string(st.subscribers) + " subscribers, " +
                 std::to_string(st.stats.relists) + " relists";
    };
    for (const auto& [scope, w] : shared_) {
      add(scope, "pods", w.feeds.pods);
      add(scope, "jobs", w.feeds.jobs);
      add(scope, "events", w.feeds.events);
    }
    return {"watches", ready, ready ? message : "not listed yet: " + waiting + "; " + message};
  }

  std::vector<sv::ReadinessCheck> readiness() const {
    std::vector<sv::ReadinessCheck> checks;
    bool synced = true;
    std::string problem;
    for (const auto& [ns, scope] : scopes_) {
      synced = synced && scope.synced;
      if (!scope.problem.empty() && problem.empty())
        problem = (ns.empty() ? std::string("all namespaces") : ns) + ": " + scope.problem;
    }
    checks.push_back({"discovery", synced, synced ? problem : (problem.empty() ? "engine pods not listed yet" : problem)});
    checks.push_back(watches_readiness());
    checks.push_back({"store", true,
                      config_.history.empty() ? "not configured"
                                              : "writes are queued; failures are logged and counted (degraded)"});
    if (config_.ha) {
      std::size_t held = 0, waiting = 0;
      for (const auto& [key, e] : leases_) (e.held ? held : waiting) += 1;
      checks.push_back({"leases", true,
                        "holding " + std::to_string(held) + " run lease(s) as " + identity_ + "; " +
                            std::to_string(waiting) + " run(s) held by other replicas or waiting" +
                            (lease_problem_.empty() ? std::string() : "; last problem: " + lease_problem_)});
    } else {
      checks.push_back({"leases", true, "not shared (ha.enabled is false): this replica watches every run"});
    }
    return checks;
  }

  boost::json::object stats_json() const {
    auto o = registry_.stats_json();
    o["runs_waiting"] = pending_.size();
    boost::json::array scopes;
    for (const auto& [ns, scope] : scopes_) {
      boost::json::object s;
      s["namespace"] = ns.empty() ? boost::json::value(nullptr) : boost::json::value(ns);
      s["synced"] = scope.synced;
      if (!scope.problem.empty()) s["problem"] = scope.problem;
      scopes.push_back(std::move(s));
    }
    o["discovery"] = std::move(scopes);
    boost::json::object ha;
    ha["enabled"] = config_.ha;
    if (config_.ha) {
      ha["identity"] = identity_;
      boost::json::array held, others;
      for (const auto& [key, e] : leases_) {
        if (e.held) {
          held.push_back(boost::json::value(key));
        } else {
          boost::json::object other{{"run", key}};
          if (e.observed && !e.observed->record.holder.empty()) other["holder"] = e.observed->record.holder;
          others.push_back(std::move(other));
        }
      }
      ha["leases_held"] = held.size();
      ha["held"] = std::move(held);
      ha["not_held"] = std::move(others);
      ha["takeovers"] = takeovers_;
    }
    o["ha"] = std::move(ha);
    return o;
  }

  // ------------------------------------------------------------------------------------------------ discovery

  asio::awaitable<void> discover(std::string ns) {
    kube::WatchOptions options;
    options.label_selector = config_.engine_selector;
    kube::Watcher<kube::Pod> watcher(client_, ns, options);
    auto& scope = scopes_[ns];
    for (;;) {
      kube::WatchEvent<kube::Pod> event;
      try {
        event = co_await watcher.next();
      } catch (const kube::Error& e) {
        // Fatal for this attempt (403, 404, 401): not ready until it works; next() backs off and retries.
        std::string problem = e.what();
        if (problem != scope.problem) log("engine pods" + std::string(ns.empty() ? "" : " in " + ns) + ": " + problem);
        scope.problem = problem;
        continue;
      }
      if (event.type == kube::WatchEventType::synced) {
        if (!scope.synced) log("engine pods" + std::string(ns.empty() ? " in every namespace" : " in " + ns) + " listed");
        scope.synced = true;
        scope.problem.clear();
        continue;
      }
      handle(event);
    }
  }

  void handle(const kube::WatchEvent<kube::Pod>& event) {
    const auto& pod = event.object;
    const bool known = known_.count(pod.meta.uid) != 0;
    switch (sv::discovery_action(event.type, pod, known)) {
    case sv::DiscoveryAction::none: break;
    case sv::DiscoveryAction::start: {
      known_.insert(pod.meta.uid);
      if (stopping_) break;
      // A run a client registered for this engine pod is watched already (or waits for a slot): not a second time.
      const auto key = run_key(pod.meta.namespace_, pod.meta.name);
      if (auto it = active_.find(key); it != active_.end() && it->second->registered) {
        if (it->second->uid.empty()) it->second->uid = pod.meta.uid; // so that the pod's deletion ends it
        if (auto e = leases_.find(key); config_.ha && e != leases_.end() && e->second.held) {
          // written with the next renewal: a later engine pod of that name is then a new run (decide_lease: stale)
          if (e->second.uid.empty()) e->second.uid = pod.meta.uid;
          if (e->second.observed && e->second.observed->record.engine_uid.empty())
            e->second.observed->record.engine_uid = pod.meta.uid;
        }
        break;
      }
      if (auto p = std::find_if(pending_.begin(), pending_.end(),
                                [&](const PendingRun& r) { return r.registered && run_key(r.ns, r.name) == key; });
          p != pending_.end()) {
        if (p->uid.empty()) p->uid = pod.meta.uid;
        break;
      }
      if (config_.ha) { // watched once its lease is held (lease_round)
        auto& e = leases_[run_key(pod.meta.namespace_, pod.meta.name)];
        if (e.held) break;
        e.ns = pod.meta.namespace_;
        e.name = pod.meta.name;
        e.uid = pod.meta.uid;
        if (lease_wake_) lease_wake_->cancel();
        break;
      }
      if (active_.size() >= config_.max_active_runs) {
        log("run " + run_key(pod.meta.namespace_, pod.meta.name) + " waits: " +
            std::to_string(config_.max_active_runs) + " runs are watched already");
        pending_.push_back({pod.meta.namespace_, pod.meta.name, pod.meta.uid, std::nullopt});
      } else {
        start_run({pod.meta.namespace_, pod.meta.name, pod.meta.uid, std::nullopt});
      }
      break;
    }
    case sv::DiscoveryAction::end: {
      known_.erase(pod.meta.uid);
      if (config_.ha) {
        forget_lease(run_key(pod.meta.namespace_, pod.meta.name), pod.meta.uid);
        asio::co_spawn(io_, clear_ended_lease(pod.meta.namespace_, pod.meta.name, pod.meta.uid), asio::detached);
      }
      std::erase_if(pending_, [&](const PendingRun& p) { return p.uid == pod.meta.uid; });
      auto it = active_.find(run_key(pod.meta.namespace_, pod.meta.name));
      if (it != active_.end() && it->second->uid == pod.meta.uid && !it->second->end_state) {
        it->second->end_state = sv::RunState::engine_deleted;
        it->second->end_message = "the engine pod was deleted";
        it->second->cancel.emit(asio::cancellation_type::terminal);
      }
      break;
    }
    }
  }

  // ------------------------------------------------------------------------------------------------ runs

  void start_run(PendingRun p) {
    auto run = std::make_shared<ActiveRun>();
    run->ns = p.ns;
    run->name = p.name;
    run->uid = p.uid;
    run->registered = std::move(p.registered);
    active_[run_key(p.ns, p.name)] = run;
    if (run->registered && !config_.ha) { // its context is known: watched at once (in the registry before the answer)
      try {
        sv::ContextChoice choice;
        choice.context = *run->registered;
        choice.source = "registered";
        launch_run(run, std::move(choice));
      } catch (...) {
        start_failed(run, std::current_exception());
      }
      return;
    }
    asio::co_spawn(io_, prepare_run(run), [this, run](std::exception_ptr e) {
      if (e) start_failed(run, e);
    });
  }

  void start_failed(const std::shared_ptr<ActiveRun>& run, std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log("run " + run_key(run->ns, run->name) + " could not start: " + ex.what());
    } catch (const Failure& f) {
      log("run " + run_key(run->ns, run->name) + " could not start: " + f.message);
    } catch (...) {
      log("run " + run_key(run->ns, run->name) + " could not start");
    }
    active_.erase(run_key(run->ns, run->name));
    if (config_.ha && !run->lease_lost) end_lease(run_key(run->ns, run->name), LeaseEnd::finish, "error", nullptr);
    start_waiting();
  }

  asio::awaitable<void> prepare_run(std::shared_ptr<ActiveRun> run) {
    const auto key = run_key(run->ns, run->name);
    sv::ContextChoice choice;
    if (run->registered) { // with ha (taken over or accepted here): the context it was registered with
      choice.context = *run->registered;
      choice.source = "registered";
    } else if (config_.context_configmap_selector.empty()) {
      choice.context = sv::infer_context(config_, run->ns, run->name);
      choice.source = "inferred";
    } else {
      boost::json::value list;
      try {
        kube::ListQuery query;
        query.label_selector = config_.context_configmap_selector;
        list = co_await client_.get_json("/api/v1/namespaces/" + run->ns + "/configmaps" + kube::to_query_string(query));
      } catch (const kube::Error& e) {
        log("run " + key + ": the context ConfigMaps cannot be listed (" + e.what() + "); inferring the context");
      }
      choice = sv::choose_context(config_, run->ns, run->name, list);
    }
    for (const auto& problem : choice.problems) log("run " + key + ": " + problem);
    // A run taken over from another replica may have ended there before its lease said so: not watched again.
    bool ended_elsewhere = false;
    if (config_.ha && !run->end_state && !stopping_) ended_elsewhere = co_await ended_before(run, choice.context);
    if (run->end_state || stopping_ || ended_elsewhere) { // deleted (or stopping) while the ConfigMaps were read
      active_.erase(key);
      if (config_.ha && !run->lease_lost) {
        if (ended_elsewhere) end_lease(key, LeaseEnd::finish, "ended", nullptr);
        else if (run->end_state == sv::RunState::engine_deleted) end_lease(key, LeaseEnd::remove, "", nullptr);
        else end_lease(key, LeaseEnd::release, "", nullptr);
      }
      start_waiting();
      co_return;
    }
    launch_run(run, std::move(choice));
  }

  /// Starts the watch of a run whose context is chosen, and records it in the registry.
  void launch_run(const std::shared_ptr<ActiveRun>& run, sv::ContextChoice choice) {
    const auto key = run_key(run->ns, run->name);
    run->context = choice.context;
    SentinelOptions options;
    options.shared = shared_feeds(run->ns); // one pod, Job and Event watch per namespace scope, for every run
    if (config_.settings.log_level <= LogLevel::WARNING)
      options.client.log = [this, key](std::string_view line) { log("run " + key + ": " + std::string(line)); };
    if (!config_.history.empty()) {
      try {
        run->hooks = history_hooks(config_.history, choice.context, false, config_.settings.baseline_min_samples);
      } catch (const Failure& f) {
        log("run " + key + ": not recorded in the history store: " + f.message);
        metrics_.store_write("failed");
      }
    }
    // The run's checkpoint (docs/restarts.md): in the history store when there is one, else with ha in a ConfigMap
    // of the run's namespace; a run started again (by this replica or, with ha, by another) resumes from it.
    options.checkpoints = run->hooks.checkpoints;
    options.resume_from = run->hooks.resume_from;
    options.checkpoint_extra = run->hooks.checkpoint_extra;
    options.baselines = run->hooks.baselines; // learned from the store's past runs of the workflow
    if (!options.checkpoints && run->configmap_checkpoints) options.checkpoints = run->configmap_checkpoints;
    run->sentinel = std::make_shared<DefaultSentinel>(io_.get_executor(), choice.context, config_.settings, cluster_,
                                                      std::move(options));
    if (!config_.alerts.empty()) {
      try {
        run->hooks = with_alerts(std::move(run->hooks), config_.alerts, choice.context);
      } catch (const Failure& f) {
        log("run " + key + ": no alerts: " + f.message);
      }
    }
    if (run->hooks.reports) {
      SubscriptionOptions all;
      all.capacity = 4096;
      all.lifecycle = true;
      run->hooks.reports(io_.get_executor(), run->sentinel->subscribe(all));
    }
    SubscriptionOptions api;
    api.capacity = 4096;
    asio::co_spawn(io_, drain(run->ns, run->name, run->sentinel, run->sentinel->subscribe(api)), asio::detached);

    auto sentinel = run->sentinel;
    registry_.start(run->ns, run->name, choice.context, choice.source, [sentinel] { return sentinel->view(); },
                    Clock::now());
    metrics_.run_started(run->ns, run->name);
    log("run " + key + " started (context: " + choice.source + ")");

    asio::co_spawn(io_, run->sentinel->watch(),
                   asio::bind_cancellation_slot(run->cancel.slot(), [this, run](std::exception_ptr e, WatchSummary s) {
                     ended(run, e, s);
                   }));
  }

  /// The pod, Job and Warning Event watches of a namespace scope (docs/serve.md, "Connections"): started with the
  /// scope's first run and kept until serve stops, they feed every run of the scope (each selecting its objects
  /// locally), so the connections do not grow with the runs. The engine pod of a run is found in `pods` too.
  struct SharedWatches {
    kube::SharedFeeds feeds;
    std::vector<std::shared_ptr<asio::cancellation_signal>> cancel;
    std::uint64_t resyncs_counted[3] = {0, 0, 0}; ///< pods, jobs, events: resyncs already in the metrics
  };

  /// Options of a shared informer of `resource` whose watch restarts are counted
  /// (execution_sentinel_watch_restarts_total): each stream opened after the first is a restart, for the reason
  /// of the failure before it ("expired" after a 410, "error" after another HTTP failure, "transport" when no
  /// answer came), or "closed" when the server ended the stream (its timeout).
  kube::SharedInformerOptions counted_informer_options(std::string resource) {
    struct Restarts {
      bool opened = false;
      std::string reason;
    };
    auto state = std::make_shared<Restarts>();
    kube::SharedInformerOptions o;
    o.watch.on_attempt = [state](const kube::WatchAttempt& a) {
      if (a.ok || !state->reason.empty()) return;
      const int status = a.diagnostics.http_status;
      state->reason = status == 410 ? "expired" : status > 0 ? "error" : "transport";
    };
    o.watch.on_stream_opened = [this, state, resource = std::move(resource)] {
      if (state->opened) metrics_.watch_restarted(resource, state->reason.empty() ? "closed" : state->reason);
      state->opened = true;
      state->reason.clear();
    };
    return o;
  }

  /// The runs resynchronised by each shared watch since the last count, into the metrics.
  void count_resyncs() {
    for (auto& [scope, w] : shared_) {
      auto add = [&](const char* resource, std::uint64_t& counted, const auto& informer) {
        if (!informer) return;
        const auto total = informer->status().resyncs;
        if (total > counted) metrics_.shared_watch_resynced(resource, total - counted);
        counted = total;
      };
      add("pods", w.resyncs_counted[0], w.feeds.pods);
      add("jobs", w.resyncs_counted[1], w.feeds.jobs);
      add("events", w.resyncs_counted[2], w.feeds.events);
    }
  }

  kube::SharedFeeds shared_feeds(const std::string& run_ns) {
    if (stopping_) return {};
    const std::string scope = config_.namespaces.empty() ? std::string() : run_ns;
    auto& watches = shared_[scope];
    if (watches.feeds.pods) return watches.feeds;
    auto start = [&](auto informer) {
      auto cancel = std::make_shared<asio::cancellation_signal>();
      asio::co_spawn(io_, informer->run(), asio::bind_cancellation_slot(cancel->slot(), asio::detached));
      watches.cancel.push_back(std::move(cancel));
      return informer;
    };
    watches.feeds.pods = start(std::make_shared<kube::SharedInformer<kube::Pod>>(io_.get_executor(), client_, scope,
                                                                                 counted_informer_options("pods")));
    watches.feeds.jobs = start(std::make_shared<kube::SharedInformer<kube::Job>>(io_.get_executor(), client_, scope,
                                                                                 counted_informer_options("jobs")));
    auto options = counted_informer_options("events");
    options.watch.field_selector = "type=Warning"; // what a run's own Event watch asks for
    watches.feeds.events =
        start(std::make_shared<kube::SharedInformer<kube::Event>>(io_.get_executor(), client_, scope, options));
    log(std::string("shared pod, Job and Warning Event watches started ") +
        (scope.empty() ? "in every namespace" : "in " + scope));
    return watches.feeds;
  }

  /// Reports of a run → the registry (paging), the event streams and the metrics.
  asio::awaitable<void> drain(std::string ns, std::string name, std::shared_ptr<DefaultSentinel> keep,
                              ReportSubscription subscription) {
    const auto topic = run_key(ns, name);
    for (;;) {
      auto [ec, report] = co_await subscription.async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec == channel_error::reports_lost) continue;
      if (ec) break;
      registry_.add_report(ns, name, report);
      hub_->publish(report, topic);
      metrics_.observe(ns, name, report);
    }
    (void)keep;
  }

  void ended(const std::shared_ptr<ActiveRun>& run, std::exception_ptr e, WatchSummary s) {
    const auto key = run_key(run->ns, run->name);
    sv::RunState state;
    std::string message;
    WatchSummary summary = s;
    if (!e) {
      switch (s.outcome()) {
      case WatchOutcome::succeeded: state = sv::RunState::succeeded; break;
      case WatchOutcome::timed_out: state = sv::RunState::timed_out; break;
      default: state = sv::RunState::failed; break;
      }
    } else {
      summary = run->sentinel->summary();
      if (run->end_state) {
        state = *run->end_state;
        message = run->end_message;
      } else {
        state = sv::RunState::error;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          message = ex.what();
        }
      }
    }
    registry_.finish(run->ns, run->name, state, message, summary, run->sentinel->view(), Clock::now());
    metrics_.run_finished(run->ns, run->name, summary);
    log("run " + key + " ended: " + std::string(sv::to_string(state)) + (message.empty() ? "" : " (" + message + ")"));
    // With ha, the lease says how the run ended once its last writes are done (a replica that takes it over then
    // finds every report recorded), or is given up at once when serve stops.
    std::function<void()> then;
    if (config_.ha && !run->lease_lost) {
      auto end = state == sv::RunState::stopped         ? LeaseEnd::release
                 : state == sv::RunState::engine_deleted ? LeaseEnd::remove
                                                         : LeaseEnd::finish;
      if (auto it = leases_.find(key); it != leases_.end()) it->second.ending = true;
      ++lease_ends_pending_;
      then = [this, key, end, text = std::string(sv::to_string(state)), cm = run->configmap_checkpoints] {
        asio::post(io_, [this, key, end, text, cm] {
          --lease_ends_pending_;
          end_lease(key, end, text, cm);
        });
      };
    }
    if (run->hooks.finished) {
      // The history writer waits for its last writes: never on the watch's thread.
      asio::post(finishing_, [hooks = run->hooks, summary, interrupted = state == sv::RunState::stopped, then] {
        hooks.finished(summary, interrupted);
        if (then) then();
      });
    } else if (then) {
      then();
    }
    active_.erase(key);
    start_waiting();
  }

  void start_waiting() {
    while (!stopping_ && !pending_.empty() && active_.size() < config_.max_active_runs) {
      auto p = pending_.front();
      pending_.pop_front();
      start_run(p);
    }
  }

  // ------------------------------------------------------------------------------------------------ leases

  /// A run this replica knows of (its engine pod is Running) while ha shares the runs, and its Lease.
  struct LeaseEntry {
    std::string ns, name, uid;
    std::optional<sv::ObservedLease> observed; ///< its Lease as last read or written; nullopt = none
    bool held = false;
    bool ending = false;     ///< the run ended here; its last lease write is on the way
    bool taken_over = false; ///< held after another replica held it for this engine pod
    bool registered = false; ///< a run a client registered: its context is in its registration ConfigMap
    Timestamp last_renewed{};
    std::optional<Timestamp> available_since; ///< free or expired since (as seen here)
  };
  enum class LeaseEnd { release, finish, remove };

  static std::string default_identity() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "execution-sentinel");
    return std::string(host) + "_" + std::to_string(::getpid());
  }

  static std::string leases_path(std::string_view ns) {
    return ns.empty() ? std::string("/apis/coordination.k8s.io/v1/leases")
                      : "/apis/coordination.k8s.io/v1/namespaces/" + std::string(ns) + "/leases";
  }

  std::size_t leases_held() const {
    std::size_t n = 0;
    for (const auto& [key, e] : leases_) n += e.held ? 1 : 0;
    return n;
  }

  void lease_problem(const std::string& problem) {
    if (problem != lease_problem_) log("leases: " + problem);
    lease_problem_ = problem;
  }

  /// One replica's part, every retry period: read the leases, renew those held, acquire free or expired ones
  /// for the runs it may still watch. Runs' watches never wait for it (they are other coroutines).
  asio::awaitable<void> lease_loop() {
    asio::steady_timer timer(io_);
    // While stopping, the leases are still renewed until each run's last writes are done and its lease released.
    while (!stopping_ || leases_held() > 0 || lease_ends_pending_ > 0) {
      try {
        co_await lease_round();
      } catch (const std::exception& e) {
        lease_problem(e.what());
      }
      timer.expires_after(stopping_ ? std::min(config_.leases.retry_period, std::chrono::milliseconds(200))
                                    : config_.leases.retry_period);
      lease_wake_ = stopping_ ? nullptr : &timer;
      (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable)); // woken early for a new run
      lease_wake_ = nullptr;
    }
    if (member_) co_await delete_lease(member_->namespace_, member_->name); // no longer a replica sharing the runs
  }

  struct LeaseWrite {
    std::optional<sv::LeaseRecord> written;
    int status = 0; ///< the HTTP status of a failure (0: no answer)
    std::string problem;
  };

  /// Creates (no resourceVersion) or updates (guarded by it) a Lease.
  asio::awaitable<LeaseWrite> write_lease(sv::LeaseRecord r) {
    LeaseWrite w;
    const bool create = r.resource_version.empty();
    try {
      kube::RequestOptions ro;
      if (create) ro.idempotent = false;
      // Named, not temporaries of a conditional: GCC 12 destroys those twice across a co_await.
      const auto method = create ? boost::beast::http::verb::post : boost::beast::http::verb::put;
      std::string target = leases_path(r.namespace_);
      if (!create) target += "/" + r.name;
      std::string body = boost::json::serialize(sv::lease_to_json(r));
      auto answer = co_await lease_client_->request(method, std::move(target), std::move(body), std::move(ro));
      boost::system::error_code ec;
      auto v = boost::json::parse(answer.body, ec);
      if (!ec && v.is_object()) w.written = sv::lease_from_json(v.as_object());
      else w.problem = "the answer to a lease write is not a Lease";
    } catch (const kube::Error& e) {
      w.status = e.diagnostics().http_status;
      w.problem = e.what();
    } catch (const boost::system::system_error& e) {
      w.problem = e.what();
    }
    co_return w;
  }

  /// Deletes a Lease; with `resource_version`, only that version of it (a DeleteOptions precondition: a Lease
  /// written since, for a new run, stays). True when this call deleted it.
  asio::awaitable<bool> delete_lease(std::string ns, std::string name, std::string resource_version = {}) {
    try {
      std::string body;
      if (!resource_version.empty())
        body = boost::json::serialize(boost::json::object{
            {"kind", "DeleteOptions"}, {"apiVersion", "v1"},
            {"preconditions", boost::json::object{{"resourceVersion", resource_version}}}});
      (void)co_await lease_client_->request(boost::beast::http::verb::delete_, leases_path(ns) + "/" + name,
                                            std::move(body));
      co_return true;
    } catch (const kube::Error& e) {
      const int status = e.diagnostics().http_status;
      if (status != 404 && status != 409) lease_problem("a finished run's lease cannot be deleted: " + std::string(e.what()));
    } catch (const boost::system::system_error&) {
    }
    co_return false;
  }

  /// This replica no longer holds the run's lease: its watch of the run stops (another replica goes on with it).
  void lose_lease(const std::string& key, LeaseEntry& e, const std::string& why) {
    e.held = false;
    e.ending = false;
    e.available_since.reset();
    metrics_.lease_lost();
    metrics_.set_leases_held(leases_held());
    log("run " + key + ": lease lost (" + why + "); this replica stops watching it");
    if (auto it = active_.find(key); it != active_.end()) {
      it->second->lease_lost = true;
      if (!it->second->end_state) {
        it->second->end_state = sv::RunState::stopped;
        it->second->end_message = "its lease was lost (" + why + ")";
        it->second->cancel.emit(asio::cancellation_type::terminal);
      }
    }
  }

  asio::awaitable<void> lease_round() {
    // 1. The leases of every scope: one list each.
    std::map<std::string, sv::LeaseRecord> seen; // "namespace/name" → record
    bool listed = true;
    for (const auto& [ns, scope] : scopes_) {
      try {
        kube::ListQuery query;
        query.label_selector = std::string(sv::lease_label) + "=" + std::string(sv::lease_label_value);
        auto v = co_await lease_client_->get_json_once(leases_path(ns) + kube::to_query_string(query));
        const auto* items = v.is_object() ? v.as_object().if_contains("items") : nullptr;
        if (items && items->is_array())
          for (const auto& item : items->as_array())
            if (item.is_object()) {
              auto r = sv::lease_from_json(item.as_object());
              seen[r.namespace_ + "/" + r.name] = std::move(r);
            }
      } catch (const kube::Error& e) {
        listed = false;
        lease_problem(std::string("the leases cannot be listed: ") + e.what());
      } catch (const boost::system::system_error& e) {
        listed = false;
        lease_problem(std::string("the leases cannot be listed: ") + e.what());
      }
    }
    auto now = Clock::now();
    if (listed) {
      if (!lease_problem_.empty()) log("leases: listed again");
      lease_problem_.clear();
      // The replicas alive: their membership leases (this one's is renewed below).
      std::map<std::string, sv::ObservedLease> members;
      for (const auto& [k, r] : seen) {
        if (!sv::is_member_lease(r.name)) continue;
        auto before = members_.find(k);
        std::optional<sv::ObservedLease> previous;
        if (before != members_.end()) previous = before->second;
        members[k] = sv::observe_lease(previous, r, now);
        // A replica gone for long (killed, never back) leaves its membership behind: any replica deletes it.
        if (r.holder != identity_ && sv::lease_expired(members[k], now - 3 * config_.leases.lease_duration))
          asio::co_spawn(io_, delete_lease(r.namespace_, r.name), asio::detached);
      }
      members_ = std::move(members);
      if (auto mine = seen.find(member_ns_ + "/" + sv::member_lease_name(identity_)); mine != seen.end() && !member_)
        member_ = mine->second; // created by an earlier round whose answer was lost
      // The runs clients registered with other replicas: known from their Leases (their contexts are read from
      // their ConfigMaps when this replica takes one over).
      for (const auto& [k, r] : seen) {
        if (!r.registered || !r.finished.empty() || sv::is_member_lease(r.name)) continue;
        const auto run = sv::lease_run(r);
        if (!run) continue;
        const auto key = run_key(run->first, run->second);
        if (leases_.count(key) || active_.count(key)) continue;
        auto& e = leases_[key];
        e.ns = run->first;
        e.name = run->second;
        e.uid = r.engine_uid;
        e.registered = true;
      }
      for (auto it = leases_.begin(); it != leases_.end();) { // a registered run whose Lease is gone: withdrawn
        const bool gone = it->second.registered && !it->second.held && !it->second.ending &&
                          !seen.count(it->second.ns + "/" + sv::lease_name(it->first)) && !active_.count(it->first);
        it = gone ? leases_.erase(it) : std::next(it);
      }
      for (auto& [key, e] : leases_) {
        auto it = seen.find(e.ns + "/" + sv::lease_name(key));
        if (it == seen.end()) {
          if (!e.held) e.observed.reset();
          continue;
        }
        if (it->second.registered && (it->second.engine_uid.empty() || e.uid.empty() || it->second.engine_uid == e.uid))
          e.registered = true; // (not from a Lease of an earlier engine pod of that name)
        e.observed = sv::observe_lease(e.observed, it->second, now);
        if (e.held && it->second.holder != identity_)
          lose_lease(key, e, it->second.holder.empty() ? std::string("it was released by someone else")
                                                       : "it is held by " + it->second.holder);
      }
    }

    // 2. Renew this replica's membership and the leases held (a run that ended here keeps its lease until its last
    // writes are done).
    if (!stopping_ && (!member_ || sv::renewal_due(member_renewed_, now, config_.leases))) {
      const auto at = Clock::now();
      // (records are built in named variables: GCC 12 mishandles temporaries of a conditional in co_await)
      sv::LeaseRecord membership;
      if (member_) membership = sv::renewed_lease(*member_, at);
      else membership = sv::acquired_lease(std::nullopt, sv::member_lease_name(identity_), member_ns_, "", "", identity_,
                                           at, config_.leases);
      auto w = co_await write_lease(std::move(membership));
      if (w.written) {
        member_ = *w.written;
        member_renewed_ = at;
      } else if (w.status == 409 || w.status == 404) {
        member_.reset(); // read again (or created again) next round
      } else {
        lease_problem("this replica's membership lease cannot be written: " + w.problem);
      }
    }
    std::vector<std::string> keys;
    for (const auto& [key, e] : leases_)
      if (e.held && sv::renewal_due(e.last_renewed, now, config_.leases)) keys.push_back(key);
    for (const auto& key : keys) {
      auto it = leases_.find(key);
      if (it == leases_.end() || !it->second.held || !it->second.observed) continue;
      const auto at = Clock::now();
      sv::LeaseRecord renewal = sv::renewed_lease(it->second.observed->record, at);
      auto w = co_await write_lease(std::move(renewal));
      it = leases_.find(key);
      if (it == leases_.end() || !it->second.held) continue;
      auto& e = it->second;
      if (w.written) {
        e.observed = sv::ObservedLease{*w.written, Clock::now()};
        e.last_renewed = at;
      } else if (w.status == 409 || w.status == 404) {
        lose_lease(key, e, w.status == 409 ? "another replica wrote it" : "it was deleted");
      } else if (sv::renewal_deadline_passed(e.last_renewed, Clock::now(), config_.leases)) {
        lose_lease(key, e, "not renewed within the renew deadline: " + w.problem);
      } else {
        lease_problem("a lease cannot be renewed (tried again): " + w.problem);
      }
    }

    // 3. Acquire free or expired leases of runs this replica may still watch, up to its fair share at first.
    if (!listed || stopping_) co_return;
    keys.clear();
    now = Clock::now();
    std::size_t held_by_live = 0, waiting = 0, live_replicas = 1;
    for (const auto& [k, m] : members_)
      if (m.record.holder != identity_ && !sv::lease_expired(m, now)) ++live_replicas;
    for (const auto& [key, e] : leases_) {
      if (e.held || e.ending) {
        ++held_by_live;
        continue;
      }
      keys.push_back(key);
      switch (sv::decide_lease(e.observed, e.uid, now)) {
      case sv::LeaseDecision::wait: ++held_by_live; break;
      case sv::LeaseDecision::finished: break;
      default: ++waiting; break;
      }
    }
    const auto fair = sv::fair_share(held_by_live, waiting, live_replicas);
    for (const auto& key : keys) {
      if (stopping_ || active_.size() >= config_.max_active_runs) break;
      auto it = leases_.find(key);
      if (it == leases_.end() || it->second.held) continue;
      auto& e = it->second;
      now = Clock::now();
      const auto decision = sv::decide_lease(e.observed, e.uid, now);
      if (decision == sv::LeaseDecision::finished) {
        log("run " + key + " ended on another replica (" + e.observed->record.finished + ")");
        leases_.erase(it);
        continue;
      }
      if (decision == sv::LeaseDecision::wait) {
        e.available_since.reset();
        continue;
      }
      if (!e.available_since) e.available_since = now;
      if (!sv::should_try_acquire(leases_held(), fair, *e.available_since, now, config_.leases)) continue;
      if (decision == sv::LeaseDecision::stale) e.registered = false; // a Lease of an earlier run of that name
      std::optional<StoredRegistration> registration;
      if (e.registered) { // its context first: a run this replica cannot watch is left to the others
        const auto ns = e.ns, name = e.name;
        registration = co_await read_registration(ns, name);
        if (!registration->context && !registration->invalid && registration->status != 404) {
          lease_problem("run " + key + ": its registration cannot be read (" + registration->problem + ")");
          continue;
        }
        it = leases_.find(key);
        if (it == leases_.end() || it->second.held || it->second.ending) continue;
        if (stopping_ || active_.size() >= config_.max_active_runs) break; // (changed while it was read)
      }
      auto& entry = it->second; // (found again after the read)
      std::optional<sv::LeaseRecord> current;
      if (entry.observed) current = entry.observed->record;
      const std::string previous = current ? current->holder : std::string();
      const bool takeover = decision == sv::LeaseDecision::acquire;
      auto record = sv::acquired_lease(current, sv::lease_name(key), entry.ns, key, entry.uid, identity_, now,
                                       config_.leases);
      record.registered = entry.registered;
      auto w = co_await write_lease(std::move(record));
      it = leases_.find(key);
      if (it == leases_.end()) { // its engine pod went away meanwhile
        if (w.written) asio::co_spawn(io_, delete_lease(w.written->namespace_, w.written->name), asio::detached);
        continue;
      }
      auto& got = it->second;
      if (!w.written) {
        if (w.status != 409) lease_problem("a lease cannot be acquired: " + w.problem);
        continue; // 409: another replica was first
      }
      got.held = true;
      got.taken_over = takeover;
      got.available_since.reset();
      got.last_renewed = now;
      got.observed = sv::ObservedLease{*w.written, Clock::now()};
      metrics_.set_leases_held(leases_held());
      if (takeover) {
        ++takeovers_;
        metrics_.lease_taken_over();
        log("run " + key + ": lease taken over from " + (previous.empty() ? std::string("a replica that released it") : previous));
      } else {
        log("run " + key + ": lease acquired");
      }
      if (registration && !registration->context) { // its ConfigMap is gone or unusable: no replica can watch it
        log("run " + key + ": its registration ConfigMap is gone or not its context (" + registration->problem +
            "); the run is ended");
        end_lease(key, LeaseEnd::finish, "error", nullptr);
        continue;
      }
      start_run({got.ns, got.name, got.uid, registration ? registration->context : std::nullopt});
    }
  }

  /// The run's engine pod went away: a run held elsewhere (or not at all) is forgotten here; the Lease of a run
  /// that ended is deleted (any replica may: the pod is gone). A run held here ends through its watch.
  void forget_lease(const std::string& key, const std::string& uid) {
    auto it = leases_.find(key);
    if (it == leases_.end() || it->second.uid != uid || it->second.held || it->second.ending) return;
    if (it->second.observed && it->second.observed->record.holder.empty())
      asio::co_spawn(io_, delete_lease(it->second.ns, sv::lease_name(key)), asio::detached);
    leases_.erase(it);
  }

  /// The engine pod `uid` was deleted: the Lease of its run, when that run ended (on any replica), is deleted, and
  /// the registration ConfigMap of a registered one with it; a new engine pod of the same name is a new run then.
  asio::awaitable<void> clear_ended_lease(std::string ns, std::string name, std::string uid) {
    const auto key = run_key(ns, name);
    // The run may still be ending (its last writes come before its Lease says so): looked at again, every retry
    // period, for two lease durations while another replica holds it.
    const auto until = Clock::now() + 2 * config_.leases.lease_duration;
    for (;;) {
      std::optional<sv::LeaseRecord> lease;
      try {
        lease = co_await read_lease(ns, sv::lease_name(key));
      } catch (const std::exception&) {
        co_return; // unreadable now: the Lease stays (deleted by hand, or when an engine pod of that name goes again)
      }
      if (!lease || !sv::lease_run(*lease) || (!lease->engine_uid.empty() && lease->engine_uid != uid)) co_return;
      if (!lease->finished.empty() || lease->holder.empty()) { // ended, or held by no replica: nothing to watch
        if (co_await delete_lease(ns, lease->name, lease->resource_version) && lease->registered)
          co_await delete_registration(ns, key);
        co_return;
      }
      if (stopping_ || Clock::now() >= until) co_return;
      asio::steady_timer pause(io_, config_.leases.retry_period);
      cleanup_timers_.insert(&pause);
      (void)co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      cleanup_timers_.erase(&pause);
    }
  }

  /// Whether the run taken over had ended on the replica that held it (its checkpoint is of a finished run). Also
  /// prepares the ConfigMap that keeps the run's checkpoint when there is no history store.
  asio::awaitable<bool> ended_before(std::shared_ptr<ActiveRun> run, MonitoringContext context) {
    const auto key = run_key(run->ns, run->name);
    if (config_.history.empty()) {
      kube::ConfigMapCheckpointStore::Options o;
      o.namespace_ = run->ns;
      o.holder = identity_;
      o.log = [this, key](std::string_view line) { log("run " + key + ": " + std::string(line)); };
      run->configmap_checkpoints = std::make_shared<kube::ConfigMapCheckpointStore>(io_.get_executor(), cluster_, o);
    }
    auto it = leases_.find(key);
    if (it == leases_.end() || !it->second.taken_over) co_return false;
    std::optional<boost::json::object> cp;
    try {
      if (ha_store_) cp = ha_store_->load_checkpoint(checkpoint_key(context));
      else if (run->configmap_checkpoints) cp = co_await run->configmap_checkpoints->async_load(checkpoint_key(context));
    } catch (const std::exception& e) {
      log("run " + key + ": its checkpoint cannot be read (" + e.what() + ")");
    }
    if (cp && cp->contains("finished_at")) {
      log("run " + key + " had ended on the replica that held it (its checkpoint says so): not watched again");
      co_return true;
    }
    co_return false;
  }

  /// The last write of a run's lease here: released (serve stops: another replica takes it over at once), finished
  /// (no replica starts it again) or deleted (its engine pod is gone). After the run's ConfigMap checkpoint is
  /// written, when it has one.
  void end_lease(const std::string& key, LeaseEnd end, std::string state,
                 std::shared_ptr<kube::ConfigMapCheckpointStore> checkpoints) {
    ++lease_ends_pending_;
    asio::co_spawn(io_, end_lease_async(key, end, std::move(state), std::move(checkpoints)), [this](std::exception_ptr) {
      --lease_ends_pending_;
    });
  }

  asio::awaitable<void> end_lease_async(std::string key, LeaseEnd end, std::string state,
                                        std::shared_ptr<kube::ConfigMapCheckpointStore> checkpoints) {
    for (int i = 0; checkpoints && checkpoints->busy() && i < 100; ++i) {
      asio::steady_timer t(io_, std::chrono::milliseconds(50));
      co_await t.async_wait(asio::use_awaitable);
    }
    auto it = leases_.find(key);
    if (it == leases_.end() || !it->second.held || !it->second.observed) co_return;
    auto record = it->second.observed->record;
    it->second.held = false;
    it->second.ending = true;
    metrics_.set_leases_held(leases_held());
    if (end == LeaseEnd::remove) { // its engine pod is gone: the run's Lease, and its registration, with it
      const bool registered = it->second.registered || record.registered;
      if (co_await delete_lease(record.namespace_, record.name) && registered)
        co_await delete_registration(record.namespace_, key);
    } else {
      // A renewal of this replica's own may be on its way with the same resourceVersion (409 then): the Lease is
      // read again and, while it is still this replica's, written again; a failure is tried again a few times, as
      // a lease left held would keep the run from being marked ended.
      const char* what = end == LeaseEnd::release ? "released" : "marked finished";
      for (int attempt = 0;; ++attempt) {
        sv::LeaseRecord last;
        if (end == LeaseEnd::release) last = sv::released_lease(record, Clock::now());
        else last = sv::finished_lease(record, state, Clock::now());
        auto w = co_await write_lease(std::move(last));
        if (w.written) {
          if (end == LeaseEnd::release) log("run " + key + ": lease released");
          break;
        }
        if (w.status == 404) break; // deleted meanwhile (its engine pod went): nothing to end
        if (attempt == 3) {
          lease_problem("a lease cannot be " + std::string(what) + ": " + w.problem);
          break;
        }
        if (w.status == 409) {
          std::optional<sv::LeaseRecord> now;
          try {
            now = co_await read_lease(record.namespace_, record.name);
          } catch (const std::exception& e) {
            w.problem = e.what();
          }
          if (now && now->holder != identity_) break; // another replica holds it now: nothing of this one's to end
          if (now) {
            record = *now;
            continue;
          }
        }
        asio::steady_timer pause(io_, std::min(config_.leases.retry_period, std::chrono::milliseconds(500)));
        co_await pause.async_wait(asio::use_awaitable);
      }
    }
    leases_.erase(key);
  }

  /// A Lease as the API server has it now; nullopt when there is none (404); throws kube::Error for other failures.
  asio::awaitable<std::optional<sv::LeaseRecord>> read_lease(std::string ns, std::string name) {
    std::optional<sv::LeaseRecord> out;
    try {
      auto v = co_await lease_client_->get_json_once(leases_path(ns) + "/" + name);
      if (v.is_object()) out = sv::lease_from_json(v.as_object());
    } catch (const kube::Error& e) {
      if (e.diagnostics().http_status != 404) throw;
    }
    co_return out;
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  void tick() {
    ticker_.expires_after(std::chrono::seconds(5));
    ticker_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      for (const auto& [key, run] : active_)
        if (run->sentinel) metrics_.observe(run->ns, run->name, run->sentinel->view());
      count_resyncs();
      tick();
    });
  }

  void wait_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (stopping_) std::_Exit(to_int(ExitCode::interrupted));
      stopping_ = true;
      log("stopping");
      http_->stop();
      ticker_.cancel();
      tokens_timer_.cancel();
      pending_.clear();
      if (lease_wake_) lease_wake_->cancel();
      for (auto* timer : cleanup_timers_) timer->cancel();
      for (auto& [ns, scope] : scopes_) scope.cancel->emit(asio::cancellation_type::terminal);
      for (auto& [ns, watches] : shared_)
        for (auto& cancel : watches.cancel) cancel->emit(asio::cancellation_type::terminal);
      for (auto& [key, run] : active_) {
        if (run->end_state) continue;
        run->end_state = sv::RunState::stopped;
        run->end_message = "serve was stopped";
        run->cancel.emit(asio::cancellation_type::terminal);
      }
      wait_signal();
      // Once every run has ended, nothing but the signal wait is left: stop waiting for signals then.
      wait_idle();
    });
  }

  void wait_idle() {
    if (active_.empty() && lease_ends_pending_ == 0) { // every run ended, and its lease released
      signals_.cancel();
      return;
    }
    asio::post(io_, [this] {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](const boost::system::error_code&) { wait_idle(); });
    });
  }

  sv::ServeConfig config_;
  kube::ClusterConfig cluster_;
  ServeFiles files_;
  asio::io_context io_;
  sv::SentinelMetrics metrics_;
  sv::RunRegistry registry_;
  std::shared_ptr<sv::EventHub> hub_;
  kube::Client client_;
  asio::signal_set signals_;
  asio::steady_timer ticker_;
  asio::steady_timer tokens_timer_;
  std::string tokens_problem_; ///< the last problem of the tokens file read again, logged once
  asio::thread_pool finishing_{1};
  std::unique_ptr<sv::HttpServer> http_;
  std::map<std::string, Scope> scopes_;
  std::map<std::string, SharedWatches> shared_; ///< by namespace scope ("" = every namespace)
  std::map<std::string, std::shared_ptr<ActiveRun>> active_;
  std::deque<PendingRun> pending_;
  std::set<std::string> known_; ///< uids of engine pods that started a run (or wait for one)
  bool stopping_ = false;
  // ha (leases): this replica's identity, its lease calls, the runs it knows of and their Leases.
  std::string identity_;
  std::unique_ptr<kube::Client> lease_client_;
  std::shared_ptr<history::RunHistoryStore> ha_store_;
  std::map<std::string, LeaseEntry> leases_;
  std::string member_ns_;                               ///< where this replica's membership lease is
  std::optional<sv::LeaseRecord> member_;               ///< this replica's membership lease as last written
  Timestamp member_renewed_{};
  std::map<std::string, sv::ObservedLease> members_;    ///< every replica's membership, as observed
  asio::steady_timer* lease_wake_ = nullptr;
  std::set<asio::steady_timer*> cleanup_timers_; ///< the pauses of clear_ended_lease(), cut short when serve stops
  std::string lease_problem_;
  std::uint64_t takeovers_ = 0;
  int lease_ends_pending_ = 0;
};

} // namespace

Command add_serve_command(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  auto* cmd = app.add_subcommand("serve", "Watch every workflow run of a cluster and serve metrics, an API and a live page");
  cmd->add_option("-c,--config", flags->config, "Configuration file (YAML; see --print-default-config, docs/serve.md)");
  cmd->add_flag("--print-default-config", flags->print_default, "Print the default configuration, documented, and exit");
  cmd->add_flag("--check-config", flags->check,
                "Validate the configuration and the files it names, then exit (0 when valid, 2 otherwise)");
  cmd->footer(footer);
  return {cmd, [flags] {
            if (flags->print_default) {
              std::cout << sv::default_serve_config_yaml() << std::flush;
              return to_int(std::cout ? ExitCode::succeeded : ExitCode::output_failed);
            }
            if (flags->config.empty()) fail(ExitCode::usage_error, "serve: --config is required (see --print-default-config)");
            sv::ServeConfig config;
            try {
              config = sv::load_serve_config(flags->config);
            } catch (const sv::ServeConfigError& e) {
              fail(ExitCode::usage_error, e.what());
            }
            auto files = check_referenced_files(config, flags->config);
            if (flags->check) {
              print_note("serve: " + flags->config + " is valid");
              return to_int(ExitCode::succeeded);
            }
            auto cluster = load_serve_cluster(config);
            Server server(std::move(config), std::move(cluster), std::move(files));
            return server.run();
          }};
}

} // namespace execution_sentinel::cli

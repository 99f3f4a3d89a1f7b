// Shared watches on FakeCluster over real HTTPS: many runs in one namespace, each watched by its own DefaultSentinel,
// all taking their pod, Job, engine pod and Warning Event feeds from three shared informers
// (SentinelOptions::shared, kube/shared_informer.hpp). The list+watch requests of pods, Jobs and Events are counted
// on the simulated apiserver: the same for 1 run and for 50 runs, while each run gets its own reports (its task
// counts, its OOM kill, one COMPLETION, nothing of another run). Half of the runs start late (their first events are
// the informers' store), and the shared watches are dropped and their history compacted mid-run (every run goes on
// through the relist). With each Sentinel's own watches the count grows with the runs.
#include <execution_sentinel/kube/shared_informer.hpp>
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

const std::string ns = "wf";

/// The list and watch requests of one resource in the namespace, as the apiserver saw them. `run_lists` are the
/// lists one run makes by its label selector: its own watches' lists, or, with shared watches, the one list per
/// kind a run makes when its completion file is read (the versions its feeds must have delivered first).
struct ListWatch {
    std::size_t lists = 0, watches = 0, run_lists = 0;
    friend bool operator==(const ListWatch&, const ListWatch&) = default;
};

struct Counts {
    ListWatch pods, jobs, events;
    friend bool operator==(const Counts&, const Counts&) = default;
};

Counts count_list_watch(const est::Traffic& t) {
    Counts c;
    auto add = [](ListWatch& lw, const std::string& target) {
        if (target.find("?watch=true") != std::string::npos) ++lw.watches;
        else if (target.find("labelSelector=") != std::string::npos) ++lw.run_lists;
        else ++lw.lists;
    };
    for (auto& r : t.requests) {
        const auto& tg = r.target;
        if (tg.rfind("/api/v1/namespaces/" + ns + "/pods?", 0) == 0) add(c.pods, tg);
        else if (tg.rfind("/apis/batch/v1/namespaces/" + ns + "/jobs?", 0) == 0) add(c.jobs, tg);
        else if (tg.rfind("/api/v1/namespaces/" + ns + "/events?", 0) == 0) add(c.events, tg);
    }
    return c;
}

std::string describe(const Counts& c) {
    auto lw = [](const ListWatch& x) {
        return std::to_string(x.lists) + " lists, " + std::to_string(x.watches) + " watches, " +
               std::to_string(x.run_lists) + " lists by a run's selector";
    };
    return "pods: " + lw(c.pods) + "; jobs: " + lw(c.jobs) + "; events: " + lw(c.events);
}

es::kube::BackoffOptions fast_backoff() {
    es::kube::BackoffOptions b;
    b.initial = 50ms;
    b.cap = 500ms;
    b.jitter = 0.5;
    b.max_retry_after = 500ms;
    return b;
}

/// A FakeCluster serving namespace "wf".
est::FakeClusterOptions cluster_options() {
    est::FakeClusterOptions o;
    o.default_namespace = ns;
    return o;
}

/// Sentinel options with short timings; the engine log is not followed (one stream per run by nature; not what is
/// measured here).
es::SentinelOptions fast_options() {
    es::SentinelOptions o;
    o.watch_backoff = fast_backoff();
    o.client.backoff = fast_backoff();
    o.client.connect_timeout = 2s;
    o.client.request_timeout = 5s;
    o.tick_interval = 100ms;
    o.stream_settle = 200ms;
    o.exec_timeout = 5s;
    o.follow_engine_log = false;
    return o;
}

/// The three shared informers of namespace "wf" (pods, Jobs, Warning Events), running on `io` until `stop[i]`.
es::kube::SharedFeeds start_informers(asio::io_context& io, es::kube::Client& client, asio::cancellation_signal (&stop)[3]) {
    es::kube::SharedFeeds feeds;
    es::kube::SharedInformerOptions o;
    o.watch.backoff = fast_backoff();
    feeds.pods = std::make_shared<es::kube::SharedInformer<es::kube::Pod>>(io.get_executor(), client, ns, o);
    feeds.jobs = std::make_shared<es::kube::SharedInformer<es::kube::Job>>(io.get_executor(), client, ns, o);
    o.watch.field_selector = "type=Warning";
    feeds.events = std::make_shared<es::kube::SharedInformer<es::kube::Event>>(io.get_executor(), client, ns, o);
    asio::co_spawn(io, feeds.pods->run(), asio::bind_cancellation_slot(stop[0].slot(), asio::detached));
    asio::co_spawn(io, feeds.jobs->run(), asio::bind_cancellation_slot(stop[1].slot(), asio::detached));
    asio::co_spawn(io, feeds.events->run(), asio::bind_cancellation_slot(stop[2].slot(), asio::detached));
    return feeds;
}

/// Creates run `i`'s engine pod ("e<i>x-…", its ReplicaSet hash "e<i>x"), created at `created`; its name.
std::string create_engine(est::FakeCluster& cluster, est::NameSource& names, int i,
                          std::chrono::system_clock::time_point created) {
    const std::string hash = "e" + std::to_string(i) + "x";
    est::EnginePodOptions e;
    e.namespace_name = ns;
    e.name = est::engine_pod_name(hash, names.pod_suffix());
    e.replica_set_hash = hash;
    e.uid = names.uid();
    e.replica_set_uid = names.uid();
    e.created = created;
    cluster.create("pods", ns, est::engine_pod(e));
    return e.name;
}

/// Creates task `k` of run `id` (an "individuals" Job and its pod, both labelled run=<id>), created at `t0`; the
/// Job's and the pod's names.
std::pair<std::string, std::string> create_task(est::FakeCluster& cluster, est::NameSource& names, const std::string& id,
                                                int k, std::chrono::system_clock::time_point t0) {
    est::TaskJobOptions jo;
    jo.namespace_name = ns;
    jo.name = est::job_name(id + "q" + std::to_string(k), "individuals", k + 1, 1);
    jo.created = t0;
    jo.task_id = "hf:2:" + std::to_string(k + 1) + ":1";
    auto job = est::task_job(jo);
    job["metadata"].as_object()["labels"].as_object()["run"] = id;
    job["spec"].as_object()["template"].as_object()["metadata"].as_object()["labels"].as_object()["run"] = id;
    auto stored = cluster.create("jobs", ns, job);
    est::TaskPodOptions po;
    po.name = jo.name + "-" + names.pod_suffix();
    po.created = t0;
    auto pod = est::task_pod(stored, po);
    pod["metadata"].as_object()["labels"].as_object()["run"] = id;
    cluster.create("pods", ns, pod);
    return {jo.name, po.name};
}

/// One run: its engine pod, its tasks (`succeed` succeeded, one OOM-killed when `oom`), its label `run=<id>`.
struct RunSpec {
    std::string id;      ///< "r7"
    std::string engine;  ///< its engine pod
    int succeed = 1;
    bool oom = false;
    std::vector<std::string> jobs; ///< created task Jobs (their pods: "<job>-<suffix>")
    std::vector<std::string> pods;
    std::string oom_task;          ///< the task name of the OOM-killed one
};

struct RunOutcome {
    std::optional<es::WatchSummary> summary;
    std::string error;
    std::vector<es::Report> reports;
};

asio::awaitable<void> collect(es::ReportSubscription sub, RunOutcome& out) {
    for (;;) {
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec == es::channel_error::reports_lost) {
            out.error = "reports lost";
            continue;
        }
        if (ec) co_return;
        out.reports.push_back(std::move(r));
    }
}

/// Starts the watch of run `id` (its engine pod `engine`, its tasks labelled run=<id>) on `io`: its reports and how
/// it ended go to `out`; `ended` is called once it ended.
std::unique_ptr<es::DefaultSentinel> start_run_watch(asio::io_context& io, const es::kube::ClusterConfig& config,
                                                     const es::SentinelSettings& settings, es::SentinelOptions options,
                                                     const std::string& engine, const std::string& id, RunOutcome& out,
                                                     std::function<void()> ended) {
    es::MonitoringContext ctx;
    ctx.namespace_ = ns;
    ctx.engine_pod_name = engine;
    ctx.task_label_selector = "app=hyperflow,run=" + id;
    auto sentinel = std::make_unique<es::DefaultSentinel>(io.get_executor(), ctx, settings, config, std::move(options));
    asio::co_spawn(io, collect(sentinel->subscribe({.capacity = 10000}), out), asio::detached);
    asio::co_spawn(io, sentinel->watch(), [&out, ended = std::move(ended)](std::exception_ptr e, es::WatchSummary s) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                out.error = ex.what();
            }
        } else {
            out.summary = s;
        }
        ended();
    });
    return sentinel;
}

/// Waits (at most `limit`) until `finished` reaches `runs`; past it, stops the informers and `io`. Joins `io_thread`.
void wait_for_runs(asio::io_context& io, std::thread& io_thread, const std::atomic<int>& finished, int runs,
                   asio::cancellation_signal (&stop_informers)[3], std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (finished < runs && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
    if (finished < runs) {
        asio::post(io, [&] {
            for (auto& s : stop_informers) s.emit(asio::cancellation_type::terminal);
            io.stop();
        });
    }
    io_thread.join();
}

struct FleetResult {
    Counts counts;
    std::vector<RunSpec> specs;
    std::vector<RunOutcome> outcomes;
    es::kube::InformerStatus pods_status, jobs_status;
};

/// Plays `runs` runs in namespace "wf"; `shared` = through shared informers, else each Sentinel's own watches.
FleetResult play_fleet(int runs, bool shared) {
    est::FakeCluster cluster(cluster_options());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    est::NameSource names(7);
    const auto now = [] { return std::chrono::system_clock::now(); };

    FleetResult result;
    for (int i = 0; i < runs; ++i) {
        RunSpec s;
        s.id = "r" + std::to_string(i);
        s.engine = create_engine(cluster, names, i, now());
        s.succeed = 1 + i % 3;
        s.oom = i % 4 == 1;
        result.specs.push_back(std::move(s));
    }

    es::SentinelSettings settings;
    settings.poll_interval = 300ms;
    settings.timeout = 60s;
    settings.straggler_min_runtime = 0ms;
    settings.metrics_interval = 0ms; // the metrics API is read per run; not what is measured here
    const es::SentinelOptions base = fast_options();

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    es::kube::Client client(io.get_executor(), config);
    asio::cancellation_signal stop_informers[3];
    es::kube::SharedFeeds feeds;
    if (shared) feeds = start_informers(io, client, stop_informers);

    std::vector<std::unique_ptr<es::DefaultSentinel>> sentinels(runs);
    result.outcomes.resize(runs);
    std::atomic<int> finished{0};
    auto start_run = [&](int i) {
        auto options = base;
        options.shared = feeds;
        sentinels[i] = start_run_watch(io, config, settings, options, result.specs[i].engine, result.specs[i].id,
                                       result.outcomes[i], [&] {
                                           if (++finished == runs) {
                                               for (auto& s : stop_informers) s.emit(asio::cancellation_type::terminal);
                                               work.reset();
                                           }
                                       });
    };
    const int early = (runs + 1) / 2;
    for (int i = 0; i < early; ++i) start_run(i);
    std::thread io_thread([&] { io.run(); });

    // The tasks of every run start, run and end; runs late to the party start while they run.
    auto t0 = now();
    for (auto& s : result.specs) {
        for (int k = 0; k < s.succeed + (s.oom ? 1 : 0); ++k) {
            auto [job, pod] = create_task(cluster, names, s.id, k, t0);
            s.jobs.push_back(job);
            s.pods.push_back(pod);
        }
    }
    std::this_thread::sleep_for(300ms);
    for (auto& s : result.specs)
        for (auto& p : s.pods) cluster.modify("pods", ns, p, [&](boost::json::object& o) { est::pod_set_running(o, t0); });
    std::this_thread::sleep_for(300ms);
    {
        std::promise<void> started;
        asio::post(io, [&] {
            for (int i = early; i < runs; ++i) start_run(i);
            started.set_value();
        });
        started.get_future().wait();
    }
    std::this_thread::sleep_for(300ms);
    // The shared watches drop while their history is compacted: every watch must list again (410), and what
    // happened meanwhile (the tasks' ends) comes from the relist.
    cluster.compact();
    cluster.reset_watches();
    for (auto& s : result.specs) {
        for (std::size_t k = 0; k < s.pods.size(); ++k) {
            const bool oom = s.oom && k + 1 == s.pods.size();
            cluster.modify("pods", ns, s.pods[k], [&](boost::json::object& o) {
                if (oom) est::pod_set_terminated(o, t0, now(), 137, "OOMKilled");
                else est::pod_set_terminated(o, t0, now(), 0);
            });
            cluster.modify("jobs", ns, s.jobs[k], [&](boost::json::object& o) {
                if (oom) est::job_mark_failed(o, now());
                else est::job_mark_complete(o, now());
            });
            if (oom) s.oom_task = s.jobs[k];
        }
        cluster.create("events", ns,
                       est::event_about(*cluster.get("pods", ns, s.pods.back()), "BackOff",
                                        "Back-off restarting failed container", "Warning", now(), names));
    }
    std::this_thread::sleep_for(1000ms);
    for (auto& s : result.specs) cluster.write_file(ns, s.engine, "/work_dir/.workflow-exit-code", "0\n");

    wait_for_runs(io, io_thread, finished, runs, stop_informers, 50s);
    if (feeds.pods) result.pods_status = feeds.pods->status();
    if (feeds.jobs) result.jobs_status = feeds.jobs->status();
    result.counts = count_list_watch(cluster.traffic());
    return result;
}

/// Each run's own reports: its counts, its OOM kill, one COMPLETION, and no task of another run.
void check_runs(const FleetResult& r) {
    for (std::size_t i = 0; i < r.specs.size(); ++i) {
        const auto& spec = r.specs[i];
        const auto& out = r.outcomes[i];
        INFO("run " << spec.id << (out.error.empty() ? "" : ": " + out.error));
        REQUIRE(out.summary);
        CHECK(out.error.empty());
        CHECK(out.summary->exit_code == 0);
        CHECK(out.summary->completed_tasks == spec.succeed);
        CHECK(out.summary->failed_tasks == (spec.oom ? 1 : 0));
        CHECK(out.summary->total_tasks == spec.succeed + (spec.oom ? 1 : 0));
        CHECK(out.summary->oom_killed.size() == (spec.oom ? 1u : 0u));
        int completions = 0, ooms = 0;
        for (auto& rep : out.reports) {
            if (rep.type == es::ReportType::COMPLETION) ++completions;
            if (rep.type == es::ReportType::ANOMALY_OOMKILL && rep.severity == es::Severity::error) ++ooms;
            if (!rep.task_name.empty()) { // its key names the task's Job, of this run
                INFO("report " << rep.key << " names task " << rep.task_name);
                CHECK(rep.key.find("/job" + spec.id + "q") != std::string::npos);
            }
        }
        CHECK(completions == 1);
        CHECK(ooms == (spec.oom ? 1 : 0));
    }
}

} // namespace

TEST_CASE("shared watches: 1 run and 50 runs in one namespace make the same pod, Job and Event list+watch requests",
          "[integration][sentinel][shared]") {
    const auto one = play_fleet(1, true);
    check_runs(one);
    const auto fifty = play_fleet(50, true);
    check_runs(fifty);
    INFO("1 run: " << describe(one.counts) << "\n50 runs: " << describe(fifty.counts));
    // The shared watches: the same lists and watches for 1 run and for 50, but for the relist after the compaction
    // below, which a kind needs or not depending on when its last change came (the same for 1 run as for 50: at
    // most one list and one watch more, whichever play needed it).
    for (auto kind : {&Counts::pods, &Counts::jobs, &Counts::events}) {
        const auto lists = static_cast<long>((fifty.counts.*kind).lists) - static_cast<long>((one.counts.*kind).lists);
        const auto watches =
            static_cast<long>((fifty.counts.*kind).watches) - static_cast<long>((one.counts.*kind).watches);
        CHECK(lists == watches); // a relist is one list and one watch more, nothing else
        CHECK(lists >= -1);
        CHECK(lists <= 1);
    }
    // Each run's one list of its task pods and of its Jobs when its completion file is read; no other.
    CHECK(one.counts.pods.run_lists == 1);
    CHECK(one.counts.jobs.run_lists == 1);
    CHECK(fifty.counts.pods.run_lists == 50);
    CHECK(fifty.counts.jobs.run_lists == 50);
    CHECK(fifty.counts.events.run_lists == 0);
    // Per kind, whatever the number of runs: one list, a relist when the watch could not resume after the
    // compaction (410: Jobs and Events, whose last change was older than it; the pods had changed since), a watch
    // before and after the drop and the one answered 410.
    for (const auto* lw : {&one.counts.pods, &one.counts.jobs, &one.counts.events, &fifty.counts.pods,
                           &fifty.counts.jobs, &fifty.counts.events}) {
        CHECK(lw->lists >= 1);
        CHECK(lw->lists <= 2);
        CHECK(lw->watches >= 2);
        CHECK(lw->watches <= 3);
    }
    CHECK(fifty.jobs_status.stats.relists >= 1); // the Jobs' shared watch relisted, and every run went on through it
    CHECK(fifty.pods_status.subscribers == 0); // every run's subscriptions ended with it
    CHECK(fifty.jobs_status.subscribers == 0);
}

TEST_CASE("own watches: without shared informers the list+watch requests grow with the runs",
          "[integration][sentinel][shared]") {
    const auto one = play_fleet(1, false);
    check_runs(one);
    const auto four = play_fleet(4, false);
    check_runs(four);
    INFO("1 run: " << describe(one.counts) << "\n4 runs: " << describe(four.counts));
    // Every run lists and watches for itself (more after the compaction): the counts grow with the runs.
    CHECK(four.counts.jobs.run_lists >= 8); // the watch's and the completion's, per run
    CHECK(four.counts.events.lists >= 4);
    CHECK(four.counts.pods.lists >= 4);      // the engine pod, by its name
    CHECK(four.counts.pods.run_lists >= 8);  // the task pods, per run
    CHECK(four.counts.pods.watches > one.counts.pods.watches);
}

namespace {

/// One run, one task: its pod runs; then the watches drop and the apiserver is slow to open them again (1.5 s)
/// while the task is OOM-killed, its Job fails and the engine writes its exit code, which the completion probe
/// (not a watch) reads at once. The run's reports and summary.
/// With `Lag::stalled`, the watches stay open and healthy but the apiserver holds their events back (1.5 s, a slow
/// apiserver or network): nothing tells the Sentinel it is behind but the versions a list shows.
enum class Lag { reconnecting, stalled };

RunOutcome completion_while_lagging(bool shared, bool& quiet_streaming, Lag lag) {
    est::FakeCluster cluster(cluster_options());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    est::NameSource names(11);
    const auto now = [] { return std::chrono::system_clock::now(); };
    const auto t0 = now();
    const std::string engine = create_engine(cluster, names, 0, t0);
    est::TaskJobOptions jo;
    jo.namespace_name = ns;
    jo.name = est::job_name("r0q0", "frequency", 1, 1);
    jo.created = t0;
    jo.task_id = "hf:2:1:1";
    auto stored = cluster.create("jobs", ns, est::task_job(jo));
    est::TaskPodOptions po;
    po.name = jo.name + "-" + names.pod_suffix();
    po.created = t0;
    cluster.create("pods", ns, est::task_pod(stored, po));
    cluster.modify("pods", ns, po.name, [&](boost::json::object& o) { est::pod_set_running(o, t0); });

    // the io_context and the client outlive the informers and the Sentinel (declared after them)
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    es::kube::Client client(io.get_executor(), config);
    es::SentinelSettings settings;
    settings.poll_interval = 100ms;
    settings.timeout = 30s;
    settings.metrics_interval = 0ms;
    es::SentinelOptions options = fast_options();
    asio::cancellation_signal stop_informers[3];
    es::MonitoringContext ctx;
    ctx.namespace_ = ns;
    ctx.engine_pod_name = engine;
    ctx.task_label_selector = "app=hyperflow";
    if (shared) options.shared = start_informers(io, client, stop_informers);
    es::DefaultSentinel sentinel(io.get_executor(), ctx, settings, config, options);
    RunOutcome out;
    std::atomic<bool> done{false};
    asio::co_spawn(io, collect(sentinel.subscribe({.capacity = 1000}), out), asio::detached);
    asio::co_spawn(io, sentinel.watch(), [&](std::exception_ptr ex, es::WatchSummary s) {
        if (ex) {
            try {
                std::rethrow_exception(ex);
            } catch (const std::exception& err) {
                out.error = err.what();
            }
        } else {
            out.summary = s;
        }
        for (auto& sig : stop_informers) sig.emit(asio::cancellation_type::terminal);
        work.reset();
        done = true;
    });
    std::thread io_thread([&] { io.run(); });

    // the task is seen running, with every feed settled
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (sentinel.view().running < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(500ms);
    // the shared watches are quiet now (everything came in their lists): they show as streaming all the same
    if (shared) quiet_streaming = options.shared.pods->status().streaming && options.shared.jobs->status().streaming;
    if (lag == Lag::reconnecting) {
        cluster.delay_watches(1500ms);
        cluster.reset_watches();
    } else {
        cluster.stall_watches(true);
    }
    cluster.modify("pods", ns, po.name, [&](boost::json::object& o) { est::pod_set_terminated(o, t0, now(), 137, "OOMKilled"); });
    cluster.modify("jobs", ns, jo.name, [&](boost::json::object& o) { est::job_mark_failed(o, now()); });
    cluster.write_file(ns, engine, "/work_dir/.workflow-exit-code", "1\n");
    if (lag == Lag::stalled) {
        std::this_thread::sleep_for(1500ms);
        cluster.stall_watches(false);
    }

    deadline = std::chrono::steady_clock::now() + 25s;
    while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    if (!done) asio::post(io, [&] { io.stop(); });
    io_thread.join();
    return out;
}

} // namespace

TEST_CASE("completion read while the task watches reconnect or lag: the last task's OOM kill is told first, and counted",
          "[integration][sentinel][shared][completion]") {
    for (auto lag : {Lag::reconnecting, Lag::stalled})
    for (bool shared : {false, true}) {
        INFO((shared ? "shared informers" : "own watches") << (lag == Lag::stalled ? ", stalled" : ", reconnecting"));
        bool quiet_streaming = true;
        auto out = completion_while_lagging(shared, quiet_streaming, lag);
        CHECK(quiet_streaming);
        REQUIRE(out.summary);
        CHECK(out.error.empty());
        CHECK(out.summary->exit_code == std::optional<int>(1));
        CHECK(out.summary->oom_killed.size() == 1);
        CHECK(out.summary->failed_tasks == 1);
        std::optional<std::size_t> oom_at, completion_at;
        for (std::size_t i = 0; i < out.reports.size(); ++i) {
            const auto& r = out.reports[i];
            if (r.type == es::ReportType::ANOMALY_OOMKILL && r.severity == es::Severity::error && !oom_at) oom_at = i;
            if (r.type == es::ReportType::COMPLETION) completion_at = i;
        }
        REQUIRE(oom_at);
        REQUIRE(completion_at);
        CHECK(*oom_at < *completion_at);
    }
}

namespace {

/// `runs` runs in namespace "wf", each with one task, fed by the shared informers: while their tasks run, the
/// shared watches drop and the apiserver refuses every connection for 1.5 s; then the tasks end and the engines
/// write their exit codes. Each run's outcome.
std::vector<RunOutcome> outage_through_shared_watches(int runs) {
    est::FakeCluster cluster(cluster_options());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");
    est::NameSource names(13);
    const auto now = [] { return std::chrono::system_clock::now(); };
    const auto t0 = now();
    std::vector<std::string> engines, jobs, pods;
    for (int i = 0; i < runs; ++i) {
        engines.push_back(create_engine(cluster, names, i, t0));
        auto [job, pod] = create_task(cluster, names, "r" + std::to_string(i), 0, t0);
        cluster.modify("pods", ns, pod, [&](boost::json::object& o) { est::pod_set_running(o, t0); });
        jobs.push_back(job);
        pods.push_back(pod);
    }

    es::SentinelSettings settings;
    settings.poll_interval = 300ms;
    settings.timeout = 60s;
    settings.metrics_interval = 0ms;
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    es::kube::Client client(io.get_executor(), config);
    asio::cancellation_signal stop_informers[3];
    auto options = fast_options();
    options.shared = start_informers(io, client, stop_informers);
    std::vector<std::unique_ptr<es::DefaultSentinel>> sentinels(runs);
    std::vector<RunOutcome> outcomes(runs);
    std::atomic<int> finished{0};
    for (int i = 0; i < runs; ++i) {
        sentinels[i] = start_run_watch(io, config, settings, options, engines[i], "r" + std::to_string(i), outcomes[i], [&] {
            if (++finished == runs) {
                for (auto& sig : stop_informers) sig.emit(asio::cancellation_type::terminal);
                work.reset();
            }
        });
    }
    std::thread io_thread([&] { io.run(); });

    // every run sees its task running over settled shared watches; then the outage
    auto deadline = std::chrono::steady_clock::now() + 20s;
    auto all_running = [&] {
        for (auto& s : sentinels)
            if (s->view().running < 1) return false;
        return true;
    };
    while (!all_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(500ms);
    cluster.refuse_connections(1500ms);
    cluster.close_watches();
    std::this_thread::sleep_for(2500ms);
    for (int i = 0; i < runs; ++i) {
        cluster.modify("pods", ns, pods[i], [&](boost::json::object& o) { est::pod_set_terminated(o, t0, now(), 0); });
        cluster.modify("jobs", ns, jobs[i], [&](boost::json::object& o) { est::job_mark_complete(o, now()); });
    }
    std::this_thread::sleep_for(500ms);
    for (auto& e : engines) cluster.write_file(ns, e, "/work_dir/.workflow-exit-code", "0\n");

    wait_for_runs(io, io_thread, finished, runs, stop_informers, 40s);
    return outcomes;
}

} // namespace

TEST_CASE("shared watches: an outage is told to every run once, and its end too", "[integration][sentinel][shared]") {
    const auto outcomes = outage_through_shared_watches(5);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const auto& out = outcomes[i];
        INFO("run r" << i << (out.error.empty() ? "" : ": " + out.error));
        REQUIRE(out.summary);
        CHECK(out.error.empty());
        CHECK(out.summary->exit_code == std::optional<int>(0));
        CHECK(out.summary->completed_tasks == 1);
        std::vector<const es::Report*> lost, back;
        std::set<std::string> keys;
        for (const auto& r : out.reports) {
            if (r.type == es::ReportType::CONNECTIVITY_LOSS) lost.push_back(&r);
            if (r.type == es::ReportType::CONNECTIVITY_RESTORED) back.push_back(&r);
            CHECK(keys.insert(r.key).second); // nothing said twice
        }
        // one outage: one loss, one restoration after it (the shared watches' failures reach every run)
        CHECK(lost.size() == 1);
        REQUIRE(back.size() == lost.size());
        CHECK(lost[0]->sequence < back[0]->sequence);
    }
}

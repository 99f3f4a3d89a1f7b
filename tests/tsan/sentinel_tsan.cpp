// The Sentinel over FakeCluster on an io_context run by four threads, with three subscribers draining the report
// channel on their own strands (one of them slow), while the simulated cluster plays a small HyperFlow run with an OOM kill, a
// closure of every watch and a compaction. Built with -fsanitize=thread by scripts/tsan.sh: a data race in the
// watchers, the monitor, the client or the channel is reported by ThreadSanitizer and fails the run. The program
// also checks that every subscriber saw the whole run, in order, and that the summary is right. Meanwhile a thread
// of its own keeps reading Sentinel::view() (the MonitorView snapshot) and checks that it only moves forward.
// Exit status 0 when every check passed, 1 otherwise.
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
}

est::TaskDecl task(std::string type, int proc_id, double start, double duration,
                   est::TaskOutcome outcome = est::TaskOutcome::succeed) {
    est::TaskDecl t;
    t.type = std::move(type);
    t.proc_id = proc_id;
    t.name = t.effective_id();
    t.start = start;
    t.pending = 2;
    t.duration = duration;
    t.outcome = outcome;
    return t;
}

/// The 1000genome shape (10 tasks) plus a frequency task killed for memory; the engine exits 1. Mid-run, every
/// watch is closed and the watch history compacted, so the watchers resume, get 410 and relist.
est::Scenario scenario() {
    est::Scenario s;
    s.name = "tsan";
    s.namespace_name = "wf-tsan";
    s.time_scale = 0.01;
    s.seed = 11;
    s.engine_at = 0;
    s.support_objects_at = 0;
    int proc = 1;
    for (int i = 0; i < 4; ++i) s.add_task(task("individuals", proc++, 1 + i, 20 + 3 * i));
    s.add_task(task("sifting", proc++, 2, 15));
    s.add_task(task("individuals_merge", proc++, 40, 20));
    for (int i = 0; i < 2; ++i) s.add_task(task("mutation_overlap", proc++, 70 + i, 30 + 5 * i));
    for (int i = 0; i < 2; ++i) s.add_task(task("frequency", proc++, 70 + i, 40 + 5 * i));
    auto killed = task("frequency", proc++, 72, 20, est::TaskOutcome::oom);
    killed.memory_limit = "1Gi";
    killed.backoff_limit = 0;
    s.add_task(killed);
    s.add(est::step::close_watches(50));
    s.add(est::step::compact(51));
    s.add(est::step::close_watches(52));
    s.complete_at(130, 1);
    return s;
}

es::SentinelOptions fast_options() {
    es::SentinelOptions o;
    o.watch_backoff.initial = 50ms;
    o.watch_backoff.cap = 400ms;
    o.watch_backoff.jitter = 0.2;
    o.client.backoff.initial = 50ms;
    o.client.backoff.cap = 400ms;
    o.client.connect_timeout = 5s;
    o.client.request_timeout = 10s;
    o.client.max_retries = 2;
    o.tick_interval = 50ms;
    o.exec_timeout = 10s;
    return o;
}

struct Received {
    std::vector<es::Report> reports;
    std::size_t loss_markers = 0;
    boost::system::error_code end;
};

/// Receives until the channel is closed; `pause` after each receive makes a slow subscriber.
asio::awaitable<Received> drain(es::ReportSubscription& sub, std::chrono::milliseconds pause = 0ms) {
    Received out;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        if (pause > 0ms) {
            timer.expires_after(pause);
            co_await timer.async_wait(asio::use_awaitable);
        }
        auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec == es::channel_error::reports_lost) {
            ++out.loss_markers;
            continue;
        }
        if (ec) {
            out.end = ec;
            co_return out;
        }
        out.reports.push_back(std::move(r));
    }
}

std::size_t count_of(const std::vector<es::Report>& rs, es::ReportType t) {
    return static_cast<std::size_t>(std::count_if(rs.begin(), rs.end(), [&](auto& r) { return r.type == t; }));
}

} // namespace

int main() {
    constexpr int threads = 4;
    const auto sc = scenario();
    const std::string oom_task = sc.tasks.back().effective_id();
    est::FakeClusterOptions cluster_options;
    cluster_options.default_namespace = sc.namespace_name;
    est::FakeCluster cluster(cluster_options);
    auto context = es::context_from_json_text(sc.context_json());
    auto config = es::kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster-kubeconfig");

    es::SentinelSettings settings;
    settings.poll_interval = 100ms;
    settings.timeout = 50s;
    settings.straggler_min_runtime = 0ms;

    asio::io_context io(threads);
    es::DefaultSentinel sentinel(io.get_executor(), context, settings, config, fast_options());
    // The two roomy subscribers take the task-lifecycle stream too: they see every report.
    auto first = sentinel.subscribe({.capacity = 100000, .lifecycle = true});
    auto second = sentinel.subscribe({.capacity = 100000, .lifecycle = true});
    auto small = sentinel.subscribe({.capacity = 2}); // slow: progress reports are coalesced while it lags

    est::ScenarioRunner runner(cluster, sc);
    runner.start();
    auto first_done = asio::co_spawn(asio::make_strand(io), drain(first), asio::use_future);
    auto second_done = asio::co_spawn(asio::make_strand(io), drain(second), asio::use_future);
    auto small_done = asio::co_spawn(asio::make_strand(io), drain(small, 150ms), asio::use_future);
    auto watch_done = asio::co_spawn(asio::make_strand(io), sentinel.watch(), asio::use_future);

    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) pool.emplace_back([&] { io.run(); });
    // view() from a thread that is not the io_context's, while the watch runs: snapshots only move forward.
    std::atomic<bool> watching{true};
    std::size_t views = 0;
    int view_regressions = 0;
    int max_completed_seen = 0;
    std::thread viewer([&] {
        int last_completed = 0;
        while (watching.load()) {
            es::MonitorView v = sentinel.view();
            ++views;
            if (v.completed < last_completed) ++view_regressions;
            last_completed = std::max(last_completed, v.completed);
            int phase_total = 0;
            for (auto& p : v.phases) phase_total += p.succeeded;
            if (phase_total > v.total) ++view_regressions;
            std::this_thread::sleep_for(1ms);
        }
        max_completed_seen = last_completed;
    });
    for (auto& t : pool) t.join();
    watching = false;
    viewer.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    runner.stop();

    std::optional<es::WatchSummary> summary;
    try {
        summary = watch_done.get();
    } catch (const std::exception& e) {
        check(false, std::string("watch() threw: ") + e.what());
    }
    for (auto& e : runner.errors()) check(false, "scenario runner: " + e);

    auto a = first_done.get();
    auto b = second_done.get();
    auto c = small_done.get();
    for (auto* r : {&a, &b, &c}) check(r->end == es::channel_error::closed, "a subscription ended with " + r->end.message());

    // The two roomy subscribers received the same reports, every one exactly once, in the same order (a report
    // waiting for its evidence may come after later ones, so the sequences are a permutation of 1..N).
    check(!a.reports.empty(), "no report received");
    std::vector<std::uint64_t> seqs;
    for (auto& r : a.reports) seqs.push_back(r.sequence);
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 0; i < seqs.size(); ++i)
        check(seqs[i] == i + 1, "sequence " + std::to_string(i + 1) + " is missing or repeated");
    check(a.loss_markers == 0 && b.loss_markers == 0, "a roomy subscriber lost reports");
    check(b.reports.size() == a.reports.size(), "the two subscribers received different numbers of reports");
    for (std::size_t i = 0; i < std::min(a.reports.size(), b.reports.size()); ++i)
        check(a.reports[i].sequence == b.reports[i].sequence && a.reports[i].type == b.reports[i].type &&
                  a.reports[i].message == b.reports[i].message,
              "the subscribers differ at report " + std::to_string(i));
    check(!a.reports.empty() && a.reports.back().type == es::ReportType::COMPLETION, "COMPLETION is not last");

    // The small subscriber: everything but progress and the lifecycle stream, in the order the others saw it.
    std::vector<std::uint64_t> small_seqs, expected_seqs;
    for (auto& r : c.reports)
        if (r.type != es::ReportType::PROGRESS) small_seqs.push_back(r.sequence);
    for (auto& r : a.reports)
        if (r.type != es::ReportType::PROGRESS && !es::is_lifecycle(r.type)) expected_seqs.push_back(r.sequence);
    check(small_seqs == expected_seqs, "the small subscriber received other reports, or in another order");
    check(c.loss_markers == 0 && small.lost_reports() == 0, "the small subscriber lost reports");
    for (auto t : {es::ReportType::ANOMALY_OOMKILL, es::ReportType::COMPLETION})
        check(count_of(c.reports, t) == count_of(a.reports, t),
              "the small subscriber missed a " + std::string(es::to_string(t)) + " report");
    check(count_of(c.reports, es::ReportType::PROGRESS) + small.coalesced_reports() ==
              count_of(a.reports, es::ReportType::PROGRESS),
          "progress reports received + coalesced != published");

    // What happened in the run.
    std::size_t oom_errors = 0;
    for (auto& r : a.reports)
        if (r.type == es::ReportType::ANOMALY_OOMKILL && r.severity == es::Severity::error && r.task_name == oom_task)
            ++oom_errors;
    check(oom_errors == 1, "expected one OOM kill report for " + oom_task + ", got " + std::to_string(oom_errors));
    if (summary) {
        check(summary->exit_code == std::optional<int>(1), "summary exit code is not 1");
        check(!summary->timed_out, "the watch timed out");
        check(summary->total_tasks == 11, "total_tasks " + std::to_string(summary->total_tasks));
        check(summary->completed_tasks == 10, "completed_tasks " + std::to_string(summary->completed_tasks));
        check(summary->oom_killed == std::vector<std::string>{oom_task}, "oom_killed does not name " + oom_task);
        check(summary->reports[es::ReportType::COMPLETION] == 1, "not exactly one COMPLETION in the summary");
        std::size_t counted = 0;
        for (auto& [type, n] : summary->reports) counted += static_cast<std::size_t>(n);
        check(counted == a.reports.size(), "the summary counts " + std::to_string(counted) + " reports, " +
                                               std::to_string(a.reports.size()) + " were received");
        auto final_view = sentinel.view();
        check(final_view.finished, "the last view is not finished");
        check(final_view.completed == summary->completed_tasks - summary->inferred_completed,
              "the last view counts " + std::to_string(final_view.completed) + " completed tasks");
        check(final_view.anomaly_counts[es::ReportType::ANOMALY_OOMKILL] >= 1, "the last view has no OOM kill");
        auto later = sentinel.summary();
        check(later.exit_code == summary->exit_code && later.completed_tasks == summary->completed_tasks &&
                  later.reports == summary->reports,
              "summary() after the watch disagrees with the watch's result");
    }

    check(views > 100, "view() was read only " + std::to_string(views) + " times");
    check(view_regressions == 0, "view() went backwards " + std::to_string(view_regressions) + " times");
    check(max_completed_seen > 0, "view() never showed a completed task");

    std::printf("sentinel over FakeCluster on %d threads: %zu reports to each of 2 subscribers, %zu to the small one "
                "(%zu coalesced), %zu views read from another thread, %.1f s, %s\n",
                threads, a.reports.size(), c.reports.size(), small.coalesced_reports(), views, seconds,
                failures == 0 ? "all checks passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}

// The metrics registry and its Prometheus text exposition (format 0.0.4), and the sentinel's metric families.
#include <execution_sentinel/serve/metrics.hpp>
#include <execution_sentinel/serve/sentinel_metrics.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace sv = execution_sentinel::serve;
using namespace std::chrono_literals;

namespace {

/// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        auto line = text.substr(start, end - start);
        if (line.rfind(prefix, 0) == 0) out.push_back(line);
        start = end + 1;
    }
    return out;
}

/// The text of one family (its HELP line up to the next family's HELP line).
std::string family_text(const std::string& text, const std::string& name) {
    const auto begin = text.find("# HELP " + name + " ");
    if (begin == std::string::npos) return {};
    const auto end = text.find("# HELP ", begin + 1);
    return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

} // namespace

TEST_CASE("metrics: counter, gauge and labels in the text format", "[serve][metrics]") {
    sv::Registry r;
    auto& c = r.counter("execution_sentinel_test_events_total", "Events seen.", {"kind"});
    c.with({"b"}).inc();
    c.with({"a"}).inc(2.5);
    c.with({"a"}).inc(-1); // a counter never goes down
    auto& g = r.gauge("execution_sentinel_test_queue_bytes", "Bytes queued.");
    g.with().set(1024);
    g.with().dec(24);
    CHECK(family_text(r.expose(), "execution_sentinel_test_events_total") ==
          "# HELP execution_sentinel_test_events_total Events seen.\n"
          "# TYPE execution_sentinel_test_events_total counter\n"
          "execution_sentinel_test_events_total{kind=\"a\"} 2.5\n"
          "execution_sentinel_test_events_total{kind=\"b\"} 1\n");
    CHECK(family_text(r.expose(), "execution_sentinel_test_queue_bytes") ==
          "# HELP execution_sentinel_test_queue_bytes Bytes queued.\n"
          "# TYPE execution_sentinel_test_queue_bytes gauge\n"
          "execution_sentinel_test_queue_bytes 1000\n");
}

TEST_CASE("metrics: families are sorted by name and a labelled family without series shows HELP and TYPE",
          "[serve][metrics]") {
    sv::Registry r;
    r.gauge("zz_last", "Last.");
    r.counter("aa_first_total", "First.", {"x"});
    const auto text = r.expose();
    const auto helps = lines_starting(text, "# HELP ");
    REQUIRE(helps.size() == 3);
    CHECK(helps[0].rfind("# HELP aa_first_total", 0) == 0);
    CHECK(helps[1].rfind("# HELP execution_sentinel_metric_series_dropped_total", 0) == 0);
    CHECK(helps[2].rfind("# HELP zz_last", 0) == 0);
    CHECK(lines_starting(text, "aa_first_total").empty());
    CHECK(text.back() == '\n');
}

TEST_CASE("metrics: label values and HELP text are escaped, invalid UTF-8 is replaced", "[serve][metrics]") {
    sv::Registry r;
    auto& g = r.gauge("t_value", "Line one\nback\\slash \"quotes\" stay.", {"v"});
    g.with({"a\\b\"c\nd"}).set(1);
    g.with({std::string("ok \xC3\xA9 bad \xFF\xC3 end")}).set(2);
    g.with({std::string("overlong \xC0\xAF surrogate \xED\xA0\x80")}).set(3);
    const auto text = family_text(r.expose(), "t_value");
    CHECK(text.find("# HELP t_value Line one\\nback\\\\slash \"quotes\" stay.\n") != std::string::npos);
    CHECK(text.find("t_value{v=\"a\\\\b\\\"c\\nd\"} 1\n") != std::string::npos);
    CHECK(text.find("t_value{v=\"ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD end\"} 2\n") != std::string::npos);
    CHECK(text.find("t_value{v=\"overlong \xEF\xBF\xBD\xEF\xBF\xBD surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} 3\n") !=
          std::string::npos);
    // Exactly one line per sample: no raw line feed survived.
    CHECK(lines_starting(text, "t_value{").size() == 3);
}

TEST_CASE("metrics: sample values", "[serve][metrics]") {
    auto fmt = [](double v) {
        std::string s;
        sv::detail::append_number(s, v);
        return s;
    };
    CHECK(fmt(0) == "0");
    CHECK(fmt(-0.0) == "0");
    CHECK(fmt(42) == "42");
    CHECK(fmt(-3) == "-3");
    CHECK(fmt(0.1) == "0.1");
    CHECK(fmt(0.005) == "0.005");
    CHECK(fmt(123456789012345.0) == "123456789012345");
    CHECK(fmt(1e15) == "1e+15");
    CHECK(fmt(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(fmt(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(fmt(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(std::stod(fmt(1.0 / 3)) == 1.0 / 3); // shortest round trip
}

TEST_CASE("metrics: a histogram's buckets are cumulative up to +Inf, with _sum and _count", "[serve][metrics]") {
    sv::Registry r;
    auto& h = r.histogram("t_latency_seconds", "Latency.", {"op"}, {0.01, 0.1, 1});
    auto read = h.with({"get"});
    for (double v : {0.005, 0.01, 0.05, 0.5, 0.5, 7.0}) read.observe(v);
    read.observe(std::numeric_limits<double>::quiet_NaN()); // ignored
    CHECK(family_text(r.expose(), "t_latency_seconds") ==
          "# HELP t_latency_seconds Latency.\n"
          "# TYPE t_latency_seconds histogram\n"
          "t_latency_seconds_bucket{op=\"get\",le=\"0.01\"} 2\n"
          "t_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 3\n"
          "t_latency_seconds_bucket{op=\"get\",le=\"1\"} 5\n"
          "t_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 6\n"
          "t_latency_seconds_sum{op=\"get\"} 8.065\n"
          "t_latency_seconds_count{op=\"get\"} 6\n");
    auto& plain = r.histogram("t_plain_seconds", "Plain.", {}, {1});
    plain.with().observe(2);
    CHECK(family_text(r.expose(), "t_plain_seconds").find("t_plain_seconds_bucket{le=\"1\"} 0\n"
                                                          "t_plain_seconds_bucket{le=\"+Inf\"} 1\n"
                                                          "t_plain_seconds_sum 2\n"
                                                          "t_plain_seconds_count 1\n") != std::string::npos);
}

TEST_CASE("metrics: cardinality is bounded by an overflow series and a count of refused label sets",
          "[serve][metrics]") {
    sv::Registry r;
    auto& g = r.gauge("t_per_run", "Per run.", {"namespace", "run"}, {.max_series = 2});
    g.with({"ns", "a"}).set(1);
    g.with({"ns", "b"}).set(2);
    g.with({"ns", "c"}).set(3);  // refused: goes to the overflow series
    g.with({"ns", "c"}).set(4);  // the same combination again: not counted twice
    g.with({"ns", "d"}).inc(10); // another one
    CHECK(g.size() == 2);
    CHECK(r.series_dropped("t_per_run") == 2);
    auto text = r.expose();
    CHECK(text.find("t_per_run{namespace=\"__overflow__\",run=\"__overflow__\"} 14\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_metric_series_dropped_total{family=\"t_per_run\"} 2\n") != std::string::npos);
    CHECK(text.find("run=\"c\"") == std::string::npos);

    // Removing a run's series makes room again.
    CHECK(g.remove_where({{"namespace", "ns"}, {"run", "a"}}) == 1);
    g.with({"ns", "e"}).set(5);
    CHECK(g.size() == 2);
    CHECK(r.expose().find("t_per_run{namespace=\"ns\",run=\"e\"} 5\n") != std::string::npos);
    CHECK(g.remove({"ns", "b"}));
    CHECK_FALSE(g.remove({"ns", "b"}));
}

TEST_CASE("metrics: label values are cut to 256 bytes", "[serve][metrics]") {
    sv::Registry r;
    auto& g = r.gauge("t_long", "Long.", {"v"});
    g.with({std::string(1000, 'x')}).set(1);
    g.with({std::string(300, 'x')}).inc(); // the same series once cut
    const auto text = r.expose();
    CHECK(text.find("t_long{v=\"" + std::string(256, 'x') + "\"} 2\n") != std::string::npos);
    CHECK(g.size() == 1);
}

TEST_CASE("metrics: definitions that break the conventions are refused", "[serve][metrics]") {
    sv::Registry r;
    CHECK_THROWS_AS(r.counter("t_events", "No _total."), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.gauge("t_events_total", "A gauge with _total."), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.gauge("1bad", "Bad name."), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.gauge("t_ok", "Bad label.", {"__reserved"}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.gauge("t_ok", "Bad label.", {"a-b"}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.gauge("t_ok", "Twice.", {"a", "a"}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.histogram("t_h_seconds", "le.", {"le"}, {1}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.histogram("t_h_seconds", "Unsorted.", {}, {1, 0.5}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.histogram("t_h_seconds", "None.", {}, {}), sv::MetricDefinitionError);
    auto& a = r.gauge("t_same", "Same.", {"x"});
    CHECK(&r.gauge("t_same", "Same.", {"x"}) == &a);
    CHECK_THROWS_AS(r.gauge("t_same", "Other labels.", {"y"}), sv::MetricDefinitionError);
    CHECK_THROWS_AS(r.counter("t_same_total", "ok").with({"one", "two"}), sv::MetricDefinitionError);
}

TEST_CASE("metrics: concurrent updates through handles lose nothing", "[serve][metrics]") {
    sv::Registry r;
    auto& c = r.counter("t_hits_total", "Hits.", {"t"});
    auto& h = r.histogram("t_h_seconds", "H.", {}, {0.5});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            auto mine = c.with({t % 2 ? "odd" : "even"});
            for (int i = 0; i < 50000; ++i) {
                mine.inc();
                h.with().observe(i % 2 ? 1.0 : 0.25);
            }
        });
    std::thread scraper([&] {
        for (int i = 0; i < 50; ++i) (void)r.expose();
    });
    for (auto& t : threads) t.join();
    scraper.join();
    CHECK(c.with({"odd"}).value() == 100000);
    CHECK(c.with({"even"}).value() == 100000);
    auto snap = h.with().snapshot();
    CHECK(snap.count() == 200000);
    CHECK(snap.cumulative[0] == 100000);
    CHECK(snap.sum == 100000 * 1.0 + 100000 * 0.25);
}

// ------------------------------------------------------------------------------------------------ SentinelMetrics

namespace {

es::Report make_report(es::ReportType type, es::Severity sev, boost::json::object details = {}) {
    es::Report r;
    r.type = type;
    r.severity = sev;
    r.timestamp = es::Timestamp(std::chrono::seconds(1'800'000'000));
    r.details = std::move(details);
    return r;
}

} // namespace

TEST_CASE("sentinel metrics: build info and every family are exposed", "[serve][metrics]") {
    sv::SentinelMetrics m({.version = "9.8.7"});
    const auto text = m.registry().expose();
    CHECK(text.find("execution_sentinel_build_info{version=\"9.8.7\"} 1\n") != std::string::npos);
    for (const char* name :
         {"execution_sentinel_runs_tracked", "execution_sentinel_runs_finished_total",
          "execution_sentinel_run_duration_seconds", "execution_sentinel_tasks", "execution_sentinel_run_health_ratio",
          "execution_sentinel_reports_total", "execution_sentinel_stalls_total",
          "execution_sentinel_reaction_latency_seconds", "execution_sentinel_last_report_timestamp_seconds",
          "execution_sentinel_watch_restarts_total", "execution_sentinel_kube_api_errors_total",
          "execution_sentinel_store_writes_total", "execution_sentinel_alert_deliveries_total",
          "execution_sentinel_metric_series_dropped_total"}) {
        INFO(name);
        CHECK(m.registry().find(name) != nullptr);
        CHECK(text.find(std::string("# TYPE ") + name + " ") != std::string::npos);
    }
}

TEST_CASE("sentinel metrics: reports are counted by type and severity, with stalls and reaction latency",
          "[serve][metrics]") {
    sv::SentinelMetrics m;
    auto oom = make_report(es::ReportType::ANOMALY_OOMKILL, es::Severity::error);
    m.observe(oom, oom.timestamp + 4ms);
    m.observe(oom, oom.timestamp + 40ms);
    m.observe(make_report(es::ReportType::ANOMALY_STALL, es::Severity::warning,
                          {{"level", "workflow"}, {"tier", "LOW"}, {"resolved", false}}),
              oom.timestamp);
    m.observe(make_report(es::ReportType::ANOMALY_STALL, es::Severity::warning,
                          {{"level", "workflow"}, {"tier", "MEDIUM"}, {"resolved", false}}),
              oom.timestamp);
    m.observe(make_report(es::ReportType::ANOMALY_STALL, es::Severity::info,
                          {{"level", "workflow"}, {"tier", "MEDIUM"}, {"resolved", true}}),
              oom.timestamp);
    m.observe(make_report(es::ReportType::ANOMALY_STALL, es::Severity::warning, {{"level", "task"}}), oom.timestamp);
    // A report observed "before" it was made (clocks of two machines) counts as 0 s.
    m.observe(make_report(es::ReportType::PROGRESS, es::Severity::info), oom.timestamp - 5s);

    const auto text = m.registry().expose();
    CHECK(text.find("execution_sentinel_reports_total{type=\"ANOMALY_OOMKILL\",severity=\"error\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reports_total{type=\"ANOMALY_STALL\",severity=\"warning\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reports_total{type=\"ANOMALY_STALL\",severity=\"info\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reports_total{type=\"COMPLETION\",severity=\"info\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_stalls_total{level=\"workflow\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_stalls_total{level=\"task\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_reaction_latency_seconds_bucket{type=\"ANOMALY_OOMKILL\",le=\"0.0025\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reaction_latency_seconds_bucket{type=\"ANOMALY_OOMKILL\",le=\"0.005\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reaction_latency_seconds_bucket{type=\"ANOMALY_OOMKILL\",le=\"0.05\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reaction_latency_seconds_sum{type=\"ANOMALY_OOMKILL\"} 0.044\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_reaction_latency_seconds_bucket{type=\"PROGRESS\",le=\"0.001\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_last_report_timestamp_seconds 1799999995\n") != std::string::npos);
}

TEST_CASE("sentinel metrics: a run's tasks by phase, its health, and its end", "[serve][metrics]") {
    sv::SentinelMetrics m;
    m.run_started("wf", "run-1");
    m.run_started("wf", "run-2");
    es::MonitorView v;
    v.health = 0.75;
    v.phases.push_back(
        {.task_type = "mProject", .total = 5, .pending = 1, .running = 1, .succeeded = 1, .failed = 1, .vanished = 1});
    v.phases.push_back({.task_type = "mAdd", .total = 1, .pending = 1});
    m.observe("wf", "run-1", v);
    m.observe("wf", "run-2", make_report(es::ReportType::PROGRESS, es::Severity::info, {{"health", 1.5}}));
    auto text = m.registry().expose();
    CHECK(text.find("execution_sentinel_runs_tracked 2\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_tasks{namespace=\"wf\",run=\"run-1\",phase=\"mProject\",status=\"failed\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_tasks{namespace=\"wf\",run=\"run-1\",phase=\"mAdd\",status=\"pending\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_tasks{namespace=\"wf\",run=\"run-1\",phase=\"mProject\",status=\"vanished\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_tasks{namespace=\"wf\",run=\"run-1\",phase=\"mAdd\",status=\"vanished\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_run_health_ratio{namespace=\"wf\",run=\"run-1\"} 0.75\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_run_health_ratio{namespace=\"wf\",run=\"run-2\"} 1\n") != std::string::npos);

    es::WatchSummary s;
    s.exit_code = 0;
    s.duration_seconds = 420;
    m.run_finished("wf", "run-1", s);
    text = m.registry().expose();
    CHECK(text.find("execution_sentinel_runs_tracked 1\n") != std::string::npos);
    CHECK(text.find("run=\"run-1\"") == std::string::npos); // its series are gone
    CHECK(text.find("execution_sentinel_run_health_ratio{namespace=\"wf\",run=\"run-2\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_runs_finished_total{outcome=\"succeeded\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_run_duration_seconds_bucket{le=\"300\"} 0\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_run_duration_seconds_bucket{le=\"600\"} 1\n") != std::string::npos);
}

TEST_CASE("sentinel metrics: per-run series are bounded by max_runs", "[serve][metrics]") {
    sv::SentinelMetrics m({.max_runs = 3});
    for (int i = 0; i < 10; ++i) m.set_health("wf", "run-" + std::to_string(i), 1);
    const auto text = m.registry().expose();
    CHECK(lines_starting(text, "execution_sentinel_run_health_ratio{").size() == 4); // 3 runs + the overflow series
    CHECK(text.find("execution_sentinel_metric_series_dropped_total{family=\"execution_sentinel_run_health_ratio\"} 7\n") !=
          std::string::npos);
}

TEST_CASE("sentinel metrics: watch, API, store and alert events", "[serve][metrics]") {
    sv::SentinelMetrics m;
    m.watch_restarted("pods", "expired");
    m.watch_restarted("pods", "expired");
    m.api_error(410);
    m.api_error(0);
    m.shared_watch_resynced("jobs", 3);
    m.shared_watch_resynced("jobs", 0);
    m.shared_watch_resynced("jobs");
    m.store_write("ok");
    m.alert_delivery("slack", "failed");
    const auto text = m.registry().expose();
    CHECK(text.find("execution_sentinel_watch_restarts_total{resource=\"pods\",reason=\"expired\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_kube_api_errors_total{code=\"410\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_shared_watch_resyncs_total{resource=\"jobs\"} 4\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_kube_api_errors_total{code=\"transport\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_store_writes_total{outcome=\"ok\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_alert_deliveries_total{sink=\"slack\",outcome=\"failed\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("sentinel metrics: observe_reports drains a subscription until the channel closes", "[serve][metrics]") {
    boost::asio::io_context io;
    es::ReportChannel channel(io.get_executor());
    auto sub = channel.subscribe();
    sv::SentinelMetrics m;
    auto done = boost::asio::co_spawn(io, sv::observe_reports(sub, m, "wf", "r"), boost::asio::use_future);
    channel.publish(make_report(es::ReportType::PROGRESS, es::Severity::info, {{"health", 0.5}}));
    channel.publish(make_report(es::ReportType::ANOMALY_OOMKILL, es::Severity::error));
    channel.close();
    io.run();
    done.get();
    const auto text = m.registry().expose();
    CHECK(text.find("execution_sentinel_reports_total{type=\"PROGRESS\",severity=\"info\"} 1\n") != std::string::npos);
    CHECK(text.find("execution_sentinel_reports_total{type=\"ANOMALY_OOMKILL\",severity=\"error\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("execution_sentinel_run_health_ratio{namespace=\"wf\",run=\"r\"} 0.5\n") != std::string::npos);
}

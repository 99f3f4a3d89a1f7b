// Watcher<T> over real HTTPS against FakeCluster, with its faults: dropped watches, compaction → 410,
// bursts of 500/429, refused connections, a silent (half-open) stream, malformed lines, 403. After every fault:
// the Watcher's store equals the server's state, and the delivered events rebuild that state with nothing
// added twice, modified without a change, or deleted twice.
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/config.hpp>
#include <execution_sentinel/kube/watcher.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

#include "catch.hpp"
#include "hostile_server.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <variant>

namespace asio = boost::asio;
namespace kube = execution_sentinel::kube;
namespace es_testing = execution_sentinel::testing;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr const char* ns = "wf-watch";

boost::json::object make_pod(const std::string& name, const std::string& app = "hyperflow") {
    return boost::json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"labels", {{"app", app}}}}},
        {"spec", {{"containers", boost::json::array{{{"name", "test"}, {"image", "busybox"}}}}}},
        {"status", {{"phase", "Pending"}}}};
}

void set_phase(es_testing::FakeCluster& c, const std::string& name, const char* phase) {
    c.modify("pods", ns, name, [&](boost::json::object& o) { o["status"].as_object()["phase"] = phase; });
}

kube::WatchOptions fast_options() {
    kube::WatchOptions o;
    o.page_size = 3;
    o.backoff.initial = 20ms;
    o.backoff.cap = 200ms;
    o.seed = 7;
    return o;
}

// Runs a coroutine on a fresh io_context to completion (rethrowing its exception).
template <class F> void run(F&& body) {
    asio::io_context io;
    auto fut = asio::co_spawn(io, std::forward<F>(body)(io.get_executor()), asio::use_future);
    io.run();
    fut.get();
}

// Consumes events in a coroutine of its own (as an application would), checking each one against what was
// delivered before; fatal errors thrown by next() are recorded and next() is called again.
template <class T> struct Tracker {
    explicit Tracker(kube::Watcher<T>& w) : watcher(w) {}
    kube::Watcher<T>& watcher;
    std::map<std::string, std::string> seen; // name → resourceVersion, rebuilt from the events
    int added = 0, modified = 0, deleted = 0, synced = 0, unknown_final = 0;
    std::vector<std::string> log;
    std::vector<kube::Error> errors;
    asio::cancellation_signal stop_signal;
    bool running = false;

    void apply(const kube::WatchEvent<T>& e) {
        const auto& name = e.object.meta.name;
        switch (e.type) {
        case kube::WatchEventType::added: {
            INFO("added twice: " << name);
            REQUIRE(seen.count(name) == 0);
            seen[name] = e.object.meta.resource_version;
            ++added;
            log.push_back("+" + name);
            break;
        }
        case kube::WatchEventType::modified: {
            INFO("modified without a change: " << name);
            REQUIRE(seen.count(name) == 1);
            REQUIRE(seen[name] != e.object.meta.resource_version);
            seen[name] = e.object.meta.resource_version;
            ++modified;
            log.push_back("~" + name);
            break;
        }
        case kube::WatchEventType::deleted: {
            INFO("deleted twice: " << name);
            REQUIRE(seen.erase(name) == 1);
            ++deleted;
            if (e.final_state_unknown) ++unknown_final;
            log.push_back("-" + name);
            break;
        }
        case kube::WatchEventType::synced:
            ++synced;
            log.push_back("synced");
            break;
        }
    }

    asio::awaitable<void> consume() {
        for (;;) {
            try {
                apply(co_await watcher.next());
            } catch (const kube::Error& e) {
                errors.push_back(e);
                log.push_back(std::string("error:") + e.code().message());
            }
        }
    }
    void start(asio::any_io_executor ex) {
        running = true;
        asio::co_spawn(ex, consume(), asio::bind_cancellation_slot(stop_signal.slot(), [this](std::exception_ptr) {
            running = false;
        }));
    }
    asio::awaitable<void> stop() {
        stop_signal.emit(asio::cancellation_type::terminal);
        asio::steady_timer timer(co_await asio::this_coro::executor);
        while (running) {
            timer.expires_after(5ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
    }

    std::map<std::string, std::string> server_state(es_testing::FakeCluster& c, const std::string& resource,
                                                    const std::function<bool(const boost::json::object&)>& filter = {}) {
        std::map<std::string, std::string> m;
        for (auto& o : c.list(resource, ns)) {
            if (filter && !filter(o)) continue;
            auto& meta = o.at("metadata").as_object();
            m[std::string(meta.at("name").as_string())] = std::string(meta.at("resourceVersion").as_string());
        }
        return m;
    }
    std::map<std::string, std::string> store_state() const {
        std::map<std::string, std::string> m;
        for (auto* p : watcher.store().list()) m[p->meta.name] = p->meta.resource_version;
        return m;
    }

    // Waits until the store and the delivered events both equal the server's state. Fails after `limit`.
    asio::awaitable<void> settle(es_testing::FakeCluster& c, const std::string& resource,
                                 std::chrono::milliseconds limit = 20s,
                                 std::function<bool(const boost::json::object&)> filter = {}) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        asio::steady_timer timer(co_await asio::this_coro::executor);
        while (std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(50ms);
            co_await timer.async_wait(asio::use_awaitable);
            auto truth = server_state(c, resource, filter);
            if (watcher.synced() && store_state() == truth && seen == truth) co_return;
        }
        auto truth = server_state(c, resource, filter);
        std::string l;
        for (auto& s : log) l += s + " ";
        INFO("events: " << l);
        CHECK(store_state() == truth);
        CHECK(seen == truth);
        FAIL("the watcher did not converge to the server's state");
    }
    asio::awaitable<void> sleep(std::chrono::milliseconds d) {
        asio::steady_timer timer(co_await asio::this_coro::executor, d);
        co_await timer.async_wait(asio::use_awaitable);
    }
};

struct Setup {
    es_testing::FakeCluster cluster;
    kube::ClusterConfig config;
    Setup() : cluster(make_options()), config(kube::load_kubeconfig_from_string(cluster.kubeconfig(), "fake-cluster")) {}
    static es_testing::FakeClusterOptions make_options() {
        es_testing::FakeClusterOptions o;
        o.bookmark_interval = 200ms;
        o.default_namespace = ns;
        return o;
    }
};

} // namespace

TEST_CASE("watcher: paged list, Synced, then every change exactly once", "[kube][watcher][integration]") {
    Setup s;
    for (int i = 0; i < 10; ++i) s.cluster.create("pods", ns, make_pod("p" + std::to_string(i)));
    s.cluster.create("pods", "other-namespace", make_pod("elsewhere"));
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        kube::Client client(ex, s.config);
        kube::Watcher<kube::Pod> w(client, ns, fast_options());
        Tracker<kube::Pod> t{w};
        // the first 10 events are the list, then Synced
        for (int i = 0; i < 11; ++i) {
            auto e = co_await w.next();
            t.apply(e);
        }
        CHECK(t.added == 10);
        CHECK(t.synced == 1);
        CHECK(w.synced());
        CHECK(w.store().size() == 10);
        CHECK(w.stats().list_requests == 4); // 3 + 3 + 3 + 1
        auto* p0 = w.store().get(ns, "p0");
        REQUIRE(p0 != nullptr);
        CHECK(p0->meta.labels.matches("app", "hyperflow"));
        CHECK(p0->containers.empty());

        s.cluster.create("pods", ns, make_pod("new"));
        set_phase(s.cluster, "p1", "Running");
        set_phase(s.cluster, "p1", "Succeeded");
        s.cluster.remove("pods", ns, "p2");
        t.start(ex);
        co_await t.settle(s.cluster, "pods");
        CHECK(t.modified == 2); // both changes of p1, none lost
        CHECK(t.deleted == 1);
        CHECK(t.unknown_final == 0);
        CHECK(w.store().get(ns, "p1")->phase == kube::PodPhase::succeeded);
        CHECK(w.stats().relists == 0);
        CHECK(t.errors.empty());
        co_await t.stop();
    });
}

TEST_CASE("watcher: faults, each followed by the store equal to the server", "[kube][watcher][integration]") {
    Setup s;
    for (int i = 0; i < 5; ++i) s.cluster.create("pods", ns, make_pod("p" + std::to_string(i)));
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        kube::Client client(ex, s.config);
        auto opts = fast_options();
        opts.idle_timeout = 700ms; // bookmarks every 200 ms keep a healthy stream alive
        opts.max_event_size = 16 * 1024; // the test pods are far smaller
        kube::Watcher<kube::Pod> w(client, ns, opts);
        Tracker<kube::Pod> t{w};
        t.start(ex);
        co_await t.settle(s.cluster, "pods");
        int counter = 0;
        auto churn = [&] {
            std::string n = "c" + std::to_string(counter++);
            s.cluster.create("pods", ns, make_pod(n));
            set_phase(s.cluster, n, "Running");
        };

        SECTION("watches closed by the server: resume from the last resourceVersion, no relist") {
            for (int round = 0; round < 3; ++round) {
                s.cluster.close_watches();
                churn();
                co_await t.settle(s.cluster, "pods");
            }
            CHECK(w.stats().relists == 0);
            CHECK(w.stats().lists_completed == 1);
            CHECK(w.stats().watch_requests >= 4);
        }
        SECTION("compaction while disconnected: 410, relist, the difference including deletions") {
            s.cluster.refuse_connections(600ms);
            s.cluster.close_watches();
            s.cluster.remove("pods", ns, "p0");
            s.cluster.remove("pods", ns, "p1");
            set_phase(s.cluster, "p2", "Failed");
            churn();
            s.cluster.compact();
            co_await t.settle(s.cluster, "pods");
            CHECK(w.stats().relists >= 1);
            CHECK(t.unknown_final + t.deleted >= 2);
            CHECK(w.store().get(ns, "p0") == nullptr);
            CHECK(w.store().get(ns, "p2")->phase == kube::PodPhase::failed);
            CHECK(t.synced >= 2); // the relist ends with Synced too
        }
        SECTION("a burst of 500s and 429s: backoff, same resourceVersion, no relist") {
            s.cluster.fail_next_requests(4, 500);
            s.cluster.close_watches();
            churn();
            co_await t.settle(s.cluster, "pods");
            s.cluster.fail_next_requests(2, 429, 1);
            s.cluster.close_watches();
            churn();
            co_await t.settle(s.cluster, "pods");
            CHECK(w.stats().relists == 0);
            CHECK(w.stats().backoffs >= 2);
            CHECK(s.cluster.stats().injected_failures == 6);
        }
        SECTION("refused connections") {
            s.cluster.refuse_connections(500ms);
            s.cluster.close_watches();
            churn();
            co_await t.settle(s.cluster, "pods");
            CHECK(w.stats().relists == 0);
        }
        SECTION("a silent, half-open stream is detected by the idle timer and replaced") {
            auto watches_before = w.stats().watch_requests;
            s.cluster.stall_watches(true);
            churn(); // queued on the stalled stream
            co_await t.sleep(1600ms); // the idle timeout (700 ms) fires at least once while stalled
            CHECK(w.stats().watch_requests > watches_before); // the silent watch was replaced
            s.cluster.stall_watches(false);
            churn();
            co_await t.settle(s.cluster, "pods");
        }
        SECTION("malformed watch lines: reconnect from the last good resourceVersion") {
            churn();
            co_await t.settle(s.cluster, "pods");
            while (s.cluster.stats().open_watches == 0) co_await t.sleep(10ms);
            s.cluster.send_raw_watch_line("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"p3\"\n");
            s.cluster.send_raw_watch_line("}garbage]]\n");
            churn();
            co_await t.settle(s.cluster, "pods");
            while (s.cluster.stats().open_watches == 0) co_await t.sleep(10ms);
            s.cluster.send_raw_watch_line("{\"type\":\"WHATEVER\",\"object\":{}}\n");
            churn();
            co_await t.settle(s.cluster, "pods");
            CHECK(w.stats().relists == 0);
            CHECK(w.stats().watch_requests >= 3);
        }
        SECTION("an event over the size cap: the position cannot be trusted, relist") {
            while (s.cluster.stats().open_watches == 0) co_await t.sleep(10ms); // someone must receive it
            s.cluster.send_raw_watch_line("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"p1\"},\"pad\":\"" +
                                          std::string(20000, 'x') + "\"}}\n");
            s.cluster.remove("pods", ns, "p1");
            churn();
            co_await t.settle(s.cluster, "pods");
            CHECK(w.stats().relists >= 1);
            CHECK(w.store().get(ns, "p1") == nullptr);
        }
        SECTION("403 is surfaced from next(); calling next() again recovers") {
            s.cluster.fail_next_requests(1, 403);
            s.cluster.close_watches();
            churn();
            co_await t.settle(s.cluster, "pods");
            REQUIRE(t.errors.size() == 1);
            auto& e = t.errors[0];
            CHECK(e.code() == kube::error::forbidden);
            CHECK(kube::is_fatal(e.code()));
            CHECK(e.diagnostics().http_status == 403);
            CHECK(e.diagnostics().resource.find("pods") != std::string::npos);
            t.errors.clear();
        }
        // after every fault: more changes still arrive exactly once
        churn();
        s.cluster.remove("pods", ns, "p4");
        co_await t.settle(s.cluster, "pods");
        CHECK(t.errors.empty());
        co_await t.stop();
    });
}

TEST_CASE("watcher: label selector, jobs and events", "[kube][watcher][integration]") {
    Setup s;
    s.cluster.create("pods", ns, make_pod("a", "hyperflow"));
    s.cluster.create("pods", ns, make_pod("b", "other"));
    s.cluster.create("jobs", ns, boost::json::parse(R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j1"},
        "spec":{"backoffLimit":2,"template":{"spec":{"containers":[{"name":"c","image":"x"}]}}}})").as_object());
    s.cluster.create("events", ns,
                     boost::json::object{{"apiVersion", "v1"},
                                         {"kind", "Event"},
                                         {"metadata", {{"name", "e1"}}},
                                         {"involvedObject", {{"kind", "Pod"}, {"name", "a"}}},
                                         {"reason", "FailedScheduling"},
                                         {"type", "Warning"}});
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        kube::Client client(ex, s.config);
        auto opts = fast_options();
        opts.label_selector = "app=hyperflow";
        kube::Watcher<kube::Pod> pods(client, ns, opts);
        Tracker<kube::Pod> tp{pods};
        auto selected = [](const boost::json::object& o) {
            auto* l = o.at("metadata").as_object().if_contains("labels");
            return l && l->as_object().if_contains("app") && l->as_object().at("app").as_string() == "hyperflow";
        };
        tp.start(ex);
        co_await tp.settle(s.cluster, "pods", 20s, selected);
        CHECK(pods.store().size() == 1);
        s.cluster.create("pods", ns, make_pod("c", "other"));
        s.cluster.create("pods", ns, make_pod("d", "hyperflow"));
        co_await tp.settle(s.cluster, "pods", 20s, selected);
        CHECK(pods.store().get(ns, "d") != nullptr);
        CHECK(pods.store().get(ns, "c") == nullptr);
        co_await tp.stop();

        kube::Watcher<kube::Job> jobs(client, ns, fast_options());
        Tracker<kube::Job> tj{jobs};
        tj.start(ex);
        co_await tj.settle(s.cluster, "jobs");
        REQUIRE(jobs.store().get(ns, "j1") != nullptr);
        CHECK(jobs.store().get(ns, "j1")->backoff_limit == 2);
        s.cluster.modify("jobs", ns, "j1", [](boost::json::object& o) {
            o["status"] = boost::json::object{{"conditions", boost::json::array{{{"type", "Complete"}, {"status", "True"}}}}};
        });
        co_await tj.settle(s.cluster, "jobs");
        CHECK(jobs.store().get(ns, "j1")->complete());
        co_await tj.stop();

        kube::Watcher<kube::Event> events(client, ns, fast_options());
        Tracker<kube::Event> te{events};
        te.start(ex);
        co_await te.settle(s.cluster, "events");
        REQUIRE(events.store().get(ns, "e1") != nullptr);
        CHECK(events.store().get(ns, "e1")->reason == "FailedScheduling");
        CHECK(events.store().get(ns, "e1")->involved.name == "a");
        co_await te.stop();
    });
}

TEST_CASE("watcher: cancellation and concurrent next()", "[kube][watcher][integration]") {
    Setup s;
    s.cluster.create("pods", ns, make_pod("a"));
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        kube::Client client(ex, s.config);
        kube::Watcher<kube::Pod> w(client, ns, fast_options());
        Tracker<kube::Pod> t{w};
        // next() raced against short timers (the loser is cancelled), while pods keep being created and
        // bookmarks keep flowing: whatever the interleaving, nothing is lost or repeated.
        int cancelled = 0;
        for (int i = 0; i < 60; ++i) {
            asio::steady_timer timer(ex, std::chrono::milliseconds(5 + (i * 7) % 40));
            auto r = co_await (w.next() || timer.async_wait(asio::use_awaitable));
            if (r.index() == 0) t.apply(std::get<0>(r));
            else ++cancelled;
            if (i % 6 == 0) s.cluster.create("pods", ns, make_pod("n" + std::to_string(i)));
            if (i % 9 == 0) set_phase(s.cluster, "a", i % 2 ? "Running" : "Pending");
        }
        CHECK(cancelled > 0);
        t.start(ex);
        co_await t.settle(s.cluster, "pods");
        CHECK(w.stats().relists == 0);

        // A second next() while one is pending is refused with operation_in_progress.
        bool refused = false;
        try {
            co_await w.next();
        } catch (const kube::Error& e) {
            refused = e.code() == kube::error::operation_in_progress;
        }
        CHECK(refused);
        s.cluster.create("pods", ns, make_pod("last"));
        co_await t.settle(s.cluster, "pods");
        co_await t.stop();
        CHECK(t.errors.empty());
    });
}

TEST_CASE("watcher: on_attempt sees garbage answers with their cause; a throwing observer ends next() and the "
          "Watcher stays usable", "[integration][watcher][attempt]") {
    std::atomic<bool> garbage{true}; // read on the server's thread
    execution_sentinel::tests::HostileServer server({.respond = [&garbage](const std::string& target) {
        execution_sentinel::tests::HostileResponse r;
        if (garbage) {
            r.content_type = "text/html";
            r.body = "<html>captive portal</html>";
        } else if (target.find("watch=true") != std::string::npos) {
            r.body = R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"8"}}})"
                     "\n";
        } else {
            r.body = R"({"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]})";
        }
        return r;
    }});
    auto config = kube::load_kubeconfig_from_string(server.kubeconfig(), "hostile");
    std::vector<kube::WatchAttempt> attempts;
    bool throw_on_failure = true;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        kube::Client client(ex, config);
        auto o = fast_options();
        o.on_attempt = [&](const kube::WatchAttempt& a) {
            attempts.push_back(a);
            if (!a.ok && throw_on_failure) throw std::runtime_error("observer stops: " + a.describe());
        };
        kube::Watcher<kube::Pod> w(client, "wf", o);
        std::string stopped;
        try {
            co_await w.next();
        } catch (const std::runtime_error& e) {
            stopped = e.what();
        }
        CHECK(stopped.find("observer stops: list failed: malformed response") != std::string::npos);
        CHECK(stopped.find("invalid JSON") != std::string::npos);
        REQUIRE(attempts.size() == 1);
        CHECK(attempts[0].error == kube::error::malformed_response);
        CHECK(attempts[0].retry_in > 0ms);
        // The observer lets it retry now; the server answers properly: the same Watcher lists and syncs.
        throw_on_failure = false;
        garbage = false;
        auto ev = co_await w.next();
        CHECK(ev.type == kube::WatchEventType::synced);
        CHECK(attempts.back().ok);
        CHECK(attempts.back().kind == kube::WatchAttempt::Kind::list);
    });
}

// ConfigMapCheckpointStore against FakeCluster over HTTPS: a checkpoint written and read back, updates guarded by
// resourceVersion so that of two writers of one run only one goes on, pruning under the ConfigMap limit, a
// ConfigMap that holds no checkpoint rejected, and a Sentinel that resumes a run from its ConfigMap.
#include <execution_sentinel/kube/configmap_checkpoint_store.hpp>
#include <execution_sentinel/sentinel.hpp>
#include <execution_sentinel/testing/fake_cluster.hpp>
#include <execution_sentinel/testing/scenario.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <vector>
#include <string>
#include <thread>

#include "catch.hpp"

namespace asio = boost::asio;
namespace es = execution_sentinel;
namespace est = execution_sentinel::testing;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

struct Cluster {
    est::FakeCluster fake;
    kube::ClusterConfig config;
    explicit Cluster(std::string ns)
        : fake([&] {
              est::FakeClusterOptions o;
              o.default_namespace = ns;
              return o;
          }()),
          config(kube::load_kubeconfig_from_string(fake.kubeconfig(), "fake-cluster-kubeconfig")) {}
};

/// Runs the io_context until `f` completes (the client keeps idle connections: run() alone would not return).
template <class F> auto run_io(asio::io_context& io, F&& f) {
    auto fut = asio::co_spawn(io, std::forward<F>(f), asio::use_future);
    for (int i = 0; i < 3000 && fut.wait_for(0s) != std::future_status::ready; ++i) {
        io.restart();
        io.run_for(10ms);
    }
    return fut.get();
}

/// Runs the io_context until the store has written what it was given.
void drain(asio::io_context& io, const kube::ConfigMapCheckpointStore& store) {
    for (int i = 0; i < 500 && store.busy(); ++i) {
        io.restart();
        io.run_for(10ms);
    }
}

kube::ConfigMapCheckpointStore::Options options(std::string holder, std::vector<std::string>* said = nullptr) {
    kube::ConfigMapCheckpointStore::Options o;
    o.namespace_ = "ckpt";
    o.holder = std::move(holder);
    if (said) o.log = [said](std::string_view line) { said->emplace_back(line); };
    return o;
}

} // namespace

TEST_CASE("ConfigMap checkpoints: written, read back, updated under a resourceVersion guard", "[checkpoint][configmap]") {
    Cluster c("ckpt");
    asio::io_context io;
    kube::ConfigMapCheckpointStore a(io.get_executor(), c.config, options("sentinel-a"));
    const std::string key = "ckpt/hyperflow-engine-0";

    CHECK_FALSE(run_io(io, a.async_load(key)).has_value()); // none yet

    a.save(key, boost::json::object{{"version", 1}, {"sequence", 3}});
    drain(io, a);
    CHECK(a.stats().writes == 1);
    auto back = run_io(io, a.async_load(key));
    REQUIRE(back);
    CHECK(back->at("sequence").as_int64() == 3);

    // the object on the cluster: name from the key, labelled, the holder annotated
    auto cm = c.fake.get("configmaps", "ckpt", kube::ConfigMapCheckpointStore::configmap_name(key));
    REQUIRE(cm);
    CHECK(cm->at("metadata").at("annotations").at("execution-sentinel/holder") == "sentinel-a");
    CHECK(cm->at("data").at("key").as_string() == key);

    // newer saves replace older ones; the last one wins
    for (int i = 4; i <= 8; ++i) a.save(key, boost::json::object{{"version", 1}, {"sequence", i}});
    drain(io, a);
    CHECK(run_io(io, a.async_load(key))->at("sequence").as_int64() == 8);
    CHECK_FALSE(a.stats().lost);

    // a second writer of the same run: it read the ConfigMap, then `a` wrote again — its update conflicts, it
    // sees another holder and stops; `a` goes on
    std::vector<std::string> said;
    kube::ConfigMapCheckpointStore b(io.get_executor(), c.config, options("sentinel-b", &said));
    REQUIRE(run_io(io, b.async_load(key)));
    a.save(key, boost::json::object{{"version", 1}, {"sequence", 9}});
    drain(io, a);
    b.save(key, boost::json::object{{"version", 1}, {"sequence", 100}});
    drain(io, b);
    CHECK(b.stats().conflicts >= 1);
    CHECK(b.stats().lost);
    REQUIRE(said.size() == 1);
    CHECK(said[0].find("sentinel-a") != std::string::npos);
    b.save(key, boost::json::object{{"version", 1}, {"sequence", 101}}); // ignored from now on
    drain(io, b);
    CHECK(run_io(io, a.async_load(key))->at("sequence").as_int64() == 9);
    a.save(key, boost::json::object{{"version", 1}, {"sequence", 10}});
    drain(io, a);
    CHECK(run_io(io, a.async_load(key))->at("sequence").as_int64() == 10);
    CHECK_FALSE(a.stats().lost);

    // deleted under it: created again
    c.fake.remove("configmaps", "ckpt", kube::ConfigMapCheckpointStore::configmap_name(key));
    a.save(key, boost::json::object{{"version", 1}, {"sequence", 11}});
    drain(io, a);
    CHECK(run_io(io, a.async_load(key))->at("sequence").as_int64() == 11);
}

TEST_CASE("ConfigMap checkpoints: pruned under the limit, and what is not a checkpoint is refused", "[checkpoint][configmap]") {
    Cluster c("ckpt");
    asio::io_context io;
    auto o = options("sentinel-a");
    o.max_bytes = 4096;
    kube::ConfigMapCheckpointStore a(io.get_executor(), c.config, o);
    boost::json::array ledger;
    for (int i = 0; i < 400; ++i) ledger.push_back(boost::json::string("TASK_STARTED|inventory/" + std::to_string(i) + "|started|x"));
    ledger.push_back("ANOMALY_OOMKILL|inventory/1|oom");
    a.save("ckpt/e", boost::json::object{{"version", 1}, {"ledger", ledger}});
    drain(io, a);
    CHECK(a.stats().pruned == 1);
    auto back = run_io(io, a.async_load("ckpt/e"));
    REQUIRE(back);
    REQUIRE(back->at("ledger").as_array().size() == 1); // the anomaly stays
    CHECK(back->at("ledger").as_array()[0] == "ANOMALY_OOMKILL|inventory/1|oom");

    // a ConfigMap of that name edited by hand into something else
    auto name = kube::ConfigMapCheckpointStore::configmap_name("ckpt/e");
    c.fake.modify("configmaps", "ckpt", name, [](boost::json::object& cm) { cm["data"] = {{"checkpoint.json", "{oops"}}; });
    CHECK_THROWS_AS(run_io(io, a.async_load("ckpt/e")), es::CheckpointError);
}

TEST_CASE("ConfigMap checkpoints: a Sentinel resumes a run from its ConfigMap without repeating a report",
          "[checkpoint][configmap][sentinel]") {
    est::Scenario s;
    s.name = "ckpt";
    s.namespace_name = "ckpt";
    s.engine_at = 0;
    s.metrics_api = est::MetricsApi::absent;
    for (int i = 1; i <= 4; ++i) {
        est::TaskDecl t;
        t.type = "individuals";
        t.proc_id = i;
        t.start = 1;
        t.pending = 1;
        t.duration = i == 2 ? 2 : 30;
        t.outcome = i == 2 ? est::TaskOutcome::oom : est::TaskOutcome::succeed;
        t.failed_attempts = 1;
        s.add_task(t);
    }
    Cluster c("ckpt");
    est::ScenarioRunner runner(c.fake, s);
    const auto context = es::context_from_json_text(s.context_json());
    es::SentinelSettings settings;
    settings.poll_interval = 200ms;
    settings.timeout = 1h;
    settings.metrics_interval = 0ms;

    auto watch_until = [&](double until, std::vector<es::Report>& out, std::shared_ptr<kube::ConfigMapCheckpointStore>& store,
                           asio::io_context& io) {
        es::SentinelOptions o;
        o.watch_events = false;
        o.checkpoints = store;
        o.checkpoint_interval = 50ms;
        o.stream_settle = 200ms;
        es::DefaultSentinel sentinel(io.get_executor(), context, settings, c.config, o);
        auto sub = sentinel.subscribe({.capacity = 10000});
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (;;) {
                    auto [ec, r] = co_await sub.async_receive(asio::as_tuple(asio::use_awaitable));
                    if (ec) co_return;
                    out.push_back(std::move(r));
                }
            },
            asio::detached);
        asio::cancellation_signal stop;
        asio::co_spawn(io, sentinel.watch(), asio::bind_cancellation_slot(stop.slot(), asio::detached));
        io.restart();
        io.run_for(1500ms);
        runner.run_until(until);
        io.run_for(1500ms);
        stop.emit(asio::cancellation_type::terminal);
        io.run_for(1500ms);
        drain(io, *store);
        return sentinel.resumed();
    };

    std::vector<es::Report> first, second;
    asio::io_context io;
    auto store = std::make_shared<kube::ConfigMapCheckpointStore>(io.get_executor(), c.config, options("sentinel-a"));
    CHECK_FALSE(watch_until(2, first, store, io)); // all running
    CHECK(watch_until(6, second, store, io));       // the OOM kill happened in between
    std::set<std::string> keys;
    int ooms = 0;
    for (auto& r : first) CHECK(keys.insert(r.key).second);
    for (auto& r : second) {
        CHECK(keys.insert(r.key).second); // nothing made twice
        if (r.type == es::ReportType::ANOMALY_OOMKILL && r.task_name.find("2") != std::string::npos) ++ooms;
    }
    CHECK(ooms == 1);
}

// Watch decoding throughput and store memory (docs/performance.md, "Watch decoding and store memory").
//
//   bare_parse        boost::json::parse of every event line: the floor any JSON client pays
//   framer            WatchFramer over 16 KiB chunks: documents out of a byte stream (one stream_parser)
//   framer_decode     + ResourceTraits<Pod>::parse: the compact Pod view of every event
//   watch_pipeline    + WatchMachine: store update, dedup, delivered events (the tree-based reference path)
//   sax_floor         boost::json::basic_parser with a handler that does nothing: the tokenizer alone, the floor
//                     of any decoder built on it
//   sax_decode        WatchDecoder<Pod> over 16 KiB chunks: framing and the Pod view straight from the bytes
//                     (Boost.JSON's SAX parser, no tree)
//   sax_pipeline      + WatchMachine: what Watcher::next() costs besides the socket
//   store_memory      heap held by Store<Pod> per tracked pod at 10,000 and 100,000 pods, next to a cache of
//                     the same pods as boost::json::value documents; at 100,000 also with a Job of its own for
//                     every pod (distinct_jobs:1, the least sharing of interned label values)
//
// Throughput is reported as items_per_second (events/s) and bytes_per_second; the ratio of framer_decode and
// watch_pipeline to bare_parse is the figure of merit.
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>
#include <execution_sentinel/kube/watch_machine.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <benchmark/benchmark.h>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <malloc.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kube = execution_sentinel::kube;
namespace hf = execution_sentinel::testing;
using namespace std::chrono;

namespace {

// What kube-controller-manager and the kubelet record in metadata.managedFields of a task pod (the apiserver
// sends it in every watch event unless the client strips it server-side, which watches cannot).
boost::json::array managed_fields(const std::string& when) {
    return boost::json::parse(R"([
 {"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":")" + when + R"(",
  "fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:finalizers":{".":{},"v:\"batch.kubernetes.io/job-tracking\"":{}},
  "f:generateName":{},"f:labels":{".":{},"f:app":{},"f:batch.kubernetes.io/controller-uid":{},
  "f:batch.kubernetes.io/job-name":{},"f:controller-uid":{},"f:job-name":{}},"f:ownerReferences":{".":{},
  "k:{\"uid\":\"5861e0a8-b31e-46cd-8f75-b7a4adc7c518\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"test\"}":{
  ".":{},"f:command":{},"f:env":{".":{},"k:{\"name\":\"HF_VAR_WORK_DIR\"}":{".":{},"f:name":{},"f:value":{}},
  "k:{\"name\":\"HF_LOG_NODE_NAME\"}":{".":{},"f:name":{},"f:valueFrom":{".":{},"f:fieldRef":{}}}},
  "f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{".":{},"f:requests":{".":{},"f:cpu":{},
  "f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},
  "k:{\"mountPath\":\"/work_dir\"}":{".":{},"f:mountPath":{},"f:name":{}}},"f:workingDir":{}}},"f:dnsPolicy":{},
  "f:enableServiceLinks":{},"f:nodeSelector":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},
  "f:terminationGracePeriodSeconds":{},"f:volumes":{".":{},"k:{\"name\":\"my-pvc-nfs\"}":{".":{},
  "f:name":{},"f:persistentVolumeClaim":{".":{},"f:claimName":{}}}}}}},
 {"manager":"kubelet","operation":"Update","apiVersion":"v1","time":")" + when + R"(","fieldsType":"FieldsV1",
  "subresource":"status","fieldsV1":{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},
  "f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{
  ".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{
  ".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},
  "f:hostIP":{},"f:hostIPs":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.244.0.17\"}":{
  ".":{},"f:ip":{}}},"f:startTime":{}}}}])")
        .as_array();
}

// `count` distinct task pods in every lifecycle state, as the apiserver serialises them. The Job names and uids
// come from `seed`: the same seed gives the same Jobs.
std::vector<boost::json::object> make_pods(std::size_t count, bool with_managed_fields, std::uint64_t seed = 42) {
    hf::NameSource names(seed);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    std::vector<boost::json::object> pods;
    pods.reserve(count);
    std::uint64_t rv = 1000;
    for (std::size_t i = 0; i < count; ++i) {
        hf::TaskJobOptions jo;
        jo.namespace_name = "wf-1";
        jo.name = hf::job_name(names.job_fragment(), i % 3 == 0 ? "individuals" : "mutation_overlap",
                               static_cast<int>(i % 40), 1);
        jo.uid = names.uid();
        jo.created = t0 + seconds{i};
        auto job = hf::task_job(jo);
        hf::TaskPodOptions po;
        po.name = jo.name + "-" + names.pod_suffix();
        po.uid = names.uid();
        po.created = jo.created;
        auto pod = hf::task_pod(job, po);
        switch (i % 4) {
        case 0: break; // pending
        case 1: hf::pod_set_running(pod, jo.created + seconds{3}); break;
        case 2: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 0); break;
        case 3: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 137, "OOMKilled"); break;
        }
        auto& meta = pod["metadata"].as_object();
        meta["resourceVersion"] = std::to_string(++rv);
        if (with_managed_fields) meta["managedFields"] = managed_fields(hf::rfc3339(jo.created));
        pods.push_back(std::move(pod));
    }
    return pods;
}

struct Stream {
    std::string bytes;
    std::vector<std::string_view> lines;
};

Stream make_stream(bool with_managed_fields) {
    auto pods = make_pods(2000, with_managed_fields);
    Stream s;
    std::vector<std::size_t> ends;
    for (std::size_t i = 0; i < pods.size(); ++i) {
        s.bytes += boost::json::serialize(
            boost::json::object{{"type", i % 2 ? "MODIFIED" : "ADDED"}, {"object", pods[i]}});
        s.bytes += '\n';
        ends.push_back(s.bytes.size());
    }
    std::size_t begin = 0;
    for (auto e : ends) {
        s.lines.emplace_back(s.bytes.data() + begin, e - begin);
        begin = e;
    }
    return s;
}

const Stream& stream(bool with_managed_fields) {
    static const Stream plain = make_stream(false);
    static const Stream managed = make_stream(true);
    return with_managed_fields ? managed : plain;
}

void report(benchmark::State& state, const Stream& s) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * s.lines.size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * s.bytes.size()));
    state.counters["bytes_per_event"] = static_cast<double>(s.bytes.size()) / static_cast<double>(s.lines.size());
}

constexpr std::size_t chunk = 16 * 1024;

void bare_parse(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    for (auto _ : state) {
        for (auto line : s.lines) {
            auto v = boost::json::parse(line);
            benchmark::DoNotOptimize(v);
        }
    }
    report(state, s);
}

void framer(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    kube::WatchFramer f;
    std::vector<kube::RawWatchEvent> out;
    for (auto _ : state) {
        f.reset();
        for (std::size_t pos = 0; pos < s.bytes.size(); pos += chunk) {
            out.clear();
            if (f.feed(std::string_view(s.bytes).substr(pos, chunk), out)) state.SkipWithError("framer error");
            benchmark::DoNotOptimize(out.data());
        }
    }
    report(state, s);
}

void framer_decode(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    kube::WatchFramer f;
    std::vector<kube::RawWatchEvent> out;
    for (auto _ : state) {
        f.reset();
        for (std::size_t pos = 0; pos < s.bytes.size(); pos += chunk) {
            out.clear();
            if (f.feed(std::string_view(s.bytes).substr(pos, chunk), out)) state.SkipWithError("framer error");
            for (auto& e : out) {
                auto pod = kube::ResourceTraits<kube::Pod>::parse(e.object);
                benchmark::DoNotOptimize(pod);
            }
        }
    }
    report(state, s);
}

void watch_pipeline(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    kube::WatchFramer f;
    std::vector<kube::RawWatchEvent> out;
    auto now = kube::WatchMachine<kube::Pod>::clock::now();
    for (auto _ : state) {
        state.PauseTiming();
        auto m = std::make_unique<kube::WatchMachine<kube::Pod>>();
        m->resume(now);
        kube::ListPage<kube::Pod> empty;
        empty.resource_version = "1";
        m->on_list_page(std::move(empty), now);
        m->on_watch_opened(now);
        while (m->has_events()) m->pop_event();
        f.reset();
        state.ResumeTiming();
        for (std::size_t pos = 0; pos < s.bytes.size(); pos += chunk) {
            out.clear();
            if (f.feed(std::string_view(s.bytes).substr(pos, chunk), out)) state.SkipWithError("framer error");
            for (auto& e : out) {
                m->on_watch_event(std::move(e), now);
                while (m->has_events()) benchmark::DoNotOptimize(m->pop_event());
            }
        }
        state.PauseTiming();
        m.reset();
        state.ResumeTiming();
    }
    report(state, s);
}

struct NullHandler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    using ec = boost::system::error_code;
    using sv = boost::json::string_view;
    bool on_document_begin(ec&) { return true; }
    bool on_document_end(ec&) { return true; }
    bool on_object_begin(ec&) { return true; }
    bool on_object_end(std::size_t, ec&) { return true; }
    bool on_array_begin(ec&) { return true; }
    bool on_array_end(std::size_t, ec&) { return true; }
    bool on_key_part(sv, std::size_t, ec&) { return true; }
    bool on_key(sv, std::size_t, ec&) { return true; }
    bool on_string_part(sv, std::size_t, ec&) { return true; }
    bool on_string(sv, std::size_t, ec&) { return true; }
    bool on_number_part(sv, ec&) { return true; }
    bool on_int64(std::int64_t, sv, ec&) { return true; }
    bool on_uint64(std::uint64_t, sv, ec&) { return true; }
    bool on_double(double, sv, ec&) { return true; }
    bool on_bool(bool, ec&) { return true; }
    bool on_null(ec&) { return true; }
    bool on_comment_part(sv, ec&) { return true; }
    bool on_comment(sv, ec&) { return true; }
};

void sax_floor(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    boost::json::parse_options opt;
    opt.max_depth = 128;
    boost::json::basic_parser<NullHandler> p(opt);
    for (auto _ : state) {
        for (auto line : s.lines) {
            p.reset();
            boost::system::error_code ec;
            p.write_some(false, line.data(), line.size(), ec);
            if (ec) state.SkipWithError("parse error");
        }
    }
    report(state, s);
}

void sax_decode(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    kube::WatchDecoder<kube::Pod> d;
    std::vector<kube::DecodedWatchEvent<kube::Pod>> out;
    for (auto _ : state) {
        d.reset();
        for (std::size_t pos = 0; pos < s.bytes.size(); pos += chunk) {
            out.clear();
            if (d.feed(std::string_view(s.bytes).substr(pos, chunk), out)) state.SkipWithError("decoder error");
            benchmark::DoNotOptimize(out.data());
        }
    }
    report(state, s);
}

void sax_pipeline(benchmark::State& state) {
    const auto& s = stream(state.range(0) != 0);
    kube::WatchDecoder<kube::Pod> d;
    std::vector<kube::DecodedWatchEvent<kube::Pod>> out;
    auto now = kube::WatchMachine<kube::Pod>::clock::now();
    for (auto _ : state) {
        state.PauseTiming();
        auto m = std::make_unique<kube::WatchMachine<kube::Pod>>();
        m->resume(now);
        kube::ListPage<kube::Pod> empty;
        empty.resource_version = "1";
        m->on_list_page(std::move(empty), now);
        m->on_watch_opened(now);
        while (m->has_events()) m->pop_event();
        d.reset();
        state.ResumeTiming();
        for (std::size_t pos = 0; pos < s.bytes.size(); pos += chunk) {
            out.clear();
            if (d.feed(std::string_view(s.bytes).substr(pos, chunk), out)) state.SkipWithError("decoder error");
            for (auto& e : out) {
                m->on_watch_event(std::move(e), now);
                while (m->has_events()) benchmark::DoNotOptimize(m->pop_event());
            }
        }
        state.PauseTiming();
        m.reset();
        state.ResumeTiming();
    }
    report(state, s);
}

std::size_t heap_in_use() {
    malloc_trim(0);
    return mallinfo2().uordblks;
}

void store_memory(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    // 0: every batch of 5,000 pods repeats the same 5,000 Jobs (20 pods per Job name and uid at 100,000 pods);
    // 1: every pod has a Job of its own (no label value shared between pods but "hyperflow": the least sharing)
    const bool distinct_jobs = state.range(1) != 0;
    double per_pod_store = 0, per_pod_json = 0, estimate = 0, json_bytes = 0;
    for (auto _ : state) {
        // generate in batches so that the source documents do not dominate the measurement
        std::size_t before = heap_in_use();
        kube::Store<kube::Pod> store;
        std::vector<kube::WatchEvent<kube::Pod>> sink;
        std::size_t serialized = 0;
        {
            hf::NameSource names(1);
            const std::size_t batch = 5000;
            std::size_t held = 0;
            for (std::size_t done = 0; done < n; done += batch) {
                auto pods = make_pods(std::min(batch, n - done), false, distinct_jobs ? 42 + done : 42);
                for (auto& p : pods) {
                    // distinct names across batches
                    auto& meta = p["metadata"].as_object();
                    meta["name"] = std::string(meta["name"].as_string()) + "-" + std::to_string(done);
                    if (done == 0) serialized += boost::json::serialize(p).size();
                    store.upsert(kube::parse_pod(p), sink);
                    sink.clear();
                }
                held = pods.size();
            }
            (void)held;
        }
        std::size_t after_store = heap_in_use();
        per_pod_store = static_cast<double>(after_store - before) / static_cast<double>(n);
        // the store's own estimate plus the interned texts its pods hold (shared, so counted once)
        estimate = static_cast<double>(store.memory_estimate() + kube::interned_string_memory()) / static_cast<double>(n);
        json_bytes = static_cast<double>(serialized) / static_cast<double>(std::min<std::size_t>(n, 5000));

        // the same pods kept as whole JSON documents (measured on at most 10,000: it is linear)
        std::size_t jn = std::min<std::size_t>(n, 10000);
        std::size_t before_json = heap_in_use();
        {
            std::unordered_map<std::string, boost::json::value> cache;
            auto pods = make_pods(jn, false);
            for (auto& p : pods) {
                std::string key = std::string(p["metadata"].as_object()["name"].as_string());
                cache.emplace(std::move(key), boost::json::parse(boost::json::serialize(p)));
            }
            pods.clear();
            pods.shrink_to_fit();
            std::size_t after_json = heap_in_use();
            per_pod_json = static_cast<double>(after_json - before_json) / static_cast<double>(jn);
        }
        benchmark::DoNotOptimize(store.size());
    }
    state.counters["store_bytes_per_pod"] = per_pod_store;
    state.counters["store_estimate_per_pod"] = estimate;
    state.counters["json_cache_bytes_per_pod"] = per_pod_json;
    state.counters["pod_json_bytes"] = json_bytes;
    state.counters["ratio_json_to_store"] = per_pod_json / per_pod_store;
}

} // namespace

BENCHMARK(bare_parse)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(framer)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(framer_decode)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(watch_pipeline)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(sax_floor)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(sax_decode)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(sax_pipeline)->Arg(0)->Arg(1)->ArgName("managed_fields")->Unit(benchmark::kMillisecond);
BENCHMARK(store_memory)
    ->Args({10000, 0})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->ArgNames({"pods", "distinct_jobs"})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();

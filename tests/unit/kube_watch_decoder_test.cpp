// WatchDecoder (SAX, no tree) against the reference: WatchFramer + ResourceTraits<T>::parse / parse_status.
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>
#include <execution_sentinel/kube/watch_framer.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/json.hpp>

#include "catch.hpp"

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
namespace hf = execution_sentinel::testing;
using namespace std::chrono;

namespace {

struct Outcome {
    std::error_code ec;
    std::string message;
    std::uint64_t offset = 0;
    std::size_t events = 0;
};

/// Feeds `bytes` in two pieces (split at `split`) to both decoders of T and requires the same outcome.
template <class T> Outcome require_same(std::string_view bytes, std::size_t split, std::size_t max_event = 1 << 20) {
    split = std::min(split, bytes.size());
    kube::WatchFramer framer(max_event);
    std::vector<kube::RawWatchEvent> raw;
    auto e1 = framer.feed(bytes.substr(0, split), raw);
    if (!e1) e1 = framer.feed(bytes.substr(split), raw);
    if (!e1) e1 = framer.finish();

    kube::WatchDecoder<T> decoder(max_event);
    std::vector<kube::DecodedWatchEvent<T>> decoded;
    auto e2 = decoder.feed(bytes.substr(0, split), decoded);
    if (!e2) e2 = decoder.feed(bytes.substr(split), decoded);
    if (!e2) e2 = decoder.finish();

    INFO(std::string(bytes.substr(0, 2000)));
    REQUIRE(e1 == e2);
    REQUIRE(framer.error_message() == decoder.error_message());
    REQUIRE(framer.error_offset() == decoder.error_offset());
    REQUIRE(framer.bytes_consumed() == decoder.bytes_consumed());
    REQUIRE(raw.size() == decoded.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        REQUIRE(raw[i].type == decoded[i].type);
        T reference = kube::ResourceTraits<T>::parse(raw[i].object);
        REQUIRE(reference == decoded[i].object);
        kube::ApiStatus status = kube::parse_status(boost::json::value(raw[i].object));
        REQUIRE(status == decoded[i].status);
    }
    return Outcome{e1, framer.error_message(), framer.error_offset(), raw.size()};
}

template <class T> void require_same_every_split(std::string_view bytes) {
    for (std::size_t split = 0; split <= bytes.size(); ++split) require_same<T>(bytes, split);
}

void require_same_all(std::string_view bytes, std::size_t split) {
    require_same<kube::Pod>(bytes, split);
    require_same<kube::Job>(bytes, split);
    require_same<kube::Event>(bytes, split);
}

std::string envelope(std::string_view type, const boost::json::object& o) {
    return boost::json::serialize(boost::json::object{{"type", type}, {"object", o}}) + "\n";
}

// A realistic stream: task pods in every state (with resources and managedFields-like noise), their Jobs and
// Events, as the apiserver serialises them.
std::string realistic_stream(std::size_t n) {
    hf::NameSource names(11);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        hf::TaskJobOptions jo;
        jo.namespace_name = "wf-1";
        jo.name = hf::job_name(names.job_fragment(), i % 3 ? "mProject" : "mDiff", static_cast<int>(i), 1);
        jo.uid = names.uid();
        jo.created = t0 + seconds{i};
        auto job = hf::task_job(jo);
        hf::TaskPodOptions po;
        po.name = jo.name + "-" + names.pod_suffix();
        po.uid = names.uid();
        po.created = jo.created;
        auto pod = hf::task_pod(job, po);
        switch (i % 6) {
        case 0: break;
        case 1: hf::pod_set_running(pod, jo.created + seconds{3}); break;
        case 2: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 0); break;
        case 3: hf::pod_set_terminated(pod, jo.created + seconds{3}, jo.created + seconds{60}, 137, "OOMKilled"); break;
        case 4: hf::pod_set_waiting(pod, jo.created + seconds{2}, "CrashLoopBackOff", "back-off 10s"); break;
        case 5: hf::pod_set_unschedulable(pod, jo.created + seconds{1}, "0/3 nodes are available"); break;
        }
        pod["metadata"].as_object()["resourceVersion"] = std::to_string(1000 + i);
        pod["metadata"].as_object()["managedFields"] = boost::json::parse(
            R"([{"manager":"kubelet","fieldsV1":{"f:status":{"k:{\"type\":\"Ready\"}":{".":{}}}},"time":"x"}])");
        if (i % 5 == 0) hf::job_mark_complete(job, jo.created + seconds{61});
        if (i % 5 == 1) hf::job_mark_failed(job, jo.created + seconds{61});
        auto ev = hf::event_about(pod, "BackOff", "Back-off restarting failed container", i % 2 ? "Warning" : "Normal",
                                  jo.created + seconds{5}, names);
        s += envelope(i % 2 ? "MODIFIED" : "ADDED", pod);
        s += envelope("ADDED", job);
        s += envelope(i % 7 == 0 ? "DELETED" : "ADDED", ev);
    }
    s += R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12345","annotations":{"k8s.io/initial-events-end":"true"}}}})"
         "\n";
    s += R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 [5]","reason":"Expired","code":410,"details":{"retryAfterSeconds":3,"causes":[{"type":"ResourceVersionTooLarge","message":"m"},{"reason":"r","field":"f"}]}}})"
         "\n";
    return s;
}

// Random documents built around the keys the views read, with repeated keys, wrong types, odd numbers,
// escapes and deep nesting.
struct Generator {
    std::mt19937_64 rng;
    explicit Generator(std::uint64_t seed) : rng(seed) {}

    int pick(int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); }

    /// The keys the views read under `key` (a few foreign ones mixed in by object()); empty for leaves.
    static const std::vector<std::string>& children(const std::string& key) {
        static const std::map<std::string, std::vector<std::string>> schema = {
            {"object", {"metadata", "spec", "status", "reason", "message", "code", "details", "involvedObject",
                        "regarding", "note", "type", "count", "series", "firstTimestamp", "lastTimestamp",
                        "eventTime"}},
            {"metadata", {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                          "labels", "ownerReferences", "managedFields"}},
            {"labels", {"app", "job-name", "batch.kubernetes.io/job-name", "controller-uid"}},
            {"ownerReferences", {"kind", "name", "uid", "controller"}},
            {"involvedObject", {"kind", "name", "uid"}},
            {"regarding", {"kind", "name", "uid"}},
            {"series", {"count"}},
            {"spec", {"nodeName", "containers", "backoffLimit"}},
            {"containers", {"name", "resources"}},
            {"resources", {"limits", "requests"}},
            {"limits", {"memory", "cpu"}},
            {"requests", {"memory", "cpu"}},
            {"status", {"phase", "reason", "message", "startTime", "conditions", "initContainerStatuses",
                        "containerStatuses", "active", "succeeded", "failed", "ready", "terminating",
                        "completionTime"}},
            {"conditions", {"type", "status", "reason", "message", "lastTransitionTime"}},
            {"containerStatuses", {"name", "ready", "restartCount", "state", "lastState"}},
            {"initContainerStatuses", {"name", "ready", "restartCount", "state", "lastState"}},
            {"state", {"terminated", "waiting", "running"}},
            {"lastState", {"terminated", "waiting", "running"}},
            {"terminated", {"reason", "message", "exitCode", "signal", "startedAt", "finishedAt"}},
            {"waiting", {"reason", "message"}},
            {"running", {"startedAt"}},
            {"details", {"retryAfterSeconds", "causes"}},
            {"causes", {"reason", "type", "message", "field"}},
            {"managedFields", {"manager", "fieldsV1"}},
        };
        static const std::vector<std::string> none;
        auto it = schema.find(key);
        return it == schema.end() ? none : it->second;
    }

    std::string scalar() {
        static const std::vector<std::string> strings = {
            R"("")", R"("x")", R"("True")", R"("False")", R"("Running")", R"("Pending")", R"("Succeeded")",
            R"("Failed")", R"("Ready")", R"("PodScheduled")", R"("Complete")", R"("FailureTarget")",
            R"("2026-02-23T10:00:00Z")", R"("2026-02-23T10:00:01.5+02:00")", R"("not a time")", R"("512Mi")",
            R"("250m")", R"("1.5Gi")", R"("2")", R"("1e3")", R"("-1")", R"("a\"b\\c\u00e9\n")",
            R"("Warning")", R"("ADDED")", R"("ERROR")", R"("BOOKMARK")", R"("OOMKilled")"};
        switch (pick(9)) {
        case 0: return "null";
        case 1: return pick(2) ? "true" : "false";
        case 2: return std::to_string(static_cast<int>(rng() % 2000) - 1000);
        case 3: return pick(2) ? "18446744073709551615" : "-9223372036854775808";
        case 4: return pick(2) ? "1.5" : (pick(2) ? "1e300" : "3000000000");
        default: return strings[static_cast<std::size_t>(pick(static_cast<int>(strings.size())))];
        }
    }

    std::string value(const std::string& key, int depth) {
        int r = pick(10);
        if (depth > 9 || (children(key).empty() ? r < 8 : r < 2)) return scalar();
        if (r < 5) { // an array of values of this key's kind
            std::string s = "[";
            int n = pick(4);
            for (int i = 0; i < n; ++i) {
                if (i) s += ',';
                s += pick(5) ? object(key, depth + 1) : scalar();
            }
            return s + "]";
        }
        return object(key, depth + 1);
    }

    std::string object(const std::string& key, int depth) {
        const auto& keys = children(key);
        std::string s = "{";
        int n = pick(9);
        for (int i = 0; i < n; ++i) {
            if (i) s += ',';
            std::string k = keys.empty() || pick(12) == 0 ? children("object")[static_cast<std::size_t>(pick(16))]
                                                           : keys[static_cast<std::size_t>(pick(static_cast<int>(keys.size())))];
            if (pick(20) == 0) k = "un\\u006bnown"; // an escaped key
            s += boost::json::serialize(boost::json::string(k)) + ":" + value(k, depth);
        }
        return s + "}";
    }

    std::string event() {
        static const std::vector<std::string> types = {R"("ADDED")", R"("MODIFIED")", R"("DELETED")",
                                                       R"("BOOKMARK")", R"("ERROR")", R"("NOPE")", "1", "null"};
        std::vector<std::string> parts;
        int n = 1 + pick(3);
        for (int i = 0; i < n; ++i) {
            if (pick(2)) parts.push_back(R"("type":)" + types[static_cast<std::size_t>(pick(static_cast<int>(types.size())))]);
            if (pick(4)) parts.push_back(R"("object":)" + (pick(10) ? object("object", 1) : scalar()));
            if (pick(4) == 0) parts.push_back(R"("other":)" + value("object", 3));
        }
        std::string s = "{";
        for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? "," : "") + parts[i];
        s += "}";
        if (pick(30) == 0) s = "[" + s + "]";
        return s;
    }
};

} // namespace

TEST_CASE("WatchDecoder gives the reference views for a realistic stream of pods, jobs and events",
          "[kube][watch_decoder]") {
    auto stream = realistic_stream(60);
    for (std::size_t split : {std::size_t{0}, std::size_t{1}, stream.size() / 3, stream.size() / 2 + 7, stream.size()}) {
        auto o = require_same<kube::Pod>(stream, split);
        CHECK_FALSE(o.ec);
        CHECK(o.events == 182);
        require_same<kube::Job>(stream, split);
        require_same<kube::Event>(stream, split);
    }
    // Fed a few bytes at a time: strings and keys then arrive in parts.
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
        kube::WatchDecoder<kube::Pod> decoder;
        std::vector<kube::DecodedWatchEvent<kube::Pod>> decoded;
        for (std::size_t pos = 0; pos < stream.size(); pos += step)
            REQUIRE_FALSE(decoder.feed(std::string_view(stream).substr(pos, step), decoded));
        REQUIRE(decoded.size() == 182);
        kube::WatchFramer framer;
        std::vector<kube::RawWatchEvent> raw;
        REQUIRE_FALSE(framer.feed(stream, raw));
        for (std::size_t i = 0; i < raw.size(); ++i)
            REQUIRE(kube::parse_pod(raw[i].object) == decoded[i].object);
    }
}

TEST_CASE("WatchDecoder keeps the fields of the views and nothing else", "[kube][watch_decoder]") {
    std::string line = R"({"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"p","namespace":"ns","uid":"u",
"resourceVersion":"7","creationTimestamp":"2026-02-23T10:00:00Z","labels":{"b":"2","a":"1","a":"3","c":5},
"ownerReferences":[{"kind":"ReplicaSet","name":"rs","uid":"1"},{"kind":"Job","name":"j","uid":"2","controller":true}],
"managedFields":[{"fieldsV1":{"f:metadata":{"f:name":{}}}}]},
"spec":{"nodeName":"n1","containers":[{"name":"main","resources":{"limits":{"memory":"1Gi","cpu":"2"},"requests":{"cpu":"250m"}}},{"name":"side"}]},
"status":{"phase":"Running","startTime":"2026-02-23T10:00:01Z","conditions":[{"type":"Ready","status":"True"},
{"type":"DisruptionTarget","status":"True","reason":"EvictionByEvictionAPI"}],
"containerStatuses":[{"name":"main","ready":true,"restartCount":2,"state":{"running":{"startedAt":"2026-02-23T10:00:02Z"},
"terminated":{"exitCode":137,"reason":"OOMKilled"}},"lastState":{"waiting":{"reason":"CrashLoopBackOff"}}}]}}})"
                       "\n";
    require_same_every_split<kube::Pod>(line);
    kube::WatchDecoder<kube::Pod> decoder;
    std::vector<kube::DecodedWatchEvent<kube::Pod>> out;
    REQUIRE_FALSE(decoder.feed(line, out));
    REQUIRE(out.size() == 1);
    const auto& pod = out[0].object;
    CHECK(out[0].type == kube::RawWatchEventType::modified);
    CHECK(pod.meta.labels.items == std::vector<std::pair<kube::InternedString, kube::InternedString>>{{"a", "3"}, {"b", "2"}});
    REQUIRE(pod.meta.owner);
    CHECK(pod.meta.owner->name == "j");
    REQUIRE(pod.resources.size() == 1);
    CHECK(pod.resources[0].memory_limit_bytes == 1024LL * 1024 * 1024);
    CHECK(pod.resources[0].cpu_limit_millicores == 2000);
    CHECK(pod.resources[0].cpu_request_millicores == 250);
    CHECK(pod.has_condition("Ready"));
    REQUIRE(pod.conditions.size() == 1);
    REQUIRE(pod.containers.size() == 1);
    CHECK(pod.containers[0].state.kind == kube::ContainerState::Kind::terminated); // terminated wins, as in the tree
    CHECK(pod.containers[0].state.exit_code == 137);
    CHECK(pod.containers[0].last_state.reason == "CrashLoopBackOff");
}

TEST_CASE("WatchDecoder agrees with the reference on hostile and odd inputs", "[kube][watch_decoder]") {
    const std::vector<std::string> inputs = {
        R"({"object":{"metadata":{"name":"late-type"}},"type":"ADDED"})",
        R"({"type":"ADDED","object":{"metadata":{"name":"a"}},"object":{"metadata":{"name":"b"}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"a"}},"object":5})",
        R"({"type":"ADDED","type":"ERROR","object":{"code":429,"reason":"TooManyRequests","details":{"retryAfterSeconds":2.9}}})",
        R"({"type":"ERROR","object":{"status":{"phase":"Running"},"code":1e300,"message":7}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x","name":5,"uid":"u"}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x","labels":{"a":"1","a":null}}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x","ownerReferences":[1,{"kind":"A"},{"kind":"B","controller":1},{"kind":"C","controller":true},{"kind":"D","controller":true}]}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"},"status":{"conditions":[{"type":"Ready","status":"True"}],"conditions":[{"type":"PodScheduled","status":"True"}]}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"},"status":{"containerStatuses":[{"name":"c","state":{"terminated":{"exitCode":1},"terminated":null,"waiting":{"reason":"w"}}}]}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"},"spec":{"containers":[{"resources":{"limits":{"memory":"1Gi","memory":"bad"},"requests":{"cpu":"1"}},"name":"c"}]},"spec":{"nodeName":"n"}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"e"},"regarding":{"kind":"Pod","name":"p"},"note":"n","series":{"count":4},"eventTime":"2026-02-23T10:00:00.000001Z","count":0}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"e"},"involvedObject":5,"regarding":{"kind":"Pod"},"message":"","note":"n2","count":3.7}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"j"},"spec":{"backoffLimit":18446744073709551615},"status":{"active":-5e9,"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded"},{"type":7}]}}})",
        R"({"type":"ADDED","object":{"metadata":{"na\u006de":"esc\"aped\u00e9"},"status":"Failure"}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"deep"},"spec":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"toodeep"},"spec":)" + std::string(130, '[') + std::string(130, ']') + "}}",
        R"([{"type":"ADDED","object":{}}])",
        R"({"type":"WHATEVER_THIS_IS_A_VERY_LONG_TYPE_NAME_INDEED","object":{}})",
        R"({"type":5,"object":{}})",
        R"({"type":"ADDED"})",
        R"("just a string")",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"}}} {"type":"DELETED","object":{"metadata":{"name":"x"}}})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"})",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"}}} trailing)",
        R"({"type":"ADDED","object":{"metadata":{"name":"\ud800"}}})",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"\xff\"}}}",
        R"({"type":"ADDED","object":{"metadata":{"name":"x"}},/*c*/})",
    };
    for (auto& in : inputs) {
        INFO(in);
        for (std::size_t split : {std::size_t{0}, in.size() / 2, in.size() - 1}) require_same_all(in + "\n", split);
    }
    // One event over the cap fails the same way in both.
    auto big = envelope("ADDED", boost::json::object{{"metadata", {{"name", std::string(5000, 'x')}}}});
    for (std::size_t cap : {std::size_t{100}, std::size_t{4000}, std::size_t{6000}}) {
        kube::WatchFramer framer(cap);
        kube::WatchDecoder<kube::Pod> decoder(cap);
        std::vector<kube::RawWatchEvent> raw;
        std::vector<kube::DecodedWatchEvent<kube::Pod>> decoded;
        auto e1 = framer.feed(big + big, raw);
        auto e2 = decoder.feed(big + big, decoded);
        CHECK(e1 == e2);
        CHECK(framer.error_message() == decoder.error_message());
        CHECK(raw.size() == decoded.size());
    }
}

TEST_CASE("WatchDecoder agrees with the reference on random documents around the views' fields",
          "[kube][watch_decoder]") {
    Generator g(20260223);
    for (int i = 0; i < 4000; ++i) {
        std::string doc = g.event() + "\n";
        if (g.pick(3) == 0) doc += g.event() + "\n";
        std::size_t split = static_cast<std::size_t>(g.pick(static_cast<int>(doc.size()) + 1));
        require_same_all(doc, split);
    }
}

TEST_CASE("WatchDecoder recovers after reset and refuses input after an error", "[kube][watch_decoder]") {
    kube::WatchDecoder<kube::Pod> decoder;
    std::vector<kube::DecodedWatchEvent<kube::Pod>> out;
    CHECK_FALSE(decoder.feed("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":", out));
    CHECK(out.size() == 1);
    CHECK_FALSE(decoder.between_events());
    CHECK(decoder.finish() == kube::error::connection_lost);
    decoder.reset();
    CHECK(decoder.feed("nope\n", out) == kube::error::malformed_response);
    CHECK(decoder.feed("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n", out) ==
          kube::error::malformed_response);
    CHECK(out.size() == 1);
    decoder.reset();
    CHECK_FALSE(decoder.feed("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n", out));
    REQUIRE(out.size() == 2);
    CHECK(out[1].object.meta.name == "b");
}

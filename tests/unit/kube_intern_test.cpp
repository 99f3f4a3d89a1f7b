// Interned strings of the typed views: equal texts share one record, the table forgets a text when the last
// object holding it goes (also for hostile floods of distinct values), and the views built from JSON share the
// repeated texts of their labels and owner references.
#include <execution_sentinel/kube/interned_string.hpp>
#include <execution_sentinel/kube/parse.hpp>
#include <execution_sentinel/kube/store.hpp>
#include <execution_sentinel/kube/watch_decoder.hpp>

#include "catch.hpp"

#include <boost/json/parse.hpp>

#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace kube = execution_sentinel::kube;
using kube::InternedString;

namespace {
// A text no other test uses, so that the table's count of it is ours alone.
std::string unique_text(const std::string& what) { return "kube-intern-test/" + what; }

std::string task_pod_json(const std::string& name, const std::string& job, const std::string& job_uid) {
    return R"({"metadata":{"name":")" + name + R"(","namespace":"wf","uid":"u-)" + name +
           R"(","resourceVersion":"1","labels":{"app":"hyperflow","batch.kubernetes.io/controller-uid":")" +
           job_uid + R"(","batch.kubernetes.io/job-name":")" + job + R"(","controller-uid":")" + job_uid +
           R"(","job-name":")" + job + R"("},"ownerReferences":[{"kind":"Job","name":")" + job + R"(","uid":")" +
           job_uid + R"(","controller":true}]},"spec":{"nodeName":"node-1"},"status":{"phase":"Failed",
           "conditions":[{"type":"Ready","status":"False","reason":"PodFailed"}],"containerStatuses":[{"name":"main",
           "state":{"terminated":{"exitCode":137,"reason":"OOMKilled"}}}]}})";
}
} // namespace

TEST_CASE("interned strings: equal texts share one record, the last handle frees it", "[kube][intern]") {
    const auto text = unique_text("sharing");
    const auto before = kube::interned_string_count();
    {
        InternedString a(text);
        InternedString b(std::string_view(text.data(), text.size()));
        InternedString c = a;
        CHECK(a.same_record(b));
        CHECK(a.same_record(c));
        CHECK(a.data() == b.data()); // one copy of the characters
        CHECK(kube::interned_string_count() == before + 1);
        InternedString other(unique_text("other"));
        CHECK_FALSE(a.same_record(other));
        CHECK(kube::interned_string_count() == before + 2);
        other.clear();
        CHECK(kube::interned_string_count() == before + 1);
        a = InternedString();
        b.clear();
        CHECK(kube::interned_string_count() == before + 1); // c still holds it
        InternedString again(text);
        CHECK(again.same_record(c));
    }
    CHECK(kube::interned_string_count() == before);
}

TEST_CASE("interned strings read like std::string", "[kube][intern]") {
    InternedString s("OOMKilled");
    const std::string std_s = "OOMKilled";
    CHECK(s == "OOMKilled");
    CHECK(s == std_s);
    CHECK(std_s == s);
    CHECK(s == std::string_view("OOMKilled"));
    CHECK(s != "Error");
    CHECK(s.size() == 9);
    CHECK(std::string(s.c_str()) == "OOMKilled");
    CHECK(s.substr(0, 3) == "OOM");
    CHECK(s.starts_with("OOM"));
    CHECK(s.find("Kill") == 3);
    CHECK("reason " + s == "reason OOMKilled");
    CHECK(s + "!" == "OOMKilled!");
    CHECK(std::string("x=") + s + "," + s == "x=OOMKilled,OOMKilled");
    std::string converted = s;
    CHECK(converted == "OOMKilled");
    std::ostringstream os;
    os << s;
    CHECK(os.str() == "OOMKilled");
    CHECK(InternedString("a") < InternedString("b"));
    CHECK(InternedString("b") > "a");

    InternedString empty;
    CHECK(empty.empty());
    CHECK(empty.size() == 0);
    CHECK(std::string(empty.c_str()).empty());
    CHECK(empty == "");
    CHECK(InternedString("") == empty);
    CHECK(InternedString(std::string()).empty());

    std::unordered_set<InternedString> set{"x", "y", "x"};
    CHECK(set.size() == 2);
    std::map<InternedString, int> map{{"b", 2}, {"a", 1}};
    CHECK(map.begin()->first == "a");
}

TEST_CASE("interned strings: a flood of distinct values is forgotten with the objects", "[kube][intern]") {
    const auto before = kube::interned_string_count();
    const auto before_memory = kube::interned_string_memory();
    {
        kube::Store<kube::Pod> store;
        std::vector<kube::WatchEvent<kube::Pod>> sink;
        for (int i = 0; i < 20000; ++i) {
            kube::Pod p;
            p.meta.namespace_ = "wf";
            p.meta.name = "p" + std::to_string(i);
            p.meta.resource_version = "1";
            // every label value distinct, as a hostile apiserver could send them
            p.meta.labels.items = {{"app", "hyperflow"}, {unique_text("flood-key"), unique_text("v" + std::to_string(i))}};
            store.upsert(std::move(p), sink);
            sink.clear();
        }
        CHECK(kube::interned_string_count() >= before + 20000);
        CHECK(kube::interned_string_memory() > before_memory + 20000 * 20);
        // the objects change: the old values are released as they are replaced
        for (int i = 0; i < 20000; ++i) {
            kube::Pod p;
            p.meta.namespace_ = "wf";
            p.meta.name = "p" + std::to_string(i);
            p.meta.resource_version = "2";
            p.meta.labels.items = {{"app", "hyperflow"}};
            store.upsert(std::move(p), sink);
            sink.clear();
        }
        CHECK(kube::interned_string_count() <= before + 3); // "wf", "app" and "hyperflow" at most
    }
    CHECK(kube::interned_string_count() == before);
    // the table shrinks back: what is left is within a small constant of what was there
    CHECK(kube::interned_string_memory() < before_memory + 64 * 1024);
}

TEST_CASE("interned strings: handles are copied and released across threads", "[kube][intern]") {
    const auto before = kube::interned_string_count();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([t] {
            for (int round = 0; round < 2000; ++round) {
                std::vector<InternedString> held;
                for (int i = 0; i < 20; ++i) held.emplace_back(unique_text("threads-" + std::to_string((round + i) % 37)));
                InternedString mine(unique_text("thread-own-" + std::to_string(t)));
                auto copy = held;
                CHECK(copy[0].same_record(held[0]));
                (void)mine;
            }
        });
    for (auto& th : threads) th.join();
    CHECK(kube::interned_string_count() == before);
}

TEST_CASE("views share the repeated texts of labels and owner references", "[kube][intern]") {
    const std::string job = "jobabc12-mutation-overlap-7-1";
    const std::string job_uid = "5861e0a8-b31e-46cd-8f75-b7a4adc7c518";
    auto a = kube::parse_pod(boost::json::parse(task_pod_json("p-a", job, job_uid)).as_object());
    auto b = kube::parse_pod(boost::json::parse(task_pod_json("p-b", job, job_uid)).as_object());

    // the views mean what they meant
    CHECK(a.job_name() == job);
    CHECK(a.meta.labels.matches("app", "hyperflow"));
    REQUIRE(a.meta.labels.find("controller-uid"));
    CHECK(*a.meta.labels.find("controller-uid") == job_uid);
    REQUIRE(a.meta.owner);
    CHECK(a.meta.owner->kind == "Job");
    CHECK(a.node_name == "node-1");
    REQUIRE(a.containers.size() == 1);
    CHECK(a.containers[0].state.reason == "OOMKilled");
    CHECK(a.has_condition("Ready", "False"));

    // one record for the job name and the uid, in both label pairs, the owner and the other pod
    auto* jn = a.meta.labels.find("job-name");
    auto* bjn = a.meta.labels.find("batch.kubernetes.io/job-name");
    REQUIRE(jn);
    REQUIRE(bjn);
    CHECK(jn->same_record(*bjn));
    CHECK(jn->same_record(a.meta.owner->name));
    CHECK(a.meta.labels.find("controller-uid")->same_record(a.meta.owner->uid));
    CHECK(jn->same_record(*b.meta.labels.find("job-name")));
    CHECK(a.meta.labels.items[0].first.same_record(b.meta.labels.items[0].first));
    CHECK(a.containers[0].state.reason.same_record(b.containers[0].state.reason));

    // the SAX decoder gives the same sharing
    kube::WatchDecoder<kube::Pod> decoder;
    std::vector<kube::DecodedWatchEvent<kube::Pod>> out;
    REQUIRE_FALSE(decoder.feed(R"({"type":"ADDED","object":)" + task_pod_json("p-c", job, job_uid) + "}\n", out));
    REQUIRE(out.size() == 1);
    CHECK(out[0].object.meta.labels == a.meta.labels);
    CHECK(out[0].object.meta.labels.find("job-name")->same_record(*jn));
    CHECK(out[0].object.meta.owner->uid.same_record(a.meta.owner->uid));
}

#include <execution_sentinel/kube/watch_framer.hpp>
#include <execution_sentinel/testing/hyperflow.hpp>

#include <boost/json.hpp>

#include "catch.hpp"

#include <random>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
namespace hf = execution_sentinel::testing;
using namespace std::chrono;

namespace {

// A realistic watch body: a pod added, modified (running), a bookmark, the pod deleted, an ERROR event;
// escaped characters and non-ASCII text inside strings, blank keep-alive lines and CRLF between documents.
std::string realistic_stream(std::vector<std::string>& names) {
    hf::NameSource src(11);
    auto t0 = sys_days{year{2026} / 2 / 23} + hours{10};
    hf::TaskJobOptions jo;
    jo.namespace_name = "wf-1";
    jo.name = hf::job_name(src.job_fragment(), "mutation_overlap", 4, 1);
    jo.uid = src.uid();
    jo.created = t0;
    auto job = hf::task_job(jo);
    hf::TaskPodOptions po;
    po.name = jo.name + "-" + src.pod_suffix();
    po.uid = src.uid();
    po.created = t0;
    auto pod = hf::task_pod(job, po);
    pod["metadata"].as_object()["resourceVersion"] = "100";
    pod["metadata"].as_object()["annotations"] = boost::json::object{{"note", "quote \" backslash \\ tab \t é ✓"}};
    names.push_back(po.name);
    std::string out;
    auto emit = [&](std::string_view type, const boost::json::value& object, std::string_view sep = "\n") {
        out += boost::json::serialize(boost::json::object{{"type", type}, {"object", object}});
        out += sep;
    };
    emit("ADDED", pod);
    hf::pod_set_running(pod, t0 + seconds{3});
    pod["metadata"].as_object()["resourceVersion"] = "101";
    emit("MODIFIED", pod, "\r\n\n");
    emit("BOOKMARK", boost::json::object{{"kind", "Pod"}, {"apiVersion", "v1"},
                                         {"metadata", {{"resourceVersion", "150"}}}});
    pod["metadata"].as_object()["resourceVersion"] = "160";
    emit("DELETED", pod, " \n");
    emit("ERROR", boost::json::object{{"kind", "Status"}, {"status", "Failure"}, {"code", 410},
                                      {"reason", "Expired"}, {"message", "too old resource version: 1 (160)"}});
    return out;
}

void check_events(const std::vector<kube::RawWatchEvent>& ev, const std::string& pod_name) {
    REQUIRE(ev.size() == 5);
    CHECK(ev[0].type == kube::RawWatchEventType::added);
    CHECK(ev[1].type == kube::RawWatchEventType::modified);
    CHECK(ev[2].type == kube::RawWatchEventType::bookmark);
    CHECK(ev[3].type == kube::RawWatchEventType::deleted);
    CHECK(ev[4].type == kube::RawWatchEventType::error);
    CHECK(ev[0].object.at("metadata").at("name").as_string() == pod_name);
    CHECK(ev[0].object.at("metadata").at("annotations").at("note").as_string() == "quote \" backslash \\ tab \t é ✓");
    CHECK(ev[1].object.at("status").at("phase").as_string() == "Running");
    CHECK(ev[2].object.at("metadata").at("resourceVersion").as_string() == "150");
    CHECK(ev[3].object.at("metadata").at("resourceVersion").as_string() == "160");
    CHECK(ev[4].object.at("code").as_int64() == 410);
}

} // namespace

TEST_CASE("framer: the same stream split at every byte boundary yields the same events", "[kube][framer]") {
    std::vector<std::string> names;
    const std::string stream = realistic_stream(names);
    REQUIRE(stream.size() > 2000);
    kube::WatchFramer framer;
    std::vector<kube::RawWatchEvent> whole;
    REQUIRE_FALSE(framer.feed(stream, whole));
    REQUIRE_FALSE(framer.finish());
    check_events(whole, names[0]);
    CHECK(framer.bytes_consumed() == stream.size());
    CHECK(framer.events_produced() == 5);

    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        framer.reset();
        std::vector<kube::RawWatchEvent> ev;
        auto e1 = framer.feed(std::string_view(stream).substr(0, cut), ev);
        auto e2 = framer.feed(std::string_view(stream).substr(cut), ev);
        auto e3 = framer.finish();
        if (e1 || e2 || e3 || ev.size() != 5) {
            CAPTURE(cut, e1.message(), e2.message(), e3.message(), ev.size());
            FAIL("split at " << cut << " broke the stream");
        }
        for (std::size_t i = 0; i < ev.size(); ++i)
            if (ev[i].object != whole[i].object || ev[i].type != whole[i].type) FAIL("event " << i << " differs at cut " << cut);
    }
    SUCCEED("all " << stream.size() + 1 << " splits agree");
}

TEST_CASE("framer: three-way splits, byte-by-byte and random chunking", "[kube][framer]") {
    std::vector<std::string> names;
    const std::string stream = realistic_stream(names);
    kube::WatchFramer framer;

    SECTION("byte by byte") {
        std::vector<kube::RawWatchEvent> ev;
        for (char c : stream) REQUIRE_FALSE(framer.feed(std::string_view(&c, 1), ev));
        REQUIRE_FALSE(framer.finish());
        check_events(ev, names[0]);
    }
    SECTION("three pieces around every event boundary") {
        // cut points within 3 bytes of each document end, combined pairwise
        std::vector<std::size_t> cuts;
        for (std::size_t i = 0; i < stream.size(); ++i)
            if (stream[i] == '}' && i + 1 < stream.size() && (stream[i + 1] == '\n' || stream[i + 1] == '\r' || stream[i + 1] == ' '))
                for (std::size_t d = 0; d < 4 && i + d <= stream.size(); ++d) cuts.push_back(i + d - 1);
        for (auto a : cuts)
            for (auto b : cuts) {
                if (b < a) continue;
                framer.reset();
                std::vector<kube::RawWatchEvent> ev;
                std::string_view s(stream);
                REQUIRE_FALSE(framer.feed(s.substr(0, a), ev));
                REQUIRE_FALSE(framer.feed(s.substr(a, b - a), ev));
                REQUIRE_FALSE(framer.feed(s.substr(b), ev));
                REQUIRE(ev.size() == 5);
            }
    }
    SECTION("random chunk sizes, many streams back to back (no cap on a stream)") {
        std::mt19937 rng(42);
        std::string big;
        for (int i = 0; i < 50; ++i) big += stream;
        std::vector<kube::RawWatchEvent> ev;
        std::size_t pos = 0;
        while (pos < big.size()) {
            std::size_t n = std::uniform_int_distribution<std::size_t>(0, 700)(rng);
            REQUIRE_FALSE(framer.feed(std::string_view(big).substr(pos, n), ev));
            pos += std::min(n, big.size() - pos);
        }
        REQUIRE_FALSE(framer.finish());
        CHECK(ev.size() == 250);
        CHECK(framer.between_events());
    }
}

TEST_CASE("framer: malformed documents are errors with a position", "[kube][framer]") {
    kube::WatchFramer framer;
    std::vector<kube::RawWatchEvent> ev;
    const std::string good = R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})"
                             "\n";

    struct Case {
        std::string_view body;
        std::string_view what;
    };
    for (auto c : {Case{"{\"type\":\"ADDED\",\"object\":{]}\n", "syntax"},
                   Case{"[1,2,3]\n", "not a JSON object"},
                   Case{"{\"object\":{}}\n", "no string \"type\""},
                   Case{"{\"type\":5,\"object\":{}}\n", "no string \"type\""},
                   Case{"{\"type\":\"SOMETHING\",\"object\":{}}\n", "unknown type"},
                   Case{"{\"type\":\"ADDED\",\"object\":[]}\n", "no object \"object\""},
                   Case{"{\"type\":\"ADDED\"}\n", "no object \"object\""},
                   Case{"garbage\n", "syntax"},
                   Case{"\"just a string\"\n", "not a JSON object"}}) {
        INFO(c.body);
        framer.reset();
        ev.clear();
        REQUIRE_FALSE(framer.feed(good, ev));
        auto e = framer.feed(c.body, ev);
        CHECK(e == kube::error::malformed_response);
        CHECK(ev.size() == 1); // the good event before it was delivered
        CHECK(framer.error_message().find("#2") != std::string::npos);
        CHECK(framer.error_offset() >= good.size());
        if (c.what != "syntax") CHECK(framer.error_message().find(c.what) != std::string::npos);
        // unusable until reset
        CHECK(framer.feed(good, ev) == kube::error::malformed_response);
        CHECK(ev.size() == 1);
        framer.reset();
        REQUIRE_FALSE(framer.feed(good, ev));
        CHECK(ev.size() == 2);
    }
}

TEST_CASE("framer: a cap on one event, none on the stream", "[kube][framer]") {
    std::string big_obj = R"({"type":"ADDED","object":{"metadata":{"name":"a"},"pad":")" + std::string(5000, 'x') + "\"}}\n";
    SECTION("under the cap") {
        kube::WatchFramer framer(big_obj.size());
        std::vector<kube::RawWatchEvent> ev;
        for (int i = 0; i < 20; ++i) REQUIRE_FALSE(framer.feed(big_obj, ev));
        CHECK(ev.size() == 20);
    }
    SECTION("over the cap, whole or split") {
        for (std::size_t split : {std::size_t{0}, std::size_t{100}, std::size_t{4000}, big_obj.size() - 3}) {
            kube::WatchFramer framer(4096);
            std::vector<kube::RawWatchEvent> ev;
            auto e1 = framer.feed(std::string_view(big_obj).substr(0, split), ev);
            auto e2 = e1 ? e1 : framer.feed(std::string_view(big_obj).substr(split), ev);
            CHECK(e2 == kube::error::event_too_large);
            CHECK(framer.error_message().find("exceeds 4096 bytes") != std::string::npos);
            CHECK(ev.empty());
        }
    }
}

TEST_CASE("framer: end of stream inside a document", "[kube][framer]") {
    kube::WatchFramer framer;
    std::vector<kube::RawWatchEvent> ev;
    REQUIRE_FALSE(framer.feed(R"({"type":"ADDED","object":{"metadata":{"na)", ev));
    CHECK_FALSE(framer.between_events());
    CHECK(framer.finish() == kube::error::connection_lost);
    framer.reset();
    REQUIRE_FALSE(framer.feed("\n\n  \r\n", ev));
    CHECK(framer.between_events());
    CHECK_FALSE(framer.finish());
}

TEST_CASE("framer: random and mutated input never crashes and never yields a bad event", "[kube][framer]") {
    std::vector<std::string> names;
    const std::string stream = realistic_stream(names);
    std::mt19937 rng(7);
    for (int round = 0; round < 300; ++round) {
        std::string input = stream;
        int flips = 1 + static_cast<int>(rng() % 8);
        for (int i = 0; i < flips; ++i) input[rng() % input.size()] = static_cast<char>(rng() % 256);
        if (round % 10 == 0) input = std::string(rng() % 3000, static_cast<char>(rng() % 256));
        kube::WatchFramer framer(4096 + rng() % 8192);
        std::vector<kube::RawWatchEvent> ev;
        std::size_t pos = 0;
        std::error_code ec;
        while (pos < input.size() && !ec) {
            std::size_t n = 1 + rng() % 900;
            ec = framer.feed(std::string_view(input).substr(pos, n), ev);
            pos += n;
        }
        if (!ec) ec = framer.finish();
        if (ec) CHECK(!framer.error_message().empty());
        CHECK(ev.size() <= 5);
        for (auto& e : ev) CHECK(static_cast<int>(e.type) <= static_cast<int>(kube::RawWatchEventType::error));
    }
}

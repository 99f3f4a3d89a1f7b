#include <execution_sentinel/kube/store.hpp>

#include "catch.hpp"

#include <map>
#include <random>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
using Events = std::vector<kube::WatchEvent<kube::Pod>>;

namespace {
kube::Pod pod(std::string ns, std::string name, std::string rv, std::string uid = "u") {
    kube::Pod p;
    p.meta.namespace_ = std::move(ns);
    p.meta.name = std::move(name);
    p.meta.resource_version = std::move(rv);
    p.meta.uid = std::move(uid);
    return p;
}
} // namespace

TEST_CASE("store: upsert, repeat, modify, remove", "[kube][store]") {
    kube::Store<kube::Pod> s;
    Events out;
    s.upsert(pod("a", "x", "1"), out);
    s.upsert(pod("b", "x", "2"), out); // same name, other namespace: another object
    REQUIRE(out.size() == 2);
    CHECK(out[0].type == kube::WatchEventType::added);
    CHECK(s.size() == 2);
    s.upsert(pod("a", "x", "1"), out); // a repeat: nothing
    CHECK(out.size() == 2);
    s.upsert(pod("a", "x", "3"), out);
    REQUIRE(out.size() == 3);
    CHECK(out[2].type == kube::WatchEventType::modified);
    CHECK(out[2].object.meta.resource_version == "3");
    REQUIRE(s.get("a", "x") != nullptr);
    CHECK(s.get("a", "x")->meta.resource_version == "3");
    CHECK(s.get("c", "x") == nullptr);
    s.remove(pod("a", "x", "4"), out);
    REQUIRE(out.size() == 4);
    CHECK(out[3].type == kube::WatchEventType::deleted);
    CHECK_FALSE(out[3].final_state_unknown);
    CHECK(out[3].object.meta.resource_version == "4");
    s.remove(pod("a", "x", "5"), out); // unknown: nothing, never a second deletion
    CHECK(out.size() == 4);
    CHECK(s.size() == 1);
    auto all = s.list();
    REQUIRE(all.size() == 1);
    CHECK(all[0]->meta.namespace_ == "b");
}

TEST_CASE("store: a reused name with another uid is a deletion then an addition", "[kube][store]") {
    kube::Store<kube::Pod> s;
    Events out;
    s.upsert(pod("n", "x", "1", "uid-1"), out);
    s.upsert(pod("n", "x", "9", "uid-2"), out);
    REQUIRE(out.size() == 3);
    CHECK(out[1].type == kube::WatchEventType::deleted);
    CHECK(out[1].object.meta.uid == "uid-1");
    CHECK(out[2].type == kube::WatchEventType::added);
    CHECK(out[2].object.meta.uid == "uid-2");
    CHECK(s.get("n", "x")->meta.uid == "uid-2");
}

TEST_CASE("store: replace reports the difference, including what vanished", "[kube][store]") {
    kube::Store<kube::Pod> s;
    Events out;
    s.replace({pod("n", "a", "1"), pod("n", "b", "1"), pod("n", "c", "1")}, out);
    CHECK(out.size() == 3);
    out.clear();
    s.replace({pod("n", "a", "1"), pod("n", "c", "5"), pod("n", "d", "6")}, out);
    REQUIRE(out.size() == 3);
    std::map<std::string, kube::WatchEventType> by_name;
    for (auto& e : out) by_name[e.object.meta.name] = e.type;
    CHECK(by_name.at("c") == kube::WatchEventType::modified);
    CHECK(by_name.at("d") == kube::WatchEventType::added);
    CHECK(by_name.at("b") == kube::WatchEventType::deleted);
    for (auto& e : out)
        if (e.type == kube::WatchEventType::deleted) CHECK(e.final_state_unknown);
    CHECK(s.size() == 3);
    CHECK(s.get("n", "b") == nullptr);
    out.clear();
    s.replace({}, out);
    CHECK(out.size() == 3);
    CHECK(s.empty());
}

TEST_CASE("store: a paged relist restarted half-way deletes only what the complete list lacks", "[kube][store]") {
    kube::Store<kube::Pod> s;
    Events out;
    s.replace({pod("n", "a", "1"), pod("n", "b", "1"), pod("n", "c", "1")}, out);
    out.clear();
    s.begin_relist();
    s.relist_page({pod("n", "a", "1")}, out);
    s.begin_relist(); // the continue token expired: start over
    s.relist_page({pod("n", "b", "1")}, out);
    s.relist_page({pod("n", "c", "2")}, out);
    s.end_relist(out);
    REQUIRE(out.size() == 2);
    CHECK(out[0].type == kube::WatchEventType::modified);
    CHECK(out[1].type == kube::WatchEventType::deleted);
    CHECK(out[1].object.meta.name == "a");
}

TEST_CASE("store property: random histories never duplicate, relists converge", "[kube][store]") {
    // A model (a map) and the store see the same random history of upserts, removes and relists; the
    // events the store emits, applied to a third map, must rebuild the model exactly, and no event may
    // add what exists, modify what is absent or unchanged, or delete what is absent.
    auto seed = GENERATE(1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u);
    std::mt19937 rng(seed);
    kube::Store<kube::Pod> store;
    std::map<std::pair<std::string, std::string>, std::string> model;   // key → rv
    std::map<std::pair<std::string, std::string>, std::string> rebuilt; // from the events
    int rv = 0;
    auto check_event = [&](const kube::WatchEvent<kube::Pod>& e) {
        auto key = std::make_pair(e.object.meta.namespace_, e.object.meta.name);
        switch (e.type) {
        case kube::WatchEventType::added:
            REQUIRE(rebuilt.count(key) == 0);
            rebuilt[key] = e.object.meta.resource_version;
            break;
        case kube::WatchEventType::modified:
            REQUIRE(rebuilt.count(key) == 1);
            REQUIRE(rebuilt[key] != e.object.meta.resource_version);
            rebuilt[key] = e.object.meta.resource_version;
            break;
        case kube::WatchEventType::deleted:
            REQUIRE(rebuilt.erase(key) == 1);
            break;
        case kube::WatchEventType::synced: FAIL("the store never emits synced");
        }
    };
    for (int step = 0; step < 2000; ++step) {
        Events out;
        int op = std::uniform_int_distribution<int>(0, 99)(rng);
        std::string ns = "ns" + std::to_string(std::uniform_int_distribution<int>(0, 2)(rng));
        std::string name = "p" + std::to_string(std::uniform_int_distribution<int>(0, 30)(rng));
        auto key = std::make_pair(ns, name);
        if (op < 55) { // create or modify (sometimes a repeat of the current version)
            std::string v = (op < 10 && model.count(key)) ? model[key] : std::to_string(++rv);
            model[key] = v;
            store.upsert(pod(ns, name, v), out);
        } else if (op < 80) {
            model.erase(key);
            store.remove(pod(ns, name, std::to_string(++rv)), out);
        } else if (op < 95) { // the world changed while we were away: a relist of the truth, in pages
            for (int k = 0; k < 5; ++k) { // random changes the store did not see
                std::string n2 = "p" + std::to_string(std::uniform_int_distribution<int>(0, 30)(rng));
                if (rng() % 2) model[{ns, n2}] = std::to_string(++rv);
                else model.erase({ns, n2});
            }
            std::vector<kube::Pod> items;
            for (auto& [k, v] : model) items.push_back(pod(k.first, k.second, v));
            std::shuffle(items.begin(), items.end(), rng);
            store.begin_relist();
            std::size_t page = 1 + rng() % 7;
            for (std::size_t i = 0; i < items.size(); i += page) {
                std::vector<kube::Pod> p(items.begin() + static_cast<long>(i),
                                         items.begin() + static_cast<long>(std::min(items.size(), i + page)));
                store.relist_page(std::move(p), out);
            }
            store.end_relist(out);
        } else {
            auto all = store.list();
            REQUIRE(all.size() == store.size());
        }
        for (auto& e : out) check_event(e);
        REQUIRE(store.size() == model.size());
        REQUIRE(rebuilt == model);
    }
    for (auto& [k, v] : model) {
        auto* p = store.get(k.first, k.second);
        REQUIRE(p != nullptr);
        CHECK(p->meta.resource_version == v);
    }
}

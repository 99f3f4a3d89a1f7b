// The pure parts of the shared informer (kube/shared_informer.hpp): what a subscriber selects (compared with the
// simulated apiserver's selector code), how each event of the shared watch is routed, the bounded per-subscriber
// queues with their resynchronisation from the informer's store, and the subscriber's own store that turns all of it
// into exactly what its own watch would have delivered. Fixed clock: times are passed in.
#include <execution_sentinel/kube/shared_informer.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"

namespace es = execution_sentinel;
namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;
const Clock::time_point t0 = Clock::time_point{} + 1000s;

std::uint64_t next_rv = 1;

void set_labels(kube::Pod& p, const std::vector<std::pair<std::string, std::string>>& labels) {
    p.meta.labels.items.clear();
    for (auto& [k, v] : labels) p.meta.labels.items.emplace_back(k, v);
}

kube::Pod pod(std::string name, std::vector<std::pair<std::string, std::string>> labels, std::string ns = "wf") {
    kube::Pod p;
    p.meta.namespace_ = std::move(ns);
    p.meta.name = name;
    p.meta.uid = "uid-" + name;
    p.meta.resource_version = std::to_string(next_rv++);
    set_labels(p, labels);
    return p;
}

kube::Pod touched(kube::Pod p) {
    p.meta.resource_version = std::to_string(next_rv++);
    return p;
}

using Events = std::vector<kube::WatchEvent<kube::Pod>>;
using Fan = kube::FanOut<kube::Pod>;

/// The informer's side: a Store fed like a Watcher's, each event then given to the fan-out.
struct Informer {
    kube::Store<kube::Pod> store;
    Fan fan;
    bool synced = false;
    explicit Informer(kube::FanOutOptions o = {}) : fan(o) {}

    void deliver(const Events& evs, Clock::time_point now = t0) {
        std::vector<Fan::Id> woken;
        for (auto& ev : evs) fan.on_event(ev, store, synced, now, woken);
    }
    void upsert(kube::Pod p, Clock::time_point now = t0) {
        Events out;
        store.upsert(std::move(p), out);
        deliver(out, now);
    }
    void remove(const kube::Pod& p) {
        Events out;
        store.remove(p, out);
        deliver(out);
    }
    /// A relist (after a 410 or a dropped watch): the difference, then `synced`.
    void relist(std::vector<kube::Pod> items) {
        Events out;
        store.replace(std::move(items), out);
        synced = true;
        out.push_back({kube::WatchEventType::synced, {}, false});
        deliver(out);
    }
};

/// A subscriber's side: takes its queue and applies it to its own store.
struct Subscriber {
    Fan::Id id = 0;
    kube::SubscriberStore<kube::Pod> local;
    std::vector<kube::WatchAttempt> attempts;
    int errors = 0;
    Subscriber(Informer& inf, kube::ObjectFilter f)
        : id(inf.fan.add(kube::ObjectMatcher(f), inf.store, inf.synced)), local(kube::ObjectMatcher(f)) {}

    Events take(Informer& inf) {
        Events out;
        for (auto& item : inf.fan.take(id)) {
            switch (item.kind) {
            case kube::FanOutItem<kube::Pod>::Kind::event: local.apply(item.event, out); break;
            case kube::FanOutItem<kube::Pod>::Kind::resync: local.resync(std::move(item.objects), item.complete, out); break;
            case kube::FanOutItem<kube::Pod>::Kind::attempt: attempts.push_back(*item.attempt); break;
            case kube::FanOutItem<kube::Pod>::Kind::error: ++errors; break;
            }
        }
        return out;
    }
};

std::map<std::string, std::string> names_and_versions(const kube::Store<kube::Pod>& s) {
    std::map<std::string, std::string> m;
    for (auto* p : s.list()) m[p->meta.name] = p->meta.resource_version;
    return m;
}

/// What a watch with the filter's selectors holds: the informer's store, selected.
std::map<std::string, std::string> selected(const kube::Store<kube::Pod>& s, const kube::ObjectMatcher& m) {
    std::map<std::string, std::string> out;
    for (auto* p : s.list())
        if (m.matches(*p)) out[p->meta.name] = p->meta.resource_version;
    return out;
}

std::string kinds(const Events& evs) {
    std::string s;
    for (auto& e : evs) {
        if (!s.empty()) s += ",";
        switch (e.type) {
        case kube::WatchEventType::added: s += "+" + e.object.meta.name; break;
        case kube::WatchEventType::modified: s += "~" + e.object.meta.name; break;
        case kube::WatchEventType::deleted: s += (e.final_state_unknown ? "-?" : "-") + e.object.meta.name; break;
        case kube::WatchEventType::synced: s += "synced"; break;
        }
    }
    return s;
}

} // namespace

TEST_CASE("a subscriber's label selector selects what the apiserver's selector selects", "[shared_informer][unit]") {
    namespace td = es::testing::detail;
    const std::vector<std::string> selectors{"",        "app=hyperflow",          "app==hyperflow,run=r1", "run!=r1",
                                             "run",     "!run",                   "app=hyperflow,!component",
                                             "app=hyperflow, run=r2", "component!=hyperflow-engine,app"};
    const std::vector<std::vector<std::pair<std::string, std::string>>> label_sets{
        {},
        {{"app", "hyperflow"}},
        {{"app", "hyperflow"}, {"run", "r1"}},
        {{"app", "hyperflow"}, {"run", "r2"}},
        {{"app", "hyperflow"}, {"component", "hyperflow-engine"}, {"run", "r1"}},
        {{"run", ""}},
        {{"app", "other"}, {"run", "r1"}},
    };
    int compared = 0;
    for (auto& sel : selectors) {
        auto server = td::parse_label_selector(sel);
        REQUIRE(std::holds_alternative<td::Selector>(server));
        kube::ObjectMatcher local(kube::ObjectFilter{"", sel, ""});
        for (auto& labels : label_sets) {
            boost::json::object l;
            for (auto& [k, v] : labels) l[k] = v;
            boost::json::object obj{{"metadata", {{"name", "p"}, {"labels", l}}}};
            INFO("selector \"" << sel << "\" labels " << boost::json::serialize(l));
            CHECK(local.matches(pod("p", labels)) == td::labels_match(std::get<td::Selector>(server), obj));
            ++compared;
        }
    }
    CHECK(compared == 63);
    // The namespace and the name (metadata.name field selector) are applied too.
    kube::ObjectMatcher in_ns(kube::ObjectFilter{"wf-a", "app=hyperflow", ""});
    CHECK(in_ns.matches(pod("p", {{"app", "hyperflow"}}, "wf-a")));
    CHECK_FALSE(in_ns.matches(pod("p", {{"app", "hyperflow"}}, "wf-b")));
    kube::ObjectMatcher by_name(kube::ObjectFilter{"wf", "", "engine-1"});
    CHECK(by_name.matches(pod("engine-1", {})));
    CHECK_FALSE(by_name.matches(pod("engine-2", {})));
    CHECK_THROWS_AS(kube::ObjectMatcher(kube::ObjectFilter{"", "app=,", ""}), std::invalid_argument);
}

TEST_CASE("route_event: matching objects go to a subscriber, one leaving its selection goes to its holder once",
          "[shared_informer][unit]") {
    using T = kube::WatchEventType;
    auto r = kube::route_event(T::added, true, false);
    CHECK((r.deliver && r.held_after));
    r = kube::route_event(T::added, false, false);
    CHECK((!r.deliver && !r.held_after));
    r = kube::route_event(T::modified, false, true); // labels changed: the holder drops it
    CHECK((r.deliver && !r.held_after));
    r = kube::route_event(T::modified, false, false);
    CHECK_FALSE(r.deliver);
    r = kube::route_event(T::deleted, false, true);
    CHECK((r.deliver && !r.held_after));
    r = kube::route_event(T::deleted, false, false);
    CHECK_FALSE(r.deliver);
    CHECK(kube::route_event(T::synced, false, false).deliver);
}

TEST_CASE("fan-out: each run sees only its objects, a label change is a deletion, a late subscriber gets the store first",
          "[shared_informer][unit]") {
    Informer inf;
    Subscriber a(inf, {"wf", "app=hyperflow,run=a", ""});
    Subscriber b(inf, {"wf", "app=hyperflow,run=b", ""});
    CHECK(a.take(inf).empty()); // an empty, not yet listed store: nothing, not even synced
    inf.relist({pod("a1", {{"app", "hyperflow"}, {"run", "a"}}), pod("b1", {{"app", "hyperflow"}, {"run", "b"}}),
                pod("x1", {{"app", "other"}})});
    CHECK(kinds(a.take(inf)) == "+a1,synced");
    CHECK(kinds(b.take(inf)) == "+b1,synced");
    CHECK(a.local.synced());

    auto a2 = pod("a2", {{"app", "hyperflow"}, {"run", "a"}});
    inf.upsert(a2);
    auto moved = touched(a2);
    set_labels(moved, {{"app", "hyperflow"}, {"run", "b"}}); // relabelled: leaves a, joins b
    inf.upsert(moved);
    CHECK(kinds(a.take(inf)) == "+a2,-a2");
    CHECK(kinds(b.take(inf)) == "+a2");
    inf.upsert(touched(*inf.store.get("wf", "x1"))); // no subscriber selects it
    CHECK(a.take(inf).empty());
    CHECK(b.take(inf).empty());

    // Late: its first events are what the informer holds for it, then synced (the store is current).
    Subscriber late(inf, {"wf", "run=b", ""});
    CHECK(kinds(late.take(inf)) == "+a2,+b1,synced");
    CHECK(names_and_versions(late.local.store()) == names_and_versions(b.local.store()));
    CHECK(inf.fan.stats(late.id)->resyncs == 1);

    // A deletion goes to the holder only.
    inf.remove(*inf.store.get("wf", "b1"));
    CHECK(a.take(inf).empty());
    CHECK(kinds(b.take(inf)) == "-b1");
    CHECK(kinds(late.take(inf)) == "-b1");
    inf.fan.remove(late.id);
    CHECK(inf.fan.size() == 2);
}

TEST_CASE("fan-out: a relist of the shared watch gives each subscriber its deletions and synced, as its own watch would",
          "[shared_informer][unit]") {
    Informer inf;
    Subscriber a(inf, {"wf", "run=a", ""});
    Subscriber b(inf, {"wf", "run=b", ""});
    auto a1 = pod("a1", {{"run", "a"}}), a2 = pod("a2", {{"run", "a"}}), b1 = pod("b1", {{"run", "b"}});
    inf.relist({a1, a2, b1});
    (void)a.take(inf);
    (void)b.take(inf);
    // The watch dropped; meanwhile a2 was deleted, a1 changed, b1 unchanged: the relist finds it.
    auto a1b = touched(a1);
    inf.relist({a1b, b1});
    CHECK(kinds(a.take(inf)) == "~a1,-?a2,synced");
    CHECK(kinds(b.take(inf)) == "synced");
    // The same through a subscriber's own watch: a Store of its objects relisted.
    kube::Store<kube::Pod> own;
    Events own_events;
    own.replace({a1, a2}, own_events);
    own_events.clear();
    own.replace({a1b}, own_events);
    own_events.push_back({kube::WatchEventType::synced, {}, false});
    CHECK(kinds(own_events) == "~a1,-?a2,synced");
}

TEST_CASE("fan-out: a subscriber that falls behind is resynced from the store, never waited for, nothing lost",
          "[shared_informer][unit]") {
    Informer inf(kube::FanOutOptions{.capacity = 3, .max_attempts = 2});
    Subscriber slow(inf, {"wf", "run=s", ""});
    Subscriber fast(inf, {"wf", "run=f", ""});
    std::vector<kube::Pod> start{pod("s1", {{"run", "s"}}), pod("s2", {{"run", "s"}}), pod("f1", {{"run", "f"}})};
    inf.relist(start);
    CHECK(kinds(slow.take(inf)) == "+s1,+s2,synced");
    (void)fast.take(inf);

    // The slow subscriber takes nothing while 6 of its objects change, one is deleted and a new one comes.
    inf.upsert(touched(*inf.store.get("wf", "s1")), t0 + 1s);
    inf.remove(*inf.store.get("wf", "s2"));
    inf.upsert(pod("s3", {{"run", "s"}}), t0 + 2s);
    CHECK(inf.fan.stats(slow.id)->queued == 3);
    inf.upsert(pod("s4", {{"run", "s"}}), t0 + 3s); // the 4th: over capacity
    inf.upsert(touched(*inf.store.get("wf", "s3")), t0 + 4s);
    const auto* st = inf.fan.stats(slow.id);
    CHECK(st->overflows == 1);
    CHECK(st->last_overflow == t0 + 3s);
    CHECK(st->events_replaced == 3);
    CHECK(st->queued == 2); // the resync, then the change after it
    CHECK(st->peak_queued == 3);
    // The fast one was not affected.
    CHECK(kinds(fast.take(inf)).empty());
    CHECK(inf.fan.stats(fast.id)->overflows == 0);

    // The slow one derives what it missed: s1 changed, s2 deleted (final state unknown), s3 and s4 new.
    auto seen = slow.take(inf);
    CHECK(kinds(seen) == "~s1,+s3,+s4,-?s2,synced,~s3"); // the resync in name order, then its deletions
    CHECK(names_and_versions(slow.local.store()) == selected(inf.store, kube::ObjectMatcher({"wf", "run=s", ""})));

    // Attempts reach every subscriber, the oldest dropped over max_attempts, and they survive a resync.
    std::vector<Fan::Id> woken;
    kube::WatchAttempt failed;
    failed.kind = kube::WatchAttempt::Kind::watch;
    failed.error = kube::make_error_code(kube::error::connect_failed);
    for (int i = 0; i < 3; ++i) inf.fan.on_attempt(failed, woken);
    kube::WatchAttempt ok;
    ok.kind = kube::WatchAttempt::Kind::list;
    ok.ok = true;
    inf.fan.on_attempt(ok, woken);
    CHECK(woken.size() == 8);
    for (int i = 0; i < 4; ++i) inf.upsert(touched(*inf.store.get("wf", "s1")), t0 + 5s); // overflow again
    inf.fan.on_error(kube::Error(kube::make_error_code(kube::error::forbidden), "pods is forbidden"), woken);
    (void)slow.take(inf);
    REQUIRE(slow.attempts.size() == 2);
    CHECK_FALSE(slow.attempts[0].ok);
    CHECK(slow.attempts[1].ok);
    CHECK(slow.errors == 1);
    CHECK(inf.fan.stats(slow.id)->attempts_dropped == 2);
    CHECK(inf.fan.stats(slow.id)->overflows == 2);
    CHECK(inf.fan.overflows() == 2); // over every subscriber: InformerStatus::resyncs
    CHECK(names_and_versions(slow.local.store()) == selected(inf.store, kube::ObjectMatcher({"wf", "run=s", ""})));
}

TEST_CASE("fan-out: random changes, relabels, relists and slow takers: every subscriber ends with exactly its selection",
          "[shared_informer][unit]") {
    std::mt19937_64 rng(20261205);
    Informer inf(kube::FanOutOptions{.capacity = 5});
    const std::vector<std::string> runs{"r0", "r1", "r2", "r3"};
    std::vector<Subscriber> subs;
    std::vector<kube::ObjectMatcher> matchers;
    for (auto& r : runs) {
        subs.emplace_back(inf, kube::ObjectFilter{"wf", "app=hyperflow,run=" + r, ""});
        matchers.emplace_back(kube::ObjectFilter{"wf", "app=hyperflow,run=" + r, ""});
    }
    std::vector<std::uint64_t> deleted_seen(runs.size(), 0);
    auto labels_for = [&](std::uint64_t x) -> std::vector<std::pair<std::string, std::string>> {
        if (x % 7 == 0) return {{"app", "other"}, {"run", runs[x % runs.size()]}};
        return {{"app", "hyperflow"}, {"run", runs[x % runs.size()]}};
    };
    inf.relist({});
    for (int step = 0; step < 3000; ++step) {
        const auto op = rng() % 10;
        const std::string name = "p" + std::to_string(rng() % 40);
        const auto* cur = inf.store.get("wf", name);
        if (op < 5) {
            inf.upsert(cur ? touched(*cur) : pod(name, labels_for(rng())));
        } else if (op < 7 && cur) {
            auto p = touched(*cur);
            set_labels(p, labels_for(rng()));
            inf.upsert(p);
        } else if (op < 9 && cur) {
            inf.remove(*cur);
        } else if (op == 9 && rng() % 20 == 0) { // a relist: some objects vanished meanwhile
            std::vector<kube::Pod> keep;
            for (auto* p : inf.store.list())
                if (rng() % 3 != 0) keep.push_back(*p);
            inf.relist(std::move(keep));
        }
        for (std::size_t i = 0; i < subs.size(); ++i) {
            if (rng() % (i + 2) != 0) continue; // r0 takes often, r3 seldom (falls behind)
            auto evs = subs[i].take(inf);
            for (auto& e : evs) {
                if (e.type == kube::WatchEventType::added || e.type == kube::WatchEventType::modified)
                    CHECK(matchers[i].matches(e.object)); // never another run's object
                if (e.type == kube::WatchEventType::deleted) ++deleted_seen[i];
            }
            CHECK(names_and_versions(subs[i].local.store()) == selected(inf.store, matchers[i]));
        }
    }
    for (std::size_t i = 0; i < subs.size(); ++i) {
        (void)subs[i].take(inf);
        CHECK(names_and_versions(subs[i].local.store()) == selected(inf.store, matchers[i]));
        CHECK(deleted_seen[i] > 0);
    }
    CHECK(inf.fan.stats(subs[3].id)->overflows > 0); // the slow one was resynced, not waited for
    CHECK(inf.fan.stats(subs[0].id)->overflows < inf.fan.stats(subs[3].id)->overflows);
}

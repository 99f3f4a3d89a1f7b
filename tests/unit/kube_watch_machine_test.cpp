// The list/watch state machine driven by scripts, without sockets. A tiny in-memory apiserver model
// (SimServer) answers the machine's actions; a fault is injected at every step of a scenario, of every kind
// that step can suffer, and after each run the store must equal the server's state and the delivered events
// must rebuild it with nothing added twice, modified without a change, or deleted twice (Boost.MySQL's
// technique for its sans-io algorithms).
#include <execution_sentinel/kube/watch_machine.hpp>

#include <boost/json.hpp>

#include "catch.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
using namespace std::chrono;
using Kind = kube::WatchAction::Kind;
using Machine = kube::WatchMachine<kube::Pod>;
using TimePoint = Machine::time_point;

namespace {

// ------------------------------------------------------------------------------------------- the model server

struct Change {
    kube::RawWatchEventType type;
    std::string name;
    std::string uid;
    std::uint64_t rv;
    std::string phase;
};

boost::json::object pod_json(const std::string& name, const std::string& uid, std::uint64_t rv,
                             const std::string& phase) {
    return boost::json::object{
        {"metadata", {{"name", name}, {"namespace", "ns"}, {"uid", uid}, {"resourceVersion", std::to_string(rv)}}},
        {"status", {{"phase", phase}}}};
}

struct Obj {
    std::string uid;
    std::uint64_t rv;
    std::string phase;
};

class SimServer {
public:
    std::map<std::string, Obj> state;
    std::vector<Change> history; // every change, in RV order
    std::uint64_t rv = 100;
    std::uint64_t compacted = 0; // watches and continue tokens older than this get 410
    int uid_counter = 0;

    void create(const std::string& name, const std::string& phase = "Pending") {
        Obj o{"uid-" + std::to_string(++uid_counter), ++rv, phase};
        state[name] = o;
        history.push_back({kube::RawWatchEventType::added, name, o.uid, o.rv, phase});
    }
    void modify(const std::string& name, const std::string& phase) {
        auto& o = state.at(name);
        o.rv = ++rv;
        o.phase = phase;
        history.push_back({kube::RawWatchEventType::modified, name, o.uid, o.rv, phase});
    }
    void remove(const std::string& name) {
        auto o = state.at(name);
        state.erase(name);
        history.push_back({kube::RawWatchEventType::deleted, name, o.uid, ++rv, o.phase});
    }
    void compact() { compacted = rv; }

    std::map<std::string, Obj> state_at(std::uint64_t at) const {
        std::map<std::string, Obj> s;
        for (auto& c : history) {
            if (c.rv > at) break;
            if (c.type == kube::RawWatchEventType::deleted) s.erase(c.name);
            else s[c.name] = Obj{c.uid, c.rv, c.phase};
        }
        return s;
    }

    // A list page. Tokens are "<snapshot rv>:<offset>".
    std::error_code list(const kube::ListRequest& r, kube::ListPage<kube::Pod>& page) {
        std::uint64_t snap = rv;
        std::size_t offset = 0;
        if (!r.continue_token.empty()) {
            auto colon = r.continue_token.find(':');
            snap = std::stoull(r.continue_token.substr(0, colon));
            offset = std::stoull(r.continue_token.substr(colon + 1));
            if (snap < compacted) return kube::error::expired; // the token expired
        } else if (!r.resource_version.empty()) {
            auto want = std::stoull(r.resource_version);
            if (want > rv) return kube::error::resource_version_too_large;
            CHECK(r.resource_version_match == "NotOlderThan");
        }
        auto s = state_at(snap);
        boost::json::array items;
        std::size_t i = 0;
        for (auto& [name, o] : s) {
            if (i >= offset && (r.limit == 0 || i < offset + r.limit)) items.push_back(pod_json(name, o.uid, o.rv, o.phase));
            ++i;
        }
        boost::json::object meta{{"resourceVersion", std::to_string(snap)}};
        if (r.limit != 0 && offset + r.limit < s.size())
            meta["continue"] = std::to_string(snap) + ":" + std::to_string(offset + r.limit);
        boost::json::value body = boost::json::object{{"kind", "PodList"}, {"metadata", meta}, {"items", items}};
        return kube::parse_list_page(body, page);
    }
};

// ------------------------------------------------------------------------------------------- faults

enum class Fault {
    none,
    http_410,        // list or watch answered 410 Expired
    http_504_large,  // 504 ResourceVersionTooLarge
    http_429,        // 429 with Retry-After: 3
    http_500,
    refused,         // connection refused
    forbidden,       // 403: fatal, surfaced, then retried
    malformed,       // list body garbage / framer error mid-stream
    event_410,       // watch ERROR event 410
    event_500,       // watch ERROR event 500
    lost,            // connection lost mid-stream
    idle,            // stream silent past the idle timeout
    eof,             // clean end of stream
};

const char* fault_name(Fault f) {
    switch (f) {
    case Fault::none: return "none";
    case Fault::http_410: return "http_410";
    case Fault::http_504_large: return "http_504_large";
    case Fault::http_429: return "http_429";
    case Fault::http_500: return "http_500";
    case Fault::refused: return "refused";
    case Fault::forbidden: return "forbidden";
    case Fault::malformed: return "malformed";
    case Fault::event_410: return "event_410";
    case Fault::event_500: return "event_500";
    case Fault::lost: return "lost";
    case Fault::idle: return "idle";
    case Fault::eof: return "eof";
    }
    return "?";
}

std::error_code code_of(Fault f) {
    switch (f) {
    case Fault::http_410: return kube::error::expired;
    case Fault::http_504_large: return kube::error::resource_version_too_large;
    case Fault::http_429: return kube::error::too_many_requests;
    case Fault::http_500: return kube::error::server_error;
    case Fault::refused: return kube::error::connect_failed;
    case Fault::forbidden: return kube::error::forbidden;
    case Fault::malformed: return kube::error::malformed_response;
    case Fault::lost: return kube::error::connection_lost;
    case Fault::idle: return kube::error::stream_idle;
    default: return {};
    }
}

const Fault request_faults[] = {Fault::http_410, Fault::http_504_large, Fault::http_429, Fault::http_500,
                                Fault::refused,  Fault::forbidden,      Fault::malformed};
const Fault stream_faults[] = {Fault::event_410, Fault::event_500, Fault::lost, Fault::idle, Fault::malformed, Fault::eof};

// ------------------------------------------------------------------------------------------- the driver

// Applies delivered events to a map and checks that each one is a real change.
struct Consumer {
    std::map<std::string, std::string> seen; // name → rv
    int synced = 0;
    int modified = 0;
    void apply(const kube::WatchEvent<kube::Pod>& e, const Machine& m) {
        auto& name = e.object.meta.name;
        switch (e.type) {
        case kube::WatchEventType::added: {
            INFO("added twice: " << name);
            REQUIRE(seen.count(name) == 0);
            seen[name] = e.object.meta.resource_version;
            break;
        }
        case kube::WatchEventType::modified: {
            INFO("modified without change: " << name);
            REQUIRE(seen.count(name) == 1);
            REQUIRE(seen[name] != e.object.meta.resource_version);
            seen[name] = e.object.meta.resource_version;
            ++modified;
            break;
        }
        case kube::WatchEventType::deleted: {
            INFO("deleted twice: " << name);
            REQUIRE(seen.erase(name) == 1);
            break;
        }
        case kube::WatchEventType::synced:
            ++synced;
            REQUIRE(seen.size() == m.store().size());
            break;
        }
    }
};

struct Run {
    SimServer server;
    Machine machine;
    Consumer consumer;
    TimePoint now = TimePoint{} + hours{1};
    int step = 0;                       // I/O steps performed
    int fault_at = -1;                  // inject at this step
    Fault fault = Fault::none;
    bool fault_done = false;
    std::vector<std::string> trace;     // what happened, for failure messages
    std::vector<kube::WatchAction> actions;
    std::map<int, std::function<void(SimServer&)>> mutations; // by step
    int failures = 0;
    std::optional<std::uint64_t> watch_cursor; // open watch position
    bool bookmark_sent = false;
    std::vector<kube::WatchAttempt> attempts;  // every attempt outcome the machine left behind

    explicit Run(kube::WatchMachineOptions o) : machine(o) {}

    bool injected(bool applicable) {
        if (fault_done || step != fault_at || !applicable) return false;
        fault_done = true;
        return true;
    }
    void drain() {
        if (auto at = machine.take_attempt()) attempts.push_back(*at);
        while (machine.has_events()) consumer.apply(machine.pop_event(), machine);
    }
    bool failed_with(std::error_code ec) const {
        return std::any_of(attempts.begin(), attempts.end(), [&](auto& a) { return !a.ok && a.error == ec; });
    }
    std::error_code request_fault_code(bool is_list) {
        if (!injected(fault != Fault::none && std::find(std::begin(request_faults), std::end(request_faults), fault) != std::end(request_faults)))
            return {};
        (void)is_list;
        return code_of(fault);
    }
    kube::Diagnostics diag_for(std::error_code ec) {
        kube::Diagnostics d;
        if (ec == kube::error::too_many_requests) d.retry_after_seconds = 3;
        return d;
    }

    // One action → its result. Returns the next action.
    kube::WatchAction perform(const kube::WatchAction& a) {
        actions.push_back(a);
        ++step;
        now += milliseconds{100};
        if (auto it = mutations.find(step); it != mutations.end()) it->second(server);
        switch (a.kind) {
        case Kind::list: {
            trace.push_back("list rv=" + a.list.resource_version + " cont=" + a.list.continue_token);
            if (auto ec = request_fault_code(true)) {
                trace.push_back(std::string("  fault ") + fault_name(fault));
                return machine.on_list_error(ec, diag_for(ec), now);
            }
            kube::ListPage<kube::Pod> page;
            if (auto ec = server.list(a.list, page)) {
                trace.push_back("  server says " + ec.message());
                return machine.on_list_error(ec, {}, now);
            }
            return machine.on_list_page(std::move(page), now);
        }
        case Kind::watch: {
            trace.push_back("watch rv=" + a.watch.resource_version);
            CHECK(a.watch.timeout_seconds >= 300);
            CHECK(a.watch.timeout_seconds <= 600);
            CHECK(a.watch.allow_watch_bookmarks);
            watch_cursor.reset();
            bookmark_sent = false;
            if (auto ec = request_fault_code(false)) {
                trace.push_back(std::string("  fault ") + fault_name(fault));
                return machine.on_watch_end(ec, diag_for(ec), now);
            }
            auto from = std::stoull(a.watch.resource_version);
            if (from < server.compacted) {
                trace.push_back("  server says 410");
                return machine.on_watch_end(kube::error::expired, {}, now);
            }
            watch_cursor = from;
            return machine.on_watch_opened(now);
        }
        case Kind::read: {
            REQUIRE(watch_cursor.has_value());
            bool stream_fault = std::find(std::begin(stream_faults), std::end(stream_faults), fault) != std::end(stream_faults);
            if (injected(stream_fault)) {
                trace.push_back(std::string("  stream fault ") + fault_name(fault));
                watch_cursor.reset();
                switch (fault) {
                case Fault::event_410:
                    return machine.on_watch_event(
                        {kube::RawWatchEventType::error,
                         {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}, {"message", "too old"}}},
                        now);
                case Fault::event_500:
                    return machine.on_watch_event(
                        {kube::RawWatchEventType::error,
                         {{"kind", "Status"}, {"code", 500}, {"reason", "InternalError"}, {"message", "etcd"}}},
                        now);
                case Fault::eof: return machine.on_watch_end({}, {}, now);
                default: return machine.on_watch_end(code_of(fault), {}, now);
                }
            }
            for (auto& c : server.history) {
                if (c.rv <= *watch_cursor) continue;
                watch_cursor = c.rv;
                trace.push_back("  event rv=" + std::to_string(c.rv) + " " + c.name);
                return machine.on_watch_event({c.type, pod_json(c.name, c.uid, c.rv, c.phase)}, now);
            }
            if (!bookmark_sent) {
                bookmark_sent = true;
                return machine.on_watch_event(
                    {kube::RawWatchEventType::bookmark, {{"metadata", {{"resourceVersion", std::to_string(server.rv)}}}}},
                    now);
            }
            trace.push_back("  end of stream");
            watch_cursor.reset();
            now += seconds{300}; // the watch ran to its timeout
            return machine.on_watch_end({}, {}, now);
        }
        case Kind::wait:
            trace.push_back("wait " + std::to_string(a.delay.count()) + "ms");
            now += a.delay;
            return machine.on_wait_done(now);
        case Kind::fail:
            trace.push_back("fail " + a.error.message());
            ++failures;
            return machine.resume(now);
        }
        FAIL("unknown action");
        return {};
    }

    bool caught_up() const {
        return machine.phase() == kube::WatchPhase::watching && watch_cursor && *watch_cursor >= server.rv &&
               step > (mutations.empty() ? 0 : mutations.rbegin()->first) && (fault_at < 0 || fault_done);
    }

    // Runs until the machine is watching at the server's head with every mutation applied.
    void run(int max_steps = 2000) {
        auto a = machine.resume(now);
        while (step < max_steps) {
            drain();
            if (caught_up() && !machine.has_events()) return;
            a = perform(a);
        }
        std::string t;
        for (auto& line : trace) t += line + "\n";
        FAIL("no convergence after " << max_steps << " steps; trace:\n" << t);
    }

    void check_converged() {
        drain();
        std::map<std::string, std::string> truth;
        for (auto& [name, o] : server.state) truth[name] = std::to_string(o.rv);
        std::string t;
        for (auto& line : trace) t += line + "\n";
        INFO("trace:\n" << t);
        REQUIRE(machine.store().size() == truth.size());
        for (auto& [name, rv] : truth) {
            auto* p = machine.store().get("ns", name);
            REQUIRE(p != nullptr);
            CHECK(p->meta.resource_version == rv);
        }
        CHECK(consumer.seen == truth);
        CHECK(consumer.synced >= 1);
    }
};

kube::WatchMachineOptions small_pages() {
    kube::WatchMachineOptions o;
    o.page_size = 3;
    return o;
}

// The scenario: 7 pods at start (3 pages), then creations, modifications, deletions, a name reused by a
// new pod, and a compaction, spread over the first steps.
void populate(Run& r) {
    for (int i = 0; i < 7; ++i) r.server.create("p" + std::to_string(i));
    r.mutations[2] = [](SimServer& s) { s.modify("p1", "Running"); };    // during the paged list
    r.mutations[3] = [](SimServer& s) { s.remove("p5"); };               // vanishes during the list
    r.mutations[5] = [](SimServer& s) { s.create("p7"); };
    r.mutations[6] = [](SimServer& s) { s.modify("p0", "Running"); };
    r.mutations[8] = [](SimServer& s) { s.remove("p2"); s.create("p2", "Running"); }; // reused name
    r.mutations[9] = [](SimServer& s) { s.modify("p7", "Succeeded"); s.compact(); };
    r.mutations[11] = [](SimServer& s) { s.remove("p3"); s.create("p8"); };
    r.mutations[13] = [](SimServer& s) { s.modify("p8", "Failed"); s.remove("p4"); };
}

} // namespace

// ------------------------------------------------------------------------------------------- exact scripts

TEST_CASE("machine: paged initial list, Synced, then watch from the list's resourceVersion", "[kube][machine]") {
    Machine m(small_pages());
    auto now = TimePoint{} + hours{1};
    auto a = m.resume(now);
    REQUIRE(a.kind == Kind::list);
    CHECK(a.list == kube::ListRequest{"", "", "", 3});
    CHECK(m.phase() == kube::WatchPhase::listing);

    kube::ListPage<kube::Pod> page;
    page.items.push_back(kube::parse_pod(pod_json("a", "u1", 5, "Pending")));
    page.resource_version = "10";
    page.continue_token = "tok";
    a = m.on_list_page(page, now);
    REQUIRE(a.kind == Kind::list);
    CHECK(a.list == kube::ListRequest{"", "", "tok", 3});
    REQUIRE(m.has_events());
    CHECK(m.pop_event().type == kube::WatchEventType::added); // delivered per page, not at the end
    CHECK_FALSE(m.synced());

    page.items = {kube::parse_pod(pod_json("b", "u2", 7, "Running"))};
    page.continue_token.clear();
    a = m.on_list_page(page, now);
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "10");
    CHECK(a.watch.allow_watch_bookmarks);
    CHECK(m.synced());
    REQUIRE(m.pending_events() == 2);
    CHECK(m.pop_event().object.meta.name == "b");
    CHECK(m.pop_event().type == kube::WatchEventType::synced);

    a = m.on_watch_opened(now);
    CHECK(a.kind == Kind::read);
    a = m.on_watch_event({kube::RawWatchEventType::modified, pod_json("a", "u1", 11, "Running")}, now);
    CHECK(a.kind == Kind::read);
    a = m.on_watch_event({kube::RawWatchEventType::bookmark, {{"metadata", {{"resourceVersion", "15"}}}}}, now);
    CHECK(a.kind == Kind::read);
    CHECK(m.resource_version() == "15");
    auto ev = m.pop_event();
    CHECK(ev.type == kube::WatchEventType::modified);
    CHECK_FALSE(m.has_events()); // bookmarks are not delivered

    // A normal end after a long watch: re-watch at once from the bookmark, no list, no wait.
    a = m.on_watch_end({}, {}, now + seconds{400});
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "15");
    CHECK(m.stats().list_requests == 2);
}

TEST_CASE("machine: a very short empty watch backs off; a 429 waits at least Retry-After", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    auto a = m.on_list_page(page, now);
    REQUIRE(a.kind == Kind::watch);
    m.on_watch_opened(now);
    a = m.on_watch_end({}, {}, now + milliseconds{200});
    REQUIRE(a.kind == Kind::wait);
    CHECK(a.delay >= milliseconds{800});
    a = m.on_wait_done(now + seconds{2});
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "10");
    kube::Diagnostics d;
    d.retry_after_seconds = 7;
    a = m.on_watch_end(kube::error::too_many_requests, d, now + seconds{3});
    REQUIRE(a.kind == Kind::wait);
    CHECK(a.delay >= seconds{7});
    a = m.on_wait_done(now + seconds{11});
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "10"); // the SAME resourceVersion: no relist
    CHECK(m.stats().list_requests == 1);
}

TEST_CASE("machine: 410 relists at the last resourceVersion, then from scratch", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    page.items = {kube::parse_pod(pod_json("a", "u1", 5, "Pending")), kube::parse_pod(pod_json("b", "u2", 6, "Pending"))};
    m.on_list_page(page, now);
    m.on_watch_opened(now);
    m.on_watch_event({kube::RawWatchEventType::modified, pod_json("a", "u1", 12, "Running")}, now);
    while (m.has_events()) m.pop_event();
    auto a = m.on_watch_event({kube::RawWatchEventType::error, {{"code", 410}, {"reason", "Expired"}}}, now);
    REQUIRE(a.kind == Kind::list);
    CHECK(a.list.resource_version == "12");
    CHECK(a.list.resource_version_match == "NotOlderThan");
    a = m.on_list_error(kube::error::expired, {}, now);
    REQUIRE(a.kind == Kind::list);
    CHECK(a.list.resource_version.empty());
    CHECK(a.list.resource_version_match.empty());
    // the world moved on: b vanished, a unchanged, c appeared
    page.resource_version = "30";
    page.items = {kube::parse_pod(pod_json("a", "u1", 12, "Running")), kube::parse_pod(pod_json("c", "u3", 25, "Pending"))};
    a = m.on_list_page(page, now);
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "30");
    std::vector<kube::WatchEvent<kube::Pod>> ev;
    while (m.has_events()) ev.push_back(m.pop_event());
    REQUIRE(ev.size() == 3);
    CHECK(ev[0].type == kube::WatchEventType::added);
    CHECK(ev[0].object.meta.name == "c");
    CHECK(ev[1].type == kube::WatchEventType::deleted);
    CHECK(ev[1].object.meta.name == "b");
    CHECK(ev[1].final_state_unknown);
    CHECK(ev[2].type == kube::WatchEventType::synced);
    CHECK(m.stats().relists == 2);
}

TEST_CASE("machine: fatal errors are surfaced, state is kept, resume backs off and retries", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    auto a = m.resume(now);
    kube::Diagnostics d;
    d.http_status = 403;
    d.server_message = "pods is forbidden";
    a = m.on_list_error(kube::error::forbidden, d, now);
    REQUIRE(a.kind == Kind::fail);
    CHECK(a.error == kube::error::forbidden);
    CHECK(a.diagnostics.server_message == "pods is forbidden");
    CHECK(m.phase() == kube::WatchPhase::failed);
    a = m.resume(now);
    REQUIRE(a.kind == Kind::wait);
    CHECK(a.delay >= milliseconds{800});
    a = m.on_wait_done(now + seconds{2});
    REQUIRE(a.kind == Kind::list);
    a = m.on_list_error(kube::error::forbidden, d, now + seconds{2});
    REQUIRE(a.kind == Kind::fail);
    a = m.resume(now + seconds{2});
    REQUIRE(a.kind == Kind::wait);
    CHECK(a.delay >= milliseconds{1600}); // the backoff grows while the error persists
    CHECK(m.stats().failures == 2);
}

TEST_CASE("machine: interruption re-issues the step; misuse is a logic error", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    m.on_list_page(page, now);
    m.on_watch_opened(now);
    m.on_watch_event({kube::RawWatchEventType::added, pod_json("a", "u1", 11, "Pending")}, now);
    auto a = m.resume(now); // the driver was cancelled while reading
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "11");
    CHECK_THROWS_AS(m.on_list_page(page, now), std::logic_error);
    CHECK_THROWS_AS(m.on_wait_done(now), std::logic_error);
}

TEST_CASE("machine: watch events without a name and lists without a resourceVersion", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page; // no resourceVersion
    auto a = m.on_list_page(page, now);
    REQUIRE(a.kind == Kind::wait); // cannot watch from nowhere: list again after a backoff
    a = m.on_wait_done(now + seconds{2});
    REQUIRE(a.kind == Kind::list);
    page.resource_version = "10";
    m.on_list_page(page, now);
    m.on_watch_opened(now);
    a = m.on_watch_event({kube::RawWatchEventType::added, {{"metadata", {{"resourceVersion", "12"}}}}}, now);
    REQUIRE(a.kind == Kind::wait);
    a = m.on_wait_done(now + seconds{5});
    REQUIRE(a.kind == Kind::watch);
    CHECK(a.watch.resource_version == "10");

    kube::ListPage<kube::Pod> p;
    CHECK(kube::parse_list_page(boost::json::parse(R"({"items":null,"metadata":{"resourceVersion":"3"}})"), p) ==
          std::error_code{});
    CHECK(p.resource_version == "3");
    CHECK(kube::parse_list_page(boost::json::parse(R"({"metadata":{}})"), p) == kube::error::malformed_response);
    CHECK(kube::parse_list_page(boost::json::parse(R"({"items":[5]})"), p) == kube::error::malformed_response);
    CHECK(kube::parse_list_page(boost::json::parse(R"({"items":[{"metadata":{}}]})"), p) ==
          kube::error::malformed_response);
    CHECK(kube::parse_list_page(boost::json::parse(R"([1])"), p) == kube::error::malformed_response);
}

TEST_CASE("machine: repeated 410 without progress backs off instead of hammering", "[kube][machine]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    m.on_list_page(page, now);
    auto a = m.on_watch_end(kube::error::expired, {}, now);
    REQUIRE(a.kind == Kind::list); // first: at once
    m.on_list_page(page, now);
    a = m.on_watch_end(kube::error::expired, {}, now);
    REQUIRE(a.kind == Kind::wait); // again without a single event in between: wait first
    a = m.on_wait_done(now + seconds{2});
    REQUIRE(a.kind == Kind::list);
}

// ------------------------------------------------------------------------------------------- fault injection

TEST_CASE("machine: without faults every change arrives exactly once", "[kube][machine]") {
    Run r(small_pages());
    populate(r);
    r.run();
    r.check_converged();
    CHECK(r.failures == 0);
    CHECK(r.consumer.synced == 1);
    // Watches deliver every single change; the only relist is forced by nothing here.
    CHECK(r.machine.stats().relists == 0);
    INFO("steps " << r.step);
}

TEST_CASE("machine: a fault injected at every step, of every kind, always converges", "[kube][machine]") {
    // Find how many steps the fault-free run takes, then inject at each of them (and a little beyond).
    int steps = 0;
    {
        Run base(small_pages());
        populate(base);
        base.run();
        steps = base.step;
    }
    REQUIRE(steps >= 12);
    int runs = 0, injected = 0;
    for (int at = 1; at <= steps + 5; ++at) {
        for (auto f : {Fault::http_410, Fault::http_504_large, Fault::http_429, Fault::http_500, Fault::refused,
                       Fault::forbidden, Fault::malformed, Fault::event_410, Fault::event_500, Fault::lost,
                       Fault::idle, Fault::eof}) {
            Run r(small_pages());
            populate(r);
            r.fault_at = at;
            r.fault = f;
            CAPTURE(at, fault_name(f));
            // a fault that does not apply to the action at that step is not injected; run with it pending
            // only until convergence would otherwise be reached
            auto a = r.machine.resume(r.now);
            int guard = 0;
            while (guard++ < 3000) {
                r.drain();
                bool done = r.machine.phase() == kube::WatchPhase::watching && r.watch_cursor &&
                            *r.watch_cursor >= r.server.rv && r.step > r.mutations.rbegin()->first &&
                            (r.fault_done || r.step > at);
                if (done && !r.machine.has_events()) break;
                a = r.perform(a);
            }
            REQUIRE(guard < 3000);
            r.check_converged();
            ++runs;
            if (r.fault_done) {
                ++injected;
                if (f == Fault::forbidden) CHECK(r.failures == 1);
            }
            CHECK(r.failures == (r.fault_done && f == Fault::forbidden ? 1 : 0));
            // The failure was seen by the attempt observer, with its cause, whatever the step it hit.
            if (r.fault_done && f != Fault::http_410 && f != Fault::http_504_large && f != Fault::event_410 &&
                f != Fault::eof) {
                auto expected = f == Fault::event_500 ? std::error_code(kube::error::server_error) : code_of(f);
                CHECK(r.failed_with(expected));
            }
            CHECK(std::any_of(r.attempts.begin(), r.attempts.end(), [](auto& x) { return x.ok; }));
            for (auto& x : r.attempts) CHECK(x.ok == !x.error);
        }
    }
    INFO("runs " << runs << ", injected " << injected);
    CHECK(injected > steps * 3);
}

TEST_CASE("machine: an expired continue token restarts the list from scratch", "[kube][machine]") {
    Run r(small_pages());
    for (int i = 0; i < 10; ++i) r.server.create("p" + std::to_string(i));
    // compaction between page 1 and page 2 expires the continue token; p9 vanishes meanwhile
    r.mutations[2] = [](SimServer& s) { s.remove("p9"); s.create("q"); s.compact(); };
    r.run();
    r.check_converged();
    CHECK(r.trace.size() > 3);
    CHECK(r.machine.stats().relists == 1);
    CHECK(r.consumer.synced == 1);
}

// ------------------------------------------------------------------------------------------- attempts, health

TEST_CASE("machine: each attempt is reported: a list page, a watch's first event, failures with cause and delay",
          "[kube][machine][attempt]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    CHECK_FALSE(m.take_attempt());
    auto a = m.resume(now);
    a = m.on_list_error(kube::error::malformed_response, [] {
        kube::Diagnostics d;
        d.client_message = "the API server answered with invalid JSON (syntax error)";
        return d;
    }(), now);
    REQUIRE(a.kind == Kind::wait);
    auto at = m.take_attempt();
    REQUIRE(at);
    CHECK_FALSE(at->ok);
    CHECK(at->kind == kube::WatchAttempt::Kind::list);
    CHECK(at->error == kube::error::malformed_response);
    CHECK(at->retry_in == a.delay);
    CHECK_FALSE(at->synced);
    CHECK(at->describe().find("invalid JSON") != std::string::npos);
    CHECK_FALSE(m.take_attempt()); // taken once

    m.on_wait_done(now + seconds{2});
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    m.on_list_page(page, now + seconds{2});
    at = m.take_attempt();
    REQUIRE(at);
    CHECK(at->ok);
    CHECK(at->kind == kube::WatchAttempt::Kind::list);

    // A watch that opens is not yet a success: it must stream.
    m.on_watch_opened(now + seconds{2});
    CHECK(m.streaming());
    CHECK_FALSE(m.take_attempt());
    m.on_watch_event({kube::RawWatchEventType::bookmark, {{"metadata", {{"resourceVersion", "11"}}}}}, now + seconds{3});
    at = m.take_attempt();
    REQUIRE(at);
    CHECK(at->ok);
    CHECK(at->kind == kube::WatchAttempt::Kind::watch);
    CHECK(at->synced);
    CHECK(m.stream_events() == 1);
    m.on_watch_event({kube::RawWatchEventType::added, pod_json("p", "u", 12, "Running")}, now + seconds{3});
    CHECK_FALSE(m.take_attempt()); // one success per stream

    // Refused, then a 403 (fatal): both reported, the fatal one with the delay before the retry.
    a = m.on_watch_end(kube::error::connect_failed, {}, now + seconds{4});
    CHECK_FALSE(m.streaming());
    at = m.take_attempt();
    REQUIRE(at);
    CHECK(at->error == kube::error::connect_failed);
    CHECK(at->retry_in == a.delay);
    CHECK_FALSE(at->fatal());
    m.on_wait_done(now + seconds{6});
    a = m.on_watch_end(kube::error::forbidden, {}, now + seconds{6});
    REQUIRE(a.kind == Kind::fail);
    at = m.take_attempt();
    REQUIRE(at);
    CHECK(at->fatal());
    CHECK(at->retry_in > milliseconds{0});

    // A list that always answers 410 even without a resourceVersion is a failure with a cause, not silence.
    Machine g;
    g.resume(now);
    a = g.on_list_error(kube::error::expired, {}, now);
    REQUIRE(a.kind == Kind::wait);
    at = g.take_attempt();
    REQUIRE(at);
    CHECK(at->error == kube::error::expired);
    CHECK(at->diagnostics.client_message.find("410") != std::string::npos);
}

TEST_CASE("machine: after a storm the backoff starts again once a watch is healthy", "[kube][machine][attempt]") {
    // Without a reset, the delay after a storm stays at the cap, so the next short fault blinds a watcher
    // for up to 30 s.
    kube::WatchMachineOptions o;
    o.backoff.jitter = 0;
    auto storm = [&](Machine& m, TimePoint& now) {
        kube::WatchAction a;
        for (int i = 0; i < 8; ++i) {
            a = m.on_watch_end(kube::error::connect_failed, {}, now);
            REQUIRE(a.kind == Kind::wait);
            now += a.delay;
            m.on_wait_done(now);
        }
        CHECK(a.delay == milliseconds{30000}); // at the cap
    };
    auto start = [&](Machine& m, TimePoint now) {
        m.resume(now);
        kube::ListPage<kube::Pod> page;
        page.resource_version = "10";
        REQUIRE(m.on_list_page(page, now).kind == Kind::watch);
    };
    SECTION("an event arrives") {
        Machine m(o);
        auto now = TimePoint{} + hours{1};
        start(m, now);
        storm(m, now);
        m.on_watch_opened(now);
        m.on_watch_event({kube::RawWatchEventType::added, pod_json("p", "u", 12, "Running")}, now + milliseconds{10});
        auto a = m.on_watch_end(kube::error::server_error, {}, now + milliseconds{20});
        REQUIRE(a.kind == Kind::wait);
        CHECK(a.delay == milliseconds{800});
    }
    SECTION("a quiet watch stays open for healthy_watch") {
        Machine m(o);
        auto now = TimePoint{} + hours{1};
        start(m, now);
        storm(m, now);
        m.on_watch_opened(now);
        CHECK(m.stream_opened_at() == std::optional<TimePoint>(now));
        auto a = m.on_watch_end(kube::error::connection_lost, {}, now + seconds{11});
        REQUIRE(a.kind == Kind::wait);
        CHECK(a.delay == milliseconds{800});
    }
    SECTION("a watch open for less than healthy_watch without an event is no proof") {
        Machine m(o);
        auto now = TimePoint{} + hours{1};
        start(m, now);
        storm(m, now);
        m.on_watch_opened(now);
        auto a = m.on_watch_end(kube::error::connection_lost, {}, now + seconds{3});
        REQUIRE(a.kind == Kind::wait);
        CHECK(a.delay == milliseconds{30000});
    }
}

TEST_CASE("machine: a watch ending at once and relists without progress are reported as failures",
          "[kube][machine][attempt]") {
    Machine m;
    auto now = TimePoint{} + hours{1};
    m.resume(now);
    kube::ListPage<kube::Pod> page;
    page.resource_version = "10";
    m.on_list_page(page, now);
    (void)m.take_attempt();
    m.on_watch_opened(now);
    auto a = m.on_watch_end({}, {}, now + milliseconds{100});
    REQUIRE(a.kind == Kind::wait);
    auto at = m.take_attempt();
    REQUIRE(at);
    CHECK_FALSE(at->ok);
    CHECK(at->diagnostics.client_message.find("at once") != std::string::npos);
    m.on_wait_done(now + seconds{2});
    a = m.on_watch_end(kube::error::expired, {}, now + seconds{2});
    REQUIRE(a.kind == Kind::list); // the first relist is routine: no failure
    CHECK_FALSE(m.take_attempt());
    m.on_list_page(page, now + seconds{2});
    (void)m.take_attempt();
    a = m.on_watch_end(kube::error::expired, {}, now + seconds{2});
    REQUIRE(a.kind == Kind::wait);
    at = m.take_attempt();
    REQUIRE(at);
    CHECK(at->error == kube::error::expired);
}

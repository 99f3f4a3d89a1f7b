// The pure parts of the simulated cluster: object store and history, selectors, list pages, watch-event
// selection, pod file system commands and log rendering.
#include <execution_sentinel/testing/detail/list_watch.hpp>
#include <execution_sentinel/testing/detail/object_store.hpp>
#include <execution_sentinel/testing/detail/pod_runtime.hpp>
#include <execution_sentinel/testing/detail/selectors.hpp>
#include <execution_sentinel/testing/detail/table.hpp>

#include <boost/json.hpp>

#include <string>
#include <variant>

#include "catch.hpp"

namespace d = execution_sentinel::testing::detail;
namespace json = boost::json;

namespace {

json::object named(const std::string& name, json::object labels = {}, const std::string& phase = "Running") {
    return json::object{{"metadata", json::object{{"name", name}, {"labels", labels}}},
                        {"status", json::object{{"phase", phase}}}};
}

const d::ResourceInfo& pods() { return *d::find_resource("pods"); }

d::Selector labels(const std::string& text) {
    auto parsed = d::parse_label_selector(text);
    REQUIRE(std::holds_alternative<d::Selector>(parsed));
    return std::get<d::Selector>(parsed);
}

} // namespace

TEST_CASE("ObjectStore assigns increasing resourceVersions and keeps history", "[testing][store]") {
    d::ObjectStore store(3);
    const auto rv0 = store.resource_version();
    const auto& added = store.create(pods(), "ns", named("a"));
    CHECK(added.type == "ADDED");
    CHECK(added.resource_version == rv0 + 1);
    CHECK(d::metadata_string(added.object, "resourceVersion") == std::to_string(rv0 + 1));
    CHECK(d::metadata_string(added.object, "namespace") == "ns");
    CHECK(added.object.at("kind").as_string() == "Pod");
    CHECK_THROWS_AS(store.create(pods(), "ns", named("a")), d::StatusError);
    try {
        store.create(pods(), "ns", named("a"));
    } catch (const d::StatusError& e) {
        CHECK(e.code() == 409);
        CHECK(e.status().at("reason").as_string() == "AlreadyExists");
    }
    const auto uid = d::metadata_string(*store.get(pods(), "ns", "a"), "uid");

    json::object stale = named("a");
    stale["metadata"].as_object()["resourceVersion"] = "999";
    CHECK_THROWS_AS(store.replace(pods(), "ns", stale), d::StatusError);
    const auto& modified = store.replace(pods(), "ns", named("a", {{"x", "y"}}));
    CHECK(modified.type == "MODIFIED");
    REQUIRE(modified.previous);
    CHECK(d::metadata_string(modified.object, "uid") == uid);

    const auto* deleted = store.remove(pods(), "ns", "a");
    REQUIRE(deleted != nullptr);
    CHECK(deleted->type == "DELETED");
    CHECK(deleted->resource_version == store.resource_version());
    CHECK(store.remove(pods(), "ns", "a") == nullptr);

    auto after = store.events_after(rv0);
    CHECK_FALSE(after.expired);
    CHECK(after.events.size() == 3);
    store.create(pods(), "ns", named("b"));
    // history limit 3: the first event fell out, a watch from rv0 is too old now
    CHECK(store.events_after(rv0).expired);
    CHECK_FALSE(store.events_after(rv0 + 1).expired);
    store.compact();
    auto expired = store.events_after(rv0 + 1);
    CHECK(expired.expired);
    CHECK(expired.oldest == store.resource_version());
    CHECK_FALSE(store.events_after(store.resource_version()).expired);
}

TEST_CASE("ObjectStore honours generateName, namespaces and kinds", "[testing][store]") {
    d::ObjectStore store;
    json::object gen{{"metadata", json::object{{"generateName", "job-"}}}};
    const auto& e = store.create(pods(), "ns", gen);
    CHECK(d::metadata_string(e.object, "name").starts_with("job-"));
    CHECK(d::metadata_string(e.object, "name").size() == 9);
    json::object wrong_ns{{"metadata", json::object{{"name", "x"}, {"namespace", "other"}}}};
    CHECK_THROWS_AS(store.create(pods(), "ns", wrong_ns), d::StatusError);
    json::object wrong_kind{{"kind", "Job"}, {"metadata", json::object{{"name", "x"}}}};
    CHECK_THROWS_AS(store.create(pods(), "ns", wrong_kind), d::StatusError);
    json::object kept{{"metadata", json::object{{"name", "old"}, {"creationTimestamp", "2020-01-01T00:00:00Z"}}}};
    CHECK(d::metadata_string(store.create(pods(), "ns", kept).object, "creationTimestamp") == "2020-01-01T00:00:00Z");
    CHECK(store.list(pods(), "ns").size() == 2);
    CHECK(store.list(pods(), "").size() == 2);
    CHECK(store.list(pods(), "other").empty());
    CHECK(store.list(*d::find_resource("jobs"), "ns").empty());
}

TEST_CASE("Label and field selectors", "[testing][selectors]") {
    const auto obj = named("a", {{"app", "hyperflow"}, {"job-name", "j1"}}, "Running");
    CHECK(d::labels_match(labels("app=hyperflow"), obj));
    CHECK(d::labels_match(labels("app==hyperflow,job-name=j1"), obj));
    CHECK_FALSE(d::labels_match(labels("app!=hyperflow"), obj));
    CHECK(d::labels_match(labels("app != other"), obj));
    CHECK(d::labels_match(labels("job-name"), obj));
    CHECK_FALSE(d::labels_match(labels("!job-name"), obj));
    CHECK(d::labels_match(labels("!missing"), obj));
    CHECK(d::labels_match(labels(""), obj));
    CHECK(std::holds_alternative<std::string>(d::parse_label_selector("a=b,")));
    CHECK(std::holds_alternative<std::string>(d::parse_label_selector("a in (b)")));

    auto fields = d::parse_field_selector("metadata.name=a,status.phase!=Failed", pods());
    REQUIRE(std::holds_alternative<d::Selector>(fields));
    CHECK(d::fields_match(std::get<d::Selector>(fields), obj));
    CHECK(std::holds_alternative<std::string>(d::parse_field_selector("status.phase", pods())));
    auto unsupported = d::parse_field_selector("spec.bogus=1", pods());
    REQUIRE(std::holds_alternative<std::string>(unsupported));
    CHECK(std::get<std::string>(unsupported) == "field label not supported: spec.bogus");
    CHECK(std::holds_alternative<d::Selector>(d::parse_field_selector("involvedObject.name=x", *d::find_resource("events"))));
    CHECK(std::holds_alternative<std::string>(d::parse_field_selector("status.phase=x", *d::find_resource("events"))));
}

TEST_CASE("Watch events follow selectors", "[testing][watch]") {
    d::ObjectStore store;
    d::ObjectFilter filter;
    filter.resource = &pods();
    filter.namespace_ = "ns";
    filter.labels = labels("app=hf");
    const auto& added = store.create(pods(), "ns", named("a", {{"app", "hf"}}));
    auto ev = d::watch_event_for(added, filter);
    REQUIRE(ev);
    CHECK(ev->first == "ADDED");
    const auto& other_ns = store.create(pods(), "other", named("a", {{"app", "hf"}}));
    CHECK_FALSE(d::watch_event_for(other_ns, filter));
    const auto& left = store.modify(pods(), "ns", "a", [](json::object& o) {
        o["metadata"].as_object()["labels"].as_object()["app"] = "gone";
    });
    ev = d::watch_event_for(left, filter);
    REQUIRE(ev);
    CHECK(ev->first == "DELETED");
    CHECK(d::metadata_string(ev->second, "resourceVersion") == std::to_string(left.resource_version));
    CHECK(ev->second.at("metadata").as_object().at("labels").as_object().at("app").as_string() == "hf");
    const auto& back = store.modify(pods(), "ns", "a", [](json::object& o) {
        o["metadata"].as_object()["labels"].as_object()["app"] = "hf";
    });
    ev = d::watch_event_for(back, filter);
    REQUIRE(ev);
    CHECK(ev->first == "ADDED");
    const auto& same = store.modify(pods(), "ns", "a", [](json::object& o) { o["status"].as_object()["phase"] = "Failed"; });
    ev = d::watch_event_for(same, filter);
    REQUIRE(ev);
    CHECK(ev->first == "MODIFIED");
    CHECK(d::watch_line("ADDED", json::object{}) == "{\"type\":\"ADDED\",\"object\":{}}\n");
    auto bookmark = d::bookmark_object(pods(), 42);
    CHECK(json::serialize(bookmark) == R"({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42"}})");
}

TEST_CASE("List pages and continue tokens", "[testing][list]") {
    d::ObjectStore store;
    for (const char* n : {"e", "a", "c", "b", "d"}) store.create(pods(), "ns", named(n));
    d::ObjectFilter all;
    all.resource = &pods();
    auto page = d::paginate(store.list(pods(), "ns"), all, 2, "", 7);
    REQUIRE(page.items.size() == 2);
    CHECK(d::metadata_string(page.items[1], "name") == "b");
    REQUIRE(page.next);
    CHECK(page.remaining == 3);
    const auto token = d::encode_continue(*page.next);
    auto decoded = d::decode_continue(token);
    REQUIRE(decoded);
    CHECK(decoded->resource_version == 7);
    CHECK(decoded->start_after == "ns/b");
    auto rest = d::paginate(store.list(pods(), "ns"), all, 0, decoded->start_after, 7);
    CHECK(rest.items.size() == 3);
    CHECK_FALSE(rest.next);
    CHECK_FALSE(d::decode_continue("garbage"));
    CHECK_FALSE(d::decode_continue(d::base64_encode("{\"v\":\"x\"}")));
    CHECK(d::base64_decode(d::base64_encode("hello!")) == std::optional<std::string>("hello!"));
}

TEST_CASE("Exec commands against the virtual file system", "[testing][exec]") {
    d::VirtualFileSystem fs{{"/work_dir/.workflow-exit-code", "0\n"}, {"/work_dir/logs/a.log", "x"}};
    auto cat = d::run_exec_command(fs, {"cat", "/work_dir/.workflow-exit-code"});
    CHECK(cat.exit_code == 0);
    CHECK(cat.stdout_data == "0\n");
    auto missing = d::run_exec_command(fs, {"cat", "/nope"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.stderr_data == "cat: can't open '/nope': No such file or directory\n");
    CHECK(d::run_exec_command(fs, {"test", "-f", "/work_dir/.workflow-exit-code"}).exit_code == 0);
    CHECK(d::run_exec_command(fs, {"test", "-f", "/work_dir"}).exit_code == 1);
    CHECK(d::run_exec_command(fs, {"test", "-d", "/work_dir"}).exit_code == 0);
    CHECK(d::run_exec_command(fs, {"ls", "/work_dir"}).stdout_data == ".workflow-exit-code\nlogs\n");
    auto ls_missing = d::run_exec_command(fs, {"ls", "/none"});
    CHECK(ls_missing.exit_code == 1);
    CHECK_FALSE(ls_missing.stderr_data.empty());
    CHECK(d::run_exec_command(fs, {"sh", "-c", "cat '/work_dir/.workflow-exit-code'"}).stdout_data == "0\n");
    auto unknown = d::run_exec_command(fs, {"python3", "-V"});
    CHECK(unknown.exit_code == 127);
    CHECK(unknown.stderr_data.find("command not found") != std::string::npos);
    CHECK(d::normalize_path("//a/./b/../c/") == "/a/c");
}

TEST_CASE("Log rendering and RFC 3339 times", "[testing][logs]") {
    const auto t0 = *d::parse_rfc3339("2026-01-02T03:04:05Z");
    std::vector<d::LogLine> lines{{t0, "one"}, {t0 + std::chrono::seconds(1), "two"}, {t0 + std::chrono::seconds(2), "three"}};
    d::LogQuery q;
    CHECK(d::render_log(lines, q) == "one\ntwo\nthree\n");
    q.tail_lines = 1;
    CHECK(d::render_log(lines, q) == "three\n");
    q.tail_lines.reset();
    q.since_time = t0 + std::chrono::seconds(1);
    CHECK(d::render_log(lines, q) == "two\nthree\n");
    q.since_time.reset();
    q.timestamps = true;
    q.tail_lines = 1;
    CHECK(d::render_log(lines, q) == "2026-01-02T03:04:07.000000000Z three\n");
    CHECK(d::format_rfc3339(t0) == "2026-01-02T03:04:05Z");
    CHECK(d::parse_rfc3339("2026-01-02T04:04:05.5+01:00") == t0 + std::chrono::milliseconds(500));
    CHECK_FALSE(d::parse_rfc3339("2026-13-02T03:04:05Z"));
    CHECK_FALSE(d::parse_rfc3339("yesterday"));

    json::object pod{{"metadata", json::object{{"name", "p"}}},
                     {"spec", json::object{{"containers", json::array{json::object{{"name", "a"}}, json::object{{"name", "b"}}}}}}};
    CHECK_THROWS_AS(d::resolve_container(pod, ""), d::StatusError);
    CHECK(d::resolve_container(pod, "b") == "b");
    CHECK_THROWS_AS(d::resolve_container(pod, "c"), d::StatusError);
}

TEST_CASE("Pod tables for kubectl", "[testing][table]") {
    CHECK(d::accepts_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"));
    CHECK_FALSE(d::accepts_table("application/json"));
    const auto created = *d::parse_rfc3339("2026-01-02T03:00:00Z");
    json::object pod = json::parse(R"({"metadata":{"name":"p","creationTimestamp":"2026-01-02T03:00:00Z"},
        "spec":{"containers":[{"name":"a"},{"name":"b"}]},
        "status":{"phase":"Running","containerStatuses":[
          {"name":"a","ready":true,"restartCount":2,"state":{"running":{}}},
          {"name":"b","ready":false,"restartCount":1,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}})").as_object();
    auto table = d::pod_table({pod}, json::object{{"resourceVersion", "7"}}, "", created + std::chrono::minutes(5));
    CHECK(table.at("kind").as_string() == "Table");
    CHECK(table.at("columnDefinitions").as_array().size() == 9);
    const auto& row = table.at("rows").as_array().at(0).as_object();
    const auto& cells = row.at("cells").as_array();
    CHECK(cells.at(0).as_string() == "p");
    CHECK(cells.at(1).as_string() == "1/2");
    CHECK(cells.at(2).as_string() == "CrashLoopBackOff");
    CHECK(cells.at(3).as_string() == "3");
    CHECK(cells.at(4).as_string() == "5m");
    CHECK(row.at("object").as_object().at("kind").as_string() == "PartialObjectMetadata");
    CHECK(d::short_age(std::chrono::seconds(30)) == "30s");
    CHECK(d::short_age(std::chrono::hours(50)) == "2d");
}

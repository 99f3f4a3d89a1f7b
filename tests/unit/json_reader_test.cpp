// The one path-tracking JSON reader behind the context, report and summary formats.
#include <execution_sentinel/context.hpp>
#include <execution_sentinel/detail/json_reader.hpp>
#include <execution_sentinel/report.hpp>
#include <execution_sentinel/summary.hpp>

#include "catch.hpp"

#include <boost/json/parse.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace es = execution_sentinel;

namespace {

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string failure_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no failure";
}

} // namespace

TEST_CASE("json reader: types, ranges and paths", "[json_reader]") {
    auto v = boost::json::parse(R"({"s": "x", "n": 3, "u": 18446744073709551615, "d": 2.0, "f": 2.5, "b": true,
                                    "null": null, "o": {"inner": [1, "two"]}, "a": ["p", "q"], "big": 3e10})");
    auto fail = [](std::string path, const std::string& problem) { throw Failure(path + ": " + problem); };
    es::detail::JsonFields<decltype(fail)> f(v.as_object(), "root.", fail);
    CHECK(f.string("s") == "x");
    CHECK_FALSE(f.string("missing").has_value());
    CHECK_FALSE(f.string("null").has_value()); // null is absent
    CHECK(failure_of([&] { f.string("missing", true); }) == "root.missing: required");
    CHECK(failure_of([&] { f.string("n"); }) == "root.n: expected a string");
    CHECK(f.integer("n") == 3);
    CHECK(f.integer("d") == 2); // a number without a fraction is an integer
    CHECK(failure_of([&] { f.integer("f"); }) == "root.f: expected an integer");
    CHECK(failure_of([&] { f.integer("u"); }) == "root.u: integer out of range");
    CHECK(failure_of([&] { f.integer("n", 0, 2); }) == "root.n: integer out of range");
    int small = 0;
    CHECK(failure_of([&] { f.integer("big", small); }) == "root.big: integer out of range");
    CHECK(f.number("f") == 2.5);
    CHECK(failure_of([&] { f.number("s"); }) == "root.s: expected a number");
    CHECK(f.boolean("b") == true);
    CHECK(failure_of([&] { f.boolean("n"); }) == "root.n: expected true or false");
    CHECK(f.strings("a") == std::vector<std::string>{"p", "q"});
    CHECK(failure_of([&] { f.array("s"); }) == "root.s: expected an array");
    auto* o = f.object("o");
    REQUIRE(o != nullptr);
    auto inner = f.nested(*o, "o");
    CHECK(failure_of([&] { inner.strings("inner"); }) == "root.o.inner[0]: expected a string");
}

TEST_CASE("json reader: the formats name the failing field by its path", "[json_reader]") {
    auto context = [](const char* text) { return failure_of([&] { es::context_from_json_text(text); }); };
    CHECK(context(R"({"namespace": "wf", "engine_pod_name": "e", "task_inventory": [{"name": "a"}, {"name": 1}]})") ==
          "task_inventory[1].name: expected a string");
    CHECK(context(R"({"namespace": "wf", "engine_pod_name": "e", "task_inventory": [{"name": "a", "dag_order": 1.5}]})") ==
          "task_inventory[0].dag_order: expected an integer");
    CHECK(context(R"({"namespace": "wf", "engine_pod_name": "e", "dag_structure": {"b": ["a", 2]}})") ==
          "dag_structure.b[1]: expected a string");
    CHECK(context(R"({"namespace": "wf", "engine_pod_name": "e", "dag_structure": {"b": "a"}})") ==
          "dag_structure.b: expected an array of task types");
    auto report = [](const char* text) {
        return failure_of([&] { es::report_from_json(boost::json::parse(text)); });
    };
    CHECK(report(R"({"type": "PROGRESS", "severity": "info", "sequence": -1})") == "sequence: integer out of range");
    CHECK(report(R"({"type": "PROGRESS", "severity": "info", "details": []})") == "details: expected an object");
    CHECK(report(R"({"type": "NOPE", "severity": "info"})") == "type: unknown report type");
    auto summary = [](const char* text) {
        return failure_of([&] { es::summary_from_json(boost::json::parse(text)); });
    };
    CHECK(summary(R"({"oom_killed": ["a", 3]})") == "oom_killed[1]: expected a string");
    CHECK(summary(R"({"reports": {"PROGRESS": "x"}})") == "reports.PROGRESS: expected an integer");
    CHECK(summary(R"({"reports": {"NOPE": 1}})") == "reports.NOPE: unknown report type");
    CHECK(es::summary_from_json(boost::json::parse(R"({"total_tasks": 4.0, "reports": {"PROGRESS": 2}})")).total_tasks == 4);
}

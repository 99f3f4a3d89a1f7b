// Pure pieces of the transport, exec and logs: no sockets.
#include <execution_sentinel/kube/client.hpp>
#include <execution_sentinel/kube/exec.hpp>
#include <execution_sentinel/kube/logs.hpp>

#include "catch.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace kube = execution_sentinel::kube;
using namespace std::chrono_literals;

namespace {
kube::Timestamp at(int y, unsigned mo, unsigned d, int h, int mi, int s, long ns = 0) {
    using namespace std::chrono;
    return time_point_cast<kube::Timestamp::duration>(sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} +
                                                      seconds{s} + nanoseconds{ns});
}
} // namespace

TEST_CASE("query components are percent-encoded except unreserved characters", "[client][url]") {
    CHECK(kube::escape_query_component("abc-._~XYZ09") == "abc-._~XYZ09");
    CHECK(kube::escape_query_component("app=hyperflow,tier in (a,b)") == "app%3Dhyperflow%2Ctier%20in%20%28a%2Cb%29");
    CHECK(kube::escape_query_component("a&b+c/d?e#f%") == "a%26b%2Bc%2Fd%3Fe%23f%25");
    CHECK(kube::escape_query_component("\xc3\xa9") == "%C3%A9");
    CHECK(kube::escape_query_component("") == "");
}

TEST_CASE("path segments cannot change the path", "[client][url]") {
    CHECK(kube::escape_path_segment("wf-1") == "wf-1");
    CHECK(kube::escape_path_segment("a/b") == "a%2Fb");
    CHECK(kube::escape_path_segment("..") == "%2E%2E");
    CHECK(kube::escape_path_segment(".") == "%2E");
    CHECK(kube::escape_path_segment("x?watch=1") == "x%3Fwatch%3D1");
}

TEST_CASE("QueryString builds repeated and typed parameters", "[client][url]") {
    kube::QueryString q;
    CHECK(q.str().empty());
    q.add("command", "sh").add("command", "-c").add("command", "echo a && echo b").add("limit", 500).add("watch", true);
    q.add_if("container", "").add_if("labelSelector", "app=x");
    CHECK(q.str() == "?command=sh&command=-c&command=echo%20a%20%26%26%20echo%20b&limit=500&watch=true&labelSelector=app%3Dx");
}

TEST_CASE("targets join the base path and describe themselves without the query", "[client][url]") {
    CHECK(kube::join_target("", "/api/v1/pods") == "/api/v1/pods");
    CHECK(kube::join_target("/prefix", "/api/v1/pods") == "/prefix/api/v1/pods");
    CHECK(kube::join_target("/prefix/", "/api") == "/prefix/api");
    CHECK(kube::describe_request("GET", "/api/v1/namespaces/x/pods?labelSelector=a%3Db&limit=500") ==
          "GET /api/v1/namespaces/x/pods");
    CHECK(kube::describe_request("DELETE", "/apis/batch/v1/namespaces/x/jobs/j") == "DELETE /apis/batch/v1/namespaces/x/jobs/j");
}

TEST_CASE("Retry-After parsing: integer seconds, capped, garbage rejected", "[client][retry]") {
    CHECK(kube::parse_retry_after("5") == 5s);
    CHECK(kube::parse_retry_after(" 7\t") == 7s);
    CHECK(kube::parse_retry_after("0") == 0s);
    CHECK(kube::parse_retry_after("120", 32s) == 32s);
    CHECK(kube::parse_retry_after("99999999999999999999999", 32s) == 32s);
    CHECK_FALSE(kube::parse_retry_after("").has_value());
    CHECK_FALSE(kube::parse_retry_after("-3").has_value());
    CHECK_FALSE(kube::parse_retry_after("1.5").has_value());
    CHECK_FALSE(kube::parse_retry_after("5s").has_value());
    CHECK_FALSE(kube::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
}

TEST_CASE("an error answer becomes a classified error keeping the server's words", "[client][status]") {
    SECTION("403 Status") {
        auto [e, d] = kube::error_from_response(
            403, R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"u\" cannot list","reason":"Forbidden","code":403})",
            "", "GET /api/v1/namespaces/x/pods", "kubeconfig k");
        CHECK(e == kube::error::forbidden);
        CHECK(kube::is_fatal(kube::make_error_code(e)));
        CHECK(d.http_status == 403);
        CHECK(d.reason == "Forbidden");
        CHECK(d.server_message == "pods is forbidden: User \"u\" cannot list");
        CHECK(d.resource == "GET /api/v1/namespaces/x/pods");
        CHECK(d.client_message.find("RBAC") != std::string::npos);
    }
    SECTION("429 with Retry-After header beats details.retryAfterSeconds") {
        auto [e, d] = kube::error_from_response(
            429, R"({"kind":"Status","status":"Failure","reason":"TooManyRequests","code":429,"details":{"retryAfterSeconds":9}})",
            "3", "GET /api", "");
        CHECK(e == kube::error::too_many_requests);
        CHECK(d.retry_after_seconds == 3);
    }
    SECTION("details.retryAfterSeconds without a header") {
        auto [e, d] = kube::error_from_response(
            500, R"({"kind":"Status","status":"Failure","reason":"InternalError","code":500,"details":{"retryAfterSeconds":2}})",
            "", "GET /api", "");
        CHECK(e == kube::error::server_error);
        CHECK(d.retry_after_seconds == 2);
        CHECK(kube::is_retryable(kube::make_error_code(e)));
    }
    SECTION("410 and 504 ResourceVersionTooLarge need a relist") {
        auto [e1, d1] = kube::error_from_response(410, R"({"kind":"Status","status":"Failure","reason":"Expired","code":410})", "", "GET /x", "");
        CHECK(e1 == kube::error::expired);
        auto [e2, d2] = kube::error_from_response(
            504, R"({"kind":"Status","status":"Failure","code":504,"details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large"}]}})",
            "", "GET /x", "");
        CHECK(e2 == kube::error::resource_version_too_large);
        CHECK(kube::needs_resync(kube::make_error_code(e2)));
    }
    SECTION("a body that is not a Status is kept as short printable text") {
        auto [e, d] = kube::error_from_response(502, "<html>\n<b>Bad gateway</b></html>" + std::string(500, 'x'), "", "GET /x", "");
        CHECK(e == kube::error::server_error);
        CHECK(d.server_message.size() <= 200);
        CHECK(d.server_message.find("<b>Bad gateway</b>") != std::string::npos);
        CHECK(d.server_message.find('\n') == std::string::npos);
    }
    SECTION("other statuses") {
        CHECK(kube::error_from_response(404, "", "", "", "").first == kube::error::not_found);
        CHECK(kube::error_from_response(409, "", "", "", "").first == kube::error::conflict);
        CHECK(kube::error_from_response(422, "", "", "", "").first == kube::error::bad_request);
        CHECK(kube::error_from_response(401, "", "", "", "src").first == kube::error::unauthorized);
        CHECK(kube::error_from_response(302, "", "", "", "").first == kube::error::unexpected_status);
    }
}

TEST_CASE("exec target: one command parameter per argv element, stdout and stderr", "[exec]") {
    kube::ExecRequest r;
    r.namespace_ = "wf";
    r.pod = "job-1-abc";
    r.container = "main";
    r.command = {"sh", "-c", "cat /work/x.log | wc -l"};
    CHECK(kube::exec_target(r) ==
          "/api/v1/namespaces/wf/pods/job-1-abc/exec?command=sh&command=-c&command=cat%20%2Fwork%2Fx.log%20%7C%20wc%20-l"
          "&container=main&stdout=true&stderr=true");
    r.container.clear();
    CHECK(kube::exec_target(r).find("container=") == std::string::npos);
}

TEST_CASE("exec status: Success, ExitCode found in any cause, other failures", "[exec]") {
    auto ok = kube::decode_exec_status(R"({"metadata":{},"status":"Success"})");
    CHECK(ok.started);
    CHECK(ok.exit_code == 0);

    auto one = kube::decode_exec_status(
        R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit code 1","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"1"}]}})");
    CHECK(one.started);
    CHECK(one.exit_code == 1);
    CHECK(one.reason == "NonZeroExitCode");

    // The ExitCode cause is not first: every cause is scanned.
    auto later = kube::decode_exec_status(
        R"({"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"x"},{"reason":"ExitCode","message":"127"}]}})");
    CHECK(later.started);
    CHECK(later.exit_code == 127);

    auto no_code = kube::decode_exec_status(
        R"J({"status":"Failure","message":"container not found (\"nope\")","reason":"InternalError"})J");
    CHECK_FALSE(no_code.started);
    CHECK(no_code.message == "container not found (\"nope\")");

    auto bad_code = kube::decode_exec_status(
        R"({"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"12x"}]}})");
    CHECK_FALSE(bad_code.started);

    auto text = kube::decode_exec_status("error: something broke");
    CHECK_FALSE(text.started);
    CHECK(text.message == "error: something broke");
}

TEST_CASE("exec output: channel frames routed, readiness and close frames ignored, output capped", "[exec]") {
    kube::ExecOutputCollector c(8);
    c.on_message(std::string("\x01", 1));        // readiness: empty stdout message
    c.on_message(std::string("\x01hello ", 7));
    c.on_message(std::string("\x02oops\n", 6));
    c.on_message(std::string("\xff\x01", 2));    // v5 CLOSE of stdout
    c.on_message(std::string("\x04{}", 3));      // resize (never sent to a client) ignored
    c.on_message("");
    CHECK(c.stdout_data() == "hello ");
    CHECK(c.stderr_data() == "oops\n");
    CHECK_FALSE(c.truncated());
    CHECK_FALSE(c.has_status());
    c.on_message(std::string("\x01world!!", 8)); // 6 + 7 > 8: cut
    CHECK(c.stdout_data() == "hello wo");
    CHECK(c.truncated());
    c.on_message(std::string("\x03{\"status\":\"Success\"}"));
    CHECK(c.has_status());
    CHECK(kube::decode_exec_status(c.status_payload()).exit_code == 0);
}

TEST_CASE("exec refusals get exec-specific advice", "[exec]") {
    kube::ExecRequest r{.namespace_ = "wf", .pod = "p", .container = "c", .command = {"true"}};
    auto [e403, d403] = kube::exec_error_from_response(
        403, R"({"kind":"Status","status":"Failure","reason":"Forbidden","code":403,"message":"pods \"p\" is forbidden"})", r, "");
    CHECK(e403 == kube::error::forbidden);
    CHECK(d403.client_message.find("create pods/exec") != std::string::npos);
    CHECK(d403.client_message.find("get pods/exec") != std::string::npos);
    CHECK(d403.server_message == "pods \"p\" is forbidden");
    auto [e404, d404] = kube::exec_error_from_response(404, "", r, "");
    CHECK(e404 == kube::error::not_found);
    auto [e400, d400] = kube::exec_error_from_response(
        400, R"({"kind":"Status","status":"Failure","reason":"BadRequest","code":400,"message":"container c is not valid for pod p"})", r, "");
    CHECK(e400 == kube::error::exec_failed);
    CHECK(d400.server_message == "container c is not valid for pod p");
}

TEST_CASE("log lines split into timestamp and text", "[logs]") {
    auto l = kube::split_log_line("2024-05-01T10:00:00.123456789Z hello world");
    CHECK(l.time == at(2024, 5, 1, 10, 0, 0, 123456789));
    CHECK(l.text == "hello world");
    auto empty = kube::split_log_line("2024-05-01T10:00:01Z ");
    CHECK(empty.time == at(2024, 5, 1, 10, 0, 1));
    CHECK(empty.text.empty());
    auto crlf = kube::split_log_line("2024-05-01T10:00:01Z x\r");
    CHECK(crlf.text == "x");
    auto fallback = at(2024, 5, 1, 9, 0, 0);
    auto none = kube::split_log_line("no timestamp here at all", fallback);
    CHECK(none.time == fallback);
    CHECK(none.text == "no timestamp here at all");
    auto bad = kube::split_log_line("2024-13-01T10:00:00Z month 13", fallback);
    CHECK(bad.time == fallback);
    CHECK(bad.text == "2024-13-01T10:00:00Z month 13");
}

TEST_CASE("lines are cut across reads at every byte boundary", "[logs]") {
    const std::string bytes = "2024-05-01T10:00:00Z a\n2024-05-01T10:00:01Z bb\n\n2024-05-01T10:00:02Z ccc\n";
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
        std::string partial;
        std::vector<std::string> lines;
        auto on = [&](std::string_view l) { lines.emplace_back(l); };
        kube::split_lines(partial, std::string_view(bytes).substr(0, cut), 1024, on);
        kube::split_lines(partial, std::string_view(bytes).substr(cut), 1024, on);
        CAPTURE(cut);
        REQUIRE(lines.size() == 4);
        CHECK(lines[0] == "2024-05-01T10:00:00Z a");
        CHECK(lines[2].empty());
        CHECK(lines[3] == "2024-05-01T10:00:02Z ccc");
        CHECK(partial.empty());
    }
    std::string partial;
    std::vector<std::string> lines;
    kube::split_lines(partial, "abcdefghij", 4, [&](std::string_view l) { lines.emplace_back(l); });
    CHECK(lines == std::vector<std::string>{"abcd", "efgh"});
    CHECK(partial == "ij");
}

TEST_CASE("sinceTime is RFC 3339 in whole seconds", "[logs]") {
    CHECK(kube::format_since_time(at(2024, 5, 1, 10, 2, 3, 999999999)) == "2024-05-01T10:02:03Z");
    CHECK(kube::format_since_time(at(1999, 12, 31, 23, 59, 59)) == "1999-12-31T23:59:59Z");
    CHECK(kube::log_target("wf", "p", "main", true, at(2024, 5, 1, 10, 2, 3, 5), std::nullopt) ==
          "/api/v1/namespaces/wf/pods/p/log?container=main&follow=true&timestamps=true&sinceTime=2024-05-01T10%3A02%3A03Z");
    CHECK(kube::log_target("wf", "p", "", false, std::nullopt, 10) ==
          "/api/v1/namespaces/wf/pods/p/log?timestamps=true&tailLines=10");
}

TEST_CASE("a reopened log drops exactly what was delivered", "[logs]") {
    const auto t0 = at(2024, 5, 1, 10, 0, 0, 100);
    const auto t1 = at(2024, 5, 1, 10, 0, 0, 200);
    const auto t2 = at(2024, 5, 1, 10, 0, 1, 0);
    kube::LogDeduplicator d;
    CHECK_FALSE(d.last_time());
    d.begin_replay(); // nothing delivered yet: nothing to drop
    CHECK_FALSE(d.replaying());
    CHECK(d.accept({t0, "a"}));
    CHECK(d.accept({t1, "same"}));
    CHECK(d.accept({t1, "same"})); // two identical lines at one instant are both real
    CHECK(d.last_time() == t1);

    // Reopen from the second containing t1: the server repeats t0 and t1's lines.
    d.begin_replay();
    CHECK(d.replaying());
    CHECK_FALSE(d.accept({t0, "a"}));
    CHECK_FALSE(d.accept({t1, "same"}));
    CHECK_FALSE(d.accept({t1, "same"}));
    CHECK(d.accept({t1, "same"}));      // a third copy was never delivered
    CHECK(d.accept({t2, "new"}));
    CHECK_FALSE(d.replaying());
    CHECK(d.accept({t0, "late but new stream"})); // out of order outside a replay is delivered

    // Reopen again: only the line at the last instant is a duplicate.
    d.begin_replay();
    CHECK_FALSE(d.accept({t2, "new"}));
    CHECK(d.accept({t2, "other at same instant"}));
    CHECK(d.accept({t2, "new"})); // the replay held one copy only
}

TEST_CASE("log_finished: a finished pod or a terminated container that will not restart", "[logs]") {
    auto pod = [](std::string phase, std::string policy, std::string state) {
        return boost::json::parse(R"({"spec":{"restartPolicy":")" + policy + R"("},"status":{"phase":")" + phase +
                                  R"(","containerStatuses":[{"name":"main","state":)" + state + "}]}}");
    };
    CHECK(kube::log_finished(pod("Succeeded", "Always", "{}"), "main"));
    CHECK(kube::log_finished(pod("Failed", "Always", "{}"), "main"));
    CHECK_FALSE(kube::log_finished(pod("Running", "Always", R"({"running":{}})"), "main"));
    CHECK_FALSE(kube::log_finished(pod("Running", "Always", R"({"terminated":{"exitCode":1}})"), "main"));
    CHECK(kube::log_finished(pod("Running", "Never", R"({"terminated":{"exitCode":1}})"), "main"));
    CHECK(kube::log_finished(pod("Running", "OnFailure", R"({"terminated":{"exitCode":0}})"), "main"));
    CHECK_FALSE(kube::log_finished(pod("Running", "OnFailure", R"({"terminated":{"exitCode":2}})"), "main"));
    CHECK_FALSE(kube::log_finished(pod("Running", "Never", R"({"terminated":{"exitCode":1}})"), "other"));
    CHECK_FALSE(kube::log_finished(boost::json::parse("[]"), "main"));
}

TEST_CASE("log lines: a line limit of 0 still consumes every byte", "[kube][logs]") {
    std::string partial;
    std::vector<std::string> lines;
    kube::split_lines(partial, "ab\ncd", 0, [&](std::string_view l) { lines.emplace_back(l); });
    // pieces of one byte
    CHECK(lines == std::vector<std::string>{"a", "b", "c"});
    CHECK(partial == "d");
}

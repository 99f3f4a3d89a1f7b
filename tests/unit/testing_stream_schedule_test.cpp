// When a simulated watch sends bookmarks, ends at its timeout and sleeps, decided without sockets.
#include <execution_sentinel/testing/detail/stream_schedule.hpp>

#include <chrono>

#include "catch.hpp"

namespace d = execution_sentinel::testing::detail;
using namespace std::chrono_literals;
using Next = d::StreamSchedule::Next;

TEST_CASE("StreamSchedule sends bookmarks every interval and ends at the timeout", "[testing][streams]") {
    const auto t0 = d::StreamSchedule::Clock::time_point{} + 1h;
    d::StreamSchedule s(t0, t0 + 10s, true, 3s);
    CHECK(s.due(t0, false) == Next::wait);
    CHECK(s.wake_at(t0, false) == t0 + 3s);
    CHECK(s.due(t0 + 2999ms, false) == Next::wait);
    CHECK(s.due(t0 + 3s, false) == Next::bookmark);
    // a late wake-up: the next bookmark is an interval after the one sent, not after the one due
    s.bookmark_sent(t0 + 4s);
    CHECK(s.due(t0 + 4s, false) == Next::wait);
    CHECK(s.wake_at(t0 + 4s, false) == t0 + 7s);
    CHECK(s.due(t0 + 7s, false) == Next::bookmark);
    s.bookmark_sent(t0 + 7s);
    // the next bookmark would fall after the timeout: sleep until the timeout, then finish
    CHECK(s.wake_at(t0 + 7s, false) == t0 + 10s);
    CHECK(s.due(t0 + 10s, false) == Next::finish);
    CHECK(s.due(t0 + 11s, false) == Next::finish);
}

TEST_CASE("StreamSchedule without bookmarks only waits for the timeout", "[testing][streams]") {
    const auto t0 = d::StreamSchedule::Clock::time_point{} + 1h;
    d::StreamSchedule s(t0, t0 + 5s, false, 1s);
    CHECK(s.due(t0 + 2s, false) == Next::wait);
    CHECK(s.wake_at(t0 + 2s, false) == t0 + 5s);
    CHECK(s.due(t0 + 5s, false) == Next::finish);
}

TEST_CASE("A stalled stream sends nothing, not even its end, until released", "[testing][streams]") {
    const auto t0 = d::StreamSchedule::Clock::time_point{} + 1h;
    d::StreamSchedule s(t0, t0 + 5s, true, 1s);
    CHECK(s.due(t0 + 2s, true) == Next::wait);
    CHECK(s.due(t0 + 6s, true) == Next::wait);
    CHECK(s.wake_at(t0 + 6s, true) == t0 + 6s + 24h);
    CHECK(s.due(t0 + 6s, false) == Next::finish);
}
